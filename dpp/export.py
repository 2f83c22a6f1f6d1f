"""Trained (fake-quantised) torch model → :class:`dpp.network.IntNetwork`, and the agreement check.

The integers come from :meth:`dpp.qnet.QuantNet.integer_layers`, i.e. from the very code of the evaluation
forward, so the exported network reproduces the torch model's predictions. Layers masked k-of-n along their
reduction dimension (weight / kernel granularity) become :class:`~dpp.kofn.KofNMatrix` built from the trained
*mask* (not from the non-zeros): exactly k of n per group always, a kept slot may hold a weight that rounded to 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dpp.errors import DPPError
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from dpp.parametrize import masked_layers
from dpp.qnet import QuantNet
from dpp.quant import ACT_BITS, INPUT_SCALE
from dpp.serialize import atomic_write_text


def _kofn_mask(module: nn.Module, model: nn.Module) -> tuple[np.ndarray, object] | None:
    for _, mod, mask in masked_layers(model):
        if mod is module and getattr(mask, "layout", None) is not None and mask.layout.granularity != "filter":
            rows = mask.layout.rows
            return mask.weight_mask().detach().reshape(rows, -1).numpy() > 0.5, mask.layout
    return None


def export_network(qnet: QuantNet, sample: torch.Tensor, meta: dict | None = None) -> IntNetwork:
    """The integer network of a quantised ``qnet``; ``sample`` is one input batch (for its shape)."""
    if qnet.bits is None:
        raise DPPError("export needs a quantised model: set qnet.bits (2..8) first")
    ints = qnet.integer_layers(sample[:1])
    layers: list[IntLayer] = []
    ops: list[dict] = []
    for step in qnet.plan:
        mod = qnet.net[step.index]
        if step.kind == "pool":
            k = mod.kernel_size if isinstance(mod.kernel_size, int) else mod.kernel_size[0]
            stride = mod.stride if isinstance(mod.stride, int) else mod.stride[0]
            if k != stride or mod.padding not in (0, (0, 0)):
                raise DPPError(f"only non-overlapping max-pooling is exported (got {mod})")
            ops.append(dict(op="maxpool", kernel=int(k)))
            continue
        if step.kind == "flatten":
            ops.append(dict(op="flatten"))
            continue
        li = ints[step.layer]
        w = li.weight.reshape(li.weight.shape[0], -1).numpy()
        found = _kofn_mask(mod, qnet.net)
        granularity = None
        if found is not None:
            mask, layout = found
            weights: KofNMatrix | np.ndarray = KofNMatrix.from_dense(
                w, mask, layout.n, block=layout.block if layout.granularity == "kernel" else 1,
                weight_bits=qnet.bits, k=layout.k)
            granularity = layout.granularity
        else:
            weights = w
            for _, m2, mask in masked_layers(qnet.net):
                if m2 is mod:
                    granularity = getattr(getattr(mask, "layout", None), "granularity", "unstructured")
        geometry = {}
        kind = "linear"
        if isinstance(mod, nn.Conv2d):
            kind = "conv2d"
            if mod.stride[0] != mod.stride[1] or mod.padding[0] != mod.padding[1]:
                raise DPPError(f"only square stride and padding are exported (got {mod})")
            geometry = dict(in_channels=mod.in_channels, out_channels=mod.out_channels, kh=mod.kernel_size[0],
                            kw=mod.kernel_size[1], stride=mod.stride[0], padding=mod.padding[0])
        layers.append(IntLayer(kind, weights, li.bias.numpy(), li.multiplier, li.shift, li.relu, li.out_bits,
                               ACT_BITS, qnet.bits, granularity, geometry))
        ops.append(dict(op="matmul", layer=step.layer))
    return IntNetwork(layers, ops, input_shape=tuple(sample.shape[1:]), input_scale=INPUT_SCALE,
                      act_bits=ACT_BITS, meta=meta)


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
def measure_agreement(qnet: QuantNet, network: IntNetwork, x: torch.Tensor, y: torch.Tensor,
                      batch: int = 500) -> Agreement:
    """Run both models on ``x`` (float images) and count identical predictions."""
    qnet.eval()
    same = correct_t = correct_i = 0
    for i in range(0, len(x), batch):
        xb, yb = x[i:i + batch], y[i:i + batch].numpy()
        pt = qnet(xb).argmax(dim=1).numpy()
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
                  layers=[dict(kind=l.kind, format=l.format, rows=l.rows, cols=l.cols, multiplier=l.multiplier,
                               shift=l.shift) for l in network.layers])
    atomic_write_text(Path(out) / "agreement.json", json.dumps(report, indent=2) + "\n")
    return report
