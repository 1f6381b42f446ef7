"""Coding rules: keywords, phrases and regular expressions per code, from the API and the CLI."""

import csv

import pytest

from autocode import Code, Codebook, CodebookError, FormatError, Segment
from autocode.cli import main
from autocode.rules import Rule, RuleSet, read_rules


@pytest.fixture
def rbook():
    return Codebook([Code("V", "纵向引领"), Code("party", "组织嵌入", parent="V"), Code("vote", "选举", parent="V"),
                     Code("app", "数字平台")])


SEGS = [
    Segment("D", "1", "您觉得党支部的作用怎么样？", "访谈者"),
    Segment("D", "2", "黨支部帶領黨員參與，大家投票選出代表。", "受访者"),
    Segment("D", "3", "我们用ＡＰＰ和小程序报修。", "受访者"),
    Segment("D", "4", "今天天气不错。", "受访者"),
]


def test_keywords_phrases_and_regex_match_across_scripts(rbook):
    rules = RuleSet([Rule("party", "党支部、党员"), Rule("vote", "投票选出", kind="phrase"),
                     Rule("app", r"app|小程序", kind="regex")], rbook)
    m = rules.apply(SEGS)
    assert [m.codes_for(i) for i in range(4)] == [["party"], ["party", "vote"], ["app"], []]
    assert m.evidence(1) == {"party": ["黨支部", "黨員"], "vote": ["投票選出"]}  # as written in the transcript
    assert m.evidence(2) == {"app": ["ＡＰＰ", "小程序"]}
    sug = m.suggestions()
    assert len(sug) == 4 and sug.coder == "autocode-rules"  # every segment is in the output
    assert sug.codes_for(3) == [] and sug.scores.max() == 1.0


def test_a_rule_for_one_speaker(rbook):
    by_role = RuleSet([Rule("party", "党支部", speaker="participant")], rbook).apply(SEGS)
    assert [by_role.codes_for(i) for i in range(2)] == [[], ["party"]]
    by_label = RuleSet([Rule("party", "党支部", speaker="访谈者")], rbook).apply(SEGS)
    assert [by_label.codes_for(i) for i in range(2)] == [["party"], []]


def test_rules_name_codes_by_id_or_unambiguous_name(rbook):
    rules = RuleSet([Rule("数字平台", "小程序")], rbook)
    assert rules.rules[0].code == "app"
    with pytest.raises(CodebookError, match="Rule for 'appp': Unknown code 'appp'"):
        RuleSet([Rule("appp", "小程序")], rbook)


def test_bad_rules_are_named(rbook):
    with pytest.raises(CodebookError, match=r"Rule for code 'app': '\(小程序' is not a valid regular expression"):
        RuleSet([Rule("app", "(小程序", kind="regex")], rbook)
    with pytest.raises(CodebookError, match="kind must be one of keyword, phrase, regex; got 'fuzzy'"):
        RuleSet([Rule("app", "小程序", kind="fuzzy")], rbook)
    with pytest.raises(CodebookError, match="Rule for code 'app' has an empty pattern"):
        RuleSet([Rule("app", "  ")], rbook)


def _write(path, rows):
    with open(path, "w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_rules_table_and_codebook_column(tmp_path, rbook):
    table = _write(tmp_path / "rules.csv", [["code", "pattern", "kind", "speaker"], ["party", "党支部 党员", "", ""],
                                            ["app", "app|小程序", "regex", "participant"]])
    rules = read_rules(table, rbook)
    assert [(r.code, r.kind, r.speaker) for r in rules.rules] == [("party", "keyword", None),
                                                                  ("app", "regex", "participant")]
    book_csv = _write(tmp_path / "codebook.csv", [["id", "name", "parent", "rules"], ["V", "纵向引领", "", ""],
                                                  ["party", "组织嵌入", "V", "党支部;党员"],
                                                  ["vote", "选举", "V", '"投票选出";re:选举|投票'],
                                                  ["app", "数字平台", "", ""]])
    from_book = RuleSet.from_codebook_csv(book_csv)
    assert [(r.code, r.pattern, r.kind) for r in from_book.rules] == [
        ("party", "党支部", "keyword"), ("party", "党员", "keyword"), ("vote", "投票选出", "phrase"),
        ("vote", "选举|投票", "regex")]
    assert read_rules(book_csv, rbook).rules == from_book.rules
    bad = _write(tmp_path / "bad.csv", [["code", "pattern", "kind"], ["party", "党支部", ""], ["app", "x", "fuzzy"]])
    with pytest.raises(FormatError, match=r"bad.csv, row 3: Rule with kind 'fuzzy' \(expected keyword, phrase, regex\)"):
        read_rules(bad, rbook)
    cols = _write(tmp_path / "cols.csv", [["code", "words"], ["party", "党支部"]])
    with pytest.raises(FormatError, match=r"cols.csv, row 1: A rules table needs the columns code,pattern .*missing: pattern"):
        read_rules(cols, rbook)


def test_cli_codes_transcripts_by_the_codebook_rules(tmp_path):
    book_csv = _write(tmp_path / "codebook.csv", [["id", "name", "parent", "rules"], ["V", "纵向引领", "", ""],
                                                  ["party", "组织嵌入", "V", "党支部"], ["app", "数字平台", "", "re:app|小程序"]])
    (tmp_path / "t.txt").write_text("访谈者：您觉得党支部怎么样？\n受访者：我们用APP报修，黨支部也帮忙。\n受访者：天气不错。\n",
                                    encoding="utf-8")
    out = tmp_path / "out.csv"
    assert main(["-q", "rules", "--codebook", str(book_csv), str(tmp_path / "t.txt"), "--out", str(out)]) == 0
    with open(out, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["codes"] for r in rows] == ["party", "party;app", ""]
    assert all(r["coder"] == "autocode-rules" for r in rows)


def test_cli_without_rules_says_what_to_do(tmp_path, capsys):
    book_csv = _write(tmp_path / "codebook.csv", [["id", "name"], ["party", "组织嵌入"]])
    (tmp_path / "t.txt").write_text("受访者：好。\n", encoding="utf-8")
    assert main(["rules", "--codebook", str(book_csv), str(tmp_path / "t.txt"), "--out", str(tmp_path / "o.csv")]) == 1
    assert "no rules. Give --rules rules.csv, or a 'rules' column in the codebook." in capsys.readouterr().err


def test_cli_refuses_to_overwrite_its_input(tmp_path, capsys):
    book_csv = _write(tmp_path / "codebook.csv", [["id", "name", "rules"], ["party", "组织嵌入", "党支部"]])
    (tmp_path / "t.txt").write_text("受访者：党支部。\n", encoding="utf-8")
    before = book_csv.read_bytes()
    assert main(["rules", "--codebook", str(book_csv), str(tmp_path / "t.txt"), "--out", str(book_csv)]) == 1
    assert book_csv.read_bytes() == before
    assert "--force" in capsys.readouterr().err
