"""The canonical coded table: ``document,segment,speaker,text,coder,codes``.

One row per segment per coder; ``codes`` holds code ids joined by ``;`` (empty = the coder applied none);
``coder`` may be empty when there is one coder. Several files may be read together, e.g. one per coder.
An optional ``section`` column gives the headings a segment stands under (what rules by heading match).
Other extra columns (such as the scores autocode's pre-coding writes) are ignored on reading.

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
import json
import re
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

from .._files import atomic_write
from ..corpus import DEFAULT_CODER, CodedCorpus, Segment
from ..exceptions import AutocodeWarning, CodebookError, FormatError
from ._align import ColumnRows, DocumentRows, Interleaved, KeyedRows
from ._tabular import EXCEL_SUFFIXES, read_records
from .transcript import decode_bytes

__all__ = ["read_coded", "read_segments", "read_rows", "read_texts", "write_coded", "write_table", "split_codes",
           "CANONICAL_COLUMNS"]

CANONICAL_COLUMNS = ("document", "segment", "speaker", "text", "coder", "codes")
_CODE_SEP = re.compile(r"[;；]")
_ALIASES = {"doc": "document", "document_id": "document", "turn": "segment", "segment_id": "segment",
            "code": "codes", "labels": "codes", "annotator": "coder", "content": "text", "sentence": "text"}


def split_codes(cell: str | None) -> list[str]:
    """``"a; b;；c"`` -> ``['a', 'b', 'c']``; empty -> ``[]``."""
    if not cell:
        return []
    return [c.strip() for c in _CODE_SEP.split(cell) if c.strip()]


def _json_row(line: str, path: Path, lineno: int) -> dict:
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
    if isinstance(obj.get("suggestions"), list):  # pre-coded output: keep it recognisable
        obj["suggestions"] = json.dumps(obj["suggestions"], ensure_ascii=False)
    row = {k: "" if v is None else str(v) for k, v in obj.items() if not isinstance(v, (dict, list))}
    row["_row"] = lineno
    return row


def _check_columns(header: list[str], required: tuple[str, ...], path: Path) -> None:
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


def _read_rows(path: Path, encoding: str | None, required: tuple[str, ...]) -> tuple[list[str], list[dict]]:
    if not path.exists():
        raise FormatError("File not found. Check the path.", path)
    if path.is_dir():
        raise FormatError("This is a folder, not a table. Name the .csv/.tsv/.xlsx/.jsonl file(s).", path)
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson"):
        text, _ = decode_bytes(path.read_bytes(), path, encoding)
        if not text.strip():
            raise FormatError(f"The file is empty. Expected a header with {', '.join(CANONICAL_COLUMNS)}.", path)
        rows = []
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            row = _json_row(line, path, lineno)
            rows.append(row)
        header = list(dict.fromkeys(k for r in rows for k in r if k != "_row"))
    else:
        records = read_records(path, encoding)
        if not records or not any(h.strip() for h in records[0][1]):
            raise FormatError(f"The file is empty. Expected a header with {', '.join(CANONICAL_COLUMNS)}.", path)
        header = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in records[0][1]]
        rows = []
        for rowno, fields in records[1:]:
            row = dict(zip(header, fields))
            row["_row"] = rowno
            rows.append(row)
    _check_columns(header, required, path)
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


def iter_table_segments(path: str | Path, *, encoding: str | None = None) -> Iterator[tuple[Segment, str]]:
    """The segments of one canonical table in row order, with where each stands (``row 3``/``line 3``), read
    one row at a time (a ``.csv``/``.tsv``/``.jsonl`` file is never held whole; see
    :func:`~autocode.io._tabular.iter_records`). The same checks and errors as :func:`read_segments`; rows
    of one segment (one per coder) are all given, and ``coder``/``codes`` are not read."""
    path = Path(path)
    jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
    for row in _iter_rows(path, encoding, ("document", "segment", "text")):
        loc = f"line {row['_row']}" if jsonl else f"row {row['_row']}"
        doc = (row.get("document") or "").strip()
        seg = (row.get("segment") or "").strip()
        if not doc or not seg:
            raise FormatError("Empty 'document' or 'segment'. Every row needs both (segment = turn number or id).",
                              path, loc)
        yield (Segment(doc, seg, row.get("text") or "", (row.get("speaker") or "").strip(),
                       _int_or_none(row.get("start")), _int_or_none(row.get("end"))), loc)


def read_texts(paths: str | Path | Iterable[str | Path], keys, *, encoding: str | None = None
               ) -> dict[tuple[str, str], str]:
    """The texts of the segments ``keys`` (``(document, segment)``) in canonical tables, read one row at a time:
    what a corpus read with ``read_coded(..., texts=False)`` shows where it lists a segment.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.csv"
    >>> _ = p.write_text("document,segment,text\\nP1,1,你好\\nP1,2,再见\\n", encoding="utf-8")
    >>> read_texts(p, {("P1", "2")})
    {('P1', '2'): '再见'}
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    wanted, out = set(keys), {}
    for path in paths:
        if not wanted - out.keys():
            break
        for seg, _ in iter_table_segments(path, encoding=encoding):
            if seg.key in wanted:
                out.setdefault(seg.key, seg.text)
    return out


def _iter_rows(path: Path, encoding: str | None, required: tuple[str, ...], *, header_out: list[str] | None = None,
               allow_empty: bool = False) -> Iterator[dict]:
    """:func:`_read_rows` one row at a time (a JSON lines file's columns are checked at its end). ``header_out``: a
    list the columns are put in (a JSON lines file's, the keys of all its rows, at its end); ``allow_empty``:
    a table with a header and no rows gives no rows instead of an error."""
    if not path.exists():
        raise FormatError("File not found. Check the path.", path)
    if path.is_dir():
        raise FormatError("This is a folder, not a table. Name the .csv/.tsv/.xlsx/.jsonl file(s).", path)
    empty = f"The file is empty. Expected a header with {', '.join(CANONICAL_COLUMNS)}."
    n = 0
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        from ._encoding import read_lines, stream_encoding

        header: dict[str, None] = {}
        lineno, blank = 0, True
        for physical in read_lines(path, stream_encoding(path, encoding)):
            for line in physical.splitlines():
                lineno += 1
                if not line.strip():
                    continue
                blank = False
                row = _json_row(line, path, lineno)
                header.update(dict.fromkeys(k for k in row if k != "_row"))
                n += 1
                yield row
        if blank:
            raise FormatError(empty, path)
        _check_columns(list(header), required, path)
        if isinstance(header_out, list):
            header_out.extend(header)
    else:
        from ._tabular import iter_records

        names = None
        for rowno, fields in iter_records(path, encoding):
            if names is None:
                if not any(h.strip() for h in fields):
                    raise FormatError(empty, path)
                names = [_ALIASES.get(h.strip().lower(), h.strip().lower()) for h in fields]
                _check_columns(names, required, path)
                if isinstance(header_out, list):
                    header_out.extend(names)
                continue
            row = dict(zip(names, fields))
            row["_row"] = rowno
            n += 1
            yield row
        if names is None:
            raise FormatError(empty, path)
    if not n and not allow_empty:
        raise FormatError("No rows below the header.", path)


def read_coded(
    paths: str | Path | Iterable[str | Path],
    *,
    codebook=None,
    encoding: str | None = None,
    coder: str | None = None,
    require_codes: bool = True,
    precoded: str = "keep",
    include_coders: Iterable[str] = (),
    speakers=None,
    texts: bool = True,
) -> CodedCorpus:
    """Read hand-coded segments from one or more canonical tables (``.csv``, ``.tsv``, ``.xlsx`` or ``.jsonl``),
    or from a REFI-QDA project (``.qdpx``) or QualCoder database (``.qda``/``.sqlite``).

    Parameters
    ----------
    paths : path or list of paths
        The files; rows of all files are combined (e.g. one file per coder).
    codebook : Codebook, optional
        When given, every code must be in it, by id or by its name when one code has that name (names are
        turned into ids); else a :class:`CodebookError` naming file and row.
    encoding : str, optional
        The files' encoding; detected (UTF-8 with/without BOM, GB18030) when omitted.
    coder : str, optional
        The coder name for rows whose ``coder`` is empty (default: the file name when several files are given
        without coder columns, else ``"coder"``).
    require_codes : bool
        Require a ``codes`` column.
    precoded : {"keep", "exclude"}
        What to do with pre-coded output of autocode read back as data: coders named ``autocode...``, and
        coders of tables with the pre-coded columns (``scores`` and ``max_score``, or JSON ``suggestions``).
        ``"keep"`` reads them as coders like any other (for agreement); ``"exclude"`` (for training data) leaves
        them out with an :class:`AutocodeWarning`, unless named in ``include_coders``.
    include_coders : iterable of str
        Pre-coded coders to keep with ``precoded="exclude"`` (e.g. suggestions a person has reviewed).
    speakers : dict or str, optional
        Speaker labels and their roles (``{"A": "interviewer"}`` or ``"A=interviewer,B=participant"``): a
        project's sources are segmented with them (see :func:`~autocode.segment.segment_text`); in a table, a
        ``speaker`` that is a label given a role is read as that role.
    texts : bool
        Keep the segments' texts (default). False: the segments of tables come as a
        :class:`~autocode.corpus.SegmentTable` with empty texts and each coder's codes as a
        :class:`~autocode.corpus.CodeColumn` (a few bytes a segment; the rows aligned a document at a time as they
        come, or, where documents interleave, read again and sorted), so that a corpus of millions of segments fits
        in memory for agreement; rows of a segment are still checked to carry the same text; a project's sources
        keep theirs.
    """
    if precoded not in ("keep", "exclude"):
        raise ValueError(f"precoded must be 'keep' or 'exclude', got {precoded!r}.")
    include = set(include_coders)
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

        corpus = qdpx.read_project(special[0], codebook=codebook).coded_corpus(speakers=speakers)
        if precoded == "exclude":
            names = {c: str(special[0]) for c in corpus.coders if c.lower().startswith("autocode")}
            corpus = _without_precoded(corpus, names, include, special[0])
        return corpus
    roles = _roles(speakers)
    required = ("document", "segment", "text", "codes") if require_codes else ("document", "segment", "text")
    fill = dict(encoding=encoding, coder=coder, codebook=codebook, roles=roles, required=required)
    if texts:
        store = KeyedRows(paths)
        machine = _fill(store, paths, **fill)
    else:
        # a document at a time as rows come; where documents interleave too much, again with the rows sorted
        store = DocumentRows(paths)
        try:
            machine = _fill(store, paths, **fill)
        except Interleaved:
            store = None
        if store is None:
            store = ColumnRows(paths)
            machine = _fill(store, paths, **fill)
    if not len(store):
        raise FormatError("No rows below the header.", paths[0])
    corpus = store.corpus(codebook)
    if precoded == "exclude":
        corpus = _without_precoded(corpus, machine, include, paths[0])
    return corpus


def _fill(store, paths: list[Path], *, encoding: str | None, coder: str | None, codebook, roles: dict[str, str],
          required: tuple[str, ...]) -> dict[str, str]:
    """Hand every row of ``paths`` to ``store`` (its segment, then its coding); returns the pre-coded coders and
    the file each came from."""
    machine: dict[str, str] = {}  # pre-coded coder -> the file it came from
    for k_path, path in enumerate(paths):
        # two passes, one row at a time (the rows are never held): the columns and whether any row names a
        # coder, then the rows
        header, named = _scan(path, encoding, required)
        rows = _iter_rows(path, encoding, required, allow_empty=True)
        jsonl = path.suffix.lower() in (".jsonl", ".ndjson")
        precoded_file = ("scores" in header and "max_score" in header) or "suggestions" in header
        default_coder = coder or (path.stem if len(paths) > 1 and "coder" not in header else DEFAULT_CODER)
        # In a file with named coders, a row with neither coder nor codes is a segment nobody coded (as
        # write_coded writes it), not a coding by a coder called "coder".
        named = coder is None and named
        for row in rows:
            loc = f"line {row['_row']}" if jsonl else f"row {row['_row']}"
            doc = (row.get("document") or "").strip()
            seg = (row.get("segment") or "").strip()
            if not doc or not seg:
                raise FormatError(
                    "Empty 'document' or 'segment'. Every row needs both (segment = turn number or id).",
                    path,
                    loc,
                )
            speaker = (row.get("speaker") or "").strip()
            # (documents, speakers and sections repeat: one string object each)
            i = store.segment(k_path, row["_row"], sys.intern(doc), seg, row.get("text") or "",
                              sys.intern(roles.get(speaker) or speaker), _int_or_none(row.get("start")),
                              _int_or_none(row.get("end")), sys.intern((row.get("section") or "").strip()))
            if "codes" not in header:
                continue
            name = (row.get("coder") or "").strip()
            if not name and named and not (row.get("codes") or "").strip():
                continue
            name = name or default_coder
            if precoded_file or name.lower().startswith("autocode"):
                machine.setdefault(name, str(path))
            codes = split_codes(row.get("codes"))
            if codebook is not None:
                try:
                    codes = [codebook.resolve(c) for c in codes]
                except CodebookError as err:
                    raise CodebookError(f"{path}, {loc}: {err} Add it to the codebook or correct the id.") from None
            store.coding(i, name, frozenset(codes), k_path, row["_row"])
    return machine


def _scan(path: Path, encoding: str | None, required: tuple[str, ...]) -> tuple[list[str], bool]:
    """A table's columns (checked) and whether any of its rows names a coder, read one row at a time."""
    header: list[str] = []
    named = False
    for row in _iter_rows(path, encoding, required, header_out=header, allow_empty=True):
        named = named or bool((row.get("coder") or "").strip())
    return header, named


def _without_precoded(corpus: CodedCorpus, machine: dict[str, str], include: set[str], path) -> CodedCorpus:
    """The corpus without the pre-coded coders not in ``include`` (and the segments only they coded)."""
    dropped = {c: where for c, where in machine.items() if c not in include and c in corpus.coders}
    if not dropped:
        return corpus
    listed = ", ".join(f"{c!r} ({where})" for c, where in dropped.items())
    first = next(iter(dropped))
    kept = [c for c in corpus.coders if c not in dropped]
    if not kept:
        raise FormatError(
            f"The data holds only pre-coded output of autocode (coder {listed}): unreviewed suggestions are not "
            f"training data. To learn from them (after reviewing them), pass --include-coder {first} "
            "(include_coders= in Python).",
            path,
        )
    warnings.warn(
        f"Left out of the training data: coder(s) {listed}, pre-coded output of autocode (unreviewed "
        f"suggestions). To learn from them, pass --include-coder {first} (include_coders= in Python).",
        AutocodeWarning,
        stacklevel=3,
    )
    columns = {c: corpus.codings(c) for c in kept}
    segments = [s for i, s in enumerate(corpus.segments)
                if any(col[i] is not None for col in columns.values())
                or all(corpus.codings(c)[i] is None for c in dropped)]
    index = {s.key: i for i, s in enumerate(corpus.segments)}
    codings = {c: {s.key: set(col[index[s.key]]) for s in segments if col[index[s.key]] is not None}
               for c, col in columns.items()}
    return CodedCorpus(segments, codings, codebook=corpus.codebook)


def _roles(speakers) -> dict[str, str]:
    """Speaker label -> role, for the labels given a role."""
    if not speakers:
        return {}
    if isinstance(speakers, str):
        from ..segment import parse_speakers

        speakers = parse_speakers(speakers)
    if not isinstance(speakers, dict):
        return {}
    return {label: role for label, role in speakers.items() if role}


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

    The format follows the suffix: ``.xlsx`` (Excel), else CSV in UTF-8 with a BOM (so Excel shows Chinese
    right). ``start`` and ``end`` columns are added when segments carry character offsets.
    """
    offsets = any(s.start is not None or s.end is not None for s in corpus.segments)
    header = [*CANONICAL_COLUMNS, "start", "end"] if offsets else list(CANONICAL_COLUMNS)
    rows = []
    cols = {c: corpus.codings(c) for c in corpus.coders}
    for i, s in enumerate(corpus.segments):
        extra = ["" if s.start is None else s.start, "" if s.end is None else s.end] if offsets else []
        wrote = False
        for coder, col in cols.items():
            if col[i] is None:
                continue
            codes = _ordered(col[i], corpus.codebook)
            rows.append([s.document, s.segment, s.speaker, s.text, coder, ";".join(codes), *extra])
            wrote = True
        if not wrote:
            rows.append([s.document, s.segment, s.speaker, s.text, "", "", *extra])
    write_table(path, header, rows, sheet="coded")


def write_table(path: str | Path, header, rows, *, sheet: str = "Sheet1") -> None:
    """Write rows as ``.xlsx`` (by suffix) or as CSV in UTF-8 with a BOM, autocode's one CSV convention."""
    if Path(path).suffix.lower() in EXCEL_SUFFIXES:
        from ._xlsx import write_xlsx

        write_xlsx(path, header, rows, sheet=sheet)
        return
    with atomic_write(path, encoding="utf-8-sig", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _ordered(codes, codebook) -> list[str]:
    if codebook is None:
        return sorted(codes)
    order = {c: i for i, c in enumerate(codebook.ids)}
    return sorted(codes, key=lambda c: (order.get(c, len(order)), c))
