"""Segments of transcripts and the codes coders applied to them.

A :class:`Segment` is one unit of coding: a speaker turn or a sentence of one document, with its character
offsets into the original text where they are known. A :class:`CodedCorpus` holds segments and, per coder,
the set of codes the coder applied to each segment. A coder who did not look at a segment has no entry for it
(a missing coding), which is different from an empty set (looked at it, applied nothing).

Example
-------
>>> segs = [Segment("P01", "1", "我们社区有党支部。"), Segment("P01", "2", "居民议事会每月开一次。")]
>>> corpus = CodedCorpus(segs, {"E": {("P01", "1"): {"embed"}, ("P01", "2"): set()}})
>>> corpus.coders, corpus.documents
(['E'], ['P01'])
>>> corpus.labels(["embed"], target="E").astype(int).tolist()
[[1], [0]]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from ._sequence import LazySequence
from .exceptions import AutocodeError, CodebookError

__all__ = ["Segment", "SegmentTable", "CodeColumn", "CodedCorpus", "DEFAULT_CODER", "as_segments"]

DEFAULT_CODER = "coder"
"""Name given to the coder of a table whose ``coder`` column is empty or absent."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One unit of coding.

    Parameters
    ----------
    document : str
        The document (interview) it belongs to.
    segment : str
        Its id within the document, e.g. ``"12"`` or ``"12.3"`` for the third sentence of turn 12.
    text : str
        The text, verbatim.
    speaker : str
        Who speaks (``"interviewer"``, ``"受访者"``, a name), empty when unknown.
    start, end : int or None
        Character offsets of ``text`` in the original document text (``doc[start:end] == text``), when known.
    section : str
        The headings the segment stands under, outer first (``一、基本情况 / （一）家庭``; see
        :mod:`autocode.section`), empty when the transcript has none before it.
    """

    document: str
    segment: str
    text: str
    speaker: str = ""
    start: int | None = None
    end: int | None = None
    section: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.document, self.segment)


NO_OFFSET = np.iinfo(np.int64).min
"""A :class:`SegmentTable`'s ``start``/``end`` where the offset is not known."""


class SegmentTable(LazySequence):
    """Segments held as columns, without their texts: a sequence of :class:`Segment` built one at a time on
    access (with an empty text). What :func:`~autocode.io.read_coded` gives with ``texts=False``, so that a
    corpus of millions of segments takes a few dozen bytes a segment for agreement, not a Python object each.

    Parameters
    ----------
    strings : list of str
        The distinct documents, segment ids, speakers and sections; the columns index into it.
    document, segment, speaker, section : ndarray of int
        Per segment, an index into ``strings``.
    start, end : ndarray of int, optional
        Character offsets, :data:`NO_OFFSET` where not known (``None`` when no segment has any).

    >>> t = SegmentTable(["P1", "1", "2", "", "受访者"], np.array([0, 0]), np.array([1, 2]), np.array([4, 3]),
    ...                  np.array([3, 3]))
    >>> len(t), t[1], t.document_index()
    (2, Segment(document='P1', segment='2', text='', speaker='', start=None, end=None, section=''), (['P1'], array([0, 0])))
    """

    def __init__(self, strings: Sequence[str], document: np.ndarray, segment: np.ndarray, speaker: np.ndarray,
                 section: np.ndarray, start: np.ndarray | None = None, end: np.ndarray | None = None):
        self.strings = list(strings)
        self.document, self.segment = np.asarray(document), np.asarray(segment)
        self.speaker, self.section = np.asarray(speaker), np.asarray(section)
        self.start, self.end = start, end

    def __len__(self) -> int:
        return len(self.document)

    def _item(self, i: int) -> Segment:
        st = self.strings
        start = None if self.start is None or self.start[i] == NO_OFFSET else int(self.start[i])
        end = None if self.end is None or self.end[i] == NO_OFFSET else int(self.end[i])
        return Segment(st[self.document[i]], st[self.segment[i]], "", st[self.speaker[i]], start, end,
                       st[self.section[i]])

    def __iter__(self):
        for i in range(len(self)):
            yield self._item(i)

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None

    def document_index(self) -> tuple[list[str], np.ndarray]:
        """The documents in order of first appearance, and each segment's as an index into them."""
        ids, first, inv = np.unique(self.document, return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return [self.strings[d] for d in ids[order]], rank[inv.ravel()]


class CodeColumn(LazySequence):
    """One coder's codes per segment held as numbers: a sequence of ``frozenset`` (``None`` where the coder did not
    code the segment) that keeps, per segment, the number of its set of codes among the distinct ones. What
    :func:`~autocode.io.read_coded` gives with ``texts=False``: 4 bytes a segment (or fewer), not a pointer each.

    Parameters
    ----------
    ids : ndarray of int
        Per segment, an index into ``sets``; -1 where the coder did not code the segment.
    sets : list of frozenset
        The distinct sets of codes.

    >>> col = CodeColumn(np.array([1, -1, 0], dtype=np.int8), [frozenset(), frozenset({"a"})])
    >>> len(col), col[0], col.tolist()
    (3, frozenset({'a'}), [frozenset({'a'}), None, frozenset()])
    """

    def __init__(self, ids: np.ndarray, sets: Sequence[frozenset[str]]):
        self.ids, self.sets = np.asarray(ids), list(sets)

    def __len__(self) -> int:
        return len(self.ids)

    def _item(self, i: int) -> frozenset[str] | None:
        k = self.ids[i]
        return None if k < 0 else self.sets[k]

    def tolist(self) -> list[frozenset[str] | None]:
        """The sets as a list (the same objects: one per distinct set), ``None`` where not coded."""
        objects = np.empty(len(self.sets) + 1, dtype=object)  # the last: None, what -1 picks
        for k, codes in enumerate(self.sets):
            objects[k] = codes
        return objects[self.ids].tolist()

    def __iter__(self):
        return iter(self.tolist())


def narrow(ids: np.ndarray) -> np.ndarray:
    """``ids`` (integers from -1 up) in the smallest signed integer type that holds them.

    >>> [narrow(np.array(a)).dtype.name for a in ([-1, 5], [-1, 300], [0, 40_000])]
    ['int8', 'int16', 'int32']
    """
    return ids.astype(np.min_scalar_type(-int(ids.max(initial=0)) - 1), copy=False)


class CodedCorpus:
    """Segments plus the codings of one or more coders.

    Parameters
    ----------
    segments : sequence of Segment
        Unique by ``(document, segment)``; their order is kept.
    codings : mapping coder -> mapping (document, segment) -> iterable of code ids
        What each coder applied. A segment a coder has no entry for is *not coded* by that coder.
    codebook : Codebook, optional
        When given, every code must be in it.
    """

    def __init__(
        self,
        segments: Sequence[Segment],
        codings: Mapping[str, Mapping[tuple[str, str], Iterable[str]]] | None = None,
        codebook=None,
    ):
        self.segments: Sequence[Segment] = list(segments)
        self._index: dict[tuple[str, str], int] | None = {}
        for i, seg in enumerate(self.segments):
            if seg.key in self._index:
                raise AutocodeError(f"Segment {seg.key} appears twice. Segment ids must be unique per document.")
            self._index[seg.key] = i
        self.codebook = codebook
        self._codings: dict[str, list[frozenset[str] | None] | CodeColumn] = {}
        shared: dict[frozenset[str], frozenset[str]] = {}  # one object per distinct set of codes: a pointer a segment
        for coder, per_seg in (codings or {}).items():
            column: list[frozenset[str] | None] = [None] * len(self.segments)
            for key, codes in per_seg.items():
                if key not in self._index:
                    raise AutocodeError(f"Coder {coder!r} coded segment {key}, which is not in the corpus.")
                codes = frozenset(codes)
                if codebook is not None:
                    for c in codes:
                        if c not in codebook:
                            raise CodebookError(
                                f"Coder {coder!r}, segment {key}: {codebook.unknown_message(c)}"
                            )
                column[self._index[key]] = shared.setdefault(codes, codes)
            self._codings[str(coder)] = column

    @classmethod
    def from_columns(cls, segments: Sequence[Segment], columns: Mapping[str, Sequence[frozenset[str] | None]],
                     codebook=None, index: dict[tuple[str, str], int] | None = None) -> CodedCorpus:
        """A corpus from each coder's codes per segment (``None``: not coded), aligned with ``segments``: no
        mapping by key is built (what a reader of millions of segments uses). ``index``: the key -> position of
        ``segments`` when the caller has it.

        >>> segs = [Segment("P1", "1", "你好"), Segment("P1", "2", "再见")]
        >>> CodedCorpus.from_columns(segs, {"E": [frozenset({"a"}), None]}).codings("E")
        [frozenset({'a'}), None]
        """
        table = isinstance(segments, SegmentTable)  # unique by construction: its key index is built if asked
        self = cls([] if index is not None or table else segments, None, codebook)
        if index is not None or table:
            self.segments, self._index = segments if table else list(segments), index
        shared: dict[frozenset[str], frozenset[str]] = {}
        for coder, col in columns.items():
            if len(col) != len(self.segments):
                raise AutocodeError(f"Coder {coder!r} has {len(col)} codings for {len(self.segments)} segments.")
            if isinstance(col, CodeColumn):  # kept as numbers; each distinct set checked once
                for k, codes in enumerate(col.sets):
                    codes = frozenset(codes)
                    if codes not in shared and codebook is not None:
                        bad = next((c for c in codes if c not in codebook), None)
                        if bad is not None:
                            i = int(np.argmax(col.ids == k))
                            raise CodebookError(f"Coder {coder!r}, segment {self.segments[i].key}: "
                                                f"{codebook.unknown_message(bad)}")
                    shared.setdefault(codes, codes)
                self._codings[str(coder)] = CodeColumn(col.ids, [shared[frozenset(c)] for c in col.sets])
                continue
            column: list[frozenset[str] | None] = [None] * len(self.segments)
            for i, codes in enumerate(col):
                if codes is None:
                    continue
                codes = frozenset(codes)
                if codes not in shared:
                    for c in codes if codebook is not None else ():
                        if c not in codebook:
                            raise CodebookError(f"Coder {coder!r}, segment {self.segments[i].key}: "
                                                f"{codebook.unknown_message(c)}")
                    shared[codes] = codes
                column[i] = shared[codes]
            self._codings[str(coder)] = column
        return self

    def __len__(self) -> int:
        return len(self.segments)

    def __repr__(self) -> str:
        return (
            f"CodedCorpus({len(self)} segments, {len(self.documents)} documents, coders={self.coders})"
        )

    @property
    def coders(self) -> list[str]:
        return list(self._codings)

    @property
    def documents(self) -> list[str]:
        """Document names in order of first appearance."""
        return self.document_index()[0]

    def document_index(self) -> tuple[list[str], np.ndarray]:
        """The documents in order of first appearance, and each segment's document as an index into them.

        >>> CodedCorpus([Segment("P2", "1", "甲"), Segment("P1", "1", "乙"), Segment("P2", "2", "丙")]
        ...             ).document_index()
        (['P2', 'P1'], array([0, 1, 0]))
        """
        if isinstance(self.segments, SegmentTable):
            return self.segments.document_index()
        docs: dict[str, int] = {}
        index = np.fromiter((docs.setdefault(s.document, len(docs)) for s in self.segments), dtype=np.int64,
                            count=len(self.segments))
        return list(docs), index

    @property
    def groups(self) -> np.ndarray:
        """The document of each segment, for grouped cross-validation."""
        return np.array([s.document for s in self.segments], dtype=object)

    @property
    def texts(self) -> list[str]:
        return [s.text for s in self.segments]

    def index(self, key: tuple[str, str]) -> int:
        if self._index is None:
            self._index = {seg.key: i for i, seg in enumerate(self.segments)}
        return self._index[key]

    def codings(self, coder: str) -> list[frozenset[str] | None]:
        """The codes ``coder`` applied to each segment, ``None`` where the coder did not code it."""
        try:
            return self._column(coder)
        except KeyError:
            raise AutocodeError(
                f"No coder named {coder!r}; the coders are {self.coders}."
            ) from None

    def _column(self, coder: str) -> list[frozenset[str] | None]:
        col = self._codings[coder]
        return col.tolist() if isinstance(col, CodeColumn) else list(col)

    def code_ids(self, coders: Sequence[str] | None = None) -> tuple[np.ndarray, list[frozenset[str]]]:
        """Each coder's codes per segment as numbers: ``(ids, sets)``, ``ids`` (coders, segments) of int32 indices
        into ``sets`` (the distinct sets of codes, in order of first appearance), -1 where the coder did not code
        the segment. Built from the numbers a corpus read with ``texts=False`` keeps, without a set per segment.

        >>> c = CodedCorpus([Segment("P1", "1", "甲"), Segment("P1", "2", "乙")], {"E": {("P1", "2"): {"a"}}})
        >>> ids, sets = c.code_ids()
        >>> ids.tolist(), sets
        ([[-1, 0]], [frozenset({'a'})])
        """
        coders = self.coders if coders is None else list(coders)
        number: dict[frozenset[str], int] = {}
        ids = np.empty((len(coders), len(self)), dtype=np.int32)
        for i, coder in enumerate(coders):
            if coder not in self._codings:
                self.codings(coder)  # the error naming the coders
            col = self._codings[coder]
            if isinstance(col, CodeColumn):
                local = np.array([number.setdefault(x, len(number)) for x in col.sets] + [-1], dtype=np.int32)
                ids[i] = local[col.ids]  # (-1 picks the last: -1)
            else:
                ids[i] = np.fromiter((-1 if x is None else number.setdefault(x, len(number)) for x in col),
                                     dtype=np.int32, count=len(self))
        return ids, list(number)

    def code_counts(self, coder: str | None = None) -> Counter:
        """How many segments each code was applied to (by one coder, or by any coder)."""
        counts: Counter = Counter()
        columns = [self.codings(coder)] if coder is not None else [self._column(c) for c in self._codings]
        for i in range(len(self)):
            applied: set[str] = set()
            for col in columns:
                codes = col[i]
                if codes:
                    applied.update(codes)
            counts.update(applied)
        return counts

    def used_codes(self) -> list[str]:
        """Codes any coder applied, in codebook order when a codebook is known."""
        used = set(self.code_counts())
        if self.codebook is not None:
            return [c for c in self.codebook.ids if c in used]
        return sorted(used)

    def target_codings(self, target: str = "union") -> list[frozenset[str] | None]:
        """One set of codes per segment, combined from the coders.

        ``"union"``: a code applies if any coder applied it; ``"majority"``: if more than half of the coders who
        coded the segment applied it (with two coders: both); a coder's name: that coder only.
        Segments no chosen coder coded get ``None``.
"""
        if not self._codings:
            raise AutocodeError("The corpus has no codings to learn from.")
        if target in self._codings:
            return self._column(target)
        if target not in ("union", "majority"):
            raise AutocodeError(
                f"Unknown target {target!r}: use 'union', 'majority' or one of the coders {self.coders}."
            )
        out: list[frozenset[str] | None] = []
        columns = [self._column(c) for c in self._codings]
        for i in range(len(self)):
            sets = [col[i] for col in columns if col[i] is not None]
            if not sets:
                out.append(None)
            elif target == "union":
                out.append(frozenset().union(*sets))
            else:
                votes = Counter(c for s in sets for c in s)
                need = len(sets) / 2
                out.append(frozenset(c for c, v in votes.items() if v > need))
        return out

    def labels(self, code_ids: Sequence[str], target: str = "union") -> np.ndarray:
        """A boolean matrix (segments x codes); rows of segments the target did not code are all False.

        Use :meth:`coded_mask` to know which rows are real.
        """
        col = {c: j for j, c in enumerate(code_ids)}
        y = np.zeros((len(self), len(code_ids)), dtype=bool)
        for i, codes in enumerate(self.target_codings(target)):
            for c in codes or ():
                j = col.get(c)
                if j is not None:
                    y[i, j] = True
        return y

    def coded_mask(self, target: str = "union") -> np.ndarray:
        """True for the segments the target coded."""
        return np.array([c is not None for c in self.target_codings(target)], dtype=bool)

    def subset(self, rows: Iterable[int] | np.ndarray) -> CodedCorpus:
        """A corpus of the given rows (indices or a boolean mask), with the same coders."""
        rows = np.asarray(list(rows) if not isinstance(rows, np.ndarray) else rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        segs = [self.segments[i] for i in rows]
        codings = {
            coder: {self.segments[i].key: col[i] for i in rows if col[i] is not None}
            for coder, col in ((c, self._column(c)) for c in self._codings)
        }
        return CodedCorpus(segs, codings, codebook=self.codebook)

    def with_codings(self, coder: str, per_segment: Sequence[Iterable[str] | None]) -> CodedCorpus:
        """A copy with one more coder (e.g. the model), ``per_segment`` aligned with :attr:`segments`."""
        if len(per_segment) != len(self):
            raise AutocodeError(f"Expected {len(self)} codings, got {len(per_segment)}.")
        codings = {c: {self.segments[i].key: s for i, s in enumerate(self._column(c)) if s is not None}
                   for c in self._codings}
        codings[coder] = {self.segments[i].key: set(s) for i, s in enumerate(per_segment) if s is not None}
        return CodedCorpus(self.segments, codings, codebook=self.codebook)

    def rolled_up(self, depth: int | None = None) -> CodedCorpus:
        """A copy whose codings are mapped through the codebook: to every ancestor (``depth=None``) or to the
        ancestor at ``depth`` (0 = top-level categories)."""
        if self.codebook is None:
            raise AutocodeError("Rolling codes up to categories needs a codebook.")
        book = self.codebook
        done: dict[frozenset[str], frozenset[str]] = {}  # each distinct set of codes rolled up once

        def up(codes: frozenset[str]) -> frozenset[str]:
            if codes not in done:
                done[codes] = frozenset(book.rollup(codes) if depth is None else book.at_depth(codes, depth))
            return done[codes]

        columns = {coder: CodeColumn(col.ids, [up(codes) for codes in col.sets]) if isinstance(col, CodeColumn)
                   else [None if codes is None else up(codes) for codes in col]
                   for coder, col in self._codings.items()}
        return CodedCorpus.from_columns(self.segments, columns, codebook=book, index=self._index)

    def rename_documents(self, mapping: Mapping[str, str]) -> CodedCorpus:
        segs = [replace(s, document=mapping.get(s.document, s.document)) for s in self.segments]
        codings = {
            coder: {segs[i].key: c for i, c in enumerate(self._column(coder)) if c is not None}
            for coder in self._codings
        }
        return CodedCorpus(segs, codings, codebook=self.codebook)


def as_segments(data) -> list[Segment]:
    """The segments of ``data``: a CodedCorpus, one Segment or text, or a sequence of Segments and texts (a
    text becomes a segment of the document ``"input"``, numbered from 1 in input order).

    >>> [s.text for s in as_segments("一段文字")]
    ['一段文字']
    >>> as_segments(["甲", "乙"])[1].key
    ('input', '2')
    """
    if isinstance(data, CodedCorpus):
        return list(data.segments)
    if isinstance(data, (str, Segment)):
        data = [data]
    out = []
    for i, item in enumerate(data):
        if isinstance(item, Segment):
            out.append(item)
        elif isinstance(item, str):
            out.append(Segment("input", str(i + 1), item))
        else:
            raise TypeError(f"Expected Segment objects or strings, got {type(item).__name__} at position {i}.")
    return out
