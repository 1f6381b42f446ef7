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
a coded corpus, or written out as ``.qdpx`` for another tool. :func:`autocode.io.qdpx.read_project` reads
QualCoder projects too (it calls :func:`read_qualcoder` for a ``.qda`` folder); the reader lives in the
``qdpx`` package beside the REFI-QDA reader, so that the two share the project model without importing each
other.

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

from .qdpx import read_qualcoder

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
