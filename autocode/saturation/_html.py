"""The saturation report as one self-contained HTML page (plots embedded as base64 PNGs)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._report import SaturationReport

RELATIONS_NOTE = ("Both sides are the model's coding at its thresholds: the coded interviews pre-coded out of fold "
                  "(each by a model that did not see it), the held-out ones pre-coded, so that a link the model "
                  "tends to make or miss counts alike on both sides. Unit: the interviewer's question and the "
                  "answers up to the next question.")


def report_html(self: SaturationReport) -> str:
    """A self-contained HTML page (the plot embedded as a base64 PNG), in the order of :meth:`to_markdown`."""
    import html

    esc = html.escape
    label = self.codebook.label
    rows = "".join(
        "<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in (
            i, d["document"], d["segments"], d["eligible"], d["novel"], f"{d['share_novel']:.1%}",
            ", ".join(d["new_candidates"]) or "-", d["cumulative"])) + "</tr>"
        for i, d in enumerate(self.per_document, start=1))
    cand_html = []
    for c in self.candidates:
        facts = self.candidate_lines(c)
        n_q = len(c.quotes)
        kind = "" if c.supported else " (to review: no novel segment)"
        cand_html.append(f"<h3>{esc(c.id)} {esc(c.name)}{kind}</h3><ul>"
                         + "".join(f"<li>{esc(x)}</li>" for x in facts[:-n_q or None])
                         + "<li>quotes:<ul>" + "".join(f"<li>{esc(x)}</li>" for x in facts[len(facts) - n_q:])
                         + "</ul></li></ul>")
    review = "".join(
        f"<tr><td>{esc(r['document'])}</td><td>{esc(r['segment'])}</td>"
        + (f"<td><b>{r['novelty']:.3f}</b></td>" if r["level"] == "novel" else f"<td>{r['novelty']:.3f}</td>")
        + "".join(f"<td>{esc(x)}</td>" for x in (
            r["candidate"] or "-", label(r["nearest_code"]) if r["nearest_code"] else "-",
            f"{label(r['best_code'])} ({r['best_score']:.2f})", "、".join(r["unexplained"]) or "-", r["text"]))
        + "</tr>" for r in self.review_rows())
    review = (("<table><tr><th>interview</th><th>segment</th><th>novelty</th><th>candidate</th><th>nearest code</th>"
               f"<th>best code (score)</th><th>words no code accounts for</th><th>text</th></tr>{review}</table>")
              if review else f"<p>No segment reaches novelty {self.review_level:.2f}.</p>")
    if self.review_more():
        review = f"<p>{esc(self.review_more())}</p>{review}"
    answers = "".join(f"<li><b>{esc(a.question)}</b> {esc(a.answer)}<br><i>Rests on:</i> {esc(a.rests_on)}</li>"
                      for a in self.answers())
    img = base64.b64encode(self.plot_png()).decode()
    head = ("<th>#</th><th>interview</th><th>segments</th><th>eligible</th><th>novel</th><th>share novel</th>"
            "<th>new candidates</th><th>cumulative</th>")
    return (
        "<!DOCTYPE html><html lang=\"zh\"><head><meta charset=\"utf-8\"><title>Saturation check</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px}</style></head><body><h1>Saturation check</h1>"
        f"<p>{esc(self.intro()).replace('**', '')}</p><h2 id=\"answers\">Answers</h2><ul>{answers}</ul>"
        f"<h2>Segments to review</h2>{review}<h2>Details</h2><h3>Evidence</h3><ul>"
        + "".join(f"<li>{esc(p)}</li>" for p in self.evidence())
        + f"</ul><img alt=\"saturation curve\" src=\"data:image/png;base64,{img}\">"
        f"<h3>Per interview</h3><table><tr>{head}</tr>{rows}</table><h2>Candidate new codes</h2>"
        + ("".join(cand_html) or "<p>No candidate codes.</p>") + _relations_html(self) + "</body></html>"
    )

def _relations_html(self: SaturationReport) -> str:
    if self.relations is None:
        return ""
    import html

    esc = html.escape
    rel = self.relations
    rows = "".join(
        f"<tr><td>{esc(rel.codebook.label(r['a']))} + {esc(rel.codebook.label(r['b']))}</td><td>{r['coded']}</td>"
        f"<td>{r['held_out']}</td><td>{r['coded_lor']:.2f}</td><td>{r['held_out_lor']:.2f}</td>"
        f"<td>{r['q_new']:.3g}</td><td>{r['q_change']:.3g}</td><td>{esc(r['status'] or '-')}</td></tr>"
        for r in rel.flagged())
    img = base64.b64encode(rel.plot_png()).decode()
    table = ("<table><tr><th>categories</th><th>coded: together</th><th>held out: together</th>"
             "<th>coded log OR</th><th>held-out log OR</th><th>q (new)</th><th>q (change)</th><th>status</th>"
             f"</tr>{rows}</table>") if rows else ""
    return (f"<h2>Relations between categories</h2><p>{esc(RELATIONS_NOTE)}</p><p>{esc(rel.summary())}</p>"
            f"{table}<img alt=\"category network\" src=\"data:image/png;base64,{img}\">")

