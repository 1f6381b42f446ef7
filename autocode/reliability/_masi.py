"""Krippendorff's alpha over each unit's whole set of codes, with the MASI distance, pooled over codes."""

from __future__ import annotations

from itertools import combinations

import numpy as np
import scipy.sparse as sp

from ..agreement import masi_distances
from ._bootstrap import Resamples, percentile_interval
from ._report import make_row
from ._units import Decisions

__all__ = ["MASI_MAX_SETS", "masi_row"]

MASI_MAX_SETS = 3000
"""More distinct label sets than this: no MASI alpha (its distance matrix grows with the square)."""

SET_BLOCK = 65536
"""Units whose sets of codes are numbered at a time (their packed bits and sort held, not the corpus's)."""


def _document_margins(vals: np.ndarray, take: np.ndarray, weight: np.ndarray, unit_doc: np.ndarray,
                      n_docs: int, n_sets: int) -> sp.csr_matrix:
    """(documents x sets): the weighted count of each set of codes among the pairable values (coder ``i``'s
    set ``vals[i, u]`` of unit ``u`` where ``take[i, u]``) of each document, summed :data:`SET_BLOCK` units at a
    time."""
    total = sp.csr_matrix((n_docs, n_sets))
    for s in range(0, vals.shape[1], SET_BLOCK):
        coder, unit = np.nonzero(take[:, s:s + SET_BLOCK])
        unit += s
        total = total + sp.csr_matrix((weight[unit], (unit_doc[unit], vals[coder, unit])), shape=(n_docs, n_sets))
    return total


def _set_ids(ux: Decisions, ucoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(sets, ids)``: the distinct sets of codes the coders applied, as packed bits in ``np.unique``'s
    (byte-wise) order, and each coder's set per unit as an index into them (0 where the coder did not code the
    unit), numbered :data:`SET_BLOCK` units at a time. Stops counting past :data:`MASI_MAX_SETS` sets (``ids``
    then unused)."""
    m, n_units, n_codes = ux.shape
    number: dict[bytes, int] = {}
    ids = np.zeros((m, n_units), dtype=np.int64)
    for s in range(0, n_units, SET_BLOCK):
        packed = np.packbits(ux[:, s:s + SET_BLOCK], axis=-1)
        block, inv = np.unique(packed.reshape(-1, packed.shape[-1]), axis=0, return_inverse=True)
        local = np.array([number.setdefault(row.tobytes(), len(number)) for row in block], dtype=np.int64)
        ids[:, s:s + SET_BLOCK] = local[inv.ravel()].reshape(m, -1)
        if len(number) > MASI_MAX_SETS:
            break
    keys = sorted(number)  # bytes sort as np.unique sorts rows of uint8
    order = np.empty(len(keys), dtype=np.int64)
    order[[number[k] for k in keys]] = np.arange(len(keys))
    sets = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), (n_codes + 7) // 8)
    return sets, np.where(ucoded, order[ids], 0)


def _expected(wm: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Expected disagreement (times the pairable values) of set margins ``wm`` (resamples x sets)."""
    wm = np.atleast_2d(wm)
    return ((wm @ delta) * wm).sum(axis=-1)


def _alpha(n, do, de) -> np.ndarray:
    """Alpha from the pairable values ``n``, the observed disagreement ``do`` and the expected ``de`` (per
    resample); 1 where nothing varies, nan with fewer than two values."""
    n, do, de = np.atleast_1d(n).astype(np.float64), np.atleast_1d(do), np.atleast_1d(de)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - (n - 1) * do / de
    return np.where(n >= 2, np.where(de > 0, out, 1.0), np.nan)


def masi_row(ux: Decisions, ucoded: np.ndarray, weight: np.ndarray, unit_doc: np.ndarray, n_docs: int,
             boot: Resamples | None, confidence: float, coders: str, kind: str) -> tuple[dict, str | None]:
    """The pooled ``masi_alpha`` report row of one group of coders, with its bootstrap interval, and a note
    when it is not computed.

    Parameters
    ----------
    ux, ucoded : Decisions (coders, units, codes) and ndarray of bool (coders, units)
        The group's codes per unit, and which units each coder coded.
    weight : ndarray (units,)
        What each unit counts for.
    unit_doc : ndarray of int (units,)
        The document of each unit (an index below ``n_docs``).
    n_docs : int
        The number of documents.
    boot : Resamples or None
        The bootstrap resamples of the documents.
    confidence : float
        Coverage of the percentile interval.
    coders, kind : str
        The group's name (``"E+A"``) and kind (``"humans"``, ``"all"``), for the row.
    """
    m, n_units, n_codes = ux.shape
    uniq, vals = _set_ids(ux, ucoded)
    n_sets = len(uniq)
    applied = float((weight * ux.applied_any()).sum())
    if n_sets > MASI_MAX_SETS:
        note = (f"MASI alpha is not computed: the coders used more than {MASI_MAX_SETS} distinct sets of codes.")
        return make_row("pooled", "", "", "masi_alpha", coders, kind, np.nan, None, None, 0.0, applied), note
    delta = masi_distances(np.unpackbits(uniq, axis=1)[:, :n_codes].astype(bool))
    r = ucoded.sum(axis=0)
    ok = r >= 2
    do = np.zeros(n_units)
    for i, j in combinations(range(m), 2):
        do += 2 * delta[vals[i], vals[j]] * (ucoded[i] & ucoded[j])
    do = np.where(ok, do / np.maximum(r - 1, 1), 0.0) * weight
    doc_do = np.bincount(unit_doc, weights=do, minlength=n_docs)
    doc_marg = _document_margins(vals, ucoded & ok, weight, unit_doc, n_docs, n_sets)  # (docs, sets)
    n_doc = np.asarray(doc_marg.sum(axis=1)).ravel()
    value = _alpha(n_doc.sum(), doc_do.sum(), _expected(np.asarray(doc_marg.sum(axis=0)), delta))[0]
    lo = hi = None
    if boot is not None:
        if n_docs <= n_sets:
            # every resample's expected disagreement w M delta M' w' = w G w' with G = M delta M' (docs x docs):
            # docs^2 per resample, not sets^2; the resamples' counts held whole (documents <= sets)
            dense = doc_marg.toarray()
            gram = (dense @ delta) @ dense.T
            w = np.concatenate([c for _, c in boot.columns()], axis=1).astype(np.float64)
            n, do_w, de = w @ n_doc, w @ doc_do, ((w @ gram) * w).sum(axis=-1)
        else:  # the resamples' set margins w M summed a block of documents at a time, then sets^2 per resample
            n = do_w = wm = 0.0
            marg = doc_marg.tocsr()
            for first, c in boot.columns():
                c = c.astype(np.float64)
                k = slice(first, first + c.shape[1])
                n, do_w = n + c @ n_doc[k], do_w + c @ doc_do[k]
                wm = wm + np.asarray((marg[k].T @ c.T).T)
            de = _expected(wm, delta)
        lo, hi = percentile_interval(_alpha(n, do_w, de), confidence)
    row = make_row("pooled", "", "", "masi_alpha", coders, kind, value, lo, hi, float(weight[ok].sum()), applied)
    return row, None
