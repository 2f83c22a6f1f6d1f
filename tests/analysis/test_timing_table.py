"""The README's clock-frequency table (analysis.timing_table) with the tools replaced: its designs, the model's
cycles and energy per image, time = cycles / Fmax, a design that does not fit, the Markdown and the script."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from analysis import timing, timing_table
from tests.analysis.test_timing import DATA, TWO_PORT_V, fake_tools

pytest.importorskip("sim.model")


@pytest.fixture
def fake(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(
        "analysis.area.design_verilog",
        lambda p: TWO_PORT_V.replace("top", p.top_name).replace("input b;", f"input b; // {p.to_dict()}"),
    )  # one cache entry per design
    calls: list[str] = []
    fake_tools(monkeypatch, calls, seed=timing.DEFAULT_SEED)
    return calls


def test_designs_of_the_table():
    weights = timing_table.lenet300_weights()
    assert [w.shape for w in weights] == [(300, 784), (100, 300), (10, 100)]
    assert all(w.min() >= -8 and w.max() <= 7 for w in weights)  # 4-bit signed
    from rtl.archs import arch_named

    csr = [arch_named("csr").prune(w, 2, 8, 1, 4) for w in weights]
    p = timing_table.table_design("csr", 2, 8, csr)
    per_pe = [sum(int(np.asarray(m.row_lengths())[pe::8].sum()) for m in csr[:1]) for pe in range(8)]
    assert p.max_nnz == max(per_pe) and (p.max_rows, p.max_cols, p.max_batch, p.pes) == (300, 784, 1, 8)
    assert timing_table.table_design("csr_banked", 2, 8, csr).act_banks == 32  # 2x the 16 lanes
    kofn = timing_table.table_design("kofn", 4, 8, weights)
    assert (kofn.arch, kofn.k, kofn.n, kofn.weight_bits, kofn.act_bits, kofn.max_nnz) == ("kofn", 4, 8, 4, 8, 0)
    with pytest.raises(ValueError, match="array must be one of kofn, dense, csr, csr_banked"):
        timing_table.table_design("sparse", 1, 8, weights)


def test_table_rows_time_each_design_at_its_fmax(fake):
    from sim.model import predict_counters

    rows = timing_table.lenet300_table(kn=((1, 8),))
    assert [r.array for r in rows] == ["kofn", "dense", "csr", "csr_banked"] and len(fake) == 2 * 4
    kofn = rows[0]
    params = timing_table.table_design("kofn", 1, 8, timing_table.lenet300_weights())
    want = sum(predict_counters(params, r, c, 1)["cycles"] for _, r, c in timing_table.LENET300_LAYERS)
    assert kofn.cycles_per_image == want and kofn.fmax_mhz == 65.05
    assert kofn.time_per_image_s == want / 65.05e6 and kofn.critical_path == "requantiser"
    assert kofn.edp_js == kofn.energy_per_image_j * kofn.time_per_image_s and kofn.energy_per_image_j > 0
    dense = rows[1]
    assert (
        dense.cycles_per_image > kofn.cycles_per_image
        and dense.time_vs_kofn == dense.time_per_image_s / kofn.time_per_image_s
    )
    md = timing_table.table_markdown(rows).splitlines()
    assert md[0].startswith("| k/n | array | Fmax (MHz) | cycles / image | time / image (µs) |")
    assert md[2] == (
        f"| 1/8 | k-of-n | 65.0 | {want} | {want / 65.05:.1f} | {kofn.energy_per_image_j * 1e9:.1f} | "
        f"1.00× | 1211 / 3 / 0 | requantiser |"
    )
    assert json.loads(json.dumps(timing_table.rows_json(rows)))[1]["array"] == "dense"
    assert len(fake) == 8
    timing_table.lenet300_table(kn=((1, 8),))  # cached: no tool runs again
    assert len(fake) == 8


def test_a_design_that_does_not_fit_is_a_row_with_its_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("analysis.area.design_verilog", lambda p: TWO_PORT_V.replace("top", p.top_name))
    fake_tools(monkeypatch, [], status=1, log=(DATA / "nextpnr_ice40_nofit.log").read_text(), seed=timing.DEFAULT_SEED)
    (row,) = timing_table.lenet300_table(kn=((2, 8),), arrays=("csr",))
    assert not row.fits and math.isnan(row.fmax_mhz) and math.isnan(row.time_per_image_s)
    assert row.message == "does not fit LFE5U-85F-6BG381C: ICESTORM_RAM 45/32" and row.energy_per_image_j > 0
    assert timing_table.table_markdown([row]).splitlines()[2] == (
        f"| 2/8 | CSR, replicas | – | {row.cycles_per_image} | – | {row.energy_per_image_j * 1e9:.1f} | – | – | "
        f"does not fit LFE5U-85F-6BG381C: ICESTORM_RAM 45/32 |"
    )


def test_a_design_recorded_as_unrouted_is_reported_without_tools_unless_retried(monkeypatch, tmp_path):
    monkeypatch.setenv("DPP_TIMING_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("analysis.area.design_verilog", lambda p: TWO_PORT_V.replace("top", p.top_name))
    calls: list[str] = []
    fake_tools(monkeypatch, calls, seed=timing.DEFAULT_SEED, router="router2")  # asserts nextpnr got router2
    assert set(timing_table.TABLE_UNROUTED) == {("csr_banked", 4, 8)}
    (row,) = timing_table.lenet300_table(kn=((4, 8),), arrays=("csr_banked",), router="router2")
    assert calls == [] and not row.fits and math.isnan(row.fmax_mhz) and row.cycles_per_image > 0
    assert row.message == timing_table.TABLE_UNROUTED[("csr_banked", 4, 8)]
    assert "does not route on LFE5U-85F" in timing_table.table_markdown([row]).splitlines()[2]
    (tried,) = timing_table.lenet300_table(kn=((4, 8),), arrays=("csr_banked",), router="router2", retry_unrouted=True)
    assert calls == ["yosys", "nextpnr"] and tried.fits and tried.router == "router2"
    assert timing_table.table_markdown([tried]).splitlines()[2].endswith("| requantiser (nextpnr router2) |")
    with pytest.raises(ValueError, match="router must be one of router1, router2"):
        timing_table.lenet300_table(kn=((1, 8),), arrays=("kofn",), router="router9")


def test_script_refuses_bad_options_in_one_line(tmp_path):
    (tmp_path / "d").mkdir()
    for args, needle in (
        (["--json", str(tmp_path / "d")], "is a folder"),
        (["--timeout", "0"], "--timeout must"),
        (["--router", "fast"], "router must be one of"),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "analysis.timing_table", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={"DPP_TIMING_CACHE": str(tmp_path / "c"), "PATH": ""},
        )
        assert proc.returncode == 2 and proc.stderr.startswith("error: ") and needle in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and not (tmp_path / "c").exists()
