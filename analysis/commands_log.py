"""``RESULTS/commands.json``: the exact commands (and their parameters) that produced a results folder."""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dpp.serialize import atomic_write_text

COMMANDS_FILE = "commands.json"


def read_commands(results: str | os.PathLike) -> list[dict[str, Any]]:
    """The recorded commands, oldest first ([] when there is no file or it is unreadable)."""
    f = Path(results) / COMMANDS_FILE
    try:
        data = json.loads(f.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    return data if isinstance(data, list) else []


def record_command(
    results: str | os.PathLike, kind: str, params: dict[str, Any], argv: list[str] | None = None
) -> dict[str, Any]:
    """Append one entry ``{kind, command, params, cwd, utc}`` to ``RESULTS/commands.json`` (atomically)."""
    argv = list(sys.argv) if argv is None else argv
    if argv and Path(argv[0]).name in ("dpp", "cli.py", "__main__.py"):
        argv = ["dpp", *argv[1:]]
    entry = {
        "kind": kind,
        "command": shlex.join(argv),
        "params": params,
        "cwd": os.getcwd(),
        "utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    entries = read_commands(results) + [entry]
    atomic_write_text(Path(results) / COMMANDS_FILE, json.dumps(entries, indent=2, default=str) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.commands_log RESULTS KIND -- COMMAND...``: run COMMAND; on success record it."""
    import subprocess

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 4 or args[2] != "--":
        print("usage: python -m analysis.commands_log RESULTS KIND -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    results, kind, cmd = args[0], args[1], args[3:]
    rc = subprocess.call(cmd)
    if rc == 0:
        record_command(results, kind, {"argv": cmd}, argv=cmd)
    return rc


if __name__ == "__main__":
    sys.exit(main())
