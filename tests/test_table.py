"""The canonical coded table document,segment,speaker,text,coder,codes: reading, writing, errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autocode import CodebookError, CodedCorpus, FormatError, Segment, read_coded, read_segments, write_coded
from autocode.io.table import split_codes

HEADER = "document,segment,speaker,text,coder,codes\n"
ROWS_E = (
    "P01,1,访谈者,您好，请介绍一下社区。,E,\n"
    "P01,2,受访者,我们社区有党支部。,E,party\n"
    'P01,3,受访者,"议事会每月开，大家投票。",E,council;service\n'
)
ROWS_A = (
    "P01,1,访谈者,您好，请介绍一下社区。,A,\n"
    "P01,2,受访者,我们社区有党支部。,A,party ； council\n"
)


def write(tmp_path, text, name="coded.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def test_split_codes():
    assert split_codes("a; b;；c;") == ["a", "b", "c"]
    assert split_codes("") == [] and split_codes(None) == [] and split_codes(" ; ") == []


def test_read_one_file_two_coders(tmp_path, book):
    corpus = read_coded(write(tmp_path, HEADER + ROWS_E + ROWS_A), codebook=book)
    assert corpus.coders == ["E", "A"] and corpus.codebook is book
    assert [(s.document, s.segment, s.speaker, s.text) for s in corpus.segments] == [
        ("P01", "1", "访谈者", "您好，请介绍一下社区。"),
        ("P01", "2", "受访者", "我们社区有党支部。"),
        ("P01", "3", "受访者", "议事会每月开，大家投票。"),
    ]
    assert corpus.codings("E") == [set(), {"party"}, {"council", "service"}]
    assert corpus.codings("A") == [set(), {"party", "council"}, None]  # A did not code segment 3


def test_several_files_one_per_coder(tmp_path):
    e = write(tmp_path, HEADER + ROWS_E, "e.csv")
    a = write(tmp_path, HEADER + ROWS_A, "a.csv")
    corpus = read_coded([e, a])
    assert corpus.coders == ["E", "A"] and len(corpus) == 3


def test_files_without_coder_column_are_named_after_the_file(tmp_path):
    head = "document,segment,text,codes\n"
    p1 = write(tmp_path, head + "P01,1,党支部带头。,party\n", "wang.csv")
    p2 = write(tmp_path, head + "P01,1,党支部带头。,\n", "li.csv")
    corpus = read_coded([p1, p2])
    assert corpus.coders == ["wang", "li"] and corpus.codings("li") == [set()]
    assert read_coded(p1).coders == ["coder"]
    assert read_coded(p1, coder="王").coders == ["王"]


def test_aliases_case_bom_and_extra_columns(tmp_path):
    text = "\ufeffDoc,Turn,Speaker,Content,Annotator,Labels,note\nP01,1,B,社区食堂送餐。,E,service,备注\n"
    corpus = read_coded(write(tmp_path, text))
    assert corpus.segments == [Segment("P01", "1", "社区食堂送餐。", "B")]
    assert corpus.codings("E") == [{"service"}]


def test_gbk_file_is_detected(tmp_path):
    corpus = read_coded(write(tmp_path, HEADER + ROWS_E, encoding="gbk"))
    assert corpus.segments[1].text == "我们社区有党支部。"
    with pytest.raises(FormatError, match=r"coded\.csv: Cannot decode as utf-8"):
        read_coded(tmp_path / "coded.csv", encoding="utf-8")


def test_tsv_and_jsonl(tmp_path):
    tsv = write(tmp_path, HEADER.replace(",", "\t") + "P01\t1\tB\t党支部，带头。\tE\tparty\n", "c.tsv")
    assert read_coded(tsv).segments[0].text == "党支部，带头。"
    lines = [
        {"document": "P01", "segment": "1", "text": "党支部带头。", "coder": "E", "codes": ["party", "V"]},
        {"document": "P01", "segment": 2, "text": "议事会。", "coder": "E", "codes": None, "start": 7, "end": 11,
         "suggestions": [{"code": "x"}]},
    ]
    p = write(tmp_path, "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n", "c.jsonl")
    corpus = read_coded(p)
    assert corpus.codings("E") == [{"party", "V"}, set()]
    assert corpus.segments[1] == Segment("P01", "2", "议事会。", "", 7, 11)


def test_identical_duplicate_rows_are_fine(tmp_path):
    corpus = read_coded(write(tmp_path, HEADER + ROWS_E + ROWS_E))
    assert corpus.codings("E")[2] == {"council", "service"}


def test_text_with_newlines_and_quotes(tmp_path):
    text = HEADER + 'P01,1,B,"第一行，\r\n第二行""引号""",E,party\n'
    assert read_coded(write(tmp_path, text)).segments[0].text == '第一行，\r\n第二行"引号"'


def test_read_segments_ignores_codes(tmp_path):
    p = write(tmp_path, "document,segment,speaker,text\nP01,1,B,党支部带头。\nP01,2,A,是吗？\n")
    segs = read_segments(p)
    assert [s.key for s in segs] == [("P01", "1"), ("P01", "2")]
    assert read_segments(write(tmp_path, HEADER + ROWS_E + ROWS_A, "x.csv"))[2].segment == "3"


def test_write_read_round_trip(tmp_path, book):
    segs = [
        Segment("P01", "1", "您好，\n请问“社区”怎么样？", "访谈者", 4, 17),
        Segment("P01", "2", "党支部带头；议事会投票。", "受访者", 22, 34),
        Segment("P02", "1", "网格员上门, 为老人服务。", "B"),
        Segment("P02", "2", "没人编码的段落。", ""),
    ]
    corpus = CodedCorpus(segs, {
        "E": {("P01", "1"): set(), ("P01", "2"): {"council", "party"}, ("P02", "1"): {"service"}},
        "A": {("P01", "2"): {"party"}},
    }, codebook=book)
    write_coded(tmp_path / "out.csv", corpus)
    back = read_coded(tmp_path / "out.csv", codebook=book)
    assert back.segments == corpus.segments
    assert back.coders == corpus.coders
    for c in corpus.coders:
        assert back.codings(c) == corpus.codings(c)
    # codes in codebook order
    assert "P01,2,受访者,党支部带头；议事会投票。,E,party;council,22,34" in (tmp_path / "out.csv").read_text("utf-8")


def test_write_without_offsets_has_canonical_columns(tmp_path, coded):
    write_coded(tmp_path / "out.csv", coded)
    text = (tmp_path / "out.csv").read_text("utf-8")
    assert text.splitlines()[0] == "\ufeff" + HEADER.strip()  # a BOM, as on every CSV autocode writes
    back = read_coded(tmp_path / "out.csv")
    assert back.segments == coded.segments and back.codings("A") == coded.codings("A")


# -- errors ------------------------------------------------------------------------------------------------

def test_missing_column(tmp_path):
    p = write(tmp_path, "document,segment,speaker,coder,codes\nP01,1,B,E,party\n")
    with pytest.raises(FormatError, match=r"coded\.csv, row 1: Missing column\(s\) 'text'; the header is .*"
                                          r"Expected document,segment,speaker,text,coder,codes\. The segment text"):
        read_coded(p)


def test_missing_codes_column(tmp_path):
    p = write(tmp_path, "document,segment,text\nP01,1,x\n")
    with pytest.raises(FormatError, match=r"Missing column\(s\) 'codes'"):
        read_coded(p)


def test_unknown_code_names_file_row_and_close_ids(tmp_path, book):
    p = write(tmp_path, HEADER + ROWS_E + "P01,4,受访者,居民参与。,E,councel\n")
    with pytest.raises(CodebookError, match=r"coded\.csv, row 5: Unknown code 'councel': it is not in the codebook\. "
                                            r"Did you mean 'council'\?.*Add it to the codebook or correct the id"):
        read_coded(p, codebook=book)


def test_unknown_code_in_jsonl_names_the_line(tmp_path, book):
    p = write(tmp_path, "\n" + json.dumps({"document": "P", "segment": "1", "text": "x", "codes": ["partyy"]}),
              "c.jsonl")
    with pytest.raises(CodebookError, match=r"c\.jsonl, line 2: Unknown code 'partyy'.*Did you mean 'party'"):
        read_coded(p, codebook=book)


def test_same_segment_with_different_texts(tmp_path):
    e = write(tmp_path, HEADER + ROWS_E, "e.csv")
    a = write(tmp_path, HEADER + ROWS_A.replace("我们社区有党支部。", "我们社区有党支部"), "a.csv")
    with pytest.raises(FormatError, match=r"a\.csv, row 3: Segment P01/2 has a different text than at .*e\.csv, row 3\. "
                                          r"Rows of the same segment"):
        read_coded([e, a])


def test_conflicting_duplicate_rows(tmp_path):
    p = write(tmp_path, HEADER + ROWS_E + "P01,2,受访者,我们社区有党支部。,E,council\n")
    with pytest.raises(FormatError, match=r"coded\.csv, row 5: Coder 'E' has two rows for segment P01/2 with "
                                          r"different codes\. Keep one row per segment per coder\."):
        read_coded(p)


def test_more_fields_than_header(tmp_path):
    p = write(tmp_path, HEADER + "P01,1,B,我们社区有党支部,还有议事会。,E,party\n")
    with pytest.raises(FormatError, match=r"coded\.csv, row 2: The row has 7 field\(s\), the header has 6\. "
                                          r"Quote texts that contain ','"):
        read_coded(p)


@pytest.mark.parametrize("content", ["", "\ufeff", " \n\r\n"])
def test_empty_file(tmp_path, content):
    with pytest.raises(FormatError, match=r"coded\.csv: The file is empty\. Expected a header with document, segment"):
        read_coded(write(tmp_path, content))


def test_header_only(tmp_path):
    with pytest.raises(FormatError, match=r"coded\.csv: No rows below the header\."):
        read_coded(write(tmp_path, HEADER))


def test_empty_document_or_segment(tmp_path):
    with pytest.raises(FormatError, match=r"coded\.csv, row 3: Empty 'document' or 'segment'"):
        read_coded(write(tmp_path, HEADER + "P01,1,B,x,E,\n,2,B,y,E,\n"))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.csv: File not found\. Check the path\."):
        read_coded(tmp_path / "nope.csv")
    with pytest.raises(FormatError, match=r"This is a folder, not a table"):
        read_coded(tmp_path)
    with pytest.raises(FormatError, match=r"No input files given\."):
        read_coded([])


def test_broken_or_old_spreadsheet_is_refused_with_a_hint(tmp_path):
    p = write(tmp_path, b"PK\x03\x04 workbook", "coded.xlsx")
    with pytest.raises(FormatError, match=r"coded\.xlsx: Not a zip archive .*An Excel \.xlsx file is a zip archive: "
                                          r"save it again from Excel as \.xlsx\."):
        read_coded(p)
    p = write(tmp_path, b"\xd0\xcf\x11\xe0 workbook", "coded.xls")
    with pytest.raises(FormatError, match=r"coded\.xls: Old Excel \.xls and OpenDocument \.ods workbooks are not "
                                          r"read\. Save the sheet as \.xlsx or as CSV UTF-8\."):
        read_coded(p)


def test_undecodable_file(tmp_path):
    p = write(tmp_path, HEADER.encode() + b"P01,1,B,\x80\xff\x80,E,\n")
    with pytest.raises(FormatError, match=r"coded\.csv: Cannot decode the file as UTF-8, GB18030 or Big5"):
        read_coded(p)


def test_invalid_jsonl(tmp_path):
    p = write(tmp_path, '{"document": "P01", "segment": "1", "text": "x", "codes": ""}\n{"document": \n', "c.jsonl")
    with pytest.raises(FormatError, match=r"c\.jsonl, line 2: Invalid JSON: Expecting value\."):
        read_coded(p)
    p = write(tmp_path, '\n["P01", "1", "x"]\n', "d.jsonl")
    with pytest.raises(FormatError, match=r"d\.jsonl, line 2: Expected a JSON object per line .* found list\."):
        read_coded(p)


# -- property: write then read gives the same corpus -------------------------------------------------------

_ID = st.text("P0123456789abc-_.社区", min_size=1, max_size=6).filter(lambda s: s.strip() == s)
_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@st.composite
def corpora(draw):
    keys = draw(st.lists(st.tuples(_ID, _ID), min_size=1, max_size=8, unique=True))
    segs = [Segment(d, s, draw(_TEXT), draw(st.sampled_from(["", "访谈者", "B"])),
                    *draw(st.one_of(st.just((None, None)), st.tuples(st.integers(0, 99), st.integers(100, 999)))))
            for d, s in keys]
    if draw(st.booleans()):  # either every segment has offsets or none has
        segs = [Segment(s.document, s.segment, s.text, s.speaker) for s in segs]
    coders = draw(st.lists(st.sampled_from(["E", "A", "王"]), min_size=1, max_size=3, unique=True))
    codes = st.sets(st.sampled_from(["party", "council", "service", "V", "H"]), max_size=3)
    codings = {c: {s.key: draw(codes) for s in segs if draw(st.booleans())} for c in coders}
    codings[coders[0]][segs[0].key] = draw(codes)  # someone coded something (else the file has no coder)
    return CodedCorpus(segs, codings)


@settings(max_examples=50, deadline=None, database=None)
@given(corpora())
def test_property_write_read_round_trip(tmp_path_factory, corpus):
    path = tmp_path_factory.mktemp("rt") / "coded.csv"
    write_coded(path, corpus)
    back = read_coded(path)
    assert back.segments == corpus.segments
    coders = [c for c in corpus.coders if any(x is not None for x in corpus.codings(c))]
    assert sorted(back.coders) == sorted(coders)  # in order of first appearance in the file
    for c in coders:
        assert back.codings(c) == corpus.codings(c)
