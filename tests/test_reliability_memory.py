"""Agreement on large corpora: the bootstrap draws and uses its resample weights a block of resamples at a time,
and MASI alpha over many documents avoids a documents x documents matrix; the figures are those of one block."""

from __future__ import annotations

import numpy as np
import pytest

import autocode.reliability._bootstrap as bootstrap
import autocode.reliability._engine as engine
from autocode import CodedCorpus, Segment, measure_agreement
from autocode.agreement import masi_alpha
from autocode.reliability._bootstrap import Resamples, bootstrap_weights


def test_resamples_in_blocks_are_the_draws_of_one_array():
    whole = bootstrap_weights(11, 30, random_state=4)
    for size in (1, 7, 30, 64):
        blocks = list(Resamples(11, 30, random_state=4).blocks(size))
        assert max(len(b) for b in blocks) == min(size, 30)
        assert np.array_equal(np.vstack(blocks), whole)
    assert bootstrap_weights(11, 0, random_state=4) is None


@pytest.mark.parametrize("level", ["segment", "character"])
def test_bootstrap_a_block_of_resamples_at_a_time_gives_the_same_report(coded, monkeypatch, level):
    whole = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    shapes = []
    original = engine.AgreementSums.reweight

    def spy(self, weights):
        shapes.append(np.shape(weights))
        return original(self, weights)

    monkeypatch.setattr(bootstrap, "BOOTSTRAP_BLOCK", 7)
    monkeypatch.setattr(engine.AgreementSums, "reweight", spy)
    blocked = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    assert shapes and max(s[0] for s in shapes) == 7 and sum(s[0] for s in shapes) % 50 == 0
    assert [list(r.items()) for r in blocked] == [list(r.items()) for r in whole]


def _many_documents(n_docs: int) -> CodedCorpus:
    segs = [Segment(f"D{d:02d}", str(i), "文字" * (i + 1)) for d in range(n_docs) for i in range(3)]
    rng = np.random.default_rng(5)
    truth = rng.random((len(segs), 2)) < 0.4
    codings = {}
    for name, noise in (("E", 0.1), ("A", 0.2)):
        y = truth ^ (rng.random(truth.shape) < noise)
        codings[name] = {s.key: {c for c, on in zip(("x", "y"), row) if on} for s, row in zip(segs, y)}
    return CodedCorpus(segs, codings)


@pytest.mark.parametrize("n_docs", [3, 40])  # fewer documents than code sets (4 at most), and more
def test_masi_alpha_and_its_interval_match_the_resampled_units(n_docs):
    corpus = _many_documents(n_docs)
    report = measure_agreement(corpus, n_bootstrap=20, random_state=2, confidence=0.8)
    row = report.row("masi_alpha", coders="E+A")
    sets = [corpus.codings(c) for c in ("E", "A")]
    assert row["value"] == pytest.approx(masi_alpha(sets), abs=1e-12)
    # each resample: the units of every document repeated as often as the document is drawn
    doc = np.repeat(np.arange(n_docs), 3)
    boot = []
    for w in bootstrap_weights(n_docs, 20, random_state=2):
        take = np.concatenate([np.flatnonzero(doc == d).repeat(k) for d, k in enumerate(w)])
        boot.append(masi_alpha([[col[i] for i in take] for col in sets]))
    lo, hi = np.quantile(boot, [0.1, 0.9])
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((lo, hi), abs=1e-12)


def test_disagreements_found_a_block_of_segments_at_a_time_are_the_same(monkeypatch):
    import autocode.reliability._disagreements as disagreements

    corpus = _many_documents(10)
    whole = list(measure_agreement(corpus).disagreements)
    monkeypatch.setattr(disagreements, "BLOCK", 4)
    blocked = measure_agreement(corpus).disagreements
    assert len(whole) > 4 and list(blocked) == whole
    assert {d["code"] for d in whole} == {"x", "y"} and all(d["applied_by"] and d["not_applied_by"] for d in whole)
