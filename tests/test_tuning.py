"""Training cost on large corpora: tuning on a sample of documents, folds fitted in worker processes, and the
Platt scaling of every code at once. None of them may change the model of a small corpus."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.optimize import minimize

from autocode import CodedCorpus, CodingModel, Segment
from autocode.backends.base import Backend
from autocode.backends.tfidf import TfidfBackend
from autocode.calibration import calibrate, platt, platt_columns
from autocode.checksum import make_manifest
from autocode.folds import MIN_PARALLEL_ROWS, out_of_fold_decisions, out_of_fold_decisions_many, tuning_sample
from autocode.model import make_inputs

NEW = [Segment("N1", "1", "社区党支部组织党员开展志愿服务。", "受访者"),
       Segment("N1", "2", "居民议事会上大家投票决定停车位。", "受访者")]


def _copies(coded: CodedCorpus, times: int) -> CodedCorpus:
    """The fixture corpus with each document repeated ``times`` times under new names."""
    segs, codings = [], {c: {} for c in coded.coders}
    for r in range(times):
        for s, *codes in zip(coded.segments, *(coded.codings(c) for c in coded.coders)):
            seg = Segment(f"{s.document}-{r}", s.segment, s.text, s.speaker)
            segs.append(seg)
            for c, got in zip(coded.coders, codes):
                codings[c][seg.key] = got
    return CodedCorpus(segs, codings, codebook=coded.codebook)


# -- the sample -------------------------------------------------------------------------------------------------
def test_tuning_sample_takes_whole_seeded_documents():
    groups = np.repeat([f"d{i}" for i in range(30)], np.arange(30) % 7 + 1)
    rows = tuning_sample(groups, 20, 6, 3, 0)
    assert np.all(np.diff(rows) > 0)
    taken = set(groups[rows].tolist())
    assert all(np.isin(np.flatnonzero(np.isin(groups, list(taken))), rows))  # documents whole
    assert len(rows) >= max(20, len(groups) / 6) and len(taken) >= 6  # at least 2 x n_splits documents
    assert np.array_equal(rows, tuning_sample(groups, 20, 6, 3, 0))
    assert not np.array_equal(rows, tuning_sample(groups, 20, 6, 3, 1))


def test_no_sample_when_it_would_be_everything_or_is_off():
    groups = np.repeat(np.arange(10), 10)
    assert tuning_sample(groups, 100, 6, 3, 0) is None  # the whole corpus
    assert tuning_sample(groups, None, 6, 3, 0) is None
    assert tuning_sample(groups, 1, 1, 3, 0) is None  # one candidate: n / 1 segments
    assert len(tuning_sample(groups, 1, 6, 3, 0)) == 60  # 2 x 3 folds of documents, more than n / 6


def test_a_small_corpus_is_tuned_on_every_segment(book, coded):
    default = CodingModel(book, n_splits=3).fit(coded)
    assert all("segments" not in t for t in default.tuning_.values())
    every = CodingModel(book, n_splits=3, tune_segments=None).fit(coded)
    np.testing.assert_array_equal(default.predict_proba(NEW), every.predict_proba(NEW))
    assert default.tuning_ == every.tuning_


def test_a_large_corpus_is_tuned_on_a_sample_and_calibrated_on_all(book, coded):
    big = _copies(coded, 3)  # 24 documents
    model = CodingModel(book, n_splits=3, tune_segments=1).fit(big)
    sampled = {t["segments"] for t in model.tuning_.values()}
    assert len(sampled) == 1 and 0 < sampled.pop() < len(big)
    assert model.oof_proba_.shape == (len(big), len(model.codes_))
    # the calibration and thresholds are those of the chosen setting cross-validated on every segment
    chosen = {k: t["chosen"] for k, t in model.tuning_.items()}
    fixed = CodingModel(book, n_splits=3, backend_params=chosen).fit(big)
    np.testing.assert_array_equal(model.thresholds_, fixed.thresholds_)
    np.testing.assert_allclose(model.predict_proba(NEW), fixed.predict_proba(NEW), atol=1e-12)


def test_tune_segments_is_saved_and_older_models_load_without_a_sample(tmp_path, book, coded):
    model = CodingModel(book, n_splits=3, tune_segments=123).fit(coded)
    path = model.save(tmp_path / "m")
    assert CodingModel.load(path).tune_segments == 123
    doc = json.loads((path / "model.json").read_text("utf-8"))
    del doc["settings"]["tune_segments"]  # as saved before the setting existed
    (path / "model.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    (path / "checksums.json").write_text(make_manifest(path, ["model.json", "arrays.npz"]), "utf-8")
    old = CodingModel.load(path)
    assert old.tune_segments is None
    np.testing.assert_array_equal(old.predict_proba(NEW), model.predict_proba(NEW))


# -- folds in worker processes ----------------------------------------------------------------------------------
def test_folds_in_worker_processes_give_the_same_model(tmp_path, book, coded):
    one = CodingModel(book, n_splits=3, n_jobs=1).fit(coded)
    two = CodingModel(book, n_splits=3, n_jobs=2).fit(coded)
    assert one.tuning_ == two.tuning_
    np.testing.assert_array_equal(one.oof_proba_, two.oof_proba_)
    np.testing.assert_array_equal(one.thresholds_, two.thresholds_)
    np.testing.assert_array_equal(one.predict_proba(NEW), two.predict_proba(NEW))
    doc = json.loads((two.save(tmp_path / "m") / "model.json").read_text("utf-8"))
    assert "n_jobs" not in doc["settings"]  # a setting of the machine
    assert CodingModel(book).n_jobs is None and CodingModel(book, n_jobs=3).clone().n_jobs == 3


def test_out_of_fold_decisions_of_many_backends_are_each_ones_own(coded):
    inputs, Y = make_inputs(coded.segments), coded.labels(coded.used_codes(), "union")
    backends = [TfidfBackend(context_weight=w) for w in (0.0, 1.0)]
    encoded = backends[-1].encode(inputs)
    groups = coded.groups
    many = out_of_fold_decisions_many(backends, encoded, Y, groups, n_splits=3, n_jobs=1)
    for b, oof in zip(backends, many):
        np.testing.assert_array_equal(oof, out_of_fold_decisions(b, encoded, Y, groups, n_splits=3))
    assert not np.array_equal(many[0], many[1])


_FITS_HERE: list[int] = []


class _InProcess(Backend):
    """A backend that may not fit in worker processes: counts its fits in this process."""

    def __init__(self, bias: float = 0.0):
        self.bias = bias

    def encode(self, inputs):
        return np.array([len(t) for t in inputs.texts], dtype=float)[:, None]

    def fit(self, encoded, Y, *, code_groups=None):
        _FITS_HERE.append(len(Y))
        self.mean_ = Y.mean(axis=0)
        return self

    def decision_function(self, encoded):
        return np.tile(self.mean_ + self.bias, (len(encoded), 1)) + 0.01 * encoded


def test_backends_that_do_not_allow_it_fit_in_this_process(coded):
    Y = coded.labels(coded.used_codes(), "union")
    b = _InProcess()
    before = len(_FITS_HERE)
    out_of_fold_decisions(b, b.encode(make_inputs(coded.segments)), Y, coded.groups, n_splits=3, n_jobs=2)
    assert len(_FITS_HERE) - before == 3 and not _InProcess.parallel_fits and TfidfBackend.parallel_fits


def test_small_corpora_fit_in_this_process_unless_told(monkeypatch, coded):
    from autocode import folds

    assert folds._workers(None, 15, MIN_PARALLEL_ROWS - 1) == 1
    assert folds._workers(None, 15, MIN_PARALLEL_ROWS) >= 1
    assert folds._workers(2, 15, 10) == 2 and folds._workers(8, 3, 10) == 3 and folds._workers(1, 15, 10 ** 6) == 1
    monkeypatch.setattr(folds.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert folds._workers(None, 15, MIN_PARALLEL_ROWS) == 4 and folds._workers(-1, 15, 10) == 4


# -- Platt scaling of every code at once ------------------------------------------------------------------------
def _platt_reference(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Platt's loss (target smoothing, the tiny ridge on a) minimised by scipy, as autocode 0.2 did per code."""
    n_pos, n_neg = y.sum(), (~y).sum()
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))

    def loss(ab):
        z = ab[0] * s + ab[1]
        return np.sum(np.logaddexp(0, z) - t * z) + 1e-6 * ab[0] ** 2

    def grad(ab):
        r = 1 / (1 + np.exp(-(ab[0] * s + ab[1]))) - t
        return np.array([np.sum(r * s) + 2e-6 * ab[0], np.sum(r)])

    a, b = minimize(loss, np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B", options={"gtol": 1e-10}).x
    return np.array([a, b]) if a > 0 else np.array([0.0, np.log((n_pos + 1) / (n_neg + 1))])


def _scores(n=3000, k=8, seed=0):
    rng = np.random.default_rng(seed)
    Y = rng.random((n, k)) < rng.uniform(0.005, 0.2, k)
    S = rng.normal(size=(n, k)) * rng.uniform(0.3, 4, k) + Y * rng.uniform(0.5, 6, k) - rng.uniform(0, 5, k)
    return S, Y


def test_platt_of_every_column_matches_scipy_per_column():
    S, Y = _scores()
    S[:, 0] = 0.7  # flat scores: the base rate
    S[:, 1] = -S[:, 1]  # anti-correlated: the base rate
    got = platt_columns(S, Y)
    for j in range(S.shape[1]):
        np.testing.assert_allclose(got[j], _platt_reference(S[:, j], Y[:, j]), rtol=1e-4, atol=1e-4)
    assert got[0, 0] == got[1, 0] == 0.0
    assert got[0, 1] == pytest.approx(np.log((Y[:, 0].sum() + 1) / ((~Y[:, 0]).sum() + 1)))
    assert platt(S[:, 2], Y[:, 2]) == pytest.approx(tuple(got[2]))


def test_platt_of_every_column_uses_the_known_rows_only():
    S, Y = _scores(seed=1)
    K = np.random.default_rng(2).random(S.shape) < 0.7
    got = platt_columns(S, Y, K)
    for j in range(S.shape[1]):
        np.testing.assert_allclose(got[j], _platt_reference(S[K[:, j], j], Y[K[:, j], j]), rtol=1e-4, atol=1e-4)
    # what unknown rows hold does not matter
    np.testing.assert_allclose(platt_columns(np.where(K, S, 1e6), Y, K), got, rtol=1e-9, atol=1e-12)


def test_calibration_uses_the_columns_scaling_shrunk_to_the_pooled_one():
    S, Y = _scores(seed=3)
    cal = calibrate(S, Y, calibration_prior=30.0, threshold_prior=100.0)
    n = Y.sum(axis=0)
    w = (n / (n + 30.0))[:, None]
    pooled = np.array(platt(S.ravel(), Y.ravel()))
    np.testing.assert_allclose(cal.coef, w * platt_columns(S, Y) + (1 - w) * pooled)
