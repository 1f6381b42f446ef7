"""autocode.saturation.stream_saturation: a corpus read a batch at a time gives the report saturation_report gives
(same novelty, candidates, CSV), with memory for a batch and a few numbers per segment."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_saturation import fitted, held_out  # noqa: F401 (a fixture)

import autocode as ac
from autocode.io.inputs import InputStream
from autocode.saturation import centre_rows, saturation_report, stream_saturation


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


def test_streamed_report_with_relations_and_no_review_level(fitted, coded, tmp_path):  # noqa: F811
    model, scorer = fitted
    segs = _corpus(6)
    whole = saturation_report(model, segs, coded=coded, scorer=scorer, n_clusters=1, review=None)
    streamed = stream_saturation(model, InputStream(_table(tmp_path / "h.csv", segs)), coded=coded, scorer=scorer,
                                 n_clusters=1, review=None, batch_size=7)
    try:
        _same_report(whole, streamed)
        assert streamed.relations is not None and streamed.relations.to_dict() == whole.relations.to_dict()
        path = streamed.save(tmp_path / "r.qdpx")[0]
        assert path.exists() and path.stat().st_size > 0
    finally:
        streamed.scores.close()


def test_beyond_the_clustered_sample_the_others_join_the_nearest_group(fitted, tmp_path, monkeypatch):  # noqa: F811
    """With more segments to review than are clustered at once, the streamed groups are those
    cluster_embeddings gives with that sample: members, quotes, documents and novel members alike."""
    model, scorer = fitted
    segs = _corpus(24)
    small = 6
    monkeypatch.setattr("autocode.saturation._stream.MAX_CLUSTERED", small)
    monkeypatch.setattr("autocode.saturation._stream.SPILL_BLOCK", 5)  # the spill read back in small blocks
    monkeypatch.setattr("autocode.saturation._spill.SPILL_BLOCK", 5)
    original = ac.saturation.cluster_embeddings
    monkeypatch.setattr("autocode.saturation._candidates.cluster_embeddings",
                        lambda X, d, k=None, m=None: original(X, d, k, max_clustered=small))
    # a tighter cut than the one learned from these few codes, so that there are groups to join
    monkeypatch.setattr(scorer, "cluster_distance_", scorer.cluster_distance_ / 2)
    whole = saturation_report(model, segs, scorer=scorer, review=0.5)
    streamed = stream_saturation(model, InputStream(_table(tmp_path / "h.csv", segs)), scorer=scorer, review=0.5,
                                 batch_size=16)
    try:
        assert streamed.n_review > small and len(whole.candidates) >= 2
        keys = ("id", "members", "documents", "n_novel", "category", "nearest_codes")
        assert [{k: getattr(c, k) for k in keys} for c in streamed.candidates] == [
            {k: getattr(c, k) for k in keys} for c in whole.candidates]
        Z = centre_rows(whole.scores.embedding, scorer.centre_)  # the space groups are formed in
        for a, b in zip(streamed.candidates, whole.candidates):  # the quotes: as near the centre (to rounding:
            centre = Z[b.members].mean(axis=0)  # the centre is summed a block at a time)
            centre /= np.linalg.norm(centre)
            np.testing.assert_allclose(Z[a.quotes] @ centre, Z[b.quotes] @ centre, atol=1e-5)
        rows = list(streamed.iter_records())
        assert [r["candidate"] for r in rows] == [r["candidate"] for r in whole.iter_records()]
    finally:
        streamed.scores.close()


def test_report_lists_the_most_novel_segments_to_review(fitted, tmp_path, monkeypatch):  # noqa: F811
    model, scorer = fitted
    segs = _corpus(6)
    monkeypatch.setattr("autocode.saturation._report.REVIEW_LISTED", 3)
    whole = saturation_report(model, segs, scorer=scorer, review=0.5)
    streamed = stream_saturation(model, InputStream(_table(tmp_path / "h.csv", segs)), scorer=scorer, review=0.5)
    try:
        every = whole.review_rows()
        listed = streamed.review_rows()
        assert streamed.n_review == len(every) > 3 and len(listed) == 3
        top = sorted(every, key=lambda r: -r["novelty"])[:3]
        assert sorted(r["index"] for r in top) == [r["index"] for r in listed]
        assert listed == [r for r in every if r["index"] in {x["index"] for x in listed}]
        line = f"{len(every) - 3:,} more segment(s) reach novelty 0.50; the 3 most novel are listed."
        assert line in streamed.to_markdown() and line in streamed.to_html()
        assert line not in whole.to_markdown()
        assert json.loads(json.dumps(streamed.to_dict()))["segments_to_review"] == [
            {k: v for k, v in r.items() if k != "index"} for r in listed]
        csv_rows = [r for r in streamed.iter_records() if r["novelty"] is not None and r["novelty"] >= 0.5]
        assert len(csv_rows) == len(every)  # the CSV has every one
    finally:
        streamed.scores.close()


def test_cli_saturation_batch_size(fitted, book, coded, tmp_path, capsys):  # noqa: F811
    model, scorer = fitted
    folder = model.save(tmp_path / "model")
    scorer.save(folder)
    table = _table(tmp_path / "h.csv", _corpus(6))
    from autocode.cli import main

    assert main(["-q", "saturation", "--model", str(folder), str(table), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["-q", "saturation", "--model", str(folder), str(table), "--out", str(tmp_path / "b.csv"),
                 "--batch-size", "4"]) == 0
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    whole = saturation_report(model, _corpus(6), scorer=scorer)
    whole.save(tmp_path / "c.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "c.csv").read_bytes()
    assert main(["saturation", "--model", str(folder), str(table), "--out", str(tmp_path / "d.csv"),
                 "--batch-size", "0"]) == 1
    assert "--batch-size must be at least 1, got 0." in capsys.readouterr().err
    empty = tmp_path / "empty.txt"
    empty.write_text("访谈者：\n受访者：\n", encoding="utf-8")  # labels, no words
    assert main(["saturation", "--model", str(folder), str(empty), "--out", str(tmp_path / "e.csv")]) == 1
    assert "The inputs hold no segments to check." in capsys.readouterr().err


def test_streamed_errors(fitted, tmp_path):  # noqa: F811
    model, scorer = fitted
    table = _table(tmp_path / "h.csv", _corpus(3))
    with pytest.raises(ac.AutocodeError, match=r"batch_size must be at least 1, got 0\."):
        stream_saturation(model, InputStream(table), scorer=scorer, batch_size=0)
    spill = tmp_path / "spill"
    spill.mkdir()
    with pytest.raises(ac.AutocodeError, match=r"min_size must be at least 1, got 0\."):
        stream_saturation(model, InputStream(table), scorer=scorer, min_size=0, folder=spill)
    assert not any(spill.iterdir())  # the temporary folder is removed on an error too
    with pytest.raises(ac.AutocodeError, match=r"threshold must be between 0 and 1 \(e\.g\. 0\.95\), got 2"):
        stream_saturation(model, InputStream(table), scorer=scorer, threshold=2)
    with pytest.raises(ac.AutocodeError, match=r"Novelty needs the coded segments the model learned from"):
        stream_saturation(model, InputStream(table))


def test_streamed_progress_bar(fitted, tmp_path, capsys):  # noqa: F811
    model, scorer = fitted
    table = _table(tmp_path / "h.csv", _corpus(3))
    report = stream_saturation(model, InputStream(table), scorer=scorer, batch_size=5, progress=True)
    report.scores.close()
    assert "scoring novelty" in capsys.readouterr().err
