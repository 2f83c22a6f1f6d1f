"""The built-in graph models (``resnet8``: BatchNorm and residual adds; ``mobilenet``: depthwise-separable blocks)
through train → export → ``dpp flow --net``: every matmul layer in RTL bit-exact against the integer reference,
counters equal to the model, RTL classes equal to torch.

Default suite: each model trained one epoch on the 8x8 digits, two images on the k-of-n array. Slow suite: the
full-size models on MNIST-5k (28x28), four images on all three arrays."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.flow_net import NetFlowConfig, flow_net_ok, run_flow_net
from dpp.export import run_export
from dpp.network import IntNetwork
from dpp.train import TrainConfig, save_run, train
from rtl.archs import ARCHS


def run_builtin(tmp: Path, model: str, data: str, images: int, archs: tuple[str, ...]) -> tuple[dict, Path, Path]:
    import torch

    torch.set_num_threads(2)
    result = train(TrainConfig(model=model, data=data, method="dpp", k=2, n=8, bits=4, epochs=1, seed=0))
    save_run(result, tmp / "run")
    agreement = run_export(tmp / "run", tmp / "net")
    assert agreement["identical"] == agreement["images"]  # integer network = fake-quantised torch, every image
    cfg = NetFlowConfig(net=str(tmp / "net"), data=data, images=images, archs=archs)
    return run_flow_net(cfg, tmp / "flow"), tmp / "flow", tmp / "net"


def check_every_layer(result: dict, out: Path, net_dir: Path, archs: tuple[str, ...]) -> set[str]:
    """Checks every layer on every array; returns the ops that ran on the host."""
    assert flow_net_ok(result) and set(result["archs"]) == set(archs)
    net = IntNetwork.load(net_dir)
    layers = pd.read_csv(out / "flow_net_layers.csv")
    for arch in archs:
        mine = layers[layers["arch"] == arch]
        assert mine["layer"].tolist() == list(range(len(net.layers)))  # every matmul layer ran, in order
        assert mine["bit_exact"].all() and mine["counters_match"].all()
        assert (mine["cycles"] == mine["model_cycles"]).all()
        s = result["archs"][arch]
        assert s["classes_equal_torch"] == s["classes_equal_reference"] == result["images"]
    host_ops = {n["op"] for n in result["nodes"] if n["where"] == "host"}
    return host_ops


@pytest.mark.parametrize("model, host", [("resnet8", "add"), ("mobilenet", "global_avgpool")])
def test_small_builtin_bit_exact_in_rtl(tmp_path, model, host) -> None:
    result, out, net = run_builtin(tmp_path, model, "digits", 2, ("kofn",))
    assert host in check_every_layer(result, out, net, ("kofn",))


@pytest.mark.slow
@pytest.mark.parametrize("model, host", [("resnet8", "add"), ("mobilenet", "global_avgpool")])
def test_full_builtin_bit_exact_in_rtl_on_every_array(tmp_path, model, host) -> None:
    result, out, net = run_builtin(tmp_path, model, "mnist5k", 4, ARCHS)
    assert host in check_every_layer(result, out, net, ARCHS)
