"""``dpp flow --net`` on a small residual network brought from outside (BatchNorm, a residual add, a depthwise
conv, a 1x1 conv head and global average pooling): trained with ``dpp train --model-file``, exported, then every
matmul layer run on the k-of-n array in RTL, each fed the previous layers' hardware output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.flow_net import flow_net_ok
from dpp.network import IntNetwork

pytest.importorskip("torch")

TINY_RESNET = """
import torch
from torch import nn


class TinyRes(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1, bias=False), nn.BatchNorm2d(4), nn.ReLU())
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.dw = nn.Conv2d(4, 4, 3, padding=1, groups=4)
        self.head = nn.Conv2d(4, 10, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.stem(x)
        x = torch.relu(self.bn(self.conv(x)) + x)
        x = torch.relu(self.dw(x))
        return self.pool(self.head(x)).flatten(1)


def make():
    return TinyRes()
"""
IMAGES = 6


def dpp(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "analysis.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=1800
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


@pytest.fixture(scope="module")
def flow(tmp_path_factory) -> tuple[dict, Path, Path]:
    user = tmp_path_factory.mktemp("user")
    (user / "tiny.py").write_text(TINY_RESNET)
    dpp(
        user,
        "train",
        "--model-file",
        "tiny.py:make",
        "--data",
        "digits",
        "--bits",
        "4",
        "--k",
        "1",
        "--n",
        "4",
        "--epochs",
        "2",
        "--threads",
        "2",
        "--out",
        "run",
    )
    dpp(user, "export", "run", "--out", "net")
    proc = dpp(
        user,
        "flow",
        "--net",
        "net",
        "--data",
        "digits",
        "--images",
        str(IMAGES),
        "--archs",
        "kofn",
        "--threads",
        "2",
        "--out",
        "flow",
    )
    assert "on the host: add, global_avgpool, reshape" in proc.stdout
    return json.loads((user / "flow" / "flow_net.json").read_text()), user / "flow", user / "net"


def test_every_layer_is_bit_exact_with_counters_equal_to_the_model(flow) -> None:
    result, out, net_dir = flow
    assert flow_net_ok(result) and set(result["archs"]) == {"kofn"}
    kofn = result["archs"]["kofn"]
    assert kofn["bit_exact"] and kofn["counters_match"]
    net = IntNetwork.load(net_dir)
    layers = pd.read_csv(out / "flow_net_layers.csv")
    # stem, conv, 4 depthwise groups (one matmul each), head: every layer of the network ran, in order
    assert layers["layer"].tolist() == list(range(len(net.layers))) == list(range(7))
    assert layers["bit_exact"].all() and layers["counters_match"].all()
    assert (layers["cycles"] == layers["model_cycles"]).all()
    assert (layers["array"] == "kofn").all()
    assert layers[["rows", "cols"]].values.tolist() == [[4, 9], [4, 36], [1, 9], [1, 9], [1, 9], [1, 9], [10, 4]]
    assert (layers["batch"] == IMAGES * 8 * 8).all()  # im2col rows: one per image and output position


def test_rtl_classes_equal_torch_and_the_reference(flow) -> None:
    result, _, _ = flow
    assert result["torch_available"] and result["images"] == IMAGES
    assert result["archs"]["kofn"]["classes_equal_torch"] == IMAGES
    assert result["archs"]["kofn"]["classes_equal_reference"] == IMAGES


def test_the_report_says_which_ops_ran_where_and_the_share_of_macs(flow) -> None:
    result, out, _ = flow
    where = {n["name"]: (n["op"], n["where"], n["macs"]) for n in result["nodes"]}
    # per image, 8x8 positions: stem 4*9, conv 4*36, depthwise 4 groups of 1*9, head 10*4 MACs per position;
    # the residual add 2 per output (4 channels), the global pooling its 64 positions per output (10 channels)
    assert sorted(where.values()) == sorted(
        [
            ("matmul", "array", 4 * 9 * 64),
            ("matmul", "array", 4 * 36 * 64),
            ("add", "host", 2 * 4 * 64),
            ("matmul", "array", 4 * 9 * 64),
            ("matmul", "array", 10 * 4 * 64),
            ("global_avgpool", "host", 10 * 64),
            ("reshape", "host", 0),
        ]
    )
    depthwise = next(n for n in result["nodes"] if n.get("groups") == 4)
    assert depthwise["arrays"] == {"kofn": ["kofn"]}
    array_macs = (4 * 9 + 4 * 36 + 4 * 9 + 10 * 4) * 64
    assert result["mac_share"] == array_macs / (array_macs + 2 * 4 * 64 + 10 * 64)
    report = (out / "report.md").read_text()
    assert f"MACs on the arrays: **{100 * array_macs / (array_macs + 1152):.2f} %**" in report
    assert "| 4 (one per group) |" in report and "| add | host |" in report
