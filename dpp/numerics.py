"""Floating-point environment of training: subnormal floats flushed to zero (FTZ/DAZ) while a run trains.

Why: a DPP layer has one logit per weight, and most logits belong to slots that the relaxation gives an almost
zero gradient (``exp((p - max) / T)`` far below 1). Adam's moments of those logits then decay geometrically
(``m`` by 0.9 per step)
into the subnormal range below 1.2e-38, where every x86 multiply or add that reads or makes one costs a
microcode assist of ~100 cycles. Measured here on LeNet-300 at k=1, n=8, batch 64 after 2,000 warm-up steps
(``dpp bench-train --warmup 2000 --breakdown [--no-flush-denormals]``): with subnormals kept, Adam took 2.81 ms
of the 5.38 ms DPP step (0.79 ms of the 2.12 ms dense step); flushed, 0.76 of 3.40 ms (dense 0.43 of 1.82 ms).
Values that small carry no information for training (the README's accuracy table was re-measured with them
flushed); TensorFlow's CPU thread pool runs every op under ``port::ScopedFlushDenormal`` for the same reason.

``torch.set_flush_denormal`` sets the mode of the calling thread only (torch's intra-op worker threads keep
theirs); there is no getter, so :func:`flush_denormals` restores the default (off) on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def flush_denormals(enabled: bool = True) -> Iterator[bool]:
    """Flush subnormal floats to zero in this thread for the ``with`` block; yields whether the CPU supports it
    (x86 with SSE3; elsewhere nothing changes). ``enabled=False`` leaves the mode alone."""
    if not enabled:
        yield False
        return
    supported = torch.set_flush_denormal(True)
    try:
        yield supported
    finally:
        if supported:
            torch.set_flush_denormal(False)
