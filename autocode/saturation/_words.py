"""Words no code accounts for: the lexical evidence of novelty.

A word is *accounted for* when the coders used it: it occurs in at least two coded training segments, or in a
code's name or description. A segment's *unexplained words* are its other content words (two characters or more,
not numbers), ranked by how much more often they occur in the new segments than in the training talk (their
keyness, a smoothed log ratio of document frequencies). A new concept shows up as unexplained words that recur in
the new interviews; a rare word said once is weak evidence, a word the training talk used often (uncoded small
talk included) none.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from ..text import ChineseTokenizer

MIN_CODED = 2
"""Coded training segments a word must occur in to count as accounted for by the codes."""
TOP_WORDS = 3
"""Unexplained words summed by the ``unexplained`` signal."""


def content_words(tokenizer: ChineseTokenizer, text: str) -> list[str]:
    """The distinct content words of ``text`` in order (two characters or more, not numbers), interned: the
    words of many segments share one string per word, so holding them costs a pointer per word.

    >>> content_words(ChineseTokenizer(), "B: 我们做了小程序，小程序很好用")
    ['我们', '程序']
    """
    return list(dict.fromkeys(sys.intern(w) for w in tokenizer.words(text) if len(w) >= 2 and not w.isdigit()))


class WordStats:
    """Document frequencies of words in training talk and the words the codes account for.

    Parameters
    ----------
    df : dict
        Word -> number of training segments (eligible ones) that contain it.
    n : int
        Number of those segments.
    explained : iterable of str
        Words accounted for by the codes.
    """

    def __init__(self, df: dict[str, int], n: int, explained: Iterable[str]):
        self.df, self.n, self.explained = df, int(n), frozenset(explained)

    @classmethod
    def from_segments(cls, words: Sequence[Sequence[str]], coded: np.ndarray, descriptions: Sequence[Sequence[str]]
                      ) -> WordStats:
        """From the content words of the training segments, which of them are coded, and the content words of
        the codes' names and descriptions."""
        df = Counter(w for ws in words for w in ws)
        in_coded = Counter(w for ws, c in zip(words, coded) if c for w in ws)
        explained = {w for w, k in in_coded.items() if k >= MIN_CODED} | {w for ws in descriptions for w in ws}
        return cls(dict(df), len(words), explained)

    def keyness(self, words: Sequence[Sequence[str]]) -> tuple[dict[str, float], Counter]:
        """Keyness of each unexplained word of the batch ``words`` (one list per segment): the log ratio of its
        smoothed share of batch segments to its share of training segments; and the batch document frequencies."""
        batch = Counter(w for ws in words for w in ws)
        return self.keyness_of(batch, len(words)), batch

    def keyness_of(self, batch: Counter, nb: int) -> dict[str, float]:
        """:meth:`keyness` from the batch's document frequencies ``batch`` (word -> segments of the batch that
        contain it) and its number of segments ``nb`` (a batch read a part at a time counts them as it goes)."""
        return {w: float(np.log((k + 0.5) / (nb + 1)) - np.log((self.df.get(w, 0) + 0.5) / (self.n + 1)))
                for w, k in batch.items() if w not in self.explained}


def unexplained_words(stats: WordStats, words: Sequence[Sequence[str]], n_evidence: int = 5
                ) -> tuple[np.ndarray, list[list[str]]]:
    """Per segment of a batch: the ``unexplained`` signal (the sum of the ``TOP_WORDS`` largest positive
    keyness values among its unexplained words that recur in another segment of the batch) and its evidence (up
    to ``n_evidence`` unexplained words with positive keyness, most distinctive first).

    >>> stats = WordStats({"我们": 9, "党员": 3}, 10, explained={"党员"})
    >>> score, evidence = unexplained_words(stats, [["我们", "程序"], ["程序", "平台"], ["党员"]])
    >>> score.round(2).tolist(), evidence
    ([2.62, 2.62, 0.0], [['程序'], ['程序', '平台'], []])
    """
    key, batch = stats.keyness(words)
    return unexplained_scores(key, batch, words, n_evidence)


def unexplained_scores(key: dict[str, float], batch: Counter, words: Sequence[Sequence[str]], n_evidence: int = 5
                       ) -> tuple[np.ndarray, list[list[str]]]:
    """:func:`unexplained_words` of some segments of a batch, given the keyness and document frequencies of the
    whole batch (:meth:`WordStats.keyness`): a batch scored a part at a time gets the values it gets whole."""
    score = np.zeros(len(words))
    evidence: list[list[str]] = []
    for i, ws in enumerate(words):
        ranked = sorted((w for w in ws if key.get(w, 0.0) > 0), key=lambda w: -key[w])
        evidence.append(ranked[:n_evidence])
        score[i] = sum(key[w] for w in [w for w in ranked if batch[w] >= 2][:TOP_WORDS])
    return score, evidence
