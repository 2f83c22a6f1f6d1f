"""``dpp compare``: DPP and the baselines over a small k/n grid and several seeds, one table (the paper's
main comparison): mean ± std test accuracy, weight density and weight bits per (method, k/n, bits)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from dpp.commands._common import check_threads
from dpp.paths import check_out_dir
from dpp.serialize import atomic_write_text
from dpp.errors import DPPError

ALL_METHODS = "dense,dpp,magnitude,srste,unstructured,random"


def parse_grid(text: str) -> list[tuple[int, int]]:
    """``"1/8,2/8"`` → ``[(1, 8), (2, 8)]``."""
    out = []
    for item in text.split(","):
        parts = item.strip().split("/")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise DPPError(f"grid entries must look like k/n, e.g. 1/8 (got {item.strip()!r})")
        out.append((int(parts[0]), int(parts[1])))
    return out


def parse_ints(name: str, text: str) -> list[int]:
    try:
        return [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise DPPError(f"{name} must be comma-separated integers (got {text!r})") from None


def run_compare(model: str, methods: list[str], grid: list[tuple[int, int]], seeds: list[int], epochs: int,
                dpp_bits: list[int], overrides: dict[str, Any], on_run=None) -> list[dict[str, Any]]:
    """Train every (method, k/n, bits, seed) and aggregate over seeds; returns one row per configuration."""
    from dpp.data import load_dataset
    from dpp.models import DATASET_OF
    from dpp.train import TrainConfig, train

    data = load_dataset(DATASET_OF[model])
    jobs: list[tuple[str, int, int, int | None]] = []
    for method in methods:
        if method == "dense":
            jobs.append(("dense", 1, 2, None))
            continue
        for k, n in grid:
            jobs.append((method, k, n, None))
            if method == "dpp":
                jobs += [("dpp", k, n, b) for b in dpp_bits]
    rows = []
    for method, k, n, bits in jobs:
        accs, dens = [], []
        for seed in seeds:
            extra = overrides if method == "dpp" else {}
            cfg = TrainConfig(model=model, method=method, k=k, n=n, bits=bits, epochs=epochs, seed=seed, **extra)
            res = train(cfg, data)
            accs.append(res.test_accuracy)
            dens.append(res.density)
            if on_run is not None:
                on_run(res.summary())
        rows.append(dict(model=model, method=method, k=None if method == "dense" else k,
                         n=None if method == "dense" else n, bits=bits or 32, seeds=len(seeds),
                         accuracy_mean=statistics.fmean(accs),
                         accuracy_std=statistics.stdev(accs) if len(accs) > 1 else 0.0,
                         accuracies=accs, density=statistics.fmean(dens)))
    return rows


def compare(
    model: str = typer.Option("lenet300", "--model", help="lenet300 | lenet5 | digits."),
    methods: str = typer.Option(ALL_METHODS, "--methods", help="Comma-separated methods."),
    grid: str = typer.Option("1/8,2/8", "--grid", help="Comma-separated k/n pairs."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds."),
    epochs: int = typer.Option(20, "--epochs", help="Epoch budget of every run."),
    dpp_bits: str = typer.Option("4", "--dpp-bits", help="Extra DPP runs with these weight bits ('' for none)."),
    logit_lr: Optional[float] = typer.Option(None, "--logit-lr", help="DPP logit learning rate."),
    noise_scale: Optional[float] = typer.Option(None, "--noise-scale", help="DPP Gumbel noise factor."),
    entropy_weight: Optional[float] = typer.Option(None, "--entropy-weight", help="DPP entropy regulariser."),
    warmup_fraction: Optional[float] = typer.Option(None, "--warmup-fraction",
                                                    help="DPP: share of epochs trained dense before masking."),
    init: Optional[str] = typer.Option(None, "--init", help="DPP logit init: normal | magnitude."),
    threads: int = typer.Option(1, "--threads"),
    out: Path = typer.Option(..., "--out", help="Folder for compare.json and compare.csv."),
) -> None:
    """Run DPP and the baselines on the same data and epoch budget; print and write one table."""
    import torch

    out = check_out_dir(out)
    torch.set_num_threads(check_threads(threads))
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    overrides = {k: v for k, v in (("logit_lr", logit_lr), ("noise_scale", noise_scale),
                                   ("entropy_weight", entropy_weight), ("warmup_fraction", warmup_fraction),
                                   ("init", init)) if v is not None}
    console = Console()
    rows = run_compare(model, method_list, parse_grid(grid), parse_ints("seeds", seeds), epochs,
                       parse_ints("dpp-bits", dpp_bits), overrides,
                       on_run=lambda s: console.print(f"  {s['method']} k={s['k']} n={s['n']} bits={s['bits']} "
                                                      f"seed={s['seed']}: {s['test_accuracy']:.4f}"))
    table = Table(title=f"{model}: test accuracy over seeds {seeds}, {epochs} epochs")
    for col in ("method", "k/n", "weight bits", "density", "accuracy % (mean ± std)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    lines = ["method,k,n,bits,density,accuracy_mean,accuracy_std,seeds"]
    for r in rows:
        kn = "-" if r["k"] is None else f"{r['k']}/{r['n']}"
        table.add_row(r["method"], kn, str(r["bits"]), f"{r['density']:.4f}",
                      f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}")
        lines.append(f"{r['method']},{r['k'] or ''},{r['n'] or ''},{r['bits']},{r['density']:.6f},"
                     f"{r['accuracy_mean']:.6f},{r['accuracy_std']:.6f},{r['seeds']}")
    console.print(table)
    atomic_write_text(out / "compare.csv", "\n".join(lines) + "\n")
    atomic_write_text(out / "compare.json", json.dumps(dict(model=model, epochs=epochs, rows=rows), indent=2) + "\n")
    console.print(f"saved {out / 'compare.csv'}")
