"""Pre-coding a corpus of any size: segments streamed from the inputs through the model to the output file in
batches, so that memory holds a batch (and the model), not the corpus.

A batch is scored exactly as the whole corpus would be: each segment keeps the text before and after it in
its document (across batch borders) and its position in the whole document (the document sizes are counted
first, :meth:`autocode.io.inputs.InputStream.census`). The output is the same, byte for byte, whatever the
batch size.

>>> from autocode.corpus import Segment
>>> segs = [Segment("A", "1", "问"), Segment("A", "2", "答"), Segment("B", "1", "另")]
>>> [(len(b), list(i.contexts), list(i.following), i.positions.tolist())
...  for b, i in stream_batches(segs, {"A": 2, "B": 1}, 2)]
[(2, ['', '问'], ['答', ''], [0.0, 0.5]), (1, [''], [''], [0.0])]
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .backends.base import Inputs
from .corpus import Segment

__all__ = ["stream_batches", "precode_files", "apply_rules_files", "PrecodeSummary", "BATCH_SIZE"]

BATCH_SIZE = 2048
"""Segments scored and written at a time by ``autocode precode`` (``--batch-size``)."""


def stream_batches(segments: Iterable[Segment], sizes: Mapping[str, int], batch_size: int = BATCH_SIZE,
                   whole_documents: bool = False) -> Iterator[tuple[list[Segment], Inputs]]:
    """Cut a stream of segments into batches of ``batch_size``, each with its model inputs as
    :func:`autocode.model.make_inputs` gives them for the whole stream: the preceding and following segment
    of the same document (also across batch borders) and the relative position in the document, whose size
    ``sizes`` gives (document -> number of segments in the whole stream). ``whole_documents``: cut only
    between documents (a batch holds at least ``batch_size`` segments or the rest, and a longer document
    whole), for models whose features of a turn depend on its whole interview (the interview guide)."""
    from .model import make_inputs

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    it = iter(segments)
    rank: Counter[str] = Counter()
    previous: Segment | None = None
    batch: list[Segment] = []
    ahead = next(it, None)
    while ahead is not None:
        batch.append(ahead)
        ahead = next(it, None)
        if ahead is not None and (len(batch) < batch_size
                                  or (whole_documents and ahead.document == batch[-1].document)):
            continue
        inputs = make_inputs(batch)
        contexts, following = list(inputs.contexts), list(inputs.following)
        if previous is not None and previous.document == batch[0].document:
            contexts[0] = previous.text
        if ahead is not None and ahead.document == batch[-1].document:
            following[-1] = ahead.text
        positions = np.empty(len(batch))
        for i, s in enumerate(batch):
            positions[i] = rank[s.document]
            rank[s.document] += 1
        sizes_ = np.array([sizes.get(s.document, 0) for s in batch], dtype=np.float64)
        yield batch, replace(inputs, contexts=contexts, following=following,
                             positions=positions / np.maximum(sizes_, 1))
        previous, batch = batch[-1], []


@dataclass(frozen=True)
class PrecodeSummary:
    """What :func:`precode_files` did: segments written, those with an accepted code, the output file."""

    n_segments: int
    n_with_codes: int
    path: Path


def _progress(enabled: bool, total: int, batch_size: int, desc: str):
    if not enabled or total <= batch_size:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="segment")


def precode_files(model, inputs, out: str | Path, *, min_score: float | None = None, explain: bool = True,
                  top_k: int = 5, batch_size: int = BATCH_SIZE, progress: bool = False) -> PrecodeSummary:
    """Pre-code ``inputs`` (an :class:`~autocode.io.inputs.InputStream`) with a fitted ``model`` into ``out``
    (any format of :func:`autocode.io.write_suggestions`), ``batch_size`` segments at a time.

    Every input segment is written, in input order. Memory holds one batch, the model, the document sizes
    and what the output format keeps until its end (:class:`~autocode.io.precoded.SuggestionWriter`); the
    file is the one :func:`~autocode.io.write_suggestions` writes from ``model.suggest`` over all the inputs.
    """
    from .io.precoded import SuggestionWriter

    total = inputs.n_segments if inputs.counted else inputs.census()
    bar = _progress(progress, total, batch_size, "pre-coding")
    n = n_with = 0
    try:
        with SuggestionWriter(out, top_k=top_k, documents=inputs.documents or None) as writer:
            # a model with an interview guide places a turn by its whole interview: batches of whole documents
            whole = bool(len(getattr(model.backend_, "guide_", None) or ()))
            for batch, batch_inputs in stream_batches(inputs, inputs.sizes, batch_size, whole_documents=whole):
                sug = model.suggest(batch, min_score=min_score, explain=explain, inputs=batch_inputs)
                writer.write(sug)
                n += len(batch)
                n_with += int(sug.accepted.any(axis=1).sum())
                if bar is not None:
                    bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    return PrecodeSummary(n, n_with, Path(out))


def apply_rules_files(rules, inputs, out: str | Path, *, batch_size: int = BATCH_SIZE,
                      progress: bool = False) -> PrecodeSummary:
    """Code ``inputs`` (an :class:`~autocode.io.inputs.InputStream`) by coding ``rules`` (a
    :class:`~autocode.rules.RuleSet`) into ``out`` (any format of :func:`autocode.io.write_suggestions`),
    ``batch_size`` segments at a time.

    Every input segment is written, in input order, with the codes whose rules matched it (``autocode rules``).
    A rule looks at one segment only, so a batch is matched on its own. Memory holds one batch, the document
    sizes and what the output format keeps until its end; the file is the one
    :func:`~autocode.io.write_suggestions` writes from ``rules.apply(segments).suggestions()`` over all the
    inputs, with the best ``min(3, codes with rules)`` codes listed per segment.
    """
    from .io.precoded import SuggestionWriter

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    total = inputs.n_segments if inputs.counted else inputs.census()
    bar = _progress(progress, total, batch_size, "coding by rules")
    top_k = min(3, len({r.code for r in rules.rules}))
    n = n_with = 0
    batch: list[Segment] = []

    def flush(writer) -> None:
        nonlocal n, n_with
        matches = rules.apply(batch)
        writer.write(matches.suggestions())
        n += len(batch)
        n_with += int(matches.matched.any(axis=1).sum())
        if bar is not None:
            bar.update(len(batch))
        batch.clear()

    try:
        with SuggestionWriter(out, top_k=top_k, documents=inputs.documents or None) as writer:
            for seg in inputs:
                batch.append(seg)
                if len(batch) == batch_size:
                    flush(writer)
            if batch or not n:
                flush(writer)
    finally:
        if bar is not None:
            bar.close()
    return PrecodeSummary(n, n_with, Path(out))
