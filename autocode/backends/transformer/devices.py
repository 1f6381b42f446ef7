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

import numpy as np

from ...exceptions import AutocodeError
from ._batching import TokenizedTexts

__all__ = ["parse_devices", "visible_devices", "shard_ranges", "DevicePool", "score_on_devices",
           "score_texts_on_devices"]


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


def _worker(rank: int, scorer, device: str, threads: int | None, inbox, results) -> None:
    """A device's process: move the scorer to ``device`` once, then score every job from ``inbox``."""
    import torch

    from .inference import score, score_texts

    if threads:
        torch.set_num_threads(threads)
    if device.startswith("cuda:"):
        torch.cuda.set_device(torch.device(device))
    while True:
        job = inbox.get()
        if job is None:
            return
        job_id, kind, args, kwargs = job
        try:
            fn = score if kind == "tokens" else score_texts
            out = fn(scorer, *args, device=device, **kwargs)
            results.put((job_id, rank, "ok", np.ascontiguousarray(out, dtype=np.float32)))
        except Exception as err:  # noqa: BLE001 - every failure goes back to the parent, which raises it
            results.put((job_id, rank, "error", f"{type(err).__name__}: {err}\n{traceback.format_exc()}"))


class DevicePool:
    """One process per device, each holding its own copy of ``scorer`` on its device, started once and reused
    for every call (starting a process and moving a model costs seconds).

    >>> pool = DevicePool(scorer, devices="all")            # doctest: +SKIP
    >>> scores = pool.score(tokens, max_tokens=65536)       # doctest: +SKIP
    >>> pool.close()                                        # doctest: +SKIP

    Also a context manager (``with DevicePool(...) as pool:``). Processes are started with ``spawn`` and the
    scorer reaches them through shared memory.
    """

    def __init__(self, scorer, devices: str | int | Sequence[str] = "all", *, threads: int | None = None):
        import torch.multiprocessing as tmp

        self.devices = parse_devices(devices)
        self.n_out = scorer.head.out_features
        if threads is None and all(d == "cpu" for d in self.devices):
            threads = max(1, (os.cpu_count() or 1) // len(self.devices))
        ctx = tmp.get_context("spawn")
        self._results = ctx.Queue()
        self._inboxes = [ctx.Queue() for _ in self.devices]
        self._procs = [ctx.Process(target=_worker, args=(r, scorer, d, threads, q, self._results), daemon=True)
                       for r, (d, q) in enumerate(zip(self.devices, self._inboxes))]
        for p in self._procs:
            p.start()
        self._jobs = 0

    def __enter__(self) -> DevicePool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the processes (idempotent)."""
        for q, p in zip(self._inboxes, self._procs):
            if p.is_alive():
                q.put(None)
        for p in self._procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
                p.join()
        self._procs = []

    def _map(self, kind: str, shards: list[tuple], kwargs: dict) -> np.ndarray:
        if not self._procs:
            raise AutocodeError("This DevicePool is closed: make a new one.")
        job = self._jobs = self._jobs + 1
        for rank, args in enumerate(shards):
            self._inboxes[rank].put((job, kind, args, kwargs))
        parts: dict[int, np.ndarray] = {}
        while len(parts) < len(shards):
            try:
                job_id, rank, status, value = self._results.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [r for r, p in enumerate(self._procs[: len(shards)]) if r not in parts and not p.is_alive()]
                if dead:
                    r = dead[0]
                    code = self._procs[r].exitcode
                    self.close()
                    raise AutocodeError(f"The process scoring on {self.devices[r]} (shard {r + 1} of {len(shards)}) "
                                        f"died (exit code {code}); out of memory? Try a smaller max_tokens.") from None
                continue
            if job_id != job:  # left over from a call that failed
                continue
            if status == "error":
                raise AutocodeError(f"Scoring shard {rank + 1} of {len(shards)} on {self.devices[rank]} failed: "
                                    f"{value.splitlines()[0]}")
            parts[rank] = value
        if not parts:
            return np.zeros((0, self.n_out), dtype=np.float32)
        return np.concatenate([parts[r] for r in range(len(shards))])

    def score(self, tokens: TokenizedTexts, **kwargs) -> np.ndarray:
        """Scores of ``tokens`` in input order; ``kwargs`` go to
        :func:`~autocode.backends.transformer.inference.score` in every process."""
        ranges = shard_ranges(tokens.lengths, len(self.devices))
        return self._map("tokens", [(_slice(tokens, a, b),) for a, b in ranges], kwargs)

    def score_texts(self, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None,
                    **kwargs) -> np.ndarray:
        """Scores of ``texts`` in input order, each process tokenising its own shard (cut by characters);
        ``kwargs`` go to :func:`~autocode.backends.transformer.inference.score_texts`."""
        texts = list(texts)
        if pairs is not None:
            pairs = list(pairs)
            if len(pairs) != len(texts):
                raise AutocodeError(f"{len(texts)} texts but {len(pairs)} pairs: pass one second text per text.")
        chars = [len(t) + (len(pairs[i]) if pairs is not None else 0) for i, t in enumerate(texts)]
        shards = [(tokenizer, texts[a:b], None if pairs is None else pairs[a:b])
                  for a, b in shard_ranges(chars, len(self.devices))]
        return self._map("texts", shards, kwargs)


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

    Starts and stops a :class:`DevicePool`; keep a pool open to score many corpora.
    """
    from .inference import score

    names = parse_devices(devices)
    if len(names) == 1 or len(tokens) <= 1:
        return score(scorer, tokens, device=names[0], **kwargs)
    with DevicePool(scorer, names[: len(tokens)], threads=threads) as pool:
        return pool.score(tokens, **kwargs)


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
    if pairs is not None and len(pairs) != len(texts):
        raise AutocodeError(f"{len(texts)} texts but {len(pairs)} pairs: pass one second text per text.")
    if len(names) == 1 or len(texts) <= 1:
        return score_texts(scorer, tokenizer, texts, pairs, device=names[0], **kwargs)
    with DevicePool(scorer, names[: len(texts)], threads=threads) as pool:
        return pool.score_texts(tokenizer, texts, pairs, **kwargs)
