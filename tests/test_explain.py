"""Evidence for suggestions: words by weights and by occlusion, similar coded segments, output, saved models."""

from __future__ import annotations

import csv
import json
import zipfile

import numpy as np
import pytest

from autocode import CodingModel, Segment, write_suggestions
from autocode.exceptions import AutocodeError
from autocode.explain import Evidence

NEW = [
    Segment("N1", "1", "社区党支部带领居民开展志愿服务，大家都很积极", "受访者"),
    Segment("N1", "2", "居民议事会每月讨论停车位的事情，投票决定", "受访者"),
    Segment("N1", "3", "网格员上门给独居老人送餐提供服务", "受访者"),
]


@pytest.fixture
def model(book, coded):
    return CodingModel(book, random_state=0).fit(coded)


def _words_in_text(ev: Evidence, text: str) -> None:
    for w in ev.words:
        assert w.weight > 0
        assert w.start is not None and text[w.start:w.end] == w.text


def test_explain_gives_words_of_the_segment_and_similar_coded_segments(model, coded):
    out = model.explain(NEW, codes=["party"], k=3)
    ev = out[0]["party"]
    assert ev.method == "weights" and 1 <= len(ev.words) <= 3
    _words_in_text(ev, NEW[0].text)
    assert "党支部" in "".join(w.text for w in ev.words)
    # the most similar kept segments are segments the coders gave "party"
    party_texts = {s.text for s in coded.segments if "party" in coded.codings("E")[coded.index(s.key)]}
    assert len(ev.similar) == 2
    for e in ev.similar:
        assert (e.document, e.segment) in {s.key for s in coded.segments}
        assert any(t.startswith(e.quote.rstrip("…")) for t in party_texts)
    assert ev.similar[0].similarity >= ev.similar[1].similarity


def test_explain_defaults_to_the_accepted_codes(model):
    out = model.explain(NEW)
    sug = model.suggest(NEW)
    for i in range(len(NEW)):
        assert sorted(out[i]) == sorted(sug.codes_for(i))


def test_explain_unknown_code_is_refused(model):
    with pytest.raises(AutocodeError, match=r"does not suggest 'nope'; it learned party, council, service"):
        model.explain(NEW, codes=["nope"])


def _drop(text: str, spans) -> str:
    keep = np.ones(len(text), dtype=bool)
    for a, b in spans:
        keep[a:b] = False
    return "".join(c for c, k in zip(text, keep) if k)


@pytest.mark.parametrize("method", ["weights", "occlusion"])
def test_evidence_is_faithful(model, method, monkeypatch):
    """Deleting a suggestion's evidence words lowers its score more than deleting as many other words."""
    if method == "occlusion":  # a backend without term weights: evidence by occlusion
        monkeypatch.setattr(type(model.backend_), "term_contributions", lambda self, enc, j, rows=None: None)
    tok = model.backend_.tokenizer
    drops_ev, drops_other = [], []
    for i, code in [(0, "party"), (1, "council"), (2, "service")]:
        seg = NEW[i]
        ev = model.explain([seg], codes=[code], k=2)[0][code]
        assert ev.method == method and ev.words
        j = model.codes_.index(code)
        spans = [(w.start, w.end) for w in ev.words]
        base = model.decision_function([seg])[0, j]
        without = model.decision_function([Segment("x", "1", _drop(seg.text, spans))])[0, j]
        drops_ev.append(base - without)
        # as many other words: the first words not in the evidence
        others, cursor = [], 0
        for w in tok.words(seg.text, normalized=True):
            at = seg.text.find(w, cursor)
            cursor = at + len(w)
            if not any(a < at + len(w) and at < b for a, b in spans):
                others.append((at, at + len(w)))
        n_words = sum(len(tok.words(seg.text[a:b], normalized=True)) for a, b in spans)
        without_other = model.decision_function([Segment("x", "1", _drop(seg.text, others[:n_words]))])[0, j]
        drops_other.append(base - without_other)
    assert np.mean(drops_ev) > np.mean(drops_other) and all(d > 0 for d in drops_ev)


def test_suggest_with_evidence_writes_columns_and_descriptions(model, tmp_path):
    sug = model.suggest(NEW, explain=True)
    assert sug.evidence and all(sug.codes_for(i) for i in range(3))
    write_suggestions(tmp_path / "p.csv", sug)
    with open(tmp_path / "p.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[0]["evidence"].startswith("party: ") and "党支部" in rows[0]["evidence"]
    assert rows[0]["similar"].startswith("party: D") and "「" in rows[0]["similar"]
    assert rows[0]["accept"] == ""
    write_suggestions(tmp_path / "p.jsonl", sug)
    rec = json.loads((tmp_path / "p.jsonl").read_text("utf-8").splitlines()[0])
    top = rec["suggestions"][0]
    assert top["code"] == "party" and top["words"][0]["text"] and top["similar"][0]["document"].startswith("D")
    assert rec["accept"] is None
    write_suggestions(tmp_path / "p.qdpx", sug)
    qde = zipfile.ZipFile(tmp_path / "p.qdpx").read("project.qde").decode("utf-8")
    assert "why: " in qde and "like: D" in qde


def test_suggest_without_evidence_leaves_columns_empty(model, tmp_path):
    write_suggestions(tmp_path / "p.csv", model.suggest(NEW))
    with open(tmp_path / "p.csv", encoding="utf-8-sig", newline="") as f:
        row = next(csv.DictReader(f))
    assert row["evidence"] == row["similar"] == ""


def test_saved_model_keeps_examples_and_older_models_explain_without_them(model, tmp_path):
    path = model.save(tmp_path / "m")
    loaded = CodingModel.load(path)
    assert loaded.examples_ == model.examples_ and loaded.keep_examples == 100
    ev = loaded.explain(NEW[:1], codes=["party"])[0]["party"]
    assert ev.similar and ev.words
    doc = json.loads((path / "model.json").read_text("utf-8"))
    del doc["examples"]
    del doc["settings"]["keep_examples"]
    # as written before models kept examples (format 2: the other files' SHA-256 in model.json, no manifest)
    from autocode.checksum import sha256_file

    doc["format_version"] = 2
    doc["arrays_sha256"] = sha256_file(path / "arrays.npz")
    doc["files_sha256"] = {name: sha256_file(path / name) for name in doc.pop("files")}
    (path / "checksums.json").unlink()
    (path / "model.json").write_text(json.dumps(doc), encoding="utf-8")
    old = CodingModel.load(path)
    assert old.keep_examples == 0 and old.examples_ == {"segments": [], "codes": {}}
    ev = old.explain(NEW[:1], codes=["party"])[0]["party"]
    assert ev.words and ev.similar == ()


def test_keep_examples_zero_keeps_no_quotes(book, coded, tmp_path):
    m = CodingModel(book, keep_examples=0).fit(coded)
    assert m.examples_ == {"segments": [], "codes": {}}
    doc = json.loads((m.save(tmp_path / "m") / "model.json").read_text("utf-8"))
    assert doc["examples"] == {"segments": [], "codes": {}}
    assert m.explain(NEW[:1], codes=["party"])[0]["party"].similar == ()


def test_examples_are_capped_per_code(book, coded):
    m = CodingModel(book, keep_examples=2).fit(coded)
    assert all(len(v) == 2 for v in m.examples_["codes"].values())
    assert len(m.examples_["segments"]) == 6


def test_no_accepted_code_means_no_evidence(model):
    sug = model.suggest([Segment("N9", "1", "今天天气很好")], explain=True, min_score=1.5)
    assert sug.evidence == {} and model.explain([Segment("N9", "1", "今天天气很好")], codes=[])[0] == {}


def test_a_word_said_twice_is_shown_once_in_the_evidence_text(model):
    """Evidence words are occurrences (with offsets); the text shown lists each word once."""
    from autocode.explain import Evidence, Word

    sug = model.suggest(["小区有支部，楼栋设了党小组，快递网点也建了党小组。"])
    code = sug.codes[0]
    sug.scores[0, 0] = 1.0  # make sure the code is accepted
    words = (Word("党小组", 1.0, 7, 10), Word("党小组", 0.9, 20, 23), Word("支部", 0.5, 3, 5))
    sug.evidence[(0, code)] = Evidence(code, words, (), "weights")
    assert sug.evidence_text(0)[0] == f"{code}: 党小组、支部"
