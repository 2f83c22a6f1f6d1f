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
* banked csr (``act_banks = B > 0``, :mod:`rtl.csr_banked`): the same streams, all PEs in lock-step, one word
  per PE per slot (``batch * max_p S_p`` slots); in slot ``s`` every busy lane requests address
  ``b*cols + column``; equal addresses merge; slot ``s`` takes ``C_s = max(1, max over banks of the distinct
  addresses in bank a % B)`` cycles. ``cycles = sum_s C_s + DRAIN_CYCLES_BANKED`` (7);
  ``act_bits_read = act_bits * sum_s (distinct addresses of slot s)`` (one read per distinct address: merged
  requests count once); every other counter as for csr. Needs the column indices (``csr=``); computed
  vectorised by :func:`banked_slots` (no per-slot or per-cycle Python loop).
* all: ``lane_idle_cycles = pes*k*cycles - mac_ops``; ``out_bits_written = batch*rows*out_bits``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from dpp.checks import check_int
from rtl.layout import COUNTERS, DRAIN_CYCLES, DRAIN_CYCLES_BANKED, Layout
from rtl.params import ArrayParams


@lru_cache(maxsize=256)
def _constants(params: ArrayParams) -> tuple[int, int, int, int, int]:
    """(weight value bits / word, index bits / word, act bits / step, rowptr bits, drain) of a build."""
    lay = Layout(params)
    act_step = lay.act_word_bits if params.arch != "csr" else params.act_bits
    drain = DRAIN_CYCLES_BANKED if params.act_banks else DRAIN_CYCLES[params.arch]
    return lay.weight_value_bits, lay.weight_index_bits, act_step, lay.rowptr_bits, drain


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def predict_counters(params: ArrayParams, rows: int, cols: int, batch: int,
                     row_nnz: Any = None, *, csr: Any = None) -> dict[str, int]:
    """The seven counters of one run of a ``(rows, cols)`` layer over ``batch`` vectors on ``params``.

    ``row_nnz`` (csr only, ignored otherwise): stored entries per row, shape ``(rows,)``.
    ``csr`` (csr only): the layer's :class:`~dpp.kofn.CSRMatrix` or its ``(row_ptr, col_indices)``; needed
    when ``params.act_banks > 0`` (bank conflicts depend on the columns); gives ``row_nnz`` when that is None.
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
        structure = None if csr is None else csr_structure(csr, rows, cols)
        if structure is not None:
            given, row_nnz = row_nnz, np.diff(structure[0])
            if given is not None and not np.array_equal(np.asarray(given), row_nnz):
                raise ValueError("row_nnz disagrees with the row lengths of csr")
        if params.act_banks and structure is None:
            raise ValueError(f"act_banks={params.act_banks} needs csr= (the CSRMatrix or (row_ptr, col_indices)): "
                             f"bank conflicts depend on the column indices, not only on row_nnz")
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
        reads = macs
        if params.act_banks:
            slot_cycles, slot_reads = banked_slots(params, structure[0], structure[1], rows, cols, batch)
            steps, reads = int(slot_cycles.sum()), int(slot_reads.sum())
    cycles = steps + drain
    act = (reads if params.arch == "csr" else steps) * act_step
    values = (cycles, macs, pes * k * cycles - macs, weight, index, act, batch * rows * params.out_bits)
    return dict(zip(COUNTERS, (int(v) for v in values)))


def csr_structure(csr: Any, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row_ptr, col_indices)`` as int64 from a CSRMatrix or a pair, checked against ``(rows, cols)``."""
    if hasattr(csr, "row_ptr") and hasattr(csr, "col_indices"):
        indptr, indices = csr.row_ptr, csr.col_indices
    else:
        try:
            indptr, indices = csr
        except (TypeError, ValueError):
            raise TypeError(f"csr must be a CSRMatrix or (row_ptr, col_indices) (got {type(csr).__name__})") from None
    indptr, indices = np.asarray(indptr), np.asarray(indices)
    for name, a in (("row_ptr", indptr), ("col_indices", indices)):
        if a.dtype.kind not in "iu" or a.ndim != 1:
            raise TypeError(f"csr {name} must be a 1-d integer array (got dtype {a.dtype}, shape {a.shape})")
    indptr, indices = indptr.astype(np.int64), indices.astype(np.int64)
    if indptr.shape != (rows + 1,) or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError(f"csr row_ptr must rise from 0 to nnz={indices.size} over {rows + 1} entries "
                         f"(got shape {indptr.shape})")
    if indices.size and (indices.min() < 0 or indices.max() >= cols):
        raise ValueError(f"csr column indices must lie in [0, {cols}) (got {int(indices.min())} .. "
                         f"{int(indices.max())})")
    return indptr, indices


def banked_slots(params: ArrayParams, indptr: np.ndarray, indices: np.ndarray, rows: int, cols: int,
                 batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per lock-step slot of the banked CSR array: (cycles ``C_s``, bank reads = distinct addresses).

    Builds the ``(slots, pes*k)`` table of requested addresses (vector-major streams, PE ``p`` holding rows
    ``j*pes + p``, ``max(1, ceil(nnz/k))`` words per row), sorts each slot by (bank, address), and counts the
    distinct addresses per (slot, bank) with running sums along the slot: all numpy, no loop over slots or
    cycles.
    """
    k, pes = params.k, params.pes
    lay = Layout(params)
    tiles = _ceil_div(rows, pes)
    nnz = np.diff(indptr)
    items = np.zeros(tiles * pes, dtype=np.int64)  # stream items (words, or 1 for an empty row) per row
    items[:rows] = np.maximum((nnz + (k - 1)) // k, 1)
    grid = items.reshape(tiles, pes)
    start = (np.cumsum(grid, axis=0) - grid).reshape(-1)[:rows]  # first item of row r in its PE's stream
    per_pe = grid.sum(axis=0)
    span = int(per_pe.max())  # items per vector of the busiest PE
    lanes = pes * k
    # every stored entry: its lane (pe*k + position % k) and its slot (its PE's item) in vector 0
    row = np.repeat(np.arange(rows, dtype=np.int32), nnz)
    pos = np.arange(indices.size, dtype=np.int32) - indptr[row].astype(np.int32)
    word = pos // k
    pe = row % pes
    cell0 = (start[row].astype(np.int32) + word) * lanes + pe * k + (pos - word * k)
    step = per_pe[pe].astype(np.int64) * lanes  # next vector: the PE's stream is per_pe[pe] items later
    cells = (cell0 + np.arange(batch)[:, None] * step).reshape(-1)
    addr = (np.arange(batch)[:, None] * cols + indices).reshape(-1)
    # each slot's requests sorted by (bank, address); an idle lane sorts last
    addr_bits = max(1, int(batch * cols).bit_length())
    idle = (1 << (addr_bits + lay.act_bank_bits + 1)) - 1
    key_type = np.int32 if addr_bits + lay.act_bank_bits + 2 < 31 else np.int64
    table = np.full(batch * span * lanes, idle, dtype=key_type)
    table[cells] = (lay.act_bank(addr) << addr_bits) | addr
    table = table.reshape(batch * span, lanes)
    table.sort(axis=1)
    distinct = table != idle  # a request whose address differs from the one before it: one bank read
    distinct[:, 1:] &= table[:, 1:] != table[:, :-1]
    slot_reads = distinct.sum(axis=1)
    bank = table >> addr_bits
    new_bank = np.ones(table.shape, dtype=bool)
    new_bank[:, 1:] = bank[:, 1:] != bank[:, :-1]
    seen = np.cumsum(distinct, axis=1, dtype=np.int32)  # distinct reads so far in the slot
    before = (seen - distinct) * new_bank  # ... when the current bank's group began (0 elsewhere)
    np.maximum.accumulate(before, axis=1, out=before)
    slot_cycles = np.maximum((seen - before).max(axis=1), 1).astype(np.int64)
    return slot_cycles, slot_reads
