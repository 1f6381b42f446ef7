"""Agreement statistics between coders: pure, vectorised functions over arrays.

>>> cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0])
0.5
"""

from __future__ import annotations

import numpy as np

__all__ = ["cohen_kappa"]


def cohen_kappa(a, b) -> float:
    """Cohen's kappa between two coders' labels of the same units (any hashable labels).

    Returns 1.0 when both coders use one and the same category throughout (perfect agreement with no
    variation), and ``nan`` when expected agreement is 1 but observed is not (cannot happen for labels).
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
