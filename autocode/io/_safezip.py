"""Open project files that come from someone else: hardened XML parsing and size-capped zip reading.

A REFI-QDA project (``.qdpx``), a Word ``.docx`` and an Excel ``.xlsx`` are zip archives of XML parts (and
sources, images). All are untrusted input, read with the same caps:

* XML is parsed with :mod:`defusedxml`: a DTD, entity declarations (billion laughs, quadratic blow-up) and
  external entities are refused; so is XML nested deeper, or with a text node or attribute larger, than a
  cap (parsing stops there).
* Zip members are read into memory, never extracted. Member names that are absolute or climb out of the
  archive (``../x``, ``C:\\x``) are refused, and so are archives with too many members, members or a total
  that would uncompress beyond a cap, or a compression ratio typical of zip bombs. Reading stops at the cap
  even when a member's header lies about its size.

>>> parse_xml(b"<a><b>x</b></a>", "t.xml").find("b").text
'x'
>>> parse_xml(b'<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', "t.xml")
Traceback (most recent call last):
...
autocode.exceptions.FormatError: t.xml: The XML declares a DTD or entities (<!DOCTYPE ...>), which autocode refuses...
"""

from __future__ import annotations

import io
import posixpath
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from xml.etree.ElementTree import Element, ParseError

from ..exceptions import FormatError

__all__ = ["Limits", "SafeZip", "parse_xml", "safe_member_name"]


@dataclass(frozen=True)
class Limits:
    """Caps applied when reading an archive.

    Parameters
    ----------
    max_members : int
        Most entries an archive may hold.
    max_member_bytes : int
        Most bytes one entry may uncompress to.
    max_total_bytes : int
        Most bytes all entries together may uncompress to.
    max_ratio : float
        Highest compression ratio (uncompressed / compressed) accepted for an entry larger than 1 MiB; text
        compresses about 3-10 times, zip bombs by thousands.
    max_xml_depth : int
        Deepest element nesting accepted in an XML part.
    max_xml_node : int
        Most characters one text node or attribute value of an XML part may hold.
    max_xml_bytes : int
        Most bytes an XML part may have to be parsed (a parsed tree takes several times its size in memory).
    """

    max_members: int = 10_000
    max_member_bytes: int = 512 * 2**20
    max_total_bytes: int = 2 * 2**30
    max_ratio: float = 200.0
    max_xml_depth: int = 256
    max_xml_node: int = 16 * 2**20
    max_xml_bytes: int = 256 * 2**20


DEFAULT_LIMITS = Limits()
_RATIO_FLOOR = 2**20  # small entries may compress well (runs of spaces) without being bombs


class _CapExceeded(Exception):
    pass


def _capped_builder(limits: Limits):
    from xml.etree.ElementTree import TreeBuilder

    class CappedTreeBuilder(TreeBuilder):
        """Builds the tree like TreeBuilder, stopping the parse at the depth and node-size caps."""

        def __init__(self):
            super().__init__()
            self.depth = 0
            self.run = 0

        def start(self, tag, attrs):
            self.depth += 1
            self.run = 0
            if self.depth > limits.max_xml_depth:
                raise _CapExceeded(f"The XML nests elements deeper than the {limits.max_xml_depth} levels allowed.")
            for value in attrs.values():
                if len(value) > limits.max_xml_node:
                    raise _CapExceeded(f"An attribute of <{tag}> holds more than the {limits.max_xml_node} "
                                       "characters allowed.")
            return super().start(tag, attrs)

        def end(self, tag):
            self.depth -= 1
            self.run = 0
            return super().end(tag)

        def data(self, data):
            self.run += len(data)
            if self.run > limits.max_xml_node:
                raise _CapExceeded(f"A text node holds more than the {limits.max_xml_node} characters allowed.")
            return super().data(data)

    return CappedTreeBuilder()


def parse_xml(data: bytes, path: str | Path, where: str | None = None, limits: Limits | None = None) -> Element:
    """Parse untrusted XML; DTDs, entities and external references are refused with a :class:`FormatError`,
    and so is nesting deeper than ``limits.max_xml_depth`` or a text node or attribute larger than
    ``limits.max_xml_node`` (the parse stops there).

    >>> parse_xml(b"<a>" * 300 + b"</a>" * 300, "deep.xml")
    Traceback (most recent call last):
    ...
    autocode.exceptions.FormatError: deep.xml: The XML nests elements deeper than the 256 levels allowed...
    """
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import DefusedXMLParser

    limits = limits or DEFAULT_LIMITS
    parser = DefusedXMLParser(target=_capped_builder(limits), forbid_dtd=True, forbid_entities=True,
                              forbid_external=True)
    try:
        for i in range(0, len(data), 1 << 20):
            parser.feed(data[i:i + (1 << 20)])
        return parser.close()
    except DefusedXmlException:
        raise FormatError(
            "The XML declares a DTD or entities (<!DOCTYPE ...>), which autocode refuses: they can expand to "
            "gigabytes or read files from your computer. QDA tools do not write them; re-export the project.",
            path,
            where,
        ) from None
    except _CapExceeded as err:
        raise FormatError(f"{err} autocode refuses such files (a crafted file?); save it again from its program.",
                          path, where) from None
    except ParseError as err:
        line, col = getattr(err, "position", (None, None))
        at = f" at line {line}, column {col}" if line else ""
        raise FormatError(f"Not well-formed XML{at}: {err.msg if hasattr(err, 'msg') else err}.", path,
                          where) from None


def safe_member_name(name: str) -> str | None:
    """The normalised archive path of ``name``, or None when it is absolute or leaves the archive.

    >>> safe_member_name("sources/a.txt"), safe_member_name("./sources//a.txt")
    ('sources/a.txt', 'sources/a.txt')
    >>> safe_member_name("../etc/passwd"), safe_member_name("/etc/passwd"), safe_member_name("C:\\\\x.txt")
    (None, None, None)
    """
    if not name or "\x00" in name:
        return None
    name = name.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    norm = posixpath.normpath(name)
    if norm in (".", "..") or norm.startswith("../"):
        return None
    return norm


class SafeZip:
    """A zip archive checked on opening (names, counts, sizes, ratios) and read with caps.

    Parameters
    ----------
    path : path
        The archive.
    limits : Limits, optional
        The caps; :data:`DEFAULT_LIMITS` when omitted.
    data : bytes, optional
        The archive's bytes (e.g. a ``.docx`` inside a project); ``path`` then only names it in messages.
    kind : str
        What the archive should be, for the message when it is not a zip file.

    Raises
    ------
    FormatError
        When the file is not a zip archive, or an entry escapes the archive or breaks a cap; the message names
        the entry.
    """

    def __init__(self, path: str | Path, limits: Limits | None = None, *, data: bytes | None = None,
                 kind: str = "A .qdpx project is a zip file; export it again from your QDA tool"):
        self.path = Path(path)
        self.limits = limits or DEFAULT_LIMITS
        try:
            self._zip = zipfile.ZipFile(self.path if data is None else io.BytesIO(data))
        except FileNotFoundError:
            raise FormatError("File not found. Check the path.", self.path) from None
        except (zipfile.BadZipFile, OSError) as err:
            raise FormatError(f"Not a zip archive ({err}). {kind}.", self.path) from None
        infos = self._zip.infolist()
        if len(infos) > self.limits.max_members:
            self.close()
            raise FormatError(
                f"The archive has {len(infos)} entries, more than the {self.limits.max_members} allowed.",
                self.path,
            )
        self._members: dict[str, zipfile.ZipInfo] = {}
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            name = safe_member_name(info.filename)
            if name is None:
                self.close()
                raise FormatError(
                    "The entry's path is absolute or leaves the archive (path traversal); autocode refuses "
                    "such archives.",
                    self.path,
                    f"entry {info.filename!r}",
                )
            self._check_size(info)
            total += info.file_size
            if total > self.limits.max_total_bytes:
                self.close()
                raise FormatError(
                    f"The archive uncompresses to more than {self.limits.max_total_bytes} bytes "
                    "(a zip bomb?).",
                    self.path,
                    f"entry {info.filename!r}",
                )
            self._members[name] = info
        self._lower = {}
        for name in self._members:
            self._lower.setdefault(name.lower(), name)
        self._read_total = 0

    def _check_size(self, info: zipfile.ZipInfo) -> None:
        if info.file_size > self.limits.max_member_bytes:
            self.close()
            raise FormatError(
                f"The entry uncompresses to {info.file_size} bytes, more than the {self.limits.max_member_bytes} "
                "allowed.",
                self.path,
                f"entry {info.filename!r}",
            )
        if info.file_size > _RATIO_FLOOR and info.file_size > self.limits.max_ratio * max(info.compress_size, 1):
            self.close()
            raise FormatError(
                f"The entry is compressed {info.file_size / max(info.compress_size, 1):.0f} times, more than the "
                f"{self.limits.max_ratio:.0f} allowed (a zip bomb?).",
                self.path,
                f"entry {info.filename!r}",
            )

    def __enter__(self) -> SafeZip:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._zip.close()

    @property
    def names(self) -> list[str]:
        """Normalised names of the file entries, in archive order."""
        return list(self._members)

    def find(self, name: str) -> str | None:
        """The entry named ``name``, matched exactly, then ignoring case (ATLAS.ti writes ``Sources/``)."""
        norm = safe_member_name(name)
        if norm is None:
            return None
        if norm in self._members:
            return norm
        return self._lower.get(norm.lower())

    def parse(self, name: str) -> Element:
        """An XML entry, read and parsed within the caps."""
        size = self._members[name].file_size
        if size > self.limits.max_xml_bytes:
            raise FormatError(f"The XML part has {size} bytes, more than the {self.limits.max_xml_bytes} allowed.",
                              self.path, f"entry {name!r}")
        return parse_xml(self.read(name), self.path, f"entry {name!r}", self.limits)

    def read(self, name: str) -> bytes:
        """The bytes of an entry, reading at most the caps (whatever its header claims)."""
        info = self._members[name]
        cap = min(self.limits.max_member_bytes, self.limits.max_total_bytes - self._read_total)
        chunks, size = [], 0
        try:
            with self._zip.open(info) as f:
                while True:
                    chunk = f.read(1 << 16)
                    if not chunk:
                        break
                    size += len(chunk)
                    if size > cap:
                        raise FormatError(
                            "The entry uncompresses to more than the size allowed (a zip bomb?).",
                            self.path,
                            f"entry {name!r}",
                        )
                    chunks.append(chunk)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error) as err:
            raise FormatError(f"Cannot read the entry ({err}). The archive is damaged.", self.path,
                              f"entry {name!r}") from None
        self._read_total += size
        return b"".join(chunks)
