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
from dpp.kofn import CSRMatrix, KofNMatrix
from dpp.reference import MAX_MULTIPLIER, MAX_SHIFT, linear_int
from rtl.layout import REGISTER_NAMES, SEL_ACT, SEL_BIAS, SEL_REG, SEL_ROWPTR, SEL_WEIGHT, Layout
from rtl.params import ArrayParams
from dpp.errors import ArgumentTypeError, DPPError


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
    paths = {}
    replicas = params.arch == "csr" and not params.act_banks
    for pe in range(params.pes):
        paths[f"weights{pe}"] = f"pe{pe}.weights"
        paths[f"biases{pe}"] = f"pe{pe}.biases"
        if params.arch == "csr":
            paths[f"rowptr{pe}"] = f"pe{pe}.rowptr"
        if replicas:
            for lane in range(params.k):
                paths[f"acts{pe}_{lane}"] = f"pe{pe}.acts{lane}"
        paths[f"out{pe}"] = f"outs.out{pe}"
    if params.arch != "csr":
        paths["acts"] = "acts"
    for bank in range(params.act_banks):  # banked CSR: rtl.csr_banked.ActivationBanks is submodule "acts"
        paths[f"act_bank{bank}"] = f"acts.bank{bank}"
    return paths


def register_paths(params: ArrayParams) -> dict[str, str]:
    """Run-time register name -> its path in the generated Verilog (``dut.regs.<name>``)."""
    return {name: f"regs.{name}" for name in Layout(params).registers}


def program_layer(params: ArrayParams, W: Any, x: Any, bias: Any, multiplier: int, shift: int,
                  relu: bool) -> LayerProgram:
    """Registers, memory images and load-port writes for ``linear_int(x, W, bias, ...)`` on ``params``.

    ``W`` is a :class:`KofNMatrix` (kofn), a dense integer array (dense) or a :class:`CSRMatrix` (csr).
    ``x`` is ``(batch, cols)`` or ``(cols,)``.
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
    lo, hi = signed_range(params.acc_bits - 1)
    if b.size and (b.min() < lo or b.max() > hi):
        raise DPPError(f"bias must lie in [{lo}, {hi}] (signed acc_bits-1 = {params.acc_bits - 1} bits) "
                         f"(got {int(b.min())} .. {int(b.max())})")
    check_int("multiplier", multiplier, lo=1, hi=MAX_MULTIPLIER)
    check_int("shift", shift, lo=1, hi=MAX_SHIFT)
    expected = linear_int(xa, W, b, multiplier, shift, params.out_bits, bool(relu), act_bits=params.act_bits)

    tiles = math.ceil(rows / params.pes)
    regs = dict(batch=batch, tiles=tiles, last_pes=rows - (tiles - 1) * params.pes, steps=0, tail_lanes=0,
                cols=cols, multiplier=int(multiplier), shift=int(shift), relu=int(bool(relu)))
    mems: dict[str, np.ndarray] = {}
    row_nnz = None
    if params.arch == "kofn":
        regs["steps"] = W.groups
        _kofn_memories(lay, W, xa, mems)
    elif params.arch == "dense":
        chunks = math.ceil(cols / params.k)
        regs["steps"], regs["tail_lanes"] = chunks, cols - (chunks - 1) * params.k
        _dense_memories(lay, np.asarray(W, dtype=np.int64), xa, mems)
    else:
        row_nnz = W.row_lengths()
        _csr_memories(lay, W, xa, mems)
    for pe in range(params.pes):
        mems[f"biases{pe}"] = lay.pack_bias(b[pe::params.pes])
    memories = {k: [int(v) for v in np.asarray(a, dtype=object).ravel()] for k, a in mems.items()}
    prog = LayerProgram(params, rows, cols, batch, {r: regs[r] for r in lay.registers}, memories,
                        expected, row_nnz)
    prog.writes = _writes(lay, prog)
    return prog


def _check_matrix(params: ArrayParams, W: Any) -> tuple[int, int]:
    """Check that ``W`` has the format, shape and widths this build accepts; return (rows, cols)."""
    want = {"kofn": "a KofNMatrix", "dense": "a dense integer array", "csr": "a CSRMatrix"}[params.arch]
    if params.arch == "kofn":
        if not isinstance(W, KofNMatrix):
            raise ArgumentTypeError(f"arch 'kofn' needs W as {want} (got {type(W).__name__})")
        for name in ("k", "n", "block"):
            if getattr(W, name) != getattr(params, name):
                raise DPPError(f"W has {name}={getattr(W, name)} but the build has {name}={getattr(params, name)}")
        rows, cols, wbits = W.rows, W.cols, W.weight_bits
    elif params.arch == "csr":
        if not isinstance(W, CSRMatrix):
            raise ArgumentTypeError(f"arch 'csr' needs W as {want} (got {type(W).__name__})")
        rows, cols, wbits = W.rows, W.cols, W.weight_bits
    else:
        if isinstance(W, (KofNMatrix, CSRMatrix)):
            raise ArgumentTypeError(f"arch 'dense' needs W as {want} (got {type(W).__name__})")
        arr = check_int_array("W", W, bits=params.weight_bits, ndim=2)
        rows, cols, wbits = arr.shape[0], arr.shape[1], params.weight_bits
    if wbits > params.weight_bits:
        raise DPPError(f"W has weight_bits={wbits} but the build holds {params.weight_bits}-bit weights")
    check_int("rows", rows, lo=1, hi=params.max_rows)
    check_int("cols", cols, lo=1, hi=params.max_cols)
    return rows, cols


def _kofn_memories(lay: Layout, W: KofNMatrix, x: np.ndarray, mems: dict) -> None:
    p = lay.params
    words = lay.pack_kofn_words(W.values, W.indices)  # (rows, groups): PE p holds rows p, p+pes, ...
    for pe in range(p.pes):
        mems[f"weights{pe}"] = words[pe::p.pes]
    xp = np.pad(x, ((0, 0), (0, W.padded_cols - W.cols))).reshape(x.shape[0], W.groups, p.n, p.block)
    mems["acts"] = lay.pack_act_words(xp.transpose(0, 1, 3, 2))  # (batch, groups, block) words of n


def _dense_memories(lay: Layout, W: np.ndarray, x: np.ndarray, mems: dict) -> None:
    p = lay.params
    rows, cols = W.shape
    chunks = math.ceil(cols / p.k)
    wp = np.pad(W, ((0, 0), (0, chunks * p.k - cols))).reshape(rows, chunks, p.k)
    words = lay.pack_dense_words(wp)  # (rows, chunks)
    for pe in range(p.pes):
        mems[f"weights{pe}"] = words[pe::p.pes]
    xp = np.pad(x, ((0, 0), (0, chunks * p.k - cols))).reshape(x.shape[0], chunks, p.k)
    mems["acts"] = lay.pack_act_words(xp)


def _csr_memories(lay: Layout, W: CSRMatrix, x: np.ndarray, mems: dict) -> None:
    p = lay.params
    lengths = W.row_lengths()
    for pe in range(p.pes):
        vals, cols, ends, tails = [], [], [], []
        for r in range(pe, W.rows, p.pes):
            lo, hi = int(W.row_ptr[r]), int(W.row_ptr[r + 1])
            nwords = math.ceil((hi - lo) / p.k)
            pad = nwords * p.k - (hi - lo)
            vals.append(np.concatenate([W.values[lo:hi], np.zeros(pad, np.int64)]).reshape(nwords, p.k))
            cols.append(np.concatenate([W.col_indices[lo:hi], np.zeros(pad, np.int64)]).reshape(nwords, p.k))
            ends.append((ends[-1] if ends else 0) + nwords)
            tails.append(int(lengths[r]) - (nwords - 1) * p.k if nwords else 0)
        total = ends[-1] if ends else 0
        if total > lay.weight_depth:
            raise DPPError(f"PE {pe} needs {total} CSR words but the build holds {lay.weight_depth} "
                             f"(raise max_nnz above {p.max_nnz})")
        v = np.concatenate(vals) if vals else np.zeros((0, p.k), np.int64)
        c = np.concatenate(cols) if cols else np.zeros((0, p.k), np.int64)
        mems[f"weights{pe}"] = lay.pack_csr_words(v, c)
        mems[f"rowptr{pe}"] = lay.pack_rowptr(np.array(ends, np.int64), np.array(tails, np.int64))
    acts = lay.pack_act_words(x.reshape(-1, 1))  # address a = b*cols + c
    if p.act_banks:  # one memory in banks: address a in bank a % B, word a // B
        addrs = np.arange(acts.size)
        for bank in range(p.act_banks):
            mems[f"act_bank{bank}"] = acts[lay.act_bank(addrs) == bank]
    else:
        for pe in range(p.pes):
            for lane in range(p.k):
                mems[f"acts{pe}_{lane}"] = acts


def activation_words(prog: LayerProgram) -> list[int]:
    """The activation words in load-address order (``b*cols + c`` for csr), whatever memories hold them."""
    p, lay = prog.params, prog.layout
    if p.arch != "csr":
        return prog.memories["acts"]
    if not p.act_banks:
        return prog.memories["acts0_0"]
    banks = [prog.memories[f"act_bank{b}"] for b in range(p.act_banks)]
    return [banks[lay.act_bank(a)][lay.act_bank_word(a)] for a in range(sum(map(len, banks)))]


def _writes(lay: Layout, prog: LayerProgram) -> list[tuple[int, int, int]]:
    """The load-port writes: registers, then every memory word (CSR activations once: broadcast into every
    replica, or into their one bank)."""
    writes = [(SEL_REG, REGISTER_NAMES.index(name), value) for name, value in prog.registers.items()]
    p = lay.params
    per_pe = [("weights", SEL_WEIGHT, lay.weight_depth), ("biases", SEL_BIAS, lay.tile_depth)]
    if p.arch == "csr":
        per_pe.append(("rowptr", SEL_ROWPTR, lay.tile_depth))
    for pe in range(p.pes):
        for name, sel, depth in per_pe:
            words = prog.memories[f"{name}{pe}"]
            writes += [(sel, lay.per_pe_address(pe, i, depth), w) for i, w in enumerate(words)]
    writes += [(SEL_ACT, i, w) for i, w in enumerate(activation_words(prog))]
    return writes
