"""``dpp report RESULTS/ --out REPORT/``: one self-contained HTML page (PNG plots inlined as base64) + Markdown.

Output: ``REPORT/report.html``, ``REPORT/report.md`` (figures in ``REPORT/figures/``), every table in full as
``REPORT/tables/<name>.csv`` (raw numbers; the page writes them for people, see :mod:`analysis.report_render`).
The page opens with the answer (one row per array of ``dpp flow``, or k-of-n's speed-up and energy saving over
a sweep's designs, with a sentence or two computed from the numbers), then: the flow's RTL measurements,
accuracy vs sparsity, cycles and speed-up vs dense / CSR, memory bits per weight vs the information bound,
energy per inference and area, Pareto fronts (accuracy vs energy, cycles, area), mask confidence / diversity
curves, and the commands + parameters behind every figure. A section whose inputs are missing is left out,
with one line saying what would fill it. The RESULTS/ layout is in :mod:`analysis.report_data`.
"""

from __future__ import annotations

import io
import itertools
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis import report_data as rd  # noqa: E402
from analysis.pareto import pareto_front  # noqa: E402
from analysis.report_render import Figure, Section, energy, fmt, percent, ratio, render_html, render_markdown, si  # noqa: E402,F401
from dpp.serialize import atomic_write_bytes, atomic_write_text  # noqa: E402

ARCH_NAMES = {"kofn": "k-of-n", "dense": "dense", "csr": "CSR"}
AREA_UNITS = {
    "area_ice40_luts": "ice40 LUTs",
    "area_generic_cells": "generic cells",
    "area_generic_transistors": "transistors",
}
MAX_CATEGORIES = 36  #: designs on one categorical axis; more are listed in the tables only
MARKERS = "osv^<>Dp"


def arch_name(arch: str) -> str:
    """How an architecture id reads in prose: ``csr_banked8`` → ``CSR (8 banks)``."""
    if arch.startswith("csr_banked"):
        return f"CSR ({arch.removeprefix('csr_banked')} banks)"
    return ARCH_NAMES.get(arch, arch)


# ------------------------------------------------------------------------------------------- plot helpers
def _png(fig: plt.Figure) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def scale_for(values: Any, unit: str) -> tuple[float, str]:
    """(factor, unit with SI prefix) so that ``values * factor`` reads in hundreds at most: cycles
    ``66600`` → ``(1e-3, "k cycles")``, energy in pJ ``8.7e5`` → ``(1e-3, "nJ")``. ``unit`` ``"pJ"`` starts
    from pico; any other unit from one."""
    v = pd.to_numeric(pd.Series(np.ravel(values)), errors="coerce").abs().max()
    steps = ["p", "n", "µ", "m", "", "k", "M", "G"] if unit == "pJ" else ["", "k", "M", "G", "T"]
    base = unit[1:] if unit == "pJ" else unit
    i = 0
    while not pd.isna(v) and v >= 1000 and i < len(steps) - 1:
        v, i = v / 1000, i + 1
    sep = "" if base in ("J", "bit") or not steps[i] else " "
    return 1000.0**-i, f"{steps[i]}{sep}{base}"


def label_points(ax: plt.Axes, xs: Sequence[float], ys: Sequence[float], labels: Sequence[str]) -> None:
    """Write each point's design next to it; designs on (nearly) the same spot share one label
    (``k1/n4 = k2/n8``), so none hides another. Call once per axes with every point."""
    pts = [(float(x), float(y), str(lab)) for x, y, lab in zip(xs, ys, labels) if pd.notna(x) and pd.notna(y)]
    if not pts:
        return
    span_x = (max(p[0] for p in pts) - min(p[0] for p in pts)) or 1.0
    span_y = (max(p[1] for p in pts) - min(p[1] for p in pts)) or 1.0
    spots: list[tuple[float, float, list[str]]] = []
    for x, y, lab in pts:
        for sx, sy, labs in spots:
            if abs(x - sx) / span_x < 0.03 and abs(y - sy) / span_y < 0.04:
                labs.append(lab)
                break
        else:
            spots.append((x, y, [lab]))
    placed: list[tuple[float, float, int]] = []  # (x, y, vertical offset) of the labels written so far
    for x, y, labs in sorted(spots, key=lambda p: (-p[1], p[0])):
        dy = 3
        while any(abs(x - px) / span_x < 0.25 and abs(y - py) / span_y < 0.08 and dy == pdy for px, py, pdy in placed):
            dy -= 10  # a label already sits there: write this one below it
        placed.append((x, y, dy))
        ax.annotate(" = ".join(dict.fromkeys(labs)), (x, y), textcoords="offset points", xytext=(4, dy), fontsize=7)


def design_label(r: Any, layer: bool = False) -> str:
    """A design on a plot axis: ``k1/n8 4 PEs`` (``fc1 k1/n8 b9 4 PEs`` for a layer point)."""
    g = getattr(r, "granularity", "weight")
    parts = [str(getattr(r, "layer", ""))] if layer else []
    parts.append(f"k{int(r.k)}/n{int(r.n)}" + (f" b{int(r.block)}" if getattr(r, "block", 1) not in (1, None) else ""))
    parts.append(f"{int(r.pes)} PEs" if hasattr(r, "pes") else "")
    if g == "kernel" and not layer:
        parts.append("kernel")
    return " ".join(p for p in parts if p)


def _rel(path: Any, root: Path, cwd: str | None = None) -> Any:
    """``path`` relative to the results folder when it lies inside it, else relative to ``cwd`` when it lies
    inside that (tables and prose hold no absolute paths of the results); anything else unchanged."""
    if not isinstance(path, str) or not path or not os.path.isabs(path):
        return path
    try:
        p = Path(path).resolve()
        for base in [root, *([Path(cwd)] if cwd else [])]:
            if p.is_relative_to(base.resolve()):
                return os.path.relpath(p, base.resolve())
    except (OSError, ValueError):
        pass
    return path


def relative_paths(df: pd.DataFrame, root: Path) -> pd.DataFrame:
    """``df`` with every absolute path under ``root`` in its text columns made relative to ``root``."""
    out = df.copy()
    for c in out.columns:
        if not pd.api.types.is_numeric_dtype(out[c]) and not pd.api.types.is_bool_dtype(out[c]):
            out[c] = [_rel(v, root) for v in out[c]]
    return out


def _sweep_provenance(data: rd.ResultsData) -> list[str]:
    src = data.sweep_file.name if data.sweep_file else "sweep table"
    lines = [f"Data: `{src}` ({len(data.sweep) if data.sweep is not None else 0} rows)."]
    cmds = data.commands_of("sweep")
    if cmds:
        lines += [f"Produced by: `{c['command']}` ({c.get('utc', '?')})" for c in cmds]
    elif data.commands_of("flow"):
        lines.append("Produced by: `dpp flow` (analysis/flow_model.py: the analytic model around the flow's design).")
    else:
        lines.append("Produced by: no sweep command recorded in commands.json.")
    return lines


def _runs_provenance(data: rd.ResultsData, runs: list[str]) -> list[str]:
    files = ("result.json", "metrics.csv", "config.json")
    lines = [
        f"Data: `runs/{r}/` ({', '.join(f for f in files if (data.root / 'runs' / r / f).exists())})" for r in runs
    ]
    cmds = [c for c in data.commands_of("train") if any(f"runs/{r}" in c.get("command", "") for r in runs)]
    if cmds:
        lines += [f"Produced by: `{c['command']}`" for c in cmds]
    elif data.commands_of("flow"):
        lines.append("Produced by: `dpp flow` (its training step); each run's parameters are in its config.json.")
    else:
        lines.append(
            "Produced by: no train command recorded in commands.json; each run's parameters are in its "
            "config.json (see 'Commands and parameters')."
        )
    return lines


# ------------------------------------------------------------------------------------------- the answer
def _times(r: float, more: str, fewer: str) -> str:
    """``8.0× fewer cycles`` for a baseline / k-of-n ratio ``r`` >= 1, ``1.02× more cycles`` below 1."""
    x = r if r >= 1 else 1 / r
    num = f"{x:.2f}" if x < 2 else f"{x:.1f}"
    return f"{num}× {fewer if r >= 1 else more}"


def flow_conclusion(head: pd.DataFrame, flow: dict[str, Any]) -> list[str]:
    """One or two sentences computed from the headline table of a flow."""
    cfg = flow.get("config", {})
    out = []
    rows = head.set_index("arch")
    for arch in [a for a in rows.index if a != "kofn"]:
        r = rows.loc[arch]
        name = f"the {arch_name(arch)} array"
        if arch == "csr":
            banks = int(cfg.get("act_banks") or 0)
            name += (
                f" with k-of-n's activation memory in {banks} banks"
                if banks
                else " with a private activation copy per lane"
            )
        if flow["archs"][arch].get("network") != flow["archs"].get("kofn", {}).get("network"):
            name += f" (running its own {flow['archs'][arch].get('trained_method')} network)"
        per_image = [
            _times(r["cycles_vs_kofn"], "more cycles", "fewer cycles"),
            _times(r["energy_vs_kofn"], "more energy", "less energy"),
        ]
        if pd.notna(r.get("time_vs_kofn", np.nan)):  # at each design's own Fmax (dpp flow --timing)
            per_image[0] += f" ({_times(r['time_vs_kofn'], 'more time', 'less time')} at each one's own clock)"
        more = []
        if pd.notna(r.get("storage_vs_kofn")):
            more.append(f"stores its weights in {_times(r['storage_vs_kofn'], 'more bits', 'fewer bits')}")
        if pd.notna(r.get("area_vs_kofn", np.nan)):
            more.append(f"takes {_times(r['area_vs_kofn'], 'more LUTs', 'fewer LUTs')}")
        tail = "".join(f", {c}" for c in more[:-1]) + (f", and {more[-1]}" if more else "")
        out.append(f"Against {name}, k-of-n needs {per_image[0]} and {per_image[1]} per image{tail}.")
    acc = "; ".join(f"{arch_name(a)} {percent(v)}" for a, v in zip(head["arch"], head["rtl_accuracy"]))
    sentence = f"Accuracy of the RTL on the {flow['images']} test images: {acc}"
    if "test_accuracy" in head.columns:
        nets = dict.fromkeys(
            f"{flow['archs'][a].get('trained_method')} {percent(v)}"
            for a, v in zip(head["arch"], head["test_accuracy"])
            if pd.notna(v)
        )
        sentence += f" (test-set accuracy of the trained networks: {', '.join(nets)})"
    out.append(sentence + ".")
    ok = all(s.get("bit_exact") and s.get("counters_match") for s in flow["archs"].values())
    out.append(
        "Every layer on every array was bit-exact against the integer reference model and every counter "
        "equal to the analytic model."
        if ok
        else "NOT every layer was bit-exact / equal to the analytic model: see the flow section below."
    )
    return [" ".join(out[:-2]), " ".join(out[-2:])] if len(out) > 2 else out


def section_answer(data: rd.ResultsData) -> Section:
    s = Section("The answer: k-of-n against dense and CSR", "answer", lead=True)
    f = data.flow
    head = rd.headline_table(f, data.runs)
    if f is not None and head is not None and "cycles_vs_kofn" in head.columns:  # (a headline implies a flow)
        cfg = f.get("config", {})
        s.tables.append(
            (
                "answer",
                f"{cfg.get('model')} at k/n = {cfg.get('k')}/{cfg.get('n')}, {cfg.get('pes')} PEs "
                f"x k multipliers on every array: whole network per image, measured in RTL on "
                f"{f['images']} test images (ratios: this array / k-of-n)",
                head,
            )
        )
        s.text += flow_conclusion(head, f)
        s.provenance = [
            "Data: `flow.json` (archs); storage = stored weight bits of the network in each array's "
            "format; area = ice40 LUTs of the largest build, when the flow ran with `--area`."
        ]
        return s
    ans = rd.sweep_answer(data.sweep)
    if ans is None:
        s.no_data = (
            "no data yet: `flow.json` (`dpp flow`) or a sweep table with k-of-n and baseline cycles "
            "(`dpp sweep`) fills it."
        )
        return s
    table, what = ans
    s.tables.append(
        (
            "answer",
            f"k-of-n against each baseline over the swept {what} (ratios: baseline / "
            f"k-of-n, same k, n, PEs and bit widths; above 1× k-of-n is better)",
            table,
        )
    )
    speed = ", ".join(
        f"{arch_name(r.baseline)} {ratio(r.speedup_min)}–{ratio(r.speedup_max)} (median {ratio(r.speedup_median)})"
        for r in table.itertuples()
    )
    s.text.append(
        f"Over {int(table['designs'].max())} {what}, k-of-n's speed-up (baseline cycles / k-of-n "
        f"cycles) against {speed}."
    )
    if "energy_saving_median" in table.columns:
        saving = ", ".join(
            f"{arch_name(r.baseline)} {ratio(r.energy_saving_min)}–{ratio(r.energy_saving_max)} "
            f"(median {ratio(r.energy_saving_median)})"
            for r in table.itertuples()
            if pd.notna(r.energy_saving_median)
        )
        s.text.append(f"Its energy saving per inference against {saving}. A ratio below 1× means k-of-n needs more.")
    s.provenance = _sweep_provenance(data)
    return s


# ------------------------------------------------------------------------------------------- sections
def section_flow(data: rd.ResultsData) -> Section:
    s = Section("Trained network through the RTL (dpp flow)", "flow")
    f = data.flow
    summary, layers = rd.flow_summary(f), rd.flow_layers(f)
    if f is None or summary is None or layers is None:  # (a summary implies a flow)
        s.no_data = "no data yet: `flow.json` (written by `dpp flow`) fills it."
        return s
    cfg = f.get("config", {})
    s.text.append(
        f"{cfg.get('model')} trained with {cfg.get('method')} at k/n = {cfg.get('k')}/{cfg.get('n')} "
        f"({cfg.get('granularity')} granularity, {cfg.get('bits')}-bit weights), {cfg.get('pes')} PEs x "
        f"k multipliers in every array. {f['images']} real test images were run through the whole "
        f"network layer by layer in RTL (Verilator), each layer fed the previous layer's RTL output."
    )
    agree = f.get("export_agreement", {})
    s.text.append(
        f"Export: the integer network predicts the same class as the fake-quantised torch model on "
        f"{fmt(agree.get('identical'))} of {fmt(agree.get('images'))} test images. Accuracy on the "
        f"simulated images: torch {percent(f.get('torch_accuracy'))}, integer reference "
        f"{percent(f.get('reference_accuracy'))}."
    )
    if f.get("csr_network"):
        ca = f.get("csr_export_agreement", {})
        s.text.append(
            f"The CSR baseline runs its own network, pruned unstructured at the same density and trained "
            f"with the same budget (`{_rel(f['csr_network'], data.root)}`; export agreement "
            f"{fmt(ca.get('identical'))} of {fmt(ca.get('images'))}); the k-of-n and dense arrays run the "
            f"DPP network."
        )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    names = [arch_name(a) for a in summary["arch"]]
    colors = [f"C{i}" for i in range(len(summary))]
    for ax, col, unit, title in (
        (axes[0], "cycles_per_image", "cycles", "cycles per image"),
        (axes[1], "energy_per_image_pj", "pJ", "energy per image"),
    ):
        factor, label = scale_for(summary[col], unit)
        bars = ax.bar(names, summary[col] * factor, color=colors)
        ax.bar_label(
            bars, labels=[si(v, "cycles") if unit == "cycles" else energy(v) for v in summary[col]], fontsize=8
        )
        ax.set_ylabel(f"{title} ({label})")
        ax.margins(y=0.15)
        ax.grid(alpha=0.3, axis="y")
    s.figures.append(
        Figure(
            "flow_network",
            _png(fig),
            "Whole network per image, measured in RTL: cycles "
            "(counter `cycles`) and energy (counters priced by "
            "analysis/energy_constants.py).",
        )
    )
    s.tables.append(
        (
            "flow_summary",
            "Whole network per array, per image (RTL counters; totals over all images in flow.json)",
            summary,
        )
    )
    s.tables.append(
        (
            "flow_layers",
            "Every layer on every array, per image (RTL counters; model cycles from "
            "sim/model.py; every counter in flow_layers.csv)",
            layers,
        )
    )
    _flow_timing(s, f)
    if f.get("area"):
        s.tables.append(
            (
                "flow_area",
                "Area of each build (Yosys synth_ice40)",
                pd.DataFrame(
                    [
                        {"design": k, **{c: v for c, v in a.items() if not isinstance(v, (dict, str))}}
                        for k, a in f["area"].items()
                    ]
                ),
            )
        )
    else:
        s.text.append("Area: not measured (`dpp flow --area` synthesises every build with Yosys).")
    s.provenance = (
        [
            f"Data: `flow.json`, `flow_layers.csv`; run `{_rel(f.get('run'), data.root)}`, network "
            f"`{_rel(f.get('network'), data.root)}`."
        ]
        + [f"Produced by: `{c['command']}`" for c in data.commands_of("flow")]
        + [f"Parameters: {', '.join(f'{k}={v}' for k, v in cfg.items())}"]
    )
    return s


def _flow_timing(s: Section, flow: dict[str, Any]) -> None:
    """The flow section's clock: each build's Fmax and critical path, and time per image vs density per array
    (``dpp flow --timing``), or one line saying how to get them."""
    builds, points = rd.flow_timing(flow), rd.flow_time_vs_density(flow)
    if builds is None or points is None:
        s.text.append(
            "Clock frequency: not measured (`dpp flow --timing` places and routes every build on ECP5 "
            "and gives the time per image at each design's own Fmax)."
        )
        return
    part = next((p for p in builds["part"] if isinstance(p, str)), "ECP5")
    s.text.append(
        f"Time per image: each layer's cycles at the Fmax of the build it ran on, after place-and-route "
        f"on {part} (nextpnr, the array without its performance counters); energy per image does not "
        f"depend on the clock (the energy model has no leakage term)."
    )
    missing = [
        f"{arch_name(a)}: {m}" for a, m in ((a, st.get("timing_message")) for a, st in flow["archs"].items()) if m
    ]
    if missing:
        s.text.append("No time per image for " + "; ".join(missing) + ".")
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for i, r in enumerate(points.itertuples()):
        if r.time_per_image_s is not None and pd.notna(r.time_per_image_s):
            ax.scatter([r.density], [r.time_per_image_s * 1e6], color=f"C{i}", s=40, label=arch_name(r.arch))
            ax.annotate(
                f"{si(r.time_per_image_s, 's')} @ {fmt(r.fmax_mhz)} MHz",
                (r.density, r.time_per_image_s * 1e6),
                textcoords="offset points",
                xytext=(6, 4),
                fontsize=8,
            )
    ax.set_xscale("log")
    ax.set_xlabel("density of the weights it multiplies (MACs / dense MACs)")
    ax.set_ylabel("time per image (µs)")
    ax.grid(alpha=0.3)
    if ax.collections:
        ax.legend(fontsize=8)
    s.figures.append(
        Figure(
            "flow_time_vs_density",
            _png(fig),
            "Time per image vs density per array, measured: "
            "RTL cycles at each build's own Fmax (ECP5 place-and-route). Density = multiplies done / "
            "multiplies of the dense network (dense: 1).",
        )
    )
    s.tables.append(
        (
            "flow_timing",
            "Place-and-route of each build (nextpnr; Fmax, utilisation, where the critical path runs)",
            builds,
        )
    )


def section_accuracy(data: rd.ResultsData) -> Section:
    s = Section("Accuracy vs sparsity", "accuracy")
    df = rd.accuracy_vs_sparsity(data.runs)
    if df is None:
        s.no_data = "no data yet: trained runs (`runs/*/result.json`, from `dpp train` or `dpp flow`) fill it."
        return s
    labels = [
        f"{r.method} / {r.granularity}, k/n {r.k}/{r.n}" if r.method != "dense" else "dense" for r in df.itertuples()
    ]
    if df["sparsity"].nunique() < 2:  # one design point: compare the methods side by side
        fig, ax = plt.subplots(figsize=(7, 0.6 + 0.45 * len(df)))
        bars = ax.barh(labels, df["accuracy"] * 100, color=[f"C{i}" for i in range(len(df))])
        ax.bar_label(bars, labels=[percent(v) for v in df["accuracy"]], fontsize=8, padding=3)
        ax.set_xlabel("test-set accuracy (%)")
        ax.set_xlim(0, 105)
        ax.invert_yaxis()
        caption = (
            f"Test-set accuracy of each trained run; all at sparsity {fmt(df['sparsity'].iloc[0])} "
            f"(1 - k/n): more runs at other k/n (`dpp compare` or `dpp train`) make this a curve."
        )
    else:
        fig, ax = plt.subplots(figsize=(7, 4))
        for (method, gran), g in df.groupby(["method", "granularity"]):
            g = g.sort_values("sparsity")
            ax.plot(g["sparsity"], g["accuracy"] * 100, "o-", label=f"{method} / {gran}")
        ticks: dict[float, set[str]] = {}  # one tick per design sparsity, named by its k/n (dense: no pruning)
        for r in df.itertuples():
            ticks.setdefault(r.sparsity, set()).add("dense" if r.sparsity == 0 else f"k/n {r.k}/{r.n}")
        ax.set_xticks(list(ticks), [f"{fmt(x)}\n{' = '.join(sorted(v))}" for x, v in ticks.items()], fontsize=8)
        ax.set_xlabel("design sparsity 1 - k/n (fraction of weights pruned)")
        ax.set_ylabel("test-set accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        caption = (
            "Test-set accuracy against the design's sparsity (1 - k/n), one line per training method and "
            "mask granularity; the measured sparsity of each run is in the table."
        )
    s.figures.append(Figure("accuracy_vs_sparsity", _png(fig), caption))
    s.tables.append(("accuracy_vs_sparsity", "Trained runs", df))
    s.provenance = _runs_provenance(data, list(df["run"]))
    return s


def _whole_network(nets: pd.DataFrame | None) -> pd.DataFrame | None:
    """``nets`` (whole-network designs) when they sum more than one layer, else None (plot the layer points)."""
    return nets if nets is not None and nets["layers"].max() > 1 else None


def _categorical(ax: plt.Axes, table: pd.DataFrame, labels: list[str], columns: list[tuple[str, str]]) -> None:
    """One x position per design, one marker per series (column, legend label)."""
    x = np.arange(len(table))
    for (col, lab), marker in zip(columns, itertools.cycle(MARKERS)):
        if col in table.columns and table[col].notna().any():
            ax.scatter(x, table[col], marker=marker, label=lab, zorder=3)
    ax.set_xticks(x, labels, rotation=60, ha="right", fontsize=7)
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.grid(alpha=0.3)


def section_speedup(data: rd.ResultsData) -> Section:
    s = Section("Cycles and speed-up vs dense and CSR", "speedup")
    df = rd.speedup_table(data.sweep)
    if df is None:
        s.no_data = (
            "no data yet: a sweep table with `cycles` for k-of-n and the baselines (`dpp sweep`, or the "
            "model table `dpp flow` writes) fills it."
        )
        return s
    nets = _whole_network(rd.network_speedups(rd.network_table(data.sweep)))
    whole = nets is not None
    plot = nets if nets is not None else df
    baselines = [
        a
        for a in rd.baseline_archs(df.columns.str.removeprefix("speedup_vs_"))
        if f"speedup_vs_{a}" in plot.columns and plot[f"speedup_vs_{a}"].notna().any()
    ]
    absolute = len(baselines) <= 2  # more baselines: their own cycles / energy only in tables/*.csv
    view = plot.head(MAX_CATEGORIES)
    labels = [design_label(r, layer=not whole) for r in view.itertuples()]
    panels = [("speedup_vs_", "speed-up (baseline cycles / k-of-n cycles, ×)")]
    if any(f"energy_saving_vs_{a}" in view.columns for a in baselines):
        panels.append(("energy_saving_vs_", "energy saving (baseline energy / k-of-n energy, ×)"))
    fig, axes = plt.subplots(
        1, len(panels), figsize=(min(13, 4 + 0.35 * len(view)) if len(panels) == 1 else 12.5, 4.4), squeeze=False
    )
    for ax, (prefix, ylabel) in zip(axes[0], panels):
        _categorical(ax, view, labels, [(f"{prefix}{a}", f"vs {arch_name(a)}") for a in baselines])
        ax.set_ylabel(ylabel)
        ax.set_xlabel("k-of-n design" + (" (whole network)" if whole else " (layer point)"))
        ax.legend(fontsize=8)
    more = f" First {MAX_CATEGORIES} of {len(plot)} designs; all in the tables." if len(plot) > MAX_CATEGORIES else ""
    s.figures.append(
        Figure(
            "speedup",
            _png(fig),
            "k-of-n against each baseline with the same k, n, PEs and bit "
            "widths" + (", whole network per inference" if whole else ", per layer") + "; above 1× k-of-n is faster / "
            "cheaper." + more,
        )
    )
    ratio_cols = [c for c in df.columns if c.startswith(("speedup_vs_", "energy_saving_vs_"))]
    if nets is not None:
        keys = [
            c
            for c in ["granularity", "k", "n", "pes", "weight_bits", "act_bits", "out_bits", "batch", "layers"]
            if c in nets.columns
        ]
        rest = (
            ["cycles_per_inference"]
            + [f"cycles_{a}" for a in baselines]
            + ["energy_per_inference_pj"]
            + [f"energy_pj_{a}" for a in baselines]
        )
        cols = keys + [c for c in ratio_cols if c in nets.columns] + [c for c in rest if c in nets.columns]
        s.tables.append(
            (
                "network_speedup",
                "Whole network (all swept layers), per inference: k-of-n against each baseline",
                nets[cols],
            )
        )
        if not absolute:
            s.page_columns["network_speedup"] = [c for c in cols if not c.startswith(("cycles_", "energy_pj_"))]
    cyc = rd.cycles_column(data.sweep)
    keys = [
        c
        for c in ["layer", "rows", "cols", "k", "n", "block", "pes", "weight_bits", "act_bits", "out_bits", "batch"]
        if c in df.columns
    ]
    rest = [c for c in df.columns if c not in keys and c not in ratio_cols]
    s.tables.append(
        (
            "speedup",
            "Per layer: cycles "
            + ("per inference" if cyc == "cycles_per_inference" else "per layer run (batch vectors)")
            + ", energy per inference "
            "and the ratios (baseline / k-of-n)",
            df[keys + ratio_cols + rest],
        )
    )
    if not absolute:
        s.page_columns["speedup"] = keys + ratio_cols + ["cycles_kofn", "energy_pj_kofn"]
    s.provenance = _sweep_provenance(data)
    return s


def _storage_designs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (arch, k, n, block): bits per kept weight over all layers (total stored / total kept when the
    table has ``kept_weights``, else the mean) and its bound, and the total stored bits."""
    keys = [k for k in ["arch", "k", "n", "block", "weight_bits"] if k in df.columns]
    recs = []
    for key, g in df.groupby(keys, sort=False):
        rec = dict(zip(keys, key))
        if "kept_weights" in g.columns and "storage_total_bits" in g.columns and g["kept_weights"].sum() > 0:
            kept = g["kept_weights"]
            rec["bits_per_kept_weight"] = g["storage_total_bits"].sum() / kept.sum()
            rec["bound_bits_per_kept_weight"] = (g["bound_bits_per_kept_weight"] * kept).sum() / kept.sum()
        else:
            rec["bits_per_kept_weight"] = g["bits_per_kept_weight"].mean()
            rec["bound_bits_per_kept_weight"] = g["bound_bits_per_kept_weight"].mean()
        if "storage_total_bits" in g.columns:
            rec["storage_total_bits"] = g["storage_total_bits"].sum()
        recs.append(rec)
    return pd.DataFrame(recs)


def section_storage(data: rd.ResultsData) -> Section:
    s = Section("Memory bits per weight vs the information bound", "storage")
    df = rd.storage_table(data.sweep)
    if df is None:
        s.no_data = "no data yet: a sweep table with storage columns (`dpp sweep`, or `dpp flow`) fills it."
        return s
    df = df[~df["arch"].astype(str).str.startswith("csr_banked")]  # banked CSR stores what CSR stores
    df = df.assign(_rank=df["arch"].map(rd.arch_rank)).sort_values("_rank", kind="stable").drop(columns="_rank")
    des = _storage_designs(df)
    des = des[des["arch"] != "dense"].reset_index(drop=True) if (des["arch"] != "dense").any() else des
    labels = [
        f"{arch_name(r.arch)} k{int(r.k)}/n{int(r.n)}" + (f" b{int(r.block)}" if r.block != 1 else "")
        for r in des.itertuples()
    ]
    wide = "storage_total_bits" in des.columns
    fig, axes = plt.subplots(1, 2 if wide else 1, figsize=(12, 4.2) if wide else (7, 4.2), squeeze=False)
    ax = axes[0][0]
    x = np.arange(len(des))
    ax.bar(x - 0.2, des["bits_per_kept_weight"], 0.4, label="stored (values + indices + pointers)")
    ax.bar(x + 0.2, des["bound_bits_per_kept_weight"], 0.4, label="information bound (k-of-n: log2 C(n,k))")
    ax.set_xticks(x, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("bits per kept weight (bit)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    if wide:
        tot = _storage_designs(df)
        factor, unit = scale_for(tot["storage_total_bits"], "bit")
        tl = [
            f"{arch_name(r.arch)}"
            + (f" k{int(r.k)}/n{int(r.n)}" if r.arch != "dense" else "")
            + (f" b{int(r.block)}" if r.block != 1 else "")
            for r in tot.itertuples()
        ]
        tot_view = tot.assign(label=tl).drop_duplicates("label")
        bars = axes[0][1].bar(
            tot_view["label"],
            tot_view["storage_total_bits"] * factor,
            color=[f"C{list(ARCH_NAMES).index(a) if a in ARCH_NAMES else 3}" for a in tot_view["arch"]],
        )
        axes[0][1].bar_label(bars, labels=[si(v, "bit") for v in tot_view["storage_total_bits"]], fontsize=7)
        axes[0][1].set_ylabel(f"stored weight bits, all swept layers ({unit})")
        axes[0][1].tick_params(axis="x", rotation=45, labelsize=8)
        axes[0][1].margins(y=0.12)
        axes[0][1].grid(alpha=0.3, axis="y")
    s.figures.append(
        Figure(
            "storage",
            _png(fig),
            "Left: stored bits per kept weight over all swept layers and, "
            "beside it, the information bound (values + log2 C(n, k) per "
            "group for k-of-n). "
            + ("Right: the whole weight memory, dense included." if wide else "")
            + " A banked CSR design stores its weights as CSR does.",
        )
    )
    s.tables.append(("storage", "Storage per format and layer", df.drop(columns=["kept_weights"], errors="ignore")))
    s.provenance = _sweep_provenance(data)
    return s


def section_energy(data: rd.ResultsData) -> Section:
    s = Section("Area and energy per inference", "energy")
    df = rd.energy_table(data.sweep)
    if df is None:
        s.no_data = (
            "no data yet: a sweep table with energy columns (`dpp sweep` with `sim.model`, or `dpp flow`) fills it."
        )
        return s
    nets = _whole_network(rd.network_table(data.sweep))
    whole = nets is not None
    table = nets if nets is not None else df
    comps = [
        c
        for c in table.columns
        if c.endswith("_pj") and c != "energy_per_inference_pj" and not c.startswith("energy_pj_")
    ]
    view = (
        table.assign(_rank=table["arch"].map(rd.arch_rank))
        .sort_values(["_rank", "energy_per_inference_pj"])
        .head(MAX_CATEGORIES)
    )
    labels = [f"{arch_name(r.arch)} {design_label(r, layer=not whole)}" for r in view.itertuples()]
    factor, unit = scale_for(view["energy_per_inference_pj"], "pJ")
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.26 * len(view)))
    left = np.zeros(len(view))
    for c in comps:
        ax.barh(range(len(view)), view[c] * factor, left=left, label=c.removesuffix("_pj").replace("_", " "))
        left += view[c].to_numpy() * factor
    ax.set_yticks(range(len(view)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"energy per inference ({unit})" + (", whole network" if whole else ", per layer"))
    ax.legend(fontsize=7, ncol=len(comps), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    ax.grid(alpha=0.3, axis="x")
    s.figures.append(
        Figure(
            "energy",
            _png(fig),
            "Energy per inference by component (model counters priced "
            "by analysis/energy_constants.py)"
            + (f"; first {MAX_CATEGORIES} of {len(table)} designs." if len(table) > MAX_CATEGORIES else "."),
        )
    )
    area = rd.area_column(table)
    if area:
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for (arch, g), marker in zip(table.groupby("arch"), itertools.cycle(MARKERS)):
            ax.scatter(g[area], g["energy_per_inference_pj"] * factor, marker=marker, label=arch_name(arch))
        label_points(
            ax,
            table[area],
            table["energy_per_inference_pj"] * factor,
            [design_label(r, layer=not whole) for r in table.itertuples()],
        )
        ax.set_xlabel(f"area ({AREA_UNITS.get(area, area)})")
        ax.set_ylabel(f"energy per inference ({unit})")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        s.figures.append(
            Figure(
                "area_energy", _png(fig), f"Area ({AREA_UNITS.get(area, area)}, Yosys) against energy per inference."
            )
        )
    else:
        s.text.append("Area: not measured (a sweep with `area: {enabled: true}`, or `dpp flow --area`, adds it).")
    if nets is not None:
        keys = [
            c
            for c in ["arch", "granularity", "k", "n", "pes", "weight_bits", "act_bits", "out_bits", "batch", "layers"]
            if c in nets.columns
        ]
        rest = ["energy_per_inference_pj", "cycles_per_inference", *comps, "storage_total_bits"] + (
            [area] if area else []
        )
        s.tables.append(
            (
                "network",
                "Whole network (all swept layers), per inference: energy by component, cycles, stored weight bits",
                nets[keys + [c for c in rest if c in nets.columns]],
            )
        )
    s.tables.append(
        (
            "energy",
            "Per layer, per inference: energy (total and by component), cycles"
            + (" and area" if rd.area_column(df) else ""),
            df,
        )
    )
    s.provenance = _sweep_provenance(data)
    return s


def pareto_inputs(data: rd.ResultsData) -> tuple[pd.DataFrame | None, str]:
    """Points with an accuracy: whole-network designs joined with the trained runs if possible, else the
    sweep rows that carry an accuracy (joined by the sweep config's ``runs:``)."""
    nets = rd.join_runs(rd.network_table(data.sweep), data.runs)
    if nets is not None:
        return nets, "whole-network designs (per-inference energy and cycles summed over the swept layers)"
    if data.sweep is not None and rd.has_columns(data.sweep, ["accuracy"]):
        return data.sweep.dropna(subset=["accuracy"]), "sweep rows (one layer each)"
    return None, ""


def section_pareto(data: rd.ResultsData) -> Section:
    s = Section("Pareto fronts: accuracy vs energy, cycles, area", "pareto")
    pts, what = pareto_inputs(data)
    if pts is None:
        s.no_data = (
            "no data yet: trained runs in `runs/` whose method, k, n and granularity match swept designs "
            "(with the model's energy and cycle columns) fill it."
        )
        return s
    s.text.append(f"Points: {what}; accuracy is the trained run's test-set accuracy.")
    cyc = "cycles_per_inference" if "cycles_per_inference" in pts.columns else "cycles"
    objectives = [("energy_per_inference_pj", "energy per inference", "pJ"), (cyc, cyc.replace("_", " "), "cycles")]
    area = rd.area_column(pts)
    if area:
        objectives.append((area, f"area ({AREA_UNITS.get(area, area)})", "count"))
    else:
        s.text.append("Accuracy vs area: not measured (a sweep with `area: {enabled: true}` adds it).")
    figs = []
    for col, label, unit in objectives:
        if not rd.has_columns(pts, ["accuracy", col]):
            s.text.append(f"Accuracy vs {label}: no `{col}` column with an accuracy.")
            continue
        p = pts.dropna(subset=["accuracy", col])
        front = pareto_front(p, {col: "min", "accuracy": "max"})
        factor, scaled = scale_for(p[col], unit) if unit != "count" else (1.0, "count")
        fig, ax = plt.subplots(figsize=(6.2, 4))
        groups = p.groupby(["arch", "method"] if "method" in p.columns else ["arch"])
        for (key, g), marker in zip(groups, itertools.cycle(MARKERS)):
            key = key if isinstance(key, tuple) else (key,)
            ax.scatter(
                g[col] * factor,
                g["accuracy"] * 100,
                alpha=0.8,
                marker=marker,
                label=" / ".join([arch_name(key[0]), *map(str, key[1:])]),
            )
        label_points(
            ax,
            p[col] * factor,
            p["accuracy"] * 100,
            [design_label(r, layer="layer" in p.columns and "layers" not in p.columns) for r in p.itertuples()],
        )
        ax.plot(front[col] * factor, front["accuracy"] * 100, "k--", lw=1, label="Pareto front")
        ax.set_xlabel(label if unit == "count" else f"{label} ({scaled})")
        ax.set_ylabel("test-set accuracy (%)")
        ax.margins(x=0.2, y=0.2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        figs.append(Figure(f"pareto_{col}", _png(fig), f"Accuracy against {label}; dashed: the Pareto front."))
        keep = [
            c
            for c in ["arch", "method", "granularity", "layer", "k", "n", "block", "pes", "accuracy", col]
            if c in front.columns
        ]
        s.tables.append((f"pareto_{col}", f"Pareto front, accuracy vs {label}", front[keep]))
    s.figures += figs
    s.provenance = _sweep_provenance(data) + (
        _runs_provenance(data, list(data.runs["run"])) if data.runs is not None else []
    )
    return s


def section_masks(data: rd.ResultsData) -> Section:
    s = Section("Mask confidence and diversity", "masks")
    df = rd.mask_curves(data.metrics)
    if df is None:
        s.no_data = "no data yet: DPP runs' `runs/*/metrics.csv` (columns `conf_layer<i>`, `div_layer<i>`) fill it."
        return s
    short = []
    for run, g in df.groupby("run"):
        metrics = [
            (m, name)
            for m, name in (("confidence", "mask confidence"), ("diversity", "pruning diversity"))
            if g.dropna(subset=[m])["epoch"].nunique() >= 2
        ]
        if not metrics:  # one epoch of values is no curve: the table below has it
            short.append(run)
            continue
        fig, axes = plt.subplots(1, len(metrics), figsize=(4.5 * len(metrics), 3.2), squeeze=False)
        for ax, (m, name) in zip(axes[0], metrics):
            for layer, gl in g.dropna(subset=[m]).groupby("layer"):
                ax.plot(gl["epoch"], gl[m], "o-", ms=3, label=f"layer {layer}")
            ax.set_xlabel("epoch (count)")
            ax.set_ylabel(f"{name} (fraction, 0-1)")
            ax.set_ylim(-0.02, 1.02)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=7)
        s.figures.append(
            Figure(
                f"masks_{run}",
                _png(fig),
                f"Run `{run}`: per-layer " + " and ".join(name for _, name in metrics) + " over the epochs.",
            )
        )
    if short:
        s.text.append(
            f"No curve for {', '.join(f'`{r}`' for r in short)}: fewer than two epochs with mask "
            f"metrics (their last values are in the table)."
        )
    last = (
        df.dropna(subset=["confidence", "diversity"], how="all")
        .sort_values("epoch")
        .groupby(["run", "layer"])
        .tail(1)
        .reset_index(drop=True)
    )
    s.tables.append(("mask_metrics_final", "Last epoch's mask confidence and diversity", last))
    s.provenance = _runs_provenance(data, sorted(df["run"].unique()))
    return s


def section_commands(data: rd.ResultsData, report_command: str) -> Section:
    s = Section("Commands and parameters", "commands")
    s.text.append(f"This report: `{report_command}`.")
    if data.commands:
        rows = [{"kind": c.get("kind"), "utc": c.get("utc"), "command": c.get("command")} for c in data.commands]
        s.tables.append(
            (
                "commands",
                "Commands recorded in commands.json (oldest first; working folders in the file)",
                pd.DataFrame(rows),
            )
        )
        for i, c in enumerate(data.commands):
            params = c.get("params") or {}
            if set(params) <= {"argv"}:  # recorded by analysis.commands_log: the command above says it all
                continue
            flat = {
                k: _rel(v if not isinstance(v, (dict, list)) else str(v), data.root, c.get("cwd"))
                for k, v in params.items()
            }
            s.tables.append(
                (
                    f"command{i}_params",
                    f"Parameters of command {i} ({c.get('kind')}; paths relative "
                    f"to the results folder, else to the command's working folder "
                    f"`{c.get('cwd', '?')}`)",
                    pd.DataFrame([{"parameter": k, "value": v} for k, v in flat.items()]),
                )
            )
    else:
        s.text.append("No commands.json in the results folder.")
    if data.run_configs:
        s.tables.append(
            (
                "run_configs",
                "Training configuration of every run (runs/*/config.json)",
                pd.DataFrame(
                    [
                        {"run": r, **{k: (v if not isinstance(v, (list, dict)) else str(v)) for k, v in c.items()}}
                        for r, c in data.run_configs.items()
                    ]
                ),
            )
        )
    return s


SECTIONS: list[Callable[[rd.ResultsData], Section]] = [
    section_answer,
    section_flow,
    section_accuracy,
    section_speedup,
    section_storage,
    section_energy,
    section_pareto,
    section_masks,
]


@dataclass
class ReportOutcome:
    html: Path
    markdown: Path
    sections: list[Section]


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


def write_report(out: Path, title: str, sections: list[Section], header: list[str]) -> ReportOutcome:
    """Write the sections' figures (``figures/*.png``) and tables (``tables/*.csv``), then ``report.html`` and
    ``report.md``, every file atomically; figure names are made file-safe first (the pages link to them)."""
    for s in sections:
        for f in s.figures:
            f.name = _safe(f.name)
            atomic_write_bytes(out / "figures" / f"{f.name}.png", f.png)
        for name, _, df in s.tables:
            atomic_write_text(out / "tables" / f"{_safe(name)}.csv", df.to_csv(index=False))
    html_path, md_path = out / "report.html", out / "report.md"
    atomic_write_text(html_path, render_html(title, sections, header))
    atomic_write_text(md_path, render_markdown(title, sections, header))
    return ReportOutcome(html_path, md_path, sections)


def build_report(
    results: str | os.PathLike,
    out: str | os.PathLike,
    *,
    report_command: str = "dpp report",
    title: str = "DPP hardware co-design report",
) -> ReportOutcome:
    """Read ``results``, build every section (missing inputs: left out, with what would fill them), write
    HTML, Markdown, figures and tables."""
    data = rd.load_results(results)
    root = Path(results)
    out = Path(out)
    sections = []
    for make in SECTIONS:
        try:
            sections.append(make(data))
        except Exception as exc:  # noqa: BLE001 - one bad input must not sink the whole report
            name = make.__name__.removeprefix("section_")
            sections.append(Section(name, name, no_data=f"no data: this section failed on its inputs: {exc}"))
    sections.append(section_commands(data, report_command))
    header = [
        f"Results folder `{root.resolve()}` (paths below are relative to it); generated "
        f"{datetime.now(UTC).isoformat(timespec='seconds')} by `{report_command}`."
    ]
    if data.problems:
        header.append("Problems reading the inputs: " + "; ".join(data.problems))
    for s in sections:
        s.tables = [(name, caption, relative_paths(df, root)) for name, caption, df in s.tables]
    return write_report(out, title, sections, header)
