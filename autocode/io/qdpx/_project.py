"""A QDA project in memory (:class:`Project`): its codebook, users, sources and codings, seen as documents,
coded segments and coded character ranges; pre-coded suggestions are added to it as a model's codings."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ...codebook import Code, Codebook
from ...corpus import DEFAULT_CODER, CodedCorpus, Segment
from ...exceptions import AutocodeWarning, CodebookError, FormatError
from ...segment import segment_text
from ..transcript import Document
from ._model import Coding, Selection, Source, Span, User, guid_for, now
from ._segments import locate, overlapping

__all__ = ["Project"]

_DOC_SUFFIXES = (".txt", ".docx", ".doc", ".rtf", ".odt", ".pdf")


@dataclass
class Project:
    """A REFI-QDA (or QualCoder) project in memory.

    Attributes
    ----------
    name : str
        The project's name.
    codebook : Codebook
        The project's codes as a tree; ``Code.extra["guid"]`` holds each code's GUID.
    users : list of User
    sources : list of Source
        In file order; text sources have ``text`` (None when the file is missing), other kinds are kept as read.
    notes : list of Source
        The project's notes (memos), with their text.
    problems : list of str
        What could not be read (missing source files ...), also reported as one warning on reading.
    positions : str
        How the file counts positions (see :data:`POSITIONS`); used again by :func:`write_qdpx`.

    Use :meth:`coded_corpus` for training and agreement on segments, :meth:`spans` for the coded character
    ranges, :meth:`documents` for the texts, :meth:`add_suggestions` to add a model's codings, and
    :func:`write_qdpx` to write the project out.
    """

    name: str = "autocode project"
    codebook: Codebook = field(default_factory=lambda: Codebook([]))
    users: list[User] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    notes: list[Source] = field(default_factory=list)
    attrs: dict = field(default_factory=dict)
    sections: dict = field(default_factory=dict)  # top-level elements autocode does not model, kept verbatim
    code_attrs: dict = field(default_factory=dict)  # code guid -> other attributes of <Code>
    code_extra: dict = field(default_factory=dict)  # code guid -> NoteRef elements of <Code>
    files: dict = field(default_factory=dict)  # archive entry -> bytes, or None: copy from ``path``
    path: Path | None = None
    problems: list[str] = field(default_factory=list)
    positions: str = "chars"
    target_codebook: Codebook | None = None
    source_folder: str = "sources"  # as the archive spells it (ATLAS.ti: "Sources")

    def __repr__(self) -> str:
        n_text = sum(1 for s in self.sources if s.kind == "TextSource")
        n_sel = sum(len(s.selections) for s in self.sources)
        return (f"Project({self.name!r}: {len(self.codebook)} codes, {len(self.users)} users, "
                f"{n_text} text sources, {n_sel} selections)")

    def warn_problems(self, stacklevel: int = 2) -> None:
        """Report :attr:`problems`, when there are any, as one :class:`~autocode.AutocodeWarning`.

        The readers call this once a project is read. ``stacklevel`` is as for :func:`warnings.warn`,
        counted from the caller (2: the warning names the line that called the caller).
        """
        if self.problems:
            shown = "; ".join(self.problems[:3]) + (f"; and {len(self.problems) - 3} more"
                                                    if len(self.problems) > 3 else "")
            warnings.warn(f"{self.path}: {shown} (see Project.problems)", AutocodeWarning,
                          stacklevel=stacklevel + 1)

    # -- lookups -------------------------------------------------------------------------------------------
    def code_guid(self, code_id: str) -> str:
        """The GUID of a code of :attr:`codebook` (kept from the file, or derived from the id)."""
        code = self.codebook[code_id]
        return code.extra.get("guid") or guid_for("code", code.id)

    def code_ids_by_guid(self) -> dict[str, str]:
        """Code GUID (upper case) -> code id, for the codes of :attr:`codebook`."""
        return {self.code_guid(c.id).upper(): c.id for c in self.codebook}

    def _user_names(self) -> dict[str, str]:
        names: dict[str, str] = {}
        seen: set[str] = set()
        for u in self.users:
            label = u.label
            if label in seen:
                label = f"{label} ({u.id or u.guid[:8]})"
            seen.add(label)
            names[u.guid.upper()] = label
        return names

    def _coder_of(self, coding: Coding, selection: Selection, names: dict[str, str]) -> str:
        guid = coding.user or selection.user
        if not guid:
            return DEFAULT_CODER
        return names.get(guid.upper(), guid)

    def document_names(self) -> dict[str, str]:
        """Source GUID -> document name, for the text sources with text: the source name without a
        ``.txt``/``.docx``... suffix, made unique."""
        out: dict[str, str] = {}
        used: set[str] = set()
        for src in self.sources:
            if src.kind != "TextSource" or src.text is None:
                continue
            name = (src.name or src.guid).strip()
            for suffix in _DOC_SUFFIXES:
                if name.lower().endswith(suffix) and len(name) > len(suffix):
                    name = name[: -len(suffix)]
                    break
            if name in used:
                name = f"{name} ({src.guid[:8]})"
            used.add(name)
            out[src.guid] = name
        return out

    @property
    def coders(self) -> list[str]:
        """Names of the users who made at least one coding, in the order of the project's users."""
        names = self._user_names()
        found: list[str] = []
        for src in self.sources:
            for sel in src.selections:
                for c in sel.codings:
                    who = self._coder_of(c, sel, names)
                    if who not in found:
                        found.append(who)
        order = {n: i for i, n in enumerate(names.values())}
        return sorted(found, key=lambda n: (order.get(n, len(order)), found.index(n)))

    def documents(self) -> list[Document]:
        """The text sources as :class:`~autocode.io.transcript.Document` (name, text), with ``path`` =
        ``"<project file>#<source GUID>"``."""
        names = self.document_names()
        by_guid = {s.guid: s for s in self.sources}
        return [Document(name, by_guid[g].text, f"{self.path}#{g}" if self.path else f"#{g}", "utf-8")
                for g, name in names.items()]

    # -- codings ---------------------------------------------------------------------------------------------
    def spans(self) -> list[Span]:
        """Every coded character range of the text sources with text, as (document, start, end, code, coder,
        selection GUID); offsets are Python indices into the document's text (:meth:`documents`)."""
        names, users, ids = self.document_names(), self._user_names(), self.code_ids_by_guid()
        out = []
        for src in self.sources:
            if src.guid not in names:
                continue
            for sel in src.selections:
                for c in sel.codings:
                    out.append(Span(names[src.guid], sel.start, sel.end, ids[c.code.upper()],
                                    self._coder_of(c, sel, users), sel.guid))
        return out

    def coded_corpus(self, codebook: Codebook | None = None, *, min_overlap: float = 0.5,
                     max_chars: int | None = 200, speakers=None) -> CodedCorpus:
        """Segments of the text sources, coded by each user (see the module doc for the rule).

        Parameters
        ----------
        codebook : Codebook, optional
            Validate the codes against it; defaults to the codebook given to :func:`read_project`, else the
            project's own.
        min_overlap : float
            Share of a segment's (or of the selection's) characters a selection must cover to code it.
        max_chars : int or None
            Split turns longer than this into sentences, as for transcripts.
        speakers : dict, list or str, optional
            Speaker labels of the sources and their roles, as for :func:`~autocode.segment.segment_text`.

        Raises
        ------
        FormatError
            When no text source has its text.
        CodebookError
            When a code used in the project is not in ``codebook``.
        """
        if not 0 < min_overlap <= 1:
            raise ValueError(f"min_overlap must be in (0, 1], got {min_overlap}")
        book = codebook or self.target_codebook or self.codebook
        names, users, ids = self.document_names(), self._user_names(), self.code_ids_by_guid()
        segments: list[Segment] = []
        codings: dict[str, dict] = {c: {} for c in self.coders}
        for src in self.sources:
            if src.guid not in names:
                continue
            segs = segment_text(src.text, names[src.guid], max_chars=max_chars, speakers=speakers)
            segments.extend(segs)
            starts = [s.start for s in segs]
            per_user: dict[str, dict] = {}
            for sel in src.selections:
                for c in sel.codings:
                    code = ids[c.code.upper()]
                    if code not in book:
                        raise CodebookError(
                            f"{self.path}: the project's code {self.codebook[code].name!r} (id {code!r}) is not "
                            f"in the codebook. {book.unknown_message(code)} Add it to the codebook, or read the "
                            "project without --codebook to use its own codes."
                        )
                    coder = self._coder_of(c, sel, users)
                    mine = per_user.setdefault(coder, {})
                    for seg in overlapping(segs, starts, sel.start, sel.end, min_overlap):
                        mine.setdefault(seg.key, set()).add(code)
            for coder, mine in per_user.items():
                col = codings.setdefault(coder, {})
                for s in segs:
                    col[s.key] = mine.get(s.key, set())
        if not segments:
            why = "; ".join(self.problems) or (
                f"its {len(names)} text sources are empty" if names else "the project has no text sources")
            raise FormatError(f"No text source of the project has text to segment: {why}.", self.path)
        return CodedCorpus(segments, {c: v for c, v in codings.items() if v}, codebook=book)

    # -- adding suggestions --------------------------------------------------------------------------------
    def add_suggestions(self, suggestions, documents: Sequence[Document] | None = None) -> Project:
        """Add pre-coded suggestions as codings of a user named after the model (``suggestions.coder``).

        Each segment with accepted codes becomes one :class:`Selection` with one :class:`Coding` per accepted
        code; its description lists the scores. It replaces the model's earlier codings of the same text (the
        selection autocode wrote, or the model user's codings on exactly that range after a QDA tool gave them
        new GUIDs), so a project pre-coded again holds no repeats (QualCoder drops them on import). Segments are placed in the source with the document's name
        (a new source when there is none) at their offsets, found by their text when the offsets do not fit.
        ``documents`` gives the full text of new sources; without it a new source is the document's segments
        joined by newlines. Returns ``self``.
        """
        coder = suggestions.coder
        user_guid = guid_for("user", coder)
        same_name = [u for u in self.users if u.label == coder]
        if same_name:  # a project pre-coded before (a QDA tool may have given the model's user a new GUID)
            user_guid = same_name[0].guid
        elif not any(u.guid.upper() == user_guid for u in self.users):
            self.users.append(User(user_guid, coder))
        code_guids = self._merge_codebook(suggestions.codebook)
        by_doc = {name: g for g, name in self.document_names().items()}
        by_guid = {s.guid: s for s in self.sources}
        docs = {d.name: d for d in documents or ()}
        rows: dict[str, list[int]] = {}
        for i, seg in enumerate(suggestions.segments):
            rows.setdefault(seg.document, []).append(i)
        when = now()
        for doc, idx in rows.items():
            if doc in by_doc:
                src = by_guid[by_doc[doc]]
            else:
                text = docs[doc].text.lstrip("\ufeff") if doc in docs else "\n".join(
                    suggestions.segments[i].text for i in idx)
                guid = guid_for("source", doc)
                src = Source(guid, doc, text=text, plain_path=f"internal://{guid}.txt",
                             attrs={"creatingUser": user_guid, "creationDateTime": when})
                self.sources.append(src)
                by_doc[doc], by_guid[guid] = guid, src
            cursor = 0
            for i in idx:
                seg = suggestions.segments[i]
                start, end = locate(src.text, seg, cursor)
                cursor = end
                accepted = suggestions.codes_for(i)
                if not accepted:
                    continue
                sel_guid = guid_for("selection", coder, src.guid, seg.document, seg.segment)
                src.selections = _without_earlier(src.selections, sel_guid, user_guid, start, end)
                excerpt = seg.text if len(seg.text) <= 40 else seg.text[:40] + "…"
                sel = Selection(sel_guid, start, end, name=excerpt,
                                description=_score_note(suggestions, i), user=user_guid,
                                attrs={"creationDateTime": when})
                for code in accepted:
                    sel.codings.append(Coding(guid_for("coding", sel_guid, code), code_guids[code], user_guid,
                                              attrs={"creationDateTime": when}))
                src.selections.append(sel)
        return self

    def _merge_codebook(self, book: Codebook) -> dict[str, str]:
        """Map the codes of ``book`` to codes of the project (by GUID, id, then name), adding the missing
        ones; return code id of ``book`` -> GUID in the project."""
        if len(self.codebook) == 0:
            self.codebook = book
            return {c.id: self.code_guid(c.id) for c in book}
        mine = {self.code_guid(c.id).upper(): c.id for c in self.codebook}
        by_name: dict[str, list[str]] = {}
        for c in self.codebook:
            by_name.setdefault(c.name, []).append(c.id)
        out: dict[str, str] = {}
        added: list[Code] = []
        mapped: dict[str, str] = {}  # book id -> project id
        for c in sorted(book, key=lambda c: book.depth(c.id)):  # parents before their children
            guid = (c.extra.get("guid") or guid_for("code", c.id)).upper()
            if guid in mine:
                pid = mine[guid]
            elif c.id in self.codebook:
                pid = c.id
            elif len(by_name.get(c.name, [])) == 1:
                pid = by_name[c.name][0]
            else:
                pid = c.id
                parent = mapped.get(c.parent) if c.parent else None
                added.append(Code(pid, c.name, c.description, parent, c.color, dict(c.extra)))
            mapped[c.id] = pid
        if added:
            self.codebook = Codebook([*self.codebook, *added])
        for cid, pid in mapped.items():
            out[cid] = self.code_guid(pid)
        return out


def _score_note(sug, i: int) -> str:
    """The description of a suggested selection: the segment's best scores and thresholds."""
    book = sug.codebook
    lines = [f"autocode suggestion ({sug.coder}), segment {sug.segments[i].segment}:"]
    for code, score, accepted in sug.top(i, 5):
        j = sug.codes.index(code)
        cut = sug.min_score if sug.min_score is not None else float(sug.thresholds[j])
        state = "suggested" if accepted else "below threshold"
        lines.append(f"{book.label(code)}: score {score:.3f} (threshold {cut:.3f}, {state})")
        ev = sug.evidence.get((i, code)) if accepted else None
        if ev is not None and ev.words:
            lines.append("  why: " + "、".join(dict.fromkeys(w.text for w in ev.words)))
        for e in ev.similar if ev is not None else ():
            lines.append(f"  like: {e.document} #{e.segment}「{e.quote}」")
    rules = sug.rules_text(i)
    if rules:
        lines.append(f"rules: {rules}")
    return "\n".join(lines)


def _without_earlier(selections: list[Selection], guid: str, user: str, start: int, end: int) -> list[Selection]:
    """``selections`` less the one with ``guid`` and less ``user``'s codings on exactly ``start``-``end``."""
    user = user.upper()
    out = []
    for sel in selections:
        if sel.guid.upper() == guid:
            continue
        if (sel.start, sel.end) == (start, end):
            others = [c for c in sel.codings if (c.user or sel.user or "").upper() != user]
            if len(others) != len(sel.codings):
                if not others:
                    continue
                sel.codings = others
        out.append(sel)
    return out
