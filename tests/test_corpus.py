"""CodedCorpus: segments, codings per coder, targets (union, majority, one coder), subsets and roll-up."""

from __future__ import annotations

import numpy as np
import pytest

from autocode import AutocodeError, CodebookError, CodedCorpus, Segment

SEGS = [Segment("D1", str(i), t, "受访者") for i, t in enumerate(["党支部带头。", "议事会投票。", "网格员上门。", "天气不错。"], 1)]


def keyed(*sets):
    return {("D1", str(i)): s for i, s in enumerate(sets, 1) if s is not None}


@pytest.fixture
def three() -> CodedCorpus:
    """Three coders; C did not code segment 4."""
    return CodedCorpus(SEGS, {
        "A": keyed({"party"}, {"council"}, {"service"}, set()),
        "B": keyed({"party", "council"}, set(), {"service"}, {"party"}),
        "C": keyed({"party"}, {"council"}, set(), None),
    })


def test_segment_key_and_defaults():
    s = Segment("P01", "3", "我们社区有党支部。")
    assert s.key == ("P01", "3") and s.speaker == "" and s.start is None and s.end is None


def test_basic_properties(coded):
    assert len(coded) == 48 and coded.coders == ["E", "A"]
    assert coded.documents == [f"D{d}" for d in range(8)]
    assert coded.groups.tolist() == [f"D{d}" for d in range(8) for _ in range(6)]
    assert coded.texts[0] == coded.segments[0].text
    assert coded.index(("D1", "2")) == 7
    assert repr(coded) == "CodedCorpus(48 segments, 8 documents, coders=['E', 'A'])"
    assert coded.used_codes() == ["party", "council", "service"]


def test_missing_coding_differs_from_empty(three):
    assert three.codings("C") == [frozenset({"party"}), frozenset({"council"}), frozenset(), None]


def test_target_union(three):
    assert three.target_codings("union") == [
        {"party", "council"}, {"council"}, {"service"}, {"party"},
    ]


def test_target_majority(three):
    # more than half of the coders who coded the segment: 2 of 3, and 2 of 2 on segment 4
    assert three.target_codings("majority") == [{"party"}, {"council"}, {"service"}, set()]


def test_target_majority_two_coders_needs_both():
    c = CodedCorpus(SEGS[:2], {"A": keyed({"x", "y"}, {"x"}), "B": keyed({"x"}, set())})
    assert c.target_codings("majority") == [{"x"}, set()]


def test_target_one_coder(three):
    assert three.target_codings("C") == three.codings("C")
    assert three.target_codings("B")[3] == {"party"}


def test_target_none_where_nobody_coded():
    c = CodedCorpus(SEGS, {"A": keyed({"x"}, None, set(), None), "B": keyed(None, None, {"y"}, None)})
    for target in ("union", "majority"):
        out = c.target_codings(target)
        assert out[1] is None and out[3] is None
    assert c.target_codings("union")[2] == {"y"}
    assert c.target_codings("majority")[2] == set()
    assert c.coded_mask("union").tolist() == [True, False, True, False]
    assert c.coded_mask("B").tolist() == [False, False, True, False]


def test_unknown_target(three):
    with pytest.raises(AutocodeError, match=r"Unknown target 'E': use 'union', 'majority' or one of the coders \['A', 'B', 'C'\]"):
        three.target_codings("E")


def test_no_codings():
    with pytest.raises(AutocodeError, match=r"The corpus has no codings to learn from\."):
        CodedCorpus(SEGS).target_codings()


def test_labels(three):
    y = three.labels(["party", "council", "service", "unused"], target="majority")
    assert y.dtype == bool and y.astype(int).tolist() == [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert three.labels(["party"], target="C")[:, 0].tolist() == [True, False, False, False]


def test_code_counts(three):
    assert three.code_counts() == {"party": 2, "council": 2, "service": 1}
    assert three.code_counts("B") == {"party": 2, "council": 1, "service": 1}


def test_unknown_coder(three):
    with pytest.raises(AutocodeError, match=r"No coder named 'E'; the coders are \['A', 'B', 'C'\]\."):
        three.codings("E")
    with pytest.raises(AutocodeError, match=r"No coder named 'E'"):
        three.code_counts("E")


def test_duplicate_segment():
    with pytest.raises(AutocodeError, match=r"Segment \('D1', '1'\) appears twice\. Segment ids must be unique"):
        CodedCorpus([SEGS[0], SEGS[0]])


def test_coding_of_unknown_segment():
    with pytest.raises(AutocodeError, match=r"Coder 'A' coded segment \('D9', '1'\), which is not in the corpus\."):
        CodedCorpus(SEGS, {"A": {("D9", "1"): {"x"}}})


def test_unknown_code_with_codebook(book):
    with pytest.raises(CodebookError, match=r"Coder 'A', segment \('D1', '1'\): Unknown code 'partyy'.*Did you mean 'party'"):
        CodedCorpus(SEGS, {"A": keyed({"partyy"})}, codebook=book)


def test_subset_by_indices_and_mask(three):
    sub = three.subset([3, 0])
    assert [s.segment for s in sub.segments] == ["4", "1"]
    assert sub.codings("C") == [None, frozenset({"party"})]
    mask = three.subset(np.array([True, False, True, False]))
    assert [s.segment for s in mask.segments] == ["1", "3"] and mask.coders == ["A", "B", "C"]
    assert len(three.subset([])) == 0


def test_with_codings(three):
    out = three.with_codings("model", [{"party"}, None, set(), {"service"}])
    assert out.coders == ["A", "B", "C", "model"]
    assert out.codings("model") == [{"party"}, None, set(), {"service"}]
    assert out.codings("A") == three.codings("A")
    with pytest.raises(AutocodeError, match=r"Expected 4 codings, got 1\."):
        three.with_codings("model", [set()])


def test_rolled_up(book):
    c = CodedCorpus(SEGS[:3], {"A": keyed({"party"}, {"council", "service"}, set())}, codebook=book)
    assert c.rolled_up().codings("A") == [{"party", "V"}, {"council", "service", "H"}, set()]
    assert c.rolled_up(depth=0).codings("A") == [{"V"}, {"H"}, set()]
    assert c.rolled_up(depth=1).codings("A") == [{"party"}, {"council", "service"}, set()]


def test_rolled_up_needs_a_codebook(three):
    with pytest.raises(AutocodeError, match=r"Rolling codes up to categories needs a codebook\."):
        three.rolled_up()


def test_rename_documents(three):
    out = three.rename_documents({"D1": "P01"})
    assert out.documents == ["P01"] and out.codings("B") == three.codings("B")
