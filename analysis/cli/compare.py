"""``dpp compare``: DPP and the baselines over a small k/n grid and several seeds, one table (the paper's
main comparison): mean ± std test accuracy, weight density and weight bits per (method, k/n, bits)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli._common import check_threads
from dpp.compare import ALL_METHODS, parse_grid, parse_ints, run_compare
from dpp.paths import check_out_dir
from dpp.serialize import atomic_write_text


def compare(
    model: str = typer.Option("lenet300", "--model", help="lenet300 | lenet5 | digits."),
    methods: str = typer.Option(ALL_METHODS, "--methods", help="Comma-separated methods."),
    grid: str = typer.Option("1/8,2/8", "--grid", help="Comma-separated k/n pairs."),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds."),
    epochs: int = typer.Option(20, "--epochs", help="Epoch budget of every run."),
    dpp_bits: str = typer.Option("4", "--dpp-bits", help="Extra DPP runs with these weight bits ('' for none)."),
    logit_lr: float | None = typer.Option(None, "--logit-lr", help="DPP logit learning rate."),
    noise_scale: float | None = typer.Option(None, "--noise-scale", help="DPP Gumbel noise factor."),
    entropy_weight: float | None = typer.Option(None, "--entropy-weight", help="DPP entropy regulariser."),
    warmup_fraction: float | None = typer.Option(None, "--warmup-fraction",
                                                    help="DPP: share of epochs trained dense before masking."),
    init: str | None = typer.Option(None, "--init", help="DPP logit init: normal | magnitude."),
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
