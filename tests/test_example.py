"""The bundled example project (examples/community-governance/): it runs from a fresh checkout and writes
complete outputs, and its coded.csv is what make_coded.py produces."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import autocode as ac

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "community-governance"


def _run(args: list[str], **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run(args, capture_output=True, text=True, encoding="utf-8", env=env, timeout=300, **kw)


@pytest.fixture(scope="module")
def run_py(tmp_path_factory):
    out = tmp_path_factory.mktemp("example") / "out"
    proc = _run([sys.executable, str(EXAMPLE / "run.py"), "--out", str(out)], cwd=tmp_path_factory.getbasetemp())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stdout


def test_run_py_precodes_every_new_segment(run_py):
    out, _ = run_py
    expected = [s.key for s in ac.read_transcripts(EXAMPLE / "new")]
    precoded = ac.read_coded(out / "precoded.csv", codebook=ac.Codebook.read_csv(EXAMPLE / "codebook.csv"))
    assert [s.key for s in precoded.segments] == expected
    assert precoded.coders == ["autocode-tfidf.v1"]
    assert any(precoded.codings("autocode-tfidf.v1"))
    with zipfile.ZipFile(out / "precoded.qdpx") as z:
        assert "project.qde" in z.namelist()
    model = ac.CodingModel.load(out / "model")
    assert len(model.codes_) == 19
    for name in ("agreement_coders.md", "agreement_heldout.md"):
        assert (out / name).stat().st_size > 0


def test_run_py_shows_the_model_working(run_py):
    _, stdout = run_py
    for step in range(1, 7):
        assert f"== {step}." in stdout
    # pooled kappa on the held-out interviews, open codes: human-human, model-A, model-B
    row = re.search(r"初始概念 \(open codes\)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)", stdout)
    assert row, stdout
    human, model_a, model_b = map(float, row.groups())
    assert human > 0.7
    assert model_a > 0.3 and model_b > 0.3


def test_coded_csv_is_made_by_make_coded(tmp_path):
    proc = _run([sys.executable, str(EXAMPLE / "make_coded.py"), "--out", str(tmp_path / "coded.csv")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "coded.csv").read_bytes() == (EXAMPLE / "coded.csv").read_bytes()


def test_coded_csv_matches_the_transcripts():
    book = ac.Codebook.read_csv(EXAMPLE / "codebook.csv")
    coded = ac.read_coded(EXAMPLE / "coded.csv", codebook=book)
    segments = ac.read_transcripts(EXAMPLE / "transcripts")
    assert [(s.key, s.text, s.speaker) for s in coded.segments] == [(s.key, s.text, s.speaker) for s in segments]
    assert set(coded.used_codes()) == set(book.leaves)  # open codes only, and every one is used
    assert coded.coders == ["研究者A", "研究者B"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_run_sh(tmp_path):
    proc = _run(["bash", str(EXAMPLE / "run.sh"), str(tmp_path / "out")])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    expected = {s.key for s in ac.read_transcripts(EXAMPLE / "new")}
    assert {s.key for s in ac.read_segments(tmp_path / "out" / "precoded.csv")} == expected
    for name in ("agreement_coders.md", "agreement_heldout.md", "evaluate.md", "precoded.qdpx"):
        assert (tmp_path / "out" / name).exists()
