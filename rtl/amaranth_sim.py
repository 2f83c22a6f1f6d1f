"""Run one :class:`~rtl.program.LayerProgram` on an array in Amaranth's own simulator (no external tools).

Slow (tens of thousands of cycles per second): for unit tests of small layers. Long runs go through the
Verilator runner in ``sim/``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.sim import Simulator

from dpp.errors import DPPError, SimulationError
from rtl.build import make_array
from rtl.layout import COUNTERS, OUT_READ_LATENCY
from rtl.program import LayerProgram


@dataclass
class AmaranthRun:
    """Outputs ``(batch, rows)`` read back through ``out_addr``/``out_data`` and the seven counters."""

    outputs: np.ndarray
    counters: dict[str, int]


def run_program(prog: LayerProgram, max_cycles: int = 200_000) -> AmaranthRun:
    """Load ``prog`` through the load port, pulse ``start``, wait for ``done``, read outputs and counters."""
    return run_programs([prog], max_cycles)[0]


def run_programs(progs: list[LayerProgram], max_cycles: int = 200_000) -> list[AmaranthRun]:
    """Run several layers back to back on one build in one simulation (all must share ``params``)."""
    if not progs:
        raise DPPError("run_programs needs at least one LayerProgram (got none)")
    params = progs[0].params
    for prog in progs[1:]:
        if prog.params != params:
            raise DPPError(f"all programs must share one build (got {prog.params} and {params})")
    dut = make_array(params)
    runs: list[AmaranthRun] = []

    async def bench(ctx) -> None:
        for prog in progs:
            await _load(ctx, dut, prog)
            await _start_and_wait(ctx, dut, max_cycles)
            runs.append(await _read_back(ctx, dut, prog))

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return runs


async def load_word(ctx, dut, sel: int, addr: int, data: int) -> None:
    """One write through the load port: ``load_en`` high with sel/addr/data for one clock edge (left high)."""
    ctx.set(dut.load_en, 1)
    ctx.set(dut.load_sel, sel)
    ctx.set(dut.load_addr, addr)
    ctx.set(dut.load_data, data)
    await ctx.tick()


async def _load(ctx, dut, prog: LayerProgram) -> None:
    for sel, addr, data in prog.writes:
        await load_word(ctx, dut, sel, addr, data)
    ctx.set(dut.load_en, 0)


async def _start_and_wait(ctx, dut, max_cycles: int) -> None:
    ctx.set(dut.start, 1)
    await ctx.tick()
    ctx.set(dut.start, 0)
    for _ in range(max_cycles):
        if ctx.get(dut.done):
            if ctx.get(dut.error):
                raise SimulationError("start refused (error high): a register lies outside its legal range")
            return
        await ctx.tick()
    raise SimulationError(f"array did not finish within {max_cycles} cycles")


async def read_outputs(ctx, dut, prog: LayerProgram) -> np.ndarray:
    """The layer's outputs ``(batch, rows)`` read back through ``out_addr``/``out_data`` (read latency waited)."""
    addrs = prog.output_addresses()
    outs = np.zeros(addrs.shape, dtype=np.int64)
    for idx, addr in np.ndenumerate(addrs):
        ctx.set(dut.out_addr, int(addr))
        await ctx.tick().repeat(OUT_READ_LATENCY)
        outs[idx] = ctx.get(dut.out_data)
    return outs


async def _read_back(ctx, dut, prog: LayerProgram) -> AmaranthRun:
    outs = await read_outputs(ctx, dut, prog)
    return AmaranthRun(outs, {name: int(ctx.get(getattr(dut, name))) for name in COUNTERS})
