"""``--layers`` on ``dpp train`` and ``dpp compare``: only the named modules are pruned, the others stay dense
(e.g. a MobileNet's depthwise convolutions), recorded in the run; an unknown name or ``--layers`` with
``--preset`` is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

from tests.user_cli import assert_one_line, dpp


def test_train_prunes_only_the_layers_named(tmp_path: Path) -> None:
    proc = dpp(tmp_path, "train", "--model", "digits", "--method", "magnitude", "--k", "1", "--n", "4",
               "--epochs", "2", "--layers", "4", "--out", "run")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["pruned_layers"] == ["4"] and result["dense_layers"] == ["0", "6"]
    # density over every weight: layer 4 keeps 1 of 4, layers 0 and 6 keep everything
    total = 16 * 9 + 64 * 256 + 10 * 64
    assert result["density"] == (16 * 9 + 64 * 256 // 4 + 10 * 64) / total


def test_compare_passes_the_layers_to_every_sparse_method(tmp_path: Path) -> None:
    proc = dpp(tmp_path, "compare", "--model", "digits", "--methods", "magnitude,random", "--grid", "1/4",
               "--seeds", "0", "--epochs", "2", "--dpp-bits", "", "--layers", "4", "--out", "c")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads((tmp_path / "c" / "compare.json").read_text())["rows"]
    total = 16 * 9 + 64 * 256 + 10 * 64
    assert [r["density"] for r in rows] == [(16 * 9 + 64 * 256 // 4 + 10 * 64) / total] * 2


def test_unknown_layer_and_layers_with_a_preset_are_one_line(tmp_path: Path) -> None:
    proc = dpp(tmp_path, "train", "--model", "digits", "--epochs", "1", "--layers", "4,nope", "--out", "run")
    assert proc.returncode == 2 and "error: layer 'nope' not found in the model" in proc.stderr
    assert not (tmp_path / "run").exists()
    assert_one_line(dpp(tmp_path, "compare", "--preset", "paper", "--layers", "4", "--out", "c"),
                    "--layers applies without --preset")  # fmt: skip
    assert_one_line(dpp(tmp_path, "train", "--model", "digits", "--layers", "4,,6", "--out", "r2"),
                    "expected comma-separated module names")  # fmt: skip
