"""Cross-validation folds that keep each document (interview) whole.

Segments of one interview share speakers and topics: splitting them between training and test folds would
leak both, so every fold holds out whole documents.

>>> import numpy as np
>>> folds = grouped_folds(np.array(["a", "a", "b", "c", "c", "d"]), 2)
>>> sorted(len(test) for _, test in folds)
[3, 3]
"""

from __future__ import annotations

import numpy as np

from .exceptions import AutocodeError

__all__ = ["grouped_folds"]


def grouped_folds(groups: np.ndarray, n_splits: int, random_state: int | None = 0):
    """Folds that keep each document whole: a list of (train_rows, test_rows).

    Documents are dealt in an order shuffled by ``random_state``, each to the fold with the fewest segments so
    far: fold sizes stay close (within about one document's size) and every ``random_state`` gives another
    partition. Every document is tested exactly once.
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
