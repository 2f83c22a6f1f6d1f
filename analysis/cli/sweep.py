"""``dpp sweep CONFIG``: evaluate a design-space grid (resumable, on Dask) into ``OUT/sweep.csv|parquet``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from analysis.commands_log import record_command
from dpp.errors import DPPError
from dpp.paths import check_in_file, check_out_dir


def sweep(
    config: Path = typer.Argument(..., help="Sweep config, .yaml/.yml or .toml (see analysis/sweep_config.py)."),
    out: Path = typer.Option(..., "--out", help="RESULTS folder: points/, sweep.csv, sweep.parquet, commands.json."),
    serial: bool = typer.Option(False, "--serial", help="Evaluate in this process, one point after another."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Address of an existing Dask scheduler (tcp://host:port)."
    ),
    workers: int | None = typer.Option(None, "--workers", help="Workers of the local Dask cluster."),
    threads: bool = typer.Option(False, "--threads", help="Local cluster in threads, not processes."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    force: bool = typer.Option(
        False,
        "--force",
        help="Write into a RESULTS folder that holds another sweep "
        "(its table is replaced; finished points are reused where they match).",
    ),
) -> None:
    """Evaluate every point of CONFIG not already in OUT (an interrupted sweep resumes where it stopped)."""
    from analysis.sweep import ALL_EVALUATIONS, load_config, run_sweep

    if serial and scheduler:
        raise DPPError("--serial and --scheduler exclude each other (got both)")
    if workers is not None and workers < 1:
        raise DPPError(f"--workers must be >= 1 (got {workers})")
    config = check_in_file(config, "CONFIG")
    out = check_out_dir(out)
    cfg = load_config(config)
    caps = dict(ALL_EVALUATIONS)
    console = Console()
    console.print(f"sweep [bold]{cfg.name}[/bold]")
    mode = "serial" if serial else (f"scheduler {scheduler}" if scheduler else "local Dask cluster")
    res = run_sweep(
        cfg,
        out,
        serial=serial,
        scheduler=scheduler,
        n_workers=workers,
        processes=not threads,
        progress=progress,
        caps=caps,
        force=force,
    )
    record_command(out, "sweep", {"config": str(config), "mode": mode, "capabilities": caps, **cfg.to_dict()})
    console.print(
        f"{len(res.table)} points ({res.computed} computed now, {res.reused} reused, "
        f"{res.invalid} invalid combinations skipped) → {res.csv} and {res.parquet.name}"
    )
