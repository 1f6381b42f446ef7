"""Calibrated scores and thresholds from out-of-fold scores: pure functions over arrays.

:class:`~autocode.model.CodingModel` turns a backend's raw out-of-fold scores (segments x codes) into
probabilities with Platt scaling and picks a threshold per code; both are shrunk towards what every code's
decisions pooled say, in proportion to how many examples a code has (:func:`shrinkage`):

>>> import numpy as np
>>> raw = np.array([[2.0, -1.0], [1.5, 0.5], [-1.0, 2.0], [-2.0, 1.0]])
>>> Y = np.array([[True, False], [True, False], [False, True], [False, True]])
>>> cal = calibrate(raw, Y, calibration_prior=30.0, threshold_prior=100.0)
>>> cal.coef.shape, cal.thresholds.shape
((2, 2), (2,))
>>> bool(((sigmoid(raw * cal.coef[:, 0] + cal.coef[:, 1]) >= cal.thresholds) == Y).all())
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .agreement import cohen_kappa

__all__ = ["NEVER", "Calibration", "best_threshold", "calibrate", "platt", "shrinkage", "sigmoid"]

NEVER = 1.01
"""Threshold of a code the model could not learn out of fold: above every score, so it is never suggested."""


def sigmoid(z):
    """The logistic function, clipped so that large scores do not overflow.

    >>> float(sigmoid(0.0))
    0.5
    """
    return 1 / (1 + np.exp(-np.clip(z, -50, 50)))


def shrinkage(n: np.ndarray, prior: float) -> np.ndarray:
    """Weight of each code's own estimate, ``n / (n + prior)`` (0 for ``prior = inf``, 1 for ``prior = 0``).

    >>> shrinkage(np.array([0, 10, 30]), 30.0).tolist()
    [0.0, 0.25, 0.5]
    """
    n = np.asarray(n, dtype=np.float64)
    if np.isinf(prior):
        return np.zeros_like(n)
    return n / np.maximum(n + prior, 1e-12)


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit p = sigmoid(a * s + b) to out-of-fold scores (Platt 1999, with his target smoothing).

    Scores that are anti-correlated with the labels, or flat, give ``a = 0`` and the base rate's log-odds.
    """
    from scipy.optimize import minimize

    y = np.asarray(y, dtype=bool)
    n_pos, n_neg = y.sum(), (~y).sum()
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    s = np.asarray(scores, dtype=np.float64)

    def loss(ab):
        z = ab[0] * s + ab[1]
        # log(1 + exp(z)) - t z, stable
        return np.sum(np.logaddexp(0, z) - t * z) + 1e-6 * ab[0] ** 2

    def grad(ab):
        z = ab[0] * s + ab[1]
        r = 1 / (1 + np.exp(-z)) - t
        return np.array([np.sum(r * s) + 2e-6 * ab[0], np.sum(r)])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B")
    a, b = res.x
    if not np.isfinite(a) or a <= 0:
        return 0.0, float(np.log((n_pos + 1) / (n_neg + 1)))
    return float(a), float(b)


def best_threshold(p: np.ndarray, y: np.ndarray, metric: str = "kappa") -> tuple[float, float]:
    """The cut on ``p`` that maximises Cohen's kappa (or F1) over the units, as the midpoint between
    neighbouring scores. Returns ``(threshold, value)``; ``(NEVER, 0.0)`` when no cut beats chance.

    >>> best_threshold(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, True, False, False]))
    (0.55, 1.0)
    """
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    n, pos = len(ps), int(ys.sum())
    tp = np.cumsum(ys).astype(float)
    k = np.arange(1, n + 1, dtype=float)  # predicted positives when cutting after position i
    fp = k - tp
    fn = pos - tp
    tn = n - pos - fp
    if metric == "f1":
        value = 2 * tp / (k + pos)
    elif metric == "kappa":
        denom = (tp + fp) * (fp + tn) + (tp + fn) * (fn + tn)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(denom > 0, 2 * (tp * tn - fn * fp) / denom, 0.0)
    else:
        raise ValueError(f"metric must be 'kappa' or 'f1', got {metric!r}")
    valid = np.r_[ps[1:] < ps[:-1], True]  # only cut where the next score differs
    value = np.where(valid, value, -np.inf)
    i = int(np.argmax(value))
    if not value[i] > 0:
        return NEVER, 0.0
    nxt = ps[i + 1] if i + 1 < n else 0.0
    return float((ps[i] + nxt) / 2), float(value[i])


@dataclass
class Calibration:
    """What :func:`calibrate` learns from out-of-fold scores.

    Attributes
    ----------
    coef : ndarray of shape (n_codes, 2)
        Platt parameters (a, b) per code: score = sigmoid(a * raw + b).
    thresholds : ndarray of shape (n_codes,)
        Per-code threshold on the calibrated score.
    global_threshold : float or None
        The one threshold that is best over every code's decisions pooled (``None`` without out-of-fold scores).
    summary : list of dict
        Per code: out-of-fold precision, recall, F1, kappa and support at its threshold.
    """

    coef: np.ndarray
    thresholds: np.ndarray
    global_threshold: float | None = None
    summary: list[dict] = field(default_factory=list)

    def proba(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated scores of raw scores (segments x codes)."""
        return sigmoid(raw * self.coef[:, 0] + self.coef[:, 1])


def uncalibrated(n_codes: int) -> Calibration:
    """The calibration of a model without out-of-fold scores: raw scores through the logistic function and
    thresholds at 0.5."""
    coef = np.zeros((n_codes, 2))
    coef[:, 0] = 1.0
    return Calibration(coef, np.full(n_codes, 0.5))


def calibrate(oof: np.ndarray, Y: np.ndarray, *, calibration_prior: float, threshold_prior: float,
              metric: str = "kappa", known: np.ndarray | None = None) -> Calibration:
    """Platt scaling and thresholds from out-of-fold raw scores ``oof`` and the labels ``Y`` (segments x codes).

    One Platt scaling is fitted on every code's decisions pooled and one on each code's own; a code's
    parameters are ``(n * own + prior * pooled) / (n + prior)`` with ``n`` its examples and ``prior`` =
    ``calibration_prior`` (the raw scores of per-code classifiers are on comparable scales, and a rare code's
    own scaling is mostly noise). Thresholds the same way with ``threshold_prior``: the cut that maximises
    ``metric`` for the code, shrunk towards the cut that maximises it over all codes pooled; a code for which
    no cut beats chance keeps the pooled threshold (never suggesting it costs more agreement on unseen
    interviews than its occasional false suggestions).

    ``known`` (segments x codes, optional) marks the decisions that are known: a reviewed suggestion left
    untouched is neither a positive nor a negative, and only known decisions are used.
    """
    Y = np.asarray(Y, dtype=bool)
    K = np.ones_like(Y) if known is None else np.asarray(known, dtype=bool)
    Y = Y & K
    k = Y.shape[1]
    n_pos = Y.sum(axis=0)
    pooled = np.array(platt(oof[K], Y[K]))
    own_weight = shrinkage(n_pos, calibration_prior)
    coef = np.zeros((k, 2))
    for j in range(k):
        own = np.array(platt(oof[K[:, j], j], Y[K[:, j], j])) if own_weight[j] > 0 else pooled
        coef[j] = own_weight[j] * own + (1 - own_weight[j]) * pooled
    P = sigmoid(oof * coef[:, 0] + coef[:, 1])
    t_global, _ = best_threshold(P[K], Y[K], metric)
    own_weight = shrinkage(n_pos, threshold_prior)
    thresholds = np.full(k, 0.5)
    summary = []
    for j in range(k):
        y, p = Y[K[:, j], j], P[K[:, j], j]
        t_code, _ = best_threshold(p, y, metric)
        if t_global >= NEVER:
            t = NEVER
        elif t_code >= NEVER:
            t = t_global
        else:
            t = own_weight[j] * t_code + (1 - own_weight[j]) * t_global
        pred = p >= t
        thresholds[j] = t
        tp = int((pred & y).sum())
        summary.append({
            "precision": tp / max(int(pred.sum()), 1),
            "recall": tp / max(int(n_pos[j]), 1),
            "f1": 2 * tp / max(int(pred.sum()) + int(n_pos[j]), 1),
            "kappa": cohen_kappa(pred, y),
            "support": int(n_pos[j]),
        })
    return Calibration(coef, thresholds, t_global, summary)
