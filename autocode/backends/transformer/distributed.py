"""Pre-score a corpus across machines with ``torchrun``: each rank scores its own contiguous shard, writes it
to a shard file, and rank 0 joins the shards in input order.

::

    torchrun --nproc_per_node 8 -m autocode.backends.transformer.distributed \\
        --model model/ --out scores/ corpus-*.jsonl

(on several machines add ``--nnodes``, ``--node_rank`` and ``--rdzv-endpoint`` as usual; ``--out`` must then
be a folder every machine sees). Each rank reads ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` from the
environment that torchrun sets, scores rows ``[start, stop)`` of the corpus (about ``rows / WORLD_SIZE`` each)
on ``cuda:LOCAL_RANK`` (or the CPU without a GPU) with the saved autocode model, ``chunk_size`` rows at a time,
and writes ``scores-<rank>-of-<world>.npy``. After a barrier (a ``gloo`` process group, which torchrun's
rendezvous sets up), rank 0 writes ``scores.npy`` (rows x codes, float32, calibrated probabilities, in the
corpus's order) and ``scores.json`` (format version, codes, row count). Started without torchrun it runs as
one rank; ``--merge`` joins the shard files of an earlier run (for launchers without a process group).

Each row is scored on its own, as a segment of its own (no context from a neighbouring row). The corpus
(``.jsonl``, ``.parquet``, ``.csv``, ``.txt``) is converted once into memory-mapped Arrow files by ``datasets``
(:func:`autocode.backends.transformer.dataset.load_texts`), so it need not fit in memory; scores go to
memory-mapped ``.npy`` files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from ..._files import TEMP_PREFIX, atomic_write
from ...exceptions import AutocodeError

__all__ = ["Rank", "shard_name", "score_shard", "merge_shards", "main"]

FORMAT = "autocode-scores"
FORMAT_VERSION = 1


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
    shards = sorted(out.glob("scores-*-of-*.npy"))
    if not shards:
        raise AutocodeError(f"{out}: no scores-*-of-*.npy shard files to merge.")
    worlds = {p.stem.rsplit("-of-", 1)[1] for p in shards}
    if len(worlds) > 1:
        raise AutocodeError(f"{out}: shard files of different runs (of {', '.join(sorted(worlds))}); remove the "
                            "old ones and run again.")
    world = int(worlds.pop())
    missing = [shard_name(r, world) for r in range(world) if not (out / shard_name(r, world)).exists()]
    if missing:
        raise AutocodeError(f"{out}: {len(missing)} of {world} shard files missing ({missing[0]}...); a rank "
                            "failed or has not finished. Run those ranks again, then --merge.")
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


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autocode.backends.transformer.distributed",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("files", nargs="*", help="corpus files: .jsonl, .parquet, .csv or .txt")
    ap.add_argument("--model", help="a saved autocode model folder")
    ap.add_argument("--out", required=True, help="folder for the shard files and scores.npy")
    ap.add_argument("--text-column", default="text")
    ap.add_argument("--chunk-size", type=int, default=8192, help="rows scored at a time")
    ap.add_argument("--merge", action="store_true", help="only join the shard files in --out")
    return ap


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.merge:
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
    from .dataset import load_texts

    rank = Rank()
    model = CodingModel.load(args.model)
    if hasattr(model.backend_, "device"):  # the transformer backend: this rank's GPU
        model.backend_.device = rank.device()
    dataset = load_texts(args.files, streaming=False)
    score_shard(model, dataset, args.out, rank, text_column=args.text_column, chunk_size=args.chunk_size)
    if rank.world_size == 1:
        merge_shards(args.out, model.codes_)
        return
    if not rank.grouped:
        print(f"rank {rank.rank}: wrote {shard_name(rank.rank, rank.world_size)}; join the shards with --merge "
              "once every rank has finished.", file=sys.stderr)
        return
    import datetime

    import torch.distributed as dist

    dist.init_process_group("gloo", timeout=datetime.timedelta(hours=24))
    try:
        dist.barrier()
        if rank.rank == 0:
            merge_shards(args.out, model.codes_)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    raise SystemExit(main())
