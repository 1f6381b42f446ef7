"""Agreement between coders over a coded corpus: per code, pooled and macro-averaged, with bootstrap intervals.

Each code is a present/absent decision per unit. :func:`measure_agreement` computes, for every code and over all
codes together, the statistics of :mod:`autocode.agreement` between the coders of a
:class:`~autocode.corpus.CodedCorpus`, optionally rolled up to categories through the codebook, over segments or
characters, with confidence intervals from a bootstrap over documents.

Units
-----
``level="segment"``
    one unit per segment.
``level="character"``
    one unit per character, per code and document, as NVivo's coding comparison counts it: coders who cut
    segments differently can still be compared. Segments with character offsets (``start``/``end``) are placed
    at their offsets, and where segments overlap a character carries the codes of every segment the coder
    coded over it. In a document where some segment has no offsets (a canonical table without ``start``/``end``
    columns) the segments are laid end to end in table order, each as long as its text. Only text inside
    segments counts: text between segments is not known to the corpus.

``uncoded="drop"`` leaves out the units (segments, characters) that no compared coder applied any code to,
at the level compared: an uncoded interviewer question then does not count as agreement on every code.

Coders
------
Every statistic for two coders is given per pair of coders (Cohen's kappa, percent agreement); the statistics
for any number of coders (Krippendorff's alpha, Fleiss' kappa, Gwet's AC1, Brennan-Prediger, percent
agreement; and Krippendorff's alpha over each unit's whole set of codes with the MASI distance, pooled) over the
human coders and, when a model is among the coders, over the humans plus the model. A
model is a coder named in ``models``, by default every coder whose name starts with ``"autocode"`` (the name
``autocode precode`` writes), so human-human and model-human agreement stand side by side.

Missing codings
---------------
A coder who did not code a segment others coded (mismatched segment lists) is missing there, not "applied
nothing": those units are left out of that coder's pairs, Krippendorff's alpha and Gwet's AC1 use the coders
who coded each unit, and Fleiss' kappa uses the units every coder coded. The segments are named in
:attr:`AgreementReport.missing` and in an :class:`~autocode.exceptions.AutocodeWarning`.

Example
-------
>>> from autocode import CodedCorpus, Segment
>>> segs = [Segment("P1", str(i), "文字" * i) for i in range(1, 7)]
>>> e = {("P1", "1"): {"a"}, ("P1", "2"): {"a"}, ("P1", "3"): set(), ("P1", "4"): {"b"},
...      ("P1", "5"): {"b"}, ("P1", "6"): set()}
>>> a = {**e, ("P1", "3"): {"a"}}
>>> report = measure_agreement(CodedCorpus(segs, {"E": e, "A": a}))
>>> round(report.value("cohen_kappa", code="a"), 3), report.value("cohen_kappa", code="b")
(0.667, 1.0)
>>> [(d["code"], d["segment"], d["applied_by"]) for d in report.disagreements]
[('a', '3', ['A'])]
"""

from __future__ import annotations

import base64
import csv
import html
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Literal

import numpy as np
import scipy.sparse as sp

from .agreement import AgreementError, AgreementSums, masi_distances
from .corpus import CodedCorpus
from .exceptions import AutocodeWarning, FormatError

__all__ = ["AgreementReport", "Disagreements", "measure_agreement", "STATISTICS"]

STATISTICS = {
    "cohen_kappa": "Cohen's kappa",
    "pair_agreement": "percent agreement",
    "krippendorff_alpha": "Krippendorff's alpha",
    "fleiss_kappa": "Fleiss' kappa",
    "gwet_ac1": "Gwet's AC1",
    "brennan_prediger": "Brennan-Prediger",
    "percent_agreement": "percent agreement",
    "masi_alpha": "Krippendorff's alpha, MASI (code sets)",
}
"""Statistic keys used in the report, and their display names. The first two are per pair of coders."""

_PAIR_STATS = ("cohen_kappa", "pair_agreement")
_GROUP_STATS = ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "brennan_prediger", "percent_agreement")
_SET_STATS = ("masi_alpha",)  # over each unit's whole set of codes: pooled only
REPORT_FORMAT = "autocode-agreement 1"


@dataclass
class AgreementReport:
    """The result of :func:`measure_agreement`.

    Attributes
    ----------
    rows : list of dict
        One row per statistic, coder pair or group, and scope: ``scope`` (``"code"``, ``"pooled"`` over all
        unit x code decisions, ``"macro"`` = mean over the codes whose values vary, nan when none does),
        ``code``, ``name``, ``statistic``, ``coders``
        (``"E~A"`` for a pair, ``"E+A+M"`` for a group), ``kind`` (``"human-human"``, ``"model-human"``,
        ``"model-model"``, ``"humans"``, ``"all"``), ``value``, ``ci_low``, ``ci_high``, ``units`` (units coded
        by at least two of the coders; characters at character level), ``applied`` (units any of them coded
        with the code).
    disagreements : Disagreements (a sequence of dict)
        Per code, the segments where coders who coded the segment differ: ``code``, ``document``,
        ``segment``, ``speaker``, ``text``, ``applied_by``, ``not_applied_by``.
    missing : dict coder -> list of str
        What other compared coders coded and this coder did not: segments as ``"document/segment"`` (segment
        level), or documents with a count of characters as ``"document: 12 characters"`` (character level).
    """

    level: str
    by: str
    coders: list[str]
    models: list[str]
    codes: list[str]
    code_names: dict[str, str]
    n_units: int
    n_documents: int
    uncoded: str
    n_bootstrap: int
    confidence: float
    random_state: int | None
    rows: list[dict] = field(default_factory=list)
    disagreements: Sequence[dict] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def humans(self) -> list[str]:
        return [c for c in self.coders if c not in self.models]

    def value(self, statistic: str, code: str | None = None, coders: str | None = None,
              scope: str | None = None) -> float:
        """One figure: ``statistic`` for ``code`` (``None``: pooled; or ``scope="macro"``) and ``coders``
        (a pair ``"E~A"`` or a group ``"E+A"``; default: the first row that matches)."""
        return self.row(statistic, code, coders, scope)["value"]

    def row(self, statistic: str, code: str | None = None, coders: str | None = None,
            scope: str | None = None) -> dict:
        """The report row behind :meth:`value`."""
        scope = scope or ("code" if code is not None else "pooled")
        for r in self.rows:
            if r["statistic"] == statistic and r["scope"] == scope and (code is None or r["code"] == code) \
                    and (coders is None or r["coders"] == coders):
                return r
        known = sorted({r["coders"] for r in self.rows if r["statistic"] == statistic})
        raise AgreementError(
            f"No {statistic!r} figure for code={code!r}, coders={coders!r}, scope={scope!r}. Statistics: "
            f"{sorted(STATISTICS)}; coders for this statistic: {known}; codes: {self.codes[:10]}"
            f"{' ...' if len(self.codes) > 10 else ''}."
        )

    # -- output --------------------------------------------------------------------------------------
    def _summary_lines(self) -> list[str]:
        unit = "characters" if self.level == "character" else "segments"
        ci = (f"{self.confidence:.0%} intervals from {self.n_bootstrap} bootstrap resamples of documents "
              f"(seed {self.random_state})" if self.n_bootstrap else "no confidence intervals (bootstrap off)")
        return [
            f"{self.n_units} {unit} in {self.n_documents} documents; {len(self.codes)} "
            f"{'codes' if self.by == 'code' else 'categories (' + self.by + ')'}; coders: "
            f"{', '.join(self.humans)}" + (f"; model(s): {', '.join(self.models)}" if self.models else "")
            + f"; uncoded text {'left out' if self.uncoded == 'drop' else 'kept'}; {ci}.",
            *self.notes,
        ]

    @staticmethod
    def _fmt(r: dict | None) -> str:
        if r is None or r["value"] is None or np.isnan(r["value"]):
            return "–"
        s = f"{r['value']:.3f}"
        if r.get("ci_low") is not None and not np.isnan(r["ci_low"]):
            s += f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
        return s

    def _pair_columns(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((r["coders"], r["kind"]) for r in self.rows if r["statistic"] == "cohen_kappa"))

    def _group_columns(self) -> list[tuple[str, str]]:
        return list(dict.fromkeys((r["coders"], r["kind"]) for r in self.rows
                                  if r["statistic"] == "krippendorff_alpha"))

    def _index(self) -> dict:
        return {(r["scope"], r["code"], r["statistic"], r["coders"]): r for r in self.rows}

    def _summary_table(self) -> list[list[str]]:
        idx = self._index()
        head = ["statistic", "coders", "kind", "pooled", "macro (mean over codes)"]
        out = [head]
        for stat in _PAIR_STATS:
            for coders, kind in self._pair_columns():
                out.append([STATISTICS[stat], coders, kind, self._fmt(idx.get(("pooled", "", stat, coders))),
                            self._fmt(idx.get(("macro", "", stat, coders)))])
        for stat in _GROUP_STATS + _SET_STATS:
            for coders, kind in self._group_columns():
                out.append([STATISTICS[stat], coders, kind, self._fmt(idx.get(("pooled", "", stat, coders))),
                            self._fmt(idx.get(("macro", "", stat, coders)))])
        return out

    def _code_table(self) -> list[list[str]]:
        idx = self._index()
        pairs = self._pair_columns()
        groups = self._group_columns()
        head = ["code", "name", "applied"] + [f"kappa {c}" for c, _ in pairs] + \
            [f"% agree {c}" for c, _ in pairs] + [f"alpha {c}" for c, _ in groups] + [f"AC1 {c}" for c, _ in groups]
        out = [head]
        for code in self.codes:
            first = idx.get(("code", code, "krippendorff_alpha", groups[0][0])) if groups else None
            applied = f"{first['applied']:g}" if first else ""
            row = [code, self.code_names.get(code, code) if self.code_names.get(code) != code else "", applied]
            row += [self._fmt(idx.get(("code", code, "cohen_kappa", c))) for c, _ in pairs]
            row += [self._fmt(idx.get(("code", code, "pair_agreement", c))) for c, _ in pairs]
            row += [self._fmt(idx.get(("code", code, "krippendorff_alpha", c))) for c, _ in groups]
            row += [self._fmt(idx.get(("code", code, "gwet_ac1", c))) for c, _ in groups]
            out.append(row)
        return out

    def _missing_lines(self) -> list[str]:
        out = []
        what = "segment(s)" if self.level == "segment" else "document(s)' text"
        for coder, keys in self.missing.items():
            out.append(f"- {coder} did not code {len(keys)} {what} others coded: {', '.join(keys[:20])}"
                       f"{' ...' if len(keys) > 20 else ''}")
        return out

    def to_markdown(self, plot: str | None = None, max_disagreements: int = 10) -> str:
        """A Markdown report; ``plot`` is the path of the per-code plot to link (see :meth:`plot_png`)."""
        def table(rows: list[list[str]]) -> list[str]:
            esc = [[str(c).replace("|", "\\|").replace("\n", " ") for c in r] for r in rows]
            return ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(esc[0])] + \
                ["| " + " | ".join(r) + " |" for r in esc[1:]]

        lines = ["# Agreement between coders", "", *self._summary_lines(), ""]
        if self.missing:
            lines += ["## Mismatched segment lists", "", *self._missing_lines(), ""]
        lines += ["## Summary", "", *table(self._summary_table()), "",
                  f"## Per {'code' if self.by == 'code' else 'category'}", "",
                  "`applied`: units any coder applied the code to. A code only one category of which occurs (e.g. "
                  "nobody applied it) has chance-corrected statistics of 1 by convention.", "",
                  *table(self._code_table()), ""]
        if plot:
            lines += [f"![Per-code agreement with intervals]({plot})", ""]
        lines += self._disagreement_markdown(max_disagreements)
        return "\n".join(lines) + "\n"

    def _disagreement_markdown(self, max_rows: int) -> list[str]:
        if not self.disagreements:
            return ["## Disagreements", "", "None: the coders agree on every segment.", ""]
        lines = ["## Disagreements", "", f"Segments where coders differ, per code (at most {max_rows} per code).",
                 ""]
        counts = _disagreement_counts(self.disagreements)
        for code, items in _disagreements_by_code(self.disagreements, max_rows).items():
            lines += [f"### {code} {self.code_names.get(code, '') if self.code_names.get(code) != code else ''}"
                      .rstrip() + f" ({counts[code]})", "",
                      "| document | segment | applied by | not by | text |", "|---|---|---|---|---|"]
            for d in items:
                text = d["text"].replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {d['document']} | {d['segment']} | {', '.join(d['applied_by'])} | "
                             f"{', '.join(d['not_applied_by'])} | {text} |")
            lines.append("")
        return lines

    def plot_png(self, statistic: str = "cohen_kappa") -> bytes:
        """A PNG of ``statistic`` per code with its intervals, one marker per coder pair (or group).

        Code ids are drawn with a CJK font when one is installed; otherwise ids that the font cannot draw are
        replaced by their number in the per-code table (``#3``).
        """
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = self._plot(statistic, list(self.codes))
        if any("Glyph" in str(w.message) for w in caught):
            with warnings.catch_warnings():
                # coder names the font cannot draw are drawn as boxes; the table beside the plot names them
                warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
                png = self._plot(statistic, [c if c.isascii() else f"#{k + 1}" for k, c in enumerate(self.codes)])
        return png

    def _plot(self, statistic: str, labels: list[str]) -> bytes:
        import matplotlib
        from matplotlib.figure import Figure

        rows = [r for r in self.rows if r["statistic"] == statistic and r["scope"] == "code"]
        series = list(dict.fromkeys(r["coders"] for r in rows))
        codes = self.codes
        fonts = ["Noto Sans CJK SC", "Noto Sans CJK TC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei",
                 "Microsoft YaHei", "PingFang SC", "DejaVu Sans"]
        with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": fonts}):
            fig = Figure(figsize=(8.5, 1.4 + 0.28 * max(len(codes), 2)))
            ax = fig.add_subplot()
            y = np.arange(len(codes))
            for k, s in enumerate(series):
                by = {r["code"]: r for r in rows if r["coders"] == s}
                v = np.array([by[c]["value"] if c in by else np.nan for c in codes], dtype=float)
                lo = np.array([np.nan if c not in by or by[c]["ci_low"] is None else by[c]["ci_low"] for c in codes])
                hi = np.array([np.nan if c not in by or by[c]["ci_high"] is None else by[c]["ci_high"]
                               for c in codes])
                off = (k - (len(series) - 1) / 2) * 0.2
                err = np.vstack([np.nan_to_num(v - lo), np.nan_to_num(hi - v)])
                ax.errorbar(v, y + off, xerr=err, fmt="o", ms=4, capsize=2, label=s)
            ax.set_yticks(y)
            ax.set_yticklabels(labels, fontsize=7)
            ax.invert_yaxis()
            ax.axvline(0, color="0.6", lw=0.8)
            ax.set_xlabel(STATISTICS.get(statistic, statistic) + (" (bars: bootstrap interval)"
                                                                  if self.n_bootstrap else ""))
            lows = [r["value"] for r in rows] + [r["ci_low"] for r in rows if r["ci_low"] is not None] + [0.0]
            ax.set_xlim(min(-0.1, float(np.nanmin(lows)) - 0.05), 1.05)
            if series:
                ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
            fig.tight_layout()
            buf = io.BytesIO()
            fig.savefig(buf, format="png", dpi=100)
        return buf.getvalue()

    def to_html(self, max_disagreements: int = 50) -> str:
        """A self-contained HTML page: tables, the per-code plot (embedded PNG), the disagreements."""
        def table(rows: list[list[str]]) -> str:
            head = "".join(f"<th>{html.escape(str(c))}</th>" for c in rows[0])
            body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>"
                           for r in rows[1:])
            return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

        png = base64.b64encode(self.plot_png()).decode("ascii")
        parts = [
            "<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
            f'<meta name="generator" content="{REPORT_FORMAT}">',
            "<title>Agreement between coders</title><style>body{font-family:sans-serif;max-width:70em;margin:auto}"
            "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px;"
            "font-size:90%}th{background:#eee}</style></head><body>",
            "<h1>Agreement between coders</h1>",
            *(f"<p>{html.escape(s)}</p>" for s in self._summary_lines()),
        ]
        if self.missing:
            parts += ["<h2>Mismatched segment lists</h2><ul>",
                      *(f"<li>{html.escape(s[2:])}</li>" for s in self._missing_lines()), "</ul>"]
        parts += ["<h2>Summary</h2>", table(self._summary_table()),
                  f"<h2>Per {'code' if self.by == 'code' else 'category'}</h2>",
                  f'<img alt="Per-code Cohen\'s kappa with intervals" src="data:image/png;base64,{png}">',
                  table(self._code_table()), "<h2>Disagreements</h2>"]
        by_code = _disagreements_by_code(self.disagreements, max_disagreements)
        counts = _disagreement_counts(self.disagreements)
        if not by_code:
            parts.append("<p>None: the coders agree on every segment.</p>")
        for code, items in by_code.items():
            parts.append(f"<h3>{html.escape(code)} {html.escape(self.code_names.get(code, ''))} "
                         f"({counts[code]})</h3>")
            parts.append(table([["document", "segment", "applied by", "not by", "text"]] + [
                [d["document"], d["segment"], ", ".join(d["applied_by"]), ", ".join(d["not_applied_by"]),
                 d["text"]] for d in items]))
        parts.append("</body></html>")
        return "\n".join(parts) + "\n"

    CSV_COLUMNS = ("scope", "code", "name", "statistic", "coders", "kind", "value", "ci_low", "ci_high",
                   "units", "applied")

    def to_csv(self) -> str:
        """Every figure as one CSV row (columns :attr:`CSV_COLUMNS`)."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.CSV_COLUMNS)
        for r in self.rows:
            w.writerow(["" if r.get(k) is None else (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k])
                        for k in self.CSV_COLUMNS])
        return buf.getvalue()

    def disagreements_csv(self) -> str:
        """The disagreements as CSV: code, document, segment, speaker, text, applied_by, not_applied_by."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        cols = ("code", "document", "segment", "speaker", "text", "applied_by", "not_applied_by")
        w.writerow(cols)
        for d in self.disagreements:
            w.writerow([";".join(d[c]) if isinstance(d[c], list) else d[c] for c in cols])
        return buf.getvalue()

    def write_disagreements(self, path: str | Path) -> Path:
        """Write every disagreement as CSV (UTF-8 with BOM, so Excel shows the Chinese text)."""
        path = Path(path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.disagreements_csv(), encoding="utf-8-sig")
        return path

    def write(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix: ``.md`` (plus a ``.png`` beside it), ``.html``,
        ``.csv``."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".md", ".markdown", ".html", ".htm", ".csv"):
            raise FormatError(f"Unknown report format {path.suffix!r}: use .md, .html or .csv.", path)
        if path.parent and not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
        if suffix == ".csv":
            path.write_text(self.to_csv(), encoding="utf-8-sig")
        elif suffix in (".html", ".htm"):
            path.write_text(self.to_html(), encoding="utf-8")
        else:
            png = path.with_suffix(".png")
            png.write_bytes(self.plot_png())
            path.write_text(self.to_markdown(plot=png.name), encoding="utf-8")
        return path


def _disagreements_by_code(items: Sequence[dict], limit: int | None) -> dict[str, list[dict]]:
    if isinstance(items, Disagreements):
        return items.by_code(limit)
    out: dict[str, list[dict]] = {}
    for d in items:
        out.setdefault(d["code"], []).append(d)
    return {k: v[:limit] for k, v in out.items()}


def _disagreement_counts(items: Sequence[dict]) -> dict[str, int]:
    if isinstance(items, Disagreements):
        return items.counts()
    out: dict[str, int] = {}
    for d in items:
        out[d["code"]] = out.get(d["code"], 0) + 1
    return out


# -- computation ---------------------------------------------------------------------------------------------
def _depth_for(by: str | int, book) -> int | None:
    if by == "code":
        return None
    if book is None:
        raise AgreementError(
            f"by={by!r} rolls codes up through the codebook, but the corpus has none. Read the coding with "
            "codebook=... (CLI: --codebook codebook.csv), or use by='code'."
        )
    if by == "main":
        return book.main_depth
    if by == "category":
        return book.category_depth
    if isinstance(by, int) and not isinstance(by, bool) and by >= 0:
        return by
    raise AgreementError(f"Unknown by={by!r}: use 'code', 'category', 'main' or a codebook depth (0 = top level).")


def _char_units(corpus: CodedCorpus) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Elementary character intervals: (intervals x segments cover matrix, interval lengths, interval doc)."""
    rows, cols, lengths, docs = [], [], [], []
    by_doc: dict[str, list[int]] = {}
    for i, s in enumerate(corpus.segments):
        by_doc.setdefault(s.document, []).append(i)
    doc_ids = {d: k for k, d in enumerate(by_doc)}
    n_int = 0
    for doc, idx in by_doc.items():
        segs = [corpus.segments[i] for i in idx]
        if all(s.start is not None and s.end is not None and s.end >= s.start for s in segs):
            start = np.array([s.start for s in segs], dtype=np.int64)
            end = np.array([s.end for s in segs], dtype=np.int64)
        else:
            ln = np.array([len(s.text) for s in segs], dtype=np.int64)
            end = np.cumsum(ln)
            start = end - ln
        cuts = np.unique(np.concatenate([start, end]))
        a = np.searchsorted(cuts, start)
        b = np.searchsorted(cuts, end)
        for k, (lo, hi) in enumerate(zip(a, b)):
            for t in range(lo, hi):
                rows.append(n_int + t)
                cols.append(idx[k])
        n_int += len(cuts) - 1
        lengths.append(np.diff(cuts))
        docs.append(np.full(len(cuts) - 1, doc_ids[doc]))
    cover = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_int, len(corpus)))
    length = np.concatenate(lengths).astype(np.float64) if lengths else np.zeros(0)
    doc = np.concatenate(docs) if docs else np.zeros(0, dtype=np.int64)
    keep = np.asarray(cover.sum(axis=1)).ravel() > 0  # gaps between segments are not units
    keep &= length > 0
    return cover[keep], length[keep], doc[keep]


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
        The unit of agreement (see the module documentation).
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
        Fewer than two coders, an unknown coder, a coder who coded no segment, no segment coded by two
        coders, mismatched segment lists with ``strict=True``.
    """
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
    models = [c for c in coders if c in set(models)]
    if level not in ("segment", "character"):
        raise AgreementError(f"Unknown level {level!r}: use 'segment' or 'character'.")
    if uncoded not in ("keep", "drop"):
        raise AgreementError(f"Unknown uncoded={uncoded!r}: use 'keep' or 'drop'.")
    if n_bootstrap < 0 or not 0 < confidence < 1:
        raise AgreementError(f"Expected n_bootstrap >= 0 and 0 < confidence < 1, got {n_bootstrap}, {confidence}.")
    depth = _depth_for(by, corpus.codebook)
    work = corpus if depth is None else corpus.rolled_up(depth)

    columns = {c: work.codings(c) for c in coders}
    empty = [c for c, col in columns.items() if all(x is None for x in col)]
    if empty:
        raise AgreementError(
            f"Coder(s) {empty} coded no segment. Check the coder names in the 'coder' column (or the file "
            f"names), or leave them out with coders=[...]."
        )
    coded = np.array([[x is not None for x in columns[c]] for c in coders], dtype=bool)  # (m, N)
    if codes is None:
        used: set[str] = set()
        for col in columns.values():
            for x in col:
                if x:
                    used.update(x)
        book = work.codebook
        codes = [c for c in book.ids if c in used] if book is not None else sorted(used)
    codes = list(codes)
    if not codes:
        raise AgreementError("No coder applied any code, so there is nothing to compare. Check the 'codes' column.")
    col_of = {c: j for j, c in enumerate(codes)}
    n_seg = len(work)
    x = np.zeros((len(coders), n_seg, len(codes)), dtype=bool)
    for i, c in enumerate(coders):
        for s, got in enumerate(columns[c]):
            for code in got or ():
                j = col_of.get(code)
                if j is not None:
                    x[i, s, j] = True

    docs = list(dict.fromkeys(s.document for s in work.segments))
    doc_index = {d: k for k, d in enumerate(docs)}
    doc_of_seg = np.array([doc_index[s.document] for s in work.segments], dtype=np.int64)
    if level == "character":
        cover, weight, unit_doc = _char_units(work)
        ux = np.stack([(cover @ x[i].astype(np.float64)) > 0 for i in range(len(coders))])
        ucoded = np.stack([(cover @ coded[i].astype(np.float64)) > 0 for i in range(len(coders))])
    else:
        ux, ucoded, weight, unit_doc = x, coded, np.ones(n_seg), doc_of_seg
    ux &= ucoded[:, :, None]
    missing = _missing(work, coders, coded, ucoded, weight, unit_doc, docs, level)
    if missing:
        what = "segment lists" if level == "segment" else "stretches of text"
        msg = "; ".join(f"{c} did not code {len(k)} {'segment(s)' if level == 'segment' else 'document(s)'}"
                        f" others coded{' text of' if level == 'character' else ''}, e.g. {', '.join(k[:5])}"
                        for c, k in missing.items())
        if strict:
            raise AgreementError(f"The coders coded different {what}: {msg}. Give every coder the same "
                                 "segments, or pass strict=False to compare them where they overlap.")
        warnings.warn(f"The coders coded different {what}: {msg}. Text a coder did not code counts as "
                      "missing for that coder (not as 'no code').", AutocodeWarning, stacklevel=2)
    if uncoded == "drop":
        weight = weight * ux.any(axis=(0, 2))
    n_units = int(weight[ucoded.any(axis=0)].sum())

    to_doc = sp.csr_matrix((np.ones(len(unit_doc)), (unit_doc, np.arange(len(unit_doc)))),
                           shape=(len(docs), len(unit_doc)))
    groups = {"+".join(coders): "all"}
    if models and len(coders) - len(models) >= 2:
        groups = {"+".join(c for c in coders if c not in models): "humans", **groups}
    pairs = list(combinations(range(len(coders)), 2))

    def pair_kind(i: int, j: int) -> str:
        n = (coders[i] in models) + (coders[j] in models)
        return ("human-human", "model-human", "model-model")[n]

    # one-hot ratings (coders, units, codes, 2): [absent, present] where coded
    ratings = np.stack([ucoded[:, :, None] & ~ux, ux], axis=-1)
    doc_sums: dict[str, AgreementSums] = {}
    for name in groups:
        members = [coders.index(c) for c in name.split("+")]
        doc_sums[name] = AgreementSums.from_ratings(ratings[members], weight[:, None], into=to_doc)
    applied = (to_doc @ (weight[:, None] * ux.any(axis=0))).sum(axis=0)

    rng = np.random.default_rng(random_state)
    boot_w = rng.multinomial(len(docs), np.full(len(docs), 1 / len(docs)), size=n_bootstrap) \
        if n_bootstrap else None
    a = (1 - confidence) / 2

    def statistics(s: AgreementSums) -> dict[str, np.ndarray]:
        return {"cohen_kappa": s.cohen_kappa(), "pair_agreement": s.pair_agreement(),
                "krippendorff_alpha": s.krippendorff_alpha(), "fleiss_kappa": s.fleiss_kappa(),
                "gwet_ac1": s.gwet_ac1(), "brennan_prediger": s.brennan_prediger(),
                "percent_agreement": s.percent_agreement()}

    def interval(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-nan slices give nan, as they should
            return np.nanquantile(b, a, axis=0), np.nanquantile(b, 1 - a, axis=0)

    def macro(v: np.ndarray, varies: np.ndarray) -> np.ndarray:
        """Mean over codes (last axis) of the codes whose values vary (others are 1 by convention)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(np.where(varies, v, np.nan), axis=-1)

    rows: list[dict] = []
    names = {c: (work.codebook[c].name if work.codebook is not None and c in work.codebook else c) for c in codes}
    for gname, gkind in groups.items():
        total = doc_sums[gname].sum(axis=0)  # (codes, ...)
        pooled = total.sum(axis=0)
        point_code = statistics(total)
        point_pooled = statistics(pooled)
        if boot_w is not None:
            bs = doc_sums[gname].reweight(boot_w)  # (B, codes, ...)
            boot_code = statistics(bs)
            boot_pooled = statistics(bs.sum(axis=1))
        for stat, v in point_code.items():
            is_pair = stat in _PAIR_STATS
            if is_pair and gkind != "all":
                continue  # pairs come from the group of all coders
            series = [(f"{coders[i]}~{coders[j]}", pair_kind(i, j), k) for k, (i, j) in enumerate(pairs)] \
                if is_pair else [(gname, gkind, None)]
            for label, kind, k in series:
                pick = (lambda arr, k=k: arr[..., k]) if is_pair else (lambda arr: arr)
                code_v = pick(v)
                varies = pick(total.pair_varies() if is_pair else total.varies())
                if is_pair:
                    t = total.pairs[:, k]
                    units_code = t.sum(axis=(-2, -1))
                else:
                    units_code = total.n_pairable
                lo_c = hi_c = lo_p = hi_p = lo_m = hi_m = None
                if boot_w is not None:
                    lo_c, hi_c = interval(pick(boot_code[stat]))
                    lo_p, hi_p = interval(pick(boot_pooled[stat]))
                    lo_m, hi_m = interval(macro(pick(boot_code[stat]),
                                                pick(bs.pair_varies() if is_pair else bs.varies())))
                for j, code in enumerate(codes):
                    rows.append(_row("code", code, names[code], stat, label, kind, code_v[j],
                                     None if lo_c is None else lo_c[j], None if hi_c is None else hi_c[j],
                                     units_code[j], applied[j]))
                rows.append(_row("pooled", "", "", stat, label, kind, pick(point_pooled[stat]), lo_p, hi_p,
                                 float(units_code.sum()), float(applied.sum())))
                rows.append(_row("macro", "", "", stat, label, kind, macro(code_v, varies), lo_m, hi_m,
                                 float(units_code.sum()), float(applied.sum())))

    notes: list[str] = []
    for gname, gkind in groups.items():
        members = [coders.index(c) for c in gname.split("+")]
        rows.append(_masi_row(ux[members], ucoded[members], weight, to_doc, boot_w, a, gname, gkind, notes))

    disagreements = Disagreements(work, coders, x, coded, codes)
    return AgreementReport(
        level=level, by=by if isinstance(by, str) else f"depth {by}", coders=list(coders), models=models,
        codes=codes, code_names=names, n_units=n_units, n_documents=len(docs), uncoded=uncoded,
        n_bootstrap=n_bootstrap, confidence=confidence, random_state=random_state, rows=rows,
        disagreements=disagreements, missing=missing, notes=list(dict.fromkeys(notes)),
    )


def _missing(corpus: CodedCorpus, coders: list[str], coded: np.ndarray, ucoded: np.ndarray, weight: np.ndarray,
             unit_doc: np.ndarray, docs: list[str], level: str) -> dict[str, list[str]]:
    """Per coder: the segments (``"doc/segment"``) or, at character level, the documents with the number of
    characters (``"doc: 12 characters"``) that other compared coders coded and this coder did not."""
    out: dict[str, list[str]] = {}
    for i, c in enumerate(coders):
        if level == "segment":
            others = np.delete(coded, i, axis=0).any(axis=0)
            gap = np.flatnonzero(others & ~coded[i])
            if gap.size:
                out[c] = ["/".join(corpus.segments[j].key) for j in gap]
        else:
            others = np.delete(ucoded, i, axis=0).any(axis=0)
            chars = np.bincount(unit_doc, weights=weight * (others & ~ucoded[i]), minlength=len(docs))
            if chars.any():
                out[c] = [f"{docs[d]}: {chars[d]:g} characters" for d in np.flatnonzero(chars)]
    return out


MASI_MAX_SETS = 3000
"""More distinct label sets than this: no MASI alpha (its distance matrix grows with the square)."""


def _masi_row(ux: np.ndarray, ucoded: np.ndarray, weight: np.ndarray, to_doc, boot_w, a: float, gname: str,
              gkind: str, notes: list[str]) -> dict:
    """Krippendorff's alpha over each unit's set of codes with the MASI distance, pooled, with its interval."""
    m, n_units, n_codes = ux.shape
    packed = np.packbits(ux, axis=-1).reshape(m * n_units, -1)
    uniq, inv = np.unique(packed, axis=0, return_inverse=True)
    n_sets = len(uniq)
    applied = float((weight * ux.any(axis=(0, 2))).sum())
    if n_sets > MASI_MAX_SETS:
        notes.append(f"MASI alpha is not computed: the coders used {n_sets} distinct sets of codes (more than "
                     f"{MASI_MAX_SETS}).")
        return _row("pooled", "", "", "masi_alpha", gname, gkind, np.nan, None, None, 0.0, applied)
    vals = np.where(ucoded, inv.reshape(m, n_units), 0)
    delta = masi_distances(np.unpackbits(uniq, axis=1)[:, :n_codes].astype(bool))
    r = ucoded.sum(axis=0)
    ok = r >= 2
    do = np.zeros(n_units)
    for i, j in combinations(range(m), 2):
        do += 2 * delta[vals[i], vals[j]] * (ucoded[i] & ucoded[j])
    do = np.where(ok, do / np.maximum(r - 1, 1), 0.0) * weight
    take = ucoded & ok
    coder_unit = np.nonzero(take)
    marg_units = sp.csr_matrix((weight[coder_unit[1]], (coder_unit[1], vals[take])), shape=(n_units, n_sets))
    doc_do = to_doc @ do
    doc_marg = (to_doc @ marg_units).toarray()  # (docs, sets)
    # expected disagreement of a resample w (weights over documents): (w M) delta (w M)' = w G w' with
    # G = M delta M' (docs x docs), so resamples cost docs^2 each, not sets^2
    gram = (doc_marg @ delta) @ doc_marg.T
    n_doc = doc_marg.sum(axis=1)

    def alpha(w: np.ndarray) -> np.ndarray:
        n = w @ n_doc
        de = ((w @ gram) * w).sum(axis=-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = 1.0 - (n - 1) * (w @ doc_do) / de
        return np.where(n >= 2, np.where(de > 0, out, 1.0), np.nan)

    value = alpha(np.ones(len(doc_do)))
    lo = hi = None
    if boot_w is not None:
        boot = alpha(boot_w.astype(np.float64))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = np.nanquantile(boot, a), np.nanquantile(boot, 1 - a)
    return _row("pooled", "", "", "masi_alpha", gname, gkind, value, lo, hi, float(weight[ok].sum()), applied)


def _row(scope, code, name, stat, coders, kind, value, lo, hi, units, applied) -> dict:
    def f(v):
        return None if v is None else float(v)

    return {"scope": scope, "code": code, "name": name, "statistic": stat, "coders": coders, "kind": kind,
            "value": float(value), "ci_low": f(lo), "ci_high": f(hi), "units": float(units),
            "applied": float(applied)}


class Disagreements(Sequence):
    """The segments where coders who coded them differ on a code, grouped by code, built row by row on access.

    Each item is a dict: ``code``, ``document``, ``segment``, ``speaker``, ``text``, ``applied_by``,
    ``not_applied_by`` (coder names).
    """

    def __init__(self, corpus: CodedCorpus, coders: list[str], x: np.ndarray, coded: np.ndarray,
                 codes: list[str]):
        n_coded = coded.sum(axis=0)
        applied = x & coded[:, :, None]
        pos = applied.sum(axis=0)  # (N, C)
        differ = (pos > 0) & (pos < n_coded[:, None]) & (n_coded[:, None] >= 2)
        self._code, self._seg = np.nonzero(differ.T)  # grouped by code, segments in corpus order
        self._applied = applied[:, self._seg, self._code]
        self._coded = coded[:, self._seg]
        self._segments, self._coders, self._codes = corpus.segments, list(coders), list(codes)

    def __len__(self) -> int:
        return len(self._code)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        seg = self._segments[self._seg[i]]
        y, d = self._applied[:, i], self._coded[:, i]
        return {"code": self._codes[self._code[i]], "document": seg.document, "segment": seg.segment,
                "speaker": seg.speaker, "text": seg.text,
                "applied_by": [c for c, a, k in zip(self._coders, y, d) if a and k],
                "not_applied_by": [c for c, a, k in zip(self._coders, y, d) if k and not a]}

    def by_code(self, limit: int | None = None) -> dict[str, list[dict]]:
        """Code -> its disagreements (at most ``limit`` each), in code order."""
        out: dict[str, list[dict]] = {}
        codes, starts, counts = np.unique(self._code, return_index=True, return_counts=True)
        for j, s, n in zip(codes.tolist(), starts.tolist(), counts.tolist()):
            out[self._codes[j]] = [self[k] for k in range(s, s + (n if limit is None else min(n, limit)))]
        return out

    def counts(self) -> dict[str, int]:
        """Code -> number of disagreements."""
        codes, n = np.unique(self._code, return_counts=True)
        return {self._codes[j]: int(k) for j, k in zip(codes.tolist(), n.tolist())}
