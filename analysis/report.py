"""``dpp report RESULTS/ --out REPORT/``: one self-contained HTML page (PNG plots inlined as base64) + Markdown.

Output: ``REPORT/report.html``, ``REPORT/report.md`` (figures in ``REPORT/figures/``), every table in full as
``REPORT/tables/<name>.csv``. Sections: accuracy vs sparsity, cycles and speed-up vs dense / CSR, memory bits
per weight vs the information bound, energy per inference and area, Pareto fronts (accuracy vs energy,
cycles, area), mask confidence / diversity curves, and the commands + parameters behind every figure. A
section whose inputs are missing says "no data" and why. The RESULTS/ layout is in :mod:`analysis.report_data`.
"""

from __future__ import annotations

import io
import itertools
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from analysis import report_data as rd  # noqa: E402
from analysis.pareto import pareto_front  # noqa: E402
from analysis.report_render import Figure, Section, fmt, render_html, render_markdown  # noqa: E402,F401
from dpp.serialize import atomic_write_bytes, atomic_write_text  # noqa: E402


def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def _sweep_provenance(data: rd.ResultsData) -> list[str]:
    src = data.sweep_file.name if data.sweep_file else "sweep table"
    lines = [f"Data: `{src}` ({len(data.sweep) if data.sweep is not None else 0} rows)."]
    cmds = data.commands_of("sweep")
    lines += [f"Produced by: `{c['command']}` (cwd `{c.get('cwd', '?')}`, {c.get('utc', '?')})" for c in cmds] or \
        ["Produced by: no sweep command recorded in commands.json."]
    return lines


def _runs_provenance(data: rd.ResultsData, runs: list[str]) -> list[str]:
    files = ("result.json", "metrics.csv", "config.json")
    lines = [f"Data: `runs/{r}/` ({', '.join(f for f in files if (data.root / 'runs' / r / f).exists())})"
             for r in runs]
    cmds = [c for c in data.commands_of("train") if any(f"runs/{r}" in c.get("command", "") for r in runs)]
    lines += [f"Produced by: `{c['command']}`" for c in cmds] or \
        ["Produced by: no train command recorded in commands.json; each run's parameters are in its "
         "config.json (see 'Commands and parameters')."]
    return lines


# ------------------------------------------------------------------------------------------- sections
def section_flow(data: rd.ResultsData) -> Section:
    s = Section("Trained network through the RTL (dpp flow)", "flow")
    summary, layers = rd.flow_summary(data.flow), rd.flow_layers(data.flow)
    if summary is None or layers is None:
        s.no_data = "no data: no `flow.json` (written by `dpp flow`)."
        return s
    f = data.flow
    cfg = f.get("config", {})
    s.text.append(f"{cfg.get('model')} trained with {cfg.get('method')} at k/n = {cfg.get('k')}/{cfg.get('n')} "
                  f"({cfg.get('granularity')} granularity, {cfg.get('bits')}-bit weights), {cfg.get('pes')} PEs x "
                  f"k multipliers in every array. {f['images']} real test images were run through the whole "
                  f"network layer by layer in RTL (Verilator), each layer fed the previous layer's RTL output.")
    agree = f.get("export_agreement", {})
    s.text.append(f"Export: the integer network predicts the same class as the fake-quantised torch model on "
                  f"{agree.get('identical')}/{agree.get('images')} test images. Torch accuracy on the simulated "
                  f"images: {fmt(f.get('torch_accuracy'))}; integer reference: {fmt(f.get('reference_accuracy'))}.")
    if f.get("csr_network"):
        ca = f.get("csr_export_agreement", {})
        s.text.append(f"The CSR baseline runs its own network, pruned unstructured at the same density and trained "
                      f"with the same budget (`{f['csr_network']}`; export agreement {ca.get('identical')}/"
                      f"{ca.get('images')}); the k-of-n and dense arrays run the DPP network.")
    for row in summary.itertuples():
        s.text.append(f"{row.arch}: every layer bit-exact: {row.bit_exact}; counters equal the analytic model: "
                      f"{row.counters_match}; RTL classes equal torch on {row.classes_equal_torch}/{f['images']} "
                      f"images; {fmt(row.cycles_per_image)} cycles and {fmt(row.energy_per_image_pj)} pJ per image.")
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.4))
    axes[0].bar(summary["arch"], summary["cycles_per_image"], color=["C0", "C1", "C2"][: len(summary)])
    axes[0].set_ylabel("cycles per image (RTL)")
    axes[1].bar(summary["arch"], summary["energy_per_image_pj"] / 1000, color=["C0", "C1", "C2"][: len(summary)])
    axes[1].set_ylabel("energy per image (nJ)")
    for ax in axes:
        ax.grid(alpha=0.3, axis="y")
    s.figures.append(Figure("flow_network", _png(fig), "Whole network per image, measured in RTL: cycles "
                                                       "(counter `cycles`) and energy (counters priced by "
                                                       "analysis/energy_constants.py)."))
    s.tables.append(("flow_summary", "Whole network per architecture (RTL counters)", summary))
    s.tables.append(("flow_layers", "Every layer on every architecture (RTL counters; model_cycles from "
                                    "sim/model.py)", layers))
    if f.get("area"):
        s.tables.append(("flow_area", "Area of each design (Yosys synth_ice40)",
                         pd.DataFrame([{"design": k, **{c: v for c, v in a.items() if not isinstance(v, dict)}}
                                       for k, a in f["area"].items()])))
    s.provenance = [f"Data: `flow.json`, `flow_layers.csv`; run `{f.get('run')}`, network `{f.get('network')}`."] + \
        [f"Produced by: `{c['command']}`" for c in data.commands_of("flow")] + \
        [f"Parameters: {', '.join(f'{k}={v}' for k, v in cfg.items())}"]
    return s


def section_accuracy(data: rd.ResultsData) -> Section:
    s = Section("Accuracy vs sparsity", "accuracy")
    df = rd.accuracy_vs_sparsity(data.runs)
    if df is None:
        s.no_data = "no data: no `runs/*/result.json` found."
        return s
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for (method, gran), g in df.groupby(["method", "granularity"]):
        ax.plot(g["sparsity"], g["accuracy"], "o-", label=f"{method} / {gran}")
    ax.set_xlabel("sparsity (1 - density)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    s.figures.append(Figure("accuracy_vs_sparsity", _png(fig), "Test accuracy against sparsity, one line per "
                                                                "training method and mask granularity."))
    s.tables.append(("accuracy_vs_sparsity", "Trained runs", df))
    s.provenance = _runs_provenance(data, list(df["run"]))
    return s


def section_speedup(data: rd.ResultsData) -> Section:
    s = Section("Cycles and speed-up vs dense and CSR", "speedup")
    df = rd.speedup_table(data.sweep)
    if df is None:
        s.no_data = ("no data: the sweep table has no `cycles` column (it appears once `sim.model` is "
                     "available to `dpp sweep`) or no k-of-n points.")
        return s
    fig, ax = plt.subplots(figsize=(6.4, 4))
    x = df["k"] / df["n"]
    archs = rd.baseline_archs(df.columns.str.removeprefix("speedup_vs_"))
    for arch, marker in zip(archs, itertools.cycle("osv^<>")):
        col = f"speedup_vs_{arch}"
        if df[col].notna().any():
            ax.scatter(x, df[col], marker=marker, label=f"k-of-n vs {arch}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("density k/n")
    ax.set_ylabel("speed-up (baseline cycles / k-of-n cycles)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    s.figures.append(Figure("speedup", _png(fig), "Speed-up of the k-of-n array over the dense and CSR arrays "
                                                  "on the same layer, k, n, PEs and bit widths."))
    s.tables.append(("speedup", "Cycles per layer run and speed-ups", df))
    nets = rd.network_speedups(rd.network_table(data.sweep))
    if nets is not None and nets["layers"].max() > 1:
        s.tables.append(("network_speedup", "Whole network (all swept layers), per inference: k-of-n against "
                                            "dense and CSR", nets))
    s.provenance = _sweep_provenance(data)
    return s


def section_storage(data: rd.ResultsData) -> Section:
    s = Section("Memory bits per weight vs the information bound", "storage")
    df = rd.storage_table(data.sweep)
    if df is None:
        s.no_data = "no data: no sweep table with storage columns found."
        return s
    fig, ax = plt.subplots(figsize=(6.4, 4))
    for arch, g in df.groupby("arch"):
        ax.scatter(g["density"], g["bits_per_kept_weight"], label=f"{arch}: stored bits / kept weight")
    kofn = df[df.arch == "kofn"]
    if not kofn.empty:
        ax.scatter(kofn["density"], kofn["bound_bits_per_kept_weight"], marker="x", color="k",
                   label="k-of-n information bound")
    ax.set_xlabel("density")
    ax.set_ylabel("bits per kept weight")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    s.figures.append(Figure("storage", _png(fig), "Stored bits per kept weight (values + indices + pointers) "
                                                  "and, for k-of-n, the bound: values + log2 C(n, k) per group."))
    s.tables.append(("storage", "Storage per format", df))
    s.provenance = _sweep_provenance(data)
    return s


def section_energy(data: rd.ResultsData) -> Section:
    s = Section("Area and energy per inference", "energy")
    df = rd.energy_table(data.sweep)
    if df is None:
        s.no_data = ("no data: the sweep table has no energy columns (they need the `sim.model` counters) "
                     "and no area columns.")
        return s
    comps = [c for c in df.columns if c.endswith("_pj") and c != "energy_per_inference_pj"]
    view = df.head(30)
    labels = [f"{r.arch} {r.layer} k{r.k}/n{r.n} b{r.block} p{r.pes}" for r in view.itertuples()]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    bottom = pd.Series(0.0, index=view.index)
    for c in comps:
        ax.bar(range(len(view)), view[c], bottom=bottom, label=c.removesuffix("_pj"))
        bottom += view[c]
    ax.set_xticks(range(len(view)), labels, rotation=75, fontsize=6)
    ax.set_ylabel("energy per inference (pJ)")
    ax.legend(fontsize=6, ncol=2)
    s.figures.append(Figure("energy", _png(fig), "Energy per inference by component (model counters priced "
                                                 "by analysis/energy_constants.py)" +
                            (f"; first 30 of {len(df)} points." if len(df) > 30 else ".")))
    area = rd.area_column(data.sweep)
    if area:
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for arch, g in df.groupby("arch"):
            ax.scatter(g[area], g["energy_per_inference_pj"], label=arch)
        ax.set_xlabel(area)
        ax.set_ylabel("energy per inference (pJ)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        s.figures.append(Figure("area_energy", _png(fig), f"Area ({area}, Yosys) against energy per inference."))
    else:
        s.text.append("Area: no data (sweep run without `area: {enabled: true}`).")
    s.tables.append(("energy", "Energy per inference (pJ, total and by component) and area, per layer", df))
    nets = rd.network_table(data.sweep)
    if nets is not None and nets["layers"].max() > 1:
        s.tables.append(("network", "Whole network (all swept layers): energy and cycles per inference", nets))
    s.provenance = _sweep_provenance(data)
    return s


def pareto_inputs(data: rd.ResultsData) -> tuple[pd.DataFrame | None, str]:
    """Points with an accuracy: whole-network designs joined with the trained runs if possible, else the
    sweep rows that carry an accuracy (joined by the sweep config's ``runs:``)."""
    nets = rd.join_runs(rd.network_table(data.sweep), data.runs)
    if nets is not None:
        return nets, "whole-network designs (per-inference energy and cycles summed over the swept layers)"
    if rd.has_columns(data.sweep, ["accuracy"]):
        return data.sweep.dropna(subset=["accuracy"]), "sweep rows (one layer each)"
    return None, ""


def section_pareto(data: rd.ResultsData) -> Section:
    s = Section("Pareto fronts: accuracy vs energy, cycles, area", "pareto")
    pts, what = pareto_inputs(data)
    if pts is None:
        s.no_data = ("no data: no point carries an accuracy (needs trained runs in `runs/` whose arch, k, n and "
                     "granularity match swept designs, and the model's energy/cycle columns).")
        return s
    s.text.append(f"Points: {what}.")
    cyc = "cycles_per_inference" if "cycles_per_inference" in pts.columns else "cycles"
    objectives = [("energy_per_inference_pj", "energy per inference (pJ)"), (cyc, cyc.replace("_", " "))]
    area = rd.area_column(pts)
    if area:
        objectives.append((area, area))
    else:
        s.text.append("Accuracy vs area: no data (sweep run without `area: {enabled: true}`).")
    for col, label in objectives:
        if not rd.has_columns(pts, ["accuracy", col]):
            s.text.append(f"Accuracy vs {label}: no data (no `{col}` column with accuracy).")
            continue
        p = pts.dropna(subset=["accuracy", col])
        front = pareto_front(p, {col: "min", "accuracy": "max"})
        fig, ax = plt.subplots(figsize=(6.4, 4))
        for key, g in p.groupby(["arch", "method"] if "method" in p.columns else ["arch"]):
            ax.scatter(g[col], g["accuracy"], alpha=0.6, label=" / ".join(map(str, key)))
        ax.plot(front[col], front["accuracy"], "k--", lw=1, label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        s.figures.append(Figure(f"pareto_{col}", _png(fig), f"Accuracy against {label}; dashed: the Pareto front."))
        keep = [c for c in ["arch", "method", "granularity", "layer", "k", "n", "block", "pes", "accuracy", col]
                if c in front.columns]
        s.tables.append((f"pareto_{col}", f"Pareto front, accuracy vs {label}", front[keep]))
    s.provenance = _sweep_provenance(data) + (_runs_provenance(data, list(data.runs["run"]))
                                              if data.runs is not None else [])
    return s


def section_masks(data: rd.ResultsData) -> Section:
    s = Section("Mask confidence and diversity", "masks")
    df = rd.mask_curves(data.metrics)
    if df is None:
        s.no_data = "no data: no `runs/*/metrics.csv` with `conf_layer<i>` / `div_layer<i>` columns."
        return s
    for run, g in df.groupby("run"):
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for layer, gl in g.groupby("layer"):
            axes[0].plot(gl["epoch"], gl["confidence"], "o-", ms=3, label=f"layer {layer}")
            axes[1].plot(gl["epoch"], gl["diversity"], "o-", ms=3, label=f"layer {layer}")
        for ax, name in zip(axes, ("confidence", "diversity")):
            ax.set_xlabel("epoch")
            ax.set_ylabel(name)
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        axes[0].legend(fontsize=7)
        s.figures.append(Figure(f"masks_{run}", _png(fig), f"Run `{run}`: per-layer mask confidence and pruning "
                                                           f"diversity over the epochs."))
    last = df.sort_values("epoch").groupby(["run", "layer"]).tail(1).reset_index(drop=True)
    s.tables.append(("mask_metrics_final", "Last epoch's mask confidence and diversity", last))
    s.provenance = _runs_provenance(data, sorted(df["run"].unique()))
    return s


def section_commands(data: rd.ResultsData, report_command: str) -> Section:
    s = Section("Commands and parameters", "commands")
    s.text.append(f"This report: `{report_command}`.")
    if data.commands:
        rows = [{"kind": c.get("kind"), "utc": c.get("utc"), "command": c.get("command"), "cwd": c.get("cwd")}
                for c in data.commands]
        s.tables.append(("commands", "Commands recorded in commands.json (oldest first)", pd.DataFrame(rows)))
        for i, c in enumerate(data.commands):
            params = c.get("params") or {}
            flat = {k: (v if not isinstance(v, (dict, list)) else str(v)) for k, v in params.items()}
            s.tables.append((f"command{i}_params", f"Parameters of command {i} ({c.get('kind')})",
                             pd.DataFrame([{"parameter": k, "value": v} for k, v in flat.items()])))
    else:
        s.text.append("No commands.json in the results folder.")
    if data.run_configs:
        s.tables.append(("run_configs", "Training configuration of every run (runs/*/config.json)",
                         pd.DataFrame([{"run": r, **{k: (v if not isinstance(v, (list, dict)) else str(v))
                                                     for k, v in c.items()}} for r, c in data.run_configs.items()])))
    return s


SECTIONS: list[Callable[[rd.ResultsData], Section]] = [section_flow, section_accuracy, section_speedup, section_storage,
                                                       section_energy, section_pareto, section_masks]


@dataclass
class ReportOutcome:
    html: Path
    markdown: Path
    sections: list[Section]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def build_report(results: str | os.PathLike, out: str | os.PathLike, *, report_command: str = "dpp report",
                 title: str = "DPP hardware co-design report") -> ReportOutcome:
    """Read ``results``, build every section (missing inputs → "no data"), write HTML, Markdown, figures, tables."""
    data = rd.load_results(results)
    out = Path(out)
    sections = []
    for make in SECTIONS:
        try:
            sections.append(make(data))
        except Exception as exc:  # noqa: BLE001 - one bad input must not sink the whole report
            name = make.__name__.removeprefix("section_")
            sections.append(Section(name, name, no_data=f"no data: this section failed on its inputs: {exc}"))
    sections.append(section_commands(data, report_command))
    header = [f"Results folder: `{Path(results).resolve()}`",
              f"Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')} by `{report_command}`."]
    if data.problems:
        header.append("Problems reading the inputs: " + "; ".join(data.problems))
    for s in sections:
        for f in s.figures:
            atomic_write_bytes(out / "figures" / f"{_safe(f.name)}.png", f.png)
            f.name = _safe(f.name)
        for name, _, df in s.tables:
            atomic_write_text(out / "tables" / f"{_safe(name)}.csv", df.to_csv(index=False))
    html_path, md_path = out / "report.html", out / "report.md"
    atomic_write_text(html_path, render_html(title, sections, header))
    atomic_write_text(md_path, render_markdown(title, sections, header))
    return ReportOutcome(html_path, md_path, sections)
