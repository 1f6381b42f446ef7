"""Tables as people and autocode write them: strict CSV, long cells, code names for ids, codebooks without ids,
pre-coded output read back as data, and the CLI options around them."""

from __future__ import annotations

import json
import warnings

import pytest

from autocode import (
    AutocodeWarning,
    Code,
    Codebook,
    CodebookError,
    CodedCorpus,
    CodingModel,
    FormatError,
    Segment,
    read_coded,
    write_coded,
    write_suggestions,
)
from autocode.cli import main

HEADER = "document,segment,speaker,text,coder,codes\n"


def write(tmp_path, text, name="coded.csv"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


# -- strict CSV -------------------------------------------------------------------------------------------
def test_short_row_is_an_error_naming_file_and_row(tmp_path):
    p = write(tmp_path, HEADER + "P01,1,受访者,我们社区有党支部。,E,party\nP01,2,受访者,议事会\n")
    with pytest.raises(FormatError, match=r"coded\.csv, row 3: The row has 4 field\(s\), the header has 6\. Quote "
                                          r"texts that contain ',' or line breaks"):
        read_coded(p)


def test_unclosed_quote_is_an_error_not_fewer_rows(tmp_path):
    rows = "".join(f"P01,{i},受访者,第{i}段。,E,party\n" for i in range(1, 20))
    p = write(tmp_path, HEADER + rows.replace("第5段。", '"第5段。', 1))
    with pytest.raises(FormatError, match=r"coded\.csv, row 6 \(line 6\): A quote \(\"\) opened here is never closed, "
                                          r"so the rest of the file would be one field\."):
        read_coded(p)


def test_text_after_a_closing_quote_is_an_error(tmp_path):
    p = write(tmp_path, HEADER + 'P01,1,受访者,"他说"好,E,party\n')
    with pytest.raises(FormatError, match=r"coded\.csv, row 2 \(line 2\): Text follows a closing quote"):
        read_coded(p)


def test_field_over_the_limit_is_an_error(tmp_path, monkeypatch):
    import autocode.io._tabular as tabular

    monkeypatch.setattr(tabular, "FIELD_LIMIT", 1000)
    p = write(tmp_path, HEADER + f"P01,1,受访者,{'长' * 2000},E,party\n")
    with pytest.raises(FormatError, match=r"coded\.csv, row 2 \(line 2\): A field is longer than 1000 characters\. "
                                          r"Split the text"):
        read_coded(p)


def test_quotes_inside_an_unquoted_field_are_text(tmp_path):
    p = write(tmp_path, HEADER + 'P01,1,受访者,他说"好"的,E,party\n')
    assert read_coded(p).segments[0].text == '他说"好"的'


def test_autocode_reads_back_a_200000_character_cell_it_wrote(tmp_path, book):
    long_text = ("社区党支部带领居民开展志愿服务，" * 12_500)[:200_000]
    corpus = CodedCorpus([Segment("P01", "1", long_text, "受访者")], {"E": {("P01", "1"): {"party"}}}, codebook=book)
    write_coded(tmp_path / "coded.csv", corpus)
    back = read_coded(tmp_path / "coded.csv", codebook=book)
    assert back.segments[0].text == long_text and back.codings("E") == [frozenset({"party"})]


def test_a_200000_character_cell_from_jsonl_round_trips_through_precode(tmp_path, book, coded):
    long_text = ("网格员上门为老人提供服务。" * 16_000)[:200_000]
    (tmp_path / "in.jsonl").write_text(json.dumps({"document": "P09", "segment": "1", "text": long_text},
                                                  ensure_ascii=False) + "\n", encoding="utf-8")
    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    assert main(["-q", "train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"),
                 "--folds", "3", "--no-tune", "--out", str(tmp_path / "model")]) == 0
    assert main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "in.jsonl"), "--out",
                 str(tmp_path / "pre.csv")]) == 0
    assert main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "pre.csv"), "--out",
                 str(tmp_path / "again.csv")]) == 0
    assert read_coded(tmp_path / "again.csv").segments[0].text == long_text


# -- code names, codebooks -----------------------------------------------------------------------------------
def test_code_names_are_accepted_where_ids_are(tmp_path, book):
    p = write(tmp_path, HEADER + "P01,1,受访者,党支部带头。,E,组织嵌入；多元参与\nP01,2,受访者,网格员。,E,service\n")
    corpus = read_coded(p, codebook=book)
    assert corpus.codings("E") == [frozenset({"party", "council"}), frozenset({"service"})]


def test_ambiguous_code_name_lists_the_candidates(tmp_path):
    book = Codebook([Code("grid", "网格"), Code("grid2", "网格"), Code("party", "党建")])
    p = write(tmp_path, HEADER + "P01,1,受访者,网格员。,E,网格\n")
    with pytest.raises(CodebookError, match=r"coded\.csv, row 2: '网格' is the name of 2 codes \('grid', 'grid2'\): "
                                            r"give the id instead\."):
        read_coded(p, codebook=book)


def test_an_id_wins_over_another_codes_name():
    book = Codebook([Code("网格", "grid work"), Code("g", "网格")])
    assert book.resolve("网格") == "网格" and book.resolve("grid work") == "网格"


def test_codebook_without_id_column_gets_ids_from_names(tmp_path):
    p = write(tmp_path, "name,description,parent\n横向共治,,\n多元参与,议事会,横向共治\n", "cb.csv")
    book = Codebook.read_csv(p)
    assert book.ids == ["横向共治", "多元参与"] and book["多元参与"].parent == "横向共治"


def test_parent_given_by_name(tmp_path):
    p = write(tmp_path, "id,name,parent\nH,横向共治,\ncouncil,多元参与,横向共治\n", "cb.csv")
    assert Codebook.read_csv(p)["council"].parent == "H"


@pytest.mark.parametrize("cid", ["a;b", "a；b"])
def test_codebook_id_with_a_semicolon_is_refused(tmp_path, cid):
    p = write(tmp_path, f"id,name\nok,好\n{cid},坏\n", "cb.csv")
    with pytest.raises(CodebookError, match=rf"cb\.csv, row 3: The code id '{cid}' contains ';', which separates "
                                            r"codes in a table's codes column\. Choose an id without"):
        Codebook.read_csv(p)
    with pytest.raises(CodebookError, match=r"contains ';'"):
        Code(cid)


def test_codebook_empty_name_without_id_column(tmp_path):
    p = write(tmp_path, "name,description\n横向共治,\n,说明\n", "cb.csv")
    with pytest.raises(FormatError, match=r"cb\.csv, row 3: Empty code name\. Every codebook row needs an name\."):
        Codebook.read_csv(p)


# -- pre-coded output read back as data ------------------------------------------------------------------------
@pytest.fixture
def precoded(tmp_path, book, coded):
    model = CodingModel(book, random_state=0, n_splits=3, tune=False).fit(coded)
    docs = {s.document for s in coded.segments}
    extra = [Segment("X1", "1", "新的段落：居民议事会。", "受访者")]
    sug = model.suggest([*coded.segments[:12], *extra])
    write_suggestions(tmp_path / "pre.csv", sug)
    write_suggestions(tmp_path / "pre.jsonl", sug)
    write_coded(tmp_path / "human.csv", coded)
    assert "X1" not in docs
    return sug.coder


@pytest.mark.parametrize("name", ["pre.csv", "pre.jsonl"])
def test_precoded_coder_is_left_out_of_training_data_with_a_warning(tmp_path, book, precoded, name):
    with pytest.warns(AutocodeWarning, match=rf"Left out of the training data: coder\(s\) '{precoded}' \(.*{name}\), "
                                             r"pre-coded output of autocode \(unreviewed suggestions\)\. To learn "
                                             rf"from them, pass --include-coder {precoded}"):
        corpus = read_coded([tmp_path / "human.csv", tmp_path / name], codebook=book, precoded="exclude")
    assert corpus.coders == ["E", "A"]
    assert "X1" not in {s.document for s in corpus.segments}  # only the model had it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = read_coded([tmp_path / "human.csv", tmp_path / name], codebook=book, precoded="exclude",
                          include_coders=[precoded])
        agree = read_coded([tmp_path / "human.csv", tmp_path / name], codebook=book)  # agreement keeps it
    assert kept.coders == agree.coders == ["E", "A", precoded]


def test_renamed_precoded_coder_is_recognised_by_its_columns(tmp_path, book, precoded):
    text = (tmp_path / "pre.csv").read_text("utf-8-sig").replace(precoded, "reviewer")
    (tmp_path / "pre.csv").write_text(text, encoding="utf-8")
    with pytest.warns(AutocodeWarning, match=r"coder\(s\) 'reviewer'"):
        read_coded([tmp_path / "human.csv", tmp_path / "pre.csv"], codebook=book, precoded="exclude")


def test_only_precoded_data_is_an_error(tmp_path, book, precoded):
    with pytest.raises(FormatError, match=rf"pre\.csv: The data holds only pre-coded output of autocode \(coder "
                                          rf"'{precoded}' .*pass --include-coder {precoded}"):
        read_coded(tmp_path / "pre.csv", codebook=book, precoded="exclude")


def test_cli_train_leaves_precoded_out_unless_included(tmp_path, book, precoded, capsys):
    book.write_csv(tmp_path / "codebook.csv")
    args = ["train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "human.csv"),
            str(tmp_path / "pre.csv"), "--folds", "3", "--no-tune", "-q"]
    assert main([*args, "--out", str(tmp_path / "m1")]) == 0
    err = capsys.readouterr().err
    assert f"warning: Left out of the training data: coder(s) '{precoded}'" in err
    assert CodingModel.load(tmp_path / "m1").n_train_segments_ == 48
    assert main([*args, "--include-coder", precoded, "--out", str(tmp_path / "m2")]) == 0
    assert "Left out of the training data" not in capsys.readouterr().err
    assert CodingModel.load(tmp_path / "m2").n_train_segments_ == 49
