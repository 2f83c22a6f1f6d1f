"""BatchNorm recalibration after training (QuantGraph.recalibrate_batchnorm, TrainConfig.bn_recalibrate): the running
statistics become the exact statistics of the evaluated model on the given images, nothing else moves."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch import nn

from dpp.graph_quant import QuantGraph
from dpp.parametrize import sparsify
from dpp.train import TrainConfig, train

torch.set_num_threads(1)


class ConvBN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def masked_model(seed: int = 0) -> ConvBN:
    torch.manual_seed(seed)
    model = ConvBN()
    sparsify(model, 2, 4, "weight", layers=["conv"], seed=seed)
    model.train()
    for _ in range(5):  # running statistics of sampled (training-mode) masks
        model(torch.rand(8, 1, 6, 6))
    return model


def test_float_statistics_are_the_exact_ones_of_the_evaluation_mask() -> None:
    model = masked_model()
    qg = QuantGraph(model, torch.rand(2, 1, 6, 6)).train()
    before = {k: v.clone() for k, v in qg.state_dict().items() if "running" not in k and "num_batches" not in k}
    x = torch.rand(50, 1, 6, 6)
    assert qg.recalibrate_batchnorm(x, batch=7) == 1  # batches of 7: a cumulative average, not the last batch
    assert model.bn.momentum == 0.1 and qg.training and model.bn.training  # restored as they were
    model.eval()
    with torch.no_grad():
        y = model.conv(x)  # the evaluation mask (deterministic top-k)
    bn = model.bn
    # per-batch means averaged with equal weight over 7 full batches and a last batch of 1
    chunks = [y[i : i + 7] for i in range(0, 50, 7)]
    want_mean = torch.stack([c.mean((0, 2, 3)) for c in chunks]).mean(0)
    want_var = torch.stack([c.var((0, 2, 3), unbiased=True) for c in chunks]).mean(0)
    assert torch.allclose(bn.running_mean, want_mean, atol=1e-6)
    assert torch.allclose(bn.running_var, want_var, atol=1e-5)
    after = {k: v for k, v in qg.state_dict().items() if k in before}
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights, logits, act ranges untouched
    # one batch holding all images: exactly the statistics of the whole set
    qg.eval()
    qg.recalibrate_batchnorm(x, batch=50)
    assert not qg.training and not bn.training
    assert torch.allclose(bn.running_mean, y.mean((0, 2, 3)), atol=1e-6)
    assert torch.allclose(bn.running_var, y.var((0, 2, 3), unbiased=True), atol=1e-5)


def test_quantised_path_uses_the_fake_quantised_matmul_and_changes_the_statistics() -> None:
    model = masked_model(1)
    x = torch.rand(40, 1, 6, 6)
    qg = QuantGraph(model, x[:2], bits=4)
    qg.calibrate(x)
    act = qg.act_max.clone()
    old = model.bn.running_mean.clone()
    qg.recalibrate_batchnorm(x, batch=40)
    assert not torch.allclose(model.bn.running_mean, old)
    assert torch.equal(qg.act_max, act)
    mean = model.bn.running_mean.clone()
    qg.recalibrate_batchnorm(x, batch=40)  # idempotent
    assert torch.allclose(model.bn.running_mean, mean, atol=1e-6)


def test_a_model_without_batchnorm_is_left_alone() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    qg = QuantGraph(model, torch.rand(2, 1, 6, 6))
    assert qg.batchnorms() == [] and qg.recalibrate_batchnorm(torch.rand(4, 1, 6, 6)) == 0


@pytest.mark.parametrize("recal", [True, False])
def test_training_recalibrates_by_default_and_records_it(recal) -> None:
    cfg = TrainConfig(model="resnet8", data="digits", method="dpp", k=2, n=8, epochs=1, seed=0, bn_recalibrate=recal)
    res = train(cfg)
    assert dataclasses.asdict(res.config)["bn_recalibrate"] is recal  # what config.json records
    bns = res.model.batchnorms()
    tracked = {int(bn.num_batches_tracked) for bn in bns}
    # digits: 1437 training images in batches of 64 = 23 steps; recalibration starts the statistics (and their
    # count) again on the same 1437 images in batches of 256 = 6
    assert tracked == ({6} if recal else {23})
