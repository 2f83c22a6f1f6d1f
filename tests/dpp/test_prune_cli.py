"""``dpp prune`` on a model written elsewhere, ``--data`` / ``--normalize`` through train and export, and every
bad spec refused in one line: each command run as a user runs it (a subprocess, another folder, relative paths)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from dpp.data import Normalization
from dpp.errors import FormatError
from dpp.model_file import build_user_model, load_weights
from dpp.network import IntNetwork
from tests.user_cli import assert_one_line, dpp

torch.set_num_threads(1)
FIXTURE = Path(__file__).parent / "data" / "outside_model.py"


@pytest.fixture(scope="module")
def author(tmp_path_factory) -> Path:
    """An outside author's folder: the model file (copied, untouched) and a state dict saved with torch.save."""
    folder = tmp_path_factory.mktemp("author")
    shutil.copy(FIXTURE, folder / "outside_model.py")
    model = build_user_model(f"{folder / 'outside_model.py'}:make_model", seed=7)
    torch.save(model.state_dict(), folder / "weights.pth")
    torch.save(
        build_user_model(f"{folder / 'outside_model.py'}:make_model", seed=7).state_dict()
        | {"classifier.1.weight": torch.zeros(32, 784), "extra.bias": torch.zeros(3)},
        folder / "wrong.pth",
    )
    return folder


@pytest.fixture(scope="module")
def pruned(author: Path, tmp_path_factory) -> tuple[Path, Path, subprocess.CompletedProcess]:
    """``dpp prune`` one-shot (--epochs 0) magnitude 2-of-16 with 8-bit weights, then ``dpp export`` from
    another folder."""
    user = tmp_path_factory.mktemp("user")
    proc = dpp(
        user,
        "prune",
        "--model-file",
        str(author / "outside_model.py") + ":make_model",
        "--weights",
        str(author / "weights.pth"),
        "--data",
        "mnist5k",
        "--method",
        "magnitude",
        "--k",
        "2",
        "--n",
        "16",
        "--bits",
        "8",
        "--epochs",
        "0",
        "--out",
        "run",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    export = dpp(elsewhere, "export", str(user / "run"), "--out", "net")
    assert export.returncode == 0, export.stdout + export.stderr
    return user / "run", elsewhere / "net", proc


def test_prune_writes_a_train_run_recording_the_factory_weights_and_layers(pruned, author: Path) -> None:
    run, _, proc = pruned
    result = json.loads((run / "result.json").read_text())
    assert result["model_file"] == f"{(author / 'outside_model.py').resolve()}:make_model"
    assert result["weights"] == str((author / "weights.pth").resolve())
    assert result["model"] == "outside_model.py:make_model" and result["epochs"] == 0
    # fan-in per group >= n = 16 is pruned: the first conv (1*3*3 = 9 weights) stays dense and is reported
    assert result["pruned_layers"] == ["features.1.0", "classifier.1", "classifier.3"]
    assert result["dense_layers"] == ["features.0.0"]
    assert "dense: features.0.0 (fan-in 9 weights per group < n=16)" in proc.stdout
    assert result["data"] == "mnist5k" and result["normalization"] == {"pixels": "scaled to [0, 1]"}
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["prune_at_start"] is True and cfg["input_shape"] == [1, 28, 28]
    assert {p.name for p in run.iterdir()} >= {"checkpoint.pt", "config.json", "metrics.csv", "result.json"}


def test_the_exported_outside_model_agrees_with_torch_on_every_test_image(pruned) -> None:
    run, net_dir, _ = pruned
    agreement = json.loads((net_dir / "agreement.json").read_text())
    assert agreement["identical"] == agreement["images"] == 1000
    net = IntNetwork.load(net_dir)
    assert [layer.format for layer in net.layers] == ["dense", "kofn", "kofn", "kofn"]
    for layer in net.layers[1:]:
        assert (layer.weights.k, layer.weights.n, layer.weight_bits) == (2, 16, 8)
    assert net.meta["model_file"] == json.loads((run / "result.json").read_text())["model_file"]
    assert net.meta["run"] == str(run.resolve())
    # one-shot (no fine-tuning): the classifier's mask keeps, per group of 16, the 2 largest |w| of its weights
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    w = ckpt["model.classifier.3.parametrizations.weight.original"].abs().reshape(10, -1)
    keep = torch.zeros_like(w, dtype=torch.bool)
    for start in range(0, 32, 16):
        keep[:, start : start + 16].scatter_(1, w[:, start : start + 16].topk(2, dim=1).indices, True)
    kept = net.layers[3].weights.to_dense() != 0
    assert not (kept & ~keep.numpy()).any()  # nothing outside the magnitude top-2 (a kept weight may round to 0)


def test_a_state_dict_that_does_not_fit_is_named_layer_by_layer(author: Path, tmp_path: Path) -> None:
    model = build_user_model(f"{author / 'outside_model.py'}:make_model")
    with pytest.raises(FormatError) as err:
        load_weights(model, author / "wrong.pth", "make_model()")
    assert str(err.value) == (
        f"--weights {author / 'wrong.pth'} does not fit make_model(): classifier.1.weight: "
        "file (32, 784), model (32, 3136); not in the model: extra.bias"
    )
    proc = dpp(
        tmp_path,
        "prune",
        "--model-file",
        f"{author / 'outside_model.py'}:make_model",
        "--weights",
        str(author / "wrong.pth"),
        "--data",
        "mnist5k",
        "--out",
        "run",
    )
    assert_one_line(proc, "classifier.1.weight: file (32, 784), model (32, 3136); not in the model: extra.bias")
    assert not (tmp_path / "run" / "result.json").exists()


@pytest.fixture(scope="module")
def npz_run(tmp_path_factory) -> tuple[Path, Path]:
    """``dpp train --data npz:...`` (uint8 NHWC images, 4 classes) with ``--normalize``, then ``dpp export``."""
    user = tmp_path_factory.mktemp("npz_user")
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 40)
    x = rng.integers(0, 60, size=(160, 8, 8, 1), dtype=np.uint8)
    for c in range(4):  # class c: a bright 4x4 quadrant
        x[y == c, (c // 2) * 4 : (c // 2) * 4 + 4, (c % 2) * 4 : (c % 2) * 4 + 4, 0] += 180
    np.savez(user / "small.npz", x=x, y=y)
    proc = dpp(
        user,
        "train",
        "--model",
        "digits",
        "--data",
        "npz:small.npz",
        "--normalize",
        "0.5,0.25",
        "--bits",
        "4",
        "--k",
        "1",
        "--n",
        "4",
        "--epochs",
        "5",
        "--batch-size",
        "16",
        "--out",
        "run",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    elsewhere = tmp_path_factory.mktemp("npz_elsewhere")
    export = dpp(elsewhere, "export", str(user / "run"), "--out", "net")
    assert export.returncode == 0, export.stdout + export.stderr
    return user, elsewhere / "net"


def test_npz_data_and_normalisation_are_recorded_and_set_the_input_scale(npz_run) -> None:
    user, net_dir = npz_run
    result = json.loads((user / "run" / "result.json").read_text())
    assert result["data"] == f"npz:{(user / 'small.npz').resolve()}"
    assert result["normalization"] == {"pixels": "scaled to [0, 1]", "mean": [0.5], "std": [0.25]}
    net = IntNetwork.load(net_dir)
    assert net.input_scale == Normalization((0.5,), (0.25,)).input_scale() == 2.0 / 127
    assert net.meta["normalization"]["mean"] == [0.5] and net.meta["data"] == result["data"]
    agreement = json.loads((net_dir / "agreement.json").read_text())
    assert agreement["identical"] == agreement["images"] == 32  # 20 % of each class of 40
    assert agreement["torch_accuracy"] > 0.5  # four quadrant classes, learnt in 40 steps


def test_export_refuses_another_normalisation_than_the_runs(npz_run) -> None:
    user, _ = npz_run
    proc = dpp(user, "export", "run", "--out", "net2", "--normalize", "0.5,0.5")
    assert_one_line(proc, "--normalize '0.5,0.5' differs from the normalisation run")
    assert not (user / "net2" / "network.json").exists()


@pytest.mark.parametrize(
    "args, needle",
    [
        (
            ["train", "--model", "digits", "--data", "npz:missing.npz", "--epochs", "1", "--out", "r"],
            "missing.npz does not exist",
        ),
        (
            ["train", "--model", "digits", "--data", "pickle:x", "--epochs", "1", "--out", "r"],
            "--data 'pickle:x': expected one of mnist5k, digits, idx:DIR, npz:FILE or cifar10:DIR",
        ),
        (
            ["train", "--model", "digits", "--normalize", "0.1,0.2,0.3", "--epochs", "1", "--out", "r"],
            "--normalize '0.1,0.2,0.3': channel 0 is '0.1,0.2,0.3', expected MEAN,STD",
        ),
        (
            ["train", "--model", "digits", "--normalize", "0.1,0.2;0.3,0.4", "--epochs", "1", "--out", "r"],
            "has 2 MEAN,STD pair(s) but the images have 1 channel(s)",
        ),
        (
            ["train", "--model-file", "nothere.py:make", "--data", "digits", "--epochs", "1", "--out", "r"],
            "nothere.py does not exist, expected a Python file",
        ),
        (["prune", "--model-file", "model.py", "--data", "digits", "--out", "r"], "expected FILE.py:FACTORY"),
        (
            ["prune", "--model-file", "model.py:build", "--data", "digits", "--out", "r"],
            "model.py has no function 'build' (callables in it: ['make'])",
        ),
        (
            ["prune", "--model-file", "model.py:make", "--data", "digits", "--method", "dense", "--out", "r"],
            "--method must be one of",
        ),
        (
            ["prune", "--model-file", "model.py:make", "--data", "digits", "--layers", "fc", "--out", "r"],
            "--layers: 'fc' is not a Conv2d or Linear of the model (they are: ['0.0', '0.2'])",
        ),
        (
            [
                "prune",
                "--model-file",
                "model.py:make",
                "--data",
                "digits",
                "--n",
                "16",
                "--layers",
                "0.2",
                "--out",
                "r",
            ],
            "0.2: n=16 is larger than the fan-in of each of its 4 groups",
        ),
        (["compare", "--model", "digits", "--data", "npz:missing.npz", "--out", "c"], "missing.npz does not exist"),
        (["flow", "--net", "r", "--out", "f"], "dpp flow --net needs --data SPEC"),
        (["flow", "--data", "digits", "--out", "f"], "do not fit model 'lenet300'"),
    ],
)
def test_bad_specs_are_one_line_before_any_training(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "model.py").write_text(
        "from torch import nn\n\n\ndef make():\n    return nn.Sequential(nn.Sequential("
        "nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3, groups=4)))\n"
    )
    (tmp_path / "r").mkdir()
    proc = dpp(tmp_path, *args)
    assert_one_line(proc, needle)
    assert "loss" not in proc.stdout and not (tmp_path / "r" / "result.json").exists()
