"""Krippendorff's alpha over each unit's whole set of codes, with the MASI distance, pooled over codes."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import scipy.sparse as sp

from ..agreement import masi_distances
from ._bootstrap import Resamples, percentile_interval
from ._report import make_row

__all__ = ["MASI_MAX_SETS", "masi_row"]

MASI_MAX_SETS = 3000
"""More distinct label sets than this: no MASI alpha (its distance matrix grows with the square)."""


def masi_row(ux: np.ndarray, ucoded: np.ndarray, weight: np.ndarray, to_doc: sp.csr_matrix,
             boot: Resamples | None, confidence: float, coders: str, kind: str) -> tuple[dict, str | None]:
    """The pooled ``masi_alpha`` report row of one group of coders, with its bootstrap interval, and a note
    when it is not computed.

    Parameters
    ----------
    ux, ucoded : ndarray of bool, (coders, units, codes) and (coders, units)
        The group's codes per unit, and which units each coder coded.
    weight : ndarray (units,)
        What each unit counts for.
    to_doc : (documents x units) matrix
        Sums units into documents.
    boot : Resamples or None
        The bootstrap resamples of the documents.
    confidence : float
        Coverage of the percentile interval.
    coders, kind : str
        The group's name (``"E+A"``) and kind (``"humans"``, ``"all"``), for the row.
    """
    m, n_units, n_codes = ux.shape
    packed = np.packbits(ux, axis=-1).reshape(m * n_units, -1)
    uniq, inv = np.unique(packed, axis=0, return_inverse=True)
    n_sets = len(uniq)
    applied = float((weight * ux.any(axis=(0, 2))).sum())
    if n_sets > MASI_MAX_SETS:
        note = (f"MASI alpha is not computed: the coders used {n_sets} distinct sets of codes (more than "
                f"{MASI_MAX_SETS}).")
        return make_row("pooled", "", "", "masi_alpha", coders, kind, np.nan, None, None, 0.0, applied), note
    vals = np.where(ucoded, inv.reshape(m, n_units), 0)
    delta = masi_distances(np.unpackbits(uniq, axis=1)[:, :n_codes].astype(bool))
    r = ucoded.sum(axis=0)
    ok = r >= 2
    do = np.zeros(n_units)
    for i, j in combinations(range(m), 2):
        do += 2 * delta[vals[i], vals[j]] * (ucoded[i] & ucoded[j])
    do = np.where(ok, do / np.maximum(r - 1, 1), 0.0) * weight
    take = ucoded & ok
    coder_unit = np.nonzero(take)
    marg_units = sp.csr_matrix((weight[coder_unit[1]], (coder_unit[1], vals[take])), shape=(n_units, n_sets))
    doc_do = to_doc @ do
    doc_marg = (to_doc @ marg_units).tocsr()  # (docs, sets)
    n_doc = np.asarray(doc_marg.sum(axis=1)).ravel()
    if len(doc_do) <= n_sets:
        # expected disagreement of a resample w (weights over documents): (w M) delta (w M)' = w G w' with
        # G = M delta M' (docs x docs), so resamples cost docs^2 each, not sets^2
        dense = doc_marg.toarray()
        gram = (dense @ delta) @ dense.T

        def expected(w: np.ndarray) -> np.ndarray:
            return ((w @ gram) * w).sum(axis=-1)
    else:  # more documents than sets: (w M) delta (w M)' directly, sets^2 per resample and no docs x docs matrix
        def expected(w: np.ndarray) -> np.ndarray:
            wm = np.asarray((doc_marg.T @ w.T).T)
            return ((wm @ delta) * wm).sum(axis=-1)

    def alpha(w: np.ndarray) -> np.ndarray:
        n = w @ n_doc
        de = expected(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 - (n - 1) * (w @ doc_do) / de
        return np.where(n >= 2, np.where(de > 0, out, 1.0), np.nan)

    value = alpha(np.ones(len(doc_do)))
    lo = hi = None
    if boot is not None:
        lo, hi = percentile_interval(boot.map(lambda w: alpha(w.astype(np.float64))), confidence)
    row = make_row("pooled", "", "", "masi_alpha", coders, kind, value, lo, hi, float(weight[ok].sum()), applied)
    return row, None
