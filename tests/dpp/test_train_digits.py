"""Training harness and the train / export / compare / bench-train commands, on the fast 8x8 digits model."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from typer.testing import CliRunner

from analysis.cli import app
from dpp.data import load_dataset
from dpp.network import IntNetwork
from dpp.train import TrainConfig, load_run, save_run, train

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_dataset_split_is_fixed_and_real():
    a, b = load_dataset("digits"), load_dataset("digits")
    assert torch.equal(a.x_test, b.x_test) and a.x_train.shape == (1437, 1, 8, 8) and a.classes == 10
    assert 0.0 <= float(a.x_train.min()) and float(a.x_train.max()) == 1.0


def test_short_dpp_run_beats_chance_and_is_deterministic(digits):
    cfg = TrainConfig(
        model="digits",
        method="dpp",
        k=1,
        n=4,
        epochs=6,
        seed=3,
        logit_lr=0.05,
        noise_scale=0.1,
        entropy_weight=0.0,
        warmup_fraction=0.0,
        init="normal",
    )  # DPP from the first step
    a = train(cfg, digits)
    b = train(cfg, digits)
    assert a.test_accuracy > 0.5  # chance is 0.1
    assert a.density == pytest.approx(0.25, abs=0.01)
    assert [h["test_accuracy"] for h in a.history] == [h["test_accuracy"] for h in b.history]
    assert {"conf_layer0", "div_layer2", "temperature"} <= set(a.history[-1])
    assert a.history[0]["temperature"] == 5.0 and a.history[-1]["temperature"] == 0.5


@pytest.mark.parametrize("method", ["dense", "magnitude", "srste", "unstructured", "random"])
def test_baselines_train_and_reload(tmp_path, digits, method):
    cfg = TrainConfig(model="digits", method=method, k=1, n=4, epochs=3, seed=0, bits=8)
    res = train(cfg, digits)
    assert res.test_accuracy > 0.3
    assert res.density == pytest.approx(1.0 if method == "dense" else 0.25, abs=0.01)
    save_run(res, tmp_path)
    _, model = load_run(tmp_path)
    x = digits.x_test[:64]
    assert torch.equal(model(x).argmax(1), res.model.eval()(x).argmax(1))


def test_train_export_cli_round_trip(tmp_path):
    run = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--model",
            "digits",
            "--method",
            "dpp",
            "--k",
            "1",
            "--n",
            "4",
            "--granularity",
            "kernel",
            "--bits",
            "4",
            "--epochs",
            "2",
            "--seed",
            "1",
            "--out",
            str(run),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads((run / "result.json").read_text())
    assert result["method"] == "dpp" and result["bits"] == 4 and 0 < result["test_accuracy"] <= 1
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2 and "conf_layer0" in rows[0] and "div_layer1" in rows[0]
    r = runner.invoke(app, ["export", str(run), "--out", str(tmp_path / "net")])
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "net" / "agreement.json").read_text())
    assert report["agreement"] == 1.0 and report["weight_bits"] == 4
    net = IntNetwork.load(tmp_path / "net")
    assert [layer.weights.block for layer in net.layers] == [9, 1, 1]


def test_compare_cli_writes_one_table(tmp_path):
    r = runner.invoke(
        app,
        [
            "compare",
            "--model",
            "digits",
            "--methods",
            "dense,dpp,random",
            "--grid",
            "1/4",
            "--seeds",
            "0",
            "--epochs",
            "1",
            "--dpp-bits",
            "",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    lines = (tmp_path / "compare.csv").read_text().splitlines()
    assert lines[0].startswith("method,k,n,bits,density") and len(lines) == 4
    # one line as each run starts (numbered, so a log shows how far a long comparison is) and one as it ends
    starts = [line for line in r.output.splitlines() if line.startswith("[")]
    assert starts == [
        "[1/3] dense float weights, seed 0 ...",
        "[2/3] dpp 1/4, float weights, seed 0 ...",
        "[3/3] random 1/4, float weights, seed 0 ...",
    ]
    assert len([line for line in r.output.splitlines() if line.endswith(" s)")]) == 3


def test_bad_cli_arguments_fail_cleanly(tmp_path, capsys):
    import sys

    from analysis.cli import run

    for args, needle in (
        [["train", "--model", "vgg", "--out", str(tmp_path)], "model must be one of"],
        [["train", "--k", "8", "--n", "8", "--out", str(tmp_path)], "k must be < n"],
        [["train", "--bits", "12", "--out", str(tmp_path)], "bits must be <= 8"],
        [["export", str(tmp_path / "nothing"), "--out", str(tmp_path)], "nothing does not exist"],
        [["export", str(tmp_path), "--out", str(tmp_path / "net")], "not a run folder"],
    ):
        old = sys.argv
        sys.argv = ["dpp", *args]
        try:
            with pytest.raises(SystemExit) as exc:
                run()
        finally:
            sys.argv = old
        assert exc.value.code == 2, args
        assert needle in capsys.readouterr().err, args


def test_warm_started_dpp_masks_after_the_dense_phase(digits):
    cfg = TrainConfig(model="digits", method="dpp", k=1, n=4, epochs=4, seed=0)
    res = train(cfg, digits)
    assert cfg.prune_epoch == 2
    assert [round(h["density"], 2) for h in res.history] == [1.0, 1.0, 0.25, 0.25]
    assert res.test_accuracy > 0.5


def test_bad_config_values():
    with pytest.raises(ValueError, match="granularity must be one of"):
        TrainConfig(granularity="row")
    with pytest.raises(ValueError, match="method must be one of"):
        TrainConfig(method="lottery")


def test_cli_bench_train_refuses_a_negative_noise_scale():
    r = runner.invoke(app, ["bench-train", "--model", "digits", "--noise-scale", "-1"])
    assert r.exit_code == 2
    assert "Invalid value for '--noise-scale'" in r.output


def test_bench_train_reports_both_step_times():
    from dpp.bench import bench_step_times

    r = bench_step_times("digits", 1, 4, "weight", None, batch_size=32, steps=5)
    assert r["dense_step_seconds"] > 0 and r["dpp_step_seconds"] > 0
    assert r["ratio"] == pytest.approx(r["dpp_step_seconds"] / r["dense_step_seconds"])
    for method in ("dense", "dpp"):  # the --breakdown phases: each a positive part of that method's step
        parts = [r[f"{method}_{p}_seconds"] for p in ("forward", "backward", "optimizer")]
        assert all(0 < x < 10 * r[f"{method}_step_seconds"] for x in parts)
    quiet = bench_step_times(
        "digits", 1, 4, "weight", None, batch_size=32, steps=3, warmup=2, noise_scale=0.0, flush_denormals=False
    )
    assert quiet["dpp_step_seconds"] > 0 and quiet["ratio"] > 0


def test_bench_train_runs_a_graph_model():
    """resnet8 / mobilenet run as traced graphs: the bench records their input shape from the data as training does."""
    from dpp.bench import bench_step_times

    r = bench_step_times("mobilenet", 1, 8, "weight", None, batch_size=8, steps=2, warmup=1)
    assert r["dense_step_seconds"] > 0 and r["dpp_step_seconds"] > 0


def test_full_precision_run_exports_after_post_training_quantisation(tmp_path, digits):
    from dpp.export import run_export

    res = train(TrainConfig(model="digits", method="random", k=2, n=8, epochs=2, seed=4), digits)
    save_run(res, tmp_path / "run")
    report = run_export(tmp_path / "run", tmp_path / "net")
    assert report["weight_bits"] == 8 and report["agreement"] == 1.0
    assert abs(report["int_accuracy"] - res.test_accuracy) < 0.05  # 8-bit PTQ costs little
    net = IntNetwork.load(tmp_path / "net")
    assert all(layer.weights.k == 2 and layer.weights.n == 8 for layer in net.layers)


def test_profile_train_step_script_times_the_kernels_and_the_work_around_them():
    """scripts/profile_train_step.py patches dpp.fused_mask._run: it must still find the kernels it times."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    from dpp import fused_mask

    if fused_mask.kernel() is None:
        pytest.skip("the fused C kernel is not built here")
    script = Path(__file__).parents[2] / "scripts" / "profile_train_step.py"
    r = subprocess.run([sys.executable, str(script), "--steps", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    fwd, bwd = map(float, re.search(r"forward ([\d.]+) ms, backward ([\d.]+) ms\n", r.stdout).groups())
    assert fwd > 0 and bwd > 0  # the timer saw both kernel entry points
    assert "kernels as no-ops:" in r.stdout and re.search(r"1 MB [\d.]+ GB/s, 4 MB [\d.]+ GB/s", r.stdout)
