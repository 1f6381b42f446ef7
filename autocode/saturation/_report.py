"""The saturation report: first the three questions answered (new concepts? new categories? new relations?,
:mod:`._answers`), then every segment to review with its evidence, then the details: per interview the share of
novel segments and the candidate codes first seen there (the saturation curve), the candidates, the relations.
Written as Markdown (+ PNG), HTML, CSV (+ a codebook), JSON or a REFI-QDA project."""

from __future__ import annotations

import base64
import csv
import io
import json
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import atomic_write, write_bytes, write_text
from .._version import __version__
from ..codebook import Code, Codebook
from ..corpus import CodedCorpus
from ..exceptions import AutocodeError, AutocodeWarning
from ._answers import Answer, answers, evidence_points, review_rows
from ._candidates import CandidateCode, code_categories, propose_codes
from ._eligibility import too_short
from ._html import RELATIONS_NOTE, report_html
from ._naming import unexplained_terms
from ._relations import RelationReport, category_relations
from ._scoring import NoveltyScorer, NoveltyScores, fitted_scorer

REVIEW_LISTED = 1000
"""Segments to review a streamed report lists (the most novel; every one is in its CSV)."""


@dataclass
class SaturationReport:
    """Per interview (in the given order): segments, eligible and novel segments, candidate codes first seen.

    Attributes
    ----------
    scores : NoveltyScores
    candidates : list of CandidateCode
    codebook : Codebook
    documents : list of str
        Interviews in order.
    per_document : list of dict
        ``document``, ``segments``, ``eligible``, ``novel``, ``share_novel``, ``new_candidates`` (ids first seen
        there), ``cumulative`` (candidates seen so far), ``p_excess`` (binomial p-value of so many novel
        segments if only ``1 - threshold`` were expected).
    relations : RelationReport or None
        See :func:`~autocode.saturation.category_relations`.
    review_level : float
        Novelty from which segments are listed for review and grouped into candidates (at most the cut).
    unexplained : dict
        Segment index -> the words of a segment to review that no code accounts for (in none of the model's
        kept coded examples, code names or descriptions).
    min_chars, n_short : int
        The scorer's length rule, and the participants' segments shorter than it (not scored).
    has_categories : bool
        Whether the model's codes fall in categories (the "new categories?" question applies).
    review_listed, n_review : list of dict or None, int or None
        For a corpus scored a batch at a time (:func:`stream_saturation`): the rows of :meth:`review_rows`
        listed (at most :data:`REVIEW_LISTED`, the most novel) and how many segments reach the review level.
    """

    scores: NoveltyScores
    candidates: list[CandidateCode]
    codebook: Codebook
    documents: list[str]
    per_document: list[dict]
    min_size: int = 2
    relations: RelationReport | None = None
    review_level: float | None = None
    unexplained: dict[int, list[str]] = field(default_factory=dict)
    min_chars: int = 0
    n_short: int = 0
    has_categories: bool = True
    review_listed: list[dict] | None = None
    n_review: int | None = None

    def __post_init__(self):
        if self.review_level is None:
            self.review_level = self.threshold

    @property
    def threshold(self) -> float:
        return self.scores.threshold

    def answers(self) -> list[Answer]:
        """New concepts? New categories? New relations? Each answered in plain words, with what it rests on."""
        return answers(self)

    def review_rows(self) -> list[dict]:
        """Every segment at :attr:`review_level` or above, with its novelty, candidate and evidence (those of
        :attr:`review_listed` when set)."""
        return review_rows(self) if self.review_listed is None else self.review_listed

    def review_more(self) -> str:
        """A line saying how many segments to review the report does not list ("" when it lists them all)."""
        more = (self.n_review or 0) - len(self.review_listed or ())
        return (f"{more:,} more segment(s) reach novelty {self.review_level:.2f}; the {len(self.review_listed):,} "
                "most novel are listed. Every segment is in the CSV report (--out REPORT.csv)." if more > 0 else "")

    def candidate_of(self) -> dict[int, str]:
        """Segment index -> candidate id."""
        return {i: c.id for c in self.candidates for i in c.members}

    def evidence(self) -> list[str]:
        """Plain-language points for and against saturation."""
        return evidence_points(self)

    # -- outputs ---------------------------------------------------------------------------------------------
    def plot_png(self) -> bytes:
        """The saturation curve as PNG bytes: new and cumulative candidate codes, and the share of novel
        segments, per interview (numbered in order; see the table for names)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        docs = self.per_document
        x = np.arange(1, len(docs) + 1)
        fig = Figure(figsize=(9, 3.4), dpi=100)
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        ax1.bar(x, [len(d["new_candidates"]) for d in docs], color="#9ecae1", label="new in this interview")
        ax1.plot(x, [d["cumulative"] for d in docs], "o-", color="#08519c", label="cumulative")
        ax1.set_xlabel("interview (in order)")
        ax1.set_ylabel("candidate new codes")
        ax1.set_title("New concepts per interview")
        ax1.legend(loc="upper left", fontsize=8)
        from matplotlib.ticker import MaxNLocator

        ax1.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax2.plot(x, [d["share_novel"] for d in docs], "s-", color="#a63603", label="novel segments")
        ax2.axhline(1 - self.threshold, ls="--", color="grey", label=f"expected by chance ({1 - self.threshold:.0%})")
        ax2.set_xlabel("interview (in order)")
        ax2.set_ylabel(f"share with novelty >= {self.threshold:.2f}")
        ax2.set_title("Segments that fit no code")
        ax2.set_ylim(0, max(0.2, max((d["share_novel"] for d in docs), default=0) * 1.15))
        ax2.legend(loc="upper left", fontsize=8)
        for ax in (ax1, ax2):
            ax.set_xticks(x)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()

    def candidate_lines(self, c: CandidateCode) -> list[str]:
        """A candidate's facts as lines of plain text (quotes last)."""
        label = self.codebook.label
        if c.category is None:
            cat = "-"
        elif c.new_category:
            cat = (f"a new category (nearest: {label(c.category)}, cosine {c.category_similarity:.2f} < "
                   f"{c.join_similarity:.2f})")
        else:
            cat = f"{label(c.category)} (cosine {c.category_similarity:.2f} >= {c.join_similarity:.2f})"
        segs = self.scores.segments
        return [f"segments: {c.size} ({c.n_novel} novel), in {len(c.documents)} interview(s): {', '.join(c.documents)}",
                f"key terms: {', '.join(t for t, _ in c.key_terms) or '-'}",
                f"would join: {cat}",
                "nearest existing codes: " + ", ".join(f"{label(k)} ({v:.2f})" for k, v in c.nearest_codes),
                *[f"{segs[i].document} #{segs[i].segment} (novelty {self.scores.novelty[i]:.3f}): {segs[i].text}"
                  for i in c.quotes]]

    def _tables(self) -> tuple[list[str], list[str]]:
        per = ["| # | interview | segments | eligible | novel | share novel | new candidates | cumulative |",
               "|---|---|---|---|---|---|---|---|"]
        for i, d in enumerate(self.per_document, start=1):
            per.append(f"| {i} | {d['document']} | {d['segments']} | {d['eligible']} | {d['novel']} | "
                       f"{d['share_novel']:.1%} | {', '.join(d['new_candidates']) or '-'} | {d['cumulative']} |")
        cands = []
        for c in self.candidates:
            kind = "" if c.supported else " (to review: no novel segment)"
            facts = self.candidate_lines(c)
            n_q = len(c.quotes)
            cands += [f"### {c.id} {c.name}{kind}", "", *[f"- {x}" for x in facts[:-n_q or None]], "- quotes:",
                      *[f"  - {x}" for x in facts[len(facts) - n_q:]], ""]
        return per, cands

    @staticmethod
    def _cell(x) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    def _review_table(self) -> list[str]:
        rows = self.review_rows()
        if not rows:
            return [f"No segment reaches novelty {self.review_level:.2f}.", ""]
        more = [self.review_more(), ""] if self.review_more() else []
        label = self.codebook.label
        out = ["| interview | segment | novelty | candidate | nearest code | best code (score) | words no code accounts "
               "for | text |", "|---|---|---|---|---|---|---|---|"]
        for r in rows:
            nov = f"**{r['novelty']:.3f}**" if r["level"] == "novel" else f"{r['novelty']:.3f}"
            out.append("| " + " | ".join(self._cell(x) for x in (
                r["document"], r["segment"], nov, r["candidate"] or "-",
                label(r["nearest_code"]) if r["nearest_code"] else "-",
                f"{label(r['best_code'])} ({r['best_score']:.2f})", "、".join(r["unexplained"]) or "-",
                r["text"])) + " |")
        return [*more, *out, ""]

    def intro(self) -> str:
        """The report's opening sentence: what was scored and what novel means."""
        return (f"{len(self.documents)} interview(s), {len(self.scores)} segments, {int(self.scores.eligible.sum())} "
                "scored (not the interviewer's, at least the minimum length). A segment is **novel** when its novelty "
                f"is at least {self.threshold:.2f}: it fits the existing codes worse than {self.threshold:.0%} of the "
                "segments the coders coded in the training data"
                + (f"; segments from {self.review_level:.2f} are listed for review." if self.review_level < self.threshold
                   else "."))

    def to_markdown(self, image: str | None = None) -> str:
        """The report as Markdown: the three answers, the segments to review, then the details; ``image`` is the
        file name of the plot to link (e.g. ``report.png``), or None to embed it as a data URI."""
        per, cands = self._tables()
        lines = ["# Saturation check", "", self.intro(), "", "## Answers", ""]
        for a in self.answers():
            lines += [f"- **{a.question}** {a.answer}", f"  *Rests on:* {a.rests_on}"]
        lines += ["", "## Segments to review", "",
                  f"Every scored segment with novelty at least {self.review_level:.2f}, novel ones (at least "
                  f"{self.threshold:.2f}) in bold; 'nearest code': the code whose coded segments it is most like; "
                  "'best code': the model's best score.", "", *self._review_table(),
                  "## Details", "", "### Evidence", "", *[f"- {p}" for p in self.evidence()], ""]
        src = image or "data:image/png;base64," + base64.b64encode(self.plot_png()).decode()
        n_sup = sum(c.supported for c in self.candidates)
        lines += ["![saturation curve](" + src + ")", "", "### Per interview", "", *per, "",
                  "## Candidate new codes", "",
                  f"{int(self.scores.novel.sum())} novel segments; {len(self.candidates)} group(s) of at least "
                  f"{self.min_size} segments at novelty >= {self.review_level:.2f}, {n_sup} of them with a novel "
                  "segment (candidate new codes).", ""]
        lines += cands or ["No candidate codes.", ""]
        if self.relations is not None:
            net = "data:image/png;base64," + base64.b64encode(self.relations.plot_png()).decode()
            lines += ["## Relations between categories", "", RELATIONS_NOTE, "", self.relations.to_markdown(),
                      f"![category network]({net})", ""]
        return "\n".join(lines)

    def to_html(self) -> str:
        """A self-contained HTML page (the plots embedded as base64 PNGs), in the order of :meth:`to_markdown`."""
        return report_html(self)

    def records(self) -> list[dict]:
        """One dict per segment: document, segment, speaker, text, eligible, novelty, candidate, nearest code."""
        return list(self.iter_records())

    def iter_records(self) -> Iterator[dict]:
        """:meth:`records` one at a time (the CSV is written from them without holding them all; a streamed
        corpus is read again a batch at a time)."""
        if hasattr(self.scores, "iter_records"):
            yield from self.scores.iter_records(self)
            return
        cand = self.candidate_of()
        names = {c.id: c.name for c in self.candidates}
        s = self.scores
        novel = s.novel
        for i, seg in enumerate(s.segments):
            nov = s.novelty[i]
            yield {
                "document": seg.document, "segment": seg.segment, "speaker": seg.speaker, "text": seg.text,
                "eligible": bool(s.eligible[i]), "novelty": None if np.isnan(nov) else round(float(nov), 4),
                "novel": bool(novel[i]), "candidate": cand.get(i, ""), "candidate_name": names.get(cand.get(i), ""),
                "best_code": s.best_code[i], "best_score": round(float(s.best_score[i]), 4),
                "nearest_code": s.nearest_code[i], "unexplained": list(self.unexplained.get(i, [])),
            }

    def to_csv(self, path: str | Path) -> Path:
        """One row per segment in the canonical columns ``document,segment,speaker,text,coder,codes`` (coder
        ``autocode-saturation``, codes = the candidate's id) plus ``novelty``, ``candidate_name``, ``best_code``,
        ``nearest_code``, ``unexplained`` (for segments to review, the words no code accounts for, joined by
        、); :meth:`candidate_codebook` gives the matching codebook."""
        path = Path(path)
        cols = ["document", "segment", "speaker", "text", "coder", "codes", "novelty", "novel", "candidate_name",
                "best_code", "best_score", "nearest_code", "unexplained"]
        with atomic_write(path, encoding="utf-8-sig", newline="") as f:  # a BOM, as on every CSV autocode writes
            w = csv.writer(f)
            w.writerow(cols)
            for r in self.iter_records():
                w.writerow([r["document"], r["segment"], r["speaker"], r["text"], "autocode-saturation",
                            r["candidate"], "" if r["novelty"] is None else r["novelty"], int(r["novel"]),
                            r["candidate_name"], r["best_code"], r["best_score"], r["nearest_code"],
                            "、".join(r["unexplained"])])
        return path

    def candidate_codebook(self) -> Codebook:
        """The model's codebook plus the candidates as new codes under their suggested categories (the
        description lists key terms and the first quote)."""
        new = []
        for c in self.candidates:
            first = self.scores.segments[c.quotes[0]].text if c.quotes else ""
            desc = f"Candidate from autocode saturation; key terms: {', '.join(t for t, _ in c.key_terms)}; e.g. {first}"
            new.append(Code(c.id, c.name, desc, parent=c.category))
        taken = set(self.codebook.ids)
        clash = [c.id for c in new if c.id in taken]
        if clash:
            raise AutocodeError(f"The codebook already has code id(s) {clash}; rename them before adding candidates.")
        return Codebook([*self.codebook, *new])

    def save(self, path: str | Path, *, documents=None) -> list[Path]:
        """Write the report by suffix: ``.md`` (+ a PNG beside it), ``.html``, ``.csv`` (+ ``*-codebook.csv``),
        ``.qdpx`` (candidate codes as codes of a user ``autocode-saturation``, for review in a QDA program;
        ``documents`` gives the transcripts' full text) or ``.json``. Returns the files written."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix in (".md", ".markdown"):
            png = path.with_suffix(".png")
            write_bytes(png, self.plot_png())
            write_text(path, self.to_markdown(image=png.name))
            return [path, png]
        if suffix in (".html", ".htm"):
            write_text(path, self.to_html())
            return [path]
        if suffix == ".csv":
            book_path = path.with_name(path.stem + "-codebook.csv")
            self.to_csv(path)
            self.candidate_codebook().write_csv(book_path)
            return [path, book_path]
        if suffix == ".json":
            write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=1))
            return [path]
        if suffix == ".qdpx":
            return [self._write_qdpx(path, documents)]
        raise AutocodeError(f"Unknown report format {path.suffix!r} for {path}: use .md, .html, .csv, .json or .qdpx.")

    def _write_qdpx(self, path: Path, documents=None) -> Path:
        try:
            from ..io.qdpx import write_qdpx
        except ImportError:  # the REFI-QDA writer is not part of this autocode
            raise AutocodeError(
                f"{path}: this autocode cannot write REFI-QDA projects. Write the report as .csv (candidate codes "
                "as codes, with a codebook CSV beside it) and import that into your QDA program."
            ) from None
        from ..suggestion import Suggestions

        if hasattr(self.scores, "write_qdpx"):
            return self.scores.write_qdpx(self, path, documents)
        book = self.candidate_codebook()
        ids = [c.id for c in self.candidates]
        scores = np.zeros((len(self.scores), len(ids)))
        for j, c in enumerate(self.candidates):
            scores[c.members, j] = self.scores.novelty[c.members]  # the note in the project shows the novelty
        sug = Suggestions(self.scores.segments, ids, scores, np.full(len(ids), 1e-9), book,
                          coder="autocode-saturation")
        write_qdpx(path, sug, documents=documents)
        return path

    def to_dict(self) -> dict:
        """JSON-ready summary: settings, evidence, per-interview rows and candidates."""
        segs = self.scores.segments
        return {
            "format": "autocode-saturation-report", "format_version": 1, "autocode_version": __version__,
            "threshold": self.threshold, "review_level": self.review_level, "min_size": self.min_size,
            "min_chars": self.min_chars, "not_scored_short": self.n_short,
            "answers": [a.to_dict() for a in self.answers()],
            "segments_to_review": [{k: v for k, v in r.items() if k != "index"} for r in self.review_rows()],
            "evidence": self.evidence(), "per_document": self.per_document,
            "candidates": [{
                "id": c.id, "name": c.name, "size": c.size, "key_terms": c.key_terms, "documents": c.documents,
                "category": c.category, "category_similarity": c.category_similarity,
                "new_category": c.new_category, "join_similarity": c.join_similarity, "n_novel": c.n_novel,
                "supported": c.supported, "nearest_codes": c.nearest_codes,
                "quotes": [{"document": segs[i].document, "segment": segs[i].segment, "text": segs[i].text}
                           for i in c.quotes],
            } for c in self.candidates],
            "relations": None if self.relations is None else self.relations.to_dict(),
        }


def saturation_report(model, segments, *, coded: CodedCorpus | None = None, scorer: NoveltyScorer | None = None,
                      threshold: float = 0.95, min_size: int = 2, n_clusters: int | None = None,
                      review: float | None = 0.8, relations_unit: str | None = "answer") -> SaturationReport:
    """Score the segments of held-out interviews, propose candidate codes and trace new concepts per interview.

    Parameters
    ----------
    model : CodingModel
        A fitted model.
    segments : list of Segment
        The held-out interviews' segments, interviews in the order they were (or would be) added.
    coded : CodedCorpus, optional
        The model's training data, to fit a :class:`NoveltyScorer` when ``scorer`` is not given.
    scorer : NoveltyScorer, optional
        A fitted scorer (e.g. ``NoveltyScorer.load(model_folder)``).
    threshold : float
        Novelty at or above which a segment is novel (0.95: less typical than 95% of coded segments).
    min_size, n_clusters
        See :func:`propose_codes`.
    review : float or None
        Novelty from which segments are listed for review and grouped into candidates (0.8: less typical than
        80% of the coded segments; at most ``threshold``); a candidate still needs one novel member to count as a
        candidate new code. None: only the novel segments.
    relations_unit : {"answer", "segment", "document"} or None
        With ``coded``: compare which categories go together in that unit in the coded and the held-out
        interviews (:func:`category_relations`); None: skip it.
    """
    scorer = fitted_scorer(model, coded, scorer)
    scores = scorer.score(model, segments, threshold=threshold)
    if len(scores) == 0:
        raise AutocodeError("There are no segments to check. Give the held-out interviews' transcripts or tables.")
    relations = None
    if coded is not None and relations_unit and relations_apply(model):
        relations = held_out_relations(model, coded, model.suggest(scores.segments).to_corpus(), relations_unit)
    return report_from_scores(scores, model.codebook, scorer, min_size=min_size, n_clusters=n_clusters,
                              review=review, known=known_texts(model), relations=relations)


def known_texts(model) -> list[str]:
    """The texts whose words the codes account for: the model's kept coded examples, its codes' names and
    descriptions (a segment to review without the scorer's evidence lists its terms found in none of them)."""
    known = [t for ex in getattr(model, "examples_", {}).get("segments", []) for t in ex[2:3]]
    return known + [x for c in model.codes_ if c in model.codebook for x in (model.codebook[c].name,
                                                                            model.codebook[c].description)]


def document_curve(doc_of: np.ndarray, eligible: np.ndarray, novel: np.ndarray, docs: list[str],
                   first_seen: dict[str, list[str]], threshold: float) -> list[dict]:
    """Per document (``doc_of``: each segment's index in ``docs``), in order: its segments, eligible and novel
    ones, the candidate codes first seen in it and their running total, and the binomial p-value of more novel
    segments than the ``1 - threshold`` expected by chance (counted in one pass over the segments)."""
    from scipy.stats import binomtest

    n = len(docs)
    n_seg = np.bincount(doc_of, minlength=n) if len(doc_of) else np.zeros(n, dtype=int)
    n_elig = np.bincount(doc_of, weights=eligible, minlength=n) if len(doc_of) else n_seg
    n_novel = np.bincount(doc_of, weights=novel, minlength=n) if len(doc_of) else n_seg
    per, cum = [], 0
    for i, d in enumerate(docs):
        n_el, n_nov = int(n_elig[i]), int(n_novel[i])
        cum += len(first_seen[d])
        p = binomtest(n_nov, n_el, 1 - threshold, alternative="greater").pvalue if n_el else 1.0
        per.append({"document": d, "segments": int(n_seg[i]), "eligible": n_el, "novel": n_nov,
                    "share_novel": n_nov / n_el if n_el else 0.0, "new_candidates": first_seen[d],
                    "cumulative": cum, "p_excess": float(p)})
    return per


def report_from_scores(scores: NoveltyScores, codebook: Codebook, scorer: NoveltyScorer, *, min_size: int = 2,
                       n_clusters: int | None = None, review: float | None = 0.8, known: Sequence[str] = (),
                       relations: RelationReport | None = None) -> SaturationReport:
    """The report of segments already scored (:meth:`NoveltyScorer.score`): candidate codes, the curve, the
    segments to review with the words that none of the ``known`` texts (the model's coded examples, the codes'
    names and descriptions) contains. :func:`saturation_report` scores and calls it."""
    threshold = scores.threshold
    level = None if review is None else min(float(review), threshold)
    cands = propose_codes(scores, codebook, scorer, min_size=min_size, n_clusters=n_clusters, review=level)
    docs = list(dict.fromkeys(s.document for s in scores.segments))
    first_seen: dict[str, list[str]] = {d: [] for d in docs}
    pos = {d: i for i, d in enumerate(docs)}
    for c in cands:
        if c.supported:
            first_seen[min(c.documents, key=pos.get)].append(c.id)
    doc_of = np.array([pos[s.document] for s in scores.segments])
    novel = scores.novel
    per = document_curve(doc_of, scores.eligible, novel, docs, first_seen, threshold)
    if not scores.eligible.any():
        warnings.warn(AutocodeWarning("No segment is eligible (all are the interviewer's or shorter than "
                      f"{scorer.min_chars_} characters); nothing was checked."), stacklevel=3)
    rep = SaturationReport(scores, cands, codebook, docs, per, min_size=min_size, relations=relations,
                           review_level=level, min_chars=scorer.min_chars_,
                           has_categories=any(c is not None for c in code_categories(scorer.codes_, codebook)))
    rep.n_short = int(too_short(scores.segments, min_chars=scorer.min_chars_, exclude_roles=scorer.exclude_roles).sum())
    rows = [r["index"] for r in rep.review_rows()]
    # the scorer's own evidence (words no code accounts for, weighed against the training talk) where it has
    # some; otherwise the terms of the segment found in none of the model's kept examples and code texts
    # (the tagger is run only on the segments the scorer left without evidence)
    words = scores.evidence if len(scores.evidence) == len(scores.segments) else []
    bare = [i for i in rows if not (words and words[i])]
    fallback = dict(zip(bare, unexplained_terms([scores.segments[i].text for i in bare], list(known),
                                                 scorer.tokenizer_)))
    rep.unexplained = {i: (list(words[i]) if words and words[i] else fallback[i]) for i in rows}
    return rep

def relations_apply(model) -> bool:
    """Whether the model's learned codes fall in at least 2 categories (else no relations to compare)."""
    book = model.codebook
    return len({book.ancestor_at(c, book.category_depth) for c in model.codes_}) >= 2


def held_out_relations(model, coded: CodedCorpus, held_out: CodedCorpus, unit: str) -> RelationReport:
    """Links between categories: the coded interviews pre-coded out of fold against the held-out ones
    pre-coded (``held_out``: ``model.suggest(segments).to_corpus()``), both at the model's thresholds."""
    book = model.codebook
    train = coded.subset(coded.coded_mask(model.target))
    Y = train.labels(model.codes_, model.target)
    accepted = model.out_of_fold_proba(train.segments, Y, n_splits=5) >= model.thresholds_
    before = CodedCorpus(train.segments, {"model": {
        s.key: {c for c, a in zip(model.codes_, row) if a} for s, row in zip(train.segments, accepted)}})
    return category_relations(before, held_out, book, unit=unit)
