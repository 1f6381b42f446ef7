"""The codebook: a tree of any depth, roll-up to ancestors, CSV files and their errors."""

from __future__ import annotations

import pytest

from autocode import Code, Codebook, CodebookError, FormatError

HEADER = "id,name,description,parent\n"


@pytest.fixture
def deep() -> Codebook:
    """core -> two main categories -> categories -> open codes (four levels)."""
    return Codebook([
        Code("core", "党建引领的社区共治"),
        Code("V", "纵向引领", parent="core"),
        Code("H", "横向共治", parent="core"),
        Code("embed", "组织嵌入", parent="V"),
        Code("embed-party", "党组织嵌入小区", "小区里成立党支部或党小组", parent="embed"),
        Code("embed-pm", "党组织嵌入物业", parent="embed"),
        Code("council", "多元参与", parent="H"),
        Code("council-vote", "议事会投票", parent="council"),
        Code("memo"),
    ])


def write(tmp_path, text, name="codebook.csv", encoding="utf-8"):
    p = tmp_path / name
    p.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return p


def test_tree_of_any_depth(deep):
    assert len(deep) == 9 and "embed" in deep and "nope" not in deep
    assert deep.roots == ["core", "memo"]
    assert deep.leaves == ["embed-party", "embed-pm", "council-vote", "memo"]
    assert deep.children("embed") == ["embed-party", "embed-pm"]
    assert deep.ancestors("embed-party") == ["embed", "V", "core"]
    assert deep.ancestors("core") == []
    assert deep.depth("council-vote") == 3 and deep.depth("memo") == 0
    assert deep.max_depth == 3
    assert deep.root_of("council-vote") == "core" and deep.root_of("memo") == "memo"
    assert [deep.ancestor_at("embed-party", d) for d in range(5)] == ["core", "V", "embed", "embed-party", None]


def test_rollup_to_every_ancestor(deep):
    assert deep.rollup(["embed-party"]) == {"embed-party", "embed", "V", "core"}
    assert deep.rollup(["embed-party", "council-vote"], include_self=False) == {"embed", "V", "H", "council", "core"}
    assert deep.rollup([]) == set()
    assert deep.at_depth(["embed-party", "council-vote", "memo"], 1) == {"V", "H"}
    assert deep.at_depth(["embed-party", "council-vote"], 2) == {"embed", "council"}
    assert deep.at_depth(["V"], 2) == set()  # shallower codes are dropped


def test_lookup_and_labels(deep):
    assert deep["embed"].name == "组织嵌入"
    assert deep["memo"].name == "memo"  # the name defaults to the id
    assert deep.label("embed") == "embed 组织嵌入" and deep.label("memo") == "memo"
    assert deep.check("V") == "V"
    assert deep.ids[:3] == ["core", "V", "H"]
    assert repr(deep) == "Codebook(9 codes, 2 top-level)"


@pytest.mark.parametrize("call", [
    lambda b: b["embd"], lambda b: b.ancestors("embd"), lambda b: b.rollup(["embd"]), lambda b: b.check("embd"),
    lambda b: b.children("embd"),
])
def test_unknown_code_suggests_close_ids(deep, call):
    with pytest.raises(CodebookError, match=r"Unknown code 'embd': it is not in the codebook\. Did you mean 'embed'"):
        call(deep)


def test_unknown_code_without_close_ids(deep):
    with pytest.raises(CodebookError, match=r"Unknown code '完全不同': it is not in the codebook\.$"):
        deep["完全不同"]


def test_unknown_message_is_public(deep):
    """The message that other modules (corpus, tables, projects) put in their own errors."""
    assert deep.unknown_message("embd") == ("Unknown code 'embd': it is not in the codebook. "
                                            "Did you mean 'embed', 'embed-pm'?")
    assert deep.unknown_message("完全不同") == "Unknown code '完全不同': it is not in the codebook."


def test_subset_keeps_ancestors(deep):
    sub = deep.subset(["embed-pm"])
    assert sub.ids == ["core", "V", "embed", "embed-pm"]
    assert sub.ancestors("embed-pm") == ["embed", "V", "core"]


def test_code_id_is_stripped_and_required():
    assert Code(" a ").id == "a"
    assert Code("a", parent="  ").parent is None
    assert Code("b", parent=" a ").parent == "a"
    with pytest.raises(CodebookError, match=r"A code id must be a non-empty string, got ' '"):
        Code(" ")
    with pytest.raises(CodebookError, match=r"A code id must be a non-empty string, got None"):
        Code(None)


def test_duplicate_id():
    with pytest.raises(CodebookError, match=r"Duplicate code id 'a' \(names '甲' and '乙'\)\. Give each code its own id"):
        Codebook([Code("a", "甲"), Code("a", "乙")])


def test_unknown_parent():
    with pytest.raises(CodebookError, match=r"Code 'b' \(乙\) has parent 'x', which is not a code of the codebook"):
        Codebook([Code("a", "甲"), Code("b", "乙", parent="x")])


def test_cycle():
    with pytest.raises(CodebookError, match=r"The codebook has a cycle: a -> c -> b -> a\. A code cannot be its own"):
        Codebook([Code("a", parent="c"), Code("b", parent="a"), Code("c", parent="b")])


def test_self_parent_is_a_cycle():
    with pytest.raises(CodebookError, match=r"cycle: a -> a"):
        Codebook([Code("a", parent="a")])


def test_equality_and_dict_round_trip(deep):
    again = Codebook.from_dict(deep.to_dict())
    assert again == deep and list(again) == list(deep)
    assert deep != Codebook([Code("x")])
    assert (deep == "x") is False


def test_csv_round_trip(tmp_path, deep):
    deep.write_csv(tmp_path / "cb.csv")
    assert (tmp_path / "cb.csv").read_text(encoding="utf-8").startswith("\ufeff" + HEADER)  # BOM: Excel reads it
    assert Codebook.read_csv(tmp_path / "cb.csv") == deep


def test_csv_round_trip_with_color_and_commas(tmp_path):
    book = Codebook([Code("a", "甲,乙", "说明，含逗号, and \"quotes\"", color="#FF0000"), Code("b", parent="a")])
    book.write_csv(tmp_path / "cb.csv")
    again = Codebook.read_csv(tmp_path / "cb.csv")
    assert again == book and again["a"].color == "#FF0000"


def test_read_csv_deep_tree_and_defaults(tmp_path):
    p = write(tmp_path, HEADER + "core,核心,,\nV,纵向,,core\nembed,嵌入,,V\nembed-party,党组织,,embed\n\n,,,\n")
    book = Codebook.read_csv(p)
    assert book.ancestors("embed-party") == ["embed", "V", "core"]


def test_read_csv_only_id_column_and_case(tmp_path):
    book = Codebook.read_csv(write(tmp_path, "ID, Parent\na,\nb,a\n"))
    assert book.ids == ["a", "b"] and book["b"].parent == "a" and book["a"].name == "a"


@pytest.mark.parametrize("encoding", ["utf-8-sig", "gbk", "utf-16"])
def test_read_csv_encodings(tmp_path, encoding):
    p = write(tmp_path, HEADER + "party,组织嵌入,党组织嵌入社区,\n", encoding=encoding)
    assert Codebook.read_csv(p)["party"].name == "组织嵌入"


def test_read_csv_cycle(tmp_path):
    p = write(tmp_path, HEADER + "a,甲,,b\nb,乙,,a\n")
    with pytest.raises(CodebookError, match=r"codebook\.csv: The codebook has a cycle: a -> b -> a"):
        Codebook.read_csv(p)


def test_read_csv_duplicate_id(tmp_path):
    p = write(tmp_path, HEADER + "a,甲,,\na,乙,,\n")
    with pytest.raises(CodebookError, match=r"codebook\.csv: Duplicate code id 'a'"):
        Codebook.read_csv(p)


def test_read_csv_unknown_parent(tmp_path):
    p = write(tmp_path, HEADER + "a,甲,,\nb,乙,,zz\n")
    with pytest.raises(CodebookError, match=r"codebook\.csv: Code 'b' \(乙\) has parent 'zz'.*Add the parent as its own row"):
        Codebook.read_csv(p)


def test_read_csv_missing_column(tmp_path):
    p = write(tmp_path, "label,description\na,甲\n")
    with pytest.raises(FormatError, match=r"codebook\.csv, row 1: Missing column 'id' \(or 'name'\) in the codebook header \['label', 'description'\]"):
        Codebook.read_csv(p)


@pytest.mark.parametrize("content", ["", "\ufeff", "\n\n"])
def test_read_csv_empty_file(tmp_path, content):
    p = write(tmp_path, content)
    with pytest.raises(FormatError, match=r"codebook\.csv: The codebook file is empty\. It needs a header"):
        Codebook.read_csv(p)


def test_read_csv_header_only(tmp_path):
    with pytest.raises(FormatError, match=r"codebook\.csv: The codebook has a header but no codes\."):
        Codebook.read_csv(write(tmp_path, HEADER))


def test_read_csv_undecodable(tmp_path):
    p = write(tmp_path, HEADER.encode() + b"a,\x80\xff\x80,,\n")
    with pytest.raises(FormatError, match=r"codebook\.csv: Codebook: Cannot decode the file as UTF-8, GB18030 or Big5"):
        Codebook.read_csv(p)


def test_read_csv_wrong_named_encoding(tmp_path):
    p = write(tmp_path, HEADER + "a,组织,,\n", encoding="gbk")
    with pytest.raises(FormatError, match=r"codebook\.csv: Codebook: Cannot decode as utf-8"):
        Codebook.read_csv(p, encoding="utf-8")


def test_read_csv_not_found(tmp_path):
    with pytest.raises(FormatError, match=r"nope\.csv: Codebook file not found\. Check the path\."):
        Codebook.read_csv(tmp_path / "nope.csv")
    with pytest.raises(FormatError, match=r"Codebook file is a folder, not a CSV file"):
        Codebook.read_csv(tmp_path)


def test_read_csv_too_many_fields(tmp_path):
    p = write(tmp_path, HEADER + "a,甲,说明,,多余\n")
    with pytest.raises(FormatError, match=r"codebook\.csv, row 2: Codebook: The row has 5 field\(s\), the header has 4\. Quote"):
        Codebook.read_csv(p)


def test_read_csv_empty_id(tmp_path):
    p = write(tmp_path, HEADER + "a,甲,,\n,乙,,a\n")
    with pytest.raises(FormatError, match=r"codebook\.csv, row 3: Empty code id\. Every codebook row needs an id\."):
        Codebook.read_csv(p)
