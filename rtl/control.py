"""Control shared by all arrays: run FSM (start/busy/done), layer registers, counters, output banks.

Inner ports are the signatures of :mod:`rtl.interfaces`, joined with ``wiring.connect()``; the array's
top-level ports are the same signatures flattened to their contract names (:func:`array_members`).
"""

from __future__ import annotations

from amaranth.hdl import Array, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from dpp.checks import check_int
from rtl.blocks import Requantiser, or_tree
from rtl.interfaces import (
    CounterIncrementSignature,
    CountersSignature,
    FlatPorts,
    LoadSignature,
    OutputWriteSignature,
    flat_members,
)
from rtl.layout import COUNTERS, REGISTER_NAMES, SEL_REG, Layout, addr_bits


class RunControl(wiring.Component):
    """``start`` (ignored while busy) is accepted (``accept``: the counters clear) and launches a run
    (``launch``); ``busy`` stays high until ``drain`` cycles after the sequencer's last issue (``last_issue``),
    then ``done`` rises and stays high until the next start. A start while ``refuse`` is high (a register out
    of its legal range) launches nothing: ``done`` and ``error`` rise at the next edge, ``busy`` stays low;
    ``error`` stays high until the next accepted start."""

    def __init__(self, drain: int) -> None:
        self.drain = check_int("drain", drain, lo=1, hi=255)
        super().__init__(
            {
                "start": In(1),
                "last_issue": In(1),
                "refuse": In(1),
                "accept": Out(1),
                "launch": Out(1),
                "busy": Out(1),
                "done": Out(1),
                "error": Out(1),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        countdown = Signal(range(self.drain + 1))
        m.d.comb += [self.accept.eq(self.start & ~self.busy), self.launch.eq(self.accept & ~self.refuse)]

        with m.If(self.launch):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), self.error.eq(0), countdown.eq(0)]
        with m.Elif(self.accept):  # refused: finish at once, flagged
            m.d.sync += [self.done.eq(1), self.error.eq(1)]
        with m.Elif(self.last_issue):
            m.d.sync += countdown.eq(self.drain)
        with m.Elif(countdown == 1):
            m.d.sync += [countdown.eq(0), self.busy.eq(0), self.done.eq(1)]
        with m.Elif(countdown != 0):
            m.d.sync += countdown.eq(countdown - 1)
        return m


class RegisterFile(wiring.Component):
    """The run-time layer registers an array reads, written through the load port (``load_sel = SEL_REG``);
    ``out_of_range`` is high while any of them lies outside :meth:`Layout.register_range` (reset clears them
    all to 0, which is out of range for the sizes: a start right after reset is refused, not hung)."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        members = {"load": In(LoadSignature.of(layout)), "out_of_range": Out(1)}
        members.update({name: Out(layout.register_bits(name)) for name in layout.registers})
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        load = self.load
        selected = load.en & (load.sel == SEL_REG)
        bad = []
        for name in self.layout.registers:
            reg = getattr(self, name)
            with m.If(selected & (load.addr == REGISTER_NAMES.index(name))):
                m.d.sync += reg.eq(load.data[: len(reg)])
            lo, hi = self.layout.register_range(name)
            if lo > 0:
                bad.append(reg < lo)
            if hi < (1 << len(reg)) - 1:
                bad.append(reg > hi)
        m.d.comb += self.out_of_range.eq(or_tree(bad) if bad else 0)
        return m


class CounterBank(wiring.Component):
    """The seven 48-bit performance counters (``counts``): cleared on ``clear``, ``counts.cycles`` counts
    ``busy`` cycles and every other counter adds its increment ``inc.<name>`` each cycle."""

    def __init__(self, inc_bits: dict[str, int]) -> None:
        increments = CounterIncrementSignature(inc_bits)
        self.inc_bits = increments.inc_bits
        super().__init__({"clear": In(1), "busy": In(1), "inc": In(increments), "counts": Out(CountersSignature())})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        counts = self.counts
        with m.If(self.clear):
            m.d.sync += [getattr(counts, name).eq(0) for name in COUNTERS]
        with m.Else():
            m.d.sync += counts.cycles.eq(counts.cycles + self.busy)
            for name in self.inc_bits:
                counter = getattr(counts, name)
                m.d.sync += counter.eq(counter + getattr(self.inc, name))
        return m


class OutputBanks(wiring.Component):
    """One output memory bank per PE (each PE writes its own rows through ``write[pe]``, so they never
    contend), read through ``out_addr = (word << pe_bits) | pe`` with one cycle of latency."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        p = layout.params
        self.word_bits = addr_bits(layout.out_depth)
        super().__init__(
            {
                "write": In(OutputWriteSignature(self.word_bits, p.out_bits)).array(p.pes),
                "out_addr": In(layout.out_addr_bits),
                "out_data": Out(signed(p.out_bits)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        p, pe_bits = self.layout.params, self.layout.pe_bits
        bank = Signal(max(1, pe_bits))
        datas = []
        for pe in range(p.pes):
            mem = Memory(shape=signed(p.out_bits), depth=self.layout.out_depth, init=[])
            m.submodules[f"out{pe}"] = mem
            wr, rd, write = mem.write_port(), mem.read_port(), self.write[pe]
            m.d.comb += [
                wr.en.eq(write.en),
                wr.addr.eq(write.addr),
                wr.data.eq(write.data),
                rd.addr.eq(self.out_addr[pe_bits:]),
            ]
            datas.append(rd.data)
        if pe_bits:
            m.d.sync += bank.eq(self.out_addr[:pe_bits])
            padded = datas + [datas[-1]] * ((1 << pe_bits) - p.pes)  # addresses past the last PE: no case hole
            m.d.comb += self.out_data.eq(Array(padded)[bank])
        else:
            m.d.comb += self.out_data.eq(datas[0])
        return m


_LOAD_PREFIX = "load_"  # top-level load ports: load_en, load_sel, load_addr, load_data


def array_members(layout: Layout) -> dict[str, wiring.Member]:
    """The ports every array has (docs/CONTRACTS.md, "Hardware"): load port, run control (``start``, ``busy``,
    ``done``, ``error``), output read, and the seven counters; the load port and the counters are
    :class:`LoadSignature` and :class:`CountersSignature` flattened to their contract names."""
    return {
        **flat_members(LoadSignature.of(layout).flip(), _LOAD_PREFIX),
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
        "error": Out(1),
        "out_addr": In(layout.out_addr_bits),
        "out_data": Out(signed(layout.params.out_bits)),
        **flat_members(CountersSignature()),
    }


def array_load(array: wiring.Component, layout: Layout) -> FlatPorts:
    """The array's top-level load ports as one :class:`LoadSignature` interface that drives the inner load
    ports (``connect(m, array_load(...), pe.load)``)."""
    return FlatPorts(array, LoadSignature.of(layout).flip(), _LOAD_PREFIX)


def build_shell(
    m: Module, array: wiring.Component, layout: Layout, drain: int
) -> tuple[RegisterFile, RunControl, CounterBank, OutputBanks]:
    """Instantiate and wire the parts every array shares: registers, run control, counters, output banks.

    The caller drives ``ctrl.last_issue``, the counters' ``inc`` and the output banks' ``write`` ports.
    """
    regs, ctrl, outs = RegisterFile(layout), RunControl(drain), OutputBanks(layout)
    counters = CounterBank(increment_bits(layout))
    m.submodules.regs, m.submodules.ctrl = regs, ctrl
    m.submodules.counters, m.submodules.outs = counters, outs
    connect(m, array_load(array, layout), regs.load)
    m.d.comb += [
        ctrl.start.eq(array.start),
        ctrl.refuse.eq(regs.out_of_range),
        array.busy.eq(ctrl.busy),
        array.done.eq(ctrl.done),
        array.error.eq(ctrl.error),
        counters.clear.eq(ctrl.accept),
        counters.busy.eq(ctrl.busy),
        outs.out_addr.eq(array.out_addr),
        array.out_data.eq(outs.out_data),
    ]
    connect(m, counters.counts, FlatPorts(array, CountersSignature()))
    return regs, ctrl, counters, outs


def increment_bits(layout: Layout) -> dict[str, int]:
    """Widths of the per-cycle counter increments (largest possible increment per cycle)."""
    p, lanes = layout.params, layout.params.pes * layout.params.k
    most = {
        "mac_ops": lanes,
        "lane_idle_cycles": lanes,
        "weight_bits_read": p.pes * layout.weight_value_bits,
        "index_bits_read": p.pes * (layout.weight_index_bits + layout.rowptr_bits),
        "act_bits_read": max(layout.act_word_bits, lanes * p.act_bits),
        "out_bits_written": p.pes * p.out_bits,
    }
    return {name: max(1, top.bit_length()) for name, top in most.items()}


def attach_requantisers(
    m: Module, layout: Layout, regs: RegisterFile, outs: OutputBanks, results: list[tuple[Signal, Signal, Signal]]
) -> list[Signal]:
    """One :class:`Requantiser` per PE between its ``(valid, acc, out_word)`` result and its output bank
    (``rq.out`` to ``outs.write[pe]``); returns the per-PE write enables (for ``out_bits_written``)."""
    p, writes = layout.params, []
    for pe, (valid, acc, word) in enumerate(results):
        rq = Requantiser(p.acc_bits, p.out_bits, outs.word_bits)
        m.submodules[f"rq{pe}"] = rq
        m.d.comb += [
            rq.in_valid.eq(valid),
            rq.in_acc.eq(acc),
            rq.in_addr.eq(word),
            rq.multiplier.eq(regs.multiplier),
            rq.shift.eq(regs.shift),
            rq.relu.eq(regs.relu),
        ]
        connect(m, rq.out, outs.write[pe])
        writes.append(rq.out.en)
    return writes
