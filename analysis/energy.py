"""Per-access energy model applied to the seven hardware counters → energy per layer and per inference.

Each counter is priced by one rule, with the constants and their sources in :mod:`analysis.energy_constants`:

* ``mac_ops``: one ``weight_bits x act_bits`` multiply, one ``acc_bits`` add, one ``acc_bits`` register write;
* ``lane_idle_cycles``: an idle lane still clocks its ``weight_bits + act_bits + acc_bits`` pipeline bits;
* ``weight_bits_read`` / ``index_bits_read`` / ``act_bits_read``: SRAM read energy per bit of the memory
  that holds them (priced by that memory's size); ``out_bits_written``: SRAM write energy per bit;
* ``cycles`` carries no energy by itself here (no leakage term): it is the latency, reported separately.

Energy per inference is the layer energy divided by the batch the counters were measured on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from analysis import energy_constants as C
from dpp.checks import check_int
from dpp.errors import DPPError
from rtl.layout import COUNTERS

MEMORIES = ("weight", "index", "act", "out")
COMPONENTS = ("mac_mult", "mac_add", "acc_register", "idle_lanes", "weight_read", "index_read", "act_read", "out_write")


def mult_energy_pj(weight_bits: int, act_bits: int) -> float:
    """One ``weight_bits x act_bits`` integer multiply (quadratic rule anchored at 8x8)."""
    w = check_int("weight_bits", weight_bits, lo=1)
    a = check_int("act_bits", act_bits, lo=1)
    return C.MUL_8x8_PJ * (w * a) / 64.0


def add_energy_pj(bits: int) -> float:
    """One ``bits``-wide integer add (linear rule anchored at 8 bits)."""
    return C.ADD_8_PJ * check_int("bits", bits, lo=1) / 8.0


def sram_read_pj_per_bit(memory_bits: int) -> float:
    """Read energy per bit of an SRAM holding ``memory_bits`` bits (log-log interpolation of [H14])."""
    size = max(check_int("memory_bits", memory_bits, lo=0) / 8.0, float(C.SRAM_MIN_BYTES))
    pts = [(math.log(s), math.log(e / C.SRAM_ACCESS_WORD_BITS)) for s, e in C.SRAM_POINTS_BYTES_PJ_PER_64B]
    x = math.log(size)
    # segment: first for x below the 2nd point, last for x above the 2nd-to-last, else the containing one
    i = 0
    while i < len(pts) - 2 and x > pts[i + 1][0]:
        i += 1
    (x0, y0), (x1, y1) = pts[i], pts[i + 1]
    return math.exp(y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def sram_write_pj_per_bit(memory_bits: int) -> float:
    """Write energy per bit (``SRAM_WRITE_OVER_READ`` times the read energy)."""
    return C.SRAM_WRITE_OVER_READ * sram_read_pj_per_bit(memory_bits)


@dataclass(frozen=True)
class EnergyBreakdown:
    """Energy of one layer run (``batch`` inputs), in pJ, split by component."""

    components_pj: dict[str, float]
    batch: int
    cycles: int
    unit_pj: dict[str, float] = field(default_factory=dict)

    @property
    def total_pj(self) -> float:
        return float(sum(self.components_pj.values()))

    @property
    def per_inference_pj(self) -> float:
        return self.total_pj / self.batch

    def columns(self, prefix: str = "energy_") -> dict[str, float]:
        """Flat columns for a table: total, per inference, and each component in pJ."""
        cols = {f"{prefix}total_pj": self.total_pj, f"{prefix}per_inference_pj": self.per_inference_pj}
        cols.update({f"{prefix}{k}_pj": v for k, v in self.components_pj.items()})
        return cols


def check_counters(counters: Mapping[str, int]) -> dict[str, int]:
    """Exactly the seven counter names, each a non-negative integer."""
    missing = [c for c in COUNTERS if c not in counters]
    extra = [c for c in counters if c not in COUNTERS]
    if missing or extra:
        raise DPPError(f"counters must have exactly {list(COUNTERS)} (missing {missing}, unknown {extra})")
    return {c: check_int(c, counters[c], lo=0) for c in COUNTERS}


def layer_energy(
    counters: Mapping[str, int],
    *,
    weight_bits: int,
    act_bits: int,
    acc_bits: int,
    memory_bits: Mapping[str, int],
    batch: int = 1,
) -> EnergyBreakdown:
    """Price the seven counters of one layer run; ``memory_bits`` gives the size of each of ``MEMORIES``."""
    c = check_counters(counters)
    batch = check_int("batch", batch, lo=1)
    acc_bits = check_int("acc_bits", acc_bits, lo=1)
    unknown = [m for m in memory_bits if m not in MEMORIES]
    missing = [m for m in MEMORIES if m not in memory_bits]
    if unknown or missing:
        raise DPPError(f"memory_bits must have keys {list(MEMORIES)} (missing {missing}, unknown {unknown})")
    unit = {
        "mac_mult": mult_energy_pj(weight_bits, act_bits),
        "mac_add": add_energy_pj(acc_bits),
        "acc_register": C.REG_WRITE_PJ_PER_BIT * acc_bits,
        "idle_lanes": C.REG_WRITE_PJ_PER_BIT * C.REG_IDLE_CLOCK_FRACTION * (weight_bits + act_bits + acc_bits),
        "weight_read": sram_read_pj_per_bit(memory_bits["weight"]),
        "index_read": sram_read_pj_per_bit(memory_bits["index"]),
        "act_read": sram_read_pj_per_bit(memory_bits["act"]),
        "out_write": sram_write_pj_per_bit(memory_bits["out"]),
    }
    count = {
        "mac_mult": c["mac_ops"],
        "mac_add": c["mac_ops"],
        "acc_register": c["mac_ops"],
        "idle_lanes": c["lane_idle_cycles"],
        "weight_read": c["weight_bits_read"],
        "index_read": c["index_bits_read"],
        "act_read": c["act_bits_read"],
        "out_write": c["out_bits_written"],
    }
    comps = {k: unit[k] * count[k] for k in COMPONENTS}
    return EnergyBreakdown(comps, batch, c["cycles"], unit)


def network_energy(layers: Iterable[EnergyBreakdown]) -> EnergyBreakdown:
    """Sum of per-layer breakdowns of one network run on the same batch (cycles add: layers run in turn)."""
    layers = list(layers)
    if not layers:
        raise DPPError("network_energy needs at least one layer")
    batches = {b.batch for b in layers}
    if len(batches) != 1:
        raise DPPError(f"all layers must be measured on the same batch (got batches {sorted(batches)})")
    comps = {k: sum(b.components_pj.get(k, 0.0) for b in layers) for k in COMPONENTS}
    return EnergyBreakdown(comps, layers[0].batch, sum(b.cycles for b in layers))
