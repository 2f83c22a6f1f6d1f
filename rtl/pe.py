"""The processing element of the lock-step arrays (kofn and dense): own weight + bias memories, k lanes,
adder tree and an output-stationary accumulator.

Fixed schedule (stage = cycles after the array issues a step, S0):
S0 the array drives ``rd_*`` / ``bias_*`` (memory reads); S1 read data + broadcast ``act`` word arrive with
the step's ``valid/first/last/element``: each lane selects its weight value and its activation (kofn: n:1
index mux; dense: lane j takes activation j) and the k products are registered; S2 adder tree + accumulate
(``first`` starts from the row's bias); on ``last`` the row total appears on ``res`` one cycle later (S3).
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.archs import check_component
from rtl.blocks import IndexMux, adder_tree
from rtl.interfaces import LoadSignature
from rtl.layout import SEL_BIAS, SEL_WEIGHT, Layout, addr_bits


def per_pe_write(m: Module, mem: Memory, load: Any, sel: int, pe: int, layout: Layout) -> None:
    """Connect ``mem``'s write port to the load port ``load`` (a :class:`~rtl.interfaces.LoadSignature`
    interface): ``load.sel == sel`` and the PE field of ``load.addr`` == ``pe``."""
    word_bits = addr_bits(mem.depth)
    wr = mem.write_port()
    hit = load.en & (load.sel == sel)
    if layout.pe_bits:
        hit = hit & (load.addr[word_bits : word_bits + layout.pe_bits] == pe)
    m.d.comb += [wr.en.eq(hit), wr.addr.eq(load.addr[:word_bits]), wr.data.eq(load.data)]


class LockstepPE(wiring.Component):
    """One PE of ``kofn_array`` / ``dense_array`` (rows ``t*pes + index``); schedule in the module docstring."""

    def __init__(self, layout: Layout, index: int) -> None:
        self.layout, self.index = layout, index
        p = layout.params
        from rtl.lockstep import LockstepArray  # the array this PE serves (it imports this module)

        check_component("LockstepPE", LockstepArray, p, verb="serves")
        super().__init__(
            {
                "load": In(LoadSignature.of(layout)),
                "rd_en": In(1),
                "rd_addr": In(addr_bits(layout.weight_depth)),
                "bias_en": In(1),
                "bias_addr": In(addr_bits(layout.tile_depth)),
                "act": In(layout.act_word_bits),
                "element": In(range(max(p.block, 2))),
                "valid": In(1),
                "first": In(1),
                "last": In(1),
                "res_valid": Out(1),
                "res": Out(signed(p.acc_bits)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lay, p = self.layout, self.layout.params
        weights = Memory(shape=lay.weight_word_bits, depth=lay.weight_depth, init=[])
        biases = Memory(shape=signed(p.acc_bits), depth=lay.tile_depth, init=[])
        m.submodules.weights, m.submodules.biases = weights, biases
        per_pe_write(m, weights, self.load, SEL_WEIGHT, self.index, lay)
        per_pe_write(m, biases, self.load, SEL_BIAS, self.index, lay)
        w_rd, b_rd = weights.read_port(), biases.read_port()
        m.d.comb += [
            w_rd.en.eq(self.rd_en),
            w_rd.addr.eq(self.rd_addr),
            b_rd.en.eq(self.bias_en),
            b_rd.addr.eq(self.bias_addr),
        ]

        # S1 (comb): lane operands.
        products = [self._lane(m, j, w_rd.data) for j in range(p.k)]
        # S1 -> S2 registers.
        prod_r = [Signal(signed(p.weight_bits + p.act_bits), name=f"prod{j}") for j in range(p.k)]
        bias_r = Signal(signed(p.acc_bits))
        valid_r, first_r, last_r = Signal(), Signal(), Signal()
        m.d.sync += [r.eq(v) for r, v in zip(prod_r, products)]
        m.d.sync += [bias_r.eq(b_rd.data), valid_r.eq(self.valid), first_r.eq(self.first), last_r.eq(self.last)]

        # S2: adder tree and accumulator.
        acc = Signal(signed(p.acc_bits))
        total = Signal(signed(p.acc_bits))
        m.d.comb += total.eq(Mux(first_r, bias_r, acc) + adder_tree(prod_r))
        with m.If(valid_r):
            m.d.sync += acc.eq(total)
        m.d.sync += [self.res_valid.eq(valid_r & last_r), self.res.eq(total)]
        return m

    def _lane(self, m: Module, j: int, word: Signal) -> Signal:
        """Product of lane ``j``'s weight value and its activation (combinational, S1)."""
        lay, p = self.layout, self.layout.params
        if lay.weight_index_bits:  # kofn: the word's index picks the lane's activation from the group
            mux = IndexMux(p.n, p.act_bits)
            m.submodules[f"mux{j}"] = mux
            values = word[lay.value_offset(j) : lay.value_offset(j + 1)]
            m.d.comb += [
                mux.group.eq(self.act),
                mux.index.eq(word[lay.index_offset(j) : lay.index_offset(j) + lay.index_bits]),
            ]
            value = values.word_select(self.element, p.weight_bits) if p.block > 1 else values
            act = mux.data
        else:
            value = word[lay.value_offset(j) : lay.value_offset(j + 1)]
            act = self.act[j * p.act_bits : (j + 1) * p.act_bits]
        return value.as_signed() * act.as_signed()
