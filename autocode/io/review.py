"""Read a reviewed pre-coding back: a table with an ``accept`` column, or a ``.qdpx`` reviewed in a QDA tool.

Tables (``.csv``, ``.tsv``, ``.jsonl``: the pre-coded table ``autocode precode`` writes)
    one row per segment; ``codes`` holds the suggestions; the reviewer fills ``accept``: ``yes``/``no`` (also
    ``y``/``n``, ``1``/``0``, ``true``/``false``, ``✓``/``✗``, ``是``/``否``, ``对``/``错``, ``接受``/``拒绝``)
    for every code of the row, or one answer per code in the order of ``codes`` (``是;否``); blank = not
    reviewed. A row with no suggestion answered ``no`` means no code applies. An optional ``add`` column
    holds codes the reviewer adds (ids, ``;``-separated).
Projects (``.qdpx``, given with the pre-coded project autocode wrote)
    compared segment by segment (the rule of :meth:`Project.coded_corpus`) with the pre-coded project: a
    suggested code the reviewer applied to the same segment under their own name is accepted; a suggestion
    gone from the project is rejected; a suggestion still there under the model's name is untouched.
    Codings under the model's name that autocode did not write (a reviewer who kept the model as the current
    coder, QualCoder's default after import) are counted as the reviewer's, with a warning.
"""

from __future__ import annotations

import unicodedata
import warnings
from pathlib import Path

from ..codebook import Codebook
from ..corpus import Segment
from ..exceptions import AutocodeWarning, CodebookError, FormatError
from ..review import Review
from .table import read_rows, split_codes

__all__ = ["read_review", "YES", "NO"]

YES = frozenset({"yes", "y", "1", "true", "t", "ok", "✓", "✔", "☑", "是", "对", "對", "接受", "采纳", "同意", "accept",
                 "accepted"})
NO = frozenset({"no", "n", "0", "false", "f", "✗", "✘", "×", "x", "☒", "否", "错", "錯", "不", "不对", "拒绝", "拒絕",
                "reject", "rejected"})


def _answer(cell: str, path: Path, row) -> bool | None:
    value = unicodedata.normalize("NFKC", cell).strip().lower()
    if not value:
        return None
    if value in YES:
        return True
    if value in NO:
        return False
    raise FormatError(f"accept {cell.strip()!r} is neither yes nor no. Write yes/no (or 1/0, ✓/✗, 是/否), "
                      "or leave it blank for a suggestion not reviewed.", path, f"row {row}")


def read_review(path: str | Path, *, precoded: str | Path | None = None, codebook: Codebook | None = None,
                model_name: str | None = None, encoding: str | None = None) -> Review:
    """Read a reviewed pre-coding (see the module doc).

    Parameters
    ----------
    path : path
        The reviewed table (``.csv``/``.tsv``/``.jsonl``) or project (``.qdpx``, QualCoder ``.qda``).
    precoded : path
        For a project: the pre-coded ``.qdpx`` autocode wrote, which says what was suggested.
    codebook : Codebook, optional
        Check the codes against it.
    model_name : str, optional
        For a project: the user the suggestions were written under (default: the one user whose name starts
        with ``autocode``).
    """
    path = Path(path)
    if path.suffix.lower() in (".qdpx", ".qde", ".qda", ".sqlite", ".db") or path.is_dir():
        if precoded is None:
            raise FormatError("A reviewed project needs the pre-coded project it came from, to know what was "
                              "suggested: give precoded= (CLI: --precoded precoded.qdpx).", path)
        return _read_project_review(path, Path(precoded), codebook, model_name)
    return _read_table_review(path, codebook, encoding)


def _check(codes, codebook, path, row):
    if codebook is None:
        return
    for c in codes:
        if c not in codebook:
            raise CodebookError(f"{path}, row {row}: {codebook.unknown_message(c)}")


def _read_table_review(path: Path, codebook: Codebook | None, encoding: str | None) -> Review:
    header, rows = read_rows(path, encoding=encoding, required=("document", "segment", "text", "codes", "accept"))
    review = Review([], reviewer="reviewer")
    seen: set = set()
    for r in rows:
        key = (r["document"].strip(), r["segment"].strip())
        if key in seen:
            raise FormatError(f"Segment {key} appears twice. Keep one row per segment in a reviewed table.",
                              path, f"row {r['_row']}")
        seen.add(key)
        review.segments.append(Segment(key[0], key[1], r.get("text") or "", r.get("speaker") or ""))
        codes = split_codes(r.get("codes"))
        added = split_codes(r.get("add"))
        _check(codes + added, codebook, path, r["_row"])
        cells = [c for c in str(r.get("accept") or "").replace("；", ";").split(";")]
        answers = [_answer(c, path, r["_row"]) for c in cells]
        if not codes:
            if answers[0] is True and len(answers) == 1 and not added:
                raise FormatError("accept is yes but the row suggests no code. Put the codes that apply in the "
                                  "'add' column, or answer no (nothing applies).", path, f"row {r['_row']}")
            if answers[0] is False:
                review.complete.add(key)
        elif len(answers) == 1:
            answers = answers * len(codes)
        elif len(answers) != len(codes):
            raise FormatError(f"accept has {len(answers)} answers for {len(codes)} codes ({';'.join(codes)}). "
                              "Give one answer for all of them, or one per code in the same order.",
                              path, f"row {r['_row']}")
        for code, a in zip(codes, answers):
            target = review.unknown if a is None else review.accepted if a else review.rejected
            target.setdefault(key, set()).add(code)
        if added:
            review.added.setdefault(key, set()).update(c for c in added if c not in codes)
    return review


def _read_project_review(path: Path, precoded: Path, codebook: Codebook | None, model_name: str | None) -> Review:
    from .qdpx import read_project

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AutocodeWarning)
        before = read_project(precoded, codebook=codebook)
        after = read_project(path, codebook=codebook)
    book = codebook or before.codebook
    pre = before.coded_corpus(book)
    model = model_name or _model_user(before.coders, precoded)
    if model not in pre.coders:
        raise FormatError(f"No codings of the model {model!r} in the pre-coded project; its coders are "
                          f"{pre.coders}. Give the model's user name (--model-name).", precoded)
    post = after.coded_corpus(book)
    index = {s.key: i for i, s in enumerate(pre.segments)}
    suggested = {s.key: set(c) for s, c in zip(pre.segments, pre.codings(model)) if c}
    still = {}
    if model in post.coders:
        still = {s.key: set(c) for s, c in zip(post.segments, post.codings(model)) if c and s.key in index}
    mine: dict = {}
    for coder in post.coders:
        if coder == model:
            continue
        had = pre.codings(coder) if coder in pre.coders else [None] * len(pre)
        for s, c in zip(post.segments, post.codings(coder)):
            if c is None or s.key not in index:
                continue
            new = set(c) - set(had[index[s.key]] or ())
            mine.setdefault(s.key, set()).update(new)
    review = Review(list(pre.segments), reviewer=next((c for c in post.coders if c != model and c not in pre.coders),
                                                     "reviewer"))
    under_model = 0
    for key in set(still) - set(suggested):  # codings under the model's name that autocode did not write
        under_model += len(still[key])
        mine.setdefault(key, set()).update(still.pop(key))
    for key, extra in list(still.items()):
        new = extra - suggested[key]
        if new:
            under_model += len(new)
            mine.setdefault(key, set()).update(new)
            still[key] = extra & suggested[key]
    for key, codes in suggested.items():
        for c in codes:
            if c in mine.get(key, ()):
                review.accepted.setdefault(key, set()).add(c)
            elif c in still.get(key, ()):
                review.unknown.setdefault(key, set()).add(c)
            else:
                review.rejected.setdefault(key, set()).add(c)
    docs = set()
    for key, codes in mine.items():
        extra = codes - suggested.get(key, set())
        if extra:
            review.added.setdefault(key, set()).update(extra)
        if codes:
            docs.add(key[0])
    review.complete = {s.key for s in pre.segments if s.document in docs}
    if under_model:
        msg = (f"{path}: {under_model} coding(s) under the model's name {model!r} were not in the pre-coded "
               "project; they are counted as the reviewer's. Review under your own name (QualCoder: Project > "
               "Settings > coder name) so that keeping a suggestion can be told from not reviewing it.")
        review.notes.append(msg)
        warnings.warn(msg, AutocodeWarning, stacklevel=3)
    return review


def _model_user(coders: list[str], precoded: Path) -> str:
    found = [c for c in coders if c.lower().startswith("autocode")]
    if len(found) != 1:
        raise FormatError(f"Cannot tell which user is the model among {coders}. Give the model's user name "
                          "(model_name=, CLI: --model-name).", precoded)
    return found[0]
