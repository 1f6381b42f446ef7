"""Coding rules in the learned model: evidence beside its suggestions, features, saving, the CLI."""

from __future__ import annotations

import csv
import json
import warnings
import zipfile

import numpy as np
import pytest

from autocode import AutocodeWarning, CodebookError, CodingModel, Segment, write_suggestions
from autocode.backends.base import Inputs
from autocode.checksum import make_manifest
from autocode.cli import main
from autocode.model import make_inputs
from autocode.rules import Rule, RuleSet

NEW = [
    Segment("N1", "1", "社區黨支部組織黨員開展志願服務。", "受访者"),
    Segment("N1", "2", "今天天气不错。", "访谈者"),
    Segment("N1", "3", "居民议事会上大家投票决定停车位。", "受访者", section="二、社区参与"),
]


@pytest.fixture
def rules(book):
    return RuleSet([Rule("party", "党支部 党员"), Rule("council", "投票", heading="社区参与"),
                    Rule("service", "老人", speaker="participant")], book)


_FITTED: dict[str, CodingModel] = {}


def _fit(key, book, coded, **params) -> CodingModel:
    if key not in _FITTED:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AutocodeWarning)
            _FITTED[key] = CodingModel(book, n_splits=3, **params).fit(coded)
    return _FITTED[key]


def test_rule_matches_are_evidence_beside_the_suggestions(tmp_path, book, coded, rules):
    model = _fit("evidence", book, coded, rules=rules)
    plain = _fit("plain", book, coded)
    np.testing.assert_array_equal(model.predict_proba(NEW), plain.predict_proba(NEW))  # rules_weight 0: evidence only
    sug = model.suggest(NEW)
    assert sug.rules_text(0) == "party: 黨支部、黨員 [党支部 党员]"
    assert sug.rules_text(1) == ""
    assert sug.rules_text(2) == "council: 投票 [投票 §社区参与]"
    assert plain.suggest(NEW).rules_text(0) == ""
    write_suggestions(tmp_path / "p.csv", sug)
    with open(tmp_path / "p.csv", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert [r["rules"] for r in rows] == [sug.rules_text(i) for i in range(3)]
    write_suggestions(tmp_path / "p.jsonl", sug)
    rec = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text("utf-8").splitlines()]
    assert rec[0]["rules"] == [{"code": "party", "rule": "党支部 党员", "text": "黨支部"},
                               {"code": "party", "rule": "党支部 党员", "text": "黨員"}]
    assert rec[1]["rules"] == []
    write_suggestions(tmp_path / "p.qdpx", sug)
    qde = zipfile.ZipFile(tmp_path / "p.qdpx").read("project.qde").decode("utf-8")
    assert "rules: party: 黨支部、黨員 [党支部 党员]" in qde  # in the description of the suggested selection


def test_rule_matches_as_features(book, coded, rules):
    model = _fit("features", book, coded, rules=rules, backend_params={"rules_weight": 1.0})
    # the council rule is for segments under a heading, and no training segment has one
    assert model.backend_.vocabularies_["rules"] == ["party", "service"]
    inputs = make_inputs(NEW, rules)
    assert list(inputs.rules) == ["party", "", "council"]
    assert list(inputs.rows(1, 3).rules) == ["", "council"]
    party = model.codes_.index("party")
    w = model.backend_.coef_[party, -2:]  # the rule block comes last
    assert w[0] > 0 > w[1]  # a segment matching the party rules is more likely party, the service rule less
    # the same model without its rules sees no rule features: the party score drops where the rule matched
    blind = CodingModel(book, rules=None)
    blind.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    assert model.predict_proba(NEW)[0, party] > blind.predict_proba(NEW)[0, party]


def test_a_model_saves_and_loads_its_rules(tmp_path, book, coded, rules):
    model = _fit("features", book, coded, rules=rules, backend_params={"rules_weight": 1.0})
    back = CodingModel.load(model.save(tmp_path / "m"))
    assert back.rules.rules == rules.rules and back.backend_.rules_weight == 1.0
    np.testing.assert_array_equal(back.predict_proba(NEW), model.predict_proba(NEW))
    assert back.suggest(NEW).rules_text(2) == "council: 投票 [投票 §社区参与]"


def test_a_format_3_model_loads_without_rules(tmp_path, book, coded):
    model = _fit("plain", book, coded)
    path = model.save(tmp_path / "m")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    assert doc["format_version"] == 4 and doc["rules"] == []
    doc["format_version"] = 3  # as autocode wrote it before rules: no rules, no rules_weight
    del doc["rules"]
    del doc["backend_params"]["rules_weight"]
    (path / "model.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (path / "checksums.json").write_text(make_manifest(path, ["model.json", "arrays.npz"]), encoding="utf-8")
    old = CodingModel.load(path)
    assert old.rules is None and old.backend_.rules_weight == 0.0
    np.testing.assert_array_equal(old.predict_proba(NEW), model.predict_proba(NEW))


def test_rules_for_codes_of_another_codebook_are_refused(book, coded):
    from autocode import Code, Codebook

    other = RuleSet([Rule("canteen", "食堂")], Codebook([Code("canteen", "食堂")]))
    with pytest.raises(CodebookError, match="Unknown code 'canteen'"):
        CodingModel(book, n_splits=3, rules=other).fit(coded)


def test_inputs_without_rules_stay_without():
    inputs = Inputs(["a", "b"], ["", "a"], ["", ""])
    assert inputs.rules is None and inputs.rows(0, 1).rules is None


def _write_training_files(tmp_path, book, coded, rules_column: bool):
    with open(tmp_path / "codebook.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "name", "description", "parent", *(["rules"] if rules_column else [])])
        for c in book:
            w.writerow([c.id, c.name, c.description, c.parent or "",
                        *(["党支部;党员" if c.id == "party" else ""] if rules_column else [])])
    with open(tmp_path / "coded.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["document", "segment", "speaker", "text", "coder", "codes"])
        for s, codes in zip(coded.segments, coded.codings("E")):
            w.writerow([s.document, s.segment, s.speaker, s.text, "E", ";".join(sorted(codes))])
    (tmp_path / "N1.txt").write_text("访谈者：您觉得怎么样？\n受访者：社區黨支部組織黨員開展志願服務。\n", encoding="utf-8")


@pytest.mark.parametrize("how", ["--rules", "column"])
def test_cli_train_with_rules_and_precode_shows_them(tmp_path, book, coded, how):
    _write_training_files(tmp_path, book, coded, rules_column=how == "column")
    extra = []
    if how == "--rules":
        (tmp_path / "rules.csv").write_text("code,pattern,heading\nparty,党支部 党员,\n", encoding="utf-8")
        extra = ["--rules", str(tmp_path / "rules.csv"), "--backend-param", "rules_weight=1"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        assert main(["-q", "train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"),
                     "--no-tune", "--folds", "3", "--out", str(tmp_path / "m"), *extra]) == 0
    model = CodingModel.load(tmp_path / "m")
    assert [r.pattern for r in model.rules.rules] == ["党支部 党员"] if how == "--rules" else ["党支部", "党员"]
    assert ("rules" in model.backend_.vocabularies_) == (how == "--rules")
    out = tmp_path / "p.csv"
    assert main(["-q", "precode", "--model", str(tmp_path / "m"), str(tmp_path / "N1.txt"), "--out", str(out)]) == 0
    with open(out, encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["rules"] == ""
    assert rows[1]["rules"] == ("party: 黨支部、黨員 [党支部 党员]" if how == "--rules"
                                else "party: 黨支部 [党支部] | party: 黨員 [党员]")
    assert rows[1]["codes"] == "party"


def test_cli_train_names_a_bad_rules_file(tmp_path, book, coded, capsys):
    _write_training_files(tmp_path, book, coded, rules_column=False)
    (tmp_path / "rules.csv").write_text("code,pattern\ncanteen,食堂\n", encoding="utf-8")
    assert main(["train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"),
                 "--rules", str(tmp_path / "rules.csv"), "--out", str(tmp_path / "m")]) == 1
    assert "rules.csv: Rule for 'canteen': Unknown code 'canteen'" in capsys.readouterr().err


def test_rules_reach_streamed_batches(book, coded, rules):
    """Pre-coding in batches (inputs built by the streaming reader, without rules) scores and explains as one call."""
    from autocode.suggestion import Suggestions

    model = _fit("features", book, coded, rules=rules, backend_params={"rules_weight": 1.0})
    whole = model.predict_proba(NEW)
    streamed = np.vstack([model.predict_proba(NEW[i:i + 1], inputs=make_inputs(NEW).rows(i, i + 1))
                          for i in range(len(NEW))])
    np.testing.assert_allclose(streamed, whole)
    parts = Suggestions.concat([model.suggest(NEW[i:i + 1]) for i in range(len(NEW))])
    assert [parts.rules_text(i) for i in range(3)] == [model.suggest(NEW).rules_text(i) for i in range(3)]
    assert parts.rules_text(0).startswith("party: ")
