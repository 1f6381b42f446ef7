"""Read raw transcripts: ``.txt`` and other text files named one by one, such as Markdown ``.md`` (UTF-8 with or
without BOM, UTF-16 with BOM, GB18030/GBK, Big5), and Word ``.docx`` (paragraphs and tables in reading order, Heading-style paragraphs noted as section headings).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "gbk.txt").write_bytes("问：你好\\n答：社区很好\\n".encode("gbk"))
>>> [doc.name for doc in read_documents(d)], read_documents(d)[0].encoding
(['gbk'], 'gb18030')
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..corpus import Segment
from ..exceptions import FormatError
from ..section import Heading
from ..segment import segment_text
from ._docx import docx_document
from ._encoding import decode

__all__ = ["Document", "decode_bytes", "read_documents", "read_transcripts", "expand_paths"]

TRANSCRIPT_SUFFIXES = (".txt", ".docx")


@dataclass(frozen=True)
class Document:
    """A transcript as text: ``name`` (file stem), ``text`` (decoded, BOM removed), where it came from, and
    the headings its file marks as such (a ``.docx``'s Heading styles; those written in the text are found
    when it is segmented)."""

    name: str
    text: str
    path: str | None = None
    encoding: str | None = None
    headings: tuple[Heading, ...] = ()


def decode_bytes(data: bytes, path: str | Path, encoding: str | None = None) -> tuple[str, str]:
    """Decode a text file; return ``(text, encoding)``.

    With ``encoding=None``: a UTF-8 or UTF-16 BOM decides; otherwise strict UTF-8, then GB18030 (GBK, GB2312)
    or Big5, whichever reads as Chinese text (see :mod:`autocode.io._encoding`); when neither is clearly
    right, a :class:`FormatError` asks for ``--encoding``. Binary files (PDF, Office, images) are refused.
    The BOM is removed.
    """
    return decode(data, path, encoding)


def expand_paths(inputs: str | Path | Iterable[str | Path], suffixes=TRANSCRIPT_SUFFIXES) -> list[Path]:
    """Files named by paths, folders (their files with ``suffixes``, sorted) and glob patterns (the matching
    files with ``suffixes``)."""
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(f for f in p.iterdir()
                           if f.suffix.lower() in suffixes and f.is_file() and not f.name.startswith("~$"))
            if not found:
                raise FormatError(f"No {'/'.join(suffixes)} files in this folder.", p)
            out.extend(found)
        elif p.exists():
            out.append(p)
        elif any(ch in str(item) for ch in "*?["):
            found_any = sorted(Path(m) for m in glob.glob(str(item), recursive=True))
            if not found_any:
                raise FormatError("The pattern matches no file.", str(item))
            # like a folder: only files with the wanted suffixes (a match may be a folder or another file type)
            matches = [f for f in found_any
                       if f.is_file() and f.suffix.lower() in suffixes and not f.name.startswith("~$")]
            if not matches:
                raise FormatError(
                    f"The pattern matches no {'/'.join(suffixes)} file (it matches {len(found_any)} other "
                    f"file(s) or folder(s), e.g. {found_any[0].name!r}).",
                    str(item),
                )
            out.extend(matches)
        else:
            raise FormatError("File not found. Check the path.", p)
    return out


def read_documents(
    inputs: str | Path | Iterable[str | Path], *, encoding: str | None = None
) -> list[Document]:
    """Read transcripts (files, folders or globs of ``.txt``/``.docx``) as :class:`Document` objects.

    Raises
    ------
    FormatError
        For a missing, empty or undecodable file, naming the file.
    """
    docs = []
    seen: dict[str, Path] = {}
    for path in expand_paths(inputs):
        suffix = path.suffix.lower()
        heads: list[Heading] = []
        if suffix == ".docx":
            if not path.is_file():
                raise FormatError("File not found. Check the path.", path)
            (text, heads), enc = docx_document(path.read_bytes(), path), None
        elif suffix == ".doc":
            raise FormatError("Old Word .doc files are not supported. Save the file as .docx or .txt.", path)
        else:
            text, enc = decode_bytes(path.read_bytes(), path, encoding)
        if not text.strip():
            raise FormatError("The transcript is empty.", path)
        name = path.stem
        if name in seen:
            raise FormatError(
                f"Two transcripts are both named {name!r} ({seen[name]} and {path}). Document names come from "
                "file names: rename one.",
                path,
            )
        seen[name] = path
        docs.append(Document(name, text, str(path), enc, tuple(heads)))
    return docs


def read_transcripts(
    inputs: str | Path | Iterable[str | Path],
    *,
    encoding: str | None = None,
    max_chars: int | None = 200,
    speakers=None,
) -> list[Segment]:
    """Read and segment transcripts into speaker turns (and sentences of long turns), with offsets and the
    section (headings) each segment stands under.

    The document name of each segment is its file name without suffix. ``speakers`` names speaker labels and
    their roles (``{"A": "interviewer", "B": "participant"}``), as in :func:`autocode.segment.segment_text`.
    """
    segments: list[Segment] = []
    for doc in read_documents(inputs, encoding=encoding):
        segs = segment_text(doc.text, doc.name, max_chars=max_chars, speakers=speakers, headings=doc.headings)
        if not segs:
            raise FormatError("The transcript has no text to segment.", doc.path)
        segments.extend(segs)
    return segments
