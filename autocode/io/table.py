"""The canonical coded table: ``document,segment,speaker,text,coder,codes``.

One row per segment per coder; ``codes`` holds code ids joined by ``;`` (empty = the coder applied none);
``coder`` may be empty when there is one coder. Several files may be read together, e.g. one per coder.
Extra columns (such as the scores autocode's pre-coding writes) are ignored on reading.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "coded.csv"
>>> _ = p.write_text("document,segment,speaker,text,coder,codes\\n"
...                  "P01,1,受访者,我们社区有党支部。,E,embed\\nP01,1,受访者,我们社区有党支部。,A,\\n",
...                  encoding="utf-8")
>>> corpus = read_coded(p)
>>> corpus.coders, [sorted(c) for c in corpus.codings("E")]
(['E', 'A'], [['embed']])
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from pathlib import Path

from ..corpus import DEFAULT_CODER, CodedCorpus, Segment
from ..exceptions import CodebookError, FormatError
from .transcript import decode_bytes

__all__ = ["read_coded", "read_segments", "read_rows", "write_coded", "split_codes", "CANONICAL_COLUMNS"]

CANONICAL_COLUMNS = ("document", "segment", "speaker", "text", "coder", "codes")
_CODE_SEP = re.compile(r"[;；]")
_ALIASES = {"doc": "document", "document_id": "document", "turn": "segment", "segment_id": "segment",
            "code": "codes", "labels": "codes", "annotator": "coder", "content": "text", "sentence": "text"}


def split_codes(cell: str | None) -> list[str]:
    """``"a; b;；c"`` -> ``['a', 'b', 'c']``; empty -> ``[]``."""
    if not cell:
        return []
    return [c.strip() for c in _CODE_SEP.split(cell) if c.strip()]


def _read_rows(path: Path, encoding: str | None, required: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    if not path.exists():
        raise FormatError("File not found. Check the path.", path)
    if path.is_dir():
        raise FormatError("This is a folder, not a table. Name the .csv/.tsv/.jsonl file(s).", path)
    if path.suffix.lower() in (".xlsx", ".xlsm", ".xls", ".ods"):
        raise FormatError("Spreadsheet workbooks are not read directly. Save the sheet as CSV "
                          "(Excel: 'CSV UTF-8') with the columns " + ",".join(CANONICAL_COLUMNS) + ".", path)
    text, _ = decode_bytes(path.read_bytes(), path, encoding)
    if not text.strip():
        raise FormatError(f"The file is empty. Expected a header with {', '.join(CANONICAL_COLUMNS)}.", path)
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise FormatError(f"Invalid JSON: {err.msg}.", path, f"line {lineno}") from None
            if not isinstance(obj, dict):
                raise FormatError(
                    f"Expected a JSON object per line ({{\"document\": ..., \"segment\": ...}}), "
                    f"found {type(obj).__name__}.",
                    path,
                    f"line {lineno}",
                )
            if isinstance(obj.get("codes"), list):
                obj["codes"] = ";".join(map(str, obj["codes"]))
            row = {k: "" if v is None else str(v) for k, v in obj.items() if not isinstance(v, (dict, list))}
            row["_row"] = lineno
            rows.append(row)
        header = list(dict.fromkeys(k for r in rows for k in r if k != "_row"))
    else:
        delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        reader.fieldnames = [_ALIASES.get(h, h) for h in header]
        header = reader.fieldnames
        rows = []
        for rowno, row in enumerate(reader, start=2):
            if None in row:
                raise FormatError(
                    f"The row has more fields than the header ({len(header)}). "
                    "Quote texts that contain commas (any spreadsheet does this when it saves CSV).",
                    path,
                    f"row {rowno}",
                )
            row["_row"] = rowno
            rows.append(row)
    missing = [c for c in required if c not in header]
    if missing:
        hint = ""
        if "text" in missing and "content" not in header:
            hint = " The segment text must be in a column named 'text'."
        raise FormatError(
            f"Missing column(s) {', '.join(map(repr, missing))}; the header is {header}. "
            f"Expected {','.join(CANONICAL_COLUMNS)}.{hint}",
            path,
            "row 1",
        )
    for i, row in enumerate(rows):
        row.setdefault("_row", i + 1)
    return header, rows


def read_rows(path: str | Path, *, encoding: str | None = None, required: tuple[str, ...] = ()
              ) -> tuple[list[str], list[dict]]:
    """The header and the rows (dicts of strings, ``_row``: the row or line number) of a CSV/TSV/JSONL table,
    after checking that the ``required`` columns are there."""
    return _read_rows(Path(path), encoding, required)


def read_segments(paths: str | Path | Iterable[str | Path], *, encoding: str | None = None) -> list[Segment]:
    """Read segments from canonical tables, ignoring any ``coder``/``codes`` columns.

    A segment that appears once per coder is returned once.
    """
    corpus = read_coded(paths, encoding=encoding, require_codes=False)
    return corpus.segments


def read_coded(
    paths: str | Path | Iterable[str | Path],
    *,
    codebook=None,
    encoding: str | None = None,
    coder: str | None = None,
    require_codes: bool = True,
) -> CodedCorpus:
    """Read hand-coded segments from one or more canonical tables (``.csv``, ``.tsv`` or ``.jsonl``), or from a
    REFI-QDA project (``.qdpx``) or QualCoder database (``.qda``/``.sqlite``).

    Parameters
    ----------
    paths : path or list of paths
        The files; rows of all files are combined (e.g. one file per coder).
    codebook : Codebook, optional
        When given, every code id must be in it (else :class:`CodebookError` naming file and row).
    encoding : str, optional
        The files' encoding; detected (UTF-8 with/without BOM, GB18030) when omitted.
    coder : str, optional
        The coder name for rows whose ``coder`` is empty (default: the file name when several files are given
        without coder columns, else ``"coder"``).
    require_codes : bool
        Require a ``codes`` column.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise FormatError("No input files given.")
    special = [p for p in paths if p.suffix.lower() in (".qdpx", ".qde", ".qda", ".sqlite", ".db")]
    if special:
        if len(paths) > 1:
            raise FormatError("Read a QDA project on its own, not together with other files.", special[0])
        from . import qdpx  # noqa: F401  (imported lazily: only when a project is read)

        return qdpx.read_project(special[0], codebook=codebook).coded_corpus()
    required = ("document", "segment", "text", "codes") if require_codes else ("document", "segment", "text")
    segments: dict[tuple[str, str], Segment] = {}
    where: dict[tuple[str, str], str] = {}
    codings: dict[str, dict[tuple[str, str], set[str]]] = {}
    for path in paths:
        header, rows = _read_rows(path, encoding, required)
        default_coder = coder or (path.stem if len(paths) > 1 and "coder" not in header else DEFAULT_CODER)
        # In a file with named coders, a row with neither coder nor codes is a segment nobody coded (as
        # write_coded writes it), not a coding by a coder called "coder".
        named = coder is None and any((r.get("coder") or "").strip() for r in rows)
        for row in rows:
            loc = f"row {row['_row']}" if path.suffix.lower() not in (".jsonl", ".ndjson") else f"line {row['_row']}"
            doc = (row.get("document") or "").strip()
            seg = (row.get("segment") or "").strip()
            if not doc or not seg:
                raise FormatError(
                    "Empty 'document' or 'segment'. Every row needs both (segment = turn number or id).",
                    path,
                    loc,
                )
            text = row.get("text") or ""
            key = (doc, seg)
            new = Segment(doc, seg, text, (row.get("speaker") or "").strip(),
                          _int_or_none(row.get("start")), _int_or_none(row.get("end")))
            old = segments.get(key)
            if old is None:
                segments[key] = new
                where[key] = f"{path}, {loc}"
            elif old.text != text:
                raise FormatError(
                    f"Segment {doc}/{seg} has a different text than at {where[key]}. Rows of the same segment "
                    "(one per coder) must carry the same text.",
                    path,
                    loc,
                )
            if "codes" not in header:
                continue
            name = (row.get("coder") or "").strip()
            if not name and named and not (row.get("codes") or "").strip():
                continue
            name = name or default_coder
            codes = split_codes(row.get("codes"))
            if codebook is not None:
                for c in codes:
                    if c not in codebook:
                        raise CodebookError(f"{path}, {loc}: {codebook.unknown_message(c)} "
                                            "Add it to the codebook or correct the id.")
            per = codings.setdefault(name, {})
            if key in per and set(codes) != per[key]:
                raise FormatError(
                    f"Coder {name!r} has two rows for segment {doc}/{seg} with different codes. "
                    "Keep one row per segment per coder.",
                    path,
                    loc,
                )
            per[key] = set(codes)
    if not segments:
        raise FormatError("No rows below the header.", paths[0])
    return CodedCorpus(list(segments.values()), codings, codebook=codebook)


def _int_or_none(value) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        return int(value)
    except ValueError:
        return None


def write_coded(path: str | Path, corpus: CodedCorpus) -> None:
    """Write a corpus as a canonical table, one row per segment per coder (coders who did not code a
    segment get no row; a segment nobody coded gets one row with empty ``coder`` and ``codes``).

    ``start`` and ``end`` columns are added when segments carry character offsets.
    """
    offsets = any(s.start is not None or s.end is not None for s in corpus.segments)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow([*CANONICAL_COLUMNS, "start", "end"] if offsets else CANONICAL_COLUMNS)
        cols = {c: corpus.codings(c) for c in corpus.coders}
        for i, s in enumerate(corpus.segments):
            extra = ["" if s.start is None else s.start, "" if s.end is None else s.end] if offsets else []
            wrote = False
            for coder, col in cols.items():
                if col[i] is None:
                    continue
                codes = _ordered(col[i], corpus.codebook)
                w.writerow([s.document, s.segment, s.speaker, s.text, coder, ";".join(codes), *extra])
                wrote = True
            if not wrote:
                w.writerow([s.document, s.segment, s.speaker, s.text, "", "", *extra])


def _ordered(codes, codebook) -> list[str]:
    if codebook is None:
        return sorted(codes)
    order = {c: i for i, c in enumerate(codebook.ids)}
    return sorted(codes, key=lambda c: (order.get(c, len(order)), c))
