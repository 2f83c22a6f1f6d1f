"""Read a RESULTS/ folder and derive the report's tables; every reader tolerates missing inputs.

RESULTS/ layout (any part may be missing; the report then says "no data" for what needs it)::

    RESULTS/
      sweep.parquet | sweep.csv   one row per sweep point (``dpp sweep``; parquet preferred)
      sweep_config.json           the resolved sweep config
      points/<id>.json            the sweep's resumable per-point store
      runs/<RUN>/result.json      one trained network (``dpp train``, schema ``dpp.run``): method, k, n,
                                  granularity, test_accuracy, density, ...
      runs/<RUN>/metrics.csv      per-epoch: epoch, test_accuracy, density, conf_layer<i>, div_layer<i>, ...
      runs/<RUN>/config.json      the run's full training config
      commands.json               [{kind, command, params, cwd, utc}] of every command that wrote here
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.commands_log import read_commands
from analysis.sweep import join_accuracy, read_run_result

SHAPE_KEYS = ["layer", "rows", "cols", "k", "n", "pes", "weight_bits", "act_bits", "out_bits", "batch"]
AREA_PREFERENCE = ("area_ice40_luts", "area_generic_cells", "area_generic_transistors")


@dataclass
class ResultsData:
    """Everything found under a RESULTS/ folder, plus the problems met while reading it."""

    root: Path
    sweep: pd.DataFrame | None = None
    sweep_file: Path | None = None
    runs: pd.DataFrame | None = None
    run_configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, pd.DataFrame] = field(default_factory=dict)
    commands: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    flow: dict[str, Any] | None = None

    def commands_of(self, kind: str) -> list[dict[str, Any]]:
        return [c for c in self.commands if c.get("kind") == kind]


def _read_sweep(root: Path, data: ResultsData) -> None:
    for name in ("sweep.parquet", "sweep.csv"):
        f = root / name
        if f.is_file():
            try:
                df = pd.read_parquet(f) if f.suffix == ".parquet" else pd.read_csv(f)
            except Exception as exc:  # noqa: BLE001 - a damaged file is reported, not fatal
                data.problems.append(f"{name} unreadable: {exc}")
                continue
            data.sweep, data.sweep_file = label_banked(df), f
            return


def label_banked(sweep: pd.DataFrame) -> pd.DataFrame:
    """CSR points with one banked activation memory (``act_banks`` = B > 0) get ``arch = "csr_bankedB"``: a
    design of their own in every table and plot, next to the replicated ``csr``."""
    if "act_banks" not in sweep.columns or "arch" not in sweep.columns:
        return sweep
    banks = pd.to_numeric(sweep["act_banks"], errors="coerce").fillna(0).astype(int)
    sel = (sweep["arch"] == "csr") & (banks > 0)
    if not sel.any():
        return sweep
    out = sweep.copy()
    out.loc[sel, "arch"] = "csr_banked" + banks[sel].astype(str)
    return out


def banked_archs(archs: Any) -> list[str]:
    """The banked CSR designs (:func:`label_banked`) among ``archs``, by bank count."""
    banked = {str(a) for a in archs if re.fullmatch(r"csr_banked\d+", str(a))}
    return sorted(banked, key=lambda a: int(a.removeprefix("csr_banked")))


def baseline_archs(archs: Any) -> list[str]:
    """The baselines k-of-n is compared with: dense, csr, then any banked CSR designs present."""
    return ["dense", "csr", *banked_archs(archs)]


def _read_runs(root: Path, data: ResultsData) -> None:
    recs = []
    for run in sorted(p for p in (root / "runs").glob("*") if p.is_dir()):
        if (run / "result.json").is_file():
            try:
                rec = read_run_result(run)
                rec["run"] = run.name
                recs.append(rec)
            except (ValueError, OSError) as exc:
                data.problems.append(f"runs/{run.name}/result.json: {exc}")
        if (run / "config.json").is_file():
            try:
                data.run_configs[run.name] = json.loads((run / "config.json").read_text("utf-8"))
            except ValueError as exc:
                data.problems.append(f"runs/{run.name}/config.json: {exc}")
        if (run / "metrics.csv").is_file():
            try:
                data.metrics[run.name] = pd.read_csv(run / "metrics.csv")
            except Exception as exc:  # noqa: BLE001
                data.problems.append(f"runs/{run.name}/metrics.csv: {exc}")
    if recs:
        data.runs = pd.DataFrame(recs)


def load_results(root: str | os.PathLike) -> ResultsData:
    """Read whatever of the layout (module docstring) exists under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"results folder {root} not found")
    data = ResultsData(root)
    _read_sweep(root, data)
    _read_runs(root, data)
    data.commands = read_commands(root)
    _read_flow(root, data)
    if data.sweep is not None and data.runs is not None and "accuracy" not in data.sweep.columns:
        acc = data.runs.assign(run=[str(r) for r in data.runs["run"]])
        data.sweep = join_accuracy(data.sweep, acc)
    return data


def _read_flow(root: Path, data: ResultsData) -> None:
    """``flow.json`` of ``dpp flow``: the whole network run in RTL on each architecture."""
    f = root / "flow.json"
    if not f.is_file():
        return
    try:
        flow = json.loads(f.read_text("utf-8"))
        if flow.get("schema") != "dpp.flow":
            raise ValueError(f"schema must be 'dpp.flow' (got {flow.get('schema')!r})")
        data.flow = flow
    except (OSError, ValueError) as exc:
        data.problems.append(f"flow.json unreadable: {exc}")


def flow_layers(flow: dict[str, Any] | None) -> pd.DataFrame | None:
    """One row per (architecture, layer) of the flow's RTL runs."""
    if not flow or not flow.get("layers"):
        return None
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "design"} for r in flow["layers"]])
    return df


def flow_summary(flow: dict[str, Any] | None) -> pd.DataFrame | None:
    """One row per architecture: whole-network cycles, energy, bit-exactness, class agreement, speed-ups."""
    if not flow or not flow.get("archs"):
        return None
    return pd.DataFrame([{"arch": a, **s} for a, s in flow["archs"].items()])


def _points(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per sweep point (the accuracy join may have duplicated points, one per trained run)."""
    return sweep.drop_duplicates("point_id") if "point_id" in sweep.columns else sweep


def has_columns(df: pd.DataFrame | None, cols: list[str]) -> bool:
    return df is not None and not df.empty and all(c in df.columns for c in cols) and \
        df[cols].notna().all(axis=1).any()


def accuracy_vs_sparsity(runs: pd.DataFrame | None) -> pd.DataFrame | None:
    """Trained runs: method, granularity, k, n, sparsity (1 - density), accuracy."""
    if runs is None or runs.empty:
        return None
    df = runs.copy()
    density = pd.to_numeric(df["trained_density"], errors="coerce")
    df["sparsity"] = 1.0 - density.fillna(df["k"] / df["n"])
    cols = ["run", "model", "method", "granularity", "k", "n", "sparsity", "accuracy"]
    return df[cols].sort_values(["method", "granularity", "sparsity"]).reset_index(drop=True)


def speedup_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """k-of-n cycles against dense and CSR on the same layer, k, n, PEs and bit widths."""
    if not has_columns(sweep, ["cycles"]):
        return None
    pts = _points(sweep).dropna(subset=["cycles"])
    keys = [k for k in SHAPE_KEYS if k in pts.columns]
    kofn = pts[pts.arch == "kofn"][keys + ["block", "cycles"]].rename(columns={"cycles": "cycles_kofn"})
    if kofn.empty:
        return None
    for arch in baseline_archs(pts["arch"].unique()):
        other = pts[pts.arch == arch][keys + ["cycles"]].rename(columns={"cycles": f"cycles_{arch}"})
        kofn = kofn.merge(other.drop_duplicates(keys), on=keys, how="left")
        kofn[f"speedup_vs_{arch}"] = kofn[f"cycles_{arch}"] / kofn["cycles_kofn"]
    return kofn.sort_values(keys + ["block"]).reset_index(drop=True)


def storage_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """Memory bits per kept weight against the information bound, per arch / layer / k / n / block."""
    need = ["bits_per_kept_weight", "bound_bits_per_kept_weight"]
    if not has_columns(sweep, need):
        return None
    pts = _points(sweep)
    keys = [k for k in ["arch", "layer", "k", "n", "block", "weight_bits"] if k in pts.columns]
    cols = keys + [c for c in ["density", "bits_per_kept_weight", "bound_bits_per_kept_weight",
                               "bits_per_dense_weight", "storage_total_bits"] if c in pts.columns]
    return pts[cols].drop_duplicates(keys).sort_values(keys).reset_index(drop=True)


def area_column(sweep: pd.DataFrame | None) -> str | None:
    """The area metric to use: ice40 LUTs, else generic cells, else transistors (first one present)."""
    for c in AREA_PREFERENCE:
        if has_columns(sweep, [c]):
            return c
    return None


def energy_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """Energy per inference, split by component (``<component>_pj`` per inference), and area, per point."""
    if not has_columns(sweep, ["energy_per_inference_pj"]):
        return None
    pts = _points(sweep).dropna(subset=["energy_per_inference_pj"]).copy()
    keys = [k for k in ["arch", "layer", "k", "n", "block", "pes", "weight_bits"] if k in pts.columns]
    per_inf = (pts["vectors"] if "vectors" in pts.columns else 1) / pts["batch"] if "batch" in pts.columns else 1
    comp = []
    for c in pts.columns:
        if c.startswith("energy_") and c.endswith("_pj") and c not in ("energy_total_pj", "energy_per_inference_pj"):
            name = c.removeprefix("energy_")
            pts[name] = pts[c] * per_inf  # the sweep stores components per layer run (batch vectors)
            comp.append(name)
    area = [c for c in pts.columns if c.startswith("area_")]
    cols = keys + ["cycles", "energy_per_inference_pj"] + comp + area
    return pts[[c for c in cols if c in pts.columns]].sort_values(keys).reset_index(drop=True)


def mask_curves(metrics: dict[str, pd.DataFrame]) -> pd.DataFrame | None:
    """Long table run, epoch, layer, confidence, diversity from the ``conf_layer<i>`` / ``div_layer<i>`` columns."""
    recs = []
    for run, df in metrics.items():
        if "epoch" not in df.columns:
            continue
        layers = sorted({int(m.group(1)) for c in df.columns if (m := re.fullmatch(r"(?:conf|div)_layer(\d+)", c))})
        for layer in layers:
            conf, div = df.get(f"conf_layer{layer}"), df.get(f"div_layer{layer}")
            for i, epoch in enumerate(df["epoch"]):
                recs.append({"run": run, "epoch": int(epoch), "layer": layer,
                             "confidence": float(conf.iloc[i]) if conf is not None else np.nan,
                             "diversity": float(div.iloc[i]) if div is not None else np.nan})
    return pd.DataFrame(recs) if recs else None


DESIGN_KEYS = ["arch", "k", "n", "pes", "weight_bits", "act_bits", "out_bits", "batch"]


def network_table(sweep: pd.DataFrame | None, layers: list[str] | None = None) -> pd.DataFrame | None:
    """Whole-network designs: per-inference energy and cycles summed over every swept layer.

    A design is (arch, k, n, PEs, bit widths) plus a granularity: ``weight`` takes each layer's block-1 point,
    ``kernel`` (k-of-n only) each layer's largest block. Designs missing a layer are left out. Area: the
    largest layer's (the array must hold it).
    """
    if not has_columns(sweep, ["energy_per_inference_pj", "cycles_per_inference"]):
        return None
    pts = _points(sweep).dropna(subset=["energy_per_inference_pj"])
    layers = layers or sorted(pts["layer"].unique())
    area = area_column(pts)
    keys = [k for k in DESIGN_KEYS if k in pts.columns]
    recs = []
    for design, g in pts.groupby(keys):
        grans = ["weight", "kernel"] if design[0] == "kofn" else ["weight"]
        for gran in grans:
            picks = []
            for layer in layers:
                gl = g[g["layer"] == layer]
                if gl.empty:
                    break
                block = 1 if gran == "weight" else gl["block"].max()
                pick = gl[gl["block"] == block]
                if pick.empty:
                    break
                picks.append(pick.iloc[0])
            if len(picks) != len(layers) or (gran == "kernel" and all(p["block"] == 1 for p in picks)):
                continue
            rec = dict(zip(keys, design))
            rec.update(granularity=gran, layers=len(picks),
                       energy_per_inference_pj=float(sum(p["energy_per_inference_pj"] for p in picks)),
                       cycles_per_inference=float(sum(p["cycles_per_inference"] for p in picks)))
            if area:
                rec[area] = max(p[area] for p in picks)
            recs.append(rec)
    return pd.DataFrame(recs) if recs else None


def join_runs(designs: pd.DataFrame, runs: pd.DataFrame | None) -> pd.DataFrame | None:
    """Attach trained accuracy to whole-network designs: same arch and, unless dense, same k, n and
    (k-of-n) granularity. One row per (design, run); designs without a run are dropped."""
    if designs is None or runs is None or runs.empty:
        return None
    parts = []
    for rec in runs.to_dict("records"):
        family = banked_archs(designs["arch"].unique()) if rec["arch"] == "csr" else []
        sel = designs["arch"].isin([rec["arch"], *family])  # a CSR-trained run fits every CSR design
        if rec["arch"] != "dense":
            sel &= (designs["k"] == rec["k"]) & (designs["n"] == rec["n"])
        if rec["arch"] == "kofn":
            sel &= designs["granularity"] == rec["granularity"]
        part = designs[sel].copy()
        part["method"], part["run"], part["accuracy"] = rec["method"], rec["run"], rec["accuracy"]
        parts.append(part)
    out = pd.concat(parts, ignore_index=True) if parts else None
    return out if out is not None and not out.empty else None


def network_speedups(nets: pd.DataFrame | None) -> pd.DataFrame | None:
    """Whole-network k-of-n designs against dense and CSR with the same k, n, PEs and bit widths:
    cycles and energy per inference and their ratios (baseline / k-of-n)."""
    if nets is None or nets.empty or not (nets["arch"] == "kofn").any():
        return None
    keys = [k for k in DESIGN_KEYS if k in nets.columns and k != "arch"]
    out = nets[nets.arch == "kofn"].drop(columns="arch")
    for arch in baseline_archs(nets["arch"].unique()):
        base = nets[nets.arch == arch][keys + ["cycles_per_inference", "energy_per_inference_pj"]]
        base = base.rename(columns={"cycles_per_inference": f"cycles_{arch}", "energy_per_inference_pj":
                                    f"energy_pj_{arch}"})
        out = out.merge(base, on=keys, how="left")
        out[f"speedup_vs_{arch}"] = out[f"cycles_{arch}"] / out["cycles_per_inference"]
        out[f"energy_saving_vs_{arch}"] = out[f"energy_pj_{arch}"] / out["energy_per_inference_pj"]
    return out.reset_index(drop=True)
