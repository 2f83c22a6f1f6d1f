"""``dpp report STUDY/ --out REPORT/`` for a comparison study folder (``dpp compare --preset``).

The page answers the paper's three claims from the finished runs (:mod:`analysis.compare_study`; every number
is a test-split accuracy after the last epoch, mean ± sample std over the seeds that finished):

1. accuracy vs sparsity per granularity (full-precision runs), and whether DPP by the paper's recipe reaches
   magnitude k-of-n;
2. accuracy vs weight bits per method, and at which bit widths joint DPP beats prune-then-quantise
   (``magnitude_qat``);
3. each layer's mask confidence and pruning diversity (:mod:`dpp.metrics`) over the epochs, mean over seeds,
   for DPP against the baselines' masks (a fixed mask has no distribution, so no confidence).

Output as :func:`analysis.report.build_report`: ``report.html``, ``report.md``, ``figures/``, ``tables/``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.commands_log import read_commands  # noqa: E402
from analysis.compare_study import load_rows, read_study, runs_table, summary_table  # noqa: E402
from analysis.report import ReportOutcome, _png, write_report  # noqa: E402
from analysis.report_render import Figure, Section  # noqa: E402

METHOD_ORDER = ("dpp_paper", "dpp_warmup", "magnitude", "magnitude_qat", "srste", "random")
METHOD_LABELS = {
    "dpp_paper": "DPP (paper recipe)",
    "dpp_warmup": "DPP (warm-up recipe)",
    "magnitude": "magnitude k-of-n",
    "magnitude_qat": "magnitude, then QAT",
    "srste": "SR-STE",
    "random": "random k-of-n",
}
BITS_ORDER = ("1", "2", "4", "8", "float")
DPP_METHODS = ("dpp_paper", "dpp_warmup")


def _model_label(model: str, data: str) -> str:
    return model if data in ("mnist5k", "digits") else f"{model} (Fashion-MNIST)"


def _ordered(methods: Any) -> list[str]:
    present = set(methods)
    return [m for m in METHOD_ORDER if m in present] + sorted(present - set(METHOD_ORDER))


def pm(mean: float, std: float, seeds: int = 2) -> str:
    """``91.57 ± 0.20 %`` from fractions; ``92.00 %`` for one seed, which has no spread to show."""
    return f"{100 * mean:.2f} %" if seeds < 2 else f"{100 * mean:.2f} ± {100 * std:.2f} %"


def _display(summary: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for r in summary.itertuples(index=False):
        rows.append(
            {
                "model": _model_label(r.model, r.data),
                "granularity": r.granularity,
                "k/n": f"{r.k}/{r.n}",
                "density": round(float(r.density), 4),
                "weight bits": r.bits_label,
                "method": METHOD_LABELS.get(r.method, r.method),
                "seeds": int(r.seeds),
                "test accuracy": pm(r.test_mean, r.test_std, int(r.seeds)),
                "validation accuracy": pm(r.val_mean, r.val_std, int(r.seeds)),
            }
        )
    return pd.DataFrame(rows)


def _groups(summary: pd.DataFrame) -> list[tuple[tuple[str, str, str], pd.DataFrame]]:
    return [(key, g) for key, g in summary.groupby(["model", "data", "granularity"], sort=False)]


# --------------------------------------------------------------------------------------- claim 1
def verdict_vs(summary: pd.DataFrame, method: str, baseline: str) -> list[dict[str, Any]]:
    """Per (model, data, granularity, k/n, bits) where both ran: the two means and stds and the difference."""
    keys = ["model", "data", "granularity", "k", "n", "bits_label"]
    a = summary[summary["method"] == method].set_index(keys)
    b = summary[summary["method"] == baseline].set_index(keys)
    out = []
    for key in a.index.intersection(b.index):
        ra, rb = a.loc[key], b.loc[key]
        out.append(
            dict(
                zip(keys, key, strict=True),
                mean=float(ra["test_mean"]),
                std=float(ra["test_std"]),
                base_mean=float(rb["test_mean"]),
                base_std=float(rb["test_std"]),
                diff=float(ra["test_mean"] - rb["test_mean"]),
                seeds=int(min(ra["seeds"], rb["seeds"])),
                test_images=_images(ra, rb),
            )
        )
    return out


def _images(*rows: pd.Series) -> int | None:
    """The size of the test split the summary rows share (None when unknown or not the same split)."""
    sizes = {None if pd.isna(r.get("test_images")) else int(r.get("test_images")) for r in rows}
    return sizes.pop() if len(sizes) == 1 else None


def _diff_sentence(v: dict[str, Any], name: str, base: str) -> str:
    where = f"{_model_label(v['model'], v['data'])} {v['granularity']} {v['k']}/{v['n']}"
    if v["bits_label"] != "float":
        where += f" {v['bits_label']}-bit"
    images = v.get("test_images")
    if v["seeds"] < 2:
        spread = "one seed: no spread"
    elif images and abs(v["diff"]) < 1 / images:  # a gap the test split cannot resolve, whatever the stds
        spread = f"less than one of the {images:,} test images"
    elif abs(v["diff"]) > v["std"] + v["base_std"]:
        spread = "more than the two stds together"
    else:
        spread = "within the two stds together"
    gap = "equal" if v["diff"] == 0 else f"{abs(100 * v['diff']):.2f} pp {'above' if v['diff'] > 0 else 'below'}"
    n = int(v["seeds"])
    return (
        f"{where}: {name} {pm(v['mean'], v['std'], n)} vs {base} {pm(v['base_mean'], v['base_std'], n)}: "
        f"{gap} ({spread}, {v['seeds']} seed(s))."
    )


def section_sparsity(summary: pd.DataFrame) -> Section:
    s = Section("Claim 1: accuracy vs sparsity per granularity", "sparsity")
    full = summary[summary["bits_label"] == "float"]
    if full.empty:
        s.no_data = "no data yet: full-precision runs (--bits float) fill it."
        return s
    for (model, data, gran), g in _groups(full):
        fig, ax = plt.subplots(figsize=(5.2, 3.4))
        for method in _ordered(g["method"]):
            gm = g[g["method"] == method].sort_values("density")
            ax.errorbar(
                gm["density"],
                100 * gm["test_mean"],
                yerr=100 * gm["test_std"],
                marker="o",
                ms=4,
                capsize=3,
                label=METHOD_LABELS.get(method, method),
            )
        ax.set_xlabel("kept weights (density, fraction)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{_model_label(model, data)}, {gran} level", fontsize=9)
        s.figures.append(
            Figure(
                f"sparsity_{model}_{data}_{gran}",
                _png(fig),
                f"{_model_label(model, data)} at {gran} granularity, full-precision weights: test "
                "accuracy (mean ± std over seeds) against density k/n.",
            )
        )
    verdicts = verdict_vs(full, "dpp_paper", "magnitude")
    if verdicts:
        reached = [v for v in verdicts if v["diff"] >= 0]
        s.text.append(
            f"Does DPP by the paper's recipe reach magnitude k-of-n at full precision? In "
            f"{len(reached)} of {len(verdicts)} configurations its mean test accuracy is at least "
            "magnitude's:"
        )
        s.text += [_diff_sentence(v, "DPP (paper)", "magnitude") for v in verdicts]
    warm = verdict_vs(full, "dpp_warmup", "magnitude")
    if warm:
        s.text.append(
            f"The warm-up recipe reaches magnitude's mean in {sum(v['diff'] >= 0 for v in warm)} of "
            f"{len(warm)} configurations."
        )
    s.tables.append(
        ("compare_sparsity", "Full-precision runs: test and validation accuracy per configuration", _display(full))
    )
    return s


# --------------------------------------------------------------------------------------- claim 2
def section_bits(summary: pd.DataFrame) -> Section:
    s = Section("Claim 2: accuracy vs weight bits per method", "bits")
    quant = summary[summary["bits_label"] != "float"]
    if quant.empty:
        s.no_data = "no data yet: runs with quantised weights (--bits 8,4,2,1) fill it."
        return s
    for (model, data, gran), g in _groups(summary):
        kns = sorted({(int(k), int(n)) for k, n in zip(g["k"], g["n"], strict=True)}, key=lambda t: t[0] / t[1])
        fig, axes = plt.subplots(1, len(kns), figsize=(4.2 * len(kns), 3.3), squeeze=False, sharey=True)
        for ax, (k, n) in zip(axes[0], kns, strict=True):
            gk = g[(g["k"] == k) & (g["n"] == n)]
            for method in _ordered(gk["method"]):
                gm = gk[gk["method"] == method]
                pos = [BITS_ORDER.index(b) for b in gm["bits_label"]]
                order = sorted(range(len(pos)), key=pos.__getitem__)
                ax.errorbar(
                    [pos[i] for i in order],
                    [100 * gm["test_mean"].iloc[i] for i in order],
                    yerr=[100 * gm["test_std"].iloc[i] for i in order],
                    marker="o",
                    ms=4,
                    capsize=3,
                    label=METHOD_LABELS.get(method, method),
                )
            ax.set_xticks(range(len(BITS_ORDER)), BITS_ORDER)
            ax.set_xlabel("weight bits")
            ax.set_title(f"{k}/{n}", fontsize=9)
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("test accuracy (%)")
        axes[0][-1].legend(fontsize=7)
        s.figures.append(
            Figure(
                f"bits_{model}_{data}_{gran}",
                _png(fig),
                f"{_model_label(model, data)} at {gran} granularity: test accuracy (mean ± std over "
                "seeds) against weight bits, one panel per k/n (1 = binary).",
            )
        )
    for method in DPP_METHODS:
        verdicts = verdict_vs(quant, method, "magnitude_qat")
        if not verdicts:
            continue
        name = METHOD_LABELS[method]
        wins = [v for v in verdicts if v["diff"] > 0]
        by_bits = sorted({v["bits_label"] for v in wins}, key=BITS_ORDER.index)
        s.text.append(
            f"Joint {name} vs prune-then-quantise (magnitude, then QAT): higher mean test accuracy in "
            f"{len(wins)} of {len(verdicts)} configurations"
            + (f", at {', '.join(b + '-bit' for b in by_bits)} weights." if wins else "; at no bit width.")
        )
        s.text += [_diff_sentence(v, name, "magnitude, then QAT") for v in verdicts]
    s.tables.append(("compare_bits", "Quantised runs: test and validation accuracy per configuration", _display(quant)))
    return s


# --------------------------------------------------------------------------------------- claim 3
def metric_curves(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Long table of the full-precision runs' per-epoch mask metrics: model, data, granularity, k, n, method,
    seed, epoch, layer, confidence, diversity."""
    recs = []
    for r in rows:
        if r.get("bits") is not None:
            continue
        for h in r.get("history") or []:
            layers = {int(key.split("layer")[1]) for key in h if key.startswith(("conf_layer", "div_layer"))}
            for layer in sorted(layers):
                conf, div = h.get(f"conf_layer{layer}"), h.get(f"div_layer{layer}")
                recs.append(
                    dict(
                        model=r["model"],
                        data=r["data"],
                        granularity=r["granularity"],
                        k=r["k"],
                        n=r["n"],
                        method=r["method"],
                        seed=r["seed"],
                        epoch=h["epoch"],
                        layer=layer,
                        confidence=float("nan") if conf is None else conf,
                        diversity=float("nan") if div is None else div,
                    )
                )
    return pd.DataFrame(
        recs,
        columns=[
            "model",
            "data",
            "granularity",
            "k",
            "n",
            "method",
            "seed",
            "epoch",
            "layer",
            "confidence",
            "diversity",
        ],
    )


def section_metrics(rows: list[dict[str, Any]]) -> Section:
    s = Section("Claim 3: mask confidence and pruning diversity over training", "metrics")
    curves = metric_curves(rows)
    if curves.empty:
        s.no_data = "no data yet: full-precision runs' per-epoch mask metrics fill it."
        return s
    mean = (
        curves.groupby(["model", "data", "granularity", "k", "n", "method", "epoch", "layer"])
        .agg(confidence=("confidence", "mean"), diversity=("diversity", "mean"))
        .reset_index()
    )
    styles = ["-", "--", ":", "-."]
    for (model, data, gran, k, n), g in mean.groupby(["model", "data", "granularity", "k", "n"], sort=False):
        fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.4))
        colours = {m: f"C{i}" for i, m in enumerate(_ordered(g["method"]))}
        for method in _ordered(g["method"]):
            gm = g[g["method"] == method]
            for layer, gl in gm.groupby("layer"):
                style = dict(color=colours[method], ls=styles[int(layer) % len(styles)], lw=1.3, marker="o", ms=2)
                label = f"{METHOD_LABELS.get(method, method)}, layer {layer}"
                if gl["confidence"].notna().any():
                    axes[0].plot(gl["epoch"], gl["confidence"], label=label, **style)
                axes[1].plot(gl["epoch"], gl["diversity"], label=label, **style)
        for ax, name in zip(axes, ("mask confidence", "pruning diversity"), strict=True):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_xlabel("epoch (count)")
            ax.set_ylabel(f"{name} (0-1)")
            ax.set_ylim(-0.02, 1.02)
            ax.grid(alpha=0.3)
        axes[1].legend(fontsize=6, ncol=2)
        title = f"{_model_label(model, data)} {gran} {k}/{n}"
        s.figures.append(
            Figure(
                f"metrics_{model}_{data}_{gran}_{k}_{n}",
                _png(fig),
                f"{title}, full precision: each layer's mask confidence (DPP only: fixed masks "
                "have no distribution) and pruning diversity per epoch, mean over seeds.",
            )
        )
    last = mean.sort_values("epoch").groupby(["model", "data", "granularity", "k", "n", "method", "layer"]).tail(1)
    method_rank = {m: i for i, m in enumerate(_ordered(last["method"]))}
    last = last.sort_values(
        ["model", "data", "granularity", "k", "n", "method", "layer"],
        key=lambda col: col.map(method_rank) if col.name == "method" else col,
    )
    dpp = last[last["method"].isin(DPP_METHODS)]
    if not dpp.empty:
        s.text.append(
            f"At the last epoch DPP's masks have mean confidence {dpp['confidence'].mean():.3f} "
            f"(range {dpp['confidence'].min():.3f} to {dpp['confidence'].max():.3f} over layers and "
            "configurations): 1 means every group's logits put all mass on one k-subset, 0 uniform."
        )
    div = last.groupby("method")["diversity"].mean()
    s.text.append(
        "Mean last-epoch pruning diversity per method (0: every row keeps the same slots, 1: slots used "
        "evenly): " + ", ".join(f"{METHOD_LABELS.get(m, m)} {div[m]:.3f}" for m in _ordered(div.index)) + "."
    )
    s.tables.append(
        (
            "compare_metrics_final",
            "Last epoch's mask confidence and diversity per layer (mean over seeds)",
            last.reset_index(drop=True),
        )
    )
    return s


# --------------------------------------------------------------------------------------- runs, commands
def section_runs(root: Path, runs: pd.DataFrame, study: dict[str, Any], rows: list[dict[str, Any]]) -> Section:
    s = Section("Runs", "runs")
    planned = len(study.get("runs", []))
    done = len(set(study.get("runs", [])) & set(runs["run_id"]))
    preset = study.get("preset", {})
    s.text.append(
        f"{len(runs)} finished runs in `points/` ({done} of the {planned} of the last plan); every run "
        f"trained {preset.get('epochs', '?')} epochs on the fit part of its training data, "
        f"{100 * float(preset.get('validation_fraction', 0)):.0f} % of it held out as the validation "
        "split (the per-epoch curves and any choice); the test split is measured once, after the last "
        f"epoch. Training time of the finished runs: {runs['seconds'].sum() / 3600:.2f} h of one core."
    )
    for line in study.get("skipped", []):
        s.text.append(f"Skipped: {line}.")
    if len(runs):
        s.tables.append(("compare_runs", "Every finished run", runs.drop(columns=["study"])))
    return s


def section_commands(root: Path, report_command: str) -> Section:
    s = Section("Commands", "commands")
    s.text.append(f"This report: `{report_command}`.")
    cmds = read_commands(root)
    if cmds:
        s.tables.append(
            (
                "commands",
                "Commands recorded in commands.json (oldest first)",
                pd.DataFrame([{"utc": c.get("utc"), "command": c.get("command")} for c in cmds]),
            )
        )
    return s


def build_compare_report(
    results: str | os.PathLike,
    out: str | os.PathLike,
    *,
    report_command: str = "dpp report",
    title: str = "DPP hardware co-design report",
) -> ReportOutcome:
    """Read the study folder ``results`` and write its report to ``out`` (see the module docstring)."""
    root = Path(results)
    out = Path(out)
    study = read_study(root)
    rows = load_rows(root)
    runs = runs_table(rows)
    summary = summary_table(runs)
    if title == "DPP hardware co-design report":
        title = f"DPP comparison study: {study.get('preset', {}).get('name', '?')}"
    makers: list[Callable[[], Section]] = [
        lambda: section_sparsity(summary),
        lambda: section_bits(summary),
        lambda: section_metrics(rows),
        lambda: section_runs(root, runs, study, rows),
    ]
    sections = []
    for name, make in zip(("sparsity", "bits", "metrics", "runs"), makers, strict=True):
        try:
            sections.append(make())
        except Exception as exc:  # noqa: BLE001 - one bad input must not sink the whole report
            sections.append(Section(name, name, no_data=f"no data: this section failed on its inputs: {exc}"))
    sections.append(section_commands(root, report_command))
    header = [
        f"Study folder `{root.resolve()}`; generated {datetime.now(UTC).isoformat(timespec='seconds')} by "
        f"`{report_command}`. Accuracies are test-split accuracies after the last epoch, mean ± sample std "
        "over seeds."
    ]
    return write_report(out, title, sections, header)
