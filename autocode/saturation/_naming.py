"""Names for candidate codes: the whole words and short noun phrases that set a group of segments apart from the
other segments, found with jieba's part-of-speech tagger (never character n-grams or pieces of words)."""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from ..text import SPEAKER_PREFIX, ChineseTokenizer, jieba_tokenizer

# jieba's part-of-speech tags (ICTCLAS): nouns (n, nr, ns, nt, nz, ...), verbal and adjectival nouns (vn, an),
# distinguishing words (b: 孪生, 智能), abbreviations (j), idioms (i), fixed phrases (l), place words (s), Latin
# words (eng). A term ends with one of these: Chinese phrases are head-final, so a phrase ending in a verb or an
# adverb is a piece of a clause (手机上能, 小区装), not a name.
_HEADS = ("n", "vn", "an", "b", "j", "i", "l", "s", "eng")
# What may precede the head inside a phrase: the heads, verbs (诈骗短信) and adjectives (小程序).
_MODIFIERS = _HEADS + ("v", "a")

_lock = threading.Lock()
_tagger = None


def _get_tagger():
    global _tagger
    if _tagger is None:
        with _lock:
            if _tagger is None:
                import jieba.posseg

                _tagger = jieba.posseg.POSTokenizer(jieba_tokenizer())
    return _tagger


def _is(flag: str, kinds: Sequence[str]) -> bool:
    return any(flag == k or (k == "n" and flag.startswith("n")) for k in kinds)


def terms_of(text: str) -> set[tuple[str, ...]]:
    """The naming terms of a (normalised) text, each as its tuple of words: single words of at least two
    characters tagged as a noun-like word, a verb or an adjective of jieba's dictionary, and phrases of two or three adjacent words
    (no punctuation or function word between them) that end in a noun-like word.

    >>> sorted("".join(t) for t in terms_of("平台上有“数字孪生”地图，手机上能收到提醒"))
    ['地图', '孪生', '平台', '手机', '提醒', '收到', '数字', '数字孪生']
    >>> ("数字", "孪生") in terms_of("平台上有“数字孪生”地图")
    True
    """
    out: set[tuple[str, ...]] = set()
    run: list[tuple[str, str]] = []

    tagger = _get_tagger()
    known = tagger.tokenizer.FREQ

    def flush():
        for i, (w, f) in enumerate(run):
            # (verbs and adjectives in the run are dictionary words: jieba's HMM glues pieces of two words into an
            # unknown "verb", 手机上能 -> 手机 / 上能; unknown nouns are usually names, 南苑)
            if len(w) >= 2 and not w.isdigit():
                out.add((w,))
            for n in (2, 3):
                if i + n > len(run):
                    continue
                words = run[i : i + n]
                head = words[-1]
                # one-character words only as a leading adjective or distinguishing word (小程序, 新小区): a verb of
                # one character between two nouns joins two phrases (电动车进电梯)
                if (_is(head[1], _HEADS) and len(head[0]) >= 2
                        and all(len(w) >= 2 or (j == 0 and f in ("a", "b")) for j, (w, f) in enumerate(words))
                        and sum(len(w) for w, _ in words) <= 8):
                    out.add(tuple(w for w, _ in words))
        run.clear()

    for pair in tagger.lcut(text):
        w, f = pair.word, pair.flag
        guessed = f[0] in "va" and not known.get(w)  # a verb or adjective jieba's HMM made up breaks a phrase
        if _is(f, _MODIFIERS) and any(ch.isalnum() for ch in w) and not guessed:
            run.append((w, f))
        else:
            flush()
    flush()
    return out


def _general_idf(terms: set[str]) -> dict[str, float]:
    """IDF of ``terms`` in jieba's general-language table (``jieba/analyse/idf.txt``), divided by its median, so
    that words common in any Chinese text (知道, 就是) rank low; ``""`` holds the value for unknown words (the
    median, as jieba.analyse does). All 1.0 when the table is not there."""
    import jieba
    import numpy as np

    path = Path(jieba.__file__).parent / "analyse" / "idf.txt"
    if not path.exists():
        return {"": 1.0}
    found, values = {}, []
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, _, idf = line.rstrip("\n").partition(" ")
            try:
                v = float(idf)
            except ValueError:
                continue
            values.append(v)
            if word in terms:
                found[word] = v
    median = float(np.median(values)) if values else 1.0
    out = {t: v / median for t, v in found.items()}
    out[""] = 1.0
    return out


def key_phrases(groups: list[list[str]], background: list[str], tokenizer: ChineseTokenizer,
                k: int = 5, background_weight: float = 1.0) -> list[list[tuple[str, float]]]:
    """The ``k`` most distinctive terms (:func:`terms_of`) of each group of texts, with their weights.

    A term's weight in a group is the share of the group's texts that contain it (a name says what the members
    share), times its IDF over the texts outside the group (the other groups and ``background``, the other
    segments of the same interviews: terms common there rank low), times its IDF in jieba's
    general-language table relative to the median (for a phrase, that of its rarest word: words common in any
    Chinese text rank low). ``background_weight``: how many segments each background text stands for (a
    sample of a larger background). The best term comes first, then the best terms of members that no term chosen so
    far covers, then the rest by weight. Terms are returned as the speakers wrote them
    (Traditional characters stay Traditional); a term inside or around one already chosen is skipped, so a
    phrase and its words are not both listed.

    >>> groups = [["小程序可以预约办证", "这个小程序老人不会用"], ["合唱队每周排练", "合唱队去区里比赛"]]
    >>> [[t for t, _ in g][:1] for g in key_phrases(groups, ["社区开会商量事情", "物业管理小区"],
    ...                                               ChineseTokenizer())]
    [['小程序'], ['合唱队']]
    """
    def terms(text):
        body = SPEAKER_PREFIX.sub("", text, count=1) if tokenizer.strip_speaker else text
        return terms_of(tokenizer.normalize(body))

    group_terms = [[terms(t) for t in g] for g in groups]
    df: Counter = Counter()
    n_texts = 0
    for ts in (ts for texts in group_terms for ts in texts):
        df.update(ts)
        n_texts += 1
    for t in background:  # (the background's terms are counted, not kept)
        ts = terms(t)
        if background_weight == 1:
            df.update(ts)
        else:
            for term in ts:
                df[term] += background_weight
        n_texts += background_weight
    general = _general_idf({w for t in df for w in t})
    out = []
    for texts, raw in zip(group_terms, groups):
        share = Counter()
        for ts in texts:
            share.update(ts)
        n = len(texts) or 1
        n_out = n_texts - len(texts)
        weight, alone = {}, {}
        for t, m in share.items():
            g = max(general.get(w, general[""]) for w in t)
            alone[t] = math.log((2 + n_out) / (1 + df[t] - m)) * g  # rare outside the group
            weight[t] = (m / n) * alone[t]
        order = sorted(weight, key=lambda t: (-round(weight[t], 9), -round(alone[t], 9), -len("".join(t)), t))
        holders = {t: {j for j, ts in enumerate(texts) if t in ts} for t in order}
        chosen: list[tuple[str, float]] = []
        covered: set[int] = set()
        for first_pass in (True, False):  # first, terms of members no chosen term covers yet
            for t in order:
                s = "".join(t)
                if len(chosen) == k or any(s in c or c in s for c, _ in chosen):
                    continue
                if first_pass and holders[t] <= covered:
                    continue
                chosen.append((s, weight[t]))
                covered |= holders[t]
        out.append([(_as_written(s, raw, tokenizer), w) for s, w in chosen])
    return out


def _as_written(term: str, texts: list[str], tokenizer: ChineseTokenizer) -> str:
    """The term as the speakers wrote it (e.g. Traditional characters): terms are found in normalised text,
    which has the same length as the original for OpenCC's character conversion."""
    for t in texts:
        body = SPEAKER_PREFIX.sub("", t, count=1) if tokenizer.strip_speaker else t
        norm = tokenizer.normalize(body)
        k = norm.find(term)
        if k >= 0 and len(norm) == len(body):
            return body[k : k + len(term)]
    return term


def unexplained_terms(texts: Sequence[str], known: Sequence[str], tokenizer: ChineseTokenizer,
                      k: int = 5) -> list[list[str]]:
    """Per text, up to ``k`` of its words and phrases (:func:`terms_of`) that occur in none of the ``known``
    texts (the coded examples the model keeps and the codes' names and descriptions): the words no code
    accounts for, rarest in general Chinese first.

    >>> unexplained_terms(["党支部开通了小程序"], ["社区党支部带领大家", "党员志愿者"], ChineseTokenizer())
    [['开通', '小程序']]
    """
    seen = "\n".join(tokenizer.normalize(t) for t in known)
    per = [{"".join(t): t for t in terms_of(tokenizer.normalize(x))} for x in texts]
    general = _general_idf({w for ts in per for t in ts.values() for w in t})
    out = []
    for x, ts in zip(texts, per):
        new = [t for t in sorted(ts) if t not in seen]
        new = [t for t in new if not any(t != o and t in o for o in new)]  # the phrase, not also its words
        rarity = {t: max(general.get(w, general[""]) for w in ts[t]) for t in new}  # a phrase: its rarest word
        new.sort(key=lambda t: (-rarity[t], t))
        out.append([_as_written(t, [x], tokenizer) for t in new[:k]])
    return out
