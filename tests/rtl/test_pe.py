# amaranth: UnusedElaboratable=no
"""One lock-step PE on its documented schedule: memory reads at S0, operands at S1, row total at S3."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth.sim import Simulator

from rtl.layout import SEL_BIAS, SEL_WEIGHT, Layout
from rtl.params import ArrayParams
from rtl.pe import LockstepPE


def _drive_row(arch: str, block: int, seed: int) -> None:
    """Two rows of 3 words each through PE 1 of a 2-PE build; compare with numpy."""
    params = ArrayParams(
        arch=arch,
        k=2,
        n=4,
        block=block,
        pes=2,
        weight_bits=5,
        act_bits=6,
        out_bits=8,
        max_rows=4,
        max_cols=3 * 4 * block,
    )
    lay = Layout(params)
    rng = np.random.default_rng(seed)
    words, acts, totals = [], [], []
    for _row in range(2):
        bias = int(rng.integers(-1000, 1000))
        total = bias
        for _g in range(3):
            vals = rng.integers(-16, 16, size=(2, block))
            if arch == "kofn":
                idx = np.sort(rng.choice(4, size=2, replace=False))
                words.append(int(lay.pack_kofn_words(vals[None], idx[None])[0]))
                group = rng.integers(-32, 32, size=(block, 4))  # activation words per element
                total += int(sum(vals[j, e] * group[e, idx[j]] for j in range(2) for e in range(block)))
                acts.append([int(lay.pack_act_words(group[e][None])[0]) for e in range(block)])
            else:
                words.append(int(lay.pack_dense_words(vals[:, 0][None])[0]))
                a = rng.integers(-32, 32, size=2)
                total += int(vals[:, 0] @ a)
                acts.append([int(lay.pack_act_words(a[None])[0])])
        totals.append((bias, total))
    dut = LockstepPE(lay, 1)

    async def bench(ctx) -> None:
        ctx.set(dut.load.en, 1)
        for i, w in enumerate(words):
            ctx.set(dut.load.sel, SEL_WEIGHT)
            ctx.set(dut.load.addr, lay.per_pe_address(1, i, lay.weight_depth))
            ctx.set(dut.load.data, w)
            await ctx.tick()
        for t, (bias, _) in enumerate(totals):
            ctx.set(dut.load.sel, SEL_BIAS)
            ctx.set(dut.load.addr, lay.per_pe_address(1, t, lay.tile_depth))
            ctx.set(dut.load.data, bias & ((1 << params.acc_bits) - 1))
            await ctx.tick()
        ctx.set(dut.load.sel, SEL_WEIGHT)  # a write to PE 0 must not reach PE 1
        ctx.set(dut.load.addr, lay.per_pe_address(0, 0, lay.weight_depth))
        ctx.set(dut.load.data, 0)
        await ctx.tick()
        ctx.set(dut.load.en, 0)
        steps = [(t, g, e) for t in range(2) for g in range(3) for e in range(block)]
        results = []
        for i in range(len(steps) + 3):
            if i < len(steps):  # S0
                t, g, e = steps[i]
                ctx.set(dut.rd_en, e == 0)
                ctx.set(dut.rd_addr, t * 3 + g)
                ctx.set(dut.bias_en, g == 0 and e == 0)
                ctx.set(dut.bias_addr, t)
            else:
                ctx.set(dut.rd_en, 0)
                ctx.set(dut.bias_en, 0)
            await ctx.tick()
            if i < len(steps):  # S1 operands of step i
                t, g, e = steps[i]
                ctx.set(dut.act, acts[t * 3 + g][e])
                ctx.set(dut.element, e)
                ctx.set(dut.valid, 1)
                ctx.set(dut.first, g == 0 and e == 0)
                ctx.set(dut.last, g == 2 and e == block - 1)
            else:
                ctx.set(dut.valid, 0)
            if ctx.get(dut.res_valid):
                results.append(ctx.get(dut.res))
        assert results == [total for _, total in totals]

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("arch,block", [("kofn", 1), ("kofn", 3), ("dense", 1)])
@pytest.mark.parametrize("seed", [0, 1])
def test_pe_accumulates_rows_on_schedule(arch: str, block: int, seed: int) -> None:
    _drive_row(arch, block, seed)


def test_pe_refuses_csr() -> None:
    params = ArrayParams(arch="csr", k=2, n=4, pes=1, weight_bits=4, act_bits=4, out_bits=4)
    with pytest.raises(ValueError, match="LockstepPE serves arch 'kofn' or 'dense'"):
        LockstepPE(Layout(params), 0)
