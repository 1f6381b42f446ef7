"""Excel .xlsx for every table autocode reads or writes: codebook, coded segments, pre-coded output."""

from __future__ import annotations

import zipfile

import pytest

from autocode import Codebook, CodingModel, FormatError, read_coded, write_coded, write_suggestions
from autocode.cli import main
from autocode.io._xlsx import read_xlsx, write_xlsx

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


def test_round_trip_keeps_text_numbers_and_awkward_characters(tmp_path):
    rows = [["受访者", "党支部带头，\n议事会\"每月\"开一次。", 3, 0.25],
            ["ctl\x01\x1f", "_x0041_ stays literal", "  spaces  ", ""],
            ["<&>", "𠮷", -7, 1e20]]
    write_xlsx(tmp_path / "t.xlsx", ["a", "b", "c", "d"], rows)
    back = read_xlsx(tmp_path / "t.xlsx")
    assert back[0] == (1, ["a", "b", "c", "d"])
    assert back[1] == (2, ["受访者", "党支部带头，\n议事会\"每月\"开一次。", "3", "0.25"])
    assert back[2] == (3, ["ctl\x01\x1f", "_x0041_ stays literal", "  spaces  "])  # trailing empty cell dropped
    assert back[3] == (4, ["<&>", "𠮷", "-7", "1e+20"])


def test_cell_over_excels_limit_is_an_error(tmp_path):
    with pytest.raises(FormatError, match=r"t\.xlsx: Cell B2 holds 40000 characters; an Excel cell holds at most "
                                          r"32767\. Write \.csv or \.jsonl instead\."):
        write_xlsx(tmp_path / "t.xlsx", ["a", "b"], [["x", "长" * 40_000]])


def _workbook(path, sheet_xml: str, shared: str | None = None):
    """An .xlsx as Excel writes it: shared strings, a relationship-named sheet path."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("_rels/.rels", '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                                  f'<Relationship Id="rId1" Type="{REL}/officeDocument" Target="xl/workbook.xml"/>'
                                  "</Relationships>")
        z.writestr("xl/workbook.xml", f'<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
                                      '<sheet name="编码" sheetId="1" r:id="rId7"/><sheet name="other" sheetId="2" '
                                      'r:id="rId8"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels",
                   '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                   f'<Relationship Id="rId7" Type="{REL}/worksheet" Target="/xl/worksheets/data.xml"/>'
                   f'<Relationship Id="rId8" Type="{REL}/worksheet" Target="worksheets/sheet2.xml"/>'
                   f'<Relationship Id="rId9" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
                   "</Relationships>")
        z.writestr("xl/worksheets/data.xml", f'<worksheet xmlns="{MAIN}"><sheetData>{sheet_xml}</sheetData></worksheet>')
        z.writestr("xl/worksheets/sheet2.xml", f'<worksheet xmlns="{MAIN}"><sheetData><row r="1"><c r="A1" '
                                               't="inlineStr"><is><t>wrong sheet</t></is></c></row></sheetData>'
                                               "</worksheet>")
        if shared is not None:
            z.writestr("xl/sharedStrings.xml", f'<sst xmlns="{MAIN}">{shared}</sst>')
    return path


def test_excel_written_workbook_shared_strings_rich_text_and_gaps(tmp_path):
    shared = ("<si><t>id</t></si><si><t>name</t></si><si><r><t>党</t></r><r><rPr><b/></rPr><t>建</t></r>"
              "<rPh><t>とう</t></rPh></si><si><t>parent</t></si>")
    sheet = ('<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c><c r="D1" t="s"><v>3</v></c></row>'
             '<row r="3"><c r="A3" t="str"><v>party</v></c><c r="B3" t="s"><v>2</v></c></row>'
             '<row r="4"><c r="A4"><v>12.0</v></c><c r="B4" t="b"><v>1</v></c><c r="C4"><v>0.5</v></c></row>')
    rows = read_xlsx(_workbook(tmp_path / "cb.xlsx", sheet, shared))
    assert rows == [(1, ["id", "name", "", "parent"]), (3, ["party", "党建"]), (4, ["12", "TRUE", "0.5"])]


def test_bad_shared_string_index_names_the_row(tmp_path):
    p = _workbook(tmp_path / "b.xlsx", '<row r="5"><c r="A5" t="s"><v>9</v></c></row>', "<si><t>a</t></si>")
    with pytest.raises(FormatError, match=r"b\.xlsx, row 5: Cell A5 points to shared string '9', which the "
                                          r"workbook lacks\."):
        read_xlsx(p)


def test_codebook_and_coded_table_from_xlsx(tmp_path, book, coded):
    book.write_csv(tmp_path / "codebook.xlsx")
    assert Codebook.read_csv(tmp_path / "codebook.xlsx") == book
    write_coded(tmp_path / "coded.xlsx", coded)
    back = read_coded(tmp_path / "coded.xlsx", codebook=book)
    assert back.coders == coded.coders
    assert [s.text for s in back.segments] == [s.text for s in coded.segments]
    assert all(back.codings(c) == coded.codings(c) for c in coded.coders)


def test_codebook_xlsx_as_people_type_it(tmp_path):
    write_xlsx(tmp_path / "cb.xlsx", ["name", "Parent", "description"],
               [["横向共治", "", ""], ["多元参与", "横向共治", "居民通过议事会参与"]])
    book = Codebook.read_csv(tmp_path / "cb.xlsx")
    assert book.ids == ["横向共治", "多元参与"] and book["多元参与"].parent == "横向共治"


def test_precoded_output_as_xlsx_reads_back(tmp_path, book, coded):
    model = CodingModel(book, random_state=0, n_splits=3, tune=False).fit(coded)
    sug = model.suggest(coded.segments[:6])
    write_suggestions(tmp_path / "pre.xlsx", sug)
    header = read_xlsx(tmp_path / "pre.xlsx")[0][1]
    assert header[:6] == ["document", "segment", "speaker", "text", "coder", "codes"] and "max_score" in header
    back = read_coded(tmp_path / "pre.xlsx", codebook=book)
    assert back.coders == [sug.coder] and [s.text for s in back.segments] == [s.text for s in coded.segments[:6]]


def test_cli_precode_writes_xlsx(tmp_path, book, coded, capsys):
    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    assert main(["-q", "train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"),
                 "--folds", "3", "--no-tune", "--out", str(tmp_path / "model")]) == 0
    (tmp_path / "new.txt").write_text("访谈者：请问？\n受访者：网格员上门为老人提供服务。\n", encoding="utf-8")
    assert main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "new.txt"), "--out",
                 str(tmp_path / "pre.xlsx")]) == 0
    rows = read_xlsx(tmp_path / "pre.xlsx")
    assert rows[2][1][3] == "网格员上门为老人提供服务。"
    # an .xlsx is also accepted as precode input
    assert main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "pre.xlsx"), "--out",
                 str(tmp_path / "again.csv")]) == 0
