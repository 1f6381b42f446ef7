"""REFI-QDA projects: read hand-coded ``.qdpx``/``.qde``/``.qdc`` files, write pre-coded ``.qdpx`` projects.

REFI-QDA (QDA-XML, ``urn:QDA-XML:project:1.0``) is the exchange standard of NVivo, ATLAS.ti, MAXQDA,
QualCoder and others. A ``.qdpx`` file is a zip archive with ``project.qde`` (the XML) and the sources under
``sources/``; a ``.qdc`` file is a codebook alone.

Reading (:func:`read_project`) gives a :class:`Project`: the codebook (nested codes with descriptions and
colours), the users, the text sources with their text, and every coded text selection with its codings and
the user who made each. Everything else in the file (cases, variables, sets, graphs, links, notes, picture,
PDF, audio and video sources, attributes such as dates) is kept, so that :func:`write_qdpx` writes back a
project with nothing lost. Non-text sources are kept and skipped; a text source whose file is missing from
the archive (the REFI test project ships none) is reported with an :class:`~autocode.AutocodeWarning` and
listed in :attr:`Project.problems`.

From codings to segments
------------------------
A QDA project codes character ranges; autocode learns from segments (speaker turns and sentences,
:func:`autocode.segment.segment_text`). :meth:`Project.coded_corpus` segments each text source and gives a
segment a code from a user when a selection of that user coded with it overlaps the segment by at least
``min_overlap`` (default half) of the segment's characters, or by at least that share of the selection's own
characters (a short quote inside a long turn codes the turn). A user who coded anything in a source has
coded every segment of it (segments without a selection get no code); sources a user did not touch are
missing for that user. The original character ranges stay available: :meth:`Project.spans` lists them per
user and code, with offsets into :meth:`Project.documents`, for agreement at character level.

Offsets
-------
REFI positions count characters of the plain text: Unicode code points, a CRLF line break as two
characters, the byte order mark not counted (``positions="chars"``). Tools built on UTF-16 strings may
count a character outside the Basic Multilingual Plane (𠮷, emoji) as two, and a tool that normalises line
breaks may count CRLF as one; ``positions="utf16"``, ``"chars-lf"`` or ``"utf16-lf"`` read and write such
files. By default (``"auto"``) :func:`read_project` uses ``"chars"`` unless the selections' names (ATLAS.ti
names a quotation by its first words) fit the text better under another convention. Inside the library
offsets are always Python string indices.

Code ids
--------
A REFI code has a GUID and a name. Read without a codebook, a code's id is its name (``;`` replaced by
``,``), or its path of names (``"parent/child"``) where names repeat; the GUID is kept in
``Code.extra["guid"]`` and written back. Read with a codebook, a project code takes the id of the codebook
code with the same GUID, id or name, so a project coded in a QDA tool lines up with ``codebook.csv``.

Security
--------
The XML is parsed with defusedxml (no DTD, entities or external references), archive entries are checked
for path traversal and capped in size and compression ratio (:mod:`autocode.io._safezip`), and a
``plainTextPath`` must point inside the archive.

Example
-------
>>> import tempfile, pathlib
>>> from autocode import Code, Codebook, Segment, Suggestions
>>> import numpy as np
>>> book = Codebook([Code("H", "横向共治"), Code("council", "多元参与", parent="H")])
>>> segs = [Segment("P01", "1", "居民议事会每月开一次。", "受访者", 4, 15)]
>>> sug = Suggestions(segs, ["council"], np.array([[0.9]]), np.array([0.5]), book, coder="autocode-tfidf.v1")
>>> from autocode.io.transcript import Document
>>> out = pathlib.Path(tempfile.mkdtemp()) / "precoded.qdpx"
>>> write_precoded_qdpx(out, sug, documents=[Document("P01", "受访者：居民议事会每月开一次。")])
>>> project = read_project(out, codebook=book)
>>> project.coders, [(s.document, s.start, s.end, s.code) for s in project.spans()]
(['autocode-tfidf.v1'], [('P01', 4, 15, 'council')])
"""

from __future__ import annotations

import copy
import re
import uuid
import warnings
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import NamedTuple
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from ..codebook import Code, Codebook
from ..corpus import DEFAULT_CODER, CodedCorpus, Segment
from ..exceptions import AutocodeError, AutocodeWarning, CodebookError, FormatError
from ._safezip import Limits, SafeZip, parse_xml, safe_member_name
from .transcript import Document, decode_bytes

__all__ = [
    "NS",
    "POSITIONS",
    "Coding",
    "Project",
    "Selection",
    "Source",
    "Span",
    "User",
    "code_ids",
    "guid_for",
    "project_xml",
    "read_qdc",
    "read_project",
    "write_precoded_qdpx",
    "write_qdc",
    "write_qdpx",
]

NS = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"
POSITIONS = ("chars", "utf16", "chars-lf", "utf16-lf")
"""How REFI positions count: code points or UTF-16 units; ``-lf``: a CRLF line break counts as one."""

_UUID_NS = uuid.UUID("6f1c2a7e-3b8d-5e0f-9a41-2c7d8e9b0a15")  # autocode's namespace for deterministic GUIDs
_DOC_SUFFIXES = (".txt", ".docx", ".doc", ".rtf", ".odt", ".pdf")
_SECTIONS = ("Variables", "Cases", "Links", "Sets", "Graphs", "Description", "NoteRef")
_NON_TEXT = ("PictureSource", "PDFSource", "AudioSource", "VideoSource")
_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_UTF8_BOM = b"\xef\xbb\xbf"


def guid_for(*parts: str) -> str:
    """A deterministic GUID for autocode-made objects (the same inputs give the same GUID).

    >>> guid_for("code", "party") == guid_for("code", "party") != guid_for("code", "council")
    True
    """
    return str(uuid.uuid5(_UUID_NS, "\x1f".join(parts))).upper()


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the data model -------------------------------------------------------------------------------------------
@dataclass
class User:
    """A user (coder) of the project."""

    guid: str
    name: str = ""
    id: str = ""
    attrs: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.id or self.guid


@dataclass
class Coding:
    """One code applied to a selection: ``code`` is the code's GUID, ``user`` the GUID of who applied it."""

    guid: str
    code: str
    user: str | None = None
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)  # NoteRef elements, kept verbatim


@dataclass
class Selection:
    """A coded (or annotated) character range of a text source.

    ``start``/``end`` are Python string indices into :attr:`Source.text` (converted from the file's positions);
    when the source text is missing they are the positions as written in the file.
    """

    guid: str
    start: int
    end: int
    name: str | None = None
    description: str | None = None
    user: str | None = None
    codings: list[Coding] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)


@dataclass
class Source:
    """A source of the project. Text sources (and notes) carry ``text``; other kinds keep their element."""

    guid: str
    name: str = ""
    kind: str = "TextSource"
    text: str | None = None
    description: str | None = None
    plain_path: str | None = None
    rich_path: str | None = None
    inline: bool = False
    bom: bool = False
    selections: list[Selection] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)
    element: Element | None = None


class Span(NamedTuple):
    """A coded character range: ``document[start:end]`` was coded ``code`` by ``coder``."""

    document: str
    start: int
    end: int
    code: str
    coder: str
    selection: str


class _Positions:
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


# -- the project ----------------------------------------------------------------------------------------------
@dataclass
class Project:
    """A REFI-QDA (or QualCoder) project in memory.

    Attributes
    ----------
    name : str
        The project's name.
    codebook : Codebook
        The project's codes as a tree; ``Code.extra["guid"]`` holds each code's GUID.
    users : list of User
    sources : list of Source
        In file order; text sources have ``text`` (None when the file is missing), other kinds are kept as read.
    notes : list of Source
        The project's notes (memos), with their text.
    problems : list of str
        What could not be read (missing source files ...), also reported as one warning on reading.
    positions : str
        How the file counts positions (see :data:`POSITIONS`); used again by :func:`write_qdpx`.

    Use :meth:`coded_corpus` for training and agreement on segments, :meth:`spans` for the coded character
    ranges, :meth:`documents` for the texts, :meth:`add_suggestions` to add a model's codings, and
    :func:`write_qdpx` to write the project out.
    """

    name: str = "autocode project"
    codebook: Codebook = field(default_factory=lambda: Codebook([]))
    users: list[User] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    notes: list[Source] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)  # top-level elements autocode does not model, kept verbatim
    code_attrs: dict = field(default_factory=dict)  # code guid -> other attributes of <Code>
    code_extra: dict = field(default_factory=dict)  # code guid -> NoteRef elements of <Code>
    files: dict = field(default_factory=dict)  # archive entry -> bytes, or None: copy from ``path``
    path: Path | None = None
    problems: list[str] = field(default_factory=list)
    positions: str = "chars"
    target_codebook: Codebook | None = None
    source_folder: str = "sources"  # as the archive spells it (ATLAS.ti: "Sources")

    def __repr__(self) -> str:
        n_text = sum(1 for s in self.sources if s.kind == "TextSource")
        n_sel = sum(len(s.selections) for s in self.sources)
        return (f"Project({self.name!r}: {len(self.codebook)} codes, {len(self.users)} users, "
                f"{n_text} text sources, {n_sel} selections)")

    # -- lookups -------------------------------------------------------------------------------------------
    def code_guid(self, code_id: str) -> str:
        """The GUID of a code of :attr:`codebook` (kept from the file, or derived from the id)."""
        code = self.codebook[code_id]
        return code.extra.get("guid") or guid_for("code", code.id)

    def _code_ids(self) -> dict[str, str]:
        return {self.code_guid(c.id).upper(): c.id for c in self.codebook}

    def _user_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        seen: set[str] = set()
        for u in self.users:
            label = u.label
            if label in seen:
                label = f"{label} ({u.id or u.guid[:8]})"
            seen.add(label)
            names[u.guid.upper()] = label
        return names

    def _coder_of(self, coding: Coding, selection: Selection, names: dict[str, str]) -> str:
        guid = coding.user or selection.user
        if not guid:
            return DEFAULT_CODER
        return names.get(guid.upper(), guid)

    def document_names(self) -> dict[str, str]:
        """Source GUID -> document name, for the text sources with text: the source name without a
        ``.txt``/``.docx``... suffix, made unique."""
        out: dict[str, str] = {}
        used: set[str] = set()
        for src in self.sources:
            if src.kind != "TextSource" or src.text is None:
                continue
            name = (src.name or src.guid).strip()
            for suffix in _DOC_SUFFIXES:
                if name.lower().endswith(suffix) and len(name) > len(suffix):
                    name = name[: -len(suffix)]
                    break
            if name in used:
                name = f"{name} ({src.guid[:8]})"
            used.add(name)
            out[src.guid] = name
        return out

    @property
    def coders(self) -> list[str]:
        """Names of the users who made at least one coding, in the order of the project's users."""
        names = self._user_names()
        found: list[str] = []
        for src in self.sources:
            for sel in src.selections:
                for c in sel.codings:
                    who = self._coder_of(c, sel, names)
                    if who not in found:
                        found.append(who)
        order = {n: i for i, n in enumerate(names.values())}
        return sorted(found, key=lambda n: (order.get(n, len(order)), found.index(n)))

    def documents(self) -> list[Document]:
        """The text sources as :class:`~autocode.io.transcript.Document` (name, text), with ``path`` =
        ``"<project file>#<source GUID>"``."""
        names = self.document_names()
        by_guid = {s.guid: s for s in self.sources}
        return [Document(name, by_guid[g].text, f"{self.path}#{g}" if self.path else f"#{g}", "utf-8")
                for g, name in names.items()]

    # -- codings ---------------------------------------------------------------------------------------------
    def spans(self) -> list[Span]:
        """Every coded character range of the text sources with text, as (document, start, end, code, coder,
        selection GUID); offsets are Python indices into the document's text (:meth:`documents`)."""
        names, users, ids = self.document_names(), self._user_names(), self._code_ids()
        out = []
        for src in self.sources:
            if src.guid not in names:
                continue
            for sel in src.selections:
                for c in sel.codings:
                    out.append(Span(names[src.guid], sel.start, sel.end, ids[c.code.upper()],
                                    self._coder_of(c, sel, users), sel.guid))
        return out

    def coded_corpus(self, codebook: Codebook | None = None, *, min_overlap: float = 0.5,
                     max_chars: int | None = 200) -> CodedCorpus:
        """Segments of the text sources, coded by each user (see the module doc for the rule).

        Parameters
        ----------
        codebook : Codebook, optional
            Validate the codes against it; defaults to the codebook given to :func:`read_project`, else the
            project's own.
        min_overlap : float
            Share of a segment's (or of the selection's) characters a selection must cover to code it.
        max_chars : int or None
            Split turns longer than this into sentences, as for transcripts.

        Raises
        ------
        FormatError
            When no text source has its text.
        CodebookError
            When a code used in the project is not in ``codebook``.
        """
        from ..segment import segment_text

        if not 0 < min_overlap <= 1:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
        book = codebook or self.target_codebook or self.codebook
        names, users, ids = self.document_names(), self._user_names(), self._code_ids()
        segments: list[Segment] = []
        codings: dict[str, dict] = {c: {} for c in self.coders}
        for src in self.sources:
            if src.guid not in names:
                continue
            segs = segment_text(src.text, names[src.guid], max_chars=max_chars)
            segments.extend(segs)
            starts = [s.start for s in segs]
            per_user: dict[str, dict] = {}
            for sel in src.selections:
                for c in sel.codings:
                    code = ids[c.code.upper()]
                    if code not in book:
                        raise CodebookError(
                            f"{self.path}: the project's code {self.codebook[code].name!r} (id {code!r}) is not "
                            f"in the codebook. {book.unknown_message(code)} Add it to the codebook, or read the "
                            "project without --codebook to use its own codes."
                        )
                    coder = self._coder_of(c, sel, users)
                    mine = per_user.setdefault(coder, {})
                    for seg in _overlapping(segs, starts, sel.start, sel.end, min_overlap):
                        mine.setdefault(seg.key, set()).add(code)
            for coder, mine in per_user.items():
                col = codings.setdefault(coder, {})
                for s in segs:
                    col[s.key] = mine.get(s.key, set())
        if not segments:
            why = "; ".join(self.problems) or (
                f"its {len(names)} text sources are empty" if names else "the project has no text sources")
            raise FormatError(f"No text source of the project has text to segment: {why}.", self.path)
        return CodedCorpus(segments, {c: v for c, v in codings.items() if v}, codebook=book)

    # -- adding suggestions --------------------------------------------------------------------------------
    def add_suggestions(self, suggestions, documents: Sequence[Document] | None = None) -> Project:
        """Add pre-coded suggestions as codings of a user named after the model (``suggestions.coder``).

        Each segment with accepted codes becomes one :class:`Selection` with one :class:`Coding` per accepted
        code; its description lists the scores. Segments are placed in the source with the document's name
        (a new source when there is none) at their offsets, found by their text when the offsets do not fit.
        ``documents`` gives the full text of new sources; without it a new source is the document's segments
        joined by newlines. Returns ``self``.
        """
        coder = suggestions.coder
        user_guid = guid_for("user", coder)
        if not any(u.guid.upper() == user_guid for u in self.users):
            self.users.append(User(user_guid, coder))
        code_guids = self._merge_codebook(suggestions.codebook)
        by_doc = {name: g for g, name in self.document_names().items()}
        by_guid = {s.guid: s for s in self.sources}
        docs = {d.name: d for d in documents or ()}
        rows: dict[str, list[int]] = {}
        for i, seg in enumerate(suggestions.segments):
            rows.setdefault(seg.document, []).append(i)
        now = _now()
        for doc, idx in rows.items():
            if doc in by_doc:
                src = by_guid[by_doc[doc]]
            else:
                text = docs[doc].text.lstrip("\ufeff") if doc in docs else "\n".join(
                    suggestions.segments[i].text for i in idx)
                guid = guid_for("source", doc)
                src = Source(guid, doc, text=text, plain_path=f"internal://{guid}.txt",
                             attrs={"creatingUser": user_guid, "creationDateTime": now})
                self.sources.append(src)
                by_doc[doc], by_guid[guid] = guid, src
            cursor = 0
            for i in idx:
                seg = suggestions.segments[i]
                start, end = _locate(src.text, seg, cursor)
                cursor = end
                accepted = suggestions.codes_for(i)
                if not accepted:
                    continue
                sel_guid = guid_for("selection", coder, src.guid, seg.document, seg.segment)
                src.selections = [s for s in src.selections if s.guid.upper() != sel_guid]
                excerpt = seg.text if len(seg.text) <= 40 else seg.text[:40] + "…"
                sel = Selection(sel_guid, start, end, name=excerpt,
                                description=_score_note(suggestions, i), user=user_guid,
                                attrs={"creationDateTime": now})
                for code in accepted:
                    sel.codings.append(Coding(guid_for("coding", sel_guid, code), code_guids[code], user_guid,
                                              attrs={"creationDateTime": now}))
                src.selections.append(sel)
        return self

    def _merge_codebook(self, book: Codebook) -> dict[str, str]:
        """Map the codes of ``book`` to codes of the project (by GUID, id, then name), adding the missing
        ones; return code id of ``book`` -> GUID in the project."""
        if len(self.codebook) == 0:
            self.codebook = book
            return {c.id: self.code_guid(c.id) for c in book}
        mine = {self.code_guid(c.id).upper(): c.id for c in self.codebook}
        by_name: dict[str, list[str]] = {}
        for c in self.codebook:
            by_name.setdefault(c.name, []).append(c.id)
        out: dict[str, str] = {}
        added: list[Code] = []
        mapped: dict[str, str] = {}  # book id -> project id
        for c in sorted(book, key=lambda c: book.depth(c.id)):  # parents before their children
            guid = (c.extra.get("guid") or guid_for("code", c.id)).upper()
            if guid in mine:
                pid = mine[guid]
            elif c.id in self.codebook:
                pid = c.id
            elif len(by_name.get(c.name, [])) == 1:
                pid = by_name[c.name][0]
            else:
                pid = c.id
                parent = mapped.get(c.parent) if c.parent else None
                added.append(Code(pid, c.name, c.description, parent, c.color, dict(c.extra)))
            mapped[c.id] = pid
        if added:
            self.codebook = Codebook([*self.codebook, *added])
        for cid, pid in mapped.items():
            out[cid] = self.code_guid(pid)
        return out


def _overlapping(segs: list[Segment], starts: list[int], a: int, b: int, share: float) -> list[Segment]:
    """The segments a selection ``[a, b)`` codes under the overlap rule.

    >>> segs = [Segment("d", "1", "x" * 10, start=0, end=10), Segment("d", "2", "y" * 10, start=11, end=21)]
    >>> starts = [0, 11]
    >>> [s.segment for s in _overlapping(segs, starts, 2, 9, 0.5)]     # a short quote inside segment 1
    ['1']
    >>> [s.segment for s in _overlapping(segs, starts, 4, 21, 0.5)]    # 6 of 10 and all of segment 2
    ['1', '2']
    >>> [s.segment for s in _overlapping(segs, starts, 0, 14, 0.5)]    # 3 of 10 chars of segment 2: not it
    ['1']
    """
    if b <= a:
        return []
    out = []
    i = max(bisect_left(starts, a) - 1, 0)
    while i < len(segs) and segs[i].start < b:
        s = segs[i]
        overlap = min(s.end, b) - max(s.start, a)
        if overlap > 0 and (overlap >= share * (s.end - s.start) or overlap >= share * (b - a)):
            out.append(s)
        i += 1
    return out


def _locate(text: str, seg: Segment, cursor: int) -> tuple[int, int]:
    if seg.start is not None and seg.end is not None and text[seg.start:seg.end] == seg.text:
        return seg.start, seg.end
    at = text.find(seg.text, cursor)
    if at < 0:
        at = text.find(seg.text)
    if at < 0 or not seg.text:
        raise AutocodeError(
            f"Segment {seg.document}/{seg.segment} ({seg.text[:30]!r}) is not in the text of document "
            f"{seg.document!r}. Pass the transcripts the segments came from (documents=...)."
        )
    return at, at + len(seg.text)


def _score_note(sug, i: int) -> str:
    book = sug.codebook
    lines = [f"autocode suggestion ({sug.coder}), segment {sug.segments[i].segment}:"]
    for code, score, accepted in sug.top(i, 5):
        j = sug.codes.index(code)
        cut = sug.min_score if sug.min_score is not None else float(sug.thresholds[j])
        state = "suggested" if accepted else "below threshold"
        lines.append(f"{book.label(code)}: score {score:.3f} (threshold {cut:.3f}, {state})")
    return "\n".join(lines)


# -- reading ------------------------------------------------------------------------------------------------
def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) and tag.startswith("{") else tag


def _strip_namespaces(root: Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str):
            el.tag = _local(el.tag)


def _where(el: Element) -> str:
    bits = [el.tag]
    for key in ("name", "guid", "targetGUID"):
        if el.get(key):
            bits.append(f'{key}="{el.get(key)}"')
    return "<" + " ".join(bits) + ">"


def _need(el: Element, attr: str, path) -> str:
    value = el.get(attr)
    if value is None or not value.strip():
        raise FormatError(f"The element has no {attr!r} attribute, which REFI-QDA requires.", path, _where(el))
    return value.strip()


def _int_attr(el: Element, attr: str, path) -> int:
    raw = _need(el, attr, path)
    try:
        return int(raw)
    except ValueError:
        raise FormatError(f"{attr} must be a whole number, found {raw!r}.", path, _where(el)) from None


class _Reader:
    """Reads source files of a project from its archive (or from the folder of a bare ``.qde``)."""

    def __init__(self, path: Path, zip_: SafeZip | None):
        self.path = path
        self.zip = zip_

    def member(self, ref: str, el: Element) -> str:
        """The archive entry a ``plainTextPath`` names; raise when it points outside the archive."""
        ref = ref.strip()
        low = ref.lower()
        if low.startswith("internal://"):
            rel = ref[len("internal://"):]
        elif "://" in ref or ref.startswith(("/", "\\")) or (len(ref) > 1 and ref[1] == ":"):
            raise FormatError(
                f"The source's path {ref!r} points outside the project archive (absolute:// or relative:// "
                "paths name files on the exporting computer). autocode reads sources only from inside the "
                ".qdpx: export the project with its sources embedded.",
                self.path,
                _where(el),
            )
        else:
            rel = ref  # the 'qc' tool writes bare file names, relative to sources/
        name = safe_member_name(rel)
        if name is None or name.startswith("/"):
            raise FormatError(f"The source's path {ref!r} leaves the archive (path traversal); autocode refuses it.",
                              self.path, _where(el))
        return "sources/" + name

    def read(self, member: str) -> bytes | None:
        if self.zip is not None:
            found = self.zip.find(member)
            return None if found is None else self.zip.read(found)
        folder = self.path.parent.resolve()
        for base in (member, "S" + member[1:]):  # sources/ or Sources/
            candidate = (folder / base).resolve()
            if folder not in candidate.parents:
                return None
            if candidate.is_file():
                return candidate.read_bytes()
        return None


def read_project(path: str | Path, codebook: Codebook | None = None, *, positions: str = "auto",
                 limits: Limits | None = None) -> Project:
    """Read a REFI-QDA project (``.qdpx``, bare ``.qde``), codebook (``.qdc``) or QualCoder project
    (``.qda`` folder or its ``data.qda``, ``.sqlite``, ``.db``).

    Parameters
    ----------
    path : path
        The file.
    codebook : Codebook, optional
        Give project codes the ids of the codebook codes with the same GUID, id or name.
    positions : str
        How the file counts positions (:data:`POSITIONS`), or ``"auto"``: REFI's ``"chars"`` unless the
        selections' names (excerpts of the selected text, as ATLAS.ti writes them) match the text better under
        another convention. The choice is kept in :attr:`Project.positions` and used again for writing.
    limits : Limits, optional
        Caps on archive entries (:class:`autocode.io._safezip.Limits`).

    Raises
    ------
    FormatError
        For a file that is not a project, unsafe XML or archive entries, a malformed element (named in
        the message), or a source path outside the archive.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".qda", ".sqlite", ".db", ".sqlite3"):
        from .qualcoder import read_qualcoder

        return read_qualcoder(path, codebook=codebook)
    if not path.exists():
        raise FormatError("File not found. Check the path.", path)
    if positions not in (*POSITIONS, "auto"):
        raise ValueError(f"positions must be 'auto' or one of {POSITIONS}, got {positions!r}")
    if suffix == ".qdc":
        root = parse_xml(path.read_bytes(), path)
        _strip_namespaces(root)
        if root.tag != "CodeBook":
            raise FormatError(f"Expected a <CodeBook> root element ({NS_CODEBOOK}), found <{root.tag}>.", path,
                              f"<{root.tag}>")
        project = Project(name=path.stem, path=path, positions="chars")
        _read_codes(root, project, codebook, path)
        return project
    if suffix == ".qde":
        return _parse_project(parse_xml(path.read_bytes(), path), _Reader(path, None), path, codebook, positions)
    with SafeZip(path, limits) as zf:
        qde = [n for n in zf.names if "/" not in n and n.lower().endswith(".qde")]
        if not qde:
            nested = [n for n in zf.names if n.lower().endswith(".qde")]
            hint = (f" It has {nested[0]!r}: REFI-QDA puts project.qde at the top of the archive, so zip the "
                    "contents of that folder, not the folder." if nested else
                    " Is it a REFI-QDA .qdpx export?")
            raise FormatError("The archive has no project.qde entry." + hint, path)
        name = next((n for n in qde if n.lower() == "project.qde"), qde[0])
        root = parse_xml(zf.read(name), path, f"entry {name!r}")
        project = _parse_project(root, _Reader(path, zf), path, codebook, positions)
        reader = _Reader(path, None)
        used = {zf.find(reader.member(s.plain_path, Element(s.kind)))
                for s in [*project.sources, *project.notes] if s.text is not None and s.plain_path and not s.inline}
        project.files = {n: None for n in zf.names if n != name and n not in used}
        project.source_folder = next((n.split("/", 1)[0] for n in zf.names if n.lower().startswith("sources/")),
                                     "sources")
    return project


def _parse_project(root: Element, reader: _Reader, path: Path, codebook, positions: str) -> Project:
    _strip_namespaces(root)
    if root.tag != "Project":
        raise FormatError(f"Expected a <Project> root element ({NS}), found <{root.tag}>.", path,
                          f"<{root.tag}>")
    project = Project(name=root.get("name", path.stem), path=path, positions=positions,
                      attrs=dict(root.attrib), target_codebook=codebook)
    for child in root:
        tag = child.tag
        if tag == "Users":
            for u in child:
                if u.tag == "User":
                    project.users.append(User(_need(u, "guid", path), u.get("name", ""), u.get("id", ""),
                                              {k: v for k, v in u.attrib.items() if k not in ("guid", "name", "id")}))
        elif tag == "CodeBook":
            _read_codes(child, project, codebook, path)
        elif tag == "Sources":
            for s in child:
                if s.tag == "TextSource":
                    project.sources.append(_read_text_source(s, reader, project, path))
                elif isinstance(s.tag, str):
                    project.sources.append(Source(_need(s, "guid", path), s.get("name", ""), kind=s.tag,
                                                  element=s))
        elif tag == "Notes":
            for n in child:
                if n.tag == "Note":
                    project.notes.append(_read_text_source(n, reader, project, path))
        elif tag in _SECTIONS:
            project.sections.setdefault(tag, []).append(child)
    _convert_positions(project)
    code_ids = project._code_ids()
    for src in project.sources:
        for sel in src.selections:
            for c in sel.codings:
                if c.code.upper() not in code_ids:
                    raise FormatError(
                        f"The coding refers to code {c.code}, which is not in the project's codebook.", path,
                        f'<Coding guid="{c.guid}"> in <PlainTextSelection guid="{sel.guid}">',
                    )
    _warn_problems(project)
    return project


def _squash(text: str) -> str:
    return " ".join(text.split())


def _excerpt(name: str | None) -> str | None:
    """The start of the selected text, when a selection's name is an excerpt (as ATLAS.ti writes them)."""
    key = _squash((name or "").rstrip("…").removesuffix("...").strip())
    return key if len(key) >= 3 else None


def _guess_positions(project: Project) -> str:
    """The way of counting under which the most selection names match the text they select (ties: chars)."""
    scores = dict.fromkeys(POSITIONS, 0)
    for src in [*project.sources, *project.notes]:
        if src.text is None or not src.selections:
            continue
        for mode in POSITIONS:
            conv = _Positions(src.text, mode)
            for sel in src.selections:
                key = _excerpt(sel.name)
                if key and sel.end <= conv.length and \
                        _squash(src.text[conv.index(sel.start):conv.index(sel.end)]).startswith(key):
                    scores[mode] += 1
    best = max(POSITIONS, key=lambda m: (scores[m], m == "chars"))
    return best if scores[best] > scores["chars"] else "chars"


def _convert_positions(project: Project) -> None:
    """Turn the file's positions of every text selection into Python indices (choosing the convention first
    when ``project.positions`` is ``"auto"``); selections past the end of the text are cut and reported."""
    if project.positions == "auto":
        project.positions = _guess_positions(project)
    for src in [*project.sources, *project.notes]:
        if src.text is None:
            continue
        conv = _Positions(src.text, project.positions)
        for sel in src.selections:
            start, end = sel.start, sel.end
            if end > conv.length:
                project.problems.append(
                    f"{src.kind} {src.name or src.guid!r}: selection {sel.guid} ends at {end}, after the end of "
                    f"the text ({conv.length}); cut to the text (are positions counted differently?)")
                end = conv.length
                start = min(start, end)
            sel.start, sel.end = conv.index(start), conv.index(end)


def _warn_problems(project: Project) -> None:
    if project.problems:
        shown = "; ".join(project.problems[:3]) + (f"; and {len(project.problems) - 3} more"
                                                    if len(project.problems) > 3 else "")
        warnings.warn(f"{project.path}: {shown} (see Project.problems)", AutocodeWarning, stacklevel=4)


def _read_codes(codebook_el: Element, project: Project, codebook: Codebook | None, path: Path) -> None:
    raw: list[tuple[Element, str | None]] = []

    def walk(parent_el: Element, parent_guid: str | None):
        for el in parent_el:
            if el.tag == "Code":
                _need(el, "guid", path)
                if el.get("name") is None:
                    raise FormatError("The code has no 'name' attribute, which REFI-QDA requires.", path, _where(el))
                raw.append((el, parent_guid))
                walk(el, el.get("guid").strip())

    for codes in codebook_el:
        if codes.tag == "Codes":
            walk(codes, None)
    guids = [el.get("guid").strip() for el, _ in raw]
    if len({g.upper() for g in guids}) != len(guids):
        dup = next(g for g in guids if [x.upper() for x in guids].count(g.upper()) > 1)
        raise FormatError(f"Two codes share the GUID {dup}.", path, f'<Code guid="{dup}">')
    ids = code_ids([(el.get("guid").strip(), el.get("name", ""), parent) for el, parent in raw], codebook)
    codes = []
    for el, parent in raw:
        g = el.get("guid").strip()
        desc = el.find("Description")
        extra = {"guid": g}
        if el.get("isCodable", "true").strip().lower() in ("false", "0"):
            extra["isCodable"] = False
        codes.append(Code(ids[g], el.get("name") or ids[g], (desc.text or "") if desc is not None else "",
                          ids[parent] if parent else None, el.get("color"), extra))
        project.code_attrs[g.upper()] = {k: v for k, v in el.attrib.items()
                                         if k not in ("guid", "name", "isCodable", "color")}
        notes = [copy.deepcopy(x) for x in el if x.tag not in ("Code", "Description")]
        if notes:
            project.code_extra[g.upper()] = notes
    project.codebook = Codebook(codes)


def _clean_id(name: str | None) -> str:
    return re.sub(r"[;；]", ",", (name or "").strip())


def code_ids(entries: Sequence[tuple[str, str, str | None]], codebook: Codebook | None = None) -> dict[str, str]:
    """Ids for the codes of a QDA project, given as (GUID, name, parent GUID) in tree order.

    The id is the name (``;`` replaced by ``,``); where names repeat, the path of names from the top
    (``"parent/child"``); where paths repeat too, the path and the start of the GUID. With a codebook, a code
    takes the id of the codebook code with the same GUID (``extra["guid"]``, or derived from its id), id or
    name (when that name is unique in the codebook).

    >>> code_ids([("G1", "服务", None), ("G2", "老人", "G1"), ("G3", "服务", "G2")])
    {'G1': '服务', 'G2': '老人', 'G3': '服务/老人/服务'}
    >>> code_ids([("G1", "服务", None)], Codebook([Code("service", "服务")]))
    {'G1': 'service'}
    """
    names = {g: _clean_id(n) for g, n, _ in entries}
    parents = {g: p for g, _, p in entries}
    raw_names = {g: (n or "").strip() for g, n, _ in entries}

    def path_of(g):
        chain = [names[g]]
        while parents.get(g) is not None:
            g = parents[g]
            chain.append(names[g])
        return "/".join(reversed(chain))

    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    book_by_guid: dict[str, str] = {}
    book_by_name: dict[str, list[str]] = {}
    for c in codebook or ():
        book_by_guid[(c.extra.get("guid") or guid_for("code", c.id)).upper()] = c.id
        book_by_name.setdefault(c.name, []).append(c.id)
    ids: dict[str, str] = {}
    used: set[str] = set()
    for g, _, _ in entries:
        derived = names[g] if counts[names[g]] == 1 else path_of(g)
        if not derived or derived in used:
            derived = f"{derived or 'code'}#{g.strip('{}')[:8]}"
        choice = derived
        if codebook is not None:
            if g.upper() in book_by_guid:
                choice = book_by_guid[g.upper()]
            elif derived in codebook:
                choice = derived
            elif len(book_by_name.get(raw_names[g], [])) == 1:
                choice = book_by_name[raw_names[g]][0]
            if choice in used:
                choice = derived if derived not in used else f"{derived}#{g.strip('{}')[:8]}"
        ids[g] = choice
        used.add(choice)
    return ids


def _read_text_source(el: Element, reader: _Reader, project: Project, path: Path) -> Source:
    guid = _need(el, "guid", path)
    src = Source(guid, el.get("name", ""), kind=el.tag, plain_path=el.get("plainTextPath"),
                 rich_path=el.get("richTextPath"),
                 attrs={k: v for k, v in el.attrib.items()
                        if k not in ("guid", "name", "plainTextPath", "richTextPath")})
    content = el.find("PlainTextContent")
    label = f"{el.tag} {src.name or guid!r}"
    if content is not None:
        src.text, src.inline = content.text or "", True
    elif src.plain_path:
        member = reader.member(src.plain_path, el)
        data = reader.read(member)
        if data is None:
            project.problems.append(f"{label}: its text {member} is missing (codings kept, not usable)")
        else:
            src.bom = data.startswith(_UTF8_BOM)
            src.text, _ = decode_bytes(data, path)
    elif el.tag == "TextSource":
        project.problems.append(f"{label}: it has neither plainTextPath nor PlainTextContent")
    if src.text is not None and src.text.startswith("\ufeff"):
        src.text, src.bom = src.text[1:], True
    desc = el.find("Description")
    src.description = (desc.text or "") if desc is not None else None
    for child in el:
        if child.tag == "PlainTextSelection":
            src.selections.append(_read_selection(child, path))
        elif child.tag not in ("Description", "PlainTextContent"):
            src.extra.append(child)
    return src


def _read_selection(el: Element, path: Path) -> Selection:
    """A selection with the file's positions; :func:`_convert_positions` turns them into indices."""
    guid = _need(el, "guid", path)
    start, end = _int_attr(el, "startPosition", path), _int_attr(el, "endPosition", path)
    if start < 0 or end < start:
        raise FormatError(f"startPosition {start} and endPosition {end} do not make a range.", path, _where(el))
    desc = el.find("Description")
    sel = Selection(guid, start, end, el.get("name"), (desc.text or "") if desc is not None else None,
                    el.get("creatingUser"),
                    attrs={k: v for k, v in el.attrib.items()
                           if k not in ("guid", "name", "startPosition", "endPosition", "creatingUser")})
    for child in el:
        if child.tag == "Coding":
            ref = child.find("CodeRef")
            if ref is None:
                raise FormatError("The coding has no <CodeRef>.", path, _where(child))
            sel.codings.append(Coding(_need(child, "guid", path), _need(ref, "targetGUID", path),
                                      child.get("creatingUser"),
                                      {k: v for k, v in child.attrib.items() if k not in ("guid", "creatingUser")},
                                      [x for x in child if x.tag != "CodeRef"]))
        elif child.tag != "Description":
            sel.extra.append(child)
    return sel


def read_qdc(path: str | Path) -> Codebook:
    """Read the codebook of a ``.qdc`` (or of any REFI project file)."""
    return read_project(path).codebook


# -- writing ------------------------------------------------------------------------------------------------
def _clean(value) -> str:
    return _BAD_XML_CHARS.sub("", str(value))


def _el(parent: Element | None, tag: str, attrs: dict | None = None, text: str | None = None) -> Element:
    qa = {k: _clean(v) for k, v in (attrs or {}).items() if v is not None}
    el = Element(tag, qa) if parent is None else SubElement(parent, tag, qa)
    if text is not None:
        el.text = _clean(text)
    return el


def _qualified(el: Element) -> Element:
    """A copy of a kept element (its tags are unqualified: the root's ``xmlns`` gives their namespace)."""
    return copy.deepcopy(el)


def _code_elements(parent: Element, project: Project) -> None:
    book = project.codebook

    def add(into: Element, cid: str):
        code = book[cid]
        guid = project.code_guid(cid)
        attrs = {"guid": guid, "name": code.name,
                 "isCodable": "false" if code.extra.get("isCodable") is False else "true"}
        if code.color and re.fullmatch(r"#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})", code.color):
            attrs["color"] = code.color
        attrs.update(project.code_attrs.get(guid.upper(), {}))
        el = SubElement(into, "Code", {k: _clean(v) for k, v in attrs.items()})
        if code.description:
            SubElement(el, "Description").text = _clean(code.description)
        for x in project.code_extra.get(guid.upper(), []):
            el.append(_qualified(x))
        for child in book.children(cid):
            add(el, child)

    codes = SubElement(parent, "Codes")
    for root in book.roots:
        add(codes, root)


def _text_source_element(parent: Element, src: Source, project: Project, files: dict) -> None:
    attrs = {"guid": src.guid, "name": src.name or None}
    if src.text is not None and not src.inline:
        attrs["plainTextPath"] = src.plain_path or f"internal://{src.guid}.txt"
        member = _Reader(Path("x"), None).member(attrs["plainTextPath"], Element(src.kind))
        member = project.source_folder + member[len("sources"):]
        files[member] = (_UTF8_BOM if src.bom else b"") + src.text.encode("utf-8")
    elif src.plain_path:
        attrs["plainTextPath"] = src.plain_path
    attrs["richTextPath"] = src.rich_path
    attrs.update(src.attrs)
    el = _el(parent, src.kind, attrs)
    if src.description is not None:
        _el(el, "Description", text=src.description)
    if src.inline:
        _el(el, "PlainTextContent", text=src.text)
    conv = _Positions(src.text, project.positions) if src.text is not None else None
    for sel in src.selections:
        start, end = (sel.start, sel.end) if conv is None else (conv.position(sel.start), conv.position(sel.end))
        sattrs = {"guid": sel.guid, "name": sel.name, "startPosition": str(start), "endPosition": str(end),
                  "creatingUser": sel.user}
        sattrs.update(sel.attrs)
        s_el = _el(el, "PlainTextSelection", sattrs)
        if sel.description is not None:
            _el(s_el, "Description", text=sel.description)
        for c in sel.codings:
            c_el = _el(s_el, "Coding", {"guid": c.guid, "creatingUser": c.user, **c.attrs})
            _el(c_el, "CodeRef", {"targetGUID": c.code})
            for x in c.extra:
                c_el.append(_qualified(x))
        for x in sel.extra:
            s_el.append(_qualified(x))
    for x in src.extra:
        el.append(_qualified(x))


def project_xml(project: Project) -> tuple[bytes, dict[str, bytes]]:
    """The ``project.qde`` XML of a project and the source files it refers to (archive entry -> bytes)."""
    files: dict[str, bytes] = {}
    attrs = {"name": project.name, **{k: v for k, v in project.attrs.items() if k != "name"}}
    attrs.setdefault("origin", "autocode")
    root = _el(None, "Project", {"xmlns": NS, **attrs})
    if project.users:
        users = _el(root, "Users")
        for u in project.users:
            _el(users, "User", {"guid": u.guid, "name": u.name or None, "id": u.id or None, **u.attrs})
    if len(project.codebook):
        _code_elements(_el(root, "CodeBook"), project)
    for tag in ("Variables", "Cases"):
        for x in project.sections.get(tag, []):
            root.append(_qualified(x))
    if project.sources:
        sources = _el(root, "Sources")
        for src in project.sources:
            if src.element is not None:
                sources.append(_qualified(src.element))
            elif src.kind == "TextSource":
                _text_source_element(sources, src, project, files)
    if project.notes:
        notes = _el(root, "Notes")
        for n in project.notes:
            _text_source_element(notes, n, project, files)
    for tag in ("Links", "Sets", "Graphs", "Description", "NoteRef"):
        for x in project.sections.get(tag, []):
            root.append(_qualified(x))
    return _serialize(root), files


def _serialize(root: Element) -> bytes:
    """XML bytes; carriage returns in text are written as ``&#13;`` so that parsing gives them back."""
    texts = [x.text for x in root.iter() if x.text and "\r" in x.text]
    mark = None
    if texts:
        joined = "".join(x.text or "" for x in root.iter())
        mark = next(chr(c) for c in range(0xE000, 0xF8FF) if chr(c) not in joined)
        for x in root.iter():
            if x.text and "\r" in x.text:
                x.text = x.text.replace("\r", mark)
    indent(root, "  ")
    data = ('<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode")).encode("utf-8")
    if mark:
        data = data.replace(mark.encode("utf-8"), b"&#13;")
    return data


def write_qdpx(path: str | Path, project, *, documents: Sequence[Document] | None = None,
               positions: str | None = None) -> Path:
    """Write a project as a ``.qdpx`` archive (``project.qde`` and ``sources/``).

    ``project`` is a :class:`Project` (e.g. from :func:`read_project`: everything read is written back) or
    :class:`~autocode.Suggestions` (then as :func:`write_precoded_qdpx`). ``positions`` overrides the
    project's way of counting positions (:data:`POSITIONS`).

    Text sources are written as UTF-8 files under ``sources/`` (with a BOM where the original had one);
    other entries of the archive the project was read from (rich text, pictures, PDFs) are copied unchanged.
    A project read from a bare ``.qde`` keeps only the plain text of its sources.
    """
    from ..suggestion import Suggestions

    if isinstance(project, Suggestions):
        write_precoded_qdpx(path, project, documents=documents, positions=positions or "chars")
        return Path(path)
    import os
    import tempfile
    import zipfile

    path = Path(path)
    if positions is not None:
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        project = copy.copy(project)
        project.positions = positions
    qde, files = project_xml(project)
    keep: dict[str, bytes] = {}
    copy_from = [n for n, data in project.files.items() if data is None and n not in files]
    if copy_from and project.path is not None and Path(project.path).suffix.lower() == ".qdpx" \
            and Path(project.path).exists():
        with SafeZip(project.path) as zf:
            for n in copy_from:
                found = zf.find(n)
                if found is not None:
                    keep[n] = zf.read(found)
    keep.update({n: data for n, data in project.files.items() if data is not None and n not in files})
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".autocode-", suffix=".qdpx", dir=path.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("project.qde", qde)
            for name, data in {**keep, **files}.items():
                zf.writestr(name, data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes owner-only files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_precoded_qdpx(path: str | Path, suggestions, documents: Sequence[Document] | None = None, *,
                        positions: str = "chars") -> None:
    """Write pre-coded suggestions as a REFI-QDA project for review in a QDA tool.

    The project holds the codebook, one text source per document and, for every segment with accepted
    suggestions, a selection coded by a user named after the model (``suggestions.coder``), whose
    description lists the scores. In the QDA tool, filter by that user to review, accept or delete.

    When every document comes from one ``.qdpx`` project (``Document.path`` = ``"project.qdpx#GUID"``, as
    :meth:`Project.documents` and ``autocode precode project.qdpx`` give), the suggestions are added to a copy
    of that project, so that its codes and sources keep their GUIDs and the reviewer's tool can merge them.
    """
    base = _base_project(documents)
    project = base if base is not None else Project(
        name=f"autocode pre-coding ({suggestions.coder})",
        attrs={"origin": "autocode", "creationDateTime": _now()}, positions=positions)
    project.positions = positions
    project.add_suggestions(suggestions, documents)
    write_qdpx(path, project)


def _base_project(documents) -> Project | None:
    if not documents:
        return None
    origins = {str(d.path).rsplit("#", 1)[0] for d in documents if d.path and "#" in str(d.path)}
    if len(origins) != 1 or not all(d.path and "#" in str(d.path) for d in documents):
        return None
    origin = Path(origins.pop())
    if origin.suffix.lower() != ".qdpx" or not origin.exists():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)  # already reported when the documents were read
        return read_project(origin)


def write_qdc(path: str | Path, codebook: Codebook) -> Path:
    """Write a codebook as a REFI-QDA ``.qdc`` file."""
    path = Path(path)
    project = Project(codebook=codebook)
    root = Element("CodeBook", {"xmlns": NS_CODEBOOK, "origin": "autocode"})
    _code_elements(root, project)
    path.write_bytes(_serialize(root))
    return path

