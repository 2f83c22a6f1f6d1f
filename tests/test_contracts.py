"""Every public name docs/CONTRACTS.md spells out (``dpp.x.y``, ``rtl...``, ``sim...``, ``analysis...``) still
imports, except the file schemas it names (``schema `dpp.run```) and the names it lists as removed or gone
(with their replacement): a refactor that moves a name must keep the old path working or say so there."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

CONTRACTS = Path(__file__).resolve().parents[1] / "docs" / "CONTRACTS.md"
NAME = re.compile(r"`((?:dpp|rtl|sim|analysis)(?:\.[A-Za-z_]\w*)+)")


def resolves(dotted: str) -> bool:
    """True when the longest importable module prefix of ``dotted`` has the rest as attributes."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return False
        return True
    return False


def test_every_public_name_in_the_contracts_resolves() -> None:
    text = CONTRACTS.read_text("utf-8")
    schemas = set(re.findall(r"schema `([\w.]+)`", text))
    retired = {n for line in text.splitlines() if re.search(r"\b(removed|gone)\b", line) for n in NAME.findall(line)}
    names = set(NAME.findall(text)) - schemas - retired
    assert len(names) > 100  # the regex still finds the contract's names
    assert sorted(n for n in names if not resolves(n)) == []
    assert "analysis.sweep.capabilities" in retired and not resolves("analysis.sweep.capabilities")
