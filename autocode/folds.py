"""Cross-validation folds grouped by document, and out-of-fold scores.

Segments of one interview share speaker and topic: folds never split a document, or held-out scores would
look better than they are on interviews the model has never seen.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from .backends.base import Backend, take_rows
from .exceptions import AutocodeError

__all__ = ["MIN_PARALLEL_ROWS", "grouped_folds", "out_of_fold_decisions", "out_of_fold_decisions_many", "tuning_sample"]

MIN_PARALLEL_ROWS = 2000
"""Rows from which ``n_jobs=None`` fits folds in worker processes: below, a TF-IDF fold fits in about a second,
and starting the workers (each imports autocode and scikit-learn) costs more than it saves."""


def grouped_folds(groups: np.ndarray, n_splits: int, random_state: int | None = 0):
    """Folds that keep each document whole: a list of (train_rows, test_rows).

    Documents are dealt in an order shuffled by ``random_state``, each to the fold with the fewest segments so
    far: fold sizes stay close (within about one document's size) and every ``random_state`` gives another
    partition. Every document is tested exactly once.

    >>> [test.tolist() for _, test in grouped_folds(np.array(["a", "a", "b", "c"]), 2, random_state=0)]
    [[2, 3], [0, 1]]
    """
    docs, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    n_splits = min(n_splits, len(docs))
    if n_splits < 2:
        raise AutocodeError(
            f"Grouped cross-validation needs at least 2 documents; the data has {len(docs)}. "
            "Code segments from more interviews."
        )
    rng = np.random.default_rng(random_state)
    order = rng.permutation(len(docs))  # not largest first: that fixes the partition whatever the seed
    load = np.zeros(n_splits)
    fold_of_doc = np.empty(len(docs), dtype=int)
    for d in order:
        f = int(np.argmin(load))
        fold_of_doc[d] = f
        load[f] += sizes[d]
    fold = fold_of_doc[inverse]
    return [(np.flatnonzero(fold != f), np.flatnonzero(fold == f)) for f in range(n_splits)]


def out_of_fold_decisions(backend: Backend, encoded, Y: np.ndarray, groups: np.ndarray, *, n_splits: int,
                          random_state: int | None = 0, code_groups: Sequence[int] | None = None,
                          progress: bool = False, known: np.ndarray | None = None, n_jobs: int | None = 1
                          ) -> np.ndarray:
    """Raw out-of-fold scores of the first ``len(groups)`` rows of ``encoded``.

    Rows after them (e.g. a codebook's own words as examples) are in the training part of every fold. Each
    fold fits an unfitted copy of ``backend``; ``backend`` itself is not changed. ``known`` (rows x codes)
    marks the labels that are known, for backends that take it (``fit(..., known=...)``). ``n_jobs``: see
    :func:`out_of_fold_decisions_many`.
    """
    return out_of_fold_decisions_many([backend], encoded, Y, groups, n_splits=n_splits, random_state=random_state,
                                      code_groups=code_groups, progress=progress, known=known, n_jobs=n_jobs)[0]


def out_of_fold_decisions_many(backends: Sequence[Backend], encoded, Y: np.ndarray, groups: np.ndarray, *,
                               n_splits: int, random_state: int | None = 0, code_groups: Sequence[int] | None = None,
                               progress: bool = False, known: np.ndarray | None = None, n_jobs: int | None = 1
                               ) -> list[np.ndarray]:
    """:func:`out_of_fold_decisions` of each of ``backends`` on the same folds.

    With ``n_jobs`` above 1 and backends that allow it (``Backend.parallel_fits``), the (backend, fold) fits run
    at once in that many worker processes; each fit is the one this process would make (a process of its own
    keeps a solver's random coordinate order reproducible, which threads sharing one generator would not).
    ``None``: one process per core when there are at least :data:`MIN_PARALLEL_ROWS` rows, else all fits in
    this process.
    """
    n_real = len(groups)
    folds = grouped_folds(groups, n_splits, random_state)
    always = np.arange(n_real, Y.shape[0])
    tasks = [(i, np.concatenate([train, always]), test) for i in range(len(backends)) for train, test in folds]
    workers = _workers(n_jobs, len(tasks), Y.shape[0]) if all(b.parallel_fits for b in backends) else 1
    if workers > 1:
        from joblib import Parallel, delayed

        done = Parallel(n_jobs=workers, return_as="generator")(
            delayed(_fold_decisions)(backends[i].clone(), encoded, Y, train, test, code_groups, known)
            for i, train, test in tasks)
    else:
        done = (_fold_decisions(backends[i], encoded, Y, train, test, code_groups, known) for i, train, test in tasks)
    if progress:
        from tqdm.auto import tqdm

        done = tqdm(done, total=len(tasks), desc="threshold folds", unit="fold")
    out = [np.zeros((n_real, Y.shape[1]), dtype=np.float64) for _ in backends]
    for (i, _, test), scores in zip(tasks, done):
        out[i][test] = scores
    return out


def _fold_decisions(backend: Backend, encoded, Y: np.ndarray, train: np.ndarray, test: np.ndarray, code_groups,
                    known: np.ndarray | None) -> np.ndarray:
    """Scores of the ``test`` rows by an unfitted copy of ``backend`` fitted on the ``train`` rows."""
    extra = {} if known is None else {"known": known[train]}
    b = backend.clone().fit(take_rows(encoded, train), Y[train], code_groups=code_groups, **extra)
    return b.decision_function(take_rows(encoded, test))


def _workers(n_jobs: int | None, n_tasks: int, n_rows: int) -> int:
    """Worker processes for ``n_tasks`` fits on ``n_rows`` rows: ``n_jobs`` (-1: the cores this process may use;
    ``None``: those cores from :data:`MIN_PARALLEL_ROWS` rows on, else 1)."""
    if n_jobs is None and n_rows < MIN_PARALLEL_ROWS:
        return 1
    if n_jobs is None or n_jobs < 0:
        try:
            n_jobs = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            n_jobs = os.cpu_count() or 1
    return max(1, min(int(n_jobs), n_tasks))


def tuning_sample(groups: np.ndarray, min_segments: int | None, n_candidates: int, n_splits: int,
                  random_state: int | None) -> np.ndarray | None:
    """The rows (sorted) of a seeded sample of whole documents holding at least ``max(min_segments, n /
    n_candidates)`` of the ``n`` segments and at least ``2 * n_splits`` documents, for comparing tuning
    candidates; ``None`` (every row) when that is all of them or ``min_segments`` is ``None``.

    >>> groups = np.repeat(np.arange(40), 100)  # 40 documents of 100 segments
    >>> len(tuning_sample(groups, 1000, 6, 5, 0)), tuning_sample(groups, 5000, 6, 5, 0)
    (1000, None)
    """
    n = len(groups)
    if min_segments is None:
        return None
    want = max(int(min_segments), -(-n // max(n_candidates, 1)))
    if want >= n:
        return None
    docs, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    order = np.random.default_rng(random_state).permutation(len(docs))
    taken = np.cumsum(sizes[order])
    k = max(int(np.searchsorted(taken, want)) + 1, 2 * n_splits)
    if k >= len(docs):
        return None
    return np.flatnonzero(np.isin(inverse, order[:k]))
