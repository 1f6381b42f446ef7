"""Transcripts -> segments with character offsets.

(About 500 lines, long because segmentation and layout detection share one line scanner and its speaker-label
grammar, which would otherwise be private names reached into from a second module.)

A transcript is split into speaker turns at lines that carry a speaker label. The layouts recognised:

* ``访谈者：…``, ``A: …``, ``问：/答：``, ``访：/答：``, ``Q:/A:``, ``I:/R:``, ``Li Ming: …``, full-width ``Ａ：``;
* ``【访谈者】…`` (``[访谈者]`` for the known roles);
* a timestamp before the label, between label and colon or after the colon: ``[00:00:05] 訪談者：…``,
  ``00:01:23 A: …``, ``访谈者（00:12）：…``; a line that starts with a timestamp and has no label, ``(00:12) …``,
  starts a new segment of the current speaker;
* header lines of transcription services: ``说话人1 00:37`` alone on a line, the speaker's text on the
  following lines (the header line is no segment); so is a known role or a given label alone on a line
  (``受访者``, as a two-column speaker | text table reads).

A label counts as a speaker when it is a known interview role (:data:`KNOWN_SPEAKERS`), a numbered speaker
(``说话人1``, ``Speaker 2``), a label given in ``speakers=``, or when it occurs on at least two lines, so that a
sentence such as ``他说：`` at a line start is not mistaken for a speaker (``【…】`` labels by that count only
when two of them alternate, since ``【说明】`` also heads notes; a name alone on its line only when known or
given, and never a single Latin letter unless given). A bare timestamp (``00:12``, not in
brackets) counts as one when at least two lines start with a timestamp. Timestamps that lead a line or follow a
label are left out of the segment text. Lines without a label continue the current turn; a document without any
labels is split into paragraphs (non-empty lines).

A turn longer than ``max_chars`` is split into sentences at 。！？；… (and ! ? ;), closing quotes and brackets
kept with their sentence. Every segment records ``start``/``end`` so that ``text[start:end]`` of the original
document is the segment text. :func:`detect_layout` says which layout was found.

>>> doc = "访谈者：您好。\\n受访者：我们社区有党支部。居委会也参与。\\n"
>>> for s in segment_text(doc, "D1"):
...     print(s.segment, s.speaker, s.text, doc[s.start:s.end] == s.text)
1 访谈者 您好。 True
2 受访者 我们社区有党支部。居委会也参与。 True
>>> [s.segment for s in segment_text(doc, "D1", max_chars=10)]
['1', '2.1', '2.2']
>>> [(s.speaker, s.text) for s in segment_text("说话人1 00:05\\n您好。\\n说话人2 00:09\\n你好。", "D")]
[('说话人1', '您好。'), ('说话人2', '你好。')]
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from .corpus import Segment
from .exceptions import FormatError
from .section import Heading, find_headings, merge_headings, section_paths

__all__ = ["segment_text", "split_sentences", "KNOWN_SPEAKERS", "speaker_role", "detect_layout", "Layout",
           "parse_speakers", "describe_layouts", "layout_lines", "ROLES"]

# Labels that are speakers wherever they occur, even once.
KNOWN_SPEAKERS = {
    "A", "B", "Q", "I", "R", "P", "M", "问", "答", "問", "访", "訪", "受", "访谈者", "訪談者", "受访者", "受訪者",
    "被访者", "被訪者", "采访者", "採訪者", "主持人", "访员", "訪員", "研究者", "调研员", "記者", "记者", "访问者",
    "訪問者", "参与者", "參與者", "受试者", "受試者", "interviewer", "interviewee", "participant",
}
INTERVIEWER_LABELS = {
    "A", "Q", "I", "问", "問", "访", "訪", "访谈者", "訪談者", "采访者", "採訪者", "主持人", "访员", "訪員", "研究者",
    "调研员", "記者", "记者", "访问者", "訪問者", "interviewer",
}
ROLES = ("interviewer", "participant")
# Numbered speakers of transcription services (讯飞听见, 飞书妙记, 腾讯会议, Otter): speakers even once.
_NUMBERED = re.compile(r"(?:说话人|說話人|发言人|發言人|讲话人|講話人|speaker|spk|SPEAKER_)[ _]?\d{1,3}", re.I)

_WS = r"[ \t\u3000]"
_T = r"\d{1,2}:\d{2}(?::\d{2})?(?:[.,]\d{1,3})?"
_TR = rf"{_T}(?:{_WS}*(?:-->|–|—|-|~|～){_WS}*{_T})?"
_TS_WRAPPED = rf"(?:\[{_TR}\]|［{_TR}］|\({_TR}\)|（{_TR}）|【{_TR}】|<{_TR}>)"
_TS_BARE = rf"{_TR}(?!\d|:\d)"
_TS = rf"(?:{_TS_WRAPPED}|{_TS_BARE})"
_LATIN_WORD = r"[A-Za-zＡ-Ｚａ-ｚ][A-Za-z0-9_.'’\-Ａ-Ｚａ-ｚ０-９]{0,15}"
_NUMBER = r"\d{1,2}(?!\d|:\d)"
_NAME = (rf"(?:{_LATIN_WORD}(?: (?:{_LATIN_WORD}|{_NUMBER})){{0,2}}"
         rf"|[\u3400-\u9fff][\u3400-\u9fffA-Za-z0-9０-９]{{0,7}}(?: {_NUMBER})?)")
_OPEN, _CLOSE = r"[【\[［〔]", r"[】\]］〕]"
_LEAD_TS = re.compile(rf"{_WS}*(?:{_TS_WRAPPED}{_WS}*|{_TS_BARE}(?:{_WS}+|$))")
_SENTENCE_END = re.compile(r"(?:[。！？；!?;]+|…+|\.{3,})[”’」』）)\]】\"']*")


@lru_cache(maxsize=32)
def _patterns(extra: tuple[str, ...]) -> tuple[tuple[str, re.Pattern], ...]:
    """(style, pattern) pairs tried in order on each line; ``extra`` are labels given by the user."""
    name = _NAME if not extra else "(?:" + "|".join(re.escape(x) for x in extra) + f"|{_NAME})"
    lead = rf"^{_WS}*(?:(?P<ts>{_TS}){_WS}*)?"
    return (
        ("header", re.compile(rf"^{_WS}*(?:{_OPEN}(?P<label>{name}){_CLOSE}|(?P<plain>{name}))"
                              rf"{_WS}*(?P<ts>{_TS}){_WS}*[:：]?{_WS}*$")),
        ("header-ts", re.compile(rf"^{_WS}*(?P<ts>{_TS}){_WS}*(?:{_OPEN}(?P<label>{name}){_CLOSE}|(?P<plain>{name}))"
                                 rf"{_WS}*[:：]?{_WS}*$")),
        ("bracket", re.compile(rf"{lead}(?P<open>{_OPEN})(?P<label>{name}){_CLOSE}"
                               rf"(?:{_WS}*(?P<ts2>{_TS}))?{_WS}*[:：]?")),
        ("colon", re.compile(rf"{lead}(?P<label>{name})(?:{_WS}*(?P<ts2>{_TS}))?{_WS}*[:：]")),
        ("header-bare", re.compile(rf"^{_WS}*(?P<label>{name}){_WS}*$")),
    )


def _norm(label: str) -> str:
    """A label as compared and reported: NFKC (full-width ``Ａ`` -> ``A``), inner spaces collapsed."""
    return " ".join(unicodedata.normalize("NFKC", label).split())


def _is_bare(ts: str | None) -> bool:
    return bool(ts) and ts.lstrip(" \t\u3000")[:1].isdigit()


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


def parse_speakers(spec: str) -> dict[str, str | None]:
    """Speaker labels and roles from text such as ``"A=interviewer,B=participant"`` (as ``--speakers`` takes it).

    A label without ``=role`` is accepted as a speaker and keeps its usual role.

    >>> parse_speakers("A=interviewer, B=participant，李阿姨")
    {'A': 'interviewer', 'B': 'participant', '李阿姨': None}
    """
    out: dict[str, str | None] = {}
    for item in re.split(r"[,，;；]", spec):
        if not item.strip():
            continue
        label, sep, role = item.partition("=")
        label = _norm(label)
        if not label:
            raise FormatError(f"A speaker label is empty in {spec!r}. Write e.g. 'A=interviewer,B=participant'.",
                              where="speakers")
        out[label] = _check_role(label, role) if sep else None
    if not out:
        raise FormatError("No speaker labels given. Write e.g. 'A=interviewer,B=participant'.", where="speakers")
    return out


def _check_role(label: str, role: str | None) -> str | None:
    if role is None or not role.strip():
        return None
    role = role.strip().lower()
    if role not in ROLES:
        raise FormatError(f"Unknown role {role!r} for speaker {label!r}: use interviewer or participant "
                          "(e.g. 'A=interviewer,B=participant').", where="speakers")
    return role


def _speaker_map(speakers) -> dict[str, str | None]:
    if speakers is None:
        return {}
    if isinstance(speakers, str):
        return parse_speakers(speakers)
    if isinstance(speakers, Mapping):
        return {_norm(k): _check_role(_norm(k), v) for k, v in speakers.items()}
    if isinstance(speakers, Iterable):
        return {_norm(k): None for k in speakers}
    raise TypeError(f"speakers must be a mapping label -> role, labels or a string, got {type(speakers).__name__}")


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


@dataclass
class _Line:
    start: int
    body: str
    style: str | None = None  # label style when the line carries a label candidate
    label: str = ""
    content: int = 0  # where the text after the label (and its timestamps) starts, within the line
    bare: bool = False  # the label's timestamp is bare and needs the document to be timestamped
    ts: str = ""  # a timestamp before or in the label
    in_label: bool = False  # a timestamp between label and colon: ``张三(00:05):`` (a speaker even once)
    post_ts: re.Match | None = None  # a timestamp right after the label
    lead_ts: re.Match | None = None  # a timestamp leading a line without a label


def _scan(text: str, speakers: dict[str, str | None]) -> tuple[list[_Line], set[str], bool]:
    """Lines with their label candidates; the labels accepted as speakers; whether the text is timestamped."""
    patterns = _patterns(tuple(sorted(speakers, key=len, reverse=True)))
    lines = []
    for start, body in _line_spans(text):
        line = _Line(start, body)
        lines.append(line)
        if not body.strip():
            continue
        for style, pat in patterns:
            m = pat.match(body)
            if not m:
                continue
            label = m.group("label") or (m.groupdict().get("plain") or "")
            ts = m.groupdict().get("ts") or m.groupdict().get("ts2") or ""
            if style == "bracket" and m.group("open") != "【":
                style = "square"
            line.style, line.label, line.ts = style, _norm(label), ts
            line.bare = _is_bare(m.groupdict().get("ts")) or _is_bare(m.groupdict().get("ts2"))
            line.in_label = style == "colon" and bool(m.group("ts2"))
            line.content = len(body) if style.startswith("header") else m.end()
            if not style.startswith("header"):
                post = _LEAD_TS.match(body, line.content)
                line.post_ts = post if post and post.end() > line.content else None
            break
        line.lead_ts = _LEAD_TS.match(body)
    counts = Counter(x.label for x in lines if x.style)
    n_ts = sum(1 for x in lines if x.ts or x.lead_ts or x.post_ts)
    timestamped = n_ts >= 2

    def strong(label: str) -> bool:
        return label in speakers or label in KNOWN_SPEAKERS or bool(_NUMBERED.fullmatch(label))

    # 【…】 also heads notes and sections (【说明】): by count only when two or more such labels alternate
    brackets = {x.label for x in lines if x.style == "bracket" and counts[x.label] >= 2}
    by_count = {"colon", "header"} | ({"bracket"} if len(brackets) >= 2 else set())
    accepted = set()
    for x in lines:
        if not x.style:
            continue
        ok = strong(x.label) or x.in_label or (x.style in by_count and counts[x.label] >= 2)
        if x.style == "header-bare" and x.label not in speakers and len(x.label) == 1 and x.label.isascii():
            ok = False  # "A" alone on a line is more often an answer than a speaker
        if ok and x.bare and not timestamped and not strong(x.label):
            ok = False
        if ok:
            accepted.add(x.label)
        else:
            x.style = None
    return lines, accepted, timestamped


def _roles(labels: Iterable[str], speakers: dict[str, str | None]) -> dict[str, tuple[str, str]]:
    """label -> (role, source): source is "given", "layout" (Q with A: A answers), "known" or "assumed"."""
    labels = list(labels)
    qa = "Q" in labels and "A" in labels
    out = {}
    for label in labels:
        if speakers.get(label):
            out[label] = (speakers[label], "given")
        elif qa and label in ("Q", "A"):
            out[label] = ("interviewer" if label == "Q" else "participant", "layout")
        elif label in KNOWN_SPEAKERS or label.lower() in ROLES:
            out[label] = (speaker_role(label), "known")
        else:
            out[label] = (speaker_role(label), "assumed")
    return out


def segment_text(
    text: str,
    document: str,
    *,
    max_chars: int | None = 200,
    speakers: Mapping[str, str | None] | Iterable[str] | str | None = None,
    headings: Iterable[Heading] | None = None,
) -> list[Segment]:
    """Split one transcript into segments, each knowing the section (headings) it stands under.

    Parameters
    ----------
    text : str
        The whole transcript, as decoded from its file (line endings kept; offsets count characters of it).
    document : str
        The document name given to every segment.
    max_chars : int or None
        Turns longer than this are split into sentences (ids ``"turn.sentence"``); None keeps whole turns.
    speakers : mapping label -> role, labels, or str, optional
        Labels to accept as speakers in addition to the known roles, numbered speakers and labels used on two or
        more lines. A mapping gives their roles, ``"interviewer"`` or ``"participant"`` (None: the usual role);
        the segments of a label with a given role carry the role as their speaker, which is what the model and
        the saturation check read. A string is read by :func:`parse_speakers` (``"A=interviewer,B=participant"``).
        In a ``Q:``/``A:`` transcript, ``A`` answers: its segments are the participant's.
    headings : iterable of Heading, optional
        Headings known from elsewhere (a Word file's Heading styles), besides those found in the text
        (:func:`autocode.section.find_headings`). They set each segment's ``section`` and change nothing else.

    Returns
    -------
    list of Segment
        In document order; a document with no text gives an empty list.

    Raises
    ------
    FormatError
        For a role other than interviewer or participant.

    Examples
    --------
    >>> t = "[00:00:05] 訪談者：您好。\\n[00:00:09] 受訪者：你好。"
    >>> [(s.speaker, s.text) for s in segment_text(t, "D")]
    [('訪談者', '您好。'), ('受訪者', '你好。')]
    >>> [(s.speaker, s.text) for s in segment_text("A: 您好。\\nB: 你好。", "D", speakers={"A": "participant"})]
    [('participant', '您好。'), ('B', '你好。')]
    """
    if text.startswith("\ufeff"):
        raise ValueError("Strip the BOM before segmenting (read_documents does).")
    given = _speaker_map(speakers)
    lines, accepted, timestamped = _scan(text, given)
    roles = _roles(accepted, given)
    shown = {label: (role if source in ("given", "layout") else label) for label, (role, source) in roles.items()}
    any_label = bool(accepted)

    turns: list[list] = []  # [speaker, start, end]
    current: list | None = None  # the turn that unlabelled lines continue
    speaker = ""
    for x in lines:
        body, start = x.body, x.start
        if not body.strip():
            if not any_label:
                current = None  # paragraph break
            continue
        if x.style:
            speaker = shown[x.label]
            content = x.content
            if x.post_ts and (timestamped or not _is_bare(x.post_ts.group())):
                content = x.post_ts.end()
            current = [speaker, start + content, start + len(body)]
            turns.append(current)
        elif x.lead_ts and (timestamped or not _is_bare(x.lead_ts.group())):
            # a timestamped line without a label: a new segment of the current speaker
            if x.lead_ts.end() >= len(body.rstrip()):
                current = None  # a timestamp alone on its line
                continue
            current = [speaker if any_label else "", start + x.lead_ts.end(), start + len(body)]
            turns.append(current)
            if not any_label:
                current = None
        elif any_label and current is not None:
            current[2] = start + len(body)  # continuation line of the current turn
        elif any_label:
            current = [speaker, start, start + len(body)]
            turns.append(current)
        else:
            turns.append(["", start, start + len(body)])
    segments: list[Segment] = []
    n = 0
    for spk, a, b in turns:
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
                    segments.append(Segment(document, f"{n}.{k}", text[sa:sb], spk, sa, sb))
                continue
        segments.append(Segment(document, str(n), text[a:b], spk, a, b))
    found = merge_headings(find_headings(text), headings or ())
    if found:
        paths = section_paths([s.start for s in segments], found)
        segments = [replace(s, section=p) if p else s for s, p in zip(segments, paths)]
    return segments


@dataclass(frozen=True)
class Layout:
    """The layout :func:`segment_text` finds in a transcript (see :func:`detect_layout`).

    Attributes
    ----------
    styles : tuple of str
        How speakers are marked, in order of frequency: ``"colon"`` (``访谈者：…``), ``"bracket"``
        (``【访谈者】…``), ``"header"`` (``说话人1 00:37`` on its own line, the text below); empty when none.
    speakers : dict
        label -> role (``"interviewer"``/``"participant"``) as the model and the saturation check use it.
    assumed : tuple of str
        Labels whose role is a guess (not a known role, not given): check them, or give ``speakers=``.
    timestamps : str
        An example of the timestamps left out of the text, ``""`` when none.
    turns, header_lines : int
        Lines that start a speaker turn; of those, header lines.
    line_ends : str
        ``"LF"``, ``"CRLF"``, ``"CR"``, ``"mixed"`` or ``""`` (a single line).
    """

    styles: tuple[str, ...] = ()
    speakers: dict = field(default_factory=dict)
    assumed: tuple[str, ...] = ()
    timestamps: str = ""
    turns: int = 0
    header_lines: int = 0
    line_ends: str = ""

    def describe(self) -> str:
        """One line for a person to check.

        >>> detect_layout("Q: 您好？\\nA: 你好。").describe()
        'speaker labels (Q: text); speakers Q=interviewer, A=participant'
        """
        if not self.speakers:
            how = "no speaker labels: one segment per paragraph"
        else:
            first = next(iter(self.speakers))
            forms = {"colon": f"{first}: text", "bracket": f"【{first}】text",
                     "header": f"'{first}{' 00:00' if self.timestamps else ''}' on its own line, then the text"}
            how = (f"speaker {'header lines' if self.styles[0] == 'header' else 'labels'} "
                   f"({'; '.join(forms[s] for s in self.styles)}); speakers ")
            how += ", ".join(f"{label}={role}" + ("?" if label in self.assumed else "")
                             for label, role in self.speakers.items())
            if self.assumed:
                how += " (?: role assumed, name it with --speakers)"
        if self.timestamps:
            how += f"; timestamps such as {self.timestamps} left out of the text"
        return how


def detect_layout(text: str, *, speakers: Mapping[str, str | None] | Iterable[str] | str | None = None) -> Layout:
    """The layout of a transcript as :func:`segment_text` reads it, for a person to check.

    >>> lay = detect_layout("说话人1 00:37\\n今天聊聊社区。\\n说话人2 00:41\\n好的。\\n")
    >>> lay.styles, lay.speakers, lay.assumed, lay.header_lines, lay.timestamps
    (('header',), {'说话人1': 'participant', '说话人2': 'participant'}, ('说话人1', '说话人2'), 2, '00:37')
    """
    text = text.lstrip("\ufeff")
    given = _speaker_map(speakers)
    lines, accepted, timestamped = _scan(text, given)
    order = list(dict.fromkeys(x.label for x in lines if x.style))
    roles = _roles(order, given)
    styles = Counter("header" if x.style.startswith("header") else "bracket" if x.style in ("bracket", "square")
                     else "colon" for x in lines if x.style)
    ts = ""
    for x in lines:
        if x.style and x.ts and (timestamped or not x.bare):
            ts = x.ts.strip()
        elif x.style and x.post_ts and (timestamped or not _is_bare(x.post_ts.group())):
            ts = x.post_ts.group().strip()
        elif not x.style and x.lead_ts and (timestamped or not _is_bare(x.lead_ts.group())):
            ts = x.lead_ts.group().strip()
        if ts:
            break
    ends = {"\r\n" if "\r\n" in m else m for m in re.findall(r"\r\n|\r|\n", text)}
    line_ends = {frozenset(): "", frozenset({"\n"}): "LF", frozenset({"\r\n"}): "CRLF",
                 frozenset({"\r"}): "CR"}.get(frozenset(ends), "mixed")
    return Layout(
        styles=tuple(s for s, _ in styles.most_common()),
        speakers={label: role for label, (role, _) in roles.items()},
        assumed=tuple(label for label, (_, source) in roles.items() if source == "assumed"),
        timestamps=ts,
        turns=sum(styles.values()),
        header_lines=styles.get("header", 0),
        line_ends=line_ends,
    )


def describe_layouts(documents: Iterable[tuple[str, str]], *,
                     speakers: Mapping[str, str | None] | Iterable[str] | str | None = None,
                     max_names: int = 5) -> list[str]:
    """One line per layout found among ``(name, text)`` documents, naming the documents that have it.

    >>> docs = [("P01", "问：好吗？\\n答：好。"), ("P02", "问：在吗？\\n答：在。"), ("P03", "社区很好。")]
    >>> for line in describe_layouts(docs):
    ...     print(line)
    layout of P01, P02: speaker labels (问: text); speakers 问=interviewer, 答=participant
    layout of P03: no speaker labels: one segment per paragraph
    """
    groups: dict[str, list[str]] = {}
    for name, text in documents:
        groups.setdefault(detect_layout(text, speakers=speakers).describe(), []).append(name)
    return layout_lines(groups, max_names)


def layout_lines(groups: Mapping[str, list[str]], max_names: int = 5) -> list[str]:
    """The lines of :func:`describe_layouts` from layout description -> document names (for a caller that
    reads documents one at a time)."""
    out = []
    for how, names in groups.items():
        shown = ", ".join(names[:max_names]) + (f" (+{len(names) - max_names} more)" if len(names) > max_names else "")
        out.append(f"layout of {shown}: {how}")
    return out
