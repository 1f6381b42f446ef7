"""Score a corpus on several devices at once: one process per device, results merged in input order.

The corpus is cut into contiguous shards of about equal token counts (:func:`shard_ranges`); each shard goes
to a process of its own, which moves its copy of the scorer to its device and runs
:func:`~autocode.backends.transformer.inference.score` on it (tokenising its own texts first, with
:func:`score_texts_on_devices`, so that tokenising runs in parallel too); the parent puts the shards' scores back
together in input order. The scorer travels to the processes through shared memory (``torch.multiprocessing``),
and processes are started with ``spawn`` (CUDA cannot be used in a forked process), so a script that calls these
functions needs the usual ``if __name__ == "__main__":`` guard.

``devices="all"`` is every visible CUDA device (``CUDA_VISIBLE_DEVICES`` restricts them), or the CPU when there
is none; a list such as ``["cpu", "cpu"]`` runs several CPU processes (each with its share of the cores).

For a cluster, :mod:`autocode.backends.transformer.distributed` runs under ``torchrun`` instead.

>>> shard_ranges([5, 5, 5, 5, 5, 5], 3)
[(0, 2), (2, 4), (4, 6)]
>>> parse_devices("cuda:0,cuda:1")
['cuda:0', 'cuda:1']
"""

from __future__ import annotations

import os
import queue as queue_mod
import traceback
from collections.abc import Sequence
from functools import partial

import numpy as np

from ...exceptions import AutocodeError
from ._batching import TokenizedTexts

__all__ = ["parse_devices", "visible_devices", "shard_ranges", "score_on_devices", "score_texts_on_devices"]


def visible_devices() -> list[str]:
    """Every visible CUDA device (``cuda:0``, ``cuda:1``, ...), or ``["cpu"]`` when there is none."""
    from .inference import _torch

    torch = _torch()
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [f"cuda:{i}" for i in range(n)] or ["cpu"]


def parse_devices(devices: str | int | Sequence[str] | None) -> list[str]:
    """A list of device names from ``"all"``, a comma-separated string, a count or a list.

    An int ``n`` is the first ``n`` visible CUDA devices, or ``n`` CPU processes when there is no GPU.
    """
    if devices is None or devices == "all":
        return visible_devices()
    if isinstance(devices, int) and not isinstance(devices, bool):
        if devices < 1:
            raise AutocodeError(f"devices must be at least 1, got {devices}.")
        found = visible_devices()
        if found == ["cpu"]:
            return ["cpu"] * devices
        if devices > len(found):
            raise AutocodeError(f"devices={devices}, but only {len(found)} CUDA device(s) are visible. "
                                "Ask for fewer, or pass devices='all'.")
        return found[:devices]
    names = [d.strip() for d in devices.split(",")] if isinstance(devices, str) else [str(d) for d in devices]
    names = [d for d in names if d]
    if not names:
        raise AutocodeError("devices is empty: pass 'all', a count, or names such as 'cuda:0,cuda:1'.")
    return names


def shard_ranges(lengths, n_shards: int) -> list[tuple[int, int]]:
    """Contiguous ``(start, stop)`` ranges over the texts with about equal token counts; no empty range."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(lengths)
    n_shards = max(1, min(int(n_shards), n))
    if n == 0:
        return []
    csum = np.cumsum(np.maximum(lengths, 1))
    cuts = np.searchsorted(csum, csum[-1] * np.arange(1, n_shards) / n_shards, side="left") + 1
    bounds = [0, *np.clip(cuts, 1, n - 1).tolist(), n]
    for i in range(1, len(bounds) - 1):  # strictly increasing: every shard has at least one text
        bounds[i] = max(bounds[i], bounds[i - 1] + 1)
    for i in range(len(bounds) - 2, 0, -1):
        bounds[i] = min(bounds[i], bounds[i + 1] - 1)
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _slice(tokens: TokenizedTexts, start: int, stop: int) -> TokenizedTexts:
    a, b = int(tokens.offsets[start]), int(tokens.offsets[stop])
    types = None if tokens.type_ids is None else tokens.type_ids[a:b]
    return TokenizedTexts(tokens.ids[a:b], tokens.offsets[start : stop + 1] - a, types)


def _worker(index: int, task, device: str, threads: int | None, results) -> None:
    """Run ``task(device=device)`` in a child process; hand back the scores or the error."""
    try:
        import torch

        if threads:
            torch.set_num_threads(threads)
        if device.startswith("cuda"):
            torch.cuda.set_device(torch.device(device))
        out = task(device=device)
        results.put((index, "ok", np.ascontiguousarray(out, dtype=np.float32)))
    except BaseException as err:  # noqa: BLE001 - every failure goes back to the parent, which raises it
        results.put((index, "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))


def _run(tasks: list, devices: list[str], n_out: int, threads: int | None) -> np.ndarray:
    """Run one task per device in a process of its own; the tasks' outputs, concatenated in task order."""
    import torch.multiprocessing as tmp

    ctx = tmp.get_context("spawn")
    if threads is None and all(d == "cpu" for d in devices):
        threads = max(1, (os.cpu_count() or 1) // len(tasks))
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(i, task, dev, threads, results), daemon=True)
             for i, (task, dev) in enumerate(zip(tasks, devices))]
    for p in procs:
        p.start()
    parts: dict[int, np.ndarray] = {}
    try:
        while len(parts) < len(tasks):
            try:
                i, status, value = results.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [j for j, p in enumerate(procs) if j not in parts and not p.is_alive() and p.exitcode]
                if dead:
                    j = dead[0]
                    raise AutocodeError(f"The process scoring shard {j + 1} of {len(tasks)} on {devices[j]} died "
                                        f"(exit code {procs[j].exitcode}); out of memory? Try a smaller "
                                        "max_tokens.") from None
                continue
            if status == "error":
                first = value.splitlines()[0]
                raise AutocodeError(f"Scoring shard {i + 1} of {len(tasks)} on {devices[i]} failed: {first}")
            parts[i] = value
    finally:
        for p in procs:
            if p.is_alive() and len(parts) < len(tasks):
                p.terminate()
        for p in procs:
            p.join()
    if not parts:
        return np.zeros((0, n_out), dtype=np.float32)
    return np.concatenate([parts[i] for i in range(len(tasks))])


def score_on_devices(scorer, tokens: TokenizedTexts, *, devices: str | int | Sequence[str] = "all",
                     threads: int | None = None, **kwargs) -> np.ndarray:
    """Scores of every text in ``tokens`` (texts x outputs, in input order), computed on several devices.

    Parameters
    ----------
    scorer : module from :func:`~autocode.backends.transformer.inference.build_scorer`
        Each process moves its own copy to its device (with one device, this process moves the scorer, as
        :func:`~autocode.backends.transformer.inference.score` does).
    devices : "all", int, str or list of str
        See :func:`parse_devices`. One device: the scores are computed in this process.
    threads : int, optional
        torch threads per process (default: on CPU processes, the cores shared out between them).
    kwargs
        Passed to :func:`~autocode.backends.transformer.inference.score` in every process.
    """
    from .inference import score

    names = parse_devices(devices)
    if len(names) == 1 or len(tokens) <= 1:
        return score(scorer, tokens, device=names[0], **kwargs)
    ranges = shard_ranges(tokens.lengths, len(names))
    tasks = [partial(score, scorer, _slice(tokens, a, b), **kwargs) for a, b in ranges]
    return _run(tasks, names[: len(tasks)], scorer.head.out_features, threads)


def score_texts_on_devices(scorer, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *,
                           devices: str | int | Sequence[str] = "all", threads: int | None = None,
                           **kwargs) -> np.ndarray:
    """Scores of ``texts`` (and ``pairs`` as second texts) on several devices, in input order.

    Each process tokenises its own contiguous shard of the texts (cut by characters), so tokenising is
    spread over the processes as well. ``kwargs`` go to
    :func:`~autocode.backends.transformer.inference.score_texts` (``max_length``, ``chunk_size``, ``max_tokens``...).
    """
    from .inference import score_texts

    names = parse_devices(devices)
    texts = list(texts)
    if pairs is not None:
        pairs = list(pairs)
        if len(pairs) != len(texts):
            raise AutocodeError(f"{len(texts)} texts but {len(pairs)} pairs: pass one second text per text.")
    if len(names) == 1 or len(texts) <= 1:
        return score_texts(scorer, tokenizer, texts, pairs, device=names[0], **kwargs)
    chars = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
    ranges = shard_ranges(chars, len(names))
    tasks = [partial(score_texts, scorer, tokenizer, texts[a:b], None if pairs is None else pairs[a:b], **kwargs)
             for a, b in ranges]
    return _run(tasks, names[: len(tasks)], scorer.head.out_features, threads)
