"""Export of fake-quantised torch models to the integer network, and the network's own checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpp.baselines import attach_unstructured
from dpp.data import load_dataset
from dpp.errors import FormatError
from dpp.export import export_network, measure_agreement
from dpp.kofn import KofNMatrix
from dpp.models import build_model
from dpp.network import IntNetwork, im2col
from dpp.parametrize import sparsify
from dpp.qnet import QuantNet
from dpp.quant import quantize_multiplier
from dpp.reference import linear_int

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def quick_fit(qnet: QuantNet, data, steps: int = 25) -> QuantNet:
    opt = torch.optim.Adam(qnet.parameters(), 1e-2)
    gen = torch.Generator().manual_seed(0)
    qnet.train()
    for _ in range(steps):
        idx = torch.randint(0, len(data.x_train), (64,), generator=gen)
        loss = F.cross_entropy(qnet(data.x_train[idx]).float(), data.y_train[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return qnet.eval()


@pytest.mark.parametrize("granularity, bits", [("weight", 4), ("kernel", 3), ("filter", 8)])
def test_export_reproduces_torch_bit_for_bit(tmp_path, digits, granularity, bits):
    net = build_model("digits", 1)
    sparsify(net, 1, 4, granularity, seed=1)
    qnet = quick_fit(QuantNet(net, bits), digits)
    network = export_network(qnet, digits.x_test)
    network.save(tmp_path / "net")
    loaded = IntNetwork.load(tmp_path / "net")
    agree = measure_agreement(qnet, loaded, digits.x_test, digits.y_test)
    assert agree.rate == 1.0 and agree.torch_accuracy == agree.int_accuracy
    # the logits themselves agree, not only the argmax
    x = digits.x_test[:50]
    out_scale = qnet.integer_layers(x[:1])[-1].out_scale
    with torch.no_grad():
        torch_ints = torch.round(qnet(x) / out_scale).numpy().astype(np.int64)
    int_logits = loaded.run(loaded.quantize_input(x.numpy()))[-1]
    assert np.array_equal(torch_ints, int_logits)
    if granularity == "filter":
        assert all(layer.format == "dense" for layer in loaded.layers)
    else:
        for layer in loaded.layers:
            w = layer.weights
            assert isinstance(w, KofNMatrix) and w.k == 1 and w.n == 4 and w.weight_bits == bits
            assert w.block == (9 if granularity == "kernel" and layer.kind == "conv2d" else 1)
            assert (w.indices.shape[2] == 1) and np.all(np.abs(w.values) <= 2 ** (bits - 1) - 1)


def test_layer_io_lets_any_layer_be_rerun_through_linear_int(digits):
    net = build_model("digits", 2)
    sparsify(net, 2, 8, "weight", seed=2)
    qnet = quick_fit(QuantNet(net, 4), digits, steps=5)
    network = export_network(qnet, digits.x_test)
    x = network.quantize_input(digits.x_test[:7].numpy())
    ios = network.layer_io(x)
    outs = network.run(x)
    assert len(ios) == len(network.layers) == 3
    for io in ios:
        y = linear_int(io.x, io.W, io.bias, io.multiplier, io.shift, io.out_bits, io.relu, act_bits=io.act_bits)
        assert np.array_equal(y, io.y)
    assert ios[0].x.shape == (7 * 8 * 8, 9)  # im2col rows: image, y, x; columns C*kh*kw
    assert outs[0].shape == (7, 16, 4, 4)  # conv output after its max-pool, NCHW
    assert np.array_equal(network.predict(x), np.argmax(outs[-1], axis=1))


def test_unstructured_and_dense_export_as_dense_int(tmp_path, digits):
    net = build_model("digits", 3)
    attach_unstructured(net, 0.25)
    qnet = quick_fit(QuantNet(net, 8), digits, steps=5)
    network = export_network(qnet, digits.x_test)
    network.save(tmp_path / "u")
    loaded = IntNetwork.load(tmp_path / "u")
    assert [layer.format for layer in loaded.layers] == ["dense"] * 3
    assert all(layer.granularity == "unstructured" for layer in loaded.layers)
    assert measure_agreement(qnet, loaded, digits.x_test, digits.y_test).rate == 1.0


def test_im2col_matches_torch_unfold():
    x = np.random.default_rng(0).integers(-128, 128, size=(2, 3, 6, 5))
    cols, oh, ow = im2col(x, 3, 2, 2, 1)
    ref = F.unfold(torch.from_numpy(x).double(), (3, 2), padding=1, stride=2)  # (N, C*kh*kw, L)
    assert (oh, ow) == (3, 3)
    assert np.array_equal(cols, ref.transpose(1, 2).reshape(-1, 18).numpy().astype(np.int64))


def test_quantize_multiplier_is_close_and_in_range():
    for ratio in (1e-6, 0.0123, 0.5, 3.7, 1000.0):
        m, s = quantize_multiplier(ratio)
        assert 1 <= m <= 2**15 - 1 and 1 <= s <= 48
        assert abs(m / 2**s - ratio) / ratio < 1e-3
    with pytest.raises(ValueError, match="ratio must be a finite number > 0"):
        quantize_multiplier(0.0)


def test_load_refuses_a_bad_manifest(tmp_path, digits):
    net = build_model("digits", 0)
    qnet = quick_fit(QuantNet(net, 8), digits, steps=2)
    export_network(qnet, digits.x_test).save(tmp_path)
    text = (tmp_path / "network.json").read_text().replace('"schema_version": 2', '"schema_version": 9')
    (tmp_path / "network.json").write_text(text)
    with pytest.raises(FormatError, match="schema_version must be 1"):
        IntNetwork.load(tmp_path)


def test_export_needs_bits(digits):
    with pytest.raises(ValueError, match="export needs a quantised model"):
        export_network(QuantNet(build_model("digits", 0)), digits.x_test)
