"""Inputs to pre-coding: a mix of canonical tables, transcripts and QDA projects."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..corpus import Segment
from ..segment import segment_text
from .table import read_segments
from .transcript import Document, expand_paths, read_documents

__all__ = ["read_inputs", "input_paths"]

TABLES = (".csv", ".tsv", ".xlsx", ".xlsm", ".jsonl", ".ndjson")
PROJECTS = (".qdpx", ".qde", ".qda", ".sqlite", ".db")
TRANSCRIPTS = (".txt", ".docx")


def input_paths(inputs: str | Path | Iterable[str | Path]) -> list[Path]:
    """The files :func:`read_inputs` reads: named files, the transcripts and projects of folders, glob matches."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    paths: list[Path] = []
    for item in inputs:
        if Path(item).is_dir():
            paths.extend(expand_paths(item, suffixes=(*TRANSCRIPTS, ".qdpx", ".qda")))
        else:
            paths.extend(expand_paths(item, suffixes=(*TRANSCRIPTS, *TABLES, *PROJECTS)))
    return paths


def read_inputs(inputs: str | Path | Iterable[str | Path], *, encoding: str | None = None,
                max_chars: int | None = 200, speakers=None) -> tuple[list[Segment], list[Document]]:
    """Segments to pre-code, and the transcript documents they come from.

    Named files may be canonical tables (``.csv``/``.tsv``/``.xlsx``/``.jsonl``: their segments as they are; any
    ``coder``/``codes`` columns ignored), transcripts (``.txt``/``.docx``, or a named Markdown ``.md``: segmented into turns and sentences, with their sections)
    or QDA projects (``.qdpx``/``.qde``/QualCoder ``.qda``: their text sources, segmented like transcripts).
    Any other file is read as a text transcript; a binary file (PDF, ``.doc``, image) is refused, naming it.
    A folder contributes its transcripts and projects, not its tables (a folder of interviews often holds a
    codebook or notes as CSV). ``speakers`` names speaker labels and their roles for the transcripts and project
    sources, as in :func:`autocode.segment.segment_text`.
    """
    segments: list[Segment] = []
    documents: list[Document] = []
    for path in input_paths(inputs):
        suffix = path.suffix.lower()
        if suffix in TABLES:
            segments.extend(read_segments(path, encoding=encoding))
            continue
        if suffix in PROJECTS:
            from .qdpx import read_project

            docs = read_project(path).documents()
        else:
            docs = read_documents(path, encoding=encoding)
        for doc in docs:
            documents.append(doc)
            segments.extend(segment_text(doc.text, doc.name, max_chars=max_chars or None,
                                         speakers=speakers, headings=doc.headings))
    return segments, documents
