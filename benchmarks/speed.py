"""How fast is autocode on a CPU? Training and pre-coding with the default model; agreement statistics.

1. The default model (``CodingModel(codebook)``) on cail2019-elements (22,491 sentences, 701 documents):
   training time with its tuning, calibration and thresholds (every core); pre-coding segments/s on one core
   (the process pinned to one CPU, BLAS/OpenMP at one thread), against the same model with the pure-Python jieba
   segmenter in the same run (the baseline); where pre-coding time goes, stage by stage, through public calls.
2. Agreement statistics with bootstrap intervals (``measure_agreement``) on synthetic data: 20,000 segments in
   200 documents x 60 codes x 3 coders, 1,000 resamples of documents, one core; against a naive Python loop over
   resamples x codes with sklearn, krippendorff and statsmodels (a few resamples run, times scaled).

    python benchmarks/speed.py            # ~8 min on 2 cores (training on all of CAIL: ~5 min)
    python benchmarks/speed.py --quick    # ~20 s: 1/8 of CAIL, 2,000 synthetic segments, 100 resamples

Results: ``results/speed.md`` and ``.json`` (``speed-quick.*`` with ``--quick``).
"""

from __future__ import annotations

import time
import warnings
from itertools import combinations

import numpy as np
from _common import (
    CAIL,
    coding_model,
    finish,
    header,
    load,
    log,
    meta,
    one_core,
    parser,
    rows_of,
    write_result,
)

import autocode as ac
from autocode.model import make_inputs
from autocode.text import ChineseTokenizer


def best_of(fn, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


# -- 1. the default model ------------------------------------------------------------------------------------
def model_speed(book: ac.Codebook, coded: ac.CodedCorpus, base: dict) -> dict:
    res: dict = {"segments": len(coded), "documents": len(coded.documents), "codes": len(coded.used_codes())}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        res["train_seconds"], model = best_of(lambda: coding_model(book, base).fit(coded))
    res["train_folds"], res["codes_learned"] = model.n_splits, len(model.codes_)
    res["tuning_candidates"] = int(np.prod([len(t.get("candidates", {})) or 1 for t in model.tuning_.values()]))
    log(f"train: {res['train_seconds']:.1f} s for {len(coded)} segments")

    segments = coded.segments
    backend = model.backend_
    with one_core() as where:
        res["precode_affinity"] = where
        model.suggest(segments[:200])  # warm-up: dictionaries, OpenCC
        t, _ = best_of(lambda: model.suggest(segments), repeat=2)
        res["precode_seconds"], res["precode_segments_per_second"] = round(t, 2), round(len(segments) / t)
        log(f"pre-code (1 core, {backend.tokenizer.engine}): {len(segments) / t:,.0f} segments/s")

        # the baseline in the same run: the same fitted model with the pure-Python jieba segmenter (the backend
        # builds its tokenizer from its fitted engine_)
        own, trained = backend.tokenizer, backend.engine_
        backend.engine_ = "jieba"
        try:
            model.suggest(segments[:200])
            tj, _ = best_of(lambda: model.suggest(segments))
        finally:
            backend.engine_ = trained
        res["precode_segments_per_second_jieba"] = round(len(segments) / tj)
        log(f"pre-code (1 core, jieba): {len(segments) / tj:,.0f} segments/s")

        # stages, each a public call on all segments
        inputs = make_inputs(segments)
        jieba = ChineseTokenizer(**{**own.get_params(), "engine": "jieba"})
        jieba.words("预热")
        stages = {}
        stages["normalise (NFKC + OpenCC t2s)"], norm = best_of(lambda: [own.normalize(s) for s in inputs.texts])
        stages[f"word segmentation ({own.engine})"], _ = best_of(lambda: [own.words(s, normalized=True) for s in norm])
        stages["word segmentation (jieba, for comparison)"], _ = best_of(
            lambda: [jieba.words(s, normalized=True) for s in norm])
        stages["backend.encode (normalise + segment + count n-grams of the segment and its context)"], enc = \
            best_of(lambda: backend.encode(inputs))
        stages["backend.decision_function (TF-IDF weighting + linear scores)"], _ = best_of(
            lambda: backend.decision_function(enc))
        stages["model.predict_proba (all of the above + calibration)"], _ = best_of(
            lambda: model.predict_proba(segments))
    res["precode_stages_seconds"] = {k: round(v, 3) for k, v in stages.items()}
    return res


# -- 2. agreement statistics ------------------------------------------------------------------------------------
def synthetic(n_segments: int, n_docs: int, n_codes: int = 60, n_coders: int = 3, seed: int = 0):
    """Document of each segment; coders x segments x codes, each coder a shared truth with 3 % flipped."""
    rng = np.random.default_rng(seed)
    doc = np.sort(rng.integers(0, n_docs, n_segments))
    truth = rng.random((n_segments, n_codes)) < rng.uniform(0.01, 0.2, n_codes)
    return doc, np.stack([truth ^ (rng.random(truth.shape) < 0.03) for _ in range(n_coders)])


def agreement_speed(n_segments: int, n_docs: int, resamples: int, naive_resamples: int) -> dict:
    doc, x = synthetic(n_segments, n_docs)
    n_coders, _, n_codes = x.shape
    codes = [f"c{j:02d}" for j in range(n_codes)]
    segs = [ac.Segment(f"D{d:03d}", str(i), "字" * 20) for i, d in enumerate(doc)]
    res: dict = {"segments": n_segments, "documents": n_docs, "codes": n_codes, "coders": n_coders,
                 "resamples": resamples, "seconds": {}}
    sec = res["seconds"]
    t = time.perf_counter()
    corpus = ac.CodedCorpus(segs, {f"coder{k}": {s.key: {codes[j] for j in np.flatnonzero(x[k, i])}
                                                 for i, s in enumerate(segs)} for k in range(n_coders)})
    sec["build the CodedCorpus (not agreement)"] = time.perf_counter() - t
    with one_core():
        sec["measure_agreement end to end"], _ = best_of(lambda: ac.measure_agreement(corpus, n_bootstrap=resamples), 2)
        sec["measure_agreement end to end, character level"], _ = best_of(
            lambda: ac.measure_agreement(corpus, n_bootstrap=resamples, level="character"))
        # sparse coding (0-2 codes per segment, as in interview coding) has few distinct sets, as MASI alpha needs
        rng = np.random.default_rng(2)
        base = [set(rng.choice(codes, size=rng.integers(0, 3), replace=False)) for _ in segs]
        sparse = ac.CodedCorpus(segs, {f"coder{k}": {s.key: b if rng.random() > 0.1 else
                                                     set(rng.choice(codes, size=rng.integers(0, 3), replace=False))
                                                     for s, b in zip(segs, base)} for k in range(n_coders)})
        sec["measure_agreement end to end, sparse coding with MASI alpha"], _ = best_of(
            lambda: ac.measure_agreement(sparse, n_bootstrap=resamples), 2)
        res["naive_seconds_scaled"] = naive_loops(doc, x, resamples, naive_resamples)
    res["naive_resamples_run"] = naive_resamples
    log(f"measure_agreement: {sec['measure_agreement end to end']:.2f} s for {resamples} resamples")
    return res


def naive_loops(doc: np.ndarray, x: np.ndarray, resamples: int, run: int) -> dict[str, float]:
    """The baseline: one library call per resample x code (x pair), on ``run`` resamples, scaled to all."""
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa

    n_coders, _, n_codes = x.shape
    docs = np.unique(doc)
    members = [np.flatnonzero(doc == d) for d in docs]
    rng = np.random.default_rng(1)

    def timed(one) -> float:
        t = time.perf_counter()
        for _ in range(run):
            rows = np.concatenate([members[d] for d in rng.integers(0, len(docs), len(docs))])
            for j in range(n_codes):
                one(rows, j)
        return (time.perf_counter() - t) / run * resamples

    def fleiss(rows, j):
        k = x[:, rows, j].sum(axis=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            fleiss_kappa(np.stack([n_coders - k, k], axis=1))

    return {"sklearn cohen_kappa_score per code per pair": timed(
                lambda rows, j: [cohen_kappa_score(x[a, rows, j], x[b, rows, j])
                                 for a, b in combinations(range(n_coders), 2)]),
            "krippendorff.alpha per code": timed(
                lambda rows, j: krippendorff.alpha(reliability_data=x[:, rows, j].astype(float),
                                                   level_of_measurement="nominal")),
            "statsmodels fleiss_kappa per code": timed(fleiss)}


def markdown(res: dict) -> list[str]:
    md, ag = res["model"], res["agreement_statistics"]
    total = ag["seconds"]["measure_agreement end to end"]
    return [
        f"## 1. The default model on {CAIL}", "",
        f"{md['segments']:,} segments in {md['documents']} documents, {md['codes']} codes ({md['codes_learned']} "
        "learned).", "", "| what | figure |", "|---|---|",
        f"| training, all cores ({md['tuning_candidates']} tuning candidate(s) x {md['train_folds']} grouped folds "
        f"+ final fit, calibration and thresholds included) | {md['train_seconds']:.1f} s |",
        f"| pre-coding, 1 core (`model.suggest`) | {md['precode_segments_per_second']:,} segments/s |",
        f"| pre-coding, 1 core, pure-Python jieba (baseline, same run) | "
        f"{md['precode_segments_per_second_jieba']:,} segments/s |", "",
        f"Pre-coding {md['precode_affinity']}. Where pre-coding time goes (seconds for all segments, 1 core):", "",
        "| stage | seconds |", "|---|---|", *(f"| {k} | {v} |" for k, v in md["precode_stages_seconds"].items()), "",
        "## 2. Agreement statistics", "",
        f"Synthetic: {ag['segments']:,} segments in {ag['documents']} documents x {ag['codes']} codes x "
        f"{ag['coders']} coders, {ag['resamples']:,} bootstrap resamples of documents, one core (best of 2).", "",
        "| step | seconds |", "|---|---|", *(f"| {k} | {v:.3f} |" for k, v in ag["seconds"].items()), "",
        f"Naive baseline: a Python loop over resamples x codes, {ag['naive_resamples_run']} resample(s) run, times "
        f"scaled to {ag['resamples']:,}:", "", "| loop | seconds (scaled) | vs measure_agreement end to end |",
        "|---|---|---|", *(f"| {k} | {v:,.1f} | {v / total:,.0f}x |" for k, v in ag["naive_seconds_scaled"].items()), ""]


def main(argv=None) -> int:
    ap = parser(__doc__)
    ap.add_argument("--resamples", type=int, default=None, help="bootstrap resamples (default 1000; 100 with --quick)")
    args = ap.parse_args(argv)
    m = meta("speed.py", argv)
    book, coded = load(args.data_dir, CAIL)
    if args.quick:
        docs = coded.documents[: max(6, len(coded.documents) // 8)]
        coded = coded.subset(rows_of(coded, set(docs)))
    res = {"model": model_speed(book, coded, args.base)}
    n, docs, resamples = (2_000, 40, 100) if args.quick else (20_000, 200, 1000)
    res["agreement_statistics"] = agreement_speed(n, docs, args.resamples or resamples, 1 if args.quick else 3)
    # flat keys kept for readers of earlier speed.json files
    res.update({k: res["model"][k] for k in ("train_seconds", "precode_segments_per_second",
                                             "precode_segments_per_second_jieba", "precode_stages_seconds")})
    finish(m)
    lines = header("Speed on a CPU" + (" (quick run)" if args.quick else ""), m)
    lines += [f"Model: `CodingModel(codebook)` with the library defaults, except {args.base}.", ""] if args.base else []
    lines += markdown(res)
    write_result(args.out_dir, "speed-quick" if args.quick else "speed", m, lines, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
