"""Transcripts -> segments with character offsets.

A transcript is split into speaker turns at line starts that carry a speaker label (``A:``, ``B：``, ``问：``,
``答：``, ``访谈者：``, ``受访者：``, ``Q:``, ``张老师：`` ...). A label counts as a speaker when it is a known
interview role or occurs at the start of at least two lines, so that a sentence such as ``他说：`` at a line start
is not mistaken for a speaker. Lines without a label continue the current turn; a document without any labels is
split into paragraphs (non-empty lines).

A turn longer than ``max_chars`` is split into sentences at 。！？；… (and ! ? ;), closing quotes and brackets
kept with their sentence. Every segment records ``start``/``end`` so that ``text[start:end]`` of the original
document is the segment text.

>>> doc = "访谈者：您好。\\n受访者：我们社区有党支部。居委会也参与。\\n"
>>> for s in segment_text(doc, "D1"):
...     print(s.segment, s.speaker, s.text, doc[s.start:s.end] == s.text)
1 访谈者 您好。 True
2 受访者 我们社区有党支部。居委会也参与。 True
>>> [s.segment for s in segment_text(doc, "D1", max_chars=10)]
['1', '2.1', '2.2']
"""

from __future__ import annotations

import re
from collections import Counter

from .corpus import Segment

__all__ = ["segment_text", "split_sentences", "KNOWN_SPEAKERS", "speaker_role"]

# Labels that are speakers wherever they occur, even once.
KNOWN_SPEAKERS = {
    "A", "B", "Q", "I", "R", "P", "M", "问", "答", "問", "访谈者", "訪談者", "受访者", "受訪者", "被访者",
    "被訪者", "采访者", "採訪者", "主持人", "访员", "訪員", "研究者", "调研员", "記者", "记者", "访问者", "訪問者",
    "参与者", "參與者", "受试者", "受試者", "interviewer", "interviewee", "participant",
}
INTERVIEWER_LABELS = {
    "A", "Q", "I", "问", "問", "访谈者", "訪談者", "采访者", "採訪者", "主持人", "访员", "訪員", "研究者",
    "调研员", "記者", "记者", "访问者", "訪問者", "interviewer",
}

_LABEL = re.compile(
    r"^[ \t\u3000]*(?P<label>[A-Za-z][A-Za-z0-9_]{0,15}|[\u3400-\u9fff][\u3400-\u9fffA-Za-z0-9]{0,7})"
    r"[ \t\u3000]*[:：][ \t\u3000]*"
)
_SENTENCE_END = re.compile(r"(?:[。！？；!?;]+|…+|\.{3,})[”’」』）)\]】\"']*")


def speaker_role(label: str) -> str:
    """``"interviewer"`` for labels that usually mark the interviewer (``A``, ``问``, ``访谈者`` ...),
    ``"participant"`` for other labels, ``""`` for none.

    >>> speaker_role("问"), speaker_role("受访者"), speaker_role("")
    ('interviewer', 'participant', '')
    """
    if not label:
        return ""
    if label.lower() == "interviewer" or label in INTERVIEWER_LABELS:
        return "interviewer"
    return "participant"


def split_sentences(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Sentence spans ``(start, end)`` of ``text`` (shifted by ``offset``), whitespace trimmed.

    >>> t = "我觉得很好。你呢？“是的！”好"
    >>> [t[a:b] for a, b in split_sentences(t)]
    ['我觉得很好。', '你呢？', '“是的！”', '好']
    """
    spans = []
    pos = 0
    for m in _SENTENCE_END.finditer(text):
        spans.append((pos, m.end()))
        pos = m.end()
    if pos < len(text):
        spans.append((pos, len(text)))
    out = []
    for a, b in spans:
        chunk = text[a:b]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk) - len(chunk.rstrip())
        if b - trail > a + lead:
            out.append((offset + a + lead, offset + b - trail))
    return out


def _line_spans(text: str):
    pos = 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\r\n")
        yield pos, body
        pos += len(line)


def segment_text(
    text: str,
    document: str,
    *,
    max_chars: int | None = 200,
    speakers: set[str] | None = None,
) -> list[Segment]:
    """Split one transcript into segments.

    Parameters
    ----------
    text : str
        The whole transcript, as decoded from its file (line endings kept; offsets count characters of it).
    document : str
        The document name given to every segment.
    max_chars : int or None
        Turns longer than this are split into sentences (ids ``"turn.sentence"``); None keeps whole turns.
    speakers : set of str, optional
        Labels to accept as speakers in addition to the known roles and labels used on two or more lines.

    Returns
    -------
    list of Segment
        In document order; a document with no text gives an empty list.
    """
    if text.startswith("\ufeff"):
        raise ValueError("Strip the BOM before segmenting (read_documents does).")
    lines = list(_line_spans(text))
    found = [(_LABEL.match(body), start, body) for start, body in lines]
    counts = Counter(m.group("label") for m, _, _ in found if m)
    accepted = set(KNOWN_SPEAKERS) | (speakers or set()) | {lab for lab, n in counts.items() if n >= 2}
    any_label = any(m and m.group("label") in accepted for m, _, _ in found)

    turns: list[list] = []  # [speaker, start, end]
    for m, start, body in found:
        if not body.strip():
            if not any_label:
                turns.append(None)  # paragraph break
            continue
        if m and m.group("label") in accepted:
            content_start = start + m.end()
            turns.append([m.group("label"), content_start, start + len(body)])
        elif any_label and turns and turns[-1] is not None:
            turns[-1][2] = start + len(body)  # continuation line of the current turn
        else:
            turns.append(["", start, start + len(body)])
    segments: list[Segment] = []
    n = 0
    for turn in turns:
        if turn is None:
            continue
        speaker, a, b = turn
        chunk = text[a:b]
        a += len(chunk) - len(chunk.lstrip())
        b -= len(chunk) - len(chunk.rstrip())
        if b <= a:
            continue
        n += 1
        if max_chars is not None and b - a > max_chars:
            spans = split_sentences(text[a:b], offset=a)
            if len(spans) > 1:
                for k, (sa, sb) in enumerate(spans, start=1):
                    segments.append(Segment(document, f"{n}.{k}", text[sa:sb], speaker, sa, sb))
                continue
        segments.append(Segment(document, str(n), text[a:b], speaker, a, b))
    return segments
