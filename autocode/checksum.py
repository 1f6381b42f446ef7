"""SHA-256 of files, and the manifest ``checksums.json`` that covers every file of a model folder.

The manifest maps each file autocode wrote into the folder (``model.json`` included) to its SHA-256, and holds
the SHA-256 of that mapping itself, so a changed, damaged or swapped file is found when the folder is loaded,
and the message names it. It detects changes; it is not a signature (whoever edits a model on purpose can
recompute it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .exceptions import ModelFileError

__all__ = ["sha256_file", "MANIFEST", "make_manifest", "read_manifest", "verify_files"]

MANIFEST = "checksums.json"
MANIFEST_FORMAT = "autocode-checksums"
MANIFEST_FORMAT_VERSION = 1


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _digest(files: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(files, sort_keys=True, ensure_ascii=True).encode("ascii")).hexdigest()


def make_manifest(folder: str | Path, names: Iterable[str], keep: dict[str, str] | None = None) -> str:
    """The text of a manifest listing ``names`` (files in ``folder``) with their SHA-256, plus the entries of
    ``keep`` (name -> SHA-256 of files written before, e.g. a model's files when the novelty scorer is added)."""
    folder = Path(folder)
    files = dict(keep or {})
    files.update({name: sha256_file(folder / name) for name in names})
    files = dict(sorted(files.items()))
    doc = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_FORMAT_VERSION, "algorithm": "sha256",
           "files": files, "manifest_sha256": _digest(files)}
    return json.dumps(doc, indent=1) + "\n"


def read_manifest(folder: str | Path) -> dict[str, str] | None:
    """The files listed in ``folder``'s manifest (name -> SHA-256), or ``None`` when it has none; raises
    :class:`ModelFileError` when the manifest itself is damaged or was edited."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelFileError(f"{path}: not a readable checksum list ({err}). The folder is damaged; copy it "
                             "again or retrain.") from None
    files = doc.get("files") if isinstance(doc, dict) else None
    if (not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT or not isinstance(files, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items())):
        raise ModelFileError(f"{path}: not an autocode checksum list (no 'format': '{MANIFEST_FORMAT}' with "
                             "'files'). The folder is damaged; copy it again or retrain.")
    if doc.get("manifest_sha256") != _digest(files):
        raise ModelFileError(f"{path}: was edited (its own checksum does not match its list of files). Copy the "
                             "folder again or retrain.")
    for name in files:
        if Path(name).name != name or name in ("", ".", ".."):
            raise ModelFileError(f"{path}: lists {name!r}, which is not a plain file name in the folder. The "
                                 "file was tampered with.")
    return files


def verify_files(folder: str | Path, names: Iterable[str], manifest: dict[str, str], *, redo: str) -> None:
    """Check that each of ``names`` is listed in ``manifest``, exists in ``folder`` and has the listed SHA-256;
    else a :class:`ModelFileError` naming the file (``redo`` says how to get a good copy)."""
    folder = Path(folder)
    for name in names:
        p = folder / name
        if name not in manifest:
            raise ModelFileError(f"{p}: not listed in {folder / MANIFEST}, so it cannot be checked; it was not "
                                 f"written with the rest of the folder. {redo}")
        if not p.exists():
            raise ModelFileError(f"{folder}: missing {name}. The folder is incomplete; copy the whole folder.")
        if sha256_file(p) != manifest[name]:
            raise ModelFileError(f"{p}: changed since it was saved (its SHA-256 does not match {MANIFEST}); the "
                                 f"file was edited or damaged. {redo}")
