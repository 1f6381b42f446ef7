"""New relations between categories: which categories go together in the coded interviews, and which links the
held-out interviews show that the coded ones did not (grounded theory's third saturation question, after new
concepts and new categories).

Two categories *go together* in a unit (a turn, an answer, an interview) when both are coded in it. For every
pair of categories the analysis counts such units in the coded interviews and in the held-out ones (coded by
hand, or pre-coded by the model), measures the strength of the link in each as the log odds ratio of the two
categories' presence over the units (positive: they go together more often than their frequencies alone would
make them), and tests

- a **new link**: rarely or never together in the coded interviews, but together in the held-out ones more
  often than chance (Fisher's exact test, one-sided, on the held-out units);
- a **changed strength**: the held-out log odds ratio differs from the coded one (a z-test on the difference of
  the two log odds ratios, with 0.5 added to every cell).

p-values are adjusted over all pairs with Benjamini-Hochberg (false discovery rate ``alpha``).

>>> from autocode.codebook import Code, Codebook
>>> from autocode.corpus import CodedCorpus, Segment
>>> book = Codebook([Code("A"), Code("B"), Code("C"), Code("a", parent="A"), Code("b", parent="B"),
...                  Code("c", parent="C")])
>>> def corpus(pairs, n):
...     segs = [Segment(f"D{i % 4}", str(i), "text") for i in range(n)]
...     return CodedCorpus(segs, {"X": {s.key: set(pairs[i % len(pairs)]) for i, s in enumerate(segs)}})
>>> coded = corpus([("a",), ("b",), ("c",), ("a", "c")], 80)
>>> held = corpus([("a", "b"), ("c",), ("a",), ()], 80)
>>> rel = category_relations(coded, held, book, unit="segment")
>>> [(r["a"], r["b"], r["status"]) for r in rel.flagged()]
[('A', 'B', 'new'), ('A', 'C', 'weaker')]
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from .._plotting import draw_with_fallback
from ..codebook import Codebook
from ..corpus import CodedCorpus
from ..exceptions import AutocodeError
from ..segment import speaker_role

__all__ = ["UNITS", "RelationReport", "category_relations"]

UNITS = ("segment", "answer", "document")
"""``segment``: one turn; ``answer``: an interviewer's question and the turns up to the next question (or a
run of turns without interviewer turns); ``document``: the whole interview."""


def _units(corpus: CodedCorpus, unit: str) -> np.ndarray:
    """A unit number for each segment of ``corpus``."""
    if unit == "segment":
        return np.arange(len(corpus))
    docs = corpus.groups
    if unit == "document":
        return np.unique(docs, return_inverse=True)[1]
    out = np.zeros(len(corpus), dtype=int)
    current, prev_doc = -1, None
    for i, s in enumerate(corpus.segments):
        role = s.speaker if s.speaker in ("interviewer", "participant") else speaker_role(s.speaker)
        if s.document != prev_doc or role == "interviewer":
            current += 1
        out[i] = current
        prev_doc = s.document
    return out


def _presence(corpus: CodedCorpus, codebook: Codebook, depth: int, unit: str, target: str,
              categories: list[str]) -> np.ndarray:
    """Boolean matrix units x categories: the category (or one of its codes) is coded in the unit."""
    col = {c: j for j, c in enumerate(categories)}
    units = _units(corpus, unit)
    n_units = int(units.max()) + 1 if len(units) else 0
    out = np.zeros((n_units, len(categories)), dtype=bool)
    for i, codes in enumerate(corpus.target_codings(target)):
        for code in codes or ():
            cat = codebook.ancestor_at(code, depth) if codebook.depth(code) >= depth else None
            if cat in col:
                out[units[i], col[cat]] = True
    return out


def _log_odds_ratio(both: np.ndarray, a: np.ndarray, b: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Log odds ratio of the 2x2 tables (both, a only, b only, neither) with 0.5 added to every cell, and its
    variance (Woolf)."""
    cells = [both, a - both, b - both, n - a - b + both]
    cells = [np.asarray(c, dtype=float) + 0.5 for c in cells]
    lor = np.log(cells[0] * cells[3] / (cells[1] * cells[2]))
    var = sum(1 / c for c in cells)
    return lor, var


def _bh(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values).

    >>> _bh(np.array([0.01, 0.04, 0.03])).round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p, dtype=float)
    if p.size == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * len(p) / np.arange(1, len(p) + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty_like(q)
    out[order] = np.minimum(q, 1.0)
    return out


@dataclass
class RelationReport:
    """Links between categories in the coded and the held-out interviews: see :func:`category_relations`.

    Attributes
    ----------
    categories : list of str
    unit : str
    n_units : dict
        ``{"coded": ..., "held_out": ...}``.
    pairs : list of dict
        One per pair of categories that goes together in either set: ``a``, ``b``, ``coded`` and ``held_out``
        (units with both), ``coded_lor``/``held_out_lor`` (log odds ratios), ``p_new``/``q_new`` (held-out
        association, one-sided), ``p_change``/``q_change`` (difference of the log odds ratios), ``status``
        (``"new"``, ``"stronger"``, ``"weaker"`` or ``""``).
    """

    categories: list[str]
    codebook: Codebook
    unit: str
    n_units: dict
    pairs: list[dict]
    alpha: float = 0.05

    def flagged(self) -> list[dict]:
        """The pairs with a status: new links first, then changed strengths, most certain first."""
        order = {"new": 0, "stronger": 1, "weaker": 2}
        rows = [r for r in self.pairs if r["status"]]
        return sorted(rows, key=lambda r: (order[r["status"]], min(r["q_new"], r["q_change"])))

    def summary(self) -> str:
        """The answer in plain words."""
        flagged = self.flagged()
        new = [r for r in flagged if r["status"] == "new"]
        changed = [r for r in flagged if r["status"] != "new"]
        unit = {"segment": "turn", "answer": "answer", "document": "interview"}[self.unit]
        if not flagged:
            return (f"No new relations: no pair of categories goes together (in one {unit}) in the held-out "
                    f"interviews in a way the coded interviews did not show (false discovery rate {self.alpha}).")
        parts = []
        if new:
            parts.append(f"{len(new)} new link(s) between categories: "
                         + "; ".join(f"{self._label(r['a'])} + {self._label(r['b'])}" for r in new))
        if changed:
            parts.append(f"{len(changed)} link(s) of changed strength: "
                         + "; ".join(f"{self._label(r['a'])} + {self._label(r['b'])} ({r['status']})"
                                     for r in changed))
        return f"New relations (in one {unit}): " + ". ".join(parts) + "."

    def _label(self, cat: str) -> str:
        return self.codebook.label(cat)

    def to_markdown(self) -> str:
        """A table of the flagged pairs and of the strongest coded links."""
        lines = [self.summary(), "",
                 f"Units: {self.unit} ({self.n_units['coded']} coded, {self.n_units['held_out']} held out).", "",
                 "| categories | coded: together | held out: together | coded log OR | held-out log OR | q (new) "
                 "| q (change) | status |",
                 "|---|---:|---:|---:|---:|---:|---:|---|"]
        rows = self.flagged() or sorted(self.pairs, key=lambda r: -r["coded"])[:10]
        for r in rows:
            lines.append(f"| {self._label(r['a'])} + {self._label(r['b'])} | {r['coded']} | {r['held_out']} | "
                         f"{r['coded_lor']:.2f} | {r['held_out_lor']:.2f} | {r['q_new']:.3g} | {r['q_change']:.3g} | "
                         f"{r['status'] or '-'} |")
        return "\n".join(lines) + "\n"

    def to_dict(self) -> dict:
        return {"unit": self.unit, "alpha": self.alpha, "n_units": self.n_units, "categories": self.categories,
                "summary": self.summary(), "pairs": self.pairs}

    def plot_png(self) -> bytes:
        """The category network, coded (left) and held out (right): categories on a circle, a line per pair
        that goes together more than chance (log odds ratio > 0), thicker for stronger links; new links red
        and dashed. Names are drawn with a CJK font when one is installed, else the category ids."""
        labels = [self._label(c) for c in self.categories]
        fallback = [c if c.isascii() else f"#{k + 1}" for k, c in enumerate(self.categories)]
        return draw_with_fallback(self._draw, labels, fallback)

    def _draw(self, labels) -> bytes:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        k = len(self.categories)
        angle = np.linspace(0, 2 * np.pi, k, endpoint=False)
        xy = np.column_stack([np.cos(angle), np.sin(angle)])
        idx = {c: i for i, c in enumerate(self.categories)}
        fig = Figure(figsize=(10, 4.8), dpi=100)
        FigureCanvasAgg(fig)
        for ax, side in zip(fig.subplots(1, 2), ("coded", "held_out")):
            for r in self.pairs:
                lor = r[f"{side}_lor"]
                if r[side] == 0 or lor <= 0:
                    continue
                (x0, y0), (x1, y1) = xy[idx[r["a"]]], xy[idx[r["b"]]]
                new = side == "held_out" and r["status"] == "new"
                ax.plot([x0, x1], [y0, y1], color="#d62728" if new else "#6b6b6b", alpha=0.8,
                        lw=0.5 + min(lor, 4.0), ls="--" if new else "-")
            ax.scatter(xy[:, 0], xy[:, 1], s=120, color="#3182bd", zorder=3)
            for label, (x, y) in zip(labels, xy):
                ax.annotate(label, (x * 1.12, y * 1.12), ha="center", va="center", fontsize=8)
            ax.set_title(f"{'coded' if side == 'coded' else 'held-out'} interviews ({self.n_units[side]} units)")
            ax.set_xlim(-1.5, 1.5)
            ax.set_ylim(-1.4, 1.4)
            ax.set_aspect("equal")
            ax.axis("off")
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()


def category_relations(coded: CodedCorpus, held_out: CodedCorpus, codebook: Codebook, *, depth: int | None = None,
                       unit: str = "answer", target: str = "union", held_out_target: str | None = None,
                       alpha: float = 0.05, rare: int = 1, min_together: int = 2) -> RelationReport:
    """Which categories go together in the coded interviews, and which links the held-out interviews add.

    Parameters
    ----------
    coded, held_out : CodedCorpus
        The coded interviews (e.g. the training data) and the held-out ones, coded by hand or pre-coded
        (``Suggestions.to_corpus()``).
    codebook : Codebook
    depth : int, optional
        Codebook level of the categories (default: the category level, 范畴, just above the open codes).
    unit : {"segment", "answer", "document"}
        What "together" means: the same turn, the same question and answer, or the same interview.
    target, held_out_target : str
        Whose coding counts (``"union"`` of the coders, ``"majority"`` or a coder's name); the held-out target
        defaults to ``target``.
    alpha : float
        False discovery rate over all pairs.
    rare : int
        A pair together in at most this many coded units counts as not seen before (a candidate new link).
    min_together : int
        A new link needs at least this many held-out units with both categories.
    """
    if unit not in UNITS:
        raise AutocodeError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}.")
    if depth is None:
        depth = codebook.category_depth
    categories = [c for c in codebook.ids if codebook.depth(c) == depth]
    if len(categories) < 2:
        raise AutocodeError(f"The codebook has {len(categories)} categories at level {depth}; relations need at "
                            "least 2. Give a codebook with categories above the open codes (a 'parent' column).")
    ht = held_out_target or target
    X = _presence(coded, codebook, depth, unit, target, categories)
    H = _presence(held_out, codebook, depth, unit, ht, categories)
    if len(X) == 0 or len(H) == 0:
        raise AutocodeError("Relations need coded and held-out segments; one of the two is empty.")
    from scipy.stats import fisher_exact

    rows = []
    for i, j in combinations(range(len(categories)), 2):
        c_both, h_both = int((X[:, i] & X[:, j]).sum()), int((H[:, i] & H[:, j]).sum())
        if c_both == 0 and h_both == 0:
            continue
        ca, cb, ha, hb = int(X[:, i].sum()), int(X[:, j].sum()), int(H[:, i].sum()), int(H[:, j].sum())
        c_lor, c_var = _log_odds_ratio(c_both, ca, cb, len(X))
        h_lor, h_var = _log_odds_ratio(h_both, ha, hb, len(H))
        table = [[h_both, ha - h_both], [hb - h_both, len(H) - ha - hb + h_both]]
        p_new = float(fisher_exact(table, alternative="greater").pvalue) if c_both <= rare else 1.0
        z = (float(h_lor) - float(c_lor)) / math.sqrt(float(c_var) + float(h_var))
        p_change = float(math.erfc(abs(z) / math.sqrt(2)))
        rows.append({"a": categories[i], "b": categories[j], "coded": c_both, "held_out": h_both,
                     "coded_lor": float(c_lor), "held_out_lor": float(h_lor), "p_new": p_new, "p_change": p_change})
    q_new = _bh(np.array([r["p_new"] for r in rows]))
    q_change = _bh(np.array([r["p_change"] for r in rows]))
    for r, qn, qc in zip(rows, q_new, q_change):
        r["q_new"], r["q_change"] = float(qn), float(qc)
        if r["coded"] <= rare and r["held_out"] >= min_together and qn < alpha:
            r["status"] = "new"
        elif qc < alpha:
            r["status"] = "stronger" if r["held_out_lor"] > r["coded_lor"] else "weaker"
        else:
            r["status"] = ""
    return RelationReport(categories, codebook, unit, {"coded": len(X), "held_out": len(H)}, rows, alpha)
