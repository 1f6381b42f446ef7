"""autocode.saturation: candidate names (whole words), the category rule, the report's three answers in every
format, and a topic no code covers whose answers fall below the novelty cut (shaped like the bundled example's
last interview). Scores are made by hand here, so no model or encoder is needed."""

from __future__ import annotations

import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from autocode.codebook import Code, Codebook
from autocode.corpus import Segment
from autocode.exceptions import AutocodeError
from autocode.saturation import (
    NoveltyScores,
    join_similarity,
    key_phrases,
    place,
    propose_codes,
    report_from_scores,
    unexplained_terms,
)
from autocode.saturation._naming import terms_of
from autocode.text import ChineseTokenizer

BOOK = Codebook([Code("V", "纵向引领"), Code("H", "横向共治"),
                 Code("party", "组织嵌入", "党组织嵌入社区治理", parent="V"),
                 Code("vote", "民主选举", "居民投票选举代表", parent="V"),
                 Code("council", "多元参与", "居民通过议事会参与治理", parent="H"),
                 Code("service", "精准服务", "面向老人的上门服务", parent="H")])
CODES = ["party", "vote", "council", "service"]


def unit(*xs) -> np.ndarray:
    v = np.zeros(8, dtype=np.float32)
    for k, x in xs:
        v[k] = x
    return v / np.linalg.norm(v)


# code prototypes: two codes per category, siblings at cosine ~0.96, the categories far apart
PROTOS = np.stack([unit((0, 1.0)), unit((0, 1.0), (1, 0.3)), unit((2, 1.0)), unit((2, 1.0), (3, 0.3))])

# Illustrative answers written for these tests: known topics, and a smart-community topic no code covers.
KNOWN = [("社区党支部带领党员在小区里开展志愿服务活动，大家都很积极", unit((0, 1.0), (1, 0.1))),
         ("居民代表会议投票选出楼长，每个楼栋都有自己的代表", unit((0, 1.0), (1, 0.25))),
         ("议事会每个月开一次，物业和居民坐在一起商量小区的事", unit((2, 1.0), (3, 0.1)))]
TOPIC = ["区里去年上线了小程序，手机上就能预约办证、缴停车费、看通知",
         "老人不太会用这个小程序，扫码刷脸都卡住，我们开了数字助老课",
         "平台上有一张数字孪生地图，小程序里每栋楼的户数点开就能看到",
         "新小区装了人脸识别门禁，小程序上能实时收到高空抛物的提醒"]
TOPIC_VEC = [unit((6, 1.0), (7, 0.05 * k)) for k in range(4)]


def make_scores(topic_novelty, known_novelty=(0.1, 0.3, 0.5), threshold=0.95):
    """Interviews N1 (known topics, a short answer, an interviewer turn) and N3 (the new topic, last)."""
    segs, nov, vec = [], [], []
    for k, (text, v) in enumerate(KNOWN):
        segs.append(Segment("N1", str(k + 1), text, "受访者"))
        nov.append(known_novelty[k])
        vec.append(v)
    segs += [Segment("N1", "8", "对，是这样的", "受访者"), Segment("N1", "9", "您觉得呢？", "访谈者")]
    nov += [np.nan, np.nan]
    vec += [np.zeros(8, dtype=np.float32)] * 2
    for k, (text, v, n) in enumerate(zip(TOPIC, TOPIC_VEC, topic_novelty)):
        segs.append(Segment("N3", str(k + 1), text, "受访者"))
        nov.append(n)
        vec.append(v)
    nov = np.array(nov, dtype=float)
    n = len(segs)
    emb = np.stack(vec)
    nearest = ["" if np.isnan(x) else CODES[int(np.argmax(PROTOS @ e))] for x, e in zip(nov, emb)]
    return NoveltyScores(segments=segs, novelty=nov, p_value=1 - nov, components=np.zeros((n, 4)),
                         eligible=~np.isnan(nov), embedding=emb, nearest_code=nearest, best_code=["party"] * n,
                         best_score=np.full(n, 0.2), codable=np.full(n, 0.9), threshold=threshold)


SCORER = SimpleNamespace(codes_=CODES, prototypes_=PROTOS, cluster_distance_=0.1, tokenizer_=ChineseTokenizer(),
                         min_chars_=10, exclude_roles=("interviewer",))


# -- names: whole words and phrases ------------------------------------------------------------------------
def test_terms_are_whole_words_and_noun_phrases_never_pieces():
    terms = {"".join(t) for t in terms_of("新小区装了人脸识别门禁、高空抛物摄像头和电动车进电梯的自动报警，手机上能实时收到提醒")}
    assert {"人脸识别", "高空抛物", "摄像头", "新小区"} <= terms
    assert "上能" not in terms  # jieba's HMM glues 上 and 能 into an unknown "verb"
    assert not any(t in terms for t in ("电动车进电梯", "抛物摄", "识别门", "小区装"))
    assert ("数字", "孪生") in terms_of("平台上有数字孪生地图")


def test_key_phrases_name_a_group_by_what_its_members_share():
    groups = [TOPIC, [KNOWN[0][0], KNOWN[1][0]]]
    named = key_phrases(groups, [KNOWN[2][0]], ChineseTokenizer())
    assert named[0][0][0] == "小程序"  # in all four answers
    words = {"".join(t) for text in TOPIC for t in terms_of(text)}
    assert all(t in words for t, _ in named[0])  # every name is one of the members' whole terms
    assert len({t for t, _ in named[0]}) == len(named[0])
    assert not any(a != b and a in b for a, _ in named[0] for b, _ in named[0])  # no phrase listed with its words


def test_key_phrases_keep_traditional_characters_as_written():
    named = key_phrases([["老人不會用這個小程序", "小程序上能預約辦證"]], ["社區開會"], ChineseTokenizer())
    assert named[0][0][0] == "小程序" and any("預約" in t or "辦證" in t for t, _ in named[0])


def test_unexplained_terms_are_the_words_no_coded_example_holds():
    out = unexplained_terms([TOPIC[2]], [KNOWN[0][0], "每栋楼"], ChineseTokenizer())[0]
    assert "数字孪生地图" in out and "小程序" in out
    assert "每栋" not in out and "数字" not in out  # known, and a word of a phrase already listed


# -- the category rule ----------------------------------------------------------------------------------
def test_join_similarity_is_how_near_codes_sit_to_their_nearest_sibling():
    sib = float(PROTOS[0] @ PROTOS[1])
    assert join_similarity(PROTOS, ["V", "V", "H", "H"], q=50) == pytest.approx(sib, abs=1e-6)
    assert np.isnan(join_similarity(PROTOS, ["V", "H", None, None]))  # no category has two codes


def test_place_joins_the_nearest_category_or_proposes_a_new_one():
    thr = join_similarity(PROTOS, ["V", "V", "H", "H"])
    cat, sim, new = place(unit((0, 1.0), (1, 0.15)), PROTOS, ["V", "V", "H", "H"], thr)
    assert (cat, new) == ("V", False) and sim > thr
    cat, sim, new = place(unit((6, 1.0)), PROTOS, ["V", "V", "H", "H"], thr)
    assert new and sim < thr
    assert place(unit((0, 1.0)), PROTOS, [None] * 4, thr) == (None, 0.0, False)


def test_candidate_near_a_category_joins_it():
    s = make_scores([0.1, 0.1, 0.1, 0.1], known_novelty=(0.97, 0.96, 0.2))
    (c,) = propose_codes(s, BOOK, SCORER)
    assert c.category == "V" and not c.new_category and c.supported and c.n_novel == 2
    rep = report_from_scores(s, BOOK, SCORER)
    answer = rep.answers()[1]
    assert answer.verdict == "no" and "joins an existing category: NEW1 -> V 纵向引领" in answer.answer


# -- a topic no code covers, scored below the cut (the bundled example's last interview) ---------------------
def test_topic_below_the_cut_is_a_group_to_review_not_silence():
    s = make_scores([0.82, 0.88, 0.85, 0.81])
    rep = report_from_scores(s, BOOK, SCORER)
    (c,) = rep.candidates
    assert not c.supported and c.new_category and c.documents == ["N3"] and c.name.startswith("小程序")
    concepts = rep.answers()[0]
    assert concepts.verdict == "no"
    assert "1 group(s) of segments at the review level (novelty >= 0.80, below the cut)" in concepts.answer
    assert "NEW1 小程序" in concepts.answer
    assert "1 answer(s) shorter than 10 letters were not scored" in concepts.rests_on
    assert [r["segment"] for r in rep.review_rows()] == ["1", "2", "3", "4"]
    assert {r["level"] for r in rep.review_rows()} == {"review"}
    md = rep.to_markdown()
    assert "### NEW1 小程序" in md and "(to review: no novel segment)" in md
    assert [d["new_candidates"] for d in rep.per_document] == [[], []]  # the curve counts candidate codes only
    # without the review level only novel segments are grouped: nothing, as before
    assert report_from_scores(s, BOOK, SCORER, review=None).candidates == []


def test_topic_with_one_novel_answer_is_a_candidate_new_code_and_category():
    s = make_scores([0.82, 0.97, 0.85, 0.81])
    rep = report_from_scores(s, BOOK, SCORER)
    (c,) = rep.candidates
    assert c.supported and c.n_novel == 1 and c.size == 4
    concepts, categories, relations = rep.answers()
    assert concepts.verdict == "yes" and concepts.answer.startswith("Yes: 1 novel segment(s) in 1 candidate code(s)")
    assert categories.verdict == "yes" and "NEW1 小程序" in categories.answer and "new category" in categories.answer
    assert relations.verdict == "not checked" and "--data" in relations.answer
    assert [d["new_candidates"] for d in rep.per_document] == [[], ["NEW1"]]
    rows = rep.review_rows()
    assert [r["level"] for r in rows] == ["review", "novel", "review", "review"]
    assert all(r["candidate"] == "NEW1" for r in rows)


def test_report_answers_first_in_every_format(tmp_path):
    rep = report_from_scores(make_scores([0.82, 0.97, 0.85, 0.81]), BOOK, SCORER,
                             known=[t for t, _ in KNOWN])
    md = rep.to_markdown()
    order = ["## Answers", "**New concepts?** Yes", "**New categories?** Yes", "**New relations?** Not checked",
             "## Segments to review", "## Details", "## Candidate new codes"]
    assert [md.index(x) for x in order] == sorted(md.index(x) for x in order)
    assert "| N3 | 2 | **0.970** | NEW1 |" in md and "数字孪生" in md  # the words no code accounts for
    html = rep.to_html()
    order = ['<h2 id="answers">Answers</h2>', "<b>New concepts?</b> Yes", "<b>New categories?</b> Yes",
             "<h2>Segments to review</h2>", "<td><b>0.970</b></td>", "<h2>Details</h2>"]
    assert [html.index(x) for x in order] == sorted(html.index(x) for x in order)
    rep.save(tmp_path / "r.json")
    doc = json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))
    assert [a["question"] for a in doc["answers"]] == ["New concepts?", "New categories?", "New relations?"]
    assert [a["verdict"] for a in doc["answers"]] == ["yes", "yes", "not checked"]
    assert doc["review_level"] == 0.8
    row = doc["segments_to_review"][1]
    assert {k: row[k] for k in ("document", "segment", "novelty", "level", "candidate", "text")} == {
        "document": "N3", "segment": "2", "novelty": 0.97, "level": "novel", "candidate": "NEW1", "text": TOPIC[1]}
    assert "数字助老课" in row["unexplained"] or "数字助老" in row["unexplained"]
    cand = doc["candidates"][0]
    assert cand["new_category"] and cand["supported"] and cand["n_novel"] == 1 and cand["join_similarity"] > 0.9
    assert rep.records()[6]["unexplained"] == doc["segments_to_review"][1]["unexplained"]
    rep.save(tmp_path / "r.csv")
    with open(tmp_path / "r.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[6]["unexplained"] == "、".join(row["unexplained"]) and rows[6]["codes"] == "NEW1"


def test_no_categories_means_the_question_is_not_checked():
    flat = Codebook([Code(c) for c in CODES])
    rep = report_from_scores(make_scores([0.82, 0.97, 0.85, 0.81]), flat, SCORER)
    assert rep.candidates[0].category is None
    a = rep.answers()[1]
    assert a.verdict == "not checked" and a.answer == "Not checked: the codebook has no categories."


def test_review_level_above_the_cut_is_refused():
    with pytest.raises(AutocodeError, match=r"review must be above 0 and at most the novelty cut 0.95, got 0.99"):
        propose_codes(make_scores([0.82, 0.97, 0.85, 0.81]), BOOK, SCORER, review=0.99)
