"""What the benchmarks share: data, grouped partitions, the machine and the commit, one markdown + one JSON.

Every benchmark writes ``results/<name>.md`` and ``results/<name>.json`` through :func:`write_result`; both name
the machine, the commit (with a mark when autocode/ had uncommitted edits) and the command that produced them.
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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import autocode as ac
from autocode.folds import grouped_folds

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = REPO.parent / "shared" / "data"
RESULTS = REPO / "benchmarks" / "results"
INTERVIEWS = "misleading-photos-dev"  # 18 interviews, two coders (E and A)
CAIL = "cail2019-elements"  # court-judgment sentences, one coder


# -- command line ------------------------------------------------------------------------------------------
def parser(doc: str, data: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes (``data``: and those on the shared data)."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[-1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    if data:
        ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with one folder per data set")
    ap.add_argument("--out-dir", type=Path, default=RESULTS, help="where <name>.md and <name>.json go")
    ap.add_argument("--quick", action="store_true", help="a small run (smoke test); writes <name>-quick.*")
    if data:
        ap.add_argument("--base", type=parse_settings, default={}, metavar="KEY=VALUE[+...]",
                        help="settings applied to every model of the run instead of the library defaults "
                             "(e.g. tune=false for a fast smoke test; backend.X= for a backend parameter)")
    return ap


def parse_settings(spec: str) -> dict:
    """``key=value[+key=value]`` -> CodingModel overrides (``backend.X=`` for a backend parameter; JSON values)."""
    out: dict = {}
    for part in filter(None, spec.split("+")):
        if "=" not in part:
            raise SystemExit(f"Expected key=value[+key=value], got {spec!r}.")
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


def name_rules(book: ac.Codebook, max_codes: int = 2) -> ac.RuleSet:
    """Rules written mechanically from a codebook, a stand-in for a researcher's rules where a data set has
    none: for each code that is not a category, a keyword rule of the words (jieba, 2+ characters) of its name
    that are in the names of at most ``max_codes`` codes (words shared by many codes name no code)."""
    from autocode.text import ChineseTokenizer

    tok = ChineseTokenizer()
    leaves = book.leaves
    words = {c: sorted({w for w in tok.words(book[c].name) if len(w) >= 2}) for c in leaves}
    df: dict[str, int] = {}
    for ws in words.values():
        for w in ws:
            df[w] = df.get(w, 0) + 1
    rules = [ac.Rule(c, " ".join(w for w in ws if df[w] <= max_codes)) for c, ws in words.items()]
    return ac.RuleSet([r for r in rules if r.pattern], book)


def coding_model(book: ac.Codebook, *overrides: dict, seed: int = 0) -> ac.CodingModel:
    """``CodingModel(book)`` with the library defaults, then each of ``overrides`` (``backend_params`` merged;
    ``rules="codebook-names"``: the rules of :func:`name_rules`)."""
    params = ac.CodingModel(book).get_params()
    for ov in overrides:
        for key, value in ov.items():
            params[key] = {**(params.get(key) or {}), **value} if key == "backend_params" else value
    if params.get("rules") == "codebook-names":
        params["rules"] = name_rules(book)
    return ac.CodingModel(**{**params, "random_state": seed})


def command(script: str, argv: Sequence[str] | None) -> str:
    """The command line that reproduces this run."""
    args = sys.argv[1:] if argv is None else list(argv)
    return " ".join(["python", f"benchmarks/{script}", *args])


# -- data --------------------------------------------------------------------------------------------------
def load(data_dir: Path, name: str) -> tuple[ac.Codebook, ac.CodedCorpus]:
    """``<data_dir>/<name>/codebook.csv`` and ``coded.csv``."""
    folder = Path(data_dir) / name
    book = ac.Codebook.read_csv(folder / "codebook.csv")
    return book, ac.read_coded(folder / "coded.csv", codebook=book)


def sample_documents(coded: ac.CodedCorpus, n: int, seed: int = 0) -> ac.CodedCorpus:
    """A seeded sample of ``n`` documents, stratified by the document-name prefix before '-' (the CAIL domain);
    all documents when ``n`` is 0 or at least their number."""
    docs = coded.documents
    if n <= 0 or n >= len(docs):
        return coded
    strata: dict[str, list[str]] = {}
    for d in docs:
        strata.setdefault(d.split("-", 1)[0], []).append(d)
    rng = np.random.default_rng(seed)
    keep: set[str] = set()
    for members in strata.values():
        m = max(1, round(n * len(members) / len(docs)))
        keep.update(rng.choice(members, size=min(m, len(members)), replace=False).tolist())
    return coded.subset(np.array([s.document in keep for s in coded.segments]))


def partitions(coded: ac.CodedCorpus, n_splits: int, seed: int) -> list[tuple[set[str], set[str]]]:
    """(training documents, test documents) of each fold of one grouped partition (``autocode.folds``)."""
    groups = coded.groups
    return [(set(groups[tr].tolist()), set(groups[te].tolist()))
            for tr, te in grouped_folds(groups, n_splits, random_state=seed)]


def rows_of(coded: ac.CodedCorpus, documents: set[str]) -> np.ndarray:
    """Boolean mask of the segments of ``documents``."""
    return np.isin(coded.groups, list(documents))


# -- running -----------------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def quiet() -> Iterator[None]:
    """Hide AutocodeWarning (codes too rare to learn in a fold are expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        yield


class Clock:
    """Wall and process-CPU seconds of a ``with`` block."""

    def __enter__(self) -> Clock:
        self.w0, self.c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = time.process_time() - self.c0


@contextmanager
def one_core() -> Iterator[str]:
    """Every thread of this process on one CPU (as ``taskset -c``) and BLAS/OpenMP pools at one thread."""
    from threadpoolctl import threadpool_limits

    saved = {}
    try:
        cpu = min(os.sched_getaffinity(0))
        for tid in (int(t) for t in os.listdir("/proc/self/task")):
            try:
                saved[tid] = os.sched_getaffinity(tid)
                os.sched_setaffinity(tid, {cpu})
            except OSError:
                pass
        where = f"pinned to CPU {cpu}"
    except (AttributeError, OSError):
        where = "not pinned (the OS does not allow it); one BLAS thread"
    try:
        with threadpool_limits(1):
            yield where
    finally:
        for tid, cpus in saved.items():
            try:
                os.sched_setaffinity(tid, cpus)
            except OSError:
                pass


# -- figures -----------------------------------------------------------------------------------------------
def fmt(x, nd: int = 3) -> str:
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "n/a"
    return f"{x:.{nd}f}"


def mean_sd(values) -> str:
    """``mean ± sd`` over finite values (the sd is over partitions or draws)."""
    v = [x for x in values if x is not None and np.isfinite(x)]
    if not v:
        return "n/a"
    return f"{v[0]:.3f}" if len(v) == 1 else f"{np.mean(v):.3f} ± {np.std(v, ddof=1):.3f}"


def paired(deltas) -> str:
    """A paired difference over partitions: ``mean ± standard error`` (the error needs 2 partitions)."""
    v = [x for x in deltas if x is not None and np.isfinite(x)]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:+.3f}"
    return f"{np.mean(v):+.3f} ± {np.std(v, ddof=1) / np.sqrt(len(v)):.3f}"


# -- provenance and output ---------------------------------------------------------------------------------
def machine() -> dict:
    cpu = platform.processor() or "?"
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        cpu = next((ln.split(":", 1)[1].strip() for ln in out.splitlines() if ln.startswith("Model name")), cpu)
    except (OSError, subprocess.CalledProcessError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "system": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "numpy": np.__version__, "autocode": ac.__version__}


def commit() -> str:
    """The short commit, with a mark when autocode/ or benchmarks/ had uncommitted edits
    (``$AUTOCODE_COMMIT`` where the checkout has no git folder, e.g. a copy sent to a GPU machine)."""
    if os.environ.get("AUTOCODE_COMMIT"):
        return os.environ["AUTOCODE_COMMIT"]
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()

    try:
        sha = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "autocode", "benchmarks")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + (" + uncommitted edits" if dirty else "")


def meta(script: str, argv: Sequence[str] | None, **extra) -> dict:
    """Date, machine, commit and command of a run; call it when the run starts."""
    return {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "commit": commit(), "command": command(script, argv), "load_start": os.getloadavg()[0],
            "started": time.perf_counter(), **extra}


def header(title: str, m: dict) -> list[str]:
    """The first lines of a result file: what, when, where, from which commit, by which command."""
    mc = m["machine"]
    return [f"# {title}", "",
            f"Date {m['date']}; commit `{m['commit']}`, autocode {mc['autocode']}; machine: {mc['cpu']}, "
            f"{mc['cores']} cores, {mc['system']}, Python {mc['python']}; {m['wall_s'] / 60:.1f} min in all. "
            f"Load average {m['load_start']:.1f} at the start, {m['load_end']:.1f} at the end"
            + (" (above the number of cores: other jobs competed for the CPU and wall times are inflated)."
               if max(m["load_start"], m["load_end"]) > mc["cores"] else "."), "",
            f"Command: `{m['command']}`.", ""]


def clean(obj):
    """JSON-ready: keys starting with '_' dropped, NaN -> null, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    if isinstance(obj, np.generic):
        return clean(obj.item())
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def write_result(out_dir: Path, name: str, m: dict, lines: list[str], data: dict) -> tuple[Path, Path]:
    """``<name>.md`` (``lines`` after the header) and ``<name>.json`` (``data`` plus ``meta``)."""
    m = {k: v for k, v in m.items() if k != "started"}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md, js = out_dir / f"{name}.md", out_dir / f"{name}.json"
    md.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    js.write_text(json.dumps(clean({"meta": m, **data}), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    log(f"results: {md}, {js}")
    return md, js


def finish(m: dict) -> dict:
    """Wall time and end load of a run (call before writing)."""
    m["wall_s"] = time.perf_counter() - m["started"]
    m["load_end"] = os.getloadavg()[0]
    return m
