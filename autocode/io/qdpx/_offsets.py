"""Character positions: how a REFI-QDA file counts them, and Python string indices.

REFI positions count characters of the plain text: Unicode code points, a CRLF line break as two
characters, the byte order mark not counted (``"chars"``). Tools built on UTF-16 strings may count a
character outside the Basic Multilingual Plane (𠮷, emoji) as two (``"utf16"``), and a tool that normalises
line breaks may count CRLF as one (``"chars-lf"``, ``"utf16-lf"``). :class:`Positions` converts one text's
positions to indices and back; :func:`guess_positions` picks the convention a file was written with.

>>> conv = Positions("a𠮷\\r\\nb", "utf16")   # 𠮷 is two UTF-16 units
>>> conv.length, conv.position(4), conv.index(5)
(6, 5, 4)
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from ._model import Source

__all__ = ["POSITIONS", "Positions", "convert_positions", "guess_positions"]

POSITIONS = ("chars", "utf16", "chars-lf", "utf16-lf")
"""How REFI positions count: code points or UTF-16 units; ``-lf``: a CRLF line break counts as one."""


class Positions:
    """Map the file's positions to Python indices and back for one text."""

    def __init__(self, text: str, mode: str):
        if mode not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {mode!r}")
        utf16, lf = mode.startswith("utf16"), mode.endswith("-lf")
        self.n = len(text)
        self.units: list[int] | None = None
        if (utf16 and any(ord(c) > 0xFFFF for c in text)) or (lf and "\r\n" in text):
            units, acc = [0], 0
            for i, ch in enumerate(text):
                if lf and ch == "\r" and text.startswith("\n", i + 1):
                    pass
                else:
                    acc += 2 if utf16 and ord(ch) > 0xFFFF else 1
                units.append(acc)
            self.units = units

    @property
    def length(self) -> int:
        return self.n if self.units is None else self.units[-1]

    def index(self, pos: int) -> int:
        return pos if self.units is None else bisect_left(self.units, pos)

    def position(self, index: int) -> int:
        return index if self.units is None else self.units[index]


def _squash(text: str) -> str:
    return " ".join(text.split())


def _excerpt(name: str | None) -> str | None:
    """The start of the selected text, when a selection's name is an excerpt (as ATLAS.ti writes them)."""
    key = _squash((name or "").rstrip("…").removesuffix("...").strip())
    return key if len(key) >= 3 else None


def guess_positions(sources: Sequence[Source]) -> str:
    """The way of counting under which the most selection names match the text they select (ties: chars)."""
    scores = dict.fromkeys(POSITIONS, 0)
    for src in sources:
        if src.text is None or not src.selections:
            continue
        for mode in POSITIONS:
            conv = Positions(src.text, mode)
            for sel in src.selections:
                key = _excerpt(sel.name)
                if key and sel.end <= conv.length and \
                        _squash(src.text[conv.index(sel.start):conv.index(sel.end)]).startswith(key):
                    scores[mode] += 1
    best = max(POSITIONS, key=lambda m: (scores[m], m == "chars"))
    return best if scores[best] > scores["chars"] else "chars"


def convert_positions(sources: Sequence[Source], positions: str) -> tuple[str, list[str]]:
    """Turn the file's positions of every selection of the text sources into Python indices, in place.

    ``positions`` is a convention of :data:`POSITIONS`, or ``"auto"`` (:func:`guess_positions` chooses one for
    the project; a selection whose name is not the text it selects under that convention but is under another
    is placed by the other one: a QDA tool may count some codings in UTF-16 units and the rest in characters, as
    QualCoder's coding screen does with characters outside the BMP). Selections past the end of the text are cut
    to it. Returns the convention used and the problems met.
    """
    auto = positions == "auto"
    if auto:
        positions = guess_positions(sources)
    problems: list[str] = []
    for src in sources:
        if src.text is None:
            continue
        conv = Positions(src.text, positions)
        others = [Positions(src.text, m) for m in POSITIONS if m != positions] if auto else []
        realigned = 0
        for sel in src.selections:
            start, end = sel.start, sel.end
            better = _placed_by_name(src.text, sel, conv, others)
            if better is not None:
                sel.start, sel.end = better.index(start), better.index(end)
                realigned += 1
                continue
            if end > conv.length:
                problems.append(
                    f"{src.kind} {src.name or src.guid!r}: selection {sel.guid} ends at {end}, after the end of "
                    f"the text ({conv.length}); cut to the text (are positions counted differently?)")
                end = conv.length
                start = min(start, end)
            sel.start, sel.end = conv.index(start), conv.index(end)
        if realigned:
            problems.append(
                f"{src.kind} {src.name or src.guid!r}: {realigned} selection(s) are counted in other units than the "
                f"rest ({positions}); each was placed where its name is the text it selects (a QDA tool that counts "
                "UTF-16 units for some codings, e.g. around characters outside the BMP such as 𠮷 or emoji).")
    return positions, problems


def _placed_by_name(text: str, sel, conv: Positions, others: list[Positions]) -> Positions | None:
    """Another convention under which the selection's name is the text it selects, when it is not under
    ``conv``; None when ``conv`` fits (or nothing tells)."""
    key = _excerpt(sel.name)
    if not key or not others:
        return None

    def fits(c: Positions) -> bool:
        return sel.end <= c.length and _squash(text[c.index(sel.start):c.index(sel.end)]).startswith(key)

    if fits(conv):
        return None
    return next((c for c in others if fits(c)), None)
