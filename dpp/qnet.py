"""``QuantNet``: runs an ordinary ``nn.Sequential`` in float, or fake-quantised exactly like the integer model.

The wrapped network is a chain of ``nn.Flatten``, ``nn.Linear``, ``nn.Conv2d`` (zero padding, no dilation or
groups), ``nn.ReLU`` (directly after a matmul layer) and ``nn.MaxPool2d``. Masks stay parametrisations of the
layers' weights, so ``module.weight`` is already ``W * M``.

With ``bits`` set, each matmul layer computes the integer arithmetic of :func:`dpp.reference.linear_int` on
integer-valued tensors (see :mod:`dpp.quant`): in evaluation in float64, where every integer involved is
exact, so the exported network reproduces the predictions; in training in float32 with straight-through
rounding. Hidden activation scales come from a running maximum (momentum :attr:`ACT_MOMENTUM`) recorded in
training, in float mode too, so a float-trained model can be quantised after training.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from dpp.errors import ArgumentTypeError, DPPError
from dpp.quant import (
    ACT_BITS,
    INPUT_SCALE,
    LOGIT_MULTIPLIER,
    LOGIT_OUT_BITS,
    LOGIT_SHIFT,
    check_weight_bits,
    fake_quant_weight,
    quantize_multiplier,
    round_half_up,
    round_ste,
    saturate,
)

ACT_MOMENTUM = 0.1
ACT_QMAX = (1 << (ACT_BITS - 1)) - 1


@dataclass(frozen=True)
class Step:
    """One step of the plan: ``kind`` in matmul / pool / flatten; ``index`` into the Sequential."""

    kind: str
    index: int
    relu: bool = False
    layer: int = -1  #: matmul layer number (0-based) for matmul steps


@dataclass
class LayerIntegers:
    """One matmul layer in integers: what :mod:`dpp.export` writes and the hardware runs."""

    weight: torch.Tensor  #: int64, the module's weight shape
    bias: torch.Tensor  #: int64 (out,)
    multiplier: int
    shift: int
    relu: bool
    out_bits: int
    in_scale: float
    out_scale: float


def build_plan(net: nn.Sequential) -> list[Step]:
    """Check the layer chain and list its steps; a clear error names the first unsupported module."""
    if not isinstance(net, nn.Sequential):
        raise ArgumentTypeError(
            f"QuantNet needs an nn.Sequential (got {type(net).__name__}); any other "
            "traceable model runs as dpp.graph_quant.QuantGraph"
        )
    steps: list[Step] = []
    mods = list(net)
    layer = 0
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            if isinstance(m, nn.Conv2d) and (
                m.groups != 1 or m.dilation != (1, 1) or m.padding_mode != "zeros" or isinstance(m.padding, str)
            ):
                raise DPPError(
                    f"layer {i}: only plain Conv2d (groups=1, dilation=1, numeric zero padding) is supported (got {m})"
                )
            relu = i + 1 < len(mods) and isinstance(mods[i + 1], nn.ReLU)
            steps.append(Step("matmul", i, relu, layer))
            layer += 1
            i += 2 if relu else 1
            continue
        if isinstance(m, nn.MaxPool2d):
            steps.append(Step("pool", i))
        elif isinstance(m, nn.Flatten):
            steps.append(Step("flatten", i))
        else:
            raise DPPError(
                f"layer {i}: unsupported module {type(m).__name__} (expected Linear, Conv2d, "
                "ReLU after a matmul layer, MaxPool2d or Flatten; dpp.graph_quant.QuantGraph takes "
                "more)"
            )
        i += 1
    if layer == 0:
        raise DPPError("the network has no Linear or Conv2d layer")
    last = [s for s in steps if s.kind == "matmul"][-1]
    if last.relu:
        raise DPPError("the last matmul layer must give logits (no ReLU after it)")
    return steps


class QuantNet(nn.Module):
    """A classifier: float (``bits=None``) or jointly fake-quantised with ``bits``-bit weights."""

    act_max: torch.Tensor  #: buffer, each hidden layer's running activation peak

    def __init__(self, net: nn.Sequential, bits: int | None = None) -> None:
        super().__init__()
        self.plan = build_plan(net)
        self.net = net
        self.bits = None if bits is None else check_weight_bits(bits)
        self.layers = sum(1 for s in self.plan if s.kind == "matmul")
        self.register_buffer("act_max", torch.zeros(self.layers))

    def matmul_modules(self) -> list[nn.Linear | nn.Conv2d]:
        """The Linear / Conv2d modules in order."""
        return [self._layer(s) for s in self.plan if s.kind == "matmul"]

    def _layer(self, step: Step) -> nn.Linear | nn.Conv2d:
        """The module of a matmul step (:func:`build_plan` admits only Linear / Conv2d there)."""
        return cast("nn.Linear | nn.Conv2d", self.net[step.index])

    def _observe(self, layer: int, y: torch.Tensor) -> None:
        peak = y.detach().abs().max().to(self.act_max.dtype)
        cur = self.act_max[layer]
        self.act_max[layer] = peak if cur == 0 else (1 - ACT_MOMENTUM) * cur + ACT_MOMENTUM * peak

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real-valued logits (float, or the fake-quantised integers times their scale)."""
        return self._forward_float(x) if self.bits is None else self._forward_quant(x)[0]

    def _forward_float(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.plan:
            mod = self.net[step.index]
            x = mod(x)
            if step.kind == "matmul":
                if step.relu:
                    x = F.relu(x)
                if self.training and step.layer < self.layers - 1:
                    self._observe(step.layer, x)
        return x

    def _matmul(self, mod: nn.Module, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if isinstance(mod, nn.Conv2d):
            return F.conv2d(x, w, b, mod.stride, mod.padding)
        return F.linear(x, w, b)

    def _layer_integers(
        self, step: Step, s_x: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        mod = self._layer(step)
        w_int, s_w = fake_quant_weight(mod.weight, cast(int, self.bits))  # the quantised path: bits is set
        s_acc = s_x * s_w.to(dtype)
        b_int = round_ste(mod.bias.to(dtype) / s_acc) if mod.bias is not None else None
        return w_int.to(dtype), b_int, s_acc

    def _requant(self, step: Step, acc: torch.Tensor, s_acc: torch.Tensor) -> tuple[int, int, int, torch.Tensor]:
        """``(multiplier, shift, out_bits, out_scale)``; hidden layers calibrate on ``acc`` in training."""
        if step.layer == self.layers - 1:
            return LOGIT_MULTIPLIER, LOGIT_SHIFT, LOGIT_OUT_BITS, s_acc * (2.0**LOGIT_SHIFT / LOGIT_MULTIPLIER)
        if self.training:
            real = acc.detach() * s_acc
            self._observe(step.layer, F.relu(real) if step.relu else real)
        peak = self.act_max[step.layer].to(s_acc.dtype)
        s_y = peak / ACT_QMAX if float(peak) > 0 else s_acc * 1.0
        mult, shift = quantize_multiplier(float(s_acc / s_y))
        return mult, shift, ACT_BITS, s_acc * (2.0**shift / mult)

    def _forward_quant(self, x: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[LayerIntegers]]:
        dtype = torch.float32 if self.training else torch.float64
        s_x = torch.tensor(INPUT_SCALE, dtype=dtype)
        x = saturate(round_half_up(x.to(dtype) / s_x), ACT_BITS, relu=False)
        record: list[LayerIntegers] = []
        for step in self.plan:
            mod = self.net[step.index]
            if step.kind != "matmul":
                x = mod(x)
                continue
            w_int, b_int, s_acc = self._layer_integers(step, s_x, dtype)
            acc = self._matmul(mod, x, w_int, b_int)
            mult, shift, out_bits, s_y = self._requant(step, acc, s_acc)
            x = saturate(round_ste(acc * (mult / 2.0**shift)), out_bits, step.relu)
            if keep:
                zero = torch.zeros(w_int.shape[0], dtype=torch.int64)
                record.append(
                    LayerIntegers(
                        w_int.detach().to(torch.int64),
                        zero if b_int is None else b_int.detach().to(torch.int64),
                        mult,
                        shift,
                        step.relu,
                        out_bits,
                        float(s_x),
                        float(s_y),
                    )
                )
            s_x = s_y
        return x * s_x, record

    @torch.no_grad()
    def integer_layers(self, sample: torch.Tensor) -> list[LayerIntegers]:
        """Every matmul layer's integers, from the evaluation forward itself (one source of truth).

        ``sample``: any batch of the network's input shape (the integers do not depend on it).
        """
        return eval_integers(self, sample, "integer_layers")


@torch.no_grad()
def eval_integers(net: Any, sample: torch.Tensor, what: str) -> list[Any]:
    """What ``net._forward_quant(sample, keep=True)`` records, run in evaluation mode (the mode is restored).

    Serves :meth:`QuantNet.integer_layers` and :meth:`dpp.graph_quant.QuantGraph.integer_nodes`.
    """
    if net.bits is None:
        raise DPPError(f"{what} needs a quantised {type(net).__name__} (bits is None); set bits first")
    was = net.training
    net.eval()
    try:
        return net._forward_quant(sample, keep=True)[1]
    finally:
        net.train(was)
