"""Analytic model of the arrays' seven performance counters: closed forms, equal to the RTL exactly.

The formulas follow the schedules documented in :mod:`rtl.lockstep` and :mod:`rtl.csr`; every width and
the pipeline drain come from :mod:`rtl.layout`, so the model and the hardware share one source of truth.
With ``tiles = ceil(rows / pes)``:

* kofn: ``groups = ceil(cols / (n*block))``; ``steps = batch*tiles*groups*block``;
  ``cycles = steps + DRAIN``; ``mac_ops = batch*rows*groups*k*block`` (every kept slot, padded ones
  included); ``weight_bits_read = batch*rows*groups * k*block*weight_bits``;
  ``index_bits_read = batch*rows*groups * k*ceil(log2 n)``; ``act_bits_read = steps * n*act_bits``.
* dense: ``chunks = ceil(cols / k)``; ``steps = batch*tiles*chunks``; ``cycles = steps + DRAIN``;
  ``mac_ops = batch*rows*cols``; ``weight_bits_read = batch*rows*chunks * k*weight_bits``;
  ``index_bits_read = 0``; ``act_bits_read = steps * k*act_bits``.
* csr: ``words_r = ceil(nnz_r / k)``; PE ``p`` (rows ``r % pes == p``) takes ``S_p = sum max(1, words_r)``
  cycles per vector; ``cycles = batch * max_p S_p + DRAIN``; ``mac_ops = batch*nnz``;
  ``weight_bits_read = batch*sum(words_r) * k*weight_bits``; ``index_bits_read = batch*(sum(words_r) *
  k*ceil(log2 max_cols) + rows*rowptr_bits)``; ``act_bits_read = mac_ops * act_bits``.
* all: ``lane_idle_cycles = pes*k*cycles - mac_ops``; ``out_bits_written = batch*rows*out_bits``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from dpp.checks import check_int
from rtl.layout import COUNTERS, DRAIN_CYCLES, Layout
from rtl.params import ArrayParams


@lru_cache(maxsize=256)
def _constants(params: ArrayParams) -> tuple[int, int, int, int, int]:
    """(weight value bits / word, index bits / word, act bits / step, rowptr bits, drain) of a build."""
    lay = Layout(params)
    act_step = lay.act_word_bits if params.arch != "csr" else params.act_bits
    return lay.weight_value_bits, lay.weight_index_bits, act_step, lay.rowptr_bits, DRAIN_CYCLES[params.arch]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def predict_counters(params: ArrayParams, rows: int, cols: int, batch: int,
                     row_nnz: Any = None) -> dict[str, int]:
    """The seven counters of one run of a ``(rows, cols)`` layer over ``batch`` vectors on ``params``.

    ``row_nnz`` (csr only, ignored otherwise): stored entries per row, shape ``(rows,)``.
    """
    if not isinstance(params, ArrayParams):
        raise TypeError(f"params must be an ArrayParams (got {type(params).__name__})")
    rows = check_int("rows", rows, lo=1, hi=params.max_rows)
    cols = check_int("cols", cols, lo=1, hi=params.max_cols)
    batch = check_int("batch", batch, lo=1, hi=params.max_batch)
    value_bits, index_bits, act_step, rowptr_bits, drain = _constants(params)
    k, pes = params.k, params.pes
    tiles = _ceil_div(rows, pes)
    if params.arch == "kofn":
        groups = _ceil_div(cols, params.n * params.block)
        steps = batch * tiles * groups * params.block
        words = batch * rows * groups
        macs = words * k * params.block
        weight, index = words * value_bits, words * index_bits
    elif params.arch == "dense":
        chunks = _ceil_div(cols, k)
        steps = batch * tiles * chunks
        macs = batch * rows * cols
        weight, index = batch * rows * chunks * value_bits, 0
    else:
        if row_nnz is None:
            raise ValueError("arch 'csr' needs row_nnz (stored entries per row, shape (rows,))")
        nnz = np.asarray(row_nnz)
        if nnz.dtype.kind not in "iu":
            raise TypeError(f"row_nnz must be an integer array (got dtype {nnz.dtype})")
        if nnz.shape != (rows,):
            raise ValueError(f"row_nnz must have shape ({rows},) (got {nnz.shape})")
        lo, hi = int(nnz.min()), int(nnz.max())
        if lo < 0 or hi > cols:
            raise ValueError(f"row_nnz must lie in [0, {cols}] (got {lo} .. {hi})")
        words_r = (nnz.astype(np.int64) + (k - 1)) // k
        per_row = np.zeros(tiles * pes, dtype=np.int64)  # row t*pes + p -> [t, p]
        per_row[:rows] = np.maximum(words_r, 1)
        per_pe = per_row.reshape(tiles, pes).sum(axis=0)
        steps = batch * int(per_pe.max())
        words = int(words_r.sum())
        macs = batch * int(nnz.sum())
        weight = batch * words * value_bits
        index = batch * (words * index_bits + rows * rowptr_bits)
    cycles = steps + drain
    act = (macs if params.arch == "csr" else steps) * act_step
    values = (cycles, macs, pes * k * cycles - macs, weight, index, act, batch * rows * params.out_bits)
    return dict(zip(COUNTERS, (int(v) for v in values)))
