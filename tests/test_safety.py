"""Nothing lost: outputs never replace inputs, writes are atomic and locked, model folders are covered by
checksums, hostile files are refused, and hostile inputs give one-line errors (README: Safety)."""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import subprocess
import sys
import warnings
from pathlib import Path

import hostile
import numpy as np
import pytest

from autocode import (
    CodedCorpus,
    CodingModel,
    FormatError,
    ModelFileError,
    OutputError,
    Segment,
    read_coded,
    write_coded,
    write_suggestions,
)
from autocode import _files as files_mod
from autocode._files import atomic_write, check_not_inputs, lock_path, output_lock, write_text
from autocode.checksum import make_manifest
from autocode.cli import main
from autocode.io.qdpx import read_project, write_qdpx
from autocode.reliability import measure_agreement
from autocode.saturation import NoveltyScorer

_FITTED: dict = {}


@pytest.fixture
def model(book, coded) -> CodingModel:
    """Fitted once for this module (the fixtures are deterministic; tests do not change it)."""
    if "model" not in _FITTED:
        _FITTED["model"] = CodingModel(book, n_splits=2, tune=False, random_state=0).fit(coded)
    return _FITTED["model"]


@pytest.fixture
def coded_csv(coded, tmp_path) -> Path:
    path = tmp_path / "coded.csv"
    write_coded(path, coded)
    return path


def _debris(folder: Path) -> list[str]:
    """Temporary files, staging folders and locks autocode left in ``folder``."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".autocode-") or p.suffix == ".lock")


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- 1. outputs never replace inputs --------------------------------------------------------------------------
def test_precode_refuses_to_overwrite_its_input(model, coded_csv, tmp_path, capsys):
    model.save(tmp_path / "m")
    before = coded_csv.read_bytes()
    assert main(["precode", "--model", str(tmp_path / "m"), str(coded_csv), "--out", str(coded_csv)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (f"autocode precode: error: --out {coded_csv} is the input {coded_csv} (the same file); writing "
                   "it would replace the input. Choose another output path, or add --force to overwrite the input.")
    assert coded_csv.read_bytes() == before
    # with --force it is written (atomically: the input was read whole first)
    assert main(["precode", "--model", str(tmp_path / "m"), str(coded_csv), "--out", str(coded_csv),
                 "--force"]) == 0
    assert coded_csv.read_bytes() != before and "code_names" in coded_csv.read_text("utf-8-sig").splitlines()[0]


def test_same_file_is_found_by_inode_not_by_name(coded_csv, tmp_path, capsys):
    link = tmp_path / "hard-link.csv"
    os.link(coded_csv, link)
    spelled = tmp_path / "sub" / ".." / "coded.csv"
    (tmp_path / "sub").mkdir()
    for out in (link, spelled):
        assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(out)]) == 1
        assert f"--out {out} is the input {coded_csv} (the same file)" in capsys.readouterr().err
    assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(tmp_path / "a.csv"),
                 "--disagreements", str(link)]) == 1
    assert f"--disagreements {link} is the input {coded_csv}" in capsys.readouterr().err
    assert read_coded(coded_csv).coders == ["E", "A"]


def test_evaluate_and_train_refuse_their_inputs(coded_csv, book, tmp_path, capsys, monkeypatch):
    book.write_csv(tmp_path / "book.csv")
    monkeypatch.setattr(CodingModel, "fit", _must_not_fit)
    assert main(["evaluate", "--codebook", str(tmp_path / "book.csv"), "--data", str(coded_csv),
                 "--out", str(tmp_path / "book.csv")]) == 1
    assert "--out " + str(tmp_path / "book.csv") + " is the input" in capsys.readouterr().err
    assert main(["train", "--codebook", str(tmp_path / "book.csv"), "--data", str(coded_csv),
                 "--out", str(coded_csv)]) == 1
    assert f"--out {coded_csv} is the input {coded_csv}" in capsys.readouterr().err


def test_two_outputs_in_one_file_are_refused(coded_csv, tmp_path, capsys):
    out = tmp_path / "a.csv"
    assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(out), "--disagreements", str(out),
                 "--force"]) == 1
    assert f"--disagreements {out} and --out {out} are the same file" in capsys.readouterr().err
    with pytest.raises(OutputError, match="are the same file"):
        check_not_inputs({"--out": [tmp_path / "r.md", tmp_path / "r.png"], "--x": [tmp_path / "r.png"]}, [])


def _must_not_fit(self, coded):
    raise AssertionError("fitted although the output could not be written")


# -- 2. atomic writes --------------------------------------------------------------------------------------------
_CSV_WRITER = csv.writer


class _FailingWriter:
    """A csv.writer that raises after ``n`` rows (a crash, or Ctrl-C, in the middle of a write)."""

    def __init__(self, f, n, exc):
        self.w, self.n, self.exc = _CSV_WRITER(f), n, exc

    def writerow(self, row):
        if self.n == 0:
            raise self.exc
        self.n -= 1
        return self.w.writerow(row)

    def writerows(self, rows):
        for row in rows:
            self.writerow(row)


@pytest.mark.parametrize("exc", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_interrupted_table_write_leaves_the_previous_file(coded, tmp_path, monkeypatch, exc):
    import autocode.io.table as table

    out = tmp_path / "out.csv"
    write_coded(out, coded)
    before = out.read_bytes()
    monkeypatch.setattr(table.csv, "writer", lambda f, **kw: _FailingWriter(f, 10, exc))
    with pytest.raises(type(exc)):
        write_coded(out, CodedCorpus(coded.segments[:20], {"X": {s.key: set() for s in coded.segments[:20]}}))
    assert out.read_bytes() == before
    assert _debris(tmp_path) == []


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_interrupted_precoded_write_leaves_the_previous_file(model, coded, tmp_path, monkeypatch, suffix):
    sug = model.suggest(coded.segments)
    out = tmp_path / f"precoded{suffix}"
    write_suggestions(out, sug)
    before = out.read_bytes()
    real_top, real_records, calls = type(sug).top, type(sug).records, {"n": 0}

    def top(self, i, k):  # the CSV writer asks for each row's best codes
        calls["n"] += 1
        if calls["n"] > 5:
            raise KeyboardInterrupt
        return real_top(self, i, k)

    def records(self, k):  # the JSONL writer iterates over the records
        for n, rec in enumerate(real_records(self, k)):
            if n == 5:
                raise KeyboardInterrupt
            yield rec

    monkeypatch.setattr(type(sug), "top", top)
    monkeypatch.setattr(type(sug), "records", records)
    with pytest.raises(KeyboardInterrupt):
        write_suggestions(out, sug)
    assert out.read_bytes() == before
    assert _debris(tmp_path) == []


def _writers(model, coded, tmp_path):
    """Every writer of autocode, each with an output path (name -> (path, write()))."""
    report = measure_agreement(coded, n_bootstrap=0)
    sug = model.suggest(coded.segments[:6])
    return {
        "codebook": (tmp_path / "book.csv", lambda p: model.codebook.write_csv(p)),
        "coded": (tmp_path / "coded.csv", lambda p: write_coded(p, coded)),
        "precoded.csv": (tmp_path / "pre.csv", lambda p: write_suggestions(p, sug)),
        "precoded.jsonl": (tmp_path / "pre.jsonl", lambda p: write_suggestions(p, sug)),
        "precoded.qdpx": (tmp_path / "pre.qdpx", lambda p: write_suggestions(p, sug)),
        "agreement.csv": (tmp_path / "agree.csv", report.write),
        "agreement.html": (tmp_path / "agree.html", report.write),
        "agreement.md": (tmp_path / "agree.md", report.write),
        "disagreements": (tmp_path / "dis.csv", report.write_disagreements),
        "text": (tmp_path / "cv.md", lambda p: write_text(p, "# report\n")),
    }


def test_every_writer_is_atomic(model, coded, tmp_path, monkeypatch):
    """Interrupted after the data is written and before the rename: every output keeps its previous bytes."""
    writers = _writers(model, coded, tmp_path)
    for path, _ in writers.values():
        path.write_bytes(b"previous")
        if path.suffix == ".md":
            path.with_suffix(".png").write_bytes(b"previous png")
    before = _snapshot(tmp_path)

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(files_mod.os, "fsync", interrupted)
    for name, (path, write) in writers.items():
        with pytest.raises(KeyboardInterrupt):
            write(path)
        assert _snapshot(tmp_path) == before, name
        assert _debris(tmp_path) == [], name
    monkeypatch.undo()
    for name, (path, write) in writers.items():  # and written whole when nothing goes wrong
        write(path)
        assert path.read_bytes() != b"previous", name
    assert _debris(tmp_path) == []


def test_interrupted_model_save_leaves_the_previous_model(model, book, coded, tmp_path, monkeypatch):
    folder = model.save(tmp_path / "m")
    before = _snapshot(folder)
    other = CodingModel(book, n_splits=2, tune=False, random_state=1, min_examples=1).fit(coded)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(type(other.backend_), "save_files", interrupted)
    with pytest.raises(KeyboardInterrupt):
        other.save(folder)
    assert _snapshot(folder) == before
    assert _debris(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    np.testing.assert_array_equal(CodingModel.load(folder).thresholds_, model.thresholds_)


def test_a_new_model_folder_appears_whole(model, tmp_path, monkeypatch):
    monkeypatch.setattr(files_mod.os, "replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    model.save(tmp_path / "new")  # a new folder is renamed into place in one step
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == ["arrays.npz", "checksums.json", "model.json"]
    assert _debris(tmp_path) == []


def test_unwritable_output_is_one_error(tmp_path):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError, match=r"afile/out\.csv: cannot be written, because .*afile is a file, not a "
                                          r"folder\. Choose another output path\."):
        write_text(tmp_path / "afile" / "out.csv", "x")
    with pytest.raises(OutputError, match=r"afile/sub/out\.csv: cannot be written, because .*afile is a file"):
        write_text(tmp_path / "afile" / "sub" / "out.csv", "x")
    with pytest.raises(OutputError, match=r"is a folder; give a file name for this output"):
        write_text(tmp_path, "x")
    with pytest.raises(ValueError, match="writes whole files"):
        with atomic_write(tmp_path / "x", "a"):
            pass


# -- 3. concurrent writers ---------------------------------------------------------------------------------------
def _hold_lock(path, ready, release):
    with output_lock(path):
        ready.set()
        release.wait(30)


def test_a_second_process_writing_the_same_file_is_refused(tmp_path):
    out = tmp_path / "report.md"
    ctx = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    ready, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(out, ready, release))
    holder.start()
    try:
        assert ready.wait(30)
        with pytest.raises(OutputError, match=rf"report\.md: another autocode process {holder.pid} on .* is writing "
                                              r"this file \(lock .*report\.md\.lock\)\. Wait for it to finish"):
            write_text(out, "mine")
        assert not out.exists()
    finally:
        release.set()
        holder.join(30)
    write_text(out, "mine")  # the lock is gone with its holder's block
    assert out.read_text() == "mine" and not lock_path(out).exists()


def test_cli_refuses_an_output_another_process_writes(coded_csv, tmp_path, capsys):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        out = tmp_path / "agreement.csv"
        lock_path(out).write_text(json.dumps({"pid": sleeper.pid, "host": os.uname().nodename}))
        assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"another autocode process {sleeper.pid}" in err and not out.exists()
    finally:
        sleeper.kill()
        sleeper.wait()
    # the same lock, its process gone: stale, taken over
    assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(out)]) == 0
    assert out.exists() and not lock_path(out).exists()


def test_stale_unreadable_lock_is_taken_over(tmp_path, monkeypatch):
    out = tmp_path / "x.txt"
    lock_path(out).write_text("")  # its writer died before writing its pid
    with pytest.raises(OutputError, match="another autocode process is writing this file"):
        write_text(out, "x")
    monkeypatch.setattr(files_mod, "STALE_EMPTY_LOCK_S", -1.0)
    write_text(out, "x")
    assert out.read_text() == "x"


# -- 4. a fitted model is never lost -----------------------------------------------------------------------------
def test_train_checks_the_output_folder_before_fitting(coded_csv, book, tmp_path, capsys, monkeypatch):
    book.write_csv(tmp_path / "book.csv")
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setattr(CodingModel, "fit", _must_not_fit)
    assert main(["train", "--codebook", str(tmp_path / "book.csv"), "--data", str(coded_csv),
                 "--out", str(tmp_path / "afile" / "model")]) == 1
    assert capsys.readouterr().err == (f"autocode train: error: {tmp_path}/afile/model: cannot be written, because "
                                       f"{tmp_path}/afile is a file, not a folder. Choose another output path.\n")


def test_train_saves_to_a_fallback_when_the_output_fails(coded_csv, book, tmp_path, capsys, monkeypatch):
    book.write_csv(tmp_path / "book.csv")
    monkeypatch.chdir(tmp_path)
    real_save = CodingModel.save
    out = tmp_path / "model"

    def save(self, path):
        if Path(path) == out:
            raise OutputError(f"{path}: cannot be written (No space left on device).")
        return real_save(self, path)

    monkeypatch.setattr(CodingModel, "save", save)
    assert main(["-q", "train", "--codebook", "book.csv", "--data", str(coded_csv), "--no-tune",
                 "--folds", "2", "--out", str(out)]) == 1
    err = capsys.readouterr().err
    fallback = next(tmp_path.glob("autocode-model-*"))
    assert err == (f"autocode train: error: {out}: cannot be written (No space left on device). The fitted model was "
                   f"saved to {fallback} instead; move that folder where you want it.\n")
    assert CodingModel.load(fallback).codes_


# -- 5. model integrity --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("edit", [hostile.swap_codes,
                                  lambda f: hostile.edit_backend_setting(f, "context_weight", 0.25)])
def test_an_edited_model_json_is_refused(model, tmp_path, edit):
    folder = model.save(tmp_path / "m")
    edit(folder)
    with pytest.raises(ModelFileError, match=r"m/model\.json: changed since it was saved \(its SHA-256 does not "
                                             r"match checksums\.json\); the file was edited or damaged\. Copy"):
        CodingModel.load(folder)


def test_every_file_of_a_model_folder_is_covered(model, tmp_path):
    folder = model.save(tmp_path / "m")
    listed = json.loads((folder / "checksums.json").read_text())["files"]
    assert sorted(listed) == ["arrays.npz", "model.json"]
    hostile.flip_byte(folder / "arrays.npz")
    with pytest.raises(ModelFileError, match=r"arrays\.npz: changed since it was saved"):
        CodingModel.load(folder)


def test_the_manifest_is_checked_as_a_whole(model, tmp_path):
    folder = model.save(tmp_path / "m")
    doc = json.loads((folder / "checksums.json").read_text())
    doc["files"]["model.json"] = "0" * 64
    (folder / "checksums.json").write_text(json.dumps(doc))
    with pytest.raises(ModelFileError, match=r"checksums\.json: was edited \(its own checksum does not match"):
        CodingModel.load(folder)
    (folder / "checksums.json").write_text("{")
    with pytest.raises(ModelFileError, match=r"checksums\.json: not a readable checksum list"):
        CodingModel.load(folder)
    (folder / "evil").write_text("x")
    (folder / "checksums.json").write_text(make_manifest(folder, ["model.json", "arrays.npz"],
                                                         keep={"../evil": "0" * 64}))
    with pytest.raises(ModelFileError, match=r"lists '\.\./evil', which is not a plain file name"):
        CodingModel.load(folder)


def test_a_current_model_without_its_manifest_is_refused(model, tmp_path):
    folder = model.save(tmp_path / "m")
    (folder / "checksums.json").unlink()
    with pytest.raises(ModelFileError, match=r"m: missing checksums\.json, which every model saved by autocode "
                                             r".* \(format 4\) has"):
        CodingModel.load(folder)


def test_format_2_folders_load_as_before(model, tmp_path):
    """autocode 0.2 development builds wrote format 2: checksums of the other files inside model.json."""
    from autocode.checksum import sha256_file

    folder = model.save(tmp_path / "m")
    doc = json.loads((folder / "model.json").read_text())
    doc.update(format_version=2, arrays_sha256=sha256_file(folder / "arrays.npz"), files_sha256={})
    del doc["files"]
    (folder / "model.json").write_text(json.dumps(doc, ensure_ascii=False))
    (folder / "checksums.json").unlink()
    np.testing.assert_array_equal(CodingModel.load(folder).predict_proba(["社区党支部"]),
                                  model.predict_proba(["社区党支部"]))
    hostile.flip_byte(folder / "arrays.npz")
    with pytest.raises(ModelFileError, match=r"arrays\.npz: checksum does not match model\.json"):
        CodingModel.load(folder)


def test_novelty_scorer_is_covered_with_the_model(model, coded, tmp_path):
    folder = model.save(tmp_path / "m")
    scorer = NoveltyScorer(space="lsa", n_splits=2).fit(model, coded)
    scorer.save(folder)
    listed = json.loads((folder / "checksums.json").read_text())["files"]
    assert sorted(listed) == ["arrays.npz", "model.json", "novelty.json", "novelty.npz"]
    CodingModel.load(folder)  # the model's entries are kept
    assert NoveltyScorer.load(folder).codes_ == scorer.codes_
    doc = json.loads((folder / "novelty.json").read_text())
    doc["codes"] = doc["codes"][::-1]
    (folder / "novelty.json").write_text(json.dumps(doc, ensure_ascii=False))
    with pytest.raises(ModelFileError, match=r"novelty\.json: changed since it was saved.*Refit the novelty scorer"):
        NoveltyScorer.load(folder)
    model.save(folder)  # a model saved again: the old scorer is not listed any more
    with pytest.raises(ModelFileError, match=r"novelty\.json: not listed in .*checksums\.json.*Refit"):
        NoveltyScorer.load(folder)


# -- 6. hostile inputs: one-line errors ---------------------------------------------------------------------------
def _table(path: Path, rows) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["document", "segment", "speaker", "text", "coder", "codes"])
        w.writerows(rows)
    return path


def test_training_texts_all_empty_is_one_error(book, tmp_path, capsys):
    book.write_csv(tmp_path / "book.csv")
    data = _table(tmp_path / "empty.csv", [(f"D{d}", s, "受访者", "", "E", "party" if s % 2 else "council")
                                           for d in range(4) for s in range(6)])
    assert main(["train", "--codebook", str(tmp_path / "book.csv"), "--data", str(data),
                 "--out", str(tmp_path / "m")]) == 1
    assert capsys.readouterr().err.endswith(
        "error: All 24 training segments have an empty text, so there is nothing to learn from. Check that the "
        "'text' column holds the segments' words.\n")
    assert not (tmp_path / "m").exists()


def test_training_texts_without_words_do_not_crash(book, tmp_path):
    data = _table(tmp_path / "punct.csv", [(f"D{d}", s, "受访者", "。。", "E", "party" if s % 2 else "council")
                                           for d in range(4) for s in range(6)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = CodingModel(book, n_splits=2, tune=False).fit(read_coded(data, codebook=book))
    assert model.predict_proba(["。"]).shape == (1, 2)


def test_agree_with_no_overlapping_segments_is_an_error(tmp_path, capsys):
    rows = [("D1", i, "", "文本", "E" if i < 3 else "A", "x" if i % 2 else "") for i in range(6)]
    data = _table(tmp_path / "c.csv", rows)
    assert main(["agree", str(data), "--out", str(tmp_path / "a.md")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error: No segment is coded by two of the coders ['E', 'A'], so there is " \
                                    "nothing to compare (E coded D1/0, D1/1, D1/2; A coded D1/3, D1/4, D1/5)" in err
    assert not (tmp_path / "a.md").exists()


def test_agree_with_a_coder_who_applied_nothing_is_an_error(tmp_path, capsys):
    rows = [("D1", i, "", "文本", c, "x" if c == "E" and i % 2 else "") for i in range(6) for c in "EA"]
    assert main(["agree", str(_table(tmp_path / "c.csv", rows)), "--out", str(tmp_path / "a.md")]) == 1
    assert "error: Coder(s) ['A'] applied no code to any segment they coded, so agreement with them cannot be " \
           "measured" in capsys.readouterr().err


def test_one_document_gives_no_bootstrap_interval():
    segs = [Segment("D1", str(i), "文本") for i in range(6)]
    corpus = CodedCorpus(segs, {"E": {s.key: {"x"} if i % 2 else set() for i, s in enumerate(segs)},
                                "A": {s.key: {"x"} if i % 3 else set() for i, s in enumerate(segs)}})
    with pytest.warns(Warning, match=r"No confidence intervals: the coding covers one document \(D1\), and the "
                                     r"bootstrap resamples documents"):
        report = measure_agreement(corpus, n_bootstrap=200)
    assert all(r["ci_low"] is None and r["ci_high"] is None for r in report.rows)
    assert "No confidence intervals: the coding covers one document" in report.to_markdown()


# -- 7. the hostile corpus: every attack refused -----------------------------------------------------------------
@pytest.mark.parametrize("build", [
    lambda p: hostile.qdpx(p, hostile.BILLION_LAUGHS),
    lambda p: hostile.qdpx(p, hostile.EXTERNAL_ENTITY),
    *[lambda p, n=n: hostile.qdpx(p, hostile.MINIMAL_PROJECT, {n: b"x"}) for n in hostile.ZIP_SLIP_NAMES],
    lambda p: hostile.zip_bomb(p),
], ids=["billion-laughs", "external-entity", *[f"zip-slip-{i}" for i in range(4)], "zip-bomb"])
def test_hostile_projects_are_refused(tmp_path, build):
    path = build(tmp_path / "p.qdpx")
    with pytest.raises(FormatError, match=r"DTD or entities|leaves the archive|zip bomb"):
        read_project(path)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_planted_pickle_never_runs(model, tmp_path):
    folder = model.save(tmp_path / "m")
    marker = tmp_path / "pwned"
    hostile.plant_pickle(folder, marker)
    with pytest.raises(ModelFileError, match=r"cannot read arrays without pickle"):
        CodingModel.load(folder)
    assert not marker.exists()


def test_a_written_project_round_trips_atomically(tmp_path):
    project = read_project(hostile.qdpx(tmp_path / "in.qdpx", hostile.MINIMAL_PROJECT))
    write_qdpx(tmp_path / "out.qdpx", project)
    assert read_project(tmp_path / "out.qdpx").name == "p" and _debris(tmp_path) == []
