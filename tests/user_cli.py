"""Run the CLI as a user does (a subprocess in the user's folder) and check a refusal is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def dpp(cwd: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``dpp ARGS`` run from ``cwd`` (``python -m analysis.cli``: the same entry point as the console script)."""
    return subprocess.run(
        [sys.executable, "-m", "analysis.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def assert_one_line(proc: subprocess.CompletedProcess, needle: str) -> None:
    """Exit 2 with exactly one ``error: ...`` line on stderr that contains ``needle``, and no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    assert "Traceback" not in proc.stderr
    assert needle in err, err
