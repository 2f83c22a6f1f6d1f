"""Run a comparison study (``dpp compare --preset paper``): its training runs, resumably, then its tables.

The points come from :func:`dpp.compare.study_plan`; each is trained by :func:`dpp.compare.evaluate_run`
serially, on a local Dask cluster or on an existing scheduler, with the sweep engine's runners and store
(:mod:`analysis.sweep`: ``OUT/points/<id>.json``, one file per finished run, written atomically by the driver,
so workers need no shared disk). A rerun skips every finished run; Ctrl-C keeps them.

Folder ``OUT/``::

    compare_study.json   schema dpp.compare_study: the preset as run, the run ids, the skipped combinations
    points/<id>.json     one finished run: its point, test / validation accuracy, density, config, history
    compare_runs.csv     one row per finished run (no history)
    compare_summary.csv  mean ± std over seeds per (model, data, granularity, k/n, bits, method)
    commands.json        the commands that wrote here (analysis.commands_log)

Every finished run in ``points/`` counts, also those of an earlier, larger plan: shrinking a rerun never
hides results.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.sweep import ResultStore, _run_dask, _run_serial
from analysis.sweep_config import point_id
from dpp.compare import StudyPreset, evaluate_run, test_split_images
from dpp.errors import DPPError
from dpp.serialize import atomic_write_text

STUDY_FILE = "compare_study.json"
STUDY_SCHEMA = "dpp.compare_study"
RUN_KEYS = [
    "study",
    "model",
    "data",
    "method",
    "train_method",
    "recipe",
    "granularity",
    "k",
    "n",
    "density_label",
    "bits",
    "seed",
    "epochs",
    "validation_fraction",
]
GROUP_KEYS = ["model", "data", "granularity", "k", "n", "bits", "method"]


def is_study_folder(path: str | os.PathLike) -> bool:
    """True when ``path`` holds a comparison study (its :data:`STUDY_FILE`)."""
    return (Path(path) / STUDY_FILE).is_file()


def plan_ids(points: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """``(id, point)`` per run; the id is the point's stable hash (the sweep engine's :func:`point_id`)."""
    return [(point_id(p), p) for p in points]


@dataclass
class StudyOutcome:
    """What a study run did: the finished runs' table, how many were trained now / found done, and the files."""

    runs: pd.DataFrame
    computed: int
    reused: int
    runs_csv: Path
    summary_csv: Path


def run_study(
    points: list[dict[str, Any]],
    skipped: list[str],
    out: str | os.PathLike,
    preset: StudyPreset,
    *,
    serial: bool = False,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: bool = True,
    threads: int = 1,
) -> StudyOutcome:
    """Train every point not yet finished in ``out`` and write the study's tables (see the module docstring)."""
    out = Path(out).resolve()
    store = ResultStore(out)
    jobs = plan_ids(points)
    done = store.done()
    todo = [(pid, p, {"threads": threads}) for pid, p in jobs if pid not in done]
    record = dict(schema=STUDY_SCHEMA, preset=asdict(preset), runs=[pid for pid, _ in jobs], skipped=skipped)
    atomic_write_text(out / STUDY_FILE, json.dumps(record, indent=2) + "\n")
    if todo:
        if serial:
            _run_serial(todo, evaluate_run, store, progress)
        else:
            _run_dask(todo, evaluate_run, store, progress, scheduler, n_workers, processes)
    runs_csv, summary_csv = write_tables(out)
    return StudyOutcome(runs_table(load_rows(out)), len(todo), len(jobs) - len(todo), runs_csv, summary_csv)


def load_rows(out: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished run's record under ``out/points`` (with its id as ``run_id``), in id order."""
    store = ResultStore(out)
    rows = []
    for pid in sorted(store.done()):
        row = store.load(pid)
        if row.get("study") is not None:
            rows.append({"run_id": pid, **row})
    return rows


def runs_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: its point, ``bits_label`` (``float`` or the width), accuracies, density, seconds."""
    cols = ["run_id", *RUN_KEYS, "test_accuracy", "test_images", "val_accuracy", "density", "seconds"]
    df = pd.DataFrame([{k: r.get(k) for k in cols} for r in rows], columns=cols)
    df["bits_label"] = [bits_label(b) for b in df["bits"]]
    return df


def bits_label(bits: Any) -> str:
    """``float`` for full precision (None / NaN), else the width as text."""
    return "float" if bits is None or (isinstance(bits, float) and bits != bits) else str(int(bits))


def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean and (sample) std over seeds of the test and validation accuracy per configuration."""
    if runs.empty:
        return pd.DataFrame(
            columns=[
                *GROUP_KEYS,
                "bits_label",
                "density",
                "seeds",
                "test_mean",
                "test_std",
                "val_mean",
                "val_std",
                "test_images",
            ]
        )
    df = runs.assign(bits=runs["bits"].fillna(0).astype(int))  # 0 = float inside the grouping
    df["test_images"] = pd.to_numeric(df["test_images"], errors="coerce")  # None in older points
    g = df.groupby([*GROUP_KEYS, "bits_label"], sort=True, dropna=False)
    out = g.agg(
        density=("density", "mean"),
        seeds=("seed", "nunique"),
        test_mean=("test_accuracy", "mean"),
        test_std=("test_accuracy", "std"),
        val_mean=("val_accuracy", "mean"),
        val_std=("val_accuracy", "std"),
        test_images=("test_images", "max"),
    ).reset_index()
    out[["test_std", "val_std"]] = out[["test_std", "val_std"]].fillna(0.0)
    missing = out["test_images"].isna()  # points from before runs recorded it: count the data's test split
    if missing.any():
        sizes = {spec: test_split_images(spec) for spec in out.loc[missing, "data"].unique()}
        out.loc[missing, "test_images"] = out.loc[missing, "data"].map(sizes).astype(float)  # None -> NaN
    out["test_images"] = out["test_images"].astype("Int64")
    return out


def write_tables(out: str | os.PathLike) -> tuple[Path, Path]:
    """``compare_runs.csv`` and ``compare_summary.csv`` of every finished run under ``out``."""
    out = Path(out)
    runs = runs_table(load_rows(out))
    runs_csv, summary_csv = out / "compare_runs.csv", out / "compare_summary.csv"
    atomic_write_text(runs_csv, runs.to_csv(index=False))
    atomic_write_text(summary_csv, summary_table(runs).to_csv(index=False))
    return runs_csv, summary_csv


def read_study(out: str | os.PathLike) -> dict[str, Any]:
    """``compare_study.json`` of a study folder."""
    f = Path(out) / STUDY_FILE
    try:
        d = json.loads(f.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DPPError(f"{f} is not a readable study record ({exc})") from None
    if d.get("schema") != STUDY_SCHEMA:
        raise DPPError(f"{f} has schema {d.get('schema')!r}, expected {STUDY_SCHEMA!r}")
    return d
