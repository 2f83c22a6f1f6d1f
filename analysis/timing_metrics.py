"""Time, throughput and energy-delay per inference at a design's own clock: one formula for sweeps, the flow's
report and the README table.

``time = cycles / Fmax``; the energy model has no clock-dependent term (no leakage), so energy per inference is
the counters' energy whatever the clock, and ``EDP = energy x time``. A design without an Fmax (it does not fit
the part, or its tools stopped) has NaN time, throughput and EDP, and its energy still.
"""

from __future__ import annotations

import math

#: The sweep / report columns :func:`per_inference` fills, in order.
PER_INFERENCE_COLUMNS = ("fmax_mhz", "time_per_inference_s", "inferences_per_s", "energy_per_inference_j", "edp_js")


def per_inference(cycles: float, energy_pj: float, fmax_mhz: float | None) -> dict[str, float]:
    """:data:`PER_INFERENCE_COLUMNS` of one inference taking ``cycles`` clock cycles and ``energy_pj`` pJ on a
    design clocked at ``fmax_mhz`` (``None`` / NaN / <= 0: no clock, NaN times)."""
    fmax = float(fmax_mhz) if fmax_mhz is not None and fmax_mhz == fmax_mhz and fmax_mhz > 0 else math.nan
    time_s = float(cycles) / (fmax * 1e6) if not math.isnan(fmax) else math.nan
    return {"fmax_mhz": fmax, **per_inference_in(time_s, energy_pj)}


def per_inference_in(time_s: float, energy_pj: float) -> dict[str, float]:
    """The time-derived columns (all but ``fmax_mhz``) of an inference taking ``time_s`` seconds (NaN: unknown)
    and ``energy_pj`` pJ, for a network whose layers run on builds with different clocks."""
    energy_j = float(energy_pj) * 1e-12
    time_s = float(time_s)
    return {
        "time_per_inference_s": time_s,
        "inferences_per_s": 1.0 / time_s if time_s > 0 else math.nan,
        "energy_per_inference_j": energy_j,
        "edp_js": energy_j * time_s,
    }
