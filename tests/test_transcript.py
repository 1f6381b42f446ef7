"""Reading raw transcripts: encodings, .docx, folders and globs, and their errors."""

from __future__ import annotations

import pytest

from autocode import FormatError, read_documents, read_transcripts
from autocode.io.transcript import decode_bytes, expand_paths

TEXT = "访谈者：请问社区怎么组织居民？\n受访者：党支部带头，议事会每月开一次。\n访谈者：网格员呢？\n受访者：上门为老人服务。\n"
TRAD = "訪談者：請問社區怎麼組織居民？\n受訪者：黨支部帶頭，議事會每月開一次。\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + TEXT.encode("utf-8"), "utf-8"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
        (TEXT.encode("utf-16"), "utf-16"),  # with BOM (native order)
        (b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16"),
        (b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16"),
    ],
    ids=["utf8", "utf8-bom", "gbk", "gb18030", "utf16", "utf16le-bom", "utf16be-bom"],
)
def test_encodings_are_detected(tmp_path, data, encoding):
    (tmp_path / "P01.txt").write_bytes(data)
    [doc] = read_documents(tmp_path / "P01.txt")
    assert doc.name == "P01"
    assert doc.text == TEXT  # BOM removed, text intact
    assert doc.encoding == encoding
    assert doc.path == str(tmp_path / "P01.txt")


def test_big5_when_named(tmp_path):
    # Big5 bytes mostly decode as (wrong) GB18030 too, so Big5 must be named
    (tmp_path / "t.txt").write_bytes(TRAD.encode("big5"))
    [doc] = read_documents(tmp_path / "t.txt", encoding="big5")
    assert doc.text == TRAD and doc.encoding == "big5"


def test_named_encoding(tmp_path):
    (tmp_path / "P01.txt").write_bytes(TEXT.encode("gbk"))
    [doc] = read_documents(tmp_path / "P01.txt", encoding="gbk")
    assert doc.text == TEXT and doc.encoding == "gbk"
    (tmp_path / "P01.txt").write_bytes(b"\xef\xbb\xbf" + TEXT.encode("utf-8"))
    [doc] = read_documents(tmp_path / "P01.txt", encoding="utf-8")
    assert doc.text == TEXT  # BOM removed also when the encoding is named


def test_wrong_named_encoding_is_an_error(tmp_path):
    (tmp_path / "P01.txt").write_bytes(TEXT.encode("gbk"))
    with pytest.raises(FormatError, match=r"P01\.txt: Cannot decode as utf-8: .* at byte \d+\. Leave --encoding out"):
        read_documents(tmp_path / "P01.txt", encoding="utf-8")


def test_unknown_encoding_name(tmp_path):
    (tmp_path / "P01.txt").write_text(TEXT, encoding="utf-8")
    with pytest.raises(FormatError, match=r"Unknown encoding 'gbk2'\. Use e\.g\. utf-8, gb18030"):
        read_documents(tmp_path / "P01.txt", encoding="gbk2")


def test_undecodable_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"\x80\xff\x80\xff not text")
    with pytest.raises(FormatError, match=r"bad\.txt: Cannot decode the file as UTF-8, GB18030 or Big5"):
        read_documents(tmp_path / "bad.txt")


def test_decode_bytes_directly():
    assert decode_bytes("社区".encode("gb18030"), "x.txt") == ("社区", "gb18030")
    assert decode_bytes(b"\xef\xbb\xbfabc", "x.txt") == ("abc", "utf-8")


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"  \r\n\n\t", "\u3000\n".encode()])
def test_empty_file(tmp_path, content):
    (tmp_path / "P01.txt").write_bytes(content)
    with pytest.raises(FormatError, match=r"P01\.txt: The transcript is empty\."):
        read_documents(tmp_path / "P01.txt")


def test_missing_file(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.txt: File not found\. Check the path\."):
        read_documents(tmp_path / "nope.txt")


def test_folder_and_glob(tmp_path):
    for name in ("P02", "P01"):
        (tmp_path / f"{name}.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "notes.md").write_text("not a transcript", encoding="utf-8")
    (tmp_path / "~$P03.docx").write_bytes(b"word lock file")
    (tmp_path / "old.txt").mkdir()  # a folder with a transcript's suffix
    assert [d.name for d in read_documents(tmp_path)] == ["P01", "P02"]
    assert [d.name for d in read_documents(str(tmp_path / "P*.txt"))] == ["P01", "P02"]
    assert [d.name for d in read_documents([tmp_path / "P02.txt", tmp_path / "P01.txt"])] == ["P02", "P01"]


def test_glob_skips_folders_and_other_files(tmp_path):
    (tmp_path / "sub.txt").mkdir()  # a folder whose name matches
    (tmp_path / "P01.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "codes.csv").write_text("id\n", encoding="utf-8")
    assert [d.name for d in read_documents(str(tmp_path / "*"))] == ["P01"]


def test_glob_matching_only_other_things(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "codes.csv").write_text("id\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"The pattern matches no \.txt/\.docx file \(it matches 2 other"):
        read_documents(str(tmp_path / "*"))


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(FormatError, match=r"\*\.txt: The pattern matches no file\."):
        read_documents(str(tmp_path / "*.txt"))


def test_folder_without_transcripts(tmp_path):
    (tmp_path / "codes.csv").write_text("id\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"No \.txt/\.docx files in this folder\."):
        read_documents(tmp_path)


def test_two_transcripts_with_the_same_name(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "P01.txt").write_text(TEXT, encoding="utf-8")
    (tmp_path / "b" / "P01.txt").write_text(TEXT, encoding="utf-8")
    with pytest.raises(FormatError, match=r"Two transcripts are both named 'P01' .* rename one"):
        read_documents([tmp_path / "a", tmp_path / "b"])


def test_txt_and_docx_with_the_same_name(tmp_path):
    (tmp_path / "P01.txt").write_text(TEXT, encoding="utf-8")
    _write_docx(tmp_path / "P01.docx", TEXT.splitlines())
    with pytest.raises(FormatError, match=r"both named 'P01'"):
        read_documents(tmp_path)


def _write_docx(path, paragraphs):
    import docx

    d = docx.Document()
    for p in paragraphs:
        d.add_paragraph(p)
    d.save(str(path))


def test_docx(tmp_path):
    _write_docx(tmp_path / "P05.docx", ["访谈者：社区有食堂吗？", "", "受访者：有，给独居老人送餐。𠮷"])
    [doc] = read_documents(tmp_path / "P05.docx")
    assert doc.name == "P05" and doc.encoding is None
    assert doc.text == "访谈者：社区有食堂吗？\n\n受访者：有，给独居老人送餐。𠮷"
    segs = read_transcripts(tmp_path)
    assert [(s.document, s.speaker, s.text) for s in segs] == [
        ("P05", "访谈者", "社区有食堂吗？"), ("P05", "受访者", "有，给独居老人送餐。𠮷"),
    ]
    assert all(doc.text[s.start : s.end] == s.text for s in segs)


@pytest.mark.parametrize("content", [b"not a zip file", b"PK\x05\x06" + b"\0" * 18])
def test_broken_docx(tmp_path, content):
    (tmp_path / "P01.docx").write_bytes(content)
    with pytest.raises(FormatError, match=r"P01\.docx: Not a readable Word \.docx file .* Save it again as \.docx"):
        read_documents(tmp_path / "P01.docx")


def test_zip_that_is_not_word(tmp_path):
    import zipfile

    with zipfile.ZipFile(tmp_path / "P01.docx", "w") as z:
        z.writestr("hello.txt", "hi")
    with pytest.raises(FormatError, match=r"Not a readable Word \.docx file"):
        read_documents(tmp_path / "P01.docx")


def test_old_doc_is_refused(tmp_path):
    (tmp_path / "P01.doc").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(FormatError, match=r"Old Word \.doc files are not supported\. Save the file as \.docx"):
        read_documents(tmp_path / "P01.doc")


def test_read_transcripts_offsets_into_the_decoded_text(tmp_path):
    crlf = TEXT.replace("\n", "\r\n").replace("上门为老人服务。", "上门为老人服务。\r\n\r\n还有𠮷祥的事。")
    (tmp_path / "P01.txt").write_bytes(crlf.encode("gb18030"))
    (tmp_path / "P02.txt").write_bytes(b"\xef\xbb\xbf" + crlf.encode("utf-8"))
    docs = {d.name: d for d in read_documents(tmp_path)}
    segs = read_transcripts(tmp_path)
    assert {s.document for s in segs} == {"P01", "P02"}
    for s in segs:
        assert docs[s.document].text[s.start : s.end] == s.text
    p01 = [s for s in segs if s.document == "P01"]
    assert [s.speaker for s in p01] == ["访谈者", "受访者", "访谈者", "受访者"]
    assert p01[-1].text == "上门为老人服务。\r\n\r\n还有𠮷祥的事。"


def test_read_transcripts_splits_long_turns(tmp_path):
    (tmp_path / "P01.txt").write_text("问：怎么样？\n答：" + "党支部带头。" * 5 + "\n", encoding="utf-8")
    segs = read_transcripts(tmp_path, max_chars=10)
    assert [s.segment for s in segs] == ["1", "2.1", "2.2", "2.3", "2.4", "2.5"]
    assert [s.segment for s in read_transcripts(tmp_path, max_chars=None)] == ["1", "2"]


def test_expand_paths_with_suffixes(tmp_path):
    (tmp_path / "a.csv").write_text("x", encoding="utf-8")
    (tmp_path / "b.txt").write_text("x", encoding="utf-8")
    assert [p.name for p in expand_paths(tmp_path, suffixes=(".csv", ".txt"))] == ["a.csv", "b.txt"]
    assert [p.name for p in expand_paths(str(tmp_path / "*"), suffixes=(".csv",))] == ["a.csv"]


def test_transcript_with_labels_only(tmp_path):
    (tmp_path / "P01.txt").write_text("访谈者：\n受访者：\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"P01\.txt: The transcript has no text to segment\."):
        read_transcripts(tmp_path)
