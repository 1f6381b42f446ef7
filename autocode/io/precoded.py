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

import json
from pathlib import Path

from .._files import atomic_write
from ..exceptions import FormatError
from ..suggestion import Suggestions
from .table import write_table

__all__ = ["write_suggestions", "precoded_rows", "PRECODED_COLUMNS"]

PRECODED_COLUMNS = ("document", "segment", "speaker", "text", "coder", "codes", "code_names", "categories",
                    "category_names", "scores", "max_score", "start", "end", "evidence", "similar", "rules", "accept")


def write_suggestions(path: str | Path, suggestions: Suggestions, *, top_k: int = 5, documents=None) -> Path:
    """Write suggestions; the format follows the suffix (``.csv``, ``.xlsx``, ``.jsonl``, ``.qdpx``).

    ``documents`` (the transcripts, as :class:`~autocode.io.transcript.Document`) is needed for ``.qdpx``
    when the segments came from transcripts, so the project holds the full source text.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if path.parent and not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    if suffix in (".csv", ".xlsx"):
        _write_table(path, suggestions, top_k)
    elif suffix in (".jsonl", ".ndjson"):
        with atomic_write(path, encoding="utf-8") as f:
            for rec in suggestions.records(top_k):
                f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    elif suffix == ".qdpx":
        from .qdpx import write_precoded_qdpx

        write_precoded_qdpx(path, suggestions, documents=documents)
    else:
        raise FormatError("Unknown output format: use .csv, .xlsx, .jsonl or .qdpx.", path)
    return path


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


def _write_table(path: Path, sug: Suggestions, top_k: int) -> None:
    write_table(path, PRECODED_COLUMNS, list(precoded_rows(sug, top_k)), sheet="precoded")  # CSV (BOM) or .xlsx
