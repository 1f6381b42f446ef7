"""The hostile-input corpus: builders of the attack files the security tests feed to autocode.

Every file is built in the test (no binary blobs in the repository). Each builder returns the path it wrote;
tests/test_safety.py checks that every one is refused, and tests/test_qdpx.py, test_model.py and
test_transformer.py use them for the format-specific messages.

XML:      BILLION_LAUGHS, EXTERNAL_ENTITY (a .qde that expands entities or reads a local file)
Archives: qdpx() (any entries), ZIP_SLIP_NAMES (entries that leave the archive), zip_bomb() (a highly
          compressed entry), SOURCE_ESCAPES (source paths pointing outside the archive)
Models:   plant_pickle() (an object array whose unpickling runs code), flip_byte() (damaged or tampered
          weights), swap_codes() and edit_backend_setting() (hand edits of model.json), reseal() (an attacker
          who also recomputes the checksums)
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

from autocode.checksum import MANIFEST, make_manifest, read_manifest

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE Project [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<Project xmlns="urn:QDA-XML:project:1.0" name="&b;"/>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE Project [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<Project xmlns="urn:QDA-XML:project:1.0" name="&x;"/>"""
ZIP_SLIP_NAMES = ["../evil.txt", "/etc/evil.txt", "sources/../../evil.txt", "C:\\evil.txt"]
SOURCE_ESCAPES = ["absolute:///etc/passwd", "relative:///../../secret.txt", "file:///etc/passwd", "/etc/passwd"]
MINIMAL_PROJECT = '<?xml version="1.0" encoding="utf-8"?>\n<Project xmlns="urn:QDA-XML:project:1.0" name="p"/>'


def qdpx(path: Path, qde: str | bytes, files: dict[str, bytes] | None = None) -> Path:
    """A .qdpx archive holding ``project.qde`` and ``files`` (names written as given, ``../`` included)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.qde", qde)
        for name, data in (files or {}).items():
            zf.writestr(name, data)
    return path


def zip_bomb(path: Path, qde: str = MINIMAL_PROJECT, size: int = 4 * 2**20) -> Path:
    """A .qdpx whose source entry compresses ``size`` zero bytes about a thousand times."""
    return qdpx(path, qde, {"sources/big.txt": b"\0" * size})


class Payload:
    """Unpickling this creates the file ``marker``: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def reseal(folder: Path) -> Path:
    """Recompute ``checksums.json`` over the files it lists, as an attacker who edits a model on purpose would."""
    names = list(read_manifest(folder) or {})
    (folder / MANIFEST).write_text(make_manifest(folder, names), encoding="utf-8")
    return folder


def plant_pickle(folder: Path, marker: Path, array: str = "thresholds") -> Path:
    """Replace ``array`` in the model's ``arrays.npz`` with a pickled object that creates ``marker`` when
    unpickled, and reseal the checksums so that only the refusal to unpickle stops it."""
    with np.load(folder / "arrays.npz") as z:
        arrays = {k: z[k] for k in z.files}
    evil = np.empty(1, dtype=object)
    evil[0] = Payload(marker)
    arrays[array] = evil
    np.savez(folder / "arrays.npz", **arrays)
    return reseal(folder)


def flip_byte(path: Path, offset: int = -4) -> Path:
    """Change one byte of a file (damaged download, or weights edited in place)."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _edit_doc(folder: Path, edit) -> Path:
    path = folder / "model.json"
    doc = json.loads(path.read_text(encoding="utf-8"))
    edit(doc)
    path.write_text(json.dumps(doc, ensure_ascii=False, indent=1), encoding="utf-8")
    return folder


def swap_codes(folder: Path, i: int = 0, j: int = 1) -> Path:
    """Swap two entries of the code list in ``model.json`` (the model would then relabel its predictions)."""
    def edit(doc):
        doc["codes"][i], doc["codes"][j] = doc["codes"][j], doc["codes"][i]
    return _edit_doc(folder, edit)


def edit_backend_setting(folder: Path, key: str, value) -> Path:
    """Change one backend setting in ``model.json``."""
    def edit(doc):
        doc["backend_params"][key] = value
    return _edit_doc(folder, edit)
