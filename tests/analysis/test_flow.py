"""``dpp flow`` end to end on the tiny 8x8-digits network: trained, exported, every layer run in RTL."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.flow import FlowConfig, flow_ok, run_flow
from analysis.report_render import si
from dpp.network import IntNetwork

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def flow_result(tmp_path_factory) -> tuple[dict, Path]:
    """``dpp flow`` as a user runs it: a subprocess, in a folder that is not the repository, relative --out."""
    user = tmp_path_factory.mktemp("user")
    args = [
        "flow",
        "--quick",
        "--model",
        "digits",
        "--k",
        "1",
        "--n",
        "4",
        "--bits",
        "4",
        "--epochs",
        "2",
        "--images",
        "24",
        "--pes",
        "4",
        "--threads",
        "2",
        "--out",
        "results/flow",
    ]
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", *args], cwd=user, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = user / "results" / "flow"
    return json.loads((out / "flow.json").read_text()), out


def test_every_layer_bit_exact_on_every_array(flow_result) -> None:
    result, out = flow_result
    assert flow_ok(result)
    assert set(result["archs"]) == {"kofn", "dense", "csr"}
    layers = pd.read_csv(out / "flow_layers.csv")
    assert len(layers) == 3 * 3  # conv + 2 fc on each of three designs
    assert layers["bit_exact"].all() and layers["counters_match"].all()
    assert (layers["cycles"] == layers["model_cycles"]).all()
    # the RTL classes are the integer reference's, which the export made identical to torch's
    for s in result["archs"].values():
        assert s["classes_equal_reference"] == result["images"] == 24


def test_csr_baseline_runs_its_own_unstructured_network(flow_result) -> None:
    """CSR gets a network pruned unstructured at density k/n (own rows, own imbalance), not the DPP one."""
    result, out = flow_result
    csr = result["archs"]["csr"]
    assert csr["trained_method"] == "unstructured" and result["archs"]["kofn"]["trained_method"] == "dpp"
    assert csr["network"] == result["csr_network"] != result["network"]
    assert result["csr_export_agreement"]["agreement"] >= 0.9
    net = IntNetwork.load(result["csr_network"])
    dense_w = [layer.dense_weights() for layer in net.layers]
    density = sum(int((w != 0).sum()) for w in dense_w) / sum(w.size for w in dense_w)
    assert 0.2 < density <= 0.25 + 1e-9  # k/n = 1/4 kept, minus weights that quantised to 0
    layers = pd.read_csv(out / "flow_layers.csv")
    csr_layers = layers[layers.arch == "csr"].sort_values("layer")
    # every stored non-zero is multiplied once per input vector: mac_ops come from this network's weights
    assert list(csr_layers["mac_ops"]) == [int((w != 0).sum()) * b for w, b in zip(dense_w, csr_layers["batch"])]
    row_nnz = [(w != 0).sum(axis=1) for w in dense_w]
    assert any(r.max() != r.min() for r in row_nnz)  # unstructured: rows differ, unlike k-of-n


def test_csr_net_same_on_banked_csr_and_bad_values_are_refused(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"csr_net must be one of \('unstructured', 'same'\) \(got 'dpp'\)"):
        FlowConfig(csr_net="dpp")
    with pytest.raises(
        ValueError, match=r"act_banks must be 0 \(per-lane replicas\) or a power of two \(got act_banks=6\)"
    ):
        FlowConfig(act_banks=6)
    # the DPP network on an equal-memory (banked) CSR: bit-exact, counters = the banked model
    cfg = FlowConfig(
        model="digits", k=1, n=4, bits=4, epochs=1, images=4, pes=4, csr_net="same", archs=("kofn", "csr"), act_banks=8
    )
    assert cfg.network_config("csr") is cfg
    result = run_flow(cfg, tmp_path, log=lambda _: None, report=False)
    assert flow_ok(result) and "csr_network" not in result
    assert result["archs"]["csr"]["network"] == result["network"]
    assert result["archs"]["csr"]["trained_method"] == "dpp"
    assert {d["act_banks"] for name, d in result["designs"].items() if name.startswith("csr:")} == {8}
    assert {d["act_banks"] for name, d in result["designs"].items() if name.startswith("kofn:")} == {0}


def test_rtl_chain_reproduces_the_integer_network(flow_result) -> None:
    result, out = flow_result
    net = IntNetwork.load(result["network"])
    layers = pd.read_csv(out / "flow_layers.csv")
    kofn = layers[layers.arch == "kofn"].sort_values("layer")
    assert list(kofn["rows"]) == [layer.rows for layer in net.layers]
    assert list(kofn["cols"]) == [layer.cols for layer in net.layers]
    # conv layer batch = images x output positions; fc layers = images
    assert kofn["batch"].iloc[1] == kofn["batch"].iloc[2] == 24
    # the same multipliers: dense reads every column, k-of-n only k of n -> about n/k more cycles
    cyc = {a: result["archs"][a]["cycles"] for a in ("kofn", "dense")}
    assert cyc["dense"] / cyc["kofn"] > 2.5
    dense = layers[layers.arch == "dense"]
    assert (dense["mac_ops"] == dense["rows"] * dense["cols"] * dense["batch"]).all()


def test_flow_json_and_report_hold_the_measured_numbers(flow_result) -> None:
    result, out = flow_result
    saved = json.loads((out / "flow.json").read_text())
    assert saved["archs"]["kofn"]["cycles"] == result["archs"]["kofn"]["cycles"]
    html = (out / "report" / "report.html").read_text()
    md = (out / "report" / "report.md").read_text()
    assert "Trained network through the RTL" in html
    cycles = si(result["archs"]["dense"]["cycles_per_image"], "cycles")  # per image, as the chart
    assert cycles in html and cycles in md
    assert "dpp.flow" not in md  # the schema tag is data, not prose
    commands = json.loads((out / "commands.json").read_text())
    assert commands[-1]["kind"] == "flow" and commands[-1]["params"]["model"] == "digits"


def test_flow_report_opens_with_the_answer_and_has_no_empty_section(flow_result) -> None:
    """The report of the flow: its first table is flow.json's per-image numbers; the model the flow ran around
    its design fills the cycles, memory, energy and Pareto sections; no section is left empty."""
    from analysis.report import build_report

    result, out = flow_result
    res = build_report(out, out / "report_check")
    assert [s.anchor for s in res.sections if s.no_data] == []
    assert res.sections[0].anchor == "answer"
    head = pd.read_csv(out / "report_check" / "tables" / "answer.csv").set_index("arch")
    for arch, s in result["archs"].items():
        assert head.loc[arch, "cycles_per_image"] == s["cycles"] / result["images"]
        assert head.loc[arch, "energy_per_image_pj"] == pytest.approx(s["energy_pj"] / result["images"], rel=1e-12)
        assert head.loc[arch, "storage_bits"] == s["storage_bits"]
        assert head.loc[arch, "cycles_vs_kofn"] == s["cycles"] / result["archs"]["kofn"]["cycles"]
    # the model's point of the flow's own design reproduces the RTL cycles of the fully connected layers
    sweep = pd.read_parquet(out / "sweep.parquet")
    layers = pd.read_csv(out / "flow_layers.csv")
    for arch in ("kofn", "dense"):
        rtl = layers[(layers.arch == arch) & (layers.kind == "linear")]
        pts = sweep[(sweep.arch == arch) & (sweep.k == 1) & (sweep.n == 4) & (sweep.pes == 4)].set_index("layer")
        assert [pts.loc[f"layer{i}", "cycles"] for i in rtl["layer"]] == list(rtl["cycles"])


def test_second_run_reuses_training_and_builds(flow_result, capsys) -> None:
    result, out = flow_result
    cfg = FlowConfig(model="digits", k=1, n=4, bits=4, epochs=2, images=24, pes=4)
    logs: list[str] = []
    again = run_flow(cfg, out, log=logs.append, report=False)
    assert any("reusing trained run" in line for line in logs)
    assert again["archs"]["kofn"]["cycles"] == result["archs"]["kofn"]["cycles"]
    assert np.isclose(again["archs"]["csr"]["energy_pj"], result["archs"]["csr"]["energy_pj"])


def test_bad_flow_config_is_refused() -> None:
    with pytest.raises(ValueError, match=r"k must be < n \(got k=4, n=4\)"):
        FlowConfig(k=4, n=4)
    with pytest.raises(ValueError, match="archs must be a non-empty subset"):
        FlowConfig(archs=("systolic",))


@pytest.mark.slow
@pytest.mark.parametrize("granularity", ["weight", "kernel"])
def test_lenet5_convolutions_bit_exact_in_rtl(tmp_path, granularity) -> None:
    """Full-mode coverage: LeNet-5's convolutions lowered by im2col (kernel granularity: block = kh*kw)."""
    cfg = FlowConfig(model="lenet5", granularity=granularity, k=1, n=4, bits=4, epochs=1, images=4)
    result = run_flow(cfg, tmp_path, log=lambda _: None, report=False)
    assert flow_ok(result)
    layers = pd.read_csv(tmp_path / "flow_layers.csv")
    assert (layers["kind"] == "conv2d").sum() == 2 * 3
    if granularity == "kernel":
        blocks = {d["block"] for d in result["designs"].values()}
        assert 25 in blocks  # 5x5 kernels selected whole


@pytest.mark.parametrize(
    "args, message",
    [
        (["--act-banks", "3"], "error: act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=3)"),
        (["--csr-net", "dpp"], "error: csr_net must be one of ('unstructured', 'same') (got 'dpp')"),
    ],
)
def test_cli_flow_bad_csr_options_fail_in_one_line_and_write_nothing(tmp_path, args, message) -> None:
    """As a user runs it: the installed entry point turns the ValueError into one line and exit status 2."""
    import subprocess
    import sys

    out = tmp_path / "R"
    exe = str(Path(sys.executable).with_name("dpp"))
    r = subprocess.run([exe, "flow", "--quick", "--out", str(out), *args], capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    assert r.stderr.strip() == message
    assert not out.exists()


def test_model_flow_trains_and_runs_on_the_data_given(tmp_path) -> None:
    """``dpp flow --model digits --data npz:FILE``: the run trains on that file's images and runs its test part in
    RTL (relative path, from another folder), and the run records the data as an absolute spec."""
    from sklearn.datasets import load_digits

    d = load_digits()
    keep = np.arange(600)
    np.savez(tmp_path / "mydigits.npz", x=(d.images[keep] * 16).clip(0, 255).astype(np.uint8), y=d.target[keep])
    args = ["flow", "--quick", "--model", "digits", "--data", "npz:mydigits.npz", "--k", "1", "--n", "4",
            "--epochs", "1", "--images", "8", "--archs", "kofn", "--threads", "2", "--out", "R"]  # fmt: skip
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", *args], cwd=tmp_path, capture_output=True, text=True, timeout=1200
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "R" / "flow.json").read_text())
    assert result["config"]["data"] == f"npz:{tmp_path / 'mydigits.npz'}"
    assert list(result["archs"]) == ["kofn"]
    assert flow_ok(result)
    (run,) = (tmp_path / "R" / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["data"] == f"npz:{tmp_path / 'mydigits.npz'}"


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--model", "lenet300", "--data", "digits"],
            "error: --data 'digits': images of shape [1, 8, 8] do not fit model 'lenet300' (mat1 and mat2 shapes "
            "cannot be multiplied (1x64 and 784x300))",
        ),
        (["--data", "idx:nowhere"], "error: IDX folder {cwd}/nowhere does not exist, expected a folder"),
    ],
)
def test_model_flow_refuses_data_it_cannot_use_before_training(tmp_path, args, message) -> None:
    exe = str(Path(sys.executable).with_name("dpp"))
    r = subprocess.run(
        [exe, "flow", "--quick", "--out", "R", *args], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 2
    assert r.stderr.strip() == message.format(cwd=tmp_path)
    assert not (tmp_path / "R").exists()
