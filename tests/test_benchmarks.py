"""The supported CPU benchmarks run end to end from a clean checkout, as a maintainer runs them.

The real data (../shared/data) is not in the repository, so each benchmark runs here with ``--quick`` on the
bundled example (fictional interviews written for autocode, two coders), laid out as the two data sets the
benchmarks expect: the interviews as ``misleading-photos-dev`` (coders renamed E and A) and one coder's labels as
``cail2019-elements``. The figures are not the point; that every section runs and writes one markdown and one
JSON file naming the machine, the commit and the command is.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "benchmarks"
EXAMPLE = REPO / "examples" / "community-governance"
FIELDS = ["document", "segment", "speaker", "text", "coder", "codes"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    with open(EXAMPLE / "coded.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    coders = sorted({r["coder"] for r in rows})
    assert len(coders) == 2
    rename = dict(zip(coders, ["E", "A"]))
    for name, keep, coder in (("misleading-photos-dev", coders, rename.get),
                              ("cail2019-elements", coders[:1], lambda _c: "")):
        folder = root / name
        folder.mkdir()
        shutil.copy(EXAMPLE / "codebook.csv", folder / "codebook.csv")
        with open(folder / "coded.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, FIELDS)
            w.writeheader()
            for r in rows:
                if r["coder"] in keep:
                    w.writerow({**{k: r[k] for k in FIELDS}, "coder": coder(r["coder"])})
    return root


def run(script: str, *args: str, timeout: int = 300) -> None:
    """``python benchmarks/<script> ARGS`` from the repository root, with this checkout's autocode (unless
    PYTHONPATH names another)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(REPO)) if p)}
    done = subprocess.run([sys.executable, f"benchmarks/{script}", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]


def result(out: Path, name: str) -> tuple[dict, str]:
    """The JSON and markdown a benchmark wrote; both name machine, commit and command."""
    res = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    md = (out / f"{name}.md").read_text(encoding="utf-8")
    assert res["meta"]["machine"]["cores"] >= 1 and res["meta"]["commit"]
    assert res["meta"]["command"].startswith("python benchmarks/") and "--quick" in res["meta"]["command"]
    assert "tune" in md or name.startswith(("throughput", "tokenizer_check")), \
        "the report says which settings differ from the defaults (benchmarks that train no model excepted)"
    assert f"`{res['meta']['command']}`" in md and res["meta"]["machine"]["cpu"] in md
    return res, md


@pytest.mark.slow
def test_agreement_benchmark_quick_run_writes_every_section(data_dir, tmp_path):
    out = tmp_path / "out"
    with open(data_dir / "cail2019-elements" / "coded.csv", encoding="utf-8", newline="") as fh:
        n_docs = len({r["document"] for r in csv.DictReader(fh)})
    run("agreement.py", "--quick", "--base", "tune=false", "--data-dir", str(data_dir), "--out-dir", str(out),
        "--cail-docs", str(n_docs), "--variants", "no-position")
    res, report = result(out, "agreement-quick")
    cv = res["interviews"]["cv"]["3"][0]["agreement"]["all"]
    for level in ("code", "category"):
        for pair in ("model~E", "model~A", "E~A"):
            assert -1.0 <= cv[level][pair]["kappa"] <= 1.0
    # the example's coders agree far better than chance, and a model trained on 8 of its 12 interviews does too
    assert cv["code"]["E~A"]["kappa"] > 0.5 and cv["code"]["model~E"]["kappa"] > 0.2
    cail = res["cail"]["run"]["agreement"]["all"]["code"]["model~coder"]
    assert cail["kappa"] > 0.2 and 0 <= cail["macro_f1"] <= 1 and 0 <= cail["f1"] <= 1
    assert len({p["k"] for p in res["learning_curve"]["points"]}) >= 3, "the learning curve has too few points"
    # the model told the coder's categories and counts agrees at least as well as the model alone
    for coder, d in res["disagreement"]["misleading-photos-dev"][0].items():
        assert d["kappa"]["knows categories and counts"] >= d["kappa"]["model"] - 1e-9, coder
        assert 0 <= d["best_sibling"]["chance"] <= d["best_sibling"]["model"] <= 1
    row = res["variants"]["rows"]["no-position"]
    assert row["interviews"]["partitions"] == 1 and row["cail"]["partitions"] == 1
    assert "| 3 | all | code | model~E |" in report and "calibration" in report.lower()
    assert "| no-position |" in report and "Where the disagreement comes from" in report
    for png in ("agreement-quick_learning_curve.png", "agreement-quick_calibration.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_agreement_zero_to_trained_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("agreement.py", "--quick", "--only", "learning-curve", "--base", "tune=false", "--data-dir", str(data_dir),
        "--out-dir", str(out), "--cail-docs", "0", "--prior", "backend.encoder=chars")
    res, report = result(out, "agreement-zero-quick")
    pts = res["interviews"]["points"]
    assert [p["model"] for p in pts if p["k"] == 0] == ["codebook"]
    assert {p["model"] for p in pts if p["k"] == 2} == {"codebook", "blend", "default"}
    for p in pts:
        assert 0 <= p["E"]["recall5"] <= 1 and -1 <= p["E"]["kappa"] <= 1
    assert res["cail"]["points"][0]["model"] == "codebook"
    assert "Zero to trained" in report and "| 0 | codebook |" in report


@pytest.mark.slow
def test_saturation_benchmark_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("saturation.py", "--quick", "--base", "tune=false", "--space", "lsa", "--data-dir", str(data_dir), "--out-dir", str(out),
        "--cail-docs", "12", "--cail-hidden", "1", "--min-code-segments", "5")
    res, report = result(out, "saturation-quick")
    assert [r["data"] for r in res["results"]] == ["misleading-photos-dev", "cail2019-elements"]
    scored = [r for r in res["results"][0]["runs"] if r["scores"]]
    assert scored, "no run had both hidden-code and known-code segments"
    for r in scored:
        for name in ("novelty_lsa", "novelty_lsa_new_code", "baseline", "lsa_recurrence", "lsa_unexplained"):
            assert 0 <= r["scores"][name]["auroc_vs_coded"] <= 1
    kinds = {r["kind"] for r in res["results"][0]["runs"]}  # "code" only where a code has >= 15 segments
    assert "category" in kinds and kinds <= {"category", "code"}
    assert "| novelty_lsa_new_code |" in report and "| baseline |" in report and "| novelty_lsa |" in report
    assert (out / "saturation-quick.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_saturation_grouping_only_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("saturation.py", "--grouping-only", "--quick", "--space", "lsa", "--data-dir", str(data_dir), "--out-dir",
        str(out), "--cail-docs", "12", "--cail-hidden", "1", "--min-code-segments", "5")
    res, report = result(out, "saturation-grouping-lsa-quick")
    assert [r["data"] for r in res["results"]] == ["misleading-photos-dev", "cail2019-elements"]
    runs = [r for r in res["results"][0]["runs"] if "ari" in r]
    assert runs and all(-1 <= r["ari"] <= 1 and 0 < r["purity"] <= 1 for r in runs)
    assert "| misleading-photos-dev |" in report and "placed_right" in report


@pytest.mark.slow
def test_speed_benchmark_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("speed.py", "--quick", "--base", "tune=false", "--data-dir", str(data_dir), "--out-dir", str(out))
    res, report = result(out, "speed-quick")
    assert res["train_seconds"] > 0 and res["precode_segments_per_second"] > 0
    assert res["precode_segments_per_second_jieba"] > 0
    assert "decision_function" in " ".join(res["precode_stages_seconds"])
    assert res["agreement_statistics"]["seconds"]["measure_agreement end to end"] > 0
    assert "segments/s" in report
    runs = {r["what"]: r for r in res["end_to_end"]["runs"]}
    commands = ["rules", "saturation (LSA, .csv report)", "agree (2 coders, 1,000 resamples, .md report)"]
    assert set(runs) == {"precode --no-evidence", "precode (with evidence)", "predict_proba alone (in memory)",
                         *commands}
    assert all(r["segments"] == 2000 and r["segments_per_second"] > 0 for r in runs.values())
    assert all(runs[w]["peak_rss_mb"] > 0 for w in ("precode --no-evidence", *commands))
    assert "| 2,000 | saturation (LSA, .csv report) |" in report


@pytest.mark.slow
def test_throughput_benchmark_smoke_run_on_cpu(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    out = tmp_path / "out"
    run("throughput.py", "--quick", "--device", "cpu", "--shapes", "2x64", "--devices", "cpu,cpu", "--out-dir",
        str(out), timeout=600)
    res, report = result(out, "throughput_cpu")
    r = res["results"][0]
    assert r["shape"] == "2x64" and r["max_abs_diff_vs_naive"] < 1e-3
    assert r["autocode_model"]["segments_per_s"] > 0 and "| 2x64" in report
    assert r["devices"] == ["cpu", "cpu"] and r["devices_e2e"]["segments_per_s"] > 0
    assert "autocode on 2 devices, end to end" in report and res["tokenizer_reference_segments_per_s"] > 0


@pytest.mark.slow
def test_tokenizer_check_finds_no_difference(data_dir, tmp_path):
    pytest.importorskip("transformers")
    out = tmp_path / "out"
    run("tokenizer_check.py", "--quick", "--data-dir", str(data_dir), "--out-dir", str(out))
    res, report = result(out, "tokenizer_check-quick")
    assert {r["corpus"] for r in res["results"]} == {"misleading-photos-dev", "cail2019-elements"}
    assert all(r["mismatches"] == 0 and r["texts"] > 0 for r in res["results"])
    assert "| misleading-photos-dev | True |" in report


def test_throughput_corpus_has_the_documented_length_profile(monkeypatch):
    """The synthetic corpus of the GPU benchmark: 8 to 256 tokens, median 45 (tests/test_benchmarks runs the
    script itself on the CPU)."""
    import importlib

    monkeypatch.syspath_prepend(str(BENCH))
    lengths = importlib.import_module("throughput").corpus_lengths(20000)
    assert lengths.min() == 8 and lengths.max() == 256 and abs(np.median(lengths) - 45) <= 1


@pytest.mark.slow
def test_review_benchmark_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("review.py", "--quick", "--data-dir", str(data_dir), "--out-dir", str(out))
    res, report = result(out, "review-quick")
    for name in ("misleading-photos-dev", "cail2019-elements"):
        r = res["results"][name]
        e = r["effort"]
        assert 0 <= e["recall@1"] <= e["recall@3"] <= e["recall@5"] <= 1
        assert e["lookups_with_suggestions"] <= e["lookups_from_scratch"]
        assert set(r["curves"]) == {"next", "random", "interviews", "reviewed_suggestions"}
        assert all(-1 <= p["kappa"] <= 1 for pts in r["curves"].values() for p in pts)
        assert 0 <= r["faithfulness"]["evidence_drop_larger"] <= 1
    assert "recall@5" in report and "Faithfulness" in report


def test_guide_benchmark_quick_run(data_dir, tmp_path):
    out = tmp_path / "out"
    run("guide.py", "--quick", "--data-dir", str(data_dir), "--out-dir", str(out))
    res = json.loads((out / "guide-quick.json").read_text(encoding="utf-8"))
    md = (out / "guide-quick.md").read_text(encoding="utf-8")
    assert f"`{res['meta']['command']}`" in md and res["meta"]["machine"]["cpu"] in md
    loo = res["loo"]
    assert loo["interviews"] == 6 and min(loo["guide_sections"]) > 0 and loo["questions"] > 0
    assert 0 <= loo["same_as_nearest_question"] <= 1 and set(loo["category_hit"]) == {"E", "A"}
    assert "outlines" not in res  # interviews-unlabeled is not in the example data
