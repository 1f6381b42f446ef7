"""A reviewer's decisions on pre-coded suggestions, and how training uses them.

Each suggestion a reviewer saw ends in one of three states:

accepted
    the reviewer kept it (a ``yes`` in the table, or the same code on the same segment under the reviewer's
    own name in a QDA project): a positive example of the code;
rejected
    the reviewer said no (a ``no``, or the suggestion deleted in the QDA tool): a *hard negative*, a segment
    the model wrongly took for the code;
unknown
    nobody looked at it (blank, or still there under the model's name): left out of that code's training
    rows, neither yes nor no.

Codes the reviewer added are positives too. A segment is *complete* when the reviewer coded it as a whole
(a row answered ``no`` with no suggested code: nothing applies; in a QDA project, a segment of a document
in which the reviewer made codings of their own): every code without a decision is then a negative, as for
ordinary hand coding, except the suggestions left untouched.

>>> from autocode.corpus import Segment
>>> r = Review([Segment("P1", "1", "党支部开会")], accepted={("P1", "1"): {"party"}},
...            rejected={("P1", "1"): {"vote"}})
>>> Y, known = r.labels(["party", "vote", "other"])
>>> Y.astype(int).tolist(), known.astype(int).tolist()
([[1, 0, 0]], [[1, 1, 0]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .corpus import CodedCorpus, Segment
from .exceptions import AutocodeError

__all__ = ["Review", "merge_review"]

Key = tuple[str, str]


@dataclass
class Review:
    """What a reviewer decided about suggestions (see the module doc).

    Attributes
    ----------
    segments : list of Segment
        Every segment of the reviewed file, decided on or not.
    accepted, rejected, unknown, added : dict (document, segment) -> set of code ids
        Suggestions accepted, rejected and left untouched, and codes the reviewer added.
    complete : set of (document, segment)
        Segments the reviewer coded as a whole.
    reviewer : str
        The name the reviewer's decisions go under (``to_corpus``).
    notes : list of str
        What reading the review noticed (e.g. codings made under the model's name).
    """

    segments: list[Segment]
    accepted: dict[Key, set[str]] = field(default_factory=dict)
    rejected: dict[Key, set[str]] = field(default_factory=dict)
    unknown: dict[Key, set[str]] = field(default_factory=dict)
    added: dict[Key, set[str]] = field(default_factory=dict)
    complete: set[Key] = field(default_factory=set)
    reviewer: str = "reviewer"
    notes: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """How many suggestions were accepted, rejected and left untouched, and how many codes were added."""
        def n(d):
            return sum(len(v) for v in d.values())

        return {"accepted": n(self.accepted), "rejected": n(self.rejected), "unknown": n(self.unknown),
                "added": n(self.added), "segments": len(self.segments), "complete": len(self.complete)}

    def __repr__(self) -> str:
        c = self.counts()
        return (f"Review({c['segments']} segments: {c['accepted']} accepted, {c['rejected']} rejected, "
                f"{c['unknown']} untouched, {c['added']} added)")

    def positives(self, key: Key) -> set[str]:
        return self.accepted.get(key, set()) | self.added.get(key, set())

    def labels(self, codes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(Y, known)`` over :attr:`segments` x ``codes``: the positives, and which labels are known."""
        col = {c: j for j, c in enumerate(codes)}
        Y = np.zeros((len(self.segments), len(codes)), dtype=bool)
        known = np.zeros_like(Y)
        for i, s in enumerate(self.segments):
            if s.key in self.complete:
                known[i] = True
            for c in self.unknown.get(s.key, ()):
                if c in col:
                    known[i, col[c]] = False
            for c in self.rejected.get(s.key, ()):
                if c in col:
                    known[i, col[c]] = True
            for c in self.positives(s.key):
                if c in col:
                    Y[i, col[c]] = known[i, col[c]] = True
        return Y, known

    def decided(self) -> np.ndarray:
        """True for the segments with at least one known decision."""
        keys = set(self.accepted) | set(self.rejected) | set(self.added) | self.complete
        keys = {k for k in keys if self.accepted.get(k) or self.rejected.get(k) or self.added.get(k)
                or k in self.complete}
        return np.array([s.key in keys for s in self.segments], dtype=bool)

    def to_corpus(self, codebook=None) -> CodedCorpus:
        """The reviewed segments (those with a decision) coded by :attr:`reviewer` with the positives."""
        segs = [s for s, d in zip(self.segments, self.decided()) if d]
        return CodedCorpus(segs, {self.reviewer: {s.key: self.positives(s.key) for s in segs}}, codebook=codebook)


def merge_review(segments: Sequence[Segment], Y: np.ndarray, review: Review, codes: Sequence[str]
                 ) -> tuple[list[Segment], np.ndarray, np.ndarray]:
    """Hand-coded segments with labels ``Y`` (all known) plus a review's decided segments: the segments, the
    labels and the known mask over ``codes``. A segment in both takes the review's known decisions over the
    hand coding."""
    rY, rK = review.labels(codes)
    index = {s.key: i for i, s in enumerate(segments)}
    segs = list(segments)
    Y = np.asarray(Y, dtype=bool).copy()
    known = np.ones_like(Y)
    extra_Y, extra_K = [], []
    for i, s in enumerate(review.segments):
        if not rK[i].any():
            continue
        if s.key in index:
            r = index[s.key]
            Y[r, rK[i]] = rY[i, rK[i]]
        else:
            segs.append(s)
            extra_Y.append(rY[i])
            extra_K.append(rK[i])
    if extra_Y:
        Y = np.vstack([Y, np.array(extra_Y)])
        known = np.vstack([known, np.array(extra_K)])
    if len(segs) == 0:
        raise AutocodeError("Nothing to learn: no hand-coded segment and no decision in the review.")
    return segs, Y, known
