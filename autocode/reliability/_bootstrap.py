"""The bootstrap over documents: resample counts drawn a block of documents at a time (so that what is held
grows with the resamples, not with the corpus), and percentile intervals."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

__all__ = ["DOCUMENT_BLOCK", "Resamples", "bootstrap_weights", "percentile_interval"]

DOCUMENT_BLOCK = 1024
"""Documents whose counts in every resample are drawn at a time (1,000 resamples x 1,024 documents: 8 MB)."""


@dataclass(frozen=True)
class Resamples:
    """``n_bootstrap`` resamples of ``n_documents`` documents drawn with replacement (as many draws as documents),
    from one generator seeded with ``random_state``, given a block of documents at a time: each resample's
    counts over the documents are multinomial, drawn as the counts of the next documents and of "the rest" given
    what the resample has left. The same seed (and :data:`DOCUMENT_BLOCK`) gives the same draws, so every pass
    over the blocks (one per group of coders and statistic) draws the same resamples.

    >>> r = Resamples(5, 3, random_state=0)
    >>> [(first, w.shape) for first, w in r.columns(2)], bootstrap_weights(5, 3, 0).sum(axis=1).tolist()
    ([(0, (3, 2)), (2, (3, 2)), (4, (3, 1))], [5, 5, 5])
    """

    n_documents: int
    n_bootstrap: int
    random_state: int | None = 0

    def __post_init__(self):
        if not isinstance(self.random_state, (int, np.integer)):
            # None (or a Generator): one seed fixed now, so that every pass draws the same resamples
            seed = int(np.random.default_rng(self.random_state).integers(2**63))
            object.__setattr__(self, "random_state", seed)

    def columns(self, size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        """``(first, counts)``: the documents ``first, first + 1, ...`` of the next block and their
        ``(n_bootstrap, block)`` counts in each resample, in document order."""
        size = DOCUMENT_BLOCK if size is None else size
        rng = np.random.default_rng(self.random_state)
        left = np.full(self.n_bootstrap, self.n_documents, dtype=np.int64)  # draws each resample has left
        for first in range(0, self.n_documents, size):
            k = min(size, self.n_documents - first)
            rest = self.n_documents - first  # documents not yet given, these k included
            p = np.full(k + 1, 1.0 / rest)
            p[-1] = 1.0 - k / rest
            draw = rng.multinomial(left, p)  # (B, k + 1): each of the k documents, then the rest
            left = draw[:, -1]
            yield first, draw[:, :k]

    def window(self) -> DocumentWindow:
        """The counts of documents asked for in increasing order (see :class:`DocumentWindow`)."""
        return DocumentWindow(self)


class DocumentWindow:
    """The resamples' counts of a range of documents, for ranges asked in increasing order of their first
    document: the blocks of :meth:`Resamples.columns` drawn as far as needed, those wholly before the range
    dropped."""

    def __init__(self, resamples: Resamples):
        self._blocks = resamples.columns()
        self._held: list[tuple[int, np.ndarray]] = []

    def __call__(self, lo: int, hi: int) -> np.ndarray:
        """``(n_bootstrap, hi - lo)`` counts of the documents ``lo .. hi - 1``."""
        self._held = [(f, w) for f, w in self._held if f + w.shape[1] > lo]
        while not self._held or self._held[-1][0] + self._held[-1][1].shape[1] < hi:
            self._held.append(next(self._blocks))
        parts = [w[:, max(lo - f, 0):min(hi - f, w.shape[1])] for f, w in self._held if f < hi]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def bootstrap_weights(n_documents: int, n_bootstrap: int, random_state: int | None) -> np.ndarray | None:
    """``(n_bootstrap, n_documents)`` counts: how often each document is drawn in each resample (with
    replacement, as many draws as documents); ``None`` when ``n_bootstrap`` is 0. The same draws as
    :class:`Resamples`, all at once.

    >>> bootstrap_weights(3, 2, random_state=0).sum(axis=1).tolist()
    [3, 3]
    """
    if not n_bootstrap:
        return None
    return np.concatenate([w for _, w in Resamples(n_documents, n_bootstrap, random_state).columns()], axis=1)


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
