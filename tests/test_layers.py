"""Dependencies point one way: dpp (format, reference, training) at the bottom, rtl and sim above it, analysis
and the CLI on top. A module importing a layer above its own (even inside a function) fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package -> the packages it must never import
FORBIDDEN = {"dpp": ("rtl", "sim", "analysis"), "rtl": ("sim", "analysis"), "sim": ("analysis",)}
#: leaf modules that nothing in the packages imports: the old import path of the command line (its import of
#: analysis.cli is deferred to first use) and the timing command until it joins the others in analysis/cli
LEAVES = ("dpp/cli.py", "dpp/commands/timing.py")


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every absolute import in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_package_imports_a_layer_above_it(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in LEAVES:
            continue
        bad += [
            f"{rel}:{line} imports {mod}" for line, mod in imports_of(path) if mod.split(".")[0] in FORBIDDEN[package]
        ]
    assert not bad, "\n".join(bad)


def test_the_scanner_sees_imports_inside_functions(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef f():\n    from sim.model import predict_counters\n    import rtl.params\n")
    assert imports_of(f) == [(1, "os"), (4, "sim.model"), (5, "rtl.params")]


def test_nothing_in_the_packages_imports_the_old_cli_path() -> None:
    users = [
        f"{p.relative_to(ROOT)}:{line}"
        for pkg in ("dpp", "rtl", "sim", "analysis")
        for p in (ROOT / pkg).rglob("*.py")
        for line, mod in imports_of(p)
        if mod == "dpp.cli" or mod.startswith("dpp.cli.")
    ]
    assert not users, users
