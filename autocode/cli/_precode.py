"""``autocode precode`` and ``autocode rules``: suggestions for new transcripts, from a model or from rules."""

from __future__ import annotations

from pathlib import Path

from ..exceptions import AutocodeError
from ..io.inputs import input_paths
from ._common import (
    Formatter,
    add_batch_size,
    add_force,
    add_input_options,
    check_batch_size,
    check_outputs,
    checked_inputs,
    progress_enabled,
    say,
)

PRECODE_HELP = """\
Pre-code new transcripts: suggested codes with scores and categories for every segment.

INPUT is a canonical table (.csv/.jsonl; coder/codes columns ignored), .txt/.docx transcripts, a folder or a
glob. Every input segment appears in the output, with or without suggestions.

example:
  autocode precode --model model/ interviews/*.txt --out precoded.csv
  autocode precode --model model/ new.csv --out precoded.jsonl --min-score 0.8
"""


def add_precode(sub):
    p = sub.add_parser("precode", help="suggest codes for new transcripts", description=PRECODE_HELP,
                       formatter_class=Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcripts or canonical tables")
    p.add_argument("--out", required=True, help="output: .csv, .xlsx, .jsonl or .qdpx")
    p.add_argument("--min-score", type=float, dest="min_score",
                   help="accept codes scoring at least this (default: each code's learned threshold)")
    p.add_argument("--top", type=int, default=5, help="how many best-scoring codes to list per segment")
    p.add_argument("--no-evidence", action="store_true", dest="no_evidence",
                   help="do not explain the suggestions (their words and similar coded segments)")
    add_batch_size(p, "scored and written")
    add_input_options(p)
    add_force(p)
    p.set_defaults(func=_cmd_precode)


def _cmd_precode(args) -> int:
    from ..model import CodingModel
    from ..streaming import precode_files

    check_batch_size(args)
    check_outputs(args, {"--out": [Path(args.out)]}, [args.model, *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    model.set_params(progress=False)  # the stream shows its own progress
    inputs = checked_inputs(args, "pre-code")
    done = precode_files(model, inputs, args.out, min_score=args.min_score, explain=not args.no_evidence,
                         top_k=args.top, batch_size=args.batch_size, progress=progress_enabled(args))
    say(args, f"pre-coded {done.n_segments} segments ({done.n_with_codes} with suggestions) -> {args.out}")
    return 0


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


def add_rules(sub):
    p = sub.add_parser("rules", help="code by keyword, phrase and regular-expression rules",
                       description=RULES_HELP, formatter_class=Formatter)
    p.add_argument("--codebook", required=True, help="codebook CSV (its 'rules' column is used without --rules)")
    p.add_argument("--rules", help="rules table: code,pattern[,kind,speaker,heading]")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="transcripts or canonical tables")
    p.add_argument("--out", required=True, help="output: .csv, .xlsx, .jsonl or .qdpx")
    add_batch_size(p, "matched and written")
    add_input_options(p)
    add_force(p)
    p.set_defaults(func=_cmd_rules)


def _cmd_rules(args) -> int:
    from ..codebook import Codebook
    from ..rules import RuleSet, read_rules
    from ..streaming import apply_rules_files

    check_batch_size(args)
    check_outputs(args, {"--out": [Path(args.out)]},
                   [args.codebook, *([args.rules] if args.rules else []), *input_paths(args.inputs)])
    book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    rules = (read_rules(args.rules, book, encoding=args.encoding) if args.rules
             else RuleSet.from_codebook_csv(args.codebook, book, encoding=args.encoding))
    if not len(rules):
        raise AutocodeError(f"{args.codebook}: no rules. Give --rules rules.csv, or a 'rules' column in the "
                            "codebook.")
    inputs = checked_inputs(args, "code")
    done = apply_rules_files(rules, inputs, args.out, batch_size=args.batch_size, progress=progress_enabled(args))
    say(args, f"{len(rules)} rule(s): {done.n_with_codes} of {done.n_segments} segments matched -> {args.out}")
    return 0
