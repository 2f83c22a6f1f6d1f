"""``dpp compare``: DPP and the baselines on the same data and epoch budget.

Without ``--preset``: one model over a small k/n grid and several seeds, one table (mean ± std test accuracy,
weight density and weight bits per (method, k/n, bits)). With ``--preset paper``: the paper's whole study
(:data:`dpp.compare.PAPER_PRESET`), resumable per run and runnable on Dask like ``dpp sweep``; the options
shrink it, ``--dry-run`` lists the runs with an estimate of the wall time, ``dpp report OUT/`` shows it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from analysis.cli._common import check_threads, epoch_progress, epoch_status
from dpp.compare import ALL_METHODS, parse_grid, parse_ints
from dpp.errors import DPPError
from dpp.paths import check_out_dir
from dpp.recipes import DEFAULT_RECIPE, RECIPE_NAMES
from dpp.serialize import atomic_write_text

if TYPE_CHECKING:  # dpp.train imports torch: not at start-up
    from dpp.train import TrainConfig


def compare(
    model: str = typer.Option(
        "lenet300", "--model", help="lenet300 | lenet5 | digits | resnet8 | mobilenet (without --preset)."
    ),
    methods: str | None = typer.Option(
        None,
        "--methods",
        help="Comma-separated methods (default: "
        f"{ALL_METHODS}; with --preset: dpp_paper,dpp_warmup,magnitude,srste,"
        "random,magnitude_qat).",
    ),
    grid: str | None = typer.Option(
        None, "--grid", help="Comma-separated k/n pairs (default 1/8,2/8; with --preset 1/8,2/8,4/8)."
    ),
    seeds: str = typer.Option("0,1,2", "--seeds", help="Comma-separated seeds."),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="Epoch budget of every run (default 20; with --preset the paper recipe's reference budget, 40).",
    ),
    dpp_bits: str = typer.Option(
        "4", "--dpp-bits", help="Extra DPP runs with these weight bits ('' for none; without --preset)."
    ),
    recipe: str = typer.Option(
        DEFAULT_RECIPE,
        "--recipe",
        help=f"Recipe of the DPP runs without --preset: {' | '.join(RECIPE_NAMES)} (see dpp train --help).",
    ),
    logit_lr: float | None = typer.Option(None, "--logit-lr", help="DPP logit learning rate."),
    noise_scale: float | None = typer.Option(None, "--noise-scale", help="DPP Gumbel noise factor."),
    entropy_weight: float | None = typer.Option(None, "--entropy-weight", help="DPP entropy regulariser."),
    warmup_fraction: float | None = typer.Option(
        None, "--warmup-fraction", help="DPP: share of epochs trained dense before masking."
    ),
    init: str | None = typer.Option(None, "--init", help="DPP logit init: normal | magnitude."),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="Run a whole study: paper (LeNet-300-100 and LeNet-5 "
        "on MNIST-5k, + full Fashion-MNIST where installed; k/n 1/8, 2/8, 4/8 at "
        "weight, kernel, filter level; DPP paper and warm-up recipes, magnitude, "
        "SR-STE, random, magnitude_qat; float and 8/4/2/1-bit weights; 3 seeds).",
    ),
    models: str | None = typer.Option(
        None,
        "--models",
        help="--preset: comma-separated models (lenet300, lenet5, digits; MODEL@fashion for full Fashion-MNIST).",
    ),
    granularities: str | None = typer.Option(None, "--granularities", help="--preset: weight,kernel,filter subset."),
    bits: str | None = typer.Option(None, "--bits", help="--preset: weight bits, e.g. float,8,4,2,1."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="--preset: list the runs and the estimated wall time, train nothing."
    ),
    serial: bool = typer.Option(False, "--serial", help="--preset: train in this process, one run after another."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="--preset: address of an existing Dask scheduler (tcp://host:port)."
    ),
    workers: int | None = typer.Option(None, "--workers", help="--preset: workers of the local Dask cluster."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="--preset: show a progress bar."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads per run."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Folder for compare.json and compare.csv (with --preset: the "
        "study folder, see analysis/compare_study.py).",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="SPEC: mnist5k | digits | idx:DIR | npz:FILE | cifar10:DIR (without --preset; default: the model's data).",
    ),
    normalize: str | None = typer.Option(
        None, "--normalize", help="MEAN,STD[;MEAN,STD...] per channel (without --preset)."
    ),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Comma-separated module names every sparse method prunes (without --preset; default: every "
        "Conv2d / Linear with fan-in >= n).",
    ),
    bn_recalibrate: bool = typer.Option(
        True,
        "--bn-recalibrate/--no-bn-recalibrate",
        help="Recompute BatchNorm running statistics after training with the final (evaluation) masks "
        "(models with BatchNorm only; DPP samples masks during training, so its running statistics mix masks).",
    ),
) -> None:
    """Run DPP and the baselines on the same data and epoch budget; print and write the tables."""
    out = check_out_dir(out)
    threads = check_threads(threads)
    if preset is not None and (data is not None or normalize is not None):
        raise DPPError("--data and --normalize apply without --preset (a study uses its models' own data)")
    from dpp.prune import parse_layers

    if preset is not None and layers is not None:
        raise DPPError(f"--layers applies without --preset (got --layers {layers} with --preset {preset})")
    if preset is not None:
        _study(
            preset,
            models,
            granularities,
            grid,
            methods,
            bits,
            seeds,
            epochs,
            dry_run,
            serial,
            scheduler,
            workers,
            progress,
            threads,
            out,
        )
        return
    for name, value in (
        ("--models", models),
        ("--granularities", granularities),
        ("--bits", bits),
        ("--scheduler", scheduler),
        ("--workers", workers),
    ):
        if value is not None:
            raise DPPError(f"{name} applies to --preset studies (got {name} {value} without --preset)")
    if dry_run or serial:
        raise DPPError("--dry-run and --serial apply to --preset studies (got one without --preset)")
    _single(
        model,
        methods or ALL_METHODS,
        grid or "1/8,2/8",
        seeds,
        20 if epochs is None else epochs,
        dpp_bits,
        recipe,
        dict(
            logit_lr=logit_lr,
            noise_scale=noise_scale,
            entropy_weight=entropy_weight,
            warmup_fraction=warmup_fraction,
            init=init,
        ),
        threads,
        out,
        dict(data_spec=data, normalize=normalize, layers=parse_layers(layers), bn_recalibrate=bn_recalibrate),
    )


def _single(
    model: str,
    methods: str,
    grid: str,
    seeds: str,
    epochs: int,
    dpp_bits: str,
    recipe: str,
    overrides: dict,
    threads: int,
    out: Path,
    sources: dict | None = None,
) -> None:
    import torch

    from dpp.compare import run_compare

    torch.set_num_threads(threads)
    method_list = [m.strip() for m in methods.split(",") if m.strip()]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    console = Console()
    with epoch_progress(console, transient=True) as progress:
        task = progress.add_task("", total=epochs, visible=False, status="")

        def on_start(i: int, total: int, cfg: TrainConfig) -> None:
            label = f"[{i}/{total}] {cfg.method} {_run_label(cfg)}"
            console.print(f"{label} ...")  # one line per run, in a log file too
            progress.reset(task, total=cfg.epochs, description=label, visible=True, status="")

        rows = run_compare(
            model,
            method_list,
            parse_grid(grid),
            parse_ints("seeds", seeds),
            epochs,
            parse_ints("dpp-bits", dpp_bits),
            overrides,
            on_run=lambda s: console.print(
                f"  {s['method']} k={s['k']} n={s['n']} bits={s['bits']} seed={s['seed']}: "
                f"{s['test_accuracy']:.4f} ({s['seconds']:.0f} s)"
            ),
            on_start=on_start,
            on_epoch=lambda rec: progress.update(task, advance=1, status=epoch_status(rec)),
            recipe=recipe,
            **(sources or {}),
        )
    table = Table(title=f"{model}: test accuracy over seeds {seeds}, {epochs} epochs")
    for col in ("method", "k/n", "weight bits", "density", "accuracy % (mean ± std)"):
        table.add_column(col, justify="left" if col == "method" else "right")
    lines = ["method,k,n,bits,density,accuracy_mean,accuracy_std,seeds"]
    for r in rows:
        kn = "-" if r["k"] is None else f"{r['k']}/{r['n']}"
        table.add_row(
            r["method"],
            kn,
            str(r["bits"]),
            f"{r['density']:.4f}",
            f"{100 * r['accuracy_mean']:.2f} ± {100 * r['accuracy_std']:.2f}",
        )
        lines.append(
            f"{r['method']},{r['k'] or ''},{r['n'] or ''},{r['bits']},{r['density']:.6f},"
            f"{r['accuracy_mean']:.6f},{r['accuracy_std']:.6f},{r['seeds']}"
        )
    console.print(table)
    atomic_write_text(out / "compare.csv", "\n".join(lines) + "\n")
    atomic_write_text(
        out / "compare.json", json.dumps(dict(model=model, epochs=epochs, recipe=recipe, rows=rows), indent=2) + "\n"
    )
    console.print(f"saved {out / 'compare.csv'}")


def _run_label(cfg: TrainConfig) -> str:
    """``k/n, B-bit weights, seed S`` of one training run (``dense``: no k/n)."""
    kn = "" if cfg.method == "dense" else f"{cfg.k}/{cfg.n}, "
    bits = "float" if cfg.bits is None else f"{cfg.bits}-bit"
    return f"{kn}{bits} weights, seed {cfg.seed}"


def _split(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


def _study(
    preset_name: str,
    models: str | None,
    granularities: str | None,
    grid: str | None,
    methods: str | None,
    bits: str | None,
    seeds: str,
    epochs: int | None,
    dry_run: bool,
    serial: bool,
    scheduler: str | None,
    workers: int | None,
    progress: bool,
    threads: int,
    out: Path,
) -> None:
    from dpp.compare import (
        STUDY_METHODS,
        estimate_seconds,
        parse_bits_list,
        preset_named,
        shrink_preset,
        study_plan,
    )

    if serial and scheduler:
        raise DPPError("--serial and --scheduler exclude each other (got both)")
    if workers is not None and workers < 1:
        raise DPPError(f"--workers must be >= 1 (got {workers})")
    grans = _split(granularities)
    if grans is not None:
        bad = [g for g in grans if g not in ("weight", "kernel", "filter")]
        if bad or not grans:
            raise DPPError(f"--granularities must be among weight, kernel, filter (got {granularities!r})")
    method_list = _split(methods)
    if method_list is not None:
        bad = [m for m in method_list if m not in STUDY_METHODS]
        if bad or not method_list:
            raise DPPError(f"--methods of a study must be among {', '.join(STUDY_METHODS)} (got {methods!r})")
    preset = shrink_preset(
        preset_named(preset_name),
        granularities=grans,
        methods=method_list,
        grid=None if grid is None else tuple(parse_grid(grid)),
        bits=None if bits is None else parse_bits_list(bits),
        seeds=tuple(parse_ints("seeds", seeds)),
        epochs=epochs,
    )
    points, skipped = study_plan(preset, models=_split(models))
    if not points:
        raise DPPError(
            "the study has no runs left after the options (check --models, --granularities, --methods, --bits, --grid)"
        )
    console = Console()
    for line in skipped:
        console.print(f"skipped: {line}")
    from analysis.compare_study import plan_ids, run_study
    from analysis.sweep import ResultStore

    done = ResultStore(out).done()
    ids = plan_ids(points)
    todo = [p for pid, p in ids if pid not in done]
    seconds = sum(estimate_seconds(p) for p in todo)
    if dry_run:
        _print_plan(console, points, done, ids)
        lanes = 1 if serial else (workers or 1)
        console.print(
            f"{len(points)} runs, {len(points) - len(todo)} already finished in {out}; the other "
            f"{len(todo)} take about {_duration(seconds)} on one core"
            + (f" ({_duration(seconds / lanes)} on {lanes} workers)" if lanes > 1 else "")
            + " (rough: dpp.compare.EPOCH_SECONDS_PER_1K)"
        )
        return
    console.print(
        f"study {preset.name}: {len(points)} runs, {len(points) - len(todo)} already finished, "
        f"{len(todo)} to train (about {_duration(seconds)} on one core)"
    )
    res = run_study(
        points,
        skipped,
        out,
        preset,
        serial=serial,
        scheduler=scheduler,
        n_workers=workers,
        progress=progress,
        threads=threads,
    )
    from analysis.commands_log import record_command

    record_command(
        out,
        "compare",
        {
            "preset": preset.name,
            "runs": len(points),
            "models": models,
            "granularities": granularities,
            "grid": grid,
            "methods": methods,
            "bits": bits,
            "seeds": seeds,
            "epochs": preset.epochs,
            "mode": "serial" if serial else (scheduler or "local Dask cluster"),
        },
    )
    console.print(
        f"{len(res.runs)} finished runs in {out} ({res.computed} trained now, {res.reused} reused) → "
        f"{res.runs_csv.name}, {res.summary_csv.name}; dpp report {out} --out REPORT/ shows them"
    )


def _print_plan(console: Console, points: list[dict], done: set[str], ids: list[tuple[str, dict]]) -> None:
    """One row per (model, granularity, k/n, method, bits): how many seeds, how many already finished."""
    total: Counter = Counter()
    finished: Counter = Counter()
    for pid, p in ids:
        key = (
            p["model"] + ("" if p["data"] in ("mnist5k", "digits") else "@fashion"),
            p["granularity"],
            f"{p['k']}/{p['n']}",
            p["method"],
            "float" if p["bits"] is None else str(p["bits"]),
        )
        total[key] += 1
        finished[key] += pid in done
    table = Table(title=f"{len(points)} runs of {points[0]['epochs']} epochs")
    for col in ("model", "granularity", "k/n", "method", "weight bits", "runs", "finished"):
        table.add_column(col)
    for key, count in total.items():
        table.add_row(*key, str(count), str(finished[key]))
    console.print(table)


def _duration(seconds: float) -> str:
    """``1.7 h`` from an hour up, else ``12 min`` (at least 1)."""
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{max(1, round(seconds / 60))} min"
