"""``autocode train`` and ``autocode evaluate``: learn a model; cross-validate it against the coders."""

from __future__ import annotations

import warnings
from pathlib import Path

from ..exceptions import AutocodeWarning
from ._common import (
    Formatter,
    add_backend_options,
    add_data_options,
    add_force,
    backend_params,
    check_outputs,
    progress_enabled,
    read_training_data,
    save_model,
    say,
    speakers_of,
)

TRAIN_HELP = """\
Learn a coding model from hand-coded segments and save it to a folder.

example:
  autocode train --codebook codebook.csv --data coded.csv --out model/
  autocode train --codebook codebook.csv --data coder_E.csv coder_A.csv --target majority --out model/
  autocode train --data project.qdpx --out model/          (codebook and codings from a REFI-QDA project)
  autocode train --codebook codebook.csv --out model/       (no coded data yet: the codebook-only model,
                                                             backend codebook.v1; scores rank codes, see README)
  autocode train --codebook codebook.csv --transcripts interviews/ --out model/   (the same, with the study's
                                                             transcripts to weigh characters by)
  autocode train --codebook codebook.csv --data coded.csv --rules rules.csv --out model/

Coding rules (--rules, or the codebook's 'rules' column; see 'autocode rules') are saved with the model:
'autocode precode' shows their matches beside the suggestions (the 'rules' column), and with
--backend-param rules_weight=1 the model also learns from them as features.
"""


def add_train(sub):
    p = sub.add_parser("train", help="learn a model from hand-coded segments", description=TRAIN_HELP,
                       formatter_class=Formatter)
    p.add_argument("--codebook", help="codebook .csv/.xlsx (id,name,description,parent) or a REFI-QDA .qdc codebook")
    p.add_argument("--data", nargs="+",
                   help="coded table(s) (.csv/.xlsx/.jsonl): document,segment,speaker,text,coder,codes (or a .qdpx "
                        "project); without it, a model from the codebook alone")
    add_data_options(p)
    p.add_argument("--target", default="union",
                   help="whose coding to learn: union (default), majority, or a coder's name")
    add_backend_options(p)
    p.add_argument("--guide", metavar="GUIDE",
                   help="the interview guide: its questions one per line (.txt/.md/.docx, or a .csv with a 问题 or "
                        "question column); where each turn stands in it becomes evidence for the codes")
    p.add_argument("--transcripts", nargs="+", metavar="INPUT",
                   help="the study's transcripts (or tables, folders, projects), uncoded: the codebook prior "
                        "weighs characters by how rare they are in them (without --data, or with --backend "
                        "codebook.v1, whose model keeps the codebook alone where the blend does not beat it)")
    p.add_argument("--min-examples", type=int, default=3, help="codes with fewer coded segments are not learned")
    p.add_argument("--folds", type=int, default=5, help="grouped folds used to calibrate scores and thresholds")
    p.add_argument("--seed", type=int, default=0, help="random seed (folds, backend)")
    p.add_argument("--no-tune", action="store_true", dest="no_tune",
                   help="keep the backend's data-dependent settings (tfidf: context weight 1, category-first "
                        "scoring on) at their defaults instead of choosing them by out-of-fold kappa (several "
                        "times faster training)")
    p.add_argument("--tune-segments", type=int, default=4000, dest="tune_segments", metavar="N",
                   help="above N training segments, compare the tuning candidates on a sample of whole documents "
                        "(about N segments; default 4000; 0 = on every segment)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--rules", help="coding rules table (code,pattern[,kind,speaker,heading]) to save with the model "
                                   "(default: the codebook CSV's 'rules' column, if it has one)")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--review", metavar="REVIEWED",
                   help="a reviewed pre-coding: a table with an 'accept' column, or a .qdpx reviewed in a QDA tool "
                        "(with --precoded): accepted suggestions are positives, rejected ones negatives")
    p.add_argument("--precoded", help="the pre-coded .qdpx a reviewed .qdpx came from")
    add_force(p)
    p.set_defaults(func=_cmd_train, backend=None)  # tfidf.v1 with --data, codebook.v1 without


def _cmd_train(args) -> int:
    from ..exceptions import AutocodeError
    from ..model import CodingModel

    if args.tune_segments < 0:
        raise AutocodeError(f"--tune-segments must be 0 (every segment) or more; got {args.tune_segments}.")
    params = backend_params(args)
    if args.guide:
        from ..guide import GUIDE_WEIGHT, read_guide

        params = {"guide_weight": GUIDE_WEIGHT, **(params or {}), "guide": read_guide(args.guide)}
    out = Path(args.out)
    check_outputs(args, {"--out": [out, out / "model.json", out / "arrays.npz", out / "checksums.json"]},
                   [*(args.data or []), *([args.codebook] if args.codebook else []),
                    *([args.guide] if args.guide else []), *([args.review] if args.review else []),
                    *([args.precoded] if args.precoded else []), *([args.rules] if args.rules else []),
                    *(args.transcripts or [])],
                   folder=True)
    if not args.data:
        return _train_from_codebook(args, params, out)
    if args.transcripts and args.backend != "codebook.v1":
        raise AutocodeError("--transcripts is for the codebook prior: a model from the codebook alone (train without "
                            "--data) or --backend codebook.v1; otherwise leave it out.")
    book, coded = read_training_data(args)
    say(args, f"read {coded}")
    rules = _rules(args, book)
    if rules is not None:
        say(args, f"read {rules}")
    model = CodingModel(book, args.backend or "tfidf.v1", target=args.target, min_examples=args.min_examples,
                        n_splits=args.folds, random_state=args.seed, backend_params=params,
                        tune=not args.no_tune, tune_segments=args.tune_segments or None, rules=rules,
                        progress=progress_enabled(args))
    review = None
    if args.review:
        from ..io.review import read_review

        review = read_review(args.review, precoded=args.precoded, codebook=book, encoding=args.encoding)
        say(args, f"read {review}")
    transcripts = None
    if args.transcripts:
        from ..io.inputs import read_inputs

        transcripts, _ = read_inputs(args.transcripts, encoding=args.encoding, speakers=speakers_of(args))
    model.fit(coded, review=review, transcripts=transcripts)
    save_model(model, args.out)  # first: a report line that fails cannot lose the fitted model
    say(args, f"learned {len(model.codes_)} codes from {model.n_train_segments_} segments "
               f"({model.n_train_documents_} documents); saved to {args.out}")
    for key, t in model.tuning_.items():
        tried = ", ".join(f"{v} -> kappa {k:.3f}" for v, k in t["candidates"].items())
        sample = f", compared on {t['segments']} of the {model.n_train_segments_} segments" if "segments" in t else ""
        say(args, f"{key} chosen by out-of-fold kappa: {t['chosen']} ({tried}{sample})")
    if model.rare_codes_:
        say(args, f"not learned (too few examples): {', '.join(model.rare_codes_)}")
    return 0


def _train_from_codebook(args, params, out: Path) -> int:
    from ..codebook import Codebook
    from ..exceptions import AutocodeError
    from ..model import CodingModel

    if args.review or not args.codebook:
        raise AutocodeError("train without --data needs --codebook (a model from the codebook alone) and takes no "
                            "--review; give the coded tables with --data to learn from them.")
    transcripts = None
    if args.transcripts:
        from ..io.inputs import read_inputs

        transcripts, _ = read_inputs(args.transcripts, encoding=args.encoding, speakers=speakers_of(args))
    if Path(args.codebook).suffix.lower() in (".qdc", ".qde", ".qdpx"):
        from ..io.qdpx import read_qdc

        book = read_qdc(args.codebook)
    else:
        book = Codebook.read_csv(args.codebook, encoding=args.encoding)
    model = CodingModel(book, args.backend or "codebook.v1", random_state=args.seed, backend_params=params,
                        rules=_rules(args, book), progress=progress_enabled(args)).fit(transcripts=transcripts)
    save_model(model, out)
    say(args, f"{len(model.codes_)} codes scored from the codebook alone ({model.backend_.encoder_} similarity, "
              f"not calibrated on coded data); saved to {out}")
    return 0


def _rules(args, book):
    """The rules of ``--rules``, else of the codebook CSV's ``rules`` column; None when there are none."""
    from ..rules import RuleSet, read_rules

    if args.rules:
        return read_rules(args.rules, book, encoding=args.encoding)
    if args.codebook and Path(args.codebook).suffix.lower() in (".csv", ".tsv"):
        rules = RuleSet.from_codebook_csv(args.codebook, book, encoding=args.encoding)
        return rules if len(rules) else None
    return None


EVALUATE_HELP = """\
Cross-validate a model grouped by document and compare it with the human coders.

Each fold holds out whole documents; the report gives per-code precision, recall, F1 and Cohen's kappa of the
model against each coder, beside the human-human kappa on the same segments, pooled and per code.

example:
  autocode evaluate --codebook codebook.csv --data coded.csv --folds 5 --out report.md
"""


def add_evaluate(sub):
    p = sub.add_parser("evaluate", help="grouped cross-validation: model-human vs human-human agreement",
                       description=EVALUATE_HELP, formatter_class=Formatter)
    p.add_argument("--codebook", help="codebook .csv/.xlsx: id,name,description,parent")
    p.add_argument("--data", nargs="+", required=True, help="coded table(s) or a .qdpx project")
    add_data_options(p)
    p.add_argument("--folds", type=int, default=5, help="outer folds, grouped by document")
    p.add_argument("--target", default="union", help="whose coding to learn: union, majority, or a coder's name")
    add_backend_options(p)
    p.add_argument("--guide", metavar="GUIDE",
                   help="the interview guide: its questions one per line (.txt/.md/.docx, or a .csv with a 问题 or "
                        "question column); where each turn stands in it becomes evidence for the codes")
    p.add_argument("--min-examples", type=int, default=3, dest="min_examples",
                   help="codes with fewer coded segments are not learned")
    p.add_argument("--seed", type=int, default=0, help="random seed (folds, backend)")
    p.add_argument("--no-tune", action="store_true", dest="no_tune",
                   help="keep the backend's data-dependent settings at their defaults (as train --no-tune)")
    p.add_argument("--encoding", help="encoding of the input files (default: detect UTF-8, GB18030/GBK or Big5)")
    p.add_argument("--out", help="write the report here (.md, .html or .json); printed when omitted")
    add_force(p)
    p.set_defaults(func=_cmd_evaluate)


def _cmd_evaluate(args) -> int:
    import json

    from .._files import write_text
    from ..evaluate import cross_validate
    from ..model import CodingModel

    if args.out:
        check_outputs(args, {"--out": [Path(args.out)]},
                       [*(args.data or []), *([args.codebook] if args.codebook else [])])
    book, coded = read_training_data(args)
    model = CodingModel(book, args.backend, target=args.target, min_examples=args.min_examples,
                        n_splits=args.folds, random_state=args.seed, backend_params=backend_params(args),
                        tune=not args.no_tune)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        cv = cross_validate(model, coded, n_splits=args.folds, random_state=args.seed,
                            progress=progress_enabled(args))
    if args.out and args.out.endswith(".json"):
        write_text(args.out, json.dumps(cv.to_dict(), ensure_ascii=False, indent=1))
    elif args.out and args.out.lower().endswith((".html", ".htm")):
        from ..io._markdown import markdown_page

        write_text(args.out, markdown_page(cv.to_markdown(), "autocode evaluate"))
    elif args.out:
        write_text(args.out, cv.to_markdown())
    else:
        print(cv.to_markdown())
    pooled = ", ".join(f"{k} {v['kappa']:.3f}" for k, v in cv.pooled.items())
    say(args, f"pooled kappa: {pooled}" + (f"; report -> {args.out}" if args.out else ""))
    return 0
