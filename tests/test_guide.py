"""The interview guide: recovering it, reading it, placing turns in it, and the guide feature of the model."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from autocode import Code, Codebook, CodedCorpus, CodingModel, Segment
from autocode.backends.tfidf import TfidfBackend
from autocode.exceptions import FormatError
from autocode.guide import Guide, question_turns, read_guide, recover_guide
from autocode.model import make_inputs

Q, P = "interviewer", "participant"
# three interviews of one guide (work, first use, problems, wishes): B skips "first use", C asks an extra question
INTERVIEWS = {
    "A": [(Q, "A: 请先介绍一下您平时的工作内容。"), (P, "B: 我在学校做行政工作，每天处理很多表格。"), (Q, "A: 喔，好。"),
          (P, "B: 主要是排课。"), (Q, "A: 您是怎么开始使用这个软件的？"), (P, "B: 同事推荐我用的。"),
          (Q, "A: 您觉得这个软件最大的问题是什么？"), (P, "B: 速度太慢了，经常卡住。"), (Q, "A: 为什么呢？"),
          (P, "B: 网络不好。"), (Q, "A: 如果可以改进，您希望增加什么功能？"), (P, "B: 希望能批量导出。")],
    "B": [(Q, "A: 先请您介绍一下平时的工作内容吧。"), (P, "B: 我是护士，轮班很辛苦。"),
          (Q, "A: 那您觉得这个软件最大的问题是什么呢？"), (P, "B: 界面太复杂，找不到按钮。"),
          (Q, "A: 如果可以改进的话，您希望增加什么功能？"), (P, "B: 提醒功能。")],
    "C": [(Q, "A: 请您先介绍一下平时的工作内容。"), (P, "B: 我开出租车。"), (Q, "A: 您是怎么开始使用这个软件的呢？"),
          (P, "B: 公司要求的。"), (Q, "A: 您觉得这个软件最大的问题是什么？"), (P, "B: 广告太多。"),
          (Q, "A: 您的家人平常也会用这种手机软件吗？"), (P, "B: 我女儿用。"),
          (Q, "A: 如果可以改进，您希望它增加什么功能？"), (P, "B: 语音输入。")],
}
GUIDE = ["请先介绍一下您平时的工作内容。", "您是怎么开始使用这个软件的？", "您觉得这个软件最大的问题是什么？",
         "如果可以改进，您希望增加什么功能？"]


def turns(docs=INTERVIEWS):
    texts, roles, groups = [], [], []
    for d, ts in docs.items():
        for role, text in ts:
            texts.append(text)
            roles.append(role)
            groups.append(d)
    return texts, roles, groups


def test_question_turns_are_the_interviewers_longer_turns():
    texts, roles, _ = turns({"A": INTERVIEWS["A"]})
    assert question_turns(texts, roles).tolist() == [0, 4, 6, 10]  # not "喔，好。" nor "为什么呢？"


def test_recovered_guide_has_the_shared_questions_in_order():
    guide = recover_guide(*turns())
    # four sections (each asked in at least 2 of 3 interviews), in the interviews' order; C's extra question,
    # asked once, is no section
    assert len(guide) == 4
    assert ["工作内容" in guide.labels[0], "开始使用" in guide.labels[1], "最大的问题" in guide.labels[2],
            "增加什么功能" in guide.labels[3]] == [True] * 4
    assert not any("家人" in q for q in guide.labels)
    assert not any(q.startswith("A:") for q in guide.labels)  # speaker labels are not part of a question


def test_locate_handles_skips_follow_ups_and_extra_questions():
    guide = recover_guide(*turns())
    texts, roles, groups = turns()
    sec = guide.locate(texts, roles, groups)
    by_doc = {d: sec[[i for i, g in enumerate(groups) if g == d]].tolist() for d in INTERVIEWS}
    # answers take their question's section; backchannels and short probes stay in the section
    assert by_doc["A"] == [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
    assert by_doc["B"] == [0, 0, 2, 2, 3, 3]  # "first use" skipped
    assert by_doc["C"] == [0, 0, 1, 1, 2, 2, 2, 2, 3, 3]  # the extra question stays in the current section


def test_locate_is_monotone_and_starts_anywhere():
    guide = Guide.from_questions(GUIDE)
    # an interview that starts at the third question, then asks an earlier one again: no step back
    texts = ["A: 您觉得这个软件最大的问题是什么？", "B: 太慢。", "A: 您是怎么开始使用这个软件的？", "B: 朋友推荐。",
             "A: 如果可以改进，您希望增加什么功能？"]
    sec = guide.locate(texts, [Q, P, Q, P, Q])
    assert sec.tolist() == [2, 2, 2, 2, 3]
    assert np.all(np.diff(sec) >= 0)


def test_locate_without_questions_places_nothing():
    guide = Guide.from_questions(GUIDE)
    assert guide.locate(["本院认为被告人构成盗窃罪。", "判处有期徒刑一年。"], ["", ""], ["d1", "d1"]).tolist() == [-1, -1]
    assert Guide([], [], np.zeros(0), np.zeros((0, 0))).locate(["x"], [Q]).tolist() == [-1]


def test_answers_alone_can_be_placed_with_answer_weight():
    guide = Guide.from_questions(["您平时用什么方式学习新技能？", "您每天在B站上花多长时间？", "您会给B站的视频发弹幕吗？"])
    answers = ["我一般通过看视频学习新技能。", "每天大概花两个小时在B站上。", "很少发弹幕，只看别人的弹幕。"]
    assert guide.locate(answers, [P] * 3).tolist() == [-1, -1, -1]
    assert guide.locate(answers, [P] * 3, answer_weight=1.0).tolist() == [0, 1, 2]


def test_no_guide_from_a_corpus_without_interviewers():
    guide = recover_guide(["本院认为。", "判处有期徒刑一年。"], ["", ""], ["d1", "d2"])
    assert len(guide) == 0


def test_guide_state_round_trip():
    guide = recover_guide(*turns())
    meta, arrays = guide.get_state()
    again = Guide.from_state(meta, arrays)
    texts, roles, groups = turns()
    assert again.labels == guide.labels
    assert np.array_equal(again.locate(texts, roles, groups), guide.locate(texts, roles, groups))


# -- reading a guide file --------------------------------------------------------------------------------------
def test_read_guide_strips_numbers_bullets_and_headings(tmp_path):
    p = tmp_path / "guide.md"
    p.write_text("# 访谈提纲\n\n1. 请先介绍一下您平时的工作内容。\n2、您是怎么开始使用这个软件的？\n"
                 "- 您觉得这个软件最大的问题是什么？\n第四题：如果可以改进，您希望增加什么功能？\n", encoding="utf-8")
    assert read_guide(p) == ["访谈提纲", *GUIDE]


def test_read_guide_from_an_outline_table(tmp_path):
    p = tmp_path / "outline.csv"
    p.write_text("序号,标题,问题\n1,工作,请先介绍一下您平时的工作内容。\n2,使用,您是怎么开始使用这个软件的？\n",
                 encoding="utf-8")
    assert read_guide(p) == GUIDE[:2]


def test_read_guide_errors_name_file_and_line(tmp_path):
    with pytest.raises(FormatError, match=r"missing\.txt: guide file not found"):
        read_guide(tmp_path / "missing.txt")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n1.\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"empty\.txt: no question found\. Write the guide's questions one per line"):
        read_guide(empty)
    long = tmp_path / "long.txt"
    long.write_text("第一个问题？\n" + "很长" * 300 + "\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"long\.txt, line 2: 600 characters, too long for one question"):
        read_guide(long)
    gbk = tmp_path / "gbk.txt"
    gbk.write_bytes("您平时做什么工作？".encode("gbk"))
    with pytest.raises(FormatError, match=r"gbk\.txt: not UTF-8 text .*Save the guide as UTF-8 text"):
        read_guide(gbk)
    table = tmp_path / "t.csv"
    table.write_text("序号,标题\n1,工作\n", encoding="utf-8")
    with pytest.raises(FormatError, match=r"t\.csv: no column 问题 or question \(found: 序号, 标题\)"):
        read_guide(table)


# -- the guide feature ---------------------------------------------------------------------------------------------
BOOK = Codebook([Code("use"), Code("work", parent="use"), Code("start", parent="use"), Code("problem", parent="use"),
                 Code("wish", parent="use")])
CODE_OF = {0: "work", 1: "start", 2: "problem", 3: "wish"}


def coded_corpus(n_copies: int = 3) -> CodedCorpus:
    guide = recover_guide(*turns())
    segs, codes = [], {}
    for k in range(n_copies):
        for d, ts in INTERVIEWS.items():
            texts, roles, _ = turns({d: ts})
            sec = guide.locate(texts, roles)
            for i, (role, text) in enumerate(ts):
                s = Segment(f"{d}{k}", str(i), text, speaker=role)
                segs.append(s)
                codes[s.key] = {CODE_OF[int(sec[i])]} if role == P else set()
    return CodedCorpus(segs, {"E": codes}, BOOK)


def test_guide_feature_fits_saves_and_loads(tmp_path):
    coded = coded_corpus()
    model = CodingModel(BOOK, backend_params={"guide_weight": 0.5}, n_splits=3, tune=False, min_examples=2)
    model.fit(coded)
    backend = model.backend_
    # recovered from the 9 training interviews: C's extra question, asked in 3 of them (>= 20%), is a section too
    assert len(backend.guide_) == 5 and "家人" in backend.guide_.labels[3]
    assert [t.split(". ", 1)[0] for t in backend.vocabularies_["guide"]] == ["1", "2", "3", "4", "5"]
    model.save(tmp_path / "m")
    again = CodingModel.load(tmp_path / "m")
    assert again.backend_.guide_.labels == backend.guide_.labels
    assert np.allclose(again.predict_proba(coded.segments), model.predict_proba(coded.segments))
    # the guide section is part of the evidence of every explained suggestion
    sug = again.suggest(coded.segments[:12], explain=True)
    assert sug.codes_for(1) == ["work"] and sug.codes_for(7) == ["problem"]  # answers of interview A
    # the recovered sections are named by their most typical question (here C's wording of the first one)
    for i, section in ((1, "1. 请您先介绍一下平时的工作内容。"), (7, "3. 您觉得这个软件最大的问题是什么？")):
        ev = sug.evidence[(i, sug.codes_for(i)[0])]
        assert ev.section == section and ev.to_dict()["section"] == section
        assert sug.evidence_text(i)[0].endswith(f" | guide: {section}")


def test_guide_given_as_questions_is_used_as_written():
    coded = coded_corpus()
    b = TfidfBackend(guide=GUIDE, guide_weight=1.0)
    b2 = clone(b)
    assert b2.get_params()["guide"] == GUIDE and not hasattr(b2, "guide_")
    b.fit(b.encode(make_inputs(coded.segments)), coded.labels(["work", "start", "problem", "wish"], "E"))
    assert b.guide_.labels == GUIDE
    assert b.vocabularies_["guide"] == [f"{i + 1}. {q}" for i, q in enumerate(GUIDE)]


def test_guide_feature_is_a_no_op_without_interviewer_turns():
    segs = [Segment(f"d{d}", str(i), t) for d in range(4) for i, t in enumerate(["本院认为被告人盗窃。", "判处有期徒刑一年。"])]
    Y = np.array([[True, False], [False, True]] * 4)
    b = TfidfBackend(guide_weight=1.0, min_df=1)
    b.fit(b.encode(make_inputs(segs)), Y)
    plain = TfidfBackend(min_df=1)
    plain.fit(plain.encode(make_inputs(segs)), Y)
    assert b.vocabularies_["guide"] == []
    assert np.allclose(b.decision_function(b.encode(make_inputs(segs))),
                       plain.decision_function(plain.encode(make_inputs(segs))))


def test_negative_guide_weight_is_refused():
    with pytest.raises(ValueError, match="guide_weight must be >= 0"):
        TfidfBackend(guide_weight=-1.0).fit(None, np.zeros((1, 1), bool))


# -- autocode train --guide ---------------------------------------------------------------------------------------
def test_cli_train_with_a_guide_file(tmp_path, capsys):
    from autocode import write_coded
    from autocode.cli import main

    BOOK.write_csv(tmp_path / "codebook.csv")
    write_coded(tmp_path / "coded.csv", coded_corpus())
    (tmp_path / "guide.txt").write_text("\n".join(f"{i + 1}. {q}" for i, q in enumerate(GUIDE)), encoding="utf-8")
    args = ["-q", "train", "--codebook", str(tmp_path / "codebook.csv"), "--data", str(tmp_path / "coded.csv"),
            "--folds", "3", "--no-tune", "--min-examples", "2", "--out", str(tmp_path / "model")]
    assert main([*args, "--guide", str(tmp_path / "guide.txt")]) == 0
    backend = CodingModel.load(tmp_path / "model").backend_
    assert backend.guide == GUIDE and backend.guide_.labels == GUIDE and backend.guide_weight == 0.3
    (tmp_path / "bad.txt").write_text("1. 第一个问题？\n" + "很长" * 300, encoding="utf-8")
    capsys.readouterr()
    assert main([*args, "--force", "--guide", str(tmp_path / "bad.txt")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.txt, line 2: 600 characters, too long for one question" in err[0]



@pytest.mark.parametrize(("study", "n"), [("bilibili", 24), ("jinchanchan", 17), ("myworld", 10)])
def test_read_guide_reads_the_real_outlines(shared_data, study, n):
    questions = read_guide(shared_data / "interviews-unlabeled" / f"{study}-outline.csv")  # 问题, Questions, 问题内容
    assert len(questions) == n and all(q.strip() == q and q for q in questions)


def test_scores_do_not_depend_on_batches_with_a_guide():
    coded = coded_corpus()
    model = CodingModel(BOOK, backend_params={"guide_weight": 1.0}, n_splits=3, tune=False, min_examples=2).fit(coded)
    segs = list(coded.segments)
    np.testing.assert_allclose(model.predict_proba(segs, batch_size=5), model.predict_proba(segs), atol=1e-12)
    assert model.predict_proba([]).shape == (0, len(model.codes_))


def test_models_saved_before_the_guide_load_without_it(tmp_path):
    """A format-3 model has no guide parameters: it loads with no guide feature and keeps its scores."""
    import json

    coded = coded_corpus()
    old = CodingModel(BOOK, backend_params={"guide_weight": 0.0}, n_splits=3, tune=False, min_examples=2).fit(coded)
    path = old.save(tmp_path / "old")
    doc = json.loads((path / "model.json").read_text("utf-8"))
    assert doc["format_version"] == 4
    del doc["backend_params"]["guide"], doc["backend_params"]["guide_weight"]
    doc["format_version"] = 3
    (path / "model.json").write_text(json.dumps(doc, ensure_ascii=False), "utf-8")
    from autocode.checksum import make_manifest

    (path / "checksums.json").write_text(make_manifest(path, ["model.json", "arrays.npz"]), "utf-8")
    loaded = CodingModel.load(path)
    assert loaded.backend_.guide_weight == 0.0 and loaded.backend_.guide_ is None
    np.testing.assert_array_equal(loaded.predict_proba(coded.segments), old.predict_proba(coded.segments))
    assert TfidfBackend().guide_weight == 0.3  # while new models place turns in a recovered guide
