"""Relations between categories in coded and held-out interviews (the third saturation question)."""

import numpy as np
import pytest

from autocode import AutocodeError, Code, Codebook, CodedCorpus, Segment
from autocode.saturation import category_relations

CATS = ["P", "Q", "R", "S", "T", "U"]


def _book() -> Codebook:
    codes = [Code(c, f"范畴{c}") for c in CATS]
    codes += [Code(f"{c.lower()}{k}", parent=c) for c in CATS for k in (1, 2)]
    return Codebook(codes)


def _corpus(rng, n_units: int, plant: tuple[str, str] | None = None, share: float = 0.3) -> CodedCorpus:
    """Interviews of question/answer pairs; each answer carries each category independently with p=0.2 (one of
    its two codes); with ``plant``, its two categories never together except in ``share`` of the answers."""
    segs, codes = [], {}
    for u in range(n_units):
        doc = f"D{u // 20}"
        q = Segment(doc, f"{u}q", "问：您怎么看？", "interviewer")
        a = Segment(doc, f"{u}a", "答：是这样的。", "participant")
        segs += [q, a]
        applied = {f"{c.lower()}{rng.integers(1, 3)}" for c in CATS if rng.random() < 0.2}
        if plant is not None:
            if {c[0].upper() for c in applied} >= set(plant):  # apart, except where planted
                applied = {c for c in applied if c[0].upper() != plant[1]}
            if rng.random() < share:
                applied |= {f"{plant[0].lower()}1", f"{plant[1].lower()}2"}
        codes[q.key], codes[a.key] = set(), applied
    return CodedCorpus(segs, {"E": codes})


def test_a_planted_link_is_found_and_nothing_else():
    rng = np.random.default_rng(0)
    book = _book()
    coded = _corpus(rng, 300, plant=("P", "Q"), share=0.0)  # P and Q never together in the coded interviews
    held = _corpus(rng, 200, plant=("P", "Q"), share=0.3)
    rel = category_relations(coded, held, book, unit="answer")
    flagged = rel.flagged()
    assert [(r["a"], r["b"], r["status"]) for r in flagged] == [("P", "Q", "new")]
    pq = flagged[0]
    assert pq["coded"] == 0 and pq["held_out"] >= 40 and pq["q_new"] < 1e-6
    assert "1 new link(s) between categories: P 范畴P + Q 范畴Q" in rel.summary()
    md = rel.to_markdown()
    assert "| P 范畴P + Q 范畴Q | 0 |" in md and "| new |" in md
    assert rel.plot_png()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rel.to_dict()["pairs"] == rel.pairs


def test_independent_categories_give_no_relation():
    rng = np.random.default_rng(1)
    book = _book()
    rel = category_relations(_corpus(rng, 300), _corpus(rng, 300), book, unit="answer")
    assert rel.flagged() == []
    assert rel.summary().startswith("No new relations")


def test_a_weaker_link_is_reported():
    rng = np.random.default_rng(2)
    book = _book()
    coded = _corpus(rng, 300, plant=("R", "S"), share=0.4)
    held = _corpus(rng, 300, plant=("R", "S"), share=0.0)
    statuses = {(r["a"], r["b"]): r["status"] for r in category_relations(coded, held, book).flagged()}
    assert statuses == {("R", "S"): "weaker"}


def test_units():
    """An answer is the interviewer's question and the turns up to the next question; the same pair coded in
    the question and the answer goes together in the answer unit, not in the turn unit."""
    book = _book()
    segs = [Segment("D", "1", "问", "interviewer"), Segment("D", "2", "答", "participant"),
            Segment("D", "3", "答", "participant"), Segment("D", "4", "问", "interviewer"),
            Segment("E", "1", "答", "participant")]
    codes = {("D", "2"): {"p1"}, ("D", "3"): {"q1"}, ("D", "4"): {"p2"}, ("E", "1"): {"q2"}}
    corpus = CodedCorpus(segs, {"E": codes})
    together = {u: category_relations(corpus, corpus, book, unit=u).pairs for u in ("segment", "answer", "document")}
    assert together["segment"] == []
    assert [(r["a"], r["b"], r["coded"]) for r in together["answer"]] == [("P", "Q", 1)]
    assert [(r["a"], r["b"], r["coded"]) for r in together["document"]] == [("P", "Q", 1)]
    assert category_relations(corpus, corpus, book, unit="document").n_units == {"coded": 2, "held_out": 2}


def test_errors_are_named():
    book = _book()
    corpus = CodedCorpus([Segment("D", "1", "答")], {"E": {("D", "1"): {"p1"}}})
    with pytest.raises(AutocodeError, match="unit must be one of segment, answer, document; got 'turn'"):
        category_relations(corpus, corpus, book, unit="turn")
    flat = Codebook([Code("a"), Code("b")])
    with pytest.raises(AutocodeError, match="relations need at least 2"):
        category_relations(corpus, corpus, Codebook([Code("A"), Code("a", parent="A")]))
    assert flat.category_depth == 0
