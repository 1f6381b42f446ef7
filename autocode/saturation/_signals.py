"""The novelty signals' arithmetic in the scorer's space: nearest training segments, code prototypes, the
logistic regression of coded vs uncoded talk, and the digest that ties a scorer to its model."""

from __future__ import annotations

import hashlib
import json

import numpy as np

COMPONENTS = ("model", "centroid", "knn", "new_code", "recurrence", "unexplained", "mahalanobis",
              "relative_mahalanobis")
"""The novelty signals, in the column order of :attr:`NoveltyScores.components`."""


SIMILARITY_BLOCK = 1 << 23
"""Entries of the segments x sample similarities that :func:`recurrence` holds at a time (a block of rows
against the whole sample; with its masks and the top-k copy about 100 MB)."""

RECURRENCE_SAMPLE = 8192
"""Segments of a batch that :func:`recurrence` compares each segment with: all of them in a batch of at most this
many, else a sample of this many drawn with the scorer's seed, so that its time grows linearly with the batch
(8,192 x 100 LSA dimensions: 3 MB). A concept said in one segment in a thousand still has about 8 segments in
the sample, more than the 5 nearest averaged."""


def _topk_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row (``-inf`` entries, i.e. excluded rows, are never among them
    while there are enough others)."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    k = min(k, sims.shape[1])
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return np.where(np.isfinite(top), top, 0.0).mean(axis=1)


def knn_distance(Z: np.ndarray, ref: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    """1 - mean cosine similarity to the ``k`` nearest rows of ``ref`` (rows are unit vectors).

    >>> knn_distance(np.array([[1.0, 0.0]]), np.array([[1.0, 0.0], [0.0, 1.0]]), k=2).tolist()
    [0.5]
    """
    out = np.ones(len(Z))
    if len(ref) == 0:
        return out
    for s in range(0, len(Z), batch):
        out[s : s + batch] = 1 - _topk_mean(Z[s : s + batch] @ ref.T, k)
    return out


def recurrence_sample(n: int, random_state=0, size: int | None = None) -> np.ndarray:
    """The sorted rows of a batch of ``n`` segments that :func:`recurrence` compares with: all of them when
    ``n <= size`` (default :data:`RECURRENCE_SAMPLE`), else ``size`` of them drawn without replacement with the
    seed ``random_state``.

    >>> recurrence_sample(4).tolist(), len(recurrence_sample(10, size=3))
    ([0, 1, 2, 3], 3)
    """
    size = RECURRENCE_SAMPLE if size is None else size
    if n <= size:
        return np.arange(n)
    return np.sort(np.random.default_rng(random_state).choice(n, size, replace=False))


def recurrence(Z: np.ndarray, docs: np.ndarray, ref: np.ndarray, k: int, random_state=0) -> np.ndarray:
    """How much nearer each row of the batch ``Z`` is to the batch's other documents than to the training
    segments ``ref``: mean cosine similarity to its ``k`` nearest rows of ``Z`` from other documents (the other
    rows of its own document when the batch holds one document) minus that to its ``k`` nearest rows of ``ref``.
    A new concept recurs in the new interviews and is far from the training talk.

    The rows of ``Z`` compared with are those of :func:`recurrence_sample` (every row in a batch of at most
    :data:`RECURRENCE_SAMPLE`; a seeded sample of that many in a larger one), so the time is linear in the batch.

    >>> Z = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> recurrence(Z, np.array(["a", "b", "b"]), np.array([[0.0, 1.0]]), k=1).tolist()
    [1.0, 1.0, -1.0]
    """
    out = np.zeros(len(Z))
    if len(Z) == 0:
        return out
    names, docs = np.unique(np.asarray(docs), return_inverse=True)  # documents as integers: cheap to compare
    sample = recurrence_sample(len(Z), random_state)
    whole = len(sample) == len(Z)  # (then Z itself, not a copy: the same products as ever, to the last bit)
    S_ref, docs_ref = (Z, docs) if whole else (Z[sample], docs[sample])
    rows = recurrence_rows(len(sample))
    for s in range(0, len(Z), rows):
        out[s : s + rows] = recurrence_block(Z[s : s + rows], docs[s : s + rows], s, S_ref, docs_ref, sample,
                                             len(names) == 1, ref, k, len(Z))
    return out


def recurrence_rows(n_sample: int) -> int:
    """Rows of a batch :func:`recurrence` compares with the sample at a time (the block and its masks stay
    small at any size)."""
    return max(1, min(2048, SIMILARITY_BLOCK // max(n_sample, 1)))


def recurrence_block(Zb: np.ndarray, docs_b: np.ndarray, start: int, S_ref: np.ndarray, docs_ref: np.ndarray,
                     sample: np.ndarray, one_doc: bool, ref: np.ndarray, k: int, n: int) -> np.ndarray:
    """:func:`recurrence` of the rows ``start, start + 1, ...`` (``Zb``, their documents ``docs_b`` as integers)
    of a batch of ``n`` rows whose :func:`recurrence_sample` rows are ``sample`` (vectors ``S_ref``, documents
    ``docs_ref``); ``one_doc``: the batch holds one document. A batch scored block by block
    (:data:`recurrence_rows` rows at a time) gets the values :func:`recurrence` gives it whole."""
    S = Zb @ S_ref.T
    exclude = np.arange(start, start + len(S))[:, None] == sample[None, :] if one_doc else (
        docs_b[:, None] == docs_ref[None, :])
    near = _topk_mean(np.where(exclude, -np.inf, S), k) if n > 1 else np.zeros(len(S))
    return near - (1 - knn_distance(Zb, ref, k))


def prototypes(Z: np.ndarray, Y: np.ndarray, desc: np.ndarray) -> np.ndarray:
    """Per code: the normalised sum of its coded segments and its description vector (one example's weight)."""
    from sklearn.preprocessing import normalize

    P = Y.T.astype(np.float32) @ Z + desc
    return normalize(P)


def logistic(Z: np.ndarray, y: np.ndarray, random_state) -> tuple[np.ndarray, float]:
    """Weights and intercept of a logistic regression of ``y`` on ``Z`` (C = 1); the log-odds of the base rate
    and zero weights when ``y`` has one class only."""
    if y.all() or not y.any():
        return np.zeros(Z.shape[1], dtype=np.float32), 0.0 if len(y) == 0 else float(20.0 if y.all() else -20.0)
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0, max_iter=1000, random_state=random_state).fit(Z, y)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


def model_fingerprint(model) -> str:
    """A digest of what a fitted model scores with, to check that a saved scorer belongs to it."""
    h = hashlib.sha256()
    h.update(json.dumps(list(model.codes_)).encode())
    h.update(np.ascontiguousarray(model.calibration_, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(model.thresholds_, dtype=np.float64).tobytes())
    return h.hexdigest()


PROBA_BATCH = 2048
"""Segments scored by the coding model at a time while scoring novelty: of their scores only the best code and
its score are kept, not the segments x codes matrix."""


def best_codes(model, segs: list) -> tuple[np.ndarray, np.ndarray]:
    """The index of each segment's best code (``model.codes_``) and its calibrated score, scored
    :data:`PROBA_BATCH` segments at a time (each with its neighbours and place in its document, as in one call;
    batches of whole documents for a model with an interview guide)."""
    from collections import Counter

    from ..streaming import stream_batches

    best, score = np.zeros(len(segs), dtype=int), np.zeros(len(segs))
    if not segs or not len(model.codes_):
        return best, score
    whole = bool(len(getattr(model.backend_, "guide_", None) or ()))
    sizes = Counter(s.document for s in segs)
    start = 0
    for batch, inputs in stream_batches(segs, sizes, PROBA_BATCH, whole_documents=whole):
        P = model.predict_proba(batch, inputs=inputs)
        best[start : start + len(batch)] = P.argmax(axis=1)
        score[start : start + len(batch)] = P.max(axis=1)
        start += len(batch)
    return best, score
