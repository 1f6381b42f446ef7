"""The corpus inference loop: batching plans, collation, the lean forward pass against Hugging Face's."""

from __future__ import annotations

import copy
import sys

import numpy as np
import pytest

from autocode.backends.transformer.inference import Batch, TokenizedTexts, _prefetch, collate, plan_batches

LENGTHS = np.random.default_rng(0).integers(1, 60, size=300)


@pytest.mark.parametrize("max_tokens", [64, 500, 4096])
def test_padded_plan_covers_every_row_once_within_budget(max_tokens):
    batches = plan_batches(LENGTHS, max_tokens=max_tokens, multiple_of=8)
    rows = np.concatenate([b.rows for b in batches])
    assert sorted(rows.tolist()) == list(range(len(LENGTHS)))
    for b in batches:
        assert b.seq_len % 8 == 0 and b.seq_len >= LENGTHS[b.rows].max()
        assert b.n_rows == len(b.rows)
        assert b.n_rows * b.seq_len <= max_tokens or b.n_rows == 1
    # longest first: padding stays small
    assert LENGTHS[batches[0].rows].max() == LENGTHS.max()


def test_packed_plan_budgets_real_tokens():
    batches = plan_batches(LENGTHS, max_tokens=300, padded=False)
    assert sorted(np.concatenate([b.rows for b in batches]).tolist()) == list(range(len(LENGTHS)))
    assert all(LENGTHS[b.rows].sum() <= 300 for b in batches)


def test_static_rows_give_one_shape_per_length_bucket():
    batches = plan_batches(LENGTHS, max_tokens=512, multiple_of=32, static_rows=True)
    shapes = {}
    for b in batches:
        assert b.n_rows == 512 // b.seq_len and len(b.rows) <= b.n_rows
        assert (LENGTHS[b.rows] > b.seq_len - 32).all()  # every row in the batch's bucket
        shapes.setdefault(b.seq_len, set()).add(b.n_rows)
    assert all(len(v) == 1 for v in shapes.values()) and set(shapes) == {32, 64}
    assert sorted(np.concatenate([b.rows for b in batches]).tolist()) == list(range(len(LENGTHS)))


def test_max_rows_caps_batches():
    assert max(b.n_rows for b in plan_batches(LENGTHS, max_tokens=10**6, max_rows=7)) == 7


def test_collate_padded_and_packed():
    t = TokenizedTexts.from_lists([[1, 2, 3], [4], [5, 6]], [[0, 0, 1], [0], [0, 1]])
    a = collate(t, Batch(np.array([2, 1]), 4, 3), pad_id=9)
    assert a["input_ids"].tolist() == [[5, 6, 9, 9], [4, 9, 9, 9], [9, 9, 9, 9]]
    assert a["lengths"].tolist() == [2, 1, 1]  # dummy row: length 1
    assert a["token_type_ids"].tolist() == [[0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    p = collate(t, Batch(np.array([0, 2]), 8, 2), packed=True)
    assert p["input_ids"].tolist() == [1, 2, 3, 5, 6]
    assert p["positions"].tolist() == [0, 1, 2, 0, 1]
    assert p["cu_seqlens"].tolist() == [0, 3, 5] and p["max_len"] == 3


def test_tokenized_take_save_load(tmp_path):
    t = TokenizedTexts.from_lists([[1, 2, 3], [], [5, 6]], [[0, 0, 1], [], [0, 1]])
    s = t.take(np.array([2, 0]))
    assert [s.row(i).tolist() for i in range(2)] == [[5, 6], [1, 2, 3]]
    assert s.type_ids.tolist() == [0, 1, 0, 0, 1]
    t.save(tmp_path / "ids.npz")
    u = TokenizedTexts.load(tmp_path / "ids.npz")
    assert u.ids.tolist() == t.ids.tolist() and u.offsets.tolist() == t.offsets.tolist()


def test_prefetch_keeps_order_and_raises():
    assert list(_prefetch(lambda x: x * 2, range(50), 3)) == list(range(0, 100, 2))

    def boom(x):
        if x == 3:
            raise ValueError("bad item 3")
        return x

    with pytest.raises(ValueError, match="bad item 3"):
        list(_prefetch(boom, range(10), 2))


def test_the_core_and_this_package_import_without_torch():
    """torch, transformers and datasets are imported only when the transformer backend is used: not by
    ``import autocode``, nor by importing the transformer package (which registers the backend) or its public
    modules. Checked in a fresh interpreter, where nothing else has imported them yet."""
    import os
    import subprocess
    from pathlib import Path

    import autocode

    root = str(Path(autocode.__file__).resolve().parents[1])  # this checkout, not another installed copy
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    code = (
        "import sys, json\n"
        "import autocode, autocode.backends, autocode.model, autocode.io, autocode.cli\n"
        "import autocode.backends.tfidf, autocode.backends.embedding\n"
        "import autocode.backends.transformer\n"
        "import autocode.backends.transformer.inference, autocode.backends.transformer.e5\n"
        "import autocode.backends.transformer.dataset\n"
        "import autocode.backends.transformer.devices, autocode.backends.transformer.distributed\n"
        "from autocode.backends import available_backends, get_backend\n"
        "assert 'transformer.v1' in available_backends()\n"
        "assert get_backend('transformer').__name__ == 'TransformerBackend'\n"
        "print(json.dumps(sorted(m for m in ('torch', 'transformers', 'datasets', 'safetensors') "
        "if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_build_scorer_without_torch_names_the_extra(monkeypatch):
    from autocode.backends.transformer.inference import build_scorer
    from autocode.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'autocode\[transformer\]'"):
        build_scorer(object(), object())


# -- with torch ------------------------------------------------------------------------------------------
def _tiny(torch, kind="bert", hidden=32):
    from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    kw = dict(vocab_size=50, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=4,
              intermediate_size=2 * hidden, max_position_embeddings=80, type_vocab_size=2)
    if kind == "bert":
        model = BertModel(BertConfig(pad_token_id=0, **kw), add_pooling_layer=False)
    else:
        model = XLMRobertaModel(XLMRobertaConfig(pad_token_id=1, **kw), add_pooling_layer=False)
    return model.eval()


def _random_tokens(n=40, types=False, seed=1):
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, 50, size=rng.integers(1, 30)).tolist() for _ in range(n)]
    tt = [[int(j > len(r) // 2) for j in range(len(r))] for r in ids] if types else None
    return TokenizedTexts.from_lists(ids, tt)


def _reference(torch, model, head, tokens, pooling):
    """One text at a time through Hugging Face's own forward pass."""
    out = []
    with torch.no_grad():
        for i in range(len(tokens)):
            ids = torch.tensor(tokens.row(i), dtype=torch.long)[None]
            kw = {}
            if tokens.type_ids is not None:
                s, e = tokens.offsets[i], tokens.offsets[i + 1]
                kw["token_type_ids"] = torch.tensor(tokens.type_ids[s:e], dtype=torch.long)[None]
            h = model(input_ids=ids, **kw).last_hidden_state[0]
            out.append(head(h[0] if pooling == "cls" else h.mean(0)).numpy())
    return np.array(out)


@pytest.mark.parametrize("kind", ["bert", "xlm-roberta"])
@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("types", [False, True])
def test_every_path_matches_hugging_face(torch, kind, pooling, types):
    from autocode.backends.transformer.inference import build_scorer, score

    model = _tiny(torch, kind)
    head = torch.nn.Linear(32, 3)
    tokens = _random_tokens(types=types)
    ref = _reference(torch, model, head, tokens, pooling)
    for fast, unpad in [(True, False), (True, True), (False, False)]:
        scorer = build_scorer(copy.deepcopy(model), copy.deepcopy(head), pooling=pooling, fast=fast)
        assert scorer.fast == fast
        got = score(scorer, tokens, device="cpu", max_tokens=128, unpad=unpad)
        np.testing.assert_allclose(got, ref, atol=2e-5, err_msg=f"fast={fast} unpad={unpad}")


def test_scores_come_back_in_input_order_when_streamed(torch, tmp_path):
    from _tiny_bert import make_tiny_bert
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.inference import build_scorer, iter_scores, score_texts

    texts = ["社区党支部", "居民议事会每月讨论小区的事情", "老人", "网格员上门为老人提供服务", "党员"] * 7
    folder = make_tiny_bert(tmp_path / "m", texts)
    tok = AutoTokenizer.from_pretrained(folder)
    scorer = build_scorer(AutoModel.from_pretrained(folder), torch.nn.Linear(32, 2))
    whole = score_texts(scorer, tok, texts, device="cpu")
    chunks = list(iter_scores(scorer, tok, iter(texts), chunk_size=8, device="cpu", max_tokens=64))
    assert [len(c) for c in chunks] == [8, 8, 8, 8, 3]
    np.testing.assert_allclose(np.concatenate(chunks), whole, atol=1e-5)
    np.testing.assert_allclose(whole[0], whole[5], atol=1e-5)  # same text, same score wherever it sits
    assert score_texts(scorer, tok, [], device="cpu").shape == (0, 2)


def test_fast_path_refuses_other_architectures(torch):
    from transformers import DistilBertConfig, DistilBertModel

    from autocode.backends.transformer.inference import build_scorer

    m = DistilBertModel(DistilBertConfig(vocab_size=30, dim=16, n_layers=1, n_heads=2, hidden_dim=32))
    with pytest.raises(ValueError, match="lean forward pass supports"):
        build_scorer(m, torch.nn.Linear(16, 1), fast=True)
    assert build_scorer(m, torch.nn.Linear(16, 1)).fast is False


@pytest.mark.gpu
@pytest.mark.filterwarnings("ignore:.*torch.jit.script_method.*:DeprecationWarning")  # torch's inductor import
def test_cuda_paths_agree(torch):
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from autocode.backends.transformer.inference import build_scorer, score

    model = _tiny(torch, "bert", hidden=64)
    head = torch.nn.Linear(64, 3)
    tokens = _random_tokens(n=500)
    ref = score(build_scorer(copy.deepcopy(model), copy.deepcopy(head)), tokens, device="cpu")
    for kw in [dict(unpad=False), dict(unpad=True), dict(compile=True, unpad=False), dict(cuda_graphs=True),
               dict(cuda_graphs=True, max_tokens=2048), dict(cuda_graphs=True, unpad=False),
               dict(compile=True, cuda_graphs=True)]:
        got = score(build_scorer(copy.deepcopy(model), copy.deepcopy(head)), tokens, device="cuda", **kw)
        np.testing.assert_allclose(got, ref, atol=5e-2, err_msg=str(kw))  # bf16
    pairs = _random_tokens(n=300, types=True)
    ref = score(build_scorer(copy.deepcopy(model), copy.deepcopy(head)), pairs, device="cpu")
    got = score(build_scorer(copy.deepcopy(model), copy.deepcopy(head)), pairs, device="cuda", cuda_graphs=True)
    np.testing.assert_allclose(got, ref, atol=5e-2)


@pytest.mark.parametrize("types", [False, True])
def test_fixed_shape_packed_batches_score_the_same(torch, types):
    """Batches grown to a fixed shape for CUDA graphs (filler sequences, rows of length 0) give the real rows
    the scores they get unpadded; checked on the CPU attention path."""
    from autocode.backends.transformer.inference import build_scorer, collate, pad_packed, plan_batches

    scorer = build_scorer(_tiny(torch, "bert"), torch.nn.Linear(32, 3)).eval()
    tokens = _random_tokens(n=60, types=types)

    def run(arrays):
        L = max(int(arrays["max_len"]), 1)
        lengths, cu = arrays["lengths"], arrays["cu_seqlens"]
        pos = np.arange(L)
        pad_index = np.where(pos[None, :] < lengths[:, None], cu[:-1, None] + pos[None, :], cu[-1])
        seq_ids = np.repeat(np.arange(len(lengths)), lengths)
        t = {k: torch.from_numpy(np.asarray(v)).long() for k, v in arrays.items() if k not in ("max_len", "rows")}
        with torch.no_grad():
            return scorer.forward_packed(t["input_ids"], t["positions"], t["cu_seqlens"], L,
                                         torch.from_numpy(seq_ids), t["lengths"], t.get("token_type_ids"),
                                         torch.from_numpy(pad_index)).numpy()

    for batch in plan_batches(tokens.lengths, max_tokens=200, padded=False):
        packed = collate(tokens, batch, packed=True)
        fixed = pad_packed(packed, 256, len(batch.rows) + 12, max_len=32)
        assert len(fixed["input_ids"]) == 256 and fixed["cu_seqlens"][-1] == 256
        assert (fixed["lengths"] <= 32).all()
        np.testing.assert_allclose(run(fixed)[: fixed["rows"]], run(packed), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="does not fit"):
        pad_packed(collate(tokens, plan_batches(tokens.lengths, max_tokens=200, padded=False)[0], packed=True),
                   100, 5, max_len=32)


def test_cuda_graph_pool_warning_is_silenced(torch, monkeypatch):
    """torch warns 'The CUDA Graph is empty' when its graph manager sets up its memory pool (seen on an H100
    with ``cuda_graphs=True``): benign, and not the user's to act on."""
    import warnings

    from autocode.backends.transformer.inference import build_scorer, score

    scorer = build_scorer(_tiny(torch), torch.nn.Linear(32, 2))
    original = scorer.forward

    def noisy(*a, **k):
        warnings.warn("The CUDA Graph is empty. This usually means that the graph was attempted to be captured "
                      "on wrong device or stream.", UserWarning, stacklevel=2)
        return original(*a, **k)

    monkeypatch.setattr(scorer, "forward", noisy)
    assert score(scorer, _random_tokens(), device="cpu").shape == (40, 2)  # the warning would fail the test


@pytest.mark.parametrize("unpad", [False, True])
def test_no_host_sync_inside_the_loop(torch, monkeypatch, unpad):
    """Nothing in the loop reads a tensor's value back to Python: the one ``.cpu()`` is the final copy."""
    from autocode.backends.transformer.inference import build_scorer, score

    calls = []
    for name in ("item", "tolist", "cpu", "numpy", "__bool__", "__int__", "__float__", "__index__"):
        original = getattr(torch.Tensor, name)

        def spy(self, *a, _name=name, _original=original, **k):
            calls.append(_name)
            return _original(self, *a, **k)

        monkeypatch.setattr(torch.Tensor, name, spy)
    scorer = build_scorer(_tiny(torch), torch.nn.Linear(32, 3))
    out = score(scorer, _random_tokens(n=100), device="cpu", max_tokens=64, unpad=unpad, prefetch=2)
    monkeypatch.undo()
    assert out.shape == (100, 3)
    assert calls == ["cpu", "numpy"]
