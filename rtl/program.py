"""Turn one layer (weights, batch of inputs, bias, requantisation) into the load-port writes of an array.

Pure Python: used by the Amaranth tests here and by the cocotb/Verilator runner in ``sim/``. Besides the
``(sel, addr, data)`` writes, a :class:`LayerProgram` carries every memory's contents (``memories``, keyed by
the memory's path in the generated Verilog, see :func:`memory_paths`) so a testbench can back-door load a
large layer, and the reference result ``expected`` from :func:`dpp.reference.linear_int`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dpp.checks import check_int, check_int_array, signed_range
from dpp.errors import DPPError
from dpp.kofn import WeightMatrix
from dpp.reference import MAX_MULTIPLIER, MAX_SHIFT, linear_int
from rtl.layout import REGISTER_NAMES, SEL_ACT, SEL_BIAS, SEL_REG, SEL_ROWPTR, SEL_WEIGHT, Layout
from rtl.params import ArrayParams

#: ``load_sel`` of each per-PE memory an array may have (:attr:`rtl.archs.ArrayArch.pe_memories`).
PE_MEMORY_SEL = {"weights": SEL_WEIGHT, "biases": SEL_BIAS, "rowptr": SEL_ROWPTR}


@dataclass
class LayerProgram:
    """Everything needed to run one layer on one build, and what it must produce."""

    params: ArrayParams
    rows: int
    cols: int
    batch: int
    registers: dict[str, int]
    memories: dict[str, list[int]]
    expected: np.ndarray
    row_nnz: np.ndarray | None = None
    writes: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def layout(self) -> Layout:
        return Layout(self.params)

    @property
    def tiles(self) -> int:
        return math.ceil(self.rows / self.params.pes)

    def output_address(self, batch_index: int, row: int) -> int:
        """``out_addr`` of the result for vector ``batch_index``, output row ``row``."""
        check_int("batch_index", batch_index, lo=0, hi=self.batch - 1)
        check_int("row", row, lo=0, hi=self.rows - 1)
        return self.layout.output_address(self.tiles, batch_index, row)

    def output_addresses(self) -> np.ndarray:
        """``(batch, rows)`` array of every result's ``out_addr``."""
        b, r = np.meshgrid(np.arange(self.batch), np.arange(self.rows), indexing="ij")
        return self.layout.output_address(self.tiles, b, r)


def memory_paths(params: ArrayParams) -> dict[str, str]:
    """Logical memory name (the keys of ``LayerProgram.memories``, plus the output banks ``out<pe>``) ->
    its path below the top module in the generated Verilog, e.g. ``dut.pe0.weights[i].value = word``."""
    arch = params.array_arch
    paths = {f"{name}{pe}": f"pe{pe}.{name}" for pe in range(params.pes) for name in arch.pe_memories}
    paths.update({f"out{pe}": f"outs.out{pe}" for pe in range(params.pes)})
    paths.update(arch.act_memory_paths(params))
    return paths


def register_paths(params: ArrayParams) -> dict[str, str]:
    """Run-time register name -> its path in the generated Verilog (``dut.regs.<name>``)."""
    return {name: f"regs.{name}" for name in Layout(params).registers}


class AccumulatorOverflowError(DPPError):
    """A layer's bias plus its products could leave the build's ``acc_bits`` accumulator, which would wrap
    silently: one line naming the layer, the row and the legal bias bound."""


def row_sum_bounds(params: ArrayParams, W: WeightMatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(lo, hi)`` per row: the extremes of ``sum_c W[r, c] * x[c]`` over every signed ``act_bits`` input ``x``
    (each weight meets the activation that makes its product largest / smallest)."""
    rows, _ = _check_matrix(params, W)
    row, value = params.array_arch.stored_weights(W)
    a_lo, a_hi = signed_range(params.act_bits)
    pos, neg = np.zeros(rows, dtype=np.int64), np.zeros(rows, dtype=np.int64)
    np.add.at(pos, row, np.maximum(value, 0))
    np.add.at(neg, row, np.minimum(value, 0))
    return pos * a_lo + neg * a_hi, pos * a_hi + neg * a_lo


def check_layer_fits(params: ArrayParams, W: WeightMatrix, bias: Any, name: str = "layer") -> None:
    """Refuse (:class:`AccumulatorOverflowError`) a layer whose bias plus products could overflow the build's
    ``acc_bits`` accumulator for some input: row ``r``'s bias must lie in ``[-2**(acc_bits-1) - lo_r,
    2**(acc_bits-1) - 1 - hi_r]`` with ``(lo_r, hi_r)`` = :func:`row_sum_bounds`. Exact: a bias outside overflows
    for some activations. Biases in ``params.bias_range`` fit every layer of the build."""
    rows, _ = _check_matrix(params, W)
    b = check_int_array("bias", bias, ndim=1)
    if b.shape != (rows,):
        raise DPPError(f"{name}: bias must have shape ({rows},) (got {b.shape})")
    lo, hi = row_sum_bounds(params, W)
    top = 1 << (params.acc_bits - 1)
    legal_lo, legal_hi = -top - lo, top - 1 - hi  # int64 even at acc_bits = 64: lo <= 0 <= hi
    bad = np.flatnonzero((b < legal_lo) | (b > legal_hi))
    if bad.size:
        r = int(bad[0])
        build_lo, build_hi = params.bias_range
        raise AccumulatorOverflowError(
            f"{name}: bias {int(b[r])} of row {r} could overflow the {params.acc_bits}-bit accumulator (the row's "
            f"products sum to {int(lo[r])} .. {int(hi[r])}): its bias must lie in [{int(legal_lo[r])}, "
            f"{int(legal_hi[r])}]; biases in [{build_lo}, {build_hi}] fit every layer of this build, wider ones "
            f"need a build with a larger bias_bits"
        )


def program_layer(
    params: ArrayParams,
    W: WeightMatrix,
    x: Any,
    bias: Any,
    multiplier: int,
    shift: int,
    relu: bool,
    *,
    name: str = "layer",
) -> LayerProgram:
    """Registers, memory images and load-port writes for ``linear_int(x, W, bias, ...)`` on ``params``.

    ``W`` is in the build's format (:attr:`rtl.archs.ArrayArch.weight_format`): a :class:`KofNMatrix` (kofn),
    a dense integer array (dense) or a :class:`CSRMatrix` (csr). ``x`` is ``(batch, cols)`` or ``(cols,)``.
    The array's registry entry packs its weights and activations (:meth:`rtl.archs.ArrayArch.pack`).
    A bias that could overflow the accumulator is refused (:func:`check_layer_fits`; ``name`` names the layer
    in that error).
    """
    lay = Layout(params)
    rows, cols = _check_matrix(params, W)
    xa = check_int_array("x", x, bits=params.act_bits)
    xa = xa[None, :] if xa.ndim == 1 else xa
    if xa.ndim != 2 or xa.shape[1] != cols:
        raise DPPError(f"x must have shape (batch, {cols}) or ({cols},) (got {np.shape(x)})")
    batch = check_int("batch", xa.shape[0], lo=1, hi=params.max_batch)
    b = check_int_array("bias", bias, ndim=1)
    if b.shape != (rows,):
        raise DPPError(f"bias must have shape ({rows},) (got {b.shape})")
    check_layer_fits(params, W, b, name)
    check_int("multiplier", multiplier, lo=1, hi=MAX_MULTIPLIER)
    check_int("shift", shift, lo=1, hi=MAX_SHIFT)
    expected = linear_int(xa, W, b, multiplier, shift, params.out_bits, bool(relu), act_bits=params.act_bits)

    tiles = math.ceil(rows / params.pes)
    regs = dict(
        batch=batch,
        tiles=tiles,
        last_pes=rows - (tiles - 1) * params.pes,
        steps=0,
        tail_lanes=0,
        cols=cols,
        multiplier=int(multiplier),
        shift=int(shift),
        relu=int(bool(relu)),
    )
    mems: dict[str, np.ndarray] = {}
    row_nnz = params.array_arch.pack(lay, W, xa, regs, mems)
    for pe in range(params.pes):
        mems[f"biases{pe}"] = lay.pack_bias(b[pe :: params.pes])
    memories = {k: [int(v) for v in np.asarray(a, dtype=object).ravel()] for k, a in mems.items()}
    prog = LayerProgram(params, rows, cols, batch, {r: regs[r] for r in lay.registers}, memories, expected, row_nnz)
    prog.writes = _writes(lay, prog)
    return prog


def program_text(prog: LayerProgram) -> str:
    """The load-port writes of ``prog`` as the example driver's program file (``rtl/examples/driver.cpp``): one
    write per line, ``SEL ADDR DATA`` in hex, after ``#`` comment lines naming the build and the layer."""
    p = prog.params
    head = [
        f"# {p.top_name} ({p.array_arch.label}): layer {prog.rows}x{prog.cols}, batch {prog.batch}",
        "# one load-port write per line: load_sel load_addr load_data (hex)",
    ]
    for sel, addr, data in prog.writes:
        if min(sel, addr, data) < 0:
            raise DPPError(f"load-port write ({sel}, {addr}, {data}) holds a negative field")
    return "\n".join(head + [f"{sel:x} {addr:x} {data:x}" for sel, addr, data in prog.writes]) + "\n"


def _check_matrix(params: ArrayParams, W: WeightMatrix) -> tuple[int, int]:
    """Check that ``W`` has the format, shape and widths this build accepts; return (rows, cols)."""
    rows, cols, wbits = params.array_arch.check_weights(params, W)
    if wbits > params.weight_bits:
        raise DPPError(f"W has weight_bits={wbits} but the build holds {params.weight_bits}-bit weights")
    check_int("rows", rows, lo=1, hi=params.max_rows)
    check_int("cols", cols, lo=1, hi=params.max_cols)
    return rows, cols


def activation_words(prog: LayerProgram) -> list[int]:
    """The activation words in load-address order (``b*cols + c`` for csr), whatever memories hold them."""
    return prog.params.array_arch.activation_words(prog.layout, prog.memories)


def _writes(lay: Layout, prog: LayerProgram) -> list[tuple[int, int, int]]:
    """The load-port writes: registers, then every memory word (CSR activations once: broadcast into every
    replica, or into their one bank)."""
    writes = [(SEL_REG, REGISTER_NAMES.index(name), value) for name, value in prog.registers.items()]
    p = lay.params
    per_pe = [(name, PE_MEMORY_SEL[name], lay.pe_memory_depth(name)) for name in p.array_arch.pe_memories]
    for pe in range(p.pes):
        for name, sel, depth in per_pe:
            words = prog.memories[f"{name}{pe}"]
            writes += [(sel, lay.per_pe_address(pe, i, depth), w) for i, w in enumerate(words)]
    writes += [(SEL_ACT, i, w) for i, w in enumerate(activation_words(prog))]
    return writes
