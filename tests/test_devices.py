"""Scoring on several devices: shards, one process per device, scores merged in input order (CPU processes
stand in for GPUs)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from autocode.backends.transformer.devices import parse_devices, shard_ranges
from autocode.backends.transformer.inference import TokenizedTexts
from autocode.exceptions import AutocodeError


@pytest.mark.parametrize("n_shards", [1, 2, 3, 7, 50])
def test_shards_are_contiguous_balanced_and_never_empty(n_shards):
    lengths = np.random.default_rng(0).integers(1, 80, size=40)
    ranges = shard_ranges(lengths, n_shards)
    assert len(ranges) == min(n_shards, 40)
    assert ranges[0][0] == 0 and ranges[-1][1] == 40
    assert all(a < b for a, b in ranges) and all(r[1] == s[0] for r, s in zip(ranges, ranges[1:]))
    if 1 < n_shards <= 3:
        tokens = [lengths[a:b].sum() for a, b in ranges]
        assert max(tokens) - min(tokens) <= 2 * lengths.max()


def test_shards_of_tiny_inputs():
    assert shard_ranges([], 4) == []
    assert shard_ranges([3], 4) == [(0, 1)]
    assert shard_ranges([100, 1, 1], 3) == [(0, 1), (1, 2), (2, 3)]


def test_device_lists():
    assert parse_devices("cuda:0, cuda:1") == ["cuda:0", "cuda:1"]
    assert parse_devices(["cpu", "cpu"]) == ["cpu", "cpu"]
    with pytest.raises(AutocodeError, match="devices is empty: pass 'all', a count"):
        parse_devices(" , ")
    with pytest.raises(AutocodeError, match="devices must be at least 1, got 0"):
        parse_devices(0)


# -- with torch ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(before)


def _tiny_scorer(torch):
    from transformers import BertConfig, BertModel

    from autocode.backends.transformer.inference import build_scorer

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=64, max_position_embeddings=80, pad_token_id=0),
                      add_pooling_layer=False).eval()
    return build_scorer(model, torch.nn.Linear(32, 3))


def test_count_of_cpu_processes(torch, monkeypatch):
    import autocode.backends.transformer.devices as D

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.visible_devices() == ["cpu"] and parse_devices("all") == ["cpu"] and parse_devices(3) == ["cpu"] * 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_devices("all") == ["cuda:0", "cuda:1"] and parse_devices(1) == ["cuda:0"]
    with pytest.raises(AutocodeError, match=r"devices=3, but only 2 CUDA device\(s\) are visible"):
        parse_devices(3)


@pytest.mark.parametrize("unpad", [False, True])
def test_two_cpu_processes_give_the_single_process_scores_in_input_order(torch, unpad):
    from autocode.backends.transformer.devices import _slice, score_on_devices
    from autocode.backends.transformer.inference import score

    rng = np.random.default_rng(3)
    tokens = TokenizedTexts.from_lists([rng.integers(2, 50, size=rng.integers(1, 40)).tolist() for _ in range(61)])
    scorer = _tiny_scorer(torch)
    one = score(copy.deepcopy(scorer), tokens, device="cpu", max_tokens=128, unpad=unpad)
    two = score_on_devices(scorer, tokens, devices=["cpu", "cpu"], max_tokens=128, unpad=unpad)
    assert two.shape == one.shape == (61, 3)
    # bit for bit what this process gives for the same shards, merged in input order
    shards = [score(copy.deepcopy(scorer), _slice(tokens, a, b), device="cpu", max_tokens=128, unpad=unpad)
              for a, b in shard_ranges(tokens.lengths, 2)]
    np.testing.assert_array_equal(two, np.concatenate(shards))
    # and the single-process scores up to float rounding (batches are cut per shard, so shapes differ)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-6)
    assert score_on_devices(scorer, TokenizedTexts.from_lists([]), devices=["cpu", "cpu"]).shape == (0, 3)


def test_texts_and_pairs_are_tokenised_in_each_process(torch, tmp_path):
    from _tiny_bert import make_tiny_bert
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.devices import score_texts_on_devices
    from autocode.backends.transformer.inference import build_scorer, score_texts

    texts = ["社区党支部", "居民议事会每月讨论小区的事情", "老人", "网格员上门为老人提供服务", "党员"] * 5
    pairs = texts[1:] + texts[:1]
    folder = make_tiny_bert(tmp_path / "m", texts)
    tok = AutoTokenizer.from_pretrained(folder)
    torch.manual_seed(0)
    scorer = build_scorer(AutoModel.from_pretrained(folder), torch.nn.Linear(32, 2))
    one = score_texts(copy.deepcopy(scorer), tok, texts, pairs, device="cpu", max_tokens=64)
    two = score_texts_on_devices(scorer, tok, texts, pairs, devices=2, max_tokens=64, chunk_size=4)
    np.testing.assert_allclose(two, one, atol=1e-6)
    np.testing.assert_allclose(two[0], two[5], atol=1e-6)
    with pytest.raises(AutocodeError, match="25 texts but 3 pairs: pass one second text per text"):
        score_texts_on_devices(scorer, tok, texts, pairs[:3], devices=2)


def test_a_failing_process_is_named(torch):
    from autocode.backends.transformer.devices import score_on_devices

    tokens = TokenizedTexts.from_lists([[2, 3, 4]] * 6)
    with pytest.raises(AutocodeError, match=r"Scoring shard 1 of 2 on cpu failed: AttributeError: .*no_such_type"):
        score_on_devices(_tiny_scorer(torch), tokens, devices=["cpu", "cpu"], dtype="no_such_type")
