"""Agreement statistics: published worked examples, cross-checks with independent implementations on random
data, properties, degenerate input and its error messages, and the OCNLI five-annotator data."""

from __future__ import annotations

import json
from itertools import combinations

import krippendorff
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import masi_distance as nltk_masi
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

from autocode.agreement import (
    AgreementError,
    AgreementSums,
    brennan_prediger,
    cohen_kappa,
    count_table,
    fleiss_kappa,
    gwet_ac1,
    krippendorff_alpha,
    masi_alpha,
    masi_distance,
    masi_distances,
    percent_agreement,
)
from autocode.exceptions import AutocodeError

NAN = float("nan")

# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C (4 observers, 12 units).
KRIPP = [[1, 2, 3, 3, 2, 1, 4, 1, 2, NAN, NAN, NAN],
         [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, NAN, 3],
         [NAN, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, NAN],
         [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, NAN]]

# Fleiss (1971), table 1: diagnoses of 30 patients by 6 psychiatrists (categories 1-5).
FLEISS_1971 = ("444444 222555 233335 555555 222444 113333 333355 113334 114444 555555 144444 124444 222333 "
               "144444 224445 333335 111455 111112 224444 133555 555555 244444 224555 114444 144445 222224 "
               "111155 224444 133333 555555")

# The worked example of Fleiss' kappa on Wikipedia: 10 subjects, 14 raters, 5 categories; kappa = 0.210.
WIKI_FLEISS = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
               [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]


# -- published worked examples -----------------------------------------------------------------------------
@pytest.mark.parametrize("level, expected", [("nominal", 0.743), ("ordinal", 0.815), ("interval", 0.849),
                                             ("ratio", 0.797)])
def test_krippendorff_2011_example(level, expected):
    assert krippendorff_alpha(KRIPP, level) == pytest.approx(expected, abs=5e-4)


def test_krippendorff_2011_example_matches_krippendorff_package():
    for level in ("nominal", "ordinal", "interval", "ratio"):
        ref = krippendorff.alpha(reliability_data=np.array(KRIPP), level_of_measurement=level)
        assert krippendorff_alpha(KRIPP, level) == pytest.approx(ref, abs=1e-12)


def test_fleiss_1971_example():
    counts = [[r.count(str(c)) for c in range(1, 6)] for r in FLEISS_1971.split()]
    assert fleiss_kappa(counts) == pytest.approx(0.430, abs=5e-4)
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss(np.array(counts)), abs=1e-12)


def test_fleiss_wikipedia_example():
    assert fleiss_kappa(WIKI_FLEISS) == pytest.approx(0.210, abs=5e-4)


def test_gwet_ac1_two_coder_table_by_hand():
    # 2 x 2 table [[40, 9], [6, 45]]: p_a = .85, pi = .475, p_e = .49875
    a = [1] * 49 + [0] * 51
    b = [1] * 40 + [0] * 9 + [1] * 6 + [0] * 45
    assert gwet_ac1([a, b]) == pytest.approx((0.85 - 0.49875) / (1 - 0.49875))
    assert brennan_prediger([a, b]) == pytest.approx((0.85 - 0.5) / 0.5)
    assert percent_agreement([a, b]) == pytest.approx(0.85)


# -- cross-checks on random data --------------------------------------------------------------------------
def _random_data(rng, n_coders, n_units, q, p_missing=0.0, agree=0.6):
    truth = rng.integers(0, q, n_units)
    data = np.where(rng.random((n_coders, n_units)) < agree, truth, rng.integers(0, q, (n_coders, n_units)))
    data = data.astype(float)
    data[rng.random(data.shape) < p_missing] = np.nan
    return data


def _naive_gwet(data, q=None):
    """Gwet (2014) AC1 and Brennan-Prediger written out unit by unit, as an independent check."""
    data = np.asarray(data, dtype=float)
    cats = np.unique(data[~np.isnan(data)])
    q = q or len(cats)
    pa_terms, pis = [], []
    for u in range(data.shape[1]):
        vals = data[:, u][~np.isnan(data[:, u])]
        r = len(vals)
        if r >= 1:
            pis.append([np.sum(vals == c) / r for c in cats])
        if r >= 2:
            pa_terms.append(sum(np.sum(vals == c) * (np.sum(vals == c) - 1) for c in cats) / (r * (r - 1)))
    pa = np.mean(pa_terms)
    pi = np.mean(pis, axis=0)
    pe = np.sum(pi * (1 - pi)) / (len(cats) - 1)
    return (pa - pe) / (1 - pe), (pa - 1 / q) / (1 - 1 / q), pa


@pytest.mark.parametrize("seed", range(5))
def test_cohen_kappa_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    a, b = _random_data(rng, 2, 200, 4).astype(int)
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)
    sums = AgreementSums.from_ratings(np.eye(4)[[a, b]]).sum(axis=0)
    assert float(sums.cohen_kappa()[0]) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_fleiss_kappa_matches_statsmodels(seed):
    rng = np.random.default_rng(seed)
    data = _random_data(rng, 5, 150, 3)
    counts, _ = count_table(data)
    assert fleiss_kappa(counts) == pytest.approx(sm_fleiss(counts), abs=1e-12)
    # with every unit fully coded, Brennan-Prediger is statsmodels' free-marginal ("randolph") kappa
    assert brennan_prediger(data) == pytest.approx(sm_fleiss(counts, method="randolph"), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_matches_krippendorff_package_with_missing(seed, level):
    rng = np.random.default_rng(seed)
    data = _random_data(rng, 4, 120, 5, p_missing=0.25) + 1  # ratio needs positive values
    ref = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    assert krippendorff_alpha(data, level) == pytest.approx(ref, abs=1e-10)


@pytest.mark.parametrize("seed", range(3))
def test_krippendorff_alpha_matches_nltk(seed):
    rng = np.random.default_rng(seed)
    data = _random_data(rng, 3, 80, 4).astype(int)
    task = AnnotationTask([(str(c), str(u), int(data[c, u])) for c in range(3) for u in range(80)])
    assert krippendorff_alpha(data) == pytest.approx(task.alpha(), abs=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_gwet_and_brennan_prediger_match_unit_by_unit_formulas(seed):
    rng = np.random.default_rng(seed)
    data = _random_data(rng, 4, 100, 3, p_missing=0.3)
    ac1, bp, pa = _naive_gwet(data)
    assert gwet_ac1(data) == pytest.approx(ac1, abs=1e-12)
    assert brennan_prediger(data) == pytest.approx(bp, abs=1e-12)
    assert percent_agreement(data) == pytest.approx(pa, abs=1e-12)
    assert brennan_prediger(data, n_categories=5) == pytest.approx(_naive_gwet(data, q=5)[1], abs=1e-12)


def _random_sets(rng, n_coders, n_units, labels="abcd"):
    base = [frozenset(x for x in labels if rng.random() < 0.4) or frozenset("a") for _ in range(n_units)]
    out = []
    for _ in range(n_coders):
        row = []
        for s in base:
            if rng.random() < 0.3:
                s = s ^ {labels[rng.integers(len(labels))]}
            row.append(s or frozenset("b"))  # NLTK's MASI cannot take empty sets
        out.append(row)
    return out


@pytest.mark.parametrize("seed", range(3))
def test_masi_alpha_matches_nltk(seed):
    rng = np.random.default_rng(seed)
    sets = _random_sets(rng, 3, 60)
    task = AnnotationTask([(str(c), str(u), s) for c, row in enumerate(sets) for u, s in enumerate(row)],
                          distance=nltk_masi)
    assert masi_alpha(sets) == pytest.approx(task.alpha(), abs=1e-12)
    for a, b in zip(sets[0], sets[1]):
        assert masi_distance(a, b) == pytest.approx(nltk_masi(set(a), set(b)), abs=1e-12)


def test_masi_distances_matrix_matches_pairwise_function():
    rng = np.random.default_rng(5)
    sets = rng.random((30, 4)) < 0.4
    labels = [frozenset(np.flatnonzero(row).tolist()) for row in sets]
    expected = [[masi_distance(a, b) for b in labels] for a in labels]
    assert np.allclose(masi_distances(sets), expected)


def test_masi_alpha_with_nominal_distance_is_nominal_alpha_over_sets():
    rng = np.random.default_rng(0)
    sets = _random_sets(rng, 3, 50)
    ids = {s: i for i, s in enumerate({s for row in sets for s in row})}
    data = [[ids[s] for s in row] for row in sets]
    assert masi_alpha(sets, distance=lambda a, b: float(a != b)) == pytest.approx(krippendorff_alpha(data))


# -- the vectorised sums ------------------------------------------------------------------------------------
def test_sums_batch_equals_scalar_functions_and_reweight_equals_resampling():
    rng = np.random.default_rng(1)
    n_docs, per_doc = 6, 15
    data = _random_data(rng, 3, n_docs * per_doc, 3, p_missing=0.2)
    codes = np.where(np.isnan(data), -1, data).astype(int)
    onehot = np.zeros((*codes.shape, 3))
    onehot[codes >= 0, codes[codes >= 0]] = 1
    doc = np.repeat(np.arange(n_docs), per_doc)
    into = (doc[None, :] == np.arange(n_docs)[:, None]).astype(float)
    per_doc_sums = AgreementSums.from_ratings(onehot, into=into)
    assert np.allclose(per_doc_sums.pa, AgreementSums.from_ratings(onehot).reweight(into).pa)
    total = per_doc_sums.sum(axis=0)
    assert float(total.krippendorff_alpha()) == pytest.approx(krippendorff_alpha(data))
    assert float(total.gwet_ac1()) == pytest.approx(gwet_ac1(data))
    assert float(total.percent_agreement()) == pytest.approx(percent_agreement(data))
    for k, (i, j) in enumerate(combinations(range(3), 2)):
        both = ~np.isnan(data[i]) & ~np.isnan(data[j])
        assert float(total.cohen_kappa()[k]) == pytest.approx(cohen_kappa_score(data[i, both], data[j, both]))
    # a bootstrap resample = documents drawn with replacement = a weighted sum of per-document sums
    draws = rng.integers(0, n_docs, size=(4, n_docs))
    weights = np.stack([np.bincount(d, minlength=n_docs) for d in draws])
    boot = per_doc_sums.reweight(weights)
    for b, d in enumerate(draws):
        resampled = np.concatenate([data[:, doc == k] for k in d], axis=1)
        assert float(boot.krippendorff_alpha()[b]) == pytest.approx(krippendorff_alpha(resampled))
        assert float(boot.gwet_ac1()[b]) == pytest.approx(gwet_ac1(resampled))


def test_fleiss_from_sums_uses_units_every_coder_coded():
    rng = np.random.default_rng(2)
    data = _random_data(rng, 4, 100, 3, p_missing=0.1)
    full = ~np.isnan(data).any(axis=0)
    codes = np.where(np.isnan(data), -1, data).astype(int)
    onehot = np.zeros((*codes.shape, 3))
    onehot[codes >= 0, codes[codes >= 0]] = 1
    sums = AgreementSums.from_ratings(onehot).sum(axis=0)
    counts, _ = count_table(data[:, full])
    assert float(sums.fleiss_kappa()) == pytest.approx(sm_fleiss(counts))


# -- properties -------------------------------------------------------------------------------------------
ratings = st.integers(2, 4).flatmap(lambda m: st.integers(3, 25).flatmap(
    lambda n: st.lists(st.lists(st.sampled_from([0, 1, 2]), min_size=n, max_size=n), min_size=m, max_size=m)))


@settings(max_examples=60, deadline=None)
@given(ratings)
def test_statistics_do_not_depend_on_coder_order(data):
    data = np.array(data, dtype=float)
    flipped = data[::-1]
    for f in (krippendorff_alpha, gwet_ac1, brennan_prediger, percent_agreement):
        assert f(data) == pytest.approx(f(flipped), nan_ok=True)
    assert cohen_kappa(data[0], data[1]) == pytest.approx(cohen_kappa(data[1], data[0]), nan_ok=True)
    assert fleiss_kappa(count_table(data)[0]) == pytest.approx(fleiss_kappa(count_table(flipped)[0]))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["是", "否", "不确定"]), min_size=2, max_size=30), st.integers(2, 4))
def test_identical_coders_agree_perfectly(labels, m):
    data = np.array([labels] * m, dtype=object)
    assert cohen_kappa(labels, labels) == 1.0
    for f in (krippendorff_alpha, gwet_ac1, brennan_prediger, percent_agreement):
        assert f(data) == pytest.approx(1.0)
    assert fleiss_kappa(count_table(data)[0]) == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(ratings, st.randoms(use_true_random=False))
def test_statistics_do_not_depend_on_unit_order(data, rnd):
    data = np.array(data, dtype=float)
    order = list(range(data.shape[1]))
    rnd.shuffle(order)
    for f in (krippendorff_alpha, gwet_ac1, percent_agreement):
        assert f(data) == pytest.approx(f(data[:, order]), nan_ok=True)


# -- degenerate input -------------------------------------------------------------------------------------
def test_one_category_only_gives_one():
    data = [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert cohen_kappa(*data) == 1.0
    assert krippendorff_alpha(data) == 1.0
    assert fleiss_kappa(count_table(data)[0]) == 1.0
    assert gwet_ac1(data) == 1.0
    assert brennan_prediger(data) == 1.0


def test_units_coded_by_one_coder_are_left_out():
    with_single = [[1, 2, 1, 2, None], [1, 2, 2, 2, 1]]
    assert krippendorff_alpha(with_single) == pytest.approx(krippendorff_alpha([[1, 2, 1, 2], [1, 2, 2, 2]]))
    assert percent_agreement(with_single) == 0.75


@pytest.mark.parametrize("call, message", [
    (lambda: krippendorff_alpha([[1, 2, 3]]), "Expected at least 2 coders (rows), got 1. If your array has one"),
    (lambda: krippendorff_alpha([1, 2, 3]), "Expected reliability data as a 2-D array (coders x units)"),
    (lambda: gwet_ac1([[1, None], [None, 2]]), "No unit is coded by two or more coders"),
    (lambda: percent_agreement([[None, None], [1, 2]]), "Coder(s) [0] (row index) coded no unit"),
    (lambda: krippendorff_alpha([[None], [None]]), "every entry is missing"),
    (lambda: krippendorff_alpha([["a", "b"], ["a", "a"]], "interval"), "The interval level needs numeric values"),
    (lambda: krippendorff_alpha([[1, 2], [1, 1]], "cardinal"), "Unknown level 'cardinal': use 'nominal'"),
    (lambda: fleiss_kappa([[2, 0], [1, 0]]), "Fleiss' kappa needs the same number of coders for every unit"),
    (lambda: fleiss_kappa([1, 2]), "Expected a count table (units x categories)"),
    (lambda: fleiss_kappa([[1, 0], [0, 1]]), "Each unit needs at least two ratings, got 1"),
    (lambda: fleiss_kappa([[3, -1]]), "negative counts"),
    (lambda: brennan_prediger([[1, 2, 3], [1, 2, 2]], n_categories=2), "n_categories=2, but the data use 3"),
    (lambda: masi_alpha([[{"a"}]]), "Expected label sets of at least 2 coders, got 1"),
    (lambda: masi_alpha([[{"a"}], [{"a"}, {"b"}]]), "Every coder needs one entry per unit"),
    (lambda: masi_distances([1, 0]), "Expected a 2-D boolean matrix (sets x labels), got shape (2,)"),
])
def test_error_messages(call, message):
    with pytest.raises(AgreementError) as err:
        call()
    assert message in str(err.value)
    assert isinstance(err.value, AutocodeError) and isinstance(err.value, ValueError)


def test_cohen_kappa_keeps_its_contract():
    with pytest.raises(ValueError, match="equal length"):
        cohen_kappa([1, 2], [1])
    with pytest.raises(ValueError, match="No units"):
        cohen_kappa([], [])
    assert isinstance(cohen_kappa(["a", "b"], ["a", "b"]), float)


# -- real data --------------------------------------------------------------------------------------------
@pytest.mark.shared_data
def test_ocnli_five_annotators(shared_data):
    rows = [json.loads(line) for line in (shared_data / "ocnli" / "dev.json").read_text("utf-8").splitlines()
            if line.strip()]
    data = np.array([[r[f"label{k}"] for r in rows] for k in range(5)], dtype=object)
    counts, values = count_table(data)
    assert counts.shape == (3000, len(values)) and (counts.sum(axis=1) == 5).all()
    fk = fleiss_kappa(counts)
    assert fk == pytest.approx(sm_fleiss(counts), abs=1e-12)
    assert fk == pytest.approx(0.6829, abs=1e-4)
    index = {v: i for i, v in enumerate(values)}
    numeric = np.vectorize(index.get)(data).astype(float)
    alpha = krippendorff_alpha(data)
    assert alpha == pytest.approx(krippendorff.alpha(reliability_data=numeric, level_of_measurement="nominal"),
                                  abs=1e-12)
    assert alpha == pytest.approx(0.6829, abs=1e-4)
