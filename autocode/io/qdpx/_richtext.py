"""The plain text of a source that a REFI-QDA export keeps only as rich text (``richTextPath``, a ``.docx``).

NVivo writes each source's text into its ``.docx`` and leaves the ``plainTextPath`` file empty (a single line
break); ATLAS.ti exports can lack the plain-text file. The positions of the codings count characters of the
plain text, which for a Word source is its paragraphs in reading order, each followed by a line break (as the
plain-text files that NVivo does fill hold them): body paragraphs, and the paragraphs of table cells row by row.
In a paragraph, tabs and line breaks are kept (``\\t``, ``\\n``); deleted tracked changes, text boxes and field
codes are left out, inserted tracked changes kept (the text as Word shows it with changes accepted).

The ``.docx`` is read through :class:`autocode.io._safezip.SafeZip` (size caps, no path traversal) and its XML
with defusedxml.

>>> import io, zipfile
>>> buf = io.BytesIO()
>>> with zipfile.ZipFile(buf, "w") as zf:
...     zf.writestr("word/document.xml", '<w:document xmlns:w="' + W + '"><w:body>'
...                 '<w:p><w:r><w:t>访谈者：您好。</w:t></w:r></w:p><w:p/>'
...                 '<w:p><w:r><w:t>受访者：</w:t><w:tab/><w:t>好</w:t></w:r></w:p></w:body></w:document>')
>>> docx_plain_text(buf.getvalue(), "p.qdpx", "entry 'sources/x.docx'")
'访谈者：您好。\\n\\n受访者：\\t好\\n'
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from xml.etree.ElementTree import Element

from ...exceptions import FormatError
from .._safezip import Limits, SafeZip, parse_xml

__all__ = ["W", "docx_plain_text"]

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_W = "{" + W + "}"
_MC = "{http://schemas.openxmlformats.org/markup-compatibility/2006}"
_SKIP = {_W + "del", _W + "moveFrom", _W + "txbxContent", _W + "instrText", _W + "delText", _MC + "Fallback",
         _W + "footnoteReference", _W + "endnoteReference", _W + "commentReference", _W + "rPr", _W + "pPr"}
_BREAKS = {_W + "br": "\n", _W + "cr": "\n", _W + "tab": "\t", _W + "noBreakHyphen": "-"}


def _run_text(el: Element, out: list[str]) -> None:
    for child in el:
        tag = child.tag
        if tag in _SKIP:
            continue
        if tag == _W + "t":
            out.append(child.text or "")
        elif tag in _BREAKS:
            if not (tag == _W + "br" and child.get(_W + "type") == "page"):
                out.append(_BREAKS[tag])
        else:
            _run_text(child, out)


def _blocks(el: Element, paragraphs: list[str]) -> None:
    for child in el:
        tag = child.tag
        if tag == _W + "p":
            parts: list[str] = []
            _run_text(child, parts)
            paragraphs.append("".join(parts))
        elif tag == _W + "tbl":
            for row in child.findall(_W + "tr"):
                for cell in row.findall(_W + "tc"):
                    _blocks(cell, paragraphs)
        elif tag in (_W + "sdt", _W + "sdtContent", _W + "customXml", _W + "ins", _W + "moveTo"):
            _blocks(child, paragraphs)


def docx_plain_text(data: bytes, path: str | Path, where: str, limits: Limits | None = None) -> str:
    """The plain text of a ``.docx`` given as bytes: each paragraph followed by ``\\n``.

    ``path`` and ``where`` (the project file and the archive entry) name the file in errors.

    Raises
    ------
    FormatError
        When the bytes are not a readable ``.docx`` or break the archive caps.
    """
    with tempfile.TemporaryDirectory() as tmp:
        docx = Path(tmp) / "source.docx"
        docx.write_bytes(data)
        if not zipfile.is_zipfile(docx):
            raise FormatError("The rich-text source is not a Word .docx (not a zip archive). Export the project "
                              "again, or give the source's text in its plainTextPath file.", path, where)
        try:
            with SafeZip(docx, limits) as zf:
                member = zf.find("word/document.xml")
                if member is None:
                    raise FormatError("The rich-text source has no word/document.xml: it is not a Word .docx.",
                                      path, where)
                xml = zf.read(member)
        except FormatError as err:
            if err.path != str(docx):
                raise
            detail = str(err)[len(err.path) + (len(err.where) + 2 if err.where else 0) + 2:]
            inner = f" ({err.where})" if err.where else ""
            raise FormatError(f"The rich-text source{inner} is not readable: {detail}", path, where) from None
    root = parse_xml(xml, path, where)
    body = root.find(_W + "body")
    paragraphs: list[str] = []
    if body is not None:
        _blocks(body, paragraphs)
    return "".join(p + "\n" for p in paragraphs)
