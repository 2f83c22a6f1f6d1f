"""Benchmark of the training step: DPP step time against the dense step time (used by ``dpp bench-train``)."""

from __future__ import annotations

import time
from typing import Any

WARMUP_STEPS = 10  #: untimed steps per method first (allocator, optimiser state, caches)
BLOCK_STEPS = 10  #: timed steps per method before switching to the other one
PHASES = ("forward", "backward", "optimizer")  #: the parts of a step timed separately (medians of each)


def bench_step_times(
    model: str,
    k: int,
    n: int,
    granularity: str,
    bits: int | None,
    batch_size: int,
    steps: int,
    seed: int = 0,
    warmup: int = WARMUP_STEPS,
    flush_denormals: bool = True,
    noise_scale: float | None = None,
) -> dict[str, float]:
    """Median seconds per optimiser step for dense and DPP training, and their ratio (``steps`` timed steps each,
    after ``warmup`` untimed ones, in alternating blocks of :data:`BLOCK_STEPS`), plus the median of each of
    :data:`PHASES` per method. ``flush_denormals`` as :attr:`dpp.train.TrainConfig.flush_denormals` (a long
    ``warmup`` without it shows why training flushes them: see :mod:`dpp.numerics`). ``noise_scale``: the DPP
    Gumbel noise factor (None: the training default; 0 skips the noise, which bounds what cheaper noise could
    gain)."""
    import statistics

    import torch
    import torch.nn.functional as F

    from dpp.data import load_dataset
    from dpp.models import DATASET_OF
    from dpp.numerics import flush_denormals as flush_mode
    from dpp.parametrize import masked_layers
    from dpp.train import TrainConfig, _optimizer, build_run_model, entropy_penalty, with_input_shape

    data = load_dataset(DATASET_OF[model])
    gen = torch.Generator().manual_seed(seed)
    runs: dict[str, Any] = {}
    extra: dict[str, Any] = {} if noise_scale is None else {"noise_scale": noise_scale}
    for method in ("dense", "dpp"):
        cfg = TrainConfig(
            model=model,
            method=method,
            k=k,
            n=n,
            granularity=granularity,
            bits=bits,
            epochs=1,
            seed=seed,
            batch_size=batch_size,
            warmup_fraction=0.0,  # masks on from the first step
            flush_denormals=flush_denormals,
            **extra,
        )
        cfg = with_input_shape(cfg, data)  # graph models (resnet8, mobilenet) are traced on the data's shape
        qnet = build_run_model(cfg)
        if method == "dpp" and not masked_layers(qnet.net):
            raise RuntimeError("bench-train: the DPP model has no masks attached")
        qnet.train()
        runs[method] = (cfg, qnet, _optimizer(qnet, cfg), [])

    phases: dict[str, dict[str, list[float]]] = {m: {p: [] for p in PHASES} for m in runs}

    def step(method: str) -> float:
        cfg, qnet, opt, _ = runs[method]
        idx = torch.randint(0, len(data.x_train), (batch_size,), generator=gen)
        t0 = time.perf_counter()
        loss = F.cross_entropy(qnet(data.x_train[idx]).float(), data.y_train[idx])
        if method == "dpp" and cfg.entropy_weight > 0:  # as in training: no regulariser work when lambda = 0
            loss = loss + cfg.entropy_weight * entropy_penalty(qnet.net)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        for name, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2)):
            phases[method][name].append(seconds)
        return t3 - t0

    with flush_mode(flush_denormals):  # as train() does, for both methods
        for method in runs:
            for _ in range(warmup):
                step(method)
        # alternate blocks of steps, so a shared machine's load drifts into both medians alike
        for start in range(0, steps, BLOCK_STEPS):
            for method, (_, _, _, times) in runs.items():
                times.extend(step(method) for _ in range(min(BLOCK_STEPS, steps - start)))
    out: dict[str, float] = {f"{m}_step_seconds": statistics.median(r[3]) for m, r in runs.items()}
    for m in runs:  # the timed steps only (the warm-up ones are the first entries)
        out.update({f"{m}_{p}_seconds": statistics.median(v[warmup:]) for p, v in phases[m].items()})
    out["ratio"] = out["dpp_step_seconds"] / out["dense_step_seconds"]
    return out
