"""Token ids of a corpus in flat arrays, and batches cut to a token budget: the inference loop's host side.

Nothing here needs torch: texts become one flat array of ids plus offsets (:class:`TokenizedTexts`), sorted by
length and cut into batches that fill a token budget (:func:`plan_batches`), and collated into numpy arrays
(:func:`collate`) that :mod:`autocode.backends.transformer.inference` hands to the device.

>>> t = TokenizedTexts.from_lists([[5, 6, 7], [8]])
>>> [(b.rows.tolist(), b.seq_len) for b in plan_batches(t.lengths, max_tokens=16)]
[([0, 1], 8)]
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._files import atomic_write
from ._chars import char_tokenizer

__all__ = ["TokenizedTexts", "Batch", "tokenize", "plan_batches", "collate", "token_buckets", "pad_packed"]


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
        path = str(path) if str(path).endswith(".npz") else f"{path}.npz"  # as np.savez names it
        with atomic_write(path, "wb") as f:
            np.savez(f, **arrays)

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
             chunk_size: int = 16384, chars: bool = True) -> TokenizedTexts:
    """Token ids of ``texts`` (and ``pairs`` as second segments), truncated to ``max_length``.

    A fast tokenizer encodes each chunk of ``chunk_size`` texts in parallel on all cores (Rust, outside the
    GIL). Pairs are truncated on the second text (the context) first. With ``chars`` (the default), single
    texts for a BERT-style character-level Chinese tokenizer are looked up in a table instead, vectorised,
    with the same ids (see ``_chars.py``); other tokenizers are not affected.
    """
    fast = char_tokenizer(tokenizer) if chars and pairs is None else None
    parts = []
    for start in range(0, len(texts), chunk_size):
        chunk = list(texts[start : start + chunk_size])
        kw = dict(truncation=True, max_length=max_length, return_attention_mask=False)
        if fast is not None:
            parts.append(fast.encode(chunk, max_length))
        elif pairs is None:
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


def token_buckets(max_tokens: int, n: int = 3, smallest: int = 1024) -> list[int]:
    """The fixed token counts of packed batches captured as CUDA graphs: ``max_tokens`` and a few quarters of it
    (so that the last, short batches of a corpus do not run at the full size).

    >>> token_buckets(65536)
    [1024, 4096, 16384, 65536]
    """
    sizes = [max_tokens]
    while len(sizes) < n + 1 and sizes[-1] // 4 >= smallest:
        sizes.append(sizes[-1] // 4)
    return sorted(set(sizes))


def pad_packed(arrays: dict, n_tokens: int, n_rows: int, max_len: int, pad_id: int = 0) -> dict:
    """A packed batch (:func:`collate` with ``packed=True``) grown to a fixed shape: exactly ``n_tokens`` tokens
    and ``n_rows`` rows, for a CUDA graph captured at that shape.

    The spare tokens form filler sequences of at most ``max_len`` pad tokens; the spare rows after them have
    length 0. ``seq_ids`` maps every token to its row (for mean pooling); ``rows`` is the count of real rows,
    whose scores are the first ``rows`` of the output.

    >>> t = TokenizedTexts.from_lists([[5, 6, 7], [8]])
    >>> b = pad_packed(collate(t, Batch(np.array([0, 1]), 4, 2), packed=True), 8, 5, max_len=3)
    >>> b["input_ids"].tolist(), b["cu_seqlens"].tolist(), b["positions"].tolist()
    ([5, 6, 7, 8, 0, 0, 0, 0], [0, 3, 4, 7, 8, 8], [0, 1, 2, 0, 0, 1, 2, 0])
    """
    T, R = len(arrays["input_ids"]), len(arrays["lengths"])
    spare = n_tokens - T
    fill = [max_len] * (spare // max_len) + ([spare % max_len] if spare % max_len else [])
    if spare < 0 or R + len(fill) > n_rows:
        raise ValueError(f"a batch of {T} tokens and {R} rows does not fit {n_tokens} tokens and {n_rows} rows")
    lengths = np.zeros(n_rows, dtype=np.int32)
    lengths[:R] = arrays["lengths"]
    lengths[R : R + len(fill)] = fill
    cu = np.zeros(n_rows + 1, dtype=np.int32)
    np.cumsum(lengths, out=cu[1:])
    ids = np.full(n_tokens, pad_id, dtype=np.int32)
    ids[:T] = arrays["input_ids"]
    out = {
        "input_ids": ids,
        "positions": (np.arange(n_tokens) - np.repeat(cu[:-1], lengths)).astype(np.int32),
        "cu_seqlens": cu,
        "lengths": lengths,
        "seq_ids": np.repeat(np.arange(n_rows), lengths),
        "max_len": max_len,
        "rows": R,
    }
    if "token_type_ids" in arrays:
        tt = np.zeros(n_tokens, dtype=np.int32)
        tt[:T] = arrays["token_type_ids"]
        out["token_type_ids"] = tt
    return out

