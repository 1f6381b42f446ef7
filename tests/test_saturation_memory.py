"""Saturation on large corpora: the similarities among the scored segments and the LSA vectors are computed a
block at a time, and the figures are exactly those of one block."""

from __future__ import annotations

import numpy as np
import pytest

import autocode.saturation._signals as signals
import autocode.saturation._space as space
from autocode.saturation._signals import recurrence
from autocode.saturation._space import LSA


@pytest.mark.parametrize("n_docs", [1, 4])
def test_recurrence_in_small_blocks_is_the_same(monkeypatch, n_docs):
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((50, 8)).astype(np.float32)
    Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    ref = Z[::7] + 0.1
    docs = np.array([f"d{i % n_docs}" for i in range(50)])
    whole = recurrence(Z, docs, ref, 3)
    seen = []
    original = signals._topk_mean

    def spy(sims, k):
        seen.append(sims.shape)
        return original(sims, k)

    monkeypatch.setattr(signals, "SIMILARITY_BLOCK", 120)  # 2 rows of 50 at a time
    monkeypatch.setattr(signals, "_topk_mean", spy)
    blocked = recurrence(Z, docs, ref, 3)
    assert max(rows * cols for rows, cols in seen if cols == 50) <= 120
    assert blocked.tolist() == whole.tolist()


def test_lsa_vectors_in_batches_are_the_same(coded, monkeypatch):
    texts = [s.text for s in coded.segments]
    lsa = LSA(n_components=5, max_features=1000, script="simplified")
    lsa.fit_transform(texts, random_state=0)
    whole = lsa.transform(texts)
    monkeypatch.setattr(space, "TRANSFORM_BATCH", 7)
    calls = []
    original = LSA._docs

    def spy(self, batch):
        calls.append(len(batch))
        return original(self, batch)

    monkeypatch.setattr(LSA, "_docs", spy)
    assert np.array_equal(lsa.transform(texts), whole)
    assert max(calls) == 7 and sum(calls) == len(texts)
    assert lsa.transform([]).shape == (0, whole.shape[1])


def _exact_recurrence(Z, docs, ref, k):
    """The recurrence signal as defined, every segment against every other segment of the batch (the
    computation before the sample, kept here as the reference)."""
    S = Z @ Z.T
    one_doc = len(np.unique(docs)) == 1
    exclude = np.eye(len(Z), dtype=bool) if one_doc else docs[:, None] == docs[None, :]
    S = np.where(exclude, -np.inf, S)
    top = np.sort(S, axis=1)[:, -k:]
    near = np.where(np.isfinite(top), top, 0.0).mean(axis=1)
    far = np.sort(Z @ ref.T, axis=1)[:, -k:].mean(axis=1)
    return near - far


def _unit(rng, n, d=8):
    Z = rng.standard_normal((n, d)).astype(np.float32)
    return Z / np.linalg.norm(Z, axis=1, keepdims=True)


@pytest.mark.parametrize("n_docs", [1, 5])
def test_recurrence_of_a_batch_within_the_sample_is_the_exact_one(n_docs):
    rng = np.random.default_rng(1)
    Z, ref = _unit(rng, 80), _unit(rng, 30)
    docs = np.array([f"d{i % n_docs}" for i in range(80)])
    assert len(Z) <= signals.RECURRENCE_SAMPLE
    got = recurrence(Z, docs, ref, 3)
    np.testing.assert_allclose(got, _exact_recurrence(Z, docs, ref, 3), rtol=0, atol=1e-6)
    # the sample changes nothing below its size, whatever the seed
    assert recurrence(Z, docs, ref, 3, random_state=7).tolist() == got.tolist()
    assert signals.recurrence_sample(80).tolist() == list(range(80))


@pytest.mark.parametrize("n_docs", [1, 6])
def test_recurrence_of_a_larger_batch_compares_with_a_seeded_sample(monkeypatch, n_docs):
    rng = np.random.default_rng(2)
    Z, ref = _unit(rng, 90), _unit(rng, 30)
    docs = np.array([f"d{i % n_docs}" for i in range(90)])
    monkeypatch.setattr(signals, "RECURRENCE_SAMPLE", 25)
    widths = []
    original = signals._topk_mean

    def spy(sims, k):
        widths.append(sims.shape[1])
        return original(sims, k)

    monkeypatch.setattr(signals, "_topk_mean", spy)
    got = recurrence(Z, docs, ref, 3, random_state=0)
    sample = signals.recurrence_sample(90, 0)
    assert len(sample) == 25 and len(set(sample.tolist())) == 25 and sample.tolist() == sorted(sample.tolist())
    assert set(widths) == {25, 30}  # the sample and the training segments; never the whole batch
    # the exact definition with the sample in place of the batch: own document (own row, for one document) left out
    S = Z @ Z[sample].T
    exclude = (np.arange(90)[:, None] == sample[None, :]) if n_docs == 1 else docs[:, None] == docs[sample][None, :]
    top = np.sort(np.where(exclude, -np.inf, S), axis=1)[:, -3:]
    near = np.where(np.isfinite(top), top, 0.0).mean(axis=1)
    far = np.sort(Z @ ref.T, axis=1)[:, -3:].mean(axis=1)
    np.testing.assert_allclose(got, near - far, rtol=0, atol=1e-6)
    # the same seed gives the same figures; another seed another sample
    assert recurrence(Z, docs, ref, 3, random_state=0).tolist() == got.tolist()
    assert signals.recurrence_sample(90, 1).tolist() != sample.tolist()


_FITTED: dict = {}


def _fitted(book, coded):
    """A model and an LSA scorer on the conftest corpus, fitted once per session (deterministic)."""
    if not _FITTED:
        import autocode as ac
        from autocode.saturation import NoveltyScorer

        model = ac.CodingModel(book, n_splits=3, random_state=0).fit(coded)
        _FITTED["fitted"] = (model, NoveltyScorer(space="lsa", n_splits=3).fit(model, coded))
    return _FITTED["fitted"]


def test_the_models_scores_are_kept_as_best_code_and_score_a_batch_at_a_time(book, coded, monkeypatch):
    """Scoring novelty keeps of the coding model's scores only each segment's best code and its score, computed
    a batch of segments at a time (each with its neighbours across batch borders): the same as in one call."""

    model, scorer = _fitted(book, coded)
    segs = coded.segments
    whole = scorer.score(model, segs)
    P = model.predict_proba(segs)
    assert whole.best_code == [model.codes_[j] for j in P.argmax(axis=1)]
    assert whole.best_score.tolist() == P.max(axis=1).tolist()
    seen = []
    original = type(model).predict_proba

    def spy(self, segments, *args, **kw):
        seen.append(len(segments))
        return original(self, segments, *args, **kw)

    monkeypatch.setattr(signals, "PROBA_BATCH", 5)
    monkeypatch.setattr(type(model), "predict_proba", spy)
    batched = scorer.score(model, segs)
    assert max(seen) == 5 and sum(seen) == len(segs)
    assert batched.best_code == whole.best_code and batched.best_score.tolist() == whole.best_score.tolist()
    assert np.array_equal(batched.components, whole.components, equal_nan=True)
    assert np.array_equal(batched.novelty, whole.novelty, equal_nan=True)


def test_key_phrases_count_a_weighted_background_as_its_copies():
    from autocode.saturation import key_phrases
    from autocode.text import ChineseTokenizer

    groups = [["小程序可以预约办证", "这个小程序老人不会用"], ["合唱队每周排练", "合唱队去区里比赛"]]
    background = ["社区开会商量事情", "物业管理小区", "小程序很方便"]
    tok = ChineseTokenizer()
    copies = key_phrases(groups, background * 3, tok)
    assert key_phrases(groups, background, tok, background_weight=3.0) == copies
    assert key_phrases(groups, background, tok) != copies  # (the weight matters: 小程序 is less distinctive)


def test_candidates_are_named_against_a_seeded_sample_of_a_large_background(book, coded, monkeypatch):
    """Naming candidates tags at most BACKGROUND_SAMPLE segments outside them, each standing for its share."""
    import autocode.saturation._candidates as candidates
    from autocode.saturation import propose_codes

    model, scorer = _fitted(book, coded)
    scores = scorer.score(model, coded.segments)
    calls = []
    original = candidates.key_phrases

    def spy(groups, background, tokenizer, k, background_weight=1.0):
        calls.append((len(background), background_weight, sum(map(len, groups))))
        return original(groups, background, tokenizer, k, background_weight=background_weight)

    monkeypatch.setattr(candidates, "key_phrases", spy)
    level = min(0.95, float(np.nanmedian(scores.novelty)))  # about half the segments to review, half outside
    whole = propose_codes(scores, book, scorer, review=level, min_size=1)
    assert calls and calls[0][1] == 1.0
    n_outside = calls[0][0]
    assert n_outside == int(scores.eligible.sum()) - calls[0][2] > 4
    monkeypatch.setattr(candidates, "BACKGROUND_SAMPLE", 4)
    sampled = propose_codes(scores, book, scorer, review=level, min_size=1)
    assert calls[1] == (4, n_outside / 4, calls[0][2])
    assert [c.members for c in sampled] == [c.members for c in whole]  # the groups do not change, only names may
