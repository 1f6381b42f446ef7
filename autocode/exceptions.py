"""Errors and warnings raised by autocode.

Every error autocode raises is an :class:`AutocodeError`; each subclass also inherits the builtin that
matches it, so ``except ValueError`` keeps working for callers who do not know autocode.
"""

from __future__ import annotations

__all__ = [
    "AutocodeError",
    "AutocodeWarning",
    "CodebookError",
    "FormatError",
    "MissingDependencyError",
    "ModelFileError",
    "NotFittedError",
    "OutputError",
]


class AutocodeError(Exception):
    """Base class of every error autocode raises on purpose."""


class AutocodeWarning(UserWarning):
    """A recoverable problem the user should know about (e.g. a code with too few examples)."""


class CodebookError(AutocodeError, ValueError):
    """The codebook is not a valid tree (duplicate id, unknown parent, cycle) or a code is unknown."""


class FormatError(AutocodeError, ValueError):
    """An input file is malformed. The message names the file and the row, column or element.

    Parameters
    ----------
    message : str
        What was expected, what was found, and how to fix it.
    path : str, optional
        The file the problem is in.
    where : str, optional
        The row, column, field or XML element, e.g. ``"row 12"``.
    """

    def __init__(self, message: str, path: str | None = None, where: str | None = None):
        self.path = None if path is None else str(path)
        self.where = where
        prefix = ""
        if self.path:
            prefix = self.path + (f", {where}" if where else "") + ": "
        elif where:
            prefix = f"{where}: "
        super().__init__(prefix + message)


class ModelFileError(AutocodeError, ValueError):
    """A saved model folder is missing files, was tampered with, or comes from an incompatible version."""


class OutputError(AutocodeError, OSError):
    """An output cannot be written: its folder is not writable, another autocode process is writing it, or it
    is one of the command's inputs."""


class NotFittedError(AutocodeError, AttributeError):
    """A model was used before ``fit``."""


class MissingDependencyError(AutocodeError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str):
        super().__init__(
            f"{purpose} needs the package {package!r}, which is not installed. "
            f"Install it with: pip install 'autocode[{extra}]'"
        )
