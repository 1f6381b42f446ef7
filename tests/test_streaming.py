"""Pre-coding as a stream: inputs read a batch at a time, outputs written per batch and byte-identical to the
in-memory path, every segment out, and memory bounded by a batch (counted, not timed)."""

from __future__ import annotations

import json
import random
import re
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autocode import CodingModel, FormatError, Segment, write_coded
from autocode.cli import main
from autocode.io import write_suggestions
from autocode.io.inputs import InputStream, read_inputs
from autocode.io.precoded import SuggestionWriter
from autocode.io.table import iter_table_segments
from autocode.model import make_inputs
from autocode.streaming import precode_files, stream_batches

TRANSCRIPT = ("访谈者：您好，请介绍一下社区。\n受访者：社区党支部组织党员开展志愿服务。\n"
              "访谈者：议事会怎么开？\n受访者：居民议事会上大家投票决定停车位，网格员每周上门为独居老人提供服务。\n")


_FITTED: dict = {}


@pytest.fixture
def model(book, coded):
    """A model fitted on the fixture corpus (once for this module)."""
    if "model" not in _FITTED:
        _FITTED["model"] = CodingModel(book, n_splits=3, random_state=0).fit(coded)
    return _FITTED["model"]


@pytest.fixture
def mixed(tmp_path, coded):
    """Transcripts in GB18030 and UTF-8, a two-coder CSV (each segment twice), a JSON lines table whose
    documents are split over non-adjacent runs, and a transcript named like a table's document."""
    (tmp_path / "T1.txt").write_bytes(TRANSCRIPT.encode("gb18030"))
    (tmp_path / "T2.txt").write_text("问：网格员做什么？\n答：上门为老人提供服务。\n", encoding="utf-8")
    write_coded(tmp_path / "coded.csv", coded)
    rng = random.Random(0)
    texts = [s.text for s in coded.segments]
    with open(tmp_path / "more.jsonl", "w", encoding="utf-8") as f:
        for i in range(40):
            doc = ["J1", "J2", "T2"][i % 3] if i < 30 else "J3"  # J1, J2 interleaved; T2 also a transcript
            f.write(json.dumps({"document": doc, "segment": str(i), "speaker": rng.choice(["问", "答", ""]),
                                "text": rng.choice(texts)}, ensure_ascii=False) + "\n")
    return [tmp_path / "T1.txt", tmp_path / "coded.csv", tmp_path / "more.jsonl", tmp_path / "T2.txt"]


def test_stream_gives_the_segments_of_read_inputs(mixed):
    segments, _ = read_inputs(mixed)
    stream = InputStream(mixed)
    assert stream.census() == len(segments)
    assert list(stream) == segments
    assert sum(stream.sizes.values()) == len(segments)
    assert stream.sizes["T2"] == 2 + 10  # the transcript's turns and the table's rows of that name


@pytest.mark.parametrize("batch_size", [1, 2, 5, 7, 1000])
def test_batches_carry_neighbours_and_positions_of_the_whole_stream(mixed, batch_size):
    segments, _ = read_inputs(mixed)
    whole = make_inputs(segments)
    stream = InputStream(mixed)
    stream.census()
    got = list(stream_batches(stream, stream.sizes, batch_size))
    assert all(len(b) == batch_size for b, _ in got[:-1]) and 0 < len(got[-1][0]) <= batch_size
    assert [s for b, _ in got for s in b] == segments
    for field in ("texts", "contexts", "roles", "groups", "following"):
        assert [x for _, i in got for x in getattr(i, field)] == list(getattr(whole, field)), field
    positions = np.concatenate([i.positions for _, i in got])
    assert positions.tolist() == whole.relative_positions().tolist()  # exactly, not approximately


def test_stream_batches_refuses_an_empty_batch():
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        list(stream_batches([Segment("A", "1", "x")], {"A": 1}, 0))


def _run(args):
    assert main(["-q", "precode", *map(str, args)]) == 0


def _frozen_time(monkeypatch):
    fixed = time.mktime((2026, 1, 2, 3, 4, 6, 0, 0, -1))
    monkeypatch.setattr(time, "time", lambda: fixed)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".xlsx", ".qdpx"])
@pytest.mark.parametrize("evidence", [True, False])
def test_output_is_byte_identical_whatever_the_batch_size(tmp_path, model, mixed, monkeypatch, suffix, evidence):
    folder = model.save(tmp_path / "model")
    _frozen_time(monkeypatch)  # .xlsx and .qdpx carry the time they were written
    if suffix == ".qdpx":  # a project cannot place a transcript's turns and table rows in one source
        mixed = mixed[:3]
    segments, documents = read_inputs(mixed)
    reference = tmp_path / f"reference{suffix}"
    write_suggestions(reference, model.suggest(segments, explain=evidence), documents=documents)
    flag = [] if evidence else ["--no-evidence"]
    outputs = []
    for size in (1, 7, 2048):
        out = tmp_path / f"b{size}{suffix}"
        _run(["--model", folder, *mixed, "--out", out, "--batch-size", size, *flag])
        outputs.append(out)
    want = _comparable(reference)
    for out in outputs:
        assert _comparable(out) == want, out.name


def _comparable(path: Path) -> bytes | list:
    if path.suffix != ".qdpx":
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:  # the project stamps modification times of its own
        return [(n, re.sub(rb'(?:creation|modified)DateTime="[^"]*"', b"", z.read(n))) for n in z.namelist()]


def test_every_segment_comes_out_in_input_order(tmp_path, model, mixed):
    out = tmp_path / "pre.jsonl"
    _run(["--model", model.save(tmp_path / "model"), *mixed, "--out", out, "--batch-size", 4])
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    segments, _ = read_inputs(mixed)
    assert [(r["document"], r["segment"], r["text"]) for r in rows] == [(s.document, s.segment, s.text)
                                                                     for s in segments]


def test_memory_holds_a_batch_not_the_corpus(tmp_path, model, mixed, batch_spy):
    """Counted: the writer gets one call per batch, and when it is called no more than a batch (and the one
    segment looked ahead) has been read and not yet written."""
    stream = InputStream(mixed)
    n = stream.census()
    done = precode_files(model, stream, tmp_path / "pre.csv", batch_size=5)
    assert done.n_segments == n == batch_spy.read
    assert len(batch_spy.calls) == -(-n // 5)
    assert all(size <= 5 for size, _ in batch_spy.calls)
    assert all(pending <= size + 1 for size, pending in batch_spy.calls)


def test_csv_and_jsonl_tables_are_read_without_holding_the_file(tmp_path, coded, monkeypatch):
    write_coded(tmp_path / "coded.csv", coded)
    with open(tmp_path / "coded.jsonl", "w", encoding="utf-8") as f:
        for s in coded.segments:
            f.write(json.dumps({"document": s.document, "segment": s.segment, "speaker": s.speaker,
                                "text": s.text}) + "\n")
    expected = read_inputs([tmp_path / "coded.csv"])[0]

    def refuse(self):
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", refuse)
    monkeypatch.setattr(Path, "read_text", refuse)
    rows = [seg for seg, _ in iter_table_segments(tmp_path / "coded.csv")]
    assert len(rows) == 2 * len(expected)  # one row per coder
    assert list(dict.fromkeys(rows)) == expected
    assert [seg for seg, _ in iter_table_segments(tmp_path / "coded.jsonl")] == expected


@pytest.mark.parametrize("encoding", ["gb18030", "big5"])
def test_a_legacy_encoded_table_streams_like_it_reads(tmp_path, encoding):
    text = "document,segment,text\nP01,1,訪談者：請問社區怎麼組織居民參與？黨支部帶頭，議事會每個月開一次會。\n"
    (tmp_path / "t.csv").write_bytes(text.encode(encoding))
    assert [s for s, _ in iter_table_segments(tmp_path / "t.csv")] == read_inputs(tmp_path / "t.csv")[0]


def test_stream_errors_name_file_and_row(tmp_path):
    (tmp_path / "dup.csv").write_text("document,segment,text,coder\nP1,1,甲,E\nP1,1,乙,A\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"dup.csv, row 3: Segment P1/1 has a different text than at "
                                          r".*dup.csv, row 2\. Rows of the same segment"):
        InputStream(tmp_path / "dup.csv").census()
    (tmp_path / "empty.csv").write_text("document,segment,text\n", encoding="utf-8")
    with pytest.raises(FormatError, match="empty.csv: No rows below the header"):
        InputStream(tmp_path / "empty.csv").census()
    (tmp_path / "blank.jsonl").write_text("\n \n", encoding="utf-8")
    with pytest.raises(FormatError, match="blank.jsonl: The file is empty. Expected a header with document"):
        InputStream(tmp_path / "blank.jsonl").census()
    (tmp_path / "notext.jsonl").write_text('{"document": "A", "segment": "1"}\n', encoding="utf-8")
    with pytest.raises(FormatError, match=r"notext.jsonl, row 1: Missing column\(s\) 'text'"):
        InputStream(tmp_path / "notext.jsonl").census()
    (tmp_path / "nodoc.csv").write_text("document,segment,text\n,1,甲\n", encoding="utf-8")
    with pytest.raises(FormatError, match="nodoc.csv, row 2: Empty 'document' or 'segment'"):
        InputStream(tmp_path / "nodoc.csv").census()
    (tmp_path / "bad.jsonl").write_text('{"document": "A", "segment": "1", "text": "x"}\n[1]\n', encoding="utf-8")
    with pytest.raises(FormatError, match="bad.jsonl, line 2: Expected a JSON object per line"):
        InputStream(tmp_path / "bad.jsonl").census()
    (tmp_path / "enc.csv").write_bytes("document,segment,text\nA,1,社区\n".encode("gb18030"))
    with pytest.raises(FormatError, match="enc.csv: Cannot decode as utf-8"):
        InputStream(tmp_path / "enc.csv", encoding="utf-8").census()


def test_cli_batch_size_must_be_positive(tmp_path, model, mixed, capsys):
    assert main(["precode", "--model", str(model.save(tmp_path / "model")), str(mixed[0]),
                 "--out", str(tmp_path / "o.csv"), "--batch-size", "0"]) == 1
    assert "--batch-size must be at least 1, got 0." in capsys.readouterr().err


def test_writer_refuses_an_unknown_format(tmp_path):
    with pytest.raises(FormatError, match=r"out.txt: Unknown output format: use .csv, .xlsx, .jsonl or .qdpx"):
        SuggestionWriter(tmp_path / "out.txt")


def test_a_failed_stream_leaves_no_output(tmp_path, model, mixed):
    """An error in the middle of the stream (a cell too long for Excel) leaves no partial file."""
    (tmp_path / "long.jsonl").write_text(
        "".join(json.dumps({"document": "L", "segment": str(i), "text": "字" * (40_000 if i == 3 else 5)}) + "\n"
                for i in range(6)), encoding="utf-8")
    out = tmp_path / "pre.xlsx"
    with pytest.raises(FormatError, match="holds 40000 characters; an Excel cell holds at most 32767"):
        precode_files(model, InputStream(tmp_path / "long.jsonl"), out, batch_size=2)
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".autocode-")]


# -- large corpora in saturation ------------------------------------------------------------------------------
def test_novel_segments_beyond_the_cap_join_the_nearest_group(monkeypatch):
    """Average linkage sees at most ``max_clustered`` rows (its distances are quadratic); the others take the
    label of the nearest group centre, and below the cap nothing changes."""
    from sklearn.cluster import AgglomerativeClustering

    from autocode.saturation import cluster_embeddings

    rng = np.random.default_rng(0)
    centres = np.eye(6)[:3]
    truth = rng.integers(0, 3, 300)
    X = centres[truth] + 0.05 * rng.standard_normal((300, 6))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    seen = []
    original = AgglomerativeClustering.fit_predict

    def spy(self, D, *args, **kw):
        seen.append(D.shape[0])
        return original(self, D, *args, **kw)

    monkeypatch.setattr(AgglomerativeClustering, "fit_predict", spy)
    capped = cluster_embeddings(X, 0.5, max_clustered=40)
    assert seen == [40]
    pairs = set(zip(truth.tolist(), capped.tolist()))
    assert len(pairs) == 3 == len(set(capped))  # the true groups, relabelled
    assert cluster_embeddings(X, 0.5).tolist() == cluster_embeddings(X, 0.5, max_clustered=300).tolist()


# -- large corpora in agreement -------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["segment", "character"])
def test_agreement_sums_documents_a_block_of_units_at_a_time(coded, monkeypatch, level):
    """The ratings are one-hot encoded and summed into documents a block of units at a time: the figures are
    those of one block (below the block size nothing changes at all)."""
    import autocode.reliability._engine as engine
    from autocode import measure_agreement

    whole = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    calls = []
    original = engine.AgreementSums.from_ratings

    def spy(ratings, *args, **kw):
        calls.append(ratings.shape[1])
        return original(ratings, *args, **kw)

    monkeypatch.setattr(engine, "UNIT_BLOCK", 7)
    monkeypatch.setattr(engine.AgreementSums, "from_ratings", spy)
    blocked = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    assert calls and max(calls) <= 7
    assert len(blocked) == len(whole)
    for a, b in zip(whole, blocked):
        assert a.keys() == b.keys()
        for k in a:
            if isinstance(a[k], float):
                assert b[k] == pytest.approx(a[k], abs=1e-12, nan_ok=True), k
            else:
                assert b[k] == a[k], k


def test_batches_of_whole_documents():
    """With whole_documents, a batch is cut only between documents: a document longer than a batch stays whole."""
    from autocode.streaming import stream_batches

    segs = [Segment(d, str(i), f"{d}{i}", "受访者") for d, n in (("A", 3), ("B", 1), ("C", 2)) for i in range(n)]
    sizes = {"A": 3, "B": 1, "C": 2}
    cut = [[s.key for s in b] for b, _ in stream_batches(segs, sizes, 2, whole_documents=True)]
    assert cut == [[("A", "0"), ("A", "1"), ("A", "2")], [("B", "0"), ("C", "0"), ("C", "1")]]
    plain = [len(b) for b, _ in stream_batches(segs, sizes, 2)]
    assert plain == [2, 2, 2]
