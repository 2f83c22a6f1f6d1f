"""Trained (fake-quantised) torch model → :class:`dpp.network.IntNetwork`, and the agreement check.

The integers come from the evaluation forward itself (:meth:`dpp.qnet.QuantNet.integer_layers` for the built-in
chains, :meth:`dpp.graph_quant.QuantGraph.integer_nodes` for any traced model), so the exported network
reproduces the torch model's predictions. Layers masked k-of-n along their reduction dimension (weight / kernel
granularity) become :class:`~dpp.kofn.KofNMatrix` built from the trained *mask* (not from the non-zeros):
exactly k of n per group always, a kept slot may hold a weight that rounded to 0. A grouped (depthwise) conv
becomes one layer per group, its rows of the weight.

Binary weights (``bits = 1``, :mod:`dpp.quant`): the integers -1 / +1 (0 where pruned) are exported as
:data:`~dpp.quant.BINARY_STORAGE_BITS`-bit signed words: every :class:`IntLayer` and k-of-n matrix of a binary
network has ``weight_bits = 2`` (:func:`~dpp.quant.storage_weight_bits`), so the integer reference, the
hardware arrays and their storage and energy counters run it unchanged and bit-exact, at 2 value bits per kept
weight; the network's ``meta`` keeps ``weight_bits = 1`` (what was trained).

Python API for any model: ``export_model(model, example_input, bits=8, calibration=x) -> IntNetwork`` (trace,
fold BatchNorm, calibrate activation ranges on ``x``, quantise, export).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from dpp.data import Normalization, parse_normalize
from dpp.errors import DPPError
from dpp.graph_quant import NodeIntegers, QuantGraph
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from dpp.parametrize import GroupLayout, masked_layers
from dpp.qnet import QuantNet
from dpp.quant import ACT_BITS, INPUT_SCALE, check_weight_bits, storage_weight_bits
from dpp.serialize import atomic_write_text


def _kofn_mask(module: nn.Module, model: nn.Module) -> tuple[np.ndarray, GroupLayout] | None:
    for _, mod, mask in masked_layers(model):
        if mod is module and getattr(mask, "layout", None) is not None and mask.layout.granularity != "filter":
            rows = mask.layout.rows
            return mask.weight_mask().detach().reshape(rows, -1).numpy() > 0.5, mask.layout
    return None


def _matmul_layers(
    mod: nn.Module,
    model: nn.Module,
    w_int: torch.Tensor,
    bias: torch.Tensor,
    multiplier: int,
    shift: int,
    relu: bool,
    out_bits: int,
    bits: int,
    groups: int = 1,
) -> list[IntLayer]:
    """One :class:`IntLayer` per group of a Linear / Conv2d: k-of-n from its mask, else dense."""
    rows = w_int.shape[0] // groups
    bits = storage_weight_bits(bits)  # binary weights travel as 2-bit signed words (module docstring)
    found = _kofn_mask(mod, model)
    granularity = None
    if found is None:
        for _, m2, mask in masked_layers(model):
            if m2 is mod:
                granularity = getattr(getattr(mask, "layout", None), "granularity", "unstructured")
    layers = []
    for g in range(groups):
        w = w_int[g * rows : (g + 1) * rows].reshape(rows, -1).numpy()
        weights: KofNMatrix | np.ndarray = w
        if found is not None:
            kept, layout = found
            granularity = layout.granularity
            weights = KofNMatrix.from_dense(
                w,
                kept[g * rows : (g + 1) * rows],
                layout.n,
                block=layout.block if layout.granularity == "kernel" else 1,
                weight_bits=bits,
                k=layout.k,
            )
        geometry = {}
        kind = "linear"
        if isinstance(mod, nn.Conv2d):
            kind = "conv2d"
            square = lambda v: int(v[0]) if v[0] == v[1] else [int(v[0]), int(v[1])]  # noqa: E731
            geometry = dict(
                in_channels=mod.in_channels // groups,
                out_channels=rows,
                kh=mod.kernel_size[0],
                kw=mod.kernel_size[1],
                stride=square(mod.stride),
                padding=square(_padding(mod)),
            )
        layers.append(
            IntLayer(
                kind,
                weights,
                bias[g * rows : (g + 1) * rows].numpy(),
                multiplier,
                shift,
                relu,
                out_bits,
                ACT_BITS,
                bits,
                granularity,
                geometry,
            )
        )
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
        raise DPPError("export needs a quantised model: set qnet.bits (1..8) first")
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
            nodes.append(
                dict(
                    name=name,
                    op="maxpool",
                    inputs=[prev],
                    kernel=pair(mod.kernel_size),
                    stride=pair(mod.stride or mod.kernel_size),
                    padding=pair(mod.padding),
                )
            )
        elif step.kind == "flatten":
            nodes.append(dict(name=name, op="reshape", inputs=[prev], shape=[-1]))
        else:
            li = ints[step.layer]
            first = len(layers)
            layers += _matmul_layers(
                mod, qnet.net, li.weight, li.bias, li.multiplier, li.shift, li.relu, li.out_bits, qnet.bits
            )
            nodes.append(dict(name=name, op="matmul", inputs=[prev], layers=list(range(first, len(layers)))))
        prev = name
    return IntNetwork(
        layers,
        nodes=nodes,
        output=prev,
        input_shape=tuple(sample.shape[1:]),
        input_scale=INPUT_SCALE,
        act_bits=ACT_BITS,
        meta=meta,
    )


def export_graph(qgraph: QuantGraph, sample: torch.Tensor, meta: dict | None = None) -> IntNetwork:
    """The integer network of a quantised :class:`~dpp.graph_quant.QuantGraph` (one input batch for shapes)."""
    if qgraph.bits is None:
        raise DPPError("export needs a quantised model: set bits (1..8) first")
    records: list[NodeIntegers] = qgraph.integer_nodes(sample[:1])
    alias: dict[str, str] = {}
    layers: list[IntLayer] = []
    nodes: list[dict] = []
    for rec, node in zip(records, qgraph.spec.nodes, strict=True):
        inputs = [alias.get(i, i) for i in rec.inputs]
        if rec.op == "dropout":
            alias[rec.name] = inputs[0]
            continue
        entry: dict[str, Any] = dict(name=rec.name, op=rec.op, inputs=inputs)
        if rec.op == "matmul":
            p = rec.params
            first = len(layers)
            layers += _matmul_layers(  # a matmul node and record: its module, weight and bias are set
                cast(nn.Module, node.module),
                qgraph.model,
                cast(torch.Tensor, rec.weight),
                cast(torch.Tensor, rec.bias),
                p["multiplier"],
                p["shift"],
                p["relu"],
                p["out_bits"],
                qgraph.bits,
                node.attrs.get("groups", 1),
            )
            entry["layers"] = list(range(first, len(layers)))
        else:
            entry.update(rec.params)
        nodes.append(entry)
    return IntNetwork(
        layers,
        nodes=nodes,
        output=alias.get(qgraph.spec.output, qgraph.spec.output),
        input_shape=tuple(sample.shape[1:]),
        input_scale=qgraph.input_scale,
        act_bits=ACT_BITS,
        meta=meta,
    )


def export_model(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    bits: int = 8,
    calibration: torch.Tensor | None = None,
    meta: dict | None = None,
    normalize: str | Normalization | None = None,
) -> IntNetwork:
    """Any traceable classifier → its :class:`IntNetwork`: traced, BatchNorm folded, ``bits``-bit weights.

    Args:
        model: an ``nn.Module`` (masks from :func:`dpp.sparsify` are exported as k-of-n matrices), or a
            :class:`~dpp.graph_quant.QuantGraph` already trained with quantisation (its ranges are kept).
        example_input: one input batch (shapes only).
        bits: weight bits (1..8, 1 = binary); a QuantGraph keeps its own unless it has none.
        calibration: images whose float activations set every activation range (needed unless ``model`` is a
            QuantGraph that recorded its ranges in training).
        normalize: how the model's inputs are normalised (``"MEAN,STD[;...]"`` or a
            :class:`~dpp.data.Normalization`; None: pixels in [0, 1]): the integer input's scale follows it
            (:meth:`~dpp.data.Normalization.input_scale`) and ``meta["normalization"]`` records it; images go to
            :meth:`IntNetwork.quantize_input` normalised. Ignored for a QuantGraph (it has its input scale).

    Raises:
        GraphError: the model cannot be traced or uses an unsupported op (one line naming node and module).

    Example::

        net = export_model(model, x_test[:1], bits=8, calibration=x_train[:512])
        classes = net.predict(net.quantize_input(x_test.numpy()))
    """
    norm = parse_normalize(normalize) if isinstance(normalize, str) else normalize
    if isinstance(model, QuantGraph):
        qgraph = model
    else:
        scale = norm.input_scale() if norm is not None else INPUT_SCALE
        qgraph = QuantGraph(model, example_input, bits, input_scale=scale)
    if norm is not None:
        meta = dict(meta or {}, normalization=norm.to_json())
    if qgraph.bits is None:
        qgraph.bits = check_weight_bits(bits)
    if calibration is not None:
        qgraph.calibrate(calibration)
    elif qgraph.act_max.numel() and not bool((qgraph.act_max > 0).all()):
        raise DPPError(
            "export_model needs calibration images: no activation range was recorded for "
            f"{[n for n, v in zip(qgraph.calibrated, qgraph.act_max.tolist(), strict=True) if v <= 0]}"
        )
    return export_graph(qgraph, example_input, meta)


def check_run_normalize(recorded: str | None, given: str | None, run_dir: Path) -> None:
    """Refuse a ``--normalize`` that differs from the one the run was trained with (one line)."""
    if given is None:
        return
    want = parse_normalize(recorded) if recorded is not None else None
    got = parse_normalize(given)
    same = got.is_identity if want is None else got == want
    if not same:
        raise DPPError(
            f"--normalize {given!r} differs from the normalisation run {run_dir} was trained with "
            f"({want.text if want else 'pixels in [0, 1]'}); omit --normalize to use the run's"
        )


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
def measure_agreement(
    qnet: nn.Module, network: IntNetwork, x: torch.Tensor, y: torch.Tensor, batch: int = 500
) -> Agreement:
    """Run both models (a QuantNet or QuantGraph, and its integer network) on ``x`` and count identical classes."""
    qnet.eval()
    same = correct_t = correct_i = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i : i + batch], y[i : i + batch].numpy()
        pt = qnet(xb).reshape(len(xb), -1).argmax(dim=1).numpy()
        pi = network.predict(network.quantize_input(xb.numpy()))
        same += int((pt == pi).sum())
        correct_t += int((pt == yb).sum())
        correct_i += int((pi == yb).sum())
    n = len(x)
    return Agreement(n, same, correct_t / n, correct_i / n)


def run_export(
    run_dir: Path, out: Path, bits: int | None = None, *, data: str | None = None, normalize: str | None = None
) -> dict:
    """Export ``run_dir`` to ``out`` and measure prediction agreement on the test split; returns the report.

    A full-precision run is quantised after training (8-bit weights unless ``bits`` is given). ``data``
    (``--data SPEC``) picks the images of the agreement check (default: the run's); ``normalize`` must be the
    run's own normalisation if given (the model was trained on it). The network's ``input_scale`` follows the
    run's normalisation, and ``meta`` records it with the data, the absolute run folder and a user model's
    factory (``model_file``), so ``dpp flow --net`` can rebuild the torch model.
    """
    from dpp.data import load_data
    from dpp.train import load_run, run_data  # dpp.train imports this module

    cfg, qnet = load_run(run_dir)
    check_run_normalize(cfg.normalize, normalize, run_dir)
    if bits is not None or qnet.bits is None:
        qnet.bits = check_weight_bits(bits) if bits is not None else 8
    data_set = load_data(data, normalize=cfg.normalize) if data is not None else run_data(cfg)
    shape = tuple(int(v) for v in data_set.x_test.shape[1:])
    want = cfg.input_shape if cfg.input_shape is not None or data is None else run_data(cfg).x_test.shape[1:]
    if want is not None and list(shape) != [int(v) for v in want]:
        raise DPPError(
            f"--data {data!r}: images of shape {list(shape)}, the run's model takes {[int(v) for v in want]}"
        )
    norm = data_set.normalization or Normalization.identity(shape[0])
    meta = dict(
        run=str(Path(run_dir).resolve()),
        model=cfg.model,
        method=cfg.method,
        trained_bits=cfg.bits,
        weight_bits=qnet.bits,
        data=cfg.data or data_set.name,
        normalization=norm.to_json(),
    )
    if cfg.model_file is not None:
        meta.update(model_file=cfg.model_file)
    if isinstance(qnet, QuantGraph):
        network = export_graph(qnet, data_set.x_test, meta=meta)
    else:
        network = export_network(qnet, data_set.x_test, meta=meta)
    manifest = network.save(out)
    agree = measure_agreement(qnet, network, data_set.x_test, data_set.y_test)
    report = dict(
        network=str(manifest),
        images=agree.images,
        identical=agree.identical,
        agreement=agree.rate,
        torch_accuracy=agree.torch_accuracy,
        int_accuracy=agree.int_accuracy,
        weight_bits=qnet.bits,
        storage_weight_bits=storage_weight_bits(qnet.bits),
        layers=[
            dict(kind=ly.kind, format=ly.format, rows=ly.rows, cols=ly.cols, multiplier=ly.multiplier, shift=ly.shift)
            for ly in network.layers
        ],
    )
    atomic_write_text(Path(out) / "agreement.json", json.dumps(report, indent=2) + "\n")
    return report
