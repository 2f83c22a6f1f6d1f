"""Analytic model of the arrays' seven performance counters: closed forms, equal to the RTL exactly.

The formulas follow the schedules documented in :mod:`rtl.lockstep` and :mod:`rtl.csr`; every width and
the pipeline drain come from :mod:`rtl.layout`, so the model and the hardware share one source of truth.
The closed forms (cycles and the six traffic counters, per array) are written once, in ``rtl/README.md``,
section "Schedules and cycle/traffic formulas"; this module implements them. The banked CSR's slot cycles
``C_s`` need no Python loop over slots or cycles: every request becomes a ``(slot, bank, word)`` key; one sort
drops the merged ones and lines up each slot's banks, whose run lengths give ``C_s`` (:func:`banked_slots`).

Each array's closed forms are its registry entry's :meth:`rtl.archs.ArrayArch.counts` (steps, MACs, weight
and index traffic, activation reads); this module checks the inputs, computes the layer statistics an entry
asks for (:class:`rtl.archs.LayerStats`: CSR row statistics, banked slot cycles) and adds what all arrays
share. :func:`predict_counters` evaluates one (design, layer) pair; :func:`predict_counters_many` evaluates tables of
them with the same closed forms on NumPy columns (exactly equal, pair by pair). Configurations that share a
layer share its work: the csr row statistics once per (layer, k, pes), the banked slot table once per
(layer, k, pes, batch, cols) for all bank counts at once.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from dpp.checks import check_int
from rtl.archs import ARRAYS
from rtl.archs import ceil_div as _ceil_div
from rtl.layout import COUNTERS, Layout, drain_cycles
from rtl.params import ArrayParams
from sim.model_tables import LayerTable, design_table, group_rows, layer_table

#: The design constants :meth:`rtl.archs.ArrayArch.counts` reads (``d[name]``), plus what all arrays share.
DESIGN_CONSTANTS = (
    "k",
    "n",
    "block",
    "pes",
    "value_bits",
    "index_bits",
    "act_step",
    "rowptr_bits",
    "drain",
    "out_bits",
)


@lru_cache(maxsize=256)
def _constants(params: ArrayParams) -> dict[str, int]:
    """:data:`DESIGN_CONSTANTS` of a build: its fields and widths per weight word, activation word (what one
    activation read costs), row-pointer entry, and its drain."""
    lay = Layout(params)
    return {
        "k": params.k,
        "n": params.n,
        "block": params.block,
        "pes": params.pes,
        "value_bits": lay.weight_value_bits,
        "index_bits": lay.weight_index_bits,
        "act_step": lay.act_word_bits,
        "rowptr_bits": lay.rowptr_bits,
        "drain": drain_cycles(params),
        "out_bits": params.out_bits,
    }


def _all_counters(
    steps: Any,
    macs: Any,
    weight: Any,
    index: Any,
    act_units: Any,
    act_step: Any,
    drain: Any,
    lanes: Any,
    batch: Any,
    rows: Any,
    out_bits: Any,
) -> tuple[Any, ...]:
    """The seven counters in :data:`rtl.layout.COUNTERS` order (``act_units``: activation words read)."""
    cycles = steps + drain
    return cycles, macs, lanes * cycles - macs, weight, index, act_units * act_step, batch * rows * out_bits


def csr_row_stats(
    nnz: np.ndarray, offsets: np.ndarray, lengths: np.ndarray, layer: np.ndarray, k: np.ndarray, pes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per group ``(layer, k, pes)``: (span, words, nnz) of a CSR layer on ``pes`` PEs of ``k`` lanes.

    ``nnz`` holds every layer's entries per row back to back (layer ``l`` at ``offsets[l]``, ``lengths[l]``
    rows). ``span = max_p sum over rows r % pes == p of max(1, ceil(nnz_r / k))`` (the busiest PE's stream
    items per vector), ``words = sum_r ceil(nnz_r / k)``; all groups in one pass of bincount / reduceat.
    """
    if layer.size == 1:  # one group (predict_counters): rows r = t*pes + p as a (tiles, pes) grid
        pes_, start = int(pes[0]), int(offsets[layer[0]])
        row_nnz = nnz[start : start + int(lengths[layer[0]])]
        words = (row_nnz + (int(k[0]) - 1)) // int(k[0])
        items = np.zeros(_ceil_div(row_nnz.size, pes_) * pes_, dtype=np.int64)
        items[: row_nnz.size] = np.maximum(words, 1)
        span = items.reshape(-1, pes_).sum(axis=0).max()
        return np.array([span]), np.array([words.sum()]), np.array([row_nnz.sum()])
    n_rows = lengths[layer]
    first = np.cumsum(n_rows) - n_rows
    local = np.arange(int(n_rows.sum()), dtype=np.int64) - np.repeat(first, n_rows)
    row_nnz = nnz[np.repeat(offsets[layer] - first, n_rows) + np.arange(local.size)]
    words = _ceil_div(row_nnz, np.repeat(k, n_rows))
    pe_first = np.cumsum(pes) - pes
    pe = np.repeat(pe_first, n_rows) + local % np.repeat(pes, n_rows)
    # float64 weights are exact here: a PE's items are at most max_rows * max_cols <= 2**40
    per_pe = np.bincount(pe, weights=np.maximum(words, 1), minlength=int(pes.sum()))
    span = np.maximum.reduceat(per_pe, pe_first).astype(np.int64)
    return span, np.add.reduceat(words, first), np.add.reduceat(row_nnz, first)


def predict_counters(
    params: ArrayParams, rows: int, cols: int, batch: int, row_nnz: Any = None, *, csr: Any = None
) -> dict[str, int]:
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
    d = _constants(params)
    arch = params.array_arch
    layer = _OneLayer(params, rows, cols, batch, row_nnz, csr) if arch.model_needs else None
    steps, macs, weight, index, units = arch.counts(d, batch, rows, cols, layer)
    values = _all_counters(
        steps, macs, weight, index, units, d["act_step"], d["drain"], d["pes"] * d["k"], batch, rows, d["out_bits"]
    )
    return dict(zip(COUNTERS, (int(v) for v in values)))


class _OneLayer:
    """The layer statistics (:class:`rtl.archs.LayerStats`) of one layer, its ``row_nnz`` / ``csr`` checked
    as the array's :attr:`~rtl.archs.ArrayArch.model_needs` asks."""

    def __init__(self, params: ArrayParams, rows: int, cols: int, batch: int, row_nnz: Any, csr: Any) -> None:
        structure = None if csr is None else csr_structure(csr, rows, cols)
        if structure is not None:
            given, row_nnz = row_nnz, np.diff(structure[0])
            if given is not None and not np.array_equal(np.asarray(given), row_nnz):
                raise ValueError("row_nnz disagrees with the row lengths of csr")
        if params.array_arch.model_needs == "columns" and structure is None:
            raise ValueError(
                f"act_banks={params.act_banks} needs csr= (the CSRMatrix or (row_ptr, col_indices)): "
                f"bank conflicts depend on the column indices, not only on row_nnz"
            )
        if row_nnz is None:
            raise ValueError(f"arch {params.arch!r} needs row_nnz (stored entries per row, shape (rows,))")
        nnz = np.asarray(row_nnz)
        if nnz.dtype.kind not in "iu":
            raise TypeError(f"row_nnz must be an integer array (got dtype {nnz.dtype})")
        if nnz.shape != (rows,):
            raise ValueError(f"row_nnz must have shape ({rows},) (got {nnz.shape})")
        lo, hi = int(nnz.min()), int(nnz.max())
        if lo < 0 or hi > cols:
            raise ValueError(f"row_nnz must lie in [0, {cols}] (got {lo} .. {hi})")
        self.params, self.rows, self.cols, self.batch = params, rows, cols, batch
        self.nnz, self.structure = nnz.astype(np.int64, copy=False), structure

    def row_stats(self) -> tuple[int, int, int]:
        zero = np.zeros(1, dtype=np.int64)
        stats = csr_row_stats(
            self.nnz, zero, np.array([self.rows]), zero, np.array([self.params.k]), np.array([self.params.pes])
        )
        return tuple(int(a[0]) for a in stats)  # type: ignore[return-value]

    def bank_slots(self) -> tuple[int, int]:
        assert self.structure is not None  # __init__ refused a "columns" model without it
        slot_cycles, slot_reads = banked_slots(
            self.params, self.structure[0], self.structure[1], self.rows, self.cols, self.batch
        )
        return int(slot_cycles.sum()), int(slot_reads.sum())


def csr_pair(csr: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(row_ptr, col_indices)`` as int64 from a CSRMatrix or a pair, checked on their own (dtype, rise)."""
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
    if indptr.size < 2 or indptr[0] != 0 or indptr[-1] != indices.size or np.any(np.diff(indptr) < 0):
        raise ValueError(
            f"csr row_ptr must rise from 0 to nnz={indices.size} over rows + 1 entries (got shape {indptr.shape})"
        )
    if indices.size and indices.min() < 0:
        raise ValueError(f"csr column indices must be >= 0 (got {int(indices.min())})")
    return indptr, indices


def csr_structure(csr: Any, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """``(row_ptr, col_indices)`` as int64 from a CSRMatrix or a pair, checked against ``(rows, cols)``."""
    indptr, indices = csr_pair(csr)
    if indptr.shape != (rows + 1,):
        raise ValueError(
            f"csr row_ptr must rise from 0 to nnz={indices.size} over {rows + 1} entries (got shape {indptr.shape})"
        )
    if indices.size and indices.max() >= cols:
        raise ValueError(
            f"csr column indices must lie in [0, {cols}) (got {int(indices.min())} .. {int(indices.max())})"
        )
    return indptr, indices


# ------------------------------------------------------------------ banked CSR: requests per lock-step slot
_INT32_KEYS = 1 << 31  #: below this many (slot, place) keys they sort as int32 (twice as fast)
_INT64_KEYS = 1 << 62  #: from this many on, (slot, place) pairs are lexsorted instead of keyed


class BankRequests:
    """Every activation request of a banked CSR run: its lock-step ``slot`` and address ``addr`` (one per
    stored entry and vector, merged requests still apart), over ``slots`` slots and ``addresses`` addresses.
    Independent of the bank count: one table serves every B."""

    def __init__(self, slot: np.ndarray, addr: np.ndarray, slots: int, addresses: int) -> None:
        self.slot, self.addr, self.slots, self.addresses = slot, addr, slots, addresses

    def per_slot(self, layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """(cycles ``C_s``, bank reads) per slot with ``layout.act_banks`` banks.

        Each address becomes its bank-major place ``bank * words + word`` (:meth:`Layout.act_bank`,
        :meth:`Layout.act_bank_word`); ONE sort of the ``(slot, place)`` keys then drops merged requests
        (equal neighbours) and lines up each slot's banks, so a bank's distinct addresses are one run and
        ``C_s`` is the longest run of the slot (``np.maximum.reduceat``).
        """
        banks = layout.act_banks
        words = _ceil_div(self.addresses, banks)  # words per bank: place = bank * words + word is one-to-one
        cycles, reads = np.ones(self.slots, dtype=np.int64), np.zeros(self.slots, dtype=np.int64)
        if not self.slot.size:
            return cycles, reads
        span = banks * words
        small = self.slots * span < _INT32_KEYS  # then every value below fits int32, which sorts faster
        addr = self.addr.astype(np.int32) if small else self.addr
        place = layout.act_bank(addr) * words + layout.act_bank_word(addr)
        if self.slots * span >= _INT64_KEYS:  # keys would overflow: sort the pairs instead
            order = np.lexsort((place, self.slot))
            slot, place = self.slot[order], place[order]
            keep = np.r_[True, (slot[1:] != slot[:-1]) | (place[1:] != place[:-1])]
            slot, bank = slot[keep], place[keep] // words
            new_run = np.r_[True, (slot[1:] != slot[:-1]) | (bank[1:] != bank[:-1])]
        else:
            key = self.slot.astype(np.int32) * np.int32(span) + place if small else self.slot * span + place
            key.sort()
            key = key[np.r_[True, key[1:] != key[:-1]]]
            group = key // words  # slot * banks + bank
            slot = group // banks
            new_run = np.r_[True, group[1:] != group[:-1]]
        run = np.flatnonzero(new_run)
        run_slot = slot[run]
        first = np.flatnonzero(np.r_[True, run_slot[1:] != run_slot[:-1]])
        cycles[run_slot[first]] = np.maximum.reduceat(np.diff(np.r_[run, slot.size]), first)
        reads += np.bincount(slot, minlength=self.slots)
        return cycles, reads


def bank_requests(
    indptr: np.ndarray, indices: np.ndarray, rows: int, cols: int, batch: int, k: int, pes: int
) -> BankRequests:
    """Every ``(slot, address)`` request of a CSR layer on the banked array (see the module docstring).

    PE ``p`` streams rows ``j*pes + p``, ``max(1, ceil(nnz/k))`` words each, vector after vector; stored entry
    ``i`` of row ``r`` is requested in slot ``start_r + i // k`` (plus ``v * per_pe[p]`` for vector ``v``) at
    address ``v*cols + column``. Computed per weight word and repeated over its entries: no loop.
    """
    nnz = np.diff(indptr)
    tiles = _ceil_div(rows, pes)
    words = _ceil_div(nnz, k)
    items = np.zeros(tiles * pes, dtype=np.int64)
    items[:rows] = np.maximum(words, 1)
    grid = items.reshape(tiles, pes)
    start = (np.cumsum(grid, axis=0) - grid).reshape(-1)[:rows]  # first item of row r in its PE's stream
    per_pe = grid.sum(axis=0)
    slots, addresses = batch * int(per_pe.max()), batch * cols
    # per weight word (k times fewer than entries): its row, its slot in vector 0 and its entries
    word_row = np.repeat(np.arange(rows, dtype=np.int64), words)
    word_first = np.cumsum(words) - words
    word = np.arange(word_row.size, dtype=np.int64) - word_first[word_row]  # word of its row
    size = np.minimum(nnz[word_row] - word * k, k)
    slot = np.repeat(start[word_row] + word, size)
    addr = indices
    if batch > 1:
        vector = np.arange(batch, dtype=np.int64)[:, None]
        slot = (slot + vector * np.repeat(per_pe[word_row % pes], size)).reshape(-1)
        addr = (vector * cols + indices).reshape(-1)
    return BankRequests(slot, addr, slots, addresses)


def banked_slots(
    params: ArrayParams, indptr: np.ndarray, indices: np.ndarray, rows: int, cols: int, batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per lock-step slot of the banked CSR array: (cycles ``C_s``, bank reads = distinct addresses).

    One sort of ``(slot, bank, word)`` keys drops merged requests and counts each bank's distinct addresses
    per slot (:meth:`BankRequests.per_slot`): all NumPy, no loop over slots or cycles.
    """
    requests = bank_requests(indptr, indices, rows, cols, batch, params.k, params.pes)
    return requests.per_slot(Layout(params))


# ------------------------------------------------------------------ many configurations at once
def _int64_safe(p: ArrayParams) -> bool:
    """True if no counter of any layer that fits ``p`` can reach 2**63 (int64 arithmetic is then exact).

    Every counter is at most ``batch * tiles*pes * (cols + 64)`` (the largest steps / words / entries
    count) times the per-unit bits summed below; ``pes*k*cycles`` adds ``lanes**2`` (a banked slot takes
    at most ``lanes`` cycles).
    """
    lanes = p.pes * p.k
    volume = p.max_batch * p.max_tiles * p.pes * (p.max_cols + 64)
    rowptr_bits = Layout(p).rowptr_bits if "rowptr" in p.array_arch.pe_memories else 0
    per_unit = lanes * lanes + p.k * p.block * p.weight_bits + 64 * p.k + rowptr_bits + 64 * p.act_bits + p.out_bits
    return volume * per_unit + 64 < 1 << 63


def _design_columns(designs: list[ArrayParams]) -> dict[str, np.ndarray]:
    """Per distinct design: its entry (index into :data:`rtl.archs.ARRAYS`), the constants the closed forms use
    (:data:`DESIGN_CONSTANTS`) and the sizes the checks use, as int64 arrays."""
    rows = []
    for p in designs:
        d = _constants(p)
        rows.append(
            (
                ARRAYS.index(p.array_arch),
                *(d[name] for name in DESIGN_CONSTANTS),
                p.max_rows,
                p.max_cols,
                p.max_batch,
                p.act_banks,
                _int64_safe(p),
            )
        )
    names = ("array", *DESIGN_CONSTANTS, "max_rows", "max_cols", "max_batch", "act_banks", "safe")
    return dict(zip(names, np.array(rows, dtype=np.int64).T))


def _first_bad(bad: np.ndarray) -> int | None:
    return int(np.argmax(bad)) if bad.any() else None


def _check_range(name: str, values: np.ndarray, hi: np.ndarray) -> None:
    """``1 <= values <= hi`` row by row, else one error naming the first bad row (as :func:`check_int`)."""
    i = _first_bad(values < 1)
    if i is not None:
        raise ValueError(f"layers_table row {i}: {name} must be >= 1 (got {name}={int(values[i])})")
    i = _first_bad(values > hi)
    if i is not None:
        raise ValueError(f"layers_table row {i}: {name} must be <= {int(hi[i])} (got {name}={int(values[i])})")


class _CsrLayers:
    """The distinct CSR layers of a layer table (one per ``csr`` object, else per ``row_nnz`` object), checked
    on their own once; ``of_row`` maps each table row to its layer (-1: none given)."""

    def __init__(self, layers: LayerTable, wanted: np.ndarray, arch_name: Callable[[int], str]) -> None:
        self.arch_name = arch_name  #: ``ArrayParams.arch`` of a table row, for errors
        csr_i, csr_objects = self._used(layers.csr.index, layers.csr.objects, wanted)
        nnz_i, nnz_objects = self._used(layers.row_nnz.index, layers.row_nnz.objects, wanted)
        n_csr = len(csr_objects)
        self.of_row = np.where(csr_i >= 0, csr_i, np.where(nnz_i >= 0, n_csr + nnz_i, -1))
        self.structures, counts = [], []
        for j, obj in enumerate(csr_objects):
            try:
                self.structures.append(csr_pair(obj))
            except (TypeError, ValueError) as exc:  # name the first row holding the object
                raise type(exc)(f"layers_table row {int(np.argmax(csr_i == j))}: {exc}") from None
            counts.append(np.diff(self.structures[-1][0]))
        for j, obj in enumerate(nnz_objects):
            a = np.asarray(obj)
            if a.dtype.kind not in "iu" or a.ndim != 1:
                raise TypeError(
                    f"layers_table row {int(np.argmax(nnz_i == j))}: row_nnz must be a 1-d integer "
                    f"array (got dtype {a.dtype}, shape {a.shape})"
                )
            counts.append(a.astype(np.int64))
        self.lengths = np.array([c.size for c in counts], dtype=np.int64)
        self.offsets = np.cumsum(self.lengths) - self.lengths
        self.nnz = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
        self.nnz_min = np.array([c.min() if c.size else 0 for c in counts], dtype=np.int64)
        self.nnz_max = np.array([c.max() if c.size else 0 for c in counts], dtype=np.int64)
        top = [int(ind.max()) if ind.size else -1 for _, ind in self.structures]
        self.max_col = np.array(top + [-1] * len(nnz_objects), dtype=np.int64)
        self._check(layers, wanted, csr_i, nnz_i)

    def row_nnz(self, layer: int) -> np.ndarray:
        return self.nnz[self.offsets[layer] : self.offsets[layer] + self.lengths[layer]]

    @staticmethod
    def _used(index: np.ndarray, objects: list[Any], wanted: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Only the objects the ``wanted`` rows hold (predict_counters ignores row_nnz / csr on arrays whose
        model needs no more than the layer's shape)."""
        index = np.where(wanted, index, -1)
        used = np.flatnonzero(np.bincount(index + 1, minlength=len(objects) + 1)[1:])
        renumber = np.full(len(objects) + 1, -1, dtype=np.int64)  # index -1 stays -1
        renumber[used] = np.arange(used.size)
        return renumber[index], [objects[int(j)] for j in used]

    def _check(self, layers: LayerTable, wanted: np.ndarray, csr_i: np.ndarray, nnz_i: np.ndarray) -> None:
        """``wanted`` rows: a layer is given, fits (rows, cols), and row_nnz agrees with csr when both are."""
        i = _first_bad(wanted & (self.of_row < 0))
        if i is not None:
            raise ValueError(
                f"layers_table row {i}: arch {self.arch_name(i)!r} needs row_nnz (stored entries per "
                f"row, shape (rows,)) or csr"
            )
        lid = np.where(wanted, self.of_row, 0)
        rows, cols = layers.rows, layers.cols
        i = _first_bad(wanted & (self.lengths[lid] != rows))
        if i is not None:
            raise ValueError(
                f"layers_table row {i}: row_nnz / csr must cover rows={int(rows[i])} rows "
                f"(got {int(self.lengths[lid[i]])})"
            )
        i = _first_bad(wanted & ((self.nnz_min[lid] < 0) | (self.nnz_max[lid] > cols)))
        if i is not None:
            raise ValueError(
                f"layers_table row {i}: row_nnz must lie in [0, {int(cols[i])}] "
                f"(got {int(self.nnz_min[lid[i]])} .. {int(self.nnz_max[lid[i]])})"
            )
        i = _first_bad(wanted & (self.max_col[lid] >= cols))
        if i is not None:
            raise ValueError(
                f"layers_table row {i}: csr column indices must lie in [0, {int(cols[i])}) "
                f"(got up to {int(self.max_col[lid[i]])})"
            )
        both = wanted & (csr_i >= 0) & (nnz_i >= 0)
        if both.any():
            for c, r in np.unique(np.stack([csr_i[both], nnz_i[both]], axis=1), axis=0):
                if not np.array_equal(self.row_nnz(c), self.row_nnz(len(self.structures) + r)):
                    i = int(np.flatnonzero(both & (csr_i == c) & (nnz_i == r))[0])
                    raise ValueError(f"layers_table row {i}: row_nnz disagrees with the row lengths of csr")


class _Gather:
    """``d[name]``: the design column ``name`` for each selected row (each gathered once)."""

    def __init__(self, table: dict[str, np.ndarray], code: np.ndarray) -> None:
        self.table, self.code = table, code
        self.done: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.done:
            self.done[name] = self.table[name][self.code]
        return self.done[name]


def _group_starts(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows sorted by group code, and where each group's rows begin in that order."""
    order = np.argsort(codes, kind="stable")
    return order, np.flatnonzero(np.r_[True, codes[order][1:] != codes[order][:-1]])


class _TableLayers:
    """The layer statistics (:class:`rtl.archs.LayerStats`) of the table rows ``sel`` of one array, each
    computed once per group of rows that share it."""

    def __init__(
        self,
        sel: np.ndarray,
        layers: LayerTable,
        csr: _CsrLayers,
        d: _Gather,
        designs: list[ArrayParams],
        codes: np.ndarray,
    ) -> None:
        self.sel, self.layers, self.csr, self.d, self.designs, self.codes = sel, layers, csr, d, designs, codes

    def row_stats(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One :func:`csr_row_stats` pass per distinct (layer, k, pes)."""
        csr, lid, k, pes = self.csr, self.csr.of_row[self.sel], self.d["k"], self.d["pes"]
        group, rep = group_rows([lid, k, pes])
        stats = csr_row_stats(csr.nnz, csr.offsets, csr.lengths, lid[rep], k[rep], pes[rep])
        return stats[0][group], stats[1][group], stats[2][group]

    def bank_slots(self) -> tuple[np.ndarray, np.ndarray]:
        """One request table per (layer, k, pes, batch, cols), one sort per bank count."""
        sel, csr, layers = self.sel, self.csr, self.layers
        lid, k, pes, banks = csr.of_row[sel], self.d["k"], self.d["pes"], self.d["act_banks"]
        batch, rows, cols = layers.batch[sel], layers.rows[sel], layers.cols[sel]
        i = _first_bad(lid >= len(csr.structures))
        if i is not None:
            raise ValueError(
                f"layers_table row {int(sel[i])}: act_banks={int(banks[i])} needs csr (the CSRMatrix "
                f"or (row_ptr, col_indices)): bank conflicts depend on the column indices, not only "
                f"on row_nnz"
            )
        steps, reads = np.empty(len(sel), dtype=np.int64), np.empty(len(sel), dtype=np.int64)
        # cols only shifts vectors after the first
        table, _ = group_rows([lid, k, pes, batch, np.where(batch > 1, cols, 0)])
        order, starts = _group_starts(table)
        for members in np.split(order, starts[1:]):
            j = members[0]
            indptr, indices = csr.structures[lid[j]]
            requests = bank_requests(indptr, indices, int(rows[j]), int(cols[j]), int(batch[j]), int(k[j]), int(pes[j]))
            for b in np.unique(banks[members]):
                same = members[banks[members] == b]
                slot_cycles, slot_reads = requests.per_slot(Layout(self.designs[int(self.codes[sel[same[0]]])]))
                steps[same], reads[same] = int(slot_cycles.sum()), int(slot_reads.sum())
        return steps, reads


def predict_counters_many(params_table: Any, layers_table: Any) -> pd.DataFrame:
    """The seven counters of many (design, layer) pairs: row ``i`` of the result is exactly
    ``predict_counters(design i, rows[i], cols[i], batch[i], row_nnz[i], csr=csr[i])``.

    Args:
        params_table: designs, one per row: a DataFrame or dict of columns named as the
            :class:`~rtl.params.ArrayParams` fields (``arch, k, n, pes, weight_bits, act_bits, out_bits``
            required, the rest default as there), or a list of ``ArrayParams``.
        layers_table: a DataFrame or dict of columns ``rows, cols, batch`` (integers) and, for csr rows,
            ``row_nnz`` (stored entries per row) and/or ``csr`` (the ``CSRMatrix`` or ``(row_ptr, col_indices)``,
            required with ``act_banks > 0``); ``None`` where not needed. Rows holding the same object share
            its work. Either table may have one row (it then applies to every row of the other).

    Returns:
        A DataFrame with the columns :data:`rtl.layout.COUNTERS` (int64; Python ints in an object column for
        the rare design whose counters could pass 2**63), one row per pair, in order.

    Raises:
        ValueError / TypeError naming the first bad row, as :func:`predict_counters` would for that pair.

    Example:
        >>> from rtl.params import ArrayParams
        >>> p = ArrayParams(arch="kofn", k=2, n=8, pes=4, weight_bits=8, act_bits=8, out_bits=8)
        >>> predict_counters_many([p], {"rows": [10, 64], "cols": [50, 64], "batch": [1, 4]})["cycles"].tolist()
        [26, 517]
    """
    designs = design_table(params_table)
    layers = layer_table(layers_table)
    n = max(len(designs.codes), len(layers))
    if min(len(designs.codes), len(layers)) not in (1, n):
        raise ValueError(
            f"params_table and layers_table must have equal lengths or one row "
            f"(got {len(designs.codes)} and {len(layers)})"
        )
    codes = designs.codes if len(designs.codes) == n else np.zeros(n, dtype=np.int64)
    if len(layers) != n:
        layers = layers.repeat(n)
    table = _design_columns(designs.designs)
    for name in ("rows", "cols", "batch"):
        _check_range(name, getattr(layers, name), table[f"max_{name}"][codes])
    array = table["array"][codes]
    present = np.unique(table["array"])
    out = np.empty((len(COUNTERS), n), dtype=np.int64)
    needs = np.array([a.model_needs is not None for a in ARRAYS])
    csr = None
    if needs[present].any():
        csr = _CsrLayers(layers, needs[array], lambda i: designs.designs[int(codes[i])].arch)
    for a in present:
        sel = np.flatnonzero(array == a) if len(present) > 1 else slice(None)  # a slice copies nothing
        d = _Gather(table, codes[sel])
        batch, rows, cols = layers.batch[sel], layers.rows[sel], layers.cols[sel]
        stats = (
            None
            if csr is None or not needs[a]
            else _TableLayers(np.arange(n)[sel], layers, csr, d, designs.designs, codes)
        )
        steps, macs, weight, index, units = ARRAYS[a].counts(d, batch, rows, cols, stats)
        out[:, sel] = _all_counters(
            steps, macs, weight, index, units, d["act_step"], d["drain"], d["pes"] * d["k"], batch, rows, d["out_bits"]
        )
    result = pd.DataFrame(out.T, columns=list(COUNTERS), copy=False)  # out is already the frame's one block
    unsafe = np.flatnonzero(table["safe"][codes] == 0)
    if unsafe.size:  # exact Python ints where int64 could overflow
        result = result.astype(object)
        for i in unsafe:
            nnz = layers.row_nnz.index[i]
            c = layers.csr.index[i]
            result.iloc[i] = list(
                predict_counters(
                    designs.designs[codes[i]],
                    int(layers.rows[i]),
                    int(layers.cols[i]),
                    int(layers.batch[i]),
                    None if nnz < 0 else layers.row_nnz.objects[nnz],
                    csr=None if c < 0 else layers.csr.objects[c],
                ).values()
            )
    return result
