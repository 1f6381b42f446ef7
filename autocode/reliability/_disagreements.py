"""The segments where coders differ on a code: a lazy sequence, and grouping helpers for the report."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .._sequence import LazySequence
from ..corpus import CodedCorpus

__all__ = ["Disagreements", "disagreement_counts", "disagreements_by_code"]

BLOCK = 16_384
"""Segments whose codes are compared at a time to find the disagreements."""


class Disagreements(LazySequence):
    """The segments where coders who coded them differ on a code, grouped by code, built row by row on access.

    Each item is a dict: ``code``, ``document``, ``segment``, ``speaker``, ``text``, ``applied_by``,
    ``not_applied_by`` (coder names).

    Parameters
    ----------
    corpus : CodedCorpus
        The compared corpus (rolled up when the codes are).
    coders : list of str
        The compared coders, in the order of the first axis of ``x`` and ``coded``.
    x : ndarray of bool or Decisions (coders, segments, codes)
        Which codes each coder applied to each segment.
    coded : ndarray of bool (coders, segments)
        Which segments each coder coded.
    codes : list of str
        The codes of the last axis of ``x``.
    """

    def __init__(self, corpus: CodedCorpus, coders: list[str], x, coded: np.ndarray,
                 codes: list[str]):
        n_coded = coded.sum(axis=0)
        segs, code = [], []
        for s in range(0, x.shape[1], BLOCK):  # a block of segments at a time: no per-segment count arrays
            pos = (x[:, s:s + BLOCK] & coded[:, s:s + BLOCK, None]).sum(axis=0, dtype=np.int32)
            k = n_coded[s:s + BLOCK, None]
            i, j = np.nonzero((pos > 0) & (pos < k) & (k >= 2))
            segs.append(i + s)
            code.append(j)
        segs, code = np.concatenate(segs or [np.zeros(0, np.int64)]), np.concatenate(code or [np.zeros(0, np.int64)])
        order = np.lexsort((segs, code))  # grouped by code, segments in corpus order
        self._code, self._seg = code[order], segs[order]
        self._applied = x[:, self._seg, self._code] & coded[:, self._seg]
        self._coded = coded[:, self._seg]
        self._segments, self._coders, self._codes = corpus.segments, list(coders), list(codes)
        self._source = None
        self._texts: dict[int, str] = {}

    def read_texts_with(self, source) -> None:
        """Take the texts of the segments listed from ``source`` (a function: set of segment keys -> dict key ->
        text), for a corpus read without its texts (``read_coded(..., texts=False)``): asked once per
        :data:`BLOCK` disagreements read in order, and once for :meth:`by_code`."""
        self._source = source

    def _fetch(self, items: range | list[int]) -> None:
        """Ask the source for the texts of the segments of disagreements ``items`` (and keep only those)."""
        if self._source is None:
            return
        rows = {int(self._seg[i]) for i in items}
        got = self._source({self._segments[j].key for j in rows})
        self._texts = {j: got.get(self._segments[j].key, "") for j in rows}

    def __iter__(self):
        for s in range(0, len(self), BLOCK):
            self._fetch(range(s, min(s + BLOCK, len(self))))
            for i in range(s, min(s + BLOCK, len(self))):
                yield self[i]

    def __len__(self) -> int:
        return len(self._code)

    def _item(self, i: int) -> dict:
        seg = self._segments[self._seg[i]]
        y, d = self._applied[:, i], self._coded[:, i]
        return {"code": self._codes[self._code[i]], "document": seg.document, "segment": seg.segment,
                "speaker": seg.speaker, "text": self._texts.get(int(self._seg[i]), seg.text),
                "applied_by": [c for c, a, k in zip(self._coders, y, d) if a and k],
                "not_applied_by": [c for c, a, k in zip(self._coders, y, d) if k and not a]}

    def by_code(self, limit: int | None = None) -> dict[str, list[dict]]:
        """Code -> its disagreements (at most ``limit`` each), in code order."""
        out: dict[str, list[dict]] = {}
        codes, starts, counts = np.unique(self._code, return_index=True, return_counts=True)
        self._fetch([k for s, n in zip(starts.tolist(), counts.tolist())
                     for k in range(s, s + (n if limit is None else min(n, limit)))])
        for j, s, n in zip(codes.tolist(), starts.tolist(), counts.tolist()):
            out[self._codes[j]] = [self[k] for k in range(s, s + (n if limit is None else min(n, limit)))]
        return out

    def counts(self) -> dict[str, int]:
        """Code -> number of disagreements."""
        codes, n = np.unique(self._code, return_counts=True)
        return {self._codes[j]: int(k) for j, k in zip(codes.tolist(), n.tolist())}


def disagreements_by_code(items: Sequence[dict], limit: int | None) -> dict[str, list[dict]]:
    """Code -> at most ``limit`` of its disagreements, from :class:`Disagreements` or any list of their dicts."""
    if isinstance(items, Disagreements):
        return items.by_code(limit)
    out: dict[str, list[dict]] = {}
    for d in items:
        out.setdefault(d["code"], []).append(d)
    return {k: v[:limit] for k, v in out.items()}


def disagreement_counts(items: Sequence[dict]) -> dict[str, int]:
    """Code -> number of disagreements, from :class:`Disagreements` or any list of their dicts."""
    if isinstance(items, Disagreements):
        return items.counts()
    out: dict[str, int] = {}
    for d in items:
        out[d["code"]] = out.get(d["code"], 0) + 1
    return out
