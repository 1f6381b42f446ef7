"""How fine candidate codes are cut and when they join a category, both learned from the study's own codes.

The study's coded segments say how fine-grained its codes are and how near sibling codes sit. Before the scorer
is fitted nothing is known about the codes the new interviews may bring, so both settings are chosen by hiding
known codes and asking what would have recovered them:

- :func:`calibrate_cut`: random sets of a few known codes, their segments clustered by average linkage; the cut
  (a cosine distance) whose groups agree best with those codes (adjusted Rand index, mean over the sets).
- :func:`calibrate_join`: the centre of a few segments of a known code is compared with the other codes: with all
  of them (as if the code were new but its category known: it should join) and with the other categories'
  codes only (as if its whole category were new: it should not); the cosine that tells the two apart best
  (balanced accuracy).

Both work in the centred space (:func:`centre_rows`): the scorer's unit vectors less the mean of its training
segments, renormalised. e5 vectors share a large common direction (any two Chinese sentences have a cosine near
0.8), so distances between them are compressed; centring spreads them (docs/methods.md, "Candidate codes").
"""

from __future__ import annotations

import numpy as np

CUT_TASKS = 20
"""Random sets of known codes :func:`calibrate_cut` clusters."""

TASK_CODES = (2, 8)
"""Each set holds between this many known codes (a handful of new codes, as a batch of interviews brings)."""

MAX_TASK_SEGMENTS = 1_500
"""A set's segments beyond this many are sampled (average linkage is quadratic in memory and time)."""

CUT_GRID = np.round(np.arange(0.01, 1.51, 0.01), 2)
"""The cosine distances :func:`calibrate_cut` tries."""

JOIN_SIZE = 3
"""Segments per simulated candidate in :func:`calibrate_join` (candidates hold a few segments, and a centre of
few segments is less near to any code than a code's full prototype is)."""

JOIN_DRAWS = 5
"""Simulated candidates per known code in :func:`calibrate_join`."""


def centre_rows(X: np.ndarray, centre: np.ndarray | None) -> np.ndarray:
    """Unit rows of ``X - centre`` (``X`` itself when ``centre`` is None: a scorer saved before centring). A row
    equal to the centre stays zero.

    >>> centre_rows(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0.5, 0.5])).round(3).tolist()
    [[0.707, -0.707], [-0.707, 0.707]]
    """
    if centre is None:
        return np.asarray(X)
    X = np.asarray(X)
    Z = X - np.asarray(centre, dtype=X.dtype)
    norms = np.linalg.norm(Z, axis=1, keepdims=True)
    return Z / np.where(norms > 0, norms, 1.0)


def single_coded(Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, code) of the segments that carry exactly one code of ``Y`` (a segment with two codes belongs to
    neither group alone)."""
    Y = np.asarray(Y, dtype=bool)
    rows = np.flatnonzero(Y.sum(axis=1) == 1)
    return rows, Y[rows].argmax(axis=1)


def calibrate_cut(X: np.ndarray, Y: np.ndarray, random_state: int | None = 0, n_tasks: int = CUT_TASKS,
                  max_segments: int = MAX_TASK_SEGMENTS) -> float:
    """The cosine distance at which average linkage best recovers the study's own codes.

    ``n_tasks`` times, between :data:`TASK_CODES` known codes are drawn (seeded), their segments that carry
    exactly one code (unit rows of ``X``, codes ``Y``) are clustered by average linkage, and the adjusted Rand
    index of the groups against the codes is computed at every cut of :data:`CUT_GRID`; the cut with the highest
    mean wins (the smallest of equals). NaN when fewer than two codes have two such segments.

    >>> X = np.array([[1.0, 0.0], [0.995, 0.1], [0.0, 1.0], [0.1, 0.995]])
    >>> cut = calibrate_cut(X, np.array([[1, 0], [1, 0], [0, 1], [0, 1]]))
    >>> 0.005 < cut < 0.9
    True
    """
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.metrics import adjusted_rand_score

    rows, lab = single_coded(Y)
    codes, counts = np.unique(lab, return_counts=True)
    codes = codes[counts >= 2]
    if len(codes) < 2:
        return float("nan")
    rng = np.random.default_rng(random_state)
    curves = []
    for _ in range(n_tasks):
        k = int(rng.integers(TASK_CODES[0], TASK_CODES[1] + 1))
        pick = rng.choice(codes, size=min(k, len(codes)), replace=False)
        sel = np.flatnonzero(np.isin(lab, pick))
        if len(sel) > max_segments:
            sel = np.sort(rng.choice(sel, size=max_segments, replace=False))
        tree = linkage(np.asarray(X[rows[sel]], dtype=np.float64), method="average", metric="cosine")
        top = tree[-1, 2]
        curve = []
        for d in CUT_GRID:
            if curve and d > top:  # one group from here on
                curve.append(curve[-1])
                continue
            curve.append(adjusted_rand_score(lab[sel], fcluster(tree, d, criterion="distance")))
        curves.append(curve)
    mean = np.nanmean(np.array(curves, dtype=float), axis=0)
    return float(CUT_GRID[int(np.nanargmax(mean))])


def calibrate_join(X: np.ndarray, Y: np.ndarray, prototypes: np.ndarray, categories: list[str | None],
                   random_state: int | None = 0, size: int = JOIN_SIZE, draws: int = JOIN_DRAWS) -> float:
    """The cosine a candidate needs to join a category, learned by hiding the study's own codes.

    For each code with a category, a sibling code and two segments, ``draws`` centres of ``size`` of its
    segments (unit rows of ``X``; codes ``Y``) are compared with the other codes' ``prototypes``, as
    :func:`place` compares a candidate: the nearest of all the other codes gives a cosine at which a candidate
    should join (the code hidden, its category known), the nearest code of another category one at which it
    should not (its whole category hidden). The threshold is the cosine that sorts the two best (balanced
    accuracy; the midpoint between the two values it falls between). NaN without two categories of which one
    has two codes.

    >>> P = np.array([[1.0, 0.0], [0.9, 0.436], [0.0, 1.0]])
    >>> X = np.array([[1.0, 0.0], [0.98, 0.199], [0.9, 0.436], [0.85, 0.527], [0.0, 1.0], [0.1, 0.995]])
    >>> Y = np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]])
    >>> 0.5 < calibrate_join(X, Y, P, ["a", "a", "b"], size=2, draws=1) < 0.9
    True
    """
    cats = np.array([c if c is not None else "" for c in categories], dtype=object)
    if len(set(cats.tolist()) - {""}) < 2:
        return float("nan")
    Y = np.asarray(Y, dtype=bool)
    rng = np.random.default_rng(random_state)
    join, new = [], []
    for j, c in enumerate(cats):
        rows = np.flatnonzero(Y[:, j])
        own = (cats == c) & (np.arange(len(cats)) != j)
        if c == "" or len(rows) < 2 or not own.any():
            continue
        other = (cats != c) & (cats != "")
        for _ in range(draws):
            pick = rng.choice(rows, size=min(size, len(rows)), replace=False)
            centre = np.asarray(X[pick]).mean(axis=0)
            centre = centre / (np.linalg.norm(centre) or 1.0)
            sims = prototypes @ centre
            join.append(float(sims[np.arange(len(cats)) != j].max()))
            new.append(float(sims[other].max()))
    if not join:
        return float("nan")
    join_a, new_a = np.array(join), np.array(new)
    values = np.unique(np.concatenate([join_a, new_a]))
    cands = np.concatenate([[values[0] - 1e-6], (values[:-1] + values[1:]) / 2, [values[-1] + 1e-6]])
    accuracy = [(join_a >= t).mean() + (new_a < t).mean() for t in cands]
    return float(cands[int(np.argmax(accuracy))])
