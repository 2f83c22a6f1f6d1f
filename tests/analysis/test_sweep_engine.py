"""Sweep engine: config checks, grid expansion, real per-point metrics, resume, Dask = serial, CLI."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from typer.testing import CliRunner

from analysis import sweep
from analysis.cli import app
from analysis.sweep_config import expand_grid, load_config, parse_config, point_id

NO_HW = {"model": False, "rtl": False, "verilog": False}


def raw_config(**over):
    cfg = {
        "name": "t",
        "seed": 3,
        "batch": 2,
        "grid": {"arch": ["kofn", "csr", "dense"], "k": [1, 2, 4], "n": [4], "block": [1, 2], "pes": [2]},
        "layers": [{"name": "a", "rows": 8, "cols": 16}, {"name": "b", "rows": 4, "cols": 12, "block": [3]}],
    }
    cfg.update(over)
    return cfg


def test_grid_expansion_counts_dedupes_and_skips():
    cfg = parse_config(raw_config())
    points, invalid = expand_grid(cfg)
    # k=4 with n=4 is invalid: 3 archs x 2 blocks (layer a) + 3 archs x 1 block (layer b)
    assert invalid == 3 * 2 + 3 * 1
    # layer a: kofn 2 k x 2 blocks = 4, csr 2, dense 2 (block forced to 1, duplicates dropped); layer b: 2+2+2
    assert len(points) == 8 + 6
    assert {p["block"] for p in points if p["arch"] != "kofn"} == {1}
    assert {p["block"] for p in points if p["layer"] == "b"} <= {1, 3}
    assert all(p["k"] < p["n"] for p in points)
    assert len({point_id(p) for p in points}) == len(points)
    p0 = points[0]
    assert (p0["weight_bits"], p0["act_bits"], p0["out_bits"]) == (8, 8, 8)  # defaults
    assert (p0["max_rows"], p0["max_cols"], p0["max_batch"]) == (8, 16, 2)  # sized to the layer


@pytest.mark.parametrize(
    "change, message",
    [
        ({"colour": 1}, "unknown key 'colour' in the sweep config"),
        ({"grid": {"k": [1], "n": [4], "lanes": [2]}}, "unknown key 'lanes' in grid"),
        ({"grid": {"k": [1], "n": [4], "arch": ["sparse"]}}, "grid.arch values must be one of"),
        ({"grid": {"k": [0], "n": [4]}}, r"grid.k value must be >= 1 \(got 0\)"),
        ({"grid": {"k": ["two"], "n": [4]}}, "grid.k value must be an integer"),
        ({"grid": {"n": [4]}}, "grid.k is required"),
        ({"grid": {"k": [4], "n": [4]}}, "no valid point"),
        ({"layers": []}, "layers must be a non-empty list"),
        ({"layers": [{"name": "x", "rows": 4}]}, r"layers\[0\].cols is required"),
        ({"layers": [{"name": "x", "rows": 4, "cols": 4, "kh": 3}]}, r"unknown key 'kh' in layers\[0\]"),
        ({"area": {"enabled": True, "flows": ["asic"]}}, "area.flows values must be one of"),
        ({"batch": 0}, r"batch must be >= 1 \(got 0\)"),
        ({"hardware": {"max_depth": 3}}, "unknown key 'max_depth' in hardware"),
        (
            {"grid": {"k": [1], "n": [4], "act_banks": [6]}},
            r"grid.act_banks values must be 0 or a power of two \(got 6\)",
        ),
        ({"grid": {"k": [1], "n": [4], "act_banks": [-2]}}, r"grid.act_banks value must be >= 0 \(got -2\)"),
    ],
)
def test_bad_configs_fail_with_one_clear_message(change, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(parse_config(raw_config(**change)))


def test_config_files_yaml_toml_and_errors(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text('name = "t"\n[grid]\nk = [1]\nn = [2]\n[[layers]]\nname = "a"\nrows = 2\ncols = 4\n')
    cfg = load_config(toml)
    assert cfg.grid["k"] == (1,) and cfg.layers[0].cols == 4
    with pytest.raises(ValueError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "s.json"
    bad.write_text("{}")
    with pytest.raises(ValueError, match="must end in .yaml"):
        load_config(bad)
    broken = tmp_path / "b.yaml"
    broken.write_text("grid: [1, 2\n")
    with pytest.raises(ValueError, match="cannot be parsed"):
        load_config(broken)


@pytest.mark.parametrize(
    "name, count",
    [("sweep_small.yaml", 28), ("sweep_small.toml", 12), ("sweep_digits.yaml", 18), ("sweep_banked.yaml", 40)],
)
def test_example_configs_load(name, count):
    from pathlib import Path

    cfg = load_config(Path(__file__).parents[2] / "analysis" / "examples" / name)
    points, _ = expand_grid(cfg)
    assert len(points) == count


def test_point_metrics_are_the_real_storage_bits():
    cfg = parse_config(raw_config())
    points, _ = expand_grid(cfg)
    row = {p["arch"] + str(p["k"]) + str(p["block"]) + p["layer"]: sweep.evaluate_point(p, {}) for p in points}
    kofn = row["kofn21a"]  # 8 x 16, k=2 of n=4, block 1: 4 groups, 2 kept slots each
    assert kofn["storage_value_bits"] == 8 * 4 * 2 * 8 and kofn["storage_index_bits"] == 8 * 4 * 2 * 2
    assert kofn["density"] == 0.5 and kofn["bits_per_kept_weight"] == 10.0
    assert kofn["bound_bits_per_kept_weight"] == pytest.approx(8 + math.log2(6) / 2)
    dense = row["dense21a"]
    assert dense["storage_total_bits"] == 8 * 16 * 8 and dense["bits_per_dense_weight"] == 8.0
    csr = row["csr21a"]
    assert csr["kept_weights"] == 64 and csr["storage_index_bits"] == 64 * 4
    assert csr["storage_pointer_bits"] == 9 * 7  # (rows+1) pointers of ceil(log2(65)) bits


def test_resume_skips_finished_points(tmp_path):
    cfg = parse_config(raw_config())
    total = len(sweep.plan_jobs(cfg, NO_HW)[0])
    calls = []

    def failing_after_5(point, options):
        if len(calls) == 5:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-sweep
        calls.append(point_id(point))
        return sweep.evaluate_point(point, options)

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(cfg, tmp_path, evaluate=failing_after_5, serial=True, progress=False, caps=NO_HW)
    assert len(list((tmp_path / "points").glob("*.json"))) == 5
    first = set(calls)
    calls.clear()

    def counting(point, options):
        calls.append(point_id(point))
        return sweep.evaluate_point(point, options)

    out = sweep.run_sweep(cfg, tmp_path, evaluate=counting, serial=True, progress=False, caps=NO_HW)
    assert len(calls) == total - 5 and not first & set(calls)
    assert (out.computed, out.reused, len(out.table)) == (total - 5, 5, total)
    calls.clear()
    again = sweep.run_sweep(cfg, tmp_path, evaluate=counting, serial=True, progress=False, caps=NO_HW)
    assert calls == [] and again.computed == 0
    # a new capability (e.g. sim.model landing) changes the point keys, so the points are redone
    jobs_model = sweep.plan_jobs(cfg, {**NO_HW, "model": True})[0]
    assert not {j[0] for j in jobs_model} & {j[0] for j in sweep.plan_jobs(cfg, NO_HW)[0]}


def test_dask_local_cluster_equals_serial(tmp_path):
    cfg = parse_config(raw_config())
    serial = sweep.run_sweep(cfg, tmp_path / "s", serial=True, progress=False, caps=NO_HW)
    dask = sweep.run_sweep(cfg, tmp_path / "d", n_workers=1, processes=False, progress=False, caps=NO_HW)
    a, b = (o.table.drop(columns="eval_seconds") for o in (serial, dask))
    pd.testing.assert_frame_equal(a, b)
    back = pd.read_parquet(tmp_path / "d" / "sweep.parquet").drop(columns="eval_seconds")
    pd.testing.assert_frame_equal(back, b)
    assert len(pd.read_csv(tmp_path / "d" / "sweep.csv")) == len(b)


def test_existing_scheduler_address(tmp_path):
    from dask.distributed import LocalCluster

    cfg = parse_config(raw_config())
    serial = sweep.run_sweep(cfg, tmp_path / "s", serial=True, progress=False, caps=NO_HW)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        remote = sweep.run_sweep(cfg, tmp_path / "x", scheduler=cluster.scheduler_address, progress=False, caps=NO_HW)
    pd.testing.assert_frame_equal(serial.table.drop(columns="eval_seconds"), remote.table.drop(columns="eval_seconds"))


def _run(folder, **result):
    folder.mkdir(parents=True)
    (folder / "result.json").write_text(json.dumps({"schema": "dpp.run", **result}))
    return str(folder)


def test_accuracy_of_runs_is_joined_on_matching_rows(tmp_path):
    runs = [
        _run(tmp_path / "dpp", method="dpp", k=2, n=4, granularity="weight", test_accuracy=0.91, density=0.5),
        _run(tmp_path / "mag", method="magnitude", k=2, n=4, granularity="weight", test_accuracy=0.88, density=0.5),
        _run(tmp_path / "dense", method="dense", k=1, n=8, granularity="weight", test_accuracy=0.97, density=1.0),
    ]
    cfg = parse_config(raw_config(runs=runs))
    plain = sweep.run_sweep(
        cfg.__class__(**{**cfg.__dict__, "runs": ()}), tmp_path / "p", serial=True, progress=False, caps=NO_HW
    ).table
    table = sweep.run_sweep(cfg, tmp_path / "r", serial=True, progress=False, caps=NO_HW).table
    hit = table[(table.arch == "kofn") & (table.k == 2) & (table.block == 1)]
    assert sorted(zip(hit.method, hit.accuracy)) == [("dpp", 0.91), ("magnitude", 0.88)] * (hit.layer.nunique())
    assert (table[table.arch == "dense"].accuracy == 0.97).all()
    assert table[table.arch == "csr"].accuracy.isna().all()
    assert table[(table.arch == "kofn") & (table.block > 1)].accuracy.isna().all()
    # every point is still there; the two matched k-of-n methods add one extra row per matched point
    assert len(table) == len(plain) + len(hit) // 2
    with pytest.raises(ValueError, match="lacks key"):
        sweep.read_run_result(__import__("pathlib").Path(_run(tmp_path / "bad", method="dpp", k=1)))


def test_cli_sweep_serial_and_errors(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("grid: {k: [1], n: [2, 4], arch: [kofn, dense]}\nlayers: [{name: l, rows: 4, cols: 8}]\n")
    out = tmp_path / "res"
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--serial", "--no-progress"])
    assert r.exit_code == 0, r.output
    assert "4 points (4 computed now" in r.output
    assert len(pd.read_csv(out / "sweep.csv")) == 4
    cmds = json.loads((out / "commands.json").read_text())
    assert cmds[-1]["kind"] == "sweep" and cmds[-1]["params"]["grid"]["n"] == [2, 4]
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--serial", "--scheduler", "tcp://x:1"])
    assert r.exit_code != 0 and "exclude each other" in str(r.exception)


def test_model_columns_come_from_sim_model_and_energy():
    from analysis.energy import layer_energy
    from sim.model import predict_counters

    cfg = parse_config(raw_config())
    points, _ = expand_grid(cfg)
    for p in points:
        row = sweep.evaluate_point(p, {"model": True})
        params = sweep.make_params(p)
        _, sb, _, row_nnz = sweep.pack_layer(p)
        want = predict_counters(params, p["rows"], p["cols"], p["batch"], row_nnz=row_nnz)
        assert {k: row[k] for k in sweep.COUNTERS} == want
        assert row["utilisation"] == pytest.approx(want["mac_ops"] / (want["mac_ops"] + want["lane_idle_cycles"]))
        e = layer_energy(
            want,
            weight_bits=p["weight_bits"],
            act_bits=p["act_bits"],
            acc_bits=params.acc_bits,
            memory_bits=sweep.memory_sizes(p, sb),
            batch=p["batch"],
        )
        assert row["energy_total_pj"] == pytest.approx(e.total_pj) and row["energy_total_pj"] > 0
    kofn = [
        (p, sweep.evaluate_point(p, {"model": True}))
        for p in points
        if p["arch"] == "kofn" and p["layer"] == "a" and p["block"] == 1
    ]
    assert kofn and all(r["mac_ops"] == 8 * 16 * p["k"] // 4 * 2 for p, r in kofn)  # rows * cols * k/n * batch


def test_act_banks_make_banked_csr_points_only():
    cfg = parse_config(
        raw_config(
            grid={"arch": ["kofn", "csr", "dense"], "k": [1], "n": [4], "pes": [2], "act_banks": [0, 4]},
            layers=[{"name": "a", "rows": 8, "cols": 16}],
        )
    )
    points, _ = expand_grid(cfg)
    assert sorted((p["arch"], p.get("act_banks", 0)) for p in points) == [
        ("csr", 0),
        ("csr", 4),
        ("dense", 0),
        ("kofn", 0),
    ]
    plain = parse_config(
        raw_config(
            grid={"arch": ["kofn", "csr", "dense"], "k": [1], "n": [4], "pes": [2]},
            layers=[{"name": "a", "rows": 8, "cols": 16}],
        )
    )
    # a point without banks has the id it had before the key existed (resumed sweeps keep their points)
    assert {point_id(p) for p in expand_grid(plain)[0]} == {point_id(p) for p in points if "act_banks" not in p}


def test_banked_csr_point_uses_the_bank_conflict_model():
    from sim.model import predict_counters

    cfg = parse_config(
        raw_config(
            grid={"arch": ["csr"], "k": [2], "n": [4], "pes": [2], "act_banks": [0, 2]},
            layers=[{"name": "a", "rows": 8, "cols": 16}],
        )
    )
    rows = {}
    for p in expand_grid(cfg)[0]:
        matrix, _, _, row_nnz = sweep.pack_layer(p)
        params = sweep.make_params(p)
        assert params.act_banks == p.get("act_banks", 0)
        row = sweep.evaluate_point(p, {"model": True})
        want = predict_counters(params, 8, 16, 2, row_nnz=row_nnz, csr=matrix if params.act_banks else None)
        assert {k: row[k] for k in sweep.COUNTERS} == want
        rows[params.act_banks] = row
    # same multiplies; two banks for four lanes can only add conflict cycles
    assert rows[2]["mac_ops"] == rows[0]["mac_ops"] and rows[2]["cycles"] >= rows[0]["cycles"]


@pytest.mark.slow
def test_rtl_sample_rechecks_model(tmp_path):
    cfg = parse_config(
        raw_config(
            rtl_sample=1,
            layers=[{"name": "a", "rows": 4, "cols": 8}],
            grid={"arch": ["kofn"], "k": [1], "n": [4], "pes": [2]},
        )
    )
    table = sweep.run_sweep(cfg, tmp_path, serial=True, progress=False).table
    row = table.iloc[0]
    assert row["rtl_bit_exact"] and row["rtl_matches_model"] and row["rtl_cycles"] == row["cycles"]


@pytest.mark.slow
def test_area_columns_from_real_synthesis(tmp_path, monkeypatch):
    monkeypatch.setenv("DPP_AREA_CACHE", str(tmp_path / "cache"))
    cfg = parse_config(
        raw_config(
            area={"enabled": True, "flows": ["ice40"]},
            layers=[{"name": "a", "rows": 4, "cols": 8}],
            grid={"arch": ["kofn"], "k": [1], "n": [4], "pes": [1]},
        )
    )
    table = sweep.run_sweep(cfg, tmp_path / "r", serial=True, progress=False).table
    assert table["area_ice40_luts"].iloc[0] > 0 and table["area_ice40_ffs"].iloc[0] > 0
