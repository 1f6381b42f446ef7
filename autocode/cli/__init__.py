"""The ``autocode`` command: a thin layer that parses arguments and calls the library.

Errors the user can fix (an :class:`~autocode.exceptions.AutocodeError`) print one line and exit 1;
``--debug`` shows the traceback.

One module per group of commands (``_train``, ``_precode``, ``_review``, ``_agree``, ``_saturation``), what they
share in ``_common``.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from .._version import __version__
from ..exceptions import AutocodeError, AutocodeWarning
from ._agree import add_agree
from ._common import Formatter
from ._precode import add_precode, add_rules
from ._review import add_next, add_review
from ._saturation import add_saturation
from ._train import add_evaluate, add_train

__all__ = ["main", "build_parser"]


_COMMANDS = [add_train, add_precode, add_review, add_next, add_evaluate, add_agree, add_saturation,
             add_rules]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocode",
        description="Learn from hand-coded Chinese interview segments, pre-code new transcripts, "
                    "measure coder agreement.",
        formatter_class=Formatter,
        epilog="Run 'autocode COMMAND --help' for each command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"autocode {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress or messages on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(sub)
    for command in sub.choices.values():  # global options are accepted after the command name too
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        command.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                             help="no progress or messages on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", AutocodeWarning)
            warnings.showwarning = _show_warning if not args.debug else warnings.showwarning
            return args.func(args)
    except AutocodeError as err:
        if args.debug:
            raise
        print(f"autocode {args.command}: error: {err}", file=sys.stderr)
        return 1


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"warning: {message}", file=sys.stderr)
