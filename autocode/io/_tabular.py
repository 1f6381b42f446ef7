"""Read a table file (CSV, TSV or Excel ``.xlsx``) strictly, as a header and numbered records.

Strict means: a row with more or fewer fields than the header, a quote that is never closed, or a field longer
than :data:`FIELD_LIMIT` is a :class:`~autocode.exceptions.FormatError` naming the file and the row, never a
silently shifted or merged row. The field limit is far above the csv module's default (131,072 characters),
so every CSV autocode writes (a segment text of any length) reads back.

>>> records = csv_records('id,name\\nparty,"党建, 组织"\\n', "codebook.csv")
>>> records
[(1, ['id', 'name']), (2, ['party', '党建, 组织'])]
>>> csv_records('id,name\\nparty\\n', "codebook.csv")
Traceback (most recent call last):
...
autocode.exceptions.FormatError: codebook.csv, row 2: The row has 1 field(s), the header has 2...
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..exceptions import FormatError

__all__ = ["FIELD_LIMIT", "EXCEL_SUFFIXES", "csv_records", "iter_csv_records", "iter_records", "read_records"]

FIELD_LIMIT = 256 * 2**20  # characters in one CSV field
EXCEL_SUFFIXES = (".xlsx", ".xlsm")


def csv_records(text: str, path: str | Path, delimiter: str = ",") -> list[tuple[int, list[str]]]:
    """The records of CSV text as ``(row_number, fields)``, the header first (row 1); blank lines skipped.

    Raises
    ------
    FormatError
        On an unclosed quote, text after a closing quote, a field over :data:`FIELD_LIMIT` characters, or a
        row whose field count differs from the header's; the message names the file and the row.
    """
    return list(iter_csv_records(io.StringIO(text, newline=""), path, delimiter))


def iter_csv_records(lines: Iterable[str], path: str | Path, delimiter: str = ","
                     ) -> Iterator[tuple[int, list[str]]]:
    """:func:`csv_records` over lines (as ``open(newline="")`` gives them), one record at a time."""
    old = csv.field_size_limit(FIELD_LIMIT)
    try:
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        width = None
        rowno = 0
        while True:
            start = reader.line_num + 1  # the physical line the record starts on
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as err:
                raise FormatError(_csv_problem(str(err)), path, f"row {rowno + 1} (line {start})") from None
            if not row:
                continue
            rowno += 1
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise FormatError(
                    f"The row has {len(row)} field(s), the header has {width}. Quote texts that contain "
                    f"'{delimiter}' or line breaks (any spreadsheet does this when it saves CSV), and give every "
                    "row all the header's fields.",
                    path,
                    f"row {rowno}",
                )
            yield rowno, row
    finally:
        csv.field_size_limit(old)


def _csv_problem(message: str) -> str:
    if "unexpected end of data" in message:
        return ("A quote (\") opened here is never closed, so the rest of the file would be one field. "
                "Close the quote, or double quotes inside quoted text (\"\").")
    if "field larger than field limit" in message:
        return (f"A field is longer than {FIELD_LIMIT} characters. Split the text into shorter segments "
                "or check for an unclosed quote.")
    if "expected after" in message:
        return (f"Text follows a closing quote ({message}). Double quotes inside quoted text (\"\"), "
                "or quote the whole field.")
    return f"Not valid CSV: {message}."


def read_records(path: Path, encoding: str | None = None) -> list[tuple[int, list[str]]]:
    """The records of a ``.csv``/``.tsv``/``.xlsx`` table file, the header first (see :func:`csv_records`)."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES:
        from ._xlsx import read_xlsx

        return read_xlsx(path)
    if suffix in (".xls", ".ods"):
        raise FormatError("Old Excel .xls and OpenDocument .ods workbooks are not read. Save the sheet as .xlsx "
                          "or as CSV UTF-8.", path)
    from ._encoding import decode

    text, _ = decode(path.read_bytes(), path, encoding)
    return csv_records(text, path, "\t" if suffix in (".tsv", ".tab") else ",")


def iter_records(path: Path, encoding: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """:func:`read_records` one record at a time: a CSV/TSV file is read line by line (its encoding checked
    first, :func:`~autocode.io._encoding.stream_encoding`); an Excel workbook is read whole."""
    suffix = path.suffix.lower()
    if suffix in EXCEL_SUFFIXES or suffix in (".xls", ".ods"):
        yield from read_records(path, encoding)
        return
    from ._encoding import read_lines, stream_encoding

    codec = stream_encoding(path, encoding)
    yield from iter_csv_records(read_lines(path, codec), path, "\t" if suffix in (".tsv", ".tab") else ",")
