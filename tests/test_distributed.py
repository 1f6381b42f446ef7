"""Pre-scoring under torchrun: each rank scores a contiguous shard, rank 0 merges in input order (two CPU ranks
stand in for two GPUs)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from autocode.backends.transformer.distributed import Rank, main, merge_shards, shard_name
from autocode.exceptions import AutocodeError, FormatError

ROOT = Path(__file__).resolve().parents[1]


def test_ranks_from_the_environment():
    r = Rank({"RANK": "1", "WORLD_SIZE": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "h"})
    assert (r.rank, r.world_size, r.local_rank, r.grouped) == (1, 3, 1, True)
    assert [Rank({"RANK": str(k), "WORLD_SIZE": "3"}).shard(10) for k in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert Rank({}).shard(5) == (0, 5) and not Rank({}).grouped
    with pytest.raises(AutocodeError, match=r"RANK=3 is outside 0\.\.WORLD_SIZE-1 \(WORLD_SIZE=2\)"):
        Rank({"RANK": "3", "WORLD_SIZE": "2"})
    with pytest.raises(AutocodeError, match="RANK, WORLD_SIZE and LOCAL_RANK must be integers"):
        Rank({"RANK": "x"})


def test_merge_joins_in_rank_order_and_names_what_is_missing(tmp_path):
    for r in range(3):
        np.save(tmp_path / shard_name(r, 3), np.full((r + 1, 2), r, dtype=np.float32))
    merge_shards(tmp_path, ["a", "b"])
    got = np.load(tmp_path / "scores.npy")
    assert got[:, 0].tolist() == [0, 1, 1, 2, 2, 2]
    doc = json.loads((tmp_path / "scores.json").read_text(encoding="utf-8"))
    assert doc["format"] == "autocode-scores" and doc["rows"] == 6 and doc["codes"] == ["a", "b"]
    assert not list(tmp_path.glob("scores-*"))
    with pytest.raises(AutocodeError, match="no scores-\\*-of-\\*.npy shard files to merge"):
        merge_shards(tmp_path)
    np.save(tmp_path / shard_name(1, 3), np.zeros((1, 2), np.float32))
    with pytest.raises(AutocodeError, match=r"2 of 3 shard files missing \(scores-00000-of-00003.npy...\)"):
        merge_shards(tmp_path)
    np.save(tmp_path / shard_name(0, 2), np.zeros((1, 2), np.float32))
    with pytest.raises(AutocodeError, match=r"shard files of different runs \(of 00002, 00003\)"):
        merge_shards(tmp_path)


def test_entry_errors_are_one_line(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 1
    assert "Pass --model MODEL_FOLDER and the corpus files" in capsys.readouterr().err
    assert main(["--merge", "--out", str(tmp_path)]) == 1
    assert "no scores-*-of-*.npy shard files" in capsys.readouterr().err


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("datasets")
    import torch
    from _tiny_bert import make_tiny_bert
    from conftest import TOPICS

    from autocode import CodingModel

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("dist")
    texts = [s for sents in TOPICS.values() for s in sents]
    folder = make_tiny_bert(tmp / "tiny", texts)
    from conftest import book as book_fn
    from conftest import coded as coded_fn

    book = book_fn.__wrapped__()
    coded = coded_fn.__wrapped__(book)
    model = CodingModel(book, "transformer", n_splits=2, random_state=0,
                        backend_params={"model_name": str(folder), "epochs": 2, "device": "cpu"}).fit(coded)
    model.save(tmp / "model")
    torch.set_num_threads(before)
    return tmp / "model", [s.text for s in coded.segments]


def _corpus(tmp_path, texts):
    path = tmp_path / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return path


def _expected(model_dir, texts):
    from autocode import CodingModel
    from autocode.corpus import Segment

    model = CodingModel.load(model_dir)
    return model.predict_proba([Segment(f"row-{i}", "1", t) for i, t in enumerate(texts)])


@pytest.mark.slow
def test_one_rank_without_torchrun(saved_model, tmp_path):
    model_dir, texts = saved_model
    corpus = _corpus(tmp_path, texts[:13])
    assert main(["--model", str(model_dir), "--out", str(tmp_path / "out"), "--chunk-size", "4", str(corpus)]) == 0
    got = np.load(tmp_path / "out" / "scores.npy")
    np.testing.assert_allclose(got, _expected(model_dir, texts[:13]), rtol=0, atol=1e-5)
    assert json.loads((tmp_path / "out" / "scores.json").read_text(encoding="utf-8"))["codes"] == \
        ["party", "council", "service"]


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_merge_in_input_order(saved_model, tmp_path):
    pytest.importorskip("torch.distributed.run")
    model_dir, texts = saved_model
    texts = texts[:29]  # an odd count: shards of 14 and 15 rows
    corpus = _corpus(tmp_path, texts)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "autocode.backends.transformer.distributed", "--model", str(model_dir),
                          "--out", str(tmp_path / "out"), "--chunk-size", "8", str(corpus)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    got = np.load(tmp_path / "out" / "scores.npy")
    assert got.shape == (29, 3) and not list((tmp_path / "out").glob("scores-*"))
    np.testing.assert_allclose(got, _expected(model_dir, texts), rtol=0, atol=1e-5)


# -- pre-coded output ---------------------------------------------------------------------------------------
TRANSCRIPT = ("访谈者：您好，请介绍一下社区。\n受访者：社区党支部组织党员开展志愿服务。\n"
              "访谈者：议事会怎么开？\n受访者：居民议事会上大家投票决定停车位，网格员每周上门为独居老人提供服务。\n")


@pytest.fixture
def tfidf_model(tmp_path, book, coded):
    from autocode import CodingModel

    return CodingModel(book, n_splits=3, random_state=0).fit(coded).save(tmp_path / "model")


@pytest.fixture
def inputs(tmp_path, coded):
    """Two transcripts and a table whose documents are interleaved (neighbours and positions cross batches)."""
    (tmp_path / "T1.txt").write_text(TRANSCRIPT, encoding="utf-8")
    texts = [s.text for s in coded.segments]
    with open(tmp_path / "more.jsonl", "w", encoding="utf-8") as f:
        for i in range(31):
            f.write(json.dumps({"document": ["J1", "J2"][i % 2], "segment": str(i), "speaker": ["问", "答"][i % 2],
                                "text": texts[(5 * i) % len(texts)]}, ensure_ascii=False) + "\n")
    (tmp_path / "T2.txt").write_text("问：网格员做什么？\n答：上门为老人提供服务。\n", encoding="utf-8")
    return [tmp_path / "T1.txt", tmp_path / "more.jsonl", tmp_path / "T2.txt"]


def _precode_cli(model_dir, inputs, out, *extra):
    from autocode.cli import main as cli

    assert cli(["-q", "precode", "--model", str(model_dir), *map(str, inputs), "--out", str(out), *extra]) == 0
    return out


@pytest.mark.parametrize("suffix", [".csv", ".xlsx", ".jsonl"])
def test_parts_of_three_ranks_join_into_the_precode_output(tmp_path, tfidf_model, inputs, suffix, monkeypatch):
    """Each rank scores the batches that start in its share; joined in rank order they are the file that
    ``autocode precode`` writes (a rank without a batch of its own writes an empty part)."""
    import time

    from autocode import CodingModel
    from autocode.backends.transformer.distributed import merge_parts, part_path, precode_shard
    from autocode.io.inputs import InputStream

    fixed = time.mktime((2026, 1, 2, 3, 4, 6, 0, 0, -1))
    monkeypatch.setattr(time, "time", lambda: fixed)  # an .xlsx carries the time it was written
    want = _precode_cli(tfidf_model, inputs, tmp_path / f"want{suffix}", "--batch-size", "16").read_bytes()
    model = CodingModel.load(tfidf_model)
    out = tmp_path / f"pre{suffix}"
    sizes = []
    for r in range(3):
        part = precode_shard(model, InputStream(inputs), out, Rank({"RANK": str(r), "WORLD_SIZE": "3"}),
                             batch_size=16)
        assert part == part_path(out, r, 3)
        sizes.append(len(part.read_text(encoding="utf-8").splitlines()))
    n = InputStream(inputs).census()
    assert n > 32 and sizes == [16, 16, n - 32]  # shares 0-13, 14-27, 28-: batches start at 0, 16, 32
    assert merge_parts(out) == out
    assert out.read_bytes() == want
    assert not list(tmp_path.glob("pre*.part-*"))


def test_ranks_without_a_process_group_then_merge(tmp_path, tfidf_model, inputs, monkeypatch, capsys):
    """Ranks started by a launcher without torchrun's rendezvous write their parts and say so; --merge joins
    them. One rank alone writes the output itself, any format (.qdpx too)."""
    want = _precode_cli(tfidf_model, inputs, tmp_path / "want.jsonl", "--batch-size", "5", "--no-evidence",
                        "--top", "2").read_bytes()
    out = tmp_path / "pre.jsonl"
    args = ["--model", str(tfidf_model), "--out", str(out), "--chunk-size", "5", "--no-evidence", "--top", "2",
            *map(str, inputs)]
    for r in range(2):
        monkeypatch.setenv("RANK", str(r))
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.delenv("MASTER_ADDR", raising=False)
        assert main(args) == 0
        assert f"rank {r}: wrote its part of {out}; join the parts with --merge" in capsys.readouterr().err
    assert not out.exists()
    assert main(["--merge", "--out", str(out)]) == 0
    assert out.read_bytes() == want
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    qdpx = inputs[:1]
    assert main(["--model", str(tfidf_model), "--out", str(tmp_path / "one.qdpx"), *map(str, qdpx)]) == 0
    _precode_cli(tfidf_model, qdpx, tmp_path / "want.qdpx")
    stamps = re.compile(rb'(?:creation|modified)DateTime="[^"]*"')  # the project's own times
    with zipfile.ZipFile(tmp_path / "one.qdpx") as a, zipfile.ZipFile(tmp_path / "want.qdpx") as b:
        assert [(n, stamps.sub(b"", a.read(n))) for n in a.namelist()] == \
            [(n, stamps.sub(b"", b.read(n))) for n in b.namelist()]


def test_precoded_output_errors_are_one_line(tmp_path, tfidf_model, inputs, monkeypatch, capsys):
    from autocode.backends.transformer.distributed import merge_parts, part_path
    from autocode.io.precoded import SuggestionWriter

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["--model", str(tfidf_model), "--out", str(tmp_path / "p.qdpx"), str(inputs[0])]) == 1
    assert "p.qdpx: A .qdpx project is written from every suggestion at once, not in parts: write .csv, .xlsx or " \
           ".jsonl here" in capsys.readouterr().err
    assert main(["--model", str(tfidf_model), "--out", str(tmp_path / "p.csv"), "--chunk-size", "0",
                 str(inputs[0])]) == 1
    assert "--chunk-size must be at least 1, got 0." in capsys.readouterr().err
    (tmp_path / "blank.txt").write_text("访谈者：\n受访者：\n", encoding="utf-8")
    assert main(["--model", str(tfidf_model), "--out", str(tmp_path / "p.csv"), str(tmp_path / "blank.txt")]) == 1
    assert "The inputs hold no segments to pre-code." in capsys.readouterr().err
    out = tmp_path / "p.csv"
    assert main(["--merge", "--out", str(out)]) == 1
    assert "no p.csv.part-*-of-* part files to merge." in capsys.readouterr().err
    part_path(out, 1, 2).write_text("", encoding="utf-8")
    with pytest.raises(AutocodeError, match=r"1 of 2 shard files missing \(p.csv.part-00000-of-00002...\)"):
        merge_parts(out)
    with pytest.raises(FormatError, match="A .qdpx project is written from every suggestion at once"):
        with SuggestionWriter(tmp_path / "x.qdpx") as w:
            w.write_encoded([])


@pytest.mark.slow
def test_torchrun_two_cpu_ranks_write_the_precode_table(saved_model, tmp_path, inputs):
    """Two ranks under torchrun with the transformer backend: the table ``autocode precode`` writes."""
    pytest.importorskip("torch.distributed.run")
    model_dir, _ = saved_model
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    want = tmp_path / "want.csv"
    ref = subprocess.run([sys.executable, "-m", "autocode.cli", "-q", "precode", "--model", str(model_dir),
                          *map(str, inputs), "--out", str(want), "--batch-size", "8"],
                         capture_output=True, text=True, env=env, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]
    out = tmp_path / "pre.csv"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "autocode.backends.transformer.distributed", "--model", str(model_dir),
                          "--out", str(out), "--chunk-size", "8", *map(str, inputs)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert out.read_bytes() == want.read_bytes()
    assert not list(tmp_path.glob("pre.csv.part-*"))
