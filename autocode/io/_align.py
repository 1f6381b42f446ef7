"""Rows of coded tables (one per segment per coder) aligned into segments and each coder's codes.

:func:`~autocode.io.read_coded` reads rows one at a time and hands each to a store: :class:`KeyedRows` keeps a
:class:`~autocode.corpus.Segment` per segment and finds a segment's row by its key as rows come (the texts
kept); :class:`ColumnRows` keeps a few integers per row and aligns the rows at the end by sorting their keys
(texts left out), so that a table of millions of segments takes a few dozen bytes a segment; :class:`DocumentRows`
aligns the rows of one document at a time as they come (texts left out), keeping a few integers a segment and none
a row, so that its memory is that of the segments, not of the rows and their sort; it stops with
:class:`Interleaved` where documents interleave so much that it would be slow (the reader then reads again with
:class:`ColumnRows`). All raise the same one-line errors, naming the file and row of the first offending row in
reading order: a segment whose rows carry different texts, a coder with two rows of different codes for one
segment.
"""

from __future__ import annotations

from array import array
from pathlib import Path

import numpy as np

from ..corpus import NO_OFFSET, CodeColumn, CodedCorpus, Segment, SegmentTable, narrow
from ..exceptions import FormatError

__all__ = ["KeyedRows", "ColumnRows", "DocumentRows", "Interleaved", "SEGMENT_IDS_SHARED"]

SEGMENT_IDS_SHARED = 100_000
"""Distinct segment ids held once each by :class:`KeyedRows` (turn numbers repeat in every document); past this
many, further ids are kept as read."""


def _at(path: Path, row: int) -> str:
    return f"line {row}" if path.suffix.lower() in (".jsonl", ".ndjson") else f"row {row}"


def _text_clash(doc: str, seg: str, first: Path, row_first: int, path: Path, row: int) -> FormatError:
    return FormatError(
        f"Segment {doc}/{seg} has a different text than at {first}, {_at(first, row_first)}. Rows of the same "
        "segment (one per coder) must carry the same text.",
        path,
        _at(path, row),
    )


def _codes_clash(coder: str, doc: str, seg: str, path: Path, row: int) -> FormatError:
    return FormatError(
        f"Coder {coder!r} has two rows for segment {doc}/{seg} with different codes. Keep one row per segment "
        "per coder.",
        path,
        _at(path, row),
    )


class KeyedRows:
    """Segments found by key as rows come; ``texts=False`` keeps an empty text (the rows of a segment are still
    checked to carry one text, by its hash)."""

    def __init__(self, paths: list[Path], texts: bool = True):
        self.paths, self.texts = paths, texts
        self.index: dict[tuple[str, str], int] = {}
        self.segments: list[Segment] = []
        self.seg_ids: dict[str, str] = {}
        self.where = array("q")  # per segment: the file and row where it first stands, the hash of its text
        self.codings: dict[str, list[frozenset[str] | None]] = {}
        self.shared: dict[frozenset[str], frozenset[str]] = {}

    def segment(self, k_path: int, row: int, doc: str, seg: str, text: str, speaker: str, start: int | None,
                end: int | None, section: str) -> int:
        """The index of the row's segment (a new one at its first row)."""
        seg = self.seg_ids.get(seg) or (self.seg_ids.setdefault(seg, seg) if len(self.seg_ids) < SEGMENT_IDS_SHARED
                                        else seg)
        key = (doc, seg)
        i = self.index.get(key)
        if i is None:
            i = self.index[key] = len(self.segments)
            self.segments.append(Segment(doc, seg, text if self.texts else "", speaker, start, end, section))
            self.where.extend((k_path, row, hash(text)))
        elif self.where[3 * i + 2] != hash(text) or (self.texts and self.segments[i].text != text):
            k_first, row_first = self.where[3 * i], self.where[3 * i + 1]
            raise _text_clash(doc, seg, self.paths[k_first], row_first, self.paths[k_path], row)
        return i

    def coding(self, i: int, coder: str, codes: frozenset[str], k_path: int, row: int) -> None:
        """Coder ``coder`` applied ``codes`` to segment ``i``."""
        per = self.codings.setdefault(coder, [])
        per.extend([None] * (len(self.segments) - len(per)))
        if per[i] is not None and codes != per[i]:
            seg = self.segments[i]
            raise _codes_clash(coder, seg.document, seg.segment, self.paths[k_path], row)
        per[i] = self.shared.setdefault(codes, codes)  # one object per distinct set of codes

    def __len__(self) -> int:
        return len(self.segments)

    def corpus(self, codebook) -> CodedCorpus:
        for per in self.codings.values():
            per.extend([None] * (len(self.segments) - len(per)))
        return CodedCorpus.from_columns(self.segments, self.codings, codebook=codebook, index=self.index)


class ColumnRows:
    """Rows kept as integers (strings numbered once each), aligned into segments at the end; the segments come
    as a :class:`~autocode.corpus.SegmentTable` without texts."""

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.strings: dict[str, int] = {}
        self.doc, self.seg, self.speaker, self.section = array("i"), array("i"), array("i"), array("i")
        self.start: array | None = None
        self.end: array | None = None
        self.hash, self.file, self.row = array("q"), array("h"), array("q")
        self.coder, self.set = array("h"), array("i")  # per row: the coder (-1: none) and the set of codes
        self.coders: dict[str, int] = {}
        self.sets: dict[frozenset[str], int] = {}

    def _id(self, s: str) -> int:
        return self.strings.setdefault(s, len(self.strings))

    def segment(self, k_path: int, row: int, doc: str, seg: str, text: str, speaker: str, start: int | None,
                end: int | None, section: str) -> int:
        """The row's number; the rows of one segment are aligned in :meth:`corpus`."""
        n = len(self.doc)
        self.doc.append(self._id(doc))
        self.seg.append(self._id(seg))
        self.speaker.append(self._id(speaker))
        self.section.append(self._id(section))
        if (start is not None or end is not None) and self.start is None:  # the first offsets: the rows before had none
            self.start, self.end = array("q", [NO_OFFSET]) * n, array("q", [NO_OFFSET]) * n
        if self.start is not None:
            self.start.append(NO_OFFSET if start is None else start)
            self.end.append(NO_OFFSET if end is None else end)
        self.hash.append(hash(text))
        self.file.append(k_path)
        self.row.append(row)
        self.coder.append(-1)
        self.set.append(-1)
        return n

    def coding(self, i: int, coder: str, codes: frozenset[str], k_path: int, row: int) -> None:
        """Coder ``coder`` applied ``codes`` at row ``i``."""
        self.coder[i] = self.coders.setdefault(coder, len(self.coders))
        self.set[i] = self.sets.setdefault(codes, len(self.sets))

    def __len__(self) -> int:
        return len(self.doc)

    def corpus(self, codebook) -> CodedCorpus:
        strings = list(self.strings)
        self.strings = {}
        doc, seg = np.frombuffer(self.doc, dtype=np.int32), np.frombuffer(self.seg, dtype=np.int32)
        keys = (doc.astype(np.int64) << 32) | seg
        _, first, inv = np.unique(keys, return_index=True, return_inverse=True)
        del keys
        order = np.argsort(first, kind="stable")  # segments in order of their first row
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        row_seg = rank[inv.ravel()]  # each row's segment
        del inv, rank
        head = first[order]  # each segment's first row
        del first, order
        coder, sets = np.frombuffer(self.coder, dtype=np.int16), np.frombuffer(self.set, dtype=np.int32)
        self._check(strings, doc, seg, row_seg, head, coder, sets)
        names = list(self.coders)
        by_id = list(self.sets)
        columns = {}
        for k, name in enumerate(names):
            ids = np.full(len(head), -1, dtype=np.int32)
            mine = coder == k
            ids[row_seg[mine]] = sets[mine]
            columns[name] = CodeColumn(narrow(ids), by_id)
        offsets = [None, None] if self.start is None else [np.frombuffer(a, dtype=np.int64)[head]
                                                           for a in (self.start, self.end)]
        table = SegmentTable(strings, *(narrow(a[head]) for a in (doc, seg, np.frombuffer(self.speaker, dtype=np.int32),
                                                                np.frombuffer(self.section, dtype=np.int32))),
                             *offsets)
        return CodedCorpus.from_columns(table, columns, codebook=codebook)

    def _check(self, strings, doc, seg, row_seg, head, coder, sets) -> None:
        """Raise for the first row (in reading order) whose text differs from its segment's first row, or whose
        coder gave the segment other codes at an earlier row."""
        hashes = np.frombuffer(self.hash, dtype=np.int64)
        bad_text = np.flatnonzero(hashes != hashes[head[row_seg]])
        bad_text = int(bad_text[0]) if bad_text.size else None
        coded = np.flatnonzero(coder >= 0)
        pair = row_seg[coded] * max(len(self.coders), 1) + coder[coded]
        o = np.argsort(pair, kind="stable")  # rows of one (segment, coder) together, in reading order
        pair, rows = pair[o], coded[o]
        starts = np.r_[True, pair[1:] != pair[:-1]]
        run_first = rows[np.maximum.accumulate(np.where(starts, np.arange(len(rows)), 0))]
        clash = rows[sets[rows] != sets[run_first]]
        bad_codes = int(clash.min()) if clash.size else None
        if bad_text is None and bad_codes is None:
            return
        r = min(x for x in (bad_text, bad_codes) if x is not None)
        path = self.paths[self.file[r]]
        if r == bad_text:
            f = int(head[row_seg[r]])
            raise _text_clash(strings[doc[r]], strings[seg[r]], self.paths[self.file[f]], self.row[f], path,
                              self.row[r])
        raise _codes_clash(next(c for c, k in self.coders.items() if k == coder[r]), strings[doc[r]],
                           strings[seg[r]], path, self.row[r])


class Interleaved(Exception):
    """Raised by :class:`DocumentRows` where documents interleave so much that finding their segments again would
    cost more than sorting the rows: read again with :class:`ColumnRows`."""


GROW = 4096
"""Entries a coder's column grows by (with "not coded") when a row names a segment past its end."""


class DocumentRows:
    """Rows aligned into segments a document at a time as they come; the segments come as a
    :class:`~autocode.corpus.SegmentTable` without texts.

    The segment ids of the document being read are found in a dict; when the rows turn to another document, it is
    dropped. A document whose rows come back later (one file per coder, a table sorted by coder) has its segments
    found again from the stretches of segments it holds. Per segment it keeps its strings' numbers, the hash of its
    text, the file and row where it first stands and each coder's set of codes as a number: memory that grows with
    the segments, not the rows. Where finding documents again has cost more segments than rows were read (rows of
    many documents interleaved, e.g. a table sorted by segment id), it raises :class:`Interleaved`.
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths
        self.strings: dict[str, int] = {}
        self.doc, self.seg, self.speaker, self.section = array("i"), array("i"), array("i"), array("i")
        self.start: array | None = None
        self.end: array | None = None
        self.hash, self.file, self.row = array("q"), array("h"), array("q")
        self.codings: dict[str, array] = {}  # per coder, per segment: the number of its set of codes, -1: not coded
        self.sets: dict[frozenset[str], int] = {}
        # per document (by its string's number): the first stretch of segments it holds (start, stop; -1: none);
        # further stretches of a document whose rows came back after another document's new segments
        self.stretch = array("q")
        self.more: dict[int, list[list[int]]] = {}
        self.open_doc = -1
        self.open: dict[int, int] = {}  # the open document's segment ids -> segment
        self.rows = self.found_again = 0

    def _id(self, s: str) -> int:
        k = self.strings.setdefault(s, len(self.strings))
        if k == len(self.stretch) // 2:
            self.stretch.extend((-1, -1))
        return k

    def _turn_to(self, d: int) -> None:
        """Make document ``d`` the open one: its segment ids found again when it holds segments already."""
        self.open_doc = d
        if self.stretch[2 * d] < 0:
            self.open = {}
            return
        stretches = [self.stretch[2 * d:2 * d + 2].tolist(), *self.more.get(d, ())]
        self.found_again += sum(b - a for a, b in stretches)
        if self.found_again > self.rows:
            raise Interleaved
        seg = self.seg
        self.open = {seg[i]: i for a, b in stretches for i in range(a, b)}

    def segment(self, k_path: int, row: int, doc: str, seg: str, text: str, speaker: str, start: int | None,
                end: int | None, section: str) -> int:
        """The index of the row's segment (a new one at its first row)."""
        d = self._id(doc)
        if d != self.open_doc:
            self._turn_to(d)
        self.rows += 1
        s = self._id(seg)
        i = self.open.get(s)
        if i is not None:
            if self.hash[i] != hash(text):
                raise _text_clash(doc, seg, self.paths[self.file[i]], self.row[i], self.paths[k_path], row)
            return i
        i = self.open[s] = len(self.doc)
        self.doc.append(d)
        self.seg.append(s)
        self.speaker.append(self._id(speaker))
        self.section.append(self._id(section))
        if (start is not None or end is not None) and self.start is None:  # the first offsets: none before
            self.start, self.end = array("q", [NO_OFFSET]) * i, array("q", [NO_OFFSET]) * i
        if self.start is not None:
            self.start.append(NO_OFFSET if start is None else start)
            self.end.append(NO_OFFSET if end is None else end)
        self.hash.append(hash(text))
        self.file.append(k_path)
        self.row.append(row)
        last = self.more[d][-1] if d in self.more else None
        if self.stretch[2 * d] < 0:
            self.stretch[2 * d], self.stretch[2 * d + 1] = i, i + 1
        elif (last[1] if last else self.stretch[2 * d + 1]) == i:
            if last:
                last[1] = i + 1
            else:
                self.stretch[2 * d + 1] = i + 1
        else:
            self.more.setdefault(d, []).append([i, i + 1])
        return i

    def coding(self, i: int, coder: str, codes: frozenset[str], k_path: int, row: int) -> None:
        """Coder ``coder`` applied ``codes`` to segment ``i``."""
        per = self.codings.get(coder)
        if per is None:
            per = self.codings[coder] = array("i")
        if i >= len(per):
            per.extend(array("i", [-1]) * max(i + 1 - len(per), GROW))
        k = self.sets.setdefault(codes, len(self.sets))
        if per[i] >= 0 and per[i] != k:
            raise _codes_clash(coder, self._string(self.doc[i]), self._string(self.seg[i]), self.paths[k_path],
                               row)
        per[i] = k

    def _string(self, k: int) -> str:
        """The string numbered ``k`` (for an error message: a search through the strings)."""
        return next(s for s, j in self.strings.items() if j == k)

    def __len__(self) -> int:
        return len(self.doc)

    def corpus(self, codebook) -> CodedCorpus:
        n = len(self.doc)
        strings = list(self.strings)
        self.strings, self.open, self.more = {}, {}, {}
        by_id = list(self.sets)
        columns = {}
        for name, per in self.codings.items():
            ids = np.full(n, -1, dtype=np.int32)
            got = np.frombuffer(per, dtype=np.int32)[:n]
            ids[:len(got)] = got
            columns[name] = CodeColumn(narrow(ids), by_id)
        self.codings = {}
        offsets = [None, None] if self.start is None else [np.frombuffer(a, dtype=np.int64)
                                                           for a in (self.start, self.end)]
        table = SegmentTable(strings, *(narrow(np.frombuffer(a, dtype=np.int32))
                                        for a in (self.doc, self.seg, self.speaker, self.section)), *offsets)
        return CodedCorpus.from_columns(table, columns, codebook=codebook)
