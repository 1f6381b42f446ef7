"""Render the simple markdown of autocode's reports (headings, paragraphs, pipe tables) as a standalone HTML page.

>>> print(markdown_page("# Report\\n\\n| a | b |\\n|---|---|\\n| 1 | <2> |\\n", "Report"))  # doctest: +ELLIPSIS
<!DOCTYPE html>...<h1>Report</h1>
<table><tr><th>a</th><th>b</th></tr>
<tr><td>1</td><td>&lt;2&gt;</td></tr></table>
</body></html>
"""

from __future__ import annotations

import html
import re

__all__ = ["markdown_page"]

_STYLE = ("body{font-family:sans-serif;max-width:70em;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em}"
          "th{background:#f3f3f3}")
_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?$")


def _cells(line: str) -> list[str]:
    return [html.escape(c.strip()) for c in line.strip().strip("|").split("|")]


def markdown_page(markdown: str, title: str) -> str:
    """A self-contained HTML page (UTF-8, no scripts) for report markdown."""
    out = ["<!DOCTYPE html>", '<html lang="zh"><head><meta charset="utf-8">',
           f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"]
    table: list[str] = []
    para: list[str] = []

    def flush() -> None:
        if para:
            out.append(f"<p>{html.escape(' '.join(para))}</p>")
            para.clear()
        if table:
            rows = [r for r in table if not _SEPARATOR.match(r.strip())]
            head = "".join(f"<th>{c}</th>" for c in _cells(rows[0]))
            body = ["<tr>" + "".join(f"<td>{c}</td>" for c in _cells(r)) + "</tr>" for r in rows[1:]]
            out.append("\n".join([f"<table><tr>{head}</tr>", *body]) + "</table>")
            table.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("|"):
            if para:
                flush()
            table.append(stripped)
            continue
        if table:
            flush()
        heading = re.match(r"^(#{1,6})\s+(.*)$", stripped)
        if heading:
            flush()
            level = len(heading.group(1))
            out.append(f"<h{level}>{html.escape(heading.group(2))}</h{level}>")
        elif not stripped:
            flush()
        else:
            para.append(stripped)
    flush()
    out.append("</body></html>")
    return "\n".join(out)
