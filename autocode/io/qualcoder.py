"""Read a QualCoder project: its SQLite database (``project.qda/data.qda``).

QualCoder (open source, https://github.com/ccbogel/QualCoder) keeps a project in a folder ``NAME.qda`` that
holds the SQLite database ``data.qda``. autocode reads, never writes, these tables:

``code_cat`` (catid, name, memo, supercatid)
    categories, nested through ``supercatid``; they become codes that cannot be applied (``isCodable=false``).
    Code ids follow the REFI-QDA import (:func:`autocode.io.qdpx.code_ids`): the name, or the path of names
    where a name repeats (QualCoder allows a category and a code of the same name).
``code_name`` (cid, name, memo, catid, color)
    codes, each in a category (``catid``) or at the top level.
``source`` (id, name, fulltext, mediapath, memo)
    sources; those with ``fulltext`` are text sources, the others (audio, video, images) are kept and skipped.
``code_text`` (ctid, cid, fid, pos0, pos1, owner, memo)
    codings: a character range ``fulltext[pos0:pos1]`` coded ``cid`` by ``owner`` (the coder's name).

QualCoder is written in Python and counts positions in Python characters, so the offsets need no
conversion. The result is a :class:`~autocode.io.qdpx.Project`, like a REFI-QDA import: it can be turned into
a coded corpus, or written out as ``.qdpx`` for another tool.

>>> import sqlite3, tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp()) / "demo.qda"
>>> folder.mkdir()
>>> con = sqlite3.connect(folder / "data.qda")
>>> _ = con.executescript(SCHEMA_FOR_TESTS + '''
...     INSERT INTO code_cat VALUES (1, '横向共治', NULL, 'E', '', NULL);
...     INSERT INTO code_name VALUES (1, '多元参与', NULL, 1, 'E', '', '#FF0000');
...     INSERT INTO source VALUES (1, 'P01.txt', '问：你好\\n答：居民议事会每月开一次。', NULL, NULL, 'E', '', NULL, NULL);
...     INSERT INTO code_text VALUES (1, 1, 1, '居民议事会', 7, 12, 'E', '', NULL, NULL, NULL);''')
>>> con.commit(); con.close()
>>> project = read_qualcoder(folder)
>>> project.codebook.ids, project.coders, project.spans()[0][:4]
(['横向共治', '多元参与'], ['E'], ('P01', 7, 12, '多元参与'))
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from ..codebook import Code, Codebook
from ..exceptions import FormatError
from .qdpx import Coding, Project, Selection, Source, User, _warn_problems, code_ids, guid_for

__all__ = ["read_qualcoder", "SCHEMA_FOR_TESTS"]

SCHEMA_FOR_TESTS = """
CREATE TABLE project (databaseversion text, date text, memo text, about text, bookmarkfile integer,
    bookmarkpos integer, codername text);
CREATE TABLE code_cat (catid integer primary key, name text, owner text, date text, memo text,
    supercatid integer, unique(name));
CREATE TABLE code_name (cid integer primary key, name text, memo text, catid integer, owner text,
    date text, color text, unique(name));
CREATE TABLE source (id integer primary key, name text, fulltext text, mediapath text, memo text, owner text,
    date text, av_text_id integer, risid integer, unique(name));
CREATE TABLE code_text (ctid integer primary key, cid integer, fid integer, seltext text, pos0 integer,
    pos1 integer, owner text, date text, memo text, avid integer, important integer,
    unique(cid, fid, pos0, pos1, owner));
"""
"""The part of QualCoder's schema autocode reads (columns as in QualCoder's own ``CREATE TABLE``)."""

_REQUIRED = {
    "code_name": ("cid", "name", "catid"),
    "code_cat": ("catid", "name", "supercatid"),
    "source": ("id", "name", "fulltext"),
    "code_text": ("cid", "fid", "pos0", "pos1", "owner"),
}


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
    _warn_problems(project)
    return project
