# amaranth: UnusedElaboratable=no
"""Single blocks in Amaranth's simulator: index mux, adder tree, requantiser, run control, counters."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.hdl import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp.reference import requantize
from rtl.blocks import IndexMux, Requantiser, adder_tree, or_tree
from rtl.control import CounterBank, RunControl


def simulate(dut, bench) -> None:
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_index_mux_selects_every_slot() -> None:
    dut = IndexMux(5, 3)
    group = [3, 7, 0, 5, 1]
    word = sum(v << (3 * i) for i, v in enumerate(group))

    async def bench(ctx) -> None:
        ctx.set(dut.group, word)
        for i, v in enumerate(group):
            ctx.set(dut.index, i)
            await ctx.delay(1e-9)
            assert ctx.get(dut.data) == v

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


class _Tree(wiring.Component):
    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__({**{f"v{i}": In(signed(6)) for i in range(count)}, "total": Out(signed(12))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.comb += self.total.eq(adder_tree([getattr(self, f"v{i}") for i in range(self.count)]))
        return m


@pytest.mark.parametrize("count", [1, 2, 5, 8])
def test_adder_tree_sums_signed_values(count: int) -> None:
    dut = _Tree(count)
    vals = [(-32 + 13 * i) % 64 - 32 for i in range(count)]

    async def bench(ctx) -> None:
        for i, v in enumerate(vals):
            ctx.set(getattr(dut, f"v{i}"), v)
        await ctx.delay(1e-9)
        assert ctx.get(dut.total) == sum(vals)

    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()


def test_adder_tree_refuses_empty() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        adder_tree([])
    with pytest.raises(ValueError, match="at least one value"):
        or_tree([])


@pytest.mark.parametrize("count", [1, 2, 5])
def test_or_tree_is_any(count: int) -> None:
    bits = [Signal(name=f"b{i}") for i in range(count)]
    total = or_tree(bits)

    async def bench(ctx) -> None:
        for pattern in range(1 << count):
            for i, bit in enumerate(bits):
                ctx.set(bit, (pattern >> i) & 1)
            assert ctx.get(total) == (pattern != 0)

    sim = Simulator(Module())
    sim.add_testbench(bench)
    sim.run()


@settings(max_examples=10, deadline=None)
@given(acc_bits=st.integers(4, 40), out_bits=st.integers(2, 32), relu=st.booleans(), seed=st.integers(0, 2**31))
def test_requantiser_matches_reference(acc_bits: int, out_bits: int, relu: bool, seed: int) -> None:
    """Random and extreme accumulators, multipliers and shifts; result two cycles later with its address."""
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    accs = [lo, hi, 0, -1, 1] + [int(v) for v in rng.integers(lo, hi, size=15, endpoint=True)]
    cases = [(a, int(rng.integers(1, 2**15)), int(rng.integers(1, 49))) for a in accs]
    cases += [(lo, 2**15 - 1, 1), (hi, 2**15 - 1, 1), (lo, 1, 48), (hi, 2**15 - 1, 48)]
    dut = Requantiser(acc_bits, out_bits, addr_bits=8)

    async def bench(ctx) -> None:
        ctx.set(dut.relu, relu)
        for i, (acc, mult, shift) in enumerate(cases):
            want = int(requantize(np.array([acc]), mult, shift, out_bits, relu)[0])
            ctx.set(dut.multiplier, mult)
            ctx.set(dut.shift, shift)
            ctx.set(dut.in_valid, 1)
            ctx.set(dut.in_acc, acc)
            ctx.set(dut.in_addr, i)
            await ctx.tick()
            ctx.set(dut.in_valid, 0)
            assert not ctx.get(dut.out.en)
            await ctx.tick()
            assert ctx.get(dut.out.en) and ctx.get(dut.out.addr) == i
            assert ctx.get(dut.out.data) == want, (acc, mult, shift)
            await ctx.tick()
            assert not ctx.get(dut.out.en)

    simulate(dut, bench)


def test_requantiser_streams_one_result_per_cycle() -> None:
    """Back-to-back inputs with fixed layer registers come out in order, one per cycle."""
    dut = Requantiser(20, 8, addr_bits=4)
    accs = [-(1 << 19), -5000, -1, 0, 1, 777, 90000, (1 << 19) - 1]
    want = requantize(np.array(accs), 300, 9, 8, False).tolist()

    async def bench(ctx) -> None:
        ctx.set(dut.multiplier, 300)
        ctx.set(dut.shift, 9)
        got = []
        for i in range(len(accs) + 2):
            ctx.set(dut.in_valid, i < len(accs))
            ctx.set(dut.in_acc, accs[i] if i < len(accs) else 0)
            ctx.set(dut.in_addr, i % 16)
            await ctx.tick()
            if ctx.get(dut.out.en):
                got.append(ctx.get(dut.out.data))
        assert got == want

    simulate(dut, bench)


def test_run_control_start_busy_done() -> None:
    """busy from the cycle after start to `drain` cycles after the last issue; done holds until next start."""
    dut = RunControl(drain=3)

    async def bench(ctx) -> None:
        assert not ctx.get(dut.busy) and not ctx.get(dut.done)
        ctx.set(dut.start, 1)
        assert ctx.get(dut.launch)
        await ctx.tick()
        ctx.set(dut.start, 0)
        assert ctx.get(dut.busy) and not ctx.get(dut.done)
        ctx.set(dut.start, 1)  # ignored while busy
        assert not ctx.get(dut.launch)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.last_issue, 1)
        await ctx.tick()
        ctx.set(dut.last_issue, 0)
        trace = []
        for _ in range(5):
            trace.append((ctx.get(dut.busy), ctx.get(dut.done)))
            await ctx.tick()
        assert trace == [(1, 0), (1, 0), (1, 0), (0, 1), (0, 1)]
        ctx.set(dut.start, 1)
        await ctx.tick()
        assert ctx.get(dut.busy) and not ctx.get(dut.done)

    simulate(dut, bench)


def test_run_control_refuses_bad_drain() -> None:
    with pytest.raises(ValueError, match="drain must be >= 1"):
        RunControl(drain=0)


def test_counter_bank_counts_and_clears() -> None:
    names = ["mac_ops", "lane_idle_cycles", "weight_bits_read", "index_bits_read", "act_bits_read", "out_bits_written"]
    dut = CounterBank({name: 8 for name in names})

    async def bench(ctx) -> None:
        ctx.set(dut.busy, 1)
        for i, name in enumerate(names):
            ctx.set(getattr(dut.inc, name), i + 1)
        await ctx.tick().repeat(10)
        assert ctx.get(dut.counts.cycles) == 10
        assert [ctx.get(getattr(dut.counts, name)) for name in names] == [10 * (i + 1) for i in range(len(names))]
        ctx.set(dut.clear, 1)
        await ctx.tick()
        assert ctx.get(dut.counts.cycles) == 0 and ctx.get(dut.counts.mac_ops) == 0

    simulate(dut, bench)


def test_counter_bank_refuses_wrong_names() -> None:
    with pytest.raises(ValueError, match="inc_bits must name exactly"):
        CounterBank({"mac_ops": 4})


@pytest.mark.parametrize("block,pes,rows", [(1, 2, 3), (3, 3, 7)])
def test_lockstep_sequencer_walks_vectors_tiles_groups_elements(block: int, pes: int, rows: int) -> None:
    """One step per cycle in the documented order, with the documented addresses, then it stops."""
    from rtl.layout import Layout
    from rtl.lockstep import LockstepSequencer
    from rtl.params import ArrayParams

    params = ArrayParams(
        arch="kofn",
        k=1,
        n=2,
        block=block,
        pes=pes,
        weight_bits=2,
        act_bits=2,
        out_bits=2,
        max_rows=8,
        max_cols=18,
        max_batch=3,
    )
    dut = LockstepSequencer(Layout(params))
    batch, groups = 2, 3
    tiles = -(-rows // pes)
    want = [
        dict(
            tile=t,
            w_addr=t * groups + g,
            a_addr=(b * groups + g) * block + e,
            element=e,
            first=int(g == 0 and e == 0),
            last=int(g == groups - 1 and e == block - 1),
            read_word=int(e == 0),
            active=pes if t < tiles - 1 else rows - (tiles - 1) * pes,
        )
        for b in range(batch)
        for t in range(tiles)
        for g in range(groups)
        for e in range(block)
    ]

    async def bench(ctx) -> None:
        ctx.set(dut.batch, batch)
        ctx.set(dut.tiles, tiles)
        ctx.set(dut.steps, groups)
        ctx.set(dut.last_pes, rows - (tiles - 1) * pes)
        ctx.set(dut.launch, 1)
        await ctx.tick()
        ctx.set(dut.launch, 0)
        got = []
        while ctx.get(dut.valid):
            got.append({name: ctx.get(getattr(dut, name)) for name in want[0]})
            final = ctx.get(dut.final)
            await ctx.tick()
            assert final == (not ctx.get(dut.valid))
        assert got == want

    simulate(dut, bench)
