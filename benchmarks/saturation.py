"""Leave-codes-out benchmark of autocode.saturation: does the novelty score find the segments of codes the model
never saw, and do the candidate codes recover them?

Protocol (per data set):

* documents are split into grouped folds; each fold in turn is the held-out third of the interviews;
* some codes are hidden: every segment that carries a hidden code is removed from the training documents (the
  concept had not been seen), the model and the novelty scorer are fitted on what is left;
* on the held-out documents, eligible segments (not the interviewer's, long enough) that carry a hidden code are
  the positives; negatives are eligible segments coded only with known codes ("vs coded") or every other
  eligible segment, uncoded talk included ("vs all");
* scores compared in the same run: the novelty score (all three signals), each signal alone, and the baseline
  ``1 - max calibrated model score``;
* metrics: AUROC, precision at k = number of positives (R-precision), precision and recall at novelty >= 0.95;
  clusters: purity and adjusted Rand index of the candidate codes over the flagged positives (labels: the
  hidden code; the first in codebook order when a segment has several), and of the clustering of all positives
  (grouping quality given perfect detection).

misleading-photos-dev: each of the 7 code groups hidden in turn, 3 folds (21 runs).
cail2019-elements: a seeded sample of documents per domain; per run 2 codes of each domain hidden (codes with at
least 50 segments, drawn at random), 3 folds.

Run: python benchmarks/saturation.py [--quick]  -> benchmarks/results/saturation.{md,json,png}
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, roc_auc_score

import autocode as ac
from autocode.model import grouped_folds
from autocode.saturation import COMPONENTS, NoveltyScorer, _cluster, propose_codes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"
DUMP = Path(os.environ["SATURATION_DUMP"]) if os.environ.get("SATURATION_DUMP") else None
# the default scorer, and all three signals with the knn signal to coded segments only
VARIANTS = {"default": {}, "three_signals": {"components": COMPONENTS, "reference": "coded"}}
SCORES = ["novelty", "novelty_three_signals", "baseline", "centroid", "knn_coded", "knn_all"]


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def purity(labels, clusters) -> float:
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    total = 0
    for c in np.unique(clusters):
        _, counts = np.unique(labels[clusters == c], return_counts=True)
        total += counts.max()
    return total / len(labels)


def precision_at_k(score, y, k) -> float:
    order = np.argsort(-score, kind="stable")[:k]
    return float(y[order].mean()) if k else float("nan")


def detection(s, pos, known, ttarget, book, hidden, scorer) -> dict:
    """Flagging and clustering figures of one novelty scoring."""
    el = s.eligible
    flagged = s.novel
    nf = int(flagged.sum())
    res = {"flagged": nf, "precision_at_0.95_vs_all": float(pos[flagged].mean()) if nf else float("nan"),
           "recall_at_0.95": float((flagged & pos).sum() / (el & pos).sum()),
           "positive_rate_of_known_at_0.95": float((flagged & known).sum() / (el & known).sum())}
    order = [c for c in book.ids if c in hidden]

    def label(i):
        codes = ttarget[i] or frozenset()
        hid = [c for c in order if c in codes]
        return hid[0] if hid else "other"

    cands = propose_codes(s, book, scorer, min_size=1)
    res["clusters"] = len(cands)
    res["clusters_min2"] = sum(c.size >= 2 for c in cands)
    fp = np.flatnonzero(flagged & pos)
    if len(fp) >= 2:  # how the candidate codes split the hidden-code segments that were found
        cl = np.full(len(s), -1)
        for k, c in enumerate(cands):
            cl[c.members] = k
        labs = [label(i) for i in fp]
        res["flagged_purity"] = purity(labs, cl[fp])
        res["flagged_ari"] = float(adjusted_rand_score(labs, cl[fp]))
    pidx = np.flatnonzero(el & pos)
    if len(pidx) >= 2:
        plabs = [label(i) for i in pidx]
        pcl = _cluster(s.embedding[pidx], scorer.cluster_distance_, None)
        res["oracle_clusters"] = int(len(np.unique(pcl)))
        res["oracle_purity"] = purity(plabs, pcl)
        res["oracle_ari"] = float(adjusted_rand_score(plabs, pcl))
        res["hidden_codes_present"] = len(set(plabs))
    return res


def one_run(book, coded, train_docs, test_docs, hidden, *, n_splits=5, seed=0) -> dict:
    target = coded.target_codings("union")
    docs = np.array([s.document for s in coded.segments])
    has_hidden = np.array([bool(c and (c & hidden)) for c in target])
    train_rows = np.isin(docs, list(train_docs)) & ~has_hidden
    test_rows = np.isin(docs, list(test_docs))
    train = coded.subset(train_rows)
    test = coded.subset(test_rows)
    t0 = time.time()
    scored = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ac.CodingModel(book, n_splits=n_splits, random_state=seed).fit(train)
        t_model = time.time() - t0
        for name, params in VARIANTS.items():
            scorer = NoveltyScorer(n_splits=n_splits, random_state=seed, **params).fit(model, train)
            scored[name] = (scorer, scorer.score(model, test.segments))
    t_scorer = (time.time() - t0 - t_model) / len(VARIANTS)
    scorer, s = scored["default"]
    s3 = scored["three_signals"][1]
    ttarget = test.target_codings("union")
    el = s.eligible
    pos = np.array([bool(c and (c & hidden)) for c in ttarget])
    known = np.array([bool(c) and not (c & hidden) for c in ttarget])
    P_best = s.best_score
    score_of = {"novelty": np.nan_to_num(s.novelty, nan=0.0),
                "novelty_three_signals": np.nan_to_num(s3.novelty, nan=0.0), "baseline": 1 - P_best,
                "centroid": s3.components[:, 1], "knn_coded": s3.components[:, 2], "knn_all": s.components[:, 2]}
    res = {"n_train": int(train_rows.sum()), "n_test_eligible": int(el.sum()), "n_pos": int((el & pos).sum()),
           "n_known": int((el & known).sum()), "min_chars": scorer.min_chars_, "seconds_model": round(t_model, 1),
           "seconds_scorer": round(t_scorer, 1), "scores": {}}
    if DUMP:  # raw signals for offline analysis (not part of the report)
        DUMP.mkdir(parents=True, exist_ok=True)
        np.savez(DUMP / f"run{len(list(DUMP.glob('*.npz'))):03d}.npz", signals=s.components, eligible=el, pos=pos,
                 known=known, calibration=scorer.calibration_signals_, baseline=1 - P_best,
                 signals3=s3.components, calibration3=scored["three_signals"][0].calibration_signals_)
    if res["n_pos"] == 0 or res["n_known"] == 0:
        return res
    for name, sc in score_of.items():
        r = {}
        for neg_name, neg in (("coded", known), ("all", ~pos)):
            rows = el & (pos | neg)
            r[f"auroc_vs_{neg_name}"] = float(roc_auc_score(pos[rows], sc[rows]))
            r[f"p_at_k_vs_{neg_name}"] = precision_at_k(sc[rows], pos[rows], int(pos[rows].sum()))
        res["scores"][name] = r
    res["by_variant"] = {name: detection(sr, pos, known, ttarget, book, hidden, sc_)
                         for name, (sc_, sr) in scored.items()}
    return res


def log(*head) -> None:
    r = head[-1]
    print(*head[:-1], json.dumps({k: v for k, v in r.items() if k not in ("scores", "hidden")}),
          {k: round(v["auroc_vs_coded"], 3) for k, v in r["scores"].items()}, flush=True)


def misleading(quick: bool) -> dict:
    root = DATA / "misleading-photos-dev"
    book = ac.Codebook.read_csv(root / "codebook.csv")
    coded = ac.read_coded(root / "coded.csv", codebook=book)
    folds = grouped_folds(coded.groups, 3, random_state=0)
    docs = np.array([s.document for s in coded.segments])
    runs = []
    groups = book.roots[:2] if quick else book.roots
    for g in groups:
        hidden = frozenset(book.children(g))
        for f, (tr, te) in enumerate(folds[:1] if quick else folds):
            r = one_run(book, coded, set(docs[tr]), set(docs[te]), hidden)
            r.update(hidden=g, fold=f)
            log("misleading", g, f, r)
            runs.append(r)
    return {"data": "misleading-photos-dev", "segments": len(coded), "documents": len(coded.documents),
            "runs": runs}


def cail(quick: bool, docs_per_domain: int, n_runs: int) -> dict:
    root = DATA / "cail2019-elements"
    book = ac.Codebook.read_csv(root / "codebook.csv")
    coded = ac.read_coded(root / "coded.csv", codebook=book)
    rng = np.random.default_rng(0)
    keep_docs = []
    for dom in book.roots:
        ds = [d for d in coded.documents if d.startswith(dom + "-")]
        keep_docs += list(rng.choice(ds, size=min(docs_per_domain, len(ds)), replace=False))
    docs = np.array([s.document for s in coded.segments])
    coded = coded.subset(np.isin(docs, keep_docs))
    docs = np.array([s.document for s in coded.segments])
    counts = coded.code_counts()
    folds = grouped_folds(coded.groups, 3, random_state=0)
    runs = []
    for run in range(n_runs):
        hidden = set()
        for dom in book.roots:
            cands = [c for c in book.children(dom) if counts[c] >= 50]
            hidden |= set(rng.choice(cands, size=2, replace=False).tolist())
        hidden = frozenset(hidden)
        for f, (tr, te) in enumerate(folds[:1] if quick else folds):
            r = one_run(book, coded, set(docs[tr]), set(docs[te]), hidden, n_splits=3)
            r.update(hidden=sorted(hidden), fold=f, run=run)
            log("cail", run, f, r)
            runs.append(r)
    return {"data": "cail2019-elements", "segments": len(coded), "documents": len(coded.documents),
            "docs_per_domain": docs_per_domain, "runs": runs}


def summarise(result: dict) -> dict:
    runs = [r for r in result["runs"] if r["scores"]]
    out = {}
    for name in SCORES:
        out[name] = {m: float(np.mean([r["scores"][name][m] for r in runs]))
                     for m in ("auroc_vs_coded", "auroc_vs_all", "p_at_k_vs_coded", "p_at_k_vs_all")}
    extra = {}
    for ref in VARIANTS:
        e = {}
        for m in ("precision_at_0.95_vs_all", "recall_at_0.95", "positive_rate_of_known_at_0.95", "flagged",
                  "flagged_purity", "flagged_ari", "oracle_purity", "oracle_ari", "clusters", "oracle_clusters",
                  "hidden_codes_present"):
            vals = [r["by_variant"][ref][m] for r in runs if m in r["by_variant"][ref]]
            vals = [v for v in vals if not np.isnan(v)]
            e[m] = float(np.mean(vals)) if vals else float("nan")
            e[m + "_runs"] = len(vals)
        extra[ref] = e
    return {"scores": out, "other": extra, "n_runs": len(runs)}


def plot(results: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(results))
    for ax, res in zip(np.atleast_1d(axes), results):
        summ = res["summary"]["scores"]
        x = np.arange(len(SCORES))
        ax.bar(x - 0.2, [summ[s]["auroc_vs_coded"] for s in SCORES], 0.4, label="vs coded segments")
        ax.bar(x + 0.2, [summ[s]["auroc_vs_all"] for s in SCORES], 0.4, label="vs all eligible")
        ax.axhline(0.5, ls="--", color="grey")
        ax.set_xticks(x, SCORES, rotation=30, fontsize=7)
        ax.set_ylim(0.3, 1)
        ax.set_ylabel("AUROC, hidden-code segments")
        ax.set_title(res["data"])
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)


def markdown(results: list[dict], meta: dict) -> str:
    lines = ["# Saturation: leave-codes-out benchmark", "",
             f"Machine: {meta['machine']} ({meta['cpus']} CPUs, shared with other jobs), autocode {ac.__version__}, "
             f"{meta['seconds']:.0f} s in all. Produced by `python benchmarks/saturation.py`.", "",
             "Protocol: each grouped fold in turn is the held-out third of the documents; the segments of the "
             "hidden codes are removed from the training documents; positives = eligible held-out segments with a "
             "hidden code. 'vs coded': negatives are held-out segments coded only with known codes; 'vs all': "
             "every other eligible segment, uncoded ones included. P@k: precision among the k most novel, "
             "k = number of positives. Scores: `novelty` = the default novelty score (`NoveltyScorer()`: model and "
             "knn signals, knn to every eligible training segment); `novelty_three_signals` = model, centroid "
             "and knn to coded training segments (`NoveltyScorer(components=COMPONENTS, reference='coded')`); "
             "`baseline` = 1 - max calibrated model score (the `model` signal alone); `centroid`, `knn_coded`, "
             "`knn_all` = one signal alone.", "", "![AUROC](saturation.png)", ""]
    for res in results:
        s = res["summary"]
        lines += [f"## {res['data']}", "",
                  f"{res['segments']} segments, {res['documents']} documents; {s['n_runs']} runs "
                  f"({res['design']}). Means over runs.", "",
                  "| score | AUROC vs coded | AUROC vs all | P@k vs coded | P@k vs all |", "|---|---|---|---|---|"]
        for name in SCORES:
            m = s["scores"][name]
            lines.append(f"| {name} | {m['auroc_vs_coded']:.3f} | {m['auroc_vs_all']:.3f} | "
                         f"{m['p_at_k_vs_coded']:.3f} | {m['p_at_k_vs_all']:.3f} |")
        lines += ["", "At novelty >= 0.95, and the candidate codes (clusters of the flagged segments; purity and "
                  "ARI over the flagged hidden-code segments, labelled by their hidden code) and the clustering of "
                  "all positives (as if detection were perfect):", "",
                  "| scorer | flagged | precision (vs all) | recall | known-code segments flagged | "
                  "clusters | purity | ARI | positives: clusters / hidden codes | positives: purity | "
                  "positives: ARI |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for ref in VARIANTS:
            o = s["other"][ref]
            lines.append(
                f"| {ref} | {o['flagged']:.1f} | {o['precision_at_0.95_vs_all']:.3f} | {o['recall_at_0.95']:.3f} | "
                f"{o['positive_rate_of_known_at_0.95']:.3f} | {o['clusters']:.1f} | {o['flagged_purity']:.3f} "
                f"({o['flagged_purity_runs']} runs) | {o['flagged_ari']:.3f} | {o['oracle_clusters']:.1f} / "
                f"{o['hidden_codes_present']:.1f} | {o['oracle_purity']:.3f} | {o['oracle_ari']:.3f} |")
        lines += ["", "Per run (AUROC vs coded):", "",
                  "| hidden | fold | positives | novelty | novelty_three_signals | baseline |", "|---|---|---|---|---|---|"]
        for r in res["runs"]:
            if r["scores"]:
                h = r["hidden"] if isinstance(r["hidden"], str) else " ".join(r["hidden"])
                sc = r["scores"]
                lines.append(f"| {h} | {r['fold']} | {r['n_pos']} | {sc['novelty']['auroc_vs_coded']:.3f} | "
                             f"{sc['novelty_three_signals']['auroc_vs_coded']:.3f} | "
                             f"{sc['baseline']['auroc_vs_coded']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few runs only (smoke test)")
    ap.add_argument("--cail-docs", type=int, default=100, help="documents sampled per CAIL domain")
    ap.add_argument("--cail-runs", type=int, default=2, help="hidden-code draws on CAIL")
    ap.add_argument("--only", choices=["misleading", "cail"])
    args = ap.parse_args()
    t0 = time.time()
    results = []
    if args.only in (None, "misleading"):
        r = misleading(args.quick)
        r["design"] = "each of the 7 code groups hidden in turn x 3 folds"
        results.append(r)
    if args.only in (None, "cail"):
        r = cail(args.quick, args.cail_docs, args.cail_runs)
        r["design"] = (f"{args.cail_docs} documents per domain; {args.cail_runs} draws of 2 hidden codes per domain "
                       "x 3 folds")
        results.append(r)
    for r in results:
        r["summary"] = summarise(r)
    meta = {"machine": machine(), "cpus": os.cpu_count(), "seconds": time.time() - t0}
    OUT.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if args.quick else ""
    (OUT / f"saturation{suffix}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1,
                                                             ensure_ascii=False), encoding="utf-8")
    plot(results, OUT / f"saturation{suffix}.png")
    (OUT / f"saturation{suffix}.md").write_text(markdown(results, meta).replace(
        "saturation.png", f"saturation{suffix}.png"), encoding="utf-8")
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
