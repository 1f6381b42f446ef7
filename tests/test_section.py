"""Section headings: found in .txt, .md and .docx transcripts, known to every segment, used by rules."""

import csv
import zipfile

import pytest

from autocode import Code, Codebook, FormatError, Segment, read_transcripts
from autocode.cli import main
from autocode.rules import Rule, RuleSet, read_rules
from autocode.section import find_headings, section_paths
from autocode.segment import segment_text

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

TXT = """访谈编号：P07　时间：2023年5月
第一部分 基本情况
访谈者：请您介绍一下自己。
受访者：我今年四十五岁，在社区工作八年了。
一、家庭
访谈者：家里几口人？
受访者：三口人。
1. 孩子在上学
2. 老人在老家
第二部分 社区参与
访谈者：您参加过居民议事会吗？
受访者：参加过，党支部组织的。
一、我觉得挺好的，大家都愿意说话。
"""

MD = """# 访谈记录 P08

## 一、基本情况

问：您在社区住了多久？

答：十多年了。

## 二、社区参与

### （一）党建引领

问：党支部做些什么？

答：组织志愿服务。
"""


@pytest.fixture
def book():
    return Codebook([Code("bg", "基本情况"), Code("party", "组织嵌入"), Code("family", "家庭")])


def test_numbered_headings_of_a_txt_transcript():
    heads = find_headings(TXT)
    # 1. lists in an answer and a long numbered sentence ending in 。 are text, not headings
    assert [(h.level, h.title) for h in heads] == [(1, "第一部分 基本情况"), (2, "一、家庭"), (1, "第二部分 社区参与")]
    assert all(TXT[h.start:h.end] == h.title for h in heads)
    segs = segment_text(TXT, "P07")
    plain = segment_text(TXT, "P07", headings=())
    assert [(s.segment, s.text, s.start, s.end) for s in segs] == [(s.segment, s.text, s.start, s.end) for s in plain]
    by_text = {s.text[:6]: s.section for s in segs}
    assert by_text["请您介绍一下"] == "第一部分 基本情况"
    assert by_text["家里几口人？"] == "第一部分 基本情况 / 一、家庭"
    assert by_text["您参加过居民"] == "第二部分 社区参与"  # a new part closes 一、家庭
    assert segs[0].section == ""  # the header line before the first heading


def test_markdown_headings_set_sections(tmp_path):
    path = tmp_path / "P08.md"
    path.write_text(MD, encoding="utf-8")
    segs = read_transcripts(path)
    assert [(s.speaker, s.section) for s in segs if s.speaker] == [
        ("问", "访谈记录 P08 / 一、基本情况"), ("答", "访谈记录 P08 / 一、基本情况"),
        ("问", "访谈记录 P08 / 二、社区参与 / （一）党建引领"), ("答", "访谈记录 P08 / 二、社区参与 / （一）党建引领")]
    assert all(MD[s.start:s.end] == s.text for s in segs)


def _docx(path, paragraphs, styles=None):
    body = "".join(
        f'<w:p>{f"<w:pPr><w:pStyle w:val={chr(34)}{style}{chr(34)}/></w:pPr>" if style else ""}'
        f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>' for style, text in paragraphs)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>')
        if styles:
            z.writestr("word/styles.xml", f'<w:styles xmlns:w="{W}">{styles}</w:styles>')
    return path


def test_docx_heading_styles_set_sections(tmp_path):
    # Chinese Word names its heading styles "heading 1" with the style ids "1", "2"; English Word "Heading1"
    styles = ('<w:style w:type="paragraph" w:styleId="1"><w:name w:val="heading 1"/></w:style>'
              '<w:style w:type="paragraph" w:styleId="a5"><w:name w:val="Subtle"/>'
              '<w:pPr><w:outlineLvl w:val="1"/></w:pPr></w:style>')
    path = _docx(tmp_path / "P09.docx", [
        (None, "访谈记录"), ("1", "居住情况"), (None, "访谈者：住了多久？"), (None, "受访者：十年。"),
        ("1", "组织参与"), ("a5", "志愿服务"), (None, "访谈者：参加过吗？"), (None, "受访者：参加过党支部的活动。"),
        ("Heading2", "其他"), (None, "受访者：没有了。")], styles)
    segs = read_transcripts(path)
    assert [s.section for s in segs if s.speaker] == ["居住情况", "居住情况", "组织参与 / 志愿服务",
                                                      "组织参与 / 志愿服务", "组织参与 / 其他"]
    without = _docx(tmp_path / "P10.docx", [(None, "居住情况"), (None, "访谈者：住了多久？")])
    assert [s.section for s in read_transcripts(without)] == ["", ""]  # no style: plain text


def test_section_paths_without_offsets():
    heads = find_headings("# A\n文字\n## B\n文字")
    assert section_paths([None, 0, 4, 7], heads) == ["", "A", "A", "A / B"]


def test_rules_by_heading(book):
    segs = segment_text(TXT, "P07")
    rules = RuleSet([Rule("bg", "", heading="基本情况"), Rule("party", "党支部", heading="re:第二部分"),
                     Rule("family", "人", heading="家庭", speaker="participant")], book)
    m = rules.apply(segs)
    coded = {s.text[:6]: m.codes_for(i) for i, s in enumerate(segs)}
    assert coded["请您介绍一下"] == ["bg"] and coded["家里几口人？"] == ["bg"]  # interviewer: no family
    assert coded["三口人。\n1"] == ["bg", "family"]
    assert coded["参加过，党支"] == ["party"]
    i = next(i for i, s in enumerate(segs) if s.text.startswith("三口人"))
    assert m.evidence(i) == {"bg": ["第一部分 基本情况 / 一、家庭"], "family": ["人"]}
    assert m.evidence_text(i) == "bg: 第一部分 基本情况 / 一、家庭 [§基本情况] | family: 人 [人 @participant §家庭]"
    # matched after normalisation: a Traditional heading pattern finds the Simplified heading
    assert RuleSet([Rule("bg", "", heading="基本情況")], book).apply(segs).matched.any()


def test_heading_rules_from_tables_and_codebook(tmp_path, book):
    table = tmp_path / "rules.csv"
    with open(table, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["code", "pattern", "kind", "speaker", "heading"], ["bg", "", "", "", "基本情况"],
                                 ["party", "党支部", "", "", "re:社区.与"]])
    rules = read_rules(table, book)
    assert [(r.code, r.pattern, r.heading) for r in rules.rules] == [("bg", "", "基本情况"),
                                                                     ("party", "党支部", "re:社区.与")]
    book_csv = tmp_path / "codebook.csv"
    book_csv.write_text("id,name,rules\nbg,基本情况,heading:基本情况\nparty,组织嵌入,党支部\nfamily,家庭,\n",
                        encoding="utf-8")
    assert [(r.code, r.heading) for r in RuleSet.from_codebook_csv(book_csv).rules] == [("bg", "基本情况"),
                                                                                       ("party", None)]
    bad = tmp_path / "bad.csv"
    bad.write_text("code,pattern,heading\nbg,,\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"bad.csv, row 2: Rule with an empty pattern and no heading"):
        read_rules(bad, book)
    bad.write_text("code,pattern,heading\nbg,x,re:(基本\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"Rule for code 'bg': heading 're:\(基本' is not a valid regular expression"):
        read_rules(bad, book)


def test_a_table_section_column_is_read(tmp_path, book):
    from autocode.io.table import read_segments

    p = tmp_path / "segs.csv"
    p.write_text("document,segment,speaker,text,section\nD,1,受访者,三口人。,一、家庭\nD,2,受访者,好。,\n",
                 encoding="utf-8")
    segs = read_segments(p)
    assert [s.section for s in segs] == ["一、家庭", ""]
    assert RuleSet([Rule("family", "", heading="家庭")], book).apply(segs).codes_for(0) == ["family"]


def test_cli_rules_by_heading_show_their_rule(tmp_path):
    (tmp_path / "codebook.csv").write_text("id,name,rules\nbg,基本情况,heading:基本情况\nparty,组织嵌入,党支部\n",
                                           encoding="utf-8")
    (tmp_path / "P07.txt").write_text(TXT, encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["-q", "rules", "--codebook", str(tmp_path / "codebook.csv"), str(tmp_path / "P07.txt"),
                 "--out", str(out)]) == 0
    with open(out, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    got = {r["text"][:6]: (r["codes"], r["rules"]) for r in rows}
    assert got["请您介绍一下"] == ("bg", "bg: 第一部分 基本情况 [§基本情况]")
    assert got["参加过，党支"] == ("party", "party: 党支部 [党支部]")


def test_segment_section_defaults_to_empty():
    assert Segment("D", "1", "文字").section == ""


def test_a_rule_describes_itself_as_its_evidence_names_it():
    assert Rule("c", "投票选出", kind="phrase").describe() == '"投票选出"'
    assert Rule("c", "app|小程序", kind="regex", speaker="B").describe() == "re:app|小程序 @B"
    assert Rule("c", "", heading="re:第.部分").describe() == "§re:第.部分"
