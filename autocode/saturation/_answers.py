"""The saturation report's first section: grounded theory's three questions (new concepts? new categories? new
relations?) answered in plain words, each with what the answer rests on; and the rows of the segments to review."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ._report import SaturationReport


@dataclass(frozen=True)
class Answer:
    """One of the three questions: ``question`` ("New concepts?"), ``verdict`` ("yes", "no", "unclear", "not
    checked"), ``answer`` (one or two sentences) and ``rests_on`` (what the answer is based on)."""

    question: str
    verdict: str
    answer: str
    rests_on: str

    def to_dict(self) -> dict:
        return {"question": self.question, "verdict": self.verdict, "answer": self.answer, "rests_on": self.rests_on}


def _names(report: SaturationReport, cands) -> str:
    return "; ".join(f"{c.id} {c.name} ({c.size} segments)" for c in cands)


def concepts(report: SaturationReport) -> Answer:
    s = report.scores
    n_el, n_nov = int(s.eligible.sum()), int(s.novel.sum())
    expected = 1 - report.threshold
    share = n_nov / n_el if n_el else 0.0
    from scipy.stats import binomtest

    p = binomtest(n_nov, n_el, expected, alternative="greater").pvalue if n_el else 1.0
    supported = [c for c in report.candidates if c.supported]
    in_cand = sum(c.n_novel for c in supported)
    review = [c for c in report.candidates if not c.supported]
    chance = f"{n_nov} of {n_el} scored segments ({share:.0%}) are novel; {expected:.0%} would be by chance"
    if supported:
        verdict = "yes"
        answer = (f"Yes: {in_cand} novel segment(s) in {len(supported)} candidate code(s): {_names(report, supported)}. "
                  f"{chance}. Read the quotes: a candidate may also be a known code said in new words or talk outside "
                  "the study's questions.")
    elif p < 0.01:
        verdict = "unclear"
        answer = (f"Unclear: more novel segments than chance ({chance}, binomial p = {p:.2g}), but no two of them "
                  f"are alike enough to form a candidate code of {report.min_size}. Read the novel segments below.")
    else:
        verdict = "no"
        answer = f"No: {chance}, and no {report.min_size} novel segments form a candidate code."
    if review:
        answer += (f" {len(review)} group(s) of segments at the review level (novelty >= {report.review_level:.2f}, "
                   f"below the cut) to look at: {_names(report, review)}.")
    short = report.n_short
    rests = (f"Novelty of each answer against the coded training segments: novel = at least {report.threshold:.2f}, "
             f"i.e. less typical than {report.threshold:.0%} of the segments the coders coded. Candidate codes group "
             f"the segments at novelty >= {report.review_level:.2f}, as finely as the study's own codes are grouped "
             f"(the cut that best recovers them); a candidate needs {report.min_size} segments, one of them novel.")
    if short:
        rests += (f" {short} answer(s) shorter than {report.min_chars} letters were not scored (the 5th percentile of "
                  "coded answers' length); read them yourself.")
    return Answer("New concepts?", verdict, answer, rests)


def categories(report: SaturationReport) -> Answer:
    cands = [c for c in report.candidates if c.supported]
    label = report.codebook.label
    has_cats = any(c.category is not None for c in report.candidates) or report.has_categories
    if not has_cats:
        return Answer("New categories?", "not checked", "Not checked: the codebook has no categories.",
                      "A candidate joins a category or starts a new one by how near it is to the category's codes.")
    thr = next((c.join_similarity for c in report.candidates if np.isfinite(c.join_similarity)), float("nan"))
    rests = ("A candidate joins the category of its nearest code when it is near enough to it (cosine at least "
             + (f"{thr:.2f}: " if np.isfinite(thr) else "")
             + "the bar that best tells, among the existing codes, a code hidden from its category from a whole "
             "category hidden); otherwise it would start a new category.")
    if not cands:
        return Answer("New categories?", "no", "No: there is no candidate new code, so no new category.", rests)
    new = [c for c in cands if c.new_category]
    joins = "; ".join(f"{c.id} -> {label(c.category)} ({c.category_similarity:.2f})" for c in cands
                      if not c.new_category)
    if new:
        answer = ("Yes: " + "; ".join(f"{c.id} {c.name} would start a new category (nearest: {label(c.category)}, "
                                      f"cosine {c.category_similarity:.2f})" for c in new) + "."
                  + (f" The others join existing categories: {joins}." if joins else ""))
        return Answer("New categories?", "yes", answer, rests)
    return Answer("New categories?", "no", f"No: every candidate code joins an existing category: {joins}.", rests)


def relations(report: SaturationReport) -> Answer:
    rel = report.relations
    if rel is None:
        return Answer("New relations?", "not checked",
                      "Not checked: give the coded training data (--data CODED.csv, or coded=...) to compare which "
                      "categories go together in the coded and the held-out interviews.",
                      "Needs the model's training data and codes in at least two categories.")
    flagged = rel.flagged()
    verdict = "yes" if any(r["status"] == "new" for r in flagged) else "changed" if flagged else "no"
    return Answer("New relations?", verdict, rel.summary(),
                  "Which categories the model's coding puts together (in one answer), coded vs held-out interviews: a "
                  f"pair counts when a test against chance holds at false discovery rate {rel.alpha}.")


def answers(report: SaturationReport) -> list[Answer]:
    """The three answers, in order: new concepts, new categories, new relations."""
    return [concepts(report), categories(report), relations(report)]


def evidence_points(report: SaturationReport) -> list[str]:
    """Plain-language points for and against saturation (:meth:`SaturationReport.evidence`)."""
    pts = []
    docs = report.per_document
    n = len(docs)
    expected = 1 - report.threshold
    total_elig = sum(d["eligible"] for d in docs)
    total_novel = sum(d["novel"] for d in docs)
    share = total_novel / total_elig if total_elig else 0.0
    supported = [c for c in report.candidates if c.supported]
    if not supported:
        pts.append(f"For saturation: no candidate code (a group of at least {report.min_size} segments to review, "
                   f"one of them novel) across {n} interview(s).")
    else:
        last_new = max(i for i, d in enumerate(docs) if d["new_candidates"])
        quiet = n - 1 - last_new
        if quiet > 0:
            pts.append(f"For saturation: the last {quiet} interview(s) brought no new candidate code "
                       f"(the last new one came in interview {last_new + 1}, {docs[last_new]['document']}).")
        else:
            pts.append(f"Against saturation: the last interview ({docs[-1]['document']}) brought "
                       f"{len(docs[-1]['new_candidates'])} new candidate code(s).")
        pts.append(f"{len(supported)} candidate code(s) in all; review each: a candidate may be a known "
                   "code said in new words, talk outside the study's questions, or a new concept.")
    verdict = ("no more than" if share <= expected else "somewhat more than" if share <= 2 * expected
               else "clearly more than")
    pts.append(f"{total_novel} of {total_elig} eligible segments ({share:.1%}) are novel at {report.threshold:.2f}; "
               f"{expected:.0%} would be expected by chance if they were like the coded segments: {verdict} "
               "expected.")
    excess = [d["document"] for d in docs if d["p_excess"] < 0.01]
    if excess:
        pts.append("Interviews with clearly more novel segments than expected (binomial p < 0.01): "
                   + ", ".join(excess) + ".")
    if report.relations is not None:
        pts.append(report.relations.summary())
    return pts


def review_rows(report: SaturationReport, rows=None) -> list[dict]:
    """Every segment at the review level or above (or those of ``rows``), in interview order: document, segment,
    novelty, ``level`` ("novel" at the cut, else "review"), candidate, nearest code, best model code
    and score, the words no code accounts for, and the text."""
    s = report.scores
    cand = report.candidate_of()
    out = []
    if rows is None:
        with np.errstate(invalid="ignore"):
            rows = np.flatnonzero(s.eligible & (np.nan_to_num(s.novelty, nan=-1.0) >= report.review_level))
    novel = s.novel  # (a property computed over every segment: once, not per row)
    for i in rows:
        seg = s.segments[i]
        out.append({"index": int(i), "document": seg.document, "segment": seg.segment,
                    "novelty": round(float(s.novelty[i]), 4), "level": "novel" if novel[i] else "review",
                    "candidate": cand.get(int(i), ""), "nearest_code": s.nearest_code[i],
                    "best_code": s.best_code[i], "best_score": round(float(s.best_score[i]), 4),
                    "unexplained": list(report.unexplained.get(int(i), [])), "text": seg.text})
    return out
