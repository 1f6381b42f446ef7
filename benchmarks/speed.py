"""Speed of the default model (tfidf.v1): training with thresholds, and pre-coding throughput on one core.

Data: ../shared/data/cail2019-elements (22,491 segments, 60 codes). Run from the repository root:

    python benchmarks/speed.py                 # full run, writes benchmarks/results/speed.md and .json
    python benchmarks/speed.py --quick         # 5,000 segments

Pre-coding is timed on one core (the process pins itself to CPU 0 where the OS allows, and BLAS/OpenMP pools
are limited to one thread); training uses every core. In the same run, the same pipeline with the pure-Python
jieba segmenter is the baseline, and a profile splits pre-coding time into its stages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _one_core() -> str:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        os.sched_setaffinity(0, {0})
        return "pinned to CPU 0"
    except (AttributeError, OSError):
        return "not pinned (OS does not allow it); one thread"


def _machine() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores visible, Python {platform.python_version()}"


def _time(fn, repeat: int = 1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--quick", action="store_true", help="5,000 segments instead of all")
    ap.add_argument("--out-dir", default=str(ROOT / "benchmarks" / "results"))
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")

    import numpy as np

    import autocode as ac
    from autocode.model import make_inputs

    data = Path(args.data_dir) / "cail2019-elements"
    book = ac.Codebook.read_csv(data / "codebook.csv")
    coded = ac.read_coded(data / "coded.csv", codebook=book)
    if args.quick:
        docs = coded.documents[: len(coded.documents) * 5000 // len(coded)]
        coded = coded.subset(np.isin(coded.groups, docs))
    n = len(coded)
    results: dict = {"machine": _machine(), "segments": n, "documents": len(coded.documents),
                     "codes": len(coded.used_codes()), "date": time.strftime("%Y-%m-%d")}
    try:
        results["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                           text=True, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "autocode"], cwd=ROOT, capture_output=True,
                               text=True, check=False).stdout.strip()
        if dirty:
            results["commit"] += " + uncommitted changes to autocode/"
    except OSError:
        pass

    # -- training, thresholds and tuning included ------------------------------------------------------
    fit_time, model = _time(lambda: ac.CodingModel(book).fit(coded))
    results["train_seconds"] = round(fit_time, 1)
    results["train_folds"] = model.n_splits
    print(f"train: {fit_time:.1f} s for {n} segments, {len(model.codes_)} codes, {model.n_splits} threshold folds",
          flush=True)

    # -- pre-coding on one core ---------------------------------------------------------------------------
    results["precode_affinity"] = _one_core()
    segments = coded.segments
    _time(lambda: model.suggest(segments[:200]))  # warm up: load dictionaries, OpenCC
    t, _ = _time(lambda: model.suggest(segments), repeat=2)
    results["precode_seconds"] = round(t, 2)
    results["precode_segments_per_second"] = round(n / t)
    print(f"pre-code (1 core, rjieba): {n / t:,.0f} segments/s", flush=True)

    # baseline in the same run: the pure-Python jieba segmenter
    backend = model.backend_
    engine = backend.tokenizer.engine
    backend.tokenizer.engine, backend.tokenizer._cut = "jieba", None
    model.suggest(segments[:200])
    tj, _ = _time(lambda: model.suggest(segments))
    backend.tokenizer.engine, backend.tokenizer._cut = engine, None
    results["precode_segments_per_second_jieba"] = round(n / tj)
    print(f"pre-code (1 core, jieba): {n / tj:,.0f} segments/s", flush=True)

    # where the time goes (1 core)
    inputs = make_inputs(segments)
    stages = {}
    tok = backend.tokenizer
    stages["normalise (NFKC + OpenCC t2s)"], norm = _time(lambda: [tok.normalize(s) for s in inputs.texts])
    stages["word segmentation (rjieba)"], _ = _time(lambda: [tok.words(s, normalized=True) for s in norm])
    tok2 = ac.text.ChineseTokenizer(engine="jieba")
    tok2.words("预热")
    stages["word segmentation (jieba, for comparison)"], _ = _time(
        lambda: [tok2.words(s, normalized=True) for s in norm])
    enc = backend.encode(inputs)
    stages["encode total (normalise + segment + count n-grams)"], _ = _time(lambda: backend.encode(inputs))
    stages["TF-IDF weighting of the counts"], X = _time(lambda: backend._features(enc))
    W = backend._coef_t
    stages["linear scores (sparse x dense)"], _ = _time(lambda: X @ W)
    results["precode_stages_seconds"] = {k: round(v, 3) for k, v in stages.items()}
    for k, v in stages.items():
        print(f"  {k}: {v:.2f} s", flush=True)

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "speed-quick" if args.quick else "speed"
    (out / f"{name}.json").write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")
    lines = [
        "# Speed of the default model (tfidf.v1)",
        "",
        f"Machine: {results['machine']}. Date: {results['date']}. Commit: {results.get('commit', '?')}.",
        f"Data: cail2019-elements, {n:,} segments in {results['documents']} documents, {results['codes']} codes.",
        "",
        "| what | figure |",
        "|---|---|",
        f"| training, thresholds included ({max(1, len(model.tuning_.get('context_weight', {}).get('candidates', {})))}"
        f" tuning candidate(s) x {model.n_splits} grouped folds + final fit; codes fitted one after another) | "
        f"{results['train_seconds']} s |",
        f"| pre-coding, 1 core, rjieba (default) | {results['precode_segments_per_second']:,} segments/s |",
        f"| pre-coding, 1 core, pure-Python jieba (baseline, same run) | "
        f"{results['precode_segments_per_second_jieba']:,} segments/s |",
        "",
        f"Pre-coding {results['precode_affinity']}. Where pre-coding time goes (seconds for all segments, 1 core):",
        "",
        "| stage | seconds |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in results["precode_stages_seconds"].items()],
        "",
    ]
    (out / f"{name}.md").write_text("\n".join(lines), encoding="utf-8")
    print(f"results -> {out / name}.md", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
