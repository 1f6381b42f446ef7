"""The ``mahalanobis`` and ``relative_mahalanobis`` novelty signals: one Gaussian per code with a shared covariance,
and a background Gaussian of all the training talk.

``mahalanobis`` is the smallest squared Mahalanobis distance of a segment to the codes' means, with the covariance
of the coded segments around their codes' means (pooled over codes, shrunk by Ledoit-Wolf: a few hundred segments in
hundreds of dimensions). ``relative_mahalanobis`` subtracts the segment's distance to the background Gaussian (mean
and shrunk covariance of every eligible training segment, uncoded talk included), as in Ren et al. (2021), "A simple
fix to Mahalanobis distance for improving near-OOD detection": what every segment of the talk shares (typical
interview talk) counts in both terms and cancels, what is far from the codes but not from the talk stays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def shrunk_precision(X: np.ndarray, *, centred: bool) -> np.ndarray:
    """The inverse of the Ledoit-Wolf shrunk covariance of the rows of ``X`` (``centred``: ``X`` holds
    deviations from known means, not to be centred again).

    >>> shrunk_precision(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -1.0]]), centred=True).round(3).tolist()
    [[2.0, 0.0], [0.0, 2.0]]
    """
    from sklearn.covariance import ledoit_wolf

    if len(X) < 2:
        return np.eye(X.shape[1])
    cov, _ = ledoit_wolf(np.asarray(X, dtype=np.float64), assume_centered=centred)
    return np.linalg.pinv(cov, hermitian=True)


def squared_distances(Z: np.ndarray, means: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """``(z - m)' P (z - m)`` for every row ``z`` of ``Z`` and row ``m`` of ``means`` (rows x means)."""
    Z = np.asarray(Z, dtype=np.float64)
    M = np.asarray(means, dtype=np.float64)
    P = np.asarray(precision, dtype=np.float64)
    ZP, MP = Z @ P, M @ P
    out = (ZP * Z).sum(axis=1)[:, None] - 2 * ZP @ M.T + (MP * M).sum(axis=1)[None, :]
    return np.maximum(out, 0.0)


@dataclass
class CodeGaussians:
    """Class-conditional Gaussians of the codes (``means``, one shared ``precision``) and the background Gaussian
    (``background_mean``, ``background_precision``), stored as float32 (as saved with the scorer)."""

    means: np.ndarray
    precision: np.ndarray
    background_mean: np.ndarray
    background_precision: np.ndarray

    @classmethod
    def fit(cls, Z: np.ndarray, Y: np.ndarray, background: np.ndarray) -> CodeGaussians:
        """Fitted on the coded segments ``Z`` with their codes ``Y`` (segments x codes, 0/1; a segment with two
        codes counts for both; codes without a segment are left out) and the ``background`` segments.

        >>> Z = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
        >>> g = CodeGaussians.fit(Z, np.array([[1, 0], [1, 0], [0, 1], [0, 1]]), Z)
        >>> g.means.shape, g.precision.shape
        ((2, 2), (2, 2))
        """
        Z = np.asarray(Z, dtype=np.float64)
        Y = np.asarray(Y, dtype=bool)
        used = Y.any(axis=0)
        counts = Y[:, used].sum(axis=0)
        means = (Y[:, used].T.astype(np.float64) @ Z) / np.maximum(counts, 1)[:, None]
        seg, code = np.nonzero(Y[:, used])
        precision = shrunk_precision(Z[seg] - means[code], centred=True)
        bg = np.asarray(background, dtype=np.float64)
        bg_mean = bg.mean(axis=0) if len(bg) else np.zeros(Z.shape[1])
        return cls(means.astype(np.float32), precision.astype(np.float32), bg_mean.astype(np.float32),
                   shrunk_precision(bg, centred=False).astype(np.float32))

    def distances(self, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row of ``Z``: the smallest squared Mahalanobis distance to a code's mean (``mahalanobis``), and
        that minus the squared distance to the background Gaussian (``relative_mahalanobis``). Larger = more
        novel. Without a code, both are the background distance and 0."""
        bg = squared_distances(Z, self.background_mean[None, :], self.background_precision)[:, 0]
        if len(self.means) == 0:
            return bg, np.zeros(len(bg))
        md = squared_distances(Z, self.means, self.precision).min(axis=1)
        return md, md - bg


def out_of_fold(Z: np.ndarray, Y: np.ndarray, coded: np.ndarray, background: np.ndarray, docs: np.ndarray,
                n_splits: int, random_state) -> np.ndarray:
    """The two signals of every row of ``Z`` (segments x 2), each fold of documents (grouped by ``docs``) scored by
    the Gaussians of the other folds: their ``coded`` rows with their codes ``Y``, their ``background`` rows."""
    from ..folds import grouped_folds

    out = np.full((len(Z), 2), np.nan)
    for train, test in grouped_folds(docs, n_splits, random_state):
        g = CodeGaussians.fit(Z[train[coded[train]]], Y[train[coded[train]]], Z[train[background[train]]])
        out[test, 0], out[test, 1] = g.distances(Z[test])
    return out
