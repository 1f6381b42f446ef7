"""Inputs to pre-coding: a mix of canonical tables, transcripts and QDA projects."""

from __future__ import annotations

import warnings
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..corpus import Segment
from ..exceptions import AutocodeWarning, FormatError
from ..segment import segment_text
from .table import iter_table_segments, read_segments
from .transcript import Document, expand_paths, read_documents

__all__ = ["read_inputs", "input_paths", "InputStream"]

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


class InputStream:
    """The segments :func:`read_inputs` gives, read one input file (one table row) at a time, so that a
    corpus larger than memory can be pre-coded (:func:`autocode.streaming.precode_files`).

    :meth:`census` reads every input once first: it checks them (the errors :func:`read_inputs` raises, before
    any work), counts each document's segments (a segment's relative position in its document needs the
    document's size) and describes the transcripts' layouts. Iterating then reads the inputs again and
    yields the segments in :func:`read_inputs`' order. What is held: the document sizes, the names of the
    transcripts and, for a table that lists a segment more than once (once per coder), the keys of those
    segments; ``keep_documents`` keeps the transcripts' texts too (a ``.qdpx`` output needs them).
    """

    def __init__(self, inputs: str | Path | Iterable[str | Path], *, encoding: str | None = None,
                 max_chars: int | None = 200, speakers=None, keep_documents: bool = False):
        self.paths = input_paths(inputs)
        self.encoding = encoding
        self.max_chars = max_chars
        self.speakers = speakers
        self.keep_documents = keep_documents
        self.sizes: Counter[str] = Counter()
        self.documents: list[Document] = []
        self.layouts: list[str] = []
        self.n_segments = 0
        self._repeated: dict[int, set[int]] = {}  # input -> fingerprints of segment keys found in several rows
        self.counted = False
        """Whether :meth:`census` has run."""

    def census(self) -> int:
        """Read the inputs once: check them, count the segments of each document; the number of segments."""
        from ..segment import detect_layout, layout_lines

        groups: dict[str, list[str]] = {}
        self.sizes.clear()
        self.documents.clear()
        for n, path in enumerate(self.paths):
            if path.suffix.lower() in TABLES:
                self._count_table(n, path)
                continue
            for doc in self._documents(path):
                how = detect_layout(doc.text, speakers=self.speakers).describe()
                groups.setdefault(how, []).append(doc.name)
                self.sizes[doc.name] += len(self._segment(doc))
                if self.keep_documents:
                    self.documents.append(doc)
        self.layouts = layout_lines(groups)
        self.n_segments = sum(self.sizes.values())
        self.counted = True
        return self.n_segments

    def __iter__(self) -> Iterator[Segment]:
        if not self.counted:
            self.census()
        for n, path in enumerate(self.paths):
            if path.suffix.lower() in TABLES:
                repeated, seen = self._repeated.get(n, set()), set()
                for seg, _ in iter_table_segments(path, encoding=self.encoding):
                    if repeated and hash(seg.key) in repeated:
                        if seg.key in seen:
                            continue  # the segment again, for another coder
                        seen.add(seg.key)
                    yield seg
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AutocodeWarning)  # given by the census
                docs = self._documents(path)
            for doc in docs:
                yield from self._segment(doc)

    def _documents(self, path: Path) -> list[Document]:
        if path.suffix.lower() in PROJECTS:
            from .qdpx import read_project

            return read_project(path).documents()
        return read_documents(path, encoding=self.encoding)

    def _segment(self, doc: Document) -> list[Segment]:
        return segment_text(doc.text, doc.name, max_chars=self.max_chars or None, speakers=self.speakers,
                            headings=doc.headings)

    def _count_table(self, n: int, path: Path) -> None:
        """Count a table's segments per document; a segment in several rows (one per coder) counts once, and
        must have the same text in each (the error :func:`read_segments` gives)."""
        fingerprints = array("q")
        sizes: Counter[str] = Counter()
        for seg, _ in iter_table_segments(path, encoding=self.encoding):
            fingerprints.append(hash(seg.key))
            sizes[seg.document] += 1
        values, counts = np.unique(np.frombuffer(fingerprints, dtype=np.int64), return_counts=True)
        repeated = {int(v) for v in values[counts > 1]}
        del fingerprints, values, counts
        if repeated:  # look again, at those rows only, with their keys
            first: dict[tuple[str, str], tuple[int, str]] = {}  # key -> hash of its text, where
            for seg, where in iter_table_segments(path, encoding=self.encoding):
                if hash(seg.key) not in repeated:
                    continue
                if seg.key not in first:
                    first[seg.key] = (hash(seg.text), where)
                    continue
                text, at = first[seg.key]
                if text != hash(seg.text):
                    raise FormatError(
                        f"Segment {seg.document}/{seg.segment} has a different text than at {path}, {at}. Rows "
                        "of the same segment (one per coder) must carry the same text.",
                        path,
                        where,
                    )
                sizes[seg.document] -= 1
            self._repeated[n] = repeated
        self.sizes.update(sizes)
