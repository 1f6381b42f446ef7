"""Chinese text handling: normalisation (NFKC, Traditional -> Simplified) and the picklable jieba tokenizer."""

from __future__ import annotations

import pickle

import pytest

from autocode.text import ChineseTokenizer, normalize


def test_normalize_full_width_case_and_script():
    assert normalize("ＡＢＣ１２３ 後來的議事會") == "abc123 后来的议事会"
    assert normalize("後來", script="none") == "後來"


def test_normalize_keeps_simplified_and_astral_characters():
    text = "社区党支部带领居民𠮷"
    assert normalize(text) == text


def test_normalize_keeps_length_for_ordinary_text():
    trad = "黨支部帶領居民開展志願服務，議事會讓居民說出自己的意見。"
    assert len(normalize(trad)) == len(trad)


def test_normalize_bad_script():
    with pytest.raises(ValueError, match=r"script must be 'simplified' or 'none', got 'traditional'"):
        normalize("社区", script="traditional")


@pytest.mark.parametrize("engine", ["auto", "jieba"])
def test_words_of_traditional_and_simplified_agree(engine):
    tok = ChineseTokenizer(engine=engine)
    assert tok.words("我們社區有黨支部") == tok.words("我们社区有党支部") == ["我们", "社区", "有", "党支部"]


def test_words_drop_punctuation_and_speaker_label():
    tok = ChineseTokenizer()
    assert tok.words("受訪者：社區，很好！") == ["社区", "很", "好"]
    assert ChineseTokenizer(strip_speaker=False).words("受访者：社区")[0] == "受访者"
    assert tok.words("，。！ ") == []


def test_unknown_engine():
    with pytest.raises(ValueError, match=r"engine must be 'rjieba' or 'jieba', got 'thulac'"):
        ChineseTokenizer(engine="thulac").words("社区")


def test_tokenizer_pickles_settings_only():
    tok = ChineseTokenizer(script="none", hmm=False, engine="jieba")
    tok.words("先用一次")  # builds the (unpicklable) jieba tokenizer
    data = pickle.dumps(tok)
    assert b"Tokenizer" not in data.replace(b"ChineseTokenizer", b"")  # no jieba object inside
    again = pickle.loads(data)
    assert again.get_params() == {"script": "none", "hmm": False, "strip_speaker": True, "engine": "jieba"}
    assert again.words("議事會") == tok.words("議事會")
    assert repr(again).startswith("ChineseTokenizer(script='none', hmm=False")
