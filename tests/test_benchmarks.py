"""The agreement benchmark runs end to end from a clean checkout.

The real data (../shared/data) is not in the repository, so the benchmark runs here on the bundled example
(fictional interviews written for autocode, two coders), laid out as the two data sets it expects: the
interviews as ``misleading-photos-dev`` (coders renamed E and A) and one coder's labels as
``cail2019-elements``. The figures are not the point; that every section runs and writes its tables and plots is.
"""

from __future__ import annotations

import csv
import json
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "community-governance"
FIELDS = ["document", "segment", "speaker", "text", "coder", "codes"]


@pytest.fixture
def data_dir(tmp_path) -> Path:
    with open(EXAMPLE / "coded.csv", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    coders = sorted({r["coder"] for r in rows})
    assert len(coders) == 2
    rename = dict(zip(coders, ["E", "A"]))
    for name, keep, coder in (("misleading-photos-dev", coders, rename.get),
                              ("cail2019-elements", coders[:1], lambda _c: "")):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(EXAMPLE / "codebook.csv", folder / "codebook.csv")
        with open(folder / "coded.csv", "w", encoding="utf-8", newline="") as fh:
            w = csv.DictWriter(fh, FIELDS)
            w.writeheader()
            for r in rows:
                if r["coder"] in keep:
                    w.writerow({**{k: r[k] for k in FIELDS}, "coder": coder(r["coder"])})
    return tmp_path


@pytest.mark.slow
def test_agreement_benchmark_quick_run_writes_every_section(data_dir, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    sys.modules.pop("agreement", None)
    import agreement

    out = tmp_path / "out"
    with open(data_dir / "cail2019-elements" / "coded.csv", encoding="utf-8", newline="") as fh:
        n_docs = len({r["document"] for r in csv.DictReader(fh)})
    assert agreement.main(["--quick", "--data-dir", str(data_dir), "--out-dir", str(out),
                           "--cail-docs", str(n_docs)]) in (0, None)
    res = json.loads((out / "agreement-quick.json").read_text(encoding="utf-8"))
    run = res["interviews"]["cv"]["3"][0]["agreement"]["all"]
    for level in ("code", "category"):
        for pair in ("model~E", "model~A", "E~A"):
            assert -1.0 <= run[level][pair]["kappa"] <= 1.0
    # the example's coders agree far better than chance, and a model trained on 8 of its 12 interviews does too
    assert run["code"]["E~A"]["kappa"] > 0.5 and run["code"]["model~E"]["kappa"] > 0.2
    cail = res["cail"]["run"]["agreement"]["all"]["code"]["model~coder"]
    assert cail["kappa"] > 0.2 and 0 <= cail["macro_f1"] <= 1 and 0 <= cail["f1"] <= 1
    ks = sorted({p["k"] for p in res["learning_curve"]["points"]})
    assert len(ks) >= 3, "the learning curve has too few points"
    assert all(t["train_wall_s"] > 0 and t["precode_segments_per_s"] > 0 for t in res["timing"])
    report = (out / "agreement-quick.md").read_text(encoding="utf-8")
    assert "| 3 | all | code | model~E |" in report and "calibration" in report.lower()
    for png in ("agreement-quick_learning_curve.png", "agreement-quick_calibration.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
