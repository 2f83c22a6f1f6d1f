"""Sweeps with ``timing: {enabled, flows}``: the config section, point ids that stay when it is off, and the
timing columns of real sweep points with the tools replaced (Fmax reused across layers of one build, a design
that does not fit or whose tools stop recorded in its row)."""

import math
import re

import pytest

from analysis import sweep, timing
from analysis.sweep_config import parse_config
from dpp.errors import DPPError
from tests.analysis.test_timing import DATA, fake_tools

LAYERS = [{"name": "a", "rows": 4, "cols": 8}, {"name": "b", "rows": 3, "cols": 6}]


def config(**over):
    raw = {
        "name": "t",
        "seed": 3,
        "batch": 1,
        "grid": {"arch": ["kofn"], "k": [1], "n": [2], "pes": [1], "weight_bits": [4]},
        "layers": LAYERS,
        "hardware": {"max_rows": 4, "max_cols": 8, "max_batch": 1},
    }
    raw.update(over)
    return parse_config(raw)


def test_timing_section_defaults_and_errors():
    off = config()
    assert (off.timing_enabled, off.timing_flows, off.timing_timeout_s) == (False, ("ecp5",), 3600.0)
    assert "timing" not in off.to_dict()  # absent when off: folders of older sweeps still match their config
    on = config(timing={"enabled": True, "flows": ["ice40", "ecp5", "ice40"], "timeout_s": 60})
    assert on.timing_flows == ("ice40", "ecp5")
    assert on.to_dict()["timing"] == {"enabled": True, "flows": ["ice40", "ecp5"], "timeout_s": 60.0}
    assert config(timing=True).timing_enabled
    for bad, message in [
        ({"flows": ["vivado"]}, "timing.flows values must be one of ecp5, ice40, osu018 (got 'vivado')"),
        ({"enabled": "yes"}, "timing.enabled must be true or false (got 'yes')"),
        ({"timeout_s": 0}, "timing.timeout_s must be a number of seconds > 0 (got 0)"),
        ({"seed": 1}, "unknown key 'seed' in timing (expected one of enabled, flows, timeout_s)"),
        ("fast", "timing must be true/false or a mapping with enabled, flows, timeout_s"),
    ]:
        with pytest.raises(DPPError, match="^" + re.escape(message) + "$"):
            config(timing=bad)


def test_point_ids_do_not_change_while_timing_is_off():
    caps = {"model": True, "rtl": False, "verilog": True}
    plain = [pid for pid, _, _ in sweep.plan_jobs(config(), caps)[0]]
    assert [pid for pid, _, _ in sweep.plan_jobs(config(timing={"enabled": False}), caps)[0]] == plain
    on = sweep.plan_jobs(config(timing={"enabled": True, "timeout_s": 60}), caps)[0]
    assert not set(plain) & {pid for pid, _, _ in on}
    assert on[0][2]["timing_flows"] == ["ecp5"] and on[0][2]["timing_timeout_s"] == 60.0
    # without Verilog generation there is nothing to place
    assert "timing_flows" not in sweep.plan_jobs(config(timing=True), {**caps, "verilog": False})[0][0][2]


def test_sweep_rows_get_time_and_energy_at_the_designs_fmax(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    fake_tools(monkeypatch, calls, seed=timing.DEFAULT_SEED)
    cfg = config(timing={"enabled": True})
    table = sweep.run_sweep(
        cfg, tmp_path / "r", serial=True, progress=False, caps={"model": True, "rtl": False, "verilog": True}
    ).table
    assert calls == ["yosys", "nextpnr"]  # both layers run on one build: placed and routed once
    assert list(table["layer"]) == ["a", "b"]
    for _, row in table.iterrows():
        assert row["fmax_mhz"] == 65.05 and row["timing_ecp5_fmax_mhz"] == 65.05 and row["timing_ecp5_fits"]
        assert row["timing_message"] == "" and row["timing_ecp5_critical_path"]
        assert row["time_per_inference_s"] == row["cycles_per_inference"] / 65.05e6
        assert row["inferences_per_s"] == 1 / row["time_per_inference_s"]
        assert row["energy_per_inference_j"] == row["energy_per_inference_pj"] * 1e-12
        assert row["edp_js"] == row["energy_per_inference_j"] * row["time_per_inference_s"]
    # layer b is smaller: fewer cycles, less time at the same clock
    assert table["time_per_inference_s"].iloc[1] < table["time_per_inference_s"].iloc[0]


def test_a_design_that_does_not_fit_is_recorded_not_raised(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    fake_tools(monkeypatch, [], status=1, log=(DATA / "nextpnr_ice40_nofit.log").read_text(), seed=timing.DEFAULT_SEED)
    table = sweep.run_sweep(
        config(timing=True),
        tmp_path / "r",
        serial=True,
        progress=False,
        caps={"model": True, "rtl": False, "verilog": True},
    ).table
    row = table.iloc[0]
    assert math.isnan(row["fmax_mhz"]) and math.isnan(row["time_per_inference_s"]) and math.isnan(row["edp_js"])
    assert row["timing_message"] == "does not fit LFE5U-85F-6BG381C: ICESTORM_RAM 45/32"
    assert row["timing_ecp5_fits"] == False  # noqa: E712 - a stored bool, not a truth test
    assert row["energy_per_inference_j"] == row["energy_per_inference_pj"] * 1e-12  # energy needs no clock


def test_a_tool_that_stops_is_recorded_with_its_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    fake_tools(monkeypatch, [], seed=timing.DEFAULT_SEED)

    def too_slow(device, args, work, timeout_s):
        raise timing.ToolError(f"nextpnr-ecp5 did not finish within {timeout_s:.0f} s")

    monkeypatch.setattr(timing, "run_nextpnr", too_slow)
    cfg = config(timing={"enabled": True, "timeout_s": 5}, layers=LAYERS[:1])
    row = sweep.run_sweep(
        cfg, tmp_path / "r", serial=True, progress=False, caps={"model": True, "rtl": False, "verilog": True}
    ).table.iloc[0]
    assert math.isnan(row["fmax_mhz"]) and row["timing_ecp5_fits"] is None
    assert row["timing_message"] == "ecp5: nextpnr-ecp5 did not finish within 5 s"
    assert not list((tmp_path / "cache").glob("*.json"))  # not cached: a rerun tries again
