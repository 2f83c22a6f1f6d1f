"""Trained (fake-quantised) torch model → :class:`dpp.network.IntNetwork`, and the agreement check.

The integers come from the evaluation forward itself (:meth:`dpp.qnet.QuantNet.integer_layers` for the built-in
chains, :meth:`dpp.graph_quant.QuantGraph.integer_nodes` for any traced model), so the exported network
reproduces the torch model's predictions. Layers masked k-of-n along their reduction dimension (weight / kernel
granularity) become :class:`~dpp.kofn.KofNMatrix` built from the trained *mask* (not from the non-zeros):
exactly k of n per group always, a kept slot may hold a weight that rounded to 0. A grouped (depthwise) conv
becomes one layer per group, its rows of the weight.

Python API for any model: ``export_model(model, example_input, bits=8, calibration=x) -> IntNetwork`` (trace,
fold BatchNorm, calibrate activation ranges on ``x``, quantise, export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dpp.errors import DPPError
from dpp.graph_quant import NodeIntegers, QuantGraph
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from dpp.parametrize import masked_layers
from dpp.qnet import QuantNet
from dpp.quant import ACT_BITS, INPUT_SCALE, check_weight_bits
from dpp.serialize import atomic_write_text


def _kofn_mask(module: nn.Module, model: nn.Module) -> tuple[np.ndarray, object] | None:
    for _, mod, mask in masked_layers(model):
        if mod is module and getattr(mask, "layout", None) is not None and mask.layout.granularity != "filter":
            rows = mask.layout.rows
            return mask.weight_mask().detach().reshape(rows, -1).numpy() > 0.5, mask.layout
    return None


def _matmul_layers(mod: nn.Module, model: nn.Module, w_int: torch.Tensor, bias: torch.Tensor, multiplier: int,
                   shift: int, relu: bool, out_bits: int, bits: int, groups: int = 1) -> list[IntLayer]:
    """One :class:`IntLayer` per group of a Linear / Conv2d: k-of-n from its mask, else dense."""
    rows = w_int.shape[0] // groups
    found = _kofn_mask(mod, model)
    granularity = None
    if found is None:
        for _, m2, mask in masked_layers(model):
            if m2 is mod:
                granularity = getattr(getattr(mask, "layout", None), "granularity", "unstructured")
    layers = []
    for g in range(groups):
        w = w_int[g * rows:(g + 1) * rows].reshape(rows, -1).numpy()
        weights: KofNMatrix | np.ndarray = w
        if found is not None:
            mask, layout = found
            granularity = layout.granularity
            weights = KofNMatrix.from_dense(w, mask[g * rows:(g + 1) * rows], layout.n,
                                            block=layout.block if layout.granularity == "kernel" else 1,
                                            weight_bits=bits, k=layout.k)
        geometry = {}
        kind = "linear"
        if isinstance(mod, nn.Conv2d):
            kind = "conv2d"
            square = lambda v: int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]  # noqa: E731
            geometry = dict(in_channels=mod.in_channels // groups, out_channels=rows, kh=mod.kernel_size[0],
                            kw=mod.kernel_size[1], stride=square(mod.stride), padding=square(_padding(mod)))
        layers.append(IntLayer(kind, weights, bias[g * rows:(g + 1) * rows].numpy(), multiplier, shift, relu,
                               out_bits, ACT_BITS, bits, granularity, geometry))
    return layers


def _padding(mod: nn.Conv2d) -> tuple[int, int]:
    if mod.padding == "valid":
        return 0, 0
    if mod.padding == "same":
        return (mod.kernel_size[0] - 1) // 2, (mod.kernel_size[1] - 1) // 2
    return int(mod.padding[0]), int(mod.padding[1])


def export_network(qnet: QuantNet, sample: torch.Tensor, meta: dict | None = None) -> IntNetwork:
    """The integer network of a quantised built-in ``qnet``; ``sample`` is one input batch (for its shape)."""
    if qnet.bits is None:
        raise DPPError("export needs a quantised model: set qnet.bits (2..8) first")
    ints = qnet.integer_layers(sample[:1])
    layers: list[IntLayer] = []
    nodes: list[dict] = []
    prev = "input"
    for step in qnet.plan:
        mod = qnet.net[step.index]
        name = str(step.index)
        if step.kind == "pool":
            pair = lambda v: [int(v), int(v)] if isinstance(v, int) else [int(v[0]), int(v[1])]  # noqa: E731
            if mod.dilation not in (1, (1, 1)) or mod.ceil_mode:
                raise DPPError(f"max-pooling needs dilation 1 and ceil_mode=False (got {mod})")
            nodes.append(dict(name=name, op="maxpool", inputs=[prev], kernel=pair(mod.kernel_size),
                              stride=pair(mod.stride or mod.kernel_size), padding=pair(mod.padding)))
        elif step.kind == "flatten":
            nodes.append(dict(name=name, op="reshape", inputs=[prev], shape=[-1]))
        else:
            li = ints[step.layer]
            first = len(layers)
            layers += _matmul_layers(mod, qnet.net, li.weight, li.bias, li.multiplier, li.shift, li.relu,
                                     li.out_bits, qnet.bits)
            nodes.append(dict(name=name, op="matmul", inputs=[prev], layers=list(range(first, len(layers)))))
        prev = name
    return IntNetwork(layers, nodes=nodes, output=prev, input_shape=tuple(sample.shape[1:]),
                      input_scale=INPUT_SCALE, act_bits=ACT_BITS, meta=meta)


def export_graph(qgraph: QuantGraph, sample: torch.Tensor, meta: dict | None = None) -> IntNetwork:
    """The integer network of a quantised :class:`~dpp.graph_quant.QuantGraph` (one input batch for shapes)."""
    if qgraph.bits is None:
        raise DPPError("export needs a quantised model: set bits (2..8) first")
    records: list[NodeIntegers] = qgraph.integer_nodes(sample[:1])
    alias: dict[str, str] = {}
    layers: list[IntLayer] = []
    nodes: list[dict] = []
    for rec, node in zip(records, qgraph.spec.nodes, strict=True):
        inputs = [alias.get(i, i) for i in rec.inputs]
        if rec.op == "dropout":
            alias[rec.name] = inputs[0]
            continue
        entry = dict(name=rec.name, op=rec.op, inputs=inputs)
        if rec.op == "matmul":
            p = rec.params
            first = len(layers)
            layers += _matmul_layers(node.module, qgraph.model, rec.weight, rec.bias, p["multiplier"], p["shift"],
                                     p["relu"], p["out_bits"], qgraph.bits, node.attrs.get("groups", 1))
            entry["layers"] = list(range(first, len(layers)))
        else:
            entry.update(rec.params)
        nodes.append(entry)
    return IntNetwork(layers, nodes=nodes, output=alias.get(qgraph.spec.output, qgraph.spec.output),
                      input_shape=tuple(sample.shape[1:]), input_scale=qgraph.input_scale, act_bits=ACT_BITS,
                      meta=meta)


def export_model(model: nn.Module, example_input: torch.Tensor, *, bits: int = 8,
                 calibration: torch.Tensor | None = None, meta: dict | None = None) -> IntNetwork:
    """Any traceable classifier → its :class:`IntNetwork`: traced, BatchNorm folded, ``bits``-bit weights.

    Args:
        model: an ``nn.Module`` (masks from :func:`dpp.sparsify` are exported as k-of-n matrices), or a
            :class:`~dpp.graph_quant.QuantGraph` already trained with quantisation (its ranges are kept).
        example_input: one input batch (shapes only).
        bits: weight bits (2..8); a QuantGraph keeps its own unless it has none.
        calibration: images whose float activations set every activation range (needed unless ``model`` is a
            QuantGraph that recorded its ranges in training).

    Raises:
        GraphError: the model cannot be traced or uses an unsupported op (one line naming node and module).

    Example::

        net = export_model(model, x_test[:1], bits=8, calibration=x_train[:512])
        classes = net.predict(net.quantize_input(x_test.numpy()))
    """
    qgraph = model if isinstance(model, QuantGraph) else QuantGraph(model, example_input, bits)
    if qgraph.bits is None:
        qgraph.bits = check_weight_bits(bits)
    if calibration is not None:
        qgraph.calibrate(calibration)
    elif qgraph.act_max.numel() and not bool((qgraph.act_max > 0).all()):
        raise DPPError("export_model needs calibration images: no activation range was recorded for "
                       f"{[n for n, v in zip(qgraph.calibrated, qgraph.act_max.tolist(), strict=True) if v <= 0]}")
    return export_graph(qgraph, example_input, meta)


@dataclass(frozen=True)
class Agreement:
    """How often the integer network and the torch model predict the same class, and their accuracies."""

    images: int
    identical: int
    torch_accuracy: float
    int_accuracy: float

    @property
    def rate(self) -> float:
        return self.identical / self.images if self.images else 1.0


@torch.no_grad()
def measure_agreement(qnet: nn.Module, network: IntNetwork, x: torch.Tensor, y: torch.Tensor,
                      batch: int = 500) -> Agreement:
    """Run both models (a QuantNet or QuantGraph, and its integer network) on ``x`` and count identical classes."""
    qnet.eval()
    same = correct_t = correct_i = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch].numpy()
        pt = qnet(xb).reshape(len(xb), -1).argmax(dim=1).numpy()
        pi = network.predict(network.quantize_input(xb.numpy()))
        same += int((pt == pi).sum())
        correct_t += int((pt == yb).sum())
        correct_i += int((pi == yb).sum())
    n = len(x)
    return Agreement(n, same, correct_t / n, correct_i / n)


def run_export(run_dir: Path, out: Path, bits: int | None = None) -> dict:
    """Export ``run_dir`` to ``out`` and measure prediction agreement on the test split; returns the report.

    A full-precision run is quantised after training (8-bit weights unless ``bits`` is given).
    """
    from dpp.data import load_dataset
    from dpp.models import DATASET_OF
    from dpp.train import load_run  # dpp.train imports this module

    cfg, qnet = load_run(run_dir)
    if bits is not None or qnet.bits is None:
        qnet.bits = bits if bits is not None else 8
    data = load_dataset(DATASET_OF[cfg.model])
    network = export_network(qnet, data.x_test, meta=dict(run=str(run_dir), model=cfg.model, method=cfg.method,
                                                             trained_bits=cfg.bits, weight_bits=qnet.bits))
    manifest = network.save(out)
    agree = measure_agreement(qnet, network, data.x_test, data.y_test)
    report = dict(network=str(manifest), images=agree.images, identical=agree.identical, agreement=agree.rate,
                  torch_accuracy=agree.torch_accuracy, int_accuracy=agree.int_accuracy, weight_bits=qnet.bits,
                  layers=[dict(kind=ly.kind, format=ly.format, rows=ly.rows, cols=ly.cols, multiplier=ly.multiplier,
                               shift=ly.shift) for ly in network.layers])
    atomic_write_text(Path(out) / "agreement.json", json.dumps(report, indent=2) + "\n")
    return report
