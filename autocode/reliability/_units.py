"""The units of agreement over a coded corpus: which codes each coder applied to each segment or character.

:func:`build_units` turns a :class:`~autocode.corpus.CodedCorpus` into :class:`Decisions` (coders x units x
codes, held as each coder's set of codes per unit) with a weight per unit (1 per segment; its length in
characters at character level) and the document of each unit, which is all the statistics need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..agreement import AgreementError
from ..codebook import Codebook
from ..corpus import CodedCorpus, narrow

__all__ = ["Decisions", "Units", "build_units", "char_units", "code_decisions", "depth_for", "find_missing"]


class Decisions:
    """Which codes each coder applied to each unit, (coders, units, codes) booleans held as one number per coder
    and unit: the row of ``sets`` (the distinct sets of codes, as booleans over the codes) it applied, the empty
    set where it applied none or did not code the unit. Indexing gives booleans:
    ``d[:, s:e]`` is (coders, e - s, codes), ``d[:, units, codes]`` picks one decision per (unit, code) and
    coder. A corpus of a million segments takes 4 bytes per coder and segment, not one per code too.

    >>> d = Decisions.from_dense(np.array([[[True, False], [False, False]], [[True, True], [True, False]]]))
    >>> d.shape, d[:, 1:].astype(int).tolist(), d[:, [0], [1]].tolist()
    ((2, 2, 2), [[[0, 0]], [[1, 0]]], [[False], [True]])
    """

    def __init__(self, sets: np.ndarray, ids: np.ndarray):
        self.sets, self.ids = sets, ids

    @classmethod
    def from_dense(cls, x: np.ndarray) -> Decisions:
        """From (coders, units, codes) booleans."""
        m, n, k = x.shape
        sets, ids = np.unique(x.reshape(m * n, k), axis=0, return_inverse=True)
        return cls(np.ascontiguousarray(sets, dtype=bool), ids.reshape(m, n).astype(np.int32))

    @property
    def shape(self) -> tuple[int, int, int]:
        return (*self.ids.shape, self.sets.shape[1])

    def __getitem__(self, key) -> np.ndarray:
        coders, units, *codes = key
        return self.sets[(self.ids[coders, units], *codes)]

    def of(self, members: list[int]) -> Decisions:
        """The decisions of the coders ``members``."""
        return Decisions(self.sets, self.ids[members])

    def dense(self) -> np.ndarray:
        """(coders, units, codes) booleans."""
        return self.sets[self.ids]

    def applied_any(self) -> np.ndarray:
        """(units,): whether any coder applied any code."""
        return self.sets.any(axis=1)[self.ids].any(axis=0)


@dataclass
class Units:
    """Coders' decisions per segment and per unit of agreement.

    Attributes
    ----------
    codes : list of str
        The compared codes (last axis of ``x`` and ``ux``).
    x, coded : Decisions (coders, segments, codes) and ndarray of bool (coders, segments)
        The codes each coder applied to each segment, and which segments each coder coded.
    ux, ucoded : Decisions (coders, units, codes) and ndarray of bool (coders, units)
        The same per unit of agreement (segments, or elementary stretches of characters); ``ux`` is False where
        the coder did not code the unit.
    weight : ndarray (units,)
        What each unit counts for: 1 per segment, its number of characters at character level; 0 for the units
        left out (``uncoded="drop"``).
    unit_doc : ndarray of int (units,)
        The document of each unit, as an index into ``docs``.
    docs : list of str
        The documents, in corpus order.
    """

    codes: list[str]
    x: Decisions
    coded: np.ndarray
    ux: Decisions
    ucoded: np.ndarray
    weight: np.ndarray
    unit_doc: np.ndarray
    docs: list[str]

    def drop_uncoded(self) -> None:
        """Weight 0 for the units no coder applied any code to."""
        self.weight = self.weight * self.ux.applied_any()

    @property
    def n_units(self) -> int:
        """Units (weighted: characters at character level) coded by some coder and not left out."""
        return int(self.weight[self.ucoded.any(axis=0)].sum())


def code_decisions(corpus: CodedCorpus, coders: Sequence[str], codes: Sequence[str] | None
                   ) -> tuple[list[str], Decisions, np.ndarray]:
    """``(codes, x, coded)``: the compared codes (default: every code a coder applied, in codebook order), and
    per coder which codes they applied to each segment (coders x segments x codes) and which segments they
    coded (coders x segments)."""
    numbers, distinct = corpus.code_ids(coders)  # (coders, segments): -1 not coded
    coded = numbers >= 0
    empty = [c for c, got in zip(coders, coded) if not got.any()]
    if empty:
        raise AgreementError(
            f"Coder(s) {empty} coded no segment. Check the coder names in the 'coder' column (or the file "
            f"names), or leave them out with coders=[...]."
        )
    # each distinct set's row of the decisions: the empty set (applied none, or did not code) is row 0
    nonempty = [k for k, x in enumerate(distinct) if x]
    row = np.zeros(len(distinct) + 1, dtype=np.int32)  # the last: what -1 (not coded) picks
    row[nonempty] = np.arange(1, len(nonempty) + 1)
    ids = narrow(row)[numbers]  # (the smallest integers that number the sets)
    del numbers
    silent = [c for c, got in zip(coders, ids) if not got.any()]
    if silent and len(silent) < len(coders):  # (nobody applied any code: said below)
        raise AgreementError(
            f"Coder(s) {silent} applied no code to any segment they coded, so agreement with them cannot be "
            "measured (their chance-corrected agreement would be 0 or undefined). Check their 'codes' column "
            "(code ids joined by ';'), or leave them out with coders=[...] (CLI: --coders)."
        )
    distinct = [frozenset(), *(distinct[k] for k in nonempty)]  # in order of their rows
    if codes is None:
        used = set().union(*distinct)
        book = corpus.codebook
        codes = [c for c in book.ids if c in used] if book is not None else sorted(used)
    codes = list(codes)
    if not codes:
        raise AgreementError("No coder applied any code, so there is nothing to compare. Check the 'codes' column.")
    col_of = {c: j for j, c in enumerate(codes)}
    sets = np.zeros((len(distinct), len(codes)), dtype=bool)
    for k, got in enumerate(distinct):
        for code in got:
            j = col_of.get(code)
            if j is not None:
                sets[k, j] = True
    return codes, Decisions(sets, ids), coded


def build_units(corpus: CodedCorpus, coders: Sequence[str], codes: Sequence[str] | None,
                level: str) -> Units:
    """The decisions of ``coders`` on ``codes`` per segment and per unit of ``level`` (``"segment"`` or
    ``"character"``)."""
    codes, x, coded = code_decisions(corpus, coders, codes)
    docs, unit_doc = corpus.document_index()
    unit_doc = unit_doc.astype(np.int32) if len(docs) < 2**31 else unit_doc
    if level == "character":
        cover, weight, unit_doc = char_units(corpus)
        ucoded = np.stack([(cover @ coded[i].astype(np.float64)) > 0 for i in range(len(coders))])
        ux = Decisions.from_dense(np.stack([(cover @ x[i, :].astype(np.float64)) > 0 for i in range(len(coders))])
                                  & ucoded[:, :, None])
    else:
        ux, ucoded, weight = x, coded, np.broadcast_to(np.float64(1), (len(corpus),))  # (one number held)
    return Units(codes, x, coded, ux, ucoded, weight, unit_doc, docs)


def find_missing(corpus: CodedCorpus, coders: Sequence[str], units: Units, level: str) -> dict[str, list[str]]:
    """Per coder: the segments (``"doc/segment"``) or, at character level, the documents with the number of
    characters (``"doc: 12 characters"``) that other compared coders coded and this coder did not."""
    out: dict[str, list[str]] = {}
    for i, c in enumerate(coders):
        if level == "segment":
            others = np.delete(units.coded, i, axis=0).any(axis=0)
            gap = np.flatnonzero(others & ~units.coded[i])
            if gap.size:
                out[c] = ["/".join(corpus.segments[j].key) for j in gap]
        else:
            others = np.delete(units.ucoded, i, axis=0).any(axis=0)
            chars = np.bincount(units.unit_doc, weights=units.weight * (others & ~units.ucoded[i]),
                                minlength=len(units.docs))
            if chars.any():
                out[c] = [f"{units.docs[d]}: {chars[d]:g} characters" for d in np.flatnonzero(chars)]
    return out


def depth_for(by: str | int, book: Codebook | None) -> int | None:
    """The codebook depth ``by`` rolls codes up to; ``None`` for ``by="code"`` (codes as coded)."""
    if by == "code":
        return None
    if book is None:
        raise AgreementError(
            f"by={by!r} rolls codes up through the codebook, but the corpus has none. Read the coding with "
            "codebook=... (CLI: --codebook codebook.csv), or use by='code'."
        )
    if by == "main":
        return book.main_depth
    if by == "category":
        return book.category_depth
    if isinstance(by, int) and not isinstance(by, bool) and by >= 0:
        return by
    raise AgreementError(f"Unknown by={by!r}: use 'code', 'category', 'main' or a codebook depth (0 = top level).")


def char_units(corpus: CodedCorpus) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Elementary character intervals: (intervals x segments cover matrix, interval lengths, interval doc)."""
    rows, cols, lengths, docs = [], [], [], []
    by_doc: dict[str, list[int]] = {}
    for i, s in enumerate(corpus.segments):
        by_doc.setdefault(s.document, []).append(i)
    doc_ids = {d: k for k, d in enumerate(by_doc)}
    n_int = 0
    for doc, idx in by_doc.items():
        segs = [corpus.segments[i] for i in idx]
        if all(s.start is not None and s.end is not None and s.end >= s.start for s in segs):
            start = np.array([s.start for s in segs], dtype=np.int64)
            end = np.array([s.end for s in segs], dtype=np.int64)
        else:
            ln = np.array([len(s.text) for s in segs], dtype=np.int64)
            end = np.cumsum(ln)
            start = end - ln
        cuts = np.unique(np.concatenate([start, end]))
        a = np.searchsorted(cuts, start)
        b = np.searchsorted(cuts, end)
        for k, (lo, hi) in enumerate(zip(a, b)):
            for t in range(lo, hi):
                rows.append(n_int + t)
                cols.append(idx[k])
        n_int += len(cuts) - 1
        lengths.append(np.diff(cuts))
        docs.append(np.full(len(cuts) - 1, doc_ids[doc]))
    cover = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_int, len(corpus)))
    length = np.concatenate(lengths).astype(np.float64) if lengths else np.zeros(0)
    doc = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
    keep = np.asarray(cover.sum(axis=1)).ravel() > 0  # gaps between segments are not units
    keep &= length > 0
    return cover[keep], length[keep], doc[keep]
