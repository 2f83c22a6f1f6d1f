"""A tiny Amaranth design with the array contract's ports, to test the simulation runner end to end.

Load port: ``load_sel`` 0 writes ``mem[load_addr] = load_data``; ``load_sel`` 1 writes register
``load_addr`` (0: ``length``, 1: ``scale``). On ``start`` it computes ``out[i] = mem[i] * scale`` (signed,
wrapped to 16 bits) for ``i < length``, one element per cycle. ``out_data`` follows ``out_addr`` one cycle
later (synchronous read). Counters restart at ``start``: ``cycles`` = busy cycles = length, ``mac_ops`` =
length, ``weight_bits_read`` = 16 * length, ``out_bits_written`` = 16 * length, the rest 0.
"""

from __future__ import annotations

import numpy as np
from amaranth import Module, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.layout import COUNTERS
from sim.jobs import Job

DEPTH = 64
WIDTH = 16
#: the depths the harness is built with for the toy (a program of DEPTH values and two registers)
TOY_DEPTHS = dict(prog_depth=DEPTH + 2, out_depth=DEPTH, out_latency=1)


class ToyArray(wiring.Component):
    """Scale a vector held in memory: the smallest design with the arrays' port contract."""

    def __init__(self) -> None:
        ports = {
            "load_en": In(1),
            "load_sel": In(2),
            "load_addr": In(6),
            "load_data": In(WIDTH),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "out_addr": In(6),
            "out_data": Out(WIDTH),
        }
        ports.update({name: Out(48) for name in COUNTERS})
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=signed(WIDTH), depth=DEPTH, init=[])
        m.submodules.outm = outm = Memory(shape=signed(WIDTH), depth=DEPTH, init=[])
        wr = mem.write_port()
        rd = mem.read_port(domain="comb")
        owr = outm.write_port()
        ord_ = outm.read_port()
        length = Signal(unsigned(7))
        scale = Signal(signed(WIDTH))
        i = Signal(unsigned(7))

        m.d.comb += [
            wr.addr.eq(self.load_addr),
            wr.data.eq(self.load_data),
            wr.en.eq(self.load_en & (self.load_sel == 0)),
            rd.addr.eq(i),
            owr.addr.eq(i),
            owr.data.eq(rd.data * scale),
            ord_.addr.eq(self.out_addr),
            self.out_data.eq(ord_.data),
        ]
        with m.If(self.load_en & (self.load_sel == 1)):
            with m.Switch(self.load_addr):
                with m.Case(0):
                    m.d.sync += length.eq(self.load_data)
                with m.Case(1):
                    m.d.sync += scale.eq(self.load_data)

        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), self.done.eq(0), i.eq(0)]
            m.d.sync += [getattr(self, name).eq(0) for name in COUNTERS]
        with m.Elif(self.busy):
            with m.If(i == length):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
            with m.Else():
                m.d.comb += owr.en.eq(1)
                m.d.sync += [
                    i.eq(i + 1),
                    self.cycles.eq(self.cycles + 1),
                    self.mac_ops.eq(self.mac_ops + 1),
                    self.weight_bits_read.eq(self.weight_bits_read + WIDTH),
                    self.out_bits_written.eq(self.out_bits_written + WIDTH),
                ]
        return m


def toy_verilog() -> str:
    """Verilog text of :class:`ToyArray` with top module ``toy_array``."""
    from amaranth.back import verilog

    return verilog.convert(ToyArray(), name="toy_array")


def toy_job(values: list[int], scale: int, max_cycles: int = 1000) -> Job:
    """The job that loads ``values`` and ``scale`` into the toy and scales the values."""
    writes = [(0, i, v) for i, v in enumerate(values)] + [(1, 0, len(values)), (1, 1, scale)]
    return Job(writes, len(values), max_cycles)


def toy_expected(values: list[int], scale: int) -> np.ndarray:
    """The toy's outputs for :func:`toy_job`: ``values * scale`` wrapped to signed 16 bits."""
    y = (np.asarray(values, dtype=np.int64) * scale) & 0xFFFF
    return np.where(y >= 1 << 15, y - (1 << 16), y)


def toy_counters(n: int) -> dict[str, int]:
    """The toy's counters after scaling ``n`` values (see the module docstring)."""
    return {
        "cycles": n,
        "mac_ops": n,
        "lane_idle_cycles": 0,
        "weight_bits_read": WIDTH * n,
        "index_bits_read": 0,
        "act_bits_read": 0,
        "out_bits_written": WIDTH * n,
    }
