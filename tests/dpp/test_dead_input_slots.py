"""scripts/dead_input_slots.py: the share of kept first-layer slots on always-zero inputs, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.load_file import load_module

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "dead_input_slots.py"


def load():
    return load_module(SCRIPT)


def test_share_counts_only_mixed_groups_by_hand() -> None:
    mod = load()
    n = 4
    # three groups of 4 inputs: all dead, mixed (inputs 4, 5 dead), all live
    dead = np.array([1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    kept = np.zeros((2, 12), dtype=bool)
    kept[0, [0, 4, 8]] = True  # row 0 keeps a dead input in the mixed group
    kept[1, [1, 6, 9]] = True  # row 1 keeps a live one
    share, chance, mixed = mod.dead_slot_share(kept, dead, n)
    assert mixed == 1
    assert share == pytest.approx(1 / 2)
    assert chance == pytest.approx(2 / 4)


def test_a_run_is_measured_and_a_conv_first_layer_refused(tmp_path, capsys) -> None:
    from dpp.train import TrainConfig, save_run, train

    mod = load()
    save_run(train(TrainConfig(model="lenet300", method="magnitude", k=1, n=8, epochs=1, seed=0)), tmp_path / "fc")
    assert mod.main([str(tmp_path / "fc")]) == 0
    out = capsys.readouterr().out
    assert "32 mixed groups" in out and "magnitude: " in out  # MNIST-5k: 127 always-zero pixels
    save_run(train(TrainConfig(model="digits", method="magnitude", k=1, n=4, epochs=1, seed=0)), tmp_path / "conv")
    assert mod.main([str(tmp_path / "conv")]) == 2
    assert "expected (rows, 64)" in capsys.readouterr().err
    assert mod.main([str(tmp_path / "nothere")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "is not a run folder" in err and len(err.strip().splitlines()) == 1
