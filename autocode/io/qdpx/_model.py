"""The records of a QDA project: users, codes' ids and GUIDs, sources, selections, codings, spans.

:class:`~autocode.io.qdpx.Project` (in ``_project.py``) holds these; the readers fill them and the writer
writes them out. Offsets in a :class:`Selection` are Python string indices (see ``_offsets.py``).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import NamedTuple
from xml.etree.ElementTree import Element

from ...codebook import Codebook

__all__ = ["NS", "NS_CODEBOOK", "Coding", "Selection", "Source", "Span", "User", "code_ids", "guid_for", "now"]

NS = "urn:QDA-XML:project:1.0"
NS_CODEBOOK = "urn:QDA-XML:codebook:1.0"

_UUID_NS = uuid.UUID("6f1c2a7e-3b8d-5e0f-9a41-2c7d8e9b0a15")  # autocode's namespace for deterministic GUIDs


def guid_for(*parts: str) -> str:
    """A deterministic GUID for autocode-made objects (the same inputs give the same GUID).

    >>> guid_for("code", "party") == guid_for("code", "party") != guid_for("code", "council")
    True
    """
    return str(uuid.uuid5(_UUID_NS, "\x1f".join(parts))).upper()


def now() -> str:
    """The current UTC time as REFI-QDA writes it (``2024-05-01T12:00:00Z``)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the records ----------------------------------------------------------------------------------------------
@dataclass
class User:
    """A user (coder) of the project."""

    guid: str
    name: str = ""
    id: str = ""
    attrs: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.name or self.id or self.guid


@dataclass
class Coding:
    """One code applied to a selection: ``code`` is the code's GUID, ``user`` the GUID of who applied it."""

    guid: str
    code: str
    user: str | None = None
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)  # NoteRef elements, kept verbatim


@dataclass
class Selection:
    """A coded (or annotated) character range of a text source.

    ``start``/``end`` are Python string indices into :attr:`Source.text` (converted from the file's positions);
    when the source text is missing they are the positions as written in the file.
    """

    guid: str
    start: int
    end: int
    name: str | None = None
    description: str | None = None
    user: str | None = None
    codings: list[Coding] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)


@dataclass
class Source:
    """A source of the project. Text sources (and notes) carry ``text``; other kinds keep their element."""

    guid: str
    name: str = ""
    kind: str = "TextSource"
    text: str | None = None
    description: str | None = None
    plain_path: str | None = None
    rich_path: str | None = None
    inline: bool = False
    bom: bool = False
    selections: list[Selection] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    extra: list = field(default_factory=list)
    element: Element | None = None


class Span(NamedTuple):
    """A coded character range: ``document[start:end]`` was coded ``code`` by ``coder``."""

    document: str
    start: int
    end: int
    code: str
    coder: str
    selection: str


# -- code ids -------------------------------------------------------------------------------------------------
def _clean_id(name: str | None) -> str:
    return re.sub(r"[;；]", ",", (name or "").strip())


def code_ids(entries: Sequence[tuple[str, str, str | None]], codebook: Codebook | None = None) -> dict[str, str]:
    """Ids for the codes of a QDA project, given as (GUID, name, parent GUID) in tree order.

    The id is the name (``;`` replaced by ``,``); where names repeat, the path of names from the top
    (``"parent/child"``); where paths repeat too, the path and the start of the GUID. With a codebook, a code
    takes the id of the codebook code with the same GUID (``extra["guid"]``, or derived from its id), id or
    name (when that name is unique in the codebook).

    >>> code_ids([("G1", "服务", None), ("G2", "老人", "G1"), ("G3", "服务", "G2")])
    {'G1': '服务', 'G2': '老人', 'G3': '服务/老人/服务'}
    >>> from autocode import Code
    >>> code_ids([("G1", "服务", None)], Codebook([Code("service", "服务")]))
    {'G1': 'service'}
    """
    names = {g: _clean_id(n) for g, n, _ in entries}
    parents = {g: p for g, _, p in entries}
    raw_names = {g: (n or "").strip() for g, n, _ in entries}

    def path_of(g):
        chain = [names[g]]
        while parents.get(g) is not None:
            g = parents[g]
            chain.append(names[g])
        return "/".join(reversed(chain))

    counts: dict[str, int] = {}
    for n in names.values():
        counts[n] = counts.get(n, 0) + 1
    book_by_guid: dict[str, str] = {}
    book_by_name: dict[str, list[str]] = {}
    for c in codebook or ():
        book_by_guid[(c.extra.get("guid") or guid_for("code", c.id)).upper()] = c.id
        book_by_name.setdefault(c.name, []).append(c.id)
    ids: dict[str, str] = {}
    used: set[str] = set()
    for g, _, _ in entries:
        derived = names[g] if counts[names[g]] == 1 else path_of(g)
        if not derived or derived in used:
            derived = f"{derived or 'code'}#{g.strip('{}')[:8]}"
        choice = derived
        if codebook is not None:
            if g.upper() in book_by_guid:
                choice = book_by_guid[g.upper()]
            elif derived in codebook:
                choice = derived
            elif len(book_by_name.get(raw_names[g], [])) == 1:
                choice = book_by_name[raw_names[g]][0]
            if choice in used:
                choice = derived if derived not in used else f"{derived}#{g.strip('{}')[:8]}"
        ids[g] = choice
        used.add(choice)
    return ids

