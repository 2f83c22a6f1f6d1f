"""Training through QuantGraph: ``dpp train --model resnet8 | mobilenet`` (BatchNorm kept in training, folded in the
fake-quantised path) writes a run that reloads identically and exports with integers equal to torch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from dpp.errors import DPPError
from dpp.export import run_export
from dpp.graph_quant import QuantGraph
from dpp.parametrize import masked_layers
from dpp.qnet import QuantNet
from dpp.train import TrainConfig, build_run_model, load_run, runs_as_graph, save_run, train

torch.set_num_threads(1)


@pytest.fixture(scope="module", params=["resnet8", "mobilenet"])
def trained(request, tmp_path_factory) -> tuple[TrainConfig, Path, object]:
    cfg = TrainConfig(model=request.param, data="digits", method="dpp", k=2, n=8, bits=4, epochs=2, seed=1)
    result = train(cfg)
    run = tmp_path_factory.mktemp(request.param) / "run"
    save_run(result, run)
    return cfg, run, result


def test_graph_models_train_as_a_quantgraph_with_batchnorm_statistics_learnt(trained) -> None:
    cfg, _, result = trained
    assert isinstance(result.model, QuantGraph) and result.config.input_shape == [1, 8, 8]
    bns = [m for m in result.model.model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(int(bn.num_batches_tracked) > 0 for bn in bns)  # running statistics updated in training
    assert all(not torch.equal(bn.running_var, torch.ones_like(bn.running_var)) for bn in bns)
    # every conv / linear k-of-n: 2 of each 8 weights (9-tap depthwise kernels: 2 of 8 plus the 9th tap)
    weights = kept = 0
    for _, mod, mask in masked_layers(result.model.net):
        m = mask.weight_mask().expand(mod.weight.shape).reshape(mod.weight.shape[0], -1)
        cols = m.shape[1]
        per_row = sum(min(2, min(8, cols - s)) for s in range(0, cols, 8))
        assert (m.sum(dim=1) == per_row).all()
        weights, kept = weights + m.numel(), kept + int(m.sum())
    assert result.density == pytest.approx(kept / weights)


def test_the_run_reloads_to_the_same_predictions_and_exports_exactly(trained, tmp_path: Path) -> None:
    cfg, run, result = trained
    cfg2, model = load_run(run)
    assert cfg2 == result.config
    x = torch.rand(16, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(model(x), result.model.eval()(x))
    report = run_export(run, tmp_path / "net")
    assert report["identical"] == report["images"] == 360  # every digits test image, integer = torch
    assert report["torch_accuracy"] == pytest.approx(result.test_accuracy)


def test_which_models_run_as_a_graph() -> None:
    assert not runs_as_graph(TrainConfig(model="lenet300"))
    assert not runs_as_graph(TrainConfig(model="digits", normalize="0,1"))  # the identity keeps QuantNet
    assert runs_as_graph(TrainConfig(model="digits", normalize="0.5,0.25"))
    assert runs_as_graph(TrainConfig(model="resnet8"))
    assert isinstance(build_run_model(TrainConfig(model="digits")), QuantNet)
    with pytest.raises(DPPError, match="runs as a traced graph and needs input_shape"):
        build_run_model(TrainConfig(model="resnet8"))
    with pytest.raises(DPPError, match=r"^model must be one of \('lenet300', 'lenet5', 'digits', 'resnet8', "):
        TrainConfig(model="vgg")
