"""Candidate new codes: novel segments grouped by average-linkage clustering, cut where groups become looser
than the existing codes, named by their class-based TF-IDF key terms."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..codebook import Codebook
from ..exceptions import AutocodeError
from ..text import SPEAKER_PREFIX, ChineseTokenizer

if TYPE_CHECKING:
    from ._scoring import NoveltyScorer, NoveltyScores


@dataclass
class CandidateCode:
    """A group of novel segments proposed as a new open code.

    Attributes
    ----------
    id : str
        ``"NEW1"``, ``"NEW2"`` ... by size.
    name : str
        The top key terms joined by ``"·"`` (a working name for the researcher to replace).
    key_terms : list of (str, float)
        Class-based TF-IDF terms with their weights.
    members : list of int
        Indices of the segments (into the scored segments).
    quotes : list of int
        The members nearest the group's centre, most representative first.
    documents : list of str
        Documents the members come from, in interview order.
    category : str or None
        The codebook category the candidate would most likely join, ``category_similarity`` its cosine.
    nearest_codes : list of (str, float)
        Existing codes nearest to the candidate: check they do not already cover it.
    """

    id: str
    name: str
    key_terms: list[tuple[str, float]]
    members: list[int]
    quotes: list[int]
    documents: list[str]
    category: str | None
    category_similarity: float
    nearest_codes: list[tuple[str, float]] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.members)


def code_spread(X: np.ndarray, Y: np.ndarray, q: float = 90) -> float:
    """The ``q``-th percentile over codes of the mean pairwise cosine distance between a code's segments (unit
    rows ``X``, codes ``Y``): with v the sum of m unit rows, the mean pairwise cosine is (|v|^2 - m) / (m (m - 1)).
    0.5 when no code has two segments. The scorer's :attr:`~NoveltyScorer.cluster_distance_` (``q = 90``).

    >>> X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    >>> code_spread(X, np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool), q=50)
    0.5
    """
    spreads = []
    for j in range(Y.shape[1]):
        rows = X[np.flatnonzero(Y[:, j])]
        m = rows.shape[0]
        if m >= 2:
            v = np.asarray(rows.sum(axis=0)).ravel()
            spreads.append(1 - (float(v @ v) - m) / (m * (m - 1)))
    return float(np.percentile(spreads, q)) if spreads else 0.5


MAX_CLUSTERED = 5_000
"""Average linkage needs the novel segments' distances pairwise (memory and time quadratic in their number):
beyond this many, an evenly spaced sample of them is clustered and every other one joins the group whose
centre it is most like (5,000 segments: 200 MB of distances)."""


def cluster_embeddings(X, distance: float, n_clusters: int | None = None, max_clustered: int = MAX_CLUSTERED
                       ) -> np.ndarray:
    """Cluster labels of unit rows ``X`` (dense or sparse): average linkage on cosine distance, cut at
    ``distance``, or into ``n_clusters`` groups when given. With more than ``max_clustered`` rows, an evenly
    spaced sample of that many is clustered and each other row takes the label of the group centre (the
    normalised mean of its sampled members) it is most similar to.

    >>> X = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    >>> cluster_embeddings(X, 0.5).tolist()
    [0, 0, 1]
    >>> cluster_embeddings(X, 0.5, max_clustered=2).tolist()  # rows 0 and 2 clustered, row 1 joins row 0
    [1, 1, 0]
    """
    n = X.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
    if n > max_clustered >= 2:
        from sklearn.preprocessing import normalize

        sample = np.unique(np.linspace(0, n - 1, max_clustered).round().astype(int))
        labels = np.empty(n, dtype=int)
        labels[sample] = cluster_embeddings(X[sample], distance, n_clusters, max_clustered)
        groups = np.unique(labels[sample])
        centres = normalize(np.vstack([np.asarray(X[sample[labels[sample] == g]].mean(axis=0)).ravel()
                                       for g in groups]))
        rest = np.setdiff1d(np.arange(n), sample)
        for start in range(0, len(rest), max_clustered):  # a block of rows x the centres at a time
            rows = rest[start:start + max_clustered]
            sims = X[rows] @ centres.T
            labels[rows] = groups[np.asarray(sims).argmax(axis=1)]
        return labels
    from sklearn.cluster import AgglomerativeClustering

    sims = X @ X.T
    D = 1 - (sims.toarray() if sp.issparse(sims) else np.asarray(sims))
    np.fill_diagonal(D, 0.0)
    D = np.clip(D, 0.0, None)
    if n_clusters is not None:
        algo = AgglomerativeClustering(n_clusters=min(n_clusters, n), metric="precomputed", linkage="average")
    else:
        algo = AgglomerativeClustering(n_clusters=None, distance_threshold=distance, metric="precomputed",
                                       linkage="average")
    return algo.fit_predict(D)


def _key_terms(groups: list[list[str]], background: list[str], tokenizer: ChineseTokenizer, k: int):
    """Class-based TF-IDF (Grootendorst 2022, BERTopic): tf of a term in a class x log(1 + A / f), A the mean
    number of words per class, f the term's frequency over all classes; the non-novel segments form one more
    class, so terms common in these interviews rank low. Multiplied by the term's IDF in jieba's general table
    (relative to its median), so that words common in any Chinese text rank low too. Words of one character
    and numbers are skipped."""
    def words(texts):
        c = Counter()
        for t in texts:
            c.update(w for w in tokenizer.words(t) if len(w) >= 2 and not w.isdigit())
        return c

    counts = [words(g) for g in groups] + [words(background)]
    total = Counter()
    for c in counts:
        total.update(c)
    A = np.mean([sum(c.values()) for c in counts]) or 1.0
    general = _general_idf(set(total))
    out = []
    for c, texts in zip(counts[:-1], groups):
        n = sum(c.values()) or 1
        w = {t: (m / n) * math.log(1 + A / total[t]) * general.get(t, general[""]) for t, m in c.items()}
        top = sorted(w.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
        out.append([(_as_written(t, texts, tokenizer), v) for t, v in top])
    return out


def _general_idf(terms: set[str]) -> dict[str, float]:
    """IDF of ``terms`` in jieba's general-language table (``jieba/analyse/idf.txt``), divided by its median, so
    that words common in any Chinese text (知道, 就是) rank low; ``""`` holds the value for unknown words (the
    median, as jieba.analyse does). All 1.0 when the table is not there."""
    from pathlib import Path

    import jieba

    path = Path(jieba.__file__).parent / "analyse" / "idf.txt"
    if not path.exists():
        return {"": 1.0}
    found, values = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, _, idf = line.rstrip("\n").partition(" ")
            try:
                v = float(idf)
            except ValueError:
                continue
            values.append(v)
            if word in terms:
                found[word] = v
    median = float(np.median(values)) if values else 1.0
    out = {t: v / median for t, v in found.items()}
    out[""] = 1.0
    return out


def _as_written(term: str, texts: list[str], tokenizer: ChineseTokenizer) -> str:
    """The term as the speakers wrote it (e.g. Traditional characters): terms are found in normalised text,
    which has the same length as the original for OpenCC's character conversion."""
    for t in texts:
        body = SPEAKER_PREFIX.sub("", t, count=1) if tokenizer.strip_speaker else t
        norm = tokenizer.normalize(t)
        k = norm.find(term)
        if k >= 0 and len(norm) == len(body):
            return body[k : k + len(term)]
    return term


def propose_codes(scores: NoveltyScores, codebook: Codebook, scorer: NoveltyScorer, *, min_size: int = 2,
                  n_clusters: int | None = None, n_terms: int = 5, n_quotes: int = 3) -> list[CandidateCode]:
    """Group the novel segments of ``scores`` into candidate new codes.

    Parameters
    ----------
    scores : NoveltyScores
    codebook : Codebook
        The model's codebook (for categories and display).
    scorer : NoveltyScorer
        The fitted scorer (its code prototypes and :attr:`~NoveltyScorer.cluster_distance_`).
    min_size : int
        Groups with fewer segments are left out (2: a concept voiced at least twice; a single novel segment
        is listed in the report but is weak evidence).
    n_clusters : int, optional
        Fix the number of groups instead of cutting where groups become looser than existing codes.
    n_terms, n_quotes : int
        Key terms and quotes per candidate.
    """
    if min_size < 1:
        raise AutocodeError(f"min_size must be at least 1, got {min_size}.")
    idx = np.flatnonzero(scores.novel)
    if len(idx) == 0:
        return []
    labels = cluster_embeddings(scores.embedding[idx], scorer.cluster_distance_, n_clusters)
    doc_pos = {d: i for i, d in enumerate(dict.fromkeys(s.document for s in scores.segments))}
    groups = []
    for lab in np.unique(labels):
        members = idx[labels == lab]
        if len(members) >= min_size:
            groups.append(members)
    groups.sort(key=lambda m: (-len(m), min(doc_pos[scores.segments[i].document] for i in m)))
    if not groups:
        return []
    in_group = np.zeros(len(scores), dtype=bool)
    for m in groups:
        in_group[m] = True
    background = [s.text for i, s in enumerate(scores.segments) if scores.eligible[i] and not in_group[i]]
    terms = _key_terms([[scores.segments[i].text for i in m] for m in groups], background, scorer.tokenizer_,
                       n_terms)
    from sklearn.preprocessing import normalize

    out = []
    for k, (members, kt) in enumerate(zip(groups, terms), start=1):
        centre = normalize(scores.embedding[members].mean(axis=0, keepdims=True))[0]
        order = np.argsort(-(scores.embedding[members] @ centre), kind="stable")
        sims = scorer.prototypes_ @ centre
        near = np.argsort(-sims, kind="stable")[:3]
        nearest = [(scorer.codes_[j], float(sims[j])) for j in near]
        cat_sims: dict[str, float] = {}
        for j, c in enumerate(scorer.codes_):
            anc = codebook.ancestors(c) if c in codebook else []
            cat = anc[0] if anc else None
            if cat is not None:
                cat_sims[cat] = max(cat_sims.get(cat, -1.0), float(sims[j]))
        cat = max(cat_sims, key=cat_sims.get) if cat_sims else None
        docs = sorted({scores.segments[i].document for i in members}, key=doc_pos.get)
        out.append(CandidateCode(
            id=f"NEW{k}", name="·".join(t for t, _ in kt[:3]) or f"NEW{k}",
            key_terms=[(t, round(w, 4)) for t, w in kt], members=[int(i) for i in members],
            quotes=[int(members[i]) for i in order[:n_quotes]], documents=docs, category=cat,
            category_similarity=round(cat_sims.get(cat, 0.0), 4) if cat else 0.0, nearest_codes=nearest,
        ))
    return out
