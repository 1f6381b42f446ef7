"""The default backend: jieba words + character n-grams, TF-IDF, one linear classifier per code.

(About 510 lines, long because every feature block, its encoding, its weight and its saved state belong to the one
estimator that a saved model restores.)

Runs on a laptop CPU with no download. Text is normalised (NFKC, Traditional -> Simplified with OpenCC) for
tokenisation only. Features: word uni- and bigrams from jieba, character 1..3-grams, and the words of the
preceding turn (the interviewer's question), each block sub-linear TF-IDF and L2-normalised, the context block
down-weighted; where the segment stands in its document (one of ``position_bins`` equal slices: a
semi-structured interview follows its guide, a judgment its sections); the section of the interview guide the
turn stands in (:mod:`autocode.guide`; none without interviewer turns); and, with ``rules_weight`` and a model
that has coding rules, which codes' rules matched the segment (one indicator per code). Classifier: L2 logistic regression per
code with balanced class weights, solved in the dual by liblinear (fast when there are more features than
segments), codes one after another by default (``n_jobs``). Scores are calibrated afterwards by
:class:`~autocode.model.CodingModel`, which also chooses ``context_weight`` on the data (``tunable``).

With ``hierarchy=True`` (the default) and a codebook whose codes are grouped in categories, a code's score is
the log-odds of P(its category applies) x P(the code | its category applies): one classifier per category on all
segments, and one per code trained only on the segments of its category, where it competes with its siblings
(same words, different concept) rather than with everything else. The category classifiers learn what text no
category applies to only from uncoded segments, so the hierarchy is used when the training data hold at least
``MIN_UNCODED`` of them (as whole transcripts do; a table of coded excerpts alone does not).

Counting n-grams is the expensive step, so :meth:`TfidfBackend.encode` counts a whole corpus once, over the
corpus's own vocabulary; each cross-validation fold then keeps the terms frequent enough in its training rows
and computes its IDF weights from them, which gives the same features as counting the fold from scratch.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize as l2_normalize

from ..guide import GUIDE_WEIGHT, Guide, make_guide
from ..text import ChineseTokenizer
from .base import Backend, Inputs, register

__all__ = ["TfidfBackend", "Counts"]

FOLLOWING_WEIGHT = 0.5
"""Default weight of the following segment's words (``following_weight``)."""


def _split(s: str) -> list[str]:
    return s.split()


def _counter(kind: str, ngram_range, vocabulary=None) -> CountVectorizer:
    if kind == "word":
        return CountVectorizer(tokenizer=_split, token_pattern=None, lowercase=False, ngram_range=tuple(ngram_range),
                               dtype=np.float32, vocabulary=vocabulary)
    return CountVectorizer(analyzer="char", lowercase=False, ngram_range=tuple(ngram_range), dtype=np.float32,
                           vocabulary=vocabulary)


class Counts:
    """n-gram counts of a corpus per feature block, over one vocabulary (``space``).

    ``space`` is either a corpus vocabulary (a dict block -> list of terms, shared by every row subset, when
    the counts were made for training) or the string ``"model"`` (counted over a fitted backend's own
    vocabulary, for prediction).
    """

    def __init__(self, blocks: dict[str, sp.csr_matrix], space):
        self.blocks = blocks
        self.space = space

    def take_rows(self, rows) -> Counts:
        return Counts({k: m[rows] for k, m in self.blocks.items()}, self.space)

    def __len__(self) -> int:
        return next(iter(self.blocks.values())).shape[0]


def _log_sigmoid(z: np.ndarray) -> np.ndarray:
    return -np.logaddexp(0.0, -z)


def _weigh(counts: sp.csr_matrix, idf: np.ndarray) -> sp.csr_matrix:
    x = counts.tocsr(copy=True).astype(np.float32)
    np.log1p(x.data, out=x.data)  # sub-linear tf (zeros stay zeros)
    x = x @ sp.diags(idf.astype(np.float32))
    if x.shape[1] == 0:  # a block with no terms (e.g. texts of punctuation only): nothing to normalise
        return x.astype(np.float32)
    return l2_normalize(x, copy=False).astype(np.float32)


@register("tfidf.v1")
class TfidfBackend(Backend):
    """TF-IDF over jieba words and character n-grams + logistic regression per code.

    Parameters
    ----------
    word_ngrams : (int, int)
        n-gram range over jieba words.
    char_ngrams : (int, int)
        n-gram range over characters.
    context_weight : float
        Weight of the preceding turn's word features (0 = ignore the context). Chosen among 0, 0.5 and 1 by
        :class:`~autocode.model.CodingModel` (``tune=True``) unless given.
    following_weight : float
        Weight of the word features of the segment after this one in the same document (in an interview, the
        interviewer's follow-up, which often restates or probes the answer; in a judgment, the next sentence);
        0 = ignore it. Empty for the last segment of a document and when a segment is scored alone.
    position_bins : int
        Slices of a document for the position feature (0 = no position feature).
    position_weight : float
        Weight of the position feature relative to the L2-normalised text blocks.
    rules_weight : float
        Weight of the rule block: per code with coding rules, whether they matched the segment (TF-IDF
        weighted, L2-normalised), when the model has rules (:class:`~autocode.model.CodingModel` ``rules``);
        0 = rule matches are not features (they are still shown as evidence).
    guide, guide_weight : list of str or None, float
        The interview guide's questions (``None``: recovered from the training interviews, see
        :mod:`autocode.guide`) and the weight of the one-hot guide section of each turn (0: none).
    C : float
        Inverse regularisation strength of the logistic regressions.
    min_df : int
        Drop terms seen in fewer training segments.
    max_features : int
        Cap per block, most frequent terms kept.
    script : {"simplified", "none"}
        Traditional -> Simplified normalisation before tokenising.
    engine : {"auto", "rjieba", "jieba"}
        Word segmenter (``"auto"``: rjieba when installed); the resolved name is saved with the model.
    tol : float
        Stopping tolerance of liblinear; loose is enough, as scores are recalibrated out of fold.
    hierarchy : bool
        Score codes category first (see above) when :class:`~autocode.model.CodingModel` gives the codes'
        categories (``code_groups``), some category holds several codes and at least ``MIN_UNCODED`` training
        segments have no code; otherwise one classifier per code on all segments (the only behaviour of models
        saved by autocode 0.1.0).
    random_state : int or None
        Seed of liblinear's coordinate order (each code gets its own seed derived from it), for reproducible
        models.
    n_jobs : int or None
        Threads fitting codes in parallel (None = all cores). The default, 1, gives the same model on every
        run; with more threads liblinear's random coordinate order (one generator shared by all threads) makes
        reruns differ slightly. Not saved: a setting of the machine.
    """

    MIN_UNCODED = 10
    """Uncoded training segments needed for hierarchical scoring (see ``hierarchy``)."""

    tunable = {"context_weight": (0.0, 0.5, 1.0), "hierarchy": (False, True)}
    """How much the preceding turn matters differs between data sets (an interviewer's question vs the
    previous sentence of a judgment), and so does whether scoring category first pays (it did on two real
    corpora, not on a small written example with two codes per category): :class:`~autocode.model.CodingModel`
    chooses both by out-of-fold kappa."""

    machine_params = ("n_jobs",)
    parallel_fits = True

    def __init__(self, word_ngrams=(1, 2), char_ngrams=(1, 3), context_weight: float = 1.0,
                 following_weight: float = FOLLOWING_WEIGHT, position_bins: int = 5,
                 position_weight: float = 0.3, rules_weight: float = 0.0, C: float = 4.0, min_df: int = 2,
                 max_features: int = 200_000, script: str = "simplified", engine: str = "auto", tol: float = 1e-2,
                 hierarchy: bool = True, random_state: int | None = 0, n_jobs: int | None = 1, guide=None,
                 guide_weight: float = GUIDE_WEIGHT):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.context_weight = context_weight
        self.following_weight = following_weight
        self.position_bins = position_bins
        self.position_weight = position_weight
        self.rules_weight = rules_weight
        self.C = C
        self.min_df = min_df
        self.max_features = max_features
        self.script = script
        self.engine = engine
        self.tol = tol
        self.hierarchy = hierarchy
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.guide = guide
        self.guide_weight = guide_weight

    @property
    def tokenizer(self) -> ChineseTokenizer:
        """The word segmenter of ``script`` and ``engine``, built when first used (``engine="auto"`` resolves
        to the fastest installed; a fitted backend keeps the one it was trained with in ``engine_``)."""
        engine = getattr(self, "engine_", self.engine)
        tok = self.__dict__.get("_tokenizer_cache")
        if tok is None or tok.script != self.script or engine not in ("auto", tok.engine):
            tok = self.__dict__["_tokenizer_cache"] = ChineseTokenizer(script=self.script, engine=engine)
        return tok

    def _check_params(self) -> None:
        if min(int(self.position_bins), self.position_weight, self.following_weight, self.guide_weight,
               self.rules_weight) < 0:
            raise ValueError("position_bins, position_weight, following_weight, rules_weight and guide_weight "
                             "must be >= 0")

    def _block_specs(self) -> dict[str, tuple[str, list[int]]]:
        specs = {"words": ("word", list(self.word_ngrams)), "chars": ("char", list(self.char_ngrams))}
        if self.context_weight > 0:
            specs["context"] = ("word", [1, 1])
        if self.following_weight > 0:
            specs["following"] = ("word", [1, 1])
        if int(self.position_bins) > 0 and self.position_weight > 0:
            specs["position"] = ("position", [int(self.position_bins)])
        if self.guide_weight > 0:
            specs["guide"] = ("guide", [])
        if self.rules_weight > 0:
            specs["rules"] = ("word", [1, 1])
        return specs

    def _position_counts(self, inputs: Inputs) -> sp.csr_matrix:
        """One-hot slice of the document each segment falls in."""
        bins = int(self.position_bins)
        pos = np.clip(inputs.relative_positions(), 0.0, 1.0)
        cols = np.minimum((pos * bins).astype(int), bins - 1)
        n = len(inputs)
        return sp.csr_matrix((np.ones(n, dtype=np.float32), (np.arange(n), cols)), shape=(n, bins))

    # -- encoding: label-free, done once per corpus ------------------------------------------------
    def _texts(self, inputs: Inputs) -> dict[str, list[str]]:
        tok = self.tokenizer
        cache: dict[str, tuple[str, str]] = {}  # raw text -> (normalised, words); contexts repeat texts

        def prepare(text: str) -> tuple[str, str]:
            got = cache.get(text)
            if got is None:
                norm = tok.normalize(text)
                got = cache[text] = (norm, " ".join(tok.words(norm, normalized=True)))
            return got

        prepared = [prepare(t) for t in inputs.texts]
        docs = {"chars": [p[0] for p in prepared], "words": [p[1] for p in prepared]}
        if self.context_weight > 0:
            docs["context"] = [prepare(c)[1] if c else "" for c in inputs.contexts]
        if self.following_weight > 0:
            following = inputs.following if inputs.following is not None else [""] * len(inputs)
            docs["following"] = [prepare(f)[1] if f else "" for f in following]
        if self.rules_weight > 0:
            docs["rules"] = list(inputs.rules) if inputs.rules is not None else [""] * len(inputs)
        return docs

    def encode(self, inputs: Inputs) -> Counts:
        """Count n-grams: over this backend's vocabulary once fitted, else over the corpus's own."""
        docs = self._texts(inputs)
        fitted = hasattr(self, "vocabularies_")
        blocks, space = {}, {}
        for name, (kind, ngrams) in self._block_specs().items():
            if kind == "position":
                counts = self._position_counts(inputs)
                terms = [f"position {i + 1}/{ngrams[0]}" for i in range(ngrams[0])]
                if fitted:  # the slices kept in training (a slice no training segment fell in is dropped)
                    keep = {t: i for i, t in enumerate(terms)}
                    counts = counts[:, [keep[t] for t in self.vocabularies_[name]]]
                blocks[name], space[name] = counts.tocsr(), terms
                continue
            if kind == "guide":
                guide = self.guide_ if fitted else make_guide(inputs, self.guide, self.tokenizer.normalize)
                counts = guide.one_hot(inputs.texts, inputs.roles, inputs.groups)
                terms = [f"{i + 1}. {q}" for i, q in enumerate(guide.labels)]
                blocks[name], space[name], space["_guide"] = counts.tocsr(), terms, guide
                if fitted:  # the sections kept in training
                    keep = {t: i for i, t in enumerate(terms)}
                    blocks[name] = blocks[name][:, [keep[t] for t in self.vocabularies_[name]]]
                continue
            if fitted:
                vocab = self.vocabularies_[name]
                if not vocab:
                    blocks[name] = sp.csr_matrix((len(inputs), 0), dtype=np.float32)
                    continue
                vec = self._vectorizers.get(name)
                if vec is None:
                    vec = self._vectorizers[name] = _counter(kind, ngrams, {t: i for i, t in enumerate(vocab)})
                blocks[name] = vec.transform(docs[name]).tocsr()
            else:
                vec = _counter(kind, ngrams)
                try:
                    blocks[name] = vec.fit_transform(docs[name]).tocsr()
                    space[name] = vec.get_feature_names_out().tolist()
                except ValueError:  # no term at all (e.g. empty contexts)
                    blocks[name] = sp.csr_matrix((len(inputs), 0), dtype=np.float32)
                    space[name] = []
        return Counts(blocks, "model" if fitted else space)

    def _features(self, enc: Counts) -> sp.csr_matrix:
        if enc.space == "model":
            cols = {name: None for name in self.vocabularies_}
        elif enc.space is self._fit_space:
            cols = self._fit_columns
        else:
            raise ValueError("These counts were made over another corpus's vocabulary; encode the texts with "
                             "this backend.")
        parts = []
        for name in self.vocabularies_:
            counts = enc.blocks[name] if cols[name] is None else enc.blocks[name][:, cols[name]]
            x = _weigh(counts, self.idf_[name])
            if name == "context":
                x = x * self.context_weight
            elif name == "following":
                x = x * self.following_weight
            elif name == "position":
                x = x * self.position_weight
            elif name == "rules":
                x = x * self.rules_weight
            elif name == "guide":
                x = x * self.guide_weight
            parts.append(x)
        return sp.hstack(parts, format="csr", dtype=np.float32)

    # -- learning ---------------------------------------------------------------------------------------
    def fit(self, encoded: Counts, Y: np.ndarray, *, code_groups=None, known=None) -> TfidfBackend:
        """``known`` (rows x codes, optional): which labels are known; a code's classifier is trained only on
        the rows where its label is known (a reviewed suggestion left untouched is neither yes nor no)."""
        self._check_params()
        self.engine_ = self.tokenizer.engine
        self._select_terms(encoded)
        self._fit_linear(self._features(encoded), Y, code_groups, known)
        return self

    def _select_terms(self, encoded: Counts) -> None:
        """Keep the terms frequent enough in the training rows; their IDF weights come from those rows."""
        if encoded.space == "model":
            raise ValueError("fit needs counts over a training corpus's vocabulary: call encode on an unfitted "
                             "backend (or a clone).")
        n = len(encoded)
        self.vocabularies_, self.idf_, self._fit_columns = {}, {}, {}
        self._fit_space = encoded.space
        self._vectorizers = {}
        self.guide_ = encoded.space.get("_guide")
        for name in self._block_specs():
            counts = encoded.blocks[name]
            df = np.bincount(counts.indices, minlength=counts.shape[1])
            keep = np.flatnonzero(df >= self.min_df)
            if keep.size == 0:
                keep = np.flatnonzero(df > 0)
            if self.max_features and keep.size > self.max_features:
                freq = np.asarray(counts[:, keep].sum(axis=0)).ravel()
                top = np.argsort(-freq, kind="stable")[: self.max_features]
                keep = np.sort(keep[top])
            terms = encoded.space[name]
            self.vocabularies_[name] = [terms[i] for i in keep]
            self.idf_[name] = (np.log((1 + n) / (1 + df[keep])) + 1).astype(np.float32)
            self._fit_columns[name] = keep

    def _fit_linear(self, X: sp.csr_matrix, Y: np.ndarray, code_groups, known=None) -> None:
        # one canonical float64 copy shared by the threads: liblinear needs float64, and scikit-learn would
        # otherwise convert (or sort in place, racing with the other threads) for every code
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sum_duplicates()
        X.sort_indices()
        self.group_of_ = self.cat_coef_ = self.cat_intercept_ = None
        groups = self._groups(Y, code_groups)
        K = np.ones(Y.shape, dtype=bool) if known is None else np.asarray(known, dtype=bool)
        Y = Y & K
        if groups is None:
            self.coef_, self.intercept_ = self._logistic(X, Y, lambda j: np.flatnonzero(K[:, j]))
        else:
            _, col = np.unique(groups, return_inverse=True)
            Yc = np.stack([Y[:, col == g].any(axis=1) for g in range(col.max() + 1)], axis=1)
            # a category is known where one of its codes applies or all of them are known not to
            Kc = np.stack([Yc[:, g] | K[:, col == g].all(axis=1) for g in range(col.max() + 1)], axis=1)
            self.cat_coef_, self.cat_intercept_ = self._logistic(X, Yc, lambda g: np.flatnonzero(Kc[:, g]),
                                                                 seed_offset=Y.shape[1])
            self.coef_, self.intercept_ = self._logistic(X, Y, lambda j: np.flatnonzero(Yc[:, col[j]] & K[:, j]))
            self.group_of_ = col.astype(np.int32)
            self._cat_coef_t = np.ascontiguousarray(self.cat_coef_.T)
        self._coef_t = np.ascontiguousarray(self.coef_.T)

    def tunable_for(self, Y: np.ndarray, code_groups=None) -> dict[str, tuple]:
        """Without a hierarchy that can apply to these labels, ``hierarchy`` changes nothing: not tuned."""
        out = dict(self.tunable)
        if self._groups(Y, code_groups, force=True) is None:
            out.pop("hierarchy")
        return out

    def _groups(self, Y: np.ndarray, code_groups, force: bool = False) -> np.ndarray | None:
        """The codes' categories when the hierarchy applies (some category holds several codes, enough
        uncoded segments to learn what no category looks like), else None."""
        groups = code_groups
        if not (force or self.hierarchy) or groups is None:
            return None
        n_codes = Y.shape[1]
        if len(groups) != n_codes:
            raise ValueError(f"code_groups names {len(groups)} codes, the labels have {n_codes}")
        groups = np.asarray(groups)
        if len(np.unique(groups)) == n_codes or (~Y.any(axis=1)).sum() < self.MIN_UNCODED:
            return None
        return groups

    def _logistic(self, X: sp.csr_matrix, Y: np.ndarray, rows_for, seed_offset: int = 0):
        """One balanced logistic regression per column ``j`` of ``Y``, on the rows ``rows_for(j)`` (a constant
        target gets a bias-only model)."""
        n_out = Y.shape[1]
        coef = np.zeros((n_out, X.shape[1]), dtype=np.float32)
        intercept = np.zeros(n_out, dtype=np.float32)
        seed = self.random_state

        def fit_one(j: int) -> None:
            rows = rows_for(j)
            y = Y[rows, j]
            if len(y) == 0 or y.all() or not y.any():  # constant target: a bias-only model
                intercept[j] = 10.0 if len(y) and y.all() else -10.0
                return
            clf = LogisticRegression(C=self.C, class_weight="balanced", solver="liblinear", dual=True,
                                     tol=self.tol, max_iter=1000,
                                     random_state=None if seed is None else seed + seed_offset + j)
            clf.fit(X if len(rows) == X.shape[0] else X[rows], y)
            coef[j] = clf.coef_[0]
            intercept[j] = clf.intercept_[0]

        n_jobs = self.n_jobs or os.cpu_count() or 1
        with warnings.catch_warnings():
            # a loose tolerance is enough: the scores are recalibrated out of fold
            warnings.simplefilter("ignore", ConvergenceWarning)
            if n_jobs > 1 and n_out > 1:
                with ThreadPoolExecutor(max_workers=n_jobs) as pool:  # liblinear releases the GIL
                    list(pool.map(fit_one, range(n_out)))
            else:
                for j in range(n_out):
                    fit_one(j)
        return coef, intercept

    def decision_function(self, encoded: Counts) -> np.ndarray:
        X = self._features(encoded)
        z = np.asarray(X @ self._coef_t) + self.intercept_
        if self.group_of_ is None:
            return z
        zc = np.asarray(X @ self._cat_coef_t) + self.cat_intercept_
        # the log-odds of P(category) x P(code | category): unbounded above like a flat classifier's score, so
        # that calibration can reach high scores (log P itself stops at 0)
        log_p = np.minimum(_log_sigmoid(zc[:, self.group_of_]) + _log_sigmoid(z), -1e-7)
        return log_p - np.log(-np.expm1(log_p))

    def term_contributions(self, encoded: Counts, code: int, rows=None) -> list[dict[tuple[str, str], float]] | None:
        """Why each row scores what it does for the code in column ``code``: per row (``rows``: only these rows
        of ``encoded``, in that order; default all), (block, term) -> the term's TF-IDF value x its weight (with
        the hierarchy, its weights for the code and for the code's category added: the score rises with both).
        The raw score is a monotone function of their sum plus the intercepts. ``None`` when the model has
        features that are not terms (embeddings)."""
        if self._n_dense_features() > 0 or getattr(self, "plain_", None) is not None:
            return None
        X = self._features(encoded).tocsr()
        if rows is not None:
            X = X[np.asarray(rows, dtype=np.int64)]
        w = self.coef_[code].astype(np.float64)
        if self.group_of_ is not None:
            w = w + self.cat_coef_[self.group_of_[code]]
        names = self._term_names()
        out = []
        for r in range(X.shape[0]):
            lo, hi = X.indptr[r], X.indptr[r + 1]
            cols, vals = X.indices[lo:hi], X.data[lo:hi] * w[X.indices[lo:hi]]
            out.append({names[c]: float(v) for c, v in zip(cols, vals) if v != 0.0})
        return out

    def _term_names(self) -> list[tuple[str, str]]:
        """(block, term) of each feature column, built once per fitted backend."""
        names = self.__dict__.get("_term_names_cache")
        if names is None:
            names = [(block, t) for block, vocab in self.vocabularies_.items() for t in vocab]
            self.__dict__["_term_names_cache"] = names
        return names

    def _n_dense_features(self) -> int:
        """Features after the TF-IDF blocks (none here; subclasses may add dense ones)."""
        return 0

    # -- saving -----------------------------------------------------------------------------------------
    def get_state(self):
        meta = {"vocabularies": self.vocabularies_, "engine": self.engine_}
        arrays = {"coef": self.coef_, "intercept": self.intercept_}
        if self.group_of_ is not None:
            arrays.update(group_of=self.group_of_, cat_coef=self.cat_coef_, cat_intercept=self.cat_intercept_)
        for k, idf in self.idf_.items():
            arrays[f"idf_{k}"] = idf
        if self.guide_ is not None:
            meta["guide"], guide_arrays = self.guide_.get_state()
            arrays.update({f"guide_{k}": v for k, v in guide_arrays.items()})
        return meta, arrays

    @classmethod
    def from_state(cls, params, meta, arrays):
        self = cls(**params)
        self.engine_ = meta.get("engine", self.engine)
        self.vocabularies_ = {k: list(v) for k, v in meta["vocabularies"].items()}
        if set(self.vocabularies_) != set(self._block_specs()):
            raise ValueError(f"feature blocks {sorted(self.vocabularies_)} do not match the parameters")
        self.idf_ = {}
        for k, vocab in self.vocabularies_.items():
            idf = np.asarray(arrays[f"idf_{k}"], dtype=np.float32)
            if len(vocab) != len(idf):
                raise ValueError(f"vocabulary {k!r} has {len(vocab)} terms but {len(idf)} idf weights")
            self.idf_[k] = idf
        self._fit_space, self._fit_columns, self._vectorizers = None, {}, {}
        self.guide_ = None if "guide" not in self.vocabularies_ else Guide.from_state(
            meta["guide"], {k: arrays[f"guide_{k}"] for k in ("idf", "centroids")}, self.tokenizer.normalize)
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float32)
        self.intercept_ = np.asarray(arrays["intercept"], dtype=np.float32)
        n_features = sum(len(v) for v in self.vocabularies_.values()) + self._n_dense_features()
        if self.coef_.ndim != 2 or self.coef_.shape[1] != n_features:
            raise ValueError(f"coef has shape {self.coef_.shape} for {n_features} features")
        self._coef_t = np.ascontiguousarray(self.coef_.T)
        self.group_of_ = self.cat_coef_ = self.cat_intercept_ = None
        if "group_of" in arrays:
            self.group_of_ = np.asarray(arrays["group_of"], dtype=np.int32)
            self.cat_coef_ = np.asarray(arrays["cat_coef"], dtype=np.float32)
            self.cat_intercept_ = np.asarray(arrays["cat_intercept"], dtype=np.float32)
            n_cats = len(self.cat_intercept_)
            if (self.group_of_.shape != self.intercept_.shape or self.cat_coef_.shape != (n_cats, n_features)
                    or self.group_of_.min(initial=0) < 0 or self.group_of_.max(initial=0) >= n_cats):
                raise ValueError("the category classifiers do not match the codes")
            self._cat_coef_t = np.ascontiguousarray(self.cat_coef_.T)
        return self
