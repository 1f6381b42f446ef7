"""``autocode rules`` as a stream: inputs read and coded a batch at a time, the output byte for byte the one the
in-memory path writes (read every input, match every rule, write every suggestion), whatever the batch size."""

from __future__ import annotations

import csv
import json
import re
import time
import zipfile
from pathlib import Path

import pytest

from autocode import write_coded
from autocode.cli import main
from autocode.io import write_suggestions
from autocode.io.inputs import InputStream, read_inputs
from autocode.rules import read_rules
from autocode.streaming import apply_rules_files

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
TRANSCRIPT = ("访谈者：您好，请介绍一下社区。\n受访者：社区党支部组织党员开展志愿服务。\n"
              "访谈者：议事会怎么开？\n受访者：居民议事会上大家投票决定停车位，网格员每周上门为独居老人提供服务。\n")


def _docx(path: Path, paragraphs) -> Path:
    """A Word transcript whose "heading 1" paragraphs are section headings (they reach rules by heading)."""
    style = '<w:pPr><w:pStyle w:val="1"/></w:pPr>'
    body = "".join(f'<w:p>{style if head else ""}<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'
                   for head, text in paragraphs)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>')
        z.writestr("word/styles.xml", f'<w:styles xmlns:w="{W}"><w:style w:type="paragraph" w:styleId="1">'
                                      '<w:name w:val="heading 1"/></w:style></w:styles>')
    return path


@pytest.fixture
def inputs(tmp_path, coded):
    """A GB18030 transcript, a Word transcript with headings, a two-coder CSV (each segment twice), a JSON lines
    table with interleaved documents, and a transcript named like one of the table's documents."""
    (tmp_path / "T1.txt").write_bytes(TRANSCRIPT.encode("gb18030"))
    _docx(tmp_path / "W1.docx", [(False, "访谈记录"), (True, "居住情况"), (False, "访谈者：住了多久？"),
                                 (False, "受访者：十年，网格员常来。"), (True, "组织参与"),
                                 (False, "访谈者：参加过吗？"), (False, "受访者：参加过党支部的活动。")])
    write_coded(tmp_path / "coded.csv", coded)
    texts = [s.text for s in coded.segments]
    with open(tmp_path / "more.jsonl", "w", encoding="utf-8") as f:
        for i in range(30):
            f.write(json.dumps({"document": ["J1", "J2", "T2"][i % 3], "segment": str(i),
                                "speaker": ["问", "答"][i % 2], "text": texts[(7 * i) % len(texts)]},
                               ensure_ascii=False) + "\n")
    (tmp_path / "T2.txt").write_text("问：网格员做什么？\n答：上门为老人提供服務。\n", encoding="utf-8")
    return [tmp_path / n for n in ("T1.txt", "W1.docx", "coded.csv", "more.jsonl", "T2.txt")]


@pytest.fixture
def files(tmp_path, book):
    """A codebook CSV and a rules table: keywords, a phrase, a regular expression, a speaker, a heading."""
    book.write_csv(tmp_path / "codebook.csv")
    with open(tmp_path / "rules.csv", "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["code", "pattern", "kind", "speaker", "heading"],
                                 ["party", "党支部 党员", "", "", ""],
                                 ["council", "议事会|投票", "regex", "", ""],
                                 ["service", "上门", "phrase", "participant", ""],
                                 ["H", "", "", "", "组织参与"]])
    return tmp_path / "codebook.csv", tmp_path / "rules.csv"


def _frozen_time(monkeypatch):
    fixed = time.mktime((2026, 1, 2, 3, 4, 6, 0, 0, -1))
    monkeypatch.setattr(time, "time", lambda: fixed)


def _comparable(path: Path) -> bytes | list:
    if path.suffix != ".qdpx":
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:  # the project stamps modification times of its own
        return [(n, re.sub(rb'(?:creation|modified)DateTime="[^"]*"', b"", z.read(n))) for n in z.namelist()]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx", ".qdpx"])
def test_rules_output_is_byte_identical_to_the_in_memory_path(tmp_path, book, inputs, files, monkeypatch, suffix):
    _frozen_time(monkeypatch)  # .xlsx and .qdpx carry the time they were written
    if suffix == ".qdpx":  # a project cannot place a transcript's turns and table rows in one source
        inputs = inputs[:4]
    codebook, table = files
    segments, documents = read_inputs(inputs)
    matches = read_rules(table, book).apply(segments)
    assert any(s.section for s in segments) and matches.matched.all(axis=0).sum() == 0 < matches.matched.sum()
    reference = tmp_path / f"reference{suffix}"
    write_suggestions(reference, matches.suggestions(), top_k=3, documents=documents)
    want = _comparable(reference)
    for size in (1, 4, 2048):
        out = tmp_path / f"b{size}{suffix}"
        assert main(["-q", "rules", "--codebook", str(codebook), "--rules", str(table), *map(str, inputs),
                     "--out", str(out), "--batch-size", str(size)]) == 0
        assert _comparable(out) == want, out.name


def test_sections_of_a_word_transcript_reach_heading_rules(tmp_path, book, inputs, files):
    """The stream reads a transcript's headings as reading it whole does: a rule by heading codes the turns under
    the heading."""
    out = tmp_path / "coded.jsonl"
    summary = apply_rules_files(read_rules(files[1], book), InputStream(inputs[1]), out, batch_size=2)
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["text"], r["codes"]) for r in rows if "H" in r["codes"]] == [
        ("参加过吗？", ["H"]), ("参加过党支部的活动。", ["party", "H"])]
    assert (summary.n_segments, summary.n_with_codes) == (len(rows), sum(bool(r["codes"]) for r in rows))
    assert list(InputStream(inputs[1])) == read_inputs(inputs[1])[0]


def test_rules_memory_holds_a_batch_not_the_corpus(tmp_path, book, inputs, files, batch_spy):
    """Counted: one writer call per batch, and when it is called no more than that batch has been read and
    not yet written."""
    stream = InputStream(inputs)
    n = stream.census()
    done = apply_rules_files(read_rules(files[1], book), stream, tmp_path / "coded.csv", batch_size=5)
    assert done.n_segments == n == batch_spy.read
    assert [size for size, _ in batch_spy.calls] == [5] * (n // 5) + ([n % 5] if n % 5 else [])
    assert all(pending == size for size, pending in batch_spy.calls)


def test_rules_batch_size_must_be_positive(tmp_path, book, inputs, files, capsys):
    codebook, table = files
    assert main(["rules", "--codebook", str(codebook), "--rules", str(table), str(inputs[0]),
                 "--out", str(tmp_path / "o.csv"), "--batch-size", "0"]) == 1
    assert "--batch-size must be at least 1, got 0." in capsys.readouterr().err
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        apply_rules_files(read_rules(table, book), InputStream(inputs[0]), tmp_path / "o.csv", batch_size=0)


def test_rules_on_inputs_without_segments(tmp_path, files, capsys):
    (tmp_path / "empty.txt").write_text("访谈者：\n受访者：\n", encoding="utf-8")  # labels, no words
    codebook, table = files
    assert main(["rules", "--codebook", str(codebook), "--rules", str(table), str(tmp_path / "empty.txt"),
                 "--out", str(tmp_path / "o.csv")]) == 1
    assert "The inputs hold no segments to code." in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
