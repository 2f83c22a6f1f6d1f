"""``QuantGraph``: a traced model (:mod:`dpp.graph`) run in float, or fake-quantised exactly like its integers.

The graph counterpart of :class:`dpp.qnet.QuantNet`, with the same numbers (:mod:`dpp.quant`): per-layer
symmetric weights, 8-bit activations, round half up, the classifier's 32-bit logits. With ``bits`` set, every
node computes the integer op of :mod:`dpp.reference` on integer-valued tensors: in evaluation in float64, where
every integer involved is exact, so the exported :class:`~dpp.network.IntNetwork` reproduces the predictions;
in training in float32 with straight-through rounding.

Scales: the input has ``input_scale``; a matmul's output scale is calibrated from a running maximum of its
(activated) output, recorded in training (momentum :data:`dpp.qnet.ACT_MOMENTUM`) or set by :meth:`calibrate`,
and a residual add's likewise; max-pool, clamp and reshape keep their input's scale; average pooling keeps it
up to its multiplier's rounding (``multiplier / 2**shift ~ 1 / divisor``); a concatenation requantises every
input to the largest input scale. A matmul that alone gives the output is the classifier (32-bit logits,
multiplier 1, shift 1). BatchNorm is folded into its conv / linear before the weights are quantised: with the
running statistics in evaluation, with the batch's statistics in training (which also updates the running ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn

from dpp.checks import signed_range
from dpp.errors import DPPError
from dpp.graph import INPUT, GraphNode, GraphSpec, trace_graph
from dpp.qnet import ACT_MOMENTUM, ACT_QMAX, eval_integers
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
from dpp.reference import MAX_MULTIPLIER

Value = tuple[torch.Tensor, torch.Tensor]  #: an integer-valued tensor and its scale


def quantize_multipliers(ratios: list[float]) -> tuple[list[int], int]:
    """``(multipliers, shift)`` with ``multipliers[i] / 2**shift`` closest to ``ratios[i]``, one shared shift.

    The shift gives the largest ratio the most bits (as :func:`dpp.quant.quantize_multiplier`); a ratio too
    small for that shift gets multiplier 1.
    """
    if not ratios or not all(isinstance(r, float | int) and math.isfinite(r) and r > 0 for r in ratios):
        raise DPPError(f"requantisation ratios must be finite numbers > 0 (got {ratios!r})")
    _, shift = quantize_multiplier(float(max(ratios)))
    return [min(MAX_MULTIPLIER, max(1, round(r * (1 << shift)))) for r in ratios], shift


@dataclass
class NodeIntegers:
    """One node as the integer network runs it: the op's integer parameters, weights for a matmul."""

    name: str
    op: str
    inputs: list[str]
    params: dict[str, Any] = field(default_factory=dict)  #: the IntNetwork node keys (matmul: requantisation)
    weight: torch.Tensor | None = None  #: matmul: int64, the module's weight shape (BN folded)
    bias: torch.Tensor | None = None  #: matmul: int64 (out,)
    out_scale: float = 1.0


def _layer(n: GraphNode) -> nn.Linear | nn.Conv2d:
    """A matmul node's module (:mod:`dpp.graph` sets a Linear / Conv2d on every matmul node)."""
    return cast("nn.Linear | nn.Conv2d", n.module)


def _act(y: torch.Tensor, bounds: tuple[float | None, float | None] | None) -> torch.Tensor:
    return y if bounds is None else torch.clamp(y, bounds[0], bounds[1])


class QuantGraph(nn.Module):
    """A traced classifier, float (``bits=None``) or jointly fake-quantised with ``bits``-bit weights.

    ``example``: an input batch (for tracing and shapes). ``model`` stays an ordinary module (its masks,
    BatchNorm and parameters are used as they are); its state is this module's ``model.*`` entries.
    """

    act_max: torch.Tensor  #: buffer, the activation peak of each calibrated node

    def __init__(
        self, model: nn.Module, example: torch.Tensor, bits: int | None = None, *, input_scale: float = INPUT_SCALE
    ) -> None:
        super().__init__()
        self.model = model
        self.spec: GraphSpec = trace_graph(model, example)
        self.bits = None if bits is None else check_weight_bits(bits)
        if not (isinstance(input_scale, float | int) and math.isfinite(input_scale) and input_scale > 0):
            raise DPPError(f"input_scale must be a finite number > 0 (got {input_scale!r})")
        self.input_scale = float(input_scale)
        out = self.spec.node(self.spec.output)
        self.logit_node = out.name if out.op == "matmul" and self.spec.users()[out.name] == 1 else None
        self.calibrated = [
            n.name for n in self.spec.nodes if (n.op == "matmul" and n.name != self.logit_node) or n.op == "add"
        ]
        self._slot = {name: i for i, name in enumerate(self.calibrated)}
        self._peaks: torch.Tensor | None = None
        self._bn_recalibrating = False
        self.register_buffer("act_max", torch.zeros(len(self.calibrated)))

    # --------------------------------------------------------------------------------- calibration
    def _observe(self, name: str, y: torch.Tensor) -> None:
        slot = self._slot[name]
        peak = y.detach().abs().max().to(self.act_max.dtype)
        if self._peaks is not None:
            self._peaks[slot] = torch.maximum(self._peaks[slot], peak)
        elif self.training:
            cur = self.act_max[slot]
            self.act_max[slot] = peak if cur == 0 else (1 - ACT_MOMENTUM) * cur + ACT_MOMENTUM * peak

    @torch.no_grad()
    def calibrate(self, x: torch.Tensor, batch: int = 256) -> None:
        """Set each calibrated node's activation peak to its largest ``|value|`` on ``x`` (float, evaluation)."""
        was = self.training
        self.eval()
        self._peaks = torch.zeros_like(self.act_max)
        try:
            for i in range(0, len(x), batch):
                self._forward_float(x[i : i + batch])
            self.act_max.copy_(self._peaks)
        finally:
            self._peaks = None
            self.train(was)

    def batchnorms(self) -> list[nn.BatchNorm1d | nn.BatchNorm2d]:
        """The BatchNorm modules folded into matmul nodes (those that track running statistics)."""
        return [cast("nn.BatchNorm1d | nn.BatchNorm2d", n.bn) for n in self.spec.nodes if n.bn is not None]

    @torch.no_grad()
    def recalibrate_batchnorm(self, x: torch.Tensor, batch: int = 256) -> int:
        """Recompute every folded BatchNorm's running mean and variance on ``x`` with the model as it evaluates
        (deterministic masks, no dropout, the quantised path when ``bits`` is set): an exact average over ``x``
        (momentum None), nothing else changes. Returns how many BatchNorms were recalibrated.

        Why: DPP samples a new mask every step, so the running statistics gathered during training describe a
        mixture of masks, not the one mask that is exported; evaluated with those statistics, a residual
        network loses up to a few points (measured on ResNet-8, README "Your own network")."""
        bns = self.batchnorms()
        if not bns:
            return 0
        was = self.training
        momenta = [bn.momentum for bn in bns]
        self.eval()
        self._bn_recalibrating = True
        try:
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None  # cumulative average over the batches of x
                bn.train()
            for i in range(0, len(x), batch):
                self.forward(x[i : i + batch])
        finally:
            self._bn_recalibrating = False
            for bn, momentum in zip(bns, momenta, strict=True):
                bn.momentum = momentum
            self.train(was)  # every module, the BatchNorms too, back to the mode the model was in
        return len(bns)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Real-valued outputs (float, or the fake-quantised integers times their scale)."""
        return self._forward_float(x) if self.bits is None else self._forward_quant(x)[0]

    # --------------------------------------------------------------------------------------- float
    def _forward_float(self, x: torch.Tensor) -> torch.Tensor:
        vals: dict[str, torch.Tensor] = {INPUT: x}
        watch = self.training or self._peaks is not None
        for n in self.spec.nodes:
            ins = [vals[i] for i in n.inputs]
            if n.op == "matmul":
                y = _layer(n)(ins[0])
                if n.bn is not None:
                    y = n.bn(y)
            elif n.op == "add":
                y = ins[0] + ins[1]
            else:
                y = self._float_op(n, ins)
            if watch and n.name in self._slot:
                self._observe(n.name, _act(y, n.act))
            vals[n.name] = F.relu(y) if n.relu else y
        return vals[self.spec.output]

    def _float_op(self, n: GraphNode, ins: list[torch.Tensor]) -> torch.Tensor:
        x, a = ins[0], n.attrs
        if n.op == "clamp":
            return torch.clamp(x, a["lo"], a["hi"])
        if n.op == "maxpool":
            return F.max_pool2d(x, a["kernel"], a["stride"], a["padding"])
        if n.op == "avgpool":
            return F.avg_pool2d(x, a["kernel"], a["stride"], a["padding"], divisor_override=a["divisor"])
        if n.op == "global_avgpool":
            return x.mean(dim=(2, 3), keepdim=a["keepdim"])
        if n.op == "concat":
            return torch.cat(ins, dim=1)
        if n.op == "reshape":
            return x.reshape(x.shape[0], *a["shape"])
        if n.op == "dropout":
            return F.dropout(x, a["p"], self.training)
        raise DPPError(f"node {n.name!r}: unknown op {n.op!r}")  # pragma: no cover - trace_graph checks ops

    # --------------------------------------------------------------------------------------- quantised
    def _forward_quant(self, x: torch.Tensor, keep: bool = False) -> tuple[torch.Tensor, list[NodeIntegers]]:
        dtype = torch.float32 if self.training else torch.float64
        s_in = torch.tensor(self.input_scale, dtype=dtype)
        vals: dict[str, Value] = {INPUT: (saturate(round_half_up(x.to(dtype) / s_in), ACT_BITS, relu=False), s_in)}
        record: list[NodeIntegers] = []
        for n in self.spec.nodes:
            y, s, ints = getattr(self, f"_q_{n.op}")(n, [vals[i] for i in n.inputs], dtype)
            vals[n.name] = (y, s)
            if keep:
                ints.out_scale = float(s)
                record.append(ints)
        y, s = vals[self.spec.output]
        return y * s, record

    def _folded(
        self, n: GraphNode, x_real: torch.Tensor, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The matmul's weight and bias with its BatchNorm folded in (batch statistics in training)."""
        mod = _layer(n)
        bn = cast("nn.BatchNorm1d | nn.BatchNorm2d | None", n.bn)  # dpp.graph folds only these
        w, b = mod.weight, mod.bias
        if bn is None:
            return w, b
        # dpp.graph folds a BatchNorm only when it tracks running statistics: these buffers exist
        running_mean = cast(torch.Tensor, bn.running_mean)
        running_var = cast(torch.Tensor, bn.running_var)
        batches = cast(torch.Tensor, bn.num_batches_tracked)
        w = w.to(dtype)
        b = torch.zeros(w.shape[0], dtype=dtype) if b is None else b.to(dtype)
        if (self.training or self._bn_recalibrating) and bn.training:
            y = self._matmul(n, x_real, w, b)
            dims = [0] + list(range(2, y.dim()))
            mean, var = y.mean(dims), y.var(dims, unbiased=False)
            with torch.no_grad():
                batches.add_(1)
                m = bn.momentum if bn.momentum is not None else 1.0 / float(batches)
                count = y.numel() // y.shape[1]
                running_mean.mul_(1 - m).add_(m * mean.detach().to(running_mean.dtype))
                unbiased = var.detach() * count / max(count - 1, 1)
                running_var.mul_(1 - m).add_(m * unbiased.to(running_var.dtype))
        else:
            mean, var = running_mean.to(dtype), running_var.to(dtype)
        gamma = bn.weight.to(dtype) if bn.affine else torch.ones_like(mean)
        beta = bn.bias.to(dtype) if bn.affine else torch.zeros_like(mean)
        scale = gamma / torch.sqrt(var + bn.eps)
        return w * scale.reshape(-1, *([1] * (w.dim() - 1))), (b - mean) * scale + beta

    @staticmethod
    def _matmul(n: GraphNode, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if isinstance(n.module, nn.Conv2d):
            a = n.attrs
            return F.conv2d(x, w, b, a["stride"], a["padding"], 1, a["groups"])
        return F.linear(x, w, b)

    def _q_matmul(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        x, s_x = ins[0]
        w, b = self._folded(n, x * s_x, dtype)
        w_int, s_w = fake_quant_weight(w, cast(int, self.bits))  # the quantised path: bits is set
        s_acc = s_x * s_w.to(dtype)
        b_int = round_ste(b.to(dtype) / s_acc) if b is not None else None
        acc = self._matmul(n, x, w_int.to(dtype), b_int)
        if n.name == self.logit_node:
            mult, shift, out_bits = LOGIT_MULTIPLIER, LOGIT_SHIFT, LOGIT_OUT_BITS
            s_y = s_acc * (2.0**LOGIT_SHIFT / LOGIT_MULTIPLIER)
        else:
            if self.training:
                self._observe(n.name, _act(acc.detach() * s_acc, n.act))
            peak = self.act_max[self._slot[n.name]].to(s_acc.dtype)
            s_target = peak / ACT_QMAX if float(peak) > 0 else s_acc * 1.0
            mult, shift = quantize_multiplier(float(s_acc / s_target))
            out_bits, s_y = ACT_BITS, s_acc * (2.0**shift / mult)
        y = saturate(round_ste(acc * (mult / 2.0**shift)), out_bits, n.relu)
        bias = torch.zeros(w_int.shape[0], dtype=torch.int64) if b_int is None else b_int.detach().to(torch.int64)
        ints = NodeIntegers(
            n.name,
            n.op,
            list(n.inputs),
            dict(multiplier=mult, shift=shift, relu=bool(n.relu), out_bits=out_bits),
            w_int.detach().to(torch.int64),
            bias,
        )
        return y, s_y, ints

    def _q_add(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        (a, s_a), (b, s_b) = ins
        if self.training:
            self._observe(n.name, _act(a.detach() * s_a + b.detach() * s_b, n.act))
        peak = self.act_max[self._slot[n.name]].to(dtype)
        s_y = peak / ACT_QMAX if float(peak) > 0 else torch.maximum(s_a, s_b).to(dtype)
        (ma, mb), shift = quantize_multipliers([float(s_a / s_y), float(s_b / s_y)])
        y = saturate(round_ste((a * ma + b * mb) / 2.0**shift), ACT_BITS, n.relu)
        return (
            y,
            s_y,
            NodeIntegers(
                n.name,
                n.op,
                list(n.inputs),
                dict(multipliers=[ma, mb], shift=shift, relu=bool(n.relu), out_bits=ACT_BITS),
            ),
        )

    def _pooled(
        self, n: GraphNode, sums: torch.Tensor, s_x: torch.Tensor, divisor: int, extra: dict[str, Any]
    ) -> tuple[torch.Tensor, Any, NodeIntegers]:
        mult, shift = quantize_multiplier(1.0 / divisor)
        y = saturate(round_ste(sums * (mult / 2.0**shift)), ACT_BITS, relu=False)
        params = dict(extra, multiplier=mult, shift=shift, out_bits=ACT_BITS)
        return y, s_x * (2.0**shift / (mult * divisor)), NodeIntegers(n.name, n.op, list(n.inputs), params)

    def _q_avgpool(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        (x, s_x), a = ins[0], n.attrs
        sums = F.avg_pool2d(x, a["kernel"], a["stride"], a["padding"], divisor_override=1)
        return self._pooled(
            n,
            sums,
            s_x,
            a["divisor"],
            dict(kernel=list(a["kernel"]), stride=list(a["stride"]), padding=list(a["padding"])),
        )

    def _q_global_avgpool(
        self, n: GraphNode, ins: list[Value], dtype: torch.dtype
    ) -> tuple[torch.Tensor, Any, NodeIntegers]:
        x, s_x = ins[0]
        sums = x.sum(dim=(2, 3), keepdim=n.attrs["keepdim"])
        return self._pooled(n, sums, s_x, x.shape[2] * x.shape[3], dict(keepdim=bool(n.attrs["keepdim"])))

    def _q_maxpool(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        (x, s_x), a = ins[0], n.attrs
        y = F.max_pool2d(x, a["kernel"], a["stride"], a["padding"])
        return (
            y,
            s_x,
            NodeIntegers(
                n.name,
                n.op,
                list(n.inputs),
                dict(kernel=list(a["kernel"]), stride=list(a["stride"]), padding=list(a["padding"])),
            ),
        )

    def _q_clamp(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        x, s_x = ins[0]
        lo_q, hi_q = signed_range(ACT_BITS)

        def bound(v: float | None, default: int) -> int:  # the real bound in steps of s_x, rounded half up
            return default if v is None else min(hi_q, max(lo_q, math.floor(v / float(s_x) + 0.5)))

        lo, hi = bound(n.attrs["lo"], lo_q), bound(n.attrs["hi"], hi_q)
        return torch.clamp(x, lo, hi), s_x, NodeIntegers(n.name, n.op, list(n.inputs), dict(lo=lo, hi=hi))

    def _q_concat(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        common = max(ins, key=lambda v: float(v[1]))[1]
        parts, mults, shifts = [], [], []
        for x, s in ins:
            mult, shift = quantize_multiplier(float(s / common))
            parts.append(saturate(round_ste(x * (mult / 2.0**shift)), ACT_BITS, relu=False))
            mults.append(mult)
            shifts.append(shift)
        return (
            torch.cat(parts, dim=1),
            common,
            NodeIntegers(n.name, n.op, list(n.inputs), dict(multipliers=mults, shifts=shifts, out_bits=ACT_BITS)),
        )

    def _q_reshape(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        x, s_x = ins[0]
        shape = list(n.attrs["shape"])
        return x.reshape(x.shape[0], *shape), s_x, NodeIntegers(n.name, n.op, list(n.inputs), dict(shape=shape))

    def _q_dropout(self, n: GraphNode, ins: list[Value], dtype: torch.dtype) -> tuple[torch.Tensor, Any, NodeIntegers]:
        x, s_x = ins[0]  # identity on integers (dropout acts in float training only)
        return x, s_x, NodeIntegers(n.name, n.op, list(n.inputs))

    @torch.no_grad()
    def integer_nodes(self, sample: torch.Tensor) -> list[NodeIntegers]:
        """Every node's integers, from the evaluation forward itself (one source of truth).

        ``sample``: any batch of the network's input shape (the integers do not depend on it).
        """
        return eval_integers(self, sample, "integer_nodes")

    @property
    def net(self) -> nn.Module:
        """The wrapped model, under the name :class:`~dpp.qnet.QuantNet` uses (so helpers take either)."""
        return self.model

    def matmul_modules(self) -> list[nn.Linear | nn.Conv2d]:
        """The Conv2d / Linear modules in execution order."""
        return [_layer(n) for n in self.spec.matmuls()]
