"""Evaluate a coding model by cross-validation grouped by document, beside human-human agreement.

Each fold holds out whole documents (interviews): the model is trained on the others, with its own inner
grouped folds for calibration and thresholds, and pre-codes the held-out documents. Every document is held out
once, so every segment gets an out-of-fold prediction. Those are compared with each human coder, and the human
coders with each other on the same segments. Every agreement figure comes from the one engine,
:func:`autocode.reliability.measure_agreement` (the model is one more coder there); this module adds what is
particular to a model: out-of-fold predictions, and precision, recall and F1 against the training target.

>>> # see CrossValidation.to_markdown() for the report layout
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np

from .corpus import CodedCorpus
from .exceptions import AutocodeError, AutocodeWarning
from .folds import grouped_folds
from .model import CodingModel
from .reliability import AgreementReport, measure_agreement

__all__ = ["cross_validate", "CrossValidation", "compare_coders"]


@dataclass
class CrossValidation:
    """Out-of-fold predictions and the agreement figures computed from them.

    Attributes
    ----------
    corpus : CodedCorpus
        The evaluated corpus plus the model's out-of-fold coding as one more coder (``model_coder``).
    codes : list of str
        Codes evaluated: every code any coder applied, including codes too rare for the model to learn
        (which it never suggests).
    scores : ndarray (n_segments, n_codes)
        Out-of-fold calibrated scores.
    per_code : list of dict
        Per code: support, precision/recall/F1 against the target, kappa against each coder, human-human kappa.
    pooled : dict
        Kappa over all segment x code decisions: model vs each coder and each human pair.
    categories : dict
        The same pooled figures after rolling codes up to their categories (the codebook level just above the
        deepest codes, :attr:`Codebook.category_depth`).
    category_per_code : list of dict
        Per category: kappa against each coder and human-human kappa.
    agreement : AgreementReport
        The full agreement report (every statistic, per code, pooled, disagreements) between the coders and
        the model's out-of-fold coding, from which ``per_code`` and ``pooled`` take their kappas.
    category_agreement : AgreementReport or None
        The same after rolling codes up to their categories (``None`` without a codebook hierarchy).
    """

    corpus: CodedCorpus
    model_coder: str
    target: str
    codes: list[str]
    scores: np.ndarray
    n_splits: int
    per_code: list[dict] = field(default_factory=list)
    pooled: dict = field(default_factory=dict)
    categories: dict = field(default_factory=dict)
    category_per_code: list[dict] = field(default_factory=list)
    agreement: AgreementReport | None = None
    category_agreement: AgreementReport | None = None

    @property
    def human_coders(self) -> list[str]:
        return [c for c in self.corpus.coders if c != self.model_coder]

    def to_dict(self) -> dict:
        return {"target": self.target, "n_splits": self.n_splits, "segments": len(self.corpus),
                "documents": len(self.corpus.documents), "pooled": self.pooled, "categories": self.categories,
                "per_code": self.per_code, "category_per_code": self.category_per_code}

    def to_markdown(self) -> str:
        """A report: pooled kappa (model-human beside human-human), then per-code figures."""
        book = self.corpus.codebook
        humans = self.human_coders
        lines = [
            "# Cross-validation grouped by document",
            "",
            f"{len(self.corpus)} segments in {len(self.corpus.documents)} documents, {self.n_splits} folds "
            f"(each document held out once); target = {self.target}; {len(self.codes)} codes evaluated "
            "(every code a coder applied; codes too rare to learn count as never suggested).",
            "",
            "## Pooled agreement (all segment x code decisions)",
            "",
            "| pair | level | kappa | units |",
            "|---|---|---|---|",
        ]
        for level, pooled in (("code", self.pooled), ("category", self.categories)):
            for pair, d in pooled.items():
                lines.append(f"| {pair} | {level} | {_fmt(d['kappa'])} | {d['units']} |")
        lines += ["", "## Per code", ""]
        head = ["code", "name", "support", "precision", "recall", "F1"]
        head += [f"kappa model~{h}" for h in humans]
        head += [f"kappa {a}~{b}" for a, b in combinations(humans, 2)]
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        for row in self.per_code:
            cells = [row["code"], book[row["code"]].name if book else "", str(row["support"]),
                     _fmt(row["precision"]), _fmt(row["recall"]), _fmt(row["f1"])]
            cells += [_fmt(row["kappa"].get(h)) for h in humans]
            cells += [_fmt(row["kappa"].get(f"{a}~{b}")) for a, b in combinations(humans, 2)]
            lines.append("| " + " | ".join(cells) + " |")
        f1s = [r["f1"] for r in self.per_code if r["support"] > 0]
        lines += ["", f"Macro F1 over codes with support: {_fmt(float(np.mean(f1s)) if f1s else float('nan'))}."]
        return "\n".join(lines) + "\n"


def _fmt(x) -> str:
    if x is None:
        return ""
    if isinstance(x, float) and np.isnan(x):
        return "n/a"
    return f"{x:.3f}"


def compare_coders(corpus: CodedCorpus, codes: list[str]) -> tuple[dict, dict]:
    """Cohen's kappa per code and pooled over codes, for every pair of coders, on the segments both coded.

    A view of :func:`autocode.reliability.measure_agreement` (its ``cohen_kappa`` rows), which gives every
    other statistic too.

    Returns ``(per_code, pooled)``: ``per_code[code][pair]`` and ``pooled[pair] = {"kappa", "units"}`` with
    pair names ``"A~B"``; pairs who coded no segment in common are left out.

    >>> from autocode import CodedCorpus, Segment
    >>> segs = [Segment("D", str(i), "文字") for i in range(4)]
    >>> e = {("D", "0"): {"a"}, ("D", "1"): {"a"}, ("D", "2"): set(), ("D", "3"): set()}
    >>> per_code, pooled = compare_coders(CodedCorpus(segs, {"E": e, "A": {**e, ("D", "1"): set()}}), ["a"])
    >>> per_code["a"]["E~A"], pooled["E~A"]["units"]
    (0.5, 4)
    """
    coders = _coders_with_codings(corpus)
    if len(coders) < 2:
        return {c: {} for c in codes}, {}
    return _pair_kappas(_agreement(corpus, coders, codes, models=[]))


def _coders_with_codings(corpus: CodedCorpus) -> list[str]:
    return [c for c in corpus.coders if any(x is not None for x in corpus.codings(c))]


def _agreement(corpus: CodedCorpus, coders: list[str], codes: list[str], models: list[str],
               by: str = "code") -> AgreementReport:
    """The agreement report of ``coders`` on ``codes``, segment by segment. Coders who coded different segments
    are compared where they overlap, as the per-pair figures always are: that is expected here (one coder
    coded a sample), so it is not warned about."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The coders coded different", category=AutocodeWarning)
        return measure_agreement(corpus, coders=coders, models=models, codes=codes, by=by)


def _pair_kappas(report: AgreementReport) -> tuple[dict, dict]:
    """``(per_code, pooled)`` Cohen's kappas of a report, as :func:`compare_coders` returns them."""
    kappas = [r for r in report.rows if r["statistic"] == "cohen_kappa"]
    pooled = {r["coders"]: {"kappa": r["value"], "units": int(r["units"])} for r in kappas
              if r["scope"] == "pooled" and r["units"] > 0}
    per_code: dict[str, dict] = {c: {} for c in report.codes}
    for r in kappas:
        if r["scope"] == "code" and r["coders"] in pooled:
            per_code[r["code"]][r["coders"]] = r["value"]
    return per_code, pooled


def cross_validate(model: CodingModel, coded: CodedCorpus, *, n_splits: int = 5,
                   random_state: int | None = 0, progress: bool = False) -> CrossValidation:
    """Out-of-fold pre-coding of every document, compared with every human coder.

    Parameters
    ----------
    model : CodingModel
        An unfitted (or fitted: it is cloned) model; its settings are used in every fold.
    coded : CodedCorpus
        Hand-coded segments, one or more coders.
    n_splits : int
        Number of folds; each holds out whole documents.
    """
    if coded.codebook is None:
        coded = CodedCorpus(coded.segments, {c: {s.key: v for s, v in zip(coded.segments, coded.codings(c))
                                                 if v is not None} for c in coded.coders}, model.codebook)
    folds = grouped_folds(coded.groups, n_splits, random_state)
    # every code a human applied is evaluated, also those too rare for the model to learn (never suggested)
    codes = coded.used_codes()
    if not codes:
        raise AutocodeError("No coder applied any code; there is nothing to evaluate.")
    col = {c: j for j, c in enumerate(codes)}
    scores = np.zeros((len(coded), len(codes)))
    accepted = np.zeros((len(coded), len(codes)), dtype=bool)
    iterator = folds
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(folds, desc="cross-validation", unit="fold")
    for train, test in iterator:
        m = model.clone().set_params(progress=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AutocodeWarning)  # rare codes per fold are expected
            m.fit(coded.subset(train))
        sug = m.suggest([coded.segments[i] for i in test])
        acc = sug.accepted
        for j, c in enumerate(m.codes_):
            if c in col:
                scores[test, col[c]] = sug.scores[:, j]
                accepted[test, col[c]] = acc[:, j]
    name = model.model_name
    per_seg = [{codes[j] for j in np.flatnonzero(row)} for row in accepted]
    with_model = coded.with_codings(name, per_seg)
    result = CrossValidation(with_model, name, model.target, codes, scores, len(folds))
    _fill(result, coded.labels(codes, model.target), coded.coded_mask(model.target), accepted)
    return result


def _fill(result: CrossValidation, target_y: np.ndarray, tmask: np.ndarray, pred: np.ndarray) -> None:
    """Precision, recall and F1 of the model's decisions ``pred`` against the target, and the kappas of
    every pair of coders (the model among them), per code and pooled, then per category."""
    corpus, codes, name = result.corpus, result.codes, result.model_coder
    coders = _coders_with_codings(corpus)
    result.agreement = _agreement(corpus, coders, codes, models=[name])
    per_code_k, pooled = _pair_kappas(result.agreement)
    for j, code in enumerate(codes):
        row = {"code": code, "kappa": {}}
        y = target_y[tmask, j]
        p = pred[tmask, j]
        tp = int((y & p).sum())
        row["support"] = int(y.sum())
        row["precision"] = tp / p.sum() if p.sum() else float("nan")
        row["recall"] = tp / y.sum() if y.sum() else float("nan")
        row["f1"] = 2 * tp / (p.sum() + y.sum()) if (p.sum() + y.sum()) else float("nan")
        for pair, k in per_code_k[code].items():
            a, b = pair.split("~", 1)
            if name in (a, b):
                row["kappa"][b if a == name else a] = k
            else:
                row["kappa"][pair] = k
        result.per_code.append(row)
    result.pooled = {_orient(p, name): d for p, d in pooled.items()}
    book = corpus.codebook
    if book is not None and book.max_depth > 0:
        depth = book.category_depth
        top = [c for c in book.ids if book.depth(c) == depth and any(book.ancestor_at(x, depth) == c for x in codes)]
        if not top:
            return
        result.category_agreement = _agreement(corpus, coders, top, models=[name], by="category")
        per_cat, pooled_cat = _pair_kappas(result.category_agreement)
        result.categories = {_orient(p, name): d for p, d in pooled_cat.items()}
        for c in top:
            result.category_per_code.append({"code": c, "kappa": {_orient(p, name): k for p, k in per_cat[c].items()}})


def _orient(pair: str, model_name: str) -> str:
    a, b = pair.split("~", 1)
    if b == model_name:
        return f"{b}~{a}"
    return pair
