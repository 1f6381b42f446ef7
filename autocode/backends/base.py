"""The small interface every model family implements, and the registry of versioned backend names.

A backend turns segments into per-code scores. It works in two steps so that cross-validation does not repeat
expensive, label-free work (tokenising, embedding):

``encode(inputs)``
    label-free representation of each segment (token strings, embeddings ...); the result is indexable by
    row with :func:`take_rows`.
``fit(encoded, Y)`` / ``decision_function(encoded)``
    learn from a boolean matrix ``Y`` (segments x codes) and return raw scores (segments x codes), larger =
    more likely. :class:`~autocode.model.CodingModel` calibrates them into probabilities and chooses
    thresholds; backends need not.

Backends are scikit-learn estimators: parameters in ``__init__``, learned state in attributes ending in ``_``.

``get_state()`` returns ``(meta, arrays)``: JSON-ready values and named numpy arrays, saved without pickle;
``from_state(params, meta, arrays)`` rebuilds a fitted backend.

Register a backend with::

    @register("mybackend.v1")
    class MyBackend(Backend): ...
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone

from ..exceptions import AutocodeError

__all__ = ["Backend", "Inputs", "relative_positions", "register", "get_backend", "available_backends", "take_rows",
           "rule_tokens"]

_REGISTRY: dict[str, type[Backend]] = {}
_LAZY = {
    # name -> module that registers it on import (keeps torch out of the core import)
    "transformer.v1": "autocode.backends.transformer",
    "rerank.v1": "autocode.backends.transformer",
}
ALIASES = {"tfidf": "tfidf.v1", "default": "tfidf.v1", "tfidf-e5": "tfidf-e5.v1", "transformer": "transformer.v1",
           "rerank": "rerank.v1"}


@dataclass(frozen=True)
class Inputs:
    """What a backend sees of each segment: its text, the text before it in the same document (the
    interviewer's question for an answer), the speaker's role, its document and where in the document it
    stands."""

    texts: Sequence[str]
    contexts: Sequence[str]
    roles: Sequence[str]
    groups: Sequence[str] | None = None
    """The document of each segment (for backends that split validation data by document)."""
    positions: Sequence[float] | None = None
    """Relative position of each segment in its document, in [0, 1) (``None``: computed from ``groups``)."""
    following: Sequence[str] | None = None
    """The text of the segment after each one in the same document ("" for the last; ``None``: not known)."""
    rules: Sequence[str] | None = None
    """The codes whose coding rules matched each segment, as space-separated tokens (:func:`rule_tokens`;
    ``None``: the model has no rules). Backends that cannot use them ignore them."""

    def __len__(self) -> int:
        return len(self.texts)

    def relative_positions(self) -> np.ndarray:
        """``positions``, or, when not given, each segment's rank in its document (in input order) divided by
        the document's number of segments; zeros without ``groups``."""
        if self.positions is not None:
            return np.asarray(self.positions, dtype=np.float64)
        if self.groups is None:
            return np.zeros(len(self.texts))
        return relative_positions(self.groups)

    def rows(self, start: int, stop: int) -> Inputs:
        """The segments ``start:stop``, positions kept relative to the whole documents."""
        return Inputs(self.texts[start:stop], self.contexts[start:stop], self.roles[start:stop],
                      None if self.groups is None else self.groups[start:stop],
                      self.relative_positions()[start:stop],
                      None if self.following is None else self.following[start:stop],
                      None if self.rules is None else self.rules[start:stop])


def rule_tokens(codes: Sequence[str]) -> str:
    """The codes whose rules matched a segment as one string of tokens (a code id's spaces become ``_``).

    >>> rule_tokens(["party", "two words"])
    'party two_words'
    """
    return " ".join("_".join(c.split()) for c in codes)


def relative_positions(groups: Sequence[str]) -> np.ndarray:
    """Rank of each segment within its document divided by the document's size.

    >>> relative_positions(["a", "a", "b", "a"]).tolist()
    [0.0, 0.3333333333333333, 0.0, 0.6666666666666666]
    """
    seen: dict[str, int] = {}
    rank = np.empty(len(groups))
    for i, g in enumerate(groups):
        rank[i] = seen.get(g, 0)
        seen[g] = rank[i] + 1
    sizes = np.array([seen[g] for g in groups], dtype=np.float64)
    return rank / np.maximum(sizes, 1)


class Backend(BaseEstimator):
    """Base class, a scikit-learn estimator: ``__init__`` stores parameters as attributes under their own
    names and nothing else (``get_params``, ``set_params`` and ``sklearn.base.clone`` work); what is learned
    or resolved from data is set in ``encode``/``fit`` and ends in ``_``."""

    name: ClassVar[str] = ""
    tunable: ClassVar[dict[str, tuple]] = {}
    """Data-dependent settings :class:`~autocode.model.CodingModel` may choose by out-of-fold kappa: name ->
    candidate values, in increasing order of what ``encode`` computes; every combination is tried (the
    encoding made with the largest values must serve every candidate)."""

    parallel_fits: ClassVar[bool] = False
    """Whether out-of-fold fits may run in worker processes (:func:`autocode.folds.out_of_fold_decisions_many`):
    for backends whose fit is cheap to start and light on memory (not one that loads a neural network)."""

    machine_params: ClassVar[tuple[str, ...]] = ()
    """Parameters that are settings of the machine (threads, progress bars), not of the model: not saved."""

    def __init__(self, **params: Any):
        for key, value in params.items():
            setattr(self, key, value)

    @property
    def params(self) -> dict:
        """The model's parameters (``get_params()`` less :attr:`machine_params`), as saved with a model."""
        return {k: v for k, v in self.get_params(deep=False).items() if k not in self.machine_params}

    def tunable_for(self, Y: np.ndarray, code_groups: Sequence[int] | None = None) -> dict[str, tuple]:
        """The settings of ``tunable`` that can change the model for these labels (default: all)."""
        return dict(self.tunable)

    def encode(self, inputs: Inputs) -> Any:  # pragma: no cover - interface
        raise NotImplementedError

    def fit(self, encoded: Any, Y: np.ndarray, *, code_groups: Sequence[int] | None = None
            ) -> Backend:  # pragma: no cover - interface
        """Learn from ``Y`` (segments x codes); ``code_groups`` gives the category of each code column
        (integers), for backends that model the codebook's hierarchy (others ignore it)."""
        raise NotImplementedError

    def decision_function(self, encoded: Any) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:  # pragma: no cover - interface
        raise NotImplementedError

    @classmethod
    def from_state(cls, params: dict, meta: dict, arrays: dict[str, np.ndarray]) -> Backend:  # pragma: no cover
        raise NotImplementedError

    def save_files(self, folder) -> list[str]:
        """Write state too large or too specific for ``get_state`` (e.g. ``weights.safetensors``) into
        ``folder``; return the file names written. The model records and checks their SHA-256."""
        return []

    def load_files(self, folder) -> None:
        """Read what :meth:`save_files` wrote (called after :meth:`from_state`)."""

    def clone(self) -> Backend:
        """An unfitted copy with the same parameters (``sklearn.base.clone``)."""
        return clone(self)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def register(name: str):
    """Class decorator: register a backend under a versioned name such as ``"tfidf.v1"``."""

    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def get_backend(name: str) -> type[Backend]:
    """The backend class registered under ``name`` (aliases: ``tfidf``, ``transformer``)."""
    name = ALIASES.get(name, name)
    if name not in _REGISTRY and name in _LAZY:
        import importlib

        importlib.import_module(_LAZY[name])
    try:
        return _REGISTRY[name]
    except KeyError:
        raise AutocodeError(
            f"Unknown backend {name!r}. Available: {', '.join(available_backends())}."
        ) from None


def available_backends() -> list[str]:
    return sorted(set(_REGISTRY) | set(_LAZY))


def take_rows(encoded: Any, rows: np.ndarray) -> Any:
    """Select rows of an encoded representation (list, tuple, dict of those, ndarray, sparse matrix, or an
    object with its own ``take_rows`` method)."""
    if hasattr(encoded, "take_rows"):
        return encoded.take_rows(rows)
    if isinstance(encoded, dict):
        return {k: take_rows(v, rows) for k, v in encoded.items()}
    if isinstance(encoded, (np.ndarray, sp.spmatrix, sp.sparray)):
        return encoded[rows]
    if isinstance(encoded, tuple):
        return tuple(take_rows(v, rows) for v in encoded)
    if isinstance(encoded, list):
        return [encoded[i] for i in rows]
    raise TypeError(f"Cannot select rows of {type(encoded).__name__}")
