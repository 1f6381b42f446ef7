"""Rows aligned into segments a document at a time (``read_coded(..., texts=False)``): the corpus that reading with
the texts gives, whatever the order of files and rows; the first offending row named; rows of interleaved
documents read again and sorted."""

from __future__ import annotations

import numpy as np
import pytest

from autocode import read_coded
from autocode.exceptions import FormatError
from autocode.io import _align
from autocode.io._align import DocumentRows, Interleaved


def _write(path, rows, offsets=False):
    head = "document,segment,speaker,text,coder,codes" + (",start,end" if offsets else "")
    path.write_text("\n".join([head, *(",".join(map(str, r)) for r in rows)]) + "\n", encoding="utf-8")
    return path


def _same(a, b) -> None:
    assert [(s.key, s.speaker, s.start, s.end, s.section) for s in a.segments] == \
        [(s.key, s.speaker, s.start, s.end, s.section) for s in b.segments]
    assert a.coders == b.coders and all(a.codings(c) == b.codings(c) for c in a.coders)
    assert a.documents == b.documents


class _NoSort:
    """Stands in for ColumnRows where the rows must be aligned a document at a time."""

    def __init__(self, paths):
        raise AssertionError("the rows were read again to be sorted")


def _sorts(monkeypatch) -> list:
    """Record each time the reader falls back to sorting the rows."""
    made = []
    real = _align.ColumnRows

    def spy(paths):
        made.append(paths)
        return real(paths)

    monkeypatch.setattr("autocode.io.table.ColumnRows", spy)
    return made


def test_one_file_per_coder_in_either_order_is_aligned_without_sorting(tmp_path, monkeypatch):
    """Each coder's file grouped by document, the documents in another order in each, a segment only one coder
    coded, offsets in one file only: the corpus read with the texts, segments in order of their first row."""
    e = _write(tmp_path / "E.csv", [("P1", 1, "B", "甲", "E", "x", 0, 1), ("P1", 2, "B", "乙", "E", "", 1, 2),
                                    ("P2", 1, "A", "丙", "E", "x;y", "", ""), ("P2", 2, "B", "丁", "E", "y", "", "")],
               offsets=True)
    a = _write(tmp_path / "A.csv", [("P2", 2, "B", "丁", "A", "y"), ("P2", 1, "A", "丙", "A", "x"),
                                    ("P3", 1, "B", "戊", "A", "x"), ("P1", 2, "B", "乙", "A", "x"),
                                    ("P1", 3, "B", "己", "A", ""), ("P1", 1, "B", "甲", "A", "x")])
    monkeypatch.setattr("autocode.io.table.ColumnRows", _NoSort)
    for paths in ([e, a], [a, e]):
        bare = read_coded(paths, texts=False)
        _same(read_coded(paths), bare)
        assert type(bare.segments).__name__ == "SegmentTable"
    bare = read_coded([e, a], texts=False)
    assert [s.key for s in bare.segments] == [("P1", "1"), ("P1", "2"), ("P2", "1"), ("P2", "2"), ("P3", "1"),
                                              ("P1", "3")]
    assert bare.codings("A")[-1] == frozenset() and bare.codings("E")[-1] is None
    assert [(s.start, s.end) for s in bare.segments][:3] == [(0, 1), (1, 2), (None, None)]


def test_a_column_of_codes_grows_past_the_segments_read(tmp_path, monkeypatch):
    monkeypatch.setattr(_align, "GROW", 2)
    path = _write(tmp_path / "c.csv", [("P1", i, "", f"句{i}", "E" if i % 3 else "A", "x") for i in range(7)])
    _same(read_coded(path), read_coded(path, texts=False))


@pytest.mark.parametrize("seed", range(6))
def test_rows_in_any_order_give_the_corpus_read_with_the_texts(tmp_path, seed):
    """Random tables: three coders over two files, rows grouped by document, shuffled, or sorted by segment
    (documents interleaved); some segments coded by one coder only."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in range(int(rng.integers(2, 9))):
        for s in range(int(rng.integers(1, 12))):
            for coder in ("E", "A", "B"):
                if rng.random() < 0.8:
                    codes = ";".join(c for c in "xyz" if rng.random() < 0.4)
                    rows.append((f"D{d}", s, "受访者" if s % 2 else "", f"第{d}篇{s}句", coder, codes))
    order = ("grouped", "shuffled", "by segment")[seed % 3]
    if order == "shuffled":
        rows = [rows[i] for i in rng.permutation(len(rows))]
    elif order == "by segment":
        rows.sort(key=lambda r: (r[1], r[0]))
    cut = int(rng.integers(0, len(rows)))
    paths = [_write(tmp_path / "one.csv", rows[:cut] or rows[:1]), _write(tmp_path / "two.csv", rows[cut:])]
    _same(read_coded(paths), read_coded(paths, texts=False))


def test_interleaved_documents_are_read_again_and_sorted(tmp_path, monkeypatch):
    """A table sorted by segment id, twenty documents side by side: finding each document's segments again
    would cost more than the rows read, so the rows are read again and sorted; the same corpus."""
    rows = [(f"D{d:02d}", s, "", f"{d}-{s}", c, "x" if (d + s) % 3 else "")
            for s in range(10) for d in range(20) for c in ("E", "A")]
    path = _write(tmp_path / "c.csv", rows)
    made = _sorts(monkeypatch)
    bare = read_coded(path, texts=False)
    assert len(made) == 1
    _same(read_coded(path), bare)
    store = DocumentRows([path])
    with pytest.raises(Interleaved):
        for k, (d, s, sp, text, *_) in enumerate(rows):
            store.segment(0, k + 2, d, str(s), text, sp, None, None, "")
    assert 20 < k < len(rows) - 1  # found out early, not at the end


def test_a_document_coming_back_in_another_file_is_checked(tmp_path, monkeypatch):
    """A clash in a document met again in a later file names that file and row, and the first row of the
    segment in the earlier file."""
    monkeypatch.setattr("autocode.io.table.ColumnRows", _NoSort)
    e = _write(tmp_path / "E.csv", [("P1", 1, "", "甲", "E", "x"), ("P2", 1, "", "乙", "E", "x")])
    a = _write(tmp_path / "A.csv", [("P2", 1, "", "乙", "A", "x"), ("P1", 1, "", "丙", "A", "x")])
    for texts in (True, False):
        with pytest.raises(FormatError, match=r"A\.csv, row 3: Segment P1/1 has a different text than at "
                                              r".*E\.csv, row 2\. Rows of the same segment"):
            read_coded([e, a], texts=texts)
    a = _write(tmp_path / "A.csv", [("P2", 1, "", "乙", "A", "x"), ("P1", 1, "", "甲", "E", "y")])
    for texts in (True, False):
        with pytest.raises(FormatError, match=r"A\.csv, row 3: Coder 'E' has two rows for segment P1/1 with "
                                              r"different codes\. Keep one row per segment per coder\."):
            read_coded([e, a], texts=texts)


@pytest.mark.parametrize("where", ["before", "after"])
def test_the_first_offending_row_is_named_when_the_rows_are_sorted_too(tmp_path, monkeypatch, where):
    """Interleaved documents with a clash before the reader turns to sorting (found as the rows come) or after
    it (found in the sorted rows): the same message as reading with the texts, naming the first offending row
    in reading order."""
    rows = [(f"D{d:02d}", s, "", f"{d}-{s}", c, "x") for s in range(10) for d in range(20) for c in ("E", "A")]
    at = 5 if where == "before" else 350  # the rows are turned to sorting at about row 220
    d, s, sp, text, c, _ = rows[at]
    first = rows.index((d, s, sp, text, "E", "x")) + 2  # the segment's first row (the header is row 1)
    rows.insert(at + 1, (d, s, sp, text + "改", "B", "x"))  # another coder, another text: row at + 3
    rows.insert(at + 2, (d, s, sp, text, c, "y"))  # the same coder again with other codes: a later clash
    path = _write(tmp_path / "c.csv", rows)
    made = _sorts(monkeypatch)
    for texts in (True, False):
        with pytest.raises(FormatError, match=rf"c\.csv, row {at + 3}: Segment {d}/{s} has a different text "
                                              rf"than at .*c\.csv, row {first}\."):
            read_coded(path, texts=texts)
    assert len(made) == (where == "after")
