"""Reading the files researchers have: encodings (Big5 told from GBK), binary files refused, Word .docx
(tables, tracked changes, what is left out) and the archive caps every zip-based format shares."""

from __future__ import annotations

import io
import random
import zipfile

import pytest

from autocode import Codebook, FormatError, read_coded, read_documents, read_transcripts
from autocode.cli import main
from autocode.io._docx import read_docx
from autocode.io._encoding import decode, score_chinese
from autocode.io._safezip import Limits
from autocode.io.inputs import read_inputs

TRAD = ("訪談者：請問社區怎麼組織居民參與？\n受訪者：黨支部帶頭，議事會每個月開一次會，大家一起討論停車位的問題。\n"
        "訪談者：網格員平時做什麼？\n受訪者：他們上門為獨居老人提供服務，也會幫忙登記居民的需求。\n")
SIMP = "访谈者：请问社区怎么组织居民参与？\n受访者：党支部带头，议事会每个月开一次会，大家一起讨论停车位的问题。\n"


def _segments(path, **kw):
    return [(s.document, s.speaker, s.text, s.start, s.end) for s in read_transcripts(path, **kw)]


# -- encodings ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("data", "encoding"), [
    (TRAD.encode("big5"), "big5"),
    (TRAD.encode("gbk"), "gb18030"),
    (TRAD.encode("utf-8"), "utf-8"),
    (b"\xef\xbb\xbf" + TRAD.encode("utf-8"), "utf-8"),
    (TRAD.encode("utf-16"), "utf-16"),
], ids=["big5", "gbk", "utf8", "utf8-bom", "utf16"])
def test_big5_gbk_and_unicode_files_of_one_text_give_the_same_segments(tmp_path, data, encoding):
    (tmp_path / "P01.txt").write_bytes(data)
    [doc] = read_documents(tmp_path / "P01.txt")
    assert doc.text == TRAD and doc.encoding == encoding
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "P01.txt").write_text(TRAD, encoding="utf-8")
    assert _segments(tmp_path / "P01.txt") == _segments(tmp_path / "ref" / "P01.txt")
    assert [s[1] for s in _segments(tmp_path / "P01.txt")] == ["訪談者", "受訪者", "訪談者", "受訪者"]


def test_simplified_gbk_is_still_gb18030(tmp_path):
    (tmp_path / "P01.txt").write_bytes(SIMP.encode("gbk"))
    [doc] = read_documents(tmp_path / "P01.txt")
    assert doc.text == SIMP and doc.encoding == "gb18030"


def test_hong_kong_big5_variant(tmp_path):
    text = "受訪者：我哋喺屋邨搞咗個議事會，街坊都好積極參與。\n"
    (tmp_path / "hk.txt").write_bytes(text.encode("big5hkscs"))
    [doc] = read_documents(tmp_path / "hk.txt")
    assert doc.text == text and doc.encoding == "big5"


def test_big5_codebook_gives_the_right_code_names(tmp_path):
    rows = "id,name,description,parent\nH,橫向共治,,\ncouncil,多元參與,居民通過議事會參與治理,H\n"
    (tmp_path / "cb.csv").write_bytes(rows.encode("big5"))
    book = Codebook.read_csv(tmp_path / "cb.csv")
    assert [c.name for c in book] == ["橫向共治", "多元參與"]
    assert book["council"].description == "居民通過議事會參與治理"
    coded = "document,segment,speaker,text,coder,codes\nP01,1,受訪者,議事會每月開會。,E,多元參與\n"
    (tmp_path / "coded.csv").write_bytes(coded.encode("big5"))
    corpus = read_coded(tmp_path / "coded.csv", codebook=book)
    assert corpus.segments[0].text == "議事會每月開會。" and corpus.codings("E") == [frozenset({"council"})]


def test_undecidable_encoding_is_an_error_naming_the_option(tmp_path):
    rng = random.Random(0)
    noise = bytes(rng.randrange(0xD8, 0xF8) if i % 2 == 0 else rng.randrange(0xA1, 0xFE) for i in range(400))
    (tmp_path / "odd.txt").write_bytes(noise)
    with pytest.raises(FormatError, match=r"odd\.txt: Cannot tell the file's encoding: it is not UTF-8, and no "
                                          r"Chinese encoding reads it clearly best \(share of common characters: "
                                          r".*\)\. Name it with --encoding \(e\.g\. --encoding big5"):
        read_documents(tmp_path / "odd.txt")
    [doc] = read_documents(tmp_path / "odd.txt", encoding="gb18030")  # named: read as asked
    assert doc.encoding == "gb18030"


def test_undecodable_bytes_name_the_option(tmp_path):
    (tmp_path / "latin.txt").write_bytes("café résumé".encode("cp1252"))
    with pytest.raises(FormatError, match=r"latin\.txt: Cannot decode the file as UTF-8, GB18030 or Big5\. Save it "
                                          r"as UTF-8, or name its encoding with --encoding"):
        read_documents(tmp_path / "latin.txt")


def test_score_tells_text_from_mojibake():
    assert score_chinese(TRAD)[0] > 0.9 and score_chinese(SIMP)[0] > 0.9
    assert score_chinese(TRAD.encode("big5").decode("gb18030"))[0] < 0.3
    assert decode(TRAD.encode("big5"), "x.txt") == (TRAD, "big5")


def test_precode_inputs_read_a_big5_transcript_without_encoding(tmp_path):
    (tmp_path / "P01.txt").write_bytes(TRAD.encode("big5"))
    segments, _ = read_inputs([tmp_path / "P01.txt"])
    assert segments[1].text.startswith("黨支部帶頭")


# -- binary files -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "data", "message"), [
    ("interview.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", r"This is a PDF file, not a text file\. Export its "
                                                                r"text first .*a scanned PDF needs OCR"),
    ("interview.txt", b"PK\x03\x04\x14\x00\x00\x00", r"This is a zip archive \(an Office file or a \.qdpx project "
                                                      r"under another name\?\), not a text file\."),
    ("photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF", r"This is a JPEG image, not a text file\."),
    ("old.rtf", b"{\\rtf1\\ansi hello}", r"This is an RTF file, not a text file\. Save it as \.docx or \.txt\."),
    ("data.bin", b"abc\x00\x01\x02def", r"This is a binary file, not text \(it holds NUL bytes\)\."),
])
def test_binary_files_are_refused_naming_the_file(tmp_path, name, data, message):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(FormatError, match=rf"{name.replace('.', r'[.]')}: {message}"):
        read_inputs([tmp_path / name])


def test_cli_precode_refuses_a_pdf_in_one_line(tmp_path, capsys):
    (tmp_path / "P01.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << >> endobj\n")
    (tmp_path / "model").mkdir()
    # the model is loaded first; a missing one fails first, so give the input check its own call
    with pytest.raises(FormatError, match=r"P01\.pdf: This is a PDF file, not a text file\."):
        read_inputs([tmp_path / "P01.pdf"])
    rc = main(["precode", "--model", str(tmp_path / "nomodel"), str(tmp_path / "P01.pdf"), "--out",
               str(tmp_path / "o.csv")])
    assert rc == 1 and len(capsys.readouterr().err.strip().splitlines()) == 1


# -- .docx ---------------------------------------------------------------------------------------------------
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def _docx(path, body: str, extra: dict[str, str] | None = None, *, document: str | None = None):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                                          'content-types"/>')
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
                                  'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                                  'officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                                  '</Relationships>')
        z.writestr("word/document.xml", document or f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>')
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return path


def _p(*runs: str) -> str:
    return "<w:p>" + "".join(runs) + "</w:p>"


def _r(text: str) -> str:
    return f'<w:r><w:t xml:space="preserve">{text}</w:t></w:r>'


def _row(*cells: str) -> str:
    return "<w:tr>" + "".join(f"<w:tc>{_p(_r(c)) if c else _p()}</w:tc>" for c in cells) + "</w:tr>"


def test_docx_table_of_speaker_turns_in_reading_order(tmp_path):
    import docx

    d = docx.Document()
    d.add_paragraph("访谈记录 2023年5月")
    table = d.add_table(rows=4, cols=2)
    for row, (who, what) in zip(table.rows, [("说话人", "内容"), ("访谈者", "请问社区怎么组织居民？"),
                                             ("受访者", "党支部带头，议事会每月开一次。"), ("", "还有网格员上门。")]):
        row.cells[0].text, row.cells[1].text = who, what
    d.add_paragraph("访谈者：谢谢您。")
    d.save(str(tmp_path / "P01.docx"))
    [doc] = read_documents(tmp_path / "P01.docx")
    assert doc.text.splitlines() == ["访谈记录 2023年5月", "访谈者：请问社区怎么组织居民？",
                                     "受访者：党支部带头，议事会每月开一次。", "还有网格员上门。", "访谈者：谢谢您。"]
    segs = read_transcripts(tmp_path / "P01.docx")
    assert [(s.speaker, s.text) for s in segs] == [
        ("", "访谈记录 2023年5月"), ("访谈者", "请问社区怎么组织居民？"),
        ("受访者", "党支部带头，议事会每月开一次。\n还有网格员上门。"), ("访谈者", "谢谢您。")]
    assert all(doc.text[s.start:s.end] == s.text for s in segs)


def test_docx_tables_of_other_shapes_give_one_line_per_cell(tmp_path):
    body = "<w:tbl>" + _row("时间", "地点", "人物") + _row("2023年", "社区中心", "居民代表") + "</w:tbl>"
    assert read_docx(_docx(tmp_path / "t.docx", body)).splitlines() == ["时间", "地点", "人物", "2023年", "社区中心",
                                                                       "居民代表"]
    long_first = "<w:tbl>" + _row("这是一个很长的句子，不是说话人的名字。", "第二格") + "</w:tbl>"
    assert read_docx(_docx(tmp_path / "u.docx", long_first)).splitlines() == [
        "这是一个很长的句子，不是说话人的名字。", "第二格"]


def test_docx_tracked_changes_are_accepted(tmp_path):
    body = (_p(_r("受访者：我们"), '<w:del w:id="1" w:author="A"><w:r><w:delText>不</w:delText></w:r></w:del>',
               f'<w:ins w:id="2" w:author="A">{_r("经常")}</w:ins>', _r("开会。"))
            + _p(_r("访谈者：为什么？"), '<w:moveFrom w:id="3">' + _r("旧位置") + "</w:moveFrom>")
            + '<w:p><w:pPr><w:rPr><w:del w:id="4" w:author="A"/></w:rPr></w:pPr>' + _r("受访者：因为") + "</w:p>"
            + _p(_r("大家都关心。"))
            + "<w:tbl>" + _row("访谈者", "留下的行") + '<w:tr><w:trPr><w:del w:id="5" w:author="A"/></w:trPr>'
            + "<w:tc>" + _p(_r("访谈者")) + "</w:tc><w:tc>" + _p(_r("删掉的行")) + "</w:tc></w:tr></w:tbl>")
    text = read_docx(_docx(tmp_path / "t.docx", body))
    assert text.splitlines() == ["受访者：我们经常开会。", "访谈者：为什么？", "受访者：因为大家都关心。", "访谈者：留下的行"]


def test_docx_footnotes_comments_headers_and_drawings_are_left_out(tmp_path):
    body = (_p(_r("受访者：社区有食堂"), '<w:r><w:footnoteReference w:id="1"/></w:r>',
               '<w:commentRangeStart w:id="0"/>', _r("。"), '<w:r><w:commentReference w:id="0"/></w:r>')
            + _p('<w:r><w:fldChar w:fldCharType="begin"/></w:r><w:r><w:instrText> PAGE </w:instrText></w:r>',
                 '<w:r><w:drawing><w:txbxContent><w:p><w:r><w:t>图中文字</w:t></w:r></w:p></w:txbxContent>'
                 '</w:drawing></w:r>', _r("访谈者：好的"), "<w:r><w:tab/></w:r>", _r("谢谢"), "<w:r><w:br/></w:r>",
                 _r("再见")))
    extra = {"word/footnotes.xml": f'<w:footnotes xmlns:w="{W}"><w:footnote w:id="1">{_p(_r("脚注文字"))}'
                                   "</w:footnote></w:footnotes>",
             "word/comments.xml": f'<w:comments xmlns:w="{W}"><w:comment w:id="0">{_p(_r("批注文字"))}'
                                  "</w:comment></w:comments>",
             "word/header1.xml": f'<w:hdr xmlns:w="{W}">{_p(_r("页眉文字"))}</w:hdr>'}
    text = read_docx(_docx(tmp_path / "t.docx", body, extra))
    assert text == "受访者：社区有食堂。\n访谈者：好的\t谢谢\n再见"


def test_docx_content_controls_and_hyperlinks_keep_their_text(tmp_path):
    body = ("<w:sdt><w:sdtPr><w:alias w:val='x'/></w:sdtPr><w:sdtContent>" + _p(_r("受访者：块内文字"))
            + "</w:sdtContent></w:sdt>" + _p('<w:hyperlink r:id="rId9" xmlns:r="urn:r">' + _r("链接文字")
                                              + "</w:hyperlink>"))
    assert read_docx(_docx(tmp_path / "t.docx", body)).splitlines() == ["受访者：块内文字", "链接文字"]


def _bomb(path, name: str, data: bytes, *, others: int = 0):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, data)
        for i in range(others):
            z.writestr(f"word/media/x{i}.bin", b"x")
    return path


@pytest.mark.parametrize("suffix", [".docx", ".xlsx"])
def test_archive_caps_apply_to_office_files(tmp_path, suffix):
    from autocode.io._xlsx import read_xlsx

    read = read_docx if suffix == ".docx" else read_xlsx
    part = "word/document.xml" if suffix == ".docx" else "xl/workbook.xml"
    ratio = _bomb(tmp_path / f"ratio{suffix}", part, b"<a>" + b" " * (8 * 2**20) + b"</a>")
    with pytest.raises(FormatError, match=rf"ratio\{suffix}, entry '{part}': The entry is compressed \d+ times, "
                                          r"more than the 200 allowed \(a zip bomb\?\)\."):
        read(ratio)
    many = _bomb(tmp_path / f"many{suffix}", part, b"<a/>", others=20)
    with pytest.raises(FormatError, match=rf"many\{suffix}: The archive has 21 entries, more than the 10 allowed\."):
        read(many, Limits(max_members=10))
    with pytest.raises(FormatError, match=r"The entry uncompresses to 4007 bytes, more than the 1000 allowed\."):
        read(_bomb(tmp_path / f"big{suffix}", part, b"<a>" + b"x" * 4000 + b"</a>"), Limits(max_member_bytes=1000))
    with pytest.raises(FormatError, match=r"The archive uncompresses to more than 3000 bytes \(a zip bomb\?\)\."):
        read(_bomb(tmp_path / f"total{suffix}", part, b"<a>" + b"x" * 4000 + b"</a>"), Limits(max_total_bytes=3000))
    with pytest.raises(FormatError, match=rf"xml\{suffix}, entry '{part}': The XML part has 4007 bytes, more than "
                                          r"the 1000 allowed\."):
        read(_bomb(tmp_path / f"xml{suffix}", part, b"<a>" + b"x" * 4000 + b"</a>"), Limits(max_xml_bytes=1000))
    deep = _bomb(tmp_path / f"deep{suffix}", part, b"<a>" * 1000 + b"</a>" * 1000)
    with pytest.raises(FormatError, match=rf"deep\{suffix}, entry '{part}': The XML nests elements deeper than the "
                                          r"256 levels allowed\. autocode refuses such files"):
        read(deep)
    node = _bomb(tmp_path / f"node{suffix}", part, b"<a>" + "长".encode() * 5000 + b"</a>")
    with pytest.raises(FormatError, match=r"A text node holds more than the 1000 characters allowed\."):
        read(node, Limits(max_xml_node=1000))
    attr = _bomb(tmp_path / f"attr{suffix}", part, b'<a b="' + b"x" * 5000 + b'"/>')
    with pytest.raises(FormatError, match=r"An attribute of <a> holds more than the 1000 characters allowed\."):
        read(attr, Limits(max_xml_node=1000))
    dtd = _bomb(tmp_path / f"dtd{suffix}", part, b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
    with pytest.raises(FormatError, match=r"The XML declares a DTD or entities"):
        read(dtd)


def test_docx_bomb_through_read_documents_is_one_line(tmp_path):
    _bomb(tmp_path / "P01.docx", "word/document.xml", b"<a>" + b" " * (8 * 2**20) + b"</a>")
    with pytest.raises(FormatError) as err:
        read_documents(tmp_path / "P01.docx")
    assert "\n" not in str(err.value) and "P01.docx" in str(err.value)


def test_docx_from_bytes_names_the_source():
    from autocode.io._docx import docx_text

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>{_p(_r("你好"))}</w:body></w:document>')
    assert docx_text(buf.getvalue(), "sources/a.docx") == "你好"
    with pytest.raises(FormatError, match=r"sources/a\.docx: Not a readable Word \.docx file \(not a zip archive\)"):
        docx_text(b"not a zip", "sources/a.docx")
