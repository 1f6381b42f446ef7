"""Pre-scoring under torchrun: each rank scores a contiguous shard, rank 0 merges in input order (two CPU ranks
stand in for two GPUs)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from autocode.backends.transformer.distributed import Rank, main, merge_shards, shard_name
from autocode.exceptions import AutocodeError

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
