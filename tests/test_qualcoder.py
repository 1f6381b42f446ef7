"""QualCoder projects (a folder NAME.qda with the SQLite database data.qda)."""

from __future__ import annotations

import sqlite3
import zipfile
from pathlib import Path

import pytest

from autocode import Code, Codebook
from autocode.exceptions import AutocodeWarning, FormatError
from autocode.io import read_coded
from autocode.io.qdpx import read_project, write_qdpx
from autocode.io.qualcoder import SCHEMA_FOR_TESTS, read_qualcoder

TEXT1 = "问：社区怎么样？\r\n答：我们𠮷祥社区有党支部，党员亮身份。\r\n问：议事会呢？\r\n答：议事会每月开一次。\r\n"
TEXT2 = "答：网格员上门为老人提供服务。"


def _at(text: str, piece: str) -> tuple[int, int]:
    a = text.index(piece)
    return a, a + len(piece)


def make_project(folder: Path, extra_sql: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(folder / "data.qda")
    con.executescript(SCHEMA_FOR_TESTS)
    con.executemany("INSERT INTO code_cat (catid, name, memo, supercatid) VALUES (?, ?, ?, ?)", [
        (1, "治理", "核心类别", None), (2, "纵向引领", None, 1), (3, "横向共治", None, 1)])
    con.executemany("INSERT INTO code_name (cid, name, memo, catid, color) VALUES (?, ?, ?, ?, ?)", [
        (1, "组织嵌入", "党组织嵌入社区治理", 2, "#FF0000"), (2, "多元参与", None, 3, None),
        (3, "精准服务", None, None, "#00FF00"), (4, "纵向引领", "与类别同名", 2, None)])
    con.executemany("INSERT INTO source (id, name, fulltext, mediapath, memo) VALUES (?, ?, ?, ?, ?)", [
        (1, "P01.txt", TEXT1, None, "第一次访谈"), (2, "P02.docx", TEXT2, None, None),
        (3, "录音.m4a", None, "/audio/录音.m4a", None)])
    rows = [(1, 1, 1, *_at(TEXT1, "我们𠮷祥社区有党支部"), "E", "备注"),
            (2, 1, 1, *_at(TEXT1, "我们𠮷祥社区有党支部，党员亮身份。"), "A", None),
            (3, 2, 1, *_at(TEXT1, "议事会每月开一次。"), "E", None),
            (4, 3, 2, *_at(TEXT2, "网格员上门为老人提供服务"), "A", None),
            (5, 3, 3, 0, 10, "A", None)]  # a coding of the audio source: skipped
    con.executemany("INSERT INTO code_text (ctid, cid, fid, pos0, pos1, owner, memo) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    rows)
    if extra_sql:
        con.executescript(extra_sql)
    con.commit()
    con.close()
    return folder


@pytest.fixture
def qda(tmp_path) -> Path:
    return make_project(tmp_path / "社区.qda")


def test_read_codes_categories_sources(qda):
    with pytest.warns(AutocodeWarning, match="1 codings of non-text sources"):
        p = read_qualcoder(qda)
    book = p.codebook
    assert book.ids == ["治理", "治理/纵向引领", "横向共治", "组织嵌入", "多元参与", "精准服务",
                        "治理/纵向引领/纵向引领"]  # a category and a code share a name: paths tell them apart
    assert book["组织嵌入"].parent == "治理/纵向引领" and book.ancestors("组织嵌入")[-1] == "治理"
    assert book["治理"].extra["isCodable"] is False and book["治理"].description == "核心类别"
    assert book["组织嵌入"].color == "#FF0000" and book["精准服务"].parent is None
    assert p.name == "社区" and [u.name for u in p.users] == ["E", "A"]
    assert [s.kind for s in p.sources] == ["TextSource", "TextSource", "OtherSource"]
    assert p.sources[0].text == TEXT1  # CRLF kept, positions are Python characters
    spans = {(s.coder, s.code, TEXT1[s.start:s.end] if s.document == "P01" else TEXT2[s.start:s.end])
             for s in p.spans()}
    assert spans == {("E", "组织嵌入", "我们𠮷祥社区有党支部"), ("A", "组织嵌入", "我们𠮷祥社区有党支部，党员亮身份。"),
                     ("E", "多元参与", "议事会每月开一次。"), ("A", "精准服务", "网格员上门为老人提供服务")}
    assert p.sources[0].selections[0].description == "备注"


def test_coded_corpus_and_read_coded(qda):
    with pytest.warns(AutocodeWarning):
        corpus = read_coded(qda / "data.qda")
    assert corpus.coders == ["E", "A"] and corpus.documents == ["P01", "P02"]
    keys = [s.key for s in corpus.segments]
    e, a = dict(zip(keys, corpus.codings("E"))), dict(zip(keys, corpus.codings("A")))
    assert e[("P01", "2")] == {"组织嵌入"} == a[("P01", "2")]
    assert e[("P01", "4")] == {"多元参与"} and a[("P01", "4")] == set()
    assert e[("P02", "1")] is None and a[("P02", "1")] == {"精准服务"}


def test_codebook_mapping_by_name(qda):
    book = Codebook([Code("party", "组织嵌入"), Code("council", "多元参与"), Code("service", "精准服务")])
    with pytest.warns(AutocodeWarning):
        corpus = read_coded(qda, codebook=book)
    assert set(corpus.used_codes()) == {"party", "council", "service"}


def test_write_qualcoder_project_as_qdpx(qda, tmp_path):
    from conftest import SHARED

    with pytest.warns(AutocodeWarning):
        p = read_qualcoder(qda)
    out = write_qdpx(tmp_path / "from_qualcoder.qdpx", p)
    xsd = SHARED / "refi-qda" / "REFI-QDA_Project_schema.xsd"
    if xsd.is_file():  # validated where the schema is at hand
        from test_qdpx import _schema

        _schema(str(xsd)).validate(zipfile.ZipFile(out).read("project.qde").decode("utf-8"))
    back = read_project(out)
    assert [(s.start, s.end) for s in back.spans()] == [(s.start, s.end) for s in p.spans()]
    assert sorted((c.id, c.name, c.parent, c.color, str(c.extra)) for c in back.codebook) == \
        sorted((c.id, c.name, c.parent, c.color, str(c.extra)) for c in p.codebook)


def test_not_a_qualcoder_project(tmp_path):
    with pytest.raises(FormatError, match="expected a NAME.qda folder holding data.qda"):
        read_qualcoder(tmp_path / "missing.qda")
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(FormatError, match="Not a readable QualCoder database"):
        read_project(junk)
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE code_name (cid integer, name text, catid integer)")
    con.commit()
    con.close()
    with pytest.raises(FormatError, match=r"table code_cat: The database has no table 'code_cat'"):
        read_project(other)


def test_missing_column_and_bad_range(tmp_path):
    folder = tmp_path / "x.qda"
    folder.mkdir()
    con = sqlite3.connect(folder / "data.qda")
    con.executescript(SCHEMA_FOR_TESTS.replace("pos0", "start").replace("pos1", "stop"))
    con.close()
    with pytest.raises(FormatError, match=r"table code_text: Table 'code_text' lacks the column\(s\) pos0, pos1"):
        read_qualcoder(folder)
    bad = make_project(tmp_path / "bad.qda", "UPDATE code_text SET pos1 = 999 WHERE ctid = 1;")
    with pytest.raises(FormatError, match=r"code_text ctid=1: The range .*-999 is outside the text of source "
                                          r"'P01.txt'"):
        read_qualcoder(bad)


def test_category_cycle(tmp_path):
    p = make_project(tmp_path / "c.qda", "UPDATE code_cat SET supercatid = 2 WHERE catid = 1;")
    with pytest.raises(FormatError, match="categories form a cycle"):
        read_qualcoder(p)


def test_precode_inputs_from_a_qualcoder_folder(qda):
    from autocode import read_inputs

    with pytest.warns(AutocodeWarning):
        segments, documents = read_inputs([str(qda)])
    assert [d.name for d in documents] == ["P01", "P02"] and len(segments) == 5
