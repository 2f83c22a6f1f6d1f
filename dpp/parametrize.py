"""k-of-n masks as parametrisations of ``nn.Linear`` / ``nn.Conv2d`` weights, at three granularities.

``sparsify(model, k=1, n=8, granularity="weight")`` registers a :class:`KofNMask` on the weight of every
chosen layer (``torch.nn.utils.parametrize``), so the model code stays ordinary; ``make_permanent(model)``
bakes the deterministic top-k mask into the weights and ``remove_masks(model)`` restores the dense ones.

Granularities (``cols`` = the reduction dimension: ``in_features``, or ``C*kh*kw`` in im2col order, which is
PyTorch's ``weight.reshape(out, -1)``):

* ``weight``: per output row, k of every n consecutive columns (slot = 1 column).
* ``kernel``: per output filter, k of every n consecutive input channels' whole kh x kw kernels
  (slot = ``kh*kw`` consecutive columns). An ``nn.Linear`` counts as a 1x1 convolution here.
* ``filter``: k of every n consecutive output rows (filters / neurons); n must divide the output count.

For ``weight`` and ``kernel`` a last, partial group (slots not a multiple of n) is allowed and follows the
padding rule of :class:`dpp.kofn.KofNMatrix`: it keeps ``min(k, real slots)`` real slots.

Grouped and depthwise convolutions (``groups > 1``): PyTorch's weight is ``(out, in/groups, kh, kw)``, so each
output row already holds only its own group's fan-in, ``kh*kw*in/groups`` columns, and the groups above are
cut along that fan-in: k of every n within one conv group, never across groups (the hardware runs each conv
group as its own matmul, :mod:`dpp.network`). For a depthwise conv the fan-in is the ``kh*kw`` taps of one
channel's kernel: at ``weight`` granularity a 3x3 depthwise kernel with n = 3 keeps k taps of each kernel row,
with n = 8 it keeps k of the first 8 taps plus the 9th (a partial group of one real slot keeps it); ``kernel``
granularity has one slot per group there (one input channel) and is refused. A grouped layer whose fan-in per
group (in slots) is smaller than n is refused naming the layer; ``filter`` needs n to divide the filters of
each group.

In training, :class:`KofNMask` computes ``W * mask`` (all three granularities) in one fused C call each way
(:mod:`dpp.fused_mask`) when the kernel is built and the tensors are float32 on CPU; otherwise through the torch
functions of :mod:`dpp.masks`. Both draw the same noise from the mask's generator and give the same masks.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.utils import parametrize

from dpp import fused_mask
from dpp.checks import check_k_n
from dpp.errors import ArgumentTypeError, DPPError
from dpp.masks import PAD_LOGIT, group_entropy, gumbel_topk_mask, topk_mask
from dpp.noise import draw_seed

GRANULARITIES = ("weight", "kernel", "filter")
INIT_KINDS = ("normal", "magnitude")
DEFAULT_NOISE_SCALE = 1.0  #: Gumbel noise factor c (reference code: 1, later 0.1 FC / 0.01 conv / 0.001 quantised)


@dataclass(frozen=True)
class GroupLayout:
    """How one layer's weight is cut into k-of-n groups; slot masks have shape :attr:`logit_shape`."""

    granularity: str
    k: int
    n: int
    weight_shape: tuple[int, ...]
    block: int  #: weight columns per slot (1, kh*kw, or a whole filter row for ``filter``)
    real_slots: int  #: slots that exist per row (before padding) or filters for ``filter``

    @property
    def rows(self) -> int:
        return self.weight_shape[0]

    @property
    def cols(self) -> int:
        return math.prod(self.weight_shape[1:])

    @property
    def groups(self) -> int:
        return math.ceil(self.real_slots / self.n)

    @property
    def logit_shape(self) -> tuple[int, ...]:
        if self.granularity == "filter":
            return (self.groups, self.n)
        return (self.rows, self.groups, self.n)

    def pad_positions(self) -> torch.Tensor:
        """Boolean tensor of :attr:`logit_shape`: True at padded (non-existent) slots."""
        pad = torch.arange(self.groups * self.n).reshape(self.groups, self.n) >= self.real_slots
        return pad.expand(self.logit_shape) if self.granularity != "filter" else pad

    def expand(self, slot_mask: torch.Tensor) -> torch.Tensor:
        """Slot mask of :attr:`logit_shape` → a mask broadcastable against the weight."""
        if self.granularity == "filter":
            return slot_mask.reshape(-1)[: self.rows].reshape((self.rows,) + (1,) * (len(self.weight_shape) - 1))
        m = slot_mask.reshape(self.rows, self.groups * self.n)
        if self.block > 1:
            m = m.repeat_interleave(self.block, dim=1)
        return m[:, : self.cols].reshape(self.weight_shape)


def layout_for(module: nn.Module, k: int, n: int, granularity: str, name: str = "layer") -> GroupLayout:
    """The :class:`GroupLayout` of ``module`` or a clear error if the layer or granularity is unsupported."""
    k, n = check_k_n(k, n)
    if granularity not in GRANULARITIES:
        raise DPPError(f"granularity must be one of {GRANULARITIES} (got {granularity!r})")
    if not isinstance(module, (nn.Linear, nn.Conv2d)):
        raise ArgumentTypeError(f"{name}: only nn.Linear and nn.Conv2d can be sparsified (got {type(module).__name__})")
    groups = int(getattr(module, "groups", 1))
    shape = tuple(module.weight.shape)
    cols = math.prod(shape[1:])
    if granularity == "weight":
        block, real = 1, cols
    elif granularity == "kernel":
        block = math.prod(shape[2:]) if len(shape) == 4 else 1
        real = shape[1]
    else:
        per_group = shape[0] // groups
        if per_group % n:
            where = (
                f"the {per_group} output filters of each of its {groups} groups"
                if groups > 1
                else f"the {shape[0]} output filters"
            )
            raise DPPError(f"{name}: filter granularity needs n to divide {where} (got n={n})")
        block, real = cols, shape[0]
    if groups > 1 and granularity != "filter" and n > real:
        unit = "kernels (input channels per group)" if granularity == "kernel" else "weights (kh*kw*in_channels/groups)"
        raise DPPError(
            f"{name}: n={n} is larger than the fan-in of each of its {groups} groups ({real} {unit}); "
            f"choose n <= {real}, another granularity, or leave the layer out (--layers)"
        )
    return GroupLayout(granularity, k, n, shape, block, real)


class MaskBase(nn.Module):
    """A k-of-n mask parametrisation: ``forward(W) = W * mask``; :meth:`slot_mask` is what export keeps."""

    layout: GroupLayout

    def slot_mask(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def weight_mask(self) -> torch.Tensor:
        """The deterministic mask, broadcastable to the weight, as used in evaluation and export."""
        return self.layout.expand(self.slot_mask())


class KofNMask(MaskBase):
    """Learnable DPP mask: Gumbel top-k sample per forward in training, top-k of the logits in eval."""

    pad: torch.Tensor  #: buffer, True at padded slots

    def __init__(
        self,
        layout: GroupLayout,
        *,
        noise_scale: float = DEFAULT_NOISE_SCALE,
        generator: torch.Generator | None = None,
        init: str = "normal",
        init_std: float | None = None,
        weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if init not in INIT_KINDS:
            raise DPPError(f"init must be one of {INIT_KINDS} (got {init!r})")
        if noise_scale < 0:
            raise DPPError(f"noise_scale must be >= 0 (got {noise_scale})")
        self.layout = layout
        self.noise_scale = float(noise_scale)
        self.generator = generator
        self.temperature = 5.0
        std = init_std if init_std is not None else (1.0 if layout.granularity == "filter" else 0.5)
        logits = torch.randn(layout.logit_shape, generator=generator) * std
        if init == "magnitude":
            if weight is None:
                raise DPPError("init='magnitude' needs the layer weight")
            logits = logits + _magnitude_logits(weight.detach(), layout)
        self.logits = nn.Parameter(logits)
        self.register_buffer("pad", layout.pad_positions().clone(), persistent=False)
        self.has_pad = bool(self.pad.any())
        self._kernel_dims = fused_mask.kernel_dims(
            layout.logit_shape, math.prod(layout.weight_shape), layout.k, layout.real_slots, layout.block
        )

    def padded_logits(self) -> torch.Tensor:
        """Logits with padded slots forced to :data:`PAD_LOGIT`."""
        return self.logits.masked_fill(self.pad, PAD_LOGIT) if self.has_pad else self.logits

    def slot_mask(self) -> torch.Tensor:
        return topk_mask(self.padded_logits(), self.layout.k)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return weight * self.weight_mask()
        if fused_mask.supports(weight, self.logits):  # one C call each way: noise, exact top-k, W * mask
            seed = draw_seed(self.generator) if self.noise_scale > 0 else 0
            return fused_mask.masked_weight(
                weight, self.logits, self._kernel_dims, self.temperature, self.noise_scale, seed
            )
        # torch path (DPP_FUSED_MASK=0, no compiler, other dtypes): the same noise for the same generator state
        m = gumbel_topk_mask(
            self.padded_logits(),
            self.layout.k,
            self.temperature,
            noise_scale=self.noise_scale,
            generator=self.generator,
        )
        return weight * self.layout.expand(m)


def _magnitude_logits(weight: torch.Tensor, layout: GroupLayout) -> torch.Tensor:
    """Per-slot L1 magnitude, standardised per layer: a warm start that favours large weights."""
    score = slot_scores(weight.abs(), layout)
    real = torch.isfinite(score)
    vals = score[real]
    z = (score - vals.mean()) / (vals.std() + 1e-12) if vals.numel() > 1 else score - vals.mean()
    return torch.where(real, z, torch.zeros_like(z))  # padded slots are forced to PAD_LOGIT later


def slot_scores(values: torch.Tensor, layout: GroupLayout) -> torch.Tensor:
    """Sum of ``values`` (weight-shaped) over each slot, shape :attr:`GroupLayout.logit_shape`, pads = -inf."""
    v = values.reshape(layout.rows, -1)
    if layout.granularity == "filter":
        s = v.sum(dim=1)
        return s.reshape(layout.groups, layout.n)
    padded = torch.nn.functional.pad(v, (0, layout.groups * layout.n * layout.block - layout.cols))
    s = padded.reshape(layout.rows, layout.groups, layout.n, layout.block).sum(dim=3)
    return s.masked_fill(layout.pad_positions(), float("-inf"))


# --------------------------------------------------------------------------------------------- model-level
def default_layers(model: nn.Module, granularity: str) -> list[str]:
    """All Linear/Conv2d layers, in order; for ``filter`` granularity the last (classifier) one is left dense."""
    names = [name for name, mod in model.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))]
    if granularity == "filter":
        names = names[:-1]
    return names


def default_prune_layers(model: nn.Module, n: int, granularity: str) -> tuple[list[str], list[tuple[str, str]]]:
    """``(pruned, dense)``: the Linear/Conv2d layers a k-of-n with this ``n`` fits by default, and the others
    with the reason they stay dense (``dpp prune`` and models run as a graph, when no ``--layers`` is given).

    A layer is pruned when its fan-in per conv group, in slots of the granularity, is at least ``n``
    (``weight``: ``kh*kw*in/groups`` weights; ``kernel``: ``in/groups`` kernels); for ``filter`` when ``n``
    divides the filters of each group, the last layer (the classifier) excepted.
    """
    if granularity not in GRANULARITIES:
        raise DPPError(f"granularity must be one of {GRANULARITIES} (got {granularity!r})")
    layers = [(name, mod) for name, mod in model.named_modules() if isinstance(mod, (nn.Linear, nn.Conv2d))]
    pruned: list[str] = []
    dense: list[tuple[str, str]] = []
    for i, (name, mod) in enumerate(layers):
        shape = tuple(mod.weight.shape)
        groups = int(getattr(mod, "groups", 1))
        if granularity == "filter":
            per = shape[0] // groups
            if i == len(layers) - 1:
                dense.append((name, "the classifier (filter granularity keeps it dense)"))
            elif per % n:
                dense.append((name, f"n={n} does not divide its {per} filters per group"))
            else:
                pruned.append(name)
            continue
        fan_in = math.prod(shape[1:]) if granularity == "weight" else shape[1]
        unit = "weights" if granularity == "weight" else "kernels"
        if fan_in < n:
            dense.append((name, f"fan-in {fan_in} {unit} per group < n={n}"))
        else:
            pruned.append(name)
    return pruned, dense


def _resolve_layers(model: nn.Module, layers: Iterable[str] | None, granularity: str) -> list[tuple[str, nn.Module]]:
    if granularity not in GRANULARITIES:
        raise DPPError(f"granularity must be one of {GRANULARITIES} (got {granularity!r})")
    modules = dict(model.named_modules())
    names = default_layers(model, granularity) if layers is None else list(layers)
    if not names:
        raise DPPError("no layer to sparsify (the model has no nn.Linear / nn.Conv2d, or layers is empty)")
    out = []
    for name in names:
        if name not in modules:
            raise DPPError(f"layer {name!r} not found in the model (known: {sorted(n for n in modules if n)})")
        if parametrize.is_parametrized(modules[name], "weight"):
            raise DPPError(f"layer {name!r} already has a mask; call remove_masks or make_permanent first")
        out.append((name, modules[name]))
    return out


def attach_masks(
    model: nn.Module,
    k: int,
    n: int,
    granularity: str,
    layers: Iterable[str] | None,
    make: Callable[[GroupLayout, nn.Module], MaskBase],
) -> nn.Module:
    """Register ``make(layout, module)`` as the weight parametrisation of each chosen layer (all checked first)."""
    chosen = _resolve_layers(model, layers, granularity)
    layouts = [(mod, layout_for(mod, k, n, granularity, name)) for name, mod in chosen]
    for mod, layout in layouts:
        parametrize.register_parametrization(mod, "weight", make(layout, mod))
    return model


def sparsify(
    model: nn.Module,
    k: int,
    n: int,
    granularity: str = "weight",
    layers: Iterable[str] | None = None,
    *,
    seed: int = 0,
    noise_scale: float = DEFAULT_NOISE_SCALE,
    init: str = "normal",
    init_std: float | None = None,
) -> nn.Module:
    """Make ``model`` a DPP model in place: a learnable :class:`KofNMask` on each chosen layer's weight.

    ``layers``: qualified module names (default :func:`default_layers`). ``seed`` seeds the one
    ``torch.Generator`` that initialises the logits and draws every Gumbel sample. Returns ``model``.
    """
    gen = torch.Generator().manual_seed(int(seed))
    return attach_masks(
        model,
        k,
        n,
        granularity,
        layers,
        lambda layout, mod: KofNMask(
            layout,
            noise_scale=noise_scale,
            generator=gen,
            init=init,
            init_std=init_std,
            weight=cast(torch.Tensor, mod.weight),  # a Linear / Conv2d (layout_for checks)
        ),
    )


def masked_layers(model: nn.Module) -> list[tuple[str, nn.Module, MaskBase]]:
    """``(name, module, mask)`` for every layer whose weight carries a k-of-n mask."""
    out = []
    for name, mod in model.named_modules():
        if parametrize.is_parametrized(mod, "weight"):
            for p in mod.parametrizations["weight"]:
                if isinstance(p, MaskBase):
                    out.append((name, mod, p))
    return out


def set_temperature(model: nn.Module, temperature: float) -> None:
    """Set the relaxation temperature of every :class:`KofNMask` in ``model``."""
    if not temperature > 0:
        raise DPPError(f"temperature must be > 0 (got {temperature})")
    for _, _, mask in masked_layers(model):
        if isinstance(mask, KofNMask):
            mask.temperature = float(temperature)


def entropy_penalty(model: nn.Module) -> torch.Tensor:
    """Sum over all DPP groups of the entropy of softmax(logits): the reference code's regulariser."""
    terms = [group_entropy(m.padded_logits()).sum() for _, _, m in masked_layers(model) if isinstance(m, KofNMask)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def mask_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The logits of every DPP mask (for a separate optimiser group)."""
    return [m.logits for _, _, m in masked_layers(model) if isinstance(m, KofNMask)]


def _remove(model: nn.Module, leave_parametrized: bool) -> nn.Module:
    was = model.training
    model.eval()  # the permanent weight uses the deterministic top-k mask
    for _, mod, _ in masked_layers(model):
        parametrize.remove_parametrizations(mod, "weight", leave_parametrized=leave_parametrized)
    model.train(was)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Replace every masked weight by ``W * topk_mask`` and drop the masks (in place)."""
    return _remove(model, True)


def remove_masks(model: nn.Module) -> nn.Module:
    """Drop every mask and restore the dense, unmasked weights (in place)."""
    return _remove(model, False)
