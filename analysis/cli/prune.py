"""``dpp prune``: your own trained model (factory file + state dict) pruned k-of-n and fine-tuned into a run folder."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from analysis.cli._common import check_new_run_dir, check_threads, epoch_progress, epoch_status


def prune(
    model_file: str = typer.Option(
        ..., "--model-file", help="FILE.py:FACTORY, where FACTORY() returns your nn.Module."
    ),
    weights: Path | None = typer.Option(
        None,
        "--weights",
        help="STATE.pth: a state dict (torch.save of model.state_dict()), loaded with weights_only=True.",
    ),
    data: str = typer.Option(..., "--data", help="SPEC: mnist5k | digits | idx:DIR | npz:FILE | cifar10:DIR."),
    normalize: str | None = typer.Option(
        None,
        "--normalize",
        help="MEAN,STD[;MEAN,STD...] per channel, as the model expects its inputs (default: pixels in [0, 1]).",
    ),
    method: str = typer.Option("dpp", "--method", help="dpp | magnitude | srste | unstructured | random."),
    k: int = typer.Option(1, "--k", help="Kept slots per group (1 <= k < n)."),
    n: int = typer.Option(8, "--n", help="Slots per group (2..64)."),
    granularity: str = typer.Option("weight", "--granularity", help="weight | kernel | filter."),
    bits: int | None = typer.Option(
        None,
        "--bits",
        help="Weight bits (1..8; 1 = binary) for quantisation-aware fine-tuning; "
        "omit for full precision (export quantises to 8 bits).",
    ),
    epochs: int = typer.Option(5, "--epochs", help="Fine-tuning epochs; 0 = one-shot pruning, no fine-tuning."),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Comma-separated module names to prune (default: "
        "every Conv2d / Linear with fan-in >= n; the rest stay dense).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of masks, noise and shuffling."),
    batch_size: int = typer.Option(64, "--batch-size"),
    lr: float = typer.Option(1e-3, "--lr", help="Adam learning rate of the weights (fine-tuning; as dpp train)."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    out: Path = typer.Option(..., "--out", help="Run folder to write (the same as dpp train's)."),
    force: bool = typer.Option(False, "--force", help="Overwrite a run folder that already holds a run."),
    bn_recalibrate: bool = typer.Option(
        True,
        "--bn-recalibrate/--no-bn-recalibrate",
        help="Recompute BatchNorm running statistics after training with the final (evaluation) masks "
        "(models with BatchNorm only; DPP samples masks during training, so its running statistics mix masks).",
    ),
) -> None:
    """Prune a model written elsewhere; write RUN/ like dpp train, so dpp export RUN/ --out NET/ takes it."""
    import torch

    from dpp.prune import parse_layers, prune_config, run_prune

    out = check_new_run_dir(out, force)
    torch.set_num_threads(check_threads(threads))
    cfg = prune_config(
        model_file,
        data=data,
        method=method,
        k=k,
        n=n,
        granularity=granularity,
        bits=bits,
        epochs=epochs,
        weights=None if weights is None else str(weights),
        normalize=normalize,
        layers=parse_layers(layers),
        seed=seed,
        batch_size=batch_size,
        lr=lr,
        bn_recalibrate=bn_recalibrate,
    )
    console = Console()
    progress = epoch_progress(console)
    task = progress.add_task(f"fine-tune {cfg.model} ({method})", total=max(epochs, 1), status="")

    def on_layers(pruned: list[str], dense: list[tuple[str, str]]) -> None:  # checked: the bar starts now
        console.print(f"pruning {len(pruned)} layer(s) {k}/{n} ({granularity}): {', '.join(pruned)}")
        for name, why in dense:
            console.print(f"  dense: {name} ({why})")
        progress.start()

    def on_epoch(rec: dict[str, float]) -> None:
        progress.update(task, advance=1, status=epoch_status(rec))

    try:
        result = run_prune(cfg, out, on_layers=on_layers, on_epoch=on_epoch)
        if epochs == 0:
            progress.update(task, advance=1, status=f"one-shot: test {result.test_accuracy:.4f}")
    finally:
        if progress.live.is_started:
            progress.stop()
    console.print(json.dumps(result.summary()))
    console.print(f"saved {out}")
