# amaranth: UnusedElaboratable=no
"""The inner-interface signatures (rtl.interfaces) and the top-level port contract they flatten to."""

from __future__ import annotations

import re

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import ConnectionError, In, Out, connect, flipped
from amaranth.sim import Simulator

from dpp.errors import DPPError
from rtl.control import CounterBank, OutputBanks, array_load
from rtl.interfaces import (
    CounterIncrementSignature,
    CountersSignature,
    FlatPorts,
    LaneRequestSignature,
    LoadSignature,
    OutputWriteSignature,
    flat_members,
)
from rtl.layout import COUNTERS, Layout
from rtl.lockstep import LockstepArray
from rtl.params import ArrayParams
from rtl.verilog import verilog_source

COMMON = dict(k=2, n=8, pes=3, weight_bits=4, act_bits=8, out_bits=6, max_rows=16, max_cols=32, max_batch=2)
BUILDS = [
    ArrayParams(arch="kofn", **COMMON),
    ArrayParams(arch="dense", **COMMON),
    ArrayParams(arch="csr", **COMMON),
    ArrayParams(arch="csr", act_banks=4, **COMMON),
]


def _top_ports(params: ArrayParams) -> dict[str, tuple[str, int]]:
    """``name -> (direction, width)`` of the top module's ports in the generated Verilog."""
    text = verilog_source(params)
    body = re.search(rf"^module {params.top_name}\(.*?\);\n(.*?)^endmodule", text, re.S | re.M).group(1)
    ports = {}
    for direction, msb, name in re.findall(r"^\s*(input|output) (?:\[(\d+):0\] )?(\w+);", body, re.M):
        ports[name] = (direction, int(msb) + 1 if msb else 1)
    return ports


@pytest.mark.parametrize("params", BUILDS, ids=["kofn", "dense", "csr", "csr_banked"])
def test_top_level_ports_are_the_documented_contract(params: ArrayParams) -> None:
    """rtl/README.md "Ports": exactly these names, directions and widths, whatever the inner wiring."""
    lay = Layout(params)
    want = {
        "clk": ("input", 1),
        "rst": ("input", 1),
        "load_en": ("input", 1),
        "load_sel": ("input", 3),
        "load_addr": ("input", lay.load_addr_bits),
        "load_data": ("input", lay.load_data_bits),
        "start": ("input", 1),
        "busy": ("output", 1),
        "done": ("output", 1),
        "error": ("output", 1),
        "out_addr": ("input", lay.out_addr_bits),
        "out_data": ("output", params.out_bits),
        **{name: ("output", 48) for name in COUNTERS},
    }
    assert _top_ports(params) == want


def test_flat_members_keep_flows_widths_and_prefix() -> None:
    assert flat_members(LoadSignature(5, 7).flip(), "load_") == {
        "load_en": In(1),
        "load_sel": In(3),
        "load_addr": In(5),
        "load_data": In(7),
    }
    assert flat_members(CountersSignature()) == {name: Out(48) for name in COUNTERS}


def test_flat_members_refuses_nested_and_array_members() -> None:
    nested = wiring.Signature({"load": Out(LoadSignature(2, 2))})
    with pytest.raises(DPPError, match="flat_members takes plain port members only \\(got 'load'"):
        flat_members(nested)
    with pytest.raises(DPPError, match="flat_members takes plain port members only \\(got 'x'"):
        flat_members(wiring.Signature({"x": Out(1).array(2)}))


def test_array_load_is_the_top_level_load_ports_as_one_driving_interface() -> None:
    params = BUILDS[0]
    lay = Layout(params)
    array = LockstepArray(params)
    load = array_load(array, lay)
    assert load.signature == LoadSignature.of(lay)
    assert [load.en, load.sel, load.addr, load.data] == [
        array.load_en,
        array.load_sel,
        array.load_addr,
        array.load_data,
    ]
    assert load.signature.is_compliant(load)


class _CounterTop(wiring.Component):
    """A stand-in top level: the counters as flat ports, driven through FlatPorts + connect()."""

    def __init__(self) -> None:
        super().__init__({"busy": In(1), "inc_macs": In(4), **flat_members(CountersSignature())})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        bank = m.submodules.counters = CounterBank({name: 4 for name in COUNTERS if name != "cycles"})
        m.d.comb += [bank.busy.eq(self.busy), bank.inc.mac_ops.eq(self.inc_macs)]
        connect(m, bank.counts, FlatPorts(self, CountersSignature()))
        return m


def test_flat_counter_ports_follow_the_counter_bank() -> None:
    dut = _CounterTop()

    async def bench(ctx) -> None:
        ctx.set(dut.busy, 1)
        ctx.set(dut.inc_macs, 3)
        await ctx.tick().repeat(4)
        assert (ctx.get(dut.cycles), ctx.get(dut.mac_ops), ctx.get(dut.act_bits_read)) == (4, 12, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def test_requantiser_output_must_match_the_bank_write_port_width() -> None:
    """Widths are checked by Amaranth: a write port one address bit short refuses to connect."""
    outs = OutputBanks(Layout(BUILDS[0]))
    wrong = OutputWriteSignature(outs.word_bits + 1, BUILDS[0].out_bits).create()
    with pytest.raises(ConnectionError, match="shape widths"):
        connect(Module(), wrong, outs.write[0])
    connect(Module(), OutputWriteSignature(outs.word_bits, BUILDS[0].out_bits).create(), outs.write[0])


def test_lane_request_flows_and_equality() -> None:
    sig = LaneRequestSignature(6, 8)
    assert dict(sig.members) == {"req": Out(1), "addr": Out(6), "act": In(8)}
    assert sig == LaneRequestSignature(6, 8) and sig != LaneRequestSignature(6, 9)
    assert flipped(sig.create()).signature == sig.flip()


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda: LoadSignature(0, 8), "addr_bits must be >= 1 \\(got addr_bits=0\\)"),
        (lambda: OutputWriteSignature(4, 0), "data_bits must be >= 1 \\(got data_bits=0\\)"),
        (lambda: LaneRequestSignature(3, 0), "act_bits must be >= 1 \\(got act_bits=0\\)"),
        (lambda: CounterIncrementSignature({"mac_ops": 4}), "inc_bits must name exactly"),
    ],
)
def test_signatures_refuse_bad_widths(make, message: str) -> None:
    with pytest.raises(DPPError, match=message):
        make()
