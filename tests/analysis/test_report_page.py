"""Report: files exist, carry the input table's numbers, and degrade to "no data" without crashing."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from analysis.cli import app
from analysis.report import build_report, fmt
from analysis.report_render import energy, ratio


def sweep_table() -> pd.DataFrame:
    """A sweep-shaped input table (values chosen by hand so the derived numbers are known)."""
    base = dict(layer="fc1", rows=32, cols=64, pes=4, weight_bits=8, act_bits=8, out_bits=8, batch=2, n=4)
    rows = []
    for i, (arch, k, block, cycles, e_pj, bits, bound) in enumerate(
        [
            ("kofn", 1, 1, 250, 1234.5, 10.0, 10.0),
            ("kofn", 2, 1, 500, 2222.25, 10.0, 9.29248),
            ("csr", 1, 1, 700, 3000.0, 14.6445, 11.2341),
            ("csr", 2, 1, 1100, 4100.0, 13.5, 10.9),
            ("dense", 1, 1, 1000, 5000.0, 8.0, 8.0),
            ("dense", 2, 1, 1000, 5000.0, 8.0, 8.0),
        ]
    ):
        rows.append(
            {
                **base,
                "point_id": f"p{i}",
                "arch": arch,
                "k": k,
                "block": block,
                "cycles": cycles,
                "density": k / 4 if arch != "dense" else 1.0,
                "bits_per_kept_weight": bits,
                "bound_bits_per_kept_weight": bound,
                "bits_per_dense_weight": bits * k / 4,
                "storage_total_bits": int(bits * 512 * k),
                "energy_per_inference_pj": e_pj / 2,
                "energy_total_pj": e_pj,
                "energy_mac_mult_pj": e_pj * 0.25,
                "energy_weight_read_pj": e_pj * 0.75,
                "area_ice40_luts": 100 * (i + 1),
            }
        )
    return pd.DataFrame(rows)


def make_results(root):
    root.mkdir(parents=True, exist_ok=True)
    sweep_table().to_csv(root / "sweep.csv", index=False)
    for name, method, k, acc, conf in (
        ("dpp_k1", "dpp", 1, 0.8765, [0.1, 0.5, 0.9]),
        ("dpp_k2", "dpp", 2, 0.9432, [0.2, 0.6, 0.95]),
        ("dense", "dense", 1, 0.9811, None),
    ):
        run = root / "runs" / name
        run.mkdir(parents=True)
        (run / "result.json").write_text(
            json.dumps(
                dict(
                    schema="dpp.run",
                    model="digits",
                    method=method,
                    k=k,
                    n=4,
                    granularity="weight",
                    test_accuracy=acc,
                    density=1.0 if method == "dense" else k / 4,
                )
            )
        )
        (run / "config.json").write_text(json.dumps(dict(model="digits", method=method, k=k, n=4, epochs=3, lr=0.001)))
        if conf:
            pd.DataFrame(
                {
                    "epoch": [0, 1, 2],
                    "test_accuracy": [0.5, 0.7, acc],
                    "conf_layer0": conf,
                    "div_layer0": [0.9, 0.6, 0.3 + 0.01 * k],
                }
            ).to_csv(run / "metrics.csv", index=False)
    (root / "commands.json").write_text(
        json.dumps(
            [
                {
                    "kind": "sweep",
                    "command": "dpp sweep cfg.yaml --out R",
                    "params": {"grid": {"k": [1, 2]}},
                    "cwd": "/x",
                    "utc": "2026-01-01T00:00:00+00:00",
                },
                {
                    "kind": "train",
                    "command": "dpp train --method dpp --k 1 --out R/runs/dpp_k1",
                    "params": {"k": 1},
                    "cwd": "/x",
                    "utc": "2026-01-01T00:00:00+00:00",
                },
            ]
        )
    )
    return root


def test_report_contains_the_input_numbers(tmp_path):
    res = build_report(make_results(tmp_path / "R"), tmp_path / "REP", report_command="dpp report R --out REP")
    page = res.html.read_text()
    md = res.markdown.read_text()
    assert [s.anchor for s in res.sections if s.no_data] == ["flow"]  # this folder has no flow.json
    for text in (page, md):
        # accuracy of every run, speed-ups computed from the cycles: 1000/250, 700/250, 1000/500, 1100/500
        for v in ("87.65 %", "94.32 %", "98.11 %", ratio(4.0), ratio(2.8), ratio(2.0), ratio(2.2)):
            assert v in text
        assert fmt(9.29248) in text and fmt(14.6445) in text  # bound and CSR bits per kept weight
        assert energy(1234.5 / 2) == "617 pJ" and energy(1234.5 / 2) in text  # energy per inference, 1st point
        assert "dpp sweep cfg.yaml --out R" in text and "dpp train --method dpp --k 1 --out R/runs/dpp_k1" in text
        assert "dpp report R --out REP" in text
    speed = pd.read_csv(tmp_path / "REP" / "tables" / "speedup.csv")
    assert speed.set_index("k")["speedup_vs_dense"].to_dict() == {1: 4.0, 2: 2.0}
    # Pareto front, accuracy vs energy: dpp k=1 (617.25 pJ, 0.8765), dpp k=2 (1111.125, 0.9432) and both dense
    # points (2500, 0.9811: equal, so neither dominates); the CSR points carry no accuracy
    front = pd.read_csv(tmp_path / "REP" / "tables" / "pareto_energy_per_inference_pj.csv")
    assert list(front["accuracy"]) == [0.8765, 0.9432, 0.9811, 0.9811]
    assert list(front["arch"]) == ["kofn", "kofn", "dense", "dense"]
    per_layer = pd.read_csv(tmp_path / "REP" / "tables" / "energy.csv")
    # components are stored per layer run (batch 2) and reported per inference; they add up to the total
    assert per_layer[["mac_mult_pj", "weight_read_pj"]].sum(axis=1).tolist() == pytest.approx(
        per_layer["energy_per_inference_pj"].tolist()
    )
    assert energy(1234.5 * 0.25 / 2) in page
    final = pd.read_csv(tmp_path / "REP" / "tables" / "mask_metrics_final.csv")
    assert set(zip(final.run, final.confidence)) == {("dpp_k1", 0.9), ("dpp_k2", 0.95)}
    # plots are embedded, so the HTML is self-contained; the Markdown links the PNG files
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(imgs) >= 7 and "src='figures" not in page
    for name in re.findall(r"\(figures/([^)]+)\)", md):
        assert (tmp_path / "REP" / "figures" / name).stat().st_size > 1000


def test_empty_results_degrade_to_no_data(tmp_path):
    (tmp_path / "R").mkdir()
    res = build_report(tmp_path / "R", tmp_path / "REP")
    assert all(s.no_data for s in res.sections[:-1])
    page = res.html.read_text()
    assert page.count("no data") >= 6 and "No commands.json" in page


def test_partial_and_broken_inputs(tmp_path):
    root = make_results(tmp_path / "R")
    (root / "sweep.csv").unlink()
    (root / "runs" / "dpp_k1" / "result.json").write_text("{not json")
    res = build_report(root, tmp_path / "REP")
    by = {s.anchor: s for s in res.sections}
    assert by["speedup"].no_data and by["storage"].no_data and by["pareto"].no_data
    assert not by["accuracy"].no_data and not by["masks"].no_data
    assert "94.32 %" in res.html.read_text() and "Problems reading the inputs" in res.html.read_text()


def test_cli_report(tmp_path):
    root = make_results(tmp_path / "R")
    r = CliRunner().invoke(app, ["report", str(root), "--out", str(tmp_path / "REP")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "REP" / "report.html").is_file() and (tmp_path / "REP" / "report.md").is_file()
    r = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(tmp_path / "X")])
    assert r.exit_code != 0 and str(tmp_path / "missing") in str(r.exception)


def test_network_designs_sum_layers_and_join_runs():
    from analysis import report_data as rd

    base = dict(pes=4, weight_bits=8, act_bits=8, out_bits=8, batch=2, n=4, k=1)
    rows = []
    for i, (arch, layer, block, e, c) in enumerate(
        [
            ("kofn", "conv", 1, 10.0, 100.0),
            ("kofn", "conv", 9, 7.0, 90.0),
            ("kofn", "fc", 1, 5.0, 50.0),
            ("dense", "conv", 1, 40.0, 400.0),
            ("dense", "fc", 1, 20.0, 200.0),
            ("csr", "conv", 1, 30.0, 300.0),
        ]
    ):
        rows.append(
            {
                **base,
                "point_id": f"p{i}",
                "arch": arch,
                "layer": layer,
                "block": block,
                "energy_per_inference_pj": e,
                "cycles_per_inference": c,
            }
        )
    nets = rd.network_table(pd.DataFrame(rows))
    got = {
        (r.arch, r.granularity): (r.energy_per_inference_pj, r.cycles_per_inference, r.layers)
        for r in nets.itertuples()
    }
    # csr lacks the fc layer, so it is no whole-network design
    assert got == {
        ("kofn", "weight"): (15.0, 150.0, 2),
        ("kofn", "kernel"): (12.0, 140.0, 2),
        ("dense", "weight"): (60.0, 600.0, 2),
    }
    runs = pd.DataFrame(
        [
            dict(run="a", method="dpp", arch="kofn", k=1, n=4, granularity="kernel", accuracy=0.9),
            dict(run="b", method="dense", arch="dense", k=1, n=8, granularity="weight", accuracy=0.95),
            dict(run="c", method="dpp", arch="kofn", k=2, n=4, granularity="weight", accuracy=0.8),
        ]
    )
    sp = rd.network_speedups(nets).set_index("granularity")
    assert sp.loc["weight", "speedup_vs_dense"] == 4.0 and sp.loc["kernel", "speedup_vs_dense"] == 600 / 140
    assert sp.loc["weight", "energy_saving_vs_dense"] == 4.0 and "cycles_csr" not in sp.columns  # no CSR design
    joined = rd.join_runs(nets, runs)
    assert sorted(zip(joined.run, joined.energy_per_inference_pj)) == [("a", 12.0), ("b", 60.0)]


def test_commands_log_records_only_successful_commands(tmp_path):
    import sys

    from analysis.commands_log import main, read_commands

    assert main([str(tmp_path), "train", "--", sys.executable, "-c", "pass"]) == 0
    assert main([str(tmp_path), "train", "--", sys.executable, "-c", "raise SystemExit(3)"]) == 3
    assert main([str(tmp_path), "train"]) == 2
    cmds = read_commands(tmp_path)
    assert len(cmds) == 1 and cmds[0]["kind"] == "train" and cmds[0]["command"].endswith("-c pass")


def test_report_on_a_real_sweep(tmp_path):
    from analysis import sweep
    from analysis.sweep_config import parse_config

    cfg = parse_config(
        {
            "grid": {"arch": ["kofn", "csr", "dense"], "k": [1], "n": [4], "pes": [2]},
            "layers": [{"name": "l", "rows": 8, "cols": 16}],
            "batch": 2,
        }
    )
    caps = {"model": True, "rtl": False, "verilog": False}
    table = sweep.run_sweep(cfg, tmp_path / "R", serial=True, progress=False, caps=caps).table
    page = build_report(tmp_path / "R", tmp_path / "REP").html.read_text()
    kofn = table[table.arch == "kofn"].iloc[0]
    assert fmt(kofn["bits_per_kept_weight"]) in page and fmt(kofn["bound_bits_per_kept_weight"]) in page
    if caps["model"]:
        dense = table[table.arch == "dense"].iloc[0]
        assert ratio(dense["cycles"] / kofn["cycles"]) in page  # the speed-up vs dense
        assert energy(kofn["energy_per_inference_pj"]) in page


def test_banked_csr_points_are_their_own_design_in_the_report(tmp_path):
    from analysis import sweep
    from analysis.report_data import label_banked, speedup_table
    from analysis.sweep_config import parse_config

    cfg = parse_config(
        {
            "grid": {"arch": ["kofn", "csr"], "k": [1], "n": [4], "pes": [2], "act_banks": [0, 2]},
            "layers": [{"name": "l", "rows": 8, "cols": 16}],
            "batch": 2,
        }
    )
    caps = {"model": True, "rtl": False, "verilog": False}
    if not caps["model"]:
        pytest.skip("sim.model not available")
    table = sweep.run_sweep(cfg, tmp_path / "R", serial=True, progress=False, caps=caps).table
    labelled = label_banked(table)
    assert sorted(labelled["arch"]) == ["csr", "csr_banked2", "kofn"]
    speed = speedup_table(labelled)
    banked = table[(table.arch == "csr") & (table["act_banks"].fillna(0) == 2)].iloc[0]
    kofn = table[table.arch == "kofn"].iloc[0]
    assert speed["speedup_vs_csr_banked2"].iloc[0] == pytest.approx(banked["cycles"] / kofn["cycles"])
    page = build_report(tmp_path / "R", tmp_path / "REP").html.read_text()
    assert "csr_banked2" in page and ratio(banked["cycles"] / kofn["cycles"]) in page
