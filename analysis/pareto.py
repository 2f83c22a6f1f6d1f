"""Pareto front of a table: the rows no other row beats on every objective (and strictly on one)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

SENSES = ("min", "max")


def pareto_mask(values: np.ndarray, senses: list[str] | tuple[str, ...]) -> np.ndarray:
    """Boolean mask of non-dominated rows of ``values`` (rows = points, columns = objectives).

    Rows with a NaN in any objective are never on the front. Identical rows do not dominate each other.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2:
        raise ValueError(f"values must be a 2-D array of points x objectives (got shape {v.shape})")
    if len(senses) != v.shape[1]:
        raise ValueError(f"need one sense per objective (got {len(senses)} senses for {v.shape[1]} objectives)")
    for s in senses:
        if s not in SENSES:
            raise ValueError(f"sense must be 'min' or 'max' (got {s!r})")
    sign = np.array([1.0 if s == "min" else -1.0 for s in senses])
    v = v * sign  # now everything is minimised
    ok = ~np.isnan(v).any(axis=1)
    mask = np.zeros(len(v), dtype=bool)
    idx = np.nonzero(ok)[0]
    pts = v[idx]
    for j, i in enumerate(idx):
        le = (pts <= pts[j]).all(axis=1)
        lt = (pts < pts[j]).any(axis=1)
        mask[i] = not (le & lt).any()
    return mask


def pareto_front(df: pd.DataFrame, objectives: Mapping[str, str]) -> pd.DataFrame:
    """Rows of ``df`` on the Pareto front of ``objectives`` (``{column: 'min'|'max'}``), sorted by the first."""
    missing = [c for c in objectives if c not in df.columns]
    if missing:
        raise ValueError(f"objective column(s) {missing} not in the table (columns: {list(df.columns)})")
    if not objectives:
        raise ValueError("pareto_front needs at least one objective")
    mask = pareto_mask(df[list(objectives)].to_numpy(dtype=float), list(objectives.values()))
    first = next(iter(objectives))
    return df[mask].sort_values(first, ascending=objectives[first] == "min")
