"""Speed of autocode's agreement statistics with bootstrap intervals, on one core, against a naive loop.

Synthetic data: 20,000 segments in 200 documents x 60 codes x 3 coders (each coder = a shared "truth" with 3 %
of decisions flipped), 1,000 bootstrap resamples of documents; and the same size with sparse coding (0-2 codes per
segment) for MASI alpha, which needs few distinct sets of codes. Writes benchmarks/results/agreement_speed.md
and .json. Not a test: run it by hand.

    python benchmarks/agreement_speed.py [--resamples 1000] [--naive-resamples 3]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, set before numpy loads
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from itertools import combinations  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

import autocode  # noqa: E402
from autocode import CodedCorpus, Segment  # noqa: E402
from autocode.agreement import AgreementSums  # noqa: E402
from autocode.reliability import measure_agreement  # noqa: E402

N_SEGMENTS, N_CODES, N_CODERS, N_DOCS = 20_000, 60, 3, 200
RESULTS = Path(__file__).resolve().parent / "results"


def synthetic(seed: int = 0):
    rng = np.random.default_rng(seed)
    doc = np.sort(rng.integers(0, N_DOCS, N_SEGMENTS))
    prevalence = rng.uniform(0.01, 0.2, N_CODES)
    truth = rng.random((N_SEGMENTS, N_CODES)) < prevalence
    x = np.stack([truth ^ (rng.random(truth.shape) < 0.03) for _ in range(N_CODERS)])
    return doc, x


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), "?")
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "?"
    return f"{model}, {os.cpu_count()} cores visible (CPU sandbox), 1 thread used; Python {platform.python_version()}, " \
           f"numpy {np.__version__}, {platform.system()} {platform.machine()}"


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--naive-resamples", type=int, default=3, help="resamples actually run by the naive loops")
    args = ap.parse_args()
    b = args.resamples
    doc, x = synthetic()
    results: dict = {"machine": machine(), "autocode": autocode.__version__, "segments": N_SEGMENTS,
                     "codes": N_CODES, "coders": N_CODERS, "documents": N_DOCS, "resamples": b, "seconds": {}}
    sec = results["seconds"]

    # -- vectorised: per-document sums once, then every resample is a weighted sum of them -----------------
    ratings = np.stack([~x, x], axis=-1)  # (coders, segments, codes, 2), everyone coded everything
    to_doc = sp.csr_matrix((np.ones(N_SEGMENTS), (doc, np.arange(N_SEGMENTS))), shape=(N_DOCS, N_SEGMENTS))
    sec["per-document sums (once)"] = best_of(lambda: AgreementSums.from_ratings(ratings, into=to_doc))
    sums = AgreementSums.from_ratings(ratings, into=to_doc)
    weights = np.random.default_rng(0).multinomial(N_DOCS, np.full(N_DOCS, 1 / N_DOCS), size=b)
    sec[f"resample the sums ({b} bootstrap resamples)"] = best_of(lambda: sums.reweight(weights))
    boot = sums.reweight(weights)
    pooled = boot.sum(axis=1)
    stats = {
        "Cohen's kappa (3 pairs)": lambda s: s.cohen_kappa(),
        "percent agreement": lambda s: s.percent_agreement(),
        "Krippendorff's alpha": lambda s: s.krippendorff_alpha(),
        "Fleiss' kappa": lambda s: s.fleiss_kappa(),
        "Gwet's AC1": lambda s: s.gwet_ac1(),
        "Brennan-Prediger": lambda s: s.brennan_prediger(),
    }
    per_stat = {}
    for name, f in stats.items():
        per_stat[name] = best_of(lambda f=f: (f(boot), f(pooled), np.nanquantile(f(boot), [0.025, 0.975], axis=0)))
    results["per statistic (per code + pooled, all resamples, with intervals)"] = per_stat
    sec["all six statistics on the resampled sums"] = sum(per_stat.values())
    vector_total = sec["per-document sums (once)"] + sec[f"resample the sums ({b} bootstrap resamples)"] + \
        sec["all six statistics on the resampled sums"]
    sec["vectorised total (sums + resampling + six statistics)"] = vector_total

    # -- end to end from a CodedCorpus (includes turning Python sets of codes into arrays) ------------------
    codes = [f"c{j:02d}" for j in range(N_CODES)]
    segs = [Segment(f"D{d:03d}", str(i), "字" * 20) for i, d in enumerate(doc)]
    codings = {f"coder{k}": {s.key: {codes[j] for j in np.flatnonzero(x[k, i])} for i, s in enumerate(segs)}
               for k in range(N_CODERS)}
    t = time.perf_counter()
    corpus = CodedCorpus(segs, codings)
    sec["build the CodedCorpus (not agreement)"] = time.perf_counter() - t
    sec[f"measure_agreement end to end, {b} resamples"] = best_of(
        lambda: measure_agreement(corpus, n_bootstrap=b), repeat=2)
    sec[f"measure_agreement end to end, {b} resamples, character level"] = best_of(
        lambda: measure_agreement(corpus, n_bootstrap=b, level="character"), repeat=1)

    # the random codings above give almost every segment its own set of codes, too many for MASI alpha;
    # sparse coding (0-2 codes per segment, as in interview coding) has few distinct sets: time it there too
    rng = np.random.default_rng(2)
    base = [set(rng.choice(codes, size=rng.integers(0, 3), replace=False)) for _ in range(N_SEGMENTS)]
    sparse = CodedCorpus(segs, {f"coder{k}": {
        s.key: b if rng.random() > 0.1 else set(rng.choice(codes, size=rng.integers(0, 3), replace=False))
        for s, b in zip(segs, base)} for k in range(N_CODERS)})
    report = measure_agreement(sparse, n_bootstrap=b)
    masi = report.row("masi_alpha")
    sec[f"measure_agreement end to end, {b} resamples, sparse coding (0-2 codes per segment), with MASI alpha"] = \
        best_of(lambda: measure_agreement(sparse, n_bootstrap=b), repeat=2)
    results["sparse coding: MASI alpha"] = masi

    # -- naive baselines: a loop over resamples x codes (x pairs), on fewer resamples, extrapolated ----------
    import krippendorff
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import fleiss_kappa

    rows_of = [np.flatnonzero(doc == d) for d in range(N_DOCS)]
    rng = np.random.default_rng(1)
    n = args.naive_resamples
    naive = {}

    def resampled_rows():
        return np.concatenate([rows_of[d] for d in rng.integers(0, N_DOCS, N_DOCS)])

    t = time.perf_counter()
    for _ in range(n):
        rows = resampled_rows()
        for j in range(N_CODES):
            for a, c in combinations(range(N_CODERS), 2):
                cohen_kappa_score(x[a, rows, j], x[c, rows, j])
    naive["sklearn cohen_kappa_score per code per pair"] = (time.perf_counter() - t) / n * b
    t = time.perf_counter()
    for _ in range(n):
        rows = resampled_rows()
        for j in range(N_CODES):
            krippendorff.alpha(reliability_data=x[:, rows, j].astype(float), level_of_measurement="nominal")
    naive["krippendorff.alpha per code"] = (time.perf_counter() - t) / n * b
    t = time.perf_counter()
    for _ in range(n):
        rows = resampled_rows()
        for j in range(N_CODES):
            k = x[:, rows, j].sum(axis=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                fleiss_kappa(np.stack([N_CODERS - k, k], axis=1))
    naive["statsmodels fleiss_kappa per code"] = (time.perf_counter() - t) / n * b
    results["naive baselines (seconds for all resamples, extrapolated)"] = naive
    results["naive resamples actually run"] = n

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "agreement_speed.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    lines = [
        "# Agreement statistics: speed",
        "",
        f"Machine: {results['machine']}.",
        f"Data: synthetic, {N_SEGMENTS:,} segments in {N_DOCS} documents x {N_CODES} codes x {N_CODERS} coders "
        f"(present/absent per code), {b:,} bootstrap resamples of documents. Best of 3 runs (end to end: best of 2; "
        "character level: 1 run). The sandbox is shared with other jobs: figures vary by about +-30 % between runs. "
        "Produced by `taskset -c 0 python benchmarks/agreement_speed.py`.",
        "",
        "## Vectorised (autocode)",
        "",
        "| step | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in sec.items()),
        "",
        "Each statistic, per code and pooled, on all resamples, with its percentile interval (after the shared "
        "sums and resampling above):",
        "",
        "| statistic | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.3f} |" for k, v in per_stat.items()),
        "",
        f"## Naive baseline (a Python loop over resamples x codes; {n} resamples run, times scaled to {b:,})",
        "",
        "| loop | seconds (extrapolated) | vs. vectorised total |",
        "|---|---|---|",
        *(f"| {k} | {v:,.0f} | {v / vector_total:,.0f}x |" for k, v in naive.items()),
        "",
    ]
    (RESULTS / "agreement_speed.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
