"""A coded corpus as a Hugging Face :class:`datasets.Dataset`, and back.

One row per segment: ``document``, ``segment``, ``speaker``, ``text``, ``start``, ``end`` (-1 when unknown) and,
per coder, a column ``codes:<coder>`` holding the list of codes the coder applied, or ``None`` where the coder
did not code the segment. Codebook-aware training code can add a ``labels`` column (0/1 per code, in a fixed
code order) with :func:`to_dataset`'s ``codes`` argument.

>>> from autocode.corpus import CodedCorpus, Segment
>>> corpus = CodedCorpus([Segment("P1", "1", "党支部开会"), Segment("P1", "2", "居民投票")],
...                      {"E": {("P1", "1"): {"party"}, ("P1", "2"): set()}})
>>> ds = to_dataset(corpus, codes=["party"])  # doctest: +SKIP
>>> ds["labels"]  # doctest: +SKIP
[[1.0], [0.0]]
>>> from_dataset(ds).codings("E")  # doctest: +SKIP
[frozenset({'party'}), frozenset()]
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ...corpus import CodedCorpus, Segment
from ...exceptions import AutocodeError, MissingDependencyError

__all__ = ["to_dataset", "from_dataset", "tokenize_dataset", "load_texts", "iter_dataset_scores"]

CODES_PREFIX = "codes:"


def _datasets():
    try:
        import datasets
    except ImportError as err:
        raise MissingDependencyError("datasets", "transformer", "Converting a corpus to a Dataset") from err
    return datasets


def to_dataset(corpus: CodedCorpus, *, codes: Sequence[str] | None = None, target: str = "union"):
    """The corpus as a :class:`datasets.Dataset` (one row per segment).

    Parameters
    ----------
    corpus : CodedCorpus
    codes : sequence of str, optional
        When given, add ``labels``: per segment a 0/1 float per code (of the ``target`` coding), ready for a
        multi-label loss.
    target : str
        Whose coding fills ``labels``: ``"union"``, ``"majority"`` or a coder's name.
    """
    datasets = _datasets()
    segs = corpus.segments
    data = {
        "document": [s.document for s in segs],
        "segment": [s.segment for s in segs],
        "speaker": [s.speaker for s in segs],
        "text": [s.text for s in segs],
        "start": [-1 if s.start is None else s.start for s in segs],
        "end": [-1 if s.end is None else s.end for s in segs],
    }
    features = {
        "document": datasets.Value("string"), "segment": datasets.Value("string"),
        "speaker": datasets.Value("string"), "text": datasets.Value("string"),
        "start": datasets.Value("int64"), "end": datasets.Value("int64"),
    }
    List = getattr(datasets, "List", None) or datasets.Sequence  # datasets < 4: Sequence
    for coder in corpus.coders:
        data[CODES_PREFIX + coder] = [None if c is None else sorted(c) for c in corpus.codings(coder)]
        features[CODES_PREFIX + coder] = List(datasets.Value("string"))
    if codes is not None:
        data["labels"] = corpus.labels(list(codes), target).astype("float32").tolist()
        features["labels"] = List(datasets.Value("float32"))
    return datasets.Dataset.from_dict(data, features=datasets.Features(features))


def from_dataset(dataset, codebook=None) -> CodedCorpus:
    """A :class:`~autocode.corpus.CodedCorpus` from a dataset with the columns :func:`to_dataset` writes
    (``document``, ``segment``, ``text`` required; ``speaker``, ``start``, ``end``, ``codes:<coder>`` optional)."""
    cols = set(dataset.column_names)
    missing = [c for c in ("document", "segment", "text") if c not in cols]
    if missing:
        raise AutocodeError(
            f"The dataset lacks the column(s) {', '.join(missing)}; it has {', '.join(sorted(cols))}. "
            "Rename them with dataset.rename_column(old, new)."
        )
    n = len(dataset)
    speaker = dataset["speaker"] if "speaker" in cols else [""] * n
    start = dataset["start"] if "start" in cols else [None] * n
    end = dataset["end"] if "end" in cols else [None] * n
    docs, ids, texts = dataset["document"], dataset["segment"], dataset["text"]
    segs = [
        Segment(str(docs[i]), str(ids[i]), texts[i] or "", speaker[i] or "",
                None if start[i] is None or start[i] < 0 else int(start[i]),
                None if end[i] is None or end[i] < 0 else int(end[i]))
        for i in range(n)
    ]
    codings = {}
    for col in dataset.column_names:
        if col.startswith(CODES_PREFIX):
            values = dataset[col]
            codings[col[len(CODES_PREFIX):]] = {segs[i].key: set(v) for i, v in enumerate(values) if v is not None}
    return CodedCorpus(segs, codings, codebook=codebook)


def tokenize_dataset(texts: Sequence[str], tokenizer, *, contexts: Sequence[str] | None = None,
                     max_length: int = 256, batch_size: int = 1000, cache_dir: str | Path | None = None):
    """Token ids of ``texts`` (with ``contexts`` as second texts) through ``Dataset.map``.

    Returns a dataset with ``input_ids`` (and ``token_type_ids`` for pairs). The map runs batched on the fast
    tokenizer. With ``cache_dir``, the result is cached there as an Arrow file named by a hash of the texts,
    the tokenizer and ``max_length``, and read back (memory-mapped) on the next call with the same inputs.
    """
    datasets = _datasets()
    data = {"text": list(texts)}
    if contexts is not None:
        data["context"] = list(contexts)
    ds = datasets.Dataset.from_dict(data)

    def tok(batch):
        if contexts is None:
            enc = tokenizer(batch["text"], truncation=True, max_length=max_length, return_attention_mask=False,
                            return_token_type_ids=False)
            return {"input_ids": enc["input_ids"]}
        enc = tokenizer(batch["text"], batch["context"], truncation="longest_first", max_length=max_length,
                        return_attention_mask=False, return_token_type_ids=True)
        return {"input_ids": enc["input_ids"], "token_type_ids": enc["token_type_ids"]}

    kw = {}
    if cache_dir is not None:
        h = hashlib.sha256()
        h.update(f"autocode-tokens-v1 {max_length} {contexts is not None}".encode())
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:  # the tokenizer's definition, without call-time truncation/padding state
            spec = json.loads(backend.to_str())
            spec.pop("truncation", None)
            spec.pop("padding", None)
            h.update(json.dumps(spec, sort_keys=True).encode())
        else:
            h.update(type(tokenizer).__name__.encode())
        for i, t in enumerate(texts):
            h.update(b"\0" + t.encode("utf-8"))
            if contexts is not None:
                h.update(b"\1" + contexts[i].encode("utf-8"))
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        kw = {"cache_file_name": str(Path(cache_dir) / f"tokens-{h.hexdigest()[:32]}.arrow"),
              "load_from_cache_file": True}
    log = datasets.utils.logging
    bars = log.is_progress_bar_enabled()
    log.disable_progress_bar()
    try:
        return ds.map(tok, batched=True, batch_size=batch_size, remove_columns=ds.column_names, **kw)
    finally:
        if bars:
            log.enable_progress_bar()


BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv", ".txt": "text"}
"""File endings :func:`load_texts` reads, and the ``datasets`` builder for each."""


def load_texts(files: str | Path | Sequence[str | Path], *, streaming: bool = True):
    """A corpus in local files as a ``datasets`` dataset: ``.jsonl``/``.json`` (one object per line),
    ``.parquet``, ``.csv``, or ``.txt`` (one text per line, column ``text``); all files of one kind.

    ``streaming=True`` (an :class:`~datasets.IterableDataset`) reads the files as it goes, so a corpus larger
    than memory passes through in batches; ``streaming=False`` converts them once to Arrow files in the
    ``datasets`` cache, memory-mapped (a known length, and shards by row ranges).
    """
    datasets = _datasets()
    paths = [str(files)] if isinstance(files, (str, Path)) else [str(f) for f in files]
    if not paths:
        raise AutocodeError("No input files: pass .jsonl, .parquet, .csv or .txt files.")
    kinds = set()
    for f in paths:
        suffix = Path(f).suffix.lower()
        if suffix not in BUILDERS:
            raise AutocodeError(f"{f}: cannot read {suffix or 'a file without an ending'} as a corpus; use "
                                ".jsonl, .parquet, .csv or .txt (one text per line).")
        if not Path(f).is_file():
            raise AutocodeError(f"{f}: no such file.")
        kinds.add(BUILDERS[suffix])
    if len(kinds) > 1:
        raise AutocodeError(f"{', '.join(paths)}: files of different kinds ({', '.join(sorted(kinds))}); "
                            "convert them to one kind first.")
    return datasets.load_dataset(kinds.pop(), data_files=paths, split="train", streaming=streaming)


def iter_dataset_scores(scorer, tokenizer, dataset, *, text_column: str = "text", pair_column: str | None = None,
                        chunk_size: int = 65536, **kwargs) -> Iterator[np.ndarray]:
    """Scores of a :class:`datasets.Dataset` or :class:`~datasets.IterableDataset` (e.g. from
    :func:`load_texts` or ``load_dataset(..., streaming=True)``), one array per ``chunk_size`` rows, in the
    dataset's order; memory is bounded by a chunk, not the corpus.

    ``pair_column`` names second texts (e.g. the preceding turn). ``kwargs`` go to
    :func:`~autocode.backends.transformer.inference.score` (``device``, ``max_tokens``...) and ``max_length``.
    """
    from .inference import score_chunks

    names = getattr(dataset, "column_names", None)
    if names is not None:
        _check_columns(names, text_column, pair_column)

    def chunks():
        for batch in dataset.iter(batch_size=chunk_size):
            _check_columns(list(batch), text_column, pair_column)
            texts = ["" if t is None else str(t) for t in batch[text_column]]
            if pair_column is None:
                yield texts
            else:
                yield texts, ["" if t is None else str(t) for t in batch[pair_column]]

    yield from score_chunks(scorer, tokenizer, chunks(), **kwargs)


def _check_columns(names, text_column: str, pair_column: str | None) -> None:
    for col in (text_column, pair_column):
        if col is not None and col not in names:
            raise AutocodeError(f"The dataset has no column {col!r}; it has {', '.join(map(str, names))}. "
                                "Name the column of the texts with text_column=.")
