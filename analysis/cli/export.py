"""``dpp export RUN/ --out NET/``: the integer network of a trained run, checked against the torch model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from analysis.cli._common import check_threads
from dpp.export import run_export
from dpp.paths import check_in_dir, check_out_dir
from dpp.progress import step


def export(
    run_dir: Path = typer.Argument(..., help="Run folder written by dpp train."),
    out: Path = typer.Option(..., "--out", help="Folder for network.json and the layer matrices."),
    bits: int | None = typer.Option(None, "--bits", help="Weight bits for a full-precision run (default 8)."),
    threads: int = typer.Option(1, "--threads"),
    data: str | None = typer.Option(
        None, "--data", help="SPEC of the images the agreement is measured on (default: the run's data)."
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", help="MEAN,STD[;...]: must be the run's own (default: the run's, recorded in its config)."
    ),
) -> None:
    """Write the integer network (k-of-n matrices + manifest) and report agreement with the torch model."""
    import torch

    run_dir = check_in_dir(run_dir, "RUN")
    out = check_out_dir(out)
    torch.set_num_threads(check_threads(threads))
    with step(f"exporting {run_dir.name} and checking it against the torch model on the test set"):
        report = run_export(run_dir, out, bits, data=data, normalize=normalize)
    console = Console()
    console.print(f"saved {report['network']}")
    console.print(
        f"agreement with the fake-quantised torch model: {report['identical']}/{report['images']} "
        f"= {100 * report['agreement']:.2f} %  (torch acc {report['torch_accuracy']:.4f}, "
        f"integer acc {report['int_accuracy']:.4f})"
    )
