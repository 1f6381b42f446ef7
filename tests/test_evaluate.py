"""cross_validate and compare_coders: their kappas come from the agreement engine and match sklearn."""

from __future__ import annotations

import pytest
from sklearn.metrics import cohen_kappa_score

import autocode as ac
from autocode import CodedCorpus
from autocode.evaluate import compare_coders, cross_validate
from autocode.reliability import AgreementReport


def _third_coder(coded: CodedCorpus) -> CodedCorpus:
    """Coder B coded only the first half of the segments, differently from E on a few."""
    half = len(coded) // 2
    b = [(set(x) if i % 5 else {"council"}) if i < half else None for i, x in enumerate(coded.codings("E"))]
    return coded.with_codings("B", b)


def _kappas(corpus: CodedCorpus, x: str, y: str, codes: list[str]) -> tuple[list[float], float, int]:
    both = corpus.coded_mask(x) & corpus.coded_mask(y)
    lx, ly = corpus.labels(codes, x)[both], corpus.labels(codes, y)[both]
    per_code = [cohen_kappa_score(lx[:, j], ly[:, j]) for j in range(len(codes))]
    return per_code, cohen_kappa_score(lx.ravel(), ly.ravel()), int(both.sum()) * len(codes)


def test_compare_coders_matches_sklearn_on_the_segments_both_coded(coded):
    corpus = _third_coder(coded)
    codes = corpus.used_codes()
    per_code, pooled = compare_coders(corpus, codes)
    assert list(pooled) == ["E~A", "E~B", "A~B"]
    for pair in pooled:
        x, y = pair.split("~")
        want_code, want_pooled, units = _kappas(corpus, x, y, codes)
        assert pooled[pair]["kappa"] == pytest.approx(want_pooled, abs=1e-12)
        assert pooled[pair]["units"] == units
        for j, code in enumerate(codes):
            assert per_code[code][pair] == pytest.approx(want_code[j], abs=1e-12)
    assert ac.compare_coders is compare_coders


def test_compare_coders_leaves_out_pairs_without_common_segments(coded):
    half = len(coded) // 2
    first = [set(x) if i < half else None for i, x in enumerate(coded.codings("E"))]
    second = [set(x) if i >= half else None for i, x in enumerate(coded.codings("A"))]
    corpus = CodedCorpus(coded.segments, {}, coded.codebook).with_codings("P", first).with_codings("Q", second)
    codes = coded.used_codes()
    per_code, pooled = compare_coders(corpus.with_codings("E", list(coded.codings("E"))), codes)
    assert list(pooled) == ["P~E", "Q~E"]
    assert all(set(v) == {"P~E", "Q~E"} for v in per_code.values())
    assert compare_coders(CodedCorpus(coded.segments, {"E": {}}, coded.codebook).with_codings("P", first),
                          codes) == ({c: {} for c in codes}, {})


def test_cross_validate_figures_are_the_engines_and_match_sklearn(coded):
    corpus = _third_coder(coded)  # mismatched segment lists: compared where they overlap, without a warning
    model = ac.CodingModel(coded.codebook, random_state=0, n_splits=2, tune=False)
    cv = cross_validate(model, corpus, n_splits=2)
    name = cv.model_coder
    assert isinstance(cv.agreement, AgreementReport) and cv.agreement.models == [name]
    assert cv.agreement.coders == ["E", "A", "B", name]
    with pytest.warns(ac.AutocodeWarning, match="The coders coded different segment lists"):
        ac.measure_agreement(cv.corpus)  # what cross_validate expects and does not warn about
    for human in ("E", "A", "B"):
        want_code, want_pooled, units = _kappas(cv.corpus, name, human, cv.codes)
        assert cv.pooled[f"{name}~{human}"] == {"kappa": pytest.approx(want_pooled, abs=1e-12), "units": units}
        for j, row in enumerate(cv.per_code):
            assert row["kappa"][human] == pytest.approx(want_code[j], abs=1e-12)
            assert row["kappa"][human] == cv.agreement.value("cohen_kappa", code=row["code"],
                                                              coders=f"{human}~{name}")
    _, want, _ = _kappas(cv.corpus, "E", "B", cv.codes)
    assert cv.pooled["E~B"]["kappa"] == pytest.approx(want, abs=1e-12)
    # categories: the engine's roll-up to the codebook's category level
    cats = cv.corpus.rolled_up(coded.codebook.category_depth)
    top = [c["code"] for c in cv.category_per_code]
    assert top == ["V", "H"] and cv.category_agreement.by == "category"
    _, want, units = _kappas(cats, name, "E", top)
    assert cv.categories[f"{name}~E"] == {"kappa": pytest.approx(want, abs=1e-12), "units": units}
    # precision/recall/F1 against the target (union of coders), from the model's decisions
    pred = cv.corpus.labels(cv.codes, name)
    target = corpus.labels(cv.codes, "union")
    for j, row in enumerate(cv.per_code):
        tp = int((pred[:, j] & target[:, j]).sum())
        assert row["support"] == target[:, j].sum()
        assert row["f1"] == pytest.approx(2 * tp / (pred[:, j].sum() + target[:, j].sum()))
    assert "# Cross-validation grouped by document" in cv.to_markdown()
    assert set(cv.to_dict()) == {"target", "n_splits", "segments", "documents", "pooled", "categories",
                                 "per_code", "category_per_code"}


def test_cross_validate_needs_an_applied_code(coded):
    empty = CodedCorpus(coded.segments, {"E": {s.key: set() for s in coded.segments}}, coded.codebook)
    with pytest.raises(ac.AutocodeError, match="No coder applied any code; there is nothing to evaluate."):
        cross_validate(ac.CodingModel(coded.codebook), empty, n_splits=2)
