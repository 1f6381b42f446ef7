"""The engine: agreement between the coders of a corpus, per code, pooled and macro-averaged, with intervals.

:func:`measure_agreement` reads as the steps it takes: check the coders and options, roll codes up, build the
units, note what coders left out, sum each group of coders' ratings per document (:class:`AgreementSums`),
draw bootstrap resamples of documents, and turn the sums into report rows.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import fields
from itertools import combinations
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ..agreement import AgreementError, AgreementSums
from ..corpus import CodedCorpus
from ..exceptions import AutocodeWarning
from ._bootstrap import Resamples, percentile_interval
from ._disagreements import Disagreements
from ._masi import masi_row
from ._report import PAIR_STATISTICS, AgreementReport, make_row
from ._units import Decisions, Units, build_units, depth_for, find_missing

__all__ = ["measure_agreement"]


def measure_agreement(
    corpus: CodedCorpus,
    *,
    coders: Sequence[str] | None = None,
    models: Sequence[str] | None = None,
    codes: Sequence[str] | None = None,
    by: Literal["code", "category", "main"] | int = "code",
    level: Literal["segment", "character"] = "segment",
    uncoded: Literal["keep", "drop"] = "keep",
    n_bootstrap: int = 0,
    confidence: float = 0.95,
    random_state: int | None = 0,
    strict: bool = False,
) -> AgreementReport:
    """Agreement between the coders of a corpus, per code, pooled and macro-averaged.

    Parameters
    ----------
    corpus : CodedCorpus
        Segments and two or more coders' codings (a pre-coding model may be one of them).
    coders : list of str, optional
        The coders to compare (default: all).
    models : list of str, optional
        Which of them are models (default: names starting with ``"autocode"``).
    codes : list of str, optional
        Codes to report (default: those any compared coder applied, in codebook order). Pooled and macro
        figures are over these codes.
    by : "code", "category", "main" or int
        ``"code"``: as coded; ``"main"``: rolled up to the top-level categories; ``"category"``: to the level
        just above the deepest codes (for a two-level codebook the same as ``"main"``); an int: that codebook
        depth. Needs a codebook for all but ``"code"``.
    level : "segment" or "character"
        The unit of agreement (see :mod:`autocode.reliability`).
    uncoded : "keep" or "drop"
        ``"drop"`` leaves out units no compared coder applied any code to.
    n_bootstrap : int
        Bootstrap resamples of documents for the confidence intervals (0 = none).
    confidence : float
        Coverage of the percentile intervals.
    random_state : int or None
        Seed of the bootstrap (``numpy.random.default_rng``); the same seed gives the same intervals.
    strict : bool
        Raise instead of warning when coders coded different segment lists.

    Returns
    -------
    AgreementReport

    Raises
    ------
    AgreementError
        Fewer than two coders, an unknown coder, a coder who coded no segment or applied no code, no segment
        coded by two coders, mismatched segment lists with ``strict=True``.

    Warns
    -----
    AutocodeWarning
        With ``n_bootstrap`` and a single document: no intervals (the bootstrap resamples documents).
    """
    coders, models = _resolve_coders(corpus, coders, models)
    _check_options(level, uncoded, n_bootstrap, confidence)
    depth = depth_for(by, corpus.codebook)
    work = corpus if depth is None else corpus.rolled_up(depth)
    units = build_units(work, coders, codes, level)
    _check_overlap(work, coders, units)
    missing = find_missing(work, coders, units, level)
    if missing:
        _report_missing(missing, level, strict)
    if uncoded == "drop":
        units.drop_uncoded()
    codes = units.codes
    names = {c: (work.codebook[c].name if work.codebook is not None and c in work.codebook else c) for c in codes}
    groups = _coder_groups(coders, models)
    single = []
    if n_bootstrap and len(units.docs) < 2:
        single = [f"No confidence intervals: the coding covers one document ({units.docs[0]}), and the bootstrap "
                  "resamples documents, so every resample would be that document and the interval would have no "
                  "width. Code two or more interviews for intervals."]
        warnings.warn(single[0], AutocodeWarning, stacklevel=2)
        n_bootstrap = 0
    boot = Resamples(len(units.docs), n_bootstrap, random_state) if n_bootstrap else None
    rows, notes = _figure_rows(units, coders, models, groups, boot, confidence, names)
    notes = single + notes
    return AgreementReport(
        level=level, by=by if isinstance(by, str) else f"depth {by}", coders=list(coders), models=models,
        codes=codes, code_names=names, n_units=units.n_units, n_documents=len(units.docs), uncoded=uncoded,
        n_bootstrap=n_bootstrap, confidence=confidence, random_state=random_state, rows=rows,
        disagreements=Disagreements(work, coders, units.x, units.coded, codes), missing=missing,
        notes=list(dict.fromkeys(notes)),
    )


# -- checks ----------------------------------------------------------------------------------------------------
def _resolve_coders(corpus: CodedCorpus, coders: Sequence[str] | None,
                    models: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """The compared coders (default: all) and which of them are models (default: names starting with
    ``"autocode"``), in corpus order."""
    all_coders = corpus.coders
    coders = list(coders) if coders is not None else all_coders
    unknown = [c for c in coders if c not in all_coders]
    if unknown:
        raise AgreementError(f"Unknown coder(s) {unknown}; the corpus has the coders {all_coders}.")
    if len(coders) < 2:
        raise AgreementError(
            f"Agreement needs at least two coders, got {coders or 'none'}. Give a table with a 'coder' column, "
            "or one file per coder."
        )
    if models is None:
        models = [c for c in coders if c.lower().startswith("autocode")]
    else:
        bad = [m for m in models if m not in coders]
        if bad:
            raise AgreementError(f"Model coder(s) {bad} are not among the compared coders {coders}.")
    return coders, [c for c in coders if c in set(models)]


def _check_options(level: str, uncoded: str, n_bootstrap: int, confidence: float) -> None:
    if level not in ("segment", "character"):
        raise AgreementError(f"Unknown level {level!r}: use 'segment' or 'character'.")
    if uncoded not in ("keep", "drop"):
        raise AgreementError(f"Unknown uncoded={uncoded!r}: use 'keep' or 'drop'.")
    if n_bootstrap < 0 or not 0 < confidence < 1:
        raise AgreementError(f"Expected n_bootstrap >= 0 and 0 < confidence < 1, got {n_bootstrap}, {confidence}.")


def _check_overlap(corpus: CodedCorpus, coders: list[str], units) -> None:
    """Raise when no unit (segment, or stretch of text) is coded by two of the coders: nothing to compare."""
    if (units.ucoded.sum(axis=0) >= 2).any():
        return
    examples = "; ".join(
        f"{c} coded {', '.join('/'.join(corpus.segments[j].key) for j in np.flatnonzero(units.coded[i])[:3])}"
        for i, c in enumerate(coders))
    raise AgreementError(
        f"No segment is coded by two of the coders {coders}, so there is nothing to compare ({examples}). Give "
        "the coders the same documents and segment ids (the 'document' and 'segment' columns), or at character "
        "level segments with start/end offsets into the same documents."
    )


def _report_missing(missing: dict[str, list[str]], level: str, strict: bool) -> None:
    """Raise (``strict``) or warn that coders coded different segments or stretches of text."""
    what = "segment lists" if level == "segment" else "stretches of text"
    msg = "; ".join(f"{c} did not code {len(k)} {'segment(s)' if level == 'segment' else 'document(s)'}"
                    f" others coded{' text of' if level == 'character' else ''}, e.g. {', '.join(k[:5])}"
                    for c, k in missing.items())
    if strict:
        raise AgreementError(f"The coders coded different {what}: {msg}. Give every coder the same "
                             "segments, or pass strict=False to compare them where they overlap.")
    # stacklevel 3: the caller of measure_agreement
    warnings.warn(f"The coders coded different {what}: {msg}. Text a coder did not code counts as "
                  "missing for that coder (not as 'no code').", AutocodeWarning, stacklevel=3)


# -- figures -----------------------------------------------------------------------------------------------------
def _coder_groups(coders: list[str], models: list[str]) -> list[tuple[str, str, list[int]]]:
    """The groups the many-coder statistics are computed over: ``(name, kind, member indices)``, the humans
    first when a model is among two or more humans, then all coders."""
    groups = [("+".join(coders), "all", list(range(len(coders))))]
    if models and len(coders) - len(models) >= 2:
        humans = [i for i, c in enumerate(coders) if c not in models]
        groups.insert(0, ("+".join(coders[i] for i in humans), "humans", humans))
    return groups


def _pair_series(coders: list[str], models: list[str]) -> list[tuple[str, str, int]]:
    """Every pair of coders as ``(name "E~A", kind, index)``, in ``itertools.combinations`` order (the order of
    :meth:`AgreementSums.cohen_kappa`)."""
    out = []
    for k, (i, j) in enumerate(combinations(range(len(coders)), 2)):
        n_models = (coders[i] in models) + (coders[j] in models)
        out.append((f"{coders[i]}~{coders[j]}", ("human-human", "model-human", "model-model")[n_models], k))
    return out


def _statistics(s: AgreementSums) -> dict[str, np.ndarray]:
    """Every statistic of the report but MASI alpha, element-wise over the sums' batch dimensions."""
    return {"cohen_kappa": s.cohen_kappa(), "pair_agreement": s.pair_agreement(),
            "krippendorff_alpha": s.krippendorff_alpha(), "fleiss_kappa": s.fleiss_kappa(),
            "gwet_ac1": s.gwet_ac1(), "brennan_prediger": s.brennan_prediger(),
            "percent_agreement": s.percent_agreement()}


def _macro(v: np.ndarray, varies: np.ndarray) -> np.ndarray:
    """Mean over codes (last axis) of the codes whose values vary (others are 1 by convention)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(np.where(varies, v, np.nan), axis=-1)


def _take(a: np.ndarray, pair: int | None) -> np.ndarray:
    """One coder pair's values (last axis: pairs), or the values themselves for a group statistic."""
    return a if pair is None else a[..., pair]


class _GroupFigures:
    """One group's statistics per code and pooled over codes, and their bootstrap distributions."""

    def __init__(self, total: AgreementSums, boot: AgreementSums | None, confidence: float):
        self.total = total  # (codes, ...)
        self.code = _statistics(self.total)
        self.pooled = _statistics(self.total.sum(axis=0))
        self.confidence = confidence
        self.boot = boot  # (B, codes, ...): the resamples' sums
        if boot is not None:
            self.boot_code = _statistics(self.boot)
            self.boot_pooled = _statistics(self.boot.sum(axis=1))

    def rows(self, stat: str, coders: str, kind: str, pair: int | None, codes: list[str],
             names: dict[str, str], applied: np.ndarray) -> list[dict]:
        """The rows of ``stat`` for one pair (``pair`` index) or the whole group (``None``): per code, pooled
        over codes, and macro (mean over the codes whose values vary)."""
        value = _take(self.code[stat], pair)
        varies = _take(self.total.pair_varies() if pair is not None else self.total.varies(), pair)
        units = self.total.pairs[:, pair].sum(axis=(-2, -1)) if pair is not None else self.total.n_pairable
        lo_c = hi_c = lo_p = hi_p = lo_m = hi_m = None
        if self.boot is not None:
            boot_code = _take(self.boot_code[stat], pair)
            boot_varies = _take(self.boot.pair_varies() if pair is not None else self.boot.varies(), pair)
            lo_c, hi_c = percentile_interval(boot_code, self.confidence)
            lo_p, hi_p = percentile_interval(_take(self.boot_pooled[stat], pair), self.confidence)
            lo_m, hi_m = percentile_interval(_macro(boot_code, boot_varies), self.confidence)
        out = [make_row("code", code, names[code], stat, coders, kind, value[j],
                        None if lo_c is None else lo_c[j], None if hi_c is None else hi_c[j], units[j], applied[j])
               for j, code in enumerate(codes)]
        total_units, total_applied = float(units.sum()), float(applied.sum())
        out.append(make_row("pooled", "", "", stat, coders, kind, _take(self.pooled[stat], pair), lo_p, hi_p,
                            total_units, total_applied))
        out.append(make_row("macro", "", "", stat, coders, kind, _macro(value, varies), lo_m, hi_m,
                            total_units, total_applied))
        return out


UNIT_BLOCK = 4096
"""Units whose ratings are summed at a time: the sums' float arrays (several per unit, code and coder pair;
about 50 MB for 4,096 units of 46 codes) then hold a block of units, not the corpus. A corpus of at most this
many units is one block."""


def _plus(a: AgreementSums | None, b: AgreementSums) -> AgreementSums:
    return b if a is None else AgreementSums(**{f.name: getattr(a, f.name) + getattr(b, f.name)
                                                for f in fields(AgreementSums)})


def _group_sums(ux: Decisions, ucoded: np.ndarray, weight: np.ndarray, unit_doc: np.ndarray,
                boot: Resamples | None) -> tuple[AgreementSums, AgreementSums | None]:
    """:meth:`AgreementSums.from_ratings` of the one-hot ratings ([absent, present] where coded) of the
    decisions ``ux`` (coders, units, codes), summed over all units (codes, ...) and over each bootstrap resample
    of the documents (B, codes, ...). :data:`UNIT_BLOCK` units at a time, in document order: a block's sums per
    document it touches, weighted by the resamples' counts of those documents (drawn a block of documents at a
    time), are added in; no array over the corpus's documents or units is held."""
    n = ux.shape[1]
    order = None if (np.diff(unit_doc) >= 0).all() else np.argsort(unit_doc, kind="stable")
    window = boot.window() if boot is not None else None
    total = resampled = None
    for s in range(0, max(n, 1), UNIT_BLOCK):
        take = slice(s, s + UNIT_BLOCK) if order is None else order[s:s + UNIT_BLOCK]
        x, coded = ux[:, take], ucoded[:, take]
        ratings = np.stack([coded[:, :, None] & ~x, x], axis=-1)
        docs, local = np.unique(unit_doc[take], return_inverse=True)
        into = sp.csr_matrix((np.ones(len(local)), (local, np.arange(len(local)))), shape=(len(docs), len(local)))
        part = AgreementSums.from_ratings(ratings, weight[take, None], into=into)  # (documents, codes, ...)
        total = _plus(total, part.sum(axis=0))
        if window is not None and len(docs):
            resampled = _plus(resampled, part.reweight(window(docs[0], docs[-1] + 1)[:, docs - docs[0]]))
    return total, resampled


def _of(units: Units, members: list[int]) -> tuple[Decisions, np.ndarray]:
    """``ux`` and ``ucoded`` of the coders ``members`` (the arrays themselves, not copies, for all coders)."""
    if members == list(range(units.ux.shape[0])):
        return units.ux, units.ucoded
    return units.ux.of(members), units.ucoded[members]


def _figure_rows(units: Units, coders: list[str], models: list[str], groups: list[tuple[str, str, list[int]]],
                 boot: Resamples | None, confidence: float,
                 names: dict[str, str]) -> tuple[list[dict], list[str]]:
    """Every report row: per group, each statistic (pairs from the group of all coders only) per code, pooled
    and macro; then MASI alpha per group. Returns the rows and notes on figures not computed."""
    # units (weighted) any coder applied each code to, a block of units at a time (whole-number sums: exact)
    applied = np.zeros(len(units.codes))
    for s in range(0, units.ux.shape[1], UNIT_BLOCK):
        applied += units.weight[s:s + UNIT_BLOCK] @ units.ux[:, s:s + UNIT_BLOCK].any(axis=0)
    pairs = _pair_series(coders, models)
    rows: list[dict] = []
    for name, kind, members in groups:
        figures = _GroupFigures(*_group_sums(*_of(units, members), units.weight, units.unit_doc, boot), confidence)
        for stat in figures.code:
            if stat in PAIR_STATISTICS:
                if kind != "all":
                    continue  # pairs come from the group of all coders
                series = pairs
            else:
                series = [(name, kind, None)]
            for label, series_kind, pair in series:
                rows += figures.rows(stat, label, series_kind, pair, units.codes, names, applied)
    notes = []
    for name, kind, members in groups:
        row, note = masi_row(*_of(units, members), units.weight, units.unit_doc, len(units.docs), boot, confidence,
                             name, kind)
        rows.append(row)
        if note:
            notes.append(note)
    return rows, notes
