"""A tiny randomly initialised BERT and a character tokenizer, built in a folder: nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def char_tokenizer(chars):
    """A BERT-style WordPiece tokenizer whose vocabulary is ``SPECIAL + chars`` (one token per CJK character),
    built with ``tokenizers`` so that it behaves the same under transformers 4 and 5."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(SPECIAL + list(chars))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False, handle_chinese_chars=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.decoder = decoders.WordPiece()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")


def make_tiny_bert(folder: Path, texts, *, hidden: int = 32, layers: int = 2, heads: int = 2, seed: int = 0) -> Path:
    """Save a BERT (``hidden`` x ``layers``) and a WordPiece tokenizer over the characters of ``texts``."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for t in texts for c in t if not c.isspace()})
    tok = char_tokenizer(chars)
    tok.save_pretrained(str(folder))
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(SPECIAL) + len(chars), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden, max_position_embeddings=128,
                        pad_token_id=0)
    hf_logging.disable_progress_bar()
    try:
        BertModel(config).save_pretrained(str(folder))
    finally:
        hf_logging.enable_progress_bar()
    return folder
