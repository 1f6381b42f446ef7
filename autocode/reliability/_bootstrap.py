"""The bootstrap over documents: resample weights and percentile intervals."""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["bootstrap_weights", "percentile_interval"]


def bootstrap_weights(n_documents: int, n_bootstrap: int, random_state: int | None) -> np.ndarray | None:
    """``(n_bootstrap, n_documents)`` counts: how often each document is drawn in each resample (with
    replacement, as many draws as documents); ``None`` when ``n_bootstrap`` is 0.

    >>> bootstrap_weights(3, 2, random_state=0).sum(axis=1).tolist()
    [3, 3]
    """
    if not n_bootstrap:
        return None
    rng = np.random.default_rng(random_state)
    return rng.multinomial(n_documents, np.full(n_documents, 1 / n_documents), size=n_bootstrap)


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
