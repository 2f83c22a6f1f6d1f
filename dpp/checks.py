"""Argument checks shared by every package, so a bad value always gets the same clear message."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpp.errors import ArgumentTypeError, DPPError


def check_int(name: str, value: Any, *, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``value`` as an ``int`` if it is an integer in ``[lo, hi]``; else raise a clear error."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ArgumentTypeError(f"{name} must be an integer (got {value!r} of type {type(value).__name__})")
    value = int(value)
    if lo is not None and value < lo:
        raise DPPError(f"{name} must be >= {lo} (got {name}={value})")
    if hi is not None and value > hi:
        raise DPPError(f"{name} must be <= {hi} (got {name}={value})")
    return value


def check_k_n(k: int, n: int) -> tuple[int, int]:
    """Check a k-of-n pair: ``n >= 2`` and ``1 <= k < n``."""
    n = check_int("n", n, lo=2)
    k = check_int("k", k, lo=1)
    if k >= n:
        raise DPPError(f"k must be < n (got k={k}, n={n})")
    return k, n


def signed_range(bits: int) -> tuple[int, int]:
    """The inclusive range ``(lo, hi)`` of a two's-complement integer of ``bits`` bits."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def check_int_array(name: str, array: Any, *, bits: int | None = None, ndim: int | None = None) -> np.ndarray:
    """Return ``array`` as int64 if it holds integers (optionally within signed ``bits``); else raise."""
    arr = np.asarray(array)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        raise ArgumentTypeError(f"{name} must be an integer array (got dtype {arr.dtype})")
    if ndim is not None and arr.ndim != ndim:
        raise DPPError(f"{name} must have {ndim} dimension(s) (got shape {arr.shape})")
    arr = arr.astype(np.int64)
    if bits is not None and arr.size:
        lo, hi = signed_range(bits)
        bad = np.argwhere((arr < lo) | (arr > hi))
        if bad.size:
            pos = tuple(int(i) for i in bad[0])
            raise DPPError(f"{name} value {int(arr[pos])} at {pos} is outside signed {bits}-bit range [{lo}, {hi}]")
    return arr


def index_bits(n: int) -> int:
    """Bits needed to address one of ``n`` positions: ``ceil(log2 n)``, at least 1."""
    return max(1, math.ceil(math.log2(n)))
