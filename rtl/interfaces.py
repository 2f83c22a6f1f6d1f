"""The arrays' inner interfaces as ``wiring.Signature`` classes, shared by the producer and the consumer.

Each signature is written from the side that drives the request (its ``Out`` members); the receiving
component declares ``In(signature)`` (or ``In(signature).array(n)`` for one port per PE or lane) and
``wiring.connect()`` joins the two, so Amaranth checks every width and direction instead of f-string port
names (the pattern of amaranth-soc's ``gpio.PinSignature``).

The top-level ports are a documented contract with flat names (``load_en``, ``cycles``; rtl/README.md,
docs/CONTRACTS.md), not Amaranth's nested ``load__en``. :func:`flat_members` declares them from the same
signature, and :class:`FlatPorts` presents them to the inside of the component as an interface object, so
``connect()`` joins the top-level ports to the inner ones too.
"""

from __future__ import annotations

from collections.abc import Mapping

from amaranth.hdl import signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dpp.checks import check_int
from dpp.errors import DPPError
from rtl.layout import COUNTER_BITS, COUNTERS, SEL_BITS, Layout


class LoadSignature(wiring.Signature):
    """The load port, from the loader's side: one word ``data`` written per cycle while ``en``, to the
    memory or register file selected by ``sel`` (``rtl.layout.SEL_*``) at ``addr``."""

    def __init__(self, addr_bits: int, data_bits: int) -> None:
        self.addr_bits = check_int("addr_bits", addr_bits, lo=1)
        self.data_bits = check_int("data_bits", data_bits, lo=1)
        super().__init__({"en": Out(1), "sel": Out(SEL_BITS), "addr": Out(addr_bits), "data": Out(data_bits)})

    @classmethod
    def of(cls, layout: Layout) -> LoadSignature:
        """The load port of one build (``Layout.load_addr_bits`` / ``load_data_bits``)."""
        return cls(layout.load_addr_bits, layout.load_data_bits)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.addr_bits, other.data_bits) == (self.addr_bits, self.data_bits)


class OutputWriteSignature(wiring.Signature):
    """One PE's write into its output bank, from the writer's (requantiser's) side: while ``en``, the signed
    output ``data`` goes to word ``addr`` of the bank."""

    def __init__(self, addr_bits: int, data_bits: int) -> None:
        self.addr_bits = check_int("addr_bits", addr_bits, lo=1)
        self.data_bits = check_int("data_bits", data_bits, lo=1)
        super().__init__({"en": Out(1), "addr": Out(addr_bits), "data": Out(signed(data_bits))})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.addr_bits, other.data_bits) == (self.addr_bits, self.data_bits)


class LaneRequestSignature(wiring.Signature):
    """One lane's activation request to the shared banked activation memory, from the lane's side: ``req``
    with the activation address ``addr`` while the lane is busy; the memory hands the activation back on
    ``act`` (its schedule: :mod:`rtl.csr_banked`)."""

    def __init__(self, addr_bits: int, act_bits: int) -> None:
        self.addr_bits = check_int("addr_bits", addr_bits, lo=1)
        self.act_bits = check_int("act_bits", act_bits, lo=1)
        super().__init__({"req": Out(1), "addr": Out(addr_bits), "act": In(act_bits)})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (other.addr_bits, other.act_bits) == (self.addr_bits, self.act_bits)


class CounterIncrementSignature(wiring.Signature):
    """Per-cycle increments of the performance counters other than ``cycles`` (which counts busy cycles),
    from the datapath's side: one member per counter name, ``inc_bits[name]`` bits wide."""

    def __init__(self, inc_bits: Mapping[str, int]) -> None:
        want = set(COUNTERS) - {"cycles"}
        if set(inc_bits) != want:
            raise DPPError(f"inc_bits must name exactly {sorted(want)} (got {sorted(inc_bits)})")
        self.inc_bits = {
            name: check_int(f"inc_bits[{name!r}]", inc_bits[name], lo=1) for name in COUNTERS if name != "cycles"
        }
        super().__init__({name: Out(bits) for name, bits in self.inc_bits.items()})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.inc_bits == self.inc_bits


class CountersSignature(wiring.Signature):
    """The seven ``COUNTER_BITS``-bit performance counters (``rtl.layout.COUNTERS``), from the counter
    bank's side."""

    def __init__(self) -> None:
        super().__init__({name: Out(COUNTER_BITS) for name in COUNTERS})

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)


def flat_members(signature: wiring.Signature, prefix: str = "") -> dict[str, wiring.Member]:
    """``signature``'s port members as flat component members named ``prefix + name`` (pass
    ``signature.flip()`` for a port the component receives): the top-level ports keep their contract names."""
    members = {}
    for name, member in signature.members.items():
        if not member.is_port or member.dimensions:
            raise DPPError(f"flat_members takes plain port members only (got {name!r}: {member!r})")
        members[prefix + name] = member
    return members


class FlatPorts:
    """The ports :func:`flat_members` declared on ``component`` for ``(signature, prefix)``, seen from inside
    the component (flows reversed: an ``In`` port drives the inner logic), as an interface object that
    ``wiring.connect()`` accepts."""

    def __init__(self, component: wiring.Component, signature: wiring.Signature, prefix: str = "") -> None:
        self.signature = signature.flip()
        for name in signature.members:
            setattr(self, name, getattr(component, prefix + name))
