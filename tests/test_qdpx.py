"""REFI-QDA import and export: synthetic projects (Chinese, CRLF, BOM, 𠮷), the sample exports, security."""

from __future__ import annotations

import copy
import functools
import re
import warnings
import zipfile
from pathlib import Path
from xml.etree.ElementTree import tostring

import hostile
import numpy as np
import pytest

from autocode import Code, Codebook, Segment, Suggestions
from autocode.exceptions import AutocodeWarning, CodebookError, FormatError
from autocode.io import read_coded
from autocode.io._safezip import Limits, SafeZip
from autocode.io.qdpx import (
    Project,
    guid_for,
    read_project,
    read_qdc,
    write_precoded_qdpx,
    write_qdc,
    write_qdpx,
)
from autocode.io.qdpx._offsets import Positions
from autocode.io.transcript import Document

DATA = Path(__file__).parent / "data"
ATLAS = DATA / "refi_atlasti_test_project.qdpx"
SAMPLES = ["nvivo_project.qdpx", "qc_demo.qdpx", "skyloom_TestProject.qdpx", "skyloom_Project.qde"]

U_E = "11111111-1111-1111-1111-111111111111"
U_A = "22222222-2222-2222-2222-222222222222"
C_V, C_PARTY, C_H, C_COUNCIL = (f"{i}0000000-0000-0000-0000-00000000000{i}" for i in range(1, 5))
S1, S2, S3 = (f"a{i}000000-0000-0000-0000-00000000000{i}" for i in range(1, 4))

# A transcript with CRLF line breaks, an astral character (𠮷, U+20BB7) and, in the file, a UTF-8 BOM.
TEXT1 = ("访谈者：您好，请介绍一下社区。\r\n"
         "受访者：我们𠮷祥社区有党支部，党员亮身份。\r\n"
         "访谈者：居民议事会呢？\r\n"
         "受访者：议事会每月开一次，大家投票决定停车位。\r\n")
TEXT2 = "问：老人服务怎么样？\n答：网格员上门为老人提供服务。\n"
INLINE = "答：社区食堂给独居老人送餐。"


def _span(text: str, piece: str) -> tuple[int, int]:
    at = text.index(piece)
    return at, at + len(piece)


def _positions(text: str, span: tuple[int, int], mode: str = "chars") -> tuple[int, int]:
    conv = Positions(text, mode)
    return conv.position(span[0]), conv.position(span[1])


def project_xml(mode: str = "chars") -> str:
    party_e = _positions(TEXT1, _span(TEXT1, "我们𠮷祥社区有党支部"), mode)
    party_a = _positions(TEXT1, _span(TEXT1, "我们𠮷祥社区有党支部，党员亮身份。"), mode)
    council = _positions(TEXT1, _span(TEXT1, "议事会每月开一次，大家投票决定停车位。"), mode)
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="社区治理访谈" origin="hand-written test"
         creationDateTime="2024-05-01T08:00:00Z">
  <Users>
    <User guid="{U_E}" name="E" id="e1"/>
    <User guid="{U_A}" name="A"/>
  </Users>
  <CodeBook><Codes>
    <Code guid="{C_V}" name="纵向引领" isCodable="true" color="#FF0000">
      <Description>党和政府的引领</Description>
      <Code guid="{C_PARTY}" name="组织嵌入" isCodable="true" color="#00ff00">
        <Description>党组织嵌入社区治理</Description>
      </Code>
    </Code>
    <Code guid="{C_H}" name="横向共治" isCodable="false">
      <NoteRef targetGUID="b1000000-0000-0000-0000-000000000001"/>
      <Code guid="{C_COUNCIL}" name="多元参与" isCodable="true"/>
    </Code>
  </Codes></CodeBook>
  <Cases><Case guid="c1000000-0000-0000-0000-000000000001" name="P01"><SourceRef targetGUID="{S1}"/></Case></Cases>
  <Sources>
    <TextSource guid="{S1}" name="P01.txt" plainTextPath="internal://{S1}.txt" richTextPath="internal://{S1}.docx"
                creatingUser="{U_E}" creationDateTime="2024-05-01T08:00:00Z">
      <Description>第一次访谈</Description>
      <PlainTextSelection guid="d1000000-0000-0000-0000-000000000001" name="我们𠮷祥社区…" startPosition="{party_e[0]}"
                          endPosition="{party_e[1]}" creatingUser="{U_E}">
        <Description>E 的备注</Description>
        <Coding guid="e1000000-0000-0000-0000-000000000001" creatingUser="{U_E}"
                creationDateTime="2024-05-01T09:00:00Z"><CodeRef targetGUID="{C_PARTY}"/></Coding>
        <NoteRef targetGUID="b1000000-0000-0000-0000-000000000001"/>
      </PlainTextSelection>
      <PlainTextSelection guid="d1000000-0000-0000-0000-000000000002" startPosition="{party_a[0]}"
                          endPosition="{party_a[1]}" creatingUser="{U_A}">
        <Coding guid="e1000000-0000-0000-0000-000000000002" creatingUser="{U_A}"><CodeRef targetGUID="{C_PARTY}"/></Coding>
      </PlainTextSelection>
      <PlainTextSelection guid="d1000000-0000-0000-0000-000000000003" name="议事会每月开一次…" startPosition="{council[0]}"
                          endPosition="{council[1]}" creatingUser="{U_E}">
        <Coding guid="e1000000-0000-0000-0000-000000000003" creatingUser="{U_E}"><CodeRef targetGUID="{C_COUNCIL}"/></Coding>
        <Coding guid="e1000000-0000-0000-0000-000000000004" creatingUser="{U_A}"><CodeRef targetGUID="{C_COUNCIL}"/></Coding>
      </PlainTextSelection>
      <VariableValue><VariableRef targetGUID="f1000000-0000-0000-0000-000000000001"/><TextValue>女</TextValue></VariableValue>
    </TextSource>
    <TextSource guid="{S2}" name="P02.docx" plainTextPath="internal://{S2}.txt"/>
    <PictureSource guid="a4000000-0000-0000-0000-000000000004" name="照片.jpg" path="internal://photo.jpg">
      <PictureSelection guid="d4000000-0000-0000-0000-000000000001" firstX="1" firstY="2" secondX="3" secondY="4">
        <Coding guid="e4000000-0000-0000-0000-000000000001" creatingUser="{U_E}"><CodeRef targetGUID="{C_PARTY}"/></Coding>
      </PictureSelection>
    </PictureSource>
    <TextSource guid="{S3}" name="P03"><PlainTextContent>{INLINE}</PlainTextContent></TextSource>
  </Sources>
  <Notes>
    <Note guid="b1000000-0000-0000-0000-000000000001" name="备忘"><PlainTextContent>党建引领是核心。</PlainTextContent></Note>
  </Notes>
  <Sets><Set guid="91000000-0000-0000-0000-000000000001" name="组"><MemberCode targetGUID="{C_PARTY}"/></Set></Sets>
</Project>
"""


make_qdpx = hostile.qdpx


def source_files(mode: str = "chars") -> dict[str, bytes]:
    return {f"sources/{S1}.txt": b"\xef\xbb\xbf" + TEXT1.encode("utf-8"),
            f"sources/{S1}.docx": b"PK not really a docx",
            f"sources/{S2}.txt": TEXT2.encode("utf-8"),
            "sources/photo.jpg": b"\xff\xd8\xff fake jpeg"}


@pytest.fixture
def qdpx(tmp_path) -> Path:
    return make_qdpx(tmp_path / "访谈.qdpx", project_xml(), source_files())


@functools.lru_cache(maxsize=1)
def _schema(path: str):
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(path)


@pytest.fixture
def schema(shared_data):
    """The REFI-QDA project schema (read once per run); the test skips without ../shared/data or xmlschema."""
    return _schema(str(shared_data / "refi-qda" / "REFI-QDA_Project_schema.xsd"))


@pytest.fixture
def validate():
    """Validate a written .qdpx against the schema when it is at hand; a no-op otherwise, so that the test's
    other checks still run without ../shared/data."""
    from conftest import SHARED

    xsd = SHARED / "refi-qda" / "REFI-QDA_Project_schema.xsd"

    def check(path: Path) -> None:
        try:
            import xmlschema  # noqa: F401
        except ImportError:
            return
        if xsd.is_file():
            _schema(str(xsd)).validate(zipfile.ZipFile(path).read("project.qde").decode("utf-8"))

    return check


def snapshot(project: Project) -> dict:
    """Everything a round trip must keep, as comparable values."""

    def xml(elements):  # whitespace between elements is layout, not content
        out = []
        for e in elements:
            e = copy.deepcopy(e)
            for x in e.iter():
                x.text = None if x.text is not None and not x.text.strip() else x.text
                x.tail = None if x.tail is not None and not x.tail.strip() else x.tail
            out.append(tostring(e, encoding="unicode"))
        return out

    def source(s):
        return (s.guid, s.name, s.kind, s.text, s.description, s.plain_path, s.rich_path, s.inline,
                s.attrs, xml(s.extra), None if s.element is None else xml([s.element]),
                [(x.guid, x.start, x.end, x.name, x.description, x.user, x.attrs, xml(x.extra),
                  [(c.guid, c.code, c.user, c.attrs, xml(c.extra)) for c in x.codings]) for x in s.selections])

    return {
        "name": project.name,
        "attrs": project.attrs,
        "codes": [(c.id, c.name, c.description, c.parent, c.color, c.extra) for c in project.codebook],
        "code_attrs": project.code_attrs,
        "code_extra": {k: xml(v) for k, v in project.code_extra.items()},
        "users": [(u.guid, u.name, u.id, u.attrs) for u in project.users],
        "sources": [source(s) for s in project.sources],
        "notes": [source(n) for n in project.notes],
        "sections": {k: xml(v) for k, v in project.sections.items()},
        "files": sorted(project.files),
    }


# -- reading ----------------------------------------------------------------------------------------------------
def test_read_codes_users_sources(qdpx):
    p = read_project(qdpx)
    assert p.name == "社区治理访谈"
    assert [(c.id, c.name, c.parent, c.color) for c in p.codebook] == [
        ("纵向引领", "纵向引领", None, "#FF0000"), ("组织嵌入", "组织嵌入", "纵向引领", "#00ff00"),
        ("横向共治", "横向共治", None, None), ("多元参与", "多元参与", "横向共治", None)]
    assert p.codebook["组织嵌入"].description == "党组织嵌入社区治理"
    assert p.codebook["组织嵌入"].extra == {"guid": C_PARTY}
    assert p.codebook["横向共治"].extra["isCodable"] is False
    assert [(u.name, u.id) for u in p.users] == [("E", "e1"), ("A", "")]
    kinds = [s.kind for s in p.sources]
    assert kinds == ["TextSource", "TextSource", "PictureSource", "TextSource"]
    s1 = p.sources[0]
    assert s1.text == TEXT1 and s1.bom and "\r\n" in s1.text  # BOM removed, CRLF kept
    assert p.sources[3].inline and p.sources[3].text == INLINE
    assert p.notes[0].text == "党建引领是核心。"
    assert p.problems == []


def test_selections_land_on_the_right_characters(qdpx):
    """Positions count code points, CRLF as two and not the BOM: 𠮷 and the line breaks shift nothing."""
    s1 = read_project(qdpx).sources[0]
    got = [s1.text[x.start:x.end] for x in s1.selections]
    assert got == ["我们𠮷祥社区有党支部", "我们𠮷祥社区有党支部，党员亮身份。", "议事会每月开一次，大家投票决定停车位。"]
    assert read_project(qdpx).positions == "chars"
    assert s1.selections[0].description == "E 的备注"


@pytest.mark.parametrize("mode", ["utf16", "chars-lf", "utf16-lf"])
def test_other_position_conventions(tmp_path, mode):
    path = make_qdpx(tmp_path / "p.qdpx", project_xml(mode), source_files())
    s1 = read_project(path, positions=mode).sources[0]
    assert s1.text[s1.selections[2].start:s1.selections[2].end] == "议事会每月开一次，大家投票决定停车位。"
    # "auto" finds the convention from the selection named by its first words
    auto = read_project(path)
    assert auto.positions == mode and snapshot(auto)["sources"] == snapshot(read_project(path, positions=mode))[
        "sources"]
    # read with the wrong convention, the selection after 𠮷 / the CRLFs is shifted
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        wrong = read_project(path, positions="chars").sources[0]
    assert wrong.text[wrong.selections[2].start:wrong.selections[2].end] != "议事会每月开一次，大家投票决定停车位。"
    # and written back in the same convention, the numbers are the file's
    out = write_qdpx(tmp_path / "back.qdpx", read_project(path, positions=mode))
    assert b'startPosition="%d"' % _positions(TEXT1, _span(TEXT1, "议事会每月开一次"), mode)[0] in \
        zipfile.ZipFile(out).read("project.qde")


def test_positions_helper():
    text = "a𠮷\r\nb"
    assert [Positions(text, m).position(len(text)) for m in ("chars", "utf16", "chars-lf", "utf16-lf")] == \
        [5, 6, 4, 5]
    assert Positions(text, "utf16").index(3) == 2 and Positions(text, "chars-lf").index(3) == 4
    assert Positions(text, "chars-lf").index(2) == 2  # before the CRLF
    with pytest.raises(ValueError, match="positions must be one of"):
        Positions(text, "bytes")


def test_selection_past_the_end_is_cut_and_reported(tmp_path):
    xml = project_xml().replace('endPosition="', 'endPosition="9', 1)
    path = make_qdpx(tmp_path / "p.qdpx", xml, source_files())
    with pytest.warns(AutocodeWarning, match="after the end of the text"):
        p = read_project(path, positions="chars")
    assert p.sources[0].selections[0].end == len(TEXT1)


# -- from selections to segments ---------------------------------------------------------------------------------
def test_coded_corpus_maps_selections_to_segments(qdpx):
    corpus = read_project(qdpx).coded_corpus()
    assert corpus.coders == ["E", "A"]
    assert corpus.documents == ["P01", "P02", "P03"]
    keys = [s.key for s in corpus.segments]
    e, a = dict(zip(keys, corpus.codings("E"))), dict(zip(keys, corpus.codings("A")))
    # E's short quote "我们𠮷祥社区有党支部" covers more than half of turn 2; so does A's whole turn
    assert e[("P01", "2")] == {"组织嵌入"} and a[("P01", "2")] == {"组织嵌入"}
    assert e[("P01", "4")] == {"多元参与"} == a[("P01", "4")]
    assert e[("P01", "1")] == set() == a[("P01", "1")]  # coded the document, applied nothing here
    assert e[("P02", "1")] is None  # nobody touched P02
    seg = corpus.segments[keys.index(("P01", "2"))]
    assert TEXT1[seg.start:seg.end] == seg.text


def test_overlap_rule_threshold(qdpx):
    p = read_project(qdpx)
    strict = p.coded_corpus(min_overlap=1.0)
    keys = [s.key for s in strict.segments]
    assert dict(zip(keys, strict.codings("E")))[("P01", "2")] == {"组织嵌入"}  # covers the whole selection
    with pytest.raises(ValueError, match="min_overlap"):
        p.coded_corpus(min_overlap=0)


def test_spans_give_character_ranges_per_user(qdpx):
    spans = read_project(qdpx).spans()
    assert [(s.document, s.code, s.coder, TEXT1[s.start:s.end]) for s in spans] == [
        ("P01", "组织嵌入", "E", "我们𠮷祥社区有党支部"),
        ("P01", "组织嵌入", "A", "我们𠮷祥社区有党支部，党员亮身份。"),
        ("P01", "多元参与", "E", "议事会每月开一次，大家投票决定停车位。"),
        ("P01", "多元参与", "A", "议事会每月开一次，大家投票决定停车位。"),
    ]


def test_read_coded_routes_projects_and_maps_codebook(qdpx):
    corpus = read_coded(qdpx)
    assert corpus.coders == ["E", "A"] and "组织嵌入" in corpus.codebook
    book = Codebook([Code("V", "纵向引领"), Code("party", "组织嵌入", parent="V"),
                     Code("H", "横向共治"), Code("council", "多元参与", parent="H")])
    mapped = read_coded(qdpx, codebook=book)
    assert mapped.codebook is book
    assert set(mapped.used_codes()) == {"party", "council"}


def test_codebook_missing_a_used_code(qdpx):
    with pytest.raises(CodebookError, match="the project's code '多元参与'.*not in the codebook"):
        read_coded(qdpx, codebook=Codebook([Code("party", "组织嵌入")]))


def test_documents_for_precoding(qdpx):
    docs = read_project(qdpx).documents()
    assert [d.name for d in docs] == ["P01", "P02", "P03"]
    assert docs[0].text == TEXT1 and docs[0].path.endswith(f"#{S1}")


# -- round trips -------------------------------------------------------------------------------------------------
def test_round_trip_synthetic(qdpx, tmp_path):
    first = read_project(qdpx)
    out = write_qdpx(tmp_path / "back.qdpx", first)
    second = read_project(out)
    assert snapshot(second) == snapshot(first)
    names = zipfile.ZipFile(out).namelist()
    assert f"sources/{S1}.docx" in names and "sources/photo.jpg" in names
    # the BOM is dropped: QualCoder's importer would count it as a character and shift every coding
    assert first.sources[0].bom and not zipfile.ZipFile(out).read(f"sources/{S1}.txt").startswith(b"\xef\xbb\xbf")
    assert zipfile.ZipFile(out).read(f"sources/{S1}.docx") == b"PK not really a docx"


def test_round_trip_keeps_carriage_returns_in_inline_text(tmp_path):
    p = Project(name="cr")
    from autocode.io.qdpx import Source

    p.sources.append(Source("a5000000-0000-0000-0000-000000000001", "x", text="甲\r\n乙", inline=True))
    back = read_project(write_qdpx(tmp_path / "cr.qdpx", p))
    assert back.sources[0].text == "甲\r\n乙"


def test_written_project_is_valid(qdpx, tmp_path, schema):
    out = write_qdpx(tmp_path / "back.qdpx", read_project(qdpx))
    schema.validate(zipfile.ZipFile(out).read("project.qde").decode("utf-8"))


@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip_sample_files(shared_data, tmp_path, schema, name):
    src = shared_data / "refi-qda" / name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)  # the ATLAS.ti test project has no source files
        first = read_project(src)
        out = write_qdpx(tmp_path / "back.qdpx", first)
        second = read_project(out)
    schema.validate(zipfile.ZipFile(out).read("project.qde").decode("utf-8"))
    a, b = snapshot(first), snapshot(second)
    if src.suffix == ".qde":
        a.pop("files"), b.pop("files")
    assert a == b
    if src.suffix == ".qdpx":
        original = zipfile.ZipFile(src)
        copied = zipfile.ZipFile(out)
        for n in original.namelist():
            if not n.endswith((".qde", "/")) and n.endswith((".docx", ".root")):
                assert copied.read(n) == original.read(n)


def test_sample_counts(shared_data):
    qc = read_project(shared_data / "refi-qda" / "qc_demo.qdpx")
    assert len(qc.codebook) == 262 and qc.codebook.max_depth >= 2
    assert sum(len(x.codings) for s in qc.sources for x in s.selections) == 205
    corpus = qc.coded_corpus()
    assert corpus.coders == ["cp"] and len(corpus.used_codes()) > 20
    nvivo = read_project(shared_data / "refi-qda" / "nvivo_project.qdpx")
    assert len(nvivo.codebook) == 262 and [u.name for u in nvivo.users] == ["chrisp", "cp"]
    assert [s.rich_path.endswith(".docx") for s in nvivo.sources] == [True, True]


def test_atlas_ti_project_without_source_files():
    """The REFI test project (copied under MIT) has no source files: reported, not a crash."""
    with pytest.warns(AutocodeWarning, match="is missing"):
        p = read_project(ATLAS)
    assert len(p.codebook) == 14 and len(p.users) == 3
    assert len([pr for pr in p.problems if "is missing" in pr]) == 6
    assert {s.kind for s in p.sources} == {"TextSource", "PictureSource", "PDFSource", "AudioSource",
                                           "VideoSource"}
    text_codings = sum(len(x.codings) for s in p.sources for x in s.selections)
    assert text_codings == 7 and p.coders == ["Friedrich Markgraf"]
    assert p.codebook["Coke::diet Coke"].description == "non sucré"
    assert p.sections["Sets"] and p.sections["Graphs"] and p.sections["Links"]
    with pytest.raises(FormatError, match="No text source of the project has text to segment"):
        p.coded_corpus()


def test_project_lookups_and_problem_warning(qdpx):
    p = read_project(qdpx)
    ids = p.code_ids_by_guid()
    assert ids[C_PARTY.upper()] == "组织嵌入" and ids[C_V.upper()] == "纵向引领"
    assert list(ids.values()) == p.codebook.ids
    assert all(p.code_guid(cid).upper() == guid for guid, cid in ids.items())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p.warn_problems()  # no problems: no warning
    p.problems = [f"problem {i}" for i in range(5)]
    with pytest.warns(AutocodeWarning, match=r"problem 0; problem 1; problem 2; and 2 more \(see Project.problems\)"):
        p.warn_problems()


# -- .qdc codebooks --------------------------------------------------------------------------------------------
def test_qdc_round_trip(tmp_path, book):
    path = write_qdc(tmp_path / "codes.qdc", book)
    back = read_qdc(path)
    assert {c.name: (c.description, c.parent and back[c.parent].name) for c in back} == \
        {c.name: (c.description, c.parent and book[c.parent].name) for c in book}
    assert [back[c].name for c in back.roots] == ["纵向引领", "横向共治"]
    mapped = read_project(path, codebook=book).codebook
    assert sorted(mapped.ids) == sorted(book.ids)  # GUIDs derived from the ids find the codebook's codes again
    assert b'xmlns="urn:QDA-XML:codebook:1.0"' in path.read_bytes()


def test_qdc_cut_from_a_project(tmp_path):
    qde = zipfile.ZipFile(ATLAS).read("Project.qde").decode("utf-8")
    start, end = qde.index("<CodeBook>"), qde.index("</CodeBook>") + len("</CodeBook>")
    qdc = tmp_path / "atlas.qdc"
    qdc.write_text('<?xml version="1.0" encoding="utf-8"?>\n'
                   + qde[start:end].replace("<CodeBook>", '<CodeBook xmlns="urn:QDA-XML:codebook:1.0">'),
                   encoding="utf-8")
    assert len(read_qdc(qdc)) == 14


# -- writing suggestions -----------------------------------------------------------------------------------------
@pytest.fixture
def suggestions(book):
    from autocode.segment import segment_text

    segs = segment_text(TEXT1, "P01") + segment_text(TEXT2, "P02")
    codes = ["party", "council", "service"]
    scores = np.zeros((len(segs), 3))
    scores[1] = [0.91, 0.2, 0.1]
    scores[3] = [0.1, 0.72, 0.55]
    scores[5] = [0.0, 0.1, 0.88]
    return Suggestions(segs, codes, scores, np.array([0.5, 0.5, 0.6]), book, coder="autocode-tfidf.v1")


def test_write_precoded_with_documents(tmp_path, suggestions, book, validate):
    docs = [Document("P01", TEXT1), Document("P02", TEXT2)]
    out = tmp_path / "precoded.qdpx"
    write_precoded_qdpx(out, suggestions, documents=docs)
    validate(out)
    p = read_project(out, codebook=book)
    assert [u.name for u in p.users] == ["autocode-tfidf.v1"]
    assert p.sources[0].text == TEXT1  # CRLF and 𠮷 as in the transcript
    spans = [(s.document, s.code, s.start, s.end) for s in p.spans()]
    seg = suggestions.segments
    assert spans == [("P01", "party", seg[1].start, seg[1].end), ("P01", "council", seg[3].start, seg[3].end),
                     ("P02", "service", seg[5].start, seg[5].end)]
    desc = p.sources[0].selections[0].description
    assert "party 组织嵌入: score 0.910 (threshold 0.500, suggested)" in desc
    assert "below threshold" in desc
    corpus = p.coded_corpus()
    assert corpus.coders == ["autocode-tfidf.v1"]
    assert corpus.codings("autocode-tfidf.v1")[1] == {"party"}
    assert all(p.codebook[c].extra["guid"] == guid_for("code", c) for c in book.ids)


def test_write_precoded_without_documents(tmp_path, suggestions, book):
    segs = [Segment(s.document, s.segment, s.text, s.speaker) for s in suggestions.segments]  # no offsets
    sug = Suggestions(segs, suggestions.codes, suggestions.scores, suggestions.thresholds, book,
                      coder="m")
    out = tmp_path / "p.qdpx"
    write_precoded_qdpx(out, sug)
    p = read_project(out, codebook=book)
    assert p.sources[0].text == "\n".join(s.text for s in segs if s.document == "P01")
    for span in p.spans():
        text = p.sources[0 if span.document == "P01" else 1].text
        assert text[span.start:span.end] in {s.text for s in segs}


def test_write_precoded_unknown_segment_text(tmp_path, suggestions):
    with pytest.raises(Exception, match="is not in the text of document 'P01'"):
        write_precoded_qdpx(tmp_path / "p.qdpx", suggestions, documents=[Document("P01", "别的文本"),
                                                                            Document("P02", TEXT2)])


def test_write_suggestions_dispatches_qdpx(tmp_path, suggestions):
    from autocode.io import write_suggestions

    out = write_suggestions(tmp_path / "x.qdpx", suggestions, documents=[Document("P01", TEXT1),
                                                                      Document("P02", TEXT2)])
    assert read_project(out).coders == ["autocode-tfidf.v1"]
    out2 = write_qdpx(tmp_path / "y.qdpx", suggestions, documents=[Document("P01", TEXT1),
                                                                  Document("P02", TEXT2)])
    assert snapshot(read_project(out2))["sources"] == snapshot(read_project(out))["sources"]


def test_one_writer_for_precoded_projects(tmp_path, suggestions):
    """write_qdpx with suggestions, write_suggestions(.qdpx) and write_precoded_qdpx write the same entries."""
    from autocode.io import write_suggestions

    docs = [Document("P01", TEXT1), Document("P02", TEXT2)]
    paths = [write_precoded_qdpx(tmp_path / "a.qdpx", suggestions, documents=docs),
             write_qdpx(tmp_path / "b.qdpx", suggestions, documents=docs),
             write_suggestions(tmp_path / "c.qdpx", suggestions, documents=docs)]
    assert paths == [tmp_path / "a.qdpx", tmp_path / "b.qdpx", tmp_path / "c.qdpx"]

    def entries(path):
        with zipfile.ZipFile(path) as z:  # the creation times differ by a second at most: mask them
            return {n: re.sub(rb'DateTime="[^"]*"', b"", z.read(n)) for n in z.namelist()}

    assert entries(paths[0]) == entries(paths[1]) == entries(paths[2])


def test_precoded_added_to_the_input_project(qdpx, tmp_path, validate):
    """Pre-coding the documents of a project writes that project back with the model's codings added."""
    from autocode.segment import segment_text

    project = read_project(qdpx)
    docs = project.documents()
    segs = [s for d in docs for s in segment_text(d.text, d.name)]
    book = Codebook([Code("party", "组织嵌入"), Code("new", "新代码", parent="sub"), Code("sub", "新类别")])
    scores = np.array([[0.9, 0.1] if "党支部" in s.text else [0.1, 0.8] if "食堂" in s.text else [0, 0]
                       for s in segs])
    sug = Suggestions(segs, ["party", "new"], scores, np.array([0.5, 0.5]), book, coder="model")
    out = tmp_path / "precoded.qdpx"
    write_precoded_qdpx(out, sug, documents=docs)
    validate(out)
    back = read_project(out)
    assert [u.name for u in back.users] == ["E", "A", "model"]
    assert back.code_guid("组织嵌入") == C_PARTY  # matched by name: the reviewer's code, not a copy
    assert back.codebook["新代码"].parent == "新类别"  # added beside the reviewer's codes, with its category
    assert back.coders == ["E", "A", "model"]
    model_spans = [(s.document, s.code, docs[0 if s.document == "P01" else 2].text[s.start:s.end])
                   for s in back.spans() if s.coder == "model"]
    assert model_spans == [("P01", "组织嵌入", "我们𠮷祥社区有党支部，党员亮身份。"), ("P03", "新代码", INLINE[2:])]
    kept = snapshot(project)
    again = snapshot(back)
    assert again["sections"] == kept["sections"] and again["notes"] == kept["notes"]


# -- security and malformed input ------------------------------------------------------------------------------
@pytest.mark.parametrize("qde", [hostile.BILLION_LAUGHS, hostile.EXTERNAL_ENTITY])
def test_entities_refused(tmp_path, qde):
    with pytest.raises(FormatError, match=r"entry 'project.qde': The XML declares a DTD or entities"):
        read_project(make_qdpx(tmp_path / "p.qdpx", qde))


def test_malformed_xml_names_the_entry(tmp_path):
    with pytest.raises(FormatError, match=r"entry 'project.qde': Not well-formed XML at line 1"):
        read_project(make_qdpx(tmp_path / "p.qdpx", "<Project><Users></Project>"))


@pytest.mark.parametrize("name", hostile.ZIP_SLIP_NAMES)
def test_zip_traversal_refused(tmp_path, name):
    path = make_qdpx(tmp_path / "p.qdpx", project_xml(), {name: b"x"})
    with pytest.raises(FormatError, match=r"entry .*evil.txt.*leaves the archive \(path traversal\)"):
        read_project(path)


def test_zip_bomb_ratio_refused(tmp_path):
    path = hostile.zip_bomb(tmp_path / "p.qdpx", project_xml())
    with pytest.raises(FormatError, match=r"entry 'sources/big.txt'.*compressed \d+ times.*zip bomb"):
        read_project(path)


def test_size_caps(tmp_path):
    path = make_qdpx(tmp_path / "p.qdpx", project_xml(), source_files())
    with pytest.raises(FormatError, match=r"entry 'project.qde'.*more than the 1000 allowed"):
        read_project(path, limits=Limits(max_member_bytes=1000))
    with pytest.raises(FormatError, match="uncompresses to more than 2000 bytes"):
        read_project(path, limits=Limits(max_total_bytes=2000))
    with pytest.raises(FormatError, match="has 5 entries, more than the 3 allowed"):
        read_project(path, limits=Limits(max_members=3))


def test_lying_size_header_is_capped(tmp_path):
    """An entry whose header claims a small size still cannot be read beyond the cap."""
    path = make_qdpx(tmp_path / "p.qdpx", "<Project/>", {"sources/a.txt": b"x" * 5000})
    with SafeZip(path, Limits(max_member_bytes=100_000)) as zf:
        zf.limits = Limits(max_member_bytes=100)  # as if the header had claimed less than it holds
        with pytest.raises(FormatError, match="entry 'sources/a.txt'.*more than the size allowed"):
            zf.read("sources/a.txt")


def test_not_a_zip_and_no_project(tmp_path):
    bad = tmp_path / "bad.qdpx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(FormatError, match="Not a zip archive"):
        read_project(bad)
    empty = tmp_path / "empty.qdpx"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("readme.txt", "x")
    with pytest.raises(FormatError, match="no project.qde entry. Is it a REFI-QDA .qdpx export"):
        read_project(empty)
    nested = make_qdpx(tmp_path / "nested.qdpx", "<Project/>")
    with zipfile.ZipFile(nested, "w") as zf:
        zf.writestr("访谈/project.qde", "<Project/>")
    with pytest.raises(FormatError, match="It has '访谈/project.qde': .*zip the contents of that folder"):
        read_project(nested)
    with pytest.raises(FormatError, match="File not found"):
        read_project(tmp_path / "missing.qdpx")


@pytest.mark.parametrize("ref", hostile.SOURCE_ESCAPES)
def test_plain_text_path_outside_the_archive(tmp_path, ref):
    xml = project_xml().replace(f'plainTextPath="internal://{S2}.txt"', f'plainTextPath="{ref}"')
    with pytest.raises(FormatError, match=r'<TextSource name="P02.docx".*points outside the project archive'):
        read_project(make_qdpx(tmp_path / "p.qdpx", xml, source_files()))


def test_plain_text_path_traversal(tmp_path):
    xml = project_xml().replace(f'plainTextPath="internal://{S2}.txt"', 'plainTextPath="internal://../../x.txt"')
    with pytest.raises(FormatError, match=r"<TextSource .*leaves the archive \(path traversal\)"):
        read_project(make_qdpx(tmp_path / "p.qdpx", xml, source_files()))


@pytest.mark.parametrize(("old", "new", "message"), [
    (f'<User guid="{U_A}" name="A"/>', '<User name="A"/>', r'<User name="A">: .*no \'guid\' attribute'),
    (f'guid="{C_COUNCIL}" name="多元参与"', f'guid="{C_COUNCIL}"', r"<Code guid=\"4.*no 'name' attribute"),
    ('startPosition="', 'startPosition="x', r"<PlainTextSelection name=\"我们𠮷祥社区…\".*startPosition must be a whole "
                                            r"number, found 'x"),
    (f'<CodeRef targetGUID="{C_COUNCIL}"/></Coding>\n', '</Coding>\n', r"<Coding guid=.*The coding has no <CodeRef>"),
    (f'<Coding guid="e1000000-0000-0000-0000-000000000002" creatingUser="{U_A}"><CodeRef targetGUID="{C_PARTY}"/>',
     f'<Coding guid="e1000000-0000-0000-0000-000000000002" creatingUser="{U_A}"><CodeRef '
     'targetGUID="99999999-0000-0000-0000-000000000000"/>',
     r"<Coding guid=\"e1000000-0000-0000-0000-000000000002\"> in <PlainTextSelection.*code 99999999"),
    (f'guid="{C_H}"', f'guid="{C_V}"', r"Two codes share the GUID"),
])
def test_malformed_elements_are_named(tmp_path, old, new, message):
    xml = project_xml()
    assert old in xml
    with pytest.raises(FormatError, match=message):
        read_project(make_qdpx(tmp_path / "p.qdpx", xml.replace(old, new, 1), source_files()))


def test_backwards_range_and_wrong_root(tmp_path):
    xml = project_xml().replace('endPosition="', 'endPosition="-', 1)
    with pytest.raises(FormatError, match="do not make a range"):
        read_project(make_qdpx(tmp_path / "p.qdpx", xml, source_files()))
    with pytest.raises(FormatError, match=r"Expected a <Project> root element .*found <CodeBook>"):
        read_project(make_qdpx(tmp_path / "q.qdpx", "<CodeBook/>"))
    qdc = tmp_path / "x.qdc"
    qdc.write_text("<Project/>", encoding="utf-8")
    with pytest.raises(FormatError, match=r"Expected a <CodeBook> root element"):
        read_project(qdc)


def test_bare_qde_reads_sources_next_to_it(tmp_path):
    (tmp_path / "sources").mkdir()
    for name, data in source_files().items():
        (tmp_path / name).write_bytes(data)
    qde = tmp_path / "project.qde"
    qde.write_text(project_xml(), encoding="utf-8")
    p = read_project(qde)
    assert p.sources[0].text == TEXT1 and p.problems == []
    out = write_qdpx(tmp_path / "out.qdpx", p)
    assert snapshot(read_project(out))["sources"] == snapshot(p)["sources"]


def test_cli_train_and_precode_on_projects(tmp_path):
    """train --data project.qdpx, precode project.qdpx --out precoded.qdpx, all in process."""
    from conftest import TOPICS

    from autocode.cli import main

    lines = []
    for d in range(6):
        turns = []
        for code, sents in TOPICS.items():
            for k in range(2):
                turns.append((code, f"受访者：{sents[(d + k) % 3]}。"))
        lines.append(turns)
    sources, files = [], {}
    codes = {c: f"c{i}000000-0000-0000-0000-000000000000" for i, c in enumerate(TOPICS, 1)}
    for d, turns in enumerate(lines):
        text = "\r\n".join(t for _, t in turns) + "\r\n"
        guid = f"5{d}000000-0000-0000-0000-000000000000"
        files[f"sources/{guid}.txt"] = text.encode("utf-8")
        sels = []
        for k, (code, t) in enumerate(turns):
            a = text.index(t) + 4
            b = a + len(t) - 4
            sels.append(f'<PlainTextSelection guid="6{d}{k:02d}0000-0000-0000-0000-000000000000" startPosition="{a}" '
                        f'endPosition="{b}"><Coding guid="7{d}{k:02d}0000-0000-0000-0000-000000000000" '
                        f'creatingUser="{U_E}"><CodeRef targetGUID="{codes[code]}"/></Coding></PlainTextSelection>')
        sources.append(f'<TextSource guid="{guid}" name="D{d}.txt" plainTextPath="internal://{guid}.txt">'
                       + "".join(sels) + "</TextSource>")
    code_xml = "".join(f'<Code guid="{g}" name="{c}" isCodable="true"/>' for c, g in codes.items())
    qde = (f'<Project xmlns="urn:QDA-XML:project:1.0" name="t"><Users><User guid="{U_E}" name="E"/></Users>'
           f"<CodeBook><Codes>{code_xml}</Codes></CodeBook><Sources>{''.join(sources)}</Sources></Project>")
    project = make_qdpx(tmp_path / "coded.qdpx", qde, files)
    model = tmp_path / "model"
    assert main(["-q", "train", "--data", str(project), "--out", str(model), "--folds", "3"]) == 0
    out = tmp_path / "precoded.qdpx"
    assert main(["-q", "precode", "--model", str(model), str(project), "--out", str(out), "--min-score", "0"]) == 0
    back = read_project(out)
    assert len(back.users) == 2 and back.users[1].name != "E"
    model_spans = [s for s in back.spans() if s.coder == back.users[1].name]
    assert model_spans and {s.code for s in model_spans} <= set(TOPICS)
    # the model's codes are the project's codes: same GUIDs
    assert [back.code_guid(c) for c in TOPICS] == list(codes.values())


def test_sources_folder_name_is_matched_ignoring_case(tmp_path):
    files = {name.replace("sources/", "Sources/"): data for name, data in source_files().items()}
    p = read_project(make_qdpx(tmp_path / "p.qdpx", project_xml(), files))
    assert p.sources[0].text == TEXT1 and p.problems == []
    back = zipfile.ZipFile(write_qdpx(tmp_path / "back.qdpx", p)).namelist()
    assert sorted(back) == sorted(["project.qde", f"Sources/{S1}.txt", f"Sources/{S2}.txt", f"Sources/{S1}.docx",
                                   "Sources/photo.jpg"])  # one folder, spelt as the exporting tool did


def test_precode_inputs_from_a_project(qdpx):
    from autocode import read_inputs

    segments, documents = read_inputs([str(qdpx)])
    assert [d.name for d in documents] == ["P01", "P02", "P03"]
    assert segments[1].document == "P01" and TEXT1[segments[1].start:segments[1].end] == segments[1].text


# -- rich text: NVivo fills only the richTextPath .docx, ATLAS.ti can lack the .txt ------------------------------
RICH_PARAS = ["访谈者：您好，请介绍一下社区。", "受访者：我们𠮷祥社区有党支部，\t党员亮身份。\n也有楼栋长。", "",
              "访谈者：居民议事会呢？"]
RICH_TABLE = [("受访者", "议事会每月开一次，大家投票决定停车位。")]
# the plain text REFI positions count: paragraphs in reading order (table cells row by row), each + "\n"
RICH_TEXT = "".join(p + "\n" for p in RICH_PARAS) + "".join(f"{a}\n{b}\n" for a, b in RICH_TABLE)
RICH_CODED = {"d5000000-0000-0000-0000-000000000001": ("我们𠮷祥社区有党支部", C_PARTY),
              "d5000000-0000-0000-0000-000000000002": ("议事会每月开一次，大家投票决定停车位。", C_COUNCIL),
              "d5000000-0000-0000-0000-000000000003": ("居民议事会", C_COUNCIL)}


def rich_docx() -> bytes:
    import io

    import docx

    d = docx.Document()
    for p in RICH_PARAS:
        d.add_paragraph(p)
    table = d.add_table(rows=len(RICH_TABLE), cols=2)
    for i, (a, b) in enumerate(RICH_TABLE):
        table.cell(i, 0).text, table.cell(i, 1).text = a, b
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def rich_project_xml(plain: str | None = f'plainTextPath="internal://{S1}.txt" ') -> str:
    sels = "".join(
        f'<PlainTextSelection guid="{g}" startPosition="{a}" endPosition="{b}" creatingUser="{U_E}">'
        f'<Coding guid="e5{g[2:]}" creatingUser="{U_E}"><CodeRef targetGUID="{code}"/></Coding></PlainTextSelection>'
        for g, (piece, code) in RICH_CODED.items() for a, b in [_positions(RICH_TEXT, _span(RICH_TEXT, piece))])
    return f"""<?xml version="1.0" encoding="utf-8"?>
<Project xmlns="urn:QDA-XML:project:1.0" name="NVivo 风格" origin="NVivo 14.23">
  <Users><User guid="{U_E}" name="E"/></Users>
  <CodeBook><Codes><Code guid="{C_PARTY}" name="组织嵌入" isCodable="true"/>
    <Code guid="{C_COUNCIL}" name="多元参与" isCodable="true"/></Codes></CodeBook>
  <Sources><TextSource guid="{S1}" name="P01" {plain or ""}richTextPath="internal://{S1}.docx">{sels}</TextSource>
  </Sources>
  <Notes><Note guid="b5000000-0000-0000-0000-000000000001" name="备忘" plainTextPath="internal://n1.txt"
    richTextPath="internal://n1.docx"/></Notes>
</Project>"""


def _note_docx() -> bytes:
    import io

    import docx

    d = docx.Document()
    d.add_paragraph("党建引领是核心。")
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


@pytest.mark.parametrize("plain_txt", [b"\n", b"", b"\xef\xbb\xbf"], ids=["newline", "empty", "bom-only"])
def test_nvivo_text_only_in_the_rich_text_docx(tmp_path, plain_txt):
    """NVivo's export: the .txt files are empty, the text is in the .docx; codings land on the right text."""
    path = make_qdpx(tmp_path / "nvivo.qdpx", rich_project_xml(),
                     {f"sources/{S1}.txt": plain_txt, f"sources/{S1}.docx": rich_docx(),
                      "sources/n1.txt": b"\n", "sources/n1.docx": _note_docx()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = read_project(path)
    src = p.sources[0]
    assert src.text == RICH_TEXT and p.problems == []
    assert [src.text[x.start:x.end] for x in src.selections] == [piece for piece, _ in RICH_CODED.values()]
    assert p.notes[0].text == "党建引领是核心。\n"
    corpus = p.coded_corpus(max_chars=None)
    by_text = {s.text: codes for s, codes in zip(corpus.segments, corpus.codings("E"))}
    assert by_text["我们𠮷祥社区有党支部，\t党员亮身份。\n也有楼栋长。"] == {"组织嵌入"}
    assert by_text["居民议事会呢？"] == {"多元参与"}
    assert by_text["议事会每月开一次，大家投票决定停车位。"] == {"多元参与"}
    assert by_text["您好，请介绍一下社区。"] == set()


@pytest.mark.parametrize("plain", [f'plainTextPath="internal://{S1}.txt" ', None], ids=["txt-missing", "no-path"])
def test_atlas_ti_source_without_plain_text_file(tmp_path, plain):
    path = make_qdpx(tmp_path / "atlas.qdpx", rich_project_xml(plain),
                     {f"Sources/{S1}.docx": rich_docx(), "Sources/n1.docx": _note_docx()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = read_project(path)
    assert p.sources[0].text == RICH_TEXT and p.problems == []
    sel = p.sources[0].selections[1]
    assert p.sources[0].text[sel.start:sel.end] == "议事会每月开一次，大家投票决定停车位。"


def test_rich_text_project_round_trip(tmp_path, validate):
    """Written back, the project carries the text in its plain-text file and keeps the .docx as it was."""
    docx_bytes = rich_docx()
    path = make_qdpx(tmp_path / "nvivo.qdpx", rich_project_xml(),
                     {f"sources/{S1}.txt": b"\n", f"sources/{S1}.docx": docx_bytes,
                      "sources/n1.txt": b"\n", "sources/n1.docx": _note_docx()})
    p = read_project(path)
    out = write_qdpx(tmp_path / "copy.qdpx", p)
    validate(out)
    with zipfile.ZipFile(out) as zf:
        assert zf.read(f"sources/{S1}.txt").decode("utf-8") == RICH_TEXT
        assert zf.read(f"sources/{S1}.docx") == docx_bytes
    again = read_project(out)
    assert snapshot(again)["sources"] == snapshot(p)["sources"]


def test_plain_text_wins_when_it_has_text(qdpx):
    """A filled .txt is read as before; its .docx (here not even a Word file) is not opened."""
    assert read_project(qdpx).sources[0].text == TEXT1


def test_rich_text_that_is_no_docx(tmp_path):
    path = make_qdpx(tmp_path / "p.qdpx", rich_project_xml(),
                     {f"sources/{S1}.txt": b"", f"sources/{S1}.docx": b"PK not really a docx"})
    with pytest.raises(FormatError) as err:
        read_project(path)
    assert str(err.value) == (
        f"{path}, entry 'sources/{S1}.docx' of <TextSource name=\"P01\" guid=\"{S1}\">: The rich-text source is not "
        "a Word .docx (not a zip archive). Export the project again, or give the source's text in its "
        "plainTextPath file.")


def test_rich_text_docx_without_document_xml(tmp_path):
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/styles.xml", "<styles/>")
    path = make_qdpx(tmp_path / "p.qdpx", rich_project_xml(),
                     {f"sources/{S1}.txt": b"", f"sources/{S1}.docx": buf.getvalue()})
    with pytest.raises(FormatError, match=r"of <TextSource name=\"P01\" guid=\"[^\"]+\">: The rich-text source has "
                                          r"no word/document.xml: it is not a Word .docx.$"):
        read_project(path)


def test_rich_text_zip_bomb_refused(tmp_path):
    """The .docx inside the archive is opened with the same caps as the archive itself."""
    import io

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("word/document.xml", b"<w:document>" + b" " * (3 * 2**20) + b"</w:document>")
    path = make_qdpx(tmp_path / "p.qdpx", rich_project_xml(),
                     {f"sources/{S1}.txt": b"", f"sources/{S1}.docx": buf.getvalue()})
    with pytest.raises(FormatError) as err:
        read_project(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}, entry 'sources/{S1}.docx' of <TextSource name=\"P01\" guid=\"{S1}\">: "
                          "The rich-text source (entry 'word/document.xml') is not readable: The entry is compressed ")
    assert msg.endswith("times, more than the 200 allowed (a zip bomb?).")
    with pytest.raises(FormatError, match=r"is not readable: The entry uncompresses to \d+ bytes, more than the "
                                          r"1000000 allowed\."):
        read_project(path, limits=Limits(max_member_bytes=1_000_000))


def test_docx_plain_text_reading_order_and_tracked_changes():
    """Paragraphs and table cells in order; deleted text, text boxes and field codes left out."""
    import io

    from autocode.io.qdpx._richtext import W, docx_plain_text

    body = (
        "<w:p><w:r><w:t>问：</w:t></w:r><w:del><w:r><w:delText>删掉的</w:delText></w:r></w:del>"
        "<w:ins><w:r><w:t>加上的</w:t></w:r></w:ins><w:r><w:br w:type=\"page\"/><w:t xml:space=\"preserve\"> 好 </w:t>"
        "</w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>答</w:t></w:r></w:p></w:tc><w:tc><w:p><w:r><w:t>一</w:t></w:r></w:p>"
        "<w:tbl><w:tr><w:tc><w:p><w:r><w:t>内表</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr></w:tbl>"
        "<w:sdt><w:sdtContent><w:p><w:r><w:fldChar/><w:instrText>PAGE</w:instrText><w:t>3</w:t></w:r>"
        "<w:r><w:drawing><w:txbxContent><w:p><w:r><w:t>文本框</w:t></w:r></w:p></w:txbxContent></w:drawing>"
        "</w:r></w:p></w:sdtContent></w:sdt>"
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", f'<w:document xmlns:w="{W}"><w:body>{body}</w:body></w:document>')
    assert docx_plain_text(buf.getvalue(), "p.qdpx", "entry 'x.docx'") == "问：加上的 好 \n答\n一\n内表\n3\n"


def test_selections_counted_in_other_units_are_placed_by_their_names(tmp_path):
    """QualCoder's coding screen counts UTF-16 units for the codings a reviewer makes around characters outside
    the BMP and code points for the rest; its export names every selection by its text. Each selection is placed
    where its name is the text it selects."""
    model_sel = _span(TEXT1, "我们𠮷祥社区有党支部")  # written by autocode: code points
    reviewer = _positions(TEXT1, _span(TEXT1, "党员亮身份"), "utf16")  # after 𠮷: one unit later
    council = _positions(TEXT1, _span(TEXT1, "议事会每月开一次，大家投票决定停车位。"), "utf16")

    def sel(i, name, span, user):
        return (f'<PlainTextSelection guid="d2000000-0000-0000-0000-00000000000{i}" name="{name}" '
                f'startPosition="{span[0]}" endPosition="{span[1]}" creatingUser="{user}">'
                f'<Coding guid="e2000000-0000-0000-0000-00000000000{i}" creatingUser="{user}">'
                f'<CodeRef targetGUID="{C_PARTY}"/></Coding></PlainTextSelection>')

    xml = (f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="urn:QDA-XML:project:1.0" name="p">'
           f'<Users><User guid="{U_E}" name="autocode-tfidf.v1"/><User guid="{U_A}" name="研究者A"/></Users>'
           f'<CodeBook><Codes><Code guid="{C_PARTY}" name="组织嵌入" isCodable="true"/></Codes></CodeBook>'
           f'<Sources><TextSource guid="{S1}" name="P01" plainTextPath="internal://{S1}.txt">'
           + sel(1, "我们𠮷祥社区有党支部", model_sel, U_E) + sel(2, "党员亮身份", reviewer, U_A)
           + sel(3, "议事会每月开一次，大家投票决定停车位。", council, U_A)
           + "</TextSource></Sources></Project>")
    path = make_qdpx(tmp_path / "mixed.qdpx", xml, {f"sources/{S1}.txt": TEXT1.encode("utf-8")})
    with pytest.warns(AutocodeWarning, match=r"selection\(s\) are counted in other units than the rest"):
        src = read_project(path).sources[0]
    assert [src.text[s.start:s.end] for s in src.selections] == [
        "我们𠮷祥社区有党支部", "党员亮身份", "议事会每月开一次，大家投票决定停车位。"]
    # a convention given by the user is applied as given
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        fixed = read_project(path, positions="chars").sources[0]
    assert fixed.text[fixed.selections[1].start:fixed.selections[1].end] != "党员亮身份"
