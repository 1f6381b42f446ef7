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
5. Optionally ``torch.compile`` and CUDA graphs (``compile=True``, ``cuda_graphs=True``), with sequence lengths
   rounded to buckets and batches padded to a fixed row count, so that only a few shapes are ever compiled.

The CPU path is the same code, in float32 without pinning.

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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .exceptions import MissingDependencyError

__all__ = [
    "TokenizedTexts",
    "Batch",
    "tokenize",
    "plan_batches",
    "collate",
    "build_scorer",
    "score",
    "iter_scores",
    "score_texts",
    "resolve_device",
]

FAST_MODEL_TYPES = ("bert", "roberta", "xlm-roberta")
"""Encoder families the lean forward pass supports; others use their Hugging Face forward."""


def _torch():
    try:
        import torch
    except ImportError as err:
        raise MissingDependencyError("torch", "transformer", "The transformer backend") from err
    return torch


# -- tokenising ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TokenizedTexts:
    """Token ids of many texts in one flat array: text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

    ``type_ids`` (same layout) is present when texts were encoded as pairs (segment + preceding turn).

    >>> t = TokenizedTexts.from_lists([[101, 7, 102], [101, 102]])
    >>> len(t), t.lengths.tolist(), t.row(1).tolist()
    (2, [3, 2], [101, 102])
    """

    ids: np.ndarray
    offsets: np.ndarray
    type_ids: np.ndarray | None = None

    @classmethod
    def from_lists(cls, ids: Sequence[Sequence[int]], type_ids: Sequence[Sequence[int]] | None = None
                   ) -> TokenizedTexts:
        lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
        offsets = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        total = int(offsets[-1])
        flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=total)
        types = None
        if type_ids is not None:
            types = np.fromiter(itertools.chain.from_iterable(type_ids), dtype=np.int8, count=total)
        return cls(flat, offsets, types)

    @classmethod
    def concat(cls, parts: Sequence[TokenizedTexts]) -> TokenizedTexts:
        if not parts:
            return cls(np.zeros(0, np.int32), np.zeros(1, np.int64))
        ids = np.concatenate([p.ids for p in parts])
        lengths = np.concatenate([p.lengths for p in parts])
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        types = None
        if all(p.type_ids is not None for p in parts):
            types = np.concatenate([p.type_ids for p in parts])
        return cls(ids, offsets, types)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def row(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def take(self, rows: np.ndarray) -> TokenizedTexts:
        """The texts at ``rows``, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths[rows]
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        index = _ragged_index(self.offsets[rows], lengths, int(offsets[-1]))
        types = None if self.type_ids is None else self.type_ids[index]
        return TokenizedTexts(self.ids[index], offsets, types)

    def save(self, path: str | Path) -> None:
        """Cache the ids in an ``.npz`` file (no pickle), to skip tokenising the same corpus again."""
        arrays = {"format_version": np.array(1), "ids": self.ids, "offsets": self.offsets}
        if self.type_ids is not None:
            arrays["type_ids"] = self.type_ids
        np.savez(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> TokenizedTexts:
        with np.load(path, allow_pickle=False) as z:
            return cls(z["ids"], z["offsets"], z["type_ids"] if "type_ids" in z.files else None)


def _ragged_index(starts: np.ndarray, lengths: np.ndarray, total: int) -> np.ndarray:
    """Flat positions ``starts[i] + 0..lengths[i]-1`` for every i, without a Python loop."""
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    seq_start = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + (np.arange(total) - seq_start)


def tokenize(tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, *, max_length: int = 512,
             chunk_size: int = 16384) -> TokenizedTexts:
    """Token ids of ``texts`` (and ``pairs`` as second segments), truncated to ``max_length``.

    A fast tokenizer encodes each chunk of ``chunk_size`` texts in parallel on all cores (Rust, outside the
    GIL). Pairs are truncated on the second text (the context) first.
    """
    parts = []
    for start in range(0, len(texts), chunk_size):
        chunk = list(texts[start : start + chunk_size])
        kw = dict(truncation=True, max_length=max_length, return_attention_mask=False)
        if pairs is None:
            enc = tokenizer(chunk, return_token_type_ids=False, **kw)
            parts.append(TokenizedTexts.from_lists(enc["input_ids"]))
        else:
            second = list(pairs[start : start + chunk_size])
            enc = tokenizer(chunk, second, return_token_type_ids=True, **{**kw, "truncation": "longest_first"})
            parts.append(TokenizedTexts.from_lists(enc["input_ids"], enc["token_type_ids"]))
    return TokenizedTexts.concat(parts)


# -- batching -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Batch:
    """Rows of one batch (indices into the corpus), its padded length and row count.

    ``n_rows`` may exceed ``len(rows)`` when batches are padded to a fixed shape (for CUDA graphs); the extra
    rows are dummies whose scores are discarded.
    """

    rows: np.ndarray
    seq_len: int
    n_rows: int


def _round_up(x: int, m: int) -> int:
    return -(-x // m) * m


def plan_batches(lengths: np.ndarray, *, max_tokens: int = 16384, max_rows: int | None = None,
                 multiple_of: int = 8, padded: bool = True, static_rows: bool = False) -> list[Batch]:
    """Sort texts by length (longest first) and cut batches that fill a token budget.

    Parameters
    ----------
    lengths : array of int
        Tokens per text.
    max_tokens : int
        Budget per batch: rows x padded length when ``padded``, the sum of real lengths otherwise. A text
        longer than the budget gets a batch of its own.
    max_rows : int, optional
        Cap on rows per batch.
    multiple_of : int
        Padded lengths are rounded up to this (tensor-core friendly shapes, fewer compiled shapes).
    padded : bool
        Budget padded tokens (a rectangular batch) or real tokens (packed, padding-free batches).
    static_rows : bool
        Give every batch of the same padded length the same row count (``max_tokens // seq_len``), for
        CUDA graphs; short batches are completed with dummy rows.

    >>> [(b.rows.tolist(), b.seq_len, b.n_rows) for b in plan_batches(np.array([2, 7, 3]), max_tokens=16)]
    [([1, 2], 8, 2), ([0], 8, 1)]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    sl = lengths[order]
    n = len(order)
    batches: list[Batch] = []
    if not padded:
        csum = np.cumsum(sl)
        i = 0
        while i < n:
            base = csum[i - 1] if i else 0
            j = int(np.searchsorted(csum, base + max_tokens, side="right"))
            j = max(j, i + 1)
            if max_rows:
                j = min(j, i + max_rows)
            seq_len = _round_up(max(int(sl[i]), 1), multiple_of)
            batches.append(Batch(order[i:j], seq_len, j - i))
            i = j
        return batches
    i = 0
    while i < n:
        seq_len = _round_up(max(int(sl[i]), 1), multiple_of)
        cap = max(1, max_tokens // seq_len)
        if max_rows:
            cap = min(cap, max_rows)
        j = min(n, i + cap)
        if static_rows:
            # stay inside one length bucket, so that the batch's shape is (cap, seq_len)
            j = min(j, i + int(np.searchsorted(-sl[i:j], -(seq_len - multiple_of), side="left")))
            j = max(j, i + 1)
        batches.append(Batch(order[i:j], seq_len, cap if static_rows else j - i))
        i = j
    return batches


def collate(tokens: TokenizedTexts, batch: Batch, pad_id: int = 0, *, packed: bool = False) -> dict:
    """Numpy arrays for one batch.

    Padded: ``input_ids`` [rows, seq_len] (int32), ``lengths`` [rows] and ``token_type_ids`` when present;
    dummy rows have length 1. Packed: ``input_ids`` [total], ``positions`` [total], ``cu_seqlens``
    [rows + 1] (int32), ``max_len`` and ``lengths``.

    >>> t = TokenizedTexts.from_lists([[5, 6, 7], [8]])
    >>> collate(t, Batch(np.array([0, 1]), 4, 2))["input_ids"].tolist()
    [[5, 6, 7, 0], [8, 0, 0, 0]]
    >>> collate(t, Batch(np.array([0, 1]), 4, 2), packed=True)["cu_seqlens"].tolist()
    [0, 3, 4]
    """
    rows = batch.rows
    lengths = tokens.lengths[rows]
    starts = tokens.offsets[rows]
    if packed:
        total = int(lengths.sum())
        index = _ragged_index(starts, lengths, total)
        cu = np.zeros(len(rows) + 1, dtype=np.int32)
        np.cumsum(lengths, out=cu[1:])
        out = {
            "input_ids": tokens.ids[index],
            "positions": (np.arange(total) - np.repeat(cu[:-1], lengths)).astype(np.int32),
            "cu_seqlens": cu,
            "max_len": int(lengths.max()) if len(lengths) else 0,
            "lengths": lengths.astype(np.int32),
        }
        if tokens.type_ids is not None:
            out["token_type_ids"] = tokens.type_ids[index].astype(np.int32)
        return out
    n_rows, seq_len = batch.n_rows, batch.seq_len
    lengths = np.minimum(lengths, seq_len)
    pos = np.arange(seq_len)
    mask = pos[None, :] < lengths[:, None]
    flat = np.concatenate([tokens.ids, np.array([pad_id], dtype=tokens.ids.dtype)])
    index = np.where(mask, starts[:, None] + pos[None, :], len(flat) - 1)
    ids = np.full((n_rows, seq_len), pad_id, dtype=np.int32)
    ids[: len(rows)] = flat[index]
    full_lengths = np.ones(n_rows, dtype=np.int32)  # dummy rows: one pad token, scores discarded
    full_lengths[: len(rows)] = lengths
    out = {"input_ids": ids, "lengths": full_lengths}
    if tokens.type_ids is not None:
        types = np.concatenate([tokens.type_ids, np.zeros(1, dtype=tokens.type_ids.dtype)])
        tt = np.zeros((n_rows, seq_len), dtype=np.int32)
        tt[: len(rows)] = types[index]
        out["token_type_ids"] = tt
    return out


# -- the model ------------------------------------------------------------------------------------------------
def resolve_device(device: str | None = "auto"):
    """``"auto"``: the first CUDA device when there is one, else the CPU."""
    torch = _torch()
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@lru_cache(maxsize=1)
def _modules():
    """nn.Module classes, defined on first use so that this module imports without torch."""
    torch = _torch()
    import torch.nn.functional as F
    from torch import nn

    def varlen_available(device) -> bool:
        if device.type != "cuda":
            return False
        try:
            from torch.nn.attention.varlen import varlen_attn  # noqa: F401
        except ImportError:
            return False
        return True

    class FastBertEncoder(nn.Module):
        """Inference-only forward pass over a BERT-family model's weights (no dropout, fused QKV, SDPA).

        Padded: ``forward(input_ids [B, L], lengths [B]) -> hidden [B, L, H]``. Packed:
        ``forward_packed(input_ids [T], positions [T], cu_seqlens [B+1], max_len) -> hidden [T, H]``.
        """

        def __init__(self, hf_model):
            super().__init__()
            cfg = hf_model.config
            emb = hf_model.embeddings
            self.word = emb.word_embeddings
            self.pos = emb.position_embeddings
            self.types = emb.token_type_embeddings
            self.emb_ln = emb.LayerNorm
            self.n_heads = cfg.num_attention_heads
            self.pos_offset = cfg.pad_token_id + 1 if cfg.model_type in ("roberta", "xlm-roberta") else 0
            self.act = cfg.hidden_act
            self.qkv = nn.ModuleList()
            self.attn_out, self.attn_ln, self.ffn_in, self.ffn_out, self.ffn_ln = (nn.ModuleList() for _ in range(5))
            for layer in hf_model.encoder.layer:
                sa = layer.attention.self
                fused = nn.Linear(sa.query.in_features, 3 * sa.query.out_features,
                                  device=sa.query.weight.device, dtype=sa.query.weight.dtype)
                with torch.no_grad():
                    fused.weight.copy_(torch.cat([sa.query.weight, sa.key.weight, sa.value.weight]))
                    fused.bias.copy_(torch.cat([sa.query.bias, sa.key.bias, sa.value.bias]))
                self.qkv.append(fused)
                self.attn_out.append(layer.attention.output.dense)
                self.attn_ln.append(layer.attention.output.LayerNorm)
                self.ffn_in.append(layer.intermediate.dense)
                self.ffn_out.append(layer.output.dense)
                self.ffn_ln.append(layer.output.LayerNorm)

        def _gelu(self, x):
            if self.act in ("gelu_new", "gelu_pytorch_tanh", "gelu_fast"):
                return F.gelu(x, approximate="tanh")
            return F.gelu(x)

        def _embed(self, input_ids, positions, token_type_ids):
            x = self.word(input_ids) + self.pos(positions + self.pos_offset)
            if token_type_ids is None:
                x = x + self.types.weight[0]
            else:
                x = x + self.types(token_type_ids)
            return self.emb_ln(x)

        def _ffn(self, i, x):
            return self.ffn_ln[i](self.ffn_out[i](self._gelu(self.ffn_in[i](x))) + x)

        def forward(self, input_ids, lengths, token_type_ids=None):
            B, L = input_ids.shape
            ar = torch.arange(L, device=input_ids.device)
            x = self._embed(input_ids, ar[None, :], token_type_ids)
            mask = (ar[None, :] < lengths[:, None])[:, None, None, :]  # [B, 1, 1, L]: keys to attend
            H = x.shape[-1]
            nh = self.n_heads
            for i in range(len(self.qkv)):
                q, k, v = self.qkv[i](x).view(B, L, 3, nh, H // nh).permute(2, 0, 3, 1, 4).unbind(0)
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
                o = o.transpose(1, 2).reshape(B, L, H)
                x = self.attn_ln[i](self.attn_out[i](o) + x)
                x = self._ffn(i, x)
            return x

        def forward_packed(self, input_ids, positions, cu_seqlens, max_len: int, token_type_ids=None,
                           pad_index=None):
            T = input_ids.shape[0]
            x = self._embed(input_ids, positions, token_type_ids)
            H = x.shape[-1]
            nh = self.n_heads
            use_varlen = varlen_available(x.device)
            if use_varlen:
                from torch.nn.attention.varlen import varlen_attn
            for i in range(len(self.qkv)):
                q, k, v = self.qkv[i](x).view(T, 3, nh, H // nh).unbind(1)
                if use_varlen:
                    o = varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), cu_seqlens, cu_seqlens,
                                    max_len, max_len)
                else:  # CPU: pad, attend, unpad (pad_index maps [B, L] slots to packed tokens, T = padding)
                    o = _padded_attention(q, k, v, pad_index)
                x = self.attn_ln[i](self.attn_out[i](o.reshape(T, H)) + x)
                x = self._ffn(i, x)
            return x

    def _padded_attention(q, k, v, pad_index):
        T, nh, hd = q.shape
        B, L = pad_index.shape
        valid = pad_index < T
        zero = q.new_zeros(1, nh, hd)

        def pad(t):
            return torch.cat([t, zero])[pad_index].transpose(1, 2)  # [B, nh, L, hd]

        o = F.scaled_dot_product_attention(pad(q), pad(k), pad(v), attn_mask=valid[:, None, None, :])
        out = q.new_empty(T + 1, nh, hd)
        out[pad_index.reshape(-1)] = o.transpose(1, 2).reshape(B * L, nh, hd)
        return out[:T]

    class Scorer(nn.Module):
        """Encoder + pooling + linear head: token ids in, one score per code out."""

        def __init__(self, encoder, head, pooling: str = "mean", fast: bool | None = None):
            super().__init__()
            mt = getattr(encoder.config, "model_type", "")
            ok = mt in FAST_MODEL_TYPES and getattr(encoder.config, "position_embedding_type",
                                                    "absolute") in (None, "absolute")
            if fast and not ok:
                raise ValueError(f"The lean forward pass supports {FAST_MODEL_TYPES}, not {mt!r}.")
            self.fast = ok if fast is None else fast
            self.encoder = FastBertEncoder(encoder) if self.fast else encoder
            self.head = head
            self.pooling = pooling
            self.pad_id = encoder.config.pad_token_id or 0

        def forward(self, input_ids, lengths, token_type_ids=None):
            B, L = input_ids.shape
            if self.fast:
                h = self.encoder(input_ids, lengths, token_type_ids)
            else:
                mask = (torch.arange(L, device=input_ids.device)[None, :] < lengths[:, None]).long()
                kw = {} if token_type_ids is None else {"token_type_ids": token_type_ids.long()}
                h = self.encoder(input_ids=input_ids.long(), attention_mask=mask, **kw).last_hidden_state
            if self.pooling == "cls":
                pooled = h[:, 0]
            else:
                m = (torch.arange(L, device=h.device)[None, :] < lengths[:, None]).to(h.dtype)
                pooled = (h * m[..., None]).sum(1) / lengths[:, None].clamp(min=1).to(h.dtype)
            return self.head(pooled)

        def forward_packed(self, input_ids, positions, cu_seqlens, max_len: int, seq_ids, lengths,
                           token_type_ids=None, pad_index=None):
            h = self.encoder.forward_packed(input_ids, positions, cu_seqlens, max_len, token_type_ids,
                                            pad_index)
            if self.pooling == "cls":
                pooled = h[cu_seqlens[:-1].long()]
            else:
                pooled = h.new_zeros(lengths.shape[0], h.shape[-1]).index_add_(0, seq_ids, h)
                pooled = pooled / lengths[:, None].clamp(min=1).to(h.dtype)
            return self.head(pooled)

    return {"FastBertEncoder": FastBertEncoder, "Scorer": Scorer}


def build_scorer(encoder, head, *, pooling: str = "mean", fast: bool | None = None):
    """A module that maps token ids to code scores: ``encoder`` (a Hugging Face model), mean or CLS pooling,
    and ``head`` (e.g. ``torch.nn.Linear(hidden, n_codes)``).

    ``fast=None`` uses the lean BERT-family forward pass where the encoder supports it (it shares the encoder's
    weights except for a fused copy of Q/K/V, so build the scorer after training).
    """
    return _modules()["Scorer"](encoder, head, pooling=pooling, fast=fast)


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


def score(scorer, tokens: TokenizedTexts, *, device="auto", max_tokens: int | None = None,
          max_rows: int | None = None, dtype: str = "auto", unpad: bool | str = "auto", compile: bool = False,
          cuda_graphs: bool = False, multiple_of: int = 8, prefetch: int = 4) -> np.ndarray:
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
        ``torch.compile`` the forward pass; with ``cuda_graphs`` as well, lengths are bucketed to multiples of
        32 and batches padded to a fixed row count, so that each bucket is captured once as a CUDA graph.
    prefetch : int
        Batches collated ahead in a background thread.
    """
    torch = _torch()
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    if dtype == "auto":
        dtype = "bfloat16" if cuda and torch.cuda.is_bf16_supported() else "float32"
    tdtype = getattr(torch, dtype)
    if max_tokens is None:
        max_tokens = 65536 if cuda else 4096
    if unpad == "auto":  # flash-attention kernels: half precision only
        unpad = bool(cuda and scorer.fast and not (compile or cuda_graphs) and _has_varlen()
                     and dtype in ("bfloat16", "float16"))
    if unpad and not scorer.fast:
        raise ValueError("unpad=True needs the lean forward pass (a BERT-family encoder).")
    if cuda_graphs and not cuda:
        cuda_graphs = False
    if cuda_graphs:  # graphs need fixed shapes: padded batches, bucketed lengths, fixed row counts
        multiple_of = max(multiple_of, 32)
        unpad = False
    scorer.to(device=dev, dtype=tdtype).eval()
    n = len(tokens)
    n_out = scorer.head.out_features
    if n == 0:
        return np.zeros((0, n_out), dtype=np.float32)
    batches = plan_batches(tokens.lengths, max_tokens=max_tokens, max_rows=max_rows, multiple_of=multiple_of,
                           padded=not unpad, static_rows=cuda_graphs)
    fwd = scorer.forward_packed if unpad else scorer.forward
    if compile or cuda_graphs:
        import torch._dynamo

        # one compiled graph per (rows, length) bucket: allow more than dynamo's default of 8
        cfg = torch._dynamo.config
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
        result = out[:n].cpu()  # the only host-device synchronisation
    return result.numpy()


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

    def tok(item):
        block, second = item
        return tokenize(tokenizer, block, second, max_length=max_length)

    for tokens in _prefetch(tok, chunks(), 1):
        yield score(scorer, tokens, **kwargs)


def score_texts(scorer, tokenizer, texts: Sequence[str], pairs: Sequence[str] | None = None, **kwargs
                ) -> np.ndarray:
    """Scores of all ``texts`` at once (see :func:`iter_scores`)."""
    parts = list(iter_scores(scorer, tokenizer, texts, pairs, **kwargs))
    if not parts:
        return np.zeros((0, scorer.head.out_features), dtype=np.float32)
    return np.concatenate(parts)
