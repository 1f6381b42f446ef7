"""`autocode agree`, in process: inputs (coder column, one file per coder, pre-coded output), outputs, errors."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from autocode import Suggestions, write_coded, write_suggestions
from autocode.cli import main
from autocode.reliability import measure_agreement


@pytest.fixture
def coded_csv(coded, tmp_path):
    path = tmp_path / "coded.csv"
    write_coded(path, coded)
    return path


@pytest.fixture
def book_csv(book, tmp_path):
    path = tmp_path / "codebook.csv"
    book.write_csv(path)
    return path


def test_help_explains_itself_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["agree", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "autocode agree coded.csv --out agreement.md" in out
    for option in ("--level", "--by", "--bootstrap", "--codebook", "--drop-uncoded", "--disagreements"):
        assert option in out


def test_markdown_report_from_a_table_with_a_coder_column(coded, coded_csv, tmp_path, capsys):
    out = tmp_path / "report.md"
    assert main(["agree", str(coded_csv), "--bootstrap", "50", "--out", str(out)]) == 0
    text = out.read_text("utf-8")
    assert "# Agreement between coders" in text and "50 bootstrap resamples" in text
    assert (tmp_path / "report.png").read_bytes().startswith(b"\x89PNG")
    expected = measure_agreement(coded).value("cohen_kappa")
    assert f"pooled Cohen's kappa: E~A {expected:.3f}" in capsys.readouterr().err


def test_a_terminal_is_told_the_stages_of_a_long_run(coded, coded_csv, tmp_path, capsys, monkeypatch):
    import sys

    out = tmp_path / "report.md"
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["agree", str(coded_csv), "--bootstrap", "50", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    n_disagreements = len(measure_agreement(coded).disagreements)
    assert err.splitlines()[:3] == [
        f"reading {coded_csv} ...",
        f"{len(coded)} segments in {len(coded.documents)} documents, coders E, A; measuring agreement (50 bootstrap "
        "resamples of the documents) ...",
        f"{n_disagreements} disagreements; their texts are read again from the table as they are written ...",
    ]
    assert main(["-q", "agree", str(coded_csv), "--bootstrap", "50", "--out", str(out), "--force"]) == 0
    assert capsys.readouterr().err == ""


def test_one_file_per_coder_and_csv_output(coded, tmp_path):
    for coder in coded.coders:  # no coder column: the file name names the coder
        with open(tmp_path / f"{coder}.csv", "w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["document", "segment", "speaker", "text", "codes"])
            for s, codes in zip(coded.segments, coded.codings(coder)):
                w.writerow([s.document, s.segment, s.speaker, s.text, ";".join(sorted(codes))])
    out = tmp_path / "report.csv"
    assert main(["agree", str(tmp_path / "E.csv"), str(tmp_path / "A.csv"), "--bootstrap", "0",
                 "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text("utf-8-sig"))))
    pooled = next(r for r in rows if r["scope"] == "pooled" and r["statistic"] == "cohen_kappa")
    assert pooled["coders"] == "E~A"
    assert float(pooled["value"]) == pytest.approx(measure_agreement(coded).value("cohen_kappa"), rel=1e-5)


def test_html_by_category_at_character_level_with_disagreements(coded_csv, book_csv, tmp_path):
    out, dis = tmp_path / "report.html", tmp_path / "new" / "dis.csv"
    assert main(["agree", str(coded_csv), "--codebook", str(book_csv), "--by", "main", "--level", "character",
                 "--drop-uncoded", "--bootstrap", "20", "--out", str(out), "--disagreements", str(dis)]) == 0
    html = out.read_text("utf-8")
    assert "data:image/png;base64," in html and "Per category" in html and "characters in 8 documents" in html
    rows = list(csv.DictReader(io.StringIO(dis.read_text("utf-8-sig"))))
    assert rows and set(rows[0]) >= {"code", "document", "segment", "text", "applied_by"}
    assert {r["code"] for r in rows} <= {"V", "H"}


def test_precoded_output_is_a_coder(coded, book, coded_csv, tmp_path, capsys):
    codes = ["party", "council", "service"]
    truth = coded.labels(codes, target="E").astype(float)
    rng = np.random.default_rng(0)
    scores = np.clip(truth * 0.8 + rng.random(truth.shape) * 0.3, 0, 1)
    sug = Suggestions(coded.segments, codes, scores, np.full(3, 0.5), book, coder="autocode-tfidf.v1")
    precoded = tmp_path / "precoded.csv"
    write_suggestions(precoded, sug)
    out = tmp_path / "report.md"
    assert main(["agree", str(coded_csv), str(precoded), "--bootstrap", "0", "--out", str(out)]) == 0
    text = out.read_text("utf-8")
    assert "model(s): autocode-tfidf.v1" in text
    assert "| Cohen's kappa | E~autocode-tfidf.v1 | model-human |" in text
    assert "| Cohen's kappa | E~A | human-human |" in text


@pytest.mark.parametrize("argv, message", [
    (["--coders", "E"], "Agreement needs at least two coders, got ['E']"),
    (["--by", "category"], "by='category' rolls codes up through the codebook"),
    (["--out-format"], None),
])
def test_errors_print_one_line_and_exit_1(coded_csv, tmp_path, capsys, argv, message):
    if message is None:
        with pytest.raises(SystemExit):
            main(["agree", str(coded_csv), "--out", str(tmp_path / "r.md"), *argv])
        return
    assert main(["agree", str(coded_csv), "--out", str(tmp_path / "r.md"), *argv]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("autocode agree: error: ") and message in err[0]


def test_unknown_report_format(coded_csv, tmp_path, capsys):
    assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(tmp_path / "r.pdf")]) == 1
    assert "Unknown report format '.pdf': use .md, .html or .csv" in capsys.readouterr().err


def test_mismatched_segment_lists_warn_on_stderr(coded, coded_csv, tmp_path, capsys):
    lines = coded_csv.read_text("utf-8").splitlines()
    dropped = [ln for ln in lines if not (ln.startswith("D2,3,") and ",A," in ln)]
    assert len(dropped) == len(lines) - 1
    coded_csv.write_text("\n".join(dropped) + "\n", encoding="utf-8")
    assert main(["agree", str(coded_csv), "--bootstrap", "0", "--out", str(tmp_path / "r.md")]) == 0
    err = capsys.readouterr().err
    assert "warning: The coders coded different segment lists: A did not code 1 segment(s) others coded, e.g. D2/3" \
        in err
