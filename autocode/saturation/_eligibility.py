"""Which segments can carry a new concept: not the interviewer's, and long enough to say something."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..corpus import Segment
from ..segment import speaker_role
from ..text import SPEAKER_PREFIX


def content_length(text: str) -> int:
    """Letters and digits in ``text`` after a leading speaker label (punctuation and spaces do not count).

    >>> content_length("B: 嗯，對啊。"), content_length("我觉得 OK")
    (3, 5)
    """
    text = SPEAKER_PREFIX.sub("", text, count=1)
    return sum(1 for ch in text if ch.isalnum())


def _role(seg: Segment) -> str:
    return seg.speaker if seg.speaker in ("interviewer", "participant") else speaker_role(seg.speaker)


def eligible_mask(segments: Sequence[Segment], *, min_chars: int,
                  exclude_roles: Sequence[str] = ("interviewer",)) -> np.ndarray:
    """Which segments can carry a new concept: not spoken by an excluded role (by default the interviewer,
    recognised from the speaker label as in :func:`autocode.segment.speaker_role`) and at least ``min_chars``
    letters or digits long (:func:`content_length`).

    >>> segs = [Segment("D", "1", "您怎么看？", "访谈者"), Segment("D", "2", "嗯。", "受访者"),
    ...         Segment("D", "3", "我觉得标签很有帮助", "受访者")]
    >>> eligible_mask(segs, min_chars=4).tolist()
    [False, False, True]
    """
    excluded = set(exclude_roles)
    return np.array([_role(s) not in excluded and content_length(s.text) >= min_chars for s in segments],
                    dtype=bool)


def too_short(segments: Sequence[Segment], *, min_chars: int,
              exclude_roles: Sequence[str] = ("interviewer",)) -> np.ndarray:
    """Segments left unscored only for their length: not spoken by an excluded role, but shorter than
    ``min_chars`` letters or digits (a report counts them so that a reader can look at them).

    >>> segs = [Segment("D", "1", "您怎么看？", "访谈者"), Segment("D", "2", "嗯。", "受访者")]
    >>> too_short(segs, min_chars=4).tolist()
    [False, True]
    """
    excluded = set(exclude_roles)
    return np.array([_role(s) not in excluded and content_length(s.text) < min_chars for s in segments], dtype=bool)
