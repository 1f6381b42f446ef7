"""Suggestions: the result of pre-coding, one entry per input segment.

Every input segment is in the result, in input order, whether or not a code was suggested for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .codebook import Codebook
from .corpus import CodedCorpus, Segment

__all__ = ["Suggestions"]


class Suggestions:
    """Scores of every learned code for every segment, and the accepted codes.

    Parameters
    ----------
    segments : list of Segment
    codes : list of str
        Column order of ``scores``.
    scores : ndarray (n_segments, n_codes)
        Calibrated scores in [0, 1].
    thresholds : ndarray (n_codes,)
        The model's per-code thresholds.
    codebook : Codebook
    coder : str
        The name the model codes under (e.g. ``"autocode-tfidf.v1"``).
    min_score : float, optional
        Accept codes at or above this score instead of the per-code thresholds.
    silenced : ndarray of bool (n_segments,), optional
        Segments that get no accepted code whatever their scores (turns of a role never coded in training).
    evidence : dict (segment index, code) -> Evidence, optional
        Why a code was suggested (:meth:`autocode.CodingModel.explain`; ``suggest(..., explain=True)``).
    rules : RuleMatches, optional
        What the coding rules matched in these segments (:meth:`autocode.rules.RuleSet.apply`, in the same
        order): shown beside the suggestions as evidence.
    """

    def __init__(self, segments: Sequence[Segment], codes: Sequence[str], scores: np.ndarray,
                 thresholds: np.ndarray, codebook: Codebook, coder: str = "autocode",
                 min_score: float | None = None, silenced: np.ndarray | None = None, evidence: dict | None = None,
                 rules=None):
        self.segments = list(segments)
        self.codes = list(codes)
        self.scores = np.asarray(scores, dtype=float)
        self.thresholds = np.asarray(thresholds, dtype=float)
        self.codebook = codebook
        self.coder = coder
        self.min_score = min_score
        self.evidence = dict(evidence or {})
        self.rules = rules
        self.silenced = np.zeros(len(self.segments), dtype=bool) if silenced is None else np.asarray(silenced, bool)
        if self.scores.shape != (len(self.segments), len(self.codes)):
            raise ValueError(f"scores have shape {self.scores.shape}, expected {(len(self.segments), len(self.codes))}")

    @classmethod
    def concat(cls, parts: Sequence[Suggestions]) -> Suggestions:
        """The suggestions of consecutive batches as one (same model, codes and ``min_score``)."""
        if not parts:
            raise ValueError("no suggestions to concatenate")
        first = parts[0]
        evidence, offset = {}, 0
        for part in parts:
            evidence.update({(i + offset, code): ev for (i, code), ev in part.evidence.items()})
            offset += len(part)
        return cls([s for p in parts for s in p.segments], first.codes, np.vstack([p.scores for p in parts]),
                   first.thresholds, first.codebook, coder=first.coder, min_score=first.min_score,
                   silenced=np.concatenate([p.silenced for p in parts]), evidence=evidence,
                   rules=None if any(p.rules is None for p in parts) else type(first.rules).concat([p.rules for p in parts]))

    def __len__(self) -> int:
        return len(self.segments)

    def __repr__(self) -> str:
        n = int(self.accepted.any(axis=1).sum())
        return f"Suggestions({len(self)} segments, {n} with codes, coder={self.coder!r})"

    @property
    def accepted(self) -> np.ndarray:
        """Boolean matrix: the code clears its threshold (or ``min_score``)."""
        cut = self.thresholds if self.min_score is None else self.min_score
        return (self.scores >= cut) & ~self.silenced[:, None]

    def _accepted_row(self, i: int) -> np.ndarray:
        """Row ``i`` of :attr:`accepted`, without building the whole matrix (pre-coding asks for every row)."""
        cut = self.thresholds if self.min_score is None else self.min_score
        return (self.scores[i] >= cut) & ~self.silenced[i]

    def codes_for(self, i: int) -> list[str]:
        """Accepted codes of segment ``i``, best score first."""
        row = self.scores[i]
        idx = np.flatnonzero(self._accepted_row(i))
        return [self.codes[j] for j in idx[np.argsort(-row[idx], kind="stable")]]

    def top(self, i: int, k: int = 5) -> list[tuple[str, float, bool]]:
        """The ``k`` best-scoring codes of segment ``i`` as (code, score, accepted)."""
        row = self.scores[i]
        acc = self._accepted_row(i)
        order = np.argsort(-row, kind="stable")[:k]
        return [(self.codes[j], float(row[j]), bool(acc[j])) for j in order]

    def categories_for(self, i: int) -> list[str]:
        """Every ancestor (category, main category, core) of the accepted codes of segment ``i``."""
        out: list[str] = []
        for c in self.codes_for(i):
            for a in self.codebook.ancestors(c):
                if a not in out:
                    out.append(a)
        return out

    def category_scores(self, depth: int = 0) -> tuple[list[str], np.ndarray]:
        """Score of each category at ``depth`` per segment: the best score among its codes."""
        cats = [c for c in self.codebook.ids if self.codebook.depth(c) == depth]
        col = {c: j for j, c in enumerate(cats)}
        out = np.zeros((len(self), len(cats)))
        for j, code in enumerate(self.codes):
            anc = self.codebook.ancestor_at(code, depth)
            if anc is not None and anc in col:
                k = col[anc]
                out[:, k] = np.maximum(out[:, k], self.scores[:, j])
        return cats, out

    def evidence_text(self, i: int) -> tuple[str, str]:
        """The evidence of the accepted codes of segment ``i`` as two texts, words and similar coded segments
        (``code: 词、词 | code: ...``); empty without evidence."""
        words, similar, section = [], [], ""
        for code in self.codes_for(i):
            ev = self.evidence.get((i, code))
            if ev is None:
                continue
            w = "、".join(dict.fromkeys(x.text for x in ev.words))  # a word said twice is shown once
            sim = "; ".join(f"{e.document}#{e.segment}「{e.quote}」" for e in ev.similar)
            if w:
                words.append(f"{code}: {w}")
            if sim:
                similar.append(f"{code}: {sim}")
            section = section or ev.section
        if section:  # where the turn stands in the interview guide: once per segment
            words.append(f"guide: {section}")
        return " | ".join(words), " | ".join(similar)

    def rules_text(self, i: int) -> str:
        """The rules that matched segment ``i`` and their passages (``code: 词 [rule] | ...``); empty without
        rules."""
        return "" if self.rules is None else self.rules.evidence_text(i)

    def to_corpus(self) -> CodedCorpus:
        """The accepted codes as a coded corpus with one coder (:attr:`coder`), for agreement statistics."""
        codings = {self.coder: {s.key: set(self.codes_for(i)) for i, s in enumerate(self.segments)}}
        return CodedCorpus(self.segments, codings, codebook=self.codebook)

    def records(self, k: int = 5) -> list[dict]:
        """One JSON-ready dict per segment."""
        book = self.codebook
        out = []
        for i, s in enumerate(self.segments):
            codes = self.codes_for(i)
            out.append({
                "document": s.document,
                "segment": s.segment,
                "speaker": s.speaker,
                "text": s.text,
                "start": s.start,
                "end": s.end,
                "coder": self.coder,
                "codes": codes,
                "code_names": [book[c].name for c in codes],
                "categories": self.categories_for(i),
                "category_names": [book[c].name for c in self.categories_for(i)],
                "suggestions": [
                    {"code": c, "name": book[c].name, "score": round(sc, 4), "accepted": acc,
                     "threshold": round(float(self.thresholds[self.codes.index(c)]), 4),
                     "categories": book.ancestors(c),
                     **({k2: v for k2, v in self.evidence[(i, c)].to_dict().items() if k2 in ("words", "similar")}
                        if (i, c) in self.evidence else {})}
                    for c, sc, acc in self.top(i, k)
                ],
                **({"rules": [{"code": r.code, "rule": r.describe(), "text": t} for r, t in self.rules.fired[i]]}
                   if self.rules is not None and self.rules.fired else {}),
                "accept": None,
            })
        return out
