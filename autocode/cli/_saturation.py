"""``autocode saturation``: new concepts and relations in held-out interviews."""

from __future__ import annotations

from pathlib import Path

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
    report_files,
    say,
    speakers_of,
)

SATURATION_HELP = """\
Saturation check: new concepts? new categories? new relations? The report answers the three questions first,
then lists the segments to review (novelty at least --review) with the words no code accounts for, then the
candidate new open codes and the number of new concepts per interview (the saturation curve).

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


def add_saturation(sub):
    p = sub.add_parser("saturation", help="segments that fit no code and candidate new codes, per interview",
                       description=SATURATION_HELP, formatter_class=Formatter)
    p.add_argument("--model", required=True, help="model folder written by 'autocode train'")
    p.add_argument("inputs", nargs="+", metavar="INTERVIEW", help="held-out transcripts or canonical tables")
    p.add_argument("--out", required=True, help="report: .md, .html, .csv, .qdpx or .json")
    p.add_argument("--data", action="append", metavar="CODED",
                   help="a coded table the model was trained on (repeat for several); fits the novelty scorer "
                        "and saves it in the model folder")
    p.add_argument("--include-coder", action="append", dest="include_coders", metavar="NAME",
                   help="also count this coder of pre-coded output in --data (left out with a warning otherwise)")
    p.add_argument("--threshold", type=float, default=0.95,
                   help="novelty at or above which a segment is novel (default 0.95: less typical than 95%% of "
                        "the coded training segments)")
    p.add_argument("--review", type=float, default=0.8,
                   help="novelty from which segments are listed for review and grouped into candidate codes "
                        "(default 0.8; a candidate still needs one novel segment)")
    p.add_argument("--min-size", type=int, default=2, dest="min_size",
                   help="segments a candidate code needs (default 2)")
    p.add_argument("--clusters", type=int, help="group the novel segments into this many candidates (default: "
                                                "cut where groups become looser than the existing codes)")
    add_batch_size(p, "read and scored", "a batch and a few numbers per segment")
    add_input_options(p)
    add_force(p)
    p.set_defaults(func=_cmd_saturation)


def _cmd_saturation(args) -> int:
    from ..io import read_coded
    from ..model import CodingModel
    from ..saturation import NoveltyScorer, stream_saturation

    check_batch_size(args)
    check_outputs(args, {"--out": report_files(args.out, csv_codebook=True)},
                   [args.model, *(args.data or []), *input_paths(args.inputs)])
    model = CodingModel.load(args.model)
    coded = None
    if args.data:
        # pre-coded output is not the coders' work: left out unless named (as for train)
        coded = read_coded([Path(p) for p in args.data], codebook=model.codebook, encoding=args.encoding,
                           precoded="exclude", include_coders=args.include_coders or (),
                           speakers=speakers_of(args))
        scorer = NoveltyScorer(random_state=model.random_state, progress=progress_enabled(args))
        scorer.fit(model, coded)
        scorer.save(args.model)
        say(args, f"novelty scorer fitted on {scorer.n_calibration_} coded segments; saved in {args.model}")
    else:
        scorer = NoveltyScorer.load(args.model)
    scorer.set_params(progress=False)  # (one bar over the batches, not one per batch)
    inputs = checked_inputs(args, "check")
    report = stream_saturation(model, inputs, coded=coded, scorer=scorer, threshold=args.threshold,
                               min_size=args.min_size, n_clusters=args.clusters, review=args.review,
                               batch_size=args.batch_size, progress=progress_enabled(args))
    try:
        written = report.save(args.out, documents=inputs.documents or None)
    finally:
        report.scores.close()
    for a in report.answers():
        say(args, f"{a.question} {a.answer}")
    say(args, f"report -> {', '.join(map(str, written))}")
    return 0
