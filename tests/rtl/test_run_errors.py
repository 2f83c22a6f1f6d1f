"""No hang: a start with a register out of its legal range finishes at once with ``done`` and ``error``.

Amaranth simulations of every array: a start right after reset (all registers 0), every register below / above its
range, then the same build runs the real layer bit-exactly with the model's counters (the refusal leaves nothing
behind).
"""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from dpp.errors import SimulationError
from dpp.kofn import CSRMatrix, KofNMatrix
from rtl.amaranth_sim import load_word, read_outputs, run_program
from rtl.build import make_array
from rtl.layout import COUNTERS, REGISTER_NAMES, SEL_REG, Layout
from rtl.params import ArrayParams
from rtl.program import LayerProgram, program_layer
from sim.model import predict_counters

COMMON = dict(k=2, n=4, pes=2, weight_bits=4, act_bits=4, out_bits=8, max_rows=4, max_cols=8, max_batch=2)
BUILDS = [
    ArrayParams(arch="kofn", **COMMON),
    ArrayParams(arch="dense", **COMMON),
    ArrayParams(arch="csr", **COMMON),
    ArrayParams(arch="csr", act_banks=2, **COMMON),
]
IDS = ["kofn", "dense", "csr", "csr_banked"]


def _program(params: ArrayParams) -> tuple[LayerProgram, object]:
    rng = np.random.default_rng(3)
    w = rng.integers(-8, 8, size=(3, 7))
    W = {
        "kofn": lambda: KofNMatrix.prune_magnitude(w, 2, 4, weight_bits=4),
        "csr": lambda: CSRMatrix.from_dense(w, rng.random(w.shape) < 0.5, 4),
    }.get(params.arch, lambda: w)()
    return program_layer(params, W, rng.integers(-8, 8, size=(2, 7)), rng.integers(-30, 30, size=3), 5000, 9, False), W


def _bad_values(lay: Layout, name: str) -> list[int]:
    """Every out-of-range value a register can hold: below its minimum, just above its maximum, all ones."""
    lo, hi = lay.register_range(name)
    top = (1 << lay.register_bits(name)) - 1
    return sorted({v for v in (lo - 1, hi + 1, top) if 0 <= v <= top and not lo <= v <= hi})


@pytest.mark.parametrize("params", BUILDS, ids=IDS)
def test_out_of_range_registers_are_refused_at_once(params: ArrayParams) -> None:
    lay = Layout(params)
    prog, W = _program(params)
    dut = make_array(params)
    cases = [(name, v) for name in lay.registers for v in _bad_values(lay, name)]
    assert {name for name, _ in cases} >= {"batch", "tiles", "last_pes", "multiplier", "shift"}
    seen: dict[str, object] = {}

    async def write(ctx, sel: int, addr: int, data: int) -> None:
        await load_word(ctx, dut, sel, addr, data)
        ctx.set(dut.load_en, 0)

    async def start(ctx) -> tuple[int, int, int]:
        """Pulse start; return (done, error, busy) one edge later."""
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        return ctx.get(dut.done), ctx.get(dut.error), ctx.get(dut.busy)

    async def wait_done(ctx, limit: int = 2000) -> int:
        for cycle in range(limit):
            if ctx.get(dut.done):
                return cycle
            await ctx.tick()
        raise AssertionError(f"done not raised within {limit} cycles")

    async def outputs(ctx) -> np.ndarray:
        return await read_outputs(ctx, dut, prog)

    async def bench(ctx) -> None:
        seen["after_reset"] = await start(ctx)  # every register is 0 after reset
        busy = []
        for _ in range(3):
            await ctx.tick()
            busy.append(ctx.get(dut.busy))
        seen["busy_after_reset"] = busy
        for sel, addr, data in prog.writes:
            await write(ctx, sel, addr, data)
        assert await start(ctx) == (0, 0, 1)
        await wait_done(ctx)
        seen["first"] = await outputs(ctx), {c: ctx.get(getattr(dut, c)) for c in COUNTERS}
        refused = []
        for name, value in cases:
            number = REGISTER_NAMES.index(name)
            await write(ctx, SEL_REG, number, value)
            flags = await start(ctx)
            counters = {c: ctx.get(getattr(dut, c)) for c in COUNTERS}
            refused.append((name, value, flags, set(counters.values())))
            await write(ctx, SEL_REG, number, prog.registers[name])
        seen["refused"] = refused
        seen["error_then_start"] = await start(ctx)
        await wait_done(ctx)
        seen["last"] = await outputs(ctx), {c: ctx.get(getattr(dut, c)) for c in COUNTERS}, ctx.get(dut.error)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()

    assert seen["after_reset"] == (1, 1, 0) and seen["busy_after_reset"] == [0, 0, 0]
    assert seen["refused"] == [(name, value, (1, 1, 0), {0}) for name, value in cases]  # done+error, counters 0
    assert seen["error_then_start"] == (0, 0, 1)  # the next good start clears error and runs
    model = predict_counters(
        params, prog.rows, prog.cols, prog.batch, prog.row_nnz, csr=W if params.arch == "csr" else None
    )
    for outs, counters, *error in (seen["first"], seen["last"]):
        np.testing.assert_array_equal(outs, prog.expected)
        assert counters == model and error in ([], [0])


def test_register_ranges_of_each_array() -> None:
    kofn, dense, csr, _ = (Layout(p) for p in BUILDS)
    assert {n: kofn.register_range(n) for n in kofn.registers} == {
        "batch": (1, 2),
        "tiles": (1, 2),
        "last_pes": (1, 2),
        "steps": (1, 2),
        "multiplier": (1, 32767),
        "shift": (1, 48),
        "relu": (0, 1),
    }
    assert dense.register_range("steps") == (1, 4) and dense.register_range("tail_lanes") == (1, 2)
    assert csr.register_range("cols") == (1, 8) and "steps" not in csr.registers


def test_tiles_past_the_build_would_have_hung_and_are_refused() -> None:
    """max_tiles = 4: the tiles register holds up to 7 but the sequencer's tile counter only reaches 3, so
    tiles = 5 never ended a vector before; now it is out of range and refused."""
    params = ArrayParams(arch="kofn", **{**COMMON, "max_rows": 8})
    lay = Layout(params)
    assert lay.register_range("tiles") == (1, 4) and lay.register_bits("tiles") == 3
    assert 5 in _bad_values(lay, "tiles")


def test_amaranth_runner_reports_a_refused_start() -> None:
    prog, _ = _program(BUILDS[0])
    prog.writes = [(s, a, d) for s, a, d in prog.writes if not (s == SEL_REG and a == REGISTER_NAMES.index("batch"))]
    with pytest.raises(SimulationError, match=r"start refused \(error high\)"):
        run_program(prog)
