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
TEXTS = ["社区党支部", "居民议事会每月讨论小区的事情", "老人", "网格员上门为老人提供服务", "党员"] * 5


@pytest.fixture(scope="module")
def tiny(torch, tmp_path_factory):
    """A tiny BERT folder, its tokenizer and a scorer over it."""
    from _tiny_bert import make_tiny_bert
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.inference import build_scorer

    folder = make_tiny_bert(tmp_path_factory.mktemp("tiny"), TEXTS)
    torch.manual_seed(0)
    return AutoTokenizer.from_pretrained(folder), build_scorer(AutoModel.from_pretrained(folder),
                                                               torch.nn.Linear(32, 3))


@pytest.fixture(scope="module")
def pool(tiny):
    """Two CPU processes standing in for two GPUs, started once for the tests below."""
    from autocode.backends.transformer.devices import DevicePool

    with DevicePool(tiny[1], ["cpu", "cpu"]) as p:
        yield p


def test_count_of_cpu_processes(torch, monkeypatch):
    import autocode.backends.transformer.devices as D

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert D.visible_devices() == ["cpu"] and parse_devices("all") == ["cpu"] and parse_devices(3) == ["cpu"] * 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert parse_devices("all") == ["cuda:0", "cuda:1"] and parse_devices(1) == ["cuda:0"]
    with pytest.raises(AutocodeError, match=r"devices=3, but only 2 CUDA device\(s\) are visible"):
        parse_devices(3)


@pytest.mark.slow
@pytest.mark.parametrize("unpad", [False, True])
def test_two_cpu_processes_give_the_single_process_scores_in_input_order(torch, tiny, pool, unpad):
    from autocode.backends.transformer.devices import _slice
    from autocode.backends.transformer.inference import score

    scorer = tiny[1]
    rng = np.random.default_rng(3)
    tokens = TokenizedTexts.from_lists([rng.integers(5, 20, size=rng.integers(1, 40)).tolist() for _ in range(61)])
    one = score(copy.deepcopy(scorer), tokens, device="cpu", max_tokens=128, unpad=unpad)
    two = pool.score(tokens, max_tokens=128, unpad=unpad)
    assert two.shape == one.shape == (61, 3)
    # bit for bit what this process gives for the same shards, merged in input order
    shards = [score(copy.deepcopy(scorer), _slice(tokens, a, b), device="cpu", max_tokens=128, unpad=unpad)
              for a, b in shard_ranges(tokens.lengths, 2)]
    np.testing.assert_array_equal(two, np.concatenate(shards))
    # and the single-process scores up to float rounding (batches are cut per shard, so shapes differ)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-6)
    assert pool.score(TokenizedTexts.from_lists([[7]])).shape == (1, 3)  # fewer texts than devices


@pytest.mark.slow
def test_texts_and_pairs_are_tokenised_in_each_process(tiny, pool):
    from autocode.backends.transformer.inference import score_texts

    tok, scorer = tiny
    pairs = TEXTS[1:] + TEXTS[:1]
    one = score_texts(copy.deepcopy(scorer), tok, TEXTS, pairs, device="cpu", max_tokens=64)
    two = pool.score_texts(tok, TEXTS, pairs, max_tokens=64, chunk_size=4)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-6)
    np.testing.assert_allclose(two[0], two[5], atol=1e-6)
    with pytest.raises(AutocodeError, match="25 texts but 3 pairs: pass one second text per text"):
        pool.score_texts(tok, TEXTS, pairs[:3])


@pytest.mark.slow
def test_a_failing_job_is_named_and_the_pool_goes_on(pool):
    tokens = TokenizedTexts.from_lists([[5, 6, 7]] * 6)
    with pytest.raises(AutocodeError, match=r"Scoring shard [12] of 2 on cpu failed: AttributeError: .*no_such_type"):
        pool.score(tokens, dtype="no_such_type")
    assert pool.score(tokens).shape == (6, 3)


@pytest.mark.slow
def test_one_call_starts_and_stops_its_processes(torch, tiny):
    from autocode.backends.transformer.devices import DevicePool, score_on_devices, score_texts_on_devices

    tok, scorer = tiny
    tokens = TokenizedTexts.from_lists([[5, 6, 7], [8, 9], [10]])
    got = score_on_devices(scorer, tokens, devices=["cpu", "cpu"])
    np.testing.assert_allclose(got, score_on_devices(scorer, tokens, devices=["cpu"]), rtol=0, atol=1e-6)
    assert score_texts_on_devices(scorer, tok, TEXTS[:2], devices=["cpu"]).shape == (2, 3)
    with pytest.raises(AutocodeError, match="2 texts but 1 pairs"):
        score_texts_on_devices(scorer, tok, TEXTS[:2], TEXTS[:1], devices=["cpu", "cpu"])
    p = DevicePool(scorer, ["cpu"])
    p.close()
    with pytest.raises(AutocodeError, match="This DevicePool is closed: make a new one"):
        p.score(tokens)


@pytest.mark.slow
def test_backend_predicts_on_several_devices(torch, coded, tmp_path):
    from _tiny_bert import make_tiny_bert

    from autocode.backends.transformer import TransformerBackend
    from autocode.model import make_inputs

    folder = make_tiny_bert(tmp_path / "tiny", [s.text for s in coded.segments])
    backend = TransformerBackend(model_name=str(folder), epochs=1, early_stopping=False, device="cpu,cpu")
    enc = backend.encode(make_inputs(coded.segments))
    backend.fit(enc, coded.labels(["party", "council", "service"], "E"))  # trains on the first device
    two = backend.decision_function(enc)
    assert backend._pool is not None and backend._pool.devices == ["cpu", "cpu"]
    again = backend.decision_function(enc)  # the same processes, still running
    one = backend.set_params(device="cpu").decision_function(enc)
    backend._drop_scorer()
    np.testing.assert_array_equal(two, again)
    np.testing.assert_allclose(two, one, rtol=0, atol=1e-5)


@pytest.mark.gpu
def test_every_visible_gpu_agrees_with_the_cpu(torch, tiny):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from autocode.backends.transformer.devices import score_on_devices
    from autocode.backends.transformer.inference import score

    rng = np.random.default_rng(5)
    tokens = TokenizedTexts.from_lists([rng.integers(5, 20, size=rng.integers(1, 60)).tolist() for _ in range(500)])
    ref = score(copy.deepcopy(tiny[1]), tokens, device="cpu")
    names = parse_devices("all") * (2 if torch.cuda.device_count() == 1 else 1)  # two processes on one GPU too
    got = score_on_devices(copy.deepcopy(tiny[1]), tokens, devices=names)
    np.testing.assert_allclose(got, ref, atol=5e-2)  # bf16
