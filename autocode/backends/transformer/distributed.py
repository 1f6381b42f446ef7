"""Pre-code or pre-score a corpus across machines with ``torchrun``: each rank scores its own contiguous shard,
writes it to a part file, and rank 0 joins the parts in input order.

::

    torchrun --nproc_per_node 8 -m autocode.backends.transformer.distributed \\
        --model model/ --out precoded.csv interviews/ corpus-*.jsonl
    torchrun --nproc_per_node 8 -m autocode.backends.transformer.distributed \\
        --model model/ --out scores/ corpus-*.jsonl

(on several machines add ``--nnodes``, ``--node_rank`` and ``--rdzv-endpoint`` as usual; ``--out`` must then
be on a file system every machine sees). Each rank reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the
environment that torchrun sets and scores on ``cuda:LOCAL_RANK`` (or the CPU without a GPU) with the saved
autocode model, ``--chunk-size`` segments at a time. After a barrier (a ``gloo`` process group, which torchrun's
rendezvous sets up) rank 0 joins the parts. Started without torchrun it runs as one rank; ``--merge`` joins the
part files of an earlier run (for launchers without a process group).

Pre-coded output (``--out`` ending in ``.csv``, ``.xlsx`` or ``.jsonl``; ``.qdpx`` with one rank only): the
file ``autocode precode`` writes for the same inputs and options, byte for byte. The inputs are read as
``autocode precode`` reads them (transcripts, canonical tables, projects; each segment scored with its
neighbours as context), by every rank, streamed; a rank scores the batches of ``--chunk-size`` segments that
start in its share of the corpus (about ``segments / WORLD_SIZE``) and writes their rows to
``<out>.part-<rank>-of-<world>``; rank 0 appends the parts, in rank order, to ``out``.

Scores (``--out`` a folder): each rank scores rows ``[start, stop)`` of the corpus and writes
``scores-<rank>-of-<world>.npy``; rank 0 writes ``scores.npy`` (rows x codes, float32, calibrated
probabilities, in the corpus's order) and ``scores.json`` (format version, codes, row count). Each row is scored
on its own, as a segment of its own (no context from a neighbouring row). The corpus (``.jsonl``, ``.parquet``,
``.csv``, ``.txt``: one row per line) is converted once into memory-mapped Arrow files by ``datasets``
(:func:`autocode.backends.transformer.dataset.load_texts`), so it need not fit in memory; scores go to
memory-mapped ``.npy`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial
from pathlib import Path

import numpy as np

from ..._files import TEMP_PREFIX, atomic_write
from ...exceptions import AutocodeError

__all__ = ["Rank", "shard_name", "score_shard", "merge_shards", "part_path", "precode_shard", "merge_parts", "main"]

FORMAT = "autocode-scores"
FORMAT_VERSION = 1
PRECODED = (".csv", ".xlsx", ".jsonl", ".ndjson", ".qdpx")
"""``--out`` suffixes that ask for pre-coded output (a folder gets scores)."""


class Rank:
    """This process's place in a ``torchrun`` job: ``rank``, ``world_size``, ``local_rank`` (from the
    environment; 0, 1, 0 without torchrun)."""

    def __init__(self, env=None):
        env = os.environ if env is None else env
        try:
            self.rank = int(env.get("RANK", 0))
            self.world_size = int(env.get("WORLD_SIZE", 1))
            self.local_rank = int(env.get("LOCAL_RANK", 0))
        except ValueError as err:
            raise AutocodeError(f"RANK, WORLD_SIZE and LOCAL_RANK must be integers ({err}); torchrun sets them.") \
                from None
        if not 0 <= self.rank < self.world_size:
            raise AutocodeError(f"RANK={self.rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={self.world_size}).")
        self.grouped = self.world_size > 1 and "MASTER_ADDR" in env

    def shard(self, n_rows: int) -> tuple[int, int]:
        """This rank's rows ``[start, stop)``: contiguous, sizes differing by at most one."""
        return n_rows * self.rank // self.world_size, n_rows * (self.rank + 1) // self.world_size

    def device(self) -> str:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return "cpu"


def shard_name(rank: int, world_size: int) -> str:
    return f"scores-{rank:05d}-of-{world_size:05d}.npy"


def score_shard(model, dataset, out: str | Path, rank: Rank, *, text_column: str = "text",
                chunk_size: int = 8192) -> Path:
    """Score this rank's rows of ``dataset`` (a ``datasets.Dataset``) with ``model`` (a fitted
    :class:`~autocode.model.CodingModel`) and write them to ``out/scores-<rank>-of-<world>.npy``."""
    from ...corpus import Segment

    if text_column not in dataset.column_names:
        raise AutocodeError(f"The corpus has no column {text_column!r}; it has {', '.join(dataset.column_names)}. "
                            "Name it with --text-column.")
    start, stop = rank.shard(len(dataset))
    part = dataset.select(range(start, stop))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    final = out / shard_name(rank.rank, rank.world_size)
    tmp = out / f"{TEMP_PREFIX}{final.name}"
    scores = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(stop - start, len(model.codes_)))
    row = 0
    for batch in part.iter(batch_size=chunk_size):
        segs = [Segment(f"row-{start + row + i}", "1", "" if t is None else str(t))
                for i, t in enumerate(batch[text_column])]
        scores[row : row + len(segs)] = model.predict_proba(segs, batch_size=len(segs) or 1)
        row += len(segs)
    scores.flush()
    del scores
    os.replace(tmp, final)
    return final


def merge_shards(out: str | Path, codes=None) -> Path:
    """Join ``out/scores-*-of-N.npy`` into ``out/scores.npy`` in rank order (in pieces: memory stays bounded)
    and write ``out/scores.json``; the shard files are removed afterwards."""
    out = Path(out)
    world = _world_of(out, sorted(out.glob("scores-*-of-*.npy")), lambda r, w: out / shard_name(r, w),
                      "scores-*-of-*.npy shard")
    parts = [np.load(out / shard_name(r, world), mmap_mode="r") for r in range(world)]
    n_codes = {p.shape[1] for p in parts}
    if len(n_codes) > 1:
        raise AutocodeError(f"{out}: shard files with different numbers of codes; remove them and run again.")
    rows = sum(len(p) for p in parts)
    final = out / "scores.npy"
    tmp = out / f"{TEMP_PREFIX}scores.npy"
    merged = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(rows, n_codes.pop()))
    at = 0
    for p in parts:
        for s in range(0, len(p), 1 << 16):
            block = p[s : s + (1 << 16)]
            merged[at : at + len(block)] = block
            at += len(block)
    merged.flush()
    del merged, parts
    os.replace(tmp, final)
    doc = {"format": FORMAT, "format_version": FORMAT_VERSION, "rows": rows, "shards": world,
           "codes": None if codes is None else list(codes), "scores": final.name}
    with atomic_write(out / "scores.json", "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, indent=1)
    for r in range(world):
        (out / shard_name(r, world)).unlink()
    return final


def _world_of(where: Path, found: list[Path], path_of, what: str) -> int:
    """The world size of a run's part files ``found`` (named ``...-of-<world>...``), all of them there."""
    if not found:
        raise AutocodeError(f"{where}: no {what} files to merge.")
    worlds = {p.name.rsplit("-of-", 1)[1][:5] for p in found}
    if len(worlds) > 1:
        raise AutocodeError(f"{where}: shard files of different runs (of {', '.join(sorted(worlds))}); remove the "
                            "old ones and run again.")
    world = int(worlds.pop())
    missing = [path_of(r, world).name for r in range(world) if not path_of(r, world).exists()]
    if missing:
        raise AutocodeError(f"{where}: {len(missing)} of {world} shard files missing ({missing[0]}...); a rank "
                            "failed or has not finished. Run those ranks again, then --merge.")
    return world


def part_path(out: str | Path, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` of ``world_size`` writes its rows of the pre-coded output ``out``."""
    out = Path(out)
    return out.with_name(f"{out.name}.part-{rank:05d}-of-{world_size:05d}")


def precode_shard(model, inputs, out: str | Path, rank: Rank, *, min_score: float | None = None,
                  explain: bool = True, top_k: int = 5, batch_size: int = 8192) -> Path:
    """Pre-code this rank's share of ``inputs`` (an :class:`~autocode.io.inputs.InputStream`) with ``model``
    and write its rows to :func:`part_path` (``out``'s format, encoded by
    :meth:`~autocode.io.precoded.SuggestionWriter.encode`).

    Every rank cuts the stream into the same batches of ``batch_size`` segments as
    :func:`~autocode.streaming.precode_files` does (whole documents for a model with an interview guide) and
    scores those that start in its share ``rank.shard(segments)``, so that the parts, joined in rank order by
    :func:`merge_parts`, are the file ``precode_files`` writes with that batch size.
    """
    from ...io.precoded import SuggestionWriter
    from ...streaming import stream_batches

    encoder = SuggestionWriter(out, top_k=top_k)
    if encoder.suffix == ".qdpx":
        encoder.encode(None)  # refused, before any work
    total = inputs.n_segments if inputs.counted else inputs.census()
    start, stop = rank.shard(total)
    whole = bool(len(getattr(model.backend_, "guide_", None) or ()))
    part = part_path(out, rank.rank, rank.world_size)
    at = 0
    with atomic_write(part, encoding="utf-8", newline="\n") as f:
        for batch, batch_inputs in stream_batches(inputs, inputs.sizes, batch_size, whole_documents=whole):
            first, at = at, at + len(batch)
            if start <= first < stop:
                sug = model.suggest(batch, min_score=min_score, explain=explain, inputs=batch_inputs)
                f.writelines(encoder.encode(sug))
    return part


def merge_parts(out: str | Path) -> Path:
    """Join the part files of :func:`precode_shard` into the pre-coded output ``out``, in rank order, a few
    thousand rows at a time; the parts are removed afterwards."""
    from ...io.precoded import SuggestionWriter

    out = Path(out)
    world = _world_of(out.parent, sorted(out.parent.glob(f"{out.name}.part-*-of-*")),
                      lambda r, w: part_path(out, r, w), f"{out.name}.part-*-of-* part")
    with SuggestionWriter(out) as writer:
        for r in range(world):
            with open(part_path(out, r, world), encoding="utf-8", newline="\n") as f:
                writer.write_encoded(f)
    for r in range(world):
        part_path(out, r, world).unlink()
    return out


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autocode.backends.transformer.distributed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="inputs: as for 'autocode precode' with pre-coded output; "
                                             ".jsonl, .parquet, .csv or .txt (a row per line) for scores")
    ap.add_argument("--model", help="a saved autocode model folder")
    ap.add_argument("--out", required=True, help="pre-coded output (.csv, .xlsx, .jsonl; .qdpx with one rank), "
                                                 "or a folder for the shard files and scores.npy")
    ap.add_argument("--chunk-size", type=int, default=8192, help="segments scored at a time")
    ap.add_argument("--merge", action="store_true", help="only join the part files of an earlier run for --out")
    scores = ap.add_argument_group("scores (--out a folder)")
    scores.add_argument("--text-column", default="text")
    pre = ap.add_argument_group("pre-coded output (as 'autocode precode')")
    pre.add_argument("--min-score", type=float, dest="min_score",
                     help="accept codes scoring at least this (default: each code's learned threshold)")
    pre.add_argument("--top", type=int, default=5, help="how many best-scoring codes to list per segment")
    pre.add_argument("--no-evidence", action="store_true", dest="no_evidence", help="do not explain the suggestions")
    pre.add_argument("--max-chars", type=int, default=200, dest="max_chars",
                     help="split transcript turns longer than this into sentences (0 = never)")
    pre.add_argument("--encoding", help="encoding of the input files (default: detect)")
    pre.add_argument("--speakers", metavar="LABEL=ROLE,...", help="speaker labels of the transcripts and their roles")
    return ap


def _precoded(out: str) -> bool:
    return Path(out).suffix.lower() in PRECODED


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.chunk_size < 1:
            raise AutocodeError(f"--chunk-size must be at least 1, got {args.chunk_size}.")
        if args.merge:
            if _precoded(args.out):
                print(merge_parts(args.out))
                return 0
            codes = None
            if args.model:
                from ...model import CodingModel

                codes = CodingModel.load(args.model).codes_
            print(merge_shards(args.out, codes))
            return 0
        if not args.model or not args.files:
            raise AutocodeError("Pass --model MODEL_FOLDER and the corpus files (or --merge to join shard files).")
        _run(args)
    except AutocodeError as err:
        print(f"autocode: {err}", file=sys.stderr)
        return 1
    return 0


def _run(args) -> None:
    from ...model import CodingModel

    rank = Rank()
    model = CodingModel.load(args.model)
    if hasattr(model.backend_, "device"):  # the transformer backend: this rank's GPU
        model.backend_.device = rank.device()
    if _precoded(args.out):
        merge = _precode(args, model, rank)
    else:
        from .dataset import load_texts

        dataset = load_texts(args.files, streaming=False)
        score_shard(model, dataset, args.out, rank, text_column=args.text_column, chunk_size=args.chunk_size)
        merge = partial(merge_shards, args.out, model.codes_)
    if merge is None:
        return
    if rank.world_size == 1:
        merge()
        return
    if not rank.grouped:
        print(f"rank {rank.rank}: wrote its part of {args.out}; join the parts with --merge once every rank has "
              "finished.", file=sys.stderr)
        return
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    try:
        dist.barrier()
        if rank.rank == 0:
            merge()
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _precode(args, model, rank: Rank):
    """Pre-code this rank's share (one rank: the whole output, as ``autocode precode``); what joins the parts."""
    from ...io.inputs import InputStream
    from ...io.precoded import SuggestionWriter
    from ...segment import parse_speakers

    if rank.world_size > 1 and Path(args.out).suffix.lower() == ".qdpx":
        SuggestionWriter(args.out).encode(None)  # refused, before any work
    model.set_params(progress=False)
    inputs = InputStream(args.files, encoding=args.encoding, max_chars=args.max_chars,
                         speakers=parse_speakers(args.speakers) if args.speakers else None,
                         keep_documents=rank.world_size == 1 and Path(args.out).suffix.lower() == ".qdpx")
    if not inputs.census():
        raise AutocodeError("The inputs hold no segments to pre-code.")
    options = {"min_score": args.min_score, "explain": not args.no_evidence, "top_k": args.top,
               "batch_size": args.chunk_size}
    if rank.world_size == 1:
        from ...streaming import precode_files

        precode_files(model, inputs, args.out, **options)
        return None
    precode_shard(model, inputs, args.out, rank, **options)
    return partial(merge_parts, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
