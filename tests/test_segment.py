"""Transcripts -> segments: speaker turns, sentences of long turns, character offsets."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autocode import segment_text
from autocode.segment import KNOWN_SPEAKERS, speaker_role, split_sentences


def _check_offsets(text, segments):
    """Every segment is the verbatim slice of the text at its offsets, trimmed, and in document order."""
    end = 0
    for s in segments:
        assert text[s.start : s.end] == s.text
        assert s.text and s.text == s.text.strip()
        assert s.start >= end
        end = s.end


def test_turns_with_role_labels():
    text = "访谈者：您好，请介绍一下社区。\n受访者：我们社区有党支部。\n问：议事会多久开一次？\n答：每月一次。\n"
    segs = segment_text(text, "D1")
    assert [(s.document, s.segment, s.speaker, s.text) for s in segs] == [
        ("D1", "1", "访谈者", "您好，请介绍一下社区。"),
        ("D1", "2", "受访者", "我们社区有党支部。"),
        ("D1", "3", "问", "议事会多久开一次？"),
        ("D1", "4", "答", "每月一次。"),
    ]
    _check_offsets(text, segs)


def test_ascii_labels_colon_kinds_and_spaces():
    text = "A: 社区怎么组织活动？\r\n B ：  党员带头。\r\nA：还有呢？\r\nB:\u3000居民议事。"
    segs = segment_text(text, "D")
    assert [(s.speaker, s.text) for s in segs] == [
        ("A", "社区怎么组织活动？"), ("B", "党员带头。"), ("A", "还有呢？"), ("B", "居民议事。"),
    ]
    _check_offsets(text, segs)


def test_name_label_needs_two_lines():
    text = "王书记：小区里有三个党小组。\n李阿姨：我常去议事会。\n王书记：欢迎大家参与。\n他说：这个不算发言人。\n"
    segs = segment_text(text, "D")
    # 王书记 occurs twice: a speaker. 李阿姨 and 他说 occur once and are no known role: they continue the turn.
    assert [s.speaker for s in segs] == ["王书记", "王书记"]
    assert segs[0].text == "小区里有三个党小组。\n李阿姨：我常去议事会。"
    assert segs[1].text == "欢迎大家参与。\n他说：这个不算发言人。"
    _check_offsets(text, segs)


def test_extra_speakers_are_accepted():
    text = "访谈者：您是哪年来的？\n李阿姨：二〇一五年。\n"
    segs = segment_text(text, "D", speakers={"李阿姨"})
    assert [s.speaker for s in segs] == ["访谈者", "李阿姨"]


def test_continuation_and_blank_lines():
    text = "问：说说议事会。\n\n答：议事会每月开，\n大家投票决定停车位。\n\n   \n问：好的。"
    segs = segment_text(text, "D")
    assert [(s.segment, s.speaker) for s in segs] == [("1", "问"), ("2", "答"), ("3", "问")]
    assert segs[1].text == "议事会每月开，\n大家投票决定停车位。"
    _check_offsets(text, segs)


def test_label_only_line_takes_the_next_line():
    text = "受访者：\n我们社区有食堂。\n访谈者：谢谢。"
    segs = segment_text(text, "D")
    assert [(s.speaker, s.text) for s in segs] == [("受访者", "我们社区有食堂。"), ("访谈者", "谢谢。")]
    _check_offsets(text, segs)


def test_text_before_the_first_label_is_its_own_segment():
    text = "2023年5月 访谈记录\n问：您好。\n答：您好。"
    segs = segment_text(text, "D")
    assert [(s.speaker, s.text) for s in segs] == [("", "2023年5月 访谈记录"), ("问", "您好。"), ("答", "您好。")]


def test_no_labels_gives_paragraphs():
    text = "社区党支部带领居民。\r\n\r\n网格员上门服务。\r\n议事会每月开。\r\n"
    segs = segment_text(text, "D")
    assert [s.text for s in segs] == ["社区党支部带领居民。", "网格员上门服务。", "议事会每月开。"]
    assert all(s.speaker == "" for s in segs)
    _check_offsets(text, segs)


def test_long_turn_is_split_into_sentences():
    text = "问：说说看。\n答：党支部带头。议事会每月开！大家满意吗？“满意！”还有……食堂；送餐\n"
    segs = segment_text(text, "D", max_chars=10)
    assert [(s.segment, s.text) for s in segs] == [
        ("1", "说说看。"),
        ("2.1", "党支部带头。"),
        ("2.2", "议事会每月开！"),
        ("2.3", "大家满意吗？"),
        ("2.4", "“满意！”"),
        ("2.5", "还有……"),
        ("2.6", "食堂；"),
        ("2.7", "送餐"),
    ]
    assert {s.speaker for s in segs[1:]} == {"答"}
    _check_offsets(text, segs)
    assert [s.segment for s in segment_text(text, "D", max_chars=None)] == ["1", "2"]


def test_long_turn_without_sentence_end_stays_whole():
    text = "答：" + "社区" * 200
    segs = segment_text(text, "D", max_chars=20)
    assert [s.segment for s in segs] == ["1"] and segs[0].text == "社区" * 200


def test_empty_and_blank_text_give_no_segments():
    assert segment_text("", "D") == []
    assert segment_text("\n \r\n\u3000\n", "D") == []


def test_bom_is_refused():
    with pytest.raises(ValueError, match="Strip the BOM"):
        segment_text("\ufeff问：你好", "D")


def test_split_sentences_keeps_closing_quotes_and_offsets():
    t = "  他说：“好的。”然后走了!!  下次见... 再见"
    spans = split_sentences(t, offset=100)
    assert [t[a - 100 : b - 100] for a, b in spans] == ["他说：“好的。”", "然后走了!!", "下次见...", "再见"]


def test_speaker_role():
    assert speaker_role("A") == speaker_role("访谈者") == speaker_role("Interviewer") == "interviewer"
    assert speaker_role("B") == speaker_role("受访者") == speaker_role("王书记") == "participant"
    assert speaker_role("") == ""


# -- property: offsets hold for any transcript -------------------------------------------------------------

CONTENT_CHARS = "社区党支部居民议事会网格员服务老人我们的是了在有和𠮷𩸽ab12 ，、“”（）《》\u3000。！？；…"
LABELS = ["A", "B", "问", "答", "访谈者", "受访者", "王书记"]


@st.composite
def transcripts(draw):
    """A transcript built from turns, with the expected (speaker, text) of every turn.

    Labels: known roles and a name (a speaker only when it starts two or more lines); colons half- or
    full-width with optional spaces; turns over several lines; blank lines; LF, CRLF or CR line ends; no
    colon in the content, so that a continuation line never looks like a label.
    """
    n_turns = draw(st.integers(1, 8))
    turns = []
    for _ in range(n_turns):
        label = draw(st.sampled_from(LABELS))
        lines = draw(st.lists(st.text(CONTENT_CHARS, max_size=30), min_size=1, max_size=3))
        turns.append((label, lines))
    preamble = draw(st.one_of(st.none(), st.text(CONTENT_CHARS, min_size=1, max_size=20)))
    eols = st.sampled_from(["\n", "\r\n", "\r"]) if draw(st.booleans()) else st.just(draw(st.sampled_from(["\n", "\r\n"])))
    pad = st.sampled_from(["", " ", "\u3000", "  "])
    n_label = sum(1 for label, _ in turns if label == "王书记")
    accepted = set(KNOWN_SPEAKERS) | ({"王书记"} if n_label >= 2 else set())

    buf = ""
    expected: list[list] = []  # [speaker, start, end] of each turn's content

    def add_content(line: str, new_turn_speaker: str | None):
        nonlocal buf
        buf += draw(pad)
        a = len(buf) + (len(line) - len(line.lstrip()))
        buf += line
        if new_turn_speaker is not None:
            expected.append([new_turn_speaker, None, None])
        if line.strip():
            cur = expected[-1]
            if cur[1] is None:
                cur[1] = a
            cur[2] = a + len(line.strip())

    if preamble is not None:
        add_content(preamble, "")
        buf += draw(eols)
    for label, lines in turns:
        head = label + draw(pad) + draw(st.sampled_from([":", "："])) + draw(pad)
        if label in accepted:
            buf += draw(pad) + head
            add_content(lines[0], label)
        else:
            # not a speaker: the label is content, continuing the turn (or starting a speaker-less one)
            add_content(head + lines[0], None if expected else "")
        for line in lines[1:]:
            buf += draw(eols)
            if draw(st.booleans()):
                buf += draw(pad) + draw(eols)  # a blank line inside the turn
            add_content(line, None)
        buf += draw(eols)
    if draw(st.booleans()):
        buf = buf.rstrip("\r\n")
    if not any(label in accepted for label, _ in turns):
        # no speaker at all: every non-blank line is a paragraph
        return buf, [("", line.strip()) for line in buf.splitlines() if line.strip()]
    return buf, [(spk, buf[a:b]) for spk, a, b in expected if a is not None]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcripts())
def test_property_offsets_and_turns(case):
    text, turns = case
    segs = segment_text(text, "D", max_chars=None)
    _check_offsets(text, segs)
    assert [(s.speaker, s.text) for s in segs] == turns
    assert [s.segment for s in segs] == [str(i) for i in range(1, len(turns) + 1)]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcripts(), st.integers(1, 30))
def test_property_sentences_cover_their_turn(case, max_chars):
    text, turns = case
    segs = segment_text(text, "D", max_chars=max_chars)
    _check_offsets(text, segs)
    whole = segment_text(text, "D", max_chars=None)
    for turn in whole:
        parts = [s for s in segs if s.segment == turn.segment or s.segment.startswith(turn.segment + ".")]
        assert parts, turn
        assert {s.speaker for s in parts} == {turn.speaker}
        assert turn.start <= parts[0].start and parts[-1].end <= turn.end
        # the sentences hold every non-space character of the turn, in order
        assert "".join("".join(p.text.split()) for p in parts) == "".join(turn.text.split())
        if len(parts) > 1:
            assert len(turn.text) > max_chars
            assert [p.segment for p in parts] == [f"{turn.segment}.{k}" for k in range(1, len(parts) + 1)]


def test_astral_characters_and_crlf_offsets():
    text = "访谈者：𠮷野家的事？\r\n受访者：𠮷𠮷，\r\n还有𩸽。\r\n"
    segs = segment_text(text, "D")
    assert [s.text for s in segs] == ["𠮷野家的事？", "𠮷𠮷，\r\n还有𩸽。"]
    _check_offsets(text, segs)
