"""Theoretical saturation: segments that fit no existing code, candidate new open codes, and the curve of new
concepts per interview.

Grounded theory stops sampling when new interviews bring no new concepts: researchers keep some interviews
aside and check that coding them yields no new codes. This module does the first pass of that check.

1. :class:`NoveltyScorer` learns, from a fitted :class:`~autocode.model.CodingModel` and its hand-coded training
   segments, how typical a segment is of the coded data. Three signals are available, larger = more novel:

   ``model``
       ``1 - max`` calibrated model score: no code fits;
   ``centroid``
       cosine distance to the nearest code prototype (the mean of a code's coded segments together with its
       name and description) in an LSA space (TF-IDF of jieba words and character n-grams, reduced by
       truncated SVD);
   ``knn``
       mean cosine distance to the ``n_neighbors`` nearest training segments in the same space (by default
       every eligible training segment, coded or not: talk like what the coders saw and left uncoded is not new).

   By default ``model`` and ``knn`` are combined; ``centroid`` is still used to name the nearest codes and the
   category a candidate would join (see :class:`NoveltyScorer` and the benchmark for why).

   The same signals are computed *out of fold* for the coded training segments (folds grouped by document, as
   in training). Each signal is standardised by its mean and standard deviation over those segments, the
   standardised signals are averaged, and the average is turned into a conformal p-value against the same
   coded segments: the share of them at least as novel. ``novelty = 1 - p``: a novelty of 0.95 means "less
   typical than 95% of the segments the coders did code". If the new interviews hold no new concept, about 5%
   of their eligible segments reach 0.95 by chance; many more is evidence of something new. (The
   standardisation is estimated on the calibration segments themselves, so the p-value is conformal up to that
   small dependence.)
2. Segments that cannot carry a concept are not scored (:func:`eligible_mask`): the interviewer's turns and
   segments shorter than ``min_chars`` letters or digits. By default ``min_chars`` is the 5th percentile of the
   length of the coded training segments: shorter than 95% of what the coders chose to code ("嗯", "對啊").
3. :func:`propose_codes` groups the novel segments: average-linkage clustering on cosine distance in the LSA
   space, cut where groups become looser than the existing codes are on average. It names each group by its
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
>>> scorer = NoveltyScorer(n_splits=3).fit(model, coded)
>>> s = scorer.score(model, ["社区党支部带领党员做志愿者", "我每天早上去公园跑步锻炼身体", "嗯"])
>>> s.novelty.round(2).tolist(), s.novel.tolist()
([0.48, 0.96, nan], [False, True, False])
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

from . import __version__
from .checksum import sha256_file as _sha256
from .codebook import Code, Codebook
from .corpus import CodedCorpus, Segment
from .exceptions import AutocodeError, AutocodeWarning, ModelFileError, NotFittedError
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
NOVELTY_FORMAT_VERSION = 1
NOVELTY_JSON = "novelty.json"
NOVELTY_NPZ = "novelty.npz"
COMPONENTS = ("model", "centroid", "knn")
"""The novelty signals, in the column order of :attr:`NoveltyScores.components`."""


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


def _knn_distance(Z: np.ndarray, ref: np.ndarray, k: int, batch: int = 2048) -> np.ndarray:
    """1 - mean cosine similarity to the ``k`` nearest rows of ``ref`` (rows are unit vectors)."""
    out = np.ones(len(Z))
    if len(ref) == 0:
        return out
    k = min(k, len(ref))
    for s in range(0, len(Z), batch):
        sims = Z[s : s + batch] @ ref.T
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:]
        out[s : s + batch] = 1 - top.mean(axis=1)
    return out


def _prototypes(Z: np.ndarray, Y: np.ndarray, desc: np.ndarray) -> np.ndarray:
    """Per code: the normalised sum of its coded segments and its description vector (one example's weight)."""
    from sklearn.preprocessing import normalize

    P = Y.T.astype(np.float32) @ Z + desc
    return normalize(P)


def _ecdf(sorted_cal: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of calibration values at or below each ``x``."""
    return np.searchsorted(sorted_cal, x, side="right") / max(len(sorted_cal), 1)


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
    components : ndarray (n_segments, 3)
        The raw signals ``model``, ``centroid``, ``knn`` (see :data:`COMPONENTS`); larger = more novel.
    eligible : ndarray of bool
    embedding : ndarray (n_segments, n_dims)
        Unit LSA vectors, used to cluster novel segments.
    nearest_code : list of str
        The code whose prototype is nearest each segment.
    best_code : list of str
        The code with the best model score, and ``best_score`` its calibrated score.
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
    n_components : int
        Dimensions of the LSA space (100: the usual LSA choice for collections of thousands of short texts;
        fewer when the training data has fewer segments or terms).
    max_features : int
        Most frequent terms kept per block (jieba words; character 1-2-grams), to keep the saved file small.
    n_neighbors : int
        Training segments averaged over by the ``knn`` signal (5: robust to one near-duplicate).
    reference : {"all", "coded"}
        The training segments the ``knn`` signal measures distance to: every eligible segment, uncoded ones
        included (default: talk like what the coders saw and chose not to code is not new), or only those
        with a code.
    components : tuple of str
        Signals to combine, a subset of :data:`COMPONENTS`. Default ``("model", "knn")``: in the leave-codes-out
        benchmark (``benchmarks/results/saturation.md``) the ``centroid`` signal lowered the ranking of hidden
        codes on both data sets, while ``knn`` to all training talk kept uncoded talk from being flagged.
    min_chars : int or "auto"
        Shorter segments are not scored; ``"auto"``: the 5th percentile of the length of the coded training
        segments (at least 2).
    exclude_roles : tuple of str
        Speaker roles whose segments are not scored (the interviewer's).
    n_splits : int
        Folds grouped by document for the out-of-fold signals of the training segments.
    random_state : int or None
        Seed for the folds and the SVD.
    script : {"simplified", "none"}
        Traditional -> Simplified normalisation before tokenising.

    Attributes
    ----------
    codes_ : list of str
        The model's codes the scorer was fitted for.
    min_chars_ : int
        The length rule in force.
    n_calibration_ : int
        Coded, eligible training segments the novelty is calibrated on.
    cluster_distance_ : float
        The median over codes of the mean pairwise cosine distance between a code's segments in the LSA space:
        how loose an existing code is, used to cut clusters of novel segments.
    """

    def __init__(self, *, n_components: int = 100, max_features: int = 20_000, n_neighbors: int = 5,
                 components: Sequence[str] = ("model", "knn"), reference: str = "all",
                 min_chars: int | str = "auto",
                 exclude_roles: Sequence[str] = ("interviewer",), n_splits: int = 5,
                 random_state: int | None = 0, script: str = "simplified"):
        self.n_components = n_components
        self.max_features = max_features
        self.n_neighbors = n_neighbors
        self.components = tuple(components)
        self.reference = reference
        self.min_chars = min_chars
        self.exclude_roles = tuple(exclude_roles)
        self.n_splits = n_splits
        self.random_state = random_state
        self.script = script

    def get_params(self) -> dict:
        return {"n_components": self.n_components, "max_features": self.max_features,
                "n_neighbors": self.n_neighbors, "components": list(self.components),
                "reference": self.reference, "min_chars": self.min_chars,
                "exclude_roles": list(self.exclude_roles), "n_splits": self.n_splits,
                "random_state": self.random_state, "script": self.script}

    def _check_params(self) -> None:
        bad = [c for c in self.components if c not in COMPONENTS]
        if bad or not self.components:
            raise AutocodeError(f"components must be a non-empty subset of {list(COMPONENTS)}, got "
                                f"{list(self.components)}.")
        if self.reference not in ("coded", "all"):
            raise AutocodeError(f"reference must be 'coded' or 'all', got {self.reference!r}.")
        if not (self.min_chars == "auto" or (isinstance(self.min_chars, int) and self.min_chars >= 0)):
            raise AutocodeError(f"min_chars must be 'auto' or a non-negative integer, got {self.min_chars!r}.")

    def _check_fitted(self) -> None:
        if not hasattr(self, "lsa_"):
            raise NotFittedError("This NoveltyScorer is not fitted yet. Call fit(model, coded) or "
                                 "NoveltyScorer.load(model_folder).")

    # -- learning ------------------------------------------------------------------------------------------
    def fit(self, model, coded: CodedCorpus) -> NoveltyScorer:
        """Learn from the fitted ``model`` and the hand-coded segments it was trained on; returns ``self``.

        The ``model`` signal of the training segments is computed out of fold: one backend of the model's kind
        per fold, fitted on the other documents, calibrated with the model's own Platt parameters.
        """
        from .backends.base import get_backend, take_rows
        from .model import grouped_folds, make_inputs

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

        self.lsa_ = _LSA(self.n_components, self.max_features, self.script)
        Z, X = self.lsa_.fit_transform(corpus.texts, self.random_state)
        descs = [" ".join(x for x in dict.fromkeys((book[c].name if book[c].name != c else "", book[c].description))
                          if x) for c in codes]
        D = self.lsa_.transform(descs) * np.array([[1.0 if d else 0.0] for d in descs], dtype=np.float32)

        # out-of-fold signals of the training segments
        groups = corpus.groups
        n_docs = len(set(groups.tolist()))
        if n_docs < 2 or self.n_splits < 2:
            raise AutocodeError(f"Calibrating novelty needs segments from at least 2 documents and n_splits >= 2 "
                                f"(documents: {n_docs}, n_splits: {self.n_splits}). Code more interviews.")
        refmask = calib if self.reference == "coded" else eligible
        oof = np.zeros((len(segs), len(COMPONENTS)))
        folds = grouped_folds(groups, self.n_splits, self.random_state)
        need_model = "model" in self.components
        if need_model:
            proto_backend = get_backend(model.backend_.name)(**model.backend_.get_params())
            encoded = proto_backend.encode(make_inputs(segs))
        a, b = model.calibration_[:, 0], model.calibration_[:, 1]
        for train, test in folds:
            if need_model:
                bk = proto_backend.clone().fit(take_rows(encoded, train), Y[train])
                p = _sigmoid(bk.decision_function(take_rows(encoded, test)) * a + b)
                oof[test, 0] = 1 - p.max(axis=1)
            oof[test, 1] = 1 - (Z[test] @ _prototypes(Z[train], Y[train], D).T).max(axis=1)
            ref = train[refmask[train]]
            oof[test, 2] = _knn_distance(Z[test], Z[ref], self.n_neighbors)
        self.calibration_signals_ = oof[calib]
        self.calibration_combined_ = np.sort(self._combine(self.calibration_signals_))
        self.prototypes_ = _prototypes(Z, Y, D)
        self.reference_ = Z[refmask]
        self.codes_ = codes
        self.n_calibration_ = int(calib.sum())
        self.model_fingerprint_ = _model_fingerprint(model)
        self.cluster_distance_ = self._code_spread(Z[calib], Y[calib])
        return self

    def _combine(self, signals: np.ndarray) -> np.ndarray:
        """Mean of the chosen signals, each standardised by the mean and standard deviation of its out-of-fold
        values on the calibration segments (a signal far beyond every calibration value keeps counting)."""
        cols = [COMPONENTS.index(c) for c in self.components]
        cal = self.calibration_signals_[:, cols]
        sd = cal.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return ((signals[:, cols] - cal.mean(axis=0)) / sd).mean(axis=1)

    @staticmethod
    def _code_spread(X: np.ndarray, Y: np.ndarray) -> float:
        """Median over codes of the mean pairwise cosine distance between the code's segments (unit rows):
        with v the sum of m unit rows, the mean pairwise cosine is (|v|^2 - m) / (m (m - 1))."""
        spreads = []
        for j in range(Y.shape[1]):
            rows = X[np.flatnonzero(Y[:, j])]
            m = rows.shape[0]
            if m >= 2:
                v = np.asarray(rows.sum(axis=0)).ravel()
                spreads.append(1 - (float(v @ v) - m) / (m * (m - 1)))
        return float(np.median(spreads)) if spreads else 0.5

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
        Z = self.lsa_.transform([s.text for s in segs])
        P = model.predict_proba(segs) if n else np.zeros((0, len(self.codes_)))
        sims = Z @ self.prototypes_.T
        signals = np.column_stack([1 - P.max(axis=1) if P.shape[1] else np.ones(n), 1 - sims.max(axis=1),
                                   _knn_distance(Z, self.reference_, self.n_neighbors)]) if n else np.zeros((0, 3))
        eligible = eligible_mask(segs, min_chars=self.min_chars_, exclude_roles=self.exclude_roles)
        combined = self._combine(signals) if n else np.zeros(0)
        cal = self.calibration_combined_
        at_least = len(cal) - np.searchsorted(cal, combined - 1e-12, side="left")
        p = (1 + at_least) / (len(cal) + 1)
        p = np.where(eligible, p, np.nan)
        best = P.argmax(axis=1) if n else np.zeros(0, dtype=int)
        return NoveltyScores(
            segments=segs, novelty=1 - p, p_value=p, components=signals, eligible=eligible, embedding=Z,
            nearest_code=[self.codes_[j] for j in sims.argmax(axis=1)] if n else [],
            best_code=[self.codes_[j] for j in best], best_score=P.max(axis=1) if n else np.zeros(0),
            threshold=threshold,
        )

    # -- saving --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``novelty.json`` and ``novelty.npz`` into the folder ``path`` (usually the model folder).

        Nothing is pickled."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {"components": self.lsa_.components, "prototypes": self.prototypes_, "reference": self.reference_,
                  "calibration_signals": self.calibration_signals_,
                  "calibration_combined": self.calibration_combined_}
        for kind, idf in self.lsa_.idf.items():
            arrays[f"idf_{kind}"] = idf
        np.savez(path / NOVELTY_NPZ, **arrays)
        doc = {
            "format": NOVELTY_FORMAT, "format_version": NOVELTY_FORMAT_VERSION, "autocode_version": __version__,
            "params": self.get_params(), "codes": self.codes_, "min_chars": self.min_chars_,
            "n_calibration": self.n_calibration_, "cluster_distance": self.cluster_distance_,
            "model_fingerprint": self.model_fingerprint_, "vocabularies": self.lsa_.vocabularies,
            "arrays_sha256": _sha256(path / NOVELTY_NPZ),
        }
        (path / NOVELTY_JSON).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> NoveltyScorer:
        """Read ``novelty.json``/``novelty.npz`` from the folder ``path``.

        Raises
        ------
        ModelFileError
            If the files are missing, damaged or from a newer autocode.
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
        if _sha256(npath) != doc.get("arrays_sha256"):
            raise ModelFileError(f"{npath}: checksum does not match {NOVELTY_JSON}; the file was changed or damaged. "
                                 "Refit the novelty scorer with --data.")
        try:
            with np.load(npath, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
            params = dict(doc["params"])
            self = cls(**params)
            lsa = _LSA(params["n_components"], params["max_features"], params["script"])
            lsa.vocabularies = {k: list(v) for k, v in doc["vocabularies"].items()}
            lsa.idf = {k: arrays[f"idf_{k}"] for k in lsa.vocabularies}
            lsa.components = arrays["components"]
            if sum(len(v) for v in lsa.vocabularies.values()) != lsa.components.shape[1]:
                raise ValueError("vocabularies do not match the SVD components")
            self.lsa_ = lsa
            self.prototypes_ = arrays["prototypes"]
            self.reference_ = arrays["reference"]
            self.calibration_signals_ = arrays["calibration_signals"]
            self.calibration_combined_ = arrays["calibration_combined"]
            self.codes_ = list(doc["codes"])
            self.min_chars_ = int(doc["min_chars"])
            self.n_calibration_ = int(doc["n_calibration"])
            self.cluster_distance_ = float(doc["cluster_distance"])
            self.model_fingerprint_ = str(doc["model_fingerprint"])
            if self.prototypes_.shape[0] != len(self.codes_):
                raise ValueError("prototypes do not match the codes")
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: the novelty files are inconsistent ({type(err).__name__}: {err}). "
                                 "Refit the novelty scorer with --data.") from None
        return self

    def __repr__(self) -> str:
        fitted = f", {len(self.codes_)} codes, {self.n_calibration_} calibration segments" if hasattr(
            self, "codes_") else ""
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
    terms = _key_terms([[scores.segments[i].text for i in m] for m in groups], background, scorer.lsa_.tokenizer,
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
