"""Read and write Excel ``.xlsx`` worksheets as rows of text, through the archive caps of ``_safezip``.

Reading takes the workbook's first worksheet: shared strings, inline strings, numbers (``3`` rather than
``3.0``), booleans and formula results, each cell as text; rows keep their Excel row numbers for messages.
Writing produces one worksheet with a frozen header row; text cells are inline strings, numbers stay numbers.
Characters XML cannot hold (control characters) are written as Excel writes them (``_x0001_``) and read back.

>>> import pathlib, tempfile
>>> p = pathlib.Path(tempfile.mkdtemp()) / "t.xlsx"
>>> write_xlsx(p, ["id", "name"], [["party", "党建"], ["n", 3]])
>>> read_xlsx(p)
[(1, ['id', 'name']), (2, ['party', '党建']), (3, ['n', '3'])]
"""

from __future__ import annotations

import posixpath
import re
import time
import zipfile
from contextlib import ExitStack
from pathlib import Path
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

from .._files import atomic_write
from ..exceptions import FormatError
from ._safezip import Limits, SafeZip

__all__ = ["read_xlsx", "write_xlsx", "XlsxWriter", "MAX_CELL_CHARS"]

MAX_CELL_CHARS = 32_767  # Excel's limit for one cell
_MAIN = ("http://schemas.openxmlformats.org/spreadsheetml/2006/main",
         "http://purl.oclc.org/ooxml/spreadsheetml/main")
_REL_NS = ("http://schemas.openxmlformats.org/officeDocument/2006/relationships",
           "http://purl.oclc.org/ooxml/officeDocument/relationships")
_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
_NEEDS_ESCAPE = re.compile(r"_(?=x[0-9A-Fa-f]{4}_)|[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_CELL_REF = re.compile(r"([A-Z]+)(\d+)")


def _local(el: Element) -> str:
    tag = el.tag
    return tag.rpartition("}")[2] if tag.startswith("{") else tag


def _ns(el: Element) -> str:
    return el.tag[1:].partition("}")[0] if el.tag.startswith("{") else ""


def _children(el: Element, name: str):
    return (c for c in el if _local(c) == name and _ns(c) in _MAIN)


def _rels(zf: SafeZip, part: str) -> dict[str, tuple[str, str]]:
    """Relationship id -> (type, entry name) of a part."""
    folder, base = posixpath.split(part)
    name = zf.find(posixpath.join(folder, "_rels", base + ".rels"))
    out = {}
    if name is None:
        return out
    for rel in zf.parse(name):
        target = rel.get("Target") or ""
        target = target.lstrip("/") if target.startswith("/") else posixpath.join(folder, target)
        out[rel.get("Id") or ""] = (rel.get("Type") or "", posixpath.normpath(target))
    return out


def read_xlsx(path: str | Path, limits: Limits | None = None) -> list[tuple[int, list[str]]]:
    """The rows of the workbook's first worksheet as ``(excel_row_number, cells)``; empty rows left out."""
    path = Path(path)
    try:
        zf = SafeZip(path, limits, kind="An Excel .xlsx file is a zip archive: save it again from Excel as .xlsx")
    except FormatError as err:
        if "Not a zip archive" in str(err) and path.suffix.lower() == ".xls":
            raise FormatError("Old Excel .xls files are not read. Save the sheet as .xlsx or CSV UTF-8.",
                              path) from None
        raise
    with zf:
        workbook = next((t for typ, t in _rels(zf, "").values() if typ.endswith("/officeDocument")),
                        "xl/workbook.xml")
        wb_name = zf.find(workbook)
        if wb_name is None:
            raise FormatError("Not an Excel workbook: the archive has no xl/workbook.xml. Save it again as .xlsx.",
                              path)
        rels = _rels(zf, wb_name)
        sheets = [s for el in _children(zf.parse(wb_name), "sheets") for s in _children(el, "sheet")]
        if not sheets:
            raise FormatError("The workbook has no worksheet.", path)
        rid = next((v for k, v in sheets[0].attrib.items() if k.startswith("{") and k[1:].partition("}")[0]
                    in _REL_NS and k.endswith("}id")), None)
        sheet_name = zf.find(rels[rid][1]) if rid in rels else None
        if sheet_name is None:
            raise FormatError(f"The worksheet {sheets[0].get('name')!r} is missing from the archive. "
                              "Save the workbook again.", path)
        shared = []
        for typ, target in rels.values():
            if typ.endswith("/sharedStrings") and zf.find(target) is not None:
                shared = [_text(si) for si in zf.parse(zf.find(target)) if _local(si) == "si"]
        root = zf.parse(sheet_name)
    return _rows(root, shared, path)


def _text(el: Element) -> str:
    """The text of a shared or inline string (``<t>`` and rich-text runs; phonetic runs left out)."""
    parts = []
    for child in el:
        name = _local(child)
        if name == "t":
            parts.append(child.text or "")
        elif name == "r":
            parts.extend(t.text or "" for t in child if _local(t) == "t")
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), "".join(parts))


def _rows(root: Element, shared: list[str], path: Path) -> list[tuple[int, list[str]]]:
    out = []
    data = next((el for el in root if _local(el) == "sheetData"), None)
    last_row = 0
    for row in ([] if data is None else _children(data, "row")):
        last_row = int(row.get("r") or last_row + 1)
        cells: list[str] = []
        for c in _children(row, "c"):
            m = _CELL_REF.fullmatch(c.get("r") or "")
            col = _column_index(m.group(1)) if m else len(cells)
            cells.extend([""] * (col - len(cells) + 1))
            cells[col] = _value(c, shared, path, last_row)
        while cells and not cells[-1].strip():
            cells.pop()
        if cells:
            out.append((last_row, cells))
    return out


def _column_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _value(c: Element, shared: list[str], path: Path, rowno: int) -> str:
    kind = c.get("t") or "n"
    if kind == "inlineStr":
        inline = next((el for el in c if _local(el) == "is"), None)
        return "" if inline is None else _text(inline)
    v = next((el for el in c if _local(el) == "v"), None)
    raw = "" if v is None or v.text is None else v.text
    if kind == "s":
        try:
            return shared[int(raw)]
        except (ValueError, IndexError):
            raise FormatError(f"Cell {c.get('r')} points to shared string {raw!r}, which the workbook lacks.",
                              path, f"row {rowno}") from None
    if kind == "b":
        return "TRUE" if raw == "1" else "FALSE"
    if kind == "n" and raw:
        try:
            number = float(raw)
        except ValueError:
            return raw
        return str(int(number)) if number.is_integer() and abs(number) < 1e15 else raw
    return _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), raw)


def _cell(ref: str, value, path: Path) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        text = "" if value is None else str(value)
        if len(text) > MAX_CELL_CHARS:
            raise FormatError(f"Cell {ref} holds {len(text)} characters; an Excel cell holds at most "
                              f"{MAX_CELL_CHARS}. Write .csv or .jsonl instead.", path)
        text = _NEEDS_ESCAPE.sub(lambda m: "_x005F_" if m.group() == "_" else f"_x{ord(m.group()):04X}_", text)
        return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{escape(text)}</t></is></c>'
    return f'<c r="{ref}"><v>{value!r}</v></c>'


def _column_letters(i: int) -> str:
    letters = ""
    i += 1
    while i:
        i, rem = divmod(i - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/styles.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/></Types>')
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_R}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_R}/styles" Target="styles.xml"/></Relationships>')
_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<styleSheet xmlns="{_MAIN[0]}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/>'
    '</fill></fills><borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles></styleSheet>')


def write_xlsx(path: str | Path, header, rows, *, sheet: str = "Sheet1") -> None:
    """Write ``header`` and ``rows`` (sequences of text or numbers) as a one-sheet workbook."""
    with XlsxWriter(path, header, sheet=sheet) as w:
        w.add_rows(rows)


class XlsxWriter:
    """A one-sheet workbook written row by row: the sheet is compressed into the file as rows are added
    (:func:`write_xlsx` for all rows at once writes the same bytes). The file appears when the writer closes
    without error."""

    def __init__(self, path: str | Path, header, *, sheet: str = "Sheet1"):
        self.path = Path(path)
        self.header = list(header)
        self.sheet = sheet
        self._stack = ExitStack()
        self._row = 0

    def __enter__(self) -> XlsxWriter:
        workbook = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_MAIN[0]}" xmlns:r="{_R}"><sheets>'
            f'<sheet name="{escape(self.sheet[:31], {chr(34): "&quot;"})}" sheetId="1" r:id="rId1"/></sheets>'
            '</workbook>')
        try:
            f = self._stack.enter_context(atomic_write(self.path, "wb"))
            z = self._stack.enter_context(zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED))
            z.writestr("[Content_Types].xml", _CONTENT_TYPES)
            z.writestr("_rels/.rels", _ROOT_RELS)
            z.writestr("xl/workbook.xml", workbook)
            z.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            z.writestr("xl/styles.xml", _STYLES)
            info = zipfile.ZipInfo("xl/worksheets/sheet1.xml", date_time=time.localtime(time.time())[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o600 << 16  # as writestr gives it
            self._sheet = self._stack.enter_context(z.open(info, "w"))
            self._sheet.write((
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<worksheet xmlns="{_MAIN[0]}"><sheetViews><sheetView workbookViewId="0">'
                '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/></sheetView>'
                '</sheetViews><sheetData>').encode())
            self.add_rows([self.header])
        except BaseException:
            self._stack.close()
            raise
        return self

    def add_rows(self, rows) -> None:
        """Add rows (sequences of text or numbers) below those added before."""
        parts = []
        for values in rows:
            self._row += 1
            r = self._row
            cells = "".join(_cell(f"{_column_letters(i)}{r}", v, self.path) for i, v in enumerate(values))
            parts.append(f'<row r="{r}">{cells}</row>')
        self._sheet.write("".join(parts).encode())

    def __exit__(self, *exc) -> bool:
        if exc[0] is None:
            try:
                self._sheet.write(b"</sheetData></worksheet>")
            except BaseException:
                self._stack.close()
                raise
        return self._stack.__exit__(*exc)
