"""`autocode agree` on a corpus read without its texts: the same report and disagreements, the texts read again
for the disagreements listed; code sets shared between segments."""

from __future__ import annotations

import numpy as np
import pytest

from autocode import CodedCorpus, Segment, read_coded, write_coded
from autocode.cli import main
from autocode.corpus import CodeColumn
from autocode.exceptions import AutocodeError, CodebookError, FormatError
from autocode.io.table import read_texts
from autocode.reliability import measure_agreement


def _corpus() -> CodedCorpus:
    segs = [Segment(f"P{d}", str(i), f"第{d}个访谈的第{i}句话", "受访者") for d in range(4) for i in range(30)]
    e = {s.key: ({"a"} if i % 3 == 0 else {"b"} if i % 3 == 1 else set()) for i, s in enumerate(segs)}
    a = {k: (v if i % 7 else ({"a", "b"} - v)) for i, (k, v) in enumerate(e.items())}
    return CodedCorpus(segs, {"E": e, "A": a})


def test_read_without_texts_keeps_the_codings_and_shares_the_code_sets(tmp_path):
    path = tmp_path / "coded.csv"
    write_coded(path, _corpus())
    full, bare = read_coded(path), read_coded(path, texts=False)
    assert [s.key for s in bare.segments] == [s.key for s in full.segments]
    assert {s.text for s in bare.segments} == {""}
    assert all(bare.codings(c) == full.codings(c) for c in full.coders)
    sets = bare.codings("E") + bare.codings("A")
    assert len({id(x) for x in sets}) == len(set(sets)) == 4  # one object per distinct set of codes
    assert read_texts(path, {("P1", "2"), ("P3", "29"), ("P9", "1")}) == {
        ("P1", "2"): "第1个访谈的第2句话", ("P3", "29"): "第3个访谈的第29句话"}


def test_rows_of_a_segment_must_carry_one_text_without_texts_too(tmp_path):
    path = tmp_path / "coded.csv"
    path.write_text("document,segment,text,coder,codes\nP1,1,你好,E,a\nP1,1,您好,A,a\n", encoding="utf-8")
    for texts in (True, False):
        with pytest.raises(FormatError, match="Segment P1/1 has a different text than at .*row 2"):
            read_coded(path, texts=texts)


@pytest.mark.parametrize("block", [None, 5])
def test_agree_reads_the_texts_again_for_the_disagreements(tmp_path, monkeypatch, block):
    if block:  # the disagreements' texts asked for a few at a time
        monkeypatch.setattr("autocode.reliability._disagreements.BLOCK", block)
    corpus = _corpus()
    path = tmp_path / "coded.csv"
    write_coded(path, corpus)
    report = measure_agreement(corpus, n_bootstrap=50)
    report.write(tmp_path / "a.md")
    report.write_disagreements(tmp_path / "a.csv")
    assert main(["-q", "agree", str(path), "--bootstrap", "50", "--out", str(tmp_path / "b.md"),
                 "--disagreements", str(tmp_path / "b.csv")]) == 0
    a = (tmp_path / "a.md").read_text(encoding="utf-8").replace("a.png", "b.png")
    assert a == (tmp_path / "b.md").read_text(encoding="utf-8")
    assert "第0个访谈的第0句话" in a  # a disagreement listed with its text
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_text(encoding="utf-8-sig") == report.disagreements_csv()
    assert len(report.disagreements) == 36  # every 7th segment, on both codes


def test_corpus_from_columns(book):
    segs = [Segment("P1", "1", "你好"), Segment("P1", "2", "再见")]
    code = book.ids[-1]
    corpus = CodedCorpus.from_columns(segs, {"E": [{code}, None], "A": [frozenset({code}), set()]}, codebook=book)
    assert corpus.codings("E") == [frozenset({code}), None] and corpus.codings("E")[0] is corpus.codings("A")[0]
    assert corpus.coders == ["E", "A"] and corpus.segments == segs
    with pytest.raises(AutocodeError, match=r"Coder 'E' has 1 codings for 2 segments\."):
        CodedCorpus.from_columns(segs, {"E": [None]})
    with pytest.raises(CodebookError, match=r"Coder 'E', segment \('P1', '2'\): .*nope"):
        CodedCorpus.from_columns(segs, {"E": [None, {"nope"}]}, codebook=book)


def _same_corpus(a: CodedCorpus, b: CodedCorpus) -> None:
    assert [(s.key, s.speaker, s.start, s.end, s.section) for s in a.segments] == \
        [(s.key, s.speaker, s.start, s.end, s.section) for s in b.segments]
    assert a.coders == b.coders and all(a.codings(c) == b.codings(c) for c in a.coders)
    assert a.documents == b.documents


def test_read_without_texts_aligns_files_given_in_any_order(tmp_path):
    """One file per coder, rows in different orders, documents interleaved, offsets on some rows only, sections
    and speaker labels given roles: the rows kept as numbers and aligned at the end give the corpus that reading
    with the texts gives (segments in order of first appearance, each with its first row's speaker and offsets)."""
    e = tmp_path / "E.csv"
    e.write_text("document,segment,speaker,text,codes,section,start,end\n"
                 "P2,1,A,问题,,一、背景,,\nP1,1,B,回答一,x,,0,3\nP2,2,B,回答二,x;y,一、背景,3,6\n"
                 "P1,2,B,回答三,,,,\n", encoding="utf-8")
    a = tmp_path / "A.csv"
    a.write_text("document,segment,speaker,text,codes\nP1,2,B,回答三,y\nP3,7,B,只有A,x\nP2,2,B,回答二,y\n"
                 "P1,1,B,回答一,x\n", encoding="utf-8")
    for paths in ([e, a], [a, e]):
        full = read_coded(paths, speakers={"A": "interviewer"})
        bare = read_coded(paths, speakers={"A": "interviewer"}, texts=False)
        _same_corpus(full, bare)
        assert type(bare.segments).__name__ == "SegmentTable" and {s.text for s in bare.segments} == {""}
    assert bare.coders == ["A", "E"] and bare.documents == ["P1", "P3", "P2"]
    assert bare.segments[-1] == Segment("P2", "1", "", "interviewer", None, None, "一、背景")
    assert bare.segments[-2].start is None and bare.index(("P3", "7")) == 1  # P1/1's first row: A's, no offsets
    bare = read_coded([e, a], texts=False)
    assert [(s.start, s.end) for s in bare.segments] == [(None, None), (0, 3), (3, 6), (None, None), (None, None)]


def test_read_without_texts_names_the_first_clashing_row(tmp_path):
    path = tmp_path / "coded.jsonl"
    path.write_text('{"document": "P1", "segment": "1", "text": "甲", "coder": "E", "codes": "x"}\n'
                    '{"document": "P1", "segment": "2", "text": "乙", "coder": "E", "codes": "x"}\n'
                    '{"document": "P1", "segment": "1", "text": "甲", "coder": "E", "codes": "x"}\n'
                    '{"document": "P1", "segment": "2", "text": "乙", "coder": "E", "codes": "y"}\n'
                    '{"document": "P1", "segment": "1", "text": "丙", "coder": "A", "codes": "x"}\n',
                    encoding="utf-8")
    for texts in (True, False):  # a coder's second row of one segment with other codes comes first (line 4)
        with pytest.raises(FormatError, match=r"coded\.jsonl, line 4: Coder 'E' has two rows for segment P1/2 "
                                              r"with different codes\. Keep one row per segment per coder\."):
            read_coded(path, texts=texts)
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3] + lines[4:]) + "\n", encoding="utf-8")
    for texts in (True, False):
        with pytest.raises(FormatError, match=r"coded\.jsonl, line 4: Segment P1/1 has a different text than at "
                                              r".*coded\.jsonl, line 1\."):
            read_coded(path, texts=texts)


def test_segment_table_is_a_sequence_of_segments(tmp_path):
    path = tmp_path / "coded.csv"
    write_coded(path, _corpus())
    full, bare = read_coded(path), read_coded(path, texts=False)
    table = bare.segments
    assert table[-1] == table[len(table) - 1] == Segment("P3", "29", "", "受访者")
    assert table[1:3] == [Segment("P0", "1", "", "受访者"), Segment("P0", "2", "", "受访者")]
    with pytest.raises(IndexError):
        table[len(table)]
    assert table == [Segment(s.document, s.segment, "", s.speaker) for s in full.segments] and table != full.segments
    docs, index = bare.document_index()
    assert docs == ["P0", "P1", "P2", "P3"] and index.tolist() == [d for d in range(4) for _ in range(30)]


@pytest.mark.parametrize("by", ["code", "category"])
def test_agreement_on_a_corpus_read_without_texts_is_the_same(tmp_path, book, by):
    """The figures and disagreements (segments held as columns, each coder's codes as numbered sets) are those of
    the corpus read whole, rolled up to categories too."""
    codes = book.ids[-4:]
    segs = [Segment(f"P{d}", str(i), f"第{d}段{i}", "受访者") for d in range(5) for i in range(20)]
    e = {s.key: {codes[i % 4]} if i % 5 else set() for i, s in enumerate(segs)}
    a = {k: ({codes[(i + (i % 3 == 0)) % 4]} if v else {codes[0]} if i % 10 == 0 else set())
         for i, (k, v) in enumerate(e.items())}
    path = tmp_path / "coded.csv"
    write_coded(path, CodedCorpus(segs, {"E": e, "A": a}, codebook=book))
    reports = [measure_agreement(read_coded(path, codebook=book, texts=texts), by=by, n_bootstrap=30)
               for texts in (True, False)]
    assert reports[0].rows == reports[1].rows
    assert [{**d, "text": ""} for d in reports[0].disagreements] == list(reports[1].disagreements)
    assert len(reports[1].disagreements) > 0


def test_code_columns_keep_numbers_and_act_as_lists(book):
    """A corpus read without texts keeps each coder's codes as numbered sets: the same codings, counts, targets,
    roll-up and subsets as lists of sets give; the codebook checked once per distinct set."""
    segs = [Segment("P1", str(i), f"第{i}句") for i in range(5)]
    a, b = book.ids[-1], book.ids[-2]
    sets = [frozenset({a}), frozenset(), frozenset({a, b})]
    ids = {"E": np.array([0, 1, -1, 2, 0], dtype=np.int8), "A": np.array([0, 0, 1, -1, 2], dtype=np.int8)}
    numbered = CodedCorpus.from_columns(segs, {c: CodeColumn(v, sets) for c, v in ids.items()}, codebook=book)
    lists = CodedCorpus.from_columns(segs, {c: [None if k < 0 else sets[k] for k in v] for c, v in ids.items()},
                                     codebook=book)
    assert numbered.codings("E") == lists.codings("E") == [sets[0], sets[1], None, sets[2], sets[0]]
    assert numbered.codings("E")[0] is numbered.codings("A")[1]  # one object per distinct set
    assert numbered.code_counts() == lists.code_counts() and numbered.used_codes() == lists.used_codes()
    for target in ("union", "majority", "A"):
        assert numbered.target_codings(target) == lists.target_codings(target)
    up, up_lists = numbered.rolled_up(), lists.rolled_up()
    assert [up.codings(c) for c in up.coders] == [up_lists.codings(c) for c in up.coders]
    assert numbered.subset([3, 4]).codings("A") == [None, sets[2]]
    code_ids, distinct = numbered.code_ids(["A", "E"])
    assert code_ids.tolist() == [[0, 0, 1, -1, 2], [0, 1, -1, 2, 0]] and distinct == sets
    assert lists.code_ids(["A"])[0].tolist() == [[0, 0, 1, -1, 2]]
    with pytest.raises(AutocodeError, match=r"No coder named 'B'; the coders are \['E', 'A'\]\."):
        numbered.code_ids(["B"])
    with pytest.raises(CodebookError, match=r"Coder 'E', segment \('P1', '3'\): .*nope"):
        CodedCorpus.from_columns(segs, {"E": CodeColumn(ids["E"], [*sets[:2], {"nope"}])}, codebook=book)


def test_a_corpus_read_without_texts_holds_small_numbers(tmp_path):
    path = tmp_path / "coded.csv"
    write_coded(path, _corpus())
    bare = read_coded(path, texts=False)
    table = bare.segments
    assert {table.document.dtype.itemsize, table.segment.dtype.itemsize, table.speaker.dtype.itemsize} == {1}
    assert bare.codings("E") == read_coded(path).codings("E")
