"""k-of-n masks on grouped and depthwise convolutions: exact counts along each group's fan-in, refusals naming
the layer, the default layer choice of ``dpp prune``, and export of one matmul per group."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dpp.baselines import attach_magnitude, attach_random, attach_srste
from dpp.errors import DPPError
from dpp.export import export_model
from dpp.graph_quant import QuantGraph
from dpp.kofn import KofNMatrix
from dpp.models import MobileNetTiny
from dpp.parametrize import default_prune_layers, layout_for, masked_layers, sparsify

torch.set_num_threads(1)

ATTACH = {
    "dpp": lambda m, k, n, g, layers: sparsify(m, k, n, g, layers, seed=3),
    "magnitude": attach_magnitude,
    "random": lambda m, k, n, g, layers: attach_random(m, k, n, g, layers, seed=3),
    "srste": attach_srste,
}


def row_masks(model: nn.Module) -> dict[str, np.ndarray]:
    """Each masked layer's deterministic mask as (rows, fan-in per group) in PyTorch's column order."""
    model.eval()
    if any(isinstance(m, nn.Conv2d) for m in model.modules()):
        model(torch.zeros(1, model[0].in_channels, 6, 6))  # SR-STE records its mask in a forward pass
    return {
        name: mask.weight_mask().expand(mod.weight.shape).reshape(mod.weight.shape[0], -1).numpy()
        for name, mod, mask in masked_layers(model)
    }


def expected_counts(cols: int, k: int, n: int, block: int = 1) -> list[int]:
    """Kept columns per group of n slots (block columns each) along one row: k, the last partial min(k, r)."""
    slots = cols // block
    return [min(k, min(n, slots - start)) * block for start in range(0, slots, n)]


@pytest.mark.parametrize("method", sorted(ATTACH))
def test_grouped_conv_keeps_exactly_k_of_n_within_each_groups_fan_in(method: str) -> None:
    # groups=2: each row's fan-in is 3*3*4/2 = 18 weights = two groups of 8 and a partial group of 2
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(4, 6, 3, padding=1, groups=2))
    ATTACH[method](model, 3, 8, "weight", ["0"])
    mask = row_masks(model)["0"]
    assert mask.shape == (6, 18)
    for row in mask:
        counts = [int(row[s : s + 8].sum()) for s in range(0, 18, 8)]
        assert counts == expected_counts(18, 3, 8) == [3, 3, 2]


@pytest.mark.parametrize("method", sorted(ATTACH))
def test_depthwise_conv_keeps_k_of_each_kernel_row_at_n_3(method: str) -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(5, 5, 3, padding=1, groups=5))
    ATTACH[method](model, 1, 3, "weight", ["0"])
    mask = row_masks(model)["0"]
    assert mask.shape == (5, 9)  # fan-in of a depthwise 3x3 = its 9 taps
    assert (mask.reshape(5, 3, 3).sum(axis=2) == 1).all()  # one tap of each kernel row, every channel


def test_depthwise_at_n_8_keeps_k_of_the_first_8_taps_and_the_ninth() -> None:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4))
    sparsify(model, 2, 8, "weight", ["0"], seed=0)
    mask = row_masks(model)["0"]
    assert (mask[:, :8].sum(axis=1) == 2).all() and (mask[:, 8] == 1).all()


def test_grouped_conv_at_kernel_granularity_keeps_whole_kernels_per_group() -> None:
    # groups=2, 16 input channels: 8 kernels of 3x3 per group; k=1 of every n=4 consecutive kernels
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(16, 4, 3, groups=2))
    attach_magnitude(model, 1, 4, "kernel", ["0"])
    mask = row_masks(model)["0"].reshape(4, 8, 9)
    assert set(np.unique(mask.sum(axis=2))) == {0, 9}  # a kernel is kept or dropped whole
    assert (mask.sum(axis=2).reshape(4, 2, 4).sum(axis=2) == 9).all()  # one kernel of each 4


def test_grouped_conv_at_filter_granularity_groups_filters_inside_a_conv_group() -> None:
    torch.manual_seed(4)
    model = nn.Sequential(nn.Conv2d(4, 8, 3, groups=2))
    attach_magnitude(model, 1, 2, "filter", ["0"])
    kept = row_masks(model)["0"].any(axis=1)
    assert kept.reshape(4, 2).sum(axis=1).tolist() == [1, 1, 1, 1]
    with pytest.raises(
        DPPError,
        match=r"^conv: filter granularity needs n to divide the 2 output filters of "
        r"each of its 4 groups \(got n=4\)$",
    ):
        layout_for(nn.Conv2d(4, 8, 3, groups=4), 1, 4, "filter", "conv")


@pytest.mark.parametrize(
    "granularity, n, fan_in, unit",
    [
        ("weight", 16, 9, r"weights \(kh\*kw\*in_channels/groups\)"),
        ("kernel", 2, 1, r"kernels \(input channels per group\)"),
    ],
)
def test_n_larger_than_a_groups_fan_in_is_refused_naming_the_layer(
    granularity: str, n: int, fan_in: int, unit: str
) -> None:
    model = nn.Sequential(nn.Conv2d(8, 8, 1), nn.Sequential(nn.Conv2d(8, 8, 3, groups=8)))
    with pytest.raises(
        DPPError,
        match=rf"^1\.0: n={n} is larger than the fan-in of each of its 8 groups "
        rf"\({fan_in} {unit}\); choose n <= {fan_in}",
    ):
        sparsify(model, 1, n, granularity, ["0", "1.0"])
    assert not masked_layers(model)  # checked before any mask attached


def test_default_prune_layers_leave_small_fan_ins_dense_with_the_reason() -> None:
    model = MobileNetTiny()
    pruned, dense = default_prune_layers(model, 8, "kernel")
    depthwise = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert [name for name, _ in dense] == ["features.0"] + depthwise
    assert dict(dense)["features.3.0"] == "fan-in 1 kernels per group < n=8"
    assert dict(dense)["features.0"] == "fan-in 1 kernels per group < n=8"
    assert pruned == ["features.3.3", "features.4.3", "features.5.3", "classifier.2"]
    pruned_w, dense_w = default_prune_layers(model, 8, "weight")  # 9 taps >= 8: everything
    assert dense_w == [] and len(pruned_w) == 8
    _, dense_f = default_prune_layers(model, 8, "filter")
    assert dense_f[-1] == ("classifier.2", "the classifier (filter granularity keeps it dense)")
    assert ("features.3.0", "n=8 does not divide its 1 filters per group") in dense_f


def test_a_masked_depthwise_conv_exports_one_kofn_matrix_per_group_equal_to_torch() -> None:
    torch.manual_seed(5)
    model = nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, padding=1, groups=6),
        nn.BatchNorm2d(6),
        nn.ReLU6(),
        nn.Conv2d(6, 6, 1, groups=3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(6 * 5 * 5, 4),
    )
    sparsify(model, 1, 3, "weight", ["3"], seed=1)
    attach_magnitude(model, 1, 2, "weight", ["6"])
    x = torch.rand(64, 2, 5, 5)
    net = export_model(model.eval(), x[:1], bits=6, calibration=x)
    matmuls = [[net.layers[i] for i in node["layers"]] for node in net.nodes if node["op"] == "matmul"]
    depthwise, grouped = matmuls[1], matmuls[2]
    assert len(depthwise) == 6 and len(grouped) == 3
    for layer in depthwise:
        assert isinstance(layer.weights, KofNMatrix) and (layer.rows, layer.cols) == (1, 9)
        kept = layer.weights.to_dense() != 0
        assert kept.reshape(3, 3).sum(axis=1).max() <= 1  # a kept tap may round to 0, never a second one
        assert (layer.weights.k, layer.weights.n) == (1, 3)
    for layer in grouped:
        assert (layer.rows, layer.cols, layer.weights.k, layer.weights.n) == (2, 2, 1, 2)
    qg = QuantGraph(model, x[:1], 6).eval()  # the model as export ran it: the same logits, integer for integer
    qg.calibrate(x)
    scale = next(r.out_scale for r in qg.integer_nodes(x[:1]) if r.name == qg.spec.output)
    with torch.no_grad():
        torch_ints = torch.round(qg(x) / scale).numpy().astype(np.int64)
    assert np.array_equal(net.forward(net.quantize_input(x.numpy())), torch_ints)
    assert math.isclose(net.input_scale, 1 / 127)
