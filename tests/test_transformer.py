"""The transformer backend, with a tiny randomly initialised BERT built in a temporary folder (no download)."""

from __future__ import annotations

import csv
import json
import sys

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("datasets")

import hostile  # noqa: E402
from _tiny_bert import make_tiny_bert  # noqa: E402
from conftest import TOPICS  # noqa: E402

from autocode import CodingModel, ModelFileError  # noqa: E402
from autocode.backends import get_backend  # noqa: E402
from autocode.backends.transformer import TransformerBackend  # noqa: E402
from autocode.backends.transformer._backend import _groups, _validation_split  # noqa: E402
from autocode.backends.transformer.dataset import from_dataset, to_dataset  # noqa: E402
from autocode.exceptions import AutocodeError, MissingDependencyError  # noqa: E402
from autocode.model import make_inputs  # noqa: E402

EXTRA = ["，我觉得很好。", "。", "居民代表提出新的建议", "党员志愿者帮助老人"]
FAST = {"epochs": 8, "learning_rate": 3e-3, "batch_size": 8}


pytestmark = pytest.mark.usefixtures("torch_one_thread")


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    texts = [s for sents in TOPICS.values() for s in sents] + EXTRA
    return make_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), texts)


def test_registered_under_versioned_name():
    assert get_backend("transformer") is TransformerBackend
    assert get_backend("transformer.v1").name == "transformer.v1"


def test_fit_save_load_predict_round_trip(book, coded, tiny_dir, tmp_path):
    model = CodingModel(book, "transformer", n_splits=2, random_state=0,
                        backend_params={"model_name": str(tiny_dir), **FAST})
    model.fit(coded)
    hist = model.backend_.history_
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]  # it learns
    assert "val_loss" in hist[0]  # early stopping on held-out documents
    p = model.predict_proba(coded.segments)
    assert p.shape == (len(coded), 3) and np.isfinite(p).all()

    folder = model.save(tmp_path / "model")
    doc = json.loads((folder / "model.json").read_text(encoding="utf-8"))
    assert doc["backend"] == "transformer.v1"
    assert set(doc["files"]) >= {"weights.safetensors", "config.json", "tokenizer.json"}
    json.dumps(doc["backend_params"])  # JSON-ready
    loaded = CodingModel.load(folder)
    np.testing.assert_allclose(loaded.predict_proba(coded.segments), p, atol=1e-5)
    # the saved model is self-contained: the encoder folder is not needed any more
    assert loaded.suggest(["社区党支部带领居民开展志愿服务"]).codes == model.suggest(["社区党支部带领居民开展志愿服务"]).codes


def test_learns_the_topics(book, coded, tiny_dir):
    backend = TransformerBackend(model_name=str(tiny_dir), early_stopping=False, epochs=15, learning_rate=3e-3,
                                 batch_size=8)
    enc = backend.encode(make_inputs(coded.segments))
    Y = coded.labels(["party", "council", "service"], "E")
    scores = backend.fit(enc, Y).decision_function(enc)
    assert (scores.argmax(1) == Y.argmax(1)).mean() > 0.8


def test_head_starts_as_a_linear_probe(coded, tiny_dir):
    """Before any fine-tuning step (epochs=0) the probe head already separates what the frozen encoder
    separates; a random head scores at chance (a random head barely moves at fine-tuning learning rates)."""
    Y = coded.labels(["party", "council", "service"], "E")
    accuracy = {}
    for init in ("probe", "random"):
        backend = TransformerBackend(model_name=str(tiny_dir), early_stopping=False, epochs=0, head_init=init)
        enc = backend.encode(make_inputs(coded.segments))
        scores = backend.fit(enc, Y).decision_function(enc)
        accuracy[init] = (scores.argmax(1) == Y.argmax(1)).mean()
    assert accuracy["probe"] > 0.8
    assert accuracy["probe"] > accuracy["random"] + 0.2


def test_tampered_weights_are_refused(book, coded, tiny_dir, tmp_path):
    model = CodingModel(book, "transformer", n_splits=2, backend_params={"model_name": str(tiny_dir), "epochs": 1})
    folder = model.fit(coded).save(tmp_path / "m")
    hostile.flip_byte(folder / "weights.safetensors")
    with pytest.raises(ModelFileError, match=r"weights\.safetensors: changed since it was saved"):
        CodingModel.load(folder)


def test_context_pairs(coded, tiny_dir):
    backend = TransformerBackend(model_name=str(tiny_dir), context=True, epochs=1, pooling="cls")
    enc = backend.encode(make_inputs(coded.segments))
    assert {0, 1} <= set(np.concatenate(enc["token_type_ids"]).tolist())
    Y = coded.labels(["party", "council", "service"], "E")
    assert backend.fit(enc, Y).decision_function(enc).shape == (len(coded), 3)


def test_cli_train_and_precode(book, coded, tiny_dir, tmp_path):
    from autocode.cli import main
    from autocode.io import write_coded

    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    rc = main(["-q", "train", "--backend", "transformer", "--model-name", str(tiny_dir), "--codebook",
               str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"), "--folds", "2",
               "--out", str(tmp_path / "model")])
    assert rc == 0
    (tmp_path / "new.csv").write_text("document,segment,speaker,text\nN1,1,受访者,党员志愿者帮助老人\n"
                                      "N1,2,受访者,居民代表提出新的建议\n", encoding="utf-8")
    rc = main(["-q", "precode", "--model", str(tmp_path / "model"), str(tmp_path / "new.csv"), "--out",
               str(tmp_path / "out.csv")])
    assert rc == 0
    with open(tmp_path / "out.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["text"] for r in rows] == ["党员志愿者帮助老人", "居民代表提出新的建议"]


def test_cli_without_model_name_says_how_to_fix(book, coded, tmp_path, capsys):
    from autocode.cli import main
    from autocode.io import write_coded

    book.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded)
    rc = main(["train", "--backend", "transformer", "--codebook", str(tmp_path / "codebook.csv"), "--data",
               str(tmp_path / "coded.csv"), "--out", str(tmp_path / "model")])
    assert rc == 1
    assert "--model-name PATH" in capsys.readouterr().err


def test_missing_folder_is_named(tmp_path):
    backend = TransformerBackend(model_name=str(tmp_path / "nope"))
    with pytest.raises(AutocodeError, match="no such model folder"):
        backend.encode(make_inputs([]))


def test_bad_parameters_are_named():
    """Parameters are stored as given (scikit-learn's contract) and checked when fitting."""
    Y = np.zeros((1, 1), dtype=bool)
    with pytest.raises(AutocodeError, match="pooling must be 'mean' or 'cls', got 'max'"):
        TransformerBackend(model_name="x", pooling="max").fit({}, Y)
    with pytest.raises(AutocodeError, match="class_weight must be 'balanced' or None"):
        TransformerBackend(model_name="x", class_weight="auto").fit({}, Y)
    with pytest.raises(AutocodeError, match="head_init must be 'probe' or 'random', got 'zeros'"):
        TransformerBackend(model_name="x", head_init="zeros").fit({}, Y)


def test_missing_torch_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)
    backend = TransformerBackend(model_name=str(tmp_path))
    with pytest.raises(MissingDependencyError, match=r"pip install 'autocode\[transformer\]'"):
        backend.fit({"input_ids": [], "groups": np.zeros(0)}, np.zeros((0, 1), bool))


def test_documents_recovered_from_the_context_chain(coded):
    groups = _groups(make_inputs(coded.segments))
    docs = [s.document for s in coded.segments]
    assert len(set(groups.tolist())) == len(set(docs))
    assert all((groups[i] == groups[j]) == (docs[i] == docs[j]) for i in range(0, 48, 5) for j in range(0, 48, 7))


def test_validation_split_keeps_documents_whole():
    groups = np.repeat(np.arange(10), 4)
    train, val = _validation_split(groups, 0.2, np.random.default_rng(0))
    assert len(val) == 8 and not set(groups[train]) & set(groups[val])
    train, val = _validation_split(np.repeat([0, 1], 3), 0.5, np.random.default_rng(0))
    assert len(val) == 0 and len(train) == 6  # too few documents to hold any out


def test_dataset_round_trip(coded):
    ds = to_dataset(coded, codes=["party", "council", "service"], target="E")
    assert len(ds) == len(coded)
    assert ds[0]["labels"] == [1.0, 0.0, 0.0]
    back = from_dataset(ds, codebook=coded.codebook)
    assert [s for s in back.segments] == list(coded.segments)
    for coder in coded.coders:
        assert back.codings(coder) == coded.codings(coder)


def test_dataset_without_required_columns():
    import datasets

    ds = datasets.Dataset.from_dict({"doc": ["a"], "segment": ["1"], "text": ["x"]})
    with pytest.raises(AutocodeError, match="lacks the column.s. document.*rename_column"):
        from_dataset(ds)


@pytest.mark.gpu
def test_fit_and_predict_on_cuda(book, coded, tiny_dir):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    backend = TransformerBackend(model_name=str(tiny_dir), device="cuda", **FAST)
    enc = backend.encode(make_inputs(coded.segments))
    Y = coded.labels(["party", "council", "service"], "E")
    gpu = backend.fit(enc, Y).decision_function(enc)
    cpu = TransformerBackend(**{**backend.get_params(), "device": "cpu"})
    cpu.net_, cpu.n_codes_ = backend.net_, backend.n_codes_
    # bf16 on the GPU: logits of magnitude ~20 differ by up to ~3%
    np.testing.assert_allclose(gpu, cpu.decision_function(enc), rtol=0.05, atol=0.2)


def test_tokenised_corpus_is_cached(coded, tiny_dir, tmp_path):
    backend = TransformerBackend(model_name=str(tiny_dir), cache_dir=str(tmp_path / "cache"))
    first = backend.encode(make_inputs(coded.segments))
    files = sorted((tmp_path / "cache").glob("tokens-*.arrow"))
    assert len(files) == 1
    again = backend.encode(make_inputs(coded.segments))
    assert sorted((tmp_path / "cache").glob("tokens-*.arrow")) == files  # read back, not recomputed
    assert [a.tolist() for a in again["input_ids"]] == [a.tolist() for a in first["input_ids"]]
    backend.encode(make_inputs(coded.segments[:5]))
    assert len(list((tmp_path / "cache").glob("tokens-*.arrow"))) == 2  # other texts, other file
