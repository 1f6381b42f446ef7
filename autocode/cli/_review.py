"""``autocode review`` and ``autocode next``: count a reviewer's decisions; choose what to code next."""

from __future__ import annotations

from pathlib import Path

from ..io.inputs import input_paths
from ._common import (
    Formatter,
    add_force,
    add_input_options,
    check_outputs,
    read_segments_of,
    say,
)

REVIEW_HELP = """Read a reviewed pre-coding and count its decisions (train with it: autocode train ... --review FILE).

example:
  autocode review precoded.csv                       (the table with its 'accept' column filled)
  autocode review reviewed.qdpx --precoded precoded.qdpx
"""


def add_review(sub):
    p = sub.add_parser("review", help="count a reviewer's decisions on suggestions", description=REVIEW_HELP,
                       formatter_class=Formatter)
    p.add_argument("reviewed", help="reviewed table (.csv/.jsonl with 'accept') or .qdpx exported by a QDA tool")
    p.add_argument("--precoded", help="the pre-coded .qdpx the reviewed project came from")
    p.add_argument("--model-name", dest="model_name", help="the user the suggestions were written under")
    p.add_argument("--encoding")
    p.set_defaults(func=_cmd_review)


def _cmd_review(args) -> int:
    from ..io.review import read_review

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


def add_next(sub):
    p = sub.add_parser("next", help="what to code next: the segments that would teach the model most",
                       description=NEXT_HELP, formatter_class=Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="uncoded transcripts or tables")
    p.add_argument("--out", required=True, help="output: .csv, .jsonl or .qdpx (ranked, pre-coded)")
    p.add_argument("--by", choices=("segment", "interview"), default="segment")
    p.add_argument("--n", type=int, default=50, help="how many segments (or interviews) to choose")
    add_input_options(p)
    add_force(p)
    p.set_defaults(func=_cmd_next)


def _cmd_next(args) -> int:
    from ..io import write_suggestions
    from ..model import CodingModel
    from ..select import next_to_code

    check_outputs(args, {"--out": [Path(args.out)]}, [args.model, *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    segments, documents = read_segments_of(args, "to choose from")
    chosen, _ = next_to_code(model, segments, by=args.by, n=args.n)
    sug = model.suggest(chosen, explain=True)
    write_suggestions(args.out, sug, documents=documents or None)
    say(args, f"chose {len(chosen)} segments ({len({s.document for s in chosen})} documents) -> {args.out}")
    return 0
