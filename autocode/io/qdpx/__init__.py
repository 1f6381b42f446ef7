"""REFI-QDA projects: read hand-coded ``.qdpx``/``.qde``/``.qdc`` files, write pre-coded ``.qdpx`` projects.

REFI-QDA (QDA-XML, ``urn:QDA-XML:project:1.0``) is the exchange standard of NVivo, ATLAS.ti, MAXQDA,
QualCoder and others. A ``.qdpx`` file is a zip archive with ``project.qde`` (the XML) and the sources under
``sources/``; a ``.qdc`` file is a codebook alone.

Reading (:func:`read_project`) gives a :class:`Project`: the codebook (nested codes with descriptions and
colours), the users, the text sources with their text, and every coded text selection with its codings and
the user who made each. Everything else in the file (cases, variables, sets, graphs, links, notes, picture,
PDF, audio and video sources, attributes such as dates) is kept, so that :func:`write_qdpx` writes back a
project with nothing lost. Non-text sources are kept and skipped; a text source whose file is missing from
the archive (the REFI test project ships none) is reported with an :class:`~autocode.AutocodeWarning` and
listed in :attr:`Project.problems`.

From codings to segments
------------------------
A QDA project codes character ranges; autocode learns from segments (speaker turns and sentences,
:func:`autocode.segment.segment_text`). :meth:`Project.coded_corpus` segments each text source and gives a
segment a code from a user when a selection of that user coded with it overlaps the segment by at least
``min_overlap`` (default half) of the segment's characters, or by at least that share of the selection's own
characters (a short quote inside a long turn codes the turn). A user who coded anything in a source has
coded every segment of it (segments without a selection get no code); sources a user did not touch are
missing for that user. The original character ranges stay available: :meth:`Project.spans` lists them per
user and code, with offsets into :meth:`Project.documents`, for agreement at character level.

Offsets
-------
REFI positions count characters of the plain text: Unicode code points, a CRLF line break as two
characters, the byte order mark not counted (``positions="chars"``). Tools built on UTF-16 strings may
count a character outside the Basic Multilingual Plane (𠮷, emoji) as two, and a tool that normalises line
breaks may count CRLF as one; ``positions="utf16"``, ``"chars-lf"`` or ``"utf16-lf"`` read and write such
files. By default (``"auto"``) :func:`read_project` uses ``"chars"`` unless the selections' names (ATLAS.ti
names a quotation by its first words) fit the text better under another convention. Inside the library
offsets are always Python string indices.

Code ids
--------
A REFI code has a GUID and a name. Read without a codebook, a code's id is its name (``;`` replaced by
``,``), or its path of names (``"parent/child"``) where names repeat; the GUID is kept in
``Code.extra["guid"]`` and written back. Read with a codebook, a project code takes the id of the codebook
code with the same GUID, id or name, so a project coded in a QDA tool lines up with ``codebook.csv``.

Security
--------
The XML is parsed with defusedxml (no DTD, entities or external references), archive entries are checked
for path traversal and capped in size and compression ratio (:mod:`autocode.io._safezip`), and a
``plainTextPath`` must point inside the archive.

Example
-------
>>> import tempfile, pathlib
>>> from autocode import Code, Codebook, Segment, Suggestions
>>> import numpy as np
>>> book = Codebook([Code("H", "横向共治"), Code("council", "多元参与", parent="H")])
>>> segs = [Segment("P01", "1", "居民议事会每月开一次。", "受访者", 4, 15)]
>>> sug = Suggestions(segs, ["council"], np.array([[0.9]]), np.array([0.5]), book, coder="autocode-tfidf.v1")
>>> from autocode.io.transcript import Document
>>> out = pathlib.Path(tempfile.mkdtemp()) / "precoded.qdpx"
>>> write_precoded_qdpx(out, sug, documents=[Document("P01", "受访者：居民议事会每月开一次。")]) == out
True
>>> project = read_project(out, codebook=book)
>>> project.coders, [(s.document, s.start, s.end, s.code) for s in project.spans()]
(['autocode-tfidf.v1'], [('P01', 4, 15, 'council')])

Modules
-------
``_model``: the records (:class:`User`, :class:`Source`, :class:`Selection`, :class:`Coding`, :class:`Span`),
GUIDs and code ids; ``_project``: :class:`Project`; ``_offsets``: position conventions; ``_segments``:
selections to segments and back; ``_read``: REFI-QDA reading; ``_qualcoder``: QualCoder reading;
``_write``: writing projects, pre-coded projects and codebooks.
"""

from ._model import NS, Coding, Selection, Source, Span, User, code_ids, guid_for
from ._offsets import POSITIONS
from ._project import Project
from ._qualcoder import read_qualcoder
from ._read import read_project, read_qdc
from ._write import project_xml, write_precoded_qdpx, write_qdc, write_qdpx

__all__ = [
    "NS",
    "POSITIONS",
    "Coding",
    "Project",
    "Selection",
    "Source",
    "Span",
    "User",
    "code_ids",
    "guid_for",
    "project_xml",
    "read_qdc",
    "read_project",
    "read_qualcoder",
    "write_precoded_qdpx",
    "write_qdc",
    "write_qdpx",
]
