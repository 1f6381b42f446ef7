"""Writing files without losing any: every file autocode writes goes through this module.

- :func:`atomic_write` (and :func:`write_text`, :func:`write_bytes`) write to a temporary file in the target's
  folder and rename it into place once complete, so an interrupted or failed write leaves the previous file
  byte-identical and no temporary file behind.
- :func:`staged_folder` does the same for a folder of files (a model): the files are written into a staging
  folder beside it and moved into place at the end, the names given as ``last`` (the manifest) after the rest.
- :func:`output_lock` takes ``<path>.lock`` (created with ``O_CREAT | O_EXCL``) while a file is written, so
  that a second autocode process writing the same file is refused instead of interleaving; a lock left by a
  process that no longer runs (same computer) is taken over.
- :func:`check_not_inputs` refuses an output that is one of the inputs (the same file by device and inode,
  whatever the names), and :func:`check_writable` an output that cannot be written, before any work is done.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import IO

from .exceptions import OutputError

__all__ = ["atomic_write", "write_text", "write_bytes", "staged_folder", "output_lock", "lock_path",
           "check_not_inputs", "check_writable", "TEMP_PREFIX"]

TEMP_PREFIX = ".autocode-"
"""Temporary files and staging folders start with this (and are removed when a write fails)."""
STALE_EMPTY_LOCK_S = 60.0
"""An unreadable or empty lock file older than this is stale (its writer died before writing its pid)."""

_held: dict[str, int] = {}  # lock files this process holds -> nesting depth


# -- locks ---------------------------------------------------------------------------------------------------
def lock_path(path: str | Path) -> Path:
    """The lock file of an output: ``<path>.lock`` beside it (``model.lock`` for a folder ``model/``)."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


@contextmanager
def output_lock(path: str | Path) -> Iterator[None]:
    """Hold the lock of the output ``path`` for the block (re-entrant within one process).

    Raises :class:`OutputError` when another process holds it.
    """
    lock = lock_path(Path(path).absolute())
    key = str(lock)
    if key in _held:
        _held[key] += 1
        try:
            yield
        finally:
            _held[key] -= 1
        return
    _acquire(lock, Path(path))
    _held[key] = 1
    try:
        yield
    finally:
        del _held[key]
        try:
            os.remove(lock)
        except FileNotFoundError:
            pass


def _acquire(lock: Path, target: Path) -> None:
    _make_parent(target)
    for _ in range(3):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            owner = _owner(lock)
            if _stale(lock, owner):
                try:
                    os.remove(lock)
                except FileNotFoundError:
                    pass
                continue
            who = f"process {owner['pid']} on {owner['host']}" if owner else "process"
            raise OutputError(
                f"{target}: another autocode {who} is writing this file (lock {lock}). Wait for it to finish, "
                f"or write to another path; if no autocode is running, delete {lock}."
            ) from None
        except OSError as err:
            raise _cannot_write(target, err) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"pid": os.getpid(), "host": socket.gethostname()}, f)
        return
    raise OutputError(f"{target}: could not take the lock {lock}; another process keeps replacing it.")


def _owner(lock: Path) -> dict | None:
    try:
        owner = json.loads(lock.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(owner, dict) or not isinstance(owner.get("pid"), int):
        return None
    return owner


def _stale(lock: Path, owner: dict | None) -> bool:
    """Whether the lock's writer is gone: a process of this computer that no longer runs, or an unreadable
    lock older than :data:`STALE_EMPTY_LOCK_S`."""
    if owner is None:
        try:
            return time.time() - lock.stat().st_mtime > STALE_EMPTY_LOCK_S
        except FileNotFoundError:
            return True
    if owner.get("host") != socket.gethostname():
        return False  # cannot tell whether a process on another computer runs
    return not _pid_alive(owner["pid"])


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process holds no such lock (see _held): left by an earlier run with our pid
    if os.name == "nt":  # os.kill would terminate the process on Windows; assume it runs
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # runs, as another user
    return True


# -- atomic files -------------------------------------------------------------------------------------------
def _cannot_write(path: Path, err: OSError) -> OutputError:
    reason = err.strerror or type(err).__name__
    return OutputError(f"{path}: cannot be written ({reason}). Choose an output path in a folder you can write "
                       "to.")


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _check_ancestor(path)
        raise _cannot_write(path, err) from None


def _check_ancestor(path: Path) -> Path:
    """The nearest existing folder above ``path``; an error when that is a file."""
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise OutputError(f"{path}: cannot be written, because {probe} is a file, not a folder. Choose another "
                          "output path.")
    return probe


def _mode_for(path: Path) -> int:
    """The permissions a replaced file keeps, or the usual ones of a new file (mkstemp makes them 0600)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def atomic_write(path: str | Path, mode: str = "w", *, encoding: str | None = None, newline: str | None = None,
                 lock: bool = True) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing; when the block ends without error it replaces
    ``path``, otherwise it is removed and ``path`` is left as it was.

    >>> import pathlib, tempfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_write(p, encoding="utf-8") as f:
    ...     _ = f.write("第一")
    >>> p.read_text(encoding="utf-8")
    '第一'
    """
    path = Path(path)
    if "w" not in mode:
        raise ValueError(f"atomic_write writes whole files (mode 'w' or 'wb'), not mode {mode!r}")
    if path.is_dir():
        raise OutputError(f"{path}: is a folder; give a file name for this output.")
    _make_parent(path)
    with output_lock(path) if lock else nullcontext():
        try:
            fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=path.parent)
        except OSError as err:
            raise _cannot_write(path, err) from None
        try:
            with os.fdopen(fd, mode, encoding=encoding, newline=newline) as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, _mode_for(path))
            os.replace(tmp, path)
        except BaseException:  # an error, Ctrl-C or exit: the previous file stays, the temporary one goes
            _remove(tmp)
            raise


def _remove(tmp: str | Path) -> None:
    try:
        os.remove(tmp)
    except FileNotFoundError:
        pass


def write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "w", encoding=encoding, newline="") as f:
        f.write(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path, "wb") as f:
        f.write(data)
    return Path(path)


@contextmanager
def staged_folder(folder: str | Path, *, last: Iterable[str] = ()) -> Iterator[Path]:
    """A new, empty staging folder beside ``folder`` to write files into. When the block ends without error
    its files are moved into ``folder`` (created if needed; files already there and not written stay), those
    named in ``last`` after the others; on error the staging folder is removed and ``folder`` is untouched.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file; a model is saved as a folder. Choose a new folder name.")
    _make_parent(folder)
    with output_lock(folder):
        try:
            stage = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{folder.name}-", dir=folder.parent))
        except OSError as err:
            raise _cannot_write(folder, err) from None
        try:
            yield stage
            try:
                _commit(stage, folder, list(last))
            except OSError as err:
                raise _cannot_write(folder, err) from None
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _commit(stage: Path, folder: Path, last: list[str]) -> None:
    names = sorted(p.name for p in stage.iterdir() if p.is_file())
    names = [n for n in names if n not in last] + [n for n in last if n in names]
    for name in names:
        os.chmod(stage / name, _mode_for(folder / name))
    if not folder.exists():
        os.chmod(stage, _mode_for(folder) | 0o111)
        try:
            os.rename(stage, folder)  # a new folder appears whole
            return
        except OSError:  # created meanwhile: move the files one by one
            folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        os.replace(stage / name, folder / name)


# -- outputs against inputs ----------------------------------------------------------------------------------
def _identity(path: Path) -> tuple[int, int] | str:
    """Device and inode of an existing file, else the resolved path."""
    try:
        st = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return st.st_dev, st.st_ino


def check_not_inputs(outputs: Mapping[str, str | Path | Iterable[str | Path]],
                     inputs: Iterable[str | Path], *, force: bool = False) -> None:
    """Refuse an output that is one of the ``inputs``, or the same file as another output.

    ``outputs`` maps the option that names each output (e.g. ``"--out"``) to the file(s) it writes. Files are
    compared by device and inode (:func:`os.stat`), so a different spelling, a symbolic or a hard link of an
    input is caught. ``force=True`` allows overwriting inputs (two outputs in one file are still refused).
    """
    seen: dict[tuple[int, int] | str, str] = {}
    for item in inputs:
        seen.setdefault(_identity(Path(item)), str(item))
    written: dict[tuple[int, int] | str, tuple[str, str]] = {}
    for option, paths in outputs.items():
        for path in [paths] if isinstance(paths, (str, Path)) else paths:
            ident = _identity(Path(path))
            if ident in written and written[ident] != (option, str(path)):
                other, first = written[ident]
                raise OutputError(f"{option} {path} and {other} {first} are the same file; give each output its "
                                  "own path.")
            written[ident] = (option, str(path))
            if ident in seen and not force:
                raise OutputError(
                    f"{option} {path} is the input {seen[ident]} (the same file); writing it would replace the "
                    "input. Choose another output path, or add --force to overwrite the input."
                )


def check_writable(path: str | Path, *, folder: bool = False) -> None:
    """Raise :class:`OutputError` when ``path`` (a file, or a folder with ``folder=True``) cannot be written:
    its nearest existing parent is a file or refuses a new file, or it exists as the wrong kind. Nothing is left
    behind."""
    path = Path(path)
    if path.exists():
        if folder and not path.is_dir():
            raise OutputError(f"{path} is a file; a model is saved as a folder. Choose a new folder name.")
        if not folder and path.is_dir():
            raise OutputError(f"{path}: is a folder; give a file name for this output.")
    probe = path if folder and path.is_dir() else _check_ancestor(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".probe", dir=probe)
    except OSError as err:
        raise _cannot_write(path, err) from None
    os.close(fd)
    _remove(tmp)
