"""Corpora larger than memory: scoring a ``datasets`` stream over local files, chunk by chunk, in order."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

from autocode.backends.transformer.dataset import iter_dataset_scores, load_texts  # noqa: E402
from autocode.exceptions import AutocodeError  # noqa: E402

TEXTS = ["社区党支部", "居民议事会每月讨论小区的事情", "老人", "网格员上门为老人提供服务", "党员", "，。"] * 4


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch
    from _tiny_bert import make_tiny_bert
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.inference import build_scorer

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    folder = make_tiny_bert(tmp_path_factory.mktemp("tiny"), TEXTS)
    torch.manual_seed(0)
    yield AutoTokenizer.from_pretrained(folder), build_scorer(AutoModel.from_pretrained(folder),
                                                              torch.nn.Linear(32, 2))
    torch.set_num_threads(before)


def test_a_streamed_jsonl_corpus_scores_as_the_whole_list(tiny, tmp_path):
    from autocode.backends.transformer.inference import score_texts

    tok, scorer = tiny
    path = tmp_path / "corpus.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(TEXTS):
            f.write(json.dumps({"id": i, "text": t, "question": TEXTS[i - 1]}, ensure_ascii=False) + "\n")
    ds = load_texts(path)
    assert type(ds).__name__ == "IterableDataset"
    whole = score_texts(copy.deepcopy(scorer), tok, TEXTS, device="cpu")
    chunks = list(iter_dataset_scores(scorer, tok, ds, chunk_size=5, device="cpu", max_tokens=64))
    assert [len(c) for c in chunks] == [5, 5, 5, 5, 4]
    np.testing.assert_allclose(np.concatenate(chunks), whole, rtol=0, atol=1e-5)
    pairs = list(iter_dataset_scores(scorer, tok, ds, pair_column="question", chunk_size=7, device="cpu"))
    np.testing.assert_allclose(np.concatenate(pairs), score_texts(copy.deepcopy(scorer), tok, TEXTS,
                                                                  TEXTS[-1:] + TEXTS[:-1], device="cpu"),
                               rtol=0, atol=1e-5)
    # a memory-mapped (not streamed) dataset gives the same
    mapped = load_texts([path], streaming=False)
    assert len(mapped) == len(TEXTS)
    np.testing.assert_allclose(np.concatenate(list(iter_dataset_scores(scorer, tok, mapped, device="cpu"))),
                               whole, rtol=0, atol=1e-5)


def test_text_files_and_wrong_columns(tiny, tmp_path):
    tok, scorer = tiny
    (tmp_path / "a.txt").write_text("\n".join(TEXTS[:3]) + "\n", encoding="utf-8")
    got = list(iter_dataset_scores(scorer, tok, load_texts(tmp_path / "a.txt"), device="cpu"))
    assert np.concatenate(got).shape == (3, 2)
    with pytest.raises(AutocodeError, match=r"The dataset has no column 'body'; it has text\. Name the column"):
        list(iter_dataset_scores(scorer, tok, load_texts(tmp_path / "a.txt"), text_column="body"))
    with pytest.raises(AutocodeError, match=r"The dataset has no column 'body'; it has text\."):
        list(iter_dataset_scores(scorer, tok, load_texts(tmp_path / "a.txt", streaming=False), text_column="body"))


def test_unreadable_inputs_are_named(tmp_path):
    with pytest.raises(AutocodeError, match=r"x\.docx: cannot read \.docx as a corpus; use \.jsonl, \.parquet"):
        load_texts(tmp_path / "x.docx")
    with pytest.raises(AutocodeError, match=r"missing\.jsonl: no such file"):
        load_texts(tmp_path / "missing.jsonl")
    with pytest.raises(AutocodeError, match="No input files"):
        load_texts([])
    (tmp_path / "a.csv").write_text("text\n党员\n", encoding="utf-8")
    (tmp_path / "b.txt").write_text("党员\n", encoding="utf-8")
    with pytest.raises(AutocodeError, match=r"files of different kinds \(csv, text\); convert them"):
        load_texts([tmp_path / "a.csv", tmp_path / "b.txt"])
