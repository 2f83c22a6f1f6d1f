"""The banked CSR array (registry entry ``csr_banked``): ``BankedCsrArray`` and ``BankedCsrPE``, the CSR array
of :mod:`rtl.csr` with ``ActivationBanks``, the ONE activation memory of an equal-memory CSR array
(``act_banks = B > 0``).

The k-of-n array keeps one activation buffer and broadcasts it; the default CSR baseline gives each of its
``pes * k`` lanes a private replica (``pes * k`` times the SRAM) so random columns never conflict. With
``act_banks = B`` the CSR array instead has a single activation memory split into ``B`` banks by the low
address bits (address ``a = b*cols + c`` lives in bank ``a % B``, word ``a // B``; :mod:`rtl.layout`), and
pays for random access with bank conflicts:

* Lock-step slots. All PEs advance together, one weight word per PE per *slot* (PE ``p``'s slot ``s`` is the
  ``s``-th word of its usual stream; see :mod:`rtl.csr`). In S1 every busy lane of every PE requests its
  activation address. Requests for the same address are merged: one bank read serves all of them.
* Arbiter (S1, combinational). Each bank serves one distinct address per cycle: the address of its
  lowest-numbered pending lane (global lane ``pe*k + lane``; a prefix of "banks already wanted" picks it),
  granting every pending lane with that same address (``lanes*(lanes-1)/2`` address comparators, CAM-like).
  A slot therefore takes ``max(1, max over banks of the distinct addresses requested in that bank)``
  cycles; until its last lane is granted ``advance`` stays low and the whole array stalls (sequencers
  frozen, weight words held, not re-read). Fairness: the fixed priority only decides which cycle of a slot
  serves which lane; a slot ends when all its lanes are served and its length does not depend on the order,
  so no lane waits longer than its slot.
* SB (bank read, the cycle after a grant). Each winning lane wrote its bank's read address into
  ``bank_addr[b]`` (the request crossbar, a register file: rows ``0..B-1``; a losing lane writes its bank's
  discard row ``b + B``, never read, in place of a low write enable); every bank reads the word its last
  winner named into its output register ``bank_out[b]`` (``B`` entries: the response crossbar). This is a
  synchronous SRAM read with a registered address. Only the reads of requested banks are used and counted
  (``reads``); a chip would gate the others (tied high here, see below).
* S2 (the cycle after SB). A lane granted two cycles ago takes ``bank_out[its bank]``; one granted earlier in
  the slot kept its activation in ``held``. So the slot's operands reach the multipliers two cycles after its
  last service cycle, and a run takes ``sum of slot cycles + DRAIN_CYCLES_BANKED`` (:mod:`rtl.layout`).

The PEs (:class:`BankedCsrPE`) keep exactly the streams of :class:`rtl.csr.CsrPE` but advance in lock-step: S0
and S1 move only on ``advance``, S1 holds a slot while its lanes wait for their banks (words held, not re-read),
then the bank-read stage SB precedes S2. ``cycles = sum over slots of the slot's cycles + DRAIN_CYCLES_BANKED``.

Simulation speed (Verilator, ``sim/README.md``). The crossbars are memories (arrays indexed by bank) rather
than ``B``-way multiplexers per lane: the same hardware, and Verilator reads an indexed array in constant time
where it would evaluate every arm of a per-lane multiplexer. Verilator also turns every write enable and every
``If``/``Mux`` into a C++ branch, and with random columns the grants and bank requests are coin flips the CPU
mispredicts: so the arbiter's and crossbars' write ports are always enabled (discard rows, unread words),
lane selections are bit masks, the register file depths are powers of two (no bounds test per write) and data
registers have no reset. ``reads`` (requested banks) drives ``act_bits_read``: merged requests count once.
"""

from __future__ import annotations

from typing import Any

from amaranth.hdl import C, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect

from dpp.checks import check_int
from rtl.blocks import or_tree, popcount_tree
from rtl.csr import CsrArray, CsrPE
from rtl.interfaces import FlatPorts, LaneRequestSignature, LoadSignature
from rtl.layout import BANKED_SERVICE_DRAIN, SEL_ACT, Layout, addr_bits, mem_depth


class ActivationBanks(wiring.Component):
    """``B`` activation banks behind a per-bank, lowest-lane-first arbiter for ``lanes`` requesters
    (``requests[i]``, global lane ``i``), written through the load port ``load``."""

    def __init__(self, layout: Layout, lanes: int) -> None:
        if layout.act_banks < 1:
            raise ValueError(f"ActivationBanks needs act_banks >= 1 (got act_banks={layout.act_banks})")
        self.layout, self.lanes = layout, check_int("lanes", lanes, lo=1)
        super().__init__(
            {
                "load": In(LoadSignature.of(layout)),
                "requests": In(LaneRequestSignature(layout.act_addr_bits, layout.params.act_bits)).array(lanes),
                "advance": Out(1),
                "reads": Out(range(min(lanes, layout.act_banks) + 1)),
            }
        )

    def elaborate(self, platform: object) -> Module:
        m = Module()
        lay, p = self.layout, self.layout.params
        nb, wbits = lay.act_banks, addr_bits(lay.act_bank_depth)
        # the two crossbars as bank-indexed register files; bank_addr rows B..2B-1: the losers' discard rows
        m.submodules.bank_addr = bank_addr = Memory(shape=wbits, depth=2 * nb, init=[])
        m.submodules.bank_out = bank_out = Memory(shape=p.act_bits, depth=mem_depth(nb), init=[])
        grants, banks = self._arbiter(m, bank_addr)
        self._banks(m, bank_addr, bank_out)
        self._return_path(m, bank_out, grants, banks)
        return m

    def _lane_bank(self, addr: Value) -> Value:
        bb = self.layout.act_bank_bits
        return addr[:bb] if bb else C(0, 1)

    def _arbiter(self, m: Module, bank_addr: Memory) -> tuple[list[Signal], list[Value]]:
        """S1, each cycle: lane ``i`` wins its bank if no lower lane wants that bank (``seen``: banks wanted so
        far); it is granted if a winner (itself or a lower lane) asks for its address."""
        nb, bb = self.layout.act_banks, self.layout.act_bank_bits
        fresh = Signal(init=1)  # S1 holds a slot that has not been served at all yet
        seen = Signal(nb, name="seen0")
        keys: list[Signal] = []  # each lane's compare key
        wins, grants, banks, left = [], [], [], []
        for i in range(self.lanes):
            req, addr = self.requests[i].req, self.requests[i].addr
            pending = Signal(name=f"pending{i}", reset_less=True)  # read only when not fresh
            want, win, grant = Signal(name=f"want{i}"), Signal(name=f"win{i}"), Signal(name=f"grant{i}")
            bank, nxt = self._lane_bank(addr), Signal(nb, name=f"seen{i + 1}")
            # a winner's key is its address, a loser's (top bit set) matches none: one compare per lane pair
            key = Signal(len(addr) + 1, name=f"key{i}")
            merged = [keys[j] == addr for j in range(i)]
            m.d.comb += [
                key.eq(Cat(addr, ~win)),
                want.eq((fresh & req) | (~fresh & pending)),  # bit logic, not a Mux (no branch)
                win.eq(want & ~(seen >> bank)[0]),
                nxt.eq(seen | (want.as_unsigned() << bank)),
                grant.eq(want & or_tree([win, *merged])),
            ]
            wr = bank_addr.write_port()  # always enabled: a losing lane writes its bank's discard row b + B
            m.d.comb += [wr.en.eq(1), wr.addr.eq(Cat(addr[:bb], ~win)), wr.data.eq(addr[bb:])]
            m.d.sync += pending.eq(want & ~grant)
            keys.append(key)
            wins.append(win)
            grants.append(grant)
            banks.append(bank)
            left.append(want & ~grant)
            seen = nxt
        # one read per bank with a request = one per winning lane: count whichever list is shorter
        reads = [seen[b] for b in range(nb)] if nb <= self.lanes else wins
        m.d.comb += [self.advance.eq(~or_tree(left)), self.reads.eq(popcount_tree(reads))]
        m.d.sync += fresh.eq(self.advance)
        return grants, banks

    def _banks(self, m: Module, bank_addr: Memory, bank_out: Memory) -> None:
        """The ``B`` memories. Load port: activation ``a`` into bank ``a % B`` at word ``a // B``. SB: every
        bank reads the word its last winner named into ``bank_out`` (used only after a request)."""
        lay, p = self.layout, self.layout.params
        bb, wbits = lay.act_bank_bits, addr_bits(lay.act_bank_depth)
        load = Signal(lay.act_banks)  # one-hot: the bank the load port writes this cycle
        port = self.load
        hit = port.en & (port.sel == SEL_ACT)
        m.d.comb += load.eq(hit.as_unsigned() << port.addr[:bb] if bb else hit)
        for b in range(lay.act_banks):
            mem = m.submodules[f"bank{b}"] = Memory(shape=p.act_bits, depth=lay.act_bank_depth, init=[])
            wr, rd = mem.write_port(), mem.read_port(domain="comb")
            where, out = bank_addr.read_port(domain="comb"), bank_out.write_port()
            m.d.comb += [
                wr.en.eq(load[b]),
                wr.addr.eq(port.addr[bb : bb + wbits]),
                wr.data.eq(port.data),
                where.addr.eq(b),
                rd.addr.eq(where.data),
                out.en.eq(1),
                out.addr.eq(b),
                out.data.eq(rd.data),
            ]

    def _return_path(self, m: Module, bank_out: Memory, grants: list[Signal], banks: list[Value]) -> None:
        """S2: a lane granted two cycles ago takes its bank's word; earlier grants were kept in ``held``."""
        p = self.layout.params
        for i, (grant, bank) in enumerate(zip(grants, banks)):
            granted = Signal(name=f"granted{i}", reset_less=True)
            granted2 = Signal(name=f"granted2_{i}", reset_less=True)
            bank1 = Signal(len(bank), name=f"bank1_{i}", reset_less=True)
            bank2 = Signal(len(bank), name=f"bank2_{i}", reset_less=True)
            held = Signal(p.act_bits, name=f"held{i}", reset_less=True)
            act, rd = self.requests[i].act, bank_out.read_port(domain="comb")
            m.d.sync += [granted.eq(grant), granted2.eq(granted), bank1.eq(bank), bank2.eq(bank1), held.eq(act)]
            take = granted2.replicate(p.act_bits)  # a bit mask, not a Mux (no branch)
            m.d.comb += [rd.addr.eq(bank2), act.eq((rd.data & take) | (held & ~take))]


class BankedCsrPE(CsrPE):
    """A :class:`~rtl.csr.CsrPE` whose lanes request their activations from the shared banks (``requests``)
    and whose S0/S1 advance only on ``advance``; SB (bank read) sits between S1 and S2."""

    def _array(self) -> type[wiring.Component]:
        return BankedCsrArray

    def _members(self, layout: Layout) -> dict[str, Any]:
        p = layout.params
        return {
            **super()._members(layout),
            "advance": In(1),
            "requests": Out(LaneRequestSignature(layout.act_addr_bits, p.act_bits)).array(p.k),
        }

    def _step(self) -> Value:
        return self.running & self.advance  # frozen while the slot is stalled

    def _enter_s1(self, m: Module, issue: dict[str, Signal], s1: dict[str, Signal]) -> None:
        """S1 is loaded in :meth:`_before_s2`, only on ``advance``."""

    def _before_s2(
        self, m: Module, issue: dict[str, Signal], s1: dict[str, Signal], b_rd
    ) -> tuple[dict[str, Signal], Value]:
        """S0 and S1 advance only on ``advance`` (S1 lasts until every lane is granted); then SB (bank read)
        and S2 follow one cycle apart, with bubbles entering SB while S1 waits."""
        p = self.layout.params
        names = ("valid", "first", "last", "word")
        # data registers (used only when valid) have no reset; S1 holds through a Mux rather than an If
        sb = {name: Signal.like(s1[name], name=f"{name}b", reset_less=name != "valid") for name in names}
        bias_b = Signal(signed(p.acc_bits), name="biasb", reset_less=True)
        m.d.sync += [s1[name].eq(Mux(self.advance, sig, s1[name])) for name, sig in issue.items()]
        m.d.sync += [sb[name].eq(s1[name]) for name in names] + [bias_b.eq(b_rd.data)]
        m.d.sync += sb["valid"].eq(s1["valid"] & self.advance)
        return sb, bias_b

    def _lane_operands(
        self, m: Module, lane: int, s1: dict[str, Signal], col: Value, masked: Value
    ) -> tuple[Value, Value]:
        """Request address ``b*cols + column`` in S1 (while the lane is busy) on ``requests[lane]``; the banks
        hand the activation back on its ``act`` in S2, after SB; the weight value waits one cycle in SB."""
        p = self.layout.params
        request = self.requests[lane]
        m.d.comb += [request.req.eq(s1["lanes"] > lane), request.addr.eq(s1["act_base"] + col)]
        valueb = Signal(signed(p.weight_bits), name=f"valueb_{lane}", reset_less=True)
        m.d.sync += valueb.eq(masked)
        return valueb, request.act


class BankedCsrArray(CsrArray):
    """``csr_array`` with ONE activation memory in ``act_banks`` banks (:class:`ActivationBanks`, submodule
    ``acts``) instead of the per-lane replicas; PE ``i``'s lane ``j`` is its global lane ``i*k + j``."""

    pe_class = BankedCsrPE

    def _control_drain(self) -> int:
        """The run control is told "last issue" at the last grant of the last slot, one cycle after slot 0 was
        issued: it counts down the entry's drain minus that cycle (``BANKED_SERVICE_DRAIN``)."""
        return BANKED_SERVICE_DRAIN

    def _last_issue(self, m: Module, pes: list[CsrPE], load: FlatPorts, ctrl, finishing: Value) -> Value:
        k = self.params.k
        banks = m.submodules.acts = ActivationBanks(self.layout, len(pes) * k)
        connect(m, load, banks.load)
        for i, pe in enumerate(pes):
            m.d.comb += pe.advance.eq(banks.advance)
            for j, request in enumerate(pe.requests):
                connect(m, request, banks.requests[i * k + j])
        last_slot = Signal()  # S1 holds the final slot: last_issue when its last lane is granted
        m.d.sync += last_slot.eq(Mux(banks.advance, finishing, last_slot))
        m.d.comb += ctrl.last_issue.eq(last_slot & banks.advance)
        return banks.reads
