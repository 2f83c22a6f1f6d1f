"""``dpp train``: train one model with DPP or a baseline; writes checkpoint, per-epoch CSV and result JSON."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analysis.cli._common import check_new_run_dir, check_threads


def train(
    model: str = typer.Option("lenet300", "--model", help="lenet300 | lenet5 | digits (tiny 8x8 model)."),
    method: str = typer.Option("dpp", "--method", help="dense | dpp | magnitude | srste | unstructured | random."),
    k: int = typer.Option(1, "--k", help="Kept slots per group (1 <= k < n)."),
    n: int = typer.Option(8, "--n", help="Slots per group (2..64: the hardware arrays' limit)."),
    granularity: str = typer.Option("weight", "--granularity", help="weight | kernel | filter."),
    bits: int | None = typer.Option(None, "--bits", help="Weight bits (2..8) for joint quantisation; "
                                       "omit for full precision."),
    epochs: int = typer.Option(20, "--epochs", help="Training epochs (the same budget for every method)."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, masks, noise and shuffling."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate of the weights."),
    logit_lr: float | None = typer.Option(None, "--logit-lr", help="Adam learning rate of the mask logits."),
    noise_scale: float | None = typer.Option(None, "--noise-scale", help="Gumbel noise factor c."),
    entropy_weight: float | None = typer.Option(None, "--entropy-weight", help="Entropy regulariser lambda."),
    warmup_fraction: float | None = typer.Option(None, "--warmup-fraction",
                                                    help="DPP: share of the epochs trained dense before masking."),
    init: str | None = typer.Option(None, "--init", help="DPP logit init: normal | magnitude."),
    schedule: str = typer.Option("linear", "--schedule", help="Temperature: constant | exponential | linear."),
    t_start: float = typer.Option(5.0, "--t-start"),
    t_end: float = typer.Option(0.5, "--t-end"),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite a run folder that already holds a run."),
) -> None:
    """Train a model; write RUN/checkpoint.pt, config.json, metrics.csv (per epoch) and result.json."""
    import torch  # imported here so that `dpp --help` stays fast

    from dpp.train import TrainConfig, save_run
    from dpp.train import train as run_train

    extra = {name: value for name, value in (("logit_lr", logit_lr), ("noise_scale", noise_scale),
                                             ("entropy_weight", entropy_weight), ("warmup_fraction", warmup_fraction),
                                             ("init", init)) if value is not None}
    out = check_new_run_dir(out, force)
    threads = check_threads(threads)
    cfg = TrainConfig(model=model, method=method, k=k, n=n, granularity=granularity, bits=bits, epochs=epochs,
                      seed=seed, batch_size=batch_size, lr=lr, schedule=schedule, t_start=t_start, t_end=t_end,
                      **extra)
    torch.set_num_threads(threads)
    console = Console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task(f"{model} {method}", total=epochs, status="")

        def on_epoch(rec: dict[str, float]) -> None:
            progress.update(task, advance=1, status=f"loss {rec['train_loss']:.3f} test {rec['test_accuracy']:.4f}")

        result = run_train(cfg, on_epoch=on_epoch)
    path = save_run(result, out)
    console.print(json.dumps(result.summary()))
    console.print(f"saved {path.parent}")
