"""Read REFI-QDA files: a project (``.qdpx`` archive or bare ``.qde``) or a codebook (``.qdc``).

The XML is parsed with defusedxml and archive entries are size-capped (:mod:`autocode.io._safezip`); a
source's ``plainTextPath`` must point inside the archive (:func:`source_member`). When the plain text is empty or
missing (NVivo fills only the ``.docx``; ATLAS.ti exports can lack the ``.txt``), the text is read from the
source's ``richTextPath`` ``.docx`` (``_richtext.py``). Positions are turned into
Python indices (``_offsets.py``). QualCoder projects (``.qda``) are handed to :func:`read_qualcoder`.
"""

from __future__ import annotations

import copy
from codecs import BOM_UTF8
from pathlib import Path
from xml.etree.ElementTree import Element

from ...codebook import Code, Codebook
from ...exceptions import FormatError
from .._safezip import Limits, SafeZip, parse_xml, safe_member_name
from ..transcript import decode_bytes
from ._model import NS, NS_CODEBOOK, Coding, Selection, Source, User, code_ids
from ._offsets import POSITIONS, convert_positions
from ._project import Project
from ._qualcoder import read_qualcoder
from ._richtext import docx_plain_text

__all__ = ["read_project", "read_qdc", "source_member"]

_SECTIONS = ("Variables", "Cases", "Links", "Sets", "Graphs", "Description", "NoteRef")


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) and tag.startswith("{") else tag


def _strip_namespaces(root: Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str):
            el.tag = _local(el.tag)


def _where(el: Element) -> str:
    bits = [el.tag]
    for key in ("name", "guid", "targetGUID"):
        if el.get(key):
            bits.append(f'{key}="{el.get(key)}"')
    return "<" + " ".join(bits) + ">"


def _need(el: Element, attr: str, path) -> str:
    value = el.get(attr)
    if value is None or not value.strip():
        raise FormatError(f"The element has no {attr!r} attribute, which REFI-QDA requires.", path, _where(el))
    return value.strip()


def _int_attr(el: Element, attr: str, path) -> int:
    raw = _need(el, attr, path)
    try:
        return int(raw)
    except ValueError:
        raise FormatError(f"{attr} must be a whole number, found {raw!r}.", path, _where(el)) from None


def source_member(ref: str, el: Element, path) -> str:
    """The archive entry a ``plainTextPath`` names; raise a :class:`FormatError` for ``path``'s element
    ``el`` when it points outside the archive.

    >>> source_member("internal://0A1B.txt", Element("TextSource"), "p.qdpx")
    'sources/0A1B.txt'
    """
    ref = ref.strip()
    low = ref.lower()
    if low.startswith("internal://"):
        rel = ref[len("internal://"):]
    elif "://" in ref or ref.startswith(("/", "\\")) or (len(ref) > 1 and ref[1] == ":"):
        raise FormatError(
            f"The source's path {ref!r} points outside the project archive (absolute:// or relative:// "
            "paths name files on the exporting computer). autocode reads sources only from inside the "
            ".qdpx: export the project with its sources embedded.",
            path,
            _where(el),
        )
    else:
        rel = ref  # the 'qc' tool writes bare file names, relative to sources/
    name = safe_member_name(rel)
    if name is None or name.startswith("/"):
        raise FormatError(f"The source's path {ref!r} leaves the archive (path traversal); autocode refuses it.",
                          path, _where(el))
    return "sources/" + name


class _Reader:
    """Reads source files of a project from its archive (or from the folder of a bare ``.qde``)."""

    def __init__(self, path: Path, zip_: SafeZip | None, limits: Limits | None = None):
        self.path = path
        self.zip = zip_
        self.limits = limits

    def member(self, ref: str, el: Element) -> str:
        return source_member(ref, el, self.path)

    def read(self, member: str) -> bytes | None:
        if self.zip is not None:
            found = self.zip.find(member)
            return None if found is None else self.zip.read(found)
        folder = self.path.parent.resolve()
        for base in (member, "S" + member[1:]):  # sources/ or Sources/
            candidate = (folder / base).resolve()
            if folder not in candidate.parents:
                return None
            if candidate.is_file():
                return candidate.read_bytes()
        return None


def read_project(path: str | Path, codebook: Codebook | None = None, *, positions: str = "auto",
                 limits: Limits | None = None) -> Project:
    """Read a REFI-QDA project (``.qdpx``, bare ``.qde``), codebook (``.qdc``) or QualCoder project
    (``.qda`` folder or its ``data.qda``, ``.sqlite``, ``.db``).

    Parameters
    ----------
    path : path
        The file.
    codebook : Codebook, optional
        Give project codes the ids of the codebook codes with the same GUID, id or name.
    positions : str
        How the file counts positions (:data:`POSITIONS`), or ``"auto"``: REFI's ``"chars"`` unless the
        selections' names (excerpts of the selected text, as ATLAS.ti writes them) match the text better under
        another convention. The choice is kept in :attr:`Project.positions` and used again for writing.
    limits : Limits, optional
        Caps on archive entries (:class:`autocode.io._safezip.Limits`).

    Raises
    ------
    FormatError
        For a file that is not a project, unsafe XML or archive entries, a malformed element (named in
        the message), or a source path outside the archive.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".qda", ".sqlite", ".db", ".sqlite3"):
        return read_qualcoder(path, codebook=codebook)
    if not path.exists():
        raise FormatError("File not found. Check the path.", path)
    if positions not in (*POSITIONS, "auto"):
        raise ValueError(f"positions must be 'auto' or one of {POSITIONS}, got {positions!r}")
    if suffix == ".qdc":
        root = parse_xml(path.read_bytes(), path)
        _strip_namespaces(root)
        if root.tag != "CodeBook":
            raise FormatError(f"Expected a <CodeBook> root element ({NS_CODEBOOK}), found <{root.tag}>.", path,
                              f"<{root.tag}>")
        project = Project(name=path.stem, path=path, positions="chars")
        _read_codes(root, project, codebook, path)
        return project
    if suffix == ".qde":
        return _parse_project(parse_xml(path.read_bytes(), path), _Reader(path, None, limits), path, codebook,
                              positions)
    with SafeZip(path, limits) as zf:
        qde = [n for n in zf.names if "/" not in n and n.lower().endswith(".qde")]
        if not qde:
            nested = [n for n in zf.names if n.lower().endswith(".qde")]
            hint = (f" It has {nested[0]!r}: REFI-QDA puts project.qde at the top of the archive, so zip the "
                    "contents of that folder, not the folder." if nested else
                    " Is it a REFI-QDA .qdpx export?")
            raise FormatError("The archive has no project.qde entry." + hint, path)
        name = next((n for n in qde if n.lower() == "project.qde"), qde[0])
        root = parse_xml(zf.read(name), path, f"entry {name!r}")
        project = _parse_project(root, _Reader(path, zf, limits), path, codebook, positions)
        used = {zf.find(source_member(s.plain_path, Element(s.kind), path))
                for s in [*project.sources, *project.notes] if s.text is not None and s.plain_path and not s.inline}
        project.files = {n: None for n in zf.names if n != name and n not in used}
        project.source_folder = next((n.split("/", 1)[0] for n in zf.names if n.lower().startswith("sources/")),
                                     "sources")
    return project


def _parse_project(root: Element, reader: _Reader, path: Path, codebook, positions: str) -> Project:
    _strip_namespaces(root)
    if root.tag != "Project":
        raise FormatError(f"Expected a <Project> root element ({NS}), found <{root.tag}>.", path,
                          f"<{root.tag}>")
    project = Project(name=root.get("name", path.stem), path=path, positions=positions,
                      attrs=dict(root.attrib), target_codebook=codebook)
    for child in root:
        tag = child.tag
        if tag == "Users":
            for u in child:
                if u.tag == "User":
                    project.users.append(User(_need(u, "guid", path), u.get("name", ""), u.get("id", ""),
                                              {k: v for k, v in u.attrib.items() if k not in ("guid", "name", "id")}))
        elif tag == "CodeBook":
            _read_codes(child, project, codebook, path)
        elif tag == "Sources":
            for s in child:
                if s.tag == "TextSource":
                    project.sources.append(_read_text_source(s, reader, project, path))
                elif isinstance(s.tag, str):
                    project.sources.append(Source(_need(s, "guid", path), s.get("name", ""), kind=s.tag,
                                                  element=s))
        elif tag == "Notes":
            for n in child:
                if n.tag == "Note":
                    project.notes.append(_read_text_source(n, reader, project, path))
        elif tag in _SECTIONS:
            project.sections.setdefault(tag, []).append(child)
    project.positions, problems = convert_positions([*project.sources, *project.notes], project.positions)
    project.problems.extend(problems)
    known = project.code_ids_by_guid()
    for src in project.sources:
        for sel in src.selections:
            for c in sel.codings:
                if c.code.upper() not in known:
                    raise FormatError(
                        f"The coding refers to code {c.code}, which is not in the project's codebook.", path,
                        f'<Coding guid="{c.guid}"> in <PlainTextSelection guid="{sel.guid}">',
                    )
    project.warn_problems(stacklevel=3)
    return project


def _read_codes(codebook_el: Element, project: Project, codebook: Codebook | None, path: Path) -> None:
    raw: list[tuple[Element, str | None]] = []

    def walk(parent_el: Element, parent_guid: str | None):
        for el in parent_el:
            if el.tag == "Code":
                _need(el, "guid", path)
                if el.get("name") is None:
                    raise FormatError("The code has no 'name' attribute, which REFI-QDA requires.", path, _where(el))
                raw.append((el, parent_guid))
                walk(el, el.get("guid").strip())

    for codes in codebook_el:
        if codes.tag == "Codes":
            walk(codes, None)
    guids = [el.get("guid").strip() for el, _ in raw]
    if len({g.upper() for g in guids}) != len(guids):
        dup = next(g for g in guids if [x.upper() for x in guids].count(g.upper()) > 1)
        raise FormatError(f"Two codes share the GUID {dup}.", path, f'<Code guid="{dup}">')
    ids = code_ids([(el.get("guid").strip(), el.get("name", ""), parent) for el, parent in raw], codebook)
    codes = []
    for el, parent in raw:
        g = el.get("guid").strip()
        desc = el.find("Description")
        extra = {"guid": g}
        if el.get("isCodable", "true").strip().lower() in ("false", "0"):
            extra["isCodable"] = False
        codes.append(Code(ids[g], el.get("name") or ids[g], (desc.text or "") if desc is not None else "",
                          ids[parent] if parent else None, el.get("color"), extra))
        project.code_attrs[g.upper()] = {k: v for k, v in el.attrib.items()
                                         if k not in ("guid", "name", "isCodable", "color")}
        notes = [copy.deepcopy(x) for x in el if x.tag not in ("Code", "Description")]
        if notes:
            project.code_extra[g.upper()] = notes
    project.codebook = Codebook(codes)


def _read_text_source(el: Element, reader: _Reader, project: Project, path: Path) -> Source:
    guid = _need(el, "guid", path)
    src = Source(guid, el.get("name", ""), kind=el.tag, plain_path=el.get("plainTextPath"),
                 rich_path=el.get("richTextPath"),
                 attrs={k: v for k, v in el.attrib.items()
                        if k not in ("guid", "name", "plainTextPath", "richTextPath")})
    content = el.find("PlainTextContent")
    label = f"{el.tag} {src.name or guid!r}"
    missing = None
    if content is not None:
        src.text, src.inline = content.text or "", True
    elif src.plain_path:
        member = reader.member(src.plain_path, el)
        data = reader.read(member)
        if data is None:
            missing = f"{label}: its text {member} is missing (codings kept, not usable)"
        else:
            src.bom = data.startswith(BOM_UTF8)
            src.text, _ = decode_bytes(data, path)
    elif el.tag == "TextSource":
        missing = f"{label}: it has neither plainTextPath nor PlainTextContent"
    if content is None and (src.text is None or not src.text.strip()) and src.rich_path:
        rich = _rich_text(src.rich_path, el, reader, path)
        if rich is not None and (rich.strip() or src.text is None):
            src.text, src.bom, missing = rich, False, None
    if missing:
        project.problems.append(missing)
    if src.text is not None and src.text.startswith("\ufeff"):
        src.text, src.bom = src.text[1:], True
    desc = el.find("Description")
    src.description = (desc.text or "") if desc is not None else None
    for child in el:
        if child.tag == "PlainTextSelection":
            src.selections.append(_read_selection(child, path))
        elif child.tag not in ("Description", "PlainTextContent"):
            src.extra.append(child)
    return src


def _rich_text(ref: str, el: Element, reader: _Reader, path: Path) -> str | None:
    """The plain text of a source's rich text (``richTextPath``, a ``.docx``), None when it is not there."""
    member = reader.member(ref, el)
    if not member.lower().endswith(".docx"):
        return None
    data = reader.read(member)
    if data is None:
        return None
    return docx_plain_text(data, path, f"entry {member!r} of {_where(el)}", reader.limits)


def _read_selection(el: Element, path: Path) -> Selection:
    """A selection with the file's positions; :func:`convert_positions` turns them into indices."""
    guid = _need(el, "guid", path)
    start, end = _int_attr(el, "startPosition", path), _int_attr(el, "endPosition", path)
    if start < 0 or end < start:
        raise FormatError(f"startPosition {start} and endPosition {end} do not make a range.", path, _where(el))
    desc = el.find("Description")
    sel = Selection(guid, start, end, el.get("name"), (desc.text or "") if desc is not None else None,
                    el.get("creatingUser"),
                    attrs={k: v for k, v in el.attrib.items()
                           if k not in ("guid", "name", "startPosition", "endPosition", "creatingUser")})
    for child in el:
        if child.tag == "Coding":
            ref = child.find("CodeRef")
            if ref is None:
                raise FormatError("The coding has no <CodeRef>.", path, _where(child))
            sel.codings.append(Coding(_need(child, "guid", path), _need(ref, "targetGUID", path),
                                      child.get("creatingUser"),
                                      {k: v for k, v in child.attrib.items() if k not in ("guid", "creatingUser")},
                                      [x for x in child if x.tag != "CodeRef"]))
        elif child.tag != "Description":
            sel.extra.append(child)
    return sel


def read_qdc(path: str | Path) -> Codebook:
    """Read the codebook of a ``.qdc`` (or of any REFI project file)."""
    return read_project(path).codebook

