"""Read the text of a Word ``.docx`` file: paragraphs and tables in reading order, tracked changes accepted.

A ``.docx`` is a zip archive of XML parts; it is read through :class:`~autocode.io._safezip.SafeZip`, so the
same caps as for ``.qdpx`` projects apply (entries, sizes, compression ratio, XML depth and node size).

What is read, from the main document part only:

* paragraphs, one line each, and tables where they stand in the text;
* a table row of two cells, the first a short label (``访谈者 | 请问...``), as one speaker turn
  ``访谈者：请问...``, so segmentation sees the speaker; other rows give one line per cell;
* tracked changes as if accepted: inserted text kept, deleted text (and deleted table rows) left out;
* tabs and line breaks inside a paragraph as ``\\t`` and ``\\n``;
* which paragraphs of the body are headings (a Heading style: ``Heading 1``, ``标题 1``, or an outline
  level, set on the paragraph or its style), for :func:`docx_document`.

Left out: headers and footers, footnotes and endnotes, comments, text boxes and other drawings, field codes.

>>> import io, zipfile
>>> W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
>>> body = ('<w:p><w:r><w:t>访谈记录</w:t></w:r></w:p><w:tbl><w:tr>'
...         '<w:tc><w:p><w:r><w:t>访谈者</w:t></w:r></w:p></w:tc>'
...         '<w:tc><w:p><w:r><w:t>请问</w:t></w:r><w:del><w:r><w:delText>您</w:delText></w:r></w:del>'
...         '<w:ins><w:r><w:t>社区</w:t></w:r></w:ins></w:p></w:tc></w:tr></w:tbl>')
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as z:
...     z.writestr("word/document.xml", f'<w:document {W}><w:body>{body}</w:body></w:document>')
>>> print(docx_text(buf.getvalue(), "t.docx"))
访谈记录
访谈者：请问社区
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path
from xml.etree.ElementTree import Element

from ..exceptions import FormatError
from ..section import Heading
from ._safezip import DEFAULT_LIMITS, Limits, SafeZip

__all__ = ["docx_document", "docx_text", "read_docx"]

_MAIN = ("http://schemas.openxmlformats.org/wordprocessingml/2006/main",
         "http://purl.oclc.org/ooxml/wordprocessingml/main")  # transitional and strict OOXML
_OFFICE_DOC = "/officeDocument"
_LABEL_MAX = 24  # characters a speaker cell may have
_HEADER_WORDS = {"内容", "發言內容", "发言内容", "文本", "对话内容", "對話內容", "內容", "原文", "text", "content",
                 "transcript", "回答", "访谈内容", "訪談內容"}
# containers whose text belongs to the paragraph (runs inside hyperlinks, insertions, fields, tags)
_INLINE = {"hyperlink", "ins", "moveTo", "fldSimple", "smartTag", "customXml", "sdt", "sdtContent", "r", "dir",
           "bdo"}
_SKIP = {"del", "moveFrom", "delText", "instrText", "delInstrText", "pPr", "rPr", "drawing", "pict", "object",
         "footnoteReference", "endnoteReference", "commentReference", "AlternateContent", "sdtPr", "sdtEndPr"}


def _local(tag: str) -> tuple[str, str]:
    if tag.startswith("{"):
        ns, _, name = tag[1:].partition("}")
        return ns, name
    return "", tag


def _is(el: Element, name: str) -> bool:
    ns, local = _local(el.tag)
    return local == name and ns in _MAIN


def read_docx(path: str | Path, limits: Limits | None = None) -> str:
    """The text of a ``.docx`` file (see the module docstring for what is read)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError("File not found. Check the path.", path)
    return docx_text(path.read_bytes(), path, limits)


def docx_text(data: bytes, path: str | Path, limits: Limits | None = None) -> str:
    """The text of a ``.docx`` given as bytes; ``path`` names it in messages."""
    return docx_document(data, path, limits)[0]


def docx_document(data: bytes, path: str | Path, limits: Limits | None = None) -> tuple[str, list[Heading]]:
    """The text of a ``.docx`` given as bytes, and its heading paragraphs (offsets into the text)."""
    limits = limits or DEFAULT_LIMITS
    try:
        zf = SafeZip(path, limits, data=data, kind="Not a readable Word .docx file. Save it again as .docx")
    except FormatError as err:
        if "Not a zip archive" not in str(err):
            raise
        raise FormatError("Not a readable Word .docx file (not a zip archive). Save it again as .docx.",
                          path) from None
    with zf:
        name = _main_part(zf)
        if name is None:
            raise FormatError("Not a readable Word .docx file (the archive has no word/document.xml). "
                              "Save it again as .docx.", path)
        root = zf.parse(name)
        styles = _heading_styles(zf)
    body = next((el for el in root if _is(el, "body")), None)
    if body is None:
        raise FormatError("Not a readable Word .docx file (word/document.xml has no <w:body>). "
                          "Save it again as .docx.", path)
    lines: list[str] = []
    levels: dict[int, int] = {}
    _block(body, lines, (styles, levels))
    headings, pos = [], 0
    for i, line in enumerate(lines):
        title = line.strip()
        if i in levels and title and "\n" not in title:
            lead = len(line) - len(line.lstrip())
            headings.append(Heading(pos + lead, pos + lead + len(title), levels[i], title))
        pos += len(line) + 1
    return "\n".join(lines), headings


_HEADING_NAME = re.compile(r"^(?:heading|标题|標題)\s*([1-9])$", re.I)


def _heading_styles(zf: SafeZip) -> dict[str, int]:
    """styleId -> heading level, from ``word/styles.xml`` (a style named ``heading N``/``标题 N``, or with an
    outline level)."""
    name = zf.find("word/styles.xml")
    if name is None:
        return {}
    out = {}
    for style in zf.parse(name):
        if not _is(style, "style"):
            continue
        sid = _attr(style, "styleId")
        level = _outline_level(next((c for c in style if _is(c, "pPr")), None))
        named = next((c for c in style if _is(c, "name")), None)
        m = _HEADING_NAME.match((_attr(named, "val") if named is not None else "") or "")
        if m:
            level = int(m.group(1))
        if sid and level:
            out[sid] = level
    return out


def _attr(el: Element, name: str) -> str | None:
    for key, value in el.attrib.items():
        if _local(key)[1] == name:
            return value
    return None


def _outline_level(ppr: Element | None) -> int | None:
    lvl = None if ppr is None else next((c for c in ppr if _is(c, "outlineLvl")), None)
    val = None if lvl is None else _attr(lvl, "val")
    return int(val) + 1 if val is not None and val.isdigit() and int(val) < 9 else None


def _heading_level(p: Element, styles: dict[str, int]) -> int | None:
    ppr = next((c for c in p if _is(c, "pPr")), None)
    if ppr is None:
        return None
    direct = _outline_level(ppr)
    if direct:
        return direct
    pstyle = next((c for c in ppr if _is(c, "pStyle")), None)
    sid = None if pstyle is None else _attr(pstyle, "val")
    if not sid:
        return None
    m = re.fullmatch(r"(?:Heading|heading)([1-9])", sid)
    return styles.get(sid) or (int(m.group(1)) if m else None)


def _main_part(zf: SafeZip) -> str | None:
    rels = zf.find("_rels/.rels")
    if rels is not None:
        for rel in zf.parse(rels):
            if (rel.get("Type") or "").endswith(_OFFICE_DOC) and rel.get("Target"):
                target = rel.get("Target").lstrip("/")
                found = zf.find(posixpath.normpath(target))
                if found is not None:
                    return found
    return zf.find("word/document.xml")


def _block(container: Element, lines: list[str], heads: tuple[dict, dict] | None = None) -> None:
    """Paragraphs and tables of a body, table cell or content control, in order; with ``heads`` (the heading
    styles, and line index -> level to fill), the body's heading paragraphs are noted."""
    joined = False  # the previous paragraph's mark was deleted: this paragraph continues it
    for el in container:
        if _is(el, "p"):
            text, mark_deleted = _paragraph(el)
            if joined and lines:
                lines[-1] += text
            else:
                lines.append(text)
                level = None if heads is None else _heading_level(el, heads[0])
                if level:
                    heads[1][len(lines) - 1] = level
            joined = mark_deleted
        elif _is(el, "tbl"):
            _table(el, lines)
            joined = False
        elif _is(el, "sdt") or _is(el, "customXml") or _is(el, "ins") or _is(el, "moveTo"):
            content = next((c for c in el if _is(c, "sdtContent")), el)
            _block(content, lines, heads)


def _paragraph(p: Element) -> tuple[str, bool]:
    parts: list[str] = []
    _runs(p, parts)
    mark_deleted = False
    ppr = next((c for c in p if _is(c, "pPr")), None)
    rpr = None if ppr is None else next((c for c in ppr if _is(c, "rPr")), None)
    if rpr is not None and any(_is(c, "del") for c in rpr):
        mark_deleted = True
    return "".join(parts), mark_deleted


def _runs(el: Element, parts: list[str]) -> None:
    for child in el:
        ns, name = _local(child.tag)
        if name in _SKIP or ns not in _MAIN:
            continue
        if name == "t":
            parts.append(child.text or "")
        elif name == "tab" or name == "ptab":
            parts.append("\t")
        elif name in ("br", "cr"):
            parts.append("\n")
        elif name == "noBreakHyphen":
            parts.append("-")
        elif name in _INLINE:
            _runs(child, parts)


def _table(tbl: Element, lines: list[str]) -> None:
    first = True
    for tr in tbl:
        if not _is(tr, "tr"):
            if _is(tr, "sdt") or _is(tr, "customXml"):
                _table(next((c for c in tr if _is(c, "sdtContent")), tr), lines)
            continue
        trpr = next((c for c in tr if _is(c, "trPr")), None)
        if trpr is not None and any(_is(c, "del") for c in trpr):
            continue  # a deleted row (tracked change)
        cells: list[list[str]] = []
        for tc in tr:
            if _is(tc, "tc"):
                cell: list[str] = []
                _block(tc, cell)
                cells.append(cell)
        texts = ["\n".join(c).strip() for c in cells]
        filled = [t for t in texts if t]
        if len(texts) == 2 and _is_label(texts[0]) and texts[1]:
            if first and texts[1].lower() in _HEADER_WORDS:
                first = False
                continue  # a header row: 说话人 | 内容
            label = texts[0].rstrip("：:")
            lines.append(f"{label}：{texts[1]}")
        elif filled:
            for cell in cells:
                lines.extend(line for line in cell if line.strip())
        first = False


def _is_label(text: str) -> bool:
    return 0 < len(text) <= _LABEL_MAX and "\n" not in text and not any(ch in text for ch in "。？！?!")
