"""The saturation check of a corpus of any size (``autocode saturation``): the held-out segments are read a batch
at a time, in passes; memory holds a batch, the model, the scorer and a few numbers per segment.

1. Scoring (one read of the inputs, :func:`autocode.streaming.stream_batches`): per segment whether it is
   eligible, its document, best code and score, nearest code, the ``model``, ``centroid``, ``knn``,
   ``new_code``, ``mahalanobis`` and ``relative_mahalanobis`` signals; the eligible segments' vectors and content
   words go to a temporary folder (:class:`Spill`) and the words' document frequencies are counted.
2. Novelty, from the spill a block at a time: the ``recurrence`` signal against the seeded sample of the
   eligible segments (:func:`~autocode.saturation._signals.recurrence_sample`, read back from the spill), the
   ``unexplained`` signal from the whole corpus's word counts, the combined statistic, the conformal p-value.
3. Candidate codes: the segments to review grouped and placed as :func:`propose_codes` does (at most
   :data:`MAX_CLUSTERED` at once, then the others join the nearest group); one read of the inputs collects
   the texts that name them, quotes, the background sample and the listed segments (:data:`REVIEW_LISTED`).
4. Writing: the CSV (and a ``.qdpx``) read the inputs once more, a batch at a time.

Results are those :func:`saturation_report` gives in one call (to the last bit for a corpus of one batch; larger
ones may differ in a float's last bits). Beyond :data:`MAX_CLUSTERED` segments to review, a candidate is named
from its members in the clustered sample and its centre is summed a block at a time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..calibration import sigmoid
from ..corpus import CodedCorpus, Segment
from ..exceptions import AutocodeError
from ._candidates import (
    MAX_CLUSTERED,
    CandidateCode,
    background_rows,
    centres_and_quotes,
    cluster_embeddings,
    code_categories,
    placed_candidates,
)
from ._eligibility import content_length, eligible_mask, too_short
from ._grouping import centre_rows
from ._naming import key_phrases, unexplained_terms
from ._signals import COMPONENTS, knn_distance, recurrence_block, recurrence_rows, recurrence_sample
from ._spill import SPILL_BLOCK, Spill
from ._words import content_words, unexplained_scores

BATCH_SIZE = 2048
"""Segments read, embedded and scored at a time."""


class _Held:
    """The segments a streamed report shows (quotes, listed segments to review), by index into the corpus."""

    def __init__(self, held: dict[int, Segment], n: int):
        self._held, self._n = held, n

    def __getitem__(self, i: int) -> Segment:
        return self._held[int(i)]

    def __len__(self) -> int:
        return self._n


class _Names:
    """Code ids by index (``""`` for -1), per segment, without a list of strings."""

    def __init__(self, codes: list[str], index: np.ndarray):
        self._codes, self._index = codes, index

    def __getitem__(self, i: int) -> str:
        j = self._index[i]
        return self._codes[j] if j >= 0 else ""

    def __len__(self) -> int:
        return len(self._index)


class StreamedScores:
    """The novelty of a corpus scored a batch at a time (:func:`stream_saturation`), standing in for
    :class:`NoveltyScores` in a :class:`SaturationReport`. Per segment it holds ``novelty`` (float64),
    ``eligible`` (bool), the best code's index and score, the nearest code's index, the document's index (29
    bytes), and per eligible segment where its words end in the spill (8 bytes); the texts only of the segments
    the report shows. :meth:`iter_records` and :meth:`write_qdpx` read the inputs again. Call :meth:`close` (or
    let it be collected) to remove the spill."""

    def __init__(self, inputs, scorer, spill: Spill, threshold: float, batch_size: int):
        self.inputs, self.scorer, self.spill = inputs, scorer, spill
        self.threshold, self.batch_size = threshold, batch_size
        n = inputs.n_segments
        self.novelty = np.full(n, np.nan)
        self.eligible = np.zeros(n, dtype=bool)
        self.best = np.zeros(n, dtype=np.int32)
        self.best_score = np.zeros(n)
        self.nearest = np.full(n, -1, dtype=np.int32)
        self.doc = np.zeros(n, dtype=np.int32)
        self.documents = list(inputs.sizes)
        self.held: dict[int, Segment] = {}
        self.key: dict[str, float] = {}
        self.batch_words: Counter = Counter()
        self.known: list[str] = []
        self.n_short = 0
        """Participants' segments too short to be scored."""

    def __len__(self) -> int:
        return len(self.novelty)

    @property
    def novel(self) -> np.ndarray:
        with np.errstate(invalid="ignore"):
            return self.eligible & (np.nan_to_num(self.novelty, nan=-1.0) >= self.threshold)

    @property
    def segments(self) -> _Held:
        return _Held(self.held, len(self))

    @property
    def best_code(self) -> _Names:
        return _Names(self.scorer.codes_, self.best)

    @property
    def nearest_code(self) -> _Names:
        return _Names(self.scorer.codes_, self.nearest)

    def close(self) -> None:
        self.spill.close()

    def batches(self, size: int | None = None):
        """``(start, segments)`` of the inputs read again, ``size`` segments at a time."""
        size = size or self.batch_size
        batch: list[Segment] = []
        start = 0
        for seg in self.inputs:
            batch.append(seg)
            if len(batch) == size:
                yield start, batch
                start, batch = start + size, []
        if batch:
            yield start, batch

    def unexplained(self, rows: np.ndarray, segments: list[Segment]) -> list[list[str]]:
        """The words no code accounts for of the segments to review ``rows`` (texts ``segments``): the scorer's
        evidence, else their terms in none of the ``known`` texts (as :func:`report_from_scores` gives them)."""
        epos = np.cumsum(self.eligible) - 1  # (an array per call: calls are per batch)
        words: list[list[str]] = [[] for _ in rows]
        if self.scorer.words_ is not None and len(rows):
            pos = epos[rows]
            block = self.spill.words_of(int(pos.min()), int(pos.max()) + 1)
            _, words = unexplained_scores(self.key, self.batch_words, [block[p - pos.min()] for p in pos])
        bare = [k for k, w in enumerate(words) if not w]
        found = unexplained_terms([segments[k].text for k in bare], self.known, self.scorer.tokenizer_) if bare else []
        for k, w in zip(bare, found):
            words[k] = w
        return [list(w) for w in words]

    def iter_records(self, report):
        """:meth:`SaturationReport.iter_records` of a streamed corpus: the inputs read again a batch at a time."""
        cand = np.full(len(self), -1, dtype=np.int32)
        for k, c in enumerate(report.candidates):
            cand[c.members] = k
        ids, names = [c.id for c in report.candidates], [c.name for c in report.candidates]
        novel = self.novel
        with np.errstate(invalid="ignore"):
            review = self.eligible & (np.nan_to_num(self.novelty, nan=-1.0) >= report.review_level)
        for start, batch in self.batches():
            rows = np.flatnonzero(review[start : start + len(batch)])
            found = dict(zip(rows.tolist(), self.unexplained(rows + start, [batch[i] for i in rows])))
            for k, seg in enumerate(batch):
                i = start + k
                nov, c = self.novelty[i], cand[i]
                yield {
                    "document": seg.document, "segment": seg.segment, "speaker": seg.speaker, "text": seg.text,
                    "eligible": bool(self.eligible[i]), "novelty": None if np.isnan(nov) else round(float(nov), 4),
                    "novel": bool(novel[i]), "candidate": ids[c] if c >= 0 else "",
                    "candidate_name": names[c] if c >= 0 else "", "best_code": self.scorer.codes_[self.best[i]],
                    "best_score": round(float(self.best_score[i]), 4),
                    "nearest_code": self.scorer.codes_[self.nearest[i]] if self.nearest[i] >= 0 else "",
                    "unexplained": found.get(k, []),
                }

    def write_qdpx(self, report, path: Path, documents=None) -> Path:
        """The report's ``.qdpx`` (candidate codes as codes of ``autocode-saturation``), a batch at a time."""
        from ..io.precoded import SuggestionWriter
        from ..suggestion import Suggestions

        book = report.candidate_codebook()
        ids = [c.id for c in report.candidates]
        cand = np.full(len(self), -1, dtype=np.int32)
        for k, c in enumerate(report.candidates):
            cand[c.members] = k
        with SuggestionWriter(path, documents=documents) as writer:
            for start, batch in self.batches():
                scores = np.zeros((len(batch), len(ids)))
                rows = np.flatnonzero(cand[start : start + len(batch)] >= 0)
                scores[rows, cand[start + rows]] = self.novelty[start + rows]
                writer.write(Suggestions(batch, ids, scores, np.full(len(ids), 1e-9), book,
                                         coder="autocode-saturation"))
        return path


def score_stream(model, scorer, inputs, *, threshold: float = 0.95, batch_size: int = BATCH_SIZE,
                 held_out: dict | None = None, folder: str | Path | None = None, progress: bool = False
                 ) -> StreamedScores:
    """Steps 1 and 2 (see the module): the :class:`StreamedScores` of ``inputs`` (an
    :class:`~autocode.io.inputs.InputStream`, counted). ``held_out``: a dict filled with the model's pre-coding
    of the segments without their texts (``"segments"``, ``"codings"``; for the relations between
    categories). ``progress``: a progress bar over the segments scored (a corpus of more than one batch)."""
    from ..streaming import stream_batches

    scorer.check_scoring(model, threshold)
    if batch_size < 1:
        raise AutocodeError(f"batch_size must be at least 1, got {batch_size}.")
    n = inputs.n_segments if inputs.counted else inputs.census()
    sc = StreamedScores(inputs, scorer, Spill(scorer.prototypes_.shape[1], folder), threshold, batch_size)
    signals = np.full((n, len(COMPONENTS)), np.nan)  # freed when the novelty is computed
    doc_index = {d: k for k, d in enumerate(sc.documents)}
    whole = bool(len(getattr(model.backend_, "guide_", None) or ()))
    has_codes, has_words = bool(len(model.codes_)), scorer.words_ is not None
    start = 0
    bar = None
    if progress and n > batch_size:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc="scoring novelty", unit="segment")
    try:
        for batch, batch_inputs in stream_batches(inputs, inputs.sizes, batch_size, whole_documents=whole):
            end = start + len(batch)
            if bar is not None:
                bar.update(len(batch))
            sc.doc[start:end] = [doc_index[s.document] for s in batch]
            if has_codes:
                if held_out is not None:
                    sug = model.suggest(batch, inputs=batch_inputs)
                    P = sug.scores
                    held_out.setdefault("segments", []).extend(replace(s, text="") for s in batch)
                    held_out.setdefault("codings", {}).update({s.key: set(sug.codes_for(i)) for i, s in enumerate(batch)})
                else:
                    P = model.predict_proba(batch, inputs=batch_inputs)
                sc.best[start:end], sc.best_score[start:end] = P.argmax(axis=1), P.max(axis=1)
            signals[start:end, 0] = 1 - sc.best_score[start:end] if len(scorer.codes_) else 1.0
            el = eligible_mask(batch, min_chars=scorer.min_chars_, exclude_roles=scorer.exclude_roles)
            sc.n_short += int(too_short(batch, min_chars=scorer.min_chars_, exclude_roles=scorer.exclude_roles).sum())
            sc.eligible[start:end] = el
            rows = np.flatnonzero(el)
            texts = [batch[i].text for i in rows]
            Z = scorer.embed(texts) if len(rows) else np.zeros((0, sc.spill.dim), dtype=np.float32)
            at = start + rows
            if len(rows):
                sims = Z @ scorer.prototypes_.T
                signals[at, 1] = 1 - sims.max(axis=1)
                sc.nearest[at] = sims.argmax(axis=1)
                signals[at, 2] = knn_distance(Z, scorer.reference_, scorer.n_neighbors)
                log_len = np.log(np.array([content_length(t) for t in texts], dtype=float) + 1.0)
                codable = sigmoid(scorer.codable_features(Z, log_len) @ scorer.codable_weights_
                                  + scorer.codable_intercept_)
                signals[at, 3] = codable * signals[at, 0]
                if scorer.gaussians_ is not None:
                    signals[at, 6], signals[at, 7] = scorer.gaussians_.distances(Z)
            sc.spill.add(Z, [content_words(scorer.tokenizer_, t) for t in texts] if has_words else [[]] * len(rows))
            start = end
    finally:
        if bar is not None:
            bar.close()
    sc.spill.finish()
    _novelty(sc, signals)
    return sc


def _novelty(sc: StreamedScores, signals: np.ndarray) -> None:
    """Step 2: the ``recurrence`` and ``unexplained`` signals and the novelty, a block of the spill at a time."""
    scorer, spill = sc.scorer, sc.spill
    el = np.flatnonzero(sc.eligible)
    n_el = len(el)
    if not n_el:
        return
    docs = sc.doc[el]
    sample = recurrence_sample(n_el, scorer.random_state)
    S_ref, docs_ref = spill.take(sample), docs[sample]
    one_doc = len(np.unique(docs)) == 1
    if scorer.words_ is not None:
        sc.batch_words = Counter(dict(zip(spill.words, spill.df.tolist())))
        sc.key = scorer.words_.keyness_of(sc.batch_words, n_el)
    cal = scorer.calibration_combined_
    rows = recurrence_rows(len(sample))
    for s in range(0, n_el, rows):
        stop = min(s + rows, n_el)
        at = el[s:stop]
        signals[at, 4] = recurrence_block(spill.vectors(s, stop), docs[s:stop], s, S_ref, docs_ref, sample, one_doc,
                                          scorer.reference_, scorer.n_neighbors, n_el)
        if scorer.words_ is not None:
            signals[at, 5] = unexplained_scores(sc.key, sc.batch_words, spill.words_of(s, stop))[0]
        combined = scorer.combine_signals(signals[at])
        at_least = len(cal) - np.searchsorted(cal, combined - 1e-12, side="left")
        sc.novelty[at] = 1 - (1 + at_least) / (len(cal) + 1)


def propose_streamed(sc: StreamedScores, codebook, *, min_size: int = 2, n_clusters: int | None = None,
                     review: float | None = None, n_terms: int = 5, n_quotes: int = 3, also: np.ndarray = ()
                     ) -> list[CandidateCode]:
    """Step 3: :func:`propose_codes` of a streamed corpus. ``also``: segments whose texts to keep as well (those
    the report lists); the texts kept are those of :attr:`StreamedScores.held`."""
    from sklearn.preprocessing import normalize

    scorer, spill = sc.scorer, sc.spill
    if min_size < 1:
        raise AutocodeError(f"min_size must be at least 1, got {min_size}.")
    level = sc.threshold if review is None else float(review)
    if not 0 < level <= sc.threshold:
        raise AutocodeError(f"review must be above 0 and at most the novelty cut {sc.threshold}, got {review!r}.")
    novel = sc.novel
    with np.errstate(invalid="ignore"):
        idx = np.flatnonzero((sc.eligible & (np.nan_to_num(sc.novelty, nan=-1.0) >= level)) | novel)
    if not len(idx):
        _keep_texts(sc, np.asarray(also, dtype=np.int64))
        return []
    pos = (np.cumsum(sc.eligible) - 1)[idx]  # rows of the spill

    def take(rows):  # vectors of the spill in the grouping space (centred, as propose_codes groups)
        return centre_rows(spill.take(rows), getattr(scorer, "centre_", None))

    X = None
    if len(idx) <= MAX_CLUSTERED:
        X = take(pos)
        labels = cluster_embeddings(X, scorer.cluster_distance_, n_clusters)
        named = idx
    else:  # as cluster_embeddings does, the vectors of the others read back a block at a time
        sample = np.unique(np.linspace(0, len(idx) - 1, MAX_CLUSTERED).round().astype(int))
        Xs = take(pos[sample])
        labels = np.empty(len(idx), dtype=int)
        labels[sample] = cluster_embeddings(Xs, scorer.cluster_distance_, n_clusters)
        found = np.unique(labels[sample])
        centres = normalize(np.vstack([Xs[labels[sample] == g].mean(axis=0) for g in found]))
        rest = np.setdiff1d(np.arange(len(idx)), sample)
        for s in range(0, len(rest), MAX_CLUSTERED):
            r = rest[s : s + MAX_CLUSTERED]
            labels[r] = found[(take(pos[r]) @ centres.T).argmax(axis=1)]
        named = idx[sample]
    _, counts = np.unique(labels, return_counts=True)
    members = np.split(idx[np.argsort(labels, kind="stable")], np.cumsum(counts)[:-1])
    groups = [m for m, c in zip(members, counts) if c >= min_size]
    groups.sort(key=lambda m: (-int(novel[m].any()), -len(m), int(sc.doc[m].min())))
    if not groups:
        _keep_texts(sc, np.asarray(also, dtype=np.int64))
        return []
    outside, weight = background_rows(sc.eligible, groups, scorer)
    centres, quotes = _centres_and_quotes(sc, idx, pos, X, groups, n_quotes, take)
    naming = [np.intersect1d(m, named) for m in groups]
    _keep_texts(sc, np.concatenate([*naming, outside, *quotes, np.asarray(also, dtype=np.int64)]))
    terms = key_phrases([[sc.held[i].text for i in m] for m in naming], [sc.held[i].text for i in outside],
                        scorer.tokenizer_, n_terms, background_weight=weight)
    documents = [[sc.documents[d] for d in np.unique(sc.doc[m])] for m in groups]
    out = placed_candidates(groups, terms, centres, quotes, documents, novel, scorer, codebook)
    keep = {int(i) for i in np.concatenate([*quotes, np.asarray(also, dtype=np.int64)])}
    sc.held = {i: s for i, s in sc.held.items() if i in keep}
    return out


def _centres_and_quotes(sc: StreamedScores, idx, pos, X, groups, n_quotes, take):
    """Each group's centre (the normalised mean of its members' vectors) and its ``n_quotes`` members nearest
    it (the vectors held, or read back with ``take`` twice: sums, then similarities)."""
    from sklearn.preprocessing import normalize

    if X is not None:
        return centres_and_quotes(X, idx, groups, n_quotes)
    group_of = np.full(len(sc), -1, dtype=np.int64)
    for k, m in enumerate(groups):
        group_of[m] = k
    sums = np.zeros((len(groups), sc.spill.dim))
    for s in range(0, len(idx), SPILL_BLOCK):
        g = group_of[idx[s : s + SPILL_BLOCK]]
        keep = g >= 0
        np.add.at(sums, g[keep], take(pos[s : s + SPILL_BLOCK])[keep])
    centres = normalize((sums / np.array([len(m) for m in groups])[:, None]).astype(np.float32))
    best = [(np.zeros(0), np.zeros(0, dtype=np.int64)) for _ in groups]
    for s in range(0, len(idx), SPILL_BLOCK):
        rows, g = idx[s : s + SPILL_BLOCK], group_of[idx[s : s + SPILL_BLOCK]]
        sims = np.einsum("ij,ij->i", take(pos[s : s + SPILL_BLOCK]), centres[np.maximum(g, 0)])
        for k in np.unique(g[g >= 0]):
            sel = g == k
            v, i = np.concatenate([best[k][0], sims[sel]]), np.concatenate([best[k][1], rows[sel]])
            order = np.lexsort((i, -v))[:n_quotes]
            best[k] = (v[order], i[order])
    return list(centres), [b[1] for b in best]


def _keep_texts(sc: StreamedScores, rows: np.ndarray) -> None:
    """Read the inputs once and keep the segments ``rows`` in :attr:`StreamedScores.held`."""
    wanted = np.unique(rows.astype(np.int64))
    if not len(wanted):
        return
    for start, batch in sc.batches():
        lo, hi = np.searchsorted(wanted, [start, start + len(batch)])
        for i in wanted[lo:hi].tolist():
            sc.held[i] = batch[i - start]


def held_out_corpus(held_out: dict, model) -> CodedCorpus:
    """The model's pre-coding gathered by :func:`score_stream` as a coded corpus (segments without texts)."""
    return CodedCorpus(held_out.get("segments", []), {model.model_name: held_out.get("codings", {})},
                       codebook=model.codebook)


def stream_saturation(model, inputs, *, scorer=None, coded: CodedCorpus | None = None, threshold: float = 0.95,
                      min_size: int = 2, n_clusters: int | None = None, review: float | None = 0.8,
                      relations_unit: str | None = "answer", batch_size: int = BATCH_SIZE,
                      folder: str | Path | None = None, progress: bool = False):
    """:func:`saturation_report` of ``inputs`` (an :class:`~autocode.io.inputs.InputStream`) read a batch at a
    time (see the module): the same report, whose segments to review list at most :data:`REVIEW_LISTED` (the
    most novel; :attr:`SaturationReport.n_review` counts them all) and whose CSV and ``.qdpx`` read the inputs
    again. ``folder``: where the temporary spill goes (default: the system's temporary folder); the report's
    ``scores.close()`` removes it. ``progress``: a progress bar over the segments scored.

    """
    import warnings

    from ..exceptions import AutocodeWarning
    from ._answers import review_rows
    from ._report import (
        REVIEW_LISTED,
        SaturationReport,
        document_curve,
        held_out_relations,
        known_texts,
        relations_apply,
    )
    from ._scoring import fitted_scorer

    scorer = fitted_scorer(model, coded, scorer)
    n = inputs.n_segments if inputs.counted else inputs.census()
    if n == 0:
        raise AutocodeError("There are no segments to check. Give the held-out interviews' transcripts or tables.")
    want = bool(coded is not None and relations_unit and relations_apply(model))
    held_out: dict | None = {} if want else None
    sc = score_stream(model, scorer, inputs, threshold=threshold, batch_size=batch_size, held_out=held_out,
                      folder=folder, progress=progress)
    try:
        level = None if review is None else min(float(review), threshold)
        sc.known = known_texts(model)
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(sc.eligible & (np.nan_to_num(sc.novelty, nan=-1.0)
                                                 >= (threshold if level is None else level)))
        listed = rows if len(rows) <= REVIEW_LISTED else np.sort(
            rows[np.argsort(-sc.novelty[rows], kind="stable")[:REVIEW_LISTED]])
        cands = propose_streamed(sc, model.codebook, min_size=min_size, n_clusters=n_clusters, review=level,
                                 also=listed)
        docs = sc.documents
        first_seen: dict[str, list[str]] = {d: [] for d in docs}
        for c in cands:
            if c.supported:
                first_seen[c.documents[0]].append(c.id)
        per = document_curve(sc.doc, sc.eligible, sc.novel, docs, first_seen, threshold)
        if not sc.eligible.any():
            warnings.warn(AutocodeWarning("No segment is eligible (all are the interviewer's or shorter than "
                          f"{scorer.min_chars_} characters); nothing was checked."), stacklevel=2)
        relations = (held_out_relations(model, coded, held_out_corpus(held_out, model), relations_unit)
                     if want else None)
        rep = SaturationReport(sc, cands, model.codebook, docs, per, min_size=min_size, relations=relations,
                               review_level=level, min_chars=scorer.min_chars_,
                               has_categories=any(c is not None for c in code_categories(scorer.codes_,
                                                                                        model.codebook)))
        rep.n_short = sc.n_short
        rep.unexplained = dict(zip(listed.tolist(), sc.unexplained(listed, [sc.held[i] for i in listed])))
        rep.review_listed, rep.n_review = review_rows(rep, listed), len(rows)
    except BaseException:
        sc.close()
        raise
    return rep
