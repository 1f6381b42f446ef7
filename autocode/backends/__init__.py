"""Model families behind one interface (see :mod:`autocode.backends.base`)."""

from . import tfidf  # noqa: F401  (registers "tfidf.v1")
from .base import Backend, Inputs, available_backends, get_backend, register

__all__ = ["Backend", "Inputs", "available_backends", "get_backend", "register"]
