"""Where the extra time of a DPP training step goes (the README's "Training step time" breakdown).

Runs :func:`dpp.bench.bench_step_times` three ways on LeNet-300, k=1, n=8, batch 64, 1 thread:

1. as is, with a timer around every fused-kernel call (``dpp.fused_mask._run``): the kernels' share of a step;
2. with every kernel call replaced by a no-op (outputs left unwritten, timing only): the Python, autograd and
   allocation work around the kernels;
3. plus this core's copy bandwidth on 1 MB and 4 MB tensors (the size of one layer's weights / of a step's
   Adam state), which bounds the memory-bound passes.

Usage: ``.venv/bin/python scripts/profile_train_step.py [--steps 200]``. A development tool, not part of the
package: it patches ``dpp.fused_mask._run`` for the duration of a run.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from dpp import fused_mask
from dpp.bench import WARMUP_STEPS, bench_step_times


@contextmanager
def patched_run(replacement: Callable[..., int]) -> Iterator[None]:
    original = fused_mask._run
    fused_mask._run = replacement
    try:
        yield
    finally:
        fused_mask._run = original


def bench(steps: int) -> dict[str, float]:
    return bench_step_times("lenet300", 1, 8, "weight", None, batch_size=64, steps=steps)


def copy_gbps(megabytes: int, repeats: int = 30) -> float:
    """Read + write bandwidth of ``b.copy_(a)`` on ``megabytes`` MB float32 tensors (median of ``repeats``)."""
    a = torch.randn(megabytes * 262144)
    b = torch.empty_like(a)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        b.copy_(a)
        times.append(time.perf_counter() - t0)
    return 2 * a.numel() * 4 / statistics.median(times) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="timed steps per method and run")
    steps = parser.parse_args().steps
    torch.set_num_threads(1)

    spent: dict[str, float] = defaultdict(float)
    original = fused_mask._run

    def timed(fn, head, dims, tail):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        rc = original(fn, head, dims, tail)
        spent[fn.__name__] += time.perf_counter() - t0
        return rc

    with patched_run(timed):
        r = bench(steps)
    dpp_steps = WARMUP_STEPS + steps  # every DPP step, warm-up included, called the kernels
    ms = {name: 1e3 * s / dpp_steps for name, s in spent.items()}
    print(
        f"as is: dense {1e3 * r['dense_step_seconds']:.2f} ms, DPP {1e3 * r['dpp_step_seconds']:.2f} ms, "
        f"ratio {r['ratio']:.2f}"
    )
    for m in ("dense", "dpp"):
        print(
            f"  {m}: forward {1e3 * r[f'{m}_forward_seconds']:.2f}, backward {1e3 * r[f'{m}_backward_seconds']:.2f},"
            f" optimizer {1e3 * r[f'{m}_optimizer_seconds']:.2f} ms"
        )
    print(
        f"  kernel calls per DPP step (mean): forward {ms.get('dpp_kofn_forward', 0):.2f} ms, "
        f"backward {ms.get('dpp_kofn_backward', 0):.2f} ms"
    )

    with patched_run(lambda *_: 0):
        r0 = bench(steps)
    print(
        f"kernels as no-ops: dense {1e3 * r0['dense_step_seconds']:.2f} ms, DPP "
        f"{1e3 * r0['dpp_step_seconds']:.2f} ms: the work around the kernels adds "
        f"{1e3 * (r0['dpp_forward_seconds'] - r0['dense_forward_seconds']):.2f} ms forward and "
        f"{1e3 * (r0['dpp_backward_seconds'] - r0['dense_backward_seconds']):.2f} ms backward"
    )
    print(f"copy bandwidth (read + write): 1 MB {copy_gbps(1):.1f} GB/s, 4 MB {copy_gbps(4):.1f} GB/s")


if __name__ == "__main__":
    main()
