"""Checks every command shares, so the same bad value gets the same one-line message everywhere."""

from __future__ import annotations

from pathlib import Path

from dpp.checks import check_int
from dpp.errors import PathError
from dpp.paths import check_out_dir


def check_threads(threads: int) -> int:
    """``--threads``: at least 1."""
    return check_int("--threads", threads, lo=1)


def check_new_run_dir(out: Path, force: bool, marker: str = "result.json", option: str = "--out") -> Path:
    """``out`` checked writable; refused when it already holds a finished result (``marker``) unless ``force``."""
    path = check_out_dir(out, option)
    if (path / marker).exists() and not force:
        raise PathError(f"{option} {path} already holds {marker}: pass --force to overwrite it, or choose a new folder")
    return path
