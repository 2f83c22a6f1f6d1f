"""Build-time parameters of one array: the only inputs of :func:`rtl.build.make_array`.

Everything fixed in hardware lives here (architecture, lanes, bit widths, memory depths); the layer shape
and requantisation are run-time registers (see :mod:`rtl.layout`). An :class:`ArrayParams` checks itself
on construction, so a bad value fails with one clear ``ValueError`` before any hardware is built.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from dpp.checks import check_int, check_k_n
from dpp.errors import DPPError
from dpp.limits import MAX_ACC_BITS, MAX_ACT_BANKS, MAX_BLOCK, MAX_N, MAX_PES, WEIGHT_BITS_RANGE  # noqa: F401
from dpp.reference import ACT_BITS_RANGE, OUT_BITS_RANGE, accumulator_bits
from rtl.archs import ARCHS, ARRAYS, ArrayArch, arch_named, arch_of, check_arch  # noqa: F401 (ARCHS: re-exported)

#: Verilog top-module name per ``arch`` (from the registry, :mod:`rtl.archs`).
TOP_NAMES = {a.arch: a.top_name for a in ARRAYS if not a.banked}


def check_act_banks(act_banks: int) -> int:
    """``act_banks`` checked: 0 (a private activation replica per CSR lane) or a power of two up to
    :data:`MAX_ACT_BANKS` (one activation memory in that many banks)."""
    check_int("act_banks", act_banks, lo=0, hi=MAX_ACT_BANKS)
    if act_banks & (act_banks - 1):
        raise DPPError(f"act_banks must be 0 (per-lane replicas) or a power of two (got act_banks={act_banks})")
    return act_banks


def bias_bits_for(bias: Any) -> int:
    """Signed bits that hold every value of ``bias`` (an int or integer array; at least 1): the ``bias_bits`` a
    build needs so that these biases can never overflow its accumulator, whatever the layer's weights."""
    values = np.asarray(bias)
    if not values.size:
        return 1
    if values.dtype == bool or not np.issubdtype(values.dtype, np.integer):
        raise DPPError(f"bias must be integers (got dtype {values.dtype})")
    lo, hi = int(values.min()), int(values.max())
    return max(v.bit_length() if v >= 0 else (-v - 1).bit_length() for v in (lo, hi)) + 1


def _archs_that(fact: str) -> str:
    """``"arch='kofn'"``: the arches whose entry has ``fact`` (for the "applies to ... only" errors)."""
    return " or ".join(dict.fromkeys(f"arch={a.arch!r}" for a in ARRAYS if getattr(a, fact)))


@dataclass(frozen=True)
class ArrayParams:
    """One hardware configuration. ``acc_bits=0`` means "the smallest width that can never overflow".

    ``bias_bits``: the signed width every bias must be able to take without any chance of overflow; 0 means
    the width of the product sum (``act_bits + weight_bits + ceil(log2 max_fan_in)``, the reference default).
    ``acc_bits`` is at least :func:`dpp.reference.accumulator_bits` of it, and after construction
    ``bias_bits`` is the widest signed bias width the built ``acc_bits`` guarantees (:attr:`bias_range`
    gives the exact range; :func:`rtl.program.check_layer_fits` the exact one of a layer).

    ``k`` multipliers per PE and ``pes`` PEs for every architecture (``pes * k`` multipliers in all).
    ``n`` and ``block`` describe the k-of-n format: ``n`` only shapes the kofn array (the baselines accept
    any valid ``k < n`` so one set of numbers describes a comparison), ``block`` must be 1 for the baselines.
    ``max_nnz`` (CSR only) is the most stored non-zeros one PE can hold; 0 means full rows.
    ``act_banks`` (CSR only): 0 = every lane has its own replica of the activation memory (the strong,
    conflict-free baseline); ``B`` (a power of two) = ONE activation memory for the whole array in ``B``
    banks interleaved by the low address bits, all PEs in lock-step, bank conflicts stall the array
    (:mod:`rtl.csr_banked`).
    """

    arch: str
    k: int
    n: int
    pes: int
    weight_bits: int
    act_bits: int
    out_bits: int
    block: int = 1
    acc_bits: int = 0
    max_rows: int = 64
    max_cols: int = 64
    max_batch: int = 4
    max_nnz: int = 0
    act_banks: int = 0
    bias_bits: int = 0

    def __post_init__(self) -> None:
        check_arch(self.arch)
        check_k_n(self.k, self.n)
        check_int("n", self.n, hi=MAX_N)
        check_int("pes", self.pes, lo=1, hi=MAX_PES)
        check_int("block", self.block, lo=1, hi=MAX_BLOCK)
        if self.block != 1 and not arch_named(self.arch).takes_block:
            raise DPPError(
                f"block applies to {_archs_that('takes_block')} only; the baselines process columns "
                f"(got block={self.block} for arch={self.arch!r}, expected 1)"
            )
        check_int("weight_bits", self.weight_bits, lo=WEIGHT_BITS_RANGE[0], hi=WEIGHT_BITS_RANGE[1])
        check_int("act_bits", self.act_bits, lo=ACT_BITS_RANGE[0], hi=ACT_BITS_RANGE[1])
        check_int("out_bits", self.out_bits, lo=OUT_BITS_RANGE[0], hi=OUT_BITS_RANGE[1])
        check_int("max_rows", self.max_rows, lo=1, hi=1 << 20)
        check_int("max_cols", self.max_cols, lo=1, hi=1 << 20)
        check_int("max_batch", self.max_batch, lo=1, hi=1 << 16)
        check_int("max_nnz", self.max_nnz, lo=0, hi=1 << 28)
        if self.max_nnz != 0 and not arch_named(self.arch).takes_max_nnz:
            raise DPPError(
                f"max_nnz applies to {_archs_that('takes_max_nnz')} only (got max_nnz={self.max_nnz} "
                f"for arch={self.arch!r}, expected 0)"
            )
        check_int("act_banks", self.act_banks, lo=0, hi=MAX_ACT_BANKS)
        arch_named(self.arch, self.act_banks)  # act_banks > 0 only where a banked variant exists
        check_act_banks(self.act_banks)
        check_int("acc_bits", self.acc_bits, lo=0, hi=MAX_ACC_BITS)
        check_int("bias_bits", self.bias_bits, lo=0, hi=MAX_ACC_BITS - 1)
        need = self.min_acc_bits
        if need > MAX_ACC_BITS:
            raise DPPError(f"layer too large: the accumulator would need {need} bits (max {MAX_ACC_BITS})")
        if self.acc_bits == 0:
            object.__setattr__(self, "acc_bits", need)
        elif self.acc_bits < need:
            bias = f", bias_bits={self.bias_bits}" if self.bias_bits else ""
            raise DPPError(
                f"acc_bits must be >= {need} for act_bits={self.act_bits}, "
                f"weight_bits={self.weight_bits}, fan-in {self.max_fan_in}{bias} "
                f"(got acc_bits={self.acc_bits})"
            )
        object.__setattr__(self, "bias_bits", self._safe_bias_bits())
        if self.max_nnz == 0 and self.array_arch.takes_max_nnz:  # 0 = full rows
            object.__setattr__(self, "max_nnz", self.max_tiles * self.max_cols)

    # ------------------------------------------------------------------ derived sizes (one source of truth)
    @property
    def array_arch(self) -> ArrayArch:
        """This build's registry entry (:func:`rtl.archs.arch_of`): every per-array fact and behaviour."""
        return arch_of(self)

    @property
    def top_name(self) -> str:
        return self.array_arch.top_name

    @property
    def multipliers(self) -> int:
        return self.pes * self.k

    @property
    def max_tiles(self) -> int:
        """Row tiles of ``pes`` rows for the largest layer."""
        return math.ceil(self.max_rows / self.pes)

    @property
    def max_groups(self) -> int:
        return math.ceil(self.max_cols / (self.n * self.block))

    @property
    def max_fan_in(self) -> int:
        """Most products summed into one accumulator."""
        return self.array_arch.max_fan_in(self)

    @property
    def min_acc_bits(self) -> int:
        """The smallest ``acc_bits`` for this fan-in and ``bias_bits`` (:func:`dpp.reference.accumulator_bits`)."""
        return accumulator_bits(self.act_bits, self.weight_bits, self.max_fan_in, self.bias_bits or None)

    @property
    def product_sum_range(self) -> tuple[int, int]:
        """``(lo, hi)``: the extremes of one row's sum of products over ``max_fan_in`` products of signed
        ``weight_bits`` x ``act_bits`` values (hi: both operands most negative)."""
        a, w = 1 << (self.act_bits - 1), 1 << (self.weight_bits - 1)
        return -self.max_fan_in * max(a * (w - 1), (a - 1) * w), self.max_fan_in * a * w

    @property
    def bias_range(self) -> tuple[int, int]:
        """``(lo, hi)``: every bias in it can never overflow the ``acc_bits`` accumulator, whatever the layer
        (up to the build's size) and its activations; exact (a bias outside can, for some layer and input)."""
        lo, hi = self.product_sum_range
        top = 1 << (self.acc_bits - 1)
        return -top - lo, top - 1 - hi

    def _safe_bias_bits(self) -> int:
        """The widest signed width whose every value lies in :attr:`bias_range`."""
        lo, hi = self.bias_range
        return min((-lo).bit_length(), (hi + 1).bit_length())

    # ------------------------------------------------------------------ files
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ArrayParams:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise DPPError(f"unknown ArrayParams field(s) {unknown}; expected a subset of {sorted(names)}")
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> ArrayParams:
        d = json.loads(text)
        if not isinstance(d, dict):
            raise DPPError(f"ArrayParams JSON must be an object (got {type(d).__name__})")
        return cls.from_dict(d)
