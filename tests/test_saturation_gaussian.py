"""The Mahalanobis novelty signals (autocode.saturation._gaussian)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from test_saturation import fitted, held_out  # noqa: F401 (a fixture)

from autocode.checksum import make_manifest
from autocode.exceptions import ModelFileError
from autocode.saturation import COMPONENTS, NoveltyScorer
from autocode.saturation._gaussian import CodeGaussians, out_of_fold, shrunk_precision, squared_distances

MD, RMD = COMPONENTS.index("mahalanobis"), COMPONENTS.index("relative_mahalanobis")


def _planted(seed=0):
    """Synthetic vectors: 3 codes, each tight in its own dimension (2-4) and as spread as all talk along the
    'generic' dimensions 0-1; uncoded talk spread everywhere; a new concept (dimension 5) inside the talk but far
    from every code; chatter far out along the generic dimensions, where every segment varies."""
    rng = np.random.default_rng(seed)
    d = 8
    e = np.eye(d)
    sd = np.r_[2, 2, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]

    def pts(n, centre, spread=sd):
        return centre + rng.normal(0, 1, (n, d)) * spread

    Z = np.vstack([pts(40, 2 * e[k]) for k in (2, 3, 4)])
    Y = np.repeat(np.eye(3, dtype=int), 40, axis=0)
    talk = pts(300, np.zeros(d), np.r_[2, 2, 1, 1, 1, 1, 1, 1])
    return Z, Y, np.vstack([Z, talk]), pts(20, 2 * e[2]), pts(20, 2.5 * e[5]), pts(20, 12 * (e[0] + e[1]))


def test_relative_distance_finds_the_new_concept_that_plain_distance_ranks_below_chatter():
    Z, Y, background, known, new, chatter = _planted()
    g = CodeGaussians.fit(Z, Y, background)
    (md_new, rmd_new), (md_chat, rmd_chat) = g.distances(new), g.distances(chatter)
    truth = np.r_[np.ones(len(new)), np.zeros(len(chatter))]
    assert roc_auc_score(truth, np.r_[md_new, md_chat]) < 0.5  # the talk's spread looks novel to plain distance
    assert roc_auc_score(truth, np.r_[rmd_new, rmd_chat]) > 0.95  # ... and cancels in the relative one
    md_known, rmd_known = g.distances(known)
    assert md_known.max() < md_new.min() and rmd_known.max() < rmd_new.min()


def test_gaussians_by_hand():
    Z = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])
    Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]])
    g = CodeGaussians.fit(Z, Y, Z)
    np.testing.assert_allclose(g.means, [[1.0, 0.0], [1.0, 2.0]])
    P = shrunk_precision(Z[[0, 1, 2, 3]] - g.means[[0, 0, 1, 1]], centred=True)
    np.testing.assert_allclose(g.precision, P, rtol=1e-6)
    x = np.array([[1.0, 1.0]])
    by_hand = [float((x[0] - m) @ P @ (x[0] - m)) for m in g.means]
    np.testing.assert_allclose(squared_distances(x, g.means, P)[0], by_hand, rtol=1e-5)
    md, rmd = g.distances(x)
    bg = float((x[0] - g.background_mean) @ g.background_precision @ (x[0] - g.background_mean))
    np.testing.assert_allclose([md[0], rmd[0]], [min(by_hand), min(by_hand) - bg], rtol=1e-5)
    # a code without segments is left out; no code at all: the background distance, and 0
    assert CodeGaussians.fit(Z, np.c_[Y, np.zeros(4)], Z).means.shape == (2, 2)
    none = CodeGaussians.fit(Z[:0], np.zeros((0, 2)), Z)
    md, rmd = none.distances(x)
    assert md[0] == pytest.approx(bg, rel=1e-5) and rmd[0] == 0


def test_out_of_fold_signals_never_see_their_own_document():
    Z, Y, background, *_ = _planted()
    n = len(Z)
    docs = np.array([f"d{i % 6}" for i in range(n)])
    coded, bg = np.ones(n, dtype=bool), np.ones(n, dtype=bool)
    oof = out_of_fold(Z, Y, coded, bg, docs, 3, 0)
    assert oof.shape == (n, 2) and np.isfinite(oof).all()
    moved = Z.copy()
    moved[docs == "d0"] += 5.0  # one document changed: the others' out-of-fold values depend on it, its own do not
    again = out_of_fold(moved, Y, coded, bg, docs, 3, 0)
    from autocode.folds import grouped_folds

    test_of_d0 = next(test for _, test in grouped_folds(docs, 3, 0) if "d0" in docs[test])
    same = np.setdiff1d(test_of_d0, np.flatnonzero(docs == "d0"))
    np.testing.assert_allclose(again[same], oof[same])


def test_scorer_computes_the_mahalanobis_signals(fitted):  # noqa: F811
    model, scorer = fitted
    s = scorer.score(model, held_out())
    el = s.eligible
    assert np.isfinite(s.components[el][:, [MD, RMD]]).all() and np.isnan(s.components[~el][:, [MD, RMD]]).all()
    assert np.isfinite(scorer.calibration_signals_[:, [MD, RMD]]).all()
    np.testing.assert_allclose(s.components[el][:, [MD, RMD]],
                               np.column_stack(scorer.gaussians_.distances(s.embedding[el])), rtol=1e-6)
    new = [i for i, seg in enumerate(s.segments) if "垃圾" in seg.text]
    known = [i for i, seg in enumerate(s.segments) if el[i] and "垃圾" not in seg.text]
    rel = s.components[:, RMD]
    assert rel[new].mean() > rel[known].mean()


def test_relative_mahalanobis_as_a_component_and_its_background(fitted, coded):  # noqa: F811
    model, _ = fitted
    alone = NoveltyScorer(n_splits=3, components=("relative_mahalanobis",)).fit(model, coded)
    s = alone.score(model, held_out())
    new = [i for i, seg in enumerate(s.segments) if "垃圾" in seg.text]
    known = [i for i, seg in enumerate(s.segments) if s.eligible[i] and "垃圾" not in seg.text]
    assert np.nanmean(s.novelty[new]) > np.nanmean(s.novelty[known])
    coded_bg = NoveltyScorer(n_splits=3, reference="coded").fit(model, coded)
    ref = coded_bg.reference_.astype(np.float64)
    np.testing.assert_allclose(coded_bg.gaussians_.background_mean, ref.mean(axis=0), rtol=1e-5, atol=1e-6)


def test_format_4_scorer_still_loads_and_scores_as_before(fitted, tmp_path):  # noqa: F811
    model, scorer = fitted
    scorer.save(tmp_path)
    doc = json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "novelty.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.startswith("gauss_")}  # what format 4 wrote
    arrays["calibration_signals"] = arrays["calibration_signals"][:, :6]
    doc["format_version"] = 4
    np.savez(tmp_path / "novelty.npz", **arrays)

    def write(doc):
        (tmp_path / "novelty.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
        (tmp_path / "checksums.json").write_text(make_manifest(tmp_path, ["novelty.json", "novelty.npz"]), "utf-8")

    write(doc)
    old = NoveltyScorer.load(tmp_path)
    assert old.gaussians_ is None
    a, b = scorer.score(model, held_out()), old.score(model, held_out())
    np.testing.assert_array_equal(a.p_value, b.p_value)
    assert np.isnan(b.components[:, [MD, RMD]]).all()
    doc["params"]["components"] = ["new_code", "relative_mahalanobis"]
    write(doc)
    with pytest.raises(ModelFileError, match="the novelty files are inconsistent.*components unknown to this format"):
        NoveltyScorer.load(tmp_path)


def test_streamed_report_scores_the_mahalanobis_signals_as_one_call(fitted, tmp_path):  # noqa: F811
    import copy

    from test_saturation_stream import _corpus, _same_report, _table

    from autocode.io.inputs import InputStream
    from autocode.saturation import saturation_report, stream_saturation

    model, scorer = fitted
    scorer = copy.copy(scorer).set_params(components=("new_code", "mahalanobis", "relative_mahalanobis"))
    scorer.calibration_combined_ = np.sort(scorer.combine_signals(scorer.calibration_signals_))
    segs = _corpus()
    whole = saturation_report(model, segs, scorer=scorer)
    streamed = stream_saturation(model, InputStream(_table(tmp_path / "h.csv", segs)), scorer=scorer, batch_size=5)
    try:
        _same_report(whole, streamed)
    finally:
        streamed.scores.close()
