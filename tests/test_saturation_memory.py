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
