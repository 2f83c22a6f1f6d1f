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

from analysis.cli import app
from dpp.errors import SimulationError
from rtl.params import ArrayParams
from sim.model import predict_counters

#: the layer of the CLI tests: the builds of tests/sim/test_arrays.py CONFIGS "*_k2*" serve it (no extra builds)
LAYER = ["--k", "2", "--n", "4", "--pes", "3", "--rows", "20", "--cols", "40", "--batch", "3"]


def _dpp(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = shutil.which("dpp") or str(Path(sys.executable).with_name("dpp"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=900, cwd=cwd)


def _bench_arch(tmp_path: Path, act_banks: str) -> tuple[subprocess.CompletedProcess, dict]:
    """``dpp bench-sim arch`` on the CLI tests' layer at 2/4 with ``--act-banks``: the run and its one JSON row."""
    r = _dpp(
        "bench-sim",
        "arch",
        "--rows",
        "20",
        "--cols",
        "40",
        "--batch",
        "3",
        "--pes",
        "3",
        "--ratios",
        "2/4",
        "--act-banks",
        act_banks,
        "--json",
        str(tmp_path / "a.json"),
    )
    assert r.returncode == 0, r.stderr
    (row,) = json.loads((tmp_path / "a.json").read_text())
    return r, row


def test_sim_compare_json(tmp_path: Path) -> None:
    out = tmp_path / "res.json"
    r = _dpp("sim", "--arch", "kofn", *LAYER, "--seed", "1", "--compare", "--json", str(out))
    assert r.returncode == 0, r.stderr
    for word in (
        "bit-exact",
        "cycles (RTL)",
        "cycles (model)",
        "MAC utilisation",
        "weight_bits_read",
        "index_bits_read",
        "act_bits_read",
        "out_bits_written",
        "kofn",
        "dense",
        "csr",
    ):
        assert word in r.stdout
    res = json.loads(out.read_text())
    for key in (
        "bit_exact",
        "cycles",
        "model_cycles",
        "mac_ops",
        "weight_bits_read",
        "index_bits_read",
        "act_bits_read",
        "out_bits_written",
    ):
        assert key in res
    assert res["bit_exact"] is True
    model = predict_counters(ArrayParams.from_dict(res["params"]), 20, 40, 3)
    assert res["cycles"] == res["model_cycles"] == model["cycles"]
    assert {
        k: res[k] for k in ("mac_ops", "weight_bits_read", "index_bits_read", "act_bits_read", "out_bits_written")
    } == {k: model[k] for k in ("mac_ops", "weight_bits_read", "index_bits_read", "act_bits_read", "out_bits_written")}
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


def test_sim_waves_and_json_with_relative_paths(tmp_path: Path) -> None:
    """From a user's folder, the default --waves-dir (relative) and a relative --json (the simulator runs in its
    own work folder, so a path left relative would point inside it)."""
    r = _dpp("sim", "--arch", "kofn", *LAYER, "--waves", "--json", "out/res.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "sim_waves" / "dump.vcd").stat().st_size > 1000
    assert json.loads((tmp_path / "out" / "res.json").read_text())["bit_exact"] is True


def test_bench_sim_speed_and_arch_small(tmp_path: Path) -> None:
    r = _dpp(
        "bench-sim",
        "speed",
        "--arch",
        "kofn",
        *LAYER,
        "--repeat",
        "2",
        "--min-seconds",
        "0",
        "--json",
        str(tmp_path / "s.json"),
    )
    assert r.returncode == 0, r.stderr
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["bit_exact"] and s["counters_match"] and s["run_cycles_per_second"] > 0
    # per run: the cycles counter + the harness's registered start + the cycle in which it sees done
    assert s["run_sim_cycles"] == 2 * (s["array_cycles"] + 2)
    r, row = _bench_arch(tmp_path, "0")
    assert "csr_banked" not in row and "act_banks" not in row and "csr banked" not in r.stdout
    assert row["kofn"] == row["kofn_model"] and row["dense"] == row["dense_model"]
    assert row["csr"] == row["csr_model"]
    assert row["kofn_over_dense"] == pytest.approx(row["kofn"] / row["dense"])


def test_bench_sim_model() -> None:
    r = _dpp("bench-sim", "model", "--configs", "3000", "--banked-configs", "20")
    assert r.returncode == 0, r.stderr
    assert "configs/s" in r.stdout and "banked CSR model" in r.stdout


def test_sim_compare_with_banked_csr(tmp_path: Path) -> None:
    """--act-banks with --compare adds csr_banked next to the replicated csr (builds of tests/sim/test_arrays.py)."""
    out = tmp_path / "res.json"
    r = _dpp("sim", "--arch", "kofn", *LAYER, "--seed", "2", "--compare", "--act-banks", "4", "--json", str(out))
    assert r.returncode == 0, r.stderr
    assert "csr_banked (4 banks)" in r.stdout
    res = json.loads(out.read_text())
    assert set(res["compare"]) == {"dense", "csr", "csr_banked"} and res["act_banks"] == 0
    banked, csr = res["compare"]["csr_banked"], res["compare"]["csr"]
    assert banked["params"]["act_banks"] == 4 and csr["params"]["act_banks"] == 0
    assert banked["bit_exact"] and banked["counters"] == banked["model_counters"]
    assert banked["cycles"] >= csr["cycles"]  # same streams, plus bank-conflict stalls
    assert banked["mac_ops"] == csr["mac_ops"] and banked["act_bits_read"] <= csr["act_bits_read"]


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--arch", "csr", "--act-banks", "3"],
            "error: act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=3)",
        ),
        (
            ["--arch", "kofn", "--act-banks", "4"],
            "error: act_banks applies to the CSR array: use --arch csr, or "
            "--compare to run the banked CSR next to kofn (got act_banks=4 for "
            "arch='kofn')",
        ),
        (
            ["--arch", "kofn", "--compare", "--act-banks", "-4"],
            "error: act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=-4)",
        ),
    ],
)
def test_sim_bad_act_banks_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "res.json"
    r = _dpp("sim", *args, *LAYER, "--json", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == message
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bench_sim_arch_banked_columns(tmp_path: Path) -> None:
    r, row = _bench_arch(tmp_path, "4")
    assert "csr banked cycles" in r.stdout and "csr_banked/kofn" in r.stdout
    assert row["act_banks"] == 4 and row["csr_banked"] == row["csr_banked_model"]
    assert row["csr_banked_over_kofn"] == pytest.approx(row["csr_banked"] / row["kofn"])
    for key in ("kofn", "dense", "csr", "csr_over_kofn", "kofn_over_dense", "csr_row_nnz_max_over_mean"):
        assert key in row


@pytest.mark.parametrize(
    "spec,message",
    [
        ("3", "error: act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=3)"),
        (
            "lots",
            "error: act_banks must be 0, a power of two or a multiple of the lanes such as 2x (got act_banks='lots')",
        ),
    ],
)
def test_bench_sim_bad_act_banks_is_one_line(tmp_path: Path, spec: str, message: str) -> None:
    out = tmp_path / "a.json"
    r = _dpp("bench-sim", "arch", "--rows", "20", "--cols", "40", "--pes", "3", "--act-banks", spec, "--json", str(out))
    assert r.returncode == 2
    assert r.stderr.strip() == message
    assert not out.exists()


def test_parse_act_banks() -> None:
    from sim.workloads import parse_act_banks

    assert [parse_act_banks(s, 16) for s in ("0", "32", "1x", "2x", "4X", " 2x ")] == [0, 32, 16, 32, 64, 32]
    assert parse_act_banks("2x", 6) == 16  # rounded up to a power of two
