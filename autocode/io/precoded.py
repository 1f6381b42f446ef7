"""Write pre-coded suggestions as a canonical coded table (``.csv`` or Excel ``.xlsx``), JSON lines
(``.jsonl``) or a REFI-QDA project (``.qdpx``).

The table is itself a canonical table (``document,segment,speaker,text,coder,codes``), with ``coder`` = the
model's name and ``codes`` = the accepted suggestions, so it can be compared with human coding by
``autocode agree`` or read back with :func:`autocode.read_coded`. Extra columns:

``code_names``, ``categories``, ``category_names``
    names of the accepted codes, and every category they roll up to;
``scores``
    the best-scoring codes, accepted or not, as ``code:score`` joined by ``;``;
``max_score``
    the best score of the segment (low = the segment fits no code well);
``start``, ``end``
    character offsets into the transcript, when known;
``evidence``, ``similar``
    why each accepted code was suggested (``code: 词、词 | code: ...``): the segment's words that raised its
    score most, and the coded training segments of the code most like it (``document#segment「quote」``),
    when the suggestions carry evidence (``autocode precode`` gives it; :meth:`CodingModel.suggest` with
    ``explain=True``);
``rules``
    the coding rules that matched the segment and the passages they matched (``code: 词 [rule] | ...``), when
    the suggestions come from rules or from a model that has rules (empty otherwise);
``accept``
    empty, for the reviewer: ``yes``/``no`` per row or per code (:func:`autocode.read_review`).
"""

from __future__ import annotations

import csv
import json
from contextlib import ExitStack
from itertools import islice
from pathlib import Path

from .._files import atomic_write
from ..exceptions import FormatError
from ..suggestion import Suggestions

__all__ = ["write_suggestions", "SuggestionWriter", "precoded_rows", "PRECODED_COLUMNS"]

PRECODED_COLUMNS = ("document", "segment", "speaker", "text", "coder", "codes", "code_names", "categories",
                    "category_names", "scores", "max_score", "start", "end", "evidence", "similar", "rules", "accept")


def write_suggestions(path: str | Path, suggestions: Suggestions, *, top_k: int = 5, documents=None) -> Path:
    """Write suggestions; the format follows the suffix (``.csv``, ``.xlsx``, ``.jsonl``, ``.qdpx``).

    ``documents`` (the transcripts, as :class:`~autocode.io.transcript.Document`) is needed for ``.qdpx``
    when the segments came from transcripts, so the project holds the full source text.
    """
    with SuggestionWriter(path, top_k=top_k, documents=documents) as writer:
        writer.write(suggestions)
    return Path(path)


class SuggestionWriter:
    """Writes suggestions batch by batch into one file (the one :func:`write_suggestions` writes for all
    of them at once): each batch's rows go out when :meth:`write` is called.

    ``.csv``, ``.jsonl`` and ``.xlsx`` stream (the workbook's sheet is compressed as it is written); a
    ``.qdpx`` project is written when the writer closes, from every batch kept until then. The file appears
    only when the writer closes without error.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "precoded.csv"
    >>> with SuggestionWriter(out) as w:
    ...     pass
    >>> out.read_text(encoding="utf-8-sig").splitlines()[0].split(",")[:4]
    ['document', 'segment', 'speaker', 'text']
    """

    def __init__(self, path: str | Path, *, top_k: int = 5, documents=None):
        self.path = Path(path)
        self.top_k = top_k
        self.documents = documents
        self.suffix = self.path.suffix.lower()
        if self.suffix not in (".csv", ".xlsx", ".jsonl", ".ndjson", ".qdpx"):
            raise FormatError("Unknown output format: use .csv, .xlsx, .jsonl or .qdpx.", self.path)
        self._stack = ExitStack()
        self._kept: list[Suggestions] = []  # .qdpx: written at the end
        self._file = self._csv = self._xlsx = None

    def __enter__(self) -> SuggestionWriter:
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.suffix == ".csv":
            self._file = self._stack.enter_context(atomic_write(self.path, encoding="utf-8-sig", newline=""))
            self._csv = csv.writer(self._file)
            self._csv.writerow(PRECODED_COLUMNS)
        elif self.suffix == ".xlsx":
            from ._xlsx import XlsxWriter

            self._xlsx = self._stack.enter_context(XlsxWriter(self.path, PRECODED_COLUMNS, sheet="precoded"))
        elif self.suffix in (".jsonl", ".ndjson"):
            self._file = self._stack.enter_context(atomic_write(self.path, encoding="utf-8"))
        return self

    def write(self, suggestions: Suggestions) -> None:
        """Write the rows of one batch."""
        if self._csv is not None:
            self._csv.writerows(precoded_rows(suggestions, self.top_k))
        elif self._xlsx is not None:
            self._xlsx.add_rows(precoded_rows(suggestions, self.top_k))
        elif self._file is not None:
            self._file.write("".join(json.dumps(rec, ensure_ascii=False) + "\n"
                                     for rec in suggestions.records(self.top_k)))
        else:
            self._kept.append(suggestions)

    def encode(self, suggestions: Suggestions):
        """The rows of one batch as lines of JSON, one per segment, for :meth:`write_encoded` to write later
        (maybe in another process: the parts of a sharded run, joined in input order). A ``.qdpx`` project is
        written from all the suggestions at once and has no such lines."""
        if self.suffix == ".qdpx":
            raise FormatError("A .qdpx project is written from every suggestion at once, not in parts: write "
                              ".csv, .xlsx or .jsonl here (or pre-code into .qdpx with one process).", self.path)
        if self.suffix in (".jsonl", ".ndjson"):
            return (json.dumps(rec, ensure_ascii=False) + "\n" for rec in suggestions.records(self.top_k))
        return (json.dumps(row) + "\n" for row in precoded_rows(suggestions, self.top_k))

    def write_encoded(self, lines) -> None:
        """Write rows that :meth:`encode` gave (by a writer of the same format), a few thousand at a time: the
        bytes :meth:`write` writes for their suggestions."""
        if self.suffix == ".qdpx":
            self.encode(None)  # refused, as in encode
        lines = iter(lines)
        while chunk := list(islice(lines, 4096)):
            if self._csv is not None:
                self._csv.writerows(map(json.loads, chunk))
            elif self._xlsx is not None:
                self._xlsx.add_rows(map(json.loads, chunk))
            else:
                self._file.writelines(chunk)

    def __exit__(self, *exc) -> bool:
        if exc[0] is None and self.suffix == ".qdpx":
            try:
                from .qdpx import write_precoded_qdpx

                write_precoded_qdpx(self.path, Suggestions.concat(self._kept), documents=self.documents)
            except BaseException:
                self._stack.close()
                raise
        return self._stack.__exit__(*exc)


def precoded_rows(sug: Suggestions, top_k: int = 5):
    """The rows of the pre-coded table (:data:`PRECODED_COLUMNS`), one per segment, for every table writer."""
    book = sug.codebook
    for i, s in enumerate(sug.segments):
        codes = sug.codes_for(i)
        cats = sug.categories_for(i)
        top = sug.top(i, top_k)
        evidence, similar = sug.evidence_text(i)
        yield [
            s.document, s.segment, s.speaker, s.text, sug.coder, ";".join(codes),
            ";".join(book[c].name for c in codes), ";".join(cats), ";".join(book[c].name for c in cats),
            ";".join(f"{c}:{sc:.3f}" for c, sc, _ in top),
            f"{top[0][1]:.4f}" if top else "",
            "" if s.start is None else s.start, "" if s.end is None else s.end,
            evidence, similar, sug.rules_text(i), "",
        ]
