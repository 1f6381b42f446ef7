"""Agreement on large corpora: the bootstrap draws its resamples' counts a block of documents at a time, units
are summed a block at a time into their documents and the resamples, and MASI alpha over many documents avoids
a documents x documents matrix; the figures are those of one block."""

from __future__ import annotations

import numpy as np
import pytest

import autocode.reliability._bootstrap as bootstrap
import autocode.reliability._engine as engine
from autocode import CodedCorpus, Segment, measure_agreement
from autocode.agreement import masi_alpha
from autocode.reliability._bootstrap import Resamples, bootstrap_weights


def test_resamples_drawn_a_block_of_documents_at_a_time():
    whole = bootstrap_weights(11, 30, random_state=4)
    assert whole.shape == (30, 11) and (whole.sum(axis=1) == 11).all() and whole.min() >= 0
    blocks = list(Resamples(11, 30, random_state=4).columns(4))
    assert [(first, w.shape) for first, w in blocks] == [(0, (30, 4)), (4, (30, 4)), (8, (30, 3))]
    assert (np.concatenate([w for _, w in blocks], axis=1).sum(axis=1) == 11).all()
    assert bootstrap_weights(11, 0, random_state=4) is None
    # without a seed, every pass over the blocks (one per group of coders) still draws the same resamples
    unseeded = Resamples(11, 30, random_state=None)
    assert np.array_equal(*(np.concatenate([w for _, w in unseeded.columns()], axis=1) for _ in range(2)))
    # each document is drawn as often as any other: counts over many resamples average 1
    many = bootstrap_weights(50, 4000, random_state=1)
    assert abs(many.mean(axis=0) - 1).max() < 0.1 and abs(many.var(axis=0).mean() - (1 - 1 / 50)) < 0.05


def test_document_window_gives_the_counts_of_any_increasing_ranges(monkeypatch):
    monkeypatch.setattr(bootstrap, "DOCUMENT_BLOCK", 3)
    whole = bootstrap_weights(10, 6, random_state=2)
    window = Resamples(10, 6, random_state=2).window()
    for lo, hi in [(0, 2), (1, 5), (5, 6), (5, 10), (9, 10)]:
        assert np.array_equal(window(lo, hi), whole[:, lo:hi])


@pytest.mark.parametrize("level", ["segment", "character"])
def test_units_and_documents_in_small_blocks_give_the_same_report(coded, monkeypatch, level):
    whole = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    shapes = []
    original = engine.AgreementSums.reweight

    def spy(self, weights):
        shapes.append(np.shape(weights))
        return original(self, weights)

    monkeypatch.setattr(engine, "UNIT_BLOCK", 5)
    monkeypatch.setattr(engine.AgreementSums, "reweight", spy)
    blocked = measure_agreement(coded, n_bootstrap=50, random_state=0, level=level).rows
    assert len(shapes) > 3 and {s[0] for s in shapes} == {50}  # every resample, a few documents at a time
    for a, b in zip(blocked, whole):
        assert a.keys() == b.keys() and [a[k] for k in a if k not in ("value", "ci_low", "ci_high")] == \
            [b[k] for k in b if k not in ("value", "ci_low", "ci_high")]
        assert [a[k] for k in ("value", "ci_low", "ci_high")] == pytest.approx(
            [b[k] for k in ("value", "ci_low", "ci_high")], abs=1e-12, nan_ok=True)


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


def test_coded_tables_are_read_one_row_at_a_time(tmp_path, monkeypatch):
    """read_coded reads each table twice, a row at a time (its columns and coders, then its rows), and never
    holds a file's rows; the corpus is the same as ever, and a clash names the first row of the segment."""
    import json

    import autocode.io.table as table
    from autocode import read_coded
    from autocode.exceptions import FormatError

    path = tmp_path / "coded.jsonl"
    rows = [{"document": "P1", "segment": str(i), "text": f"文字{i}", "coder": c, "codes": "x" if (i + k) % 2 else ""}
            for i in range(1, 6) for k, c in enumerate(("E", "A"))]
    rows.append({"document": "P1", "segment": "9", "text": "没人编码"})  # nobody coded it (named coders above)
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    whole = read_coded(path)
    alive, most = [0], [0]
    original = table._iter_rows

    def counting(*args, **kw):
        for row in original(*args, **kw):
            alive[0] += 1
            most[0] = max(most[0], alive[0])
            yield row
            alive[0] -= 1  # the reader asks for the next row only when done with this one

    def whole_file(*args, **kw):
        raise AssertionError("read_coded held a whole file's rows")

    monkeypatch.setattr(table, "_iter_rows", counting)
    monkeypatch.setattr(table, "_read_rows", whole_file)
    streamed = read_coded(path)
    assert most[0] == 1
    assert streamed.coders == whole.coders == ["E", "A"] and streamed.segments == whole.segments
    assert [streamed.codings(c) for c in streamed.coders] == [whole.codings(c) for c in whole.coders]
    assert streamed.codings("E")[-1] is None  # the uncoded segment: no coding, not an empty one
    path.write_text(path.read_text(encoding="utf-8")
                    + json.dumps({"document": "P1", "segment": "2", "text": "别的", "coder": "B", "codes": ""},
                                 ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"coded\.jsonl, line 12: Segment P1/2 has a different text than at "
                                          r".*coded\.jsonl, line 3\."):
        read_coded(path)


def test_code_sets_numbered_a_block_of_units_at_a_time_give_the_same_masi_alpha(monkeypatch):
    """MASI alpha numbers the coders' sets of codes a block of units at a time (the packed bits of a block, not
    the corpus's, are sorted): the same figures, to the last bit, as one block."""
    import autocode.reliability._masi as masi

    corpus = _many_documents(40)
    whole = measure_agreement(corpus, n_bootstrap=20, random_state=2).row("masi_alpha", coders="E+A")
    monkeypatch.setattr(masi, "SET_BLOCK", 5)
    blocked = measure_agreement(corpus, n_bootstrap=20, random_state=2).row("masi_alpha", coders="E+A")
    assert blocked == whole
    ux = np.array([[[1, 0], [0, 0], [1, 1]], [[1, 0], [0, 1], [0, 0]]], dtype=bool)
    sets, row = masi._set_rows(ux)
    assert sets.tolist() == [[0], [64], [128], [192]]  # np.unique's order of the packed bits
    assert masi._block_ids(ux, np.array([[True, True, True], [True, True, False]]), 0, row).tolist() == [
        [2, 0, 3], [2, 1, 0]]
    assert masi._block_ids(ux, np.ones((2, 3), dtype=bool), 2, row).tolist() == [[3], [0]]  # a block's units only
    monkeypatch.setattr(masi, "MASI_MAX_SETS", 3)
    assert masi._set_rows(ux) is None


def test_documents_whose_segments_are_apart_are_summed_whole(monkeypatch):
    """A document's segments need not be next to each other: each block of units is summed into the documents
    it touches, and the report is that of one block."""
    corpus = _many_documents(6)
    order = sorted(corpus.segments, key=lambda s: (s.segment, s.document))  # D00/0, D01/0, ..., D00/1, ...
    mixed = CodedCorpus(order, {c: {s.key: corpus.codings(c)[corpus.segments.index(s)] for s in order}
                                for c in corpus.coders})
    whole = measure_agreement(mixed, n_bootstrap=30, random_state=1).rows
    monkeypatch.setattr(engine, "UNIT_BLOCK", 4)
    blocked = measure_agreement(mixed, n_bootstrap=30, random_state=1).rows
    for a, b in zip(whole, blocked, strict=True):
        for k in a:
            if isinstance(a[k], float):
                assert b[k] == pytest.approx(a[k], abs=1e-12, nan_ok=True), k
            else:
                assert b[k] == a[k], k
    assert measure_agreement(mixed).n_documents == 6
