"""Section headings of transcripts, and the section each segment stands under (as NVivo codes by heading).

A heading is a line of its own that titles a part of the transcript:

* a Markdown heading, ``# 基本情况`` (level = the number of ``#``);
* a numbered part title: ``第一部分 基本情况`` / ``第二章`` / ``第三节`` (level 1), ``一、社区参与`` (level 2),
  ``（一）党建引领`` (level 3), optionally in ``【…】``;
* a Word paragraph in a Heading style (``Heading 1``, ``标题 1``, or an outline level): found by the ``.docx``
  reader and given to :func:`autocode.segment.segment_text` as ``headings``.

A numbered line counts as a heading only when it is short (at most :data:`MAX_TITLE` characters) and does not
end like a sentence (``。？！；，…``), so that ``一、我觉得……。`` inside an answer stays text. Lines numbered with
Arabic digits (``1. …``) are never headings: answers list things that way.

Headings change neither how a transcript is split into segments nor any offset: a heading line stays part of
the text (it usually continues the turn before it). Each segment's ``section`` is the path of the headings
above it, outer first, joined by :data:`SEPARATOR` (``一、基本情况 / （一）家庭``); ``""`` before the first
heading.

>>> text = "一、基本情况\\n问：您好。\\n答：我在社区工作。\\n二、社区参与\\n问：参加过活动吗？\\n"
>>> [(h.level, h.title) for h in find_headings(text)]
[(2, '一、基本情况'), (2, '二、社区参与')]
>>> section_paths([0, 7, 32], find_headings(text))
['一、基本情况', '一、基本情况', '二、社区参与']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Heading", "find_headings", "merge_headings", "section_paths", "SEPARATOR", "MAX_TITLE"]

SEPARATOR = " / "
"""Joins the headings of a section path."""

MAX_TITLE = 40
"""A numbered line longer than this (characters) is text, not a heading."""

_NUM = "一二三四五六七八九十百零〇两壹贰叁肆伍陆柒捌玖拾"
_MARKDOWN = re.compile(r"^[ \t]{0,3}(#{1,6})[ \t\u3000]+(.*?)[ \t\u3000]*#*[ \t\u3000]*$")
_NUMBERED = (
    (1, re.compile(rf"^第[{_NUM}\d]{{1,3}}(?:部分|章|节|節|篇|单元|單元|板块|板塊|阶段|階段|轮|輪|主题|主題)")),
    (2, re.compile(rf"^[{_NUM}]{{1,3}}[、．.]")),
    (3, re.compile(rf"^[（(][{_NUM}]{{1,3}}[）)]")),
)
_SENTENCE_END = tuple("。？！?!；;，,…")


@dataclass(frozen=True)
class Heading:
    """A heading line: ``text[start:end]`` is the whole line (without its line break); ``title`` is what it
    says (for Markdown, without the ``#``)."""

    start: int
    end: int
    level: int
    title: str


def _numbered_level(line: str) -> int | None:
    body = line.strip(" \t\u3000")
    if body[:1] in "【[" and body[-1:] in "】]":
        body = body[1:-1].strip()
    if not body or len(body) > MAX_TITLE or body.endswith(_SENTENCE_END):
        return None
    for level, pattern in _NUMBERED:
        if pattern.match(body):
            return level
    return None


def find_headings(text: str) -> list[Heading]:
    """The heading lines of a transcript's text, in order (see the module documentation).

    >>> [(h.level, h.title) for h in find_headings("# 访谈记录\\n## 第一部分 基本情况\\n（一）家庭\\n答：三口人。")]
    [(1, '访谈记录'), (2, '第一部分 基本情况'), (3, '（一）家庭')]
    """
    out = []
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        md = _MARKDOWN.match(body)
        if md and md.group(2):
            out.append(Heading(pos, pos + len(body), len(md.group(1)), md.group(2)))
        elif not md:
            level = _numbered_level(body)
            if level is not None:
                lead = len(body) - len(body.lstrip(" \t\u3000"))
                title = body.strip(" \t\u3000")
                out.append(Heading(pos + lead, pos + lead + len(title), level, title))
        pos += len(line)
    return out


def merge_headings(*groups: Iterable[Heading]) -> list[Heading]:
    """Headings of several sources (the text, a Word file's styles) in text order, one per line start."""
    seen: dict[int, Heading] = {}
    for group in groups:
        for h in group:
            seen.setdefault(h.start, h)
    return [seen[k] for k in sorted(seen)]


def section_paths(starts: Sequence[int | None], headings: Sequence[Heading]) -> list[str]:
    """For each offset in ``starts`` (a segment's start), the path of the headings at or before it: a heading
    closes every heading of its level or deeper. ``None`` (offset unknown) gives ``""``."""
    order = sorted(range(len(starts)), key=lambda i: -1 if starts[i] is None else starts[i])
    out = [""] * len(starts)
    stack: list[Heading] = []
    k = 0
    for i in order:
        if starts[i] is None:
            continue
        while k < len(headings) and headings[k].start <= starts[i]:
            h = headings[k]
            while stack and stack[-1].level >= h.level:
                stack.pop()
            stack.append(h)
            k += 1
        out[i] = SEPARATOR.join(h.title for h in stack)
    return out
