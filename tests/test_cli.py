"""The autocode command, run in process: train, precode, evaluate, errors, help."""

from __future__ import annotations

import argparse
import json
import re

import pytest

from autocode import CodedCorpus, FormatError, __version__, read_coded, write_coded
from autocode.cli import build_parser, main

NEW_TXT = (
    "访谈者：您好，请介绍一下社区。\r\n"
    "受访者：社区党支部组织党员开展志愿服务。\r\n"
    "\r\n"
    "访谈者：今天天气怎么样？\r\n"
    "受访者：居民议事会上大家投票决定停车位，\r\n"
    "网格员每周上门为独居老人提供服务。\r\n"
)


@pytest.fixture
def files(tmp_path, book, coded):
    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "N1.txt").write_bytes(NEW_TXT.encode("gb18030"))
    (tmp_path / "new" / "N2.txt").write_text("问：网格员做什么？\n答：上门为老人提供服务。\n", encoding="utf-8")
    return tmp_path


def _train(files):
    return main(["-q", "train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "3", "--out", str(files / "model")])


@pytest.fixture(scope="module")
def _model_cache(tmp_path_factory):
    return {"dir": tmp_path_factory.mktemp("cli-model") / "model"}


@pytest.fixture
def trained(files, _model_cache):
    """A model folder trained by 'autocode train' on the fixture corpus (trained once for this module)."""
    folder = _model_cache["dir"]
    if not folder.exists():
        assert main(["-q", "train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                     "--folds", "3", "--out", str(folder)]) == 0
    return folder


def test_train_compares_tuning_candidates_on_a_sample(files, tmp_path, capsys):
    args = ["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"), "--folds", "2"]
    assert main([*args, "--tune-segments", "10", "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert re.search(r"context_weight chosen by out-of-fold kappa: .*, compared on (\d+) of the 48 segments\)", err)
    assert 10 <= int(re.search(r"compared on (\d+) of", err).group(1)) < 48
    assert main([*args, "--tune-segments", "0", "--out", str(tmp_path / "m2")]) == 0
    assert "compared on" not in capsys.readouterr().err
    assert main([*args, "--tune-segments", "-1", "--out", str(tmp_path / "m3")]) == 1
    assert _error_line(capsys, "train").endswith("--tune-segments must be 0 (every segment) or more; got -1.")


def _error_line(capsys, command):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"autocode {command}: error: ")
    return lines[0]


def test_train_precode_transcripts(files, capsys):
    assert main(["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "3", "--out", str(files / "model")]) == 0
    err = capsys.readouterr().err
    assert "learned 3 codes from 48 segments (8 documents)" in err
    assert "context_weight chosen by out-of-fold kappa" in err
    assert (files / "model" / "model.json").is_file()

    out = files / "pre.csv"
    assert main(["precode", "--model", str(files / "model"), str(files / "new" / "*.txt"), "--out", str(out)]) == 0
    assert "pre-coded 6 segments" in capsys.readouterr().err
    back = read_coded(out)
    assert back.coders == ["autocode-tfidf.v1"]
    assert [(s.document, s.segment, s.speaker) for s in back.segments] == [
        ("N1", "1", "访谈者"), ("N1", "2", "受访者"), ("N1", "3", "访谈者"), ("N1", "4", "受访者"),
        ("N2", "1", "问"), ("N2", "2", "答"),
    ]
    texts = {s.key: s.text for s in back.segments}
    assert texts[("N1", "4")] == "居民议事会上大家投票决定停车位，\r\n网格员每周上门为独居老人提供服务。"
    assert texts[("N1", "3")] == "今天天气怎么样？"
    codes = dict(zip((s.key for s in back.segments), back.codings("autocode-tfidf.v1")))
    assert codes[("N1", "2")] == {"party"}
    assert codes[("N1", "3")] == set()  # no suggestion, still in the output


def test_precode_every_turn_present(files, trained, capsys):
    out = files / "pre.jsonl"
    assert main(["-q", "precode", "--model", str(trained), str(files / "new"), "--out", str(out),
                 "--max-chars", "0", "--top", "2"]) == 0
    recs = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert [(r["document"], r["segment"]) for r in recs] == [
        ("N1", "1"), ("N1", "2"), ("N1", "3"), ("N1", "4"), ("N2", "1"), ("N2", "2"),
    ]
    assert all(len(r["suggestions"]) == 2 for r in recs)
    text = NEW_TXT
    assert all(text[r["start"] : r["end"]] == r["text"] for r in recs if r["document"] == "N1")


def test_precode_table_input(files, trained, capsys, coded):
    uncoded = CodedCorpus(coded.segments[:6])
    write_coded(files / "texts.csv", uncoded)
    out = files / "pre.csv"
    assert main(["-q", "precode", "--model", str(trained), str(files / "texts.csv"), "--out", str(out),
                 "--min-score", "1.01"]) == 0
    back = read_coded(out)
    assert [s.key for s in back.segments] == [s.key for s in coded.segments[:6]]
    assert back.codings("autocode-tfidf.v1") == [set()] * 6


def test_train_one_file_per_coder_and_targets(files, capsys, coded):
    for coder in ("E", "A"):
        one = CodedCorpus(coded.segments, {coder: {s.key: c for s, c in zip(coded.segments, coded.codings(coder))}})
        write_coded(files / f"coder_{coder}.csv", one)
    data = ["--data", str(files / "coder_E.csv"), str(files / "coder_A.csv")]
    for target in ("majority", "A"):
        out = files / f"model-{target}"
        assert main(["-q", "train", "--codebook", str(files / "codebook.csv"), *data, "--target", target,
                     "--folds", "3", "--out", str(out)]) == 0
        doc = json.loads((out / "model.json").read_text("utf-8"))
        assert doc["settings"]["target"] == target
        assert doc["training"]["segments"] == 48
    out = files / "model-fixed"
    assert main(["-q", "train", "--codebook", str(files / "codebook.csv"), *data, "--no-tune", "--folds", "3",
                 "--out", str(out)]) == 0
    doc = json.loads((out / "model.json").read_text("utf-8"))
    assert doc["settings"]["tune"] is False and doc["tuning"] == {} and doc["backend_params"]["context_weight"] == 1
    assert main(["-q", "train", "--codebook", str(files / "codebook.csv"), *data, "--target", "X",
                 "--out", str(files / "model-x")]) == 1
    assert "Unknown target 'X': use 'union', 'majority' or one of the coders ['E', 'A']" in _error_line(capsys, "train")


def test_precode_docx(files, trained, capsys):
    import docx

    d = docx.Document()
    for line in ("访谈者：社区怎么组织？", "受访者：社区党支部组织党员开展志愿服务。"):
        d.add_paragraph(line)
    d.save(str(files / "W1.docx"))
    out = files / "pre.csv"
    assert main(["-q", "precode", "--model", str(trained), str(files / "W1.docx"), "--out", str(out)]) == 0
    back = read_coded(out)
    assert [(s.document, s.speaker, s.text) for s in back.segments] == [
        ("W1", "访谈者", "社区怎么组织？"), ("W1", "受访者", "社区党支部组织党员开展志愿服务。"),
    ]


def test_evaluate(files, capsys):
    assert main(["evaluate", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "2"]) == 0
    captured = capsys.readouterr()
    assert "# Cross-validation grouped by document" in captured.out
    assert "pooled kappa:" in captured.err
    assert main(["-q", "evaluate", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "2", "--out", str(files / "report.json")]) == 0
    report = json.loads((files / "report.json").read_text("utf-8"))
    assert report["n_splits"] == 2 and report["documents"] == 8 and report["segments"] == 48


def test_train_warns_about_rare_codes(files, capsys, coded):
    e = {s.key: set(c) for s, c in zip(coded.segments, coded.codings("E"))}
    e[("D0", "5")] = {"service", "H"}
    write_coded(files / "coded.csv", CodedCorpus(coded.segments, {"E": e}, codebook=coded.codebook))
    assert main(["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "3", "--out", str(files / "model")]) == 0
    err = capsys.readouterr().err
    assert "warning: 1 code(s) have fewer than 3 coded segments and will not be suggested: H 横向共治 (1)" in err
    assert "not learned (too few examples): H" in err


def test_error_is_one_line(files, capsys):
    assert main(["train", "--codebook", str(files / "nope.csv"), "--data", str(files / "coded.csv"),
                 "--out", str(files / "model")]) == 1
    line = _error_line(capsys, "train")
    assert "nope.csv: Codebook file not found. Check the path." in line
    assert not (files / "model").exists()


def test_unknown_code_error(files, capsys):
    text = (files / "coded.csv").read_text("utf-8").replace(",E,party", ",E,partyy", 1)
    (files / "coded.csv").write_text(text, encoding="utf-8")
    assert main(["evaluate", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv")]) == 1
    line = _error_line(capsys, "evaluate")
    assert "coded.csv, row " in line and "Unknown code 'partyy'" in line and "Did you mean 'party'?" in line


def test_precode_errors(files, trained, capsys):
    assert main(["precode", "--model", str(files / "nope"), str(files / "new"), "--out", str(files / "o.csv")]) == 1
    assert "not a model folder" in _error_line(capsys, "precode")
    assert main(["precode", "--model", str(trained), str(files / "none" / "*.txt"),
                 "--out", str(files / "o.csv")]) == 1
    assert "The pattern matches no file." in _error_line(capsys, "precode")


def test_train_without_codebook(files, capsys):
    assert main(["train", "--data", str(files / "coded.csv"), "--out", str(files / "model")]) == 1
    assert "--codebook is required unless --data is a QDA project" in _error_line(capsys, "train")


def test_encoding_applies_to_the_codebook_too(files, book, coded):
    from autocode import CodingModel
    from autocode.text import _get_opencc

    s2t = _get_opencc("s2tw")  # Taiwan forms: all in Big5
    (files / "cb.csv").write_bytes(
        ("id,name,description,parent\n" + "".join(f"{c.id},{s2t.convert(c.name)},,{c.parent or ''}\n" for c in book))
        .encode("big5"))
    write_coded(files / "trad.csv", coded)
    (files / "trad.csv").write_bytes(s2t.convert((files / "trad.csv").read_text("utf-8-sig")).encode("big5"))
    rc = main(["-q", "train", "--codebook", str(files / "cb.csv"), "--data", str(files / "trad.csv"),
               "--encoding", "big5", "--folds", "3", "--out", str(files / "model")])
    assert rc == 0
    assert CodingModel.load(files / "model").codebook["party"].name == "組織嵌入"


def test_train_out_is_a_file(files, capsys):
    (files / "model").write_text("not a folder", encoding="utf-8")
    assert _train(files) == 1
    assert "is a file; a model is saved as a folder" in _error_line(capsys, "train")


def test_debug_reraises(files):
    with pytest.raises(FormatError, match=r"nope\.csv: Codebook file not found"):
        main(["--debug", "train", "--codebook", str(files / "nope.csv"), "--data", str(files / "coded.csv"),
              "--out", str(files / "model")])


def _commands():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("command", _commands())
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "example" in out and f"autocode {command}" in out


def test_top_level_help_and_version(capsys):
    assert {"train", "precode", "evaluate"} <= set(_commands())
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0 and "example" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"autocode {__version__}"
    assert main([]) == 2


def test_backend_param_is_passed_to_the_backend(files):
    from autocode import CodingModel

    rc = main(["-q", "train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
               "--folds", "3", "--backend-param", "C=8", "--backend-param", "context_weight=0.5",
               "--out", str(files / "model")])
    assert rc == 0
    params = CodingModel.load(files / "model").backend_.get_params()
    assert params["C"] == 8 and params["context_weight"] == 0.5


def test_backend_param_without_equals_sign(files, capsys):
    rc = main(["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
               "--backend-param", "C8", "--out", str(files / "model")])
    assert rc == 1
    assert "--backend-param expects KEY=VALUE (e.g. epochs=5), got 'C8'" in _error_line(capsys, "train")


def test_train_with_a_refi_qdc_codebook(files, book, coded):
    """A .qdc codebook: its codes are identified by name, so the coded table uses the names."""
    from autocode import CodedCorpus, CodingModel
    from autocode.io.qdpx import write_qdc

    write_qdc(files / "codes.qdc", book)
    by_name = CodedCorpus(coded.segments, {c: {s.key: {book[x].name for x in v}
                                               for s, v in zip(coded.segments, coded.codings(c)) if v is not None}
                                           for c in coded.coders})
    write_coded(files / "named.csv", by_name)
    rc = main(["-q", "train", "--codebook", str(files / "codes.qdc"), "--data", str(files / "named.csv"),
               "--folds", "3", "--out", str(files / "model")])
    assert rc == 0
    assert set(CodingModel.load(files / "model").codes_) == {"组织嵌入", "多元参与", "精准服务"}
