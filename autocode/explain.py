"""Why a code was suggested: the segment's words that pushed its score most, and the coded segments most like it.

Two kinds of evidence per (segment, code):

words
    For the linear TF-IDF backend (``tfidf.v1``), each n-gram's contribution to the code's score is its
    TF-IDF value x its weight in the code's classifier (:meth:`TfidfBackend.term_contributions`). Each
    contribution is spread over the characters the n-gram covers in the segment (a word bigram over both
    words, a character trigram over its three characters), the characters' shares are summed per jieba word,
    and the best words, adjacent ones joined into phrases, are the evidence. For every other backend the
    evidence is found by occlusion: each word is removed in turn and the drop of the code's raw score is its
    weight. Only the segment's own text is evidence; the preceding and following turns and the position in
    the document also move a score, and are not shown.
similar
    The coded training segments of that code (kept in the model folder, ``keep_examples`` per code) whose
    character uni- and bigrams are most like the segment's (cosine of TF-IDF vectors): a reviewer sees which
    of the coders' decisions the suggestion leans on.

:meth:`autocode.CodingModel.explain` and ``CodingModel.suggest(..., explain=True)`` call these functions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .backends.base import Backend, Inputs

__all__ = ["Evidence", "Example", "Word", "choose_examples", "example_index", "similar_examples", "word_evidence"]

QUOTE_CHARS = 40
"""Quotes of similar segments are cut to this many characters."""

MAX_OCCLUDED = 80
"""Occlusion tries at most this many words of a segment (the first ones)."""


@dataclass(frozen=True)
class Word:
    """A word or phrase of the segment and how much it raised the code's score; ``start``/``end`` index the
    segment's text (``None`` when normalising the text for the model changed its length)."""

    text: str
    weight: float
    start: int | None
    end: int | None


@dataclass(frozen=True)
class Example:
    """A coded training segment like the one explained."""

    document: str
    segment: str
    quote: str
    similarity: float


@dataclass(frozen=True)
class Evidence:
    """The evidence for one suggested code of one segment (``method``: ``"weights"`` or ``"occlusion"``;
    ``section``: the section of the interview guide the segment stands in, ``"3. question"``, when the model
    places turns in a guide)."""

    code: str
    words: tuple[Word, ...]
    similar: tuple[Example, ...]
    method: str
    section: str = ""

    def to_dict(self) -> dict:
        return {"code": self.code, "method": self.method,
                "words": [{"text": w.text, "weight": round(w.weight, 4)} for w in self.words],
                "similar": [{"document": e.document, "segment": e.segment, "quote": e.quote,
                             "similarity": round(e.similarity, 3)} for e in self.similar],
                **({"section": self.section} if self.section else {})}


# -- words --------------------------------------------------------------------------------------------------
def _token_spans(norm: str, tokens: Sequence[str]) -> list[tuple[int, int]]:
    """Where each token stands in ``norm`` (searched left to right; tokens not found are skipped)."""
    spans, cursor = [], 0
    for t in tokens:
        at = norm.find(t, cursor)
        if at < 0:
            continue
        spans.append((at, at + len(t)))
        cursor = at + len(t)
    return spans


def _char_scores(norm: str, spans: list[tuple[int, int]], contribs: dict[tuple[str, str], float]) -> np.ndarray:
    """Each term's contribution spread evenly over the characters it covers in ``norm``."""
    score = [0.0] * len(norm)  # a Python list: the terms are a few characters long, numpy slices cost more
    toks = [norm[a:b] for a, b in spans]
    at_ngram: dict[tuple[str, ...], list[int]] = {}  # word n-gram -> where it starts (built per n when needed)
    indexed: set[int] = set()
    for (block, term), c in contribs.items():
        if block == "words":
            parts = tuple(term.split(" "))
            n = len(parts)
            if n not in indexed:
                for i in range(len(toks) - n + 1):
                    at_ngram.setdefault(tuple(toks[i:i + n]), []).append(i)
                indexed.add(n)
            hits = [(spans[i][0], spans[i + n - 1][1]) for i in at_ngram.get(parts, ())]
        elif block == "chars":
            hits, at = [], norm.find(term)
            while at >= 0 and term:
                hits.append((at, at + len(term)))
                at = norm.find(term, at + 1)
        else:  # context, following, position: not the segment's own words
            continue
        if not hits:
            continue
        share = c / sum(b - a for a, b in hits)
        for a, b in hits:
            for x in range(a, b):
                score[x] += share
    return np.array(score)


def _phrases(text: str, norm: str, spans: list[tuple[int, int]], token_weight: np.ndarray, k: int,
             shift: int | None = 0) -> tuple[Word, ...]:
    """The ``k`` best tokens with a positive weight, adjacent ones joined into phrases, best first. ``shift``:
    where ``norm`` starts in ``text`` (a stripped speaker label), ``None`` when they do not line up."""
    if not spans:
        return ()
    order = np.argsort(-token_weight, kind="stable")
    chosen = sorted(int(i) for i in order[:k] if token_weight[i] > 0)
    out: list[Word] = []
    i = 0
    while i < len(chosen):
        j = i
        while j + 1 < len(chosen) and chosen[j + 1] == chosen[j] + 1 and spans[chosen[j + 1]][0] == spans[chosen[j]][1]:
            j += 1
        a, b = spans[chosen[i]][0], spans[chosen[j]][1]
        weight = float(token_weight[chosen[i]:chosen[j] + 1].sum())
        if shift is None:
            out.append(Word(norm[a:b], weight, None, None))
        else:
            out.append(Word(text[a + shift:b + shift], weight, a + shift, b + shift))
        i = j + 1
    return tuple(sorted(out, key=lambda w: -w.weight))


def _linear_words(backend, inputs: Inputs, pairs: list[tuple[int, int]], k: int) -> dict | None:
    from .text import SPEAKER_PREFIX

    tok = backend.tokenizer
    rows = sorted({i for i, _ in pairs})
    local = {r: n for n, r in enumerate(rows)}
    sub = Inputs([inputs.texts[r] for r in rows], [inputs.contexts[r] for r in rows],
                 [inputs.roles[r] for r in rows], None if inputs.groups is None else [inputs.groups[r] for r in rows],
                 inputs.relative_positions()[rows],
                 None if inputs.following is None else [inputs.following[r] for r in rows])
    encoded = backend.encode(sub)
    contribs: dict[tuple[int, int], dict] = {}  # (segment, code column) -> the terms' contributions
    for j in sorted({j for _, j in pairs}):
        wanted = [i for i, jj in pairs if jj == j]  # only the segments this code is explained for
        got = backend.term_contributions(encoded, j, [local[i] for i in wanted])
        if got is None:
            return None
        contribs.update(zip(((i, j) for i in wanted), got))
    out = {}
    prepared: dict[int, tuple[str, list]] = {}
    for i, j in pairs:
        if i not in prepared:
            text = inputs.texts[i]
            norm = tok.normalize(text)
            bare = SPEAKER_PREFIX.sub("", text, count=1) if tok.strip_speaker else text
            shift = len(text) - len(bare) if len(bare) == len(norm) else None
            prepared[i] = (norm, _token_spans(norm, tok.words(norm, normalized=True)), shift)
        norm, spans, shift = prepared[i]
        chars = _char_scores(norm, spans, contribs[(i, j)])
        weights = np.array([chars[a:b].sum() for a, b in spans])
        out[(i, j)] = _phrases(inputs.texts[i], norm, spans, weights, k, shift)
    return out


def _occlusion_words(backend: Backend, inputs: Inputs, pairs: list[tuple[int, int]], k: int) -> dict:
    from .text import ChineseTokenizer

    tok = ChineseTokenizer(script="none")
    positions = inputs.relative_positions()
    variants, owner = [], []
    spans_of: dict[int, list[tuple[int, int]]] = {}
    for i in sorted({i for i, _ in pairs}):
        text = inputs.texts[i]
        spans = _token_spans(text, tok.words(text, normalized=True))[:MAX_OCCLUDED]
        spans_of[i] = spans
        for a, b in [(0, 0), *spans]:  # the first variant is the text itself
            variants.append(text[:a] + text[b:])
            owner.append(i)
    idx = np.array(owner)

    def pick(seq):
        return None if seq is None else [seq[i] for i in idx]

    occluded = Inputs(variants, pick(inputs.contexts), pick(inputs.roles), pick(inputs.groups), positions[idx],
                      pick(inputs.following))
    scores = backend.decision_function(backend.encode(occluded))
    first = {}
    for n, i in enumerate(owner):
        first.setdefault(i, n)
    out = {}
    for i, j in pairs:
        n0, spans = first[i], spans_of[i]
        drops = scores[n0, j] - scores[n0 + 1:n0 + 1 + len(spans), j]
        out[(i, j)] = _phrases(inputs.texts[i], inputs.texts[i], spans, np.asarray(drops, dtype=float), k)
    return out


def word_evidence(backend: Backend, inputs: Inputs, pairs: Sequence[tuple[int, int]], k: int = 5
                  ) -> tuple[dict[tuple[int, int], tuple[Word, ...]], str]:
    """The words of segment ``i`` (a row of ``inputs``) that raised the score of code column ``j`` most,
    for each ``(i, j)`` of ``pairs``; and the method used (``"weights"`` or ``"occlusion"``)."""
    pairs = list(pairs)
    if not pairs:
        return {}, "weights"
    if hasattr(backend, "term_contributions"):
        got = _linear_words(backend, inputs, pairs, k)
        if got is not None:
            return got, "weights"
    return _occlusion_words(backend, inputs, pairs, k), "occlusion"


# -- similar coded segments -----------------------------------------------------------------------------------
def example_index(examples: dict):
    """What :func:`similar_examples` compares segments with, built once for many calls (a stream of batches):
    the vectoriser fitted on the kept training segments and their vectors; ``None`` when none are kept."""
    segs = examples.get("segments") or []
    if not segs:
        return None
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    return vec, vec.fit_transform([s[2] for s in segs])


def similar_examples(examples: dict, texts: Sequence[str], pairs: Sequence[tuple[int, str]], n: int = 2,
                     index=None) -> dict[tuple[int, str], tuple[Example, ...]]:
    """For each ``(i, code)``: the ``n`` kept training segments of ``code`` most like ``texts[i]``.

    ``examples`` is a model's ``examples_``: ``{"segments": [[document, segment, text], ...], "codes":
    {code: [index, ...]}}`` (empty for models saved before autocode kept them: no similar segments).
    ``index``: :func:`example_index` of ``examples``, when the caller keeps it (built here otherwise).
    """
    segs = examples.get("segments") or []
    by_code = examples.get("codes") or {}
    if not segs or n <= 0 or not pairs:
        return {pair: () for pair in pairs}
    vec, E = index if index is not None else example_index(examples)
    rows = sorted({i for i, _ in pairs})
    Q = vec.transform([texts[i] for i in rows])
    local = {r: m for m, r in enumerate(rows)}
    asked: dict[str, list[int]] = {}  # code -> the segments it is explained for
    for i, code in pairs:
        asked.setdefault(code, []).append(i)
    out = {}
    for code, seg_rows in asked.items():  # one product per code, not per segment
        idx = np.asarray(by_code.get(code, []), dtype=int)
        if idx.size == 0:
            out.update({(i, code): () for i in seg_rows})
            continue
        sims_all = (Q[[local[i] for i in seg_rows]] @ E[idx].T).toarray()
        for i, sims in zip(seg_rows, sims_all):
            best = np.argsort(-sims, kind="stable")[:n]
            found = []
            for b in best:
                doc, seg, text = segs[idx[b]]
                quote = text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "…"
                found.append(Example(doc, seg, quote, float(sims[b])))
            out[(i, code)] = tuple(found)
    return out


def choose_examples(keys: Sequence[tuple[str, str]], texts: Sequence[str], Y: np.ndarray, codes: Sequence[str],
                    per_code: int) -> dict:
    """What a model keeps for :func:`similar_examples`: up to ``per_code`` positive segments of each code
    (evenly spread over the training data), each segment's text stored once."""
    if per_code <= 0:
        return {"segments": [], "codes": {}}
    kept: dict[int, int] = {}
    segments: list[list[str]] = []
    out: dict[str, list[int]] = {}
    for j, code in enumerate(codes):
        pos = np.flatnonzero(Y[:, j])
        if pos.size > per_code:
            pos = pos[np.linspace(0, pos.size - 1, per_code).round().astype(int)]
        for r in pos.tolist():
            if r not in kept:
                kept[r] = len(segments)
                segments.append([keys[r][0], keys[r][1], texts[r]])
        out[code] = [kept[r] for r in pos.tolist()]
    return {"segments": segments, "codes": out}
