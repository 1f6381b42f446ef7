"""Transcript layouts: every fixture in tests/data/layouts/ comes out as its JSON says; --speakers and the
layout report of the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autocode import read_transcripts, segment_text
from autocode.cli import main
from autocode.exceptions import FormatError
from autocode.io import read_documents
from autocode.segment import detect_layout, parse_speakers

LAYOUTS = Path(__file__).parent / "data" / "layouts"
FIXTURES = sorted(p.stem for p in LAYOUTS.glob("*.json"))


def test_there_are_enough_layout_fixtures():
    assert len(FIXTURES) >= 12
    assert all((LAYOUTS / f"{name}.txt").is_file() for name in FIXTURES)


@pytest.mark.parametrize("name", FIXTURES)
def test_layout_fixture(name):
    """Segments, speakers and offsets as expected; the text is the original at the offsets; the layout report
    names the label style, the speakers with their roles, the timestamps and the line ends."""
    expected = json.loads((LAYOUTS / f"{name}.json").read_text(encoding="utf-8"))
    doc = read_documents(LAYOUTS / f"{name}.txt")[0]
    text = doc.text
    segs = segment_text(text, name, max_chars=expected["max_chars"], speakers=expected["speakers"])
    got = [{"segment": s.segment, "speaker": s.speaker, "text": s.text, "start": s.start, "end": s.end} for s in segs]
    assert got == expected["segments"]
    for s in segs:
        assert text[s.start:s.end] == s.text
    layout = detect_layout(text, speakers=expected["speakers"])
    want = expected["layout"]
    assert list(layout.styles) == want["styles"]
    assert layout.speakers == want["speakers"]
    assert layout.timestamps == want["timestamps"]
    assert layout.header_lines == want["header_lines"]
    assert layout.line_ends == want["line_ends"]
    assert layout.describe()


def test_crlf_fixtures_keep_their_line_ends():
    """The repository must not normalise them (tests/data/layouts/.gitattributes)."""
    assert b"\r\n" in (LAYOUTS / "header_lines_crlf.txt").read_bytes()
    assert b"\r\n" in (LAYOUTS / "traditional_crlf_blank_lines.txt").read_bytes()


def test_header_line_is_no_segment_and_timestamps_are_out_of_the_text():
    text = (LAYOUTS / "header_lines.txt").read_text(encoding="utf-8")
    segs = segment_text(text, "D")
    assert not any("00:" in s.text or s.text.startswith("说话人") for s in segs)


def test_described_layout_names_assumed_roles():
    lay = detect_layout((LAYOUTS / "header_lines.txt").read_text(encoding="utf-8"))
    assert lay.assumed == ("说话人1", "说话人2")
    assert lay.describe() == (
        "speaker header lines ('说话人1 00:00' on its own line, then the text); speakers 说话人1=participant?, "
        "说话人2=participant? (?: role assumed, name it with --speakers); timestamps such as 00:00 left out of "
        "the text")
    given = detect_layout((LAYOUTS / "header_lines.txt").read_text(encoding="utf-8"),
                          speakers="说话人1=interviewer,说话人2=participant")
    assert given.assumed == () and given.speakers == {"说话人1": "interviewer", "说话人2": "participant"}
    assert detect_layout("社区很好。\n大家满意。").describe() == "no speaker labels: one segment per paragraph"


def test_given_roles_become_the_speakers_and_count_for_the_model():
    from autocode.model import make_inputs

    text = "A: 您好，请问您在社区工作多久了？\nB: 五年。\n"
    segs = segment_text(text, "D", speakers={"A": "participant", "B": "interviewer"})
    assert [s.speaker for s in segs] == ["participant", "interviewer"]
    assert make_inputs(segs).roles == ["participant", "interviewer"]
    # a label alone (no role) is accepted as a speaker even once, and keeps its label
    segs = segment_text("访谈者：您好。\n老周：你好。\n", "D", speakers=["老周"])
    assert [s.speaker for s in segs] == ["访谈者", "老周"]
    # the label is matched whatever its width: Ａ in the text, A given
    segs = segment_text("Ａ：您好。\nＢ：你好。\n", "D", speakers={"A": "participant"})
    assert [s.speaker for s in segs] == ["participant", "B"]


def test_a_given_label_outside_the_usual_label_shapes():
    text = "受访者#1：我们小区有食堂。\n访谈者：好的。\n"
    assert [s.speaker for s in segment_text(text, "D")] == ["", "访谈者"]  # not a label: text before the first
    segs = segment_text(text, "D", speakers={"受访者#1": "participant"})
    assert [(s.speaker, s.text) for s in segs] == [("participant", "我们小区有食堂。"), ("访谈者", "好的。")]


def test_parse_speakers():
    assert parse_speakers("A=interviewer, B=Participant") == {"A": "interviewer", "B": "participant"}
    assert parse_speakers("Ａ=interviewer；李 明") == {"A": "interviewer", "李 明": None}


@pytest.mark.parametrize("spec, message", [
    ("A=boss", "speakers: Unknown role 'boss' for speaker 'A': use interviewer or participant"),
    ("=interviewer", "speakers: A speaker label is empty in '=interviewer'"),
    (" , ", "speakers: No speaker labels given. Write e.g. 'A=interviewer,B=participant'."),
])
def test_parse_speakers_errors(spec, message):
    with pytest.raises(FormatError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_speakers(spec)


def test_bad_role_in_the_library_call():
    with pytest.raises(FormatError, match="Unknown role 'moderator' for speaker 'A'"):
        segment_text("A: 你好", "D", speakers={"A": "moderator"})
    with pytest.raises(TypeError, match="speakers must be"):
        segment_text("A: 你好", "D", speakers=3)


def test_single_bare_time_at_a_line_start_stays_text():
    """One line starting with a time is content (a meeting time), not a timestamp."""
    text = "8:30 大家到齐了。\n会议开始。\n"
    assert [s.text for s in segment_text(text, "D")] == ["8:30 大家到齐了。", "会议开始。"]
    assert detect_layout(text).timestamps == ""


def test_a_name_and_a_time_once_is_not_a_header():
    text = "下午 3:30\n我们去了社区食堂。\n"
    assert [s.text for s in segment_text(text, "D")] == ["下午 3:30", "我们去了社区食堂。"]


def test_annotation_in_square_brackets_is_no_speaker():
    text = "访谈者：您觉得呢？\n受访者：[笑] 还行吧。\n[笑] 真的还行。\n[笑] 就这样。\n"
    segs = segment_text(text, "D")
    assert [s.speaker for s in segs] == ["访谈者", "受访者"]
    assert segs[1].text == "[笑] 还行吧。\n[笑] 真的还行。\n[笑] 就这样。"


def test_read_transcripts_passes_speakers(tmp_path):
    (tmp_path / "P01.txt").write_text("甲：您好。\n乙：你好。\n", encoding="utf-8")
    segs = read_transcripts(tmp_path, speakers={"甲": "interviewer", "乙": "participant"})
    assert [s.speaker for s in segs] == ["interviewer", "participant"]


# -- CLI ------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A small model trained through the CLI on a hand-written coded table."""
    d = tmp_path_factory.mktemp("cli")
    (d / "codebook.csv").write_text("id,name,description,parent\nparty,党建,,\ncouncil,议事会,,\n", encoding="utf-8")
    rows = ["document,segment,speaker,text,coder,codes"]
    party = ["党支部建在小区", "党员亮身份带头服务", "支部书记牵头", "党小组开会", "党员志愿者巡逻"]
    council = ["议事会每月开一次", "居民投票决定停车位", "议事会讨论加装电梯", "大家在议事会上协商", "议事会定了规矩"]
    for i, (p, c) in enumerate(zip(party, council)):
        rows.append(f"D{i},1,受访者,{p},E,party")
        rows.append(f"D{i},2,受访者,{c},E,council")
    (d / "coded.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["-q", "train", "--codebook", str(d / "codebook.csv"), "--data", str(d / "coded.csv"),
                 "--out", str(d / "model"), "--folds", "2", "--min-examples", "2", "--no-tune"]) == 0
    return d


def test_cli_precode_reports_layouts_and_uses_speakers(model_dir, tmp_path, capsys):
    import csv

    (tmp_path / "P01.txt").write_text("甲：党支部怎么建的？\n乙：建在小区里。\n", encoding="utf-8")
    (tmp_path / "P02.txt").write_text("甲：议事会开吗？\n乙：每月开一次。\n", encoding="utf-8")
    out = tmp_path / "pre.csv"
    capsys.readouterr()
    assert main(["precode", "--model", str(model_dir / "model"), str(tmp_path / "P01.txt"),
                 str(tmp_path / "P02.txt"), "--out", str(out), "--speakers", "甲=interviewer,乙=participant"]) == 0
    err = capsys.readouterr().err
    assert ("layout of P01, P02: speaker labels (甲: text); speakers 甲=interviewer, 乙=participant\n") in err
    with open(out, encoding="utf-8-sig", newline="") as f:
        assert [r["speaker"] for r in csv.DictReader(f)] == ["interviewer", "participant"] * 2
    # -q: no layout lines
    assert main(["-q", "precode", "--model", str(model_dir / "model"), str(tmp_path / "P01.txt"),
                 "--out", str(out)]) == 0
    assert "layout" not in capsys.readouterr().err


def test_cli_bad_speakers_is_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "P01.txt").write_text("甲：你好\n", encoding="utf-8")
    assert main(["precode", "--model", str(model_dir / "model"), str(tmp_path / "P01.txt"),
                 "--out", str(tmp_path / "o.csv"), "--speakers", "甲=boss"]) == 1
    err = capsys.readouterr().err
    assert err == ("autocode precode: error: speakers: Unknown role 'boss' for speaker '甲': use interviewer or "
                   "participant (e.g. 'A=interviewer,B=participant').\n")


def test_a_name_alone_on_its_line_is_text_unless_a_known_or_given_speaker():
    text = "王书记\n小区里有三个党小组。\n王书记\n欢迎参与。\n"
    assert [(s.speaker, s.text) for s in segment_text(text, "D")] == [
        ("", "王书记"), ("", "小区里有三个党小组。"), ("", "王书记"), ("", "欢迎参与。")]
    assert [(s.speaker, s.text) for s in segment_text(text, "D", speakers=["王书记"])] == [
        ("王书记", "小区里有三个党小组。"), ("王书记", "欢迎参与。")]
    assert detect_layout(text, speakers=["王书记"]).describe() == (
        "speaker header lines ('王书记' on its own line, then the text); speakers 王书记=participant? "
        "(?: role assumed, name it with --speakers)")


def test_bracketed_note_is_no_speaker():
    """【说明】 heading notes, even twice, is text; two bracketed names that alternate are speakers."""
    text = "【说明】以下为虚构材料。\n访谈者：您好。\n受访者：你好。\n【说明】访谈到此结束。\n"
    assert [s.speaker for s in segment_text(text, "D")] == ["", "访谈者", "受访者"]
    text = "【老周】您好。\n【小李】你好。\n【老周】最近忙吗？\n【小李】还行。\n"
    assert [s.speaker for s in segment_text(text, "D")] == ["老周", "小李", "老周", "小李"]


def test_a_single_letter_alone_on_its_line_is_text():
    text = "访谈者：您选哪一项？\n受访者：\nA\n访谈者：为什么？\n"
    segs = segment_text(text, "D")
    assert [(s.speaker, s.text) for s in segs] == [("访谈者", "您选哪一项？"), ("受访者", "A"), ("访谈者", "为什么？")]


def test_speakers_reach_the_training_data(tmp_path):
    """--speakers applies to coded tables too: a label given a role is read as that role."""
    from autocode import Code, Codebook, read_coded

    book = Codebook([Code("x")])
    path = tmp_path / "coded.csv"
    path.write_text("document,segment,speaker,text,coder,codes\nD,1,甲,问一个问题,E,\nD,2,乙,回答,E,x\n",
                    encoding="utf-8")
    coded = read_coded(path, codebook=book, speakers="甲=interviewer,乙=participant")
    assert [s.speaker for s in coded.segments] == ["interviewer", "participant"]
    assert [s.speaker for s in read_coded(path, codebook=book).segments] == ["甲", "乙"]
