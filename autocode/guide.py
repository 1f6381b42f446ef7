"""The interview guide: its sections in order, recovered from interviews or read from the researcher's file,
and where every turn of an interview stands in it.

A semi-structured interview follows a guide: the interviewer asks roughly the same questions in roughly the
same order in every interview, and what an answer is about follows the question it answers. A
:class:`Guide` is a sequence of sections, each represented by the character n-gram TF-IDF vector of its
question(s).

* :func:`recover_guide` aligns the interviewers' questions across interviews (similar questions, same order)
  by progressive alignment: each interview's question sequence is aligned to the growing guide with a
  monotone alignment (a question joins the section it matches, or opens a new section where it stands); the
  sections asked in too few interviews are dropped, and a second pass re-aligns every interview to the
  pruned guide to fix the sections' vectors.
* :func:`read_guide` reads the questions as the researcher wrote them (one per line, numbered or not; ``.txt``,
  ``.md``, ``.docx`` or a table with a ``问题``/``question`` column); :meth:`Guide.from_questions` makes a
  guide of them.
* :meth:`Guide.locate` places every turn of an interview: a monotone alignment (dynamic programming) of the
  interview's questions to the sections, maximising the questions' similarity to their sections minus a
  penalty per section skipped; follow-up questions stay in the current section, and every other turn
  (answers included) gets the section of the last question before it.

>>> g = Guide.from_questions(["您平时怎么学习新知识？", "您什么时候开始用B站？", "您对B站有什么建议？"])
>>> g.locate(["您平时怎么学习新知识呢？", "看书。", "什么时候开始用B站的？", "高中。", "有什么建议吗？", "没有。"],
...          ["interviewer", "participant"] * 3).tolist()
[0, 0, 1, 1, 2, 2]

The method and how well it places turns: docs/methods.md ("The interview guide").
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.preprocessing import normalize as l2_normalize

from .exceptions import FormatError

__all__ = ["Guide", "read_guide", "recover_guide", "make_guide", "question_turns"]

MIN_QUESTION_CHARS = 6
"""Interviewer turns with fewer letters (after the speaker label) are backchannels or short probes
("喔，好。", "怎么说？"), not guide questions."""
MATCH_THRESHOLD = 0.3
"""Cosine similarity above which a question counts as asking a section's question when the guide is recovered."""
SKIP_PENALTY = 0.05
"""Cost of each guide section skipped between two questions of an interview (see :meth:`Guide.locate`)."""
MIN_SUPPORT = 0.2
"""A recovered section must be asked in at least this share of the interviews (and in at least 2)."""
GUIDE_WEIGHT = 0.3
"""Default weight of the guide feature of the TF-IDF backends (``guide_weight``), as for the position feature."""
MAX_QUESTION_CHARS = 500
"""A longer line of a guide file is not one question (a paragraph pasted by mistake)."""

_LABEL = re.compile(r"^\s*[A-Za-z\u4e00-\u9fff]{1,4}\d{0,2}\s*[:：]\s*")
_NUMBER = re.compile(r"^\s*(?:[(（]?\d{1,3}[)）.、．:：]|[(（]?[一二三四五六七八九十]{1,3}[)）.、．:：]|第.{1,3}[题題][:：、.]?"
                     r"|[-*•·]|Q\d{1,3}[.:：、]?)\s*")


def _letters(text: str) -> int:
    return sum(1 for ch in text if unicodedata.category(ch)[0] in "LN")


def _default_normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", _LABEL.sub("", text, count=1)).lower()


def question_turns(texts: Sequence[str], roles: Sequence[str], min_chars: int = MIN_QUESTION_CHARS) -> np.ndarray:
    """Indices of the turns that may ask a guide question: the interviewer's turns with at least ``min_chars``
    letters after the speaker label.

    >>> question_turns(["A: 喔，好。", "B: 我觉得很好。", "A: 那您觉得标签有帮助吗？"], ["interviewer", "participant",
    ...                 "interviewer"]).tolist()
    [2]
    """
    return np.array([i for i, (t, r) in enumerate(zip(texts, roles))
                     if r == "interviewer" and _letters(_LABEL.sub("", t or "", count=1)) >= min_chars], dtype=int)


def _monotone_match(sim: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """The order-preserving pairs (row, column) maximising the sum of ``sim - threshold`` over the pairs (gaps
    free): Needleman-Wunsch with zero gap costs."""
    n, m = sim.shape
    gain = sim - threshold
    best = np.zeros((n + 1, m + 1))
    for i in range(1, n + 1):
        row, prev = best[i], best[i - 1]
        for j in range(1, m + 1):
            row[j] = max(prev[j], row[j - 1], prev[j - 1] + gain[i - 1, j - 1])
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        if gain[i - 1, j - 1] > 0 and best[i, j] == best[i - 1, j - 1] + gain[i - 1, j - 1]:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif best[i, j] == best[i - 1, j]:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def _monotone_path(sim: np.ndarray, skip_penalty: float) -> np.ndarray:
    """Non-decreasing section per row of ``sim`` (questions x sections) maximising the summed similarity minus
    ``skip_penalty`` per section skipped (before the first question, the sections before its own count as
    skipped)."""
    n, m = sim.shape
    steps = np.arange(m)
    # cost of going from section a to section b >= a: skip_penalty * max(b - a - 1, 0)
    move = -skip_penalty * np.maximum(steps[None, :] - steps[:, None] - 1, 0).astype(float)
    move[steps[:, None] > steps[None, :]] = -np.inf
    score = sim[0] - skip_penalty * steps
    back = np.zeros((n, m), dtype=int)
    for i in range(1, n):
        total = score[:, None] + move
        back[i] = np.argmax(total, axis=0)
        score = total[back[i], steps] + sim[i]
    path = np.empty(n, dtype=int)
    path[-1] = int(np.argmax(score))
    for i in range(n - 1, 0, -1):
        path[i - 1] = back[i, path[i]]
    return path


class Guide:
    """Sections of an interview guide in order, each a TF-IDF vector over character n-grams.

    Parameters
    ----------
    labels : list of str
        One question per section (as written in the guide, or the recovered section's most typical question).
    vocabulary : list of str
        The character n-grams of the vectors.
    idf : ndarray
        Their IDF weights.
    centroids : ndarray of shape (n_sections, n_terms)
        Each section's L2-normalised vector.
    normalize : callable, optional
        Text normalisation before counting n-grams (the TF-IDF backend passes its own: speaker label removed,
        Traditional -> Simplified). Not saved: the caller gives it again.
    """

    NGRAMS = (1, 3)

    def __init__(self, labels: Sequence[str], vocabulary: Sequence[str], idf: np.ndarray, centroids: np.ndarray,
                 normalize: Callable[[str], str] | None = None):
        self.labels = list(labels)
        self.vocabulary = list(vocabulary)
        self.idf = np.asarray(idf, dtype=np.float32)
        self.centroids = np.asarray(centroids, dtype=np.float32).reshape(len(self.labels), len(self.vocabulary))
        if len(self.idf) != len(self.vocabulary):
            raise ValueError(f"the guide's vocabulary has {len(self.vocabulary)} terms but {len(self.idf)} weights")
        self.normalize = normalize or _default_normalize
        self._vec = None

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"Guide({len(self)} sections)"

    def _vectorizer(self) -> TfidfVectorizer:
        if self._vec is None:
            self._vec = _tfidf(vocabulary={t: i for i, t in enumerate(self.vocabulary)})
            self._vec.idf_ = self.idf.astype(np.float64)
        return self._vec

    def vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        """L2-normalised TF-IDF vectors of texts over the guide's vocabulary."""
        if not self.vocabulary:
            return sp.csr_matrix((len(texts), 0), dtype=np.float32)
        return self._vectorizer().transform([self.normalize(t or "") for t in texts]).astype(np.float32)

    def similarity(self, texts: Sequence[str]) -> np.ndarray:
        """Cosine similarity of each text to each section (texts x sections)."""
        if not len(self) or not len(texts):
            return np.zeros((len(texts), len(self)))
        return np.asarray(self.vectors(texts) @ self.centroids.T, dtype=np.float64)

    @classmethod
    def from_questions(cls, questions: Sequence[str], *, corpus: Sequence[str] = (),
                       normalize: Callable[[str], str] | None = None) -> Guide:
        """A guide with one section per question as written; IDF weights from the questions and ``corpus``
        (e.g. the interviewers' turns of the training interviews)."""
        normalize = normalize or _default_normalize
        questions = [q for q in questions if q.strip()]
        if not questions:
            raise ValueError("a guide needs at least one question")
        vec = _tfidf().fit([normalize(t) for t in [*questions, *corpus]])
        X = l2_normalize(vec.transform([normalize(q) for q in questions]))
        return cls(questions, vec.get_feature_names_out().tolist(), vec.idf_, X.toarray(), normalize)

    def locate(self, texts: Sequence[str], roles: Sequence[str], groups: Sequence[str] | None = None, *,
               skip_penalty: float = SKIP_PENALTY, answer_weight: float = 0.0) -> np.ndarray:
        """The section of every turn (-1 where a document has no question before it could be placed, or the
        guide is empty), documents (``groups``) located one by one.

        The interviewer's questions (:func:`question_turns`) are aligned to the sections monotonically (see
        the module); every other turn gets the section of the last question before it (turns before the
        first question, that question's). ``answer_weight`` > 0 lets the other turns' own similarity to the
        sections count too, with that weight (for transcripts of answers only, where no question is written).
        """
        n = len(texts)
        out = np.full(n, -1, dtype=int)
        if not len(self) or not n:
            return out
        groups = list(groups) if groups is not None else [""] * n
        starts = [i for i in range(n) if i == 0 or groups[i] != groups[i - 1]] + [n]
        for a, b in zip(starts[:-1], starts[1:]):
            out[a:b] = self._locate_one(texts[a:b], roles[a:b], skip_penalty, answer_weight)
        return out

    def _locate_one(self, texts, roles, skip_penalty: float, answer_weight: float) -> np.ndarray:
        q = question_turns(texts, roles)
        weights = np.zeros(len(texts))
        weights[q] = 1.0
        if answer_weight > 0:
            weights[weights == 0] = answer_weight
        rows = np.flatnonzero(weights)
        if rows.size == 0:
            return np.full(len(texts), -1, dtype=int)
        sim = self.similarity([texts[i] for i in rows]) * weights[rows, None]
        path = _monotone_path(sim, skip_penalty)
        anchor = np.searchsorted(rows, np.arange(len(texts)), side="right") - 1  # last placed turn at or before
        return path[np.maximum(anchor, 0)]

    def one_hot(self, texts: Sequence[str], roles: Sequence[str], groups: Sequence[str] | None = None
                ) -> sp.csr_matrix:
        """Turns x sections, 1 at each turn's section (:meth:`locate`; a turn placed nowhere: a zero row)."""
        sec = self.locate(texts, roles, groups)
        rows = np.flatnonzero(sec >= 0)
        return sp.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, sec[rows])), shape=(len(sec), len(self)))

    # -- saving ---------------------------------------------------------------------------------------------
    def get_state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-able metadata and arrays (no pickle), read back by :meth:`from_state`."""
        return {"labels": self.labels, "vocabulary": self.vocabulary}, {"idf": self.idf, "centroids": self.centroids}

    @classmethod
    def from_state(cls, meta: dict, arrays: dict[str, np.ndarray], normalize=None) -> Guide:
        return cls(meta["labels"], meta["vocabulary"], arrays["idf"], arrays["centroids"], normalize)


def make_guide(inputs, questions: Sequence[str] | None = None, normalize: Callable[[str], str] | None = None
               ) -> Guide:
    """The guide of ``questions`` as written (IDF weights also from the interviewers' turns of ``inputs``), or,
    when ``questions`` is None, recovered from the interviews of ``inputs`` (a backend's
    :class:`~autocode.backends.base.Inputs`)."""
    if questions is not None:
        corpus = [t for t, r in zip(inputs.texts, inputs.roles) if r == "interviewer"]
        return Guide.from_questions(list(questions), corpus=corpus, normalize=normalize)
    groups = inputs.groups if inputs.groups is not None else [""] * len(inputs)
    return recover_guide(inputs.texts, inputs.roles, groups, normalize=normalize)


def _tfidf(vocabulary=None) -> TfidfVectorizer:
    return TfidfVectorizer(analyzer="char", ngram_range=Guide.NGRAMS, lowercase=False, sublinear_tf=True,
                           vocabulary=vocabulary, dtype=np.float32)


def recover_guide(texts: Sequence[str], roles: Sequence[str], groups: Sequence[str], *,
                  normalize: Callable[[str], str] | None = None, threshold: float = MATCH_THRESHOLD,
                  min_support: float = MIN_SUPPORT) -> Guide:
    """The guide of a set of interviews, from their interviewers' questions (see the module).

    Parameters
    ----------
    texts, roles, groups : sequences
        Every turn's text, speaker role and document, documents in contiguous runs, turns in order.
    threshold : float
        Cosine similarity above which a question joins a section.
    min_support : float
        Share of the interviews (at least 2) in which a section must be asked to be kept.

    Returns an empty guide when fewer than two documents have questions (a corpus without interviewer turns,
    such as court judgments).
    """
    normalize = normalize or _default_normalize
    q = question_turns(texts, roles)
    docs: dict[str, list[int]] = {}
    for i in q:
        docs.setdefault(groups[i], []).append(int(i))
    if len(docs) < 2:
        return Guide([], [], np.zeros(0), np.zeros((0, 0)), normalize)
    questions = [texts[i] for i in q]
    vec = _tfidf().fit([normalize(t) for t in questions])
    X = l2_normalize(vec.transform([normalize(t) for t in questions])).tocsr()
    row_of = {int(i): r for r, i in enumerate(q)}
    seqs = [[row_of[i] for i in idx] for idx in docs.values()]
    # pass 1: progressive alignment to a growing guide (sections: lists of question rows)
    sections: list[list[int]] = []
    for seq in sorted(seqs, key=len, reverse=True):
        sections = _align_into(sections, seq, X, threshold)
    doc_of = np.empty(len(q), dtype=object)
    for d, idx in docs.items():
        doc_of[[row_of[i] for i in idx]] = d
    need = max(2, int(np.ceil(min_support * len(docs))))
    sections = [s for s in sections if len(set(doc_of[s].tolist())) >= need]
    if not sections:
        return Guide([], [], np.zeros(0), np.zeros((0, 0)), normalize)
    # pass 2: every interview re-aligned to the pruned guide; each section's vector from its questions
    centroids = _centroids(sections, X)
    members: list[list[int]] = [[] for _ in sections]
    for seq in seqs:
        for r, s in _monotone_match(np.asarray(X[seq] @ centroids.T), threshold):
            members[s].append(seq[r])
    keep = [s for s, m in enumerate(members) if len(set(doc_of[m].tolist())) >= need]
    members = [members[s] for s in keep]
    centroids = _centroids(members, X)
    labels = [_LABEL.sub("", questions[m[int(np.argmax(np.asarray(X[m] @ c)))]], count=1).strip()
              for m, c in zip(members, centroids)]
    return Guide(labels, vec.get_feature_names_out().tolist(), vec.idf_, centroids, normalize)


def _centroids(sections: list[list[int]], X: sp.csr_matrix) -> np.ndarray:
    if not sections:
        return np.zeros((0, X.shape[1]), dtype=np.float32)
    C = np.vstack([np.asarray(X[s].mean(axis=0)) for s in sections])
    return l2_normalize(C).astype(np.float32)


def _align_into(sections: list[list[int]], seq: list[int], X: sp.csr_matrix, threshold: float) -> list[list[int]]:
    """The guide with one more interview's questions: a matched question joins its section, an unmatched one
    opens a new section after the section of the matched question before it."""
    if not sections:
        return [[r] for r in seq]
    pairs = dict(_monotone_match(np.asarray(X[seq] @ _centroids(sections, X).T), threshold))
    out = [list(s) for s in sections]
    inserted: dict[int, list[list[int]]] = {}  # after section k (-1: before the first)
    last = -1
    for pos, r in enumerate(seq):
        if pos in pairs:
            last = pairs[pos]
            out[last].append(r)
        else:
            inserted.setdefault(last, []).append([r])
    merged = list(inserted.get(-1, []))
    for k, s in enumerate(out):
        merged.append(s)
        merged.extend(inserted.get(k, []))
    return merged


def read_guide(path: str | Path) -> list[str]:
    """The questions of an interview guide file, in order: ``.txt``/``.md`` (one question per line; numbers,
    bullets and Markdown headings' ``#`` marks removed; blank lines skipped), ``.docx`` (one per paragraph) or
    ``.csv``/``.tsv`` (the column ``问题``, ``question`` or ``questions``, as an outline table has).

    Raises
    ------
    FormatError
        If the file cannot be read, holds no question, or a line is too long to be one question.
    """
    path = Path(path)
    if not path.is_file():
        raise FormatError("guide file not found. Give a text file with one question per line.", path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        lines = _table_questions(path)
    elif suffix == ".docx":
        from .io._docx import read_docx

        lines = read_docx(path).splitlines()
    else:
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as err:
            raise FormatError(f"not UTF-8 text ({err.reason} at byte {err.start}). Save the guide as UTF-8 text, "
                              "one question per line.", path) from None
    out = []
    for n, line in enumerate(lines, 1):
        text = _NUMBER.sub("", line.strip().lstrip("#").strip()).strip()
        if not text:
            continue
        if len(text) > MAX_QUESTION_CHARS:
            raise FormatError(f"{len(text)} characters, too long for one question (at most {MAX_QUESTION_CHARS}); "
                              "write one question per line.", path, where=f"line {n}")
        out.append(text)
    if not out:
        raise FormatError("no question found. Write the guide's questions one per line.", path)
    return out


def _table_questions(path: Path) -> list[str]:
    from .io.table import read_rows

    header, rows = read_rows(path)
    names = {str(k).strip().lower(): k for k in header}
    for want in ("问题", "問題", "问题内容", "question", "questions"):
        if want in names:
            return [str(r.get(names[want]) or "") for r in rows]
    raise FormatError(f"no column 问题 or question (found: {', '.join(map(str, header)) or 'none'}). Name the "
                      "column of the questions '问题' or 'question'.", path)
