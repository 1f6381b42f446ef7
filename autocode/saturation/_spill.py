"""The spill of a streamed saturation check: the vectors and content words of the eligible segments, written to
a temporary folder while the corpus is scored and read back a block (or a few rows) at a time."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from array import array
from pathlib import Path

import numpy as np

SPILL_BLOCK = 65_536
"""Spilled vectors read back at a time (26 MB at 100 LSA dimensions)."""


class Spill:
    """The vectors and content words of the eligible segments in a temporary folder, in order: held on disk,
    read back a block (or a few rows) at a time. In memory: each row's end in the words file (8 bytes), the
    vocabulary and each word's document frequency."""

    def __init__(self, dim: int, folder: str | Path | None = None):
        self.dir = Path(tempfile.mkdtemp(prefix="autocode-saturation-", dir=folder))
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.dir, True)
        self.dim = dim
        self._z = open(self.dir / "vectors.f32", "wb")  # noqa: SIM115 (closed in finish)
        self._w = open(self.dir / "words.i32", "wb")  # noqa: SIM115
        self._ends = array("q")
        self.n = 0
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []
        self.df = np.zeros(0, dtype=np.int64)

    def add(self, Z: np.ndarray, words: list[list[str]]) -> None:
        self._z.write(np.ascontiguousarray(Z, dtype=np.float32).tobytes())
        ids = array("i")
        end = self._ends[-1] if len(self._ends) else 0
        for ws in words:
            for w in ws:
                j = self.vocab.get(w)
                if j is None:
                    j = self.vocab[w] = len(self.words)
                    self.words.append(w)
                ids.append(j)
            end += len(ws)
            self._ends.append(end)
        self._w.write(ids.tobytes())
        if len(self.words) > len(self.df):
            self.df = np.concatenate([self.df, np.zeros(len(self.words) - len(self.df), dtype=np.int64)])
        self.df += np.bincount(np.frombuffer(ids, dtype=np.int32), minlength=len(self.df)) if len(ids) else 0
        self.n += len(Z)

    def finish(self) -> None:
        self._z.close()
        self._w.close()
        self.ends = np.frombuffer(self._ends, dtype=np.int64)

    def vectors(self, start: int, stop: int) -> np.ndarray:
        with open(self.dir / "vectors.f32", "rb") as f:
            f.seek(start * self.dim * 4)
            return np.fromfile(f, dtype=np.float32, count=(stop - start) * self.dim).reshape(-1, self.dim)

    def take(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of ``rows`` (increasing), reading only the blocks that hold some."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        for s in range(0, self.n, SPILL_BLOCK):
            lo, hi = np.searchsorted(rows, [s, s + SPILL_BLOCK])
            if hi > lo:
                out[lo:hi] = self.vectors(s, min(s + SPILL_BLOCK, self.n))[rows[lo:hi] - s]
        return out

    def words_of(self, start: int, stop: int) -> list[list[str]]:
        """The content words of rows ``start`` to ``stop``."""
        first = int(self.ends[start - 1]) if start else 0
        ends = self.ends[start:stop]
        with open(self.dir / "words.i32", "rb") as f:
            f.seek(first * 4)
            ids = np.fromfile(f, dtype=np.int32, count=int(ends[-1]) - first if len(ends) else 0).tolist()
        out, at = [], 0
        for e in (ends - first).tolist():
            out.append([self.words[j] for j in ids[at:e]])
            at = e
        return out

    def close(self) -> None:
        self._cleanup()
