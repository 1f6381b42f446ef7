"""What to code next: uncoded segments (or whole interviews) ranked by how much coding them would teach the model.

A segment's value combines three things:

uncertainty
    for each learned code, how close its score is to the code's threshold (1 at the threshold, 0 at a score
    of 0 or 1): the model cannot tell whether the code applies, so the coder's answer moves it most;
codes with few examples
    each code's uncertainty is weighted by ``1 / sqrt(1 + n)``, ``n`` its coded examples in training: a new
    example of a rare code teaches more than one more of a common code;
diversity
    segments are taken one at a time, each time the best value minus ``diversity`` x its largest similarity
    (cosine of character uni- and bigram TF-IDF) to a segment already taken, so that the batch is not ten
    versions of the same answer.

A segment's value is its best code's weighted uncertainty. Interviews (``by="interview"``) are ranked by the
mean value of their segments, the diversity penalty taken between interviews' mean vectors, and every segment
of a chosen interview is returned, in document order.

>>> import numpy as np
>>> uncertainty(np.array([[0.5, 0.9]]), np.array([0.5, 0.5])).round(2).tolist()
[[1.0, 0.2]]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .corpus import Segment, as_segments
from .exceptions import AutocodeError

__all__ = ["next_to_code", "uncertainty", "segment_values"]


def uncertainty(P: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """1 where a score sits on its code's threshold, falling linearly to 0 at a score of 0 or 1."""
    t = np.clip(np.asarray(thresholds, dtype=float), 1e-6, 1 - 1e-6)
    below = 1 - (t - P) / t
    above = 1 - (P - t) / (1 - t)
    return np.clip(np.where(P <= t, below, above), 0.0, 1.0)


def segment_values(model, segments: Sequence[Segment]) -> np.ndarray:
    """Each segment's value for coding (see the module doc), before diversity."""
    P = model.predict_proba(segments)
    counts = np.array([model.train_counts_.get(c, 0) for c in model.codes_], dtype=float)
    weight = 1 / np.sqrt(1 + counts)
    return (uncertainty(P, model.thresholds_) * weight).max(axis=1) if len(model.codes_) else np.zeros(len(P))


def _vectors(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True).fit_transform(texts)


def _greedy(values: np.ndarray, X, n: int, diversity: float) -> list[int]:
    chosen: list[int] = []
    closest = np.zeros(len(values))
    for _ in range(min(n, len(values))):
        gain = values - diversity * closest
        gain[chosen] = -np.inf
        best = int(np.argmax(gain))
        chosen.append(best)
        sims = np.asarray((X @ X[best].T).todense()).ravel()
        closest = np.maximum(closest, sims)
    return chosen


def next_to_code(model, segments, *, by: str = "segment", n: int = 50, diversity: float = 0.5,
                 exclude: Sequence[tuple[str, str]] = ()) -> tuple[list[Segment], np.ndarray]:
    """The segments to code next, best first, and the value of each (of its interview, with
    ``by="interview"``).

    Parameters
    ----------
    model : CodingModel
        A fitted model.
    segments : list of Segment, CodedCorpus
        Uncoded segments to choose from.
    by : {"segment", "interview"}
        Rank single segments, or whole interviews (documents).
    n : int
        How many segments (or interviews) to return.
    diversity : float
        Weight of the penalty for being like a segment already chosen (0: by value alone).
    exclude : keys (document, segment)
        Segments not to choose (already coded).
    """
    if by not in ("segment", "interview"):
        raise AutocodeError(f"by must be 'segment' or 'interview', got {by!r}.")
    if n < 1:
        raise AutocodeError(f"n must be at least 1, got {n}.")
    skip = set(exclude)
    segs = [s for s in as_segments(segments) if s.key not in skip]
    if not segs:
        return [], np.zeros(0)
    values = segment_values(model, segs)
    X = _vectors([s.text for s in segs])
    if by == "segment":
        order = _greedy(values, X, n, diversity)
        return [segs[i] for i in order], values[order]
    docs = list(dict.fromkeys(s.document for s in segs))
    rows = {d: [i for i, s in enumerate(segs) if s.document == d] for d in docs}
    doc_values = np.array([values[rows[d]].mean() for d in docs])
    from sklearn.preprocessing import normalize

    M = normalize(np.vstack([np.asarray(X[rows[d]].mean(axis=0)) for d in docs]))
    import scipy.sparse as sp

    order = _greedy(doc_values, sp.csr_matrix(M), n, diversity)
    out = [segs[i] for d in order for i in rows[docs[d]]]
    return out, np.array([doc_values[d] for d in order for _ in rows[docs[d]]])
