"""Baseline masks in the same harness as DPP: magnitude / random fixed k-of-n, SR-STE k-of-n, unstructured.

* magnitude k-of-n (NVIDIA-ASP-like): one-shot keep the k of n slots of largest L1 magnitude of a trained
  dense model (:func:`attach_magnitude`), then fine-tune with the mask fixed;
* random k-of-n: a fixed uniformly random k-of-n mask from the start (:func:`attach_random`);
* SR-STE (Zhou et al. 2021, "Learning N:M fine-grained structured sparse neural networks from scratch"):
  the magnitude k-of-n mask recomputed every forward pass; backward passes the dense gradient (STE) plus the
  sparse-refined term ``decay * (1 - M) * W`` (:func:`attach_srste`, decay 2e-4 as in the paper);
* unstructured magnitude pruning at the same density, per layer (:func:`attach_unstructured`);
* prune, then quantise (method ``magnitude_qat`` of :mod:`dpp.train`, the baseline of joint pruning +
  quantisation): trained dense in float, pruned once to magnitude k-of-n (:func:`attach_magnitude`), then
  fine-tuned quantisation-aware with ``bits``-bit weights (1..8), on the same data and epoch budget. Plain
  ``magnitude`` with ``bits`` instead quantises from the first step (dense QAT, prune, QAT fine-tune).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import torch
from torch import nn

from dpp.errors import DPPError
from dpp.masks import topk_mask
from dpp.parametrize import GroupLayout, MaskBase, attach_masks, slot_scores

SRSTE_DECAY = 2e-4


class FixedKofNMask(MaskBase):
    """A k-of-n mask that does not change (stored as a persistent buffer)."""

    slots: torch.Tensor  #: buffer, the slot mask

    def __init__(self, layout: GroupLayout, slot_mask: torch.Tensor) -> None:
        super().__init__()
        self.layout = layout
        self.register_buffer("slots", slot_mask.detach().clone().float())

    def slot_mask(self) -> torch.Tensor:
        return self.slots

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.layout.expand(self.slots)


class _SRSTEFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight: torch.Tensor, mask: torch.Tensor, decay: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(weight, mask)
        ctx.decay = decay
        return weight * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        weight, mask = ctx.saved_tensors
        return grad + ctx.decay * (1.0 - mask) * weight, None, None


class SRSTEMask(MaskBase):
    """SR-STE: magnitude top-k of n recomputed from the current weights every forward pass."""

    slots: torch.Tensor  #: buffer, the last slot mask used

    def __init__(self, layout: GroupLayout, decay: float = SRSTE_DECAY) -> None:
        super().__init__()
        if decay < 0:
            raise DPPError(f"SR-STE decay must be >= 0 (got {decay})")
        self.layout = layout
        self.decay = float(decay)
        self.register_buffer("slots", torch.zeros(layout.logit_shape))

    def slot_mask(self) -> torch.Tensor:
        return self.slots

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        slots = topk_mask(slot_scores(weight.detach().abs(), self.layout), self.layout.k)
        self.slots = slots  # the last mask used, exported in evaluation
        return _SRSTEFunction.apply(weight, self.layout.expand(slots).expand_as(weight), self.decay)


class UnstructuredMask(MaskBase):
    """A fixed element-wise mask (no k-of-n structure)."""

    layout = None  # type: ignore[assignment]
    mask: torch.Tensor  #: buffer, weight-shaped

    def __init__(self, mask: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mask", mask.detach().clone().float())

    def weight_mask(self) -> torch.Tensor:
        return self.mask

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        return weight * self.mask


def _weight(mod: nn.Module) -> torch.Tensor:
    """The weight of a layer :func:`dpp.parametrize.attach_masks` accepted (an nn.Linear / nn.Conv2d)."""
    return cast(torch.Tensor, mod.weight)


def attach_magnitude(
    model: nn.Module, k: int, n: int, granularity: str = "weight", layers: Iterable[str] | None = None
) -> nn.Module:
    """Fixed k-of-n masks keeping the k largest-L1 slots of each group of the current weights."""
    return attach_masks(
        model,
        k,
        n,
        granularity,
        layers,
        lambda layout, mod: FixedKofNMask(
            layout, topk_mask(slot_scores(_weight(mod).detach().abs(), layout), layout.k)
        ),
    )


def attach_random(
    model: nn.Module, k: int, n: int, granularity: str = "weight", layers: Iterable[str] | None = None, *, seed: int = 0
) -> nn.Module:
    """Fixed, uniformly random k-of-n masks drawn from ``torch.Generator().manual_seed(seed)``."""
    gen = torch.Generator().manual_seed(int(seed))

    def make(layout: GroupLayout, mod: nn.Module) -> MaskBase:
        scores = torch.rand(layout.logit_shape, generator=gen).masked_fill(layout.pad_positions(), float("-inf"))
        return FixedKofNMask(layout, topk_mask(scores, layout.k))

    return attach_masks(model, k, n, granularity, layers, make)


def attach_srste(
    model: nn.Module,
    k: int,
    n: int,
    granularity: str = "weight",
    layers: Iterable[str] | None = None,
    *,
    decay: float = SRSTE_DECAY,
) -> nn.Module:
    """SR-STE masks (see the module docstring)."""
    return attach_masks(model, k, n, granularity, layers, lambda layout, mod: SRSTEMask(layout, decay))


def attach_unstructured(model: nn.Module, density: float, layers: Iterable[str] | None = None) -> nn.Module:
    """Per layer, keep the ``round(density * size)`` largest-magnitude weights (ties: first in order)."""
    if not 0.0 < density <= 1.0:
        raise DPPError(f"density must be in (0, 1] (got {density})")

    def make(layout: GroupLayout, mod: nn.Module) -> MaskBase:
        weight = _weight(mod)
        w = weight.detach().abs().reshape(-1)
        keep = max(1, round(density * w.numel()))
        order = torch.sort(w, descending=True, stable=True).indices[:keep]
        mask = torch.zeros_like(w).index_fill_(0, order, 1.0).reshape(weight.shape)
        return UnstructuredMask(mask)

    # the k-of-n layout is only used for layer checks here; k=1, n=2 accept every Linear / Conv2d
    return attach_masks(model, 1, 2, "weight", layers, make)
