"""Area from real Yosys synthesis of one tiny Amaranth design (both flows, then the cache)."""

from pathlib import Path

import pytest
from amaranth import Module, signed
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from analysis import area


class TinyMac(wiring.Component):
    """4x4-bit multiply-accumulate plus a 64x8 write/read memory: logic, flip-flops and memory bits."""

    a: In(signed(4))
    b: In(signed(4))
    acc: Out(signed(12))
    addr: In(6)
    we: In(1)
    wd: In(8)
    rd: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.acc.eq(self.acc + self.a * self.b)
        m.submodules.mem = mem = Memory(shape=8, depth=64, init=[])
        rp, wp = mem.read_port(), mem.write_port()
        m.d.comb += [
            rp.addr.eq(self.addr),
            self.rd.eq(rp.data),
            wp.addr.eq(self.addr),
            wp.data.eq(self.wd),
            wp.en.eq(self.we),
        ]
        return m


@pytest.fixture(scope="module")
def tiny_verilog(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("v") / "tiny_mac.v"
    path.write_text(verilog.convert(TinyMac(), name="tiny_mac"))
    return path


def test_synthesis_both_flows_and_cache(tiny_verilog, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    gen = area.synthesize(tiny_verilog, flow="generic", cache_dir=cache)
    ice = area.synthesize(tiny_verilog, flow="ice40", cache_dir=cache)
    assert gen.top == ice.top == "tiny_mac"
    assert gen.memory_bits == ice.memory_bits == 64 * 8
    # generic: the accumulator (12) and the memory mapped to flip-flops (512) at least
    assert gen.ffs >= 12 + 512 and gen.cells > gen.ffs and gen.transistors > 0
    # ice40: LUTs for the multiplier, the 12 accumulator FFs, the memory in one 4 kbit block RAM
    assert ice.luts > 0 and ice.ffs >= 12 and ice.bram_blocks == 1 and ice.bram_bits == 4096
    assert ice.luts == ice.cells_by_type["SB_LUT4"]
    assert len(list(cache.glob("*.json"))) == 2

    def boom(*a, **k):
        raise AssertionError("yosys must not run for a cached design")

    monkeypatch.setattr(area, "run_yosys", boom)
    assert area.synthesize(tiny_verilog, flow="ice40", cache_dir=cache) == ice
    cols = area.area_columns([gen, ice])
    assert cols["area_ice40_luts"] == ice.luts and cols["area_generic_transistors"] == gen.transistors


def test_cache_key_depends_on_text_and_flow():
    key1 = area.cache_key("module a(); endmodule", "a", "generic")
    key2 = area.cache_key("module a(); endmodule // changed", "a", "generic")
    key3 = area.cache_key("module a(); endmodule", "a", "ice40")
    assert len({key1, key2, key3}) == 3


def test_find_top_and_errors(tmp_path):
    text = "module leaf(input a); endmodule\nmodule top(input a);\n  leaf u0 (.a(a));\nendmodule\n"
    assert area.find_top(text) == "top"
    with pytest.raises(ValueError, match="flow must be one of"):
        area.synthesize_text(text, flow="asic")
    with pytest.raises(ValueError, match="no 'module'"):
        area.find_top("wire x;")
    with pytest.raises(ValueError, match="not found"):
        area.synthesize(tmp_path / "missing.v")


def test_summarize_sums_luts_and_ffs():
    stats = {
        "num_cells": 10,
        "num_cells_by_type": {"SB_LUT4": 5, "SB_DFF": 2, "SB_DFFER": 1, "SB_CARRY": 1, "SB_RAM40_4K": 1},
    }
    r = area.summarize("ice40", stats, 100, "t", "x")
    assert (r.luts, r.ffs, r.carries, r.bram_blocks, r.bram_bits, r.memory_bits) == (5, 3, 1, 1, 4096, 100)
    assert r.transistors is None
