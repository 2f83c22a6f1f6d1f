"""``dpp train``: train one model with DPP or a baseline; writes checkpoint, per-epoch CSV and result JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from analysis.cli._common import check_new_run_dir, check_threads, epoch_progress, epoch_status
from dpp.recipes import DEFAULT_RECIPE, recipe_help

RECIPE_DEFAULT = "default: the recipe's"


def train(
    model: str = typer.Option(
        "lenet300",
        "--model",
        help="lenet300 | lenet5 | digits (tiny 8x8 model) | resnet8 | "
        "mobilenet (BatchNorm, residual adds / depthwise convs).",
    ),
    method: str = typer.Option(
        "dpp",
        "--method",
        help="dense | dpp | magnitude | srste | unstructured | random | "
        "magnitude_qat (float, prune, then quantisation-aware fine-tuning; needs --bits).",
    ),
    recipe: str = typer.Option(
        DEFAULT_RECIPE,
        "--recipe",
        help="Training recipe: " + recipe_help() + ". Options given explicitly override the recipe's values.",
    ),
    k: int = typer.Option(1, "--k", help="Kept slots per group (1 <= k < n)."),
    n: int = typer.Option(8, "--n", help="Slots per group (2..64: the hardware arrays' limit)."),
    granularity: str = typer.Option("weight", "--granularity", help="weight | kernel | filter."),
    bits: int | None = typer.Option(
        None,
        "--bits",
        "--weight-bits",
        help="Weight bits (1..8; 1 = binary: sign "
        "with a per-layer scale, stored as 2-bit words) for joint quantisation; omit "
        "for full precision.",
    ),
    epochs: int | None = typer.Option(
        None,
        "--epochs",
        help="Training epochs (the same budget for every method; default: the recipe's, 20 warmup / 40 paper).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, masks, noise and shuffling."),
    batch_size: int | None = typer.Option(None, "--batch-size", help=f"Mini-batch size ({RECIPE_DEFAULT}, 64)."),
    lr: float | None = typer.Option(None, "--lr", help=f"Adam learning rate of the weights ({RECIPE_DEFAULT})."),
    logit_lr: float | None = typer.Option(None, "--logit-lr", help="Adam learning rate of the mask logits."),
    noise_scale: float | None = typer.Option(
        None, "--noise-scale", help="Gumbel noise factor c (of every layer's masks unless --noise-scale-conv is given)."
    ),
    noise_scale_conv: float | None = typer.Option(
        None, "--noise-scale-conv", help="Gumbel noise factor c of conv layers' masks."
    ),
    entropy_weight: float | None = typer.Option(None, "--entropy-weight", help="Entropy regulariser lambda."),
    warmup_fraction: float | None = typer.Option(
        None, "--warmup-fraction", help="DPP: share of the epochs trained dense before masking."
    ),
    init: str | None = typer.Option(None, "--init", help="DPP logit init: normal | magnitude."),
    schedule: str | None = typer.Option(
        None, "--schedule", help=f"Temperature: constant | exponential | linear ({RECIPE_DEFAULT}: linear)."
    ),
    t_start: float | None = typer.Option(None, "--t-start", help=f"First epoch's temperature ({RECIPE_DEFAULT}: 5)."),
    t_end: float | None = typer.Option(None, "--t-end", help=f"Last epoch's temperature ({RECIPE_DEFAULT}: 0.5)."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads."),
    out: Path = typer.Option(..., "--out", help="Run folder to write."),
    force: bool = typer.Option(False, "--force", help="Overwrite a run folder that already holds a run."),
    model_file: str | None = typer.Option(
        None,
        "--model-file",
        help="FILE.py:FACTORY, where FACTORY() returns an "
        "nn.Module: train your own model instead of --model; needs --data.",
    ),
    data: str | None = typer.Option(
        None,
        "--data",
        help="SPEC: mnist5k | digits | idx:DIR | npz:FILE | cifar10:DIR (default: the built-in model's data).",
    ),
    normalize: str | None = typer.Option(
        None,
        "--normalize",
        help="MEAN,STD[;MEAN,STD...] per channel, applied to pixels in [0, 1] (default: none); recorded in the run.",
    ),
    layers: str | None = typer.Option(
        None,
        "--layers",
        help="Comma-separated module names to prune (default: every Conv2d / Linear with fan-in >= n; "
        "the rest stay dense), e.g. to keep depthwise convolutions dense.",
    ),
    bn_recalibrate: bool = typer.Option(
        True,
        "--bn-recalibrate/--no-bn-recalibrate",
        help="Recompute BatchNorm running statistics after training with the final (evaluation) masks "
        "(models with BatchNorm only; DPP samples masks during training, so its running statistics mix masks).",
    ),
) -> None:
    """Train a model; write RUN/checkpoint.pt, config.json, metrics.csv (per epoch) and result.json."""
    import torch  # imported here so that `dpp --help` stays fast

    from dpp.prune import parse_layers
    from dpp.recipes import recipe_config
    from dpp.train import run_data, save_run
    from dpp.train import train as run_train

    extra: dict[str, Any] = dict(
        logit_lr=logit_lr,
        noise_scale=noise_scale,
        noise_scale_conv=noise_scale_conv,
        entropy_weight=entropy_weight,
        warmup_fraction=warmup_fraction,
        init=init,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        schedule=schedule,
        t_start=t_start,
        t_end=t_end,
    )  # None: the recipe's
    extra.update(
        model_file=model_file,
        data=data,
        normalize=normalize,
        layers=parse_layers(layers),
        bn_recalibrate=bn_recalibrate,
    )
    out = check_new_run_dir(out, force)
    threads = check_threads(threads)
    cfg = recipe_config(
        recipe, model=model, method=method, k=k, n=n, granularity=granularity, bits=bits, seed=seed, **extra
    )
    torch.set_num_threads(threads)
    data_set = run_data(cfg)  # a bad --data / --normalize is refused here, before training
    console = Console()
    with epoch_progress(console) as progress:
        task = progress.add_task(f"{cfg.model} {method}", total=cfg.epochs, status="")

        def on_epoch(rec: dict[str, float]) -> None:
            progress.update(task, advance=1, status=epoch_status(rec))

        result = run_train(cfg, data_set, on_epoch=on_epoch)
    path = save_run(result, out)
    console.print(json.dumps(result.summary()))
    console.print(f"saved {path.parent}")
