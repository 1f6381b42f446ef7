"""Coding rules: keywords, phrases and regular expressions per code, applied as suggestions (NVivo's "auto code",
ATLAS.ti's and MAXQDA's auto-coding of search hits) before a single interview is coded by hand.

A rule names a code, a pattern and what kind of pattern it is:

``keyword``
    any of the words, separated by spaces, commas or 、 (``党支部 党员、书记``);
``phrase``
    the text exactly as written;
``regex``
    a Python regular expression.

Text and pattern are compared after the same normalisation (full-width to half-width, lower case,
Traditional to Simplified characters), so ``黨支部`` matches ``党支部`` and ``ＡＩ`` matches ``ai``. A rule may be
limited to one speaker: a role (``interviewer``, ``participant``) or a speaker label as it stands in the
transcript (``B``, ``受访者``), and to the segments under a section heading (NVivo's code by heading): the
heading pattern is looked for in the segment's section, the headings above it (``一、基本情况 / （一）家庭``, see
:mod:`autocode.section`), normalised alike; ``re:`` before it makes it a regular expression. A rule with a
heading and no pattern codes every segment under that heading.

Rules come from a table (``code,pattern,kind,speaker,heading``: CSV/TSV) or from a ``rules`` column of the
codebook (patterns separated by ``;``; ``re:`` before a pattern makes it a regular expression, quotes ``"..."``
a phrase, ``heading:`` a rule coding every segment under a heading).

>>> from autocode.codebook import Code, Codebook
>>> from autocode.corpus import Segment
>>> book = Codebook([Code("party", "组织嵌入"), Code("vote", "选举")])
>>> rules = RuleSet([Rule("party", "党支部 党员"), Rule("vote", r"投票|选举", kind="regex")], book)
>>> matches = rules.apply([Segment("D", "1", "黨支部帶領大家投票。", "受访者")])
>>> matches.codes_for(0)
['party', 'vote']
>>> matches.evidence(0)
{'party': ['黨支部'], 'vote': ['投票']}
>>> matches.evidence_text(0)
'party: 黨支部 [党支部 党员] | vote: 投票 [re:投票|选举]'
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .codebook import Codebook
from .corpus import Segment, as_segments
from .exceptions import CodebookError, FormatError
from .segment import speaker_role
from .suggestion import Suggestions

__all__ = ["KINDS", "Rule", "RuleMatches", "RuleSet", "read_rules"]

KINDS = ("keyword", "phrase", "regex")
RULES_CODER = "autocode-rules"
_WORD_SEP = re.compile(r"[\s,，、;；]+")


@lru_cache(maxsize=65536)
def _fold_char(ch: str) -> str:
    from .text import normalize

    return normalize(unicodedata.normalize("NFKC", ch)) or ch


def _fold(text: str) -> tuple[str, list[int]]:
    """The normalised text, character by character, and for each of its characters the index of the original
    character it came from (so that a match can be shown as the original text)."""
    out, origin = [], []
    for i, ch in enumerate(text):
        folded = _fold_char(ch)
        out.append(folded)
        origin.extend([i] * len(folded))
    return "".join(out), origin


@dataclass(frozen=True)
class Rule:
    """One pattern for one code: see the module documentation.

    Parameters
    ----------
    code : str
        A code id of the codebook.
    pattern : str
    kind : {"keyword", "phrase", "regex"}
    speaker : str, optional
        Only turns of this role (``interviewer``/``participant``) or speaker label.
    heading : str, optional
        Only segments under a heading that contains this (``re:...``: that matches this regular expression).
        With an empty ``pattern``, every segment under the heading matches.
    """

    code: str
    pattern: str
    kind: str = "keyword"
    speaker: str | None = None
    heading: str | None = None

    def compile(self) -> re.Pattern | None:
        """The rule as a regular expression over normalised text (``None``: a heading rule without a pattern,
        which matches the whole segment)."""
        if self.kind not in KINDS:
            raise CodebookError(f"Rule for code {self.code!r}: kind must be one of {', '.join(KINDS)}; got "
                                f"{self.kind!r}.")
        if not self.pattern.strip():
            if self.heading and self.heading.strip():
                return None
            raise CodebookError(f"Rule for code {self.code!r} has an empty pattern.")
        if self.kind == "regex":
            try:
                return re.compile(_fold(self.pattern)[0])
            except re.error as err:
                raise CodebookError(f"Rule for code {self.code!r}: {self.pattern!r} is not a valid regular "
                                    f"expression ({err}).") from None
        if self.kind == "phrase":
            return re.compile(re.escape(_fold(self.pattern.strip())[0]))
        words = sorted({_fold(w)[0] for w in _WORD_SEP.split(self.pattern) if w}, key=len, reverse=True)
        return re.compile("|".join(map(re.escape, words)))

    def compile_heading(self) -> re.Pattern | None:
        """The heading condition as a regular expression over the normalised section (``None``: no heading)."""
        if not self.heading or not self.heading.strip():
            return None
        head = self.heading.strip()
        if head.startswith("re:"):
            try:
                return re.compile(_fold(head[3:].strip())[0])
            except re.error as err:
                raise CodebookError(f"Rule for code {self.code!r}: heading {head!r} is not a valid regular "
                                    f"expression ({err}).") from None
        return re.compile(re.escape(_fold(head)[0]))

    def describe(self) -> str:
        """The rule in a few characters, as its evidence names it: the pattern (``re:`` for a regular
        expression, quotes for a phrase), the speaker after ``@``, the heading after ``§``."""
        out = {"keyword": self.pattern, "phrase": f'"{self.pattern}"', "regex": f"re:{self.pattern}"}[self.kind] \
            if self.pattern.strip() else ""
        if self.speaker:
            out += f" @{self.speaker}"
        if self.heading:
            out += f" §{self.heading.strip()}"
        return out.strip()

    def applies_to(self, segment: Segment) -> bool:
        if not self.speaker:
            return True
        if self.speaker in ("interviewer", "participant"):
            role = segment.speaker if segment.speaker in ("interviewer", "participant") else \
                speaker_role(segment.speaker)
            return role == self.speaker
        return segment.speaker == self.speaker


class RuleSet:
    """Rules checked against a codebook, ready to apply.

    Parameters
    ----------
    rules : iterable of Rule
    codebook : Codebook
        Every rule's code must be in it (a code name is accepted where it is unambiguous).
    """

    def __init__(self, rules: Iterable[Rule], codebook: Codebook):
        self.codebook = codebook
        self.rules = [self._checked(r) for r in rules]
        self._compiled = [(r.compile(), r.compile_heading()) for r in self.rules]

    def _checked(self, rule: Rule) -> Rule:
        if rule.code in self.codebook:
            return rule
        by_name = [c.id for c in self.codebook if c.name == rule.code]
        if len(by_name) == 1:
            return Rule(by_name[0], rule.pattern, rule.kind, rule.speaker, rule.heading)
        raise CodebookError(f"Rule for {rule.code!r}: {self.codebook.unknown_message(rule.code)}")

    @classmethod
    def from_codebook_csv(cls, path: str | Path, codebook: Codebook | None = None, *,
                          encoding: str | None = None) -> RuleSet:
        """The ``rules`` column of a codebook CSV (patterns separated by ``;``)."""
        book = codebook or Codebook.read_csv(path, encoding=encoding)
        rows = _table_rows(path, encoding)
        rules = []
        for rowno, row in rows:
            cid, cell = (row.get("id") or "").strip(), (row.get("rules") or "").strip()
            for part in filter(None, (p.strip() for p in re.split(r"[;；]", cell))):
                if part.startswith("re:"):
                    rules.append(Rule(cid, part[3:].strip(), "regex"))
                elif part.lower().startswith(("heading:", "heading：")):
                    rules.append(Rule(cid, "", "keyword", heading=part[8:].strip()))
                elif len(part) > 1 and (part[0], part[-1]) in (('"', '"'), ("'", "'"), ("“", "”")):
                    rules.append(Rule(cid, part[1:-1], "phrase"))
                else:
                    rules.append(Rule(cid, part, "keyword"))
            if cell and not cid:
                raise FormatError("A row with rules has no code id.", path, f"row {rowno}")
        return cls(rules, book)

    def apply(self, segments) -> RuleMatches:
        """Match every rule against every segment."""
        segs = as_segments(segments)
        codes = list(dict.fromkeys(r.code for r in self.rules))
        col = {c: j for j, c in enumerate(codes)}
        hits: list[dict[str, list[str]]] = []
        by_rule: list[list[tuple[int, str]]] = []
        for s in segs:
            folded, origin = _fold(s.text)
            section = _fold(s.section)[0] if s.section else ""
            found: dict[str, list[str]] = {}
            fired: list[tuple[int, str]] = []
            for k, (rule, (rx, head)) in enumerate(zip(self.rules, self._compiled)):
                if not rule.applies_to(s) or (head is not None and not head.search(section)):
                    continue
                texts = [s.section] if rx is None else [
                    s.text[origin[m.start()]: origin[m.end() - 1] + 1] for m in rx.finditer(folded)
                    if m.end() > m.start()]
                for text in texts:
                    seen = found.setdefault(rule.code, [])
                    if text not in seen:
                        seen.append(text)
                    if (k, text) not in fired:
                        fired.append((k, text))
            hits.append(found)
            by_rule.append(fired)
        matched = np.zeros((len(segs), len(codes)), dtype=bool)
        for i, found in enumerate(hits):
            for c in found:
                matched[i, col[c]] = True
        return RuleMatches(segs, codes, matched, hits, self.codebook, [
            [(self.rules[k], text) for k, text in fired] for fired in by_rule])

    def __len__(self) -> int:
        return len(self.rules)

    def __repr__(self) -> str:
        return f"RuleSet({len(self.rules)} rules for {len({r.code for r in self.rules})} codes)"


@dataclass
class RuleMatches:
    """Which codes' rules matched each segment, and the matching text.

    Attributes
    ----------
    segments : list of Segment
    codes : list of str
        The codes that have rules (columns of ``matched``).
    matched : ndarray of bool (segments x codes)
    hits : list of dict
        Per segment: code -> the matching passages, as written in the segment (for a heading rule without a
        pattern, the segment's section).
    fired : list of list
        Per segment: (rule, passage) for every rule that matched, in rule order.
    """

    segments: list[Segment]
    codes: list[str]
    matched: np.ndarray
    hits: list[dict]
    codebook: Codebook
    fired: list[list[tuple[Rule, str]]] | None = None

    @classmethod
    def concat(cls, parts: Sequence[RuleMatches]) -> RuleMatches:
        """The matches of consecutive batches of segments as one (the same rules)."""
        first = parts[0]
        fired = None if any(p.fired is None for p in parts) else [f for p in parts for f in p.fired]
        return cls([s for p in parts for s in p.segments], first.codes, np.vstack([p.matched for p in parts]),
                   [h for p in parts for h in p.hits], first.codebook, fired)

    def codes_for(self, i: int) -> list[str]:
        return [c for c, m in zip(self.codes, self.matched[i]) if m]

    def evidence(self, i: int) -> dict[str, list[str]]:
        return dict(self.hits[i])

    def evidence_text(self, i: int) -> str:
        """The rules that matched segment ``i`` and what they matched, as one text:
        ``code: passage、passage [rule] | ...``, a rule's passages together."""
        parts: dict[tuple[str, str], list[str]] = {}
        for rule, text in (self.fired or [[]] * len(self.segments))[i]:
            parts.setdefault((rule.code, rule.describe()), []).append(text)
        return " | ".join(f"{code}: {'、'.join(texts)} [{rule}]" for (code, rule), texts in parts.items())

    def suggestions(self, coder: str = RULES_CODER) -> Suggestions:
        """As pre-coding output: a score of 1 where a rule matched and 0 elsewhere (a match, not a probability),
        every input segment present."""
        scores = self.matched.astype(float)
        return Suggestions(self.segments, self.codes, scores, np.full(len(self.codes), 0.5), self.codebook,
                           coder=coder, rules=self)


def _table_rows(path: str | Path, encoding: str | None) -> list[tuple[int, dict]]:
    from .io.transcript import decode_bytes  # lazy: autocode.io imports the codebook

    path = Path(path)
    if not path.is_file():
        raise FormatError("Rules file not found. Check the path.", path)
    text, _ = decode_bytes(path.read_bytes(), path, encoding)
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    reader.fieldnames = [h.strip().lower() for h in (reader.fieldnames or [])]
    rows = []
    for rowno, row in enumerate(reader, start=2):
        if None in row:
            raise FormatError(f"Row has more fields than the header ({len(reader.fieldnames)}). Quote fields "
                              "that contain commas.", path, f"row {rowno}")
        rows.append((rowno, row))
    return rows


def read_rules(path: str | Path, codebook: Codebook, *, encoding: str | None = None) -> RuleSet:
    """Rules from a table with the columns ``code,pattern`` and optional ``kind`` (keyword, phrase, regex;
    default keyword), ``speaker`` and ``heading`` (a row with a heading and no pattern codes every segment under
    the heading); or, when the table has ``id`` and ``rules`` columns, a codebook's rules column."""
    rows = _table_rows(path, encoding)
    header = set(rows[0][1]) if rows else set()
    if {"id", "rules"} <= header:
        return RuleSet.from_codebook_csv(path, codebook, encoding=encoding)
    missing = [c for c in ("code", "pattern") if c not in header]
    if missing or not rows:
        raise FormatError(f"A rules table needs the columns code,pattern (optional kind, speaker, heading); missing: "
                          f"{', '.join(missing) or 'every row'}.", path, "row 1")
    rules = []
    for rowno, row in rows:
        code, pattern = (row.get("code") or "").strip(), row.get("pattern") or ""
        heading = (row.get("heading") or "").strip() or None
        if not code and not pattern.strip() and not heading:
            continue
        kind = (row.get("kind") or "keyword").strip().lower()
        if not code or not (pattern.strip() or heading) or kind not in KINDS:
            what = "no code" if not code else "an empty pattern and no heading" if not pattern.strip() else \
                f"kind {kind!r} (expected {', '.join(KINDS)})"
            raise FormatError(f"Rule with {what}.", path, f"row {rowno}")
        rules.append(Rule(code, pattern.strip() if kind != "regex" else pattern, kind,
                          (row.get("speaker") or "").strip() or None, heading))
    try:
        return RuleSet(rules, codebook)
    except CodebookError as err:
        raise FormatError(str(err), path) from None

