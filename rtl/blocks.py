"""Small datapath blocks shared by the arrays: index mux, adder tree, requantiser."""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dpp.checks import check_int, index_bits, signed_range
from rtl.interfaces import OutputWriteSignature
from rtl.layout import MULTIPLIER_BITS, SHIFT_BITS


def adder_tree(values: list[Value]) -> Value:
    """Balanced pairwise sum (depth log2 len), not the linear chain Python's ``sum()`` would build."""
    if not values:
        raise ValueError("adder_tree needs at least one value (got an empty list)")
    level = list(values)
    while len(level) > 1:
        nxt = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


class IndexMux(wiring.Component):
    """n:1 mux: lane picks the activation of its slot index out of the broadcast group word."""

    def __init__(self, n: int, width: int) -> None:
        self.n = check_int("n", n, lo=2)
        self.width = check_int("width", width, lo=1)
        super().__init__(
            {
                "group": In(n * width),
                "index": In(index_bits(n)),
                "data": Out(width),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.comb += self.data.eq(self.group.word_select(self.index, self.width))
        return m


class Requantiser(wiring.Component):
    """Reference requantisation, 2-stage pipeline: ``((acc*mult >> (shift-1)) + 1) >> 1``, ReLU, saturate.

    ``(x + 2**(s-1)) >> s == ((x >> (s-1)) + 1) >> 1`` for integers, so no variable-width rounding constant
    is needed. ``in_addr`` travels alongside, so the result leaves as a ready output-bank write ``out``
    (:class:`~rtl.interfaces.OutputWriteSignature`: ``en``, ``addr``, ``data``).
    """

    LATENCY = 2

    def __init__(self, acc_bits: int, out_bits: int, addr_bits: int) -> None:
        self.acc_bits = check_int("acc_bits", acc_bits, lo=2)
        self.out_bits = check_int("out_bits", out_bits, lo=2)
        super().__init__(
            {
                "in_valid": In(1),
                "in_acc": In(signed(acc_bits)),
                "in_addr": In(addr_bits),
                "multiplier": In(MULTIPLIER_BITS),
                "shift": In(SHIFT_BITS),
                "relu": In(1),
                "out": Out(OutputWriteSignature(addr_bits, out_bits)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lo, hi = signed_range(self.out_bits)
        prod = Signal(signed(self.acc_bits + MULTIPLIER_BITS))
        valid1 = Signal()
        addr1 = Signal.like(self.in_addr)
        rounded = Signal(signed(self.acc_bits + MULTIPLIER_BITS))
        m.d.comb += rounded.eq(((prod >> (self.shift - 1)[:SHIFT_BITS]) + 1) >> 1)
        positive = Mux(self.relu & (rounded < 0), 0, rounded)
        saturated = Mux(positive > hi, hi, Mux(positive < lo, lo, positive))

        m.d.sync += [
            prod.eq(self.in_acc * self.multiplier[: MULTIPLIER_BITS - 1]),
            valid1.eq(self.in_valid),
            addr1.eq(self.in_addr),
            self.out.data.eq(saturated),
            self.out.en.eq(valid1),
            self.out.addr.eq(addr1),
        ]
        return m


def or_tree(values: list[Value]) -> Value:
    """Balanced OR of 1-bit values: a plain expression (Verilator evaluates ``Cat(...).any()`` bit by bit)."""
    if not values:
        raise ValueError("or_tree needs at least one value (got an empty list)")
    level = list(values)
    while len(level) > 1:
        nxt = [level[i] | level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return level[0]


def popcount_tree(bits: list[Value]) -> Value:
    """Number of set bits, as an adder tree."""
    return adder_tree([b.as_unsigned() for b in bits])
