"""``csr_array``: the unstructured (EIE-like) baseline with the same ``pes * k`` multipliers and counters.

Design choices that make it a strong, fair baseline:

* PE ``p`` owns rows ``j*pes + p`` (local row ``j``) and streams their non-zeros, ``k`` per cycle, from its
  own memory (value + ``ceil(log2 max_cols)``-bit column per entry), one row pointer entry per row.
  A row of ``nnz`` entries takes ``max(1, ceil(nnz / k))`` cycles (rows are word-aligned; an empty row still
  spends one cycle producing its bias-only output). Idle lanes of a row's last word count as idle.
* Every lane has its own replica of the activation memory (written once, broadcast, by the load port), so
  random column accesses never conflict: no bank conflicts, no arbitration stalls.
* PEs never wait for each other: each runs through all vectors and all its rows on its own and writes its
  own output bank; the array is done when the busiest PE is. So ``cycles = batch * max_p sum_j max(1,
  ceil(nnz_j / k)) + DRAIN_CYCLES['csr']``: exactly the load imbalance the comparison must expose.

Schedule per PE (S0 = issue): S0 word + bias read (row pointers prefetched one row ahead); S1 word arrives,
lanes beyond the row's entries are masked to 0, activation replicas are read at ``b*cols + column``;
S2 products registered; S3 adder tree + accumulate; S4 row total on ``res``.

``act_banks = B > 0`` (the equal-memory variant, :mod:`rtl.csr_banked`, :class:`rtl.csr_banked.BankedCsrArray`
built on :class:`CsrArray` and :class:`CsrPE` by overriding their hooks): the replicas are replaced by ONE
activation memory in ``B`` banks. The PEs keep exactly the streams above but advance in lock-step.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from rtl.archs import check_component
from rtl.blocks import adder_tree
from rtl.control import array_load, array_members, attach_requantisers, build_shell
from rtl.interfaces import FlatPorts, LoadSignature
from rtl.layout import SEL_ACT, SEL_BIAS, SEL_ROWPTR, SEL_WEIGHT, Layout, addr_bits
from rtl.params import ArrayParams
from rtl.pe import per_pe_write


class CsrPE(wiring.Component):
    """One CSR PE with its own sequencer (see the module docstring for the schedule). A variant overrides the
    hooks ``_members``, ``_array``, ``_step``, ``_enter_s1``, ``_before_s2`` and ``_lane_operands``."""

    def __init__(self, layout: Layout, index: int) -> None:
        self.layout, self.index = layout, index
        check_component(type(self).__name__, self._array(), layout.params, verb="serves")
        super().__init__(self._members(layout))

    def _array(self) -> type[wiring.Component]:
        """The array this PE serves."""
        return CsrArray

    def _members(self, layout: Layout) -> dict[str, Any]:
        p = layout.params
        return {
            "load": In(LoadSignature.of(layout)),
            "launch": In(1),
            "batch": In(layout.register_bits("batch")),
            "tiles": In(layout.register_bits("tiles")),
            "last_pes": In(layout.register_bits("last_pes")),
            "cols": In(layout.register_bits("cols")),
            "running": Out(1),
            "final": Out(1),
            "lanes_used": Out(range(p.k + 1)),
            "word_read": Out(1),
            "ptr_read": Out(1),
            "res_valid": Out(1),
            "res": Out(signed(p.acc_bits)),
            "res_word": Out(addr_bits(layout.out_depth)),
        }

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lay, p = self.layout, self.layout.params
        weights = m.submodules.weights = Memory(shape=lay.weight_word_bits, depth=lay.weight_depth, init=[])
        rowptr = m.submodules.rowptr = Memory(shape=lay.rowptr_bits, depth=lay.tile_depth, init=[])
        biases = m.submodules.biases = Memory(shape=signed(p.acc_bits), depth=lay.tile_depth, init=[])
        for mem, sel in ((weights, SEL_WEIGHT), (rowptr, SEL_ROWPTR), (biases, SEL_BIAS)):
            per_pe_write(m, mem, self.load, sel, self.index, lay)
        w_rd, rp_rd, b_rd = weights.read_port(), rowptr.read_port(), biases.read_port()
        issue = self._sequencer(m, w_rd, rp_rd, b_rd)
        self._datapath(m, w_rd, b_rd, issue)
        return m

    def _sequencer(self, m: Module, w_rd, rp_rd, b_rd) -> dict[str, Signal]:
        """S0: walk (vector, local row, word); drive the memory reads and the per-cycle counts."""
        lay, p = self.layout, self.layout.params
        b = Signal(range(p.max_batch + 1))
        j = Signal(addr_bits(lay.tile_depth) + 1)
        w, end_r = Signal(lay.ptr_bits), Signal(lay.ptr_bits)
        tail_r = Signal(range(p.k + 1))
        starting = Signal()
        act_base = Signal(addr_bits(lay.act_depth) + 1)
        out_base = Signal(addr_bits(lay.out_depth) + 1)
        local_rows = Signal.like(self.tiles)
        row_end, row_tail = Signal(lay.ptr_bits), Signal(range(p.k + 1))
        word = Signal(addr_bits(lay.out_depth))
        empty, last, row_last, next_j = Signal(), Signal(), Signal(), Signal.like(j)
        step = self._step()

        m.d.comb += [
            local_rows.eq(Mux(self.last_pes > self.index, self.tiles, self.tiles - 1)),
            row_end.eq(Mux(starting, rp_rd.data[: lay.ptr_bits], end_r)),
            row_tail.eq(Mux(starting, rp_rd.data[lay.ptr_bits :], tail_r)),
            empty.eq(row_end == w),
            last.eq(empty | (w + 1 == row_end)),
            row_last.eq(j == local_rows - 1),
            next_j.eq(Mux(row_last, 0, j + 1)),
            word.eq(out_base + j),
            self.final.eq(self.running & last & row_last & (b == self.batch - 1)),
            self.word_read.eq(step & ~empty),
            self.ptr_read.eq(step & starting),
            self.lanes_used.eq(Mux(~step | empty, 0, Mux(last, row_tail, p.k))),
            w_rd.en.eq(self.word_read),
            w_rd.addr.eq(w),
            b_rd.en.eq(self.ptr_read),
            b_rd.addr.eq(j),
            rp_rd.en.eq(self.launch | self.ptr_read),
            rp_rd.addr.eq(Mux(self.launch, 0, next_j)),
        ]

        with m.If(self.launch):
            m.d.sync += [
                self.running.eq(local_rows != 0),
                b.eq(0),
                j.eq(0),
                w.eq(0),
                starting.eq(1),
                act_base.eq(0),
                out_base.eq(0),
            ]
        with m.Elif(step):
            m.d.sync += [starting.eq(last), w.eq(Mux(empty, w, w + 1))]
            with m.If(starting):
                m.d.sync += [end_r.eq(row_end), tail_r.eq(row_tail)]
            with m.If(last):
                m.d.sync += j.eq(next_j)
            with m.If(last & row_last):
                m.d.sync += [
                    b.eq(b + 1),
                    w.eq(0),
                    act_base.eq(act_base + self.cols),
                    out_base.eq(out_base + self.tiles),
                ]
            with m.If(self.final):
                m.d.sync += self.running.eq(0)
        return {
            "valid": self.running,
            "first": starting,
            "last": last,
            "lanes": self.lanes_used,
            "act_base": act_base,
            "word": word,
        }

    def _step(self) -> Value:
        """The sequencer moves on this cycle."""
        return self.running

    def _datapath(self, m: Module, w_rd, b_rd, issue: dict[str, Signal]) -> None:
        """S1..S4: masked lane values, replica reads, products, accumulate, result."""
        lay, p = self.layout, self.layout.params
        s1 = {name: Signal.like(sig, name=f"{name}1") for name, sig in issue.items()}
        self._enter_s1(m, issue, s1)
        s2 = {name: Signal.like(s1[name], name=f"{name}2") for name in ("valid", "first", "last", "word")}
        s3 = {name: Signal.like(s2[name], name=f"{name}3") for name in s2}
        into_s2, bias_in = self._before_s2(m, issue, s1, b_rd)
        m.d.sync += [s2[name].eq(into_s2[name]) for name in s2] + [s3[name].eq(s2[name]) for name in s3]
        bias2, bias3 = Signal(signed(p.acc_bits)), Signal(signed(p.acc_bits))
        m.d.sync += [bias2.eq(bias_in), bias3.eq(bias2)]

        products = []
        for lane in range(p.k):
            col = w_rd.data[lay.index_offset(lane) : lay.index_offset(lane) + lay.col_bits]
            value = w_rd.data[lay.value_offset(lane) : lay.value_offset(lane + 1)].as_signed()
            value2 = Signal(signed(p.weight_bits), name=f"value2_{lane}")
            prod3 = Signal(signed(p.weight_bits + p.act_bits), name=f"prod3_{lane}")
            masked, act = self._lane_operands(m, lane, s1, col, Mux(s1["lanes"] > lane, value, 0))
            m.d.sync += [value2.eq(masked), prod3.eq(value2 * act.as_signed())]
            products.append(prod3)

        acc, total = Signal(signed(p.acc_bits)), Signal(signed(p.acc_bits))
        m.d.comb += total.eq(Mux(s3["first"], bias3, acc) + adder_tree(products))
        with m.If(s3["valid"]):
            m.d.sync += acc.eq(total)
        m.d.sync += [self.res_valid.eq(s3["valid"] & s3["last"]), self.res.eq(total), self.res_word.eq(s3["word"])]

    def _enter_s1(self, m: Module, issue: dict[str, Signal], s1: dict[str, Signal]) -> None:
        """S0 -> S1 every cycle."""
        m.d.sync += [s1[name].eq(sig) for name, sig in issue.items()]

    def _before_s2(
        self, m: Module, issue: dict[str, Signal], s1: dict[str, Signal], b_rd
    ) -> tuple[dict[str, Signal], Value]:
        """What enters S2 (the S1 controls) and the bias read it goes with."""
        return s1, b_rd.data

    def _lane_operands(
        self, m: Module, lane: int, s1: dict[str, Signal], col: Value, masked: Value
    ) -> tuple[Value, Value]:
        """(weight value, activation) of lane ``lane`` entering S2: the lane's own activation replica, read in
        S1 at ``b*cols + column``, data in S2."""
        lay, p = self.layout, self.layout.params
        acts = m.submodules[f"acts{lane}"] = Memory(shape=p.act_bits, depth=lay.act_depth, init=[])
        wr, rd = acts.write_port(), acts.read_port()
        load = self.load
        m.d.comb += [
            wr.en.eq(load.en & (load.sel == SEL_ACT)),
            wr.addr.eq(load.addr[: addr_bits(lay.act_depth)]),
            wr.data.eq(load.data),
            rd.en.eq(s1["valid"]),
            rd.addr.eq(s1["act_base"] + col),
        ]
        return masked, rd.data


class CsrArray(wiring.Component):
    """``csr_array``: ``pes`` independent :class:`CsrPE`; ports in :func:`rtl.control.array_members`."""

    pe_class: type[CsrPE] = CsrPE

    def __init__(self, params: ArrayParams) -> None:
        check_component(type(self).__name__, type(self), params)
        self.params, self.layout = params, Layout(params)
        super().__init__(array_members(self.layout))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lay, p = self.layout, self.params
        regs, ctrl, counters, outs = build_shell(m, self, lay, drain=self._control_drain())
        load = array_load(self, lay)
        pes = []
        for i in range(p.pes):
            pe = m.submodules[f"pe{i}"] = self.pe_class(lay, i)
            connect(m, load, pe.load)
            m.d.comb += [
                pe.launch.eq(ctrl.launch),
                pe.batch.eq(regs.batch),
                pe.tiles.eq(regs.tiles),
                pe.last_pes.eq(regs.last_pes),
                pe.cols.eq(regs.cols),
            ]
            pes.append(pe)
        any_running = Signal()
        all_finishing = Signal()
        m.d.comb += [
            any_running.eq(Cat(*[pe.running for pe in pes]).any()),
            all_finishing.eq(Cat(*[~pe.running | pe.final for pe in pes]).all()),
        ]
        act_reads = self._last_issue(m, pes, load, ctrl, any_running & all_finishing)
        writes = attach_requantisers(m, lay, regs, outs, [(pe.res_valid, pe.res, pe.res_word) for pe in pes])
        self._count(m, pes, ctrl, counters, writes, act_reads)
        return m

    def _control_drain(self) -> int:
        """Cycles the run control counts down after ``last_issue`` (:attr:`rtl.archs.ArrayArch.drain_cycles`)."""
        return self.layout.array_arch.drain_cycles

    def _last_issue(self, m: Module, pes: list[CsrPE], load: FlatPorts, ctrl, finishing: Value) -> Value | None:
        """Drive ``ctrl.last_issue`` (every PE issues its last word: ``finishing``); return the activation
        reads per cycle if they are not one per MAC (None)."""
        m.d.comb += ctrl.last_issue.eq(finishing)
        return None

    def _count(
        self, m: Module, pes: list[CsrPE], ctrl, counters, writes: list[Signal], act_reads: Signal | None = None
    ) -> None:
        lay, p = self.layout, self.params
        macs = Signal(range(p.pes * p.k + 1))
        words = Signal(range(p.pes + 1))
        ptrs = Signal(range(p.pes + 1))
        m.d.comb += [
            macs.eq(adder_tree([pe.lanes_used for pe in pes])),
            words.eq(adder_tree([pe.word_read.as_unsigned() for pe in pes])),
            ptrs.eq(adder_tree([pe.ptr_read.as_unsigned() for pe in pes])),
            counters.inc.mac_ops.eq(macs),
            counters.inc.lane_idle_cycles.eq(ctrl.busy * (p.pes * p.k - macs)),
            counters.inc.weight_bits_read.eq(words * lay.weight_value_bits),
            counters.inc.index_bits_read.eq(words * lay.weight_index_bits + ptrs * lay.rowptr_bits),
            counters.inc.act_bits_read.eq((macs if act_reads is None else act_reads) * p.act_bits),
            counters.inc.out_bits_written.eq(adder_tree([wr.as_unsigned() for wr in writes]) * p.out_bits),
        ]
