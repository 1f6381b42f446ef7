"""The coding model: fit, suggest, pre-coded output, rare codes, Traditional/Simplified, saving and loading."""

from __future__ import annotations

import json
import warnings

import hostile
import numpy as np
import pytest

from autocode import (
    AutocodeError,
    AutocodeWarning,
    Code,
    Codebook,
    CodedCorpus,
    CodingModel,
    ModelFileError,
    NotFittedError,
    Segment,
    read_coded,
    read_transcripts,
    write_suggestions,
)
from autocode.calibration import calibrate
from autocode.checksum import make_manifest, sha256_file
from autocode.model import make_inputs

NEW = [
    Segment("N1", "1", "社区党支部组织党员开展志愿服务。", "受访者"),
    Segment("N1", "2", "今天天气不错，我们聊点别的。", "访谈者"),
    Segment("N1", "3", "居民议事会上大家投票决定停车位。", "受访者"),
    Segment("N2", "1", "网格员每周上门为独居老人提供服务。", "B"),
]


_FITTED: dict[str, CodingModel] = {}


@pytest.fixture
def model(book, coded) -> CodingModel:
    """The model fitted on the fixture corpus, fitted once for this module (tests do not change it)."""
    if "model" not in _FITTED:
        _FITTED["model"] = CodingModel(book, n_splits=3, random_state=0).fit(coded)
    return _FITTED["model"]


def test_fit_returns_self_and_learns_the_codes(book, coded):
    m = CodingModel(book, n_splits=3)
    assert m.fit(coded) is m
    assert m.codes_ == ["party", "council", "service"]
    assert m.thresholds_.shape == (3,) and m.calibration_.shape == (3, 2)
    assert m.n_train_segments_ == 48 and m.n_train_documents_ == 8
    assert m.rare_codes_ == {}


def test_predict_and_suggest_every_segment(model):
    p = model.predict_proba(NEW)
    assert p.shape == (4, 3) and ((p >= 0) & (p <= 1)).all()
    assert model.predict(NEW).shape == (4, 3)
    sug = model.suggest(NEW)
    assert len(sug) == 4 and sug.segments == NEW
    assert sug.codes_for(0) == ["party"]
    assert sug.codes_for(2) == ["council"]
    assert sug.codes_for(3) == ["service"]
    assert sug.categories_for(3) == ["H"]
    assert model.suggest(["党支部带领居民"]).segments[0].text == "党支部带领居民"  # plain strings too


def test_not_fitted(book):
    with pytest.raises(NotFittedError, match=r"This CodingModel is not fitted yet\. Call fit\(coded\)"):
        CodingModel(book).predict_proba(NEW)


def test_fit_needs_a_coded_corpus(book):
    with pytest.raises(TypeError, match=r"fit expects a CodedCorpus"):
        CodingModel(book).fit(NEW)


def test_unknown_target(book, coded):
    with pytest.raises(AutocodeError, match=r"Unknown target 'X': use 'union', 'majority' or one of the coders"):
        CodingModel(book, target="X").fit(coded)


def test_target_one_coder(book, coded):
    # coder A left some segments empty: learning A's coding has fewer positives than the union
    m = CodingModel(book, target="A", n_splits=3).fit(coded)
    union = CodingModel(book, target="union", n_splits=3).fit(coded)
    assert sum(m.train_counts_.values()) < sum(union.train_counts_.values())
    assert union.train_counts_ == {"party": 16, "council": 16, "service": 16}


def test_target_coder_who_coded_nothing(book, coded):
    only_e = CodedCorpus(coded.segments, {"E": {s.key: c for s, c in zip(coded.segments, coded.codings("E"))},
                                          "A": {}})
    with pytest.raises(AutocodeError, match=r"No segment is coded by the target 'A'\."):
        CodingModel(book, target="A").fit(only_e)


def test_one_document_is_not_calibrated(book, coded):
    one = coded.subset(range(6))
    with pytest.warns(AutocodeWarning, match=r"Fewer than 2 documents \(or n_splits < 2\): scores are not calibrated"):
        m = CodingModel(book, min_examples=2).fit(one)
    assert m.thresholds_.tolist() == [0.5, 0.5, 0.5]


def test_unknown_backend(book, coded):
    with pytest.raises(AutocodeError, match=r"Unknown backend 'nope\.v1'\. Available: .*tfidf\.v1"):
        CodingModel(book, backend="nope.v1").fit(coded)


def _with_rare_code(coded: CodedCorpus) -> CodedCorpus:
    """The fixture corpus where coder E also applied the category H to one segment about canteens."""
    e = {s.key: set(c) for s, c in zip(coded.segments, coded.codings("E"))}
    a = {s.key: set(c) for s, c in zip(coded.segments, coded.codings("A"))}
    e[("D0", "5")] = {"service", "H"}
    return CodedCorpus(coded.segments, {"E": e, "A": a}, codebook=coded.codebook)


def test_rare_code_warns_and_is_never_suggested(book, coded):
    rare = _with_rare_code(coded)
    with pytest.warns(AutocodeWarning, match=r"1 code\(s\) have fewer than 3 coded segments and will not be "
                                             r"suggested: H 横向共治 \(1\)\. Code more examples"):
        m = CodingModel(book, n_splits=3).fit(rare)
    assert m.rare_codes_ == {"H": 1} and "H" not in m.codes_
    sug = m.suggest(rare.segments + NEW, min_score=0.0)  # even accepting every score
    assert "H" not in sug.codes
    assert all("H" not in sug.codes_for(i) for i in range(len(sug)))


def test_no_learnable_code(book, coded):
    with pytest.warns(AutocodeWarning, match=r"fewer than 100 coded segments"):
        with pytest.raises(AutocodeError, match=r"No code has at least 100 coded segments; nothing to learn\."):
            CodingModel(book, min_examples=100).fit(coded)


# -- pre-coded output ---------------------------------------------------------------------------------------

def test_precoded_csv_has_every_segment_and_reads_back(tmp_path, book, model):
    sug = model.suggest(NEW)
    assert sug.codes_for(1) == []  # a segment without suggestions
    write_suggestions(tmp_path / "out.csv", sug)
    back = read_coded(tmp_path / "out.csv", codebook=book)
    assert back.coders == [model.model_name] == ["autocode-tfidf.v1"]
    assert [(s.key, s.speaker, s.text) for s in back.segments] == [(s.key, s.speaker, s.text) for s in NEW]
    assert back.codings(model.model_name) == [set(sug.codes_for(i)) for i in range(len(NEW))]


def test_precoded_jsonl_has_every_segment(tmp_path, book, model):
    sug = model.suggest(NEW)
    write_suggestions(tmp_path / "out.jsonl", sug, top_k=2)
    recs = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    assert [(r["document"], r["segment"], r["text"]) for r in recs] == [(s.document, s.segment, s.text) for s in NEW]
    assert recs[1]["codes"] == [] and len(recs[1]["suggestions"]) == 2
    assert recs[0]["codes"] == ["party"] and recs[0]["categories"] == ["V"]
    back = read_coded(tmp_path / "out.jsonl", codebook=book)
    assert back.codings(model.model_name)[0] == {"party"}


def test_nothing_suggested_still_writes_every_segment(tmp_path, model):
    sug = model.suggest(NEW, min_score=1.01)
    assert not sug.accepted.any()
    write_suggestions(tmp_path / "out.csv", sug)
    back = read_coded(tmp_path / "out.csv")
    assert len(back) == len(NEW) and back.codings(model.model_name) == [set()] * len(NEW)
    write_suggestions(tmp_path / "out.jsonl", sug)
    assert len((tmp_path / "out.jsonl").read_text("utf-8").splitlines()) == len(NEW)


def test_precode_transcripts_keeps_offsets(tmp_path, book, model):
    text = "访谈者：社区怎么组织？\r\n受访者：党支部组织党员开展志愿服务。\r\n\r\n访谈者：今天天气不错。\r\n"
    (tmp_path / "T1.txt").write_bytes(text.encode("gb18030"))
    segs = read_transcripts(tmp_path)
    sug = model.suggest(segs)
    write_suggestions(tmp_path / "out.csv", sug)
    back = read_coded(tmp_path / "out.csv", codebook=book)
    assert [(s.start, s.end) for s in back.segments] == [(s.start, s.end) for s in segs]
    assert all(text[s.start : s.end] == s.text for s in back.segments)


def test_unknown_output_format(tmp_path, model):
    from autocode import FormatError

    with pytest.raises(FormatError, match=r"out\.txt: Unknown output format: use \.csv, \.xlsx, \.jsonl or \.qdpx\."):
        write_suggestions(tmp_path / "out.txt", model.suggest(NEW))


# -- Traditional and Simplified -----------------------------------------------------------------------------

def test_traditional_text_gets_the_same_codes_and_stays_verbatim(tmp_path, coded, model):
    from autocode.text import _get_opencc

    s2t = _get_opencc("s2t")
    simp = coded.segments + NEW
    trad = [Segment(s.document, s.segment, s2t.convert(s.text), s.speaker) for s in simp]
    assert sum(t.text != s.text for t, s in zip(trad, simp)) > len(simp) // 2  # really Traditional
    assert trad[0].text == "社區黨支部帶領居民開展志願服務。"
    s_sug, t_sug = model.suggest(simp), model.suggest(trad)
    np.testing.assert_allclose(t_sug.scores, s_sug.scores, atol=1e-9)
    assert [t_sug.codes_for(i) for i in range(len(trad))] == [s_sug.codes_for(i) for i in range(len(simp))]
    assert [s.text for s in t_sug.segments] == [s.text for s in trad]
    write_suggestions(tmp_path / "trad.csv", t_sug)
    assert [s.text for s in read_coded(tmp_path / "trad.csv").segments] == [s.text for s in trad]


# -- saving and loading -------------------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, model):
    path = model.save(tmp_path / "m")
    assert sorted(p.name for p in path.iterdir()) == ["arrays.npz", "checksums.json", "model.json"]
    doc = json.loads((path / "model.json").read_text("utf-8"))
    assert doc["format_version"] == 4 and doc["backend"] == "tfidf.v1" and doc["autocode_version"]
    with np.load(path / "arrays.npz", allow_pickle=False) as z:  # nothing needs pickle
        assert all(z[k].dtype != object for k in z.files)
    loaded = CodingModel.load(path)
    assert loaded.codes_ == model.codes_ and loaded.codebook == model.codebook
    np.testing.assert_array_equal(loaded.thresholds_, model.thresholds_)
    np.testing.assert_array_equal(loaded.predict_proba(NEW), model.predict_proba(NEW))
    assert loaded.model_name == model.model_name
    # a loaded model saves again to the same files
    loaded.save(tmp_path / "again")
    with np.load(path / "arrays.npz") as a, np.load(tmp_path / "again" / "arrays.npz") as b:
        assert a.files == b.files and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_tampered_arrays(tmp_path, model):
    path = model.save(tmp_path / "m")
    data = bytearray((path / "arrays.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (path / "arrays.npz").write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match=r"arrays\.npz: changed since it was saved \(its SHA-256 does not match "
                                             r"checksums\.json\); the file was edited or damaged"):
        CodingModel.load(path)


def test_newer_format_version(tmp_path, model):
    path = model.save(tmp_path / "m")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    doc["format_version"] = 99
    (path / "model.json").write_text(json.dumps(doc), encoding="utf-8")
    (path / "checksums.json").write_text(make_manifest(path, ["model.json", "arrays.npz"]), encoding="utf-8")
    with pytest.raises(ModelFileError, match=r"model format version 99 .* reads up to version 4\. Upgrade autocode"):
        CodingModel.load(path)


@pytest.mark.parametrize("name", ["arrays.npz", "model.json"])
def test_missing_file(tmp_path, model, name):
    path = model.save(tmp_path / "m")
    (path / name).unlink()
    with pytest.raises(ModelFileError, match=rf"missing {name}\. The folder is incomplete; copy the whole folder\."):
        CodingModel.load(path)


def test_not_a_model_folder(tmp_path, model):
    path = model.save(tmp_path / "m")
    with pytest.raises(ModelFileError, match=r"model\.json: not a model folder\. Train one with 'autocode train"):
        CodingModel.load(path / "model.json")
    with pytest.raises(ModelFileError, match=r"nope: not a model folder"):
        CodingModel.load(tmp_path / "nope")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "model.json").write_text('{"format": "something-else"}', encoding="utf-8")
    (tmp_path / "other" / "arrays.npz").write_bytes(b"")
    with pytest.raises(ModelFileError, match=r"not an autocode model file \(no 'format': 'autocode-model'\)"):
        CodingModel.load(tmp_path / "other")


def test_damaged_json(tmp_path, model):
    path = model.save(tmp_path / "m")
    (path / "model.json").write_text("{not json", encoding="utf-8")
    (path / "checksums.json").unlink()
    with pytest.raises(ModelFileError, match=r"model\.json: not valid JSON .* The file is damaged\."):
        CodingModel.load(path)


def test_object_array_is_refused(tmp_path, model):
    path = model.save(tmp_path / "m")
    marker = tmp_path / "pwned"
    hostile.plant_pickle(path, marker)  # checksums resealed: only the refusal to unpickle stops it
    with pytest.raises(ModelFileError, match=r"arrays\.npz: cannot read arrays without pickle"):
        CodingModel.load(path)
    assert not marker.exists()


def test_saving_an_unfitted_model(tmp_path, book):
    with pytest.raises(NotFittedError, match=r"not fitted yet"):
        CodingModel(book).save(tmp_path / "m")


# -- the shared development data (skipped when absent) ------------------------------------------------------

@pytest.mark.shared_data
def test_shared_data_precode_transcripts(tmp_path, shared_data):
    root = shared_data / "misleading-photos-dev"
    book = Codebook.read_csv(root / "codebook.csv")
    coded = read_coded(root / "coded.csv", codebook=book)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)  # some of its codes are rare
        model = CodingModel(book, n_splits=2, min_examples=5).fit(coded)
    files = [root / "transcripts" / f"P0{i}.txt" for i in (1, 2, 3)]
    segs = read_transcripts(files, max_chars=None)
    # one segment per speaker turn (a line without "A:"/"B:" continues the turn before it)
    turns = {d: sum(1 for line in f.read_text("utf-8").splitlines() if line.startswith(("A:", "B:")))
             for d, f in zip(("P01", "P02", "P03"), files)}
    assert {d: sum(s.document == d for s in segs) for d in turns} == turns
    sug = model.suggest(segs)
    write_suggestions(tmp_path / "out.csv", sug)
    back = read_coded(tmp_path / "out.csv", codebook=book)
    assert [s.key for s in back.segments] == [s.key for s in segs]
    assert [s.text for s in back.segments] == [s.text for s in segs]
    assert 0 < sum(bool(c) for c in back.codings(model.model_name)) < len(segs)


def test_the_same_data_gives_the_same_model(book, coded):
    """Research software must be repeatable: two fits with the same seed are identical."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        a = CodingModel(book, n_splits=3, random_state=0).fit(coded)
        b = CodingModel(book, n_splits=3, random_state=0).fit(coded)
    assert np.array_equal(a.thresholds_, b.thresholds_)
    assert np.array_equal(a.backend_.coef_, b.backend_.coef_)


# -- position in the document -------------------------------------------------------------------------------
def _guide_corpus(n_docs=6):
    """Interviews that follow one guide: the same words open and close every interview, but the coders code
    the closing turn 'reflection' and the opening one 'intro' -- only the position tells them apart."""
    from autocode.codebook import Code

    book = Codebook([Code("cat"), Code("intro", parent="cat"), Code("reflection", parent="cat")])
    segs, codes = [], {}
    for d in range(n_docs):
        for i in range(10):
            text = "我觉得这个很好" if i in (0, 9) else f"其他的话题第{i}段内容"
            segs.append(Segment(f"D{d}", str(i), text, "受访者"))
            codes[(f"D{d}", str(i))] = {"intro"} if i == 0 else ({"reflection"} if i == 9 else set())
    return book, CodedCorpus(segs, {"E": codes})


def test_position_in_the_document_is_learned():
    book, coded = _guide_corpus()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        alone = {"context_weight": 0, "following_weight": 0}  # no neighbouring turns: the position only
        with_pos = CodingModel(book, n_splits=3, backend_params={"position_weight": 1.0, **alone}).fit(coded)
        without = CodingModel(book, n_splits=3, backend_params={"position_bins": 0, **alone}).fit(coded)
    new = [Segment("X", str(i), "我觉得这个很好" if i in (0, 9) else "别的内容", "受访者") for i in range(10)]
    p = with_pos.predict_proba(new)
    intro, refl = with_pos.codes_.index("intro"), with_pos.codes_.index("reflection")
    assert p[0, intro] > p[0, refl] and p[9, refl] > p[9, intro]
    q = without.predict_proba(new)  # the same text at both ends: without position, the same scores
    np.testing.assert_allclose(q[0], q[9])


def test_positions_span_batches(book, coded, model):
    """Scores do not depend on how pre-coding cuts the segments into batches: contexts and positions are
    taken over whole documents."""
    segs = list(coded.segments)
    np.testing.assert_allclose(model.predict_proba(segs, batch_size=3), model.predict_proba(segs), atol=1e-12)


def _as_format_1(path, doc: dict) -> None:
    """Rewrite a saved model as autocode 0.1.x wrote it: format 1, the SHA-256 of the other files kept in
    model.json, no checksums.json."""
    doc["format_version"] = 1
    doc["arrays_sha256"] = sha256_file(path / "arrays.npz")
    doc["files_sha256"] = {name: sha256_file(path / name) for name in doc.pop("files")}
    (path / "checksums.json").unlink()
    (path / "model.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")


def test_model_saved_without_position_feature_still_loads(tmp_path, book, coded):
    """Models saved by autocode 0.1.0 have no position block and no position parameters."""
    old = CodingModel(book, n_splits=3, backend_params={"position_bins": 0}).fit(coded)
    path = old.save(tmp_path / "old")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    for k in ("position_bins", "position_weight"):
        doc["backend_params"].pop(k)
    _as_format_1(path, doc)
    loaded = CodingModel.load(path)
    assert loaded.backend_.params["position_bins"] == 0
    np.testing.assert_array_equal(loaded.predict_proba(NEW), old.predict_proba(NEW))


@pytest.mark.parametrize("params", [{"position_bins": -1}, {"position_weight": -0.5}, {"following_weight": -1}])
def test_bad_position_parameters(params, coded):
    from autocode.backends.tfidf import TfidfBackend

    backend = TfidfBackend(**params)  # parameters are stored as given and checked by fit
    with pytest.raises(ValueError, match="must be >= 0"):
        backend.fit(backend.encode(make_inputs(coded.segments)), coded.labels(coded.used_codes(), "union"))


def _follow_up_corpus(n_docs: int = 9):
    """The same short answer in every interview; only the interviewer's follow-up after it says what it was
    about ('parking' or 'waste'), and the coders code the answer by that topic."""
    from autocode.codebook import Code

    book = Codebook([Code("topic"), Code("parking", parent="topic"), Code("waste", parent="topic")])
    segs, codes = [], {}
    for d in range(n_docs):
        topic = "parking" if d % 2 else "waste"
        follow = "您刚才说的停车位不够，小区里车位怎么分配的？" if d % 2 else "您刚才说的垃圾分类，楼道里怎么督促的？"
        turns = [("访谈者", "您怎么看这件事？"), ("受访者", "对，就是这样，大家都很头疼。"), ("访谈者", follow),
                 ("受访者", "我们开了几次会商量。")]
        for i, (who, text) in enumerate(turns):
            segs.append(Segment(f"D{d}", str(i), text, who))
            codes[(f"D{d}", str(i))] = {topic} if i == 1 else set()
    return book, CodedCorpus(segs, {"E": codes})


def test_following_segment_is_learned():
    book, coded = _follow_up_corpus()
    base = {"context_weight": 0, "position_bins": 0, "guide_weight": 0}  # the follow-up alone
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        with_next = CodingModel(book, n_splits=3, tune=False,
                                backend_params={**base, "following_weight": 1.0}).fit(coded)
        without = CodingModel(book, n_splits=3, tune=False,
                              backend_params={**base, "following_weight": 0.0}).fit(coded)
    assert "following" in with_next.backend_.vocabularies_ and "following" not in without.backend_.vocabularies_
    new = [Segment("X", "1", "对，就是这样，大家都很头疼。", "受访者"),
           Segment("X", "2", "您刚才说的停车位不够，小区里车位怎么分配的？", "访谈者"),
           Segment("Y", "1", "对，就是这样，大家都很头疼。", "受访者"),
           Segment("Y", "2", "您刚才说的垃圾分类，楼道里怎么督促的？", "访谈者")]
    p = with_next.predict_proba(new)
    parking, waste = with_next.codes_.index("parking"), with_next.codes_.index("waste")
    assert p[0, parking] > p[0, waste] and p[2, waste] > p[2, parking]
    q = without.predict_proba(new)  # the same answer: without the follow-up, the same scores
    np.testing.assert_allclose(q[0], q[2])
    alone = with_next.predict_proba(new[:1])  # scored alone, nothing follows: the block is empty, not an error
    assert alone.shape == (1, len(with_next.codes_))


def test_following_segment_spans_batches(book, coded):
    model = CodingModel(book, n_splits=3, tune=False, backend_params={"following_weight": 0.5}).fit(coded)
    segs = list(coded.segments)
    np.testing.assert_allclose(model.predict_proba(segs, batch_size=3), model.predict_proba(segs), atol=1e-12)
    assert make_inputs(segs).following[0] == segs[1].text and make_inputs(segs).rows(0, 1).following == [segs[1].text]


def test_model_saved_without_following_feature_still_loads(tmp_path, book, coded):
    """Models saved before the following segment was a feature have no ``following_weight``."""
    old = CodingModel(book, n_splits=3, tune=False, backend_params={"following_weight": 0.0}).fit(coded)
    path = old.save(tmp_path / "old")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    doc["backend_params"].pop("following_weight")
    _as_format_1(path, doc)
    loaded = CodingModel.load(path)
    assert loaded.backend_.params["following_weight"] == 0.0
    np.testing.assert_array_equal(loaded.predict_proba(NEW), old.predict_proba(NEW))


# -- tuning the data-dependent setting ------------------------------------------------------------------------
def test_context_weight_is_chosen_by_out_of_fold_kappa(tmp_path, model):
    tuning = model.tuning_["context_weight"]
    assert set(tuning["candidates"]) == {"0.0", "0.5", "1.0"}
    best = max(tuning["candidates"].items(), key=lambda kv: kv[1])
    assert tuning["chosen"] == float(best[0]) == model.backend_.params["context_weight"]
    assert all(-1 <= k <= 1 for k in tuning["candidates"].values())
    loaded = CodingModel.load(model.save(tmp_path / "m"))
    assert loaded.tuning_ == model.tuning_ and loaded.tune


@pytest.mark.parametrize("kwargs", [{"tune": False},
                                    {"backend_params": {"context_weight": 0.5, "hierarchy": False}}])
def test_no_tuning_when_off_or_given(book, coded, kwargs):
    m = CodingModel(book, n_splits=3, **kwargs).fit(coded)
    assert m.tuning_ == {}
    assert m.backend_.params["context_weight"] == kwargs.get("backend_params", {}).get("context_weight", 1.0)


def test_only_the_settings_not_given_are_tuned(book, coded):
    m = CodingModel(book, n_splits=3, backend_params={"context_weight": 0.5}).fit(_with_small_talk(coded))
    assert set(m.tuning_) == {"hierarchy"} and set(m.tuning_["hierarchy"]["candidates"]) == {"False", "True"}
    best = max(m.tuning_["hierarchy"]["candidates"].items(), key=lambda kv: kv[1])
    assert str(m.tuning_["hierarchy"]["chosen"]) == best[0] and m.backend_.params["context_weight"] == 0.5


def test_tuned_model_matches_a_model_fitted_with_the_chosen_setting(book, coded, model):
    chosen = {key: t["chosen"] for key, t in model.tuning_.items()}
    assert set(chosen) == {"context_weight"}  # no uncoded segments here: the hierarchy cannot apply
    fixed = CodingModel(book, n_splits=3, random_state=0, backend_params=chosen).fit(coded)
    np.testing.assert_allclose(fixed.predict_proba(NEW), model.predict_proba(NEW), atol=1e-9)
    np.testing.assert_array_equal(fixed.thresholds_, model.thresholds_)


def test_one_encoding_serves_every_context_weight(coded):
    """The tuning encodes once with the largest weight; a lower weight fitted on it gives the same model as
    one fitted on its own encoding."""
    from autocode.backends.tfidf import TfidfBackend

    inputs = make_inputs(coded.segments)
    Y = coded.labels(coded.used_codes(), "union")
    shared = TfidfBackend(context_weight=1.0).encode(inputs)
    for w in (0.0, 0.5):
        a = TfidfBackend(context_weight=1.0).set_params(context_weight=w)
        a.fit(shared, Y)
        b = TfidfBackend(context_weight=w)
        b.fit(b.encode(inputs), Y)
        np.testing.assert_allclose(a.decision_function(a.encode(inputs)), b.decision_function(b.encode(inputs)),
                                   atol=1e-5)


def test_calibration_is_shrunk_towards_the_pooled_scaling():
    """Platt parameters: each code's own (prior 0), one for all codes (prior inf), or in between by examples."""
    rng = np.random.default_rng(0)
    n = 400
    Y = np.zeros((n, 3), dtype=bool)
    Y[rng.choice(n, 200, replace=False), 0] = True  # a frequent code
    Y[rng.choice(n, 5, replace=False), 1] = True  # a rare code
    Y[rng.choice(n, 40, replace=False), 2] = True
    oof = np.where(Y, 1.0, -1.0) * np.array([2.0, 0.5, 1.0]) + rng.normal(0, 1, (n, 3))
    cal = {}
    for prior in (0.0, 30.0, float("inf")):
        c = calibrate(oof, Y, calibration_prior=prior, threshold_prior=100.0)
        cal[prior] = c.coef.copy()
        assert c.thresholds.shape == (3,) and (c.thresholds <= 1).all()
    assert np.allclose(cal[float("inf")], cal[float("inf")][0])  # one scaling for every code
    assert not np.allclose(cal[0.0][0], cal[0.0][1])
    # with prior 30, the frequent code (200 examples) keeps mostly its own scaling, the rare one (5) the pooled
    pooled, own, mid = cal[float("inf")], cal[0.0], cal[30.0]
    np.testing.assert_allclose(mid[0], (200 * own[0] + 30 * pooled[0]) / 230)
    np.testing.assert_allclose(mid[1], (5 * own[1] + 30 * pooled[1]) / 35)


def test_a_code_no_cut_helps_keeps_the_pooled_threshold():
    """Out of fold, a code whose scores carry no signal is not silenced: it gets the pooled threshold."""
    rng = np.random.default_rng(1)
    n = 300
    Y = np.zeros((n, 2), dtype=bool)
    Y[rng.choice(n, 60, replace=False), 0] = True
    Y[rng.choice(n, 6, replace=False), 1] = True
    oof = np.column_stack([np.where(Y[:, 0], 2.0, -2.0) + rng.normal(0, 1, n), np.zeros(n)])  # no cut at all
    c = calibrate(oof, Y, calibration_prior=30.0, threshold_prior=100.0)
    assert c.thresholds[1] == c.global_threshold < 1.0  # not the "never" threshold (above every score)


def test_model_saved_before_calibration_shrinkage_still_loads(tmp_path, book, coded):
    """Models saved by autocode 0.1.0 have no calibration_prior: they had each code's own scaling."""
    path = CodingModel(book, n_splits=3).fit(coded).save(tmp_path / "old")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    doc["settings"].pop("calibration_prior")
    _as_format_1(path, doc)
    assert CodingModel.load(path).calibration_prior == 0.0
    assert CodingModel.load(tmp_path / "old").get_params()["calibration_prior"] == 0.0


def test_calibration_prior_is_saved(tmp_path, book, coded):
    m = CodingModel(book, n_splits=3, calibration_prior=7.0).fit(coded)
    assert CodingModel.load(m.save(tmp_path / "m")).calibration_prior == 7.0


SMALL_TALK = ["嗯。", "对对对。"]


def _with_small_talk(coded: CodedCorpus) -> CodedCorpus:
    """The fixture corpus plus uncoded turns (as in whole transcripts)."""
    extra = [Segment(f"D{d}", f"t{i}", t, "受访者") for d in range(8) for i, t in enumerate(SMALL_TALK)]
    segs = [*coded.segments, *extra]
    codings = {c: {**dict(zip((s.key for s in coded.segments), coded.codings(c))),
                   **{s.key: set() for s in extra}} for c in coded.coders}
    return CodedCorpus(segs, codings, codebook=coded.codebook)


def test_codes_are_scored_category_first(book, coded):
    """score = logit(P(category) x P(code | category)): one classifier per category, one per code trained on
    the segments of its category."""
    model = CodingModel(book, n_splits=3, random_state=0, backend_params={"hierarchy": True}).fit(
        _with_small_talk(coded))
    b = model.backend_
    group = dict(zip(model.codes_, b.group_of_.tolist()))
    assert group["council"] == group["service"] != group["party"]  # siblings under H; party alone under V
    assert b.cat_coef_.shape == (2, b.coef_.shape[1])
    enc = b.encode(make_inputs(NEW))
    X = b._features(enc).toarray()
    zc = X @ b.cat_coef_.T + b.cat_intercept_
    z = X @ b.coef_.T + b.intercept_
    p = 1 / (1 + np.exp(-zc[:, b.group_of_])) / (1 + np.exp(-z))
    expected = np.log(p / (1 - p))
    np.testing.assert_allclose(b.decision_function(enc), expected, rtol=1e-5, atol=1e-5)
    sug = model.suggest(NEW)
    assert [sug.codes_for(i) for i in (0, 2, 3)] == [["party"], ["council"], ["service"]]
    # small talk like the uncoded turns it learned from gets nothing
    assert not model.suggest([Segment("N3", str(i), t, "受访者") for i, t in enumerate(SMALL_TALK)]).accepted.any()


def test_no_hierarchy_without_uncoded_segments(book, coded):
    """Coded excerpts alone do not show what no category looks like: one classifier per code."""
    model = CodingModel(book, n_splits=3, backend_params={"hierarchy": True}).fit(coded)
    assert model.backend_.params["hierarchy"] is True and model.backend_.group_of_ is None
    tuned = CodingModel(book, n_splits=3).fit(coded)  # nothing to gain: the hierarchy is not tried
    assert set(tuned.tuning_) == {"context_weight"} and tuned.backend_.group_of_ is None


def test_one_classifier_per_code_without_hierarchy(book, coded):
    flat_book = Codebook([Code(c.id, c.name, c.description) for c in book if c.id in ("party", "council",
                                                                                         "service")])
    flat_coded = CodedCorpus(coded.segments, {c: dict(zip((s.key for s in coded.segments), coded.codings(c)))
                                              for c in coded.coders}, codebook=flat_book)
    for m in (CodingModel(book, n_splits=3, backend_params={"hierarchy": False}).fit(coded),
              CodingModel(flat_book, n_splits=3).fit(flat_coded)):
        assert m.backend_.group_of_ is None and m.backend_.cat_coef_ is None
        assert m.predict_proba(NEW).shape == (len(NEW), 3)


def test_model_saved_before_hierarchy_still_loads(tmp_path, book, coded):
    """Models saved by autocode 0.1.0 have no hierarchy parameter: one classifier per code."""
    old = CodingModel(book, n_splits=3, backend_params={"hierarchy": False}).fit(coded)
    path = old.save(tmp_path / "old")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    doc["backend_params"].pop("hierarchy")
    _as_format_1(path, doc)
    loaded = CodingModel.load(path)
    assert loaded.backend_.params["hierarchy"] is False
    np.testing.assert_array_equal(loaded.predict_proba(NEW), old.predict_proba(NEW))


def test_hierarchical_model_round_trip_keeps_the_category_classifiers(tmp_path, book, coded):
    model = CodingModel(book, n_splits=3, random_state=0, backend_params={"hierarchy": True}).fit(
        _with_small_talk(coded))
    loaded = CodingModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.predict_proba(NEW), model.predict_proba(NEW))
    np.testing.assert_array_equal(loaded.backend_.group_of_, model.backend_.group_of_)
    np.testing.assert_array_equal(loaded.backend_.cat_coef_, model.backend_.cat_coef_)


def test_grouped_folds_keep_documents_whole_and_differ_by_seed():
    from autocode.folds import grouped_folds

    rng = np.random.default_rng(0)
    sizes = rng.integers(20, 75, size=18)  # 18 interviews of 20-74 turns
    groups = np.repeat([f"P{i:02d}" for i in range(18)], sizes)
    partitions = set()
    for seed in range(5):
        folds = grouped_folds(groups, 3, seed)
        tested = np.concatenate([te for _, te in folds])
        assert sorted(tested.tolist()) == list(range(len(groups)))  # every segment tested exactly once
        for train, test in folds:
            assert not set(groups[train]) & set(groups[test])  # documents stay whole
        loads = [len(te) for _, te in folds]
        assert max(loads) - min(loads) <= sizes.max()  # balanced within one document's size
        partitions.add(frozenset(frozenset(groups[te].tolist()) for _, te in folds))
    assert len(partitions) == 5  # each seed deals another partition


def test_writing_suggestions_does_not_rebuild_the_whole_matrix_per_segment(model, monkeypatch):
    """Pre-coding output asks for every row: building the segments x codes matrix for each made it quadratic."""
    from autocode.suggestion import Suggestions

    sug = model.suggest(NEW * 3)
    expected = [sug.codes_for(i) for i in range(len(sug))]
    monkeypatch.setattr(Suggestions, "accepted", property(lambda self: pytest.fail("whole matrix built")))
    assert [sug.codes_for(i) for i in range(len(sug))] == expected
    assert len(sug.records()) == len(sug)
