"""The flow's clock (``dpp flow --timing``): each layer timed at its own build's Fmax, a build without an Fmax
named with its reason, the report's time columns and time-vs-density figure; a real digits flow (slow)."""

import math

import pandas as pd
import pytest

from analysis import flow, timing
from analysis import report_data as rd
from analysis.report import _flow_timing
from analysis.report_render import Section
from tests.analysis.test_timing import TWO_PORT_V, fake_tools


def record(arch: str, layer: int, cycles: int, out_bits: int, mac_ops: int = 10, rows: int = 4, cols: int = 8):
    design = {"arch": arch, "block": 1, "out_bits": out_bits}
    zero = dict.fromkeys(
        (
            "model_cycles",
            "lane_idle_cycles",
            "weight_bits_read",
            "index_bits_read",
            "act_bits_read",
            "out_bits_written",
            "storage_bits",
        ),
        0,
    )
    return flow.LayerRecord(
        arch=arch,
        array=arch,
        layer=layer,
        kind="linear",
        rows=rows,
        cols=cols,
        batch=2,
        bit_exact=True,
        counters_match=True,
        cycles=cycles,
        mac_ops=mac_ops,
        utilisation=1.0,
        energy_pj=0.0,
        sim_seconds=0.0,
        design=design,
        **zero,
    )


TIMED = {
    "kofn:kofn/1/8": {
        "fits": True,
        "fmax_mhz": 50.0,
        "reason": "",
        "part": "LFE5U-85F-6BG381C",
        "critical_path": {"parts": ["activation memory", "index mux", "multiplier"]},
    },
    "kofn:kofn/1/32": {
        "fits": True,
        "fmax_mhz": 100.0,
        "reason": "",
        "part": "LFE5U-85F-6BG381C",
        "critical_path": {"parts": ["requantiser"]},
    },
    "csr:csr/1/8": {
        "fits": False,
        "fmax_mhz": None,
        "reason": "does not fit LFE5U-85F-6BG381C: DP16KD 240/208",
        "part": "LFE5U-85F-6BG381C",
        "critical_path": None,
    },
}


def test_each_layer_runs_at_its_own_builds_clock():
    recs = [record("kofn", 0, 5000, 8), record("kofn", 1, 1000, 8), record("kofn", 2, 400, 32)]
    assert recs[2].design["out_bits"] == 32 and flow.design_name(recs[2]) == "kofn:kofn/1/32"
    t, reason = flow.time_per_image(recs, TIMED, images=2)
    assert reason == "" and t == (6000 / 50e6 + 400 / 100e6) / 2
    s = flow.timing_summary(recs, TIMED, 2, energy_per_image_pj=3e6)
    assert s["fmax_mhz"] == 50.0 and s["critical_path"] == "activation memory > index mux > multiplier"
    assert s["time_per_image_s"] == t and s["images_per_s"] == 1 / t and s["energy_per_image_j"] == 3e-6
    assert s["edp_js"] == 3e-6 * t and s["timing_message"] == ""


def test_a_build_without_fmax_gives_no_time_and_says_why():
    recs = [record("csr", 0, 5000, 8), record("csr", 1, 1000, 8), record("csr", 2, 400, 32)]
    t, reason = flow.time_per_image(recs, TIMED, images=2)
    assert math.isnan(t)
    assert reason == (
        "csr:csr/1/8: does not fit LFE5U-85F-6BG381C: DP16KD 240/208; csr:csr/1/32: not placed and routed"
    )
    s = flow.timing_summary(recs, TIMED, 2, energy_per_image_pj=1e6)
    assert s["time_per_image_s"] is None and s["edp_js"] is None and s["fmax_mhz"] is None
    assert s["energy_per_image_j"] == 1e-6 and s["timing_message"] == reason


def test_timing_of_designs_with_the_tools_replaced(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path))
    calls: list[str] = []
    fake_tools(monkeypatch, calls, seed=timing.DEFAULT_SEED)
    monkeypatch.setattr("analysis.area.design_verilog", lambda p: TWO_PORT_V.replace("top", p.top_name))
    params = {
        "arch": "kofn",
        "k": 1,
        "n": 2,
        "pes": 1,
        "weight_bits": 4,
        "act_bits": 8,
        "out_bits": 8,
        "max_rows": 4,
        "max_cols": 8,
        "max_batch": 1,
    }
    logs: list[str] = []
    out = flow.timing_of_designs({"kofn:kofn/1/8": params}, logs.append)
    assert calls == ["yosys", "nextpnr"] and out["kofn:kofn/1/8"]["fmax_mhz"] == 65.05
    assert out["kofn:kofn/1/8"]["reason"] == "" and not out["kofn:kofn/1/8"]["counters"]
    assert logs == ["kofn:kofn/1/8: Fmax 65.05 MHz on LFE5U-85F-6BG381C, critical path through requantiser"]


def timed_flow() -> dict:
    layers = [
        record("kofn", 0, 5000, 8, mac_ops=16),
        record("dense", 0, 20000, 8, mac_ops=64),
        record("csr", 0, 6000, 8, mac_ops=15),
    ]
    archs = {
        "kofn": {
            "cycles_per_image": 2500,
            "energy_per_image_pj": 1e5,
            "time_per_image_s": 5e-5,
            "fmax_mhz": 50.0,
            "timing_message": "",
        },
        "dense": {
            "cycles_per_image": 10000,
            "energy_per_image_pj": 4e5,
            "time_per_image_s": 2.5e-4,
            "fmax_mhz": 40.0,
            "timing_message": "",
        },
        "csr": {
            "cycles_per_image": 3000,
            "energy_per_image_pj": 2e5,
            "time_per_image_s": None,
            "fmax_mhz": None,
            "timing_message": "csr:csr/1/8: does not fit LFE5U-85F-6BG381C: DP16KD 240/208",
        },
    }
    from dataclasses import asdict

    return {
        "archs": archs,
        "layers": [asdict(r) for r in layers],
        "images": 2,
        "config": {"k": 1, "n": 4},
        "timing": {"kofn:kofn/1/8": TIMED["kofn:kofn/1/8"], "csr:csr/1/8": TIMED["csr:csr/1/8"]},
    }


def test_report_tables_of_a_timed_flow():
    f = timed_flow()
    points = rd.flow_time_vs_density(f).set_index("arch")
    assert points.loc["kofn", "density"] == 16 / 64 and points.loc["dense", "density"] == 1.0
    assert points.loc["csr", "density"] == 15 / 64 and points.loc["kofn", "time_per_image_s"] == 5e-5
    head = rd.headline_table(f).set_index("arch")
    assert head.loc["dense", "time_vs_kofn"] == 5.0 and math.isnan(head.loc["csr", "time_vs_kofn"])
    builds = rd.flow_timing(f)
    assert list(builds["design"]) == ["kofn:kofn/1/8", "csr:csr/1/8"]
    assert builds["critical_path"].tolist() == ["activation memory > index mux > multiplier", ""]
    assert builds["reason"].iloc[1] == "does not fit LFE5U-85F-6BG381C: DP16KD 240/208"
    s = Section("flow", "flow")
    _flow_timing(s, f)
    assert [fig.name for fig in s.figures] == ["flow_time_vs_density"] and s.figures[0].png[:4] == b"\x89PNG"
    assert s.tables[0][0] == "flow_timing"
    assert s.text[-1] == "No time per image for CSR: csr:csr/1/8: does not fit LFE5U-85F-6BG381C: DP16KD 240/208."


def test_report_of_an_untimed_flow_says_how_to_time_it():
    f = {**timed_flow(), "timing": {}}
    assert rd.flow_timing(f) is None and rd.flow_time_vs_density(f) is None
    assert "time_per_image_s" not in rd.headline_table(f).columns
    s = Section("flow", "flow")
    _flow_timing(s, f)
    assert not s.figures and not s.tables and s.text[0].startswith("Clock frequency: not measured (`dpp flow --timing`")


def test_network_table_sums_time_over_layers():
    rows = []
    for layer, cyc, t in (("a", 100, 2e-6), ("b", 50, float("nan"))):
        rows.append(
            {
                "arch": "kofn",
                "k": 1,
                "n": 4,
                "pes": 2,
                "weight_bits": 8,
                "act_bits": 8,
                "out_bits": 8,
                "batch": 1,
                "block": 1,
                "layer": layer,
                "cycles_per_inference": cyc,
                "energy_per_inference_pj": 10.0,
                "time_per_inference_s": t,
            }
        )
    nets = rd.network_table(pd.DataFrame(rows[:1]))
    assert nets["time_per_inference_s"].iloc[0] == 2e-6
    assert math.isnan(rd.network_table(pd.DataFrame(rows))["time_per_inference_s"].iloc[0])  # a layer without Fmax


@pytest.mark.slow
def test_digits_flow_with_timing(tmp_path, monkeypatch):
    """The tiny digits network through the RTL with every build placed and routed on ECP5 (real tools)."""
    pytest.importorskip("torch")
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    cfg = flow.FlowConfig(model="digits", k=1, n=4, bits=4, epochs=1, images=8, pes=2, timing=True)
    result = flow.run_flow(cfg, tmp_path / "r", log=lambda m: None)
    assert set(result["timing"]) == set(result["designs"])
    for arch, s in result["archs"].items():
        recs = [flow.LayerRecord(**r) for r in result["layers"] if r["arch"] == arch]
        assert s["time_per_image_s"] == pytest.approx(flow.time_per_image(recs, result["timing"], 8)[0], rel=1e-12)
        assert s["fmax_mhz"] > 0 and s["timing_message"] == ""
    html = (tmp_path / "r" / "report" / "report.html").read_text()
    assert "flow_time_vs_density" in html and "Place-and-route of each build" in html
