"""The integer reference model: the golden semantics every piece of hardware reproduces bit for bit.

``linear_int(x, W, bias, multiplier, shift, out_bits, relu)`` computes one quantised fully-connected layer
(convolutions are lowered to it by im2col) for a batch ``x`` of shape ``(batch, cols)`` (or one vector of
shape ``(cols,)``) of signed ``act_bits``-bit integers:

1. ``acc[b, r] = sum_c W[r, c] * x[b, c] + bias[r]`` in exact integers (int64, checked against overflow);
   ``W`` may be a :class:`~dpp.kofn.KofNMatrix`, a :class:`~dpp.kofn.CSRMatrix` or a dense integer array:
   all three give identical results for the same matrix.
2. ``y = (acc * multiplier + (1 << (shift - 1))) >> shift`` with an arithmetic (floor) shift, i.e. the real
   ``acc * multiplier / 2**shift`` rounded half up (towards +inf), also for negative ``acc``.
   ``multiplier`` is an integer in ``[1, MAX_MULTIPLIER]`` and ``shift`` in ``[1, MAX_SHIFT]``, either
   per layer (scalars, what the hardware implements) or per output row (arrays of shape ``(rows,)``).
3. If ``relu``: ``y = max(y, 0)``. Then saturate to signed ``out_bits``: clip to
   ``[-2**(out_bits-1), 2**(out_bits-1) - 1]``.

The result has shape ``(batch, rows)`` (or ``(rows,)``), dtype int64.

:func:`accumulator_bits` gives a signed accumulator width that can never overflow for a layer; the RTL sizes
its accumulators with it. Products of a ``weight_bits`` and an ``act_bits`` signed integer need
``weight_bits + act_bits`` bits (``(-2**(w-1)) * (-2**(a-1))`` is the extreme), a sum of ``fan_in`` of them
``ceil(log2 fan_in)`` more, and adding the bias one more bit beyond the wider of the two.

Binary weights (trained with ``bits = 1``, :mod:`dpp.quant`) are ordinary integers here: -1 and +1 (0 where
pruned) held in 2-bit signed words (``weight_bits = 2``, the narrowest signed width holding both signs); every
function above computes them exactly like any other weights, and :func:`accumulator_bits` with
``weight_bits = 2`` bounds them (one bit wider than the ``act_bits + ceil(log2 fan_in)`` that ±1 strictly needs).

The other integer ops of a network (the graph of :class:`dpp.network.IntNetwork`) follow the same rules:
exact integer arithmetic, rounding half up (``(v + (1 << (shift - 1))) >> shift``), optional ReLU, then
saturation to signed ``out_bits``. Activations are NCHW (or ``(batch, features)``) int64 arrays of signed
``act_bits``-bit integers; ``kernel``, ``stride`` and ``padding`` are an int or an ``(h, w)`` pair.

* :func:`conv2d_int`: a convolution lowered to what the arrays run. The input channels are cut into
  ``groups`` equal slices (depthwise: one channel each); slice g is lowered by :func:`im2col` (zero padding,
  rows ordered (image, output y, output x), columns in PyTorch's ``weight.reshape(out, -1)`` order) and
  multiplied by group g's matrix ``(out_channels / groups, in_channels / groups * kh * kw)`` with
  :func:`linear_int` (one ``multiplier`` / ``shift`` for all groups); the group outputs are concatenated
  along channels in group order.
* :func:`maxpool_int`: the maximum of each ``kernel`` window (windows may overlap); padding adds positions
  that never win (PyTorch pads with -inf), at most half a kernel on each side so every window holds a real
  value; floor mode (the last partial window is dropped, as ``ceil_mode=False``).
* :func:`avgpool_int`: the exact integer sum of each zero-padded ``kernel`` window (padded zeros count, as
  ``count_include_pad=True``), then requantised: ``(sum * multiplier + (1 << (shift - 1))) >> shift``,
  saturate. The divisor lives in ``multiplier / 2**shift`` (about ``s_in / (s_out * kh * kw)``).
  :func:`global_avgpool_int` does the same over all of H x W (``AdaptiveAvgPool2d((1, 1))``).
* :func:`add_int`: a residual add of two tensors of one shape at different scales, each with its own integer
  multiplier and one shared shift: ``y = (a * multiplier_a + b * multiplier_b + (1 << (shift - 1))) >> shift``,
  optional ReLU, saturate.
* :func:`concat_int`: concatenation along channels at a common scale: input i is first requantised to it,
  ``(x_i * multiplier_i + (1 << (shift_i - 1))) >> shift_i`` then saturated (an input already at the common
  scale has ``multiplier_i == 2**shift_i`` and passes unchanged); then the inputs are joined along axis 1.
* :func:`clamp_int`: ReLU6, hardtanh and other hard clamps: ``min(max(x, lo), hi)`` with integer bounds
  (the real bounds divided by the tensor's scale, rounded half up).

Multipliers are integers in ``[1, MAX_MULTIPLIER]``, shifts in ``[1, MAX_SHIFT]``, as for :func:`linear_int`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from dpp.checks import check_int, check_int_array, signed_range
from dpp.errors import DPPError
from dpp.kofn import CSRMatrix, KofNMatrix, WeightMatrix

MULTIPLIER_BITS = 16  #: the hardware holds ``multiplier`` as a 16-bit signed (positive) number
MAX_MULTIPLIER = (1 << (MULTIPLIER_BITS - 1)) - 1
MAX_SHIFT = 48
ACT_BITS_RANGE = (2, 16)
EXACT_FLOAT = 1 << 53  #: integers below this are exact in float64
OUT_BITS_RANGE = (2, 32)


def accumulator_bits(act_bits: int, weight_bits: int, fan_in: int, bias_bits: int | None = None) -> int:
    """Signed accumulator width that cannot overflow: products, their sum over ``fan_in``, plus the bias.

    ``bias_bits`` defaults to the width of the product sum, giving ``weight_bits + act_bits +
    ceil(log2 fan_in) + 1``.
    """
    act_bits = check_int("act_bits", act_bits, lo=1)
    weight_bits = check_int("weight_bits", weight_bits, lo=1)
    fan_in = check_int("fan_in", fan_in, lo=1)
    sum_bits = act_bits + weight_bits + math.ceil(math.log2(fan_in))
    if bias_bits is None:
        bias_bits = sum_bits
    bias_bits = check_int("bias_bits", bias_bits, lo=1)
    return max(sum_bits, bias_bits) + 1


def matmul_int(W: WeightMatrix, x: np.ndarray) -> np.ndarray:
    """Exact ``x @ W.T`` for a ``(batch, cols)`` int64 batch; each format uses its own packed arrays."""
    if isinstance(W, KofNMatrix):
        xp = np.pad(x, ((0, 0), (0, W.padded_cols - W.cols)))
        cols = W.value_columns().reshape(W.rows, -1)  # (rows, fan_in)
        gathered = xp[:, cols]  # (batch, rows, fan_in)
        return np.einsum("brf,rf->br", gathered, W.values.reshape(W.rows, -1))
    if isinstance(W, CSRMatrix):
        prod = x[:, W.col_indices] * W.values[None, :]  # (batch, nnz)
        out = np.zeros((x.shape[0], W.rows), dtype=np.int64)
        rows_of = np.repeat(np.arange(W.rows), W.row_lengths())
        np.add.at(out, (slice(None), rows_of), prod)  # type: ignore[arg-type]  # numpy stubs: at() takes any index
        return out
    W = np.asarray(W)
    bound = int(np.abs(x).max(initial=0)) * int(np.abs(W).max(initial=0)) * max(1, W.shape[1])
    if bound < EXACT_FLOAT:  # every partial sum is an integer below 2**53: float64 BLAS is exact and far faster
        return (x.astype(np.float64) @ W.T.astype(np.float64)).astype(np.int64)
    return x @ W.T


def _as_row_param(name: str, value: Any, rows: int, lo: int, hi: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim == 0:
        check_int(name, value, lo=lo, hi=hi)
        return np.full(rows, int(value), dtype=np.int64)
    arr = check_int_array(name, arr, ndim=1)
    if arr.shape != (rows,):
        raise DPPError(f"{name} must be a scalar or have shape ({rows},) (got {arr.shape})")
    bad = np.argwhere((arr < lo) | (arr > hi))
    if bad.size:
        i = int(bad[0][0])
        raise DPPError(f"{name}[{i}] must be in [{lo}, {hi}] (got {int(arr[i])})")
    return arr


def requantize(acc: Any, multiplier: Any, shift: Any, out_bits: int, relu: bool) -> np.ndarray:
    """Steps 2 and 3 of the contract on an int64 accumulator array of shape ``(..., rows)``."""
    acc = np.asarray(acc, dtype=np.int64)
    rows = acc.shape[-1]
    out_bits = check_int("out_bits", out_bits, lo=OUT_BITS_RANGE[0], hi=OUT_BITS_RANGE[1])
    mult = _as_row_param("multiplier", multiplier, rows, 1, MAX_MULTIPLIER)
    sh = _as_row_param("shift", shift, rows, 1, MAX_SHIFT)
    peak = int(np.abs(acc).max(initial=0)) * int(mult.max()) + (1 << (int(sh.max()) - 1))
    if peak < (1 << 62):
        y = (acc * mult + (np.int64(1) << (sh - 1))) >> sh
    else:  # exact Python integers when int64 could overflow
        y = (acc.astype(object) * mult.astype(object) + (1 << (sh.astype(object) - 1))) >> sh.astype(object)
    if relu:
        y = np.maximum(y, 0)
    lo, hi = signed_range(out_bits)
    return np.clip(y, lo, hi).astype(np.int64)


def linear_int(
    x: Any,
    W: WeightMatrix,
    bias: Any,
    multiplier: Any,
    shift: Any,
    out_bits: int,
    relu: bool,
    *,
    act_bits: int = 8,
) -> np.ndarray:
    """One quantised fully-connected layer, exactly as documented in the module docstring."""
    act_bits = check_int("act_bits", act_bits, lo=ACT_BITS_RANGE[0], hi=ACT_BITS_RANGE[1])
    if isinstance(W, (KofNMatrix, CSRMatrix)):
        rows, cols = W.shape
    else:
        W = check_int_array("W", W, ndim=2)
        rows, cols = W.shape
    xa = check_int_array("x", x, bits=act_bits)
    single = xa.ndim == 1
    if single:
        xa = xa[None, :]
    if xa.ndim != 2 or xa.shape[1] != cols:
        raise DPPError(f"x must have shape (batch, {cols}) or ({cols},) (got {np.shape(x)})")
    b = check_int_array("bias", bias, ndim=1)
    if b.shape != (rows,):
        raise DPPError(f"bias must have shape ({rows},) (got {b.shape})")
    if abs(int(np.abs(b).max(initial=0))) >= (1 << 52):
        raise DPPError("bias magnitude must be < 2**52 so the int64 accumulator is exact")
    acc = matmul_int(W, xa) + b[None, :]
    y = requantize(acc, multiplier, shift, out_bits, bool(relu))
    return y[0] if single else y


# ------------------------------------------------------------------------------------ the other graph ops
def pair(name: str, value: Any, *, lo: int = 0) -> tuple[int, int]:
    """An int or an ``(h, w)`` pair of ints (each ``>= lo``) as a pair."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise DPPError(f"{name} must be an int or a pair of ints (got {value!r})")
        return check_int(f"{name}[0]", value[0], lo=lo), check_int(f"{name}[1]", value[1], lo=lo)
    v = check_int(name, value, lo=lo)
    return v, v


def _nchw(name: str, x: Any, act_bits: int) -> np.ndarray:
    act_bits = check_int("act_bits", act_bits, lo=ACT_BITS_RANGE[0], hi=ACT_BITS_RANGE[1])
    xa = check_int_array(name, x, bits=act_bits)
    if xa.ndim != 4:
        raise DPPError(f"{name} must be an NCHW array (got shape {xa.shape})")
    return xa


def _windows(x: np.ndarray, kernel: Any, stride: Any, padding: Any, fill: int) -> np.ndarray:
    """``(N, C, OH, OW, kh, kw)`` windows of ``x`` padded with ``fill`` (floor mode)."""
    kh, kw = pair("kernel", kernel, lo=1)
    sh, sw = pair("stride", stride, lo=1)
    ph, pw = pair("padding", padding)
    if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
        raise DPPError(f"a {kh}x{kw} window does not fit the {x.shape[2]}x{x.shape[3]} input padded by ({ph}, {pw})")
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=fill)
    return np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]


def im2col(x: np.ndarray, kh: int, kw: int, stride: Any, padding: Any) -> tuple[np.ndarray, int, int]:
    """NCHW ints → ``(N*OH*OW, C*kh*kw)`` in PyTorch's weight column order, plus ``(OH, OW)``."""
    win = _windows(np.asarray(x), (kh, kw), stride, padding, 0)
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw), oh, ow


def conv_group_inputs(
    x: np.ndarray, kernel: Any, stride: Any, padding: Any, groups: int
) -> tuple[list[np.ndarray], int, int]:
    """Each group's im2col input matrix (input channels cut into ``groups`` equal slices), plus ``(OH, OW)``."""
    groups = check_int("groups", groups, lo=1)
    if x.ndim != 4 or x.shape[1] % groups:
        raise DPPError(f"conv input must be NCHW with channels divisible by groups={groups} (got shape {x.shape})")
    kh, kw = pair("kernel", kernel, lo=1)
    per = x.shape[1] // groups
    mats = []
    oh = ow = 0
    for g in range(groups):
        cols, oh, ow = im2col(x[:, g * per : (g + 1) * per], kh, kw, stride, padding)
        mats.append(cols)
    return mats, oh, ow


def conv_merge_groups(outputs: Sequence[np.ndarray], batch: int, oh: int, ow: int) -> np.ndarray:
    """Per-group output matrices ``(N*OH*OW, out/groups)`` → one NCHW array, groups in channel order."""
    y = np.concatenate([np.asarray(o) for o in outputs], axis=1)
    return y.reshape(batch, oh, ow, y.shape[1]).transpose(0, 3, 1, 2)


def conv2d_int(
    x: Any,
    W: Any,
    bias: Any,
    multiplier: Any,
    shift: Any,
    out_bits: int,
    relu: bool,
    *,
    kernel: Any,
    stride: Any = 1,
    padding: Any = 0,
    groups: int = 1,
    act_bits: int = 8,
) -> np.ndarray:
    """A quantised (grouped) convolution on NCHW ints, as in the module docstring.

    ``W``: one matrix per group (a sequence of ``groups`` KofNMatrix / CSRMatrix / dense matrices), or one
    matrix when ``groups == 1``; ``bias``: ``(out_channels,)``.
    """
    xa = _nchw("x", x, act_bits)
    mats_w = list(W) if isinstance(W, (list, tuple)) else [W]
    if len(mats_w) != check_int("groups", groups, lo=1):
        raise DPPError(f"W must hold one matrix per group ({groups}) (got {len(mats_w)})")
    b = check_int_array("bias", bias, ndim=1)
    per_out = b.shape[0] // groups
    if per_out * groups != b.shape[0]:
        raise DPPError(f"bias length {b.shape[0]} must be a multiple of groups={groups}")
    mats_x, oh, ow = conv_group_inputs(xa, kernel, stride, padding, groups)
    ys = [
        linear_int(cols, w, b[g * per_out : (g + 1) * per_out], multiplier, shift, out_bits, relu, act_bits=act_bits)
        for g, (cols, w) in enumerate(zip(mats_x, mats_w, strict=True))
    ]
    return conv_merge_groups(ys, xa.shape[0], oh, ow)


def maxpool_int(x: Any, kernel: Any, stride: Any = None, padding: Any = 0, *, act_bits: int = 8) -> np.ndarray:
    """Max of each ``kernel`` window of NCHW ints (``stride`` defaults to ``kernel``), as in the module docstring."""
    xa = _nchw("x", x, act_bits)
    kh, kw = pair("kernel", kernel, lo=1)
    ph, pw = pair("padding", padding)
    if 2 * ph > kh or 2 * pw > kw:
        raise DPPError(f"max-pool padding ({ph}, {pw}) must be at most half the {kh}x{kw} kernel")
    win = _windows(xa, (kh, kw), kernel if stride is None else stride, (ph, pw), np.iinfo(np.int64).min)
    return win.max(axis=(4, 5))


def avgpool_int(
    x: Any, kernel: Any, stride: Any, padding: Any, multiplier: int, shift: int, out_bits: int, *, act_bits: int = 8
) -> np.ndarray:
    """Exact sum of each zero-padded ``kernel`` window, requantised (see the module docstring)."""
    xa = _nchw("x", x, act_bits)
    sums = _windows(xa, kernel, stride, padding, 0).sum(axis=(4, 5))
    return requantize(sums, check_int("multiplier", multiplier), check_int("shift", shift), out_bits, False)


def global_avgpool_int(
    x: Any, multiplier: int, shift: int, out_bits: int, *, keepdim: bool = False, act_bits: int = 8
) -> np.ndarray:
    """Exact sum over H x W of NCHW ints, requantised: ``(N, C)``, or ``(N, C, 1, 1)`` with ``keepdim``."""
    xa = _nchw("x", x, act_bits)
    sums = xa.sum(axis=(2, 3), keepdims=bool(keepdim))
    return requantize(sums, check_int("multiplier", multiplier), check_int("shift", shift), out_bits, False)


def add_int(
    a: Any, b: Any, multipliers: Sequence[int], shift: int, out_bits: int, relu: bool = False, *, act_bits: int = 8
) -> np.ndarray:
    """``(a * m_a + b * m_b + (1 << (shift - 1))) >> shift``, optional ReLU, saturate (same shapes)."""
    act_bits = check_int("act_bits", act_bits, lo=ACT_BITS_RANGE[0], hi=ACT_BITS_RANGE[1])
    aa = check_int_array("a", a, bits=act_bits)
    ba = check_int_array("b", b, bits=act_bits)
    if aa.shape != ba.shape:
        raise DPPError(f"add needs two tensors of one shape (got {aa.shape} and {ba.shape})")
    if len(multipliers) != 2:
        raise DPPError(f"add needs two multipliers (got {list(multipliers)!r})")
    ma = check_int("multipliers[0]", multipliers[0], lo=1, hi=MAX_MULTIPLIER)
    mb = check_int("multipliers[1]", multipliers[1], lo=1, hi=MAX_MULTIPLIER)
    return requantize(aa * ma + ba * mb, 1, shift, out_bits, bool(relu))


def concat_int(
    xs: Sequence[Any], multipliers: Sequence[int], shifts: Sequence[int], out_bits: int, *, act_bits: int = 8
) -> np.ndarray:
    """Each input requantised to the common scale (its own multiplier and shift), then joined on axis 1."""
    act_bits = check_int("act_bits", act_bits, lo=ACT_BITS_RANGE[0], hi=ACT_BITS_RANGE[1])
    if not xs or len(multipliers) != len(xs) or len(shifts) != len(xs):
        raise DPPError(
            f"concat needs one multiplier and one shift per input (got {len(xs)} inputs, "
            f"{len(multipliers)} multipliers, {len(shifts)} shifts)"
        )
    arrays = [check_int_array(f"xs[{i}]", x, bits=act_bits) for i, x in enumerate(xs)]
    first = arrays[0]
    for i, arr in enumerate(arrays):
        if arr.ndim < 2 or arr.shape[:1] + arr.shape[2:] != first.shape[:1] + first.shape[2:]:
            raise DPPError(
                f"concat inputs must agree in every axis but 1 (input 0 has shape {first.shape}, "
                f"input {i} has {arr.shape})"
            )
    parts = [
        requantize(
            arr,
            check_int(f"multipliers[{i}]", m, lo=1, hi=MAX_MULTIPLIER),
            check_int(f"shifts[{i}]", s, lo=1, hi=MAX_SHIFT),
            out_bits,
            False,
        )
        for i, (arr, m, s) in enumerate(zip(arrays, multipliers, shifts, strict=True))
    ]
    return np.concatenate(parts, axis=1)


def clamp_int(x: Any, lo: int, hi: int) -> np.ndarray:
    """``min(max(x, lo), hi)`` on integers (ReLU6, hardtanh and other hard clamps)."""
    lo = check_int("lo", lo)
    hi = check_int("hi", hi)
    if lo > hi:
        raise DPPError(f"clamp needs lo <= hi (got lo={lo}, hi={hi})")
    return np.clip(check_int_array("x", x), lo, hi)
