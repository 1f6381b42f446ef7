"""autocode.saturation.stream_saturation: a corpus read a batch at a time gives the report saturation_report gives
(same novelty, candidates, CSV), with memory for a batch and a few numbers per segment."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import autocode as ac
from autocode.io.inputs import InputStream
from autocode.saturation import NoveltyScorer, saturation_report, stream_saturation

from test_saturation import NEW_TOPIC, fitted, held_out  # noqa: F401 (a fixture)


def _table(path, segs):
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["document", "segment", "speaker", "text"])
        w.writerows([s.document, s.segment, s.speaker, s.text] for s in segs)
    return path


def _corpus(n_docs=12):
    """Held-out interviews: the fixture's three, repeated with the new topic in more of them."""
    segs = []
    for k in range(n_docs // 3):
        for s in held_out():
            segs.append(ac.Segment(f"{s.document}-{k}", s.segment, s.text if k % 2 else s.text.replace("。", "！"),
                                   s.speaker))
    return segs


def _same_report(a, b):
    assert a.scores.eligible.tolist() == b.scores.eligible.tolist()
    np.testing.assert_array_equal(a.scores.novelty, b.scores.novelty)
    assert [vars(c) for c in a.candidates] == [vars(c) for c in b.candidates]
    assert a.per_document == b.per_document
    assert a.review_rows() == b.review_rows()
    assert a.to_dict() == b.to_dict()
    assert list(a.iter_records()) == list(b.iter_records())


@pytest.mark.parametrize("batch_size", [2048, 5])
def test_streamed_report_is_the_report_of_one_call(fitted, tmp_path, batch_size):  # noqa: F811
    model, scorer = fitted
    segs = _corpus()
    whole = saturation_report(model, segs, scorer=scorer)
    streamed = stream_saturation(model, InputStream(_table(tmp_path / "h.csv", segs)), scorer=scorer,
                                 batch_size=batch_size)
    try:
        _same_report(whole, streamed)
        assert streamed.n_review == len(whole.review_rows())
        assert any(c.supported for c in streamed.candidates)
        for suffix in (".csv", ".md", ".json", ".html"):
            a, b = whole.save(tmp_path / f"a{suffix}"), streamed.save(tmp_path / f"b{suffix}")
            for x, y in zip(a, b):
                if x.suffix != ".png":
                    assert x.read_bytes().replace(b"a.png", b"b.png") == y.read_bytes(), x.name
    finally:
        streamed.scores.close()
    assert not streamed.scores.spill.dir.exists()
