"""The default backend: jieba words + character n-grams, TF-IDF, one linear classifier per code.

Runs on a laptop CPU with no download. Text is normalised (NFKC, Traditional -> Simplified with OpenCC) for
tokenisation only. Features: word uni- and bigrams from jieba, character 1..3-grams, each block sub-linear
TF-IDF and L2-normalised; optionally the same for the preceding turn (the interviewer's question), down-weighted.
Classifier: L2 logistic regression per code with balanced class weights, solved in the dual by liblinear (fast
when there are more features than segments), codes in parallel threads (scores are calibrated afterwards by
:class:`~autocode.model.CodingModel`).
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

from ..text import ChineseTokenizer
from .base import Backend, Inputs, register

__all__ = ["TfidfBackend"]


def _split(s: str) -> list[str]:
    return s.split()


class _Block:
    """One sub-linear TF-IDF block over a fixed vocabulary (stored as a list of terms + idf weights)."""

    def __init__(self, kind: str, ngram_range, vocabulary=None, idf=None):
        self.kind = kind
        self.ngram_range = tuple(ngram_range)
        self.vocabulary = vocabulary
        self.idf = idf
        self._vec = None

    def _counter(self, **kw) -> CountVectorizer:
        if self.kind == "word":
            return CountVectorizer(tokenizer=_split, token_pattern=None, lowercase=False,
                                   ngram_range=self.ngram_range, dtype=np.float32, **kw)
        return CountVectorizer(analyzer="char", lowercase=False, ngram_range=self.ngram_range,
                               dtype=np.float32, **kw)

    def fit_transform(self, docs: list[str], min_df: int, max_features: int | None) -> sp.csr_matrix:
        vec = self._counter(min_df=min_df, max_features=max_features)
        try:
            counts = vec.fit_transform(docs)
        except ValueError:  # empty vocabulary (e.g. all segments empty after pruning): retry without pruning
            vec = self._counter()
            counts = vec.fit_transform(docs) if any(d.strip() for d in docs) else None
        if counts is None:
            self.vocabulary, self.idf = [], np.zeros(0, dtype=np.float32)
            self._vec = None
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        terms = vec.get_feature_names_out()
        self.vocabulary = [str(t) for t in terms]
        df = np.bincount(counts.indices, minlength=counts.shape[1])
        n = counts.shape[0]
        self.idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
        self._vec = vec
        return self._weigh(counts)

    def transform(self, docs: list[str]) -> sp.csr_matrix:
        if not self.vocabulary:
            return sp.csr_matrix((len(docs), 0), dtype=np.float32)
        if self._vec is None:
            self._vec = self._counter(vocabulary={t: i for i, t in enumerate(self.vocabulary)})
        return self._weigh(self._vec.transform(docs))

    def _weigh(self, counts: sp.csr_matrix) -> sp.csr_matrix:
        x = counts.tocsr(copy=True)
        np.log1p(x.data, out=x.data)  # sub-linear tf: 1 + log(tf) ~ log1p keeps zeros sparse
        x = x @ sp.diags(self.idf)
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
        Weight of the preceding turn's features (0 = ignore the context).
    C : float
        Inverse regularisation strength of the logistic regressions.
    min_df : int
        Drop terms seen in fewer segments.
    max_features : int
        Cap per block, most frequent terms kept.
    script : {"simplified", "none"}
        Traditional -> Simplified normalisation before tokenising.
    engine : {"auto", "rjieba", "jieba"}
        Word segmenter (``"auto"``: rjieba when installed); the resolved name is saved with the model.
    tol : float
        Stopping tolerance of liblinear; loose is enough, as scores are recalibrated out of fold.
    n_jobs : int or None
        Threads fitting codes in parallel (None = all cores). Not saved: a setting of the machine.
    """

    def __init__(self, word_ngrams=(1, 2), char_ngrams=(1, 3), context_weight: float = 1.0, C: float = 4.0,
                 min_df: int = 2, max_features: int = 200_000, script: str = "simplified", engine: str = "auto",
                 tol: float = 1e-2, n_jobs: int | None = None):
        self.tokenizer = ChineseTokenizer(script=script, engine=engine)
        super().__init__(word_ngrams=list(word_ngrams), char_ngrams=list(char_ngrams),
                         context_weight=context_weight, C=C, min_df=min_df, max_features=max_features,
                         script=script, engine=self.tokenizer.engine, tol=tol)
        self.n_jobs = n_jobs

    def clone(self):
        new = super().clone()
        new.n_jobs = self.n_jobs
        return new

    # -- encoding: label-free, done once per corpus ------------------------------------------------
    def encode(self, inputs: Inputs) -> dict:
        tok = self.tokenizer
        cache: dict[str, tuple[str, str]] = {}  # raw text -> (normalised, words); contexts repeat texts

        def prepare(text: str) -> tuple[str, str]:
            got = cache.get(text)
            if got is None:
                norm = tok.normalize(text)
                got = cache[text] = (norm, " ".join(tok.words(norm, normalized=True)))
            return got

        prepared = [prepare(t) for t in inputs.texts]
        enc = {"chars": [p[0] for p in prepared], "words": [p[1] for p in prepared]}
        if self.params["context_weight"] > 0:
            enc["context"] = [prepare(c)[1] if c else "" for c in inputs.contexts]
        return enc

    def _blocks(self) -> dict[str, _Block]:
        p = self.params
        blocks = {"words": _Block("word", p["word_ngrams"]), "chars": _Block("char", p["char_ngrams"])}
        if p["context_weight"] > 0:
            blocks["context"] = _Block("word", (1, 1))
        return blocks

    def _features(self, enc: dict, fit: bool) -> sp.csr_matrix:
        p = self.params
        parts = []
        for key, block in self.blocks_.items():
            docs = enc[key]
            x = block.fit_transform(docs, p["min_df"], p["max_features"]) if fit else block.transform(docs)
            if key == "context":
                x = x * p["context_weight"]
            parts.append(x)
        return sp.hstack(parts, format="csr", dtype=np.float32)

    # -- learning ---------------------------------------------------------------------------------------
    def fit(self, encoded: dict, Y: np.ndarray) -> TfidfBackend:
        self.blocks_ = self._blocks()
        X = self._features(encoded, fit=True)
        n_codes = Y.shape[1]
        coef = np.zeros((n_codes, X.shape[1]), dtype=np.float32)
        intercept = np.zeros(n_codes, dtype=np.float32)

        def fit_one(j: int) -> None:
            y = Y[:, j]
            if y.all() or not y.any():  # constant target: a bias-only model
                intercept[j] = 10.0 if y.all() else -10.0
                return
            clf = LogisticRegression(C=self.params["C"], class_weight="balanced", solver="liblinear", dual=True,
                                     tol=self.params["tol"], max_iter=1000)
            clf.fit(X, y)
            coef[j] = clf.coef_[0]
            intercept[j] = clf.intercept_[0]

        n_jobs = self.n_jobs or os.cpu_count() or 1
        with warnings.catch_warnings():
            # a loose tolerance is enough: the scores are recalibrated out of fold
            warnings.simplefilter("ignore", ConvergenceWarning)
            if n_jobs > 1 and n_codes > 1:
                with ThreadPoolExecutor(max_workers=n_jobs) as pool:  # liblinear releases the GIL
                    list(pool.map(fit_one, range(n_codes)))
            else:
                for j in range(n_codes):
                    fit_one(j)
        self.coef_, self.intercept_ = coef, intercept
        self._coef_t = None
        return self

    def decision_function(self, encoded: dict) -> np.ndarray:
        X = self._features(encoded, fit=False)
        if getattr(self, "_coef_t", None) is None:
            self._coef_t = np.ascontiguousarray(self.coef_.T)
        return np.asarray(X @ self._coef_t) + self.intercept_

    # -- saving -----------------------------------------------------------------------------------------
    def get_state(self):
        meta = {"vocabularies": {k: b.vocabulary for k, b in self.blocks_.items()}}
        arrays = {"coef": self.coef_, "intercept": self.intercept_}
        for k, b in self.blocks_.items():
            arrays[f"idf_{k}"] = b.idf
        return meta, arrays

    @classmethod
    def from_state(cls, params, meta, arrays):
        self = cls(**params)
        self._coef_t = None
        self.blocks_ = self._blocks()
        for k, b in self.blocks_.items():
            b.vocabulary = list(meta["vocabularies"][k])
            b.idf = np.asarray(arrays[f"idf_{k}"], dtype=np.float32)
            if len(b.vocabulary) != len(b.idf):
                raise ValueError(f"vocabulary {k!r} has {len(b.vocabulary)} terms but {len(b.idf)} idf weights")
        self.coef_ = np.asarray(arrays["coef"], dtype=np.float32)
        self.intercept_ = np.asarray(arrays["intercept"], dtype=np.float32)
        n_features = sum(len(b.vocabulary) for b in self.blocks_.values())
        if self.coef_.shape[1] != n_features:
            raise ValueError(f"coef has {self.coef_.shape[1]} columns for {n_features} features")
        return self
