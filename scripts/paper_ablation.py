"""Ablation of the paper recipe (issue 18): which of its components keeps DPP below magnitude k-of-n.

Each variant is the paper recipe with ONE option changed to the warm-up recipe's value (or, for the budget and
the noise, to a stated alternative), trained on the study's data split (:func:`dpp.compare.study_data`: 10 % of the
training part held out as validation) for each seed. Prints a Markdown table (validation and test accuracy, mean
± std over seeds) and writes every run to ``--out`` (JSON). Choose by validation accuracy; the test column is for
the record.

    .venv/bin/python scripts/paper_ablation.py --model lenet300 --granularity filter --k 1 --n 4 \\
        --seeds 0,1,2 --out ablation.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

#: variant name -> options changed from the paper recipe (one component each)
VARIANTS: dict[str, dict[str, Any]] = {
    "paper recipe": {},
    "dense warm-up (half the epochs)": {"warmup_fraction": 0.5},
    "magnitude logit init": {"init": "magnitude"},
    "no entropy regulariser": {"entropy_weight": 0.0},
    "logit lr 1e-2": {"logit_lr": 1e-2},
    "noise c = 0.01": {"noise_scale": 0.01},
    "temperature 5 -> 0.1": {"t_end": 0.1},
    "twice the epochs": {"epochs_factor": 2},
}


def run_variant(model: str, granularity: str, k: int, n: int, seed: int, change: dict[str, Any]) -> dict[str, Any]:
    """Train one (variant, seed) on the study split; its validation and test accuracy."""
    from dpp.compare import VALIDATION_FRACTION, study_data
    from dpp.models import DATASET_OF
    from dpp.recipes import PAPER, recipe_config
    from dpp.train import evaluate, train

    change = dict(change)
    epochs = PAPER.epochs * int(change.pop("epochs_factor", 1))
    fit, x_test, y_test = study_data(DATASET_OF[model], VALIDATION_FRACTION)
    cfg = recipe_config("paper", model=model, method="dpp", k=k, n=n, granularity=granularity, seed=seed,
                        epochs=epochs, **change)  # fmt: skip
    res = train(cfg, fit)
    return {"val_accuracy": res.test_accuracy, "test_accuracy": evaluate(res.model, x_test, y_test),
            "seconds": res.seconds, "epochs": epochs}  # fmt: skip


def mean_std(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.fmean(values):.2f} ± {100 * sd:.2f}"


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="lenet300")
    ap.add_argument("--granularity", default="filter")
    ap.add_argument("--k", type=int, default=1)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated variant names")
    ap.add_argument("--out", required=True, help="JSON file of every run")
    args = ap.parse_args(argv)
    names = [v for v in args.variants.split(",") if v]
    unknown = [v for v in names if v not in VARIANTS]
    if unknown:
        print(f"error: unknown variant {unknown[0]!r} (expected one of {', '.join(VARIANTS)})", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    runs = []
    for name in names:
        for seed in seeds:
            t0 = time.perf_counter()
            r = run_variant(args.model, args.granularity, args.k, args.n, seed, VARIANTS[name])
            runs.append({"variant": name, "seed": seed, **r})
            print(f"{name}, seed {seed}: val {r['val_accuracy']:.4f} test {r['test_accuracy']:.4f} "
                  f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)  # fmt: skip
    out = Path(args.out).resolve()
    out.write_text(json.dumps({"model": args.model, "granularity": args.granularity, "k": args.k, "n": args.n,
                               "seeds": seeds, "variants": {v: VARIANTS[v] for v in names}, "runs": runs},
                              indent=1) + "\n")  # fmt: skip
    print("| variant (paper recipe with one change) | validation % | test % |\n|---|---|---|")
    for name in names:
        mine = [r for r in runs if r["variant"] == name]
        print(f"| {name} | {mean_std([r['val_accuracy'] for r in mine])} | "
              f"{mean_std([r['test_accuracy'] for r in mine])} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
