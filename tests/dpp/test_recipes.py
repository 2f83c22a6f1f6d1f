"""Training recipes (dpp.recipes): the paper recipe against hand-computed values, the warm-up recipe unchanged,
and prune-then-quantise (magnitude_qat)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

from analysis.cli import app
from dpp import train as train_module
from dpp.data import load_dataset
from dpp.parametrize import KofNMask, entropy_penalty, masked_layers, sparsify
from dpp.recipes import PAPER, WARMUP, get_recipe, recipe_config
from dpp.train import TrainConfig, build_run_model, load_run, save_run, train

torch.set_num_threads(1)
runner = CliRunner()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_warmup_recipe_is_exactly_todays_default():
    assert recipe_config("warmup") == TrainConfig()
    run = dict(model="lenet5", method="dpp", k=2, n=8, granularity="kernel", bits=4, seed=3)
    assert recipe_config("warmup", **run) == TrainConfig(**run)
    assert TrainConfig().recipe == "warmup" and TrainConfig().noise_scale_conv is None


def test_paper_recipe_fields_per_granularity_and_bits():
    cfg = recipe_config("paper", model="lenet5", granularity="kernel")
    assert (cfg.recipe, cfg.warmup_fraction, cfg.init, cfg.epochs, cfg.batch_size) == ("paper", 0.0, "normal", 40, 64)
    assert (cfg.lr, cfg.logit_lr, cfg.entropy_weight) == (1e-3, None, 5e-5)
    assert (cfg.noise_scale, cfg.noise_scale_conv) == (0.1, 0.01)
    assert (cfg.schedule, cfg.t_start, cfg.t_end) == ("linear", 5.0, 0.5)
    assert recipe_config("paper", granularity="filter").entropy_weight == 1e-5
    assert recipe_config("paper", granularity="weight").entropy_weight == 5e-5
    quantised = recipe_config("paper", model="lenet5", bits=4)
    assert (quantised.noise_scale, quantised.noise_scale_conv) == (0.001, None)  # 0.001 on every layer
    # explicit values win; a noise scale given alone applies to every layer
    mine = recipe_config("paper", model="lenet5", noise_scale=0.5, epochs=3, entropy_weight=0.0)
    assert (mine.noise_scale, mine.noise_scale_conv, mine.epochs, mine.entropy_weight) == (0.5, None, 3, 0.0)
    with pytest.raises(ValueError, match="recipe must be one of"):
        get_recipe("fast")
    with pytest.raises(ValueError, match="unknown config keys"):
        recipe_config("paper", temperature=1.0)
    with pytest.raises(ValueError, match="recipe must be one of"):
        TrainConfig(recipe="fast")


def test_paper_temperature_anneal_matches_the_reference_formula():
    schedule = recipe_config("paper").temperature_schedule()
    # T = 5 * (1 - 0.9 * epoch / (epochs - 1)) over 40 epochs: 5.0, 3.5 at 13, 2.0 at 26, 0.5 at 39
    assert [schedule(e, 40) for e in (0, 13, 26, 39)] == pytest.approx([5.0, 3.5, 2.0, 0.5], abs=1e-12)
    for e in range(40):
        assert schedule(e, 40) == pytest.approx(5 * (1 - 0.9 * e / 39), abs=1e-12)


def test_paper_noise_scale_per_layer_type_and_logit_init():
    model = build_run_model(recipe_config("paper", model="lenet5", granularity="kernel", seed=7))
    got = [
        (type(mod).__name__.removeprefix("Parametrized"), mask.noise_scale) for _, mod, mask in masked_layers(model.net)
    ]
    assert got == [("Conv2d", 0.01), ("Conv2d", 0.01), ("Linear", 0.1), ("Linear", 0.1)]
    quantised = build_run_model(recipe_config("paper", model="lenet5", granularity="kernel", bits=1))
    assert [m.noise_scale for _, _, m in masked_layers(quantised.net)] == [0.001] * 4
    # logits: Normal(0, 0.5) from the run's seed (filter level: Normal(0, 1)), the first layer's drawn first
    first = masked_layers(model.net)[0][2]
    expect = torch.randn(first.layout.logit_shape, generator=torch.Generator().manual_seed(7)) * 0.5
    assert torch.equal(first.logits.detach(), expect)
    filt = masked_layers(build_run_model(recipe_config("paper", model="digits", granularity="filter", seed=2)).net)
    expect = torch.randn(filt[0][2].layout.logit_shape, generator=torch.Generator().manual_seed(2)) * 1.0
    assert torch.equal(filt[0][2].logits.detach(), expect)


def test_entropy_regulariser_against_hand_computed_values():
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    sparsify(net, 1, 4, "weight", seed=0)
    mask = masked_layers(net)[0][2]
    assert isinstance(mask, KofNMask) and mask.logits.shape == (2, 1, 4)
    with torch.no_grad():  # group 0 uniform: H = ln 4; group 1 p = (1, 1, 2, 4) / 8: H = 1.75 ln 2
        mask.logits.copy_(torch.tensor([[[0.0, 0.0, 0.0, 0.0]], [[0.0, 0.0, math.log(2), math.log(4)]]]))
    penalty = entropy_penalty(net).detach()
    assert float(penalty) == pytest.approx(math.log(4) + 1.75 * math.log(2), abs=1e-6)
    assert PAPER.lambda_for("weight") * float(penalty) == pytest.approx(5e-5 * 3.75 * math.log(2), rel=1e-6)
    assert PAPER.lambda_for("filter") == 1e-5 and WARMUP.lambda_for("weight") == 0.0


def test_trainer_adds_the_regulariser_once_per_step_only_with_a_weight(digits, monkeypatch):
    calls = []
    real = train_module.entropy_penalty

    def spy(net):
        calls.append(1)
        return real(net)

    monkeypatch.setattr(train_module, "entropy_penalty", spy)
    train(recipe_config("paper", model="digits", k=1, n=4, epochs=1), digits)
    assert len(calls) == math.ceil(len(digits.x_train) / 64)  # every mini-batch of 64
    calls.clear()
    train(recipe_config("warmup", model="digits", k=1, n=4, epochs=2), digits)
    assert calls == []  # lambda = 0: never computed


def test_paper_recipe_masks_from_the_first_step(digits):
    res = train(recipe_config("paper", model="digits", k=1, n=4, epochs=2, seed=1), digits)
    assert [round(h["density"], 2) for h in res.history] == [0.25, 0.25]
    assert res.summary()["recipe"] == "paper"


def test_train_cli_recipe_paper_records_it(tmp_path):
    out = tmp_path / "run"
    r = runner.invoke(
        app,
        [
            "train",
            "--recipe",
            "paper",
            "--model",
            "digits",
            "--k",
            "1",
            "--n",
            "4",
            "--granularity",
            "kernel",
            "--epochs",
            "1",
            "--weight-bits",
            "1",
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    result = json.loads((out / "result.json").read_text())
    assert (result["recipe"], result["bits"], result["epochs"]) == ("paper", 1, 1)
    config = json.loads((out / "config.json").read_text())
    assert (config["entropy_weight"], config["noise_scale"], config["warmup_fraction"]) == (5e-5, 0.001, 0.0)
    r = runner.invoke(app, ["train", "--help"])
    assert "paper" in r.output and "warmup" in r.output and "--recipe" in r.output


def test_magnitude_qat_trains_in_float_then_quantised(tmp_path, digits):
    with pytest.raises(ValueError, match="needs bits"):
        TrainConfig(method="magnitude_qat")
    cfg = TrainConfig(model="digits", method="magnitude_qat", k=1, n=4, bits=2, epochs=4, seed=0)
    assert cfg.prune_epoch == 2
    assert build_run_model(cfg).bits is None and build_run_model(cfg, pruned=True).bits == 2
    res = train(cfg, digits)
    assert res.model.bits == 2
    assert [round(h["density"], 2) for h in res.history] == [1.0, 1.0, 0.25, 0.25]
    save_run(res, tmp_path)
    _, model = load_run(tmp_path)
    assert model.bits == 2
    assert torch.equal(model(digits.x_test).argmax(1), res.model.eval()(digits.x_test).argmax(1))
