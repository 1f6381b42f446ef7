"""The coding model: a codebook plus a backend, with calibrated scores and a threshold per code.

``fit`` learns from a :class:`~autocode.corpus.CodedCorpus`:

1. the target coding per segment (union of coders, majority, or one named coder);
2. the codes to learn: every code applied to at least ``min_examples`` segments; rarer codes are reported in
   ``rare_codes_`` with an :class:`~autocode.exceptions.AutocodeWarning` and are never suggested;
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

import itertools
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._version import __version__
from .agreement import cohen_kappa
from .backends.base import Backend, Inputs, get_backend, relative_positions, take_rows
from .checksum import sha256_file as _sha256
from .codebook import Codebook
from .corpus import CodedCorpus, Segment
from .exceptions import AutocodeError, AutocodeWarning, ModelFileError, NotFittedError
from .folds import grouped_folds
from .segment import speaker_role
from .suggestion import Suggestions

__all__ = ["CodingModel", "make_inputs", "grouped_folds"]

MODEL_FORMAT = "autocode-model"
MODEL_FORMAT_VERSION = 1
_ARRAYS = "arrays.npz"
_META = "model.json"


def make_inputs(segments: Sequence[Segment]) -> Inputs:
    """Texts, the preceding segment's text in the same document, speaker roles, documents, relative
    positions in the documents and the following segment's text (over the segments given, in their order)."""
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
    return Inputs(texts, contexts, roles, groups, relative_positions(groups), following)


def _as_segments(data) -> list[Segment]:
    if isinstance(data, CodedCorpus):
        return list(data.segments)
    data = list(data)
    out = []
    for i, item in enumerate(data):
        if isinstance(item, Segment):
            out.append(item)
        elif isinstance(item, str):
            out.append(Segment("input", str(i + 1), item))
        else:
            raise TypeError(f"Expected Segment objects or strings, got {type(item).__name__} at position {i}.")
    return out


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Fit p = sigmoid(a * s + b) to out-of-fold scores (Platt 1999, with his target smoothing)."""
    from scipy.optimize import minimize

    n_pos, n_neg = y.sum(), (~y).sum()
    t = np.where(y, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    s = scores.astype(np.float64)

    def loss(ab):
        z = ab[0] * s + ab[1]
        # log(1 + exp(z)) - t z, stable
        return np.sum(np.logaddexp(0, z) - t * z) + 1e-6 * ab[0] ** 2

    def grad(ab):
        z = ab[0] * s + ab[1]
        r = 1 / (1 + np.exp(-z)) - t
        return np.array([np.sum(r * s) + 2e-6 * ab[0], np.sum(r)])

    res = minimize(loss, x0=np.array([1.0, 0.0]), jac=grad, method="L-BFGS-B")
    a, b = res.x
    if not np.isfinite(a) or a <= 0:  # scores anti-correlated or flat: fall back to the base rate
        return 0.0, float(np.log((n_pos + 1) / (n_neg + 1)))
    return float(a), float(b)


NEVER = 1.01
"""Threshold of a code the model could not learn out of fold: above every score, so it is never suggested."""


def _best_threshold(p: np.ndarray, y: np.ndarray, metric: str = "kappa") -> tuple[float, float]:
    """The cut on ``p`` that maximises Cohen's kappa (or F1) over the units, as the midpoint between
    neighbouring scores. Returns ``(threshold, value)``; ``(NEVER, 0.0)`` when no cut beats chance.

    >>> _best_threshold(np.array([0.9, 0.8, 0.3, 0.1]), np.array([True, True, False, False]))
    (0.55, 1.0)
    """
    y = np.asarray(y, dtype=bool)
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    n, pos = len(ps), int(ys.sum())
    tp = np.cumsum(ys).astype(float)
    k = np.arange(1, n + 1, dtype=float)  # predicted positives when cutting after position i
    fp = k - tp
    fn = pos - tp
    tn = n - pos - fp
    if metric == "f1":
        value = 2 * tp / (k + pos)
    elif metric == "kappa":
        denom = (tp + fp) * (fp + tn) + (tp + fn) * (fn + tn)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = np.where(denom > 0, 2 * (tp * tn - fn * fp) / denom, 0.0)
    else:
        raise ValueError(f"metric must be 'kappa' or 'f1', got {metric!r}")
    valid = np.r_[ps[1:] < ps[:-1], True]  # only cut where the next score differs
    value = np.where(valid, value, -np.inf)
    i = int(np.argmax(value))
    if not value[i] > 0:
        return NEVER, 0.0
    nxt = ps[i + 1] if i + 1 < n else 0.0
    return float((ps[i] + nxt) / 2), float(value[i])


class CodingModel:
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
        candidate.
    backend_params : dict, optional
        Parameters for the backend when ``backend`` is a name.
    progress : bool
        Show progress bars.

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
        With ``tune``: per tuned setting, the pooled out-of-fold kappa of each candidate and the value chosen.
    """

    def __init__(self, codebook: Codebook, backend: str | Backend = "tfidf.v1", *, target: str = "union",
                 min_examples: int = 3, n_splits: int = 5, random_state: int | None = 0,
                 backend_params: dict | None = None, threshold_metric: str = "kappa", threshold_prior: float = 100.0,
                 calibration_prior: float = 30.0, use_codebook: bool = True, min_silent_segments: int = 10,
                 tune: bool = True, progress: bool = False, name: str | None = None):
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
        self.progress = progress
        self.name = name

    def get_params(self) -> dict:
        return {"codebook": self.codebook, "backend": self.backend, "target": self.target,
                "min_examples": self.min_examples, "n_splits": self.n_splits, "random_state": self.random_state,
                "backend_params": self.backend_params,
                "threshold_metric": self.threshold_metric, "threshold_prior": self.threshold_prior,
                "calibration_prior": self.calibration_prior, "use_codebook": self.use_codebook,
                "min_silent_segments": self.min_silent_segments, "tune": self.tune, "progress": self.progress,
                "name": self.name}

    def clone(self) -> CodingModel:
        """An unfitted copy with the same settings."""
        params = self.get_params()
        if isinstance(self.backend, Backend):
            params["backend"] = self.backend.clone()
        return type(self)(**params)

    # -- helpers -----------------------------------------------------------------------------------------
    def _new_backend(self) -> Backend:
        if isinstance(self.backend, Backend):
            return self.backend.clone()
        cls = get_backend(self.backend)
        params = dict(self.backend_params or {})
        if "random_state" in _init_params(cls) and "random_state" not in params:
            params["random_state"] = self.random_state
        return cls(**params)

    @property
    def model_name(self) -> str:
        if self.name:
            return self.name
        b = self.backend if isinstance(self.backend, str) else self.backend.name
        return f"autocode-{b}"

    def _check_fitted(self):
        if not hasattr(self, "backend_"):
            raise NotFittedError("This CodingModel is not fitted yet. Call fit(coded) or CodingModel.load(path).")

    # -- learning ----------------------------------------------------------------------------------------
    def fit(self, coded: CodedCorpus) -> CodingModel:
        """Learn from hand-coded segments; returns ``self``."""
        if not isinstance(coded, CodedCorpus):
            raise TypeError("fit expects a CodedCorpus (see autocode.read_coded).")
        for c in coded.used_codes():
            self.codebook.check(c)
        mask = coded.coded_mask(self.target)
        corpus = coded.subset(mask)
        if len(corpus) == 0:
            raise AutocodeError(f"No segment is coded by the target {self.target!r}.")
        counts = corpus.labels(self.codebook.ids, self.target).sum(axis=0)
        per_code = dict(zip(self.codebook.ids, counts.tolist()))
        used = [c for c, n in per_code.items() if n > 0]
        self.codes_ = [c for c in used if per_code[c] >= self.min_examples]
        self.rare_codes_ = {c: per_code[c] for c in used if per_code[c] < self.min_examples}
        if self.rare_codes_:
            listed = ", ".join(f"{self.codebook.label(c)} ({n})" for c, n in self.rare_codes_.items())
            warnings.warn(
                f"{len(self.rare_codes_)} code(s) have fewer than {self.min_examples} coded segments and will not be "
                f"suggested: {listed}. Code more examples or lower min_examples.",
                AutocodeWarning,
                stacklevel=2,
            )
        if not self.codes_:
            raise AutocodeError(
                f"No code has at least {self.min_examples} coded segments; nothing to learn. "
                f"Segments coded: {len(corpus)}."
            )
        Y = corpus.labels(self.codes_, self.target)
        inputs = make_inputs(corpus.segments)
        n_real = len(corpus)
        extra = self._codebook_examples() if self.use_codebook else []
        if extra:
            inputs = make_inputs([*corpus.segments, *(seg for seg, _ in extra)])
            Yx = np.zeros((len(extra), len(self.codes_)), dtype=bool)
            for i, (_, j) in enumerate(extra):
                Yx[i, j] = True
            Y_all = np.vstack([Y, Yx])
        else:
            Y_all = Y
        # a speaker role (e.g. the interviewer) with many segments in training, none of them coded: its turns
        # are not suggested codes either (its scores are still reported)
        roles = np.array(make_inputs(corpus.segments).roles, dtype=object)
        coded_any = Y.any(axis=1)
        self.silent_roles_ = sorted(
            r for r in set(roles.tolist())
            if r and (roles == r).sum() >= self.min_silent_segments and not coded_any[roles == r].any()
        )
        proto = self._new_backend()
        proto.code_groups = self._code_groups()
        if hasattr(proto, "progress"):  # backends with a slow encoding step show it
            proto.progress = self.progress
        candidates = self._candidates(proto, Y_all) if len(set(corpus.groups.tolist())) >= 2 else [proto]
        encoded = candidates[-1].encode(inputs)  # the last candidate's encoding serves them all
        self.tuning_ = {}
        tuned = [k for k in proto.tunable if len({str(c.params[k]) for c in candidates}) > 1]
        best = None
        for b in candidates:
            oof = self._out_of_fold(b, encoded, Y_all, corpus.groups, n_real)
            self._calibrate(oof, Y)
            if len(candidates) == 1:
                best = (0.0, b, oof)
                break
            P = _sigmoid(oof * self.calibration_[:, 0] + self.calibration_[:, 1])
            kappa = cohen_kappa((P >= self.thresholds_).ravel(), Y.ravel())
            for key in tuned:  # per value of a setting: the best kappa of the candidates with it
                tried = self.tuning_.setdefault(key, {"candidates": {}})["candidates"]
                tried[str(b.params[key])] = max(kappa, tried.get(str(b.params[key]), -np.inf))
            if best is None or kappa > best[0]:
                best = (kappa, b, oof)
        _, proto, oof = best
        for key in self.tuning_:
            self.tuning_[key]["chosen"] = proto.params[key]
        if len(candidates) > 1:
            self._calibrate(oof, Y)
        self.backend_ = proto.clone().fit(encoded, Y_all)
        self.n_train_segments_ = len(corpus)
        self.n_train_documents_ = len(corpus.documents)
        self.train_counts_ = {c: per_code[c] for c in self.codes_}
        return self

    def _code_groups(self) -> list[int]:
        """The category (范畴: the codebook level just above the deepest codes) of each learned code, as
        integers; a code above that level is its own group."""
        depth = self.codebook.category_depth
        cats = [self.codebook.ancestor_at(c, depth) or c for c in self.codes_]
        index = {c: i for i, c in enumerate(dict.fromkeys(cats))}
        return [index[c] for c in cats]

    def _codebook_examples(self) -> list[tuple[Segment, int]]:
        """The codebook's own words as extra positive examples: each learned code's name and description."""
        out = []
        for j, cid in enumerate(self.codes_):
            code = self.codebook[cid]
            parts = [code.name] if code.name != code.id else []
            if code.description and code.description != code.name:
                parts.append(code.description)
            if parts:
                out.append((Segment(f"\0codebook/{cid}", "0", "。".join(parts)), j))
        return out

    def _candidates(self, proto: Backend, Y: np.ndarray) -> list[Backend]:
        """The backends to compare on out-of-fold kappa: one per combination of the values of the backend's
        data-dependent settings (``Backend.tunable``) that were not given, unless tuning is off or there are
        too few documents to fold. The candidate with the richest encoding comes last."""
        given = set(self.backend_params or {}) if not isinstance(self.backend, Backend) else set(proto.params)
        grid = {k: sorted(v) for k, v in proto.tunable_for(Y).items() if k not in given}
        if not self.tune or not grid or self.n_splits < 2:
            return [proto]
        out = []
        for values in itertools.product(*grid.values()):  # the last combination takes every largest value
            b = proto.clone()
            b.params.update(zip(grid, values))
            if hasattr(proto, "progress"):
                b.progress = proto.progress
            out.append(b)
        return out

    def _out_of_fold(self, proto: Backend, encoded, Y: np.ndarray, groups: np.ndarray,
                     n_real: int) -> np.ndarray | None:
        """Out-of-fold raw scores of the first ``n_real`` rows; rows after them (codebook examples) are always
        in the training part."""
        n_docs = len(set(groups.tolist()))
        if n_docs < 2 or self.n_splits < 2:
            warnings.warn(
                "Fewer than 2 documents (or n_splits < 2): scores are not calibrated and thresholds default to "
                "0.5. Code segments from more interviews for calibrated scores.",
                AutocodeWarning,
                stacklevel=3,
            )
            return None
        folds = grouped_folds(groups, self.n_splits, self.random_state)
        always = np.arange(n_real, Y.shape[0])
        oof = np.zeros((n_real, Y.shape[1]), dtype=np.float64)
        iterator = folds
        if self.progress:
            from tqdm.auto import tqdm

            iterator = tqdm(folds, desc="threshold folds", unit="fold")
        for train, test in iterator:
            train = np.concatenate([train, always])
            b = proto.clone().fit(take_rows(encoded, train), Y[train])
            oof[test] = b.decision_function(take_rows(encoded, test))
        return oof

    def _calibrate(self, oof: np.ndarray | None, Y: np.ndarray) -> None:
        k = Y.shape[1]
        self.calibration_ = np.zeros((k, 2))
        self.thresholds_ = np.full(k, 0.5)
        self.cv_summary_ = {}
        if oof is None:
            self.calibration_[:, 0] = 1.0
            return
        n_pos = Y.sum(axis=0)
        # one Platt scaling over every code's out-of-fold decisions pooled, and each code's own, trusted in
        # proportion to its examples: the raw scores of the per-code classifiers are on comparable scales, and a
        # rare code's own scaling is mostly noise
        pooled = np.array(_platt(oof.ravel(), Y.ravel()))
        own_weight = _shrinkage(n_pos, self.calibration_prior)
        for j in range(k):
            own = np.array(_platt(oof[:, j], Y[:, j])) if own_weight[j] > 0 else pooled
            self.calibration_[j] = own_weight[j] * own + (1 - own_weight[j]) * pooled
        P = _sigmoid(oof * self.calibration_[:, 0] + self.calibration_[:, 1])
        # one threshold for all codes, from every out-of-fold decision pooled ...
        t_global, _ = _best_threshold(P.ravel(), Y.ravel(), self.threshold_metric)
        self.global_threshold_ = t_global
        own_weight = _shrinkage(n_pos, self.threshold_prior)
        for j, code in enumerate(self.codes_):
            y, p = Y[:, j], P[:, j]
            t_code, _ = _best_threshold(p, y, self.threshold_metric)
            # ... and each code's own, trusted in proportion to its examples (shrinkage towards the global one);
            # a code for which no cut beats chance out of fold keeps the pooled threshold (never suggesting it
            # costs more agreement on unseen interviews than its occasional false suggestions)
            if t_global >= NEVER:
                t = NEVER
            elif t_code >= NEVER:
                t = t_global
            else:
                t = own_weight[j] * t_code + (1 - own_weight[j]) * t_global
            pred = p >= t
            self.thresholds_[j] = t
            tp = int((pred & y).sum())
            self.cv_summary_[code] = {
                "precision": tp / max(int(pred.sum()), 1),
                "recall": tp / max(int(n_pos[j]), 1),
                "f1": 2 * tp / max(int(pred.sum()) + int(n_pos[j]), 1),
                "kappa": cohen_kappa(pred, y),
                "support": int(n_pos[j]),
            }

    # -- predicting ----------------------------------------------------------------------------------------
    def decision_function(self, segments) -> np.ndarray:
        """Raw backend scores (segments x codes_)."""
        self._check_fitted()
        segs = _as_segments(segments)
        if not segs:
            return np.zeros((0, len(self.codes_)))
        return self.backend_.decision_function(self.backend_.encode(make_inputs(segs)))

    def predict_proba(self, segments, batch_size: int = 2048) -> np.ndarray:
        """Calibrated scores in [0, 1] (segments x ``codes_``)."""
        self._check_fitted()
        segs = _as_segments(segments)
        out = np.zeros((len(segs), len(self.codes_)))
        starts = range(0, len(segs), batch_size)
        if self.progress and len(segs) > batch_size:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="pre-coding", unit="batch")
        a, b = self.calibration_[:, 0], self.calibration_[:, 1]
        inputs = make_inputs(segs)  # contexts and positions over whole documents, across batch borders
        for s in starts:
            chunk = inputs.rows(s, s + batch_size)
            raw = self.backend_.decision_function(self.backend_.encode(chunk))
            out[s : s + len(chunk)] = _sigmoid(raw * a + b)
        return out

    def _silenced(self, segs: list[Segment]) -> np.ndarray:
        silent = set(getattr(self, "silent_roles_", []))
        if not silent:
            return np.zeros(len(segs), dtype=bool)
        return np.array([r in silent for r in make_inputs(segs).roles], dtype=bool)

    def predict(self, segments) -> np.ndarray:
        """Boolean matrix: which codes clear their threshold (never for turns of a silent role)."""
        segs = _as_segments(segments)
        return (self.predict_proba(segs) >= self.thresholds_) & ~self._silenced(segs)[:, None]

    def suggest(self, segments, *, min_score: float | None = None) -> Suggestions:
        """Suggestions for every segment: scores of every learned code, accepted codes, their categories.

        Parameters
        ----------
        segments : CodedCorpus, list of Segment, or list of str
            The segments to pre-code; each appears in the result, with or without suggestions.
        min_score : float, optional
            Accept codes whose calibrated score is at least this, instead of the per-code thresholds.
        """
        segs = _as_segments(segments)
        scores = self.predict_proba(segs)
        return Suggestions(segs, self.codes_, scores, self.thresholds_, self.codebook, coder=self.model_name,
                           min_score=min_score, silenced=self._silenced(segs))

    # -- saving --------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save to a folder: ``model.json`` (settings, codebook, thresholds, versions) and ``arrays.npz``.

        Nothing is pickled: loading a model someone sent you cannot run code.
        """
        self._check_fitted()
        path = Path(path)
        if path.exists() and not path.is_dir():
            raise ModelFileError(f"{path} is a file; a model is saved as a folder. Choose a new folder name.")
        path.mkdir(parents=True, exist_ok=True)
        meta, arrays = self.backend_.get_state()
        arrays = {f"backend/{k}": np.asarray(v) for k, v in arrays.items()}
        arrays["calibration"] = self.calibration_
        arrays["thresholds"] = self.thresholds_
        for k, v in arrays.items():
            if v.dtype == object:
                raise AutocodeError(f"Array {k!r} has dtype object and cannot be saved without pickle.")
        np.savez(path / _ARRAYS, **arrays)
        digest = _sha256(path / _ARRAYS)
        extra = {name: _sha256(path / name) for name in self.backend_.save_files(path)}
        doc = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "autocode_version": __version__,
            "name": self.model_name,
            "backend": self.backend_.name,
            "backend_params": self.backend_.get_params(),
            "backend_state": meta,
            "settings": {"target": self.target, "min_examples": self.min_examples, "n_splits": self.n_splits,
                         "random_state": self.random_state, "threshold_metric": self.threshold_metric,
                         "threshold_prior": self.threshold_prior,
                         "calibration_prior": self.calibration_prior, "use_codebook": self.use_codebook,
                         "min_silent_segments": self.min_silent_segments, "tune": self.tune},
            "tuning": self.tuning_,
            "codebook": self.codebook.to_dict(),
            "codes": self.codes_,
            "rare_codes": self.rare_codes_,
            "silent_roles": self.silent_roles_,
            "cv_summary": self.cv_summary_,
            "training": {"segments": self.n_train_segments_, "documents": self.n_train_documents_,
                         "counts": self.train_counts_},
            "arrays_sha256": digest,
            "files_sha256": extra,
        }
        with open(path / _META, "w", encoding="utf-8") as f:
            json.dump(doc, f, ensure_ascii=False, indent=1)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CodingModel:
        """Load a model folder written by :meth:`save`.

        Raises
        ------
        ModelFileError
            If files are missing, the arrays do not match their checksum, or the format version is newer than
            this autocode understands.
        """
        path = Path(path)
        meta_path, arr_path = path / _META, path / _ARRAYS
        if not path.is_dir():
            raise ModelFileError(f"{path}: not a model folder. Train one with 'autocode train ... --out {path}'.")
        for p in (meta_path, arr_path):
            if not p.exists():
                raise ModelFileError(f"{path}: missing {p.name}. The folder is incomplete; copy the whole folder.")
        try:
            doc = json.loads(meta_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ModelFileError(f"{meta_path}: not valid JSON ({err}). The file is damaged.") from None
        if not isinstance(doc, dict) or doc.get("format") != MODEL_FORMAT:
            raise ModelFileError(f"{meta_path}: not an autocode model file (no 'format': '{MODEL_FORMAT}').")
        version = doc.get("format_version")
        if not isinstance(version, int) or version > MODEL_FORMAT_VERSION:
            raise ModelFileError(
                f"{meta_path}: model format version {version!r} was written by autocode "
                f"{doc.get('autocode_version', '?')}; this autocode ({__version__}) reads up to version "
                f"{MODEL_FORMAT_VERSION}. Upgrade autocode (pip install -U autocode) or retrain the model."
            )
        files = {_ARRAYS: doc.get("arrays_sha256"), **(doc.get("files_sha256") or {})}
        for name, expected in files.items():
            if not isinstance(name, str) or Path(name).name != name or name in ("", ".", ".."):
                raise ModelFileError(f"{meta_path}: lists the file {name!r}, which is not a plain file name in "
                                     "the model folder. The file was tampered with.")
            p = path / name
            if not p.exists():
                raise ModelFileError(f"{path}: missing {name}. The folder is incomplete; copy the whole folder.")
            if _sha256(p) != expected:
                raise ModelFileError(
                    f"{p}: checksum does not match model.json; the file was changed or damaged. "
                    "Copy the model folder again or retrain."
                )
        try:
            with np.load(arr_path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except ValueError as err:
            raise ModelFileError(f"{arr_path}: cannot read arrays without pickle ({err}).") from None
        try:
            book = Codebook.from_dict(doc["codebook"])
            settings = doc["settings"]
            model = cls(book, doc["backend"], target=settings["target"], min_examples=settings["min_examples"],
                        n_splits=settings["n_splits"], random_state=settings["random_state"],
                        threshold_metric=settings.get("threshold_metric", "kappa"),
                        threshold_prior=settings.get("threshold_prior", 10.0),
                        calibration_prior=settings.get("calibration_prior", 0.0),
                        use_codebook=settings.get("use_codebook", True),
                        min_silent_segments=settings.get("min_silent_segments", 10),
                        tune=settings.get("tune", False),
                        backend_params=doc["backend_params"], name=doc.get("name"))
            backend_cls = get_backend(doc["backend"])
            barrays = {k[len("backend/"):]: v for k, v in arrays.items() if k.startswith("backend/")}
            model.backend_ = backend_cls.from_state(doc["backend_params"], doc["backend_state"], barrays)
            model.backend_.load_files(path)
            model.codes_ = list(doc["codes"])
            for c in model.codes_:
                book.check(c)
            model.calibration_ = arrays["calibration"]
            model.thresholds_ = arrays["thresholds"]
            if model.calibration_.shape != (len(model.codes_), 2) or model.thresholds_.shape != (len(model.codes_),):
                raise ValueError("calibration/thresholds do not match the number of codes")
            model.rare_codes_ = dict(doc.get("rare_codes", {}))
            model.silent_roles_ = list(doc.get("silent_roles", []))
            model.cv_summary_ = dict(doc.get("cv_summary", {}))
            model.tuning_ = dict(doc.get("tuning", {}))
            tr = doc.get("training", {})
            model.n_train_segments_ = tr.get("segments")
            model.n_train_documents_ = tr.get("documents")
            model.train_counts_ = tr.get("counts", {})
        except (KeyError, TypeError, ValueError) as err:
            raise ModelFileError(f"{path}: the model files are inconsistent ({type(err).__name__}: {err}).") from None
        return model

    def __repr__(self) -> str:
        fitted = f", {len(self.codes_)} codes" if hasattr(self, "codes_") else ""
        b = self.backend if isinstance(self.backend, str) else self.backend.name
        return f"CodingModel(backend={b!r}, target={self.target!r}{fitted})"



def _shrinkage(n: np.ndarray, prior: float) -> np.ndarray:
    """Weight of each code's own estimate, ``n / (n + prior)`` (0 for ``prior = inf``, 1 for ``prior = 0``)."""
    n = np.asarray(n, dtype=np.float64)
    if np.isinf(prior):
        return np.zeros_like(n)
    return n / np.maximum(n + prior, 1e-12)


def _sigmoid(z):
    return 1 / (1 + np.exp(-np.clip(z, -50, 50)))


def _init_params(cls) -> set[str]:
    import inspect

    return set(inspect.signature(cls.__init__).parameters)
