"""Read a RESULTS/ folder and derive the report's tables; every reader tolerates missing inputs.

RESULTS/ layout (any part may be missing; the report then leaves out what needs it, with one line saying what
would fill it)::

    RESULTS/
      sweep.parquet | sweep.csv   one row per sweep point (``dpp sweep``, or the analytic model ``dpp flow`` runs
                                  around its design: :mod:`analysis.flow_model`; parquet preferred)
      flow.json, flow_layers.csv  the whole network run in RTL on each array (``dpp flow``, schema ``dpp.flow``)
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


def present_baselines(archs: Any) -> list[str]:
    """The baselines (:func:`baseline_archs` order) that are among ``archs``."""
    archs = {str(a) for a in archs}
    return [a for a in baseline_archs(archs) if a in archs]


def arch_rank(arch: str) -> int:
    """Order of architectures in tables and plots: k-of-n, dense, CSR, banked CSR by bank count."""
    base = {"kofn": 0, "dense": 1, "csr": 2}
    if arch in base:
        return base[arch]
    m = re.fullmatch(r"csr_banked(\d+)", str(arch))
    return 3 + int(m.group(1)) if m else 10_000


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
    """One row per (architecture, layer) of the flow's RTL runs, per image: cycles, the model's cycles,
    utilisation, energy, stored bits and bit-exactness (every counter, in total, is in ``flow_layers.csv``)."""
    if not flow or not flow.get("layers"):
        return None
    images = int(flow.get("images") or 1)
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "design"} for r in flow["layers"]])
    df["vectors_per_image"] = df["batch"] // images
    df["cycles_per_image"] = df["cycles"] / images
    df["model_cycles_per_image"] = df["model_cycles"] / images
    df["energy_per_image_pj"] = df["energy_pj"] / images
    cols = [
        "arch",
        "array",
        "layer",
        "kind",
        "rows",
        "cols",
        "vectors_per_image",
        "bit_exact",
        "counters_match",
        "cycles_per_image",
        "model_cycles_per_image",
        "utilisation",
        "energy_per_image_pj",
        "storage_bits",
    ]
    return df[[c for c in cols if c in df.columns]]


def flow_summary(flow: dict[str, Any] | None) -> pd.DataFrame | None:
    """One row per architecture, per image: whole-network cycles and energy, bit-exactness, class agreement,
    accuracy and the k-of-n speed-up / energy saving (the totals over all images are in ``flow.json``)."""
    if not flow or not flow.get("archs"):
        return None
    df = pd.DataFrame([{"arch": a, **s} for a, s in flow["archs"].items()])
    cols = [
        "arch",
        "trained_method",
        "network",
        "bit_exact",
        "counters_match",
        "classes_equal_torch",
        "classes_equal_reference",
        "rtl_accuracy",
        "torch_accuracy",
        "cycles_per_image",
        "fmax_mhz",
        "time_per_image_s",
        "energy_per_image_pj",
        "edp_js",
        "storage_bits",
        "kofn_speedup",
        "kofn_time_speedup",
        "kofn_energy_saving",
    ]
    return df[[c for c in cols if c in df.columns]]


def flow_timing(flow: dict[str, Any] | None) -> pd.DataFrame | None:
    """One row per build the flow placed and routed (``flow.json`` ``timing``, ``dpp flow --timing``): Fmax,
    utilisation, the critical path and, for a build without an Fmax, why; ``None`` when the flow ran without."""
    timing = (flow or {}).get("timing") or {}
    if not timing:
        return None
    recs = []
    for name, t in timing.items():
        cp = t.get("critical_path") or {}
        recs.append(
            {
                "design": name,
                "part": t.get("part"),
                "fits": t.get("fits"),
                "fmax_mhz": t.get("fmax_mhz"),
                "luts": t.get("luts"),
                "ffs": t.get("ffs"),
                "dsp_blocks": t.get("dsp_blocks"),
                "bram_blocks": t.get("bram_blocks"),
                "critical_path": " > ".join(cp.get("parts", [])),
                "path_start": cp.get("start"),
                "path_end": cp.get("end"),
                "reason": t.get("reason", ""),
            }
        )
    return pd.DataFrame(recs)


def flow_time_vs_density(flow: dict[str, Any] | None) -> pd.DataFrame | None:
    """Per array of a timed flow: the density of the weights it multiplies (k-of-n: k/n; CSR: its network's
    stored non-zeros per weight; dense: 1, it multiplies every weight) and its time per image."""
    if not flow or not flow.get("timing"):
        return None
    layers = [r for r in flow.get("layers", [])]
    recs = []
    for arch, s in flow.get("archs", {}).items():
        mine = [r for r in layers if r["arch"] == arch]
        macs = sum(int(r["mac_ops"]) for r in mine)
        dense_macs = sum(int(r["rows"]) * int(r["cols"]) * int(r["batch"]) for r in mine)
        recs.append(
            {
                "arch": arch,
                "density": macs / dense_macs if dense_macs else float("nan"),
                "time_per_image_s": s.get("time_per_image_s"),
                "fmax_mhz": s.get("fmax_mhz"),
            }
        )
    return pd.DataFrame(recs)


def flow_area(flow: dict[str, Any] | None) -> dict[str, int]:
    """ice40 LUTs per architecture of the flow: its largest build (``flow.json`` ``area``, keyed
    ``<arch>:<array>/<block>/<out_bits>``); empty when the flow ran without ``--area``."""
    out: dict[str, int] = {}
    for name, rep in ((flow or {}).get("area") or {}).items():
        arch = name.split(":", 1)[0]
        if isinstance(rep, dict) and rep.get("luts") is not None:
            out[arch] = max(out.get(arch, 0), int(rep["luts"]))
    return out


def _run_accuracy(runs: pd.DataFrame | None, network: str | None) -> float:
    """Test-set accuracy of the trained run behind a flow network (``nets/<run>`` ↔ ``runs/<run>``)."""
    if runs is None or not network:
        return float("nan")
    hit = runs[runs["run"].astype(str) == Path(network).name]
    return float(hit["accuracy"].iloc[0]) if not hit.empty else float("nan")


def headline_table(flow: dict[str, Any] | None, runs: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """The answer the report opens with: one row per array of a flow, from ``flow.json``: its network, accuracy
    (RTL on the flow's images; the trained run's test-set accuracy when ``runs`` has it), cycles and energy per
    image, stored weight bits and area where known, each also as a ratio to k-of-n (``<metric>_vs_kofn``)."""
    if not flow or not flow.get("archs"):
        return None
    archs = flow["archs"]
    cfg = flow.get("config", {})
    area = flow_area(flow)
    recs = []
    for arch, s in archs.items():
        net = f"{s.get('trained_method', cfg.get('method'))} ({cfg.get('model')}, {cfg.get('k')}/{cfg.get('n')})"
        if arch != "kofn" and "kofn" in archs and s.get("network") == archs["kofn"].get("network"):
            net += ", same as k-of-n"
        rec = {
            "arch": arch,
            "network": net,
            "rtl_accuracy": s.get("rtl_accuracy"),
            "test_accuracy": _run_accuracy(runs, s.get("network")),
            "cycles_per_image": s["cycles_per_image"],
            "energy_per_image_pj": s["energy_per_image_pj"],
            "storage_bits": s.get("storage_bits"),
        }
        if flow.get("timing"):  # time per image at each build's own Fmax (dpp flow --timing)
            rec["time_per_image_s"] = s.get("time_per_image_s")
        if area:
            rec["area_ice40_luts"] = area.get(arch)
        recs.append(rec)
    df = pd.DataFrame(recs)
    if df["test_accuracy"].isna().all():
        df = df.drop(columns="test_accuracy")
    if "kofn" in archs:
        for metric, name in (
            ("cycles_per_image", "cycles_vs_kofn"),
            ("time_per_image_s", "time_vs_kofn"),
            ("energy_per_image_pj", "energy_vs_kofn"),
            ("storage_bits", "storage_vs_kofn"),
            ("area_ice40_luts", "area_vs_kofn"),
        ):
            if metric in df.columns:
                values = pd.to_numeric(df[metric], errors="coerce")
                base = float(values[df["arch"] == "kofn"].iloc[0])
                df.insert(df.columns.get_loc(metric) + 1, name, values / base if base else float("nan"))
    return df


def sweep_answer(sweep: pd.DataFrame | None) -> tuple[pd.DataFrame, str] | None:
    """The answer of a sweep folder: per baseline, over the compared designs, k-of-n's speed-up and energy
    saving (min, median, max). Whole networks when the sweep has several layers, else per layer point.
    Returns (table, what the compared designs are) or None."""
    nets = network_speedups(network_table(sweep))
    if nets is not None and nets["layers"].max() > 1:
        table, what = nets, "whole-network designs (all swept layers, per inference)"
    else:
        table, what = speedup_table(sweep), "layer points"
    if table is None:
        return None
    recs = []
    for arch in baseline_archs(a.removeprefix("speedup_vs_") for a in table.columns if a.startswith("speedup_vs_")):
        sp = table.get(f"speedup_vs_{arch}")
        if sp is None or sp.notna().sum() == 0:
            continue
        rec = {
            "baseline": arch,
            "designs": int(sp.notna().sum()),
            "speedup_min": sp.min(),
            "speedup_median": sp.median(),
            "speedup_max": sp.max(),
        }
        es = table.get(f"energy_saving_vs_{arch}")
        if es is not None and es.notna().any():
            rec.update(energy_saving_min=es.min(), energy_saving_median=es.median(), energy_saving_max=es.max())
        recs.append(rec)
    return (pd.DataFrame(recs), what) if recs else None


def _points(sweep: pd.DataFrame) -> pd.DataFrame:
    """One row per sweep point (the accuracy join may have duplicated points, one per trained run)."""
    return sweep.drop_duplicates("point_id") if "point_id" in sweep.columns else sweep


def has_columns(df: pd.DataFrame | None, cols: list[str]) -> bool:
    return df is not None and not df.empty and all(c in df.columns for c in cols) and df[cols].notna().all(axis=1).any()


def accuracy_vs_sparsity(runs: pd.DataFrame | None) -> pd.DataFrame | None:
    """Trained runs: method, granularity, k, n, the design's sparsity (1 - k/n; 0 for dense), the measured
    sparsity (1 - trained density) and accuracy.

    The plot uses the design's sparsity: runs built for the same k/n share one x, although their measured
    densities differ slightly (a k-of-n layer whose columns are not a multiple of n keeps k in its last,
    partial group: LeNet-300's 100-column layer keeps 13 of 100, not 12.5).
    """
    if runs is None or runs.empty:
        return None
    df = runs.copy()
    density = pd.to_numeric(df["trained_density"], errors="coerce")
    dense = df["arch"] == "dense" if "arch" in df.columns else df["method"] == "dense"
    df["sparsity"] = np.where(dense, 0.0, 1.0 - df["k"] / df["n"])
    df["measured_sparsity"] = 1.0 - density.fillna(1.0 - df["sparsity"])
    cols = ["run", "model", "method", "granularity", "k", "n", "sparsity", "measured_sparsity", "accuracy"]
    return df[cols].sort_values(["method", "granularity", "sparsity"]).reset_index(drop=True)


def cycles_column(sweep: pd.DataFrame | None) -> str:
    """``cycles_per_inference`` when the sweep has it (the model's points), else ``cycles`` (per layer run)."""
    return "cycles_per_inference" if has_columns(sweep, ["cycles_per_inference"]) else "cycles"


def speedup_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """k-of-n cycles (per inference when known, else per layer run: see :func:`cycles_column`) and energy per
    inference against every baseline on the same layer, k, n, PEs and bit widths, with the ratios
    ``speedup_vs_<arch>`` and ``energy_saving_vs_<arch>`` (baseline / k-of-n)."""
    if not has_columns(sweep, ["cycles"]):
        return None
    pts = _points(sweep).dropna(subset=["cycles"])
    cyc = cycles_column(pts)
    energy = ["energy_per_inference_pj"] if has_columns(pts, ["energy_per_inference_pj"]) else []
    keys = [k for k in SHAPE_KEYS if k in pts.columns]

    def side(arch: str) -> pd.DataFrame:
        return pts[pts.arch == arch][keys + [cyc, *energy]].rename(
            columns={cyc: f"cycles_{arch}", "energy_per_inference_pj": f"energy_pj_{arch}"}
        )

    kofn = pts[pts.arch == "kofn"][keys + ["block"]].join(side("kofn").drop(columns=keys))
    if kofn.empty:
        return None
    for arch in present_baselines(pts["arch"].unique()):
        kofn = kofn.merge(side(arch).drop_duplicates(keys), on=keys, how="left")
        kofn[f"speedup_vs_{arch}"] = kofn[f"cycles_{arch}"] / kofn["cycles_kofn"]
        if energy:
            kofn[f"energy_saving_vs_{arch}"] = kofn[f"energy_pj_{arch}"] / kofn["energy_pj_kofn"]
    return kofn.sort_values(keys + ["block"]).reset_index(drop=True)


def storage_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """Memory bits per kept weight against the information bound, per arch / layer / k / n / block (dense: one
    row per layer), with the stored bits and kept weights of the layer when the sweep has them."""
    need = ["bits_per_kept_weight", "bound_bits_per_kept_weight"]
    if not has_columns(sweep, need):
        return None
    pts = _points(sweep)
    keys = [k for k in ["arch", "layer", "k", "n", "block", "weight_bits"] if k in pts.columns]
    cols = keys + [
        c
        for c in [
            "density",
            "bits_per_kept_weight",
            "bound_bits_per_kept_weight",
            "bits_per_dense_weight",
            "storage_total_bits",
            "kept_weights",
        ]
        if c in pts.columns
    ]
    out = pts[cols].drop_duplicates(keys)
    if "arch" in out.columns:  # a dense layer stores the same bits whatever k and n: one row per layer
        dense = out["arch"] == "dense"
        same = [k for k in keys if k not in ("k", "n")]
        out = pd.concat([out[~dense], out[dense].drop_duplicates(same)])
    return out.sort_values(keys).reset_index(drop=True)


def area_column(sweep: pd.DataFrame | None) -> str | None:
    """The area metric to use: ice40 LUTs, else generic cells, else transistors (first one present)."""
    for c in AREA_PREFERENCE:
        if has_columns(sweep, [c]):
            return c
    return None


def per_inference_components(pts: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """``pts`` with one ``<component>_pj`` column per inference for every ``energy_<component>_pj`` column
    (the sweep stores components per layer run of ``batch`` vectors; one inference feeds ``vectors``)."""
    pts = pts.copy()
    per_inf = (pts["vectors"] if "vectors" in pts.columns else 1) / pts["batch"] if "batch" in pts.columns else 1
    comp = []
    for c in pts.columns:
        if c.startswith("energy_") and c.endswith("_pj") and c not in ("energy_total_pj", "energy_per_inference_pj"):
            name = c.removeprefix("energy_")
            pts[name] = pts[c] * per_inf
            comp.append(name)
    return pts, comp


def energy_table(sweep: pd.DataFrame | None) -> pd.DataFrame | None:
    """Energy per inference, split by component (``<component>_pj`` per inference), cycles (per inference when
    known) and area (the preferred metric, :func:`area_column`), per point."""
    if not has_columns(sweep, ["energy_per_inference_pj"]):
        return None
    pts, comp = per_inference_components(_points(sweep).dropna(subset=["energy_per_inference_pj"]))
    keys = [k for k in ["arch", "layer", "k", "n", "block", "pes", "weight_bits"] if k in pts.columns]
    area = area_column(pts)
    cols = keys + [cycles_column(pts), "energy_per_inference_pj"] + comp + ([area] if area else [])
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
                recs.append(
                    {
                        "run": run,
                        "epoch": int(epoch),
                        "layer": layer,
                        "confidence": float(conf.iloc[i]) if conf is not None else np.nan,
                        "diversity": float(div.iloc[i]) if div is not None else np.nan,
                    }
                )
    df = pd.DataFrame(recs, columns=["run", "epoch", "layer", "confidence", "diversity"])
    df = df.dropna(subset=["confidence", "diversity"], how="all")  # epochs before the masks start
    return df.reset_index(drop=True) if not df.empty else None


DESIGN_KEYS = ["arch", "k", "n", "pes", "weight_bits", "act_bits", "out_bits", "batch"]


def network_table(sweep: pd.DataFrame | None, layers: list[str] | None = None) -> pd.DataFrame | None:
    """Whole-network designs: per-inference energy and cycles summed over every swept layer.

    A design is (arch, k, n, PEs, bit widths) plus a granularity: ``weight`` takes each layer's block-1 point,
    ``kernel`` (k-of-n only) each layer's largest block. Designs missing a layer are left out. Area: the
    largest layer's (the array must hold it). Energy components (``<component>_pj`` per inference) and
    ``storage_total_bits`` are summed over the layers too when the sweep has them.
    """
    if not has_columns(sweep, ["energy_per_inference_pj", "cycles_per_inference"]):
        return None
    pts, comp = per_inference_components(_points(sweep).dropna(subset=["energy_per_inference_pj"]))
    sums = comp + [c for c in ("storage_total_bits", "time_per_inference_s") if c in pts.columns]
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
            rec.update(
                granularity=gran,
                layers=len(picks),
                energy_per_inference_pj=float(sum(p["energy_per_inference_pj"] for p in picks)),
                cycles_per_inference=float(sum(p["cycles_per_inference"] for p in picks)),
            )
            rec.update({c: float(sum(p[c] for p in picks)) for c in sums})
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
    for arch in present_baselines(nets["arch"].unique()):
        base = nets[nets.arch == arch][keys + ["cycles_per_inference", "energy_per_inference_pj"]]
        base = base.rename(
            columns={"cycles_per_inference": f"cycles_{arch}", "energy_per_inference_pj": f"energy_pj_{arch}"}
        )
        out = out.merge(base, on=keys, how="left")
        out[f"speedup_vs_{arch}"] = out[f"cycles_{arch}"] / out["cycles_per_inference"]
        out[f"energy_saving_vs_{arch}"] = out[f"energy_pj_{arch}"] / out["energy_per_inference_pj"]
    return out.reset_index(drop=True)
