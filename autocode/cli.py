"""The ``autocode`` command: a thin layer that parses arguments and calls the library.

Errors the user can fix (an :class:`~autocode.exceptions.AutocodeError`) print one line and exit 1;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ._version import __version__
from .exceptions import AutocodeError, AutocodeWarning, OutputError
from .io.inputs import input_paths, read_inputs

__all__ = ["main"]


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' layout and shows each option's default (unless its help already names it)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if (action.option_strings and not any(action.default is v for v in (None, False, argparse.SUPPRESS))
                and "default" not in text):
            text += " (default: %(default)s)"
        return text


def _progress_enabled(args) -> bool:
    return not getattr(args, "quiet", False)


def _say(args, msg: str) -> None:
    if not getattr(args, "quiet", False):
        print(msg, file=sys.stderr)


def _read_training_data(args):
    from .codebook import Codebook
    from .io import read_coded

    book = None
    if args.codebook and Path(args.codebook).suffix.lower() in (".qdc", ".qde", ".qdpx"):
        from .io.qdpx import read_qdc

        book = read_qdc(args.codebook)  # a REFI-QDA codebook (or a project's codebook)
    elif args.codebook:
        book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    data = [Path(p) for p in args.data]
    # pre-coded output read back as data is unreviewed: learned from only when named with --include-coder
    training = {"precoded": "exclude", "include_coders": args.include_coders or ()}
    if book is None:
        if len(data) == 1 and data[0].suffix.lower() in (".qdpx", ".qde", ".qda", ".sqlite", ".db"):
            coded = read_coded(data, **training)
            return coded.codebook, coded
        raise AutocodeError("--codebook is required unless --data is a QDA project (.qdpx/.qda) with its codes.")
    return book, read_coded(data, codebook=book, encoding=args.encoding, **training)


def _add_data_options(p) -> None:
    p.add_argument("--include-coder", action="append", dest="include_coders", metavar="NAME",
                   help="also learn from this coder of pre-coded output ('autocode precode', e.g. after review); "
                        "repeatable. Without it such coders are left out of --data with a warning")


# -- outputs: never an input, writable before any work ---------------------------------------------------
def _add_force(p) -> None:
    p.add_argument("--force", action="store_true",
                   help="write an output even when it is one of the inputs (which it then replaces)")


def _files_of(paths) -> list[Path]:
    """Paths as given, plus the files directly inside those that are folders (a model or QualCoder project)."""
    out = []
    for p in map(Path, paths):
        out.append(p)
        if p.is_dir():
            out.extend(f for f in p.iterdir() if f.is_file())
    return out


def _check_outputs(args, outputs: dict[str, list], inputs, folder: bool = False) -> None:
    """Refuse, before any work, outputs that are inputs (unless --force) or cannot be written."""
    from ._files import check_not_inputs, check_writable

    check_not_inputs(outputs, _files_of(inputs), force=args.force)
    for option, paths in outputs.items():
        check_writable(paths[0], folder=folder and option == "--out")


def _report_files(out: str, csv_codebook: bool = False) -> list[Path]:
    """A report and the files written beside it (a .md's plot; a saturation .csv's codebook)."""
    path = Path(out)
    if path.suffix.lower() in (".md", ".markdown"):
        return [path, path.with_suffix(".png")]
    if csv_codebook and path.suffix.lower() == ".csv":
        return [path, path.with_name(path.stem + "-codebook.csv")]
    return [path]


def _save_model(model, out: str) -> Path:
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


# -- train ------------------------------------------------------------------------------------------------
TRAIN_HELP = """\
Learn a coding model from hand-coded segments and save it to a folder.

example:
  autocode train --codebook codebook.csv --data coded.csv --out model/
  autocode train --codebook codebook.csv --data coder_E.csv coder_A.csv --target majority --out model/
  autocode train --data project.qdpx --out model/          (codebook and codings from a REFI-QDA project)
"""


def _add_train(sub):
    p = sub.add_parser("train", help="learn a model from hand-coded segments", description=TRAIN_HELP,
                       formatter_class=_Formatter)
    p.add_argument("--codebook", help="codebook .csv/.xlsx (id,name,description,parent) or a REFI-QDA .qdc codebook")
    p.add_argument("--data", nargs="+", required=True,
                   help="coded table(s) (.csv/.xlsx/.jsonl): document,segment,speaker,text,coder,codes (or a .qdpx "
                        "project)")
    _add_data_options(p)
    p.add_argument("--target", default="union",
                   help="whose coding to learn: union (default), majority, or a coder's name")
    _add_backend_options(p)
    p.add_argument("--min-examples", type=int, default=3, help="codes with fewer coded segments are not learned")
    p.add_argument("--folds", type=int, default=5, help="grouped folds used to calibrate scores and thresholds")
    p.add_argument("--seed", type=int, default=0, help="random seed (folds, backend)")
    p.add_argument("--no-tune", action="store_true", dest="no_tune",
                   help="keep the backend's data-dependent settings (tfidf: context weight 1, category-first "
                        "scoring on) at their defaults instead of choosing them by out-of-fold kappa (several "
                        "times faster training)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--review", metavar="REVIEWED",
                   help="a reviewed pre-coding: a table with an 'accept' column, or a .qdpx reviewed in a QDA tool "
                        "(with --precoded): accepted suggestions are positives, rejected ones negatives")
    p.add_argument("--precoded", help="the pre-coded .qdpx a reviewed .qdpx came from")
    _add_force(p)
    p.set_defaults(func=_cmd_train)


def _backend_params(args) -> dict | None:
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


def _add_input_options(p) -> None:
    p.add_argument("--max-chars", type=int, default=200, dest="max_chars",
                   help="split transcript turns longer than this into sentences (0 = never)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--speakers", metavar="LABEL=ROLE,...",
                   help="speaker labels of the transcripts and their roles, e.g. 'A=interviewer,B=participant' "
                        "(a label without =ROLE is a speaker with its usual role); the layout found in each "
                        "transcript is reported")


def _speakers(args):
    """The parsed --speakers (None when not given), and the layout of each document reported on stderr."""
    from .segment import parse_speakers

    return parse_speakers(args.speakers) if getattr(args, "speakers", None) else None


def _report_layouts(args, documents, speakers) -> None:
    from .segment import describe_layouts

    if documents and not getattr(args, "quiet", False):
        for line in describe_layouts([(d.name, d.text) for d in documents], speakers=speakers):
            _say(args, line)


def _add_backend_options(p) -> None:
    p.add_argument("--backend", default="tfidf.v1", help="model family (default tfidf.v1; also transformer)")
    p.add_argument("--model-name", dest="model_name", help="transformer backend: local folder or hub id")
    p.add_argument("--backend-param", dest="backend_param", action="append", metavar="KEY=VALUE",
                   help="a backend setting, repeatable, e.g. --backend-param epochs=5 --backend-param C=8 "
                        "(values are read as JSON, else as text)")


def _cmd_train(args) -> int:
    from .model import CodingModel

    params = _backend_params(args)
    out = Path(args.out)
    _check_outputs(args, {"--out": [out, out / "model.json", out / "arrays.npz", out / "checksums.json"]},
                   [*(args.data or []), *([args.codebook] if args.codebook else []),
                    *([args.review] if args.review else []), *([args.precoded] if args.precoded else [])],
                   folder=True)
    book, coded = _read_training_data(args)
    _say(args, f"read {coded}")
    model = CodingModel(book, args.backend, target=args.target, min_examples=args.min_examples,
                        n_splits=args.folds, random_state=args.seed, backend_params=params,
                        tune=not args.no_tune, progress=_progress_enabled(args))
    review = None
    if args.review:
        from .io.review import read_review

        review = read_review(args.review, precoded=args.precoded, codebook=book, encoding=args.encoding)
        _say(args, f"read {review}")
    model.fit(coded, review=review)
    _save_model(model, args.out)  # first: a report line that fails cannot lose the fitted model
    _say(args, f"learned {len(model.codes_)} codes from {model.n_train_segments_} segments "
               f"({model.n_train_documents_} documents); saved to {args.out}")
    for key, t in model.tuning_.items():
        tried = ", ".join(f"{v} -> kappa {k:.3f}" for v, k in t["candidates"].items())
        _say(args, f"{key} chosen by out-of-fold kappa: {t['chosen']} ({tried})")
    if model.rare_codes_:
        _say(args, f"not learned (too few examples): {', '.join(model.rare_codes_)}")
    return 0


# -- precode ----------------------------------------------------------------------------------------------
PRECODE_HELP = """\
Pre-code new transcripts: suggested codes with scores and categories for every segment.

INPUT is a canonical table (.csv/.jsonl; coder/codes columns ignored), .txt/.docx transcripts, a folder or a
glob. Every input segment appears in the output, with or without suggestions.

example:
  autocode precode --model model/ interviews/*.txt --out precoded.csv
  autocode precode --model model/ new.csv --out precoded.jsonl --min-score 0.8
"""


def _add_precode(sub):
    p = sub.add_parser("precode", help="suggest codes for new transcripts", description=PRECODE_HELP,
                       formatter_class=_Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcripts or canonical tables")
    p.add_argument("--out", required=True, help="output: .csv, .xlsx, .jsonl or .qdpx")
    p.add_argument("--min-score", type=float, dest="min_score",
                   help="accept codes scoring at least this (default: each code's learned threshold)")
    p.add_argument("--top", type=int, default=5, help="how many best-scoring codes to list per segment")
    p.add_argument("--no-evidence", action="store_true", dest="no_evidence",
                   help="do not explain the suggestions (their words and similar coded segments)")
    _add_input_options(p)
    _add_force(p)
    p.set_defaults(func=_cmd_precode)


def _cmd_precode(args) -> int:
    from .io import write_suggestions
    from .model import CodingModel

    _check_outputs(args, {"--out": [Path(args.out)]}, [args.model, *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    model.set_params(progress=_progress_enabled(args))
    speakers = _speakers(args)
    segments, documents = read_inputs(args.inputs, encoding=args.encoding, max_chars=args.max_chars,
                                      speakers=speakers)
    _report_layouts(args, documents, speakers)
    if not segments:
        raise AutocodeError("The inputs hold no segments to pre-code.")
    sug = model.suggest(segments, min_score=args.min_score, explain=not args.no_evidence)
    write_suggestions(args.out, sug, top_k=args.top, documents=documents or None)
    n_with = int(sug.accepted.any(axis=1).sum())
    _say(args, f"pre-coded {len(sug)} segments ({n_with} with suggestions) -> {args.out}")
    return 0


# -- review and next --------------------------------------------------------------------------------------
REVIEW_HELP = """Read a reviewed pre-coding and count its decisions (train with it: autocode train ... --review FILE).

example:
  autocode review precoded.csv                       (the table with its 'accept' column filled)
  autocode review reviewed.qdpx --precoded precoded.qdpx
"""


def _add_review(sub):
    p = sub.add_parser("review", help="count a reviewer's decisions on suggestions", description=REVIEW_HELP,
                       formatter_class=_Formatter)
    p.add_argument("reviewed", help="reviewed table (.csv/.jsonl with 'accept') or .qdpx exported by a QDA tool")
    p.add_argument("--precoded", help="the pre-coded .qdpx the reviewed project came from")
    p.add_argument("--model-name", dest="model_name", help="the user the suggestions were written under")
    p.add_argument("--encoding")
    p.set_defaults(func=_cmd_review)


def _cmd_review(args) -> int:
    from .io.review import read_review

    review = read_review(args.reviewed, precoded=args.precoded, model_name=args.model_name, encoding=args.encoding)
    counts = review.counts()
    print(" ".join(f"{k}={v}" for k, v in counts.items()))
    return 0


NEXT_HELP = """Rank uncoded segments (or whole interviews) by how much coding them would teach the model, and write them
pre-coded, best first, for hand coding or review.

example:
  autocode next --model model/ interviews/*.txt --out next.csv --n 50
  autocode next --model model/ interviews/*.txt --out next.qdpx --by interview --n 2
"""


def _add_next(sub):
    p = sub.add_parser("next", help="what to code next: the segments that would teach the model most",
                       description=NEXT_HELP, formatter_class=_Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="uncoded transcripts or tables")
    p.add_argument("--out", required=True, help="output: .csv, .jsonl or .qdpx (ranked, pre-coded)")
    p.add_argument("--by", choices=("segment", "interview"), default="segment")
    p.add_argument("--n", type=int, default=50, help="how many segments (or interviews) to choose")
    _add_input_options(p)
    _add_force(p)
    p.set_defaults(func=_cmd_next)


def _cmd_next(args) -> int:
    from .io import write_suggestions
    from .model import CodingModel
    from .select import next_to_code

    _check_outputs(args, {"--out": [Path(args.out)]}, [args.model, *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    speakers = _speakers(args)
    segments, documents = read_inputs(args.inputs, encoding=args.encoding, max_chars=args.max_chars,
                                      speakers=speakers)
    _report_layouts(args, documents, speakers)
    chosen, _ = next_to_code(model, segments, by=args.by, n=args.n)
    if not chosen:
        raise AutocodeError("The inputs hold no segments to choose from.")
    sug = model.suggest(chosen, explain=True)
    write_suggestions(args.out, sug, documents=documents or None)
    _say(args, f"chose {len(chosen)} segments ({len({s.document for s in chosen})} documents) -> {args.out}")
    return 0


# -- evaluate ---------------------------------------------------------------------------------------------
EVALUATE_HELP = """\
Cross-validate a model grouped by document and compare it with the human coders.

Each fold holds out whole documents; the report gives per-code precision, recall, F1 and Cohen's kappa of the
model against each coder, beside the human-human kappa on the same segments, pooled and per code.

example:
  autocode evaluate --codebook codebook.csv --data coded.csv --folds 5 --out report.md
"""


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="grouped cross-validation: model-human vs human-human agreement",
                       description=EVALUATE_HELP, formatter_class=_Formatter)
    p.add_argument("--codebook", help="codebook .csv/.xlsx: id,name,description,parent")
    p.add_argument("--data", nargs="+", required=True, help="coded table(s) or a .qdpx project")
    _add_data_options(p)
    p.add_argument("--folds", type=int, default=5, help="outer folds, grouped by document")
    p.add_argument("--target", default="union", help="whose coding to learn: union, majority, or a coder's name")
    _add_backend_options(p)
    p.add_argument("--min-examples", type=int, default=3, dest="min_examples",
                   help="codes with fewer coded segments are not learned")
    p.add_argument("--seed", type=int, default=0, help="random seed (folds, backend)")
    p.add_argument("--no-tune", action="store_true", dest="no_tune",
                   help="keep the backend's data-dependent settings at their defaults (as train --no-tune)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--out", help="write the report here (.md, .html or .json); printed when omitted")
    _add_force(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    import json

    from ._files import write_text
    from .evaluate import cross_validate
    from .model import CodingModel

    if args.out:
        _check_outputs(args, {"--out": [Path(args.out)]},
                       [*(args.data or []), *([args.codebook] if args.codebook else [])])
    book, coded = _read_training_data(args)
    model = CodingModel(book, args.backend, target=args.target, min_examples=args.min_examples,
                        n_splits=args.folds, random_state=args.seed, backend_params=_backend_params(args),
                        tune=not args.no_tune)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        cv = cross_validate(model, coded, n_splits=args.folds, random_state=args.seed,
                            progress=_progress_enabled(args))
    if args.out and args.out.endswith(".json"):
        write_text(args.out, json.dumps(cv.to_dict(), ensure_ascii=False, indent=1))
    elif args.out and args.out.lower().endswith((".html", ".htm")):
        from .io._markdown import markdown_page

        write_text(args.out, markdown_page(cv.to_markdown(), "autocode evaluate"))
    elif args.out:
        write_text(args.out, cv.to_markdown())
    else:
        print(cv.to_markdown())
    pooled = ", ".join(f"{k} {v['kappa']:.3f}" for k, v in cv.pooled.items())
    _say(args, f"pooled kappa: {pooled}" + (f"; report -> {args.out}" if args.out else ""))
    return 0


# -- agree ----------------------------------------------------------------------------------------------
AGREE_HELP = """\
Agreement between coders (and a pre-coding model): per code, pooled and averaged, with bootstrap intervals.

FILE is a canonical table with a 'coder' column, or one table per coder (the file name is the coder), or a
.qdpx project; output of 'autocode precode' is a coder too (named autocode-..., reported as the model).
The report gives Cohen's kappa and percent agreement per pair of coders; Krippendorff's alpha, Fleiss' kappa,
Gwet's AC1 and Brennan-Prediger over all coders; per code and over all codes; then the segments where the
coders differ. Units are segments, or characters (as NVivo's coding comparison counts them).

example:
  autocode agree coded.csv --out agreement.md
  autocode agree coder_E.csv coder_A.csv precoded.csv --bootstrap 1000 --out agreement.html
  autocode agree coded.csv --codebook codebook.csv --by category --level character --drop-uncoded --out a.csv
"""


def _add_agree(sub):
    p = sub.add_parser("agree", help="agreement between coders and with the model", description=AGREE_HELP,
                       formatter_class=_Formatter)
    p.add_argument("files", nargs="+", metavar="FILE", help="coded table(s) or a .qdpx project")
    p.add_argument("--out", required=True, help="report: .md (plot written beside it as .png), .html or .csv")
    p.add_argument("--level", choices=("segment", "character"), default="segment",
                   help="unit of agreement (default segment)")
    p.add_argument("--by", choices=("code", "category", "main"), default="code",
                   help="compare codes as coded, or rolled up to categories / main categories (needs --codebook)")
    p.add_argument("--codebook", help="codebook CSV: id,name,description,parent")
    p.add_argument("--coders", nargs="+", help="compare only these coders (default: all)")
    p.add_argument("--model", nargs="+", dest="models",
                   help="coders that are models (default: names starting with 'autocode')")
    p.add_argument("--drop-uncoded", action="store_true", dest="drop_uncoded",
                   help="leave out segments/characters no coder coded with any code")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                   help="bootstrap resamples of documents for the intervals (default 1000; 0 = none)")
    p.add_argument("--confidence", type=float, default=0.95, help="level of the bootstrap intervals")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (same seed, same intervals)")
    p.add_argument("--disagreements", metavar="CSV", help="also write every disagreement to this CSV")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    _add_force(p)
    p.set_defaults(func=_cmd_agree)


def _cmd_agree(args) -> int:
    from .codebook import Codebook
    from .io import read_coded
    from .reliability import measure_agreement

    outputs = {"--out": _report_files(args.out)}
    if args.disagreements:
        outputs["--disagreements"] = [Path(args.disagreements)]
    _check_outputs(args, outputs, [*args.files, *([args.codebook] if args.codebook else [])])
    book = None
    if args.codebook and Path(args.codebook).suffix.lower() in (".qdc", ".qde", ".qdpx"):
        from .io.qdpx import read_qdc

        book = read_qdc(args.codebook)  # a REFI-QDA codebook (or a project's codebook)
    elif args.codebook:
        book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    coded = read_coded(args.files, codebook=book, encoding=args.encoding)
    report = measure_agreement(coded, coders=args.coders, models=args.models, by=args.by, level=args.level,
                               uncoded="drop" if args.drop_uncoded else "keep", n_bootstrap=args.bootstrap,
                               confidence=args.confidence, random_state=args.seed)
    report.write(args.out)
    if args.disagreements:
        report.write_disagreements(args.disagreements)
    pooled = ", ".join(f"{r['coders']} {r['value']:.3f}" for r in report.rows
                       if r["statistic"] == "cohen_kappa" and r["scope"] == "pooled")
    _say(args, f"pooled Cohen's kappa: {pooled}; {len(report.disagreements)} disagreements; report -> {args.out}")
    return 0


# -- saturation -------------------------------------------------------------------------------------------
SATURATION_HELP = """\
Saturation check: which segments of held-out interviews fit no existing code, candidate new open codes, and
the number of new concepts per interview (the saturation curve).

INTERVIEW is a canonical table (.csv/.jsonl), .txt/.docx transcripts, a folder or a glob, as for precode;
interviews are taken in the order given. The novelty scorer is fitted once on the model's training data
(--data, saved as novelty.json/novelty.npz in the model folder) and reused afterwards. With --data the
report also compares which categories go together (in a question and its answers) in the coded and the
held-out interviews: new links between categories and links of changed strength.

The report format follows --out: .md (with a .png plot beside it), .html (self-contained), .csv (one row per
segment, candidate codes in the codes column, plus REPORT-codebook.csv), .qdpx (candidate codes for review in
a QDA program) or .json.

example:
  autocode saturation --model model/ --data coded.csv held_out/*.txt --out saturation.html
  autocode saturation --model model/ P19.txt P20.txt P21.txt --out saturation.md --threshold 0.99
"""


def _add_saturation(sub):
    p = sub.add_parser("saturation", help="segments that fit no code and candidate new codes, per interview",
                       description=SATURATION_HELP, formatter_class=_Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INTERVIEW", help="held-out transcripts or canonical tables")
    p.add_argument("--out", required=True, help="report: .md, .html, .csv, .qdpx or .json")
    p.add_argument("--data", action="append", metavar="CODED",
                   help="a coded table the model was trained on (repeat for several); fits the novelty scorer "
                        "and saves it in the model folder")
    p.add_argument("--threshold", type=float, default=0.95,
                   help="novelty at or above which a segment is novel (default 0.95: less typical than 95%% of "
                        "the coded training segments)")
    p.add_argument("--min-size", type=int, default=2, dest="min_size",
                   help="segments a candidate code needs (default 2)")
    p.add_argument("--clusters", type=int, help="group the novel segments into this many candidates (default: "
                                                "cut where groups become looser than the existing codes)")
    _add_input_options(p)
    _add_force(p)
    p.set_defaults(func=_cmd_saturation)


def _cmd_saturation(args) -> int:
    from .io import read_coded
    from .model import CodingModel
    from .saturation import NoveltyScorer, saturation_report

    _check_outputs(args, {"--out": _report_files(args.out, csv_codebook=True)},
                   [args.model, *(args.data or []), *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    coded = None
    if args.data:
        coded = read_coded([Path(p) for p in args.data], codebook=model.codebook, encoding=args.encoding)
        scorer = NoveltyScorer(random_state=model.random_state, progress=_progress_enabled(args))
        scorer.fit(model, coded)
        scorer.save(args.model)
        _say(args, f"novelty scorer fitted on {scorer.n_calibration_} coded segments; saved in {args.model}")
    else:
        scorer = NoveltyScorer.load(args.model)
        scorer.set_params(progress=_progress_enabled(args))
    speakers = _speakers(args)
    segments, documents = read_inputs(args.inputs, encoding=args.encoding, max_chars=args.max_chars,
                                      speakers=speakers)
    _report_layouts(args, documents, speakers)
    if not segments:
        raise AutocodeError("The inputs hold no segments to check.")
    report = saturation_report(model, segments, coded=coded, scorer=scorer, threshold=args.threshold,
                               min_size=args.min_size, n_clusters=args.clusters)
    written = report.save(args.out, documents=documents or None)
    n_novel = int(report.scores.novel.sum())
    _say(args, f"{n_novel} of {int(report.scores.eligible.sum())} eligible segments novel; "
               f"{len(report.candidates)} candidate code(s) -> {', '.join(map(str, written))}")
    return 0


# -- more commands are added here (keep one _add_* function per command) ---------------------------------
# -- rules ------------------------------------------------------------------------------------------------
RULES_HELP = """\
Code by rules, before any hand coding (like NVivo's auto code): every segment whose text matches a code's
keywords, phrase or regular expression gets that code, with the matching words as evidence.

RULES is a table with the columns code,pattern and optional kind (keyword: any of the words, separated by
spaces, commas or 、; phrase: the text as written; regex: a regular expression) and speaker (a role,
interviewer/participant, or a speaker label); or the codebook itself with a 'rules' column (patterns
separated by ';', re:PATTERN for a regular expression, "..." for a phrase). Traditional and Simplified
characters, full- and half-width forms match alike. Output formats as for precode.

example:
  autocode rules --codebook codebook.csv --rules rules.csv interviews/*.txt --out autocoded.qdpx
  autocode rules --codebook codebook.csv interviews/ --out autocoded.csv   # the codebook's rules column
"""


def _add_rules(sub):
    p = sub.add_parser("rules", help="code by keyword, phrase and regular-expression rules",
                       description=RULES_HELP, formatter_class=_Formatter)
    p.add_argument("--codebook", required=True, help="codebook CSV (its 'rules' column is used without --rules)")
    p.add_argument("--rules", help="rules table: code,pattern[,kind,speaker]")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcripts or canonical tables")
    p.add_argument("--out", required=True, help="output: .csv, .jsonl or .qdpx")
    _add_input_options(p)
    _add_force(p)
    p.set_defaults(func=_cmd_rules)


def _cmd_rules(args) -> int:
    from .codebook import Codebook
    from .io import write_suggestions
    from .rules import RuleSet, read_rules

    _check_outputs(args, {"--out": [Path(args.out)]},
                   [args.codebook, *([args.rules] if args.rules else []), *input_paths(args.inputs)])
    book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    rules = (read_rules(args.rules, book, encoding=args.encoding) if args.rules
             else RuleSet.from_codebook_csv(args.codebook, book, encoding=args.encoding))
    if not len(rules):
        raise AutocodeError(f"{args.codebook}: no rules. Give --rules rules.csv, or a 'rules' column in the "
                            "codebook.")
    speakers = _speakers(args)
    segments, documents = read_inputs(args.inputs, encoding=args.encoding, max_chars=args.max_chars,
                                      speakers=speakers)
    _report_layouts(args, documents, speakers)
    if not segments:
        raise AutocodeError("The inputs hold no segments to code.")
    matches = rules.apply(segments)
    write_suggestions(args.out, matches.suggestions(), top_k=min(3, len(matches.codes)), documents=documents or None)
    n_with = int(matches.matched.any(axis=1).sum())
    _say(args, f"{len(rules)} rule(s): {n_with} of {len(segments)} segments matched -> {args.out}")
    return 0


_COMMANDS = [_add_train, _add_precode, _add_review, _add_next, _add_evaluate, _add_agree, _add_saturation,
             _add_rules]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="autocode",
        description="Learn from hand-coded Chinese interview segments, pre-code new transcripts, "
                    "measure coder agreement.",
        formatter_class=_Formatter,
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
