"""Fake quantisation that mirrors the integer reference model (:mod:`dpp.reference`) step for step.

Numbers (one source of truth, imported by :mod:`dpp.qnet` and :mod:`dpp.export`):

* weights: symmetric, per layer, ``bits`` in 2..8: ``w_int = clamp(round(W*M / s_w), -q, q)`` with
  ``q = 2**(bits-1) - 1`` and ``s_w = max|W*M| / q``;
* binary weights (``bits = 1``, the reference code's sign variant): ``w_int = sign(W*M)`` in {-1, +1} (0 only
  where the mask pruned, or for a weight exactly 0) with the per-layer scale ``s_w = mean |W*M|`` over the
  non-zero weights (the L2-optimal scale of a sign code), straight-through gradient (identity through
  ``W*M / s_w``). The integers are stored as :data:`BINARY_STORAGE_BITS`-bit signed words
  (:func:`storage_weight_bits`): the exported layers, the hardware arrays and their storage / energy
  accounting see ``weight_bits = 2`` holding only -1, 0 and +1 (exact everywhere; a 1-bit code would save one
  value bit per kept weight but needs no zero, which dense and filter-pruned layers still hold);
* activations: signed 8-bit integers; the input image in [0, 1] becomes ``round(x / INPUT_SCALE)``;
* bias: ``round(b / (s_x * s_w))``, added to the exact integer accumulator;
* requantisation: the real factor ``s_x * s_w / s_y`` becomes ``multiplier / 2**shift``
  (:func:`quantize_multiplier`) and ``y = floor(acc * multiplier / 2**shift + 1/2)`` (round half up), then
  ReLU and saturation, exactly :func:`dpp.reference.requantize`.

Rounding is :func:`round_half_up` everywhere, with a straight-through gradient (:func:`round_ste`).
"""

from __future__ import annotations

import math

import torch

from dpp.checks import check_int, signed_range
from dpp.errors import DPPError
from dpp.reference import MAX_MULTIPLIER, MAX_SHIFT

WEIGHT_BITS_RANGE = (1, 8)  #: trainable weight bits; 1 = binary (sign with a per-layer scale)
BINARY_BITS = 1
BINARY_STORAGE_BITS = 2  #: signed word width that holds a binary weight (-1, +1) and a pruned 0 exactly
ACT_BITS = 8
INPUT_SCALE = 1.0 / 127.0  #: real value of one input step: pixels in [0, 1] map to integers 0..127
LOGIT_OUT_BITS = 32  #: the classifier layer's output width (no ReLU)
LOGIT_MULTIPLIER, LOGIT_SHIFT = 1, 1  #: classifier requantisation: y = floor(acc / 2 + 1/2)


def check_weight_bits(bits: int) -> int:
    """Weight bits for joint quantisation: an integer in 1..8 (1 = binary)."""
    return check_int("bits", bits, lo=WEIGHT_BITS_RANGE[0], hi=WEIGHT_BITS_RANGE[1])


def storage_weight_bits(bits: int) -> int:
    """Signed word width that stores ``bits``-bit weights: ``bits``, but :data:`BINARY_STORAGE_BITS` for binary."""
    return max(check_weight_bits(bits), BINARY_STORAGE_BITS)


def round_half_up(x: torch.Tensor) -> torch.Tensor:
    """``floor(x + 1/2)``: the rounding of the integer reference model (ties towards +inf)."""
    return torch.floor(x + 0.5)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """:func:`round_half_up` forward, identity gradient (straight-through estimator)."""
    return x + (round_half_up(x) - x).detach()


def weight_qmax(bits: int) -> int:
    """Largest weight integer: ``2**(bits-1) - 1`` (symmetric range, -2**(bits-1) unused); 1 for binary."""
    bits = check_weight_bits(bits)
    return 1 if bits == BINARY_BITS else (1 << (bits - 1)) - 1


def weight_scale(weight: torch.Tensor, bits: int) -> torch.Tensor:
    """Per-layer scale (detached; 1 for an all-zero weight): ``max|W| / qmax``, or for binary weights the mean
    ``|W|`` over the non-zero weights."""
    w = weight.detach().abs()
    if check_weight_bits(bits) == BINARY_BITS:
        count = (w > 0).sum()
        return torch.where(count > 0, w.sum() / count.clamp_min(1), torch.ones((), dtype=w.dtype))
    peak = w.max()
    return torch.where(peak > 0, peak / weight_qmax(bits), torch.ones_like(peak))


def sign_ste(x: torch.Tensor) -> torch.Tensor:
    """``sign(x)`` (-1, 0 or +1) forward, identity gradient (straight-through estimator)."""
    return x + (torch.sign(x) - x).detach()


def fake_quant_weight(weight: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(w_int, s_w)``: integer-valued weights with a straight-through gradient, and their scale."""
    s = weight_scale(weight, bits)
    if bits == BINARY_BITS:
        return sign_ste(weight / s), s
    q = weight_qmax(bits)
    return torch.clamp(round_ste(weight / s), -q, q), s


def saturate(y: torch.Tensor, bits: int, relu: bool) -> torch.Tensor:
    """ReLU (optional) then clip to signed ``bits`` — gradients pass inside the range only."""
    lo, hi = signed_range(bits)
    return torch.clamp(y, 0 if relu else lo, hi)


def quantize_multiplier(ratio: float) -> tuple[int, int]:
    """``(multiplier, shift)`` with ``multiplier / 2**shift`` closest to ``ratio`` using the most bits.

    ``multiplier`` in ``[1, MAX_MULTIPLIER]``, ``shift`` in ``[1, MAX_SHIFT]`` (the hardware's per-layer scalars).
    """
    if not (isinstance(ratio, float | int) and math.isfinite(ratio) and ratio > 0):
        raise DPPError(f"requantisation ratio must be a finite number > 0 (got {ratio!r})")
    shift = math.floor(math.log2(MAX_MULTIPLIER / ratio))
    shift = min(max(shift, 1), MAX_SHIFT)
    multiplier = round(ratio * (1 << shift))
    if multiplier > MAX_MULTIPLIER:  # rounding up crossed the limit
        shift -= 1
        multiplier = round(ratio * (1 << shift))
    if not (1 <= multiplier <= MAX_MULTIPLIER) or shift < 1:
        raise DPPError(
            f"requantisation ratio {ratio!r} cannot be written as multiplier / 2**shift with "
            f"multiplier in [1, {MAX_MULTIPLIER}] and shift in [1, {MAX_SHIFT}]"
        )
    return int(multiplier), int(shift)
