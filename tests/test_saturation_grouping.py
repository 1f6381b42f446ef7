"""autocode.saturation._grouping: the cut and the category bar of candidate codes, learned from the study's codes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

import autocode as ac
from autocode.checksum import make_manifest
from autocode.saturation import (
    NoveltyScorer,
    calibrate_cut,
    calibrate_join,
    centre_rows,
    cluster_embeddings,
    place,
    propose_codes,
)


def unit(X):
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def study(rng, n_codes: int, per_code: int, spread: float, sub: int = 1, dim: int = 40):
    """Unit vectors of ``n_codes`` codes with ``per_code`` segments each: every code is a random direction, and
    ``sub`` tight topics around it (a broad code when sub > 1), with noise of scale ``spread``; codes one-hot."""
    X, lab = [], []
    for c in range(n_codes):
        topics = rng.normal(size=dim) + (0.7 * rng.normal(size=(sub, dim)) if sub > 1 else 0)
        for i in range(per_code):
            X.append(np.atleast_2d(topics)[i % sub] + spread * rng.normal(size=dim))
            lab.append(c)
    return unit(np.array(X)), np.eye(n_codes, dtype=bool)[lab], np.array(lab)


def test_centre_rows_subtracts_the_centre_and_renormalises():
    X = unit(np.array([[1.0, 0.2], [0.9, 0.5], [1.0, 0.0]]))
    C = centre_rows(X, X.mean(axis=0))
    np.testing.assert_allclose(np.linalg.norm(C, axis=1), 1.0, rtol=1e-6)
    assert (C @ C.T)[0, 1] < (X @ X.T)[0, 1]  # the common direction is gone: the rows spread apart
    assert centre_rows(X, None) is X or np.array_equal(centre_rows(X, None), X)
    assert np.array_equal(centre_rows(np.array([[0.5, 0.5]]), np.array([0.5, 0.5])), [[0.0, 0.0]])


def test_calibrated_cut_recovers_new_codes_as_fine_as_the_known_ones():
    rng = np.random.default_rng(0)
    X, Y, _ = study(rng, 8, 6, 0.3)
    cut = calibrate_cut(X, Y, random_state=0)
    Xn, _, lab = study(rng, 4, 5, 0.3)  # new codes like the study's own
    assert adjusted_rand_score(lab, cluster_embeddings(Xn, cut)) > 0.9
    # a study whose codes are broad (each two topics) cuts looser, and keeps a broad new code together
    Xb, Yb, _ = study(rng, 8, 6, 0.3, sub=2)
    broad = calibrate_cut(Xb, Yb, random_state=0)
    assert broad > cut
    Xn, _, lab = study(rng, 3, 6, 0.3, sub=2)
    assert adjusted_rand_score(lab, cluster_embeddings(Xn, broad)) > adjusted_rand_score(lab, cluster_embeddings(Xn, cut))
    assert calibrate_cut(X, Y, random_state=0) == cut  # seeded


def test_calibrated_cut_needs_two_codes_of_two_single_coded_segments():
    X = unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]))
    assert np.isnan(calibrate_cut(X, np.array([[1, 0], [1, 0], [0, 1], [1, 1]])))  # code 2: one alone
    assert np.isnan(calibrate_cut(X, np.ones((4, 1), dtype=bool)))
    assert np.isfinite(calibrate_cut(X, np.array([[1, 0], [1, 0], [0, 1], [0, 1]])))


def test_calibrated_join_tells_a_new_category_from_a_new_code_of_a_known_one():
    rng = np.random.default_rng(1)
    dim = 200
    cats = {c: rng.normal(size=dim) for c in "abcd"}

    def code(cat):  # a code: its category's direction plus its own
        return cats[cat] + 0.7 * rng.normal(size=dim)

    def segments(centre, n=4):
        return unit(centre + 0.5 * rng.normal(size=(n, dim)))

    names = [c for c in "abc" for _ in range(3)]
    centres = [code(c) for c in names]
    X = np.vstack([segments(m) for m in centres])
    Y = np.repeat(np.eye(len(names), dtype=bool), 4, axis=0)
    P = unit(Y.T.astype(float) @ X)
    bar = calibrate_join(X, Y, P, names, random_state=0)
    assert -1 < bar < 1
    joined = [place(unit(segments(code("a"), 3).mean(axis=0, keepdims=True))[0], P, names, bar) for _ in range(10)]
    new = [place(unit(segments(code("d"), 3).mean(axis=0, keepdims=True))[0], P, names, bar) for _ in range(10)]
    assert sum(cat == "a" and not n for cat, _, n in joined) >= 8
    assert sum(n for _, _, n in new) >= 8


def test_calibrated_join_needs_two_categories_and_siblings():
    X = unit(np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]]))
    Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1]], dtype=bool)
    assert np.isnan(calibrate_join(X, Y, unit(Y.T @ X), ["a", "a"]))  # one category
    assert np.isnan(calibrate_join(X, Y, unit(Y.T @ X), ["a", "b"]))  # no code has a sibling
    assert np.isnan(calibrate_join(X, Y, unit(Y.T @ X), [None, None]))


@pytest.fixture(scope="module")
def fitted_lsa():
    from conftest import TOPICS

    book = ac.Codebook([ac.Code("V", "纵向引领"), ac.Code("H", "横向共治"),
                        ac.Code("party", "组织嵌入", parent="V"), ac.Code("council", "多元参与", parent="H"),
                        ac.Code("service", "精准服务", parent="H")])
    segs, codes = [], {}
    for d in range(8):
        i = 0
        for code, sents in TOPICS.items():
            for k in (0, 1):
                i += 1
                segs.append(ac.Segment(f"D{d}", str(i), sents[(d + k) % 3] + ("，我觉得很好。" if k else "。"), "受访者"))
                codes[(f"D{d}", str(i))] = {code}
    coded = ac.CodedCorpus(segs, {"E": codes}, codebook=book)
    model = ac.CodingModel(book, n_splits=3, random_state=0).fit(coded)
    return book, model, NoveltyScorer(space="lsa", n_splits=3).fit(model, coded)


def test_scorer_learns_the_cut_and_the_bar_and_saves_them(fitted_lsa, tmp_path):
    book, model, scorer = fitted_lsa
    assert scorer.centre_.shape == (scorer.prototypes_.shape[1],)
    assert scorer.group_prototypes_.shape == scorer.prototypes_.shape
    np.testing.assert_allclose(np.linalg.norm(scorer.group_prototypes_, axis=1), 1.0, rtol=1e-5)
    assert 0 < scorer.cluster_distance_ <= 1.5 and np.isfinite(scorer.join_similarity_)
    scorer.save(tmp_path)
    again = NoveltyScorer.load(tmp_path)
    np.testing.assert_array_equal(again.centre_, scorer.centre_)
    np.testing.assert_array_equal(again.group_prototypes_, scorer.group_prototypes_)
    assert again.join_similarity_ == scorer.join_similarity_
    assert again.cluster_distance_ == scorer.cluster_distance_
    new = ["小区的垃圾分类站总是很脏", "垃圾分类以后每天要按时投放垃圾", "垃圾分类督导员检查大家有没有分对"]
    s = scorer.score(model, [ac.Segment("N", str(i), t, "受访者") for i, t in enumerate(new)])
    cands = propose_codes(s, book, scorer, n_clusters=1, review=min(0.5, s.threshold))
    assert cands and cands[0].join_similarity == round(scorer.join_similarity_, 4)


def test_scorer_saved_before_centring_groups_as_it_did(fitted_lsa, tmp_path):
    book, model, scorer = fitted_lsa
    scorer.save(tmp_path)
    doc = json.loads((tmp_path / "novelty.json").read_text(encoding="utf-8"))
    with np.load(tmp_path / "novelty.npz") as z:
        arrays = {k: z[k] for k in z.files if k not in ("centre", "group_prototypes")}
    del doc["join_similarity"]
    np.savez(tmp_path / "novelty.npz", **arrays)
    (tmp_path / "novelty.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    (tmp_path / "checksums.json").write_text(make_manifest(tmp_path, ["novelty.json", "novelty.npz"]), "utf-8")
    old = NoveltyScorer.load(tmp_path)
    assert old.centre_ is None and old.group_prototypes_ is old.prototypes_ and np.isnan(old.join_similarity_)
    new = ["小区的垃圾分类站总是很脏", "垃圾分类以后每天要按时投放垃圾"]
    s = old.score(model, [ac.Segment("N", str(i), t, "受访者") for i, t in enumerate(new)])
    cands = propose_codes(s, book, old, n_clusters=1, review=min(0.5, s.threshold))
    from autocode.saturation import code_categories, join_similarity

    bar = join_similarity(old.prototypes_, code_categories(old.codes_, book))
    assert cands and cands[0].join_similarity == round(bar, 4)


def test_report_says_how_candidates_are_cut_and_placed(fitted_lsa):
    from autocode.saturation import report_from_scores

    book, model, scorer = fitted_lsa
    new = ["小区的垃圾分类站总是很脏", "垃圾分类以后每天要按时投放垃圾", "垃圾分类督导员检查大家有没有分对"]
    s = scorer.score(model, [ac.Segment("N", str(i), t, "受访者") for i, t in enumerate(new)])
    concepts, categories, _ = report_from_scores(s, book, scorer, n_clusters=1, review=min(0.5, s.threshold)).answers()
    assert "as finely as the study's own codes are grouped (the cut that best recovers them)" in concepts.rests_on
    assert (f"cosine at least {scorer.join_similarity_:.2f}: the bar that best tells, among the existing codes, a "
            "code hidden from its category from a whole category hidden" in categories.rests_on)
