"""Simulate layers on a generated array and check them: outputs bit for bit, counters against the model.

:func:`simulate_layers` runs many layers on one build in ONE simulator process (the layer shape and the
requantisation are run-time registers); :func:`simulate_layer` is the one-layer case. Each layer's outputs are
compared with :func:`dpp.reference.linear_int` and its counters with :func:`sim.model.predict_counters`.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dpp.errors import SimulationError
from dpp.kofn import WeightMatrix
from dpp.reference import linear_int
from rtl.params import ArrayParams
from sim.build import BuiltDesign, build_design
from sim.jobs import Job, RunStats, run_jobs

CYCLE_LIMIT_FACTOR = 2  #: a run may take this many times the model's cycles (plus a margin) before timing out
CYCLE_LIMIT_MARGIN = 1000


@dataclass(frozen=True)
class Layer:
    """One layer to run: weights in the array's format (or dense), a batch ``x`` and the requantisation."""

    W: WeightMatrix
    x: np.ndarray
    bias: np.ndarray
    multiplier: int
    shift: int
    relu: bool


@dataclass
class SimResult:
    """Outputs and counters of one simulated layer, with the reference and the model's prediction."""

    outputs: np.ndarray
    expected: np.ndarray
    counters: dict[str, int]
    model_counters: dict[str, int]
    run_cycles: int
    sim_cycles: int
    wall_seconds: float
    run_sim_cycles: int = 0
    run_wall_seconds: float = 0.0
    stats: RunStats | None = field(default=None, repr=False)

    @property
    def bit_exact(self) -> bool:
        return bool(np.array_equal(self.outputs, self.expected))

    @property
    def counters_match(self) -> bool:
        return self.counters == self.model_counters

    def first_mismatch(self) -> str | None:
        """``row r, batch index b: expected e, got g`` for the first differing output, else None."""
        diff = np.argwhere(self.outputs != self.expected)
        if not diff.size:
            return None
        b, r = (int(v) for v in diff[0])
        return (
            f"row {r}, batch index {b}: expected {int(self.expected[b, r])}, got {int(self.outputs[b, r])} "
            f"({len(diff)} of {self.outputs.size} outputs differ)"
        )

    def counter_mismatches(self) -> list[str]:
        return [
            f"{k}: model {self.model_counters.get(k)}, RTL {self.counters.get(k)}"
            for k in sorted(set(self.counters) | set(self.model_counters))
            if self.counters.get(k) != self.model_counters.get(k)
        ]

    def check(self, what: str = "layer") -> None:
        """Raise :class:`SimulationError` on the first output mismatch or counter disagreement."""
        bad = self.first_mismatch()
        if bad:
            raise SimulationError(f"{what}: output mismatch at {bad}")
        if not self.counters_match:
            raise SimulationError(f"{what}: counters differ from the model ({'; '.join(self.counter_mismatches())})")


def generator_version() -> str:
    """Hash of the RTL generator sources: part of the build cache key, so editing ``rtl/`` rebuilds."""
    import rtl

    h = hashlib.sha256()
    for path in sorted(Path(rtl.__file__).parent.rglob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def harness_depths(params: ArrayParams) -> tuple[int, int]:
    """Program words and output words the harness must hold for the largest layer of ``params``."""
    from rtl.layout import REGISTER_NAMES, Layout

    lay = Layout(params)
    per_pe = sum(lay.pe_memory_depth(name) for name in params.array_arch.pe_memories)
    prog = len(REGISTER_NAMES) + params.pes * per_pe + lay.act_depth
    return prog, 1 << lay.out_addr_bits


def build_array(params: ArrayParams, *, simulator: str = "verilator", waves: bool = False) -> BuiltDesign:
    """Generate and build the array of ``params`` (or reuse the cached build)."""
    from rtl.layout import OUT_READ_LATENCY
    from rtl.verilog import generate_verilog

    def make_verilog() -> str:
        with tempfile.TemporaryDirectory(prefix="dpp-rtl-") as tmp:
            return Path(generate_verilog(params, Path(tmp))).read_text()

    prog_depth, out_depth = harness_depths(params)
    key = {"params": params.to_dict(), "generator": generator_version()}
    return build_design(
        make_verilog,
        params.top_name,
        key,
        prog_depth=prog_depth,
        out_depth=out_depth,
        out_latency=OUT_READ_LATENCY,
        simulator=simulator,
        waves=waves,
    )


def _job_for(params: ArrayParams, layer: Layer, max_cycles: int | None) -> tuple[Job, Any, dict[str, int], np.ndarray]:
    from rtl.program import program_layer
    from sim.model import predict_counters

    prog = program_layer(params, layer.W, layer.x, layer.bias, layer.multiplier, layer.shift, layer.relu)
    csr = layer.W if params.array_arch.model_needs else None  # the columns set the banked array's conflicts
    model = predict_counters(params, prog.rows, prog.cols, prog.batch, row_nnz=prog.row_nnz, csr=csr)
    addrs = prog.output_addresses()
    limit = cycle_limit(model["cycles"]) if max_cycles is None else max_cycles
    return Job(prog.writes, int(addrs.max()) + 1, limit), prog, dict(model), addrs


def simulate_layers(
    params: ArrayParams,
    layers: Sequence[Layer],
    *,
    design: BuiltDesign | None = None,
    simulator: str = "verilator",
    waves: bool = False,
    workdir: Path | None = None,
    max_cycles: int | None = None,
) -> list[SimResult]:
    """Run ``layers`` one after the other on one build in one simulator process.

    Mismatches do not raise (see :meth:`SimResult.check`); a failed build or run, or a layer that exceeds
    its cycle limit (``max_cycles``, default :func:`cycle_limit` of the model's cycles) raises
    :class:`SimulationError`. ``waves`` writes ``dump.vcd`` into ``workdir``.
    """
    from rtl.layout import Layout

    if design is None:
        design = build_array(params, simulator=simulator, waves=waves)
    lay = Layout(params)
    prepared = [_job_for(params, layer, max_cycles) for layer in layers]
    results, stats = run_jobs(design, [p[0] for p in prepared], workdir=workdir, waves=waves)
    out = []
    for layer, (_job, _prog, model, addrs), res in zip(layers, prepared, results):
        used = np.array(res.out_words, dtype=object)[addrs]
        undefined = np.argwhere(used == None)  # noqa: E711 - elementwise test of an object array
        if undefined.size:
            b, r = (int(v) for v in undefined[0])
            raise SimulationError(f"output of row {r}, batch index {b} is undefined (X) in the simulation")
        got = np.vectorize(lay.decode_output, otypes=[np.int64])(used)
        expected = linear_int(
            layer.x,
            layer.W,
            layer.bias,
            layer.multiplier,
            layer.shift,
            params.out_bits,
            layer.relu,
            act_bits=params.act_bits,
        )
        out.append(
            SimResult(
                got.astype(np.int64),
                expected,
                res.counters,
                model,
                res.run_cycles,
                res.sim_cycles,
                res.wall_seconds,
                res.run_sim_cycles,
                res.run_wall_seconds,
                stats,
            )
        )
    return out


def simulate_layer(
    params: ArrayParams, W: WeightMatrix, x: Any, bias: Any, multiplier: int, shift: int, relu: bool, **kwargs: Any
) -> SimResult:
    """Simulate one layer; see :func:`simulate_layers` for the keyword arguments."""
    return simulate_layers(params, [Layer(W, np.asarray(x), np.asarray(bias), multiplier, shift, relu)], **kwargs)[0]


def cycle_limit(model_cycles: int) -> int:
    """Cycles a run may take before it counts as hung."""
    return CYCLE_LIMIT_FACTOR * int(model_cycles) + CYCLE_LIMIT_MARGIN
