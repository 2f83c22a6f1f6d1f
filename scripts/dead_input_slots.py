"""Claim 3 of issue 18, measured: does a first-layer mask learn to skip inputs that carry nothing?

An input pixel that is 0 in every training image (the MNIST border) gives its weight and its mask logit no
gradient from the loss. In the first layer's weight-level groups that hold both such "dead" pixels and live ones,
a mask that has learnt something keeps live pixels; a mask left at its initial draw keeps dead ones at the chance
rate (the share of dead slots in those groups). Prints one line per run folder (written by ``dpp train`` on a model
whose first pruned layer is a Linear on the flattened image, e.g. LeNet-300-100) and the mean per method label.

    .venv/bin/python scripts/dead_input_slots.py RUN/ [RUN/ ...]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def dead_slot_share(kept: np.ndarray, dead: np.ndarray, n: int) -> tuple[float, float, int]:
    """(share of kept slots on dead inputs, chance share, number of mixed groups) over the groups of ``n``
    consecutive inputs that hold both dead and live inputs. ``kept``: (rows, cols) bool; ``dead``: (cols,) bool."""
    groups = kept.shape[1] // n
    g = kept[:, : groups * n].reshape(kept.shape[0], groups, n)
    dg = dead[: groups * n].reshape(groups, n)
    mixed = dg.any(axis=1) & ~dg.all(axis=1)
    kept_mixed = g[:, mixed, :]
    share = float((kept_mixed & dg[None, mixed, :]).sum() / max(kept_mixed.sum(), 1))
    chance = float((dg[mixed].sum(axis=1) / n).mean()) if mixed.any() else float("nan")
    return share, chance, int(mixed.sum())


def main(argv: list[str] | None = None) -> int:
    from dpp.data import load_data
    from dpp.errors import DPPError
    from dpp.models import DATASET_OF
    from dpp.parametrize import masked_layers
    from dpp.train import load_run

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path, help="run folders written by dpp train")
    args = ap.parse_args(argv)
    per_label: dict[str, list[float]] = defaultdict(list)
    dead_by_data: dict[str, np.ndarray] = {}
    for run in args.runs:
        try:
            cfg, model = load_run(run)
        except DPPError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        spec = cfg.data or DATASET_OF[cfg.model]
        if spec not in dead_by_data:
            x = load_data(spec).x_train.numpy()
            dead_by_data[spec] = (x.reshape(len(x), -1) == 0).all(axis=0)
        dead = dead_by_data[spec]
        _, _, mask = masked_layers(model.net)[0]
        kept = mask.weight_mask().detach().numpy() != 0
        if kept.ndim != 2 or kept.shape[1] != dead.size:
            print(
                f"{run}: the first pruned layer's weight has shape {kept.shape}, expected (rows, {dead.size}): "
                "a Linear on the flattened image",
                file=sys.stderr,
            )
            return 2
        share, chance, mixed = dead_slot_share(kept, dead, cfg.n)
        label = cfg.method if cfg.method != "dpp" else f"dpp ({cfg.recipe} recipe)"
        per_label[label].append(share)
        print(
            f"{run}: {label}, seed {cfg.seed}: {mixed} mixed groups, "
            f"kept slots on dead inputs {share:.3f} (chance {chance:.3f})"
        )
    for label, shares in per_label.items():
        sd = statistics.stdev(shares) if len(shares) > 1 else 0.0
        print(f"{label}: {statistics.mean(shares):.3f} ± {sd:.3f} over {len(shares)} run(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
