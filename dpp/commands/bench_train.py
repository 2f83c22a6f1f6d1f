"""Old import path: :mod:`dpp.bench`."""

from dpp.bench import BLOCK_STEPS, PHASES, WARMUP_STEPS, bench_step_times  # noqa: F401
