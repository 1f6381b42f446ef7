"""The bootstrap over documents: resample weights, drawn and used a block of resamples at a time, and
percentile intervals."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["BOOTSTRAP_BLOCK", "Resamples", "bootstrap_weights", "percentile_interval"]

BOOTSTRAP_BLOCK = 128
"""Resamples whose document weights are held at a time (128 x documents integers: 26 MB at 25,000 documents);
what is kept of each resample is its statistics, not its weights."""


@dataclass(frozen=True)
class Resamples:
    """``n_bootstrap`` resamples of ``n_documents`` documents drawn with replacement (as many draws as documents)
    from one generator seeded with ``random_state``, a block of :data:`BOOTSTRAP_BLOCK` at a time. The blocks
    are the rows of :func:`bootstrap_weights`, in order, whatever the block size.

    >>> r = Resamples(3, 5, random_state=0)
    >>> [b.shape for b in r.blocks(2)], np.array_equal(np.vstack(list(r.blocks(2))), bootstrap_weights(3, 5, 0))
    ([(2, 3), (2, 3), (1, 3)], True)
    """

    n_documents: int
    n_bootstrap: int
    random_state: int | None = 0

    def __post_init__(self):
        if not isinstance(self.random_state, (int, np.integer)):
            # None (or a Generator): one seed fixed now, so that every pass over the blocks (one per group of
            # coders) draws the same resamples
            seed = int(np.random.default_rng(self.random_state).integers(2**63))
            object.__setattr__(self, "random_state", seed)

    def blocks(self, size: int | None = None) -> Iterator[np.ndarray]:
        """``(b, n_documents)`` counts of each document in each resample of the next block."""
        size = BOOTSTRAP_BLOCK if size is None else size
        rng = np.random.default_rng(self.random_state)
        p = np.full(self.n_documents, 1 / self.n_documents)
        for start in range(0, self.n_bootstrap, size):
            yield rng.multinomial(self.n_documents, p, size=min(size, self.n_bootstrap - start))

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``fn`` of each block of weights, concatenated along the first axis (one row per resample)."""
        return np.concatenate([fn(w) for w in self.blocks()])


def bootstrap_weights(n_documents: int, n_bootstrap: int, random_state: int | None) -> np.ndarray | None:
    """``(n_bootstrap, n_documents)`` counts: how often each document is drawn in each resample (with
    replacement, as many draws as documents); ``None`` when ``n_bootstrap`` is 0. The same draws as
    :class:`Resamples`, all at once.

    >>> bootstrap_weights(3, 2, random_state=0).sum(axis=1).tolist()
    [3, 3]
    """
    if not n_bootstrap:
        return None
    return np.vstack(list(Resamples(n_documents, n_bootstrap, random_state).blocks(n_bootstrap)))


def percentile_interval(boot: np.ndarray, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``confidence`` percentile interval over the resamples (first axis), ignoring nan; nan where
    every resample is nan.

    >>> [round(float(v), 6) for v in percentile_interval(np.arange(101.0), 0.9)]
    [5.0, 95.0]
    """
    tail = (1 - confidence) / 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices give nan, as they should
        return np.nanquantile(boot, tail, axis=0), np.nanquantile(boot, 1 - tail, axis=0)
