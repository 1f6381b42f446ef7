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

__all__ = ["NEVER", "Calibration", "best_threshold", "calibrate", "platt", "platt_columns", "shrinkage", "sigmoid"]

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

    >>> a, b = platt(np.array([2.0, 1.0, -1.0, -2.0, 0.5]), np.array([True, True, False, False, False]))
    >>> a > 0
    True
    """
    s = np.asarray(scores, dtype=np.float64)
    coef = platt_columns(s[:, None], np.asarray(y, dtype=bool)[:, None])
    return float(coef[0, 0]), float(coef[0, 1])


def platt_columns(scores: np.ndarray, Y: np.ndarray, known: np.ndarray | None = None) -> np.ndarray:
    """:func:`platt` of every column of ``scores`` (segments x codes) against the same column of ``Y``, on the
    rows where ``known`` is true (default all): (a, b) per column, shape (codes, 2).

    Newton's method on every column at once (the loss of each column is convex in its two parameters), with
    step halving where a step does not lower a column's loss; a column stops when its Newton decrement (how much the step would lower its
    loss) is below 1e-12 of the loss, or no step lowers it (or after 100 steps).
    """
    S = np.asarray(scores, dtype=np.float64)
    Y = np.asarray(Y, dtype=bool)
    W = np.ones(Y.shape) if known is None else np.asarray(known, dtype=np.float64)
    n_pos = (W * Y).sum(axis=0)
    n_neg = W.sum(axis=0) - n_pos
    T = np.where(Y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    S = S * (W > 0)  # unknown rows: weight 0, and a finite score

    def loss(a, b, cols):
        Z = S[:, cols] * a + b
        return (W[:, cols] * (np.logaddexp(0, Z) - T[:, cols] * Z)).sum(axis=0) + 1e-6 * a**2

    a, b = np.ones(S.shape[1]), np.zeros(S.shape[1])
    f = loss(a, b, slice(None))
    act = np.arange(S.shape[1])  # the columns not yet at their minimum
    for _ in range(100):
        s, w, t = S[:, act], W[:, act], T[:, act]
        P = 1 / (1 + np.exp(-np.clip(s * a[act] + b[act], -500, 500)))
        R, Q = w * (P - t), w * P * (1 - P)
        ga, gb = (R * s).sum(axis=0) + 2e-6 * a[act], R.sum(axis=0)
        haa, hab, hbb = (Q * s * s).sum(axis=0) + 2e-6, (Q * s).sum(axis=0), Q.sum(axis=0) + 1e-12
        det = np.maximum(haa * hbb - hab**2, 1e-300)
        da, db = (hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det
        going = ga * da + gb * db >= 1e-12 * (1 + np.abs(f[act]))  # Newton decrement above rounding
        act, da, db = act[going], da[going], db[going]
        if not act.size:
            break
        step = np.ones(act.size)
        for _ in range(40):  # halve the step of the columns whose loss would rise
            f_new = loss(a[act] - step * da, b[act] - step * db, act)
            worse = ~(f_new <= f[act])
            if not worse.any():
                break
            step = np.where(worse, step / 2, step)
        step = np.where(worse, 0.0, step)
        a[act], b[act], f[act] = a[act] - step * da, b[act] - step * db, np.where(worse, f[act], f_new)
        act = act[~worse]  # no step lowers the loss (within rounding): at the minimum
    known_rows = W > 0
    constant = np.where(known_rows, S, -np.inf).max(axis=0) <= np.where(known_rows, S, np.inf).min(axis=0)
    flat = ~np.isfinite(a) | (a <= 0) | constant
    return np.stack([np.where(flat, 0.0, a), np.where(flat, np.log((n_pos + 1) / (n_neg + 1)), b)], axis=1)


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
    own = platt_columns(oof, Y, K) if (own_weight > 0).any() else np.tile(pooled, (k, 1))
    coef = own_weight[:, None] * own + (1 - own_weight[:, None]) * pooled
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
