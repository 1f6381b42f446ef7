"""CLI conventions: global options anywhere, defaults in --help, evaluate's HTML report and --no-tune, and a
warning for codes that cannot be learned."""

from __future__ import annotations

import pytest

from autocode import AutocodeWarning, Code, Codebook, CodingModel, write_coded
from autocode.cli import build_parser, main


@pytest.fixture
def files(tmp_path, book, coded):
    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    return tmp_path


@pytest.mark.parametrize("argv", [
    ["train", "--data", "x.csv", "--out", "m", "-q", "--debug"],
    ["train", "-q", "--data", "x.csv", "--out", "m", "--debug"],
    ["-q", "--debug", "train", "--data", "x.csv", "--out", "m"],
    ["--debug", "train", "--data", "x.csv", "--out", "m", "--quiet"],
])
def test_global_options_anywhere(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet is True and args.debug is True and args.command == "train"


def test_global_options_default_off_after_the_command():
    args = build_parser().parse_args(["agree", "a.csv", "--out", "r.md"])
    assert args.quiet is False and args.debug is False


def test_quiet_after_the_command_silences_messages(files, capsys):
    assert main(["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "3", "--no-tune", "--out", str(files / "model"), "-q"]) == 0
    assert capsys.readouterr().err == ""


def test_debug_after_the_command_shows_the_traceback(files):
    from autocode import FormatError

    with pytest.raises(FormatError, match=r"missing\.csv: File not found"):
        main(["train", "--codebook", str(files / "codebook.csv"), "--data", str(files / "missing.csv"),
              "--out", str(files / "model"), "--debug"])


@pytest.mark.parametrize(("command", "expected"), [
    ("train", ["--min-examples MIN_EXAMPLES", "(default: 3)", "--seed SEED", "(default: 0)"]),
    ("evaluate", ["(default: 5)", "(default: union)", "(default: 0)"]),
    ("precode", ["(default: 5)", "(default: 200)"]),
    ("agree", ["(default 1000; 0 = none)", "(default: 0.95)"]),
])
def test_help_shows_defaults(capsys, command, expected):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in expected:
        assert " ".join(text.split()) in out, text
    assert "(default: None)" not in out and "(default: False)" not in out


def test_evaluate_writes_html_and_accepts_no_tune(files, capsys):
    assert main(["-q", "evaluate", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                 "--folds", "2", "--no-tune", "--out", str(files / "report.html")]) == 0
    page = (files / "report.html").read_text("utf-8")
    assert page.startswith("<!DOCTYPE html>") and "<h1>Cross-validation grouped by document</h1>" in page
    assert "<table>" in page and "<td>party</td>" in page and "| pair |" not in page


def test_evaluate_no_tune_reaches_the_model(files, monkeypatch):
    import autocode.evaluate

    seen = []

    def spy(model, *a, **kw):
        seen.append(model.tune)
        raise KeyboardInterrupt  # stop here: only the model's settings are checked

    monkeypatch.setattr(autocode.evaluate, "cross_validate", spy)
    for flag, tune in (["--no-tune"], False), ([], True):
        with pytest.raises(KeyboardInterrupt):
            main(["-q", "evaluate", "--codebook", str(files / "codebook.csv"), "--data", str(files / "coded.csv"),
                  *flag])
        assert seen[-1] is tune


def test_codes_never_applied_get_one_summarising_warning(book, coded):
    bigger = Codebook([*book, Code("unused1", "从未使用", parent="H"), Code("unused2", "也没用", parent="V")])
    with pytest.warns(AutocodeWarning) as record:
        CodingModel(bigger, random_state=0, n_splits=3, tune=False).fit(coded)
    never = [str(w.message) for w in record if "never applied" in str(w.message)]
    assert never == ["2 code(s) of the codebook were never applied in the training data and cannot be learned or "
                     "suggested: unused1 从未使用, unused2 也没用. Code examples of them (at least 3 segments each), "
                     "or leave them out of the codebook."]


def test_fully_used_codebook_gives_no_never_applied_warning(book, coded):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", AutocodeWarning)
        CodingModel(book, random_state=0, n_splits=3, tune=False).fit(coded)
