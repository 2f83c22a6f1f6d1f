"""Export of traced models (dpp.graph_quant + dpp.export) and the agreement of integers and torch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dpp.data import load_dataset
from dpp.errors import DPPError
from dpp.export import export_graph, export_model, export_network, measure_agreement
from dpp.graph_quant import QuantGraph, quantize_multipliers
from dpp.kofn import KofNMatrix
from dpp.models import DATASET_OF, GRAPH_MODELS, MODELS, MobileNetTiny, ResNet8, build_model
from dpp.network import IntNetwork
from dpp.parametrize import sparsify
from dpp.qnet import QuantNet
from tests.load_file import load_module

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def outside_model(image_size: int) -> nn.Module:
    return load_module(DATA / "outside_model.py").make_model(image_size)


def fit(model: nn.Module, data, steps: int, lr: float = 1e-2, seed: int = 0) -> nn.Module:
    """A few Adam steps (whatever ``model`` is: a float module, or a QuantGraph with bits)."""
    opt = torch.optim.Adam(model.parameters(), lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (64,), generator=gen)
        loss = F.cross_entropy(model(data.x_train[idx]).float(), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def check_exact(qg: QuantGraph, net: IntNetwork, x: torch.Tensor) -> None:
    """The integer network's output equals the fake-quantised model's integers, value for value."""
    scale = next(r.out_scale for r in qg.integer_nodes(x[:1]) if r.name == qg.spec.output)
    with torch.no_grad():
        torch_ints = torch.round(qg(x) / scale).numpy().astype(np.int64)
    assert np.array_equal(torch_ints.reshape(len(x), -1), net.forward(net.quantize_input(x.numpy())))


@pytest.mark.parametrize(
    "make, bits, steps",
    [
        (lambda: build_model("digits", 0), 8, 40),
        (lambda: ResNet8(width=8), 8, 60),
        (lambda: ResNet8(width=8), 4, 60),
        (lambda: MobileNetTiny(width=8), 8, 60),
        (lambda: MobileNetTiny(width=8), 5, 60),
        (lambda: outside_model(8), 6, 40),
    ],
)
def test_post_training_export_agrees_with_the_fake_quantised_model(tmp_path, digits, make, bits, steps) -> None:
    torch.manual_seed(0)
    model = fit(make(), digits, steps)
    qg = QuantGraph(model, digits.x_test[:2], bits)
    qg.calibrate(digits.x_train[:512])
    net = export_graph(qg, digits.x_test)
    net.save(tmp_path)
    loaded = IntNetwork.load(tmp_path)
    agree = measure_agreement(qg, loaded, digits.x_test, digits.y_test)
    assert agree.rate >= 0.995 and agree.images == 360
    assert agree.torch_accuracy > 0.5  # a trained model, not a constant one
    check_exact(qg, loaded, digits.x_test[:60])
    assert all(node["op"] != "dropout" for node in loaded.nodes)


def test_the_built_in_chain_exports_the_same_integers_traced_or_not(digits) -> None:
    net = build_model("digits", 1)
    sparsify(net, 1, 4, "kernel", seed=1)
    qnet = fit(QuantNet(net, 4), digits, 25)
    qg = QuantGraph(net, digits.x_test[:2], 4)
    qg.act_max.copy_(qnet.act_max[:-1])  # the classifier's slot is not used by either
    a, b = export_network(qnet, digits.x_test), export_graph(qg, digits.x_test)
    assert (
        [n["op"] for n in a.nodes] == [n["op"] for n in b.nodes] == ["matmul", "maxpool", "reshape", "matmul", "matmul"]
    )
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert isinstance(lb.weights, KofNMatrix) and lb.weights.block == la.weights.block
        assert np.array_equal(la.dense_weights(), lb.dense_weights()) and np.array_equal(la.bias, lb.bias)
        assert (la.multiplier, la.shift, la.relu, la.out_bits) == (lb.multiplier, lb.shift, lb.relu, lb.out_bits)
    x = a.quantize_input(digits.x_test.numpy())
    assert np.array_equal(a.forward(x), b.forward(x))


def test_quantised_training_folds_batch_statistics_and_exports_exactly(digits) -> None:
    torch.manual_seed(2)
    model = MobileNetTiny(width=8)
    qg = fit(QuantGraph(model, digits.x_test[:2], 4), digits, 30, lr=5e-3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert all(int(bn.num_batches_tracked) == 30 for bn in bns)
    assert all(bool(bn.running_mean.abs().sum() > 0) for bn in bns)
    assert bool((qg.act_max > 0).all()) and len(qg.calibrated) == 7  # 7 matmuls before the classifier
    net = export_model(qg, digits.x_test[:1])  # ranges from training: no calibration needed
    assert measure_agreement(qg, net, digits.x_test, digits.y_test).rate == 1.0
    check_exact(qg, net, digits.x_test[:40])


def test_masks_export_as_k_of_n_and_groups_as_one_layer_each(digits) -> None:
    torch.manual_seed(3)
    model = MobileNetTiny(width=8)
    pointwise = [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1)]
    sparsify(model, 2, 8, "weight", layers=pointwise + ["classifier.2"], seed=3)
    fit(model, digits, 30)
    net = export_model(model, digits.x_test[:1], bits=6, calibration=digits.x_train[:256])
    kinds = [(layer.format, layer.rows, layer.cols) for layer in net.layers]
    assert kinds[:9] == [("dense", 8, 9)] + [("dense", 1, 9)] * 8  # stem, then the first depthwise per group
    assert kinds[9] == ("kofn", 16, 8) and kinds[-1] == ("kofn", 10, 32)
    assert sum(1 for f, _, _ in kinds if f == "kofn") == 4
    groups = [len(n["layers"]) for n in net.nodes if n["op"] == "matmul"]
    assert groups == [1, 8, 1, 16, 1, 32, 1, 1]
    for layer in net.layers:
        if layer.format == "kofn":
            assert layer.weights.k == 2 and layer.weights.n == 8 and layer.granularity == "weight"


def test_export_model_needs_ranges_and_a_known_bit_width(digits) -> None:
    model = ResNet8(width=4)
    with pytest.raises(
        DPPError,
        match=r"export_model needs calibration images: no activation range was recorded "
        r"for \['stem_0', 'layer1_conv1'",
    ):
        export_model(model, digits.x_test[:1])
    with pytest.raises(DPPError, match=r"bits must be <= 8 \(got bits=9\)"):
        export_model(model, digits.x_test[:1], bits=9, calibration=digits.x_train[:64])
    with pytest.raises(DPPError, match="integer_nodes needs a quantised QuantGraph"):
        QuantGraph(model, digits.x_test[:1]).integer_nodes(digits.x_test[:1])


def test_shared_shift_multipliers() -> None:
    assert quantize_multipliers([0.75, 0.125]) == ([24576, 4096], 15)  # 0.75 * 2**15, 0.125 * 2**15
    assert quantize_multipliers([3.0, 1e-9]) == ([24576, 1], 13)  # too small for the shift: 1
    with pytest.raises(DPPError, match="ratios must be finite numbers > 0"):
        quantize_multipliers([1.0, 0.0])


@pytest.mark.slow
@pytest.mark.parametrize("name", MODELS + GRAPH_MODELS)
def test_every_built_in_model_agrees_on_the_whole_test_split(name) -> None:
    """>= 99.5 % identical classes on all test images, after one epoch of float training, 8 and 4 bits."""
    data = load_dataset(DATASET_OF[name])
    torch.manual_seed(0)
    model = fit(build_model(name, 0), data, len(data.x_train) // 64, lr=2e-3)
    for bits in (8, 4):
        qg = QuantGraph(model, data.x_test[:2], bits)
        qg.calibrate(data.x_train[:512])
        net = export_graph(qg, data.x_test)
        agree = measure_agreement(qg, net, data.x_test, data.y_test, batch=100)
        assert agree.rate >= 0.995, (name, bits, agree)


def test_the_built_in_export_takes_overlapping_padded_max_pools(digits) -> None:
    torch.manual_seed(4)
    net = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2, 1), nn.Flatten(), nn.Linear(6 * 4 * 4, 10)
    )
    qnet = fit(QuantNet(net, 6), digits, 20)
    network = export_network(qnet, digits.x_test)
    assert network.nodes[1] == dict(name="2", op="maxpool", inputs=["0"], kernel=[3, 3], stride=[2, 2], padding=[1, 1])
    assert measure_agreement(qnet, network, digits.x_test, digits.y_test).rate == 1.0


def test_a_masked_grouped_conv_exports_one_k_of_n_matrix_per_group(digits) -> None:
    from torch.nn.utils import parametrize

    from dpp.baselines import FixedKofNMask
    from dpp.masks import topk_mask
    from dpp.parametrize import GroupLayout

    torch.manual_seed(5)
    grouped = nn.Conv2d(4, 4, 3, padding=1, groups=2)  # per group: 2 rows x (2 * 9) columns
    layout = GroupLayout("weight", 2, 6, tuple(grouped.weight.shape), 1, 18)
    parametrize.register_parametrization(
        grouped, "weight", FixedKofNMask(layout, topk_mask(torch.randn(layout.logit_shape), 2))
    )
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), grouped, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 64, 10)
    )
    fit(model, digits, 20)
    qg = QuantGraph(model, digits.x_test[:2], 5)
    qg.calibrate(digits.x_train[:256])
    net = export_graph(qg, digits.x_test)
    mats = [layer.weights for layer in net.layers[1:3]]
    assert all(isinstance(m, KofNMatrix) and (m.rows, m.cols, m.k, m.n) == (2, 18, 2, 6) for m in mats)
    kept = torch.cat([torch.from_numpy(m.mask()) for m in mats])  # the trained mask, group by group
    assert torch.equal(kept, grouped.parametrizations.weight[0].weight_mask().reshape(4, 18) > 0.5)
    assert measure_agreement(qg, net, digits.x_test, digits.y_test).rate == 1.0
