"""The vectorised character-level tokenizer gives the reference tokenizer's ids, token for token."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from _tiny_bert import char_tokenizer as make_char_tokenizer  # noqa: E402

from autocode.backends.transformer._chars import CharTokenizer, char_tokenizer  # noqa: E402
from autocode.backends.transformer.inference import tokenize  # noqa: E402

VOCAB = list("社区党支部居民议事会每月讨论小的情网格员上门为老人提供服务，。！？、（）《》:;!?,.")
TEXTS = [
    "社区党支部", "居民议事会每月讨论小区的事情。", "", "   ", "老人\t\n服务", "网格员上门，为老人提供服务！",
    "未见过的字", "党员说：“好”", "2019年居民", "abc社区", "社区ABC", "Ｆｕｌｌ全角", "社\u200b区", "社\x00区\x07",
    "e\u0301社区", "社\u0301区", "兀丽", "😀社区", "《社区》（党）、；", "党" * 40, "社 区 党 支 部", "\u3000社区\u3000",
    "İstanbul社区", "ß社区", "社区\r\n", "A：社区2019年12月3日，B：好的ok", "社\x00\x00区", "党abc", "abc", "12,345.6元",
]


def _tokenizer(lowercase: bool):
    from tokenizers import normalizers

    tok = make_char_tokenizer(VOCAB)
    tok.backend_tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase, handle_chinese_chars=True,
                                                                 clean_text=True, strip_accents=None)
    return tok


@pytest.mark.parametrize("lowercase", [False, True])
@pytest.mark.parametrize("max_length", [8, 512])
def test_same_ids_as_the_reference_tokenizer(lowercase, max_length):
    tok = _tokenizer(lowercase)
    fast = CharTokenizer.from_tokenizer(tok)
    assert fast is not None
    texts = TEXTS * 3
    got = fast.encode(texts, max_length)
    ref = tokenize(tok, texts, max_length=max_length, chars=False)
    assert got.offsets.tolist() == ref.offsets.tolist()
    assert got.ids.tolist() == ref.ids.tolist()
    # through tokenize(), in chunks, the default
    again = tokenize(tok, texts, max_length=max_length, chunk_size=7)
    assert again.ids.tolist() == ref.ids.tolist() and again.offsets.tolist() == ref.offsets.tolist()


def test_characters_are_classified_by_the_tokenizer_itself():
    tok = _tokenizer(False)
    fast = CharTokenizer.from_tokenizer(tok)
    unk = tok.convert_tokens_to_ids("[UNK]")
    assert fast.classify(ord("党")) == (1, tok.convert_tokens_to_ids("党"))
    assert fast.classify(ord("字")) == (1, unk)  # a CJK character missing from the vocabulary
    assert fast.classify(ord("，"))[0] == 1 and fast.classify(ord("「")) == (1, unk)  # punctuation
    assert fast.classify(ord(" "))[0] == 2 and fast.classify(ord("\u3000"))[0] == 2  # whitespace: dropped
    assert fast.classify(0)[0] == 3  # removed, so it joins its neighbours ("a\0a" is one word): the reference
    assert fast.classify(ord("a"))[0] == 3 and fast.classify(ord("1"))[0] == 3  # word pieces: the reference
    assert fast.classify(ord("～"))[0] == 3  # a symbol, not punctuation: joins its neighbours
    assert len(fast.encode([], 512)) == 0 and fast.encode(["", ""], 512).ids.tolist() == [2, 3, 2, 3]
    tokens = fast.encode(["党员字", "ab"], 512)
    assert [tokens.row(i).tolist() for i in range(2)] == [
        [tok.cls_token_id, tok.convert_tokens_to_ids("党"), tok.convert_tokens_to_ids("员"), unk, tok.sep_token_id],
        tok("ab")["input_ids"]]


def test_other_tokenizers_keep_the_reference_path():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = make_char_tokenizer(VOCAB)
    assert char_tokenizer(tok) is char_tokenizer(tok)  # made once per tokenizer
    tok.backend_tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    assert CharTokenizer.from_tokenizer(tok) is None
    plain = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]")),
                                    unk_token="[UNK]")
    assert CharTokenizer.from_tokenizer(plain) is None
    added = make_char_tokenizer(VOCAB)
    added.add_tokens(["党支部"])  # matched in the raw text, before splitting into characters
    assert CharTokenizer.from_tokenizer(added) is None
    got = tokenize(added, ["社区党支部"])
    assert got.row(0).tolist() == added("社区党支部")["input_ids"]


def test_pairs_use_the_reference_tokenizer():
    tok = _tokenizer(False)
    got = tokenize(tok, ["社区", "党员"], ["居民", "老人"])
    enc = tok(["社区", "党员"], ["居民", "老人"], return_token_type_ids=True)
    assert [got.row(i).tolist() for i in range(2)] == enc["input_ids"]
    assert np.array_equal(got.type_ids, np.concatenate(enc["token_type_ids"]))


def test_scores_end_to_end_are_unchanged(tmp_path):
    """Pre-scoring from text with the table path gives bit for bit the scores of the reference tokenizer."""
    torch = pytest.importorskip("torch")
    from _tiny_bert import make_tiny_bert
    from transformers import AutoModel, AutoTokenizer

    from autocode.backends.transformer.inference import build_scorer, score, score_texts

    folder = make_tiny_bert(tmp_path / "m", VOCAB)
    tok = AutoTokenizer.from_pretrained(folder)
    assert char_tokenizer(tok) is not None
    torch.manual_seed(0)
    scorer = build_scorer(AutoModel.from_pretrained(folder), torch.nn.Linear(32, 2))
    texts = TEXTS * 2
    got = score_texts(scorer, tok, texts, device="cpu", max_length=64, chunk_size=16, max_tokens=256)
    ref = np.concatenate([score(scorer, tokenize(tok, texts[i : i + 16], max_length=64, chars=False), device="cpu",
                                max_tokens=256) for i in range(0, len(texts), 16)])
    np.testing.assert_array_equal(got, ref)
