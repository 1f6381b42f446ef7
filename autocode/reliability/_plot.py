"""The per-code plot of an agreement report: one statistic per code with its intervals, as PNG bytes."""

from __future__ import annotations

import io

import numpy as np

from .._plotting import draw_with_fallback

__all__ = ["plot_per_code"]

def plot_per_code(rows: list[dict], codes: list[str], xlabel: str) -> bytes:
    """A PNG of the per-code ``rows`` of one statistic (report rows, ``scope == "code"``), one marker per coder
    pair or group, with bars for the intervals where the rows have them.

    Code ids are drawn with a CJK font when one is installed; otherwise ids that the font cannot draw are
    replaced by their number in the per-code table (``#3``).
    """
    fallback = [c if c.isascii() else f"#{k + 1}" for k, c in enumerate(codes)]
    return draw_with_fallback(lambda labels: _draw(rows, codes, list(labels), xlabel), list(codes), fallback)


def _draw(rows: list[dict], codes: list[str], labels: list[str], xlabel: str) -> bytes:
    from matplotlib.figure import Figure

    series = list(dict.fromkeys(r["coders"] for r in rows))
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
    ax.set_xlabel(xlabel)
    lows = [r["value"] for r in rows] + [r["ci_low"] for r in rows if r["ci_low"] is not None] + [0.0]
    ax.set_xlim(min(-0.1, float(np.nanmin(lows)) - 0.05), 1.05)
    if series:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()
