"""The two input tables of :func:`sim.model.predict_counters_many`, read, checked and de-duplicated.

Design table (a DataFrame, a dict of equal-length arrays, or a list of :class:`~rtl.params.ArrayParams`): one
row per configuration, columns = :data:`DESIGN_COLUMNS` (the ``ArrayParams`` fields; ``arch, k, n, pes,
weight_bits, act_bits, out_bits`` required, the others default as in ``ArrayParams``). Equal rows are found
with whole-column operations (:func:`group_rows`, no per-row Python), and each distinct design becomes ONE
``ArrayParams``, so its checks and derived widths come from one source of truth (:mod:`rtl.params`,
:mod:`rtl.layout`).

Layer table (a DataFrame or a dict): :data:`LAYER_COLUMNS`. ``rows, cols, batch`` are integers; ``row_nnz``
(csr rows) holds each row's stored-entries-per-row array and ``csr`` (needed with ``act_banks > 0``) its
``CSRMatrix`` or ``(row_ptr, col_indices)``; ``None`` where not needed. Rows holding the SAME object share
one layer: its row statistics and bank conflicts are computed once for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from rtl.params import ARCHS, ArrayParams

DESIGN_COLUMNS = tuple(f.name for f in fields(ArrayParams))
DESIGN_REQUIRED = ("arch", "k", "n", "pes", "weight_bits", "act_bits", "out_bits")
DESIGN_DEFAULTS = {f.name: f.default for f in fields(ArrayParams) if f.name not in DESIGN_REQUIRED}
LAYER_COLUMNS = ("rows", "cols", "batch", "row_nnz", "csr")
LAYER_REQUIRED = ("rows", "cols", "batch")


def _columns(table: Any, what: str) -> dict[str, Any]:
    """A DataFrame or a dict of columns as a plain dict (name -> column)."""
    if isinstance(table, pd.DataFrame):
        return {str(c): table[c] for c in table.columns}  # Series: strings stay Arrow / categorical
    if isinstance(table, dict):
        return dict(table)
    raise TypeError(f"{what} must be a pandas DataFrame or a dict of columns (got {type(table).__name__})")


def _check_names(cols: dict[str, Any], allowed: Sequence[str], required: Sequence[str], what: str) -> None:
    unknown = sorted(set(cols) - set(allowed))
    if unknown:
        raise ValueError(f"{what} has unknown column(s) {unknown}; expected a subset of {list(allowed)}")
    missing = [c for c in required if c not in cols]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}")


def _length(cols: dict[str, Any], what: str) -> int:
    lengths = {name: len(c) for name, c in cols.items()}
    if len(set(lengths.values())) != 1:
        raise ValueError(f"{what} columns must have equal lengths (got {lengths})")
    n = next(iter(lengths.values()))
    if n == 0:
        raise ValueError(f"{what} is empty (expected at least one row)")
    return n


def int_column(values: Any, name: str, what: str) -> np.ndarray:
    """An integer column as int64; a float, bool or object column is refused."""
    a = np.asarray(values)
    if a.ndim != 1 or a.dtype == bool or a.dtype.kind not in "iu":
        raise TypeError(f"{what} column {name} must hold integers (got dtype {a.dtype}, shape {a.shape})")
    if a.dtype.kind == "u" and a.size and int(a.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"{what} column {name} holds values beyond int64")
    return a.astype(np.int64, copy=False)


def group_rows(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(code per row in ``[0, G)``, one representative row index per code) of equal rows of int64 columns.

    Columns of small range are combined by mixed radix without hashing (a wide one, such as object ids, is
    factorised first by ``pandas.factorize``); the combined key is then made dense through a table of its
    range, or by hashing when that range is much larger than the table.
    """
    n = len(columns[0])
    code, size = np.zeros(n, dtype=np.int64), 1
    for col in columns:
        lo, hi = int(col.min()), int(col.max())
        if lo == hi:
            continue
        span = hi - lo + 1
        if span > max(1 << 20, 4 * n):
            local, uniques = pd.factorize(col, sort=False)
            col, lo, span = local.astype(np.int64), 0, len(uniques)
        if size * span > 1 << 62:
            code, uniques = pd.factorize(code, sort=False)
            code, size = code.astype(np.int64), len(uniques)
        code = code * span + (col - lo)
        size *= span
    if size <= 4 * n + 1024:  # dense renumbering through a table of the key's range: no hashing
        seen = np.zeros(size, dtype=bool)
        seen[code] = True
        code = (np.cumsum(seen) - 1)[code]
        groups = int(seen.sum())
    else:
        code, uniques = pd.factorize(code, sort=False)
        code, groups = code.astype(np.int64), len(uniques)
    rep = np.empty(groups, dtype=np.int64)
    rep[code] = np.arange(n, dtype=np.int64)  # any row of each group will do: all its rows are equal
    return code, rep


def arch_codes(values: Any, what: str) -> np.ndarray:
    """Index into :data:`rtl.params.ARCHS` of every row (an unknown name is refused)."""
    if not isinstance(values, (pd.Series, pd.Index, pd.Categorical, np.ndarray)):
        values = np.asarray(values, dtype=object)
    local, uniques = pd.factorize(values, sort=False)
    if (local < 0).any():
        raise ValueError(f"{what} column arch is missing in row {int(np.argmax(local < 0))}")
    bad = [u for u in uniques if u not in ARCHS]
    if bad:
        raise ValueError(f"{what} column arch must be one of {', '.join(ARCHS)} (got {bad[0]!r})")
    return np.array([ARCHS.index(u) for u in uniques], dtype=np.int64)[local]


@dataclass(frozen=True)
class DesignTable:
    """Distinct designs of a design table and, per row, which of them it is."""

    codes: np.ndarray  #: design index of each row, shape (rows,)
    designs: list[ArrayParams]


def design_table(table: Any) -> DesignTable:
    """Read a design table (see the module docstring); every distinct row becomes one checked ArrayParams."""
    what = "params_table"
    if isinstance(table, (list, tuple)):
        if not table:
            raise ValueError(f"{what} is empty (expected at least one row)")
        codes, rep = group_rows([np.fromiter(map(id, table), dtype=np.int64, count=len(table))])
        designs = [table[int(i)] for i in rep]
        for i, p in zip(rep, designs):
            if not isinstance(p, ArrayParams):
                raise TypeError(f"{what} row {int(i)} must be an ArrayParams (got {type(p).__name__})")
        return DesignTable(codes, designs)
    cols = _columns(table, what)
    _check_names(cols, DESIGN_COLUMNS, DESIGN_REQUIRED, what)
    n = _length(cols, what)
    arrays = {"arch": arch_codes(cols["arch"], what)}
    for name in DESIGN_COLUMNS[1:]:
        arrays[name] = (
            int_column(cols[name], name, what) if name in cols else np.full(n, DESIGN_DEFAULTS[name], dtype=np.int64)
        )
    codes, rep = group_rows(list(arrays.values()))
    designs = []
    for i in rep:
        values: dict[str, Any] = {name: int(a[i]) for name, a in arrays.items()}  # ArrayParams' fields
        values["arch"] = ARCHS[values["arch"]]
        try:
            designs.append(ArrayParams(**values))
        except ValueError as exc:
            raise type(exc)(f"{what} row {int(i)}: {exc}") from None
    return DesignTable(codes, designs)


def _is_missing(v: Any) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


@dataclass(frozen=True)
class ObjectColumn:
    """An object column (``row_nnz`` or ``csr``): per row the index of its distinct object (-1 = missing)."""

    index: np.ndarray
    objects: list[Any]


def object_column(values: Any, n: int) -> ObjectColumn:
    """Group an object column by identity: rows holding the same object get the same index."""
    values = values.to_numpy(dtype=object) if isinstance(values, pd.Series) else values
    codes, rep = group_rows([np.fromiter(map(id, values), dtype=np.int64, count=n)])
    objects = [values[int(i)] for i in rep]
    missing = np.array([_is_missing(v) for v in objects], dtype=bool)
    if not missing.any():
        return ObjectColumn(codes, objects)
    renumber = np.cumsum(~missing) - 1
    renumber[missing] = -1
    return ObjectColumn(renumber[codes], [v for v, m in zip(objects, missing) if not m])


@dataclass(frozen=True)
class LayerTable:
    """A checked layer table: integer columns and the two object columns grouped by identity."""

    rows: np.ndarray
    cols: np.ndarray
    batch: np.ndarray
    row_nnz: ObjectColumn
    csr: ObjectColumn

    def __len__(self) -> int:
        return len(self.rows)

    def repeat(self, n: int) -> LayerTable:
        """A one-row table broadcast to ``n`` rows."""

        def rep(c: ObjectColumn) -> ObjectColumn:
            return ObjectColumn(np.repeat(c.index, n), c.objects)

        return LayerTable(
            np.repeat(self.rows, n), np.repeat(self.cols, n), np.repeat(self.batch, n), rep(self.row_nnz), rep(self.csr)
        )


def layer_table(table: Any) -> LayerTable:
    """Read a layer table (see the module docstring)."""
    what = "layers_table"
    cols = _columns(table, what)
    _check_names(cols, LAYER_COLUMNS, LAYER_REQUIRED, what)
    n = _length(cols, what)
    none = ObjectColumn(np.full(n, -1, dtype=np.int64), [])
    rows, n_cols, batch = (int_column(cols[c], c, what) for c in LAYER_REQUIRED)
    return LayerTable(
        rows,
        n_cols,
        batch,
        object_column(cols["row_nnz"], n) if "row_nnz" in cols else none,
        object_column(cols["csr"], n) if "csr" in cols else none,
    )
