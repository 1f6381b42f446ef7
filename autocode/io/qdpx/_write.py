"""Write REFI-QDA files: a project as a ``.qdpx`` archive, pre-coded suggestions as a project, a codebook as
a ``.qdc``.

:func:`write_precoded_qdpx` is the one writer of pre-coded projects: :func:`write_qdpx` given
:class:`~autocode.Suggestions`, and :func:`autocode.io.write_suggestions` given a ``.qdpx`` path, both call it.
Text sources are written as UTF-8 under ``sources/``; positions are written in the project's convention
(``_offsets.py``). Characters XML cannot hold are dropped; carriage returns are kept (``&#13;``).
"""

from __future__ import annotations

import copy
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from ..._files import atomic_write, write_bytes
from ...codebook import Codebook
from ...exceptions import AutocodeWarning
from ...suggestion import Suggestions
from .._safezip import SafeZip
from ..transcript import Document
from ._model import NS, NS_CODEBOOK, Source, now
from ._offsets import POSITIONS, Positions
from ._project import Project
from ._read import read_project, source_member

__all__ = ["project_xml", "write_precoded_qdpx", "write_qdc", "write_qdpx"]

_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(value) -> str:
    return _BAD_XML_CHARS.sub("", str(value))


def _el(parent: Element | None, tag: str, attrs: dict | None = None, text: str | None = None) -> Element:
    qa = {k: _clean(v) for k, v in (attrs or {}).items() if v is not None}
    el = Element(tag, qa) if parent is None else SubElement(parent, tag, qa)
    if text is not None:
        el.text = _clean(text)
    return el


def _qualified(el: Element) -> Element:
    """A copy of a kept element (its tags are unqualified: the root's ``xmlns`` gives their namespace)."""
    return copy.deepcopy(el)


def _code_elements(parent: Element, project: Project) -> None:
    book = project.codebook

    def add(into: Element, cid: str):
        code = book[cid]
        guid = project.code_guid(cid)
        attrs = {"guid": guid, "name": code.name,
                 "isCodable": "false" if code.extra.get("isCodable") is False else "true"}
        if code.color and re.fullmatch(r"#([0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})", code.color):
            attrs["color"] = code.color
        attrs.update(project.code_attrs.get(guid.upper(), {}))
        el = SubElement(into, "Code", {k: _clean(v) for k, v in attrs.items()})
        if code.description:
            SubElement(el, "Description").text = _clean(code.description)
        for x in project.code_extra.get(guid.upper(), []):
            el.append(_qualified(x))
        for child in book.children(cid):
            add(el, child)

    codes = SubElement(parent, "Codes")
    for root in book.roots:
        add(codes, root)


def _text_source_element(parent: Element, src: Source, project: Project, files: dict) -> None:
    attrs = {"guid": src.guid, "name": src.name or None}
    if src.text is not None and not src.inline:
        attrs["plainTextPath"] = src.plain_path or f"internal://{src.guid}.txt"
        member = source_member(attrs["plainTextPath"], Element(src.kind), Path("x"))
        member = project.source_folder + member[len("sources"):]
        # never a BOM: REFI positions do not count it, but QualCoder's importer keeps it as a character, which
        # put every coding one character early after a round trip through QualCoder (its exporter writes one)
        files[member] = src.text.encode("utf-8")
    elif src.plain_path:
        attrs["plainTextPath"] = src.plain_path
    attrs["richTextPath"] = src.rich_path
    attrs.update(src.attrs)
    el = _el(parent, src.kind, attrs)
    if src.description is not None:
        _el(el, "Description", text=src.description)
    if src.inline:
        _el(el, "PlainTextContent", text=src.text)
    conv = Positions(src.text, project.positions) if src.text is not None else None
    for sel in src.selections:
        start, end = (sel.start, sel.end) if conv is None else (conv.position(sel.start), conv.position(sel.end))
        sattrs = {"guid": sel.guid, "name": sel.name, "startPosition": str(start), "endPosition": str(end),
                  "creatingUser": sel.user}
        sattrs.update(sel.attrs)
        s_el = _el(el, "PlainTextSelection", sattrs)
        if sel.description is not None:
            _el(s_el, "Description", text=sel.description)
        for c in sel.codings:
            c_el = _el(s_el, "Coding", {"guid": c.guid, "creatingUser": c.user, **c.attrs})
            _el(c_el, "CodeRef", {"targetGUID": c.code})
            for x in c.extra:
                c_el.append(_qualified(x))
        for x in sel.extra:
            s_el.append(_qualified(x))
    for x in src.extra:
        el.append(_qualified(x))


def project_xml(project: Project) -> tuple[bytes, dict[str, bytes]]:
    """The ``project.qde`` XML of a project and the source files it refers to (archive entry -> bytes)."""
    files: dict[str, bytes] = {}
    attrs = {"name": project.name, **{k: v for k, v in project.attrs.items() if k != "name"}}
    attrs.setdefault("origin", "autocode")
    root = _el(None, "Project", {"xmlns": NS, **attrs})
    if project.users:
        users = _el(root, "Users")
        for u in project.users:
            _el(users, "User", {"guid": u.guid, "name": u.name or None, "id": u.id or None, **u.attrs})
    if len(project.codebook):
        _code_elements(_el(root, "CodeBook"), project)
    for tag in ("Variables", "Cases"):
        for x in project.sections.get(tag, []):
            root.append(_qualified(x))
    if project.sources:
        sources = _el(root, "Sources")
        for src in project.sources:
            if src.element is not None:
                sources.append(_qualified(src.element))
            elif src.kind == "TextSource":
                _text_source_element(sources, src, project, files)
    if project.notes:
        notes = _el(root, "Notes")
        for n in project.notes:
            _text_source_element(notes, n, project, files)
    for tag in ("Links", "Sets", "Graphs", "Description", "NoteRef"):
        for x in project.sections.get(tag, []):
            root.append(_qualified(x))
    return _serialize(root), files


def _serialize(root: Element) -> bytes:
    """XML bytes; carriage returns in text are written as ``&#13;`` so that parsing gives them back."""
    texts = [x.text for x in root.iter() if x.text and "\r" in x.text]
    mark = None
    if texts:
        joined = "".join(x.text or "" for x in root.iter())
        mark = next(chr(c) for c in range(0xE000, 0xF8FF) if chr(c) not in joined)
        for x in root.iter():
            if x.text and "\r" in x.text:
                x.text = x.text.replace("\r", mark)
    indent(root, "  ")
    data = ('<?xml version="1.0" encoding="utf-8"?>\n' + tostring(root, encoding="unicode")).encode("utf-8")
    if mark:
        data = data.replace(mark.encode("utf-8"), b"&#13;")
    return data


def write_qdpx(path: str | Path, project, *, documents: Sequence[Document] | None = None,
               positions: str | None = None) -> Path:
    """Write a project as a ``.qdpx`` archive (``project.qde`` and ``sources/``).

    ``project`` is a :class:`Project` (e.g. from :func:`read_project`: everything read is written back) or
    :class:`~autocode.Suggestions` (then as :func:`write_precoded_qdpx`). ``positions`` overrides the
    project's way of counting positions (:data:`POSITIONS`).

    Text sources are written as UTF-8 files under ``sources/``, without a byte order mark (QualCoder counts one
    as a character);
    other entries of the archive the project was read from (rich text, pictures, PDFs) are copied unchanged.
    A project read from a bare ``.qde`` keeps only the plain text of its sources.
    """
    if isinstance(project, Suggestions):
        return write_precoded_qdpx(path, project, documents=documents, positions=positions or "chars")
    path = Path(path)
    if positions is not None:
        if positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {positions!r}")
        project = copy.copy(project)
        project.positions = positions
    qde, files = project_xml(project)
    keep: dict[str, bytes] = {}
    copy_from = [n for n, data in project.files.items() if data is None and n not in files]
    if copy_from and project.path is not None and Path(project.path).suffix.lower() == ".qdpx" \
            and Path(project.path).exists():
        with SafeZip(project.path) as zf:
            for n in copy_from:
                found = zf.find(n)
                if found is not None:
                    keep[n] = zf.read(found)
    keep.update({n: data for n, data in project.files.items() if data is not None and n not in files})
    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("project.qde", qde)
        for name, data in {**keep, **files}.items():
            zf.writestr(name, data)
    return path


def write_precoded_qdpx(path: str | Path, suggestions: Suggestions, documents: Sequence[Document] | None = None,
                        *, positions: str = "chars") -> Path:
    """Write pre-coded suggestions as a REFI-QDA project for review in a QDA tool.

    The project holds the codebook, one text source per document and, for every segment with accepted
    suggestions, a selection coded by a user named after the model (``suggestions.coder``), whose
    description lists the scores. In the QDA tool, filter by that user to review, accept or delete.

    When every document comes from one ``.qdpx`` project (``Document.path`` = ``"project.qdpx#GUID"``, as
    :meth:`Project.documents` and ``autocode precode project.qdpx`` give), the suggestions are added to a copy
    of that project, so that its codes and sources keep their GUIDs and the reviewer's tool can merge them.

    This is the one writer of pre-coded projects: :func:`write_qdpx` with suggestions and
    :func:`autocode.io.write_suggestions` with a ``.qdpx`` path call it. Returns the path written.
    """
    base = _base_project(documents)
    project = base if base is not None else Project(
        name=f"autocode pre-coding ({suggestions.coder})",
        attrs={"origin": "autocode", "creationDateTime": now()}, positions=positions)
    project.positions = positions
    project.add_suggestions(suggestions, documents)
    return write_qdpx(path, project)


def _base_project(documents) -> Project | None:
    """The ``.qdpx`` project every document was read from (``Document.path`` = ``"project.qdpx#GUID"``)."""
    if not documents:
        return None
    origins = {str(d.path).rsplit("#", 1)[0] for d in documents if d.path and "#" in str(d.path)}
    if len(origins) != 1 or not all(d.path and "#" in str(d.path) for d in documents):
        return None
    origin = Path(origins.pop())
    if origin.suffix.lower() != ".qdpx" or not origin.exists():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)  # already reported when the documents were read
        return read_project(origin)


def write_qdc(path: str | Path, codebook: Codebook) -> Path:
    """Write a codebook as a REFI-QDA ``.qdc`` file."""
    path = Path(path)
    project = Project(codebook=codebook)
    root = Element("CodeBook", {"xmlns": NS_CODEBOOK, "origin": "autocode"})
    _code_elements(root, project)
    write_bytes(path, _serialize(root))
    return path

