"""``dpp sim`` and ``dpp bench-sim`` as a user runs them (subprocesses of the installed entry point)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dpp.cli import app
from dpp.errors import SimulationError
from rtl.params import ArrayParams
from sim.model import predict_counters

#: the layer of the CLI tests: the builds of tests/sim/test_arrays.py CONFIGS "*_k2*" serve it (no extra builds)
LAYER = ["--k", "2", "--n", "4", "--pes", "3", "--rows", "20", "--cols", "40", "--batch", "3"]


def _dpp(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("dpp") or str(Path(sys.executable).with_name("dpp"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=900)


def test_sim_compare_json(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    r = _dpp("sim", "--arch", "kofn", *LAYER, "--seed", "1", "--compare", "--json", str(out))
    assert r.returncode == 0, r.stderr
    for word in ("bit-exact", "cycles (RTL)", "cycles (model)", "MAC utilisation", "weight_bits_read",
                 "index_bits_read", "act_bits_read", "out_bits_written", "kofn", "dense", "csr"):
        assert word in r.stdout
    res = json.loads(out.read_text())
    for key in ("bit_exact", "cycles", "model_cycles", "mac_ops", "weight_bits_read", "index_bits_read",
                "act_bits_read", "out_bits_written"):
        assert key in res
    assert res["bit_exact"] is True
    model = predict_counters(ArrayParams.from_dict(res["params"]), 20, 40, 3)
    assert res["cycles"] == res["model_cycles"] == model["cycles"]
    assert {k: res[k] for k in ("mac_ops", "weight_bits_read", "index_bits_read", "act_bits_read",
                                "out_bits_written")} == {k: model[k] for k in ("mac_ops", "weight_bits_read",
                                                                               "index_bits_read", "act_bits_read",
                                                                               "out_bits_written")}
    assert set(res["compare"]) == {"dense", "csr"}
    for arch, other in res["compare"].items():
        assert other["bit_exact"] and other["counters"] == other["model_counters"]
        assert res["cycle_ratio"][arch] == pytest.approx(res["cycles"] / other["cycles"])
    assert 0.5 <= res["cycle_ratio"]["dense"] < 0.55  # 2 of 4 kept: about half the dense cycles


def test_sim_bad_value_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    r = _dpp("sim", "--arch", "systolic", *LAYER, "--json", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == "error: arch must be one of kofn, dense, csr (got arch='systolic')"
    assert not out.exists()


def test_sim_mismatch_is_one_error_naming_row_and_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sim.run

    real = sim.run.linear_int
    monkeypatch.setattr(sim.run, "linear_int", lambda *a, **kw: real(*a, **kw) + np.eye(3, 20, dtype=np.int64))
    out = tmp_path / "res.json"
    r = CliRunner().invoke(app, ["sim", "--arch", "kofn", *LAYER, "--seed", "1", "--json", str(out)])
    assert isinstance(r.exception, SimulationError)
    assert str(r.exception).startswith("kofn array output mismatch at row 0, batch index 0: expected ")
    assert not out.exists() and not list(tmp_path.iterdir())


def test_sim_waves(tmp_path: Path) -> None:
    r = _dpp("sim", "--arch", "kofn", *LAYER, "--waves", "--waves-dir", str(tmp_path / "w"))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "w" / "dump.vcd").stat().st_size > 1000


def test_bench_sim_speed_and_arch_small(tmp_path: Path) -> None:
    r = _dpp("bench-sim", "speed", "--arch", "kofn", *LAYER, "--repeat", "2", "--json", str(tmp_path / "s.json"))
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["bit_exact"] and s["counters_match"] and s["run_cycles_per_second"] > 0
    # per run: the cycles counter + the harness's registered start + the cycle in which it sees done
    assert s["run_sim_cycles"] == 2 * (s["array_cycles"] + 2)
    r = _dpp("bench-sim", "arch", "--rows", "20", "--cols", "40", "--batch", "3", "--pes", "3",
             "--ratios", "2/4", "--json", str(tmp_path / "a.json"))
    assert r.returncode == 0, r.stderr
    (row,) = json.loads((tmp_path / "a.json").read_text())
    assert row["kofn"] == row["kofn_model"] and row["dense"] == row["dense_model"]
    assert row["csr"] == row["csr_model"]
    assert row["kofn_over_dense"] == pytest.approx(row["kofn"] / row["dense"])


def test_bench_sim_model() -> None:
    r = _dpp("bench-sim", "model", "--configs", "3000")
    assert r.returncode == 0, r.stderr
    assert "configs/s" in r.stdout
