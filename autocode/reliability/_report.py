"""The agreement report: the figures of :func:`~autocode.reliability.measure_agreement` as rows, and their
rendering as Markdown, HTML (with the per-code plot embedded) and CSV.

Every figure is one row (a dict, see :class:`AgreementReport`); the tables, the plot and the files are views of
those rows, so what a report says and what it writes to CSV cannot drift apart.
"""

from __future__ import annotations

import base64
import csv
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._files import atomic_write, write_bytes, write_text
from ..agreement import AgreementError
from ..exceptions import FormatError
from ._disagreements import disagreement_counts, disagreements_by_code
from ._plot import plot_per_code

__all__ = ["AgreementReport", "STATISTICS", "PAIR_STATISTICS", "GROUP_STATISTICS", "SET_STATISTICS", "make_row"]

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

PAIR_STATISTICS = ("cohen_kappa", "pair_agreement")
GROUP_STATISTICS = ("krippendorff_alpha", "fleiss_kappa", "gwet_ac1", "brennan_prediger", "percent_agreement")
SET_STATISTICS = ("masi_alpha",)  # over each unit's whole set of codes: pooled only
REPORT_FORMAT = "autocode-agreement 1"


@dataclass
class AgreementReport:
    """The result of :func:`~autocode.reliability.measure_agreement`.

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
        for stat in PAIR_STATISTICS:
            for coders, kind in self._pair_columns():
                out.append([STATISTICS[stat], coders, kind, self._fmt(idx.get(("pooled", "", stat, coders))),
                            self._fmt(idx.get(("macro", "", stat, coders)))])
        for stat in GROUP_STATISTICS + SET_STATISTICS:
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
        counts = disagreement_counts(self.disagreements)
        for code, items in disagreements_by_code(self.disagreements, max_rows).items():
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
        rows = [r for r in self.rows if r["statistic"] == statistic and r["scope"] == "code"]
        xlabel = STATISTICS.get(statistic, statistic) + (" (bars: bootstrap interval)" if self.n_bootstrap else "")
        return plot_per_code(rows, list(self.codes), xlabel)

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
        by_code = disagreements_by_code(self.disagreements, max_disagreements)
        counts = disagreement_counts(self.disagreements)
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
        self._write_disagreements(buf)
        return buf.getvalue()

    def _write_disagreements(self, f) -> None:
        w = csv.writer(f, lineterminator="\n")
        cols = ("code", "document", "segment", "speaker", "text", "applied_by", "not_applied_by")
        w.writerow(cols)
        for d in self.disagreements:
            w.writerow([";".join(d[c]) if isinstance(d[c], list) else d[c] for c in cols])

    def write_disagreements(self, path: str | Path) -> Path:
        """Write every disagreement as CSV (UTF-8 with BOM, so Excel shows the Chinese text), a row at a time."""
        with atomic_write(Path(path), encoding="utf-8-sig", newline="") as f:
            self._write_disagreements(f)
        return Path(path)

    def write(self, path: str | Path) -> Path:
        """Write the report; the format follows the suffix: ``.md`` (plus a ``.png`` beside it), ``.html``,
        ``.csv``."""
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".md", ".markdown", ".html", ".htm", ".csv"):
            raise FormatError(f"Unknown report format {path.suffix!r}: use .md, .html or .csv.", path)
        if suffix == ".csv":
            write_text(path, self.to_csv(), encoding="utf-8-sig")
        elif suffix in (".html", ".htm"):
            write_text(path, self.to_html())
        else:
            png = path.with_suffix(".png")
            write_bytes(png, self.plot_png())
            write_text(path, self.to_markdown(plot=png.name))
        return path


def make_row(scope: str, code: str, name: str, statistic: str, coders: str, kind: str, value, low, high, units,
             applied) -> dict:
    """One report row (see :attr:`AgreementReport.rows`); numbers become floats, missing bounds ``None``."""
    def f(v):
        return None if v is None else float(v)

    return {"scope": scope, "code": code, "name": name, "statistic": statistic, "coders": coders, "kind": kind,
            "value": float(value), "ci_low": f(low), "ci_high": f(high), "units": float(units),
            "applied": float(applied)}
