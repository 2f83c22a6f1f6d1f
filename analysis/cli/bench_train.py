"""``dpp bench-train``: the DPP training step time as a ratio to the dense step time (same model, batch).

Fairness: both runs are the real training step of :mod:`dpp.train` (same model, batch, data, loss, and the same
optimiser construction, :func:`dpp.train._optimizer`: fused Adam), timed in one process in alternating blocks.
Every speed-up that also applies to dense training is applied to it, so the ratio compares our best dense step
with our best DPP step. The DPP step uses the fused C mask kernel when it is built (:mod:`dpp.fused_mask`; the
output says which path ran). Timings on a shared machine are noisy: the output gives the load average, repeat
runs to see the spread.
"""

from __future__ import annotations

import typer
from rich.console import Console

from analysis.cli._common import check_threads
from dpp.bench import PHASES, WARMUP_STEPS, bench_step_times
from dpp.progress import step


def bench_train(
    model: str = typer.Option("lenet300", "--model"),
    k: int = typer.Option(1, "--k"),
    n: int = typer.Option(8, "--n"),
    granularity: str = typer.Option("weight", "--granularity"),
    bits: int = typer.Option(0, "--bits", help="Weight bits (0 = full precision)."),
    batch_size: int = typer.Option(64, "--batch-size"),
    steps: int = typer.Option(100, "--steps", help="Timed steps per method (median reported)."),
    threads: int = typer.Option(1, "--threads"),
    warmup: int = typer.Option(WARMUP_STEPS, "--warmup", min=0, help="Untimed steps per method first."),
    flush_denormals: bool = typer.Option(
        True,
        "--flush-denormals/--no-flush-denormals",
        help="Flush subnormal floats to zero, as training does (dpp.numerics).",
    ),
    noise_scale: float | None = typer.Option(
        None,
        "--noise-scale",
        min=0.0,
        help="DPP Gumbel noise factor (default: training's; 0 = no noise, a bound on its cost).",
    ),
    breakdown: bool = typer.Option(
        False, "--breakdown", help="Also print the median forward, backward and optimiser time of each method."
    ),
) -> None:
    """Report DPP step time / dense step time (target <= 1.5), both with the same optimiser (fused Adam)."""
    import os

    import torch

    from dpp import fused_mask

    torch.set_num_threads(check_threads(threads))
    with step(f"timing {steps} training steps of {model}, dense and DPP"):
        r = bench_step_times(
            model,
            k,
            n,
            granularity,
            bits or None,
            batch_size,
            steps,
            warmup=warmup,
            flush_denormals=flush_denormals,
            noise_scale=noise_scale,
        )
    path = "fused C kernel" if fused_mask.kernel() is not None else "torch path"
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    Console().print(
        f"{model} batch {batch_size}, {threads} thread(s), bits {bits or 'fp32'}: "
        f"dense {1e3 * r['dense_step_seconds']:.2f} ms/step, "
        f"DPP k={k} n={n} {granularity} ({path}"
        f"{'' if noise_scale is None else f', noise scale {noise_scale:g}'}) "
        f"{1e3 * r['dpp_step_seconds']:.2f} ms/step, "
        f"ratio {r['ratio']:.2f}x (both fused Adam, {warmup} warm-up steps, "
        f"denormals {'flushed' if flush_denormals else 'kept'}; load average {load})",
        soft_wrap=True,
    )
    if breakdown:
        for m in ("dense", "dpp"):
            parts = ", ".join(f"{p} {1e3 * r[f'{m}_{p}_seconds']:.2f}" for p in PHASES)
            Console().print(f"  {m}: {parts} ms (medians; they need not add up to the step's median)", soft_wrap=True)
