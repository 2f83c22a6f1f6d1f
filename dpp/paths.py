"""User paths, resolved once where they enter and checked before any long work starts.

Every path a user gives (``--out``, ``--json``, a run folder, a config file) goes through one of these
functions at the command's entry: it becomes absolute (so nothing later depends on the current directory, and a
simulator running in its own work folder sees the same file), and an output location is proven writable by
creating and removing a probe file in the nearest existing folder. Nothing is created here: a command that fails
later leaves no empty folder behind.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from dpp.errors import PathError


def absolute(path: str | os.PathLike[str]) -> Path:
    """``path`` with ``~`` expanded, made absolute against the current directory (symlinks resolved)."""
    return Path(path).expanduser().resolve()


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(folder: Path, what: str) -> None:
    try:
        fd, probe = tempfile.mkstemp(prefix=".dpp-probe-", dir=folder)
    except OSError as exc:
        raise PathError(f"{what}: cannot write in {folder} ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def _check_creatable(folder: Path, what: str) -> None:
    """``folder`` exists as a folder or can be created: its nearest existing ancestor is a writable folder."""
    anc = _nearest_existing(folder)
    if not anc.is_dir():
        raise PathError(f"{what}: {anc} is a file, expected a folder")
    _probe_writable(anc, what)


def check_out_dir(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Absolute ``path`` if it is (or can be created as) a writable folder; else :class:`PathError`."""
    p = absolute(path)
    what = f"{option} {p}"
    if p.exists() and not p.is_dir():
        raise PathError(f"{what} is a file, expected a folder")
    _check_creatable(p, what)
    return p


def check_out_file(path: str | os.PathLike[str], option: str = "--json") -> Path:
    """Absolute ``path`` if a file can be written there (its folder writable, not itself a folder)."""
    p = absolute(path)
    what = f"{option} {p}"
    if p.is_dir():
        raise PathError(f"{what} is a folder, expected a file path")
    _check_creatable(p.parent, what)
    return p


def _check_exists(path: str | os.PathLike[str], option: str, folder: bool) -> Path:
    p = absolute(path)
    if not p.exists():
        raise PathError(f"{option} {p} does not exist")
    if p.is_dir() != folder:
        is_a, expected = ("file", "folder") if folder else ("folder", "file")
        raise PathError(f"{option} {p} is a {is_a}, expected a {expected}")
    return p


def check_in_file(path: str | os.PathLike[str], option: str) -> Path:
    """Absolute ``path`` if it is an existing file."""
    return _check_exists(path, option, folder=False)


def check_in_dir(path: str | os.PathLike[str], option: str) -> Path:
    """Absolute ``path`` if it is an existing folder."""
    return _check_exists(path, option, folder=True)


def describe_os_error(exc: OSError) -> str:
    """One line for an OS error: what failed, on which path, and why (no traceback)."""
    reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "") or str(exc)
    if exc.filename is None:
        return f"{reason} ({type(exc).__name__})" if str(exc) == reason else str(exc)
    target = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
    return f"{target}: {reason}"


__all__ = ["absolute", "check_out_dir", "check_out_file", "check_in_file", "check_in_dir", "describe_os_error"]
