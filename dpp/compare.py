"""DPP against its baselines on the same data and epoch budget (the work of ``dpp compare``)."""

from __future__ import annotations

import statistics
from typing import Any

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
