"""The linear probe a fine-tuned head starts from: a logistic regression per code on the frozen encoder's pooled
states (linear probing, then fine-tuning)."""

from __future__ import annotations

import numpy as np


def linear_probe(X: np.ndarray, Y: np.ndarray, balanced: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights and biases of a logistic regression per code on pooled states ``X`` (standardised for the fit,
    folded back so that they apply to the raw states). A code without positives (or negatives) gets weight 0
    and the log odds of its smoothed frequency."""
    from sklearn.linear_model import LogisticRegression

    mu, sd = X.mean(0), X.std(0) + 1e-6
    Z = (X - mu) / sd
    k = Y.shape[1]
    W, b = np.zeros((k, X.shape[1]), dtype=np.float32), np.zeros(k, dtype=np.float32)
    for j in range(k):
        pos = float(Y[:, j].sum())
        if pos == 0 or pos == len(Y):
            b[j] = np.log((pos + 0.5) / (len(Y) - pos + 0.5))
            continue
        clf = LogisticRegression(C=1.0, class_weight="balanced" if balanced else None, max_iter=1000,
                                 random_state=seed).fit(Z, Y[:, j])
        W[j] = clf.coef_[0] / sd
        b[j] = clf.intercept_[0] - float(W[j] @ mu)
    return W, b
