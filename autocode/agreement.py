"""Agreement statistics between coders: pure, vectorised functions over arrays.

(This module is long because about half of it is documentation and doctests from published worked
examples, and the statistics share one set of sums and helpers that a split would only scatter.
Agreement over a coded corpus is :mod:`autocode.reliability`; this module knows nothing of corpora.)

Two input layouts are used, each the one its statistic is published with:

*reliability data*
    an array ``(n_coders, n_units)`` of category values, ``nan`` (or ``None``) where a coder did not code a
    unit (Krippendorff's layout). :func:`krippendorff_alpha`, :func:`gwet_ac1`, :func:`brennan_prediger` and
    :func:`percent_agreement` take it.
*count table*
    an array ``(n_units, n_categories)``: how many coders put each unit in each category (Fleiss' layout).
    :func:`fleiss_kappa` takes it; :func:`count_table` turns reliability data into one.

:func:`cohen_kappa` takes the two coders' labels; :func:`masi_alpha` takes label *sets* (multi-label coding).

Underneath, every nominal statistic is a function of a few sums over units (:class:`AgreementSums`). The sums
add up over units, documents and codes, so :mod:`autocode.reliability` computes them once per document and
code, and a bootstrap resample of documents is a weighted sum of them (a matrix product), not a loop.

Degenerate input
----------------
- Fewer than two coders, no unit coded by two coders, or a wrongly shaped array: :class:`AgreementError`.
- Only one category used by every coder (no variation): the chance-corrected statistics are ``0/0``; they
  return ``1.0`` (perfect agreement; the observed agreement is then necessarily perfect), as
  :func:`cohen_kappa` always has. Report such codes separately: their 1.0 says nothing about reliability.
- A unit coded by one coder only carries no information on agreement: it is left out (for Gwet's AC1 it still
  counts towards the category prevalence, as in Gwet 2014).

>>> cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0])
0.5
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, fields
from itertools import combinations
from typing import Literal

import numpy as np

from .exceptions import AutocodeError

__all__ = [
    "AgreementError",
    "AgreementSums",
    "brennan_prediger",
    "cohen_kappa",
    "count_table",
    "fleiss_kappa",
    "gwet_ac1",
    "krippendorff_alpha",
    "masi_alpha",
    "masi_distance",
    "masi_distances",
    "percent_agreement",
]

Level = Literal["nominal", "ordinal", "interval", "ratio"]


class AgreementError(AutocodeError, ValueError):
    """Input an agreement statistic cannot be computed from (wrong shape, one coder, nothing pairable)."""


# -- two coders ------------------------------------------------------------------------------------------
def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two coders' labels of the same units (any hashable labels).

    Parameters
    ----------
    a, b : array-like, shape (n_units,)
        The two coders' labels, unit by unit.

    Returns
    -------
    float
        ``(p_o - p_e) / (1 - p_e)``; 1.0 when both coders use one and the same category throughout (perfect
        agreement with no variation).

    Examples
    --------
    The 2 x 2 table [[20, 5], [10, 15]] of 50 units, worked by hand: p_o = 0.7, p_e = 0.5.

    >>> a = [1] * 25 + [0] * 25
    >>> b = [1] * 20 + [0] * 5 + [1] * 10 + [0] * 15
    >>> round(cohen_kappa(a, b), 3)
    0.4
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"Expected two 1-D arrays of equal length, got shapes {a.shape} and {b.shape}.")
    if a.size == 0:
        raise ValueError("No units to compare.")
    cats, inv = np.unique(np.concatenate([a, b]), return_inverse=True)
    ia, ib = inv[: a.size], inv[a.size :]
    k = len(cats)
    po = float(np.mean(ia == ib))
    pa = np.bincount(ia, minlength=k) / a.size
    pb = np.bincount(ib, minlength=k) / b.size
    pe = float(pa @ pb)
    if pe >= 1.0:
        return 1.0 if po == 1.0 else float("nan")
    return (po - pe) / (1 - pe)


# -- sufficient sums -------------------------------------------------------------------------------------
@dataclass
class AgreementSums:
    """Sums over units from which every nominal statistic of this module follows.

    All fields share leading "batch" dimensions (e.g. bootstrap resample x code); categories (``q``) and coder
    pairs (``p``) come last. Sums over units, documents or codes are sums of the fields (:meth:`sum`,
    :meth:`reweight`), which is what makes pooled statistics and the bootstrap cheap.

    Attributes
    ----------
    n_pairable : units coded by at least two coders (weighted).
    pa : sum over those units of the share of agreeing coder pairs (Fleiss' P_i, Gwet's p_a).
    do : sum over those units of the number of disagreeing ordered value pairs / (m_u - 1) (Krippendorff).
    marg : (q,) pairable values per category (the margins of Krippendorff's coincidence matrix).
    n_coded, prev : units coded by anyone and the sum of each category's share of the unit's values (Gwet).
    n_full, pa_full, prev_full : the same over units coded by every coder (Fleiss).
    pairs : (p, q, q) contingency table of each coder pair over units both coded (Cohen).
    """

    n_pairable: np.ndarray
    pa: np.ndarray
    do: np.ndarray
    marg: np.ndarray
    n_coded: np.ndarray
    prev: np.ndarray
    n_full: np.ndarray
    pa_full: np.ndarray
    prev_full: np.ndarray
    pairs: np.ndarray

    _SUFFIX = {"marg": 1, "prev": 1, "prev_full": 1, "pairs": 3}

    @classmethod
    def from_ratings(cls, ratings: np.ndarray, weights: np.ndarray | float = 1.0, into=None) -> AgreementSums:
        """Sums from one-hot ratings, per unit or summed into groups of units (documents).

        Parameters
        ----------
        ratings : ndarray (n_coders, n_units, ..., q)
            1 where a coder put a unit in a category; a coder who did not code a unit has all zeros there.
            The middle dimensions are kept (e.g. codes).
        weights : float or ndarray broadcastable to ``ratings.shape[1:-1]``
            Unit weights, e.g. the number of characters a unit spans.
        into : (n_groups, n_units) matrix, optional
            When given (dense or scipy.sparse), each field is summed into groups as ``into @ field`` right
            away, so per-unit arrays never pile up: the result has ``n_groups`` in place of ``n_units``.
        """
        ratings = np.asarray(ratings, dtype=np.float64)
        m = ratings.shape[0]
        w = np.asarray(weights, dtype=np.float64)
        counts = ratings.sum(axis=0)
        r = counts.sum(axis=-1)
        ok = r >= 2
        wb = np.broadcast_to(w, r.shape)

        def out(a: np.ndarray) -> np.ndarray:
            if into is None:
                return a
            res = into @ a.reshape(a.shape[0], -1)
            return np.asarray(res).reshape(into.shape[0], *a.shape[1:])

        with np.errstate(divide="ignore", invalid="ignore"):
            same = (counts * (counts - 1)).sum(axis=-1)
            pair_share = np.where(ok, same / (r * (r - 1)), 0.0)
            do = np.where(ok, (r * r - (counts * counts).sum(axis=-1)) / (r - 1), 0.0)
            share = np.where((r >= 1)[..., None], counts / r[..., None], 0.0)
        wok = wb * ok
        wfull = wb * (r == m)
        q = counts.shape[-1]
        pairs = [out(wb[..., None, None] * ratings[i][..., :, None] * ratings[j][..., None, :])
                 for i, j in combinations(range(m), 2)]
        shape = out(r).shape
        return cls(
            n_pairable=out(wok),
            pa=out(wok * pair_share),
            do=out(wok * do),
            marg=out(wok[..., None] * counts),
            n_coded=out(wb * (r >= 1)),
            prev=out(wb[..., None] * share),
            n_full=out(wfull),
            pa_full=out(wfull * pair_share),
            prev_full=out(wfull[..., None] * share),
            pairs=np.stack(pairs, axis=-3) if pairs else np.zeros((*shape, 0, q, q)),
        )

    def _map(self, fn: Callable[[np.ndarray, int], np.ndarray]) -> AgreementSums:
        return AgreementSums(**{f.name: fn(getattr(self, f.name), self._SUFFIX.get(f.name, 0))
                                for f in fields(self)})

    def sum(self, axis: int = 0) -> AgreementSums:
        """Sum over one batch axis (units, documents, codes); ``axis`` counts batch dimensions only."""
        return self._map(lambda a, s: a.sum(axis=axis if axis >= 0 else axis - s))

    def reweight(self, weights) -> AgreementSums:
        """``weights @ sums`` over the first batch axis: ``(B, D)`` weights and ``(D, ...)`` sums give
        ``(B, ...)`` sums, e.g. bootstrap resamples of documents drawn with replacement, or a (sparse)
        document-by-unit indicator matrix that sums units into documents."""
        if not hasattr(weights, "tocsr"):
            weights = np.asarray(weights, dtype=np.float64)

        def product(a: np.ndarray, s: int) -> np.ndarray:
            out = weights @ a.reshape(a.shape[0], -1)
            return np.asarray(out).reshape(weights.shape[0], *a.shape[1:])

        return self._map(product)

    def varies(self) -> np.ndarray:
        """True where the pairable values use more than one category (the chance-corrected statistics are
        then informative rather than 1 by convention)."""
        return (self.marg > 0).sum(axis=-1) >= 2

    def pair_varies(self) -> np.ndarray:
        """:meth:`varies` per coder pair (last axis: pairs)."""
        t = self.pairs
        return ((t.sum(axis=-1) + t.sum(axis=-2)) > 0).sum(axis=-1) >= 2

    # -- statistics (element-wise over the batch dimensions; nan where nothing is pairable) -------------
    def percent_agreement(self) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(self.n_pairable > 0, self.pa / self.n_pairable, np.nan)

    def krippendorff_alpha(self) -> np.ndarray:
        """Nominal alpha: ``1 - (n - 1) * D_o / (n^2 - sum_c n_c^2)``."""
        n = self.marg.sum(axis=-1)
        de = n * n - (self.marg * self.marg).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            alpha = 1.0 - (n - 1) * self.do / de
        return np.where(n >= 2, np.where(de > 0, alpha, 1.0), np.nan)

    def _chance_corrected(self, pa: np.ndarray, pe: np.ndarray, n: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            k = (pa - pe) / (1.0 - pe)
        return np.where(n > 0, np.where(pe < 1.0 - 1e-12, k, 1.0), np.nan)

    def gwet_ac1(self) -> np.ndarray:
        q = self.marg.shape[-1]
        with np.errstate(divide="ignore", invalid="ignore"):
            pi = self.prev / self.n_coded[..., None]
        pe = (pi * (1 - pi)).sum(axis=-1) / max(q - 1, 1)
        return self._chance_corrected(self.percent_agreement(), pe, self.n_pairable)

    def brennan_prediger(self, n_categories: int | None = None) -> np.ndarray:
        q = n_categories or self.marg.shape[-1]
        return self._chance_corrected(self.percent_agreement(), np.full(self.pa.shape, 1.0 / q),
                                      self.n_pairable)

    def fleiss_kappa(self) -> np.ndarray:
        """Over the units coded by every coder."""
        with np.errstate(divide="ignore", invalid="ignore"):
            p_bar = self.pa_full / self.n_full
            p = self.prev_full / self.n_full[..., None]
        return self._chance_corrected(p_bar, (p * p).sum(axis=-1), self.n_full)

    def cohen_kappa(self) -> np.ndarray:
        """One kappa per coder pair (last axis: pairs in ``itertools.combinations`` order)."""
        t = self.pairs
        n = t.sum(axis=(-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            po = np.trace(t, axis1=-2, axis2=-1) / n
            pe = (t.sum(axis=-1) * t.sum(axis=-2)).sum(axis=-1) / (n * n)
        return self._chance_corrected(po, pe, n)

    def pair_agreement(self) -> np.ndarray:
        """Share of units both coders of a pair put in the same category (last axis: pairs)."""
        t = self.pairs
        n = t.sum(axis=(-2, -1))
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(n > 0, np.trace(t, axis1=-2, axis2=-1) / n, np.nan)


# -- reliability data ------------------------------------------------------------------------------------
def _reliability_data(data, min_coders: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Coders x units -> (codes int array with -1 for missing, sorted category values)."""
    arr = np.asarray(data, dtype=object)
    if arr.ndim != 2:
        raise AgreementError(
            f"Expected reliability data as a 2-D array (coders x units), got an array of shape {arr.shape}. "
            "Put one row per coder, one column per unit, and nan or None where a coder did not code a unit."
        )
    if arr.shape[0] < min_coders:
        raise AgreementError(
            f"Expected at least {min_coders} coders (rows), got {arr.shape[0]}. If your array has one row per "
            "unit, transpose it."
        )
    missing = np.vectorize(lambda v: v is None or (isinstance(v, float) and np.isnan(v)), otypes=[bool])(arr)
    present = arr[~missing]
    if present.size == 0:
        raise AgreementError("The reliability data hold no values: every entry is missing.")
    distinct = set(present.tolist())
    try:
        values = sorted(distinct)
    except TypeError:  # mixed types, or sets (only partially ordered): any fixed order will do
        values = sorted(distinct, key=lambda v: (type(v).__name__, repr(sorted(v, key=repr)) if
                                                 isinstance(v, frozenset) else repr(v)))
    index = {v: i for i, v in enumerate(values)}
    codes = np.full(arr.shape, -1, dtype=np.int64)
    codes[~missing] = [index[v] for v in present.tolist()]
    empty = [i for i in range(arr.shape[0]) if (codes[i] < 0).all()]
    if empty:
        raise AgreementError(
            f"Coder(s) {empty} (row index) coded no unit. Drop them or check that their column was read."
        )
    return codes, np.array(values, dtype=object)


def _one_hot(codes: np.ndarray, q: int) -> np.ndarray:
    out = np.zeros((*codes.shape, q), dtype=np.float64)
    rows = codes >= 0
    out[rows, codes[rows]] = 1.0
    return out


def _sums(data) -> tuple[AgreementSums, np.ndarray]:
    codes, values = _reliability_data(data)
    sums = AgreementSums.from_ratings(_one_hot(codes, len(values))).sum(axis=0)
    if float(sums.n_pairable) == 0:
        raise AgreementError(
            "No unit is coded by two or more coders, so there is nothing to compare. Check that the coders "
            "coded the same units (same unit order in every row)."
        )
    return sums, values


def count_table(data) -> tuple[np.ndarray, np.ndarray]:
    """Turn reliability data (coders x units, nan = missing) into a count table (units x categories).

    Returns
    -------
    counts : ndarray (n_units, n_categories)
    values : ndarray (n_categories,)
        The category of each column, sorted.

    >>> counts, values = count_table([[1, 2, None], [1, 1, 2]])
    >>> counts.tolist(), values.tolist()
    ([[2, 0], [1, 1], [0, 1]], [1, 2])
    """
    codes, values = _reliability_data(data, min_coders=1)
    return _one_hot(codes, len(values)).sum(axis=0).astype(np.int64), values


def percent_agreement(data) -> float:
    """Share of agreeing coder pairs, averaged over the units coded by at least two coders.

    With two coders, the share of units both put in the same category.

    Parameters
    ----------
    data : array-like (n_coders, n_units)
        Reliability data; ``nan``/``None`` where a coder did not code a unit.

    >>> percent_agreement([[1, 1, 0, 0], [1, 0, 0, 0]])
    0.75
    """
    sums, _ = _sums(data)
    return float(sums.percent_agreement())


def gwet_ac1(data) -> float:
    """Gwet's AC1 (first-order agreement coefficient) for any number of coders, with missing codings.

    ``(p_a - p_e) / (1 - p_e)`` with ``p_e = sum_k pi_k (1 - pi_k) / (q - 1)`` and ``pi_k`` the mean share of
    category k among each unit's values (Gwet 2014, *Handbook of Inter-Rater Reliability*, 4th ed., ch. 2);
    ``q`` is the number of categories used.

    Parameters
    ----------
    data : array-like (n_coders, n_units)
        Reliability data; ``nan``/``None`` where a coder did not code a unit.

    Examples
    --------
    Two coders, 2 x 2 table [[40, 9], [6, 45]], worked by hand: p_a = 0.85, pi_1 = (0.49 + 0.46) / 2 = 0.475,
    p_e = 2 * 0.475 * 0.525 = 0.49875, AC1 = 0.35125 / 0.50125 = 0.70075.

    >>> a = [1] * 49 + [0] * 51
    >>> b = [1] * 40 + [0] * 9 + [1] * 6 + [0] * 45
    >>> round(gwet_ac1([a, b]), 5)
    0.70075
    """
    sums, _ = _sums(data)
    return float(sums.gwet_ac1())


def brennan_prediger(data, n_categories: int | None = None) -> float:
    """Brennan and Prediger's (1981) kappa: chance agreement ``1/q`` for ``q`` equally likely categories.

    Parameters
    ----------
    data : array-like (n_coders, n_units)
        Reliability data; ``nan``/``None`` where a coder did not code a unit.
    n_categories : int, optional
        ``q``, the number of categories coders could choose from (default: the number used).

    >>> brennan_prediger([[1, 1, 0, 0], [1, 0, 0, 0]])
    0.5
    >>> round(brennan_prediger([[1, 1, 0, 0], [1, 0, 0, 0]], n_categories=4), 4)
    0.6667
    """
    sums, values = _sums(data)
    if n_categories is not None and n_categories < len(values):
        raise AgreementError(
            f"n_categories={n_categories}, but the data use {len(values)} categories ({list(values)}). "
            "Give the number of categories the coders could choose from."
        )
    return float(sums.brennan_prediger(n_categories))


def fleiss_kappa(counts) -> float:
    """Fleiss' (1971) kappa from a count table: every unit rated by the same number of coders.

    Parameters
    ----------
    counts : array-like (n_units, n_categories)
        How many coders put each unit in each category. Build it from reliability data with
        :func:`count_table` (units some coder left out must be dropped first).

    Examples
    --------
    Fleiss (1971), table 1: 30 patients, 6 psychiatrists each, 5 diagnoses; kappa = 0.430.

    >>> ratings = ("444444 222555 233335 555555 222444 113333 333355 113334 114444 555555 144444 124444 "
    ...            "222333 144444 224445 333335 111455 111112 224444 133555 555555 244444 224555 114444 "
    ...            "144445 222224 111155 224444 133333 555555")
    >>> counts = [[r.count(str(c)) for c in range(1, 6)] for r in ratings.split()]
    >>> round(fleiss_kappa(counts), 3)
    0.43
    """
    counts = np.asarray(counts, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] == 0:
        raise AgreementError(
            f"Expected a count table (units x categories), got an array of shape {counts.shape}."
        )
    if (counts < 0).any():
        raise AgreementError("The count table has negative counts; each cell counts coders.")
    per_unit = counts.sum(axis=1)
    if not np.all(per_unit == per_unit[0]):
        bad = np.flatnonzero(per_unit != per_unit[0])[:5].tolist()
        raise AgreementError(
            f"Fleiss' kappa needs the same number of coders for every unit; unit 0 has {per_unit[0]:g}, units "
            f"{bad} differ. Drop units some coder left out, or use krippendorff_alpha, which allows missing values."
        )
    if per_unit[0] < 2:
        raise AgreementError(f"Each unit needs at least two ratings, got {per_unit[0]:g}.")
    m = per_unit[0]
    pa = ((counts * (counts - 1)).sum(axis=1) / (m * (m - 1))).mean()
    p = counts.sum(axis=0) / counts.sum()
    pe = float((p * p).sum())
    if pe >= 1.0 - 1e-12:
        return 1.0
    return float((pa - pe) / (1 - pe))


def _delta(level: Level | str, values: np.ndarray, marg: np.ndarray) -> np.ndarray:
    """Krippendorff's squared difference function for the metric ``level``."""
    if level == "nominal":
        return 1.0 - np.eye(len(values))
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise AgreementError(
            f"The {level} level needs numeric values, got {list(values)[:5]}. Use level='nominal' for labels."
        ) from None
    if level == "interval":
        return (v[:, None] - v[None, :]) ** 2
    if level == "ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            d = ((v[:, None] - v[None, :]) / (v[:, None] + v[None, :])) ** 2
        return np.nan_to_num(d)
    if level == "ordinal":
        cum = np.concatenate([[0.0], np.cumsum(marg)])  # values are sorted
        i = np.arange(len(v))
        lo, hi = np.minimum(i[:, None], i[None, :]), np.maximum(i[:, None], i[None, :])
        return (cum[hi + 1] - cum[lo] - (marg[:, None] + marg[None, :]) / 2) ** 2
    raise AgreementError(
        f"Unknown level {level!r}: use 'nominal', 'ordinal', 'interval' or 'ratio'."
    )


def _coincidences(counts: np.ndarray) -> np.ndarray:
    r = counts.sum(axis=1)
    ok = r >= 2
    c = counts[ok]
    o = np.einsum("uc,uk,u->ck", c, c, 1.0 / (r[ok] - 1))
    o -= np.diag((c / (r[ok] - 1)[:, None]).sum(axis=0))
    return o


def _alpha_from_coincidences(o: np.ndarray, delta: np.ndarray) -> float:
    marg = o.sum(axis=1)
    n = marg.sum()
    if n < 2:
        raise AgreementError(
            "No unit is coded by two or more coders, so there is nothing to compare. Check that the coders "
            "coded the same units (same unit order in every row)."
        )
    de = float(marg @ delta @ marg)
    if de <= 0:
        return 1.0
    return float(1.0 - (n - 1) * float((o * delta).sum()) / de)


def krippendorff_alpha(data, level: Level = "nominal") -> float:
    """Krippendorff's alpha for any number of coders, missing values allowed.

    ``alpha = 1 - D_o / D_e`` from the coincidence matrix of pairable values (Krippendorff 2011, "Computing
    Krippendorff's alpha-reliability").

    Parameters
    ----------
    data : array-like (n_coders, n_units)
        Reliability data; ``nan``/``None`` where a coder did not code a unit. Units coded by one coder only
        are left out (they are not pairable).
    level : {"nominal", "ordinal", "interval", "ratio"}
        The metric of the values; anything but nominal needs numbers.

    Examples
    --------
    Krippendorff (2011), section C: 4 observers, 12 units, missing values.

    >>> nan = float("nan")
    >>> data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    ...         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    ...         [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    ...         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan]]
    >>> [round(krippendorff_alpha(data, level), 3) for level in ("nominal", "ordinal", "interval", "ratio")]
    [0.743, 0.815, 0.849, 0.797]
    """
    codes, values = _reliability_data(data)
    counts = _one_hot(codes, len(values)).sum(axis=0)
    o = _coincidences(counts)
    return _alpha_from_coincidences(o, _delta(level, values, o.sum(axis=1)))


# -- label sets ------------------------------------------------------------------------------------------
def masi_distance(a: Iterable[Hashable], b: Iterable[Hashable]) -> float:
    """MASI distance between two label sets (Passonneau 2006): ``1 - J * M``.

    ``J`` is the Jaccard index and ``M`` the monotonicity: 1 for equal sets, 2/3 when one contains the other,
    1/3 when they overlap otherwise, 0 when disjoint. Two empty sets are equal (distance 0).

    >>> masi_distance({"a", "b"}, {"a", "b", "c", "d"})
    0.6666666666666667
    >>> masi_distance(set(), set())
    0.0
    """
    a, b = set(a), set(b)
    inter, union = len(a & b), len(a | b)
    if union == 0:
        return 0.0
    if a == b:
        m = 1.0
    elif inter == min(len(a), len(b)):
        m = 2 / 3
    elif inter > 0:
        m = 1 / 3
    else:
        m = 0.0
    return 1.0 - inter / union * m


def masi_distances(labels) -> np.ndarray:
    """MASI distances between all pairs of label sets given as rows of a boolean matrix (sets x labels).

    The vectorised form of :func:`masi_distance`, for many sets at once.

    >>> masi_distances([[1, 1, 0, 0], [1, 1, 1, 1], [0, 0, 0, 0]]).round(3).tolist()
    [[0.0, 0.667, 1.0], [0.667, 0.0, 1.0], [1.0, 1.0, 0.0]]
    """
    s = np.asarray(labels, dtype=np.float64)
    if s.ndim != 2:
        raise AgreementError(f"Expected a 2-D boolean matrix (sets x labels), got shape {s.shape}.")
    inter = s @ s.T
    size = s.sum(axis=1)
    union = size[:, None] + size[None, :] - inter
    small = np.minimum(size[:, None], size[None, :])
    equal = (inter == size[:, None]) & (inter == size[None, :])
    m = np.where(equal, 1.0, np.where(inter == small, 2 / 3, np.where(inter > 0, 1 / 3, 0.0)))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = 1.0 - np.where(union > 0, inter / union, 1.0) * m
    return np.where(equal, 0.0, d)


def masi_alpha(sets: Sequence[Sequence[Iterable[Hashable] | None]],
               distance: Callable[[frozenset, frozenset], float] = masi_distance) -> float:
    """Krippendorff's alpha over label sets, with the MASI distance (Passonneau 2006) by default.

    Each distinct set of labels is one value of alpha's coincidence matrix; ``distance`` gives how far apart
    two sets are (``1 - [a == b]`` makes this nominal alpha over whole sets).

    Parameters
    ----------
    sets : sequence (n_coders) of sequences (n_units) of label sets
        ``None`` where a coder did not code a unit; an empty set where the coder applied no label.
    distance : callable
        A distance between two frozensets, 0 for equal sets.

    Worked by hand: 8 pairable values; D_o = (2 * 2/3 + 2 * 1) / 8 = 0.4167 (units 2 and 4 differ);
    D_e = 38 / 56 = 0.6786 from the value counts {a}: 4, {a, b}: 1, {b}: 2, {}: 1.

    >>> masi_alpha([[{"a"}, {"a", "b"}, set()], [{"a"}, {"a", "b"}, set()]])
    1.0
    >>> round(masi_alpha([[{"a"}, {"a", "b"}, {"b"}, set()], [{"a"}, {"a"}, {"b"}, {"a"}]]), 3)
    0.386
    """
    rows = [list(r) for r in sets]
    if len(rows) < 2:
        raise AgreementError(f"Expected label sets of at least 2 coders, got {len(rows)}.")
    n_units = {len(r) for r in rows}
    if len(n_units) != 1:
        raise AgreementError(
            f"Every coder needs one entry per unit (None where not coded); the rows have lengths {sorted(n_units)}."
        )
    data = np.empty((len(rows), n_units.pop()), dtype=object)
    for i, r in enumerate(rows):
        for j, s in enumerate(r):
            data[i, j] = None if s is None else frozenset(s)
    codes, values = _reliability_data(data)
    counts = _one_hot(codes, len(values)).sum(axis=0)
    delta = np.array([[distance(x, y) for y in values] for x in values], dtype=np.float64)
    return _alpha_from_coincidences(_coincidences(counts), delta)
