"""The review loop: reading reviewed tables and projects, training with decisions, choosing what to code next."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pytest

from autocode import (
    AutocodeWarning,
    CodedCorpus,
    CodingModel,
    Review,
    Segment,
    next_to_code,
    read_project,
    read_review,
    write_qdpx,
    write_suggestions,
)
from autocode.cli import main
from autocode.exceptions import AutocodeError, CodebookError, FormatError
from autocode.io.qdpx import Coding, Selection
from autocode.io.transcript import Document

NEW = [
    Segment("N1", "1", "社区党支部带领居民开展志愿服务，大家都很积极", "受访者"),
    Segment("N1", "2", "居民议事会每月讨论停车位的事情，投票决定", "受访者"),
    Segment("N1", "3", "网格员上门给独居老人送餐提供服务", "受访者"),
    Segment("N1", "4", "今天天气很好，我们聊了很多", "受访者"),
]


@pytest.fixture
def model(book, coded):
    return CodingModel(book, random_state=0).fit(coded)


def _fill(path, answers: dict[str, str], add: dict[str, str] | None = None):
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    header = list(rows[0]) + (["add"] if add else [])
    for r in rows:
        r["accept"] = answers.get(r["segment"], "")
        if add:
            r["add"] = add.get(r["segment"], "")
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        w = csv.DictWriter(f, header)
        w.writeheader()
        w.writerows(rows)


# -- tables ------------------------------------------------------------------------------------------------
def test_reviewed_table_gives_accepted_rejected_unknown_added(model, tmp_path, book):
    path = write_suggestions(tmp_path / "p.csv", model.suggest(NEW))
    _fill(path, {"1": "是", "2": "✗", "4": "否"}, add={"3": "party"})
    r = read_review(path, codebook=book)
    assert r.accepted == {("N1", "1"): {"party"}}
    assert r.rejected == {("N1", "2"): {"council"}}
    assert r.unknown == {("N1", "3"): {"service"}}
    assert r.added == {("N1", "3"): {"party"}}
    assert r.complete == {("N1", "4")}  # no suggestion, answered no: nothing applies
    Y, known = r.labels(model.codes_)
    assert Y.astype(int).tolist() == [[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]]
    assert known.astype(int).tolist() == [[1, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 1]]
    assert r.counts()["accepted"] == 1 and "1 rejected" in repr(r)
    assert r.to_corpus().codings("reviewer") == [frozenset({"party"}), frozenset(), frozenset({"party"}), frozenset()]


def test_reviewed_table_answers_per_code_and_jsonl(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"document": "D", "segment": "1", "text": "x", "codes": ["a", "b"], "accept": "1;0"}\n'
                 '{"document": "D", "segment": "2", "text": "y", "codes": ["a"], "accept": true}\n', encoding="utf-8")
    r = read_review(p)
    assert r.accepted == {("D", "1"): {"a"}, ("D", "2"): {"a"}} and r.rejected == {("D", "1"): {"b"}}


@pytest.mark.parametrize(("rows", "message"), [
    ("D,1,x,a,maybe", r"r\.csv, row 2: accept 'maybe' is neither yes nor no\. Write yes/no"),
    ("D,1,x,a;b,yes;no;yes", r"row 2: accept has 3 answers for 2 codes \(a;b\)\. Give one answer for all"),
    ("D,1,x,,yes", r"row 2: accept is yes but the row suggests no code\. Put the codes that apply in the 'add'"),
    ("D,1,x,a,yes\nD,1,x,a,no", r"row 3: Segment \('D', '1'\) appears twice\. Keep one row per segment"),
])
def test_reviewed_table_errors(tmp_path, rows, message):
    p = tmp_path / "r.csv"
    p.write_text("document,segment,text,codes,accept\n" + rows + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=message):
        read_review(p)


def test_reviewed_table_unknown_code(tmp_path, book):
    p = tmp_path / "r.csv"
    p.write_text("document,segment,text,codes,accept\nD,1,x,nope,yes\n", encoding="utf-8")
    with pytest.raises(CodebookError, match=r"r\.csv, row 2: .*nope"):
        read_review(p, codebook=book)


def test_reviewed_project_needs_the_precoded_one(tmp_path):
    with pytest.raises(FormatError, match=r"needs the pre-coded project it came from.*--precoded"):
        read_review(tmp_path / "r.qdpx")


# -- projects ----------------------------------------------------------------------------------------------
TEXT = "受访者：社区党支部带领居民开展志愿服务。\n受访者：居民议事会每月讨论停车位的事情。\n受访者：网格员上门给独居老人送餐。\n"


def _precoded(model, tmp_path):
    from autocode import read_transcripts

    src = tmp_path / "N1.txt"
    src.write_text(TEXT, encoding="utf-8")
    segs = read_transcripts([src])
    sug = model.suggest(segs, min_score=0.0)  # every segment gets its codes above 0: several per segment
    sug.min_score = None
    path = write_suggestions(tmp_path / "pre.qdpx", sug, documents=[Document("N1", TEXT)])
    return path, sug


def _reviewer_codes(project, doc_text_start, code, user_name="研究者A", under_model=False):
    from autocode.io.qdpx import User, guid_for

    src = project.sources[0]
    guid = next(u.guid for u in project.users if u.label.startswith("autocode")) if under_model else \
        guid_for("user", user_name)
    if not under_model and not any(u.guid == guid for u in project.users):
        project.users.append(User(guid, user_name))
    start = src.text.index(doc_text_start)
    end = src.text.index("\n", start)
    sel = Selection(guid_for("sel", user_name, doc_text_start, code), start, end, user=guid)
    sel.codings.append(Coding(guid_for("c", doc_text_start, code), project.code_guid(code), guid))
    src.selections.append(sel)


def test_reviewed_project_round_trip(model, tmp_path, book):
    pre, sug = _precoded(model, tmp_path)
    project = read_project(pre, codebook=book)
    src = project.sources[0]
    by_seg = {sel.name[:6]: sel for sel in src.selections}
    council_sel = next(s for k, s in by_seg.items() if k.startswith("居民议事会"))
    src.selections.remove(council_sel)  # rejected: deleted
    _reviewer_codes(project, "社区党支部", "party")  # accepted: re-applied under the reviewer's name
    _reviewer_codes(project, "网格员", "party")  # added
    out = write_qdpx(tmp_path / "reviewed.qdpx", project)
    r = read_review(out, precoded=pre, codebook=book)
    keys = [s.key for s in r.segments]
    k1, k2, k3 = keys[:3]
    assert r.accepted == {k1: {"party"}}
    assert r.rejected == {k2: set(sug.codes_for(1))}
    assert r.unknown[k3] == set(sug.codes_for(2))
    assert r.added == {k3: {"party"}}
    assert r.complete == set(keys) and r.reviewer == "研究者A"


def test_codings_under_the_model_name_are_detected(model, tmp_path, book):
    pre, sug = _precoded(model, tmp_path)
    project = read_project(pre, codebook=book)
    missing = next(c for c in model.codes_ if c not in sug.codes_for(2))
    _reviewer_codes(project, "网格员", missing, under_model=True)
    out = write_qdpx(tmp_path / "reviewed.qdpx", project)
    with pytest.warns(AutocodeWarning, match=r"1 coding\(s\) under the model's name 'autocode-tfidf\.v1' were not in"
                                              r" the pre-coded project; they are counted as the reviewer's"):
        r = read_review(out, precoded=pre, codebook=book)
    assert missing in r.added[r.segments[2].key] and r.notes


def test_precoding_again_reuses_the_model_user(model, tmp_path, book):
    """A QDA tool's export gives the model's user a new GUID; pre-coding it again adds no second user."""
    pre, sug = _precoded(model, tmp_path)
    project = read_project(pre, codebook=book)
    old = project.users[0].guid
    project.users[0].guid = "11111111-2222-3333-4444-555555555555"
    for src in project.sources:
        for sel in src.selections:
            sel.user = project.users[0].guid
            for c in sel.codings:
                c.user = project.users[0].guid
    exported = write_qdpx(tmp_path / "exported.qdpx", project)
    again = read_project(exported, codebook=book)
    again.add_suggestions(sug, None)
    assert [u.label for u in again.users] == ["autocode-tfidf.v1"] and again.users[0].guid != old


def test_precoding_again_replaces_the_models_earlier_codings(model, tmp_path, book):
    """QualCoder's export gives every selection a new GUID; pre-coding that project again must not repeat the
    model's codings on the same text (QualCoder's importer drops such repeats as duplicates)."""
    pre, sug = _precoded(model, tmp_path)
    project = read_project(pre, codebook=book)
    n = sum(len(sel.codings) for src in project.sources for sel in src.selections)
    for k, sel in enumerate(sel for src in project.sources for sel in src.selections):
        sel.guid = f"00000000-0000-4000-8000-{k:012d}"
    kept = project.sources[0].selections[0]
    kept.codings.append(Coding("00000000-0000-4000-9000-000000000001", kept.codings[0].code, "reviewer-guid"))
    exported = write_qdpx(tmp_path / "exported.qdpx", project)
    again = read_project(exported, codebook=book)
    again.add_suggestions(sug, None)
    keys = [(src.name, sel.start, sel.end, c.code, c.user or sel.user)
            for src in again.sources for sel in src.selections for c in sel.codings]
    assert len(keys) == len(set(keys)) == n + 1
    assert ("reviewer-guid" in {k[4] for k in keys}) and len(again.users) == 1


# -- training ----------------------------------------------------------------------------------------------
def test_fit_with_review_uses_rejections_as_negatives(book, coded):
    seg = Segment("R1", "1", "社区党支部带领居民开展志愿服务", "受访者")
    segs = [Segment("R1", str(i), s.text, "受访者") for i, s in enumerate(coded.segments[:6], start=1)]
    reject = Review(segs, rejected={s.key: {"party"} for s in segs})
    base = CodingModel(book).fit(coded)
    m = CodingModel(book).fit(coded, review=reject)
    assert m.n_train_segments_ == len(coded) + 6
    j = m.codes_.index("party")
    assert m.decision_function([seg])[0, j] < base.decision_function([seg])[0, j]


def test_fit_leaves_untouched_suggestions_out(book, coded):
    """Untouched suggestions are no labels at all: the model is the same as without those segments."""
    segs = [Segment("R1", "1", "党员在小区里亮身份做示范", "受访者")]
    untouched = Review(segs, unknown={segs[0].key: {"party"}})
    a = CodingModel(book).fit(coded, review=untouched)
    b = CodingModel(book).fit(coded)
    assert a.n_train_segments_ == b.n_train_segments_
    np.testing.assert_allclose(a.thresholds_, b.thresholds_)
    # one known decision: the segment joins training for that code only
    half = Review(segs, unknown={segs[0].key: {"party"}}, rejected={segs[0].key: {"council"}})
    c = CodingModel(book).fit(coded, review=half)
    assert c.n_train_segments_ == b.n_train_segments_ + 1


def test_review_overrides_hand_coding_of_the_same_segment(book, coded):
    key = coded.segments[0].key
    r = Review([coded.segments[0]], rejected={key: {"party"}})
    m = CodingModel(book, n_splits=2, tune=False).fit(coded, review=r)
    assert m.n_train_segments_ == len(coded)


def test_nothing_to_learn(book):
    with pytest.raises(AutocodeError, match="Nothing to learn: no hand-coded segment and no decision in the review"):
        CodingModel(book).fit(CodedCorpus([Segment("D", "1", "x")], {"E": {}}), review=Review([]))


# -- next --------------------------------------------------------------------------------------------------
def test_next_to_code_ranks_uncertain_and_diverse_segments(model):
    pool = NEW + [Segment("N2", str(i), t, "受访者") for i, t in enumerate(
        ["党员在小区里亮身份做示范", "党员在小区里亮身份做示范，很好", "议事会让居民说出自己的意见", "天气不错"], start=1)]
    chosen, values = next_to_code(model, pool, n=3)
    assert len(chosen) == 3 and len({s.key for s in chosen}) == 3 and values[0] >= values[-1]
    all_of = next_to_code(model, pool, n=100, diversity=0.0)[1]
    assert len(all_of) == len(pool) and (np.diff(all_of) <= 1e-12).all()
    docs, dvalues = next_to_code(model, pool, by="interview", n=1)
    assert {s.document for s in docs} in ({"N1"}, {"N2"}) and len(docs) == 4
    assert next_to_code(model, pool, n=5, exclude=[s.key for s in pool])[0] == []


@pytest.mark.parametrize(("kw", "message"), [({"by": "doc"}, "by must be 'segment' or 'interview', got 'doc'"),
                                             ({"n": 0}, "n must be at least 1, got 0")])
def test_next_to_code_errors(model, kw, message):
    with pytest.raises(AutocodeError, match=message):
        next_to_code(model, NEW, **kw)


# -- CLI ---------------------------------------------------------------------------------------------------
def test_cli_review_loop(model, book, coded, tmp_path, capsys):
    from autocode import write_coded

    mdir = model.save(tmp_path / "m")
    table = tmp_path / "new.csv"
    with open(table, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["document", "segment", "speaker", "text"])
        for s in NEW:
            w.writerow([s.document, s.segment, s.speaker, s.text])
    assert main(["-q", "precode", "--model", str(mdir), str(table), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", encoding="utf-8-sig", newline="") as f:
        assert next(csv.DictReader(f))["evidence"].startswith("party: ")
    _fill(tmp_path / "p.csv", {"1": "yes", "2": "no"})
    assert main(["review", str(tmp_path / "p.csv")]) == 0
    assert "accepted=1 rejected=1 unknown=1" in capsys.readouterr().out
    write_coded(tmp_path / "coded.csv", coded)
    codebook_csv = tmp_path / "book.csv"
    codebook_csv.write_text("id,name,description,parent\n" + "\n".join(
        f"{c.id},{c.name},{c.description},{c.parent or ''}" for c in book) + "\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["-q", "train", "--codebook", str(codebook_csv), "--data", str(tmp_path / "coded.csv"),
                     "--review", str(tmp_path / "p.csv"), "--out", str(tmp_path / "m2")]) == 0
    assert CodingModel.load(tmp_path / "m2").n_train_segments_ == len(coded) + 2
    assert main(["-q", "next", "--model", str(mdir), str(table), "--out", str(tmp_path / "n.csv"), "--n", "2"]) == 0
    with open(tmp_path / "n.csv", encoding="utf-8-sig", newline="") as f:
        assert len(list(csv.DictReader(f))) == 2
    assert main(["review", str(tmp_path / "x.qdpx")]) == 1
    assert "needs the pre-coded project it came from" in capsys.readouterr().err
