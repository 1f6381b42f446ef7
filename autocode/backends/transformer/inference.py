"""Score a whole corpus with a transformer encoder: text in, code scores out, as fast as the hardware allows.

The loop is built for batch pre-coding of many interviews:

1. **Tokenise ahead of the accelerator**, with a fast (Rust) tokenizer on all cores, into one flat array of
   token ids plus offsets (:class:`TokenizedTexts`, which can be saved and reused). For a stream of texts the
   next chunk is tokenised in a background thread while the current one runs on the GPU.
2. **Sort by length and fill batches to a token budget** (:func:`plan_batches`): padded batches hold at most
   ``max_tokens`` tokens including padding, so short segments travel in large batches and padding is small.
   Without padding (``unpad=True``), batches are packed end to end and budgeted by real tokens.
3. **Run the encoder in bf16 with fused attention** (:func:`build_scorer`). For the BERT family (BERT,
   RoBERTa, XLM-R: bert-base-chinese, RBT3, multilingual-e5) a lean forward pass over the model's own weights
   fuses Q/K/V into one matrix product and calls ``scaled_dot_product_attention``; on CUDA the packed
   (padding-free) variant calls ``torch.nn.attention.varlen.varlen_attn``. Other encoders run through their
   Hugging Face forward with SDPA.
4. **Never wait for the device inside the loop**: batches are collated in a background thread into pinned
   memory and copied with ``non_blocking=True``; every batch's scores are scattered into one device tensor by
   index (in input order) and copied to the host once, at the end.
5. Optionally CUDA graphs (``cuda_graphs=True``): on the packed path, batches are grown to a few fixed token
   counts (filler sequences of pad tokens, rows of length 0) and the forward pass is captured once per count
   and replayed, so a batch costs one launch; elsewhere ``torch.compile(mode="reduce-overhead")`` over
   bucketed lengths and fixed row counts. ``compile=True`` compiles the forward pass.

The CPU path is the same code, in float32 without pinning.

Steps 1 and 2 live in ``_batching.py`` (numpy only), the modules of step 3 in ``_modules.py`` (imported with
torch on first use); this module runs the loop and re-exports the public names of both.

>>> import numpy as np
>>> [b.rows.tolist() for b in plan_batches(np.array([3, 9, 5, 9]), max_tokens=20, multiple_of=1)]
[[1, 3], [2, 0]]
"""

from __future__ import annotations

import itertools
import queue
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from functools import lru_cache

import numpy as np

from ...exceptions import MissingDependencyError
from ._batching import Batch, TokenizedTexts, collate, pad_packed, plan_batches, token_buckets, tokenize

__all__ = [
    "TokenizedTexts",
    "Batch",
    "tokenize",
    "plan_batches",
    "collate",
    "build_scorer",
    "score",
    "iter_scores",
    "score_chunks",
    "score_texts",
    "resolve_device",
]


def _torch():
    try:
        import torch
    except ImportError as err:
        raise MissingDependencyError("torch", "transformer", "The transformer backend") from err
    return torch


# -- the model ------------------------------------------------------------------------------------------------
def resolve_device(device: str | None = "auto"):
    """``"auto"``: the first CUDA device when there is one, else the CPU."""
    torch = _torch()
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def build_scorer(encoder, head, *, pooling: str = "mean", fast: bool | None = None):
    """A module that maps token ids to code scores: ``encoder`` (a Hugging Face model), mean or CLS pooling,
    and ``head`` (e.g. ``torch.nn.Linear(hidden, n_codes)``).

    ``fast=None`` uses the lean BERT-family forward pass where the encoder supports it (it shares the encoder's
    weights except for a fused copy of Q/K/V, so build the scorer after training).
    """
    _torch()
    from ._modules import Scorer

    return Scorer(encoder, head, pooling=pooling, fast=fast)


# -- the loop -----------------------------------------------------------------------------------------------
def _prefetch(fn, items: Iterable, depth: int) -> Iterator:
    """Apply ``fn`` to ``items`` in a background thread, up to ``depth`` results ahead."""
    if depth <= 0:
        yield from map(fn, items)
        return
    q: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def work():
        try:
            for it in items:
                if stop.is_set():
                    return
                q.put(fn(it))
        except BaseException as err:  # hand the error to the consumer
            q.put(err)
        q.put(done)

    t = threading.Thread(target=work, daemon=True)
    t.start()
    try:
        while True:
            r = q.get()
            if r is done:
                break
            if isinstance(r, BaseException):
                raise r
            yield r
    finally:
        stop.set()
        while t.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                t.join(0.01)


def score(scorer, tokens: TokenizedTexts, **kwargs) -> np.ndarray:
    """Scores of every text in ``tokens`` (texts x outputs, float32, in input order).

    Parameters
    ----------
    scorer : module from :func:`build_scorer`
        Moved to ``device`` (and cast to ``dtype``) in place.
    device : str
        ``"auto"`` (CUDA when available), ``"cuda"``, ``"cpu"``.
    max_tokens : int, optional
        Token budget per batch (default 65,536 on CUDA, 4,096 on the CPU).
    dtype : {"auto", "bfloat16", "float16", "float32"}
        Compute precision; ``"auto"`` is bfloat16 on CUDA and float32 on the CPU.
    unpad : bool or "auto"
        Packed batches without padding (variable-length attention). ``"auto"``: on CUDA when the lean forward
        pass and ``varlen_attn`` are available and neither compile nor CUDA graphs are asked for.
    compile, cuda_graphs : bool
        ``torch.compile`` the forward pass. ``cuda_graphs``: with the packed path available (CUDA, the lean
        forward pass, ``varlen_attn``, half precision), packed batches of a few fixed token counts, each
        captured once as a CUDA graph and replayed; otherwise lengths are bucketed to multiples of 32 and
        batches padded to a fixed row count, compiled with ``mode="reduce-overhead"``.
    prefetch : int
        Batches collated ahead in a background thread.
    """
    return _enqueue(scorer, tokens, **kwargs).cpu().numpy()  # the only host-device synchronisation


def _enqueue(scorer, tokens: TokenizedTexts, *, device="auto", max_tokens: int | None = None,
             max_rows: int | None = None, dtype: str = "auto", unpad: bool | str = "auto", compile: bool = False,
             cuda_graphs: bool = False, multiple_of: int = 8, prefetch: int = 4):
    """:func:`score`, leaving the scores on the device: every batch is queued, nothing waits for the device
    (texts x outputs, float32)."""
    torch = _torch()
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if dtype == "auto":
        dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    tdtype = getattr(torch, dtype)
    if max_tokens is None:
        max_tokens = 65536 if cuda else 4096
    asked_unpad = unpad
    if unpad == "auto":  # flash-attention kernels: half precision only
        unpad = bool(cuda and scorer.fast and not (compile or cuda_graphs) and _has_varlen()
                     and dtype in ("bfloat16", "float16"))
    if unpad and not scorer.fast:
        raise ValueError("unpad=True needs the lean forward pass (a BERT-family encoder).")
    if cuda_graphs and not cuda:
        cuda_graphs = False
    if cuda_graphs and scorer.fast and _has_varlen() and dtype in ("bfloat16", "float16") \
            and asked_unpad is not False:
        return _score_graphed(scorer, tokens, dev, tdtype, max_tokens, max_rows, compile, prefetch)
    if cuda_graphs:  # graphs need fixed shapes: padded batches, bucketed lengths, fixed row counts
        multiple_of = max(multiple_of, 32)
        unpad = False
    scorer.to(device=dev, dtype=tdtype).eval()
    n = len(tokens)
    n_out = scorer.head.out_features
    if n == 0:
        return torch.zeros((0, n_out), dtype=torch.float32)
    batches = plan_batches(tokens.lengths, max_tokens=max_tokens, max_rows=max_rows, multiple_of=multiple_of,
                           padded=not unpad, static_rows=cuda_graphs)
    fwd = scorer.forward_packed if unpad else scorer.forward
    if compile or cuda_graphs:
        import torch._dynamo

        # one compiled graph per (rows, length) bucket: allow more than dynamo's default of 8
        cfg = torch._dynamo.config  # noqa: SLF001 - torch has no public setting for this limit
        limit = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
        setattr(cfg, limit, max(getattr(cfg, limit), 64))
        fwd = torch.compile(fwd, mode="reduce-overhead" if cuda_graphs else None,
                            dynamic=False if cuda_graphs else None)
    pad_id = scorer.pad_id

    def prepare(batch: Batch):
        arrays = collate(tokens, batch, pad_id, packed=unpad)
        index = np.full(batch.n_rows, n, dtype=np.int64)  # dummy rows land in a scratch row
        index[: len(batch.rows)] = batch.rows
        host = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items() if k != "max_len"}
        host["index"] = torch.from_numpy(index)
        if unpad:
            lengths = arrays["lengths"]
            host["seq_ids"] = torch.from_numpy(np.repeat(np.arange(len(lengths)), lengths))
            if not cuda:  # CPU fallback attention needs the padded layout
                L = int(arrays["max_len"])
                cu = arrays["cu_seqlens"]
                pos = np.arange(L)
                pad_index = np.where(pos[None, :] < lengths[:, None], cu[:-1, None] + pos[None, :], cu[-1])
                host["pad_index"] = torch.from_numpy(pad_index.astype(np.int64))
        if cuda:
            host = {k: v.pin_memory() for k, v in host.items()}
        return host, arrays.get("max_len")

    out = torch.zeros((n + 1, n_out), dtype=torch.float32, device=dev)
    with torch.inference_mode(), warnings.catch_warnings():
        # torch's CUDA-graph manager captures an empty graph on purpose to set up its memory pool, and warns
        warnings.filterwarnings("ignore", message="The CUDA Graph is empty", category=UserWarning)
        for host, max_len in _prefetch(prepare, batches, prefetch if len(batches) > 1 else 0):
            t = {k: v.to(dev, non_blocking=True) for k, v in host.items()}
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            if unpad:
                s = fwd(t["input_ids"], t["positions"], t["cu_seqlens"], max_len, t["seq_ids"], t["lengths"],
                        t.get("token_type_ids"), t.get("pad_index"))
            else:
                s = fwd(t["input_ids"], t["lengths"], t.get("token_type_ids"))
            out.index_copy_(0, t["index"], s.float())
    return out[:n]


class _Graph:
    """One packed shape (``n_tokens`` tokens, ``n_rows`` rows) captured as a CUDA graph: static input buffers,
    the captured forward pass, its static output."""

    def __init__(self, torch, fwd, n_tokens: int, n_rows: int, max_len: int, pad_id: int, types: bool, dev):
        empty = {"input_ids": np.zeros(0, np.int32), "lengths": np.zeros(0, np.int32)}
        if types:
            empty["token_type_ids"] = np.zeros(0, np.int32)
        host = pad_packed(empty, n_tokens, n_rows, max_len, pad_id)  # all filler: valid inputs to warm up on
        self.inputs = {k: torch.from_numpy(np.asarray(v)).to(dev) for k, v in host.items()
                       if k not in ("max_len", "rows")}
        self.max_len = max_len

        def run():
            t = self.inputs
            return fwd(t["input_ids"], t["positions"], t["cu_seqlens"], max_len, t["seq_ids"], t["lengths"],
                       t.get("token_type_ids"))

        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side):  # warm up (kernel selection, lazy init) outside the capture
            for _ in range(2):
                run()
        torch.cuda.current_stream(dev).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.out = run()

    def __call__(self, host: dict):
        for k, buf in self.inputs.items():
            buf.copy_(host[k], non_blocking=True)
        self.graph.replay()
        return self.out


def _score_graphed(scorer, tokens: TokenizedTexts, dev, tdtype, max_tokens: int, max_rows: int | None,
                   compile: bool, prefetch: int):
    """:func:`_enqueue` with packed batches of a few fixed token counts, each captured once as a CUDA graph."""
    torch = _torch()
    scorer.to(device=dev, dtype=tdtype).eval()
    n, n_out = len(tokens), scorer.head.out_features
    if n == 0:
        return torch.zeros((0, n_out), dtype=torch.float32)
    lengths = tokens.lengths
    max_len = 64
    while max_len < lengths.max():  # one attention bound per power of two: few shapes across calls
        max_len *= 2
    max_tokens = max(max_tokens, max_len)
    buckets = token_buckets(max_tokens, smallest=max(1024, max_len))
    max_rows = max_rows or max(1, max_tokens // 8)
    batches = plan_batches(lengths, max_tokens=max_tokens, max_rows=max_rows, padded=False)
    types = tokens.type_ids is not None
    fwd = scorer.forward_packed
    if compile:
        fwd = torch.compile(fwd, dynamic=False)

    def shape(batch: Batch) -> tuple[int, int]:
        total = int(lengths[batch.rows].sum())
        n_tok = next(b for b in buckets if b >= total)
        return n_tok, max_rows + n_tok // max_len + 1

    def prepare(batch: Batch):
        n_tok, n_rows = shape(batch)
        arrays = pad_packed(collate(tokens, batch, scorer.pad_id, packed=True), n_tok, n_rows, max_len,
                            scorer.pad_id)
        index = np.full(n_rows, n, dtype=np.int64)  # filler rows land in a scratch row
        index[: arrays["rows"]] = batch.rows
        host = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in arrays.items()
                if k not in ("max_len", "rows")}
        host["index"] = torch.from_numpy(index)
        return (n_tok, n_rows), {k: v.pin_memory() for k, v in host.items()}

    graphs = scorer.graphs  # captured once per shape, reused by later calls (chunks of a stream)
    out = torch.zeros((n + 1, n_out), dtype=torch.float32, device=dev)
    with torch.inference_mode():
        for key, host in _prefetch(prepare, batches, prefetch if len(batches) > 1 else 0):
            full = (*key, max_len, types, str(dev), str(tdtype), compile)
            if full not in graphs:
                graphs[full] = _Graph(torch, fwd, *key, max_len, scorer.pad_id, types, dev)
            s = graphs[full](host)
            out.index_copy_(0, host["index"].to(dev, non_blocking=True), s.float())
    return out[:n]


@lru_cache(maxsize=1)
def _has_varlen() -> bool:
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def iter_scores(scorer, tokenizer, texts: Iterable[str], pairs: Iterable[str] | None = None, *,
                chunk_size: int = 65536, max_length: int = 512, **kwargs) -> Iterator[np.ndarray]:
    """Stream scores for a corpus of any size: one array per ``chunk_size`` texts, in input order.

    The next chunk is tokenised in a background thread (the fast tokenizer works outside the GIL) while the
    current chunk runs on the device. ``kwargs`` go to :func:`score`.
    """
    it = iter(texts)
    pit = iter(pairs) if pairs is not None else None

    def chunks():
        while True:
            block = list(itertools.islice(it, chunk_size))
            if not block:
                return
            second = list(itertools.islice(pit, len(block))) if pit is not None else None
            yield block, second

    yield from score_chunks(scorer, tokenizer, chunks(), max_length=max_length, **kwargs)


def score_chunks(scorer, tokenizer, chunks: Iterable, *, max_length: int = 512, **kwargs) -> Iterator[np.ndarray]:
    """Scores per chunk, for chunks of texts that come ready-made (e.g. batches of a dataset): each chunk is
    a list of texts or a ``(texts, pairs)`` tuple. The next chunk is tokenised in a background thread while
    the current one runs, and queued on the device before the current chunk's scores are awaited, so the
    device never waits between chunks; ``kwargs`` go to :func:`score`."""
    torch = _torch()

    def tok(item):
        block, second = item if isinstance(item, tuple) else (item, None)
        return tokenize(tokenizer, list(block), None if second is None else list(second), max_length=max_length)

    pending = None  # the previous chunk: scores on their way to the host, and the event that says they arrived
    for tokens in _prefetch(tok, chunks, 1):
        dev_scores = _enqueue(scorer, tokens, **kwargs)
        if dev_scores.is_cuda:
            host = torch.empty(dev_scores.shape, dtype=dev_scores.dtype, pin_memory=True)
            host.copy_(dev_scores, non_blocking=True)
            done = torch.cuda.Event()
            done.record()
        else:
            host, done = dev_scores, None
        if pending is not None:
            yield _arrived(*pending)
        pending = (host, done)
    if pending is not None:
        yield _arrived(*pending)


def _arrived(host, event) -> np.ndarray:
    if event is not None:
        event.synchronize()
    return host.numpy()


def score_texts(scorer, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, **kwargs
                ) -> np.ndarray:
    """Scores of all ``texts`` at once (see :func:`iter_scores`)."""
    parts = list(iter_scores(scorer, tokenizer, texts, pairs, **kwargs))
    if not parts:
        return np.zeros((0, scorer.head.out_features), dtype=np.float32)
    return np.concatenate(parts)
