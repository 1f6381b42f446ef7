"""How fast is autocode on a CPU? Training and pre-coding with the default model; agreement statistics.

1. The default model (``CodingModel(codebook)``) on cail2019-elements (22,491 sentences, 701 documents):
   training time with its tuning, calibration and thresholds (every core); pre-coding segments/s on one core
   (the process pinned to one CPU, BLAS/OpenMP at one thread), against the same model with the pure-Python jieba
   segmenter in the same run (the baseline); where pre-coding time goes, stage by stage, through public calls.
1b. The default model on misleading-photos-dev (18 interviews): training, interview guide included, and
   pre-coding the same interviews on one core (``--interviews``: this section alone).
1c. ``--codebook`` (alone): the codebook-only model on the same interviews, with the library's prior and with e5
   adapted to the study: training, model folder, pre-coding on one core.
3. The commands end to end (``--sizes``; alone with ``--end-to-end``; ``--commands`` chooses among
   ``precode,rules,saturation,agree``): each run as a subprocess on synthetic corpora of 10,000, 100,000 (and
   1,000,000) segments, one JSON lines table of documents of 40 segments drawn with replacement from
   cail2019-elements sentences and interviews-unlabeled answers; wall time and peak memory (RSS) of the
   command. ``autocode precode`` with and without evidence, beside the scoring alone
   (``CodingModel.predict_proba`` on the same segments, read into memory, in a subprocess too); ``autocode
   rules`` with keyword rules written from the codebook's names; ``autocode saturation`` (LSA space, the
   scorer fitted once on the model's training data and saved beside it; CSV report); ``autocode agree`` on a
   table of two coders per segment (a drawn CAIL sentence keeps its coders' codes, other texts none; the
   second coder drops or adds a code on 10 % of the segments; 1,000 bootstrap resamples; Markdown report).
   The model: the default one trained on a quarter of CAIL's documents.
2. Agreement statistics with bootstrap intervals (``measure_agreement``) on synthetic data: 20,000 segments in
   200 documents x 60 codes x 3 coders, 1,000 resamples of documents, one core; against a naive Python loop over
   resamples x codes with sklearn, krippendorff and statsmodels (a few resamples run, times scaled).

    python benchmarks/speed.py            # ~5 min on 2 cores (training on all of CAIL: ~2 min)
    python benchmarks/speed.py --quick    # ~20 s: 1/8 of CAIL, 2,000 synthetic segments, 100 resamples
    nice python benchmarks/speed.py --end-to-end --sizes 10000,100000   # section 3 alone: results/speed-end-to-end.*
    nice python benchmarks/speed.py --end-to-end --commands saturation,agree --sizes 10000

Results: ``results/speed.md`` and ``.json`` (``speed-quick.*`` with ``--quick``; ``speed-end-to-end.*`` with
``--end-to-end``).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from itertools import combinations
from pathlib import Path

import numpy as np
from _common import (
    CAIL,
    INTERVIEWS,
    coding_model,
    finish,
    header,
    load,
    log,
    meta,
    name_rules,
    one_core,
    parser,
    rows_of,
    write_result,
)

import autocode as ac
from autocode.folds import MIN_PARALLEL_ROWS
from autocode.model import make_inputs
from autocode.saturation import NoveltyScorer
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
    res["tuning_segments"] = next((t["segments"] for t in model.tuning_.values() if "segments" in t), len(coded))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    res["fold_processes"] = (1 if model.n_jobs is None and len(coded) < MIN_PARALLEL_ROWS
                             else cores if model.n_jobs is None or model.n_jobs < 0 else model.n_jobs)
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


def interview_speed(book: ac.Codebook, coded: ac.CodedCorpus, base: dict) -> dict:
    """The default model on a whole interview study: training (the interview guide recovered from the
    interviewers' turns, tuning included) and pre-coding the same interviews on one core, whole documents."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        train_s, model = best_of(lambda: coding_model(book, base).fit(coded))
    segments = coded.segments
    with one_core() as where:
        model.suggest(segments)  # warm-up
        t, _ = best_of(lambda: model.suggest(segments), repeat=2)
    guide = getattr(model.backend_, "guide_", None)
    res = {"segments": len(segments), "documents": len(coded.documents), "train_seconds": round(train_s, 2),
           "precode_seconds": round(t, 3), "precode_segments_per_second": round(len(segments) / t),
           "precode_affinity": where, "guide_sections": len(guide) if guide is not None else 0}
    log(f"{INTERVIEWS}: train {train_s:.1f} s, pre-code (1 core) {len(segments) / t:,.0f} segments/s")
    return res


def interview_markdown(r: dict) -> list[str]:
    return [f"## 1b. The default model on {INTERVIEWS}", "",
            f"{r['segments']:,} turns in {r['documents']} interviews; interview guide recovered from the interviewers' "
            f"turns ({r['guide_sections']} sections).", "", "| what | figure |", "|---|---|",
            f"| training, all cores (guide, tuning, calibration and thresholds included) | {r['train_seconds']:.1f} s |",
            f"| pre-coding the same interviews, 1 core (`model.suggest`, whole documents) | "
            f"{r['precode_segments_per_second']:,} segments/s |", "", f"Pre-coding {r['precode_affinity']}.", ""]


# -- 3. autocode precode end to end -----------------------------------------------------------------------------
_MEASURED = """import json, resource, subprocess, sys, time
t = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
wall = time.perf_counter() - t
print(json.dumps({"rc": rc, "seconds": wall, "peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""

_SCORING = """import sys, time
from autocode import CodingModel
from autocode.io.inputs import read_inputs
model = CodingModel.load(sys.argv[1])
segments, _ = read_inputs(sys.argv[2])
model.predict_proba(segments[:200])
t = time.perf_counter()
model.predict_proba(segments)
print(time.perf_counter() - t, file=sys.stderr)
"""


def text_pool(data_dir: Path, coded: ac.CodedCorpus) -> list[str]:
    """CAIL sentences and the interviews-unlabeled answers (every non-empty cell but the interviewee's id)."""
    texts = [s.text for s in coded.segments]
    for path in sorted((data_dir / "interviews-unlabeled").glob("*.csv")):
        if path.stem.endswith("-outline"):
            continue
        with open(path, encoding="utf-8-sig", newline="") as f:
            rows = list(csv.reader(f))
        texts += [cell.strip() for row in rows[1:] for cell in row[1:] if cell.strip()]
    return texts


def synthetic_corpus(path: Path, pool: list[str], n: int, seed: int = 0, per_doc: int = 40,
                     codes: list[list[str]] | None = None, n_codes: list[str] | None = None) -> Path:
    """``n`` segments drawn with replacement from ``pool``, in documents of ``per_doc``, as a JSON lines table.

    With ``codes`` (the codes of the first ``len(codes)`` texts of the pool; the others have none): a coded table
    of two coders, ``E`` with the drawn text's codes and ``A`` the same except on 10 % of the segments, where
    A drops one of them or adds one of ``n_codes``."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n, 100_000):
            m = min(n - start, 100_000)
            flip, pick = rng.random(m) < 0.1, rng.integers(0, max(len(n_codes or ()), 1), m)
            for j, (i, k) in enumerate(zip(range(start, start + m), rng.integers(0, len(pool), m))):
                row = {"document": f"S{i // per_doc:06d}", "segment": str(i % per_doc + 1),
                       "speaker": "participant", "text": pool[k]}
                if codes is None:
                    f.write(json.dumps(row, ensure_ascii=False) + "\n")
                    continue
                e = codes[k] if k < len(codes) else []
                a = (e[1:] if e else [n_codes[pick[j]]]) if flip[j] else e
                for coder, got in (("E", e), ("A", a)):
                    f.write(json.dumps({**row, "coder": coder, "codes": ";".join(got)}, ensure_ascii=False) + "\n")
    return path


def measured(cmd: list[str], env: dict) -> dict:
    """Wall time and peak RSS of ``cmd``, run as the only child of a fresh Python process."""
    out = subprocess.run([sys.executable, "-c", _MEASURED, *cmd], capture_output=True, text=True, env=env,
                         check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res['rc']})")
    return res


COMMANDS = ("precode", "rules", "saturation", "agree")


def end_to_end(book: ac.Codebook, coded: ac.CodedCorpus, base: dict, data_dir: Path, sizes: list[int],
               evidence_up_to: int, commands: tuple[str, ...] = COMMANDS) -> dict:
    # a quarter of CAIL's documents is plenty of model for timing; a small corpus is used whole
    docs = coded.documents[::4] if len(coded.documents) >= 100 else coded.documents
    train = coded.subset(rows_of(coded, set(docs)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        model = coding_model(book, base).fit(train)
    pool = text_pool(data_dir, coded)
    pool_codes = [sorted(c or ()) for c in coded.target_codings("union")]  # the CAIL sentences open the pool
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env = {**os.environ, **threads, "PYTHONPATH": str(Path(ac.__file__).resolve().parents[1])}
    res: dict = {"model_trained_on": f"{len(train):,} segments in {len(docs)} documents of {CAIL}",
                 "pool": len(pool), "commands": list(commands), "runs": []}
    with tempfile.TemporaryDirectory(prefix="autocode-speed-") as tmp:
        folder = model.save(Path(tmp) / "model")
        if "saturation" in commands:  # the LSA scorer, fitted once and saved beside the model
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ac.AutocodeWarning)
                NoveltyScorer(space="lsa", random_state=model.random_state).fit(model, train).save(folder)
        rules = Path(tmp) / "rules.csv"
        with open(rules, "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["code", "pattern", "kind"])
            w.writerows([r.code, r.pattern, r.kind] for r in name_rules(book).rules)
        book.write_csv(Path(tmp) / "codebook.csv")
        cli = [sys.executable, "-m", "autocode.cli", "-q"]
        for n in sizes:
            corpus = synthetic_corpus(Path(tmp) / f"corpus-{n}.jsonl", pool, n)
            runs = {}
            if "precode" in commands:
                precode = [*cli, "precode", "--model", str(folder), str(corpus), "--out", str(Path(tmp) / "out.csv"),
                           "--force"]
                runs["precode --no-evidence"] = measured([*precode, "--no-evidence"], env)
                if n <= evidence_up_to:
                    runs["precode (with evidence)"] = measured(precode, env)
                t = time.perf_counter()
                scoring = subprocess.run([sys.executable, "-c", _SCORING, str(folder), str(corpus)], env=env,
                                         capture_output=True, text=True, check=True)
                runs["predict_proba alone (in memory)"] = {"seconds": float(scoring.stderr.strip().splitlines()[-1]),
                                                           "whole_process_seconds": time.perf_counter() - t}
            if "rules" in commands:
                runs["rules"] = measured([*cli, "rules", "--codebook", str(Path(tmp) / "codebook.csv"), "--rules",
                                          str(rules), str(corpus), "--out", str(Path(tmp) / "rules.csv.out.csv"),
                                          "--force"], env)
            if "saturation" in commands:
                runs["saturation (LSA, .csv report)"] = measured(
                    [*cli, "saturation", "--model", str(folder), str(corpus), "--out",
                     str(Path(tmp) / "saturation.csv"), "--force"], env)
            corpus.unlink()
            if "agree" in commands:
                table = synthetic_corpus(Path(tmp) / f"coded-{n}.jsonl", pool, n, codes=pool_codes,
                                         n_codes=list(model.codes_))
                runs["agree (2 coders, 1,000 resamples, .md report)"] = measured(
                    [*cli, "agree", str(table), "--out", str(Path(tmp) / "agree.md"), "--force"], env)
                table.unlink()
            for what, r in runs.items():
                r["segments_per_second"] = n / r["seconds"]
                res["runs"].append({"segments": n, "what": what, **r})
                log(f"{n:,} segments, {what}: {n / r['seconds']:,.0f} segments/s"
                    + (f", peak {r['peak_rss_mb']:,.0f} MB" if "peak_rss_mb" in r else ""))
    return res


def end_to_end_markdown(res: dict) -> list[str]:
    lines = ["## 3. The commands end to end", "",
             f"Synthetic corpora drawn from a pool of {res['pool']:,} texts (CAIL sentences and interviews-unlabeled "
             "answers), documents of 40 segments, one JSON lines table; output CSV. The model: the default one "
             f"trained on {res['model_trained_on']}. Each command is a subprocess (BLAS at one thread); peak memory "
             "is the command's peak RSS. `predict_proba alone` scores the same segments after reading them "
             "into memory (reading, model loading and writing not timed). `marginal segments/s`: the extra "
             "segments over the extra seconds since the next smaller size of the same row, i.e. the rate once "
             "start-up (loading Python, the model, the first batch) is paid: constant if the command is linear. "
             "`rules`: keyword rules written from the codebook's code names. `saturation`: the LSA novelty scorer, "
             "fitted once on the model's training data and saved beside it; the report as CSV. `agree`: a table of "
             "two coders per segment (the CAIL sentences drawn keep their codes, the other texts have none; the "
             "second coder drops or adds a code on 10% of the segments), 1,000 bootstrap resamples, a Markdown "
             "report.", "",
             "| segments | what | seconds | segments/s | marginal segments/s | peak RSS (MB) |",
             "|---:|---|---:|---:|---:|---:|"]
    previous: dict = {}
    for r in res["runs"]:
        rss = f"{r['peak_rss_mb']:,.0f}" if "peak_rss_mb" in r else ""
        p = previous.get(r["what"])
        marginal = (f"{(r['segments'] - p['segments']) / (r['seconds'] - p['seconds']):,.0f}"
                    if p and r["seconds"] > p["seconds"] else "")
        previous[r["what"]] = r
        lines.append(f"| {r['segments']:,} | {r['what']} | {r['seconds']:.1f} | {r['segments_per_second']:,.0f} | "
                     f"{marginal} | {rss} |")
    return [*lines, ""]


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
        f"| training ({md['tuning_candidates']} tuning candidate(s) x {md['train_folds']} grouped folds on "
        f"{md.get('tuning_segments', md['segments']):,} segments"
        + (f", the chosen one x {md['train_folds']} folds on all" if md.get("tuning_segments", md["segments"])
           < md["segments"] else "")
        + f", final fit, calibration and thresholds included; folds in {md.get('fold_processes', 1)} "
        f"process(es)) | {md['train_seconds']:.1f} s |",
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
    ap.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=None,
                    help="segments of the end-to-end corpora, e.g. 10000,100000,1000000 (default 10000,100000; "
                         "2000 with --quick)")
    ap.add_argument("--evidence-up-to", type=int, default=100_000, dest="evidence_up_to",
                    help="run the command with evidence only on corpora up to this size")
    ap.add_argument("--commands", type=lambda v: tuple(x.strip() for x in v.split(",")), default=COMMANDS,
                    help=f"commands run end to end, among {','.join(COMMANDS)} (default all)")
    ap.add_argument("--end-to-end", action="store_true", dest="end_to_end",
                    help="only section 3, written to speed-end-to-end.*")
    ap.add_argument("--interviews", action="store_true", help="only section 1b, written to speed-interviews.*")
    ap.add_argument("--codebook", action="store_true",
                    help="only section 1c (the codebook-only model, plain and adapt=true), to speed-codebook.*")
    args = ap.parse_args(argv)
    m = meta("speed.py", argv)
    book, coded = load(args.data_dir, CAIL)
    sizes = args.sizes or ([2_000] if args.quick else [10_000, 100_000])
    if args.end_to_end:
        res = {"end_to_end": end_to_end(book, coded, args.base, args.data_dir, sizes, args.evidence_up_to,
                                        args.commands)}
        finish(m)
        lines = header("The commands end to end on a CPU", m) + end_to_end_markdown(res["end_to_end"])
        write_result(args.out_dir, "speed-end-to-end", m, lines, res)
        return 0
    ibook, icoded = load(args.data_dir, INTERVIEWS)
    if args.codebook:
        from _codebook_speed import codebook_markdown, codebook_speed

        res = {"codebook": codebook_speed(ibook, icoded, args.base)}
        finish(m)
        write_result(args.out_dir, "speed-codebook", m, header("Speed of the codebook-only model", m)
                     + codebook_markdown(res["codebook"], INTERVIEWS), res)
        return 0
    if args.interviews:
        res = {"interviews": interview_speed(ibook, icoded, args.base)}
        finish(m)
        write_result(args.out_dir, "speed-interviews", m, header("Speed on interviews", m)
                     + interview_markdown(res["interviews"]), res)
        return 0
    if args.quick:
        docs = coded.documents[: max(6, len(coded.documents) // 8)]
        coded = coded.subset(rows_of(coded, set(docs)))
    res = {"model": model_speed(book, coded, args.base), "interviews": interview_speed(ibook, icoded, args.base)}
    n, docs, resamples = (2_000, 40, 100) if args.quick else (20_000, 200, 1000)
    res["agreement_statistics"] = agreement_speed(n, docs, args.resamples or resamples, 1 if args.quick else 3)
    res["end_to_end"] = end_to_end(book, coded, args.base, args.data_dir, sizes, args.evidence_up_to, args.commands)
    # flat keys kept for readers of earlier speed.json files
    res.update({k: res["model"][k] for k in ("train_seconds", "precode_segments_per_second",
                                             "precode_segments_per_second_jieba", "precode_stages_seconds")})
    finish(m)
    lines = header("Speed on a CPU" + (" (quick run)" if args.quick else ""), m)
    lines += [f"Model: `CodingModel(codebook)` with the library defaults, except {args.base}.", ""] if args.base else []
    lines += markdown(res) + interview_markdown(res["interviews"]) + end_to_end_markdown(res["end_to_end"])
    write_result(args.out_dir, "speed-quick" if args.quick else "speed", m, lines, res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
