"""The rerank.v1 backend (TF-IDF candidates rescored by a cross-encoder), with a tiny randomly initialised BERT
built in a temporary folder (no download)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

pytest.importorskip("torch")
pytest.importorskip("transformers")

from _tiny_bert import make_tiny_bert  # noqa: E402
from conftest import TOPICS  # noqa: E402

from autocode import CodingModel, ModelFileError  # noqa: E402
from autocode.backends import get_backend  # noqa: E402
from autocode.backends.codebook import code_texts  # noqa: E402
from autocode.backends.transformer import RerankBackend  # noqa: E402
from autocode.backends.transformer._pairs import PairScorer, score_pairs  # noqa: E402
from autocode.model import make_inputs  # noqa: E402

EXTRA = ["，我觉得很好。", "。", "纵向引领横向共治组织嵌入多元参与精准服务", "党组织嵌入社区治理居民通过议事会参与面向特定人群的",
         "passage: query: /：", "你们觉得怎么样？"]
FAST = {"epochs": 3, "learning_rate": 1e-3, "batch_size": 8, "candidates": 2, "joint_layers": 1}
CODES = ["party", "council", "service"]


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    texts = [s for sents in TOPICS.values() for s in sents] + EXTRA
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts)


def backend(tiny_dir, book, **params) -> RerankBackend:
    return RerankBackend(code_texts=code_texts(book, CODES), model_name=str(tiny_dir), **{**FAST, **params})


def test_registered_under_versioned_name():
    assert get_backend("rerank") is RerankBackend
    assert get_backend("rerank.v1").name == "rerank.v1"


def test_sklearn_contract(tiny_dir, book):
    b = backend(tiny_dir, book, rerank_weight=0.5)
    c = clone(b)
    assert c.get_params() == b.get_params() and c.rerank_weight == 0.5
    assert "device" not in b.params and "n_jobs" not in b.params  # settings of the machine


def test_fit_trains_on_candidates_and_scores_every_code(tiny_dir, book, coded):
    b = backend(tiny_dir, book)
    enc = b.encode(make_inputs(coded.segments))
    Y = coded.labels(CODES, "E")
    b.fit(enc, Y)
    assert b.net_ is not None and b.scale_ > 0
    # every segment's one code and its other candidate (2 candidates per segment, one of them usually the code)
    assert len(Y) <= b.n_pairs_ <= 3 * len(Y)
    assert [h["epoch"] for h in b.history_] == [1, 2, 3]
    assert b.history_[-1]["train_loss"] < b.history_[0]["train_loss"]  # it learns
    scores = b.decision_function(enc)
    assert scores.shape == Y.shape and np.isfinite(scores).all()
    base = super(RerankBackend, b).decision_function(enc.counts)
    assert not np.allclose(scores, base)  # the cross-encoder moved the candidates


def test_non_candidates_get_the_lowest_candidate_adjustment(tiny_dir, book, coded):
    b = backend(tiny_dir, book)
    enc = b.encode(make_inputs(coded.segments))
    b.fit(enc, coded.labels(CODES, "E"))
    base = super(RerankBackend, b).decision_function(enc.counts)
    delta = b.decision_function(enc) - base
    order = np.argsort(-base, axis=1, kind="stable")
    rows = np.arange(len(base))
    np.testing.assert_allclose(delta[rows, order[:, 2]], delta[rows[:, None], order[:, :2]].min(axis=1), atol=1e-9)


def test_rerank_weight_zero_is_the_tfidf_model(tiny_dir, book, coded):
    b = backend(tiny_dir, book, rerank_weight=0.0)
    enc = b.encode(make_inputs(coded.segments))
    b.fit(enc, coded.labels(CODES, "E"))
    np.testing.assert_allclose(b.decision_function(enc), super(RerankBackend, b).decision_function(enc.counts))


def test_context_reads_the_preceding_turn(tiny_dir, book):
    b = backend(tiny_dir, book)
    with_q = b._segment_ids(["党员在小区里亮身份做示范"], ["你们觉得怎么样？"])[0]
    alone = b._segment_ids(["党员在小区里亮身份做示范"], [""])[0]
    assert len(with_q) > len(alone)
    b2 = backend(tiny_dir, book, context=False, max_length=6)
    assert len(b2._segment_ids(["党员在小区里亮身份做示范"], ["你们觉得怎么样？"])[0]) == 6


def test_labels_not_known_make_no_pairs(tiny_dir, book, coded):
    b = backend(tiny_dir, book, epochs=0)
    enc = b.encode(make_inputs(coded.segments))
    Y = coded.labels(CODES, "E")
    known = np.ones_like(Y)
    known[:, 0] = False
    b.fit(enc, Y, known=known)
    all_pairs = b._training_pairs(np.zeros(Y.shape), Y, known)
    assert (all_pairs[:, 1] != 0).all()


def test_uncoded_rows_sampled(tiny_dir, book, coded):
    b = backend(tiny_dir, book, uncoded_rows=0.5)
    Y = coded.labels(CODES, "E")
    Y[::2] = False  # half the segments uncoded
    pairs = b._training_pairs(np.random.default_rng(0).normal(size=Y.shape), Y, None)
    rows = np.unique(pairs[:, 0])
    assert Y[rows].any(axis=1).sum() == Y.any(axis=1).sum()
    assert (~Y[rows].any(axis=1)).sum() == round(0.5 * Y.any(axis=1).sum())


def test_nothing_to_tell_apart_keeps_the_tfidf_model(tiny_dir, book, coded):
    b = RerankBackend(code_texts=code_texts(book, ["party"]), model_name=str(tiny_dir), **FAST)
    enc = b.encode(make_inputs(coded.segments))
    Y = np.ones((len(coded), 1), dtype=bool)  # one code, on every segment: no negative pair
    b.fit(enc, Y)
    assert b.net_ is None
    np.testing.assert_allclose(b.decision_function(enc), super(RerankBackend, b).decision_function(enc.counts))


def test_model_fit_save_load_round_trip(book, coded, tiny_dir, tmp_path):
    model = CodingModel(book, "rerank", n_splits=2, random_state=0,
                        backend_params={"model_name": str(tiny_dir), **FAST})
    model.fit(coded)
    assert model.backend_.code_texts == code_texts(book, model.codes_)
    p = model.predict_proba(coded.segments)
    assert p.shape == (len(coded), 3) and np.isfinite(p).all()
    folder = model.save(tmp_path / "model")
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert doc["backend"] == "rerank.v1" and "reranker.safetensors" in doc["files"]
    json.dumps(doc["backend_params"])
    loaded = CodingModel.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(coded.segments), p, atol=1e-5)


def test_missing_weights_file_names_it(book, coded, tiny_dir, tmp_path):
    model = CodingModel(book, "rerank", n_splits=2, random_state=0,
                        backend_params={"model_name": str(tiny_dir), **FAST}).fit(coded)
    folder = model.save(tmp_path / "model")
    (folder / "reranker.safetensors").unlink()
    with pytest.raises(ModelFileError, match="reranker.safetensors"):
        CodingModel.load(folder)


def test_weights_of_another_encoder_are_refused(tiny_dir, book, coded, tmp_path):
    b = backend(tiny_dir, book)
    b.fit(b.encode(make_inputs(coded.segments)), coded.labels(CODES, "E"))
    b.save_files(tmp_path)
    other = backend(tiny_dir, book, joint_layers=2)
    other.__dict__["_trained"] = True
    with pytest.raises(ModelFileError, match="do not match the encoder .* joint_layers=2"):
        other.load_files(tmp_path)


def test_state_of_a_newer_format_is_refused(tiny_dir, book, coded):
    b = backend(tiny_dir, book, epochs=0)
    b.fit(b.encode(make_inputs(coded.segments)), coded.labels(CODES, "E"))
    meta, arrays = b.get_state()
    meta["reranker"]["format_version"] = 99
    with pytest.raises(ValueError, match="reranker state format 99 is not supported"):
        RerankBackend.from_state(b.params, meta, arrays)


@pytest.mark.parametrize("params, message", [
    ({"candidates": 0}, "candidates must be at least 1; got 0"),
    ({"joint_layers": 2, "layers": 1}, r"layers \(1\) must be at least joint_layers \(2\)"),
    ({"rerank_weight": -1}, "epochs, learning_rate, rerank_weight and uncoded_rows must be >= 0"),
    ({"layers": 5}, "layers=5, but the encoder .* has 2 layers"),
])
def test_bad_parameters_say_what_to_give(tiny_dir, book, coded, params, message):
    b = backend(tiny_dir, book, **params)
    with pytest.raises(ValueError, match=message):
        b.fit(b.encode(make_inputs(coded.segments)), coded.labels(CODES, "E"))


def test_no_code_texts_is_an_error(tiny_dir, coded):
    b = RerankBackend(model_name=str(tiny_dir), **FAST)
    with pytest.raises(ValueError, match="code_texts is empty"):
        b.fit(b.encode(make_inputs(coded.segments)), coded.labels(CODES, "E"))


def test_pair_scores_do_not_depend_on_the_batch(tiny_dir, book, coded):
    b = backend(tiny_dir, book)
    enc = b.encode(make_inputs(coded.segments))
    net = b._new_net()
    assert isinstance(net, PairScorer)
    pairs = np.array([(i, j) for i in range(6) for j in range(3)])
    one = score_pairs(net, pairs, enc.states, b._code_states(), batch_size=1)
    many = score_pairs(net, pairs, enc.states, b._code_states(), batch_size=64)
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_cli_train_and_precode(book, coded, tiny_dir, tmp_path):
    import csv

    from autocode.cli import main
    from autocode.io import write_coded

    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    rc = main(["-q", "train", "--backend", "rerank", "--model-name", str(tiny_dir), "--backend-param", "epochs=1",
               "--backend-param", "joint_layers=1", "--codebook", str(tmp_path / "codebook.csv"), "--data",
               str(tmp_path / "coded.csv"), "--folds", "2", "--out", str(tmp_path / "model")])
    assert rc == 0
    assert (tmp_path / "model" / "reranker.safetensors").is_file()
    (tmp_path / "new.csv").write_text("document,segment,speaker,text\nN1,1,受访者,党员志愿者帮助老人\n"
                                      "N1,2,受访者,居民代表提出新的建议\n", encoding="utf-8")
    rc = main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "new.csv"), "--out",
               str(tmp_path / "out.csv")])
    assert rc == 0
    with open(tmp_path / "out.csv", encoding="utf-8") as f:
        assert [r["text"] for r in csv.DictReader(f)] == ["党员志愿者帮助老人", "居民代表提出新的建议"]


def test_untrained_cross_encoder_saves_and_loads_as_the_tfidf_model(tiny_dir, book, coded, tmp_path):
    b = RerankBackend(code_texts=code_texts(book, ["party"]), model_name=str(tiny_dir), **FAST)
    enc = b.encode(make_inputs(coded.segments))
    b.fit(enc, np.ones((len(coded), 1), dtype=bool))
    assert b.save_files(tmp_path) == []
    meta, arrays = b.get_state()
    loaded = RerankBackend.from_state(b.params, json.loads(json.dumps(meta)), arrays)
    loaded.load_files(tmp_path)
    assert loaded.net_ is None
    np.testing.assert_allclose(loaded.decision_function(loaded.encode(make_inputs(coded.segments))),
                               b.decision_function(enc), atol=1e-6)
