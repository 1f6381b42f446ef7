"""Read a QualCoder project's SQLite database into a :class:`Project` (the format is described in
:mod:`autocode.io.qualcoder`). QualCoder counts positions in Python characters: no conversion is needed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ...codebook import Code, Codebook
from ...exceptions import FormatError
from ._model import Coding, Selection, Source, User, code_ids, guid_for
from ._project import Project

__all__ = ["read_qualcoder"]

_REQUIRED = {
    "code_name": ("cid", "name", "catid"),
    "code_cat": ("catid", "name", "supercatid"),
    "source": ("id", "name", "fulltext"),
    "code_text": ("cid", "fid", "pos0", "pos1", "owner"),
}
"""The tables and columns autocode needs (``autocode.io.qualcoder.SCHEMA_FOR_TESTS`` creates them)."""


def read_qualcoder(path: str | Path, codebook: Codebook | None = None) -> Project:
    """Read a QualCoder project folder (``NAME.qda``) or its database file (``data.qda``, ``.sqlite``).

    Parameters
    ----------
    path : path
        The project folder or the SQLite file.
    codebook : Codebook, optional
        Give QualCoder codes the ids of the codebook codes with the same id or name.

    Raises
    ------
    FormatError
        When the file is not a SQLite database or lacks a table or column QualCoder writes (named).
    """
    path = Path(path)
    db = path / "data.qda" if path.is_dir() else path
    if not db.is_file():
        raise FormatError("QualCoder project not found: expected a NAME.qda folder holding data.qda.", path)
    try:
        con = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as err:  # pragma: no cover - connect is lazy
        raise FormatError(f"Cannot open the database ({err}).", db) from None
    try:
        con.execute("PRAGMA query_only = ON")
        con.execute("PRAGMA trusted_schema = OFF")
        return _read(con, db, codebook)
    except sqlite3.DatabaseError as err:
        raise FormatError(f"Not a readable QualCoder database ({err}).", db) from None
    finally:
        con.close()


def _columns(con: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in con.execute(f"PRAGMA table_info({table})")]


def _read(con: sqlite3.Connection, db: Path, codebook: Codebook | None) -> Project:
    for table, needed in _REQUIRED.items():
        cols = _columns(con, table)
        if not cols:
            raise FormatError(f"The database has no table {table!r}: is it a QualCoder project (data.qda)?", db,
                              f"table {table}")
        missing = [c for c in needed if c not in cols]
        if missing:
            raise FormatError(f"Table {table!r} lacks the column(s) {', '.join(missing)}.", db, f"table {table}")

    def opt(table: str, col: str) -> str:
        return col if col in _columns(con, table) else "NULL"

    cats = con.execute(f"SELECT catid, name, {opt('code_cat', 'memo')}, supercatid FROM code_cat ORDER BY catid"
                       ).fetchall()
    codes = con.execute(f"SELECT cid, name, {opt('code_name', 'memo')}, catid, {opt('code_name', 'color')} "
                        "FROM code_name ORDER BY cid").fetchall()
    cat_ids = {c[0] for c in cats}
    cat_guid = {catid: guid_for("qualcoder-category", str(catid)) for catid, *_ in cats}
    code_guid = {cid: guid_for("qualcoder-code", str(cid)) for cid, *_ in codes}
    order: list[tuple] = []  # categories parents first, then codes: (guid, name, parent guid, row, is category)
    placed: set[int] = set()

    def add_cat(catid: int, seen: tuple = ()):
        if catid in placed:
            return
        if catid in seen:
            raise FormatError(f"The categories form a cycle through catid {catid}.", db, f"code_cat catid={catid}")
        row = next(r for r in cats if r[0] == catid)
        parent = row[3] if row[3] in cat_ids else None
        if parent is not None:
            add_cat(parent, (*seen, catid))
        placed.add(catid)
        order.append((cat_guid[catid], str(row[1]), cat_guid.get(parent), row, True))

    for cat in cats:
        add_cat(cat[0])
    for row in codes:
        order.append((code_guid[row[0]], str(row[1]), cat_guid.get(row[3]), row, False))
    ids = code_ids([(g, name, parent) for g, name, parent, _, _ in order], codebook)
    items: list[Code] = []
    for g, name, parent, row, is_cat in order:
        extra = {"guid": g, "isCodable": False} if is_cat else {"guid": g}
        color = None if is_cat else row[4] or None
        items.append(Code(ids[g], name.strip() or ids[g], row[2] or "", ids[parent] if parent else None, color,
                          extra))
    code_ids_by_cid = {cid: ids[code_guid[cid]] for cid, *_ in codes}
    project = Project(name=db.parent.name.removesuffix(".qda") if db.name == "data.qda" else db.stem,
                      codebook=Codebook(items), path=db, target_codebook=codebook,
                      attrs={"origin": "QualCoder (read by autocode)"})
    sources: dict[int, Source] = {}
    for fid, name, fulltext, memo in con.execute(
            f"SELECT id, name, fulltext, {opt('source', 'memo')} FROM source ORDER BY id"):
        kind = "TextSource" if fulltext is not None else "OtherSource"
        src = Source(guid_for("qualcoder-source", str(fid)), str(name), kind=kind, text=fulltext,
                     description=memo or None)
        sources[fid] = src
        project.sources.append(src)
    users: dict[str, str] = {}
    rows = con.execute(f"SELECT {opt('code_text', 'ctid')}, cid, fid, pos0, pos1, owner, "
                       f"{opt('code_text', 'memo')} FROM code_text ORDER BY fid, pos0, pos1, cid").fetchall()
    skipped = 0
    for ctid, cid, fid, pos0, pos1, owner, memo in rows:
        src = sources.get(fid)
        if src is None or src.text is None or cid not in code_ids_by_cid:
            skipped += 1
            continue
        try:
            start, end = int(pos0), int(pos1)
        except (TypeError, ValueError):
            raise FormatError(f"pos0/pos1 must be whole numbers, found {pos0!r}, {pos1!r}.", db,
                              f"code_text ctid={ctid}") from None
        if not 0 <= start <= end <= len(src.text):
            raise FormatError(f"The range {start}-{end} is outside the text of source {src.name!r} "
                              f"({len(src.text)} characters).", db, f"code_text ctid={ctid}")
        owner = str(owner or "coder")
        user = users.setdefault(owner, guid_for("qualcoder-user", owner))
        sel_guid = guid_for("qualcoder-coding", str(ctid), str(cid), str(fid), str(start), str(end), owner)
        sel = Selection(sel_guid, start, end, src.text[start:end][:40], memo or None, user)
        sel.codings.append(Coding(guid_for("qualcoder-ref", sel_guid), project.code_guid(code_ids_by_cid[cid]), user))
        src.selections.append(sel)
    project.users = [User(g, name) for name, g in users.items()]
    if skipped:
        project.problems.append(f"{skipped} codings of non-text sources or unknown codes were skipped")
    project.warn_problems(stacklevel=3)
    return project
