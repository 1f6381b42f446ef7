"""A vectorised tokenizer for character-level Chinese vocabularies: the same ids as the reference tokenizer,
without a Python object per token.

BERT-style WordPiece tokenizers for Chinese (bert-base-chinese, RBT3, chinese-roberta-wwm-ext: a ``vocab.txt``
whose CJK characters are single tokens) split every CJK character and every punctuation mark into a word of
its own, and drop whitespace. A text made only of such characters is therefore tokenised one character at a
time, whatever surrounds each one: this module looks every character up in a table (numpy, over the UTF-32
code points of a whole chunk of texts at once) and adds ``[CLS]`` and ``[SEP]``. Texts with any other character
(Latin letters, digits: word pieces depend on their neighbours) come in runs between characters that split
words, so each distinct run is tokenised once by the reference tokenizer and its ids are spliced in place.

The table is not written by hand: each character is classified the first time it is seen, by asking the
tokenizer's own normaliser, pre-tokeniser and model (``CharTokenizer.classify``), so lowercasing, accent
stripping, control characters and characters missing from the vocabulary (``[UNK]``) come out as the reference
tokenizer has them. Only tokenizers whose pipeline is BERT's (``BertNormalizer``, ``BertPreTokenizer``,
``WordPiece``, ``[CLS] $A [SEP]``) qualify (:meth:`CharTokenizer.from_tokenizer` returns ``None`` otherwise);
``benchmarks/throughput.py --check-chars`` compares the two token for token on every corpus in ../shared/data.
"""

from __future__ import annotations

import json
import threading
import weakref

import numpy as np

__all__ = ["CharTokenizer", "char_tokenizer"]

_UNSEEN, _TOKEN, _DROP, _OTHER = 0, 1, 2, 3
_N_CODE_POINTS = 0x110000


class CharTokenizer:
    """Token ids of texts for a BERT-style character-level tokenizer; see the module's docstring."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        backend = tokenizer.backend_tokenizer
        self._normalize = backend.normalizer.normalize_str
        self._pre = backend.pre_tokenizer.pre_tokenize_str
        empty = tokenizer("", add_special_tokens=True)["input_ids"]
        self.cls_id, self.sep_id = int(empty[0]), int(empty[1])
        self._kind = np.zeros(_N_CODE_POINTS, dtype=np.int8)
        self._ids = np.zeros(_N_CODE_POINTS, dtype=np.int32)
        self._lock = threading.Lock()
        self._runs: dict[str, np.ndarray] = {}

    @classmethod
    def from_tokenizer(cls, tokenizer) -> CharTokenizer | None:
        """A ``CharTokenizer`` for ``tokenizer`` when its pipeline is BERT's, else ``None``."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is None or not getattr(tokenizer, "is_fast", False):
            return None
        try:
            spec = json.loads(backend.to_str())
        except (ValueError, TypeError):
            return None
        post = spec.get("post_processor") or {}
        single = [next(iter(x)) for x in post.get("single", [])] if post.get("type") == "TemplateProcessing" else []
        bert_post = post.get("type") == "BertProcessing" or single == ["SpecialToken", "Sequence", "SpecialToken"]
        ok = ((spec.get("model") or {}).get("type") == "WordPiece"
              and (spec.get("normalizer") or {}).get("type") == "BertNormalizer"
              and (spec.get("pre_tokenizer") or {}).get("type") == "BertPreTokenizer"
              and bert_post
              # an added token is matched in the raw text before anything else: only ones with a Latin letter
              # (such as [MASK]), which send a text to the reference tokenizer anyway
              and all(any(ch.isascii() and ch.isalpha() for ch in t.get("content", ""))
                      for t in spec.get("added_tokens") or [])
              and getattr(tokenizer, "truncation_side", "right") == "right")
        if not ok or len(tokenizer("")["input_ids"]) != 2:
            return None
        return cls(tokenizer)

    def classify(self, cp: int) -> tuple[int, int]:
        """(kind, id) of one code point: a token of its own in every context, dropped, or anything else."""
        return self._classify([cp])[0]

    def _classify(self, cps: list[int]) -> list[tuple[int, int]]:
        out: list[tuple[int, int] | None] = []
        single = []  # characters that stand alone in every context: their ids in one batched call
        for cp in cps:
            c = chr(cp)
            norm = self._normalize(c).strip()
            pieces = [p for p, _ in self._pre(self._normalize("a" + c + "a"))]
            if norm == "":
                out.append((_DROP, 0) if pieces == ["a", "a"] else (_OTHER, 0))
            elif norm != c or pieces != ["a", c, "a"]:
                out.append((_OTHER, 0))
            else:
                out.append(None)
                single.append(len(out) - 1)
        if single:
            enc = self.tokenizer([chr(cps[i]) for i in single], return_attention_mask=False,
                                 return_token_type_ids=False)["input_ids"]
            for i, ids in zip(single, enc):
                out[i] = (_TOKEN, int(ids[1])) if len(ids) == 3 else (_OTHER, 0)
        return out

    def _learn(self, cps: np.ndarray) -> None:
        new = np.unique(cps)
        new = new[self._kind[new] == _UNSEEN]
        if len(new):
            with self._lock:
                for cp, (kind, token) in zip(new.tolist(), self._classify(new.tolist())):
                    self._ids[cp] = token
                    self._kind[cp] = kind  # after the id: another thread reads the id once the kind is set

    def _run_ids(self, runs: list[str]) -> list[np.ndarray]:
        """Token ids (no specials) of runs of other characters, through the reference tokenizer, cached."""
        cache = self._runs
        found = {r: cache.get(r) for r in dict.fromkeys(runs)}
        new = [r for r, ids in found.items() if ids is None]
        if new:
            enc = self.tokenizer(new, add_special_tokens=False, return_attention_mask=False,
                                 return_token_type_ids=False)["input_ids"]
            if len(cache) > 1_000_000:  # a bounded cache
                self._runs = cache = {}
            for r, ids in zip(new, enc):
                found[r] = cache[r] = np.asarray(ids, dtype=np.int32)
        return [found[r] for r in runs]

    def encode(self, texts: list[str], max_length: int = 512):
        """Flat ids and offsets of ``texts`` (``[CLS]`` text ``[SEP]``, truncated on the right to
        ``max_length``), as the reference tokenizer gives them with ``truncation=True``.

        Characters that stand alone are looked up in the table; each maximal run of other characters (a Latin
        word, a number) lies between characters that split words, so it is tokenised on its own by the
        reference tokenizer (once per distinct run) and its ids are put in its place.
        """
        from ._batching import TokenizedTexts, _ragged_index

        n = len(texts)
        lens = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        joined = "".join(texts)
        cps = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32)
        self._learn(cps)
        kind = self._kind[cps]
        owner = np.repeat(np.arange(n), lens)
        other = kind == _OTHER
        first = np.zeros(len(cps), dtype=bool)
        first[(np.cumsum(lens) - lens)[lens > 0]] = True
        run_start = other & (first | ~np.r_[False, other[:-1]])
        starts = np.flatnonzero(run_start)
        run_len = np.bincount(np.cumsum(run_start)[other] - 1, minlength=len(starts))
        run_ids = self._run_ids([joined[a : a + b] for a, b in zip(starts.tolist(), run_len.tolist())])
        run_ntok = np.fromiter(map(len, run_ids), dtype=np.int64, count=len(run_ids))
        single = np.flatnonzero(kind == _TOKEN)
        # units in text order: a table character (one token) or a run (its tokens)
        unit_pos = np.concatenate([single, starts])
        unit_count = np.concatenate([np.ones(len(single), dtype=np.int64), run_ntok])
        source = np.concatenate([self._ids[cps[single]], *run_ids]).astype(np.int32)
        run_src = len(single) + np.cumsum(run_ntok) - run_ntok
        unit_src = np.concatenate([np.arange(len(single)), run_src])
        order = np.argsort(unit_pos, kind="stable")
        unit_count = unit_count[order]
        total = int(unit_count.sum())
        tok_ids = source[_ragged_index(unit_src[order], unit_count, total)]
        tok_owner = np.repeat(owner[unit_pos[order]], unit_count)
        counts = np.bincount(tok_owner, minlength=n)
        first_tok = np.cumsum(counts) - counts
        pos = np.arange(total) - first_tok[tok_owner]
        body = max(max_length - 2, 0)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.minimum(counts, body) + 2, out=offsets[1:])
        ids = np.empty(int(offsets[-1]), dtype=np.int32)
        ids[offsets[:-1]] = self.cls_id
        ids[offsets[1:] - 1] = self.sep_id
        keep = pos < body
        ids[offsets[tok_owner[keep]] + 1 + pos[keep]] = tok_ids[keep]
        return TokenizedTexts(ids, offsets)


_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_none = object()


def char_tokenizer(tokenizer) -> CharTokenizer | None:
    """The :class:`CharTokenizer` of ``tokenizer`` (made once per tokenizer object), or ``None``."""
    try:
        got = _cache.get(tokenizer)
    except TypeError:  # not weak-referenceable: no cache
        return CharTokenizer.from_tokenizer(tokenizer)
    if got is None:
        got = CharTokenizer.from_tokenizer(tokenizer) or _none
        _cache[tokenizer] = got
    return None if got is _none else got
