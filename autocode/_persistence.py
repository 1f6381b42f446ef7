"""Saving and loading a fitted :class:`~autocode.model.CodingModel`, with every format migration in one place.

A model folder holds ``model.json`` (settings, codebook, codes, versions), ``arrays.npz`` (calibration,
thresholds and the backend's arrays), any files the backend writes itself, and ``checksums.json``, the SHA-256
of every other file (see :mod:`autocode.checksum`), checked before anything is read. Nothing is pickled:
loading a model someone sent you cannot run code. A folder is written whole or not at all: the files go into a
staging folder beside it and are moved into place at the end, ``checksums.json`` last.

Format versions:

1. autocode 0.1.x. Settings and backend parameters added during 0.1.x may be missing (files from before they
   existed); :func:`_migrate_1` fills each with the value that reproduces the model as it was saved.
2. autocode 0.2 (development): every setting and backend parameter present; adds ``global_threshold``.
3. autocode 0.2: ``checksums.json`` covers every file, ``model.json`` included (formats 1 and 2 kept the
   SHA-256 of the other files in ``model.json``, which nothing covered); ``model.json`` lists the backend's
   files in ``files``. A format-3 folder without ``checksums.json`` is refused; formats 1 and 2 have none and
   load as before. Adds ``examples`` (coded segments kept per code, to show the ones most like a suggestion)
   and the setting ``keep_examples``; :func:`_migrate_2` gives older models none (their suggestions still
   name their words).
4. autocode 0.2: ``rules``, the model's coding rules (code, pattern, kind, speaker, heading each), and the
   TF-IDF backends' ``rules_weight``, ``guide`` and ``guide_weight`` (the interview guide); :func:`_migrate_3`
   gives older models no rules, ``rules_weight`` 0 and ``guide_weight`` 0 (their scores unchanged).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._files import staged_folder
from ._version import __version__
from .backends.base import get_backend
from .checksum import MANIFEST, make_manifest, read_manifest, sha256_file, verify_files
from .codebook import Codebook
from .exceptions import AutocodeError, ModelFileError

MODEL_FORMAT = "autocode-model"
MODEL_FORMAT_VERSION = 4
ARRAYS = "arrays.npz"
META = "model.json"

SETTINGS = ("target", "min_examples", "n_splits", "random_state", "threshold_metric", "threshold_prior",
            "calibration_prior", "use_codebook", "min_silent_segments", "tune", "keep_examples", "tune_segments")
"""The CodingModel parameters saved with a model (the rest, like ``progress``, are settings of a run)."""

# Settings and backend parameters that format-1 files may lack, with the value that reproduces such a model.
_V1_SETTINGS = {"threshold_metric": "kappa", "threshold_prior": 10.0, "calibration_prior": 0.0,
                "use_codebook": True, "min_silent_segments": 10, "tune": False}
_V1_BACKEND_PARAMS = {
    # no position feature, one classifier per code, no following segment (autocode 0.1.0)
    "tfidf.v1": {"position_bins": 0, "hierarchy": False, "following_weight": 0.0},
    # and raw (not centred) embeddings in one model with the TF-IDF blocks
    "tfidf-e5.v1": {"position_bins": 0, "hierarchy": False, "following_weight": 0.0, "center": False,
                    "fusion": "early"},
}


def _migrate_1(doc: dict) -> dict:
    """Format 1 -> 2."""
    doc = dict(doc)
    doc["settings"] = {**_V1_SETTINGS, **doc["settings"]}
    doc["backend_params"] = {**_V1_BACKEND_PARAMS.get(doc["backend"], {}), **doc["backend_params"]}
    doc.setdefault("global_threshold", None)
    doc["format_version"] = 2
    return doc


def _migrate_2(doc: dict) -> dict:
    """Format 2 -> 3: the checksums (checked before migrating) leave ``model.json``; ``files`` lists the
    backend's files; no kept examples."""
    doc = dict(doc)
    doc["files"] = list(doc.pop("files_sha256", None) or {})
    doc.pop("arrays_sha256", None)
    doc["settings"] = {"keep_examples": 0, **doc["settings"]}
    doc.setdefault("examples", {"segments": [], "codes": {}})
    doc["format_version"] = 3
    return doc


def _migrate_3(doc: dict) -> dict:
    """Format 3 -> 4: no rules; the TF-IDF backends without rule features and without the interview guide
    (models fitted before either existed)."""
    doc = dict(doc)
    doc.setdefault("rules", [])
    if doc["backend"] in _V1_BACKEND_PARAMS:
        doc["backend_params"] = {"rules_weight": 0.0, "guide": None, "guide_weight": 0.0, **doc["backend_params"]}
    doc["format_version"] = 4
    return doc


_MIGRATIONS = {1: _migrate_1, 2: _migrate_2, 3: _migrate_3}
"""Saved format version -> the function that brings a document of that version one version forward."""

_ADDED_PARAMS = {"codebook.v1": {"min_letters": 0, "prior_sentences": False}}
"""Backend parameters added within the current format version, with the value that reproduces a model saved
before them (``codebook.v1``: short turns suggested as any other, segments matched whole)."""

_ADDED_SETTINGS = {"tune_segments": None}
"""CodingModel settings added within the current format version, with the value that reproduces a model saved
before them (tuning candidates compared on every segment)."""


REDO = "Copy the model folder again or retrain."


def save_model(model, path: str | Path) -> Path:
    """Write a fitted model into the folder ``path`` (created if needed; other files in it stay)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ModelFileError(f"{path} is a file; a model is saved as a folder. Choose a new folder name.")
    backend = model.backend_
    meta, arrays = backend.get_state()
    arrays = {f"backend/{k}": np.asarray(v) for k, v in arrays.items()}
    arrays["calibration"] = model.calibration_
    arrays["thresholds"] = model.thresholds_
    for k, v in arrays.items():
        if v.dtype == object:
            raise AutocodeError(f"Array {k!r} has dtype object and cannot be saved without pickle.")
    with staged_folder(path, last=(MANIFEST,)) as stage:
        with open(stage / ARRAYS, "wb") as f:
            np.savez(f, **arrays)
        files = list(backend.save_files(stage))
        doc = _model_doc(model, backend, meta, files)
        (stage / META).write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
        (stage / MANIFEST).write_text(make_manifest(stage, [META, ARRAYS, *files]), encoding="utf-8")
    return path


def _model_doc(model, backend, meta: dict, files: list[str]) -> dict:
    """The contents of ``model.json``."""
    return {
        "format": MODEL_FORMAT,
        "format_version": MODEL_FORMAT_VERSION,
        "autocode_version": __version__,
        "name": model.model_name,
        "backend": backend.name,
        "backend_params": _jsonable(backend.params),
        "backend_state": meta,
        "settings": {k: getattr(model, k) for k in SETTINGS},
        "tuning": model.tuning_,
        "codebook": model.codebook.to_dict(),
        "codes": model.codes_,
        "rare_codes": model.rare_codes_,
        "silent_roles": model.silent_roles_,
        "cv_summary": model.cv_summary_,
        "global_threshold": model.global_threshold_,
        "examples": model.examples_,
        "rules": [] if model.rules is None else [
            {"code": r.code, "pattern": r.pattern, "kind": r.kind, "speaker": r.speaker, "heading": r.heading}
            for r in model.rules.rules],
        "training": {"segments": model.n_train_segments_, "documents": model.n_train_documents_,
                     "counts": model.train_counts_},
        "files": files,
    }


def _jsonable(value):
    """Tuples as lists, numpy scalars as Python numbers (so that a saved parameter reads back equal)."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def read_model_doc(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """``model.json`` brought to the current format version, and the arrays, after checking the folder's
    files against their checksums."""
    path = Path(path)
    meta_path, arr_path = path / META, path / ARRAYS
    if not path.is_dir():
        raise ModelFileError(f"{path}: not a model folder. Train one with 'autocode train ... --out {path}'.")
    for p in (meta_path, arr_path):
        if not p.exists():
            raise ModelFileError(f"{path}: missing {p.name}. The folder is incomplete; copy the whole folder.")
    manifest = read_manifest(path)
    if manifest is not None and META in manifest:
        verify_files(path, [META], manifest, redo=REDO)  # before model.json is read
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{meta_path}: not valid JSON ({err}). The file is damaged.") from None
    if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
        raise ModelFileError(f"{meta_path}: not an autocode model file (no 'format': '{MODEL_FORMAT}').")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > MODEL_FORMAT_VERSION or version < 1:
        raise ModelFileError(
            f"{meta_path}: model format version {version!r} was written by autocode "
            f"{doc.get('autocode_version', '?')}; this autocode ({__version__}) reads up to version "
            f"{MODEL_FORMAT_VERSION}. Upgrade autocode (pip install -U autocode) or retrain the model."
        )
    if version >= 3:
        _check_manifest(path, doc, manifest)
    else:
        _check_embedded(path, doc)
    try:
        with np.load(arr_path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except ValueError as err:
        raise ModelFileError(f"{arr_path}: cannot read arrays without pickle ({err}).") from None
    try:
        while doc["format_version"] < MODEL_FORMAT_VERSION:
            doc = _MIGRATIONS[doc["format_version"]](doc)
        doc["backend_params"] = {**_ADDED_PARAMS.get(doc["backend"], {}), **doc["backend_params"]}
        doc["settings"] = {**_ADDED_SETTINGS, **doc["settings"]}
    except (KeyError, TypeError) as err:
        raise ModelFileError(f"{path}: the model files are inconsistent ({type(err).__name__}: {err}).") from None
    return doc, arrays


def _check_manifest(path: Path, doc: dict, manifest: dict[str, str] | None) -> None:
    """Formats 3 and later: ``checksums.json`` must cover ``model.json``, ``arrays.npz`` and the backend's
    files, and every one must match."""
    if manifest is None:
        raise ModelFileError(
            f"{path}: missing {MANIFEST}, which every model saved by autocode {doc.get('autocode_version', '?')} "
            f"(format {doc['format_version']}) has; without it no file of the folder can be checked. Copy the "
            "whole folder again or retrain."
        )
    files = doc.get("files")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise ModelFileError(f"{path / META}: 'files' is not a list of file names. The file was tampered with.")
    verify_files(path, [META, ARRAYS, *files], manifest, redo=REDO)


def _check_embedded(path: Path, doc: dict) -> None:
    """Formats 1 and 2 (no ``checksums.json``): the files are checked against the SHA-256 in ``model.json``."""
    meta_path = path / META
    files = {ARRAYS: doc.get("arrays_sha256"), **(doc.get("files_sha256") or {})}
    for name, expected in files.items():
        if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
            raise ModelFileError(f"{meta_path}: lists the file {name!r}, which is not a plain file name in "
                                 "the model folder. The file was tampered with.")
        p = path / name
        if not p.exists():
            raise ModelFileError(f"{path}: missing {name}. The folder is incomplete; copy the whole folder.")
        if sha256_file(p) != expected:
            raise ModelFileError(
                f"{p}: checksum does not match model.json; the file was changed or damaged. "
                "Copy the model folder again or retrain."
            )


def load_model(cls, path: str | Path):
    """A fitted ``cls`` (CodingModel) from a folder written by :func:`save_model` (any format version)."""
    path = Path(path)
    doc, arrays = read_model_doc(path)
    try:
        book = Codebook.from_dict(doc["codebook"])
        rules = None
        if doc["rules"]:
            from .rules import Rule, RuleSet

            rules = RuleSet([Rule(r["code"], r["pattern"], r["kind"], r.get("speaker"), r.get("heading"))
                             for r in doc["rules"]], book)
        model = cls(book, doc["backend"], backend_params=doc["backend_params"], name=doc.get("name"), rules=rules,
                    **{k: doc["settings"][k] for k in SETTINGS})
        backend_cls = get_backend(doc["backend"])
        barrays = {k[len("backend/"):]: v for k, v in arrays.items() if k.startswith("backend/")}
        backend = backend_cls.from_state(doc["backend_params"], doc["backend_state"], barrays)
        backend.load_files(path)
        codes = list(doc["codes"])
        for c in codes:
            book.check(c)
        calibration, thresholds = arrays["calibration"], arrays["thresholds"]
        if calibration.shape != (len(codes), 2) or thresholds.shape != (len(codes),):
            raise ValueError("calibration/thresholds do not match the number of codes")
        training = doc.get("training", {})
        model.backend_, model.codes_ = backend, codes
        model.calibration_, model.thresholds_ = calibration, thresholds
        model.global_threshold_ = doc["global_threshold"]
        model.examples_ = {"segments": [list(map(str, s)) for s in doc["examples"]["segments"]],
                           "codes": {c: [int(x) for x in v] for c, v in doc["examples"]["codes"].items()}}
        if any(len(s) != 3 for s in model.examples_["segments"]) or any(
                x >= len(model.examples_["segments"]) for v in model.examples_["codes"].values() for x in v):
            raise ValueError("the kept examples do not match their index")
        model.rare_codes_ = dict(doc.get("rare_codes", {}))
        model.silent_roles_ = list(doc.get("silent_roles", []))
        model.cv_summary_ = dict(doc.get("cv_summary", {}))
        model.tuning_ = dict(doc.get("tuning", {}))
        model.n_train_segments_ = training.get("segments")
        model.n_train_documents_ = training.get("documents")
        model.train_counts_ = training.get("counts", {})
    except (KeyError, TypeError, ValueError, AutocodeError) as err:
        raise ModelFileError(f"{path}: the model files are inconsistent ({type(err).__name__}: {err}).") from None
    return model
