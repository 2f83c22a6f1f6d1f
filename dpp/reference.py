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
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpp.checks import check_int, check_int_array, signed_range
from dpp.kofn import CSRMatrix, KofNMatrix
from dpp.errors import DPPError

MULTIPLIER_BITS = 16  #: the hardware holds ``multiplier`` as a 16-bit signed (positive) number
MAX_MULTIPLIER = (1 << (MULTIPLIER_BITS - 1)) - 1
MAX_SHIFT = 48
ACT_BITS_RANGE = (2, 16)
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


def fan_in_of(W: Any) -> int:
    """Number of products summed per output row of ``W`` (k-of-n: ``groups * k * block``)."""
    if isinstance(W, KofNMatrix):
        return W.fan_in
    if isinstance(W, CSRMatrix):
        return max(1, int(W.row_lengths().max(initial=0)))
    return int(np.asarray(W).shape[1])


def matmul_int(W: Any, x: np.ndarray) -> np.ndarray:
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
        np.add.at(out, (slice(None), rows_of), prod)
        return out
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
    W: Any,
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
