"""Temperature schedules for the Gumbel-softmax relaxation: constant, exponential or linear anneal.

The paper's code anneals linearly, ``T = 5 * (1 - 0.9 * epoch / (epochs - 1))`` (5.0 down to 0.5): that is
``TemperatureSchedule("linear", start=5.0, end=0.5)``, the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dpp.checks import check_int
from dpp.errors import DPPError

SCHEDULE_KINDS = ("constant", "exponential", "linear")


@dataclass(frozen=True)
class TemperatureSchedule:
    """Temperature as a function of (epoch, epochs); ``end`` is reached at the last epoch."""

    kind: str = "linear"
    start: float = 5.0
    end: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise DPPError(f"schedule kind must be one of {SCHEDULE_KINDS} (got {self.kind!r})")
        for name in ("start", "end"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise DPPError(f"temperature {name} must be a finite number > 0 (got {value!r})")

    def __call__(self, epoch: int, epochs: int) -> float:
        """Temperature of ``epoch`` (0-based) in a run of ``epochs`` epochs."""
        epochs = check_int("epochs", epochs, lo=1)
        epoch = check_int("epoch", epoch, lo=0, hi=epochs - 1)
        frac = epoch / (epochs - 1) if epochs > 1 else 1.0
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * frac)
        return float(self.start * (self.end / self.start) ** frac)
