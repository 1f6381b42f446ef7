"""The codebook: open codes grouped into categories, main categories and a core category.

A codebook is a tree (or a forest) of :class:`Code` objects. Codes are identified by a stable id chosen by
the user; the Chinese name and description are display data. Any code may be applied to a segment, and
applying a code implies each of its ancestors (:meth:`Codebook.rollup`).

Example
-------
>>> book = Codebook([
...     Code("vert", "纵向引领"),
...     Code("embed", "组织嵌入", parent="vert"),
...     Code("embed-party", "党组织嵌入小区", parent="embed"),
... ])
>>> book.ancestors("embed-party")
['embed', 'vert']
>>> sorted(book.rollup(["embed-party"]))
['embed', 'embed-party', 'vert']
>>> book.depth("embed-party")
2
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ._files import atomic_write
from .exceptions import CodebookError, FormatError

__all__ = ["Code", "Codebook"]

CODEBOOK_COLUMNS = ("id", "name", "description", "parent")


@dataclass(frozen=True)
class Code:
    """One code of the codebook.

    Parameters
    ----------
    id : str
        Stable identifier, e.g. ``"Im1"`` or ``"embed-party"``.
    name : str
        Display name, e.g. ``"组织嵌入"``. Defaults to the id.
    description : str
        Definition or memo, used by some backends as a prototype of the code.
    parent : str or None
        The id of the category this code belongs to; ``None`` for a top-level category.
    color : str or None
        A ``#RRGGBB`` colour, kept for REFI-QDA round trips.
    """

    id: str
    name: str = ""
    description: str = ""
    parent: str | None = None
    color: str | None = None
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id.strip():
            raise CodebookError(f"A code id must be a non-empty string, got {self.id!r}.")
        if self.id != self.id.strip():
            object.__setattr__(self, "id", self.id.strip())
        if ";" in self.id or "；" in self.id:
            raise CodebookError(
                f"The code id {self.id!r} contains ';', which separates codes in a table's codes column. "
                "Choose an id without ';' or '；' (the name may contain them)."
            )
        if not self.name:
            object.__setattr__(self, "name", self.id)
        if self.parent is not None:
            object.__setattr__(self, "parent", str(self.parent).strip() or None)


class Codebook:
    """A validated tree of codes.

    Parameters
    ----------
    codes : iterable of Code
        The codes, in display order. Ids must be unique, every parent must be a code of the book, and the
        parent links must not form a cycle.

    Raises
    ------
    CodebookError
        On a duplicate id, an unknown parent or a cycle; the message names the codes involved.
    """

    def __init__(self, codes: Iterable[Code]):
        self._codes: dict[str, Code] = {}
        for code in codes:
            if code.id in self._codes:
                raise CodebookError(
                    f"Duplicate code id {code.id!r} (names {self._codes[code.id].name!r} and {code.name!r}). "
                    "Give each code its own id."
                )
            self._codes[code.id] = code
        for code in self._codes.values():
            if code.parent is not None and code.parent not in self._codes:
                raise CodebookError(
                    f"Code {code.id!r} ({code.name}) has parent {code.parent!r}, which is not a code of the "
                    "codebook. Add the parent as its own row or leave the parent empty for a top-level category."
                )
        self._children: dict[str | None, list[str]] = {}
        for code in self._codes.values():
            self._children.setdefault(code.parent, []).append(code.id)
        self._ancestors: dict[str, list[str]] = {}
        for cid in self._codes:
            chain: list[str] = []
            seen = {cid}
            parent = self._codes[cid].parent
            while parent is not None:
                if parent in seen:
                    cycle = " -> ".join([cid, *chain, parent])
                    raise CodebookError(f"The codebook has a cycle: {cycle}. A code cannot be its own ancestor.")
                seen.add(parent)
                chain.append(parent)
                parent = self._codes[parent].parent
            self._ancestors[cid] = chain

    # -- container protocol -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._codes)

    def __iter__(self) -> Iterator[Code]:
        return iter(self._codes.values())

    def __contains__(self, code_id: object) -> bool:
        return code_id in self._codes

    def __getitem__(self, code_id: str) -> Code:
        try:
            return self._codes[code_id]
        except KeyError:
            raise CodebookError(self.unknown_message(code_id)) from None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Codebook):
            return NotImplemented
        return list(self._codes.values()) == list(other._codes.values())

    def __repr__(self) -> str:
        return f"Codebook({len(self)} codes, {len(self.roots)} top-level)"

    def resolve(self, code: str) -> str:
        """The id of a code given by its id or, when no id matches, by its name (if one code has that name).

        >>> book = Codebook([Code("party", "党建"), Code("grid", "网格"), Code("g2", "网格")])
        >>> book.resolve("party"), book.resolve("党建")
        ('party', 'party')
        >>> book.resolve("网格")
        Traceback (most recent call last):
        ...
        autocode.exceptions.CodebookError: '网格' is the name of 2 codes ('grid', 'g2'): give the id instead.

        Raises
        ------
        CodebookError
            When the code is neither an id nor a name of the codebook, or the name of several codes.
        """
        if code in self._codes:
            return code
        key = str(code).strip()
        if key in self._codes:
            return key
        by_name = [c.id for c in self._codes.values() if c.name == key]
        if len(by_name) == 1:
            return by_name[0]
        if by_name:
            raise CodebookError(f"{key!r} is the name of {len(by_name)} codes ({', '.join(map(repr, by_name))}): "
                                "give the id instead.")
        raise CodebookError(self.unknown_message(code))

    def unknown_message(self, code_id: object) -> str:
        """The message for a code id that is not in the codebook, naming close ids ("Did you mean ...?").

        >>> Codebook([Code("party", "党建")]).unknown_message("parti")
        "Unknown code 'parti': it is not in the codebook. Did you mean 'party'?"
        """
        import difflib

        close = difflib.get_close_matches(str(code_id), list(self._codes), n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        return f"Unknown code {code_id!r}: it is not in the codebook.{hint}"

    # -- tree ---------------------------------------------------------------------------------------
    @property
    def ids(self) -> list[str]:
        """All code ids in codebook order."""
        return list(self._codes)

    @property
    def roots(self) -> list[str]:
        """Ids of the top-level codes (no parent)."""
        return list(self._children.get(None, []))

    @property
    def leaves(self) -> list[str]:
        """Ids of the codes without children (the open codes of a grounded-theory codebook)."""
        return [cid for cid in self._codes if cid not in self._children]

    def children(self, code_id: str) -> list[str]:
        """Direct children of a code."""
        self[code_id]
        return list(self._children.get(code_id, []))

    def ancestors(self, code_id: str) -> list[str]:
        """The parent, grandparent, ... of a code, nearest first."""
        self[code_id]
        return list(self._ancestors[code_id])

    def depth(self, code_id: str) -> int:
        """0 for a top-level code, 1 for its children, and so on."""
        return len(self.ancestors(code_id))

    def root_of(self, code_id: str) -> str:
        """The top-level ancestor of a code (itself if it is top-level)."""
        chain = self.ancestors(code_id)
        return chain[-1] if chain else code_id

    def ancestor_at(self, code_id: str, depth: int) -> str | None:
        """The ancestor of ``code_id`` at the given depth (0 = top level), the code itself if it is at that
        depth, and None when the code is shallower than ``depth``."""
        path = [*reversed(self.ancestors(code_id)), code_id]
        return path[depth] if depth < len(path) else None

    @property
    def max_depth(self) -> int:
        """Depth of the deepest code (0 when every code is top-level)."""
        return max((len(chain) for chain in self._ancestors.values()), default=0)

    @property
    def category_depth(self) -> int:
        """Depth of the categories (范畴): the level just above the deepest codes."""
        return max(self.max_depth - 1, 0)

    @property
    def main_depth(self) -> int:
        """Depth of the main categories (主范畴): the top level, or the level below a single core category
        (核心范畴) when the tree has one root and at least three levels.

        >>> Codebook([Code("core"), Code("main", parent="core"), Code("cat", parent="main")]).main_depth
        1
        """
        return 1 if len(self.roots) == 1 and self.max_depth >= 2 else 0

    def rollup(self, codes: Iterable[str], *, include_self: bool = True) -> set[str]:
        """The codes plus all their ancestors.

        >>> Codebook([Code("a"), Code("b", parent="a")]).rollup(["b"], include_self=False)
        {'a'}
        """
        out: set[str] = set()
        for cid in codes:
            if include_self:
                self[cid]
                out.add(cid)
            out.update(self.ancestors(cid))
        return out

    def at_depth(self, codes: Iterable[str], depth: int) -> set[str]:
        """Map codes to their ancestors at ``depth`` (0 = top-level categories); shallower codes are dropped.

        >>> book = Codebook([Code("a"), Code("b", parent="a"), Code("c", parent="b")])
        >>> book.at_depth(["c"], 0), book.at_depth(["c"], 1)
        ({'a'}, {'b'})
        """
        out = set()
        for cid in codes:
            anc = self.ancestor_at(cid, depth)
            if anc is not None:
                out.add(anc)
        return out

    def check(self, code_id: str) -> str:
        """Return ``code_id`` if it is in the codebook, else raise :class:`CodebookError`."""
        self[code_id]
        return code_id

    def label(self, code_id: str) -> str:
        """``"id name"`` for display, or just the id when the name is the id."""
        code = self[code_id]
        return code.id if code.name == code.id else f"{code.id} {code.name}"

    def subset(self, keep: Iterable[str]) -> Codebook:
        """A codebook without the codes not in ``keep`` and their descendants; ancestors of kept codes stay."""
        wanted = self.rollup(keep)
        return Codebook(c for c in self if c.id in wanted)

    # -- files ---------------------------------------------------------------------------------------
    @classmethod
    def read_csv(cls, path: str | Path, *, encoding: str | None = None) -> Codebook:
        """Read a codebook from a table (``.csv``, ``.tsv`` or Excel ``.xlsx``) with the columns
        ``id,name,description,parent``.

        ``id`` (or ``code``) or ``name`` is required: without an id column each code's id is its name. ``name`` defaults
        to the id; ``parent`` (an id, or the name of one code) empty means a top-level code. An optional
        ``color`` column is kept. The encoding of a CSV is detected (UTF-8 with or without BOM, UTF-16 with
        BOM, GB18030/GBK or Big5 as saved by Chinese Excel) unless ``encoding`` names it.
        """
        from .io._tabular import read_records  # lazy: autocode.io imports this module

        path = Path(path)
        if not path.is_file():
            what = "is a folder, not a CSV file" if path.is_dir() else "not found"
            raise FormatError(f"Codebook file {what}. Check the path.", path)
        try:
            records = read_records(path, encoding)
        except FormatError as err:
            prefix = f"{err.path}, {err.where}: " if err.where else f"{err.path}: "
            raise FormatError(f"Codebook: {str(err).removeprefix(prefix)}", path, err.where) from None
        header = [h.strip().lower() for h in records[0][1]] if records else []
        if not any(header):
            raise FormatError("The codebook file is empty. It needs a header 'id,name,description,parent'.", path)
        if "id" not in header and "code" in header:
            header = ["id" if h == "code" else h for h in header]
        if "id" not in header and "name" not in header:
            raise FormatError(
                f"Missing column 'id' (or 'name') in the codebook header {header}. Expected "
                "'id,name,description,parent'.",
                path,
                "row 1",
            )
        id_col = "id" if "id" in header else "name"
        rows = []
        for rowno, fields in records[1:]:
            row = dict(zip(header, (f.strip() for f in fields)))
            cid = row.get(id_col) or ""
            if not cid:
                if any(row.values()):
                    raise FormatError(f"Empty code {id_col}. Every codebook row needs an {id_col}.", path,
                                      f"row {rowno}")
                continue
            rows.append((rowno, cid, row))
        if not rows:
            raise FormatError("The codebook has a header but no codes.", path)
        ids = {cid for _, cid, _ in rows}
        names: dict[str, list[str]] = {}
        for _, cid, row in rows:
            names.setdefault(row.get("name") or cid, []).append(cid)
        codes = []
        for rowno, cid, row in rows:
            parent = row.get("parent") or None
            if parent is not None and parent not in ids and len(names.get(parent, [])) == 1:
                parent = names[parent][0]  # the parent given by its name
            try:
                codes.append(Code(id=cid, name=row.get("name") or "", description=row.get("description") or "",
                                  parent=parent, color=row.get("color") or None))
            except CodebookError as err:
                raise CodebookError(f"{path}, row {rowno}: {err}") from None
        try:
            return cls(codes)
        except CodebookError as err:
            raise CodebookError(f"{path}: {err}") from None

    def write_csv(self, path: str | Path) -> None:
        """Write the codebook as ``id,name,description,parent[,color]``: CSV (UTF-8 with BOM, so Excel shows
        Chinese right) or, for a ``.xlsx`` path, an Excel workbook."""
        with_color = any(c.color for c in self)
        cols = [*CODEBOOK_COLUMNS, "color"] if with_color else list(CODEBOOK_COLUMNS)
        rows = []
        for c in self:
            row = [c.id, c.name, c.description, c.parent or ""]
            if with_color:
                row.append(c.color or "")
            rows.append(row)
        if Path(path).suffix.lower() == ".xlsx":
            from .io._xlsx import write_xlsx

            write_xlsx(path, cols, rows, sheet="codebook")
            return
        with atomic_write(path, encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            w.writerows(rows)

    def to_dict(self) -> list[dict]:
        """A JSON-ready list of codes."""
        out = []
        for c in self:
            d = asdict(c)
            if not d["extra"]:
                d.pop("extra")
            out.append(d)
        return out

    @classmethod
    def from_dict(cls, items: Sequence[dict]) -> Codebook:
        return cls(Code(**item) for item in items)
