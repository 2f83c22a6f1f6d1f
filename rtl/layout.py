"""Bit layouts, load codes, register map and output addressing: the one source of truth (pure Python).

The RTL slices words with the offsets given here, :mod:`rtl.program` packs words with the same functions, and
:mod:`sim.model` takes its constants from here, so packing, hardware and model can never disagree.

Load port (all arrays): while ``load_en`` is high, ``load_data`` is written at the rising clock edge into the
memory chosen by ``load_sel`` at ``load_addr`` (one word per cycle; not while ``busy``). Per-PE memories (weights,
bias, CSR row pointers) are addressed ``(pe << addr_bits(depth)) | word`` with that memory's own depth
(:meth:`Layout.per_pe_address`; ``pe_bits = bit_length(pes - 1)``); the activation memory by word; registers by
the ``REG_*`` numbers below (names :data:`REGISTER_NAMES`, widths :meth:`Layout.register_bits`, legal values
:meth:`Layout.register_range`: a ``start`` with a register outside its range is refused with ``error``). CSR
activations are written into every lane's replica at once (``act_banks = 0``) or into their one bank
(``act_banks > 0``). Every number of a build, per field: ``interface.json`` (:mod:`rtl.interface`).

Word layouts (bit 0 = LSB, every value two's complement):

* kofn weight word, one per (row, group): value ``(j, e)`` of lane ``j`` (``j < k``), block element ``e``
  at ``(j*block + e) * weight_bits``; then index ``j`` (slot number in ``[0, n)``, ``ceil(log2 n)`` bits) at
  ``k*block*weight_bits + j*index_bits``. PE ``p`` holds rows ``t*pes + p`` at word ``t*groups + g``.
* kofn activation word, one per (vector, group, element): ``n`` activations, slot ``i`` at ``i*act_bits``,
  holding column ``(g*n + i)*block + e``; word ``(b*groups + g)*block + e``.
* dense weight word: ``k`` consecutive weights (columns ``c*k + j``) at ``j*weight_bits``, word
  ``t*chunks + c``; dense activation word: the same ``k`` columns of vector ``b``, word ``b*chunks + c``.
* csr weight word: ``k`` entries of one row; value ``j`` at ``j*weight_bits``, column ``j`` at
  ``k*weight_bits + j*col_bits``. A row's entries fill ``ceil(nnz/k)`` words, the last padded with (0, 0).
  Row pointer entry ``j`` of PE ``p`` (its local row ``j`` = row ``j*pes + p``): ``word_end`` (one past the
  row's last word, cumulative per PE from 0: an empty row repeats the previous end) in the low ``ptr_bits =
  bit_length(weight_depth)`` bits, then ``tail`` = entries in the last word (0 for an empty row).
  csr activation word: one activation, word ``b*cols + c`` (the activation address ``a``). With
  ``act_banks = B > 0`` the one activation memory of the array is split into ``B`` banks by the low address
  bits: ``a`` lives in bank ``a % B`` at word ``a // B`` (:meth:`Layout.act_bank`, :meth:`Layout.act_bank_word`);
  the load port still takes ``load_addr = a`` and writes the word into its bank only.
* bias word (all arrays): one ``acc_bits`` value per row, PE ``p`` word ``t``.

Output memory: result of (vector ``b``, row ``r``) at ``((b*tiles + r // pes) << pe_bits) | (r % pes)``,
``tiles = ceil(rows / pes)``; ``out_data`` shows the word at ``out_addr`` ``OUT_READ_LATENCY`` cycle later.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dpp.checks import index_bits
from dpp.errors import DPPError
from dpp.reference import MAX_MULTIPLIER, MAX_SHIFT
from rtl.archs import ARRAYS, CSR_BANKED, ArrayArch, arch_of
from rtl.params import ArrayParams

SEL_REG, SEL_WEIGHT, SEL_ACT, SEL_BIAS, SEL_ROWPTR = 0, 1, 2, 3, 4
SEL_BITS = 3
OUT_READ_LATENCY = 1
COUNTER_BITS = 48
COUNTERS = (
    "cycles",
    "mac_ops",
    "lane_idle_cycles",
    "weight_bits_read",
    "index_bits_read",
    "act_bits_read",
    "out_bits_written",
)

# Run-time registers (load_sel = SEL_REG, load_addr = number). rows = (TILES - 1) * pes + LAST_PES.
REG_BATCH, REG_TILES, REG_LAST_PES, REG_STEPS, REG_TAIL_LANES, REG_COLS, REG_MULTIPLIER, REG_SHIFT, REG_RELU = range(9)
REGISTER_NAMES = ("batch", "tiles", "last_pes", "steps", "tail_lanes", "cols", "multiplier", "shift", "relu")
#: Registers each array reads (the others are ignored), from the registry (:attr:`ArrayArch.registers`).
ARCH_REGISTERS = {a.arch: a.registers for a in ARRAYS if not a.banked}
MULTIPLIER_BITS = 16
SHIFT_BITS = 6

#: Busy cycles after the last issued step, per ``arch`` (:attr:`ArrayArch.drain_cycles`: 5 kofn/dense, 6 csr):
#: ``busy`` rises with the first issued step, so ``cycles`` = steps issued + ``DRAIN_CYCLES[arch]``.
DRAIN_CYCLES = {a.arch: a.drain_cycles for a in ARRAYS if not a.banked}
#: Banked CSR (``act_banks > 0``, :mod:`rtl.csr_banked`): ``cycles = sum over slots of the slot's cycles +
#: DRAIN_CYCLES_BANKED`` (7). Its run control is told "last issue" when the last slot's last grant is made,
#: one cycle after slot 0 was issued, so it counts down ``BANKED_SERVICE_DRAIN`` = 6 cycles.
DRAIN_CYCLES_BANKED = CSR_BANKED.drain_cycles
BANKED_SERVICE_DRAIN = DRAIN_CYCLES_BANKED - 1


def drain_cycles(params: ArrayParams) -> int:
    """Cycles after the last issued step until ``done``: the one number the header, model and RTL share."""
    return arch_of(params).drain_cycles


def addr_bits(depth: int) -> int:
    """Address bits of a memory of ``depth`` words (at least 1)."""
    return max(1, (depth - 1).bit_length())


def mem_depth(words: int) -> int:
    """Depth of a memory holding ``words`` words: at least 2, so no address port is zero bits wide."""
    return max(2, words)


def count_bits(top: int) -> int:
    """Unsigned bits holding every value in ``[0, top]``."""
    return max(1, top.bit_length())


@dataclass(frozen=True)
class Layout:
    """Every width, depth and offset of one build, derived from its :class:`ArrayParams`."""

    params: ArrayParams

    @property
    def array_arch(self) -> ArrayArch:
        """The build's registry entry (:mod:`rtl.archs`): the per-array facts below come from it."""
        return arch_of(self.params)

    # ------------------------------------------------------------------ basic widths
    @property
    def index_bits(self) -> int:
        """Bits of one k-of-n slot index, ``ceil(log2 n)``."""
        return index_bits(self.params.n)

    @property
    def col_bits(self) -> int:
        """Bits of one CSR column index, ``ceil(log2 max_cols)``."""
        return index_bits(self.params.max_cols)

    @property
    def pe_bits(self) -> int:
        return (self.params.pes - 1).bit_length()

    @property
    def lanes_bits(self) -> int:
        return count_bits(self.params.k)

    # ------------------------------------------------------------------ weight memory (per PE)
    @property
    def max_chunks(self) -> int:
        return math.ceil(self.params.max_cols / self.params.k)

    @property
    def weight_depth(self) -> int:
        return mem_depth(self.array_arch.weight_words(self))

    @property
    def weight_value_bits(self) -> int:
        """Weight-value bits of one word (what ``weight_bits_read`` adds per word read)."""
        p = self.params
        return p.k * p.block * p.weight_bits

    @property
    def weight_index_bits(self) -> int:
        """Index bits of one weight word (what ``index_bits_read`` adds per word read)."""
        return self.params.k * self.array_arch.index_field_bits(self)

    @property
    def weight_word_bits(self) -> int:
        return self.weight_value_bits + self.weight_index_bits

    def value_offset(self, lane: int, element: int = 0) -> int:
        return (lane * self.params.block + element) * self.params.weight_bits

    def index_offset(self, lane: int) -> int:
        return self.weight_value_bits + lane * self.array_arch.index_field_bits(self)

    # ------------------------------------------------------------------ activations (shared / replicated)
    @property
    def act_lanes(self) -> int:
        """Activations per activation word."""
        return self.array_arch.act_lanes(self.params)

    @property
    def act_word_bits(self) -> int:
        return self.act_lanes * self.params.act_bits

    @property
    def act_depth(self) -> int:
        return mem_depth(self.params.max_batch * self.array_arch.act_words_per_vector(self))

    # ------------------------------------------------------------------ banked CSR activations (act_banks > 0)
    @property
    def act_banks(self) -> int:
        """Banks of the one shared CSR activation memory; 0 = per-lane replicas."""
        return self.params.act_banks

    @property
    def act_bank_bits(self) -> int:
        """Low address bits that pick the bank (``log2 act_banks``; 0 for one bank or replicas)."""
        return max(0, self.act_banks - 1).bit_length()

    @property
    def act_bank_depth(self) -> int:
        """Words per bank: ``ceil(max_batch * max_cols / act_banks)`` (at least 2)."""
        if not self.act_banks:
            raise DPPError("act_bank_depth applies to act_banks > 0 (got act_banks=0)")
        return mem_depth(math.ceil(self.params.max_batch * self.params.max_cols / self.act_banks))

    @property
    def act_addr_bits(self) -> int:
        """Bits of an activation address ``a = b*cols + c`` as the lanes issue it (bank bits + word bits)."""
        if not self.act_banks:
            return addr_bits(self.act_depth)
        return self.act_bank_bits + addr_bits(self.act_bank_depth)

    def act_bank(self, addr: Any) -> Any:
        """Bank of activation address ``addr`` (ints or integer arrays): ``addr % act_banks``."""
        return addr & (self.act_banks - 1)

    def act_bank_word(self, addr: Any) -> Any:
        """Word of activation address ``addr`` inside its bank: ``addr // act_banks``."""
        return addr >> self.act_bank_bits

    # ------------------------------------------------------------------ bias, row pointers, output
    @property
    def tile_depth(self) -> int:
        """Words of the per-PE bias and row-pointer memories (one per local row)."""
        return mem_depth(self.params.max_tiles)

    def pe_memory_depth(self, name: str) -> int:
        """Words of the per-PE memory ``name`` (:attr:`ArrayArch.pe_memories`): weights, or one per local row."""
        return self.weight_depth if name == "weights" else self.tile_depth

    @property
    def ptr_bits(self) -> int:
        return count_bits(self.weight_depth)

    @property
    def rowptr_bits(self) -> int:
        """Bits of one CSR row-pointer entry (word_end + tail); added to ``index_bits_read`` per row."""
        return self.ptr_bits + self.lanes_bits

    @property
    def out_depth(self) -> int:
        return mem_depth(self.params.max_batch * self.params.max_tiles)

    @property
    def out_addr_bits(self) -> int:
        return addr_bits(self.out_depth) + self.pe_bits

    # ------------------------------------------------------------------ load port
    def register_bits(self, name: str) -> int:
        p = self.params
        return {
            "batch": count_bits(p.max_batch),
            "tiles": count_bits(p.max_tiles),
            "last_pes": count_bits(p.pes),
            "steps": count_bits(max(p.max_groups, self.max_chunks)),
            "tail_lanes": self.lanes_bits,
            "cols": count_bits(p.max_cols),
            "multiplier": MULTIPLIER_BITS,
            "shift": SHIFT_BITS,
            "relu": 1,
        }[name]

    def register_range(self, name: str) -> tuple[int, int]:
        """``(lo, hi)``: the legal values of register ``name`` in this build. A ``start`` while any register the
        array reads lies outside its range is refused: ``done`` rises at once with ``error`` (no run, no hang)."""
        p = self.params
        return {
            "batch": (1, p.max_batch),
            "tiles": (1, p.max_tiles),
            "last_pes": (1, p.pes),
            "steps": (1, self.array_arch.max_steps(self)),
            "tail_lanes": (1, p.k),
            "cols": (1, p.max_cols),
            "multiplier": (1, MAX_MULTIPLIER),
            "shift": (1, MAX_SHIFT),
            "relu": (0, 1),
        }[name]

    @property
    def registers(self) -> tuple[str, ...]:
        return self.array_arch.registers

    @property
    def load_addr_bits(self) -> int:
        per_pe = max(addr_bits(self.weight_depth), addr_bits(self.tile_depth))
        return max(self.pe_bits + per_pe, self.act_addr_bits, addr_bits(len(REGISTER_NAMES)))

    @property
    def load_data_bits(self) -> int:
        widths = [self.weight_word_bits, self.act_word_bits, self.params.acc_bits, MULTIPLIER_BITS]
        if "rowptr" in self.array_arch.pe_memories:
            widths.append(self.rowptr_bits)
        return max(widths)

    def per_pe_address(self, pe: int, word: int, depth: int) -> int:
        """Load address of ``word`` in PE ``pe``'s memory of ``depth`` words."""
        return (pe << addr_bits(depth)) | word

    # ------------------------------------------------------------------ packing (vectorised, exact ints)
    def pack_kofn_words(self, values: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """values ``(..., k, block)``, indices ``(..., k)`` -> weight words ``(...)`` (Python ints)."""
        p = self.params
        fields = [
            (values[..., j, e], self.value_offset(j, e), p.weight_bits) for j in range(p.k) for e in range(p.block)
        ]
        fields += [(indices[..., j], self.index_offset(j), self.index_bits) for j in range(p.k)]
        return pack_fields(fields)

    def pack_dense_words(self, values: np.ndarray) -> np.ndarray:
        """values ``(..., k)`` -> weight words."""
        p = self.params
        return pack_fields([(values[..., j], self.value_offset(j), p.weight_bits) for j in range(p.k)])

    def pack_csr_words(self, values: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """values, cols ``(..., k)`` -> weight words."""
        p = self.params
        return pack_fields(
            [(values[..., j], self.value_offset(j), p.weight_bits) for j in range(p.k)]
            + [(cols[..., j], self.index_offset(j), self.col_bits) for j in range(p.k)]
        )

    def pack_act_words(self, acts: np.ndarray) -> np.ndarray:
        """acts ``(..., act_lanes)`` -> activation words."""
        ab = self.params.act_bits
        return pack_fields([(acts[..., i], i * ab, ab) for i in range(acts.shape[-1])])

    def pack_rowptr(self, word_end: np.ndarray, tail: np.ndarray) -> np.ndarray:
        return pack_fields([(word_end, 0, self.ptr_bits), (tail, self.ptr_bits, self.lanes_bits)])

    def pack_bias(self, bias: np.ndarray) -> np.ndarray:
        return pack_fields([(bias, 0, self.params.acc_bits)])

    def output_address(self, tiles: int, batch_index: Any, row: Any) -> Any:
        """``out_addr`` of (vector, row) for a layer of ``tiles`` row tiles (ints or integer arrays)."""
        pes = self.params.pes
        return ((batch_index * tiles + row // pes) << self.pe_bits) | (row % pes)

    def decode_output(self, word: int) -> int:
        """Signed value of a raw ``out_data`` word."""
        return _signed(word, self.params.out_bits)


def pack_fields(fields: list[tuple[np.ndarray, int, int]]) -> np.ndarray:
    """OR together ``(values, offset, bits)`` fields (two's complement) into words of any width.

    Returns an object array of Python ints (words may exceed 64 bits); refuses values that do not fit.
    """
    out: np.ndarray | None = None
    for values, offset, bits in fields:
        v = np.asarray(values, dtype=np.int64)
        if bits < 63:
            bad = (v < -(1 << (bits - 1))) | (v >= (1 << bits))
            if bad.any():
                raise DPPError(f"value {int(v[bad].flat[0])} does not fit a {bits}-bit field")
            field = (v & ((1 << bits) - 1)).astype(object)
        else:
            field = v.astype(object) & ((1 << bits) - 1)
        out = field * (1 << offset) if out is None else out + field * (1 << offset)
    if out is None:
        raise DPPError("pack_fields needs at least one field")
    return out


def _signed(word: int, bits: int) -> int:
    word &= (1 << bits) - 1
    return word - (1 << bits) if word >> (bits - 1) else word
