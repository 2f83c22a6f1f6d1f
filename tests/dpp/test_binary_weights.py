"""Binary weights (bits = 1): sign with a per-layer scale, straight-through; exported as 2-bit words and run
bit-exact by the integer reference."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dpp.data import load_dataset
from dpp.export import export_network, measure_agreement, run_export
from dpp.kofn import KofNMatrix
from dpp.network import IntNetwork
from dpp.quant import check_weight_bits, fake_quant_weight, storage_weight_bits, weight_qmax, weight_scale
from dpp.recipes import recipe_config
from dpp.reference import linear_int
from dpp.train import TrainConfig, save_run, train

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_binary_fake_quant_by_hand():
    w = torch.tensor([[0.5, -0.25, 0.0, 1.0]], requires_grad=True)
    w_int, s = fake_quant_weight(w, 1)
    assert float(s) == pytest.approx((0.5 + 0.25 + 1.0) / 3)  # mean |W| over the non-zero (kept) weights
    assert w_int.tolist() == [[1.0, -1.0, 0.0, 1.0]]  # a pruned 0 stays 0
    (w_int * torch.tensor([[1.0, 2.0, 3.0, 4.0]])).sum().backward()
    assert w.grad[0].tolist() == pytest.approx([1 / float(s), 2 / float(s), 3 / float(s), 4 / float(s)])  # STE
    assert float(weight_scale(torch.zeros(3), 1)) == 1.0
    assert weight_qmax(1) == 1 and weight_qmax(2) == 1 and weight_qmax(8) == 127
    assert storage_weight_bits(1) == 2 and storage_weight_bits(2) == 2 and storage_weight_bits(8) == 8
    assert check_weight_bits(1) == 1
    with pytest.raises(ValueError, match="bits must be >= 1"):
        check_weight_bits(0)


def test_reference_runs_binary_weights_in_2_bit_words_exactly():
    w = np.array([[1, -1, 0, 0, 1, 0, 0, -1], [0, 0, -1, 1, 0, -1, 1, 0]])
    mask = w != 0
    m = KofNMatrix.from_dense(w, mask, 4, weight_bits=storage_weight_bits(1), k=2)
    assert m.weight_bits == 2 and set(np.unique(m.values)) == {-1, 1}
    x = np.array([[3, -2, 5, 1, -4, 7, 0, 2], [-128, 127, 0, 1, 1, 0, -1, 5]])
    # image 0: row 0 = 3 + 2 - 4 - 2 = -1, row 1 = -5 + 1 - 7 + 0 = -11
    # image 1: row 0 = -128 - 127 + 1 - 5 = -259, row 1 = 0 + 1 + 0 - 1 = 0
    y = linear_int(x, m, np.array([10, -3]), 1, 1, 8, False)  # (acc + bias + 1) >> 1
    assert y.tolist() == [[(-1 + 10 + 1) >> 1, (-11 - 3 + 1) >> 1], [(-259 + 10 + 1) >> 1, (0 - 3 + 1) >> 1]]
    assert np.array_equal(y, linear_int(x, w, np.array([10, -3]), 1, 1, 8, False))


@pytest.mark.parametrize("granularity", ["kernel", "filter"])
def test_binary_network_exports_bit_exact(digits, granularity):
    res = train(
        recipe_config("paper", model="digits", k=1, n=4, granularity=granularity, bits=1, epochs=2, seed=0), digits
    )
    assert res.model.bits == 1
    net = export_network(res.model, digits.x_test)
    for layer in net.layers:
        assert layer.weight_bits == 2
        values = layer.weights.values if isinstance(layer.weights, KofNMatrix) else np.asarray(layer.weights)
        assert set(np.unique(values)) <= {-1, 0, 1}
        if isinstance(layer.weights, KofNMatrix):
            assert layer.weights.weight_bits == 2 and set(np.unique(values)) == {-1, 1}  # every kept weight ±1
    agree = measure_agreement(res.model, net, digits.x_test, digits.y_test)
    assert agree.identical == agree.images == len(digits.y_test)
    assert agree.torch_accuracy == agree.int_accuracy


def test_run_export_of_a_binary_run(tmp_path, digits):
    res = train(TrainConfig(model="digits", method="magnitude_qat", k=2, n=8, bits=1, epochs=2, seed=1), digits)
    save_run(res, tmp_path / "run")
    report = run_export(tmp_path / "run", tmp_path / "net")
    assert (report["weight_bits"], report["storage_weight_bits"], report["agreement"]) == (1, 2, 1.0)
    assert json.loads((tmp_path / "net" / "agreement.json").read_text())["identical"] == len(digits.y_test)
    net = IntNetwork.load(tmp_path / "net")
    assert [layer.weight_bits for layer in net.layers] == [2, 2, 2]
    assert net.meta["weight_bits"] == 1
