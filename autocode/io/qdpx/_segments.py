"""From coded character ranges to segments, and from segments back to character ranges.

A QDA project codes character ranges; autocode learns from segments (speaker turns and sentences). A
selection codes a segment when it covers at least ``share`` of the segment's characters, or at least that
share of its own characters (a short quote inside a long turn codes the turn): :func:`overlapping`.
Suggestions go the other way: :func:`locate` finds a segment's range in its document's text.
"""

from __future__ import annotations

from bisect import bisect_left

from ...corpus import Segment
from ...exceptions import AutocodeError

__all__ = ["locate", "overlapping"]


def overlapping(segs: list[Segment], starts: list[int], a: int, b: int, share: float) -> list[Segment]:
    """The segments a selection ``[a, b)`` codes under the overlap rule.

    >>> segs = [Segment("d", "1", "x" * 10, start=0, end=10), Segment("d", "2", "y" * 10, start=11, end=21)]
    >>> starts = [0, 11]
    >>> [s.segment for s in overlapping(segs, starts, 2, 9, 0.5)]     # a short quote inside segment 1
    ['1']
    >>> [s.segment for s in overlapping(segs, starts, 4, 21, 0.5)]    # 6 of 10 and all of segment 2
    ['1', '2']
    >>> [s.segment for s in overlapping(segs, starts, 0, 14, 0.5)]    # 3 of 10 chars of segment 2: not it
    ['1']
    """
    if b <= a:
        return []
    out = []
    i = max(bisect_left(starts, a) - 1, 0)
    while i < len(segs) and segs[i].start < b:
        s = segs[i]
        overlap = min(s.end, b) - max(s.start, a)
        if overlap > 0 and (overlap >= share * (s.end - s.start) or overlap >= share * (b - a)):
            out.append(s)
        i += 1
    return out


def locate(text: str, seg: Segment, cursor: int) -> tuple[int, int]:
    """The range ``(start, end)`` of a segment in its document's ``text``: the segment's own offsets when
    they hold its text, else where its text first occurs from ``cursor`` on (or, failing that, anywhere).

    >>> locate("问：好。答：好。", Segment("d", "2", "答：好。"), 0)
    (4, 8)
    """
    if seg.start is not None and seg.end is not None and text[seg.start:seg.end] == seg.text:
        return seg.start, seg.end
    at = text.find(seg.text, cursor)
    if at < 0:
        at = text.find(seg.text)
    if at < 0 or not seg.text:
        raise AutocodeError(
            f"Segment {seg.document}/{seg.segment} ({seg.text[:30]!r}) is not in the text of document "
            f"{seg.document!r}. Pass the transcripts the segments came from (documents=...)."
        )
    return at, at + len(seg.text)

