"""Layers for the array tests: seeded random layers and named edge cases, for any :class:`ArrayParams`."""

from __future__ import annotations

import math

import numpy as np

from dpp.checks import signed_range
from dpp.kofn import CSRMatrix, KofNMatrix
from rtl.params import ArrayParams
from sim.run import Layer


def _weights(params: ArrayParams, w: np.ndarray, mask: np.ndarray | None = None):
    """``w`` in the format of ``params.arch``; ``mask`` picks the CSR entries (default: a random density)."""
    if params.arch == "kofn":
        return KofNMatrix.prune_magnitude(w, params.k, params.n, block=params.block, weight_bits=params.weight_bits)
    if params.arch == "dense":
        return w
    if mask is None:
        mask = w != 0
    return CSRMatrix.from_dense(w, mask, params.weight_bits)


def _bias_range(params: ArrayParams) -> tuple[int, int]:
    return signed_range(params.acc_bits - 1)


def _shift_for(params: ArrayParams, cols: int, multiplier: int, rng: np.random.Generator) -> int:
    """A shift that puts typical outputs near the output range, jittered to hit saturation and small values."""
    typical = math.sqrt(cols) * (1 << (params.weight_bits - 2)) * (1 << (params.act_bits - 2)) * multiplier
    base = math.log2(max(typical, 1.0)) - (params.out_bits - 1)
    return int(np.clip(round(base) + int(rng.integers(-3, 4)), 1, 48))


def random_layer(params: ArrayParams, rng: np.random.Generator) -> Layer:
    """A random layer of random shape within the build's limits, random widths of values and sparsity."""
    rows = int(rng.integers(1, params.max_rows + 1))
    cols = int(rng.integers(1, params.max_cols + 1))
    batch = int(rng.integers(1, params.max_batch + 1))
    wlo, whi = signed_range(params.weight_bits)
    alo, ahi = signed_range(params.act_bits)
    style = rng.integers(0, 3)
    if style == 0:  # full range
        w = rng.integers(wlo, whi + 1, size=(rows, cols))
    elif style == 1:  # small values, many zeros
        w = rng.integers(-2, 3, size=(rows, cols))
    else:  # per-row scales, as in trained layers
        w = np.clip(np.rint(rng.normal(size=(rows, cols)) * np.exp(rng.normal(size=(rows, 1))) * whi / 4), wlo, whi)
    w = w.astype(np.int64)
    mask = rng.random((rows, cols)) < rng.random((rows, 1))  # CSR: a random density per row
    x = rng.integers(alo, ahi + 1, size=(batch, cols))
    blo, bhi = _bias_range(params)
    bias = rng.integers(max(blo, -(1 << 20)), min(bhi, 1 << 20) + 1, size=rows)
    multiplier = int(rng.integers(1, 1 << 15))
    shift = _shift_for(params, cols, multiplier, rng)
    return Layer(_weights(params, w, mask), x, bias, multiplier, shift, bool(rng.integers(0, 2)))


def edge_layers(params: ArrayParams, rng: np.random.Generator) -> dict[str, Layer]:
    """Named edge cases: saturation both ways, negative accumulators, all-zero kept values, extremes, shapes."""
    R, C, B = params.max_rows, params.max_cols, params.max_batch
    wlo, whi = signed_range(params.weight_bits)
    alo, ahi = signed_range(params.act_bits)
    blo, bhi = _bias_range(params)
    odd_rows = R - 1 if R > 1 and (R - 1) % params.pes else R
    odd_cols = C - 1 if C > 1 else C
    full = np.full((R, C), wlo, dtype=np.int64)
    cases = {
        # most negative weight times most negative activation everywhere: largest positive accumulator
        "max_positive_acc_saturates": Layer(
            _weights(params, full), np.full((B, C), alo), np.full(R, bhi), (1 << 15) - 1, 1, False
        ),
        # most negative accumulator, no ReLU: saturates low
        "max_negative_acc_saturates": Layer(
            _weights(params, full), np.full((B, C), ahi), np.full(R, blo), (1 << 15) - 1, 1, False
        ),
        # negative accumulators through ReLU: all zero
        "negative_acc_relu": Layer(
            _weights(params, np.abs(full) - 1), np.full((B, C), alo), np.full(R, -5), 3, 2, True
        ),
        # kept values all zero: outputs are the requantised bias
        "all_zero_values": Layer(
            _weights(params, np.zeros((R, C), np.int64), np.ones((R, C), bool)),
            rng.integers(alo, ahi + 1, size=(B, C)),
            rng.integers(blo // 2, bhi // 2, size=R),
            12345,
            17,
            False,
        ),
        # largest shift and multiplier: rounding of tiny values
        "shift_48": Layer(
            _weights(params, rng.integers(wlo, whi + 1, size=(R, C))),
            rng.integers(alo, ahi + 1, size=(B, C)),
            rng.integers(blo, bhi + 1, size=R),
            (1 << 15) - 1,
            48,
            False,
        ),
        # shapes that do not divide by pes, n*block or k
        "uneven_shape": Layer(
            _weights(params, rng.integers(wlo, whi + 1, size=(odd_rows, odd_cols))),
            rng.integers(alo, ahi + 1, size=(B, odd_cols)),
            rng.integers(-999, 999, size=odd_rows),
            777,
            _shift_for(params, odd_cols, 777, rng),
            False,
        ),
        "one_by_one": Layer(_weights(params, np.array([[whi]])), np.array([[alo]]), np.array([3]), 1, 1, False),
    }
    if params.arch == "csr":  # empty rows and one full row: the worst imbalance
        w = rng.integers(wlo, whi + 1, size=(R, C))
        mask = np.zeros((R, C), bool)
        mask[0] = True
        mask[R // 2, : C // 2] = True
        cases["csr_empty_and_full_rows"] = Layer(
            _weights(params, w, mask),
            rng.integers(alo, ahi + 1, size=(B, C)),
            rng.integers(-99, 99, size=R),
            4000,
            _shift_for(params, C, 4000, rng),
            True,
        )
    if params.act_banks:  # banked activations: every row on the same columns (all reads merge), and every
        # kept column in bank 0 of vector 0 (every read of a slot conflicts)
        w = rng.integers(wlo, whi + 1, size=(R, C))
        same = np.zeros((R, C), bool)
        same[:, rng.choice(C, size=max(1, C // 3), replace=False)] = True
        one_bank = np.zeros((R, C), bool)
        one_bank[:, :: params.act_banks] = True
        for name, mask in (("banked_all_rows_same_columns", same), ("banked_one_bank_only", one_bank)):
            cases[name] = Layer(
                _weights(params, w, mask),
                rng.integers(alo, ahi + 1, size=(B, C)),
                rng.integers(-99, 99, size=R),
                5000,
                _shift_for(params, C, 5000, rng),
                False,
            )
    return cases
