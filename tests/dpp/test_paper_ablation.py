"""scripts/paper_ablation.py: each variant is the paper recipe with one option changed, on the study's split."""

from __future__ import annotations

import json
from pathlib import Path

from tests.load_file import load_module

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "paper_ablation.py"


def load():
    return load_module(SCRIPT)


def test_variants_change_one_option_and_runs_are_recorded(tmp_path, capsys) -> None:
    mod = load()
    assert mod.VARIANTS["paper recipe"] == {} and all(
        len(v) == 1 for k, v in mod.VARIANTS.items() if k != "paper recipe"
    )
    out = tmp_path / "a.json"
    assert mod.main(["--model", "digits", "--granularity", "weight", "--k", "1", "--n", "4", "--seeds", "0",
                     "--variants", "paper recipe,no entropy regulariser", "--out", str(out)]) == 0  # fmt: skip
    doc = json.loads(out.read_text())
    assert [r["variant"] for r in doc["runs"]] == ["paper recipe", "no entropy regulariser"]
    assert all(0.0 <= r["val_accuracy"] <= 1.0 and r["epochs"] == 40 for r in doc["runs"])
    table = capsys.readouterr().out
    assert table.count("\n| ") == 2 and "| paper recipe | " in table


def test_unknown_variant_is_one_line(tmp_path, capsys) -> None:
    assert load().main(["--variants", "nope", "--out", str(tmp_path / "a.json")]) == 2
    assert capsys.readouterr().err.startswith("error: unknown variant 'nope'")
    assert not (tmp_path / "a.json").exists()
