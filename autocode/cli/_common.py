"""What the commands share: the help formatter, messages, reading training data, input options, and the
checks that an output is never an input and can be written."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..exceptions import AutocodeError, OutputError
from ..io.inputs import read_inputs


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows each option's default (unless its help already names it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


def progress_enabled(args) -> bool:
    return not getattr(args, "quiet", False)


def say_stage(args, msg: str) -> None:
    """A stage of a long command as it starts, on a terminal only (a log or a pipe gets the result lines)."""
    if not getattr(args, "quiet", False) and sys.stderr.isatty():
        print(msg, file=sys.stderr, flush=True)


def say(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


def read_training_data(args):
    from ..codebook import Codebook
    from ..io import read_coded

    book = None
    if args.codebook and Path(args.codebook).suffix.lower() in (".qdc", ".qde", ".qdpx"):
        from ..io.qdpx import read_qdc

        book = read_qdc(args.codebook)  # a REFI-QDA codebook (or a project's codebook)
    elif args.codebook:
        book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    data = [Path(p) for p in args.data]
    # pre-coded output read back as data is unreviewed: learned from only when named with --include-coder
    training = {"precoded": "exclude", "include_coders": args.include_coders or (),
                "speakers": speakers_of(args)}
    if book is None:
        if len(data) == 1 and data[0].suffix.lower() in (".qdpx", ".qde", ".qda", ".sqlite", ".db"):
            coded = read_coded(data, **training)
            return coded.codebook, coded
        raise AutocodeError("--codebook is required unless --data is a QDA project (.qdpx/.qda) with its codes.")
    return book, read_coded(data, codebook=book, encoding=args.encoding, **training)


def add_data_options(p) -> None:
    p.add_argument("--include-coder", action="append", dest="include_coders", metavar="NAME",
                   help="also learn from this coder of pre-coded output ('autocode precode', e.g. after review); "
                        "repeatable. Without it such coders are left out of --data with a warning")
    p.add_argument("--speakers", metavar="LABEL=ROLE,...",
                   help="speaker labels of the coded data and their roles, e.g. 'A=interviewer,B=participant' "
                        "(a project's transcripts are segmented with them; a table's speaker column is read so)")


def add_batch_size(p, what: str, holds: str = "one batch") -> None:
    p.add_argument("--batch-size", type=int, default=2048, dest="batch_size",
                   help=f"segments {what} at a time: memory holds {holds}, not the corpus")


def check_batch_size(args) -> None:
    if args.batch_size < 1:
        raise AutocodeError(f"--batch-size must be at least 1, got {args.batch_size}.")


def add_force(p) -> None:
    p.add_argument("--force", action="store_true",
                   help="write an output even when it is one of the inputs (which it then replaces)")


def files_of(paths) -> list[Path]:
    """Paths as given, plus the files directly inside those that are folders (a model or QualCoder project)."""
    out = []
    for p in map(Path, paths):
        out.append(p)
        if p.is_dir():
            out.extend(f for f in p.iterdir() if f.is_file())
    return out


def check_outputs(args, outputs: dict[str, list], inputs, folder: bool = False) -> None:
    """Refuse, before any work, outputs that are inputs (unless --force) or cannot be written."""
    from .._files import check_not_inputs, check_writable

    check_not_inputs(outputs, files_of(inputs), force=args.force)
    for option, paths in outputs.items():
        check_writable(paths[0], folder=folder and option == "--out")


def report_files(out: str, csv_codebook: bool = False) -> list[Path]:
    """A report and the files written beside it (a .md's plot; a saturation .csv's codebook)."""
    path = Path(out)
    if path.suffix.lower() in (".md", ".markdown"):
        return [path, path.with_suffix(".png")]
    if csv_codebook and path.suffix.lower() == ".csv":
        return [path, path.with_name(path.stem + "-codebook.csv")]
    return [path]


def save_model(model, out: str) -> Path:
    """Save the fitted model to ``out``; if that fails, to a new folder here (or in the temporary folder), and
    say where."""
    import tempfile
    import time

    try:
        return model.save(out)
    except OutputError as err:
        fallback = Path.cwd() / f"autocode-model-{time.strftime('%Y%m%d-%H%M%S')}"
        try:
            model.save(fallback)
        except OutputError:
            fallback = Path(tempfile.mkdtemp(prefix="autocode-model-"))
            model.save(fallback)
        raise OutputError(f"{err} The fitted model was saved to {fallback} instead; move that folder where you "
                          "want it.") from None


def backend_params(args) -> dict | None:
    import json

    params = {}
    for item in getattr(args, "backend_param", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise AutocodeError(f"--backend-param expects KEY=VALUE (e.g. epochs=5), got {item!r}.")
        try:
            params[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            params[key.strip()] = value
    if getattr(args, "model_name", None):
        params["model_name"] = args.model_name
    return params or None


def add_input_options(p) -> None:
    p.add_argument("--max-chars", type=int, default=200, dest="max_chars",
                   help="split transcript turns longer than this into sentences (0 = never)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--speakers", metavar="LABEL=ROLE,...",
                   help="speaker labels of the transcripts and their roles, e.g. 'A=interviewer,B=participant' "
                        "(a label without =ROLE is a speaker with its usual role); the layout found in each "
                        "transcript is reported")


def speakers_of(args):
    """The parsed --speakers (None when not given), and the layout of each document reported on stderr."""
    from ..segment import parse_speakers

    return parse_speakers(args.speakers) if getattr(args, "speakers", None) else None


def read_segments_of(args, what: str):
    """The segments and documents of the command's INPUTs (with --speakers, --encoding, --max-chars), the
    layout found in each group of transcripts reported; an error saying there is nothing ``what`` when the
    inputs hold no segment."""
    from ..segment import describe_layouts

    speakers = speakers_of(args)
    segments, documents = read_inputs(args.inputs, encoding=args.encoding, max_chars=args.max_chars,
                                      speakers=speakers)
    if documents and not getattr(args, "quiet", False):
        for line in describe_layouts([(d.name, d.text) for d in documents], speakers=speakers):
            say(args, line)
    if not segments:
        raise AutocodeError(f"The inputs hold no segments {what}.")
    return segments, documents


def add_backend_options(p) -> None:
    p.add_argument("--backend", default="tfidf.v1", help="model family (default tfidf.v1; also transformer)")
    p.add_argument("--model-name", dest="model_name", help="transformer backend: local folder or hub id")
    p.add_argument("--backend-param", dest="backend_param", action="append", metavar="KEY=VALUE",
                   help="a backend setting, repeatable, e.g. --backend-param epochs=5 --backend-param C=8 "
                        "(values are read as JSON, else as text)")


def checked_inputs(args, verb: str):
    """The command's inputs as an ``InputStream``, read once to check and count them (layouts reported)."""
    from ..io.inputs import InputStream

    inputs = InputStream(args.inputs, encoding=args.encoding, max_chars=args.max_chars, speakers=speakers_of(args),
                         keep_documents=Path(args.out).suffix.lower() == ".qdpx")
    n = inputs.census()
    for line in inputs.layouts:
        say(args, line)
    if not n:
        raise AutocodeError(f"The inputs hold no segments to {verb}.")
    return inputs
