"""``autocode agree``: agreement between coders (and a model's pre-coding)."""

from __future__ import annotations

from pathlib import Path

from ._common import (
    Formatter,
    add_force,
    check_outputs,
    report_files,
    say,
    say_stage,
)

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


def add_agree(sub):
    p = sub.add_parser("agree", help="agreement between coders and with the model", description=AGREE_HELP,
                       formatter_class=Formatter)
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
    add_force(p)
    p.set_defaults(func=_cmd_agree)


def _cmd_agree(args) -> int:
    from ..codebook import Codebook
    from ..io import read_coded
    from ..io.inputs import TABLES
    from ..io.table import read_texts
    from ..reliability import measure_agreement

    outputs = {"--out": report_files(args.out)}
    if args.disagreements:
        outputs["--disagreements"] = [Path(args.disagreements)]
    check_outputs(args, outputs, [*args.files, *([args.codebook] if args.codebook else [])])
    book = None
    if args.codebook and Path(args.codebook).suffix.lower() in (".qdc", ".qde", ".qdpx"):
        from ..io.qdpx import read_qdc

        book = read_qdc(args.codebook)  # a REFI-QDA codebook (or a project's codebook)
    elif args.codebook:
        book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    # the segments' texts are read again for the disagreements listed (a table's), unless their lengths count
    say_stage(args, f"reading {', '.join(str(f) for f in args.files)} ...")
    coded = read_coded(args.files, codebook=book, encoding=args.encoding, texts=args.level == "character")
    say_stage(args, f"{len(coded):,} segments in {len(coded.documents):,} documents, coders "
                    f"{', '.join(coded.coders)}; measuring agreement ({args.bootstrap:,} bootstrap resamples of the documents) ...")
    report = measure_agreement(coded, coders=args.coders, models=args.models, by=args.by, level=args.level,
                               uncoded="drop" if args.drop_uncoded else "keep", n_bootstrap=args.bootstrap,
                               confidence=args.confidence, random_state=args.seed)
    tables = [Path(f) for f in args.files]
    if args.level != "character" and all(p.suffix.lower() in TABLES for p in tables):
        say_stage(args, f"{len(report.disagreements):,} disagreements; their texts are read again from the table as "
                        "they are written ...")
        report.disagreements.read_texts_with(lambda keys: read_texts(tables, keys, encoding=args.encoding))
    report.write(args.out)
    if args.disagreements:
        report.write_disagreements(args.disagreements)
    pooled = ", ".join(f"{r['coders']} {r['value']:.3f}" for r in report.rows
                       if r["statistic"] == "cohen_kappa" and r["scope"] == "pooled")
    say(args, f"pooled Cohen's kappa: {pooled}; {len(report.disagreements)} disagreements; report -> {args.out}")
    return 0
