"""``kofn_array`` and ``dense_array``: ``pes`` PEs of ``k`` lanes running in lock step on a broadcast
activation word, output-stationary per row tile, with no bubbles between tiles or vectors.

Loop order, one step per cycle: ``for b in batch: for t in tiles: for g in steps: for e in block``.
PE ``p`` computes row ``t*pes + p``; PEs past the last row (last tile) are switched off (no reads, no
writes, their lanes count as idle). Per vector, every weight word and every activation word of the vector
is re-read once per row tile (weights are not kept across the batch). The requantise/write-back of a tile
runs in its own pipeline stages while the next tile accumulates, so a run takes ``batch * tiles * steps *
block`` issue cycles plus the entry's ``drain_cycles`` of pipeline drain (:mod:`rtl.archs`, :mod:`sim.model`).

kofn: step = one weight word (k values x block elements + k indices) per PE, read once and held for
``block`` cycles; the activation word of (vector, group, element e) holds the n candidates of that element,
and each lane picks its own with an n:1 mux. So ``pes*k`` multipliers serve both arrays, and block > 1 costs
cycles (block per word), not multipliers. dense: step = k consecutive columns, the same ``pes*k`` lanes.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from rtl.archs import check_component
from rtl.blocks import popcount_tree
from rtl.control import array_load, array_members, attach_requantisers, build_shell
from rtl.layout import SEL_ACT, Layout, addr_bits
from rtl.params import ArrayParams
from rtl.pe import LockstepPE


class LockstepSequencer(wiring.Component):
    """Issues one step per cycle over (vector, tile, group, element) and the addresses of that step."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        p = layout.params
        super().__init__(
            {
                "launch": In(1),
                "batch": In(layout.register_bits("batch")),
                "tiles": In(layout.register_bits("tiles")),
                "steps": In(layout.register_bits("steps")),
                "last_pes": In(layout.register_bits("last_pes")),
                "valid": Out(1),
                "first": Out(1),
                "last": Out(1),
                "final": Out(1),
                "read_word": Out(1),
                "element": Out(range(max(p.block, 2))),
                "tile": Out(addr_bits(layout.tile_depth)),
                "w_addr": Out(addr_bits(layout.weight_depth)),
                "a_addr": Out(addr_bits(layout.act_depth)),
                "active": Out(range(p.pes + 1)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p = self.layout.params
        g = Signal.like(self.steps)
        b = Signal(range(p.max_batch + 1))
        a_base = Signal.like(self.a_addr)
        word_end, tile_end, last_tile, vec_end = Signal(), Signal(), Signal(), Signal()

        m.d.comb += [
            word_end.eq(self.element == p.block - 1),
            tile_end.eq(word_end & (g == self.steps - 1)),
            last_tile.eq(self.tile == self.tiles - 1),
            vec_end.eq(tile_end & last_tile),
            self.final.eq(self.valid & vec_end & (b == self.batch - 1)),
            self.first.eq((g == 0) & (self.element == 0)),
            self.last.eq(tile_end),
            self.read_word.eq(self.element == 0),
            self.active.eq(p.pes),
        ]
        with m.If(last_tile):
            m.d.comb += self.active.eq(self.last_pes)

        with m.If(self.launch):
            m.d.sync += [
                self.valid.eq(1),
                b.eq(0),
                self.tile.eq(0),
                g.eq(0),
                self.element.eq(0),
                self.w_addr.eq(0),
                self.a_addr.eq(0),
                a_base.eq(0),
            ]
        with m.Elif(self.valid):
            m.d.sync += [self.element.eq(self.element + 1), self.a_addr.eq(self.a_addr + 1)]
            with m.If(word_end):
                m.d.sync += [self.element.eq(0), g.eq(g + 1), self.w_addr.eq(self.w_addr + 1)]
            with m.If(tile_end):
                m.d.sync += [g.eq(0), self.tile.eq(self.tile + 1), self.a_addr.eq(a_base)]
            with m.If(vec_end):
                m.d.sync += [
                    self.tile.eq(0),
                    b.eq(b + 1),
                    self.w_addr.eq(0),
                    self.a_addr.eq(self.a_addr + 1),
                    a_base.eq(self.a_addr + 1),
                ]
            with m.If(self.final):
                m.d.sync += self.valid.eq(0)
        return m


class LockstepArray(wiring.Component):
    """The kofn or dense array (``params.arch``); ports in :func:`rtl.control.array_members`."""

    def __init__(self, params: ArrayParams) -> None:
        check_component("LockstepArray", LockstepArray, params)
        self.params, self.layout = params, Layout(params)
        super().__init__(array_members(self.layout))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lay, p = self.layout, self.params
        regs, ctrl, counters, outs = build_shell(m, self, lay, drain=lay.array_arch.drain_cycles)
        seq = m.submodules.seq = LockstepSequencer(lay)
        m.d.comb += [
            seq.launch.eq(ctrl.launch),
            seq.batch.eq(regs.batch),
            seq.tiles.eq(regs.tiles),
            seq.steps.eq(regs.steps),
            seq.last_pes.eq(regs.last_pes),
            ctrl.last_issue.eq(seq.final),
        ]
        load = array_load(self, lay)
        act = self._activation_memory(m, seq, load)

        # S0 -> S1 control registers (the memories' read latency).
        first1, last1, element1 = Signal(), Signal(), Signal.like(seq.element)
        m.d.sync += [first1.eq(seq.first), last1.eq(seq.last), element1.eq(seq.element)]
        out_word = Signal(outs.word_bits)
        results = []
        for i in range(p.pes):
            pe = m.submodules[f"pe{i}"] = LockstepPE(lay, i)
            on = seq.valid & (seq.active > i)
            valid1 = Signal(name=f"valid1_{i}")
            m.d.sync += valid1.eq(on)
            connect(m, load, pe.load)
            m.d.comb += [
                pe.rd_en.eq(on & seq.read_word),
                pe.rd_addr.eq(seq.w_addr),
                pe.bias_en.eq(on & seq.first),
                pe.bias_addr.eq(seq.tile),
                pe.act.eq(act),
                pe.element.eq(element1),
                pe.valid.eq(valid1),
                pe.first.eq(first1),
                pe.last.eq(last1),
            ]
            results.append((pe.res_valid, pe.res, out_word))
        with m.If(ctrl.launch):
            m.d.sync += out_word.eq(0)
        with m.Elif(results[0][0]):
            m.d.sync += out_word.eq(out_word + 1)
        writes = attach_requantisers(m, lay, regs, outs, results)
        self._count(m, seq, regs, ctrl, counters, writes)
        return m

    def _activation_memory(self, m: Module, seq: LockstepSequencer, load: Any) -> Signal:
        """The shared activation memory: written through the load port, read at ``a_addr`` every step.

        ``load``: the array's load interface (:func:`rtl.control.array_load`), typed ``Any`` as in
        :func:`rtl.pe.per_pe_write`: a :class:`~rtl.interfaces.FlatPorts` sets its ports at run time."""
        lay = self.layout
        mem = m.submodules.acts = Memory(shape=lay.act_word_bits, depth=lay.act_depth, init=[])
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [
            wr.en.eq(load.en & (load.sel == SEL_ACT)),
            wr.addr.eq(load.addr[: addr_bits(lay.act_depth)]),
            wr.data.eq(load.data),
            rd.en.eq(seq.valid),
            rd.addr.eq(seq.a_addr),
        ]
        return rd.data

    def _count(self, m: Module, seq: LockstepSequencer, regs, ctrl, counters, writes: list[Signal]) -> None:
        """Counter increments, taken at issue (S0) except ``out_bits_written`` (at the output write)."""
        lay, p = self.layout, self.params
        lanes = Signal(range(p.k + 1))
        macs = Signal(range(p.pes * p.k + 1))
        words = Signal(range(p.pes + 1))
        m.d.comb += lanes.eq(p.k)
        if "tail_lanes" in lay.registers:  # dense: the last chunk of a row has tail_lanes real columns
            with m.If(seq.last):
                m.d.comb += lanes.eq(regs.tail_lanes)
        with m.If(seq.valid):
            m.d.comb += macs.eq(seq.active * lanes)
            with m.If(seq.read_word):
                m.d.comb += words.eq(seq.active)
        m.d.comb += [
            counters.inc.mac_ops.eq(macs),
            counters.inc.lane_idle_cycles.eq(ctrl.busy * (p.pes * p.k - macs)),
            counters.inc.weight_bits_read.eq(words * lay.weight_value_bits),
            counters.inc.index_bits_read.eq(words * lay.weight_index_bits),
            counters.inc.act_bits_read.eq(seq.valid * lay.act_word_bits),
            counters.inc.out_bits_written.eq(popcount_tree(writes) * p.out_bits),
        ]
