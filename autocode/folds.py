"""Cross-validation folds grouped by document, and out-of-fold scores.

Segments of one interview share speaker and topic: folds never split a document, or held-out scores would
look better than they are on interviews the model has never seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .backends.base import Backend, take_rows
from .exceptions import AutocodeError

__all__ = ["grouped_folds", "out_of_fold_decisions"]


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
                          progress: bool = False, known: np.ndarray | None = None) -> np.ndarray:
    """Raw out-of-fold scores of the first ``len(groups)`` rows of ``encoded``.

    Rows after them (e.g. a codebook's own words as examples) are in the training part of every fold. Each
    fold fits an unfitted copy of ``backend``; ``backend`` itself is not changed. ``known`` (rows x codes)
    marks the labels that are known, for backends that take it (``fit(..., known=...)``).
    """
    n_real = len(groups)
    folds = grouped_folds(groups, n_splits, random_state)
    always = np.arange(n_real, Y.shape[0])
    oof = np.zeros((n_real, Y.shape[1]), dtype=np.float64)
    if progress:
        from tqdm.auto import tqdm

        folds = tqdm(folds, desc="threshold folds", unit="fold")
    for train, test in folds:
        train = np.concatenate([train, always])
        extra = {} if known is None else {"known": known[train]}
        b = backend.clone().fit(take_rows(encoded, train), Y[train], code_groups=code_groups, **extra)
        oof[test] = b.decision_function(take_rows(encoded, test))
    return oof
