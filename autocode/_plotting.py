"""Plots with Chinese labels: a CJK font when one is installed, plain labels when none can draw them."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

__all__ = ["CJK_FONTS", "draw_with_fallback"]

CJK_FONTS = ["Noto Sans CJK SC", "Noto Sans CJK TC", "Source Han Sans SC", "WenQuanYi Zen Hei", "SimHei",
             "Microsoft YaHei", "PingFang SC", "DejaVu Sans"]
"""Fonts tried in order, so that Chinese code ids, names and coder names can be drawn."""


def draw_with_fallback(draw: Callable[[Sequence[str]], bytes], labels: Sequence[str],
                       fallback: Sequence[str]) -> bytes:
    """``draw(labels)`` inside a CJK font context; when the installed fonts miss glyphs of the labels, draw again
    with ``fallback`` labels (e.g. ids or numbers that the tables beside the plot explain)."""
    import matplotlib

    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": CJK_FONTS}):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            png = draw(labels)
        if not any("Glyph" in str(w.message) for w in caught):
            return png
        with warnings.catch_warnings():
            # names the font cannot draw (coder names in a legend) are boxes; the tables name them
            warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font")
            return draw(fallback)
