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
"""Units whose sets of codes are numbered and summed at a time (their packed bits, sort and disagreements held, not
the corpus's)."""


def _set_rows(ux: Decisions) -> tuple[np.ndarray, dict[bytes, int]] | None:
    """``(sets, row)``: the distinct sets of codes in ``ux`` (the empty set among them where a coder applied none
    or did not code a unit), as packed bits in ``np.unique``'s (byte-wise) order, and each set's packed bytes ->
    its row of ``sets``; found :data:`SET_BLOCK` units at a time. ``None`` past :data:`MASI_MAX_SETS` sets."""
    m, n_units, n_codes = ux.shape
    seen: set[bytes] = set()
    for s in range(0, n_units, SET_BLOCK):
        seen.update(r.tobytes() for r in np.unique(_packed(ux, s)))
        if len(seen) > MASI_MAX_SETS:
            return None
    keys = sorted(seen)  # bytes sort as np.unique sorts rows of uint8
    sets = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), (n_codes + 7) // 8)
    return sets, {k: i for i, k in enumerate(keys)}


def _block_ids(ux: Decisions, ucoded: np.ndarray, s: int, row: dict[bytes, int]) -> np.ndarray:
    """(coders, units): each coder's set of codes of the units ``s, s + 1, ...`` (:data:`SET_BLOCK` of them) as a
    row of :func:`_set_rows`'s sets, 0 where the coder did not code the unit."""
    packed = _packed(ux, s)
    block, inv = np.unique(packed, return_inverse=True)
    local = np.array([row[r.tobytes()] for r in block], dtype=np.int64)
    m = ux.shape[0]
    return np.where(ucoded[:, s:s + SET_BLOCK], local[inv.ravel()].reshape(m, -1), 0)


def _packed(ux: Decisions, s: int) -> np.ndarray:
    """(coders x units,): each coder's set of codes of the units ``s, s + 1, ...`` (:data:`SET_BLOCK` of them) as
    its packed bits, one opaque item each (``np.unique`` sorts them byte-wise, as it sorts rows of uint8 with
    ``axis=0``, and faster)."""
    packed = np.packbits(ux[:, s:s + SET_BLOCK], axis=-1)
    nbytes = packed.shape[-1]
    return np.ascontiguousarray(packed.reshape(-1, nbytes)).view(np.dtype((np.void, nbytes))).ravel()


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
    found = _set_rows(ux)
    if found is None:
        applied = float(sum((weight[s:s + SET_BLOCK] * ux[:, s:s + SET_BLOCK].any(axis=(0, 2))).sum()
                            for s in range(0, n_units, SET_BLOCK)))
        note = (f"MASI alpha is not computed: the coders used more than {MASI_MAX_SETS} distinct sets of codes.")
        return make_row("pooled", "", "", "masi_alpha", coders, kind, np.nan, None, None, 0.0, applied), note
    uniq, set_row = found
    n_sets = len(uniq)
    delta = masi_distances(np.unpackbits(uniq, axis=1)[:, :n_codes].astype(bool))
    # per document: the observed disagreement and the weighted count of each set among the pairable values,
    # a block of units at a time (each document's sum added to in unit order, as one pass over the units adds)
    doc_do = np.zeros(n_docs)
    doc_marg = sp.csr_matrix((n_docs, n_sets))
    applied = pairable = 0.0
    for s in range(0, n_units, SET_BLOCK):
        vals, coded = _block_ids(ux, ucoded, s, set_row), ucoded[:, s:s + SET_BLOCK]
        w, docs = weight[s:s + SET_BLOCK], unit_doc[s:s + SET_BLOCK]
        r = coded.sum(axis=0)
        ok = r >= 2
        do = np.zeros(len(w))
        for i, j in combinations(range(m), 2):
            do += 2 * delta[vals[i], vals[j]] * (coded[i] & coded[j])
        do = np.where(ok, do / np.maximum(r - 1, 1), 0.0) * w
        doc_do = np.bincount(np.r_[np.arange(n_docs), docs], weights=np.r_[doc_do, do], minlength=n_docs)
        coder, unit = np.nonzero(coded & ok)
        doc_marg = doc_marg + sp.csr_matrix((w[unit], (docs[unit], vals[coder, unit])), shape=(n_docs, n_sets))
        applied += float((w * ux[:, s:s + SET_BLOCK].any(axis=(0, 2))).sum())
        pairable += float(w[ok].sum())
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
    row = make_row("pooled", "", "", "masi_alpha", coders, kind, value, lo, hi, pairable, applied)
    return row, None
