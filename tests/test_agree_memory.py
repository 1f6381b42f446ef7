"""`autocode agree` on a corpus read without its texts: the same report and disagreements, the texts read again
for the disagreements listed; code sets shared between segments."""

from __future__ import annotations

import pytest

from autocode import CodedCorpus, Segment, read_coded, write_coded
from autocode.cli import main
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
