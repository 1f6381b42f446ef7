"""The codebook prior's pure parts (:mod:`autocode.backends.codebook`): each code's texts, a segment's
sentences, and the arithmetic that turns similarities into relative scores."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm

from ..segment import split_sentences
from ..text import count_letters

__all__ = ["best_sentence", "category_names", "code_texts", "relative_similarity", "sentence_pieces", "standout"]


def code_texts(codebook, codes: Sequence[str]) -> list[str]:
    """Each code's text for the prior: ``"category / name: description"`` (parts that are empty, equal to
    the id or repeating the name are left out).

    >>> from autocode.codebook import Code, Codebook
    >>> book = Codebook([Code("G", "信任"), Code("c1", "相信标签", "标签让人放心", parent="G")])
    >>> code_texts(book, ["c1"])
    ['信任 / 相信标签：标签让人放心']
    """
    out = []
    depth = codebook.category_depth
    for cid in codes:
        code = codebook[cid]
        cat = codebook.ancestor_at(cid, depth)
        cat_name = codebook[cat].name if cat and cat != cid and codebook[cat].name != cat else ""
        name = code.name if code.name != cid else ""
        desc = code.description if code.description and code.description != code.name else ""
        body = "：".join(p for p in (name, desc) if p) or cid
        out.append(f"{cat_name} / {body}" if cat_name else body)
    return out


def category_names(codebook, codes: Sequence[str]) -> list[str]:
    """The name of each code's category (its ancestor at the codebook's category level; "" for none).

    >>> from autocode.codebook import Code, Codebook
    >>> category_names(Codebook([Code("G", "信任"), Code("c1", parent="G"), Code("c2")]), ["c1", "c2"])
    ['信任', '']
    """
    depth = codebook.category_depth
    out = []
    for cid in codes:
        cat = codebook.ancestor_at(cid, depth)
        out.append(codebook[cat].name if cat and cat != cid else "")
    return out


def relative_similarity(S: np.ndarray) -> np.ndarray:
    """Each row's similarities as z-scores over the codes (rows that do not vary give 0).

    >>> relative_similarity(np.array([[0.8, 0.9, 0.7], [0.5, 0.5, 0.5]])).round(3) + 0.0
    array([[ 0.   ,  1.225, -1.225],
           [ 0.   ,  0.   ,  0.   ]])
    """
    mean = S.mean(axis=1, keepdims=True)
    sd = S.std(axis=1, keepdims=True)
    return np.where(sd > 1e-12, (S - mean) / np.maximum(sd, 1e-12), 0.0)


def standout(n_codes: int) -> float:
    """``z* = Φ⁻¹(1 - 1/K)``: how far the code a segment suggests must stand out (see
    :mod:`autocode.backends.codebook`).

    >>> round(standout(46), 3)
    2.019
    """
    return float(norm.ppf(1.0 - 1.0 / max(n_codes, 2)))


def sentence_pieces(text: str, min_letters: int) -> list[str]:
    """The sentences of ``text`` (split at sentence ends and line breaks), each with fewer than ``min_letters``
    letters joined to the next (the last to the one before); the text itself when it has no sentence end.

    >>> sentence_pieces("对。我觉得标签有用。但是照片本身更重要！嗯", 6)
    ['对。我觉得标签有用。', '但是照片本身更重要！嗯']
    """
    out, pending = [], ""
    for line in text.splitlines():
        for a, b in split_sentences(line):
            pending += line[a:b]
            if count_letters(pending) >= min_letters:
                out.append(pending)
                pending = ""
    if pending:
        if out:
            out[-1] += pending
        else:
            out.append(pending)
    return out


def best_sentence(S: np.ndarray, rows: np.ndarray, n: int) -> np.ndarray:
    """Per segment (``n``), the largest similarity of its sentences (rows of ``S``, segment ``rows``); 0 for
    a segment without one."""
    out = np.full((n, S.shape[1]), -np.inf)
    np.maximum.at(out, rows, S)
    return np.where(np.isfinite(out), out, 0.0)
