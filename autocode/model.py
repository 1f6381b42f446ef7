"""The coding model (long because it is the whole estimator: fitting with tuning and reviewed decisions,
prediction, explanation, saving): a codebook plus a backend, with calibrated scores and a threshold per code.

``fit`` learns from a :class:`~autocode.corpus.CodedCorpus`:

1. the target coding per segment (union of coders, majority, or one named coder);
2. the codes to learn: every code applied to at least ``min_examples`` segments; rarer codes are reported in
   ``rare_codes_`` with an :class:`~autocode.exceptions.AutocodeWarning` and are never suggested (codes of
   the codebook never applied get one summarising warning too);
3. out-of-fold raw scores by cross-validation grouped by document (``n_splits`` folds), once per candidate
   value of the backend's data-dependent setting (``tune``; the value with the best pooled kappa is kept);
4. Platt scaling of the out-of-fold scores (so a score of 0.8 means "right about 80% of the time" on held-out
   interviews): one scaling fitted on every code's decisions pooled, and each code's own, trusted in proportion
   to its examples (``calibration_prior``); then a threshold per code: the one that maximises out-of-fold kappa
   for the code, shrunk towards the one that maximises it over all codes pooled (``threshold_prior``);
5. the backend refitted on all segments.

>>> from autocode.codebook import Code, Codebook
>>> from autocode.corpus import CodedCorpus, Segment
>>> book = Codebook([Code("cat"), Code("party", "党建", parent="cat"), Code("vote", "选举", parent="cat")])
>>> segs, codes = [], {}
>>> for d in range(6):
...     for i, (t, c) in enumerate([("社区党支部带领大家", "party"), ("居民投票选举代表", "vote")]):
...         segs.append(Segment(f"D{d}", str(i), t)); codes[(f"D{d}", str(i))] = {c}
>>> model = CodingModel(book, n_splits=3).fit(CodedCorpus(segs, {"E": codes}))
>>> model.suggest(["党支部开会"]).codes_for(0)
['party']
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, clone

from . import _persistence
from .agreement import cohen_kappa
from .backends.base import Backend, Inputs, get_backend, relative_positions, rule_tokens, take_rows
from .backends.codebook import category_names, code_texts
from .calibration import Calibration, calibrate, uncalibrated
from .codebook import Codebook
from .corpus import CodedCorpus, Segment, as_segments
from .exceptions import AutocodeError, AutocodeWarning, NotFittedError
from .explain import Evidence, choose_examples, example_index, similar_examples, word_evidence
from .folds import out_of_fold_decisions, out_of_fold_decisions_many, tuning_sample
from .review import Review, merge_review
from .segment import speaker_role
from .suggestion import Suggestions

__all__ = ["CodingModel", "make_inputs"]


def make_inputs(segments: Sequence[Segment], rules=None) -> Inputs:
    """Texts, the preceding segment's text in the same document, speaker roles, documents, relative
    positions in the documents and the following segment's text (over the segments given, in their order);
    with ``rules`` (a :class:`~autocode.rules.RuleSet`), the codes whose rules matched each segment."""
    texts, contexts, roles, groups = [], [], [], []
    prev_doc, prev_text = None, ""
    for s in segments:
        texts.append(s.text)
        contexts.append(prev_text if s.document == prev_doc else "")
        role = s.speaker if s.speaker in ("interviewer", "participant") else speaker_role(s.speaker)
        roles.append(role)
        groups.append(s.document)
        prev_doc, prev_text = s.document, s.text
    following = [texts[i + 1] if i + 1 < len(texts) and groups[i + 1] == groups[i] else ""
                 for i in range(len(texts))]
    matched = None
    if rules is not None:
        found = rules.apply(segments)
        matched = [rule_tokens(found.codes_for(i)) for i in range(len(texts))]
    return Inputs(texts, contexts, roles, groups, relative_positions(groups), following, matched)


class CodingModel(BaseEstimator):
    """Learns a codebook's open codes from hand-coded segments and suggests them for new segments.

    Parameters
    ----------
    codebook : Codebook
        The codebook the coding uses.
    backend : str or Backend
        A registered backend name (``"tfidf.v1"``, ``"transformer.v1"``) or an instance.
    target : str
        ``"union"``, ``"majority"`` or a coder's name: whose coding to learn.
    min_examples : int
        Codes applied to fewer segments are not learned (reported in ``rare_codes_``).
    n_splits : int
        Folds (grouped by document) for calibration and thresholds.
    threshold_metric : {"kappa", "f1"}
        What the thresholds maximise on out-of-fold scores. F1 tends to accept many false positives for rare
        codes.
    threshold_prior : float
        How many coded segments a code needs before its own best threshold counts as much as the one threshold
        that is best over all codes pooled: each code's threshold is ``(n * own + prior * pooled) / (n +
        prior)``. Small corpora give noisy per-code thresholds; the pooled one maximises pooled kappa. A code
        for which no threshold beats chance out of fold gets the pooled one.
    calibration_prior : float
        The same for the Platt scaling: a code's parameters are ``(n * own + prior * pooled) / (n + prior)``,
        the pooled ones fitted on every out-of-fold decision of every code (``inf``: one scaling for all codes;
        0: each code its own, as in autocode 0.1). With a handful of examples a code's own scaling is mostly
        noise, and it distorts how its scores compare with the other codes'.
    random_state : int or None
        Seed for the fold assignment and the backend.
    tune : bool
        Choose the settings the backend marks as data-dependent (``Backend.tunable``; for ``tfidf.v1`` the
        weight of the preceding turn, 0, 0.5 or 1) by pooled out-of-fold kappa on the training data itself.
        Settings given in ``backend_params`` are never changed. Costs one round of out-of-fold fits per
        candidate (see ``tune_segments``).
    tune_segments : int or None
        With more training segments than this, the candidates of ``tune`` are compared on a seeded sample of
        whole documents holding about ``max(tune_segments, n / number of candidates)`` of the ``n`` segments, so
        that tuning costs about one round of out-of-fold fits on all of them; the setting chosen is then
        cross-validated on every segment for its calibration and thresholds. ``None``: compared on every
        segment (one round per candidate).
    keep_examples : int
        Up to this many coded segments per code (document, segment id and text) are kept with the model, so
        that a suggestion can name the coded segments most like it (:meth:`explain`). The saved model then
        holds these quotes of the interviews; 0 keeps none.
    backend_params : dict, optional
        Parameters for the backend when ``backend`` is a name.
    rules : RuleSet, optional
        Coding rules (:func:`autocode.read_rules`, or the codebook's ``rules`` column): their matches are shown
        beside every suggestion (``Suggestions.rules``; the ``rules`` column of pre-coded files), and with the
        TF-IDF backends' ``rules_weight`` they are features of the model too. Saved with the model.
    progress : bool
        Show progress bars.
    n_jobs : int or None
        Worker processes fitting the out-of-fold folds of every tuning candidate at once, for backends that
        allow it (the TF-IDF ones); ``None``: one per core for 2,000 training segments or more
        (:data:`autocode.folds.MIN_PARALLEL_ROWS`), else all in this process; -1: one per core. The model is the
        same whatever the number. A setting of the machine: not saved.

    Attributes
    ----------
    codes_ : list of str
        The learned codes, in codebook order (columns of :meth:`predict_proba`).
    thresholds_ : ndarray
        Per-code threshold on the calibrated score.
    calibration_ : ndarray of shape (n_codes, 2)
        Platt parameters (a, b) per code: score = sigmoid(a * raw + b).
    rare_codes_ : dict
        Codes left out, with their number of examples.
    silent_roles_ : list of str
        Speaker roles never coded in training (see ``min_silent_segments``).
    cv_summary_ : dict
        Out-of-fold precision, recall and F1 per code at the chosen thresholds.
    tuning_ : dict
        With ``tune``: per tuned setting, the pooled out-of-fold kappa of each candidate and the value chosen
        (and ``segments``, the size of the sample they were compared on, when ``tune_segments`` drew one).
    global_threshold_ : float or None
        The one threshold best over all codes pooled, towards which each code's threshold is shrunk (``None``
        for a model that could not be cross-validated, and for models saved by autocode 0.1).
    code_groups_ : list of int
        The category of each learned code (see the property).
    oof_proba_ : ndarray or None
        Calibrated out-of-fold scores of the training segments (rows in the order of ``train_keys_``), the
        scores calibration and thresholds were fitted on; not saved with the model.
    train_keys_ : list of (document, segment)
        The training segments, after ``fit`` (not saved).
    examples_ : dict
        The coded segments kept per code for :meth:`explain` (see ``keep_examples``).
    backend_ : Backend
        The fitted backend.

    The model is a scikit-learn estimator: ``get_params``, ``set_params`` and ``sklearn.base.clone`` work,
    and ``backend__<name>`` reaches the parameters of a backend given as an instance.
    """

    def __init__(self, codebook: Codebook, backend: str | Backend = "tfidf.v1", *, target: str = "union",
                 min_examples: int = 3, n_splits: int = 5, random_state: int | None = 0,
                 backend_params: dict | None = None, threshold_metric: str = "kappa", threshold_prior: float = 100.0,
                 calibration_prior: float = 30.0, use_codebook: bool = True, min_silent_segments: int = 10,
                 tune: bool = True, keep_examples: int = 100, rules=None, progress: bool = False,
                 name: str | None = None, tune_segments: int | None = 4000, n_jobs: int | None = None):
        self.codebook = codebook
        self.backend = backend
        self.target = target
        self.min_examples = min_examples
        self.n_splits = n_splits
        self.random_state = random_state
        self.backend_params = backend_params
        self.threshold_metric = threshold_metric
        self.threshold_prior = threshold_prior
        self.calibration_prior = calibration_prior
        self.use_codebook = use_codebook
        self.min_silent_segments = min_silent_segments
        self.tune = tune
        self.tune_segments = tune_segments
        self.keep_examples = keep_examples
        self.rules = rules
        self.progress = progress
        self.name = name
        self.n_jobs = n_jobs

    def clone(self) -> CodingModel:
        """An unfitted copy with the same settings (``sklearn.base.clone``)."""
        return clone(self)

    @property
    def model_name(self) -> str:
        """The name the model codes under in its output (``name``, or ``autocode-<backend>``)."""
        if self.name:
            return self.name
        b = self.backend if isinstance(self.backend, str) else self.backend.name
        return f"autocode-{b}"

    def _check_fitted(self):
        if not hasattr(self, "backend_"):
            raise NotFittedError("This CodingModel is not fitted yet. Call fit(coded) or CodingModel.load(path).")

    def _new_backend(self, codes: Sequence[str] | None = None) -> Backend:
        if isinstance(self.backend, Backend):
            backend = self.backend.clone()
        else:
            cls = get_backend(self.backend)
            params = dict(self.backend_params or {})
            if "random_state" in cls().get_params() and "random_state" not in params:
                params["random_state"] = self.random_state
            backend = cls(**params)
        if "progress" in backend.get_params():  # backends with a slow encoding step show it
            backend.set_params(progress=self.progress)
        if "code_texts" in backend.get_params():  # a codebook prior: the texts of the codes it scores
            codes = self.codes_ if codes is None else codes
            backend.set_params(code_texts=code_texts(self.codebook, codes),
                               category_texts=category_names(self.codebook, codes))
        return backend

    @property
    def code_groups_(self) -> list[int]:
        """The category (范畴: the codebook level just above the deepest codes) of each learned code, as
        integers in order of first appearance; a code above that level is its own group."""
        if not hasattr(self, "codes_"):
            raise NotFittedError("This CodingModel is not fitted yet. Call fit(coded) or CodingModel.load(path).")
        depth = self.codebook.category_depth
        cats = [self.codebook.ancestor_at(c, depth) or c for c in self.codes_]
        index = {c: i for i, c in enumerate(dict.fromkeys(cats))}
        return [index[c] for c in cats]

    # -- learning ----------------------------------------------------------------------------------------
    def fit(self, coded: CodedCorpus | None = None, *, review: Review | None = None,
            transcripts=None) -> CodingModel:
        """Learn from hand-coded segments and, optionally, a reviewer's decisions on suggestions (a
        :class:`~autocode.review.Review`, from :func:`autocode.read_review`): accepted suggestions and added
        codes are positives, rejected ones negatives, untouched ones left out of their code's training rows
        and of its calibration and threshold. With ``backend="codebook.v1"`` and no ``coded``, the model
        scores every leaf code from the codebook alone (uncalibrated: see
        :mod:`autocode.backends.codebook`), and ``transcripts`` (segments of the study, uncoded, e.g. from
        :func:`autocode.read_transcripts`) give its character view the study's IDF and each code's hub
        similarity. With coded data, ``codebook.v1`` keeps the codebook alone where the blend does not beat it
        (its ``fallback``), fitted then with ``transcripts`` (by default the coded segments). Returns ``self``."""
        if coded is None and review is None:
            return self._fit_codebook_only(transcripts)
        if transcripts is not None and not getattr(
                get_backend(self.backend) if isinstance(self.backend, str) else self.backend, "codebook_prior", False):
            raise AutocodeError("transcripts are for the codebook.v1 backend (its codebook prior weighs the study's "
                                "words); with another backend, leave them out.")
        if not isinstance(coded, CodedCorpus):
            raise TypeError("fit expects a CodedCorpus (see autocode.read_coded).")
        for c in coded.used_codes():
            self.codebook.check(c)
        corpus = coded.subset(coded.coded_mask(self.target))
        segments, Y_book, known_book = corpus.segments, corpus.labels(self.codebook.ids, self.target), None
        if review is not None:
            segments, Y_book, known_book = merge_review(segments, Y_book, review, self.codebook.ids)
        if len(segments) == 0:
            raise AutocodeError(f"No segment is coded by the target {self.target!r}.")
        if not any(s.text.strip() for s in segments):
            raise AutocodeError(f"All {len(segments)} training segments have an empty text, so there is nothing to "
                                "learn from. Check that the 'text' column holds the segments' words.")
        self._choose_codes(Y_book, len(segments))
        cols = [self.codebook.ids.index(c) for c in self.codes_]
        Y = Y_book[:, cols]
        known = None if known_book is None or known_book[:, cols].all() else known_book[:, cols]
        if known is not None and "known" not in inspect.signature(self._new_backend().fit).parameters:
            warnings.warn("This backend cannot leave out single labels: segments with untouched suggestions "
                          "are left out of training.", AutocodeWarning, stacklevel=2)
            keep = known.all(axis=1)
            segments, Y, known = [s for s, k in zip(segments, keep) if k], Y[keep], None
        doc_groups = np.array([s.document for s in segments], dtype=object)
        for rule in getattr(self.rules, "rules", ()):  # rules read against another codebook
            self.codebook.check(rule.code)
        inputs, Y_all = self._training_rows(segments, Y)
        known_all = None if known is None else np.vstack([known, np.ones((len(Y_all) - len(Y), Y.shape[1]), bool)])
        # a speaker role (e.g. the interviewer) with many segments in training, none of them coded: its turns
        # are not suggested codes either (its scores are still reported)
        roles = np.array(make_inputs(segments).roles, dtype=object)
        coded_any = Y.any(axis=1)
        self.silent_roles_ = sorted(
            r for r in set(roles.tolist())
            if r and (roles == r).sum() >= self.min_silent_segments and not coded_any[roles == r].any()
        )
        groups = self.code_groups_
        self.tuning_ = {}
        proto = self._new_backend()
        n_docs = len(set(doc_groups.tolist()))
        candidates = self._candidates(proto, Y_all, groups) if n_docs >= 2 else [proto]
        prior = getattr(proto, "codebook_prior", False)
        if prior:  # the study's words for its prior: the transcripts, or these segments
            candidates[-1].fit_study(make_inputs(as_segments(transcripts) if transcripts is not None else segments))
        encoded = candidates[-1].encode(inputs)  # the last candidate's encoding serves them all
        fallback = prior and proto.get_params().get("fallback", False)
        if n_docs < 2 or self.n_splits < 2:
            if not fallback:  # the fallback says what it keeps
                warnings.warn(
                    "Fewer than 2 documents (or n_splits < 2): scores are not calibrated and thresholds default to "
                    "0.5. Code segments from more interviews for calibrated scores.",
                    AutocodeWarning,
                    stacklevel=2,
                )
            best, oof, cal = proto, None, uncalibrated(len(self.codes_))
        else:
            best, oof, cal = self._tune(candidates, encoded, Y_all, Y, doc_groups, groups, known_all)
        if fallback:
            compared = self._blend_and_prior(best, encoded, oof, cal, Y, known, roles)
            if compared.get("blend", -np.inf) <= compared["codebook alone"]:
                return self._keep_prior(segments, Y, compared, n_docs, candidates[-1])
            self.tuning_["model"] = {"candidates": compared, "chosen": "blend"}
        self._set_calibration(cal)
        self.oof_proba_ = None if oof is None else cal.proba(oof)
        self.train_keys_ = [s.key for s in segments]
        extra = {} if known_all is None else {"known": known_all}
        self.backend_ = best.clone().fit(encoded, Y_all, code_groups=groups, **extra)
        self.examples_ = choose_examples(self.train_keys_, [s.text for s in segments], Y, self.codes_,
                                         self.keep_examples)
        self.n_train_segments_ = len(segments)
        self.n_train_documents_ = len(set(doc_groups.tolist()))
        return self

    def _fit_codebook_only(self, transcripts=None, studied: Backend | None = None) -> CodingModel:
        """The codebook-only model, from ``transcripts`` or from a ``studied`` backend that took the study's
        words already (:meth:`~autocode.backends.codebook.CodebookBackend.fit_study`)."""
        backend = self._new_backend(self.codebook.leaves) if studied is None else studied
        if not getattr(backend, "codebook_prior", False):
            raise AutocodeError(f"The backend {backend.name!r} learns only from coded segments; give coded data, "
                                "or backend='codebook.v1' for a model from the codebook alone.")
        # no coded turn says whose words are coded: the interviewer's turns, where roles are known, are not
        self.codes_, self.rare_codes_, self.silent_roles_, self.tuning_ = self.codebook.leaves, {}, ["interviewer"], {}
        self._set_calibration(uncalibrated(len(self.codes_)))
        self.cv_summary_, self.oof_proba_, self.train_keys_ = {}, None, []
        if studied is not None:
            self.backend_ = studied.prior_only()
        else:
            segs = as_segments(transcripts) if transcripts is not None else []
            self.backend_ = backend.fit_prior(make_inputs(segs) if segs else None)
        self.examples_ = choose_examples([], [], np.zeros((0, len(self.codes_)), bool), self.codes_, 0)
        self.n_train_segments_ = self.n_train_documents_ = 0
        self.train_counts_ = dict.fromkeys(self.codes_, 0)
        return self

    def _blend_and_prior(self, blend: Backend, encoded, oof: np.ndarray | None, cal: Calibration, Y: np.ndarray,
                         known: np.ndarray | None, roles: np.ndarray) -> dict:
        """Pooled kappa on the coded segments of the codebook prior at its own rule (``prior > 0``) and, with
        out-of-fold scores, of the blend out of fold; each silencing the turns it would silence."""
        mask = np.ones_like(Y) if known is None else known
        silent = np.isin(roles, self.silent_roles_)[:, None]
        prior_silent = np.isin(roles, [*self.silent_roles_, "interviewer"])[:, None]
        prior = blend.prior(encoded.take_rows(np.arange(len(Y)))) > 0
        out = {"codebook alone": round(float(cohen_kappa((prior & ~prior_silent)[mask], Y[mask])), 4)}
        if oof is not None:
            accepted = (cal.proba(oof) >= cal.thresholds) & ~silent
            out["blend"] = round(float(cohen_kappa(accepted[mask], Y[mask])), 4)
        return out

    def _keep_prior(self, segments: Sequence[Segment], Y: np.ndarray, compared: dict, n_docs: int,
                    studied: Backend) -> CodingModel:
        """Become the codebook-only model on the study ``studied`` took, where the blend did not beat the prior
        (``compared``); the coded segments still give the evidence's examples."""
        if "blend" in compared:
            why = (f"the codebook prior blended with what was learned agrees with the coders less than the codebook "
                   f"alone (pooled kappa {compared['blend']:.2f} out of fold, {compared['codebook alone']:.2f})")
        else:
            why = "nothing can be checked out of fold"
        warnings.warn(f"With {n_docs} coded document(s) {why}: the model suggests from the codebook alone. Code "
                      "more interviews and train again.", AutocodeWarning, stacklevel=3)
        silent = self.silent_roles_
        self._fit_codebook_only(studied=studied)
        self.silent_roles_ = sorted({*silent, *self.silent_roles_})
        self.tuning_["model"] = {"candidates": compared, "chosen": "codebook alone"}
        self.train_keys_ = [s.key for s in segments]
        self.examples_ = choose_examples(self.train_keys_, [s.text for s in segments], Y, self.codes_,
                                         self.keep_examples)
        self.n_train_segments_ = len(segments)
        self.n_train_documents_ = n_docs
        self.train_counts_ = dict(zip(self.codes_, Y.sum(axis=0).tolist()))
        return self

    def _choose_codes(self, Y_book: np.ndarray, n_segments: int) -> None:
        """``codes_``: every code with at least ``min_examples`` coded segments; the rarer ones in
        ``rare_codes_``, with a warning. A backend with a codebook prior learns every leaf code."""
        counts = Y_book.sum(axis=0)
        per_code = dict(zip(self.codebook.ids, counts.tolist()))
        if getattr(get_backend(self.backend) if isinstance(self.backend, str) else self.backend,
                   "codebook_prior", False):
            self.codes_, self.rare_codes_ = self.codebook.leaves, {}
            self.train_counts_ = {c: per_code[c] for c in self.codes_}
            return
        used = [c for c, n in per_code.items() if n > 0]
        self.codes_ = [c for c in used if per_code[c] >= self.min_examples]
        self.rare_codes_ = {c: per_code[c] for c in used if per_code[c] < self.min_examples}
        never = [c for c in self.codebook.leaves if per_code[c] == 0]
        if never:
            shown = ", ".join(self.codebook.label(c) for c in never[:10])
            more = f" and {len(never) - 10} more" if len(never) > 10 else ""
            warnings.warn(
                f"{len(never)} code(s) of the codebook were never applied in the training data and cannot be "
                f"learned or suggested: {shown}{more}. Code examples of them (at least {self.min_examples} "
                "segments each), or leave them out of the codebook.",
                AutocodeWarning,
                stacklevel=3,
            )
        if self.rare_codes_:
            listed = ", ".join(f"{self.codebook.label(c)} ({n})" for c, n in self.rare_codes_.items())
            warnings.warn(
                f"{len(self.rare_codes_)} code(s) have fewer than {self.min_examples} coded segments and will not be "
                f"suggested: {listed}. Code more examples or lower min_examples.",
                AutocodeWarning,
                stacklevel=3,
            )
        if not self.codes_:
            raise AutocodeError(
                f"No code has at least {self.min_examples} coded segments; nothing to learn. "
                f"Segments coded: {n_segments}."
            )
        self.train_counts_ = {c: per_code[c] for c in self.codes_}

    def _training_rows(self, segments: Sequence[Segment], Y: np.ndarray) -> tuple[Inputs, np.ndarray]:
        """The backend's inputs and labels: the coded segments, then (with ``use_codebook``) each learned
        code's name and description as one more positive example of it."""
        extra = []
        if self.use_codebook:
            for j, cid in enumerate(self.codes_):
                code = self.codebook[cid]
                parts = [code.name] if code.name != code.id else []
                if code.description and code.description != code.name:
                    parts.append(code.description)
                if parts:
                    extra.append((Segment(f"\0codebook/{cid}", "0", "。".join(parts)), j))
        if not extra:
            return make_inputs(segments, self.rules), Y
        Yx = np.zeros((len(extra), Y.shape[1]), dtype=bool)
        for i, (_, j) in enumerate(extra):
            Yx[i, j] = True
        return make_inputs([*segments, *(seg for seg, _ in extra)], self.rules), np.vstack([Y, Yx])

    def _candidates(self, proto: Backend, Y: np.ndarray, groups: list[int]) -> list[Backend]:
        """The backends to compare on out-of-fold kappa: one per combination of the values of the backend's
        data-dependent settings (``Backend.tunable``) that were not given, unless tuning is off or there are
        too few documents to fold. The candidate with the richest encoding comes last."""
        given = set(self.backend_params or {}) if not isinstance(self.backend, Backend) else set(proto.params)
        grid = {k: sorted(v) for k, v in proto.tunable_for(Y, groups).items() if k not in given}
        if not self.tune or not grid or self.n_splits < 2:
            return [proto]
        # the last combination takes every largest value
        return [proto.clone().set_params(**dict(zip(grid, values))) for values in itertools.product(*grid.values())]

    def _tune(self, candidates: list[Backend], encoded, Y_all: np.ndarray, Y: np.ndarray, doc_groups: np.ndarray,
              groups: list[int], known_all: np.ndarray | None = None) -> tuple[Backend, np.ndarray, Calibration]:
        """The candidate with the best pooled out-of-fold kappa (on a sample of documents for a large corpus:
        ``tune_segments``), its out-of-fold raw scores on every segment and calibration; ``tuning_`` records
        the kappa of each value of each tuned setting."""
        def oof_and_calibration(bs, rows=None):  # per backend: out-of-fold scores, calibration, labels
            if rows is None:
                enc, y_all, docs, k_all = encoded, Y_all, doc_groups, known_all
            else:  # the sampled segments, then the codebook's own rows
                take = np.concatenate([rows, np.arange(len(Y), len(Y_all))])
                enc, y_all, docs = take_rows(encoded, take), Y_all[take], doc_groups[rows]
                k_all = None if known_all is None else known_all[take]
            oofs = out_of_fold_decisions_many(bs, enc, y_all, docs, n_splits=self.n_splits, code_groups=groups,
                                              random_state=self.random_state, progress=self.progress, known=k_all,
                                              n_jobs=self.n_jobs)
            known, y = None if k_all is None else k_all[: len(docs)], y_all[: len(docs)]
            return [(oof, self._calibrate(oof, y, known), known, y) for oof in oofs]

        if len(candidates) == 1:
            [(oof, cal, _, _)] = oof_and_calibration(candidates)
            return candidates[0], oof, cal
        tuned = [k for k in candidates[0].tunable if len({str(c.get_params()[k]) for c in candidates}) > 1]
        rows = tuning_sample(doc_groups, self.tune_segments, len(candidates), self.n_splits, self.random_state)
        best = None
        for b, (oof, cal, known, y) in zip(candidates, oof_and_calibration(candidates, rows)):
            mask = np.ones_like(y) if known is None else known
            kappa = cohen_kappa((cal.proba(oof) >= cal.thresholds)[mask], y[mask])
            for key in tuned:  # per value of a setting: the best kappa of the candidates with it
                value = b.get_params()[key]
                tried = self.tuning_.setdefault(key, {"candidates": {}})["candidates"]
                tried[str(value)] = max(kappa, tried.get(str(value), -np.inf))
            if best is None or kappa > best[0]:
                best = (kappa, b, oof, cal)
        _, b, oof, cal = best
        for key in self.tuning_:
            self.tuning_[key]["chosen"] = b.get_params()[key]
            if rows is not None:
                self.tuning_[key]["segments"] = len(rows)
        if rows is not None:  # the chosen setting, cross-validated on every segment
            [(oof, cal, _, _)] = oof_and_calibration([b])
        return b, oof, cal

    def _calibrate(self, oof: np.ndarray, Y: np.ndarray, known: np.ndarray | None = None) -> Calibration:
        return calibrate(oof, Y, calibration_prior=self.calibration_prior, threshold_prior=self.threshold_prior,
                         metric=self.threshold_metric, known=known)

    def _set_calibration(self, cal: Calibration) -> None:
        self.calibration_ = cal.coef
        self.thresholds_ = cal.thresholds
        self.global_threshold_ = cal.global_threshold
        self.cv_summary_ = dict(zip(self.codes_, cal.summary))

    def out_of_fold_proba(self, segments, Y: np.ndarray, *, n_splits: int | None = None) -> np.ndarray:
        """Calibrated out-of-fold scores of hand-coded segments (segments x ``codes_``).

        Each segment is scored by a copy of the fitted backend (same settings, tuned ones included) trained
        without its document, with the model's folds (``n_splits``; the ``n_splits`` given here when the
        model has fewer than 2), the codebook's own words always in training, and the model's calibration:
        the kind of scores its calibration and thresholds were fitted on. For the model's own training
        segments and labels, the scores computed during ``fit`` (``oof_proba_``) are returned.
        """
        self._check_fitted()
        segs = as_segments(segments)
        Y = np.asarray(Y, dtype=bool)
        if Y.shape != (len(segs), len(self.codes_)):
            raise AutocodeError(f"Y must have one row per segment and one column per learned code, "
                                f"{(len(segs), len(self.codes_))}; got {Y.shape}.")
        if (getattr(self, "oof_proba_", None) is not None and [s.key for s in segs] == self.train_keys_
                and self.n_splits >= 2):
            return self.oof_proba_
        groups = np.array([s.document for s in segs])
        folds = self.n_splits if self.n_splits >= 2 else n_splits
        n_docs = len(set(groups.tolist()))
        if folds is None or folds < 2 or n_docs < 2:
            raise AutocodeError(f"Out-of-fold scores need segments from at least 2 documents and at least 2 folds "
                                f"(documents: {n_docs}, folds: {folds}); the model has n_splits={self.n_splits}, "
                                "give n_splits=5 for a model fitted without folds.")
        inputs, Y_all = self._training_rows(segs, Y)
        proto = self.backend_.clone()  # the fitted backend's settings (e.g. a tuned context weight), unfitted
        raw = out_of_fold_decisions(proto, proto.encode(inputs), Y_all, groups, n_splits=folds,
                                    random_state=self.random_state, code_groups=self.code_groups_,
                                    n_jobs=self.n_jobs)
        return Calibration(self.calibration_, self.thresholds_).proba(raw)

    # -- predicting ----------------------------------------------------------------------------------------
    def decision_function(self, segments) -> np.ndarray:
        """Raw backend scores (segments x codes_)."""
        self._check_fitted()
        segs = as_segments(segments)
        if not segs:
            return np.zeros((0, len(self.codes_)))
        return self.backend_.decision_function(self.backend_.encode(make_inputs(segs, self.rules)))

    def predict_proba(self, segments, batch_size: int = 2048, *, inputs: Inputs | None = None) -> np.ndarray:
        """Calibrated scores in [0, 1] (segments x ``codes_``). ``inputs``: the segments' model inputs when they
        are a batch of a longer stream (:func:`autocode.streaming.stream_batches`), else built from them."""
        self._check_fitted()
        segs = as_segments(segments)
        out = np.zeros((len(segs), len(self.codes_)))
        # batches of batch_size segments; with an interview guide, of whole documents (a turn's place in the
        # guide depends on the whole interview); contexts and positions are always over whole documents
        whole = len(getattr(self.backend_, "guide_", None) or ())
        ends = [i for i in range(1, len(segs)) if not whole or segs[i].document != segs[i - 1].document]
        ends = [*ends, len(segs)] if segs else []
        bounds, start = [], 0
        for e in ends:
            if e - start >= batch_size or e == len(segs):
                bounds.append((start, e))
                start = e
        if self.progress and len(bounds) > 1:
            from tqdm.auto import tqdm

            bounds = tqdm(bounds, desc="pre-coding", unit="batch")
        cal = Calibration(self.calibration_, self.thresholds_)
        inputs = make_inputs(segs, self.rules) if inputs is None else self._with_rules(inputs, segs)
        for s, e in bounds:
            out[s:e] = cal.proba(self.backend_.decision_function(self.backend_.encode(inputs.rows(s, e))))
        return out

    def _silenced(self, segs: list[Segment]) -> np.ndarray:
        if not self.silent_roles_:
            return np.zeros(len(segs), dtype=bool)
        silent = set(self.silent_roles_)
        return np.array([r in silent for r in make_inputs(segs).roles], dtype=bool)

    def predict(self, segments) -> np.ndarray:
        """Boolean matrix: which codes clear their threshold (never for turns of a silent role)."""
        segs = as_segments(segments)
        return (self.predict_proba(segs) >= self.thresholds_) & ~self._silenced(segs)[:, None]

    def suggest(self, segments, *, min_score: float | None = None, explain: bool = False,
                inputs: Inputs | None = None) -> Suggestions:
        """Suggestions for every segment: scores of every learned code, accepted codes, their categories.

        Parameters
        ----------
        segments : CodedCorpus, list of Segment or str, or one str
            The segments to pre-code; each appears in the result, with or without suggestions. A single
            string is one segment.
        min_score : float, optional
            Accept codes whose calibrated score is at least this, instead of the per-code thresholds.
        explain : bool
            Give every accepted code its evidence (:meth:`explain`), in ``Suggestions.evidence`` and in the
            files written from them. What the model's coding rules matched is given whether or not
            (``Suggestions.rules``).
        inputs : Inputs, optional
            The segments' model inputs when they are one batch of a longer stream (their neighbours and
            positions in the whole documents; :func:`autocode.streaming.stream_batches`).
        """
        segs = as_segments(segments)
        scores = self.predict_proba(segs, inputs=inputs)
        sug = Suggestions(segs, self.codes_, scores, self.thresholds_, self.codebook, coder=self.model_name,
                          min_score=min_score, silenced=self._silenced(segs),
                          rules=None if self.rules is None else self.rules.apply(segs))
        if explain:
            acc = sug.accepted
            sug.evidence = self._evidence(segs, [(int(i), int(j)) for i, j in zip(*np.nonzero(acc))],
                                          inputs=inputs)
        return sug

    def explain(self, segments, codes: Sequence[str] | None = None, *, k: int = 5, n_similar: int = 2
                ) -> list[dict[str, Evidence]]:
        """Why each segment gets its codes: per segment, code -> :class:`~autocode.explain.Evidence` (the
        ``k`` words or phrases of the segment that raised the code's score most, and the ``n_similar`` coded
        segments of that code most like it). ``codes``: the codes to explain for every segment (default:
        each segment's accepted codes)."""
        self._check_fitted()
        segs = as_segments(segments)
        if codes is None:
            pairs = [(int(i), int(j)) for i, j in zip(*np.nonzero(self.predict(segs)))]
        else:
            unknown = [c for c in codes if c not in self.codes_]
            if unknown:
                raise AutocodeError(f"The model does not suggest {', '.join(map(repr, unknown))}; it learned "
                                    f"{', '.join(self.codes_)}.")
            pairs = [(i, self.codes_.index(c)) for i in range(len(segs)) for c in codes]
        out: list[dict[str, Evidence]] = [{} for _ in segs]
        for (i, code), ev in self._evidence(segs, pairs, k, n_similar).items():
            out[i][code] = ev
        return out

    def _with_rules(self, inputs: Inputs, segs: list[Segment]) -> Inputs:
        """``inputs`` (built without the model's rules, e.g. by the streaming reader) with the codes whose rules
        matched each segment."""
        if self.rules is None or inputs.rules is not None:
            return inputs
        found = self.rules.apply(segs)
        return dataclasses.replace(inputs, rules=[rule_tokens(found.codes_for(i)) for i in range(len(segs))])

    def _evidence(self, segs: list[Segment], pairs: list[tuple[int, int]], k: int = 5, n_similar: int = 2,
                  inputs: Inputs | None = None) -> dict[tuple[int, str], Evidence]:
        inputs = make_inputs(segs, self.rules) if inputs is None else self._with_rules(inputs, segs)
        words, method = word_evidence(self.backend_, inputs, pairs, k)
        named = [(i, self.codes_[j]) for i, j in pairs]
        examples = getattr(self, "examples_", {})
        cached = self.__dict__.get("_example_index_cache")  # built once for the batches of a stream
        if cached is None or cached[0] is not examples:
            cached = self.__dict__["_example_index_cache"] = (examples, example_index(examples))
        similar = similar_examples(examples, [s.text for s in segs], named, n_similar, index=cached[1])
        guide = getattr(self.backend_, "guide_", None)  # the section of the interview guide, as evidence
        sec = guide.locate(inputs.texts, inputs.roles, inputs.groups) if guide is not None and pairs else None
        section = ["" if sec is None or sec[i] < 0 else f"{sec[i] + 1}. {guide.labels[sec[i]]}"
                   for i in range(len(segs))]
        return {(i, code): Evidence(code, words[(i, j)], similar[(i, code)], method, section[i])
                for (i, j), (_, code) in zip(pairs, named)}

    # -- saving --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to a folder: ``model.json`` (settings, codebook, thresholds, versions) and ``arrays.npz``.

        Nothing is pickled: loading a model someone sent you cannot run code.
        """
        self._check_fitted()
        return _persistence.save_model(self, path)

    @classmethod
    def load(cls, path: str | Path) -> CodingModel:
        """Load a model folder written by :meth:`save` (by this or an earlier autocode).

        Raises
        ------
        ModelFileError
            If files are missing, the arrays do not match their checksum, or the format version is newer than
            this autocode understands.
        """
        return _persistence.load_model(cls, path)

    def __repr__(self) -> str:
        fitted = f", {len(self.codes_)} codes" if hasattr(self, "codes_") else ""
        b = self.backend if isinstance(self.backend, str) else self.backend.name
        return f"CodingModel(backend={b!r}, target={self.target!r}{fitted})"
