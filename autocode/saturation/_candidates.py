"""Candidate new codes: segments to review grouped by average-linkage clustering in the centred space, cut where
groups best recover the study's own codes (:mod:`._grouping`); named by their most distinctive whole words and
phrases (:mod:`._naming`), placed in the category of their nearest code when nearer than a bar learned by hiding
the study's own codes, or proposed as a new category."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ..codebook import Codebook
from ..exceptions import AutocodeError
from ._grouping import centre_rows
from ._naming import key_phrases

if TYPE_CHECKING:
    from ._scoring import NoveltyScorer, NoveltyScores


@dataclass
class CandidateCode:
    """A group of segments to review, proposed as a new open code.

    Attributes
    ----------
    id : str
        ``"NEW1"``, ``"NEW2"`` ... by size.
    name : str
        The top key terms joined by ``"·"`` (a working name for the researcher to replace).
    key_terms : list of (str, float)
        The group's most distinctive whole words and phrases with their weights (:func:`key_phrases`).
    members : list of int
        Indices of the segments (into the scored segments).
    quotes : list of int
        The members nearest the group's centre, most representative first.
    documents : list of str
        Documents the members come from, in interview order.
    category : str or None
        The codebook category the candidate is nearest to (``category_similarity``: the cosine, in the centred
        space, between the candidate's centre and the nearest code prototype of that category); None when the
        codebook has no categories.
    nearest_codes : list of (str, float)
        Existing codes nearest to the candidate, with their cosine: check they do not already cover it.
    new_category : bool
        True when the candidate is less near to every category than a candidate needs to join one
        (``category_similarity < join_similarity``): it would start a new category.
    join_similarity : float
        The cosine a candidate needs to join a category (the scorer's ``join_similarity_``, learned by
        :func:`calibrate_join`; :func:`join_similarity` without it); NaN without categories.
    n_novel : int
        Members at or above the novelty cut; the others reached only the review level. A candidate without a
        novel member is a group to review, not evidence of a new concept.
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
    new_category: bool = False
    join_similarity: float = float("nan")
    n_novel: int = 0

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def supported(self) -> bool:
        """Whether at least one member is novel (at the cut): a candidate new concept, not only a group to review."""
        return self.n_novel > 0


def code_categories(codes, codebook: Codebook) -> list[str | None]:
    """The category (the ancestor at :attr:`Codebook.category_depth`) of each code; None for a code that is not
    in the codebook or not below that depth (e.g. every code of a flat codebook)."""
    out = []
    depth = codebook.category_depth
    for c in codes:
        cat = codebook.ancestor_at(c, depth) if c in codebook else None
        out.append(cat if cat != c else None)
    return out


def join_similarity(prototypes: np.ndarray, categories: list[str | None], q: float = 10) -> float:
    """The cosine a candidate needs to join a category: the ``q``-th percentile over codes of the cosine between a
    code's prototype and the nearest prototype of another code in its own category (how near the loosest
    existing codes sit to their siblings; the counterpart of :func:`code_spread`'s 90th percentile). NaN when no
    category has two codes.

    >>> P = np.array([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    >>> round(join_similarity(P, ["a", "a", "b"], q=50), 2)
    0.8
    """
    sims = []
    cats = np.array([c if c is not None else "" for c in categories], dtype=object)
    for j, c in enumerate(categories):
        sib = np.flatnonzero((cats == c) & (np.arange(len(cats)) != j)) if c is not None else []
        if len(sib):
            sims.append(float((prototypes[sib] @ prototypes[j]).max()))
    return float(np.percentile(sims, q)) if sims else float("nan")


def place(centre: np.ndarray, prototypes: np.ndarray, categories: list[str | None], threshold: float
          ) -> tuple[str | None, float, bool]:
    """(category, cosine, new category?) for a unit vector ``centre``: the category of the nearest code
    prototype, and whether that cosine falls below ``threshold`` (:func:`join_similarity`).

    >>> place(np.array([0.0, 1.0]), np.array([[1.0, 0.0], [0.6, 0.8]]), ["a", "b"], 0.9)
    ('b', 0.8, True)
    """
    sims = prototypes @ centre
    best: dict[str, float] = {}
    for c, v in zip(categories, sims):
        if c is not None:
            best[c] = max(best.get(c, -1.0), float(v))
    if not best:
        return None, 0.0, False
    cat = max(best, key=best.get)
    return cat, round(best[cat], 4), bool(np.isfinite(threshold) and best[cat] < threshold)


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


BACKGROUND_SAMPLE = 20_000
"""Segments outside the candidates whose terms are counted to name the candidates (a term common outside a
candidate names it poorly): all of them up to this many, else a sample of this many drawn with the scorer's seed,
each counting for its share of the outside segments. jieba's part-of-speech tagger, about 10 ms a segment, then
tags at most this many outside segments, whatever the corpus."""

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


def background_rows(eligible: np.ndarray, groups: list[np.ndarray], scorer) -> tuple[np.ndarray, float]:
    """The eligible segments in no group, against which the groups' phrases are weighed: all of them, or a
    sample of :data:`BACKGROUND_SAMPLE` (seeded with the scorer's), each standing for ``weight`` segments."""
    in_group = np.zeros(len(eligible), dtype=bool)
    for m in groups:
        in_group[m] = True
    outside = np.flatnonzero(eligible & ~in_group)
    if len(outside) <= BACKGROUND_SAMPLE:
        return outside, 1.0
    rng = np.random.default_rng(scorer.random_state)
    return np.sort(rng.choice(outside, BACKGROUND_SAMPLE, replace=False)), len(outside) / BACKGROUND_SAMPLE


def centres_and_quotes(E: np.ndarray, idx: np.ndarray, groups, n_quotes: int) -> tuple[list, list]:
    """Each group's centre (the normalised mean of its members' rows of ``E``, whose rows are the segments
    ``idx``) and its ``n_quotes`` members nearest it."""
    from sklearn.preprocessing import normalize

    centres, quotes = [], []
    for members in groups:
        rows = E[np.searchsorted(idx, members)]
        centre = normalize(rows.mean(axis=0, keepdims=True))[0]
        centres.append(centre)
        quotes.append(members[np.argsort(-(rows @ centre), kind="stable")[:n_quotes]])
    return centres, quotes


def placed_candidates(groups, terms, centres, quotes, documents, novel: np.ndarray, scorer: NoveltyScorer,
                      codebook: Codebook) -> list[CandidateCode]:
    """The candidate codes of ``groups`` (members), each with its key ``terms``, unit ``centre`` in the grouping
    space, ``quotes`` and ``documents``: nearest codes, and the category it would join or a new one."""
    cats = code_categories(scorer.codes_, codebook)
    P = getattr(scorer, "group_prototypes_", scorer.prototypes_)
    threshold = getattr(scorer, "join_similarity_", float("nan"))
    if not np.isfinite(threshold):  # no category to learn from, or a scorer saved before it was learned
        threshold = join_similarity(P, cats)
    out = []
    for k, (members, kt, centre, q, docs) in enumerate(zip(groups, terms, centres, quotes, documents), start=1):
        sims = P @ centre
        near = np.argsort(-sims, kind="stable")[:3]
        cat, cat_sim, new_cat = place(centre, P, cats, threshold)
        out.append(CandidateCode(
            id=f"NEW{k}", name="·".join(t for t, _ in kt[:3]) or f"NEW{k}",
            key_terms=[(t, round(w, 4)) for t, w in kt], members=[int(i) for i in members],
            quotes=[int(i) for i in q], documents=docs, category=cat, category_similarity=cat_sim,
            nearest_codes=[(scorer.codes_[j], round(float(sims[j]), 4)) for j in near], new_category=new_cat,
            join_similarity=round(threshold, 4) if np.isfinite(threshold) else threshold,
            n_novel=int(novel[members].sum()),
        ))
    return out


def propose_codes(scores: NoveltyScores, codebook: Codebook, scorer: NoveltyScorer, *, min_size: int = 2,
                  n_clusters: int | None = None, n_terms: int = 5, n_quotes: int = 3,
                  review: float | None = None) -> list[CandidateCode]:
    """Group the segments to review in ``scores`` into candidate new codes.

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
    review : float, optional
        Group every eligible segment whose novelty reaches this level (at most the cut,
        ``scores.threshold``); default: only the novel segments. A group's ``n_novel`` counts its members at
        the cut: a group without one is a group to review (:attr:`CandidateCode.supported` is False).
    """
    if min_size < 1:
        raise AutocodeError(f"min_size must be at least 1, got {min_size}.")
    level = scores.threshold if review is None else float(review)
    if not 0 < level <= scores.threshold:
        raise AutocodeError(f"review must be above 0 and at most the novelty cut {scores.threshold}, got {review!r}.")
    with np.errstate(invalid="ignore"):
        to_review = scores.eligible & (np.nan_to_num(scores.novelty, nan=-1.0) >= level)
    idx = np.flatnonzero(to_review | scores.novel)
    if len(idx) == 0:
        return []
    E = centre_rows(scores.embedding[idx], getattr(scorer, "centre_", None))  # the rows of idx, centred
    labels = cluster_embeddings(E, scorer.cluster_distance_, n_clusters)
    doc_pos = {d: i for i, d in enumerate(dict.fromkeys(s.document for s in scores.segments))}
    # the members of each label (in label order, members in segment order), in one sort over the segments
    lab, counts = np.unique(labels, return_counts=True)
    members = np.split(idx[np.argsort(labels, kind="stable")], np.cumsum(counts)[:-1])
    groups = [m for m, c in zip(members, counts) if c >= min_size]
    novel = scores.novel
    groups.sort(key=lambda m: (-int(novel[m].any()), -len(m),
                               min(doc_pos[scores.segments[i].document] for i in m)))
    if not groups:
        return []
    outside, weight = background_rows(scores.eligible, groups, scorer)
    terms = key_phrases([[scores.segments[i].text for i in m] for m in groups],
                        [scores.segments[i].text for i in outside], scorer.tokenizer_, n_terms,
                        background_weight=weight)
    centres, quotes = centres_and_quotes(E, idx, groups, n_quotes)
    documents = [sorted({scores.segments[i].document for i in m}, key=doc_pos.get) for m in groups]
    return placed_candidates(groups, terms, centres, quotes, documents, novel, scorer, codebook)
