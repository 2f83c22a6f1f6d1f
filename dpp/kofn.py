"""The packed k-of-n weight format: the contract between training, hardware and simulation.

A weight matrix of shape ``(rows, cols)`` is cut along its reduction dimension (cols) into ``groups`` of
``n * block`` columns, zero-padded at the end up to a whole number of groups. Slot ``i`` (0 <= i < n) of
group ``g`` covers columns ``g*n*block + i*block ... + block - 1``: with ``block = 1`` one slot is one weight
(weight granularity); with ``block = kh*kw`` one slot is a whole convolution kernel (kernel granularity).

Every (row, group) keeps **exactly k** slots: ``indices[row, group]`` holds k strictly increasing slot numbers
in ``[0, n)`` and ``values[row, group]`` their ``k * block`` signed ``weight_bits``-bit integers (a kept slot
may hold 0). That fixed fan-in is what the hardware relies on: no row pointers, ``ceil(log2 n)`` bits per index.

Padding rule for a last, partial group: :meth:`KofNMatrix.from_dense` with a mask of width ``cols`` requires
``min(k, r)`` selected slots among the group's ``r`` real slots and fills the rest with the lowest padded slots
(zeros); a mask of the padded width must select exactly k everywhere. Values in padded columns are always 0.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpp.checks import check_int, check_int_array, check_k_n, index_bits
from dpp.errors import ArgumentTypeError, DPPError, FormatError
from dpp.serialize import load_arrays, require_keys, save_arrays

KOFN_SCHEMA = "dpp.kofn"
CSR_SCHEMA = "dpp.csr"
SCHEMA_VERSION = 1
WEIGHT_BITS_RANGE = (2, 16)


@dataclass(frozen=True)
class StorageBits:
    """Bits a packed matrix occupies, split by kind, with the information bound for its index part."""

    value_bits: int
    index_bits: int
    pointer_bits: int
    kept_weights: int
    bound_index_bits: float

    @property
    def total_bits(self) -> int:
        return self.value_bits + self.index_bits + self.pointer_bits

    @property
    def bits_per_kept_weight(self) -> float:
        return self.total_bits / self.kept_weights if self.kept_weights else 0.0

    @property
    def bound_bits_per_kept_weight(self) -> float:
        """Values plus the information-theoretic minimum for the positions, per kept weight."""
        return (self.value_bits + self.bound_index_bits) / self.kept_weights if self.kept_weights else 0.0


def dense_storage_bits(rows: int, cols: int, weight_bits: int) -> StorageBits:
    """Storage of the plain dense matrix: every weight, no indices."""
    return StorageBits(rows * cols * weight_bits, 0, 0, rows * cols, 0.0)


def _check_weight_bits(weight_bits: int) -> int:
    return check_int("weight_bits", weight_bits, lo=WEIGHT_BITS_RANGE[0], hi=WEIGHT_BITS_RANGE[1])


def _check_matrix(weights: Any, weight_bits: int) -> np.ndarray:
    w = check_int_array("weights", weights, bits=weight_bits, ndim=2)
    if w.shape[0] < 1 or w.shape[1] < 1:
        raise DPPError(f"weights must have at least one row and one column (got shape {w.shape})")
    return w


class KofNMatrix:
    """A matrix with exactly k kept slots out of every n per (row, group); see the module docstring."""

    def __init__(
        self,
        indices: Any,
        values: Any,
        *,
        rows: int,
        cols: int,
        n: int,
        block: int = 1,
        weight_bits: int = 8,
    ) -> None:
        """Build from packed arrays, validating every invariant (used by :meth:`load` and the builders)."""
        self.rows = check_int("rows", rows, lo=1)
        self.cols = check_int("cols", cols, lo=1)
        self.block = check_int("block", block, lo=1)
        self.weight_bits = _check_weight_bits(weight_bits)
        n = check_int("n", n, lo=2)
        idx = np.asarray(indices)
        if idx.dtype == bool or not np.issubdtype(idx.dtype, np.integer):
            raise FormatError(f"indices must be integers (got dtype {idx.dtype})")
        if idx.ndim != 3:
            raise FormatError(f"indices must have shape (rows, groups, k) (got shape {idx.shape})")
        self.k, self.n = check_k_n(idx.shape[2], n)
        self.groups = math.ceil(self.cols / (self.n * self.block))
        want = (self.rows, self.groups, self.k)
        if idx.shape != want:
            raise FormatError(f"indices must have shape {want} (got {idx.shape})")
        idx = idx.astype(np.int64)
        bad = np.argwhere((idx < 0) | (idx >= self.n))
        if bad.size:
            r, g, j = (int(v) for v in bad[0])
            raise FormatError(f"index {int(idx[r, g, j])} at row {r}, group {g} is out of range [0, {self.n})")
        if self.k > 1:
            bad = np.argwhere(np.diff(idx, axis=2) <= 0)
            if bad.size:
                r, g, _ = (int(v) for v in bad[0])
                raise FormatError(
                    f"indices at row {r}, group {g} must be strictly increasing (got {idx[r, g].tolist()})"
                )
        vals = np.asarray(values)
        if vals.dtype == bool or not np.issubdtype(vals.dtype, np.integer):
            raise FormatError(f"values must be integers (got dtype {vals.dtype})")
        if vals.shape != want + (self.block,):
            raise FormatError(f"values must have shape {want + (self.block,)} (got {vals.shape})")
        try:
            vals = check_int_array("values", vals, bits=self.weight_bits)
        except ValueError as exc:
            raise FormatError(str(exc)) from None
        self.indices = idx
        self.values = vals
        self.indices.setflags(write=False)
        self.values.setflags(write=False)
        cols_of = self.value_columns()
        bad = np.argwhere((cols_of >= self.cols) & (self.values != 0))
        if bad.size:
            r, g, j, b = (int(v) for v in bad[0])
            raise FormatError(
                f"value {int(vals[r, g, j, b])} at row {r}, group {g} lies in padded column "
                f"{int(cols_of[r, g, j, b])} >= cols={self.cols}; padded columns must hold 0"
            )

    # ----------------------------------------------------------------------------------------- builders
    @classmethod
    def from_dense(
        cls,
        weights: Any,
        mask: Any,
        n: int,
        block: int = 1,
        weight_bits: int = 8,
        *,
        k: int | None = None,
    ) -> KofNMatrix:
        """Pack integer ``weights`` keeping the positions in boolean ``mask`` (exactly k per group).

        ``k`` is inferred from the first group when not given. Errors name the first offending row and group.
        """
        weight_bits = _check_weight_bits(weight_bits)
        w = _check_matrix(weights, weight_bits)
        n = check_int("n", n, lo=2)
        block = check_int("block", block, lo=1)
        rows, cols = w.shape
        groups = math.ceil(cols / (n * block))
        padded = groups * n * block
        m = np.asarray(mask)
        if m.dtype != bool:
            raise ArgumentTypeError(f"mask must be a boolean array (got dtype {m.dtype})")
        if m.shape not in ((rows, cols), (rows, padded)):
            raise DPPError(f"mask must have shape {(rows, cols)} or padded {(rows, padded)} (got {m.shape})")
        padded_given = m.shape[1] == padded
        m = np.pad(m, ((0, 0), (0, padded - m.shape[1])))
        real = np.arange(padded) < cols
        m4 = m.reshape(rows, groups, n, block)
        real4 = np.broadcast_to(real.reshape(groups, n, block), m4.shape)
        on = (m4 & real4).any(axis=3)
        off = (~m4 & real4).any(axis=3)
        mixed = np.argwhere(on & off)
        if mixed.size:
            r, g, i = (int(v) for v in mixed[0])
            raise DPPError(f"mask at row {r}, group {g} selects only part of block slot {i} (block={block})")
        slot: Any = m4.any(axis=3) if padded_given else on
        counts = slot.sum(axis=2)
        real_slots = real.reshape(groups, n, block)[:, :, 0].sum(axis=1)  # slots whose first column is real
        if k is None:  # inferred from row 0, group 0 (pass k when that group is a short partial one)
            k = int(counts[0, 0])
        k, n = check_k_n(k, n)
        need = np.full(groups, k) if padded_given else np.minimum(k, real_slots)
        bad = np.argwhere(counts != need[None, :])
        if bad.size:
            r, g = (int(v) for v in bad[0])
            raise DPPError(
                f"mask must select exactly {int(need[g])} of n={n} slots per group "
                f"(got {int(counts[r, g])} at row {r}, group {g})"
            )
        if not padded_given:  # fill partial groups with the lowest padded slots
            for gi in np.nonzero(need < k)[0]:
                fill = np.arange(real_slots[gi], real_slots[gi] + k - need[gi])
                slot[:, gi, fill] = True
        return cls._from_slot_mask(w, slot, k=k, n=n, block=block, weight_bits=weight_bits)

    @classmethod
    def prune_magnitude(cls, weights: Any, k: int, n: int, block: int = 1, weight_bits: int = 8) -> KofNMatrix:
        """Keep, per (row, group), the k slots of largest L1 magnitude (ties: lowest slot number)."""
        weight_bits = _check_weight_bits(weight_bits)
        w = _check_matrix(weights, weight_bits)
        k, n = check_k_n(k, n)
        block = check_int("block", block, lo=1)
        rows, cols = w.shape
        groups = math.ceil(cols / (n * block))
        wp = np.pad(w, ((0, 0), (0, groups * n * block - cols)))
        score = np.abs(wp).reshape(rows, groups, n, block).sum(axis=3)
        top = np.argsort(-score, axis=2, kind="stable")[:, :, :k]
        slot = np.zeros((rows, groups, n), dtype=bool)
        np.put_along_axis(slot, top, True, axis=2)
        return cls._from_slot_mask(w, slot, k=k, n=n, block=block, weight_bits=weight_bits)

    @classmethod
    def _from_slot_mask(
        cls, w: np.ndarray, slot: np.ndarray, *, k: int, n: int, block: int, weight_bits: int
    ) -> KofNMatrix:
        rows, cols = w.shape
        groups = slot.shape[1]
        wp = np.pad(w, ((0, 0), (0, groups * n * block - cols))).reshape(rows, groups, n, block)
        idx = np.sort(np.argsort(~slot, axis=2, kind="stable")[:, :, :k], axis=2)
        vals = np.take_along_axis(wp, idx[..., None], axis=2)
        return cls(idx, vals, rows=rows, cols=cols, n=n, block=block, weight_bits=weight_bits)

    # ----------------------------------------------------------------------------------------- views
    @property
    def padded_cols(self) -> int:
        return self.groups * self.n * self.block

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def fan_in(self) -> int:
        """Products summed per output row: ``groups * k * block`` (padded slots included)."""
        return self.groups * self.k * self.block

    @property
    def density(self) -> float:
        """Fraction of slots kept, ``k / n`` by construction."""
        return self.k / self.n

    @property
    def nnz(self) -> int:
        """Number of non-zero stored values."""
        return int(np.count_nonzero(self.values))

    def value_columns(self) -> np.ndarray:
        """Column of every stored value, shape ``(rows, groups, k, block)`` (may be >= cols if padded)."""
        g = np.arange(self.groups)[None, :, None, None]
        b = np.arange(self.block)[None, None, None, :]
        return (g * self.n + self.indices[..., None]) * self.block + b

    def mask(self) -> np.ndarray:
        """Boolean ``(rows, cols)`` mask of the kept positions (real columns only)."""
        m = np.zeros((self.rows, self.padded_cols), dtype=bool)
        np.put_along_axis(m, self.value_columns().reshape(self.rows, -1), True, axis=1)
        return m[:, : self.cols]

    def to_dense(self) -> np.ndarray:
        """The int64 ``(rows, cols)`` matrix this packs (zeros where pruned)."""
        d = np.zeros((self.rows, self.padded_cols), dtype=np.int64)
        np.put_along_axis(d, self.value_columns().reshape(self.rows, -1), self.values.reshape(self.rows, -1), axis=1)
        return d[:, : self.cols]

    def storage_bits(self) -> StorageBits:
        """Values + ceil(log2 n)-bit indices, and the bound log2 C(n, k) bits per (row, group)."""
        slots = self.rows * self.groups * self.k
        return StorageBits(
            value_bits=slots * self.block * self.weight_bits,
            index_bits=slots * index_bits(self.n),
            pointer_bits=0,
            kept_weights=slots * self.block,
            bound_index_bits=self.rows * self.groups * math.log2(math.comb(self.n, self.k)),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KofNMatrix):
            return NotImplemented
        return (
            self.params() == other.params()
            and np.array_equal(self.indices, other.indices)
            and np.array_equal(self.values, other.values)
        )

    def __repr__(self) -> str:
        return (
            f"KofNMatrix(rows={self.rows}, cols={self.cols}, k={self.k}, n={self.n}, "
            f"block={self.block}, weight_bits={self.weight_bits})"
        )

    def params(self) -> dict[str, int]:
        """The shape parameters, as stored in the manifest."""
        return dict(
            rows=self.rows,
            cols=self.cols,
            k=self.k,
            n=self.n,
            block=self.block,
            weight_bits=self.weight_bits,
            groups=self.groups,
        )

    # ----------------------------------------------------------------------------------------- files
    def save(self, path: str | os.PathLike) -> Path:
        """Write ``PATH.npz`` and ``PATH.json`` atomically; returns the manifest path."""
        manifest = dict(
            schema=KOFN_SCHEMA, schema_version=SCHEMA_VERSION, **self.params(), index_bits=index_bits(self.n)
        )
        return save_arrays(path, {"indices": self.indices, "values": self.values}, manifest)

    @classmethod
    def load(cls, path: str | os.PathLike) -> KofNMatrix:
        """Read a matrix written by :meth:`save`, re-validating every invariant."""
        arrays, man = load_arrays(path, schema=KOFN_SCHEMA, schema_version=SCHEMA_VERSION)
        require_keys(man, ["rows", "cols", "k", "n", "block", "weight_bits"], str(path))
        require_keys(arrays, ["indices", "values"], str(path))
        try:
            mat = cls(
                arrays["indices"],
                arrays["values"],
                rows=man["rows"],
                cols=man["cols"],
                n=man["n"],
                block=man["block"],
                weight_bits=man["weight_bits"],
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: {exc}") from None
        if mat.k != man["k"]:
            raise FormatError(f"{path}: manifest says k={man['k']} but indices hold k={mat.k}")
        return mat


class CSRMatrix:
    """Unstructured baseline: compressed sparse rows (values, column indices, row pointers)."""

    def __init__(
        self, values: Any, col_indices: Any, row_ptr: Any, *, rows: int, cols: int, weight_bits: int = 8
    ) -> None:
        """Build from CSR arrays, validating shapes, pointer monotonicity and index/value ranges."""
        self.rows = check_int("rows", rows, lo=1)
        self.cols = check_int("cols", cols, lo=1)
        self.weight_bits = _check_weight_bits(weight_bits)
        try:
            vals = check_int_array("values", values, bits=self.weight_bits, ndim=1)
            ci = check_int_array("col_indices", col_indices, ndim=1)
            rp = check_int_array("row_ptr", row_ptr, ndim=1)
        except (TypeError, ValueError) as exc:
            raise FormatError(str(exc)) from None
        if rp.shape != (self.rows + 1,):
            raise FormatError(f"row_ptr must have shape ({self.rows + 1},) (got {rp.shape})")
        if rp[0] != 0 or np.any(np.diff(rp) < 0) or rp[-1] != vals.size:
            raise FormatError(f"row_ptr must rise from 0 to nnz={vals.size} (got {rp[0]} .. {rp[-1]})")
        if ci.shape != vals.shape:
            raise FormatError(f"col_indices must have shape {vals.shape} (got {ci.shape})")
        bad = np.argwhere((ci < 0) | (ci >= self.cols))
        if bad.size:
            raise FormatError(f"column index {int(ci[bad[0][0]])} is out of range [0, {self.cols})")
        for r in range(self.rows):
            seg = ci[rp[r] : rp[r + 1]]
            if seg.size > 1 and np.any(np.diff(seg) <= 0):
                raise FormatError(f"column indices of row {r} must be strictly increasing")
        self.values, self.col_indices, self.row_ptr = vals, ci, rp
        for a in (self.values, self.col_indices, self.row_ptr):
            a.setflags(write=False)

    @classmethod
    def from_dense(cls, weights: Any, mask: Any | None = None, weight_bits: int = 8) -> CSRMatrix:
        """Keep the positions in ``mask`` (default: the non-zeros) of integer ``weights``."""
        weight_bits = _check_weight_bits(weight_bits)
        w = _check_matrix(weights, weight_bits)
        if mask is None:
            m = w != 0
        else:
            m = np.asarray(mask)
            if m.dtype != bool:
                raise ArgumentTypeError(f"mask must be a boolean array (got dtype {m.dtype})")
            if m.shape != w.shape:
                raise DPPError(f"mask must have shape {w.shape} (got {m.shape})")
        rr, cc = np.nonzero(m)
        row_ptr = np.concatenate([[0], np.cumsum(m.sum(axis=1))])
        return cls(w[rr, cc], cc, row_ptr, rows=w.shape[0], cols=w.shape[1], weight_bits=weight_bits)

    @classmethod
    def prune_magnitude(cls, weights: Any, density: float, weight_bits: int = 8) -> CSRMatrix:
        """Keep the ``round(density * rows * cols)`` largest |w| over the whole matrix (ties: first)."""
        weight_bits = _check_weight_bits(weight_bits)
        w = _check_matrix(weights, weight_bits)
        if not 0.0 < float(density) <= 1.0:
            raise DPPError(f"density must be in (0, 1] (got {density})")
        keep = max(1, round(float(density) * w.size))
        order = np.argsort(-np.abs(w).ravel(), kind="stable")[:keep]
        m = np.zeros(w.size, dtype=bool)
        m[order] = True
        return cls.from_dense(w, m.reshape(w.shape), weight_bits)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def nnz(self) -> int:
        """Stored entries (kept positions, zeros included)."""
        return int(self.values.size)

    @property
    def density(self) -> float:
        return self.nnz / (self.rows * self.cols)

    def row_lengths(self) -> np.ndarray:
        """Stored entries per row: what sets the load imbalance of an unstructured array."""
        return np.diff(self.row_ptr)

    def to_dense(self) -> np.ndarray:
        d = np.zeros((self.rows, self.cols), dtype=np.int64)
        rr = np.repeat(np.arange(self.rows), self.row_lengths())
        d[rr, self.col_indices] = self.values
        return d

    def storage_bits(self) -> StorageBits:
        """Values + ceil(log2 cols)-bit column indices + (rows+1) ceil(log2(nnz+1))-bit row pointers."""
        nnz = self.nnz
        bound = math.log2(math.comb(self.rows * self.cols, nnz)) if nnz else 0.0
        return StorageBits(
            value_bits=nnz * self.weight_bits,
            index_bits=nnz * index_bits(self.cols),
            pointer_bits=(self.rows + 1) * index_bits(nnz + 1),
            kept_weights=nnz,
            bound_index_bits=bound,
        )

    def __repr__(self) -> str:
        return f"CSRMatrix(rows={self.rows}, cols={self.cols}, nnz={self.nnz}, weight_bits={self.weight_bits})"

    def save(self, path: str | os.PathLike) -> Path:
        manifest = dict(
            schema=CSR_SCHEMA,
            schema_version=SCHEMA_VERSION,
            rows=self.rows,
            cols=self.cols,
            nnz=self.nnz,
            weight_bits=self.weight_bits,
        )
        return save_arrays(
            path, {"values": self.values, "col_indices": self.col_indices, "row_ptr": self.row_ptr}, manifest
        )

    @classmethod
    def load(cls, path: str | os.PathLike) -> CSRMatrix:
        arrays, man = load_arrays(path, schema=CSR_SCHEMA, schema_version=SCHEMA_VERSION)
        require_keys(man, ["rows", "cols", "weight_bits"], str(path))
        require_keys(arrays, ["values", "col_indices", "row_ptr"], str(path))
        try:
            return cls(
                arrays["values"],
                arrays["col_indices"],
                arrays["row_ptr"],
                rows=man["rows"],
                cols=man["cols"],
                weight_bits=man["weight_bits"],
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: {exc}") from None


#: A weight matrix in any format the reference model and the arrays take: packed k-of-n, CSR, or dense ints.
WeightMatrix = KofNMatrix | CSRMatrix | np.ndarray
