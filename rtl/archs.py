"""The array architectures: one registry entry per array, the one place that says what differs between them.

An entry is one instance of an :class:`ArrayArch` subclass in :data:`ARRAYS`. It holds every per-array fact
(label, top module, Amaranth component, pipeline drain, run-time registers, memories, weight format, which
``ArrayParams`` fields apply) and every per-array behaviour: the program packer (:meth:`ArrayArch.pack`, called
by :func:`rtl.program.program_layer`), the analytic counter model (:meth:`ArrayArch.counts`, called by
:mod:`sim.model` with the layer statistics it computes) and the random workload (:meth:`ArrayArch.prune`, used
by :mod:`sim.workloads` and :mod:`analysis.sweep`). Everything that lists or branches on architectures asks
this registry, the way SCALE-Sim picks its compute class once and torch.ao's sparsifiers override one method:
the banked CSR is :class:`BankedCsr`, a :class:`Csr` overriding only what its one banked activation memory
changes. How to add an array: ``rtl/README.md``, "How to add an array".

A build's entry is chosen by ``(ArrayParams.arch, ArrayParams.act_banks > 0)`` (:func:`arch_of`), so
``ArrayParams(arch="csr", act_banks=B)`` stays the way to ask for the banked CSR. Pure Python (no Amaranth):
the model and the analysis import the registry without the hardware libraries; an entry imports its component
class only when a build asks for it (:meth:`ArrayArch.component`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from dpp.checks import check_int_array
from dpp.errors import ArgumentTypeError, DPPError
from dpp.kofn import CSRMatrix, KofNMatrix, StorageBits, dense_storage_bits

if TYPE_CHECKING:
    from amaranth.lib import wiring

    from rtl.layout import Layout
    from rtl.params import ArrayParams


def ceil_div(a: Any, b: Any) -> Any:
    """``ceil(a / b)`` of non-negative Python ints or integer arrays (exact)."""
    return -(-a // b)


class LayerStats(Protocol):
    """What :meth:`ArrayArch.counts` may ask of a layer beyond its shape; :mod:`sim.model` computes it (for one
    layer, or per row of a table), so the entries hold the formulas and sim the statistics machinery."""

    def row_stats(self) -> tuple[Any, Any, Any]:
        """``(span, words, nnz)`` of a CSR layer on ``pes`` PEs of ``k`` lanes: the busiest PE's stream items
        per vector, the weight words, the stored entries (:func:`sim.model.csr_row_stats`)."""

    def bank_slots(self) -> tuple[Any, Any]:
        """``(cycles, bank reads)`` summed over the lock-step slots of a banked run
        (:func:`sim.model.banked_slots`)."""


class ArrayArch:
    """One array architecture. Subclasses set the class attributes and override the methods that differ."""

    label: str  #: its name in tables, JSON and compare runs ("kofn", "dense", "csr", "csr_banked")
    arch: str  #: ``ArrayParams.arch`` of its builds
    banked: bool = False  #: built with ``act_banks > 0``: ONE activation memory in that many banks
    top_name: str  #: Verilog top-module name
    #: busy cycles after the last issued step until ``done``: ``cycles = steps issued + drain_cycles``
    drain_cycles: int
    registers: tuple[str, ...]  #: run-time registers it reads (the others are ignored)
    pe_memories: tuple[str, ...] = ("weights", "biases")  #: per-PE memories besides activations, in load order
    takes_block: bool = False  #: ``block`` (columns per slot) applies; the other arrays take block = 1
    takes_n: bool = False  #: ``n`` shapes the hardware (the others are built with the canonical n = k + 1)
    takes_max_nnz: bool = False  #: ``max_nnz`` (stored non-zeros per PE) applies
    sparse: bool = True  #: stores only the kept weights and their positions (False: every weight, zeros too)
    trained_method: str  #: the training method (``dpp train --method``) whose network it is designed for
    #: what the counter model needs of a layer beyond its shape: None, "row_nnz" (stored entries per row) or
    #: "columns" (the CSR column indices: ``predict_counters(..., csr=W)``)
    model_needs: str | None = None
    weight_format: str  #: the weights it takes, for errors ("a KofNMatrix", ...)
    # what interface.json says of its memories (rtl.interface): the index field of a weight word, word orders
    index_field: str = ""  #: name of the per-lane index field of a weight word ("" = none)
    index_meaning: str = ""  #: what that field holds
    weight_words_order: str  #: which (row, step) each word of a PE's weight memory holds
    act_words_order: str  #: which activations each activation word holds
    act_storage: str = "one memory broadcast to every PE"  #: how the activation memory is built

    def __repr__(self) -> str:
        return f"<array {self.label}>"

    # ------------------------------------------------------------------ hardware
    def component(self) -> type[wiring.Component]:
        """Its Amaranth component class (built as ``component()(params)`` by :func:`rtl.build.make_array`)."""
        raise NotImplementedError

    def max_fan_in(self, p: ArrayParams) -> int:
        """Most products summed into one accumulator (sizes ``acc_bits``)."""
        return p.max_cols

    def weight_words(self, lay: Layout) -> int:
        """Words of one PE's weight memory for the largest layer (before :func:`rtl.layout.mem_depth`)."""
        raise NotImplementedError

    def index_field_bits(self, lay: Layout) -> int:
        """Bits of one lane's index field in a weight word (0: no indices)."""
        return 0

    def max_steps(self, lay: Layout) -> int:
        """Largest legal ``steps`` register value (0: the array has no ``steps`` register)."""
        return 0

    def act_lanes(self, p: ArrayParams) -> int:
        """Activations per activation word."""
        raise NotImplementedError

    def act_words_per_vector(self, lay: Layout) -> int:
        """Activation words of one input vector of the largest layer."""
        raise NotImplementedError

    def act_memory_paths(self, p: ArrayParams) -> dict[str, str]:
        """Its activation memories: name in ``LayerProgram.memories`` -> path below the top module."""
        return {"acts": "acts"}

    # ------------------------------------------------------------------ program (rtl.program)
    def check_weights(self, p: ArrayParams, W: Any) -> tuple[int, int, int]:
        """``(rows, cols, weight_bits)`` of ``W`` if it is in this array's format for build ``p``; else raise."""
        raise NotImplementedError

    def pack(self, lay: Layout, W: Any, x: np.ndarray, regs: dict[str, int], mems: dict[str, Any]) -> Any:
        """Set its step registers in ``regs`` and put its weight and activation images into ``mems``; return the
        stored entries per row (the counter model needs them) or None."""
        raise NotImplementedError

    def stored_weights(self, W: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(row, value)`` of every weight value ``W`` (in this array's format) makes the hardware multiply:
        what bounds each row's accumulator (:func:`rtl.program.check_layer_fits`)."""
        raise NotImplementedError

    def store_activations(self, lay: Layout, words: np.ndarray, mems: dict[str, Any]) -> None:
        """Put the activation words (load-address order) into its activation memories."""
        mems["acts"] = words

    def activation_words(self, lay: Layout, memories: Mapping[str, list[int]]) -> list[int]:
        """The activation words in load-address order, read back from its activation memories."""
        return memories["acts"]

    # ------------------------------------------------------------------ counter model (sim.model)
    def counts(
        self, d: Mapping[str, Any], batch: Any, rows: Any, cols: Any, layer: LayerStats | None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """``(steps, mac_ops, weight_bits_read, index_bits_read, act_reads)`` of a run: closed forms on Python
        ints or int64 arrays. ``d`` holds the design's ``k, n, block, pes, value_bits, index_bits,
        rowptr_bits`` (widths per weight word / row pointer); ``cycles = steps + drain_cycles`` and
        ``act_bits_read = act_reads * act_word_bits`` follow in :mod:`sim.model`."""
        raise NotImplementedError

    # ------------------------------------------------------------------ workloads (sim.workloads, sweeps)
    def prune(self, w: np.ndarray, k: int, n: int, block: int, weight_bits: int) -> Any:
        """The dense integer layer ``w`` as this array takes it, at density ``k / n``."""
        raise NotImplementedError

    def storage_bits(self, W: Any, weight_bits: int) -> StorageBits:
        """Bits ``W`` (in this array's format) occupies: values, indices, pointers."""
        return W.storage_bits()

    def density(self, W: Any) -> float:
        """Fraction of the weights it stores."""
        return float(W.density)

    def row_lengths(self, W: Any) -> np.ndarray | None:
        """Stored entries per row when its counters depend on them, else None."""
        return None

    def network_matrix(self, layer: Any) -> tuple[ArrayArch, Any]:
        """The array a layer of an exported network (:class:`dpp.network.IntNetwork`) runs on in this array's
        design, and its weights in that array's format."""
        return self, self.from_dense(layer.dense_weights(), layer.weight_bits)

    def from_dense(self, w: np.ndarray, weight_bits: int) -> Any:
        """``w`` (zeros = pruned) in this array's format."""
        raise NotImplementedError


class Kofn(ArrayArch):
    """``kofn_array``: k of every n weights kept per group; each lane picks its activation from the broadcast
    group through an n:1 index mux (:mod:`rtl.lockstep`, :mod:`rtl.pe`)."""

    label = arch = "kofn"
    top_name = "kofn_array"
    drain_cycles = 5  #: memory read, lane products, accumulate, 2 requantise stages with the write
    registers = ("batch", "tiles", "last_pes", "steps", "multiplier", "shift", "relu")  #: steps = groups
    takes_block = takes_n = True
    trained_method = "dpp"
    weight_format = "a KofNMatrix"
    index_field = "slot"
    index_meaning = "slot number in [0, n) of the lane's kept slot of the group"
    weight_words_order = (
        "word t*groups + g: local row t (row t*pes + pe), group g; lane j holds kept slot "
        "index[j], its block elements e at value (j, e); groups = the steps register"
    )
    act_words_order = "word (b*groups + g)*block + e: slot i holds column (g*n + i)*block + e of vector b (0 past cols)"

    def component(self) -> type[wiring.Component]:
        from rtl.lockstep import LockstepArray

        return LockstepArray

    def max_fan_in(self, p: ArrayParams) -> int:
        return p.max_groups * p.k * p.block

    def weight_words(self, lay: Layout) -> int:
        return lay.params.max_tiles * lay.params.max_groups

    def index_field_bits(self, lay: Layout) -> int:
        return lay.index_bits

    def max_steps(self, lay: Layout) -> int:
        return lay.params.max_groups

    def act_lanes(self, p: ArrayParams) -> int:
        return p.n

    def act_words_per_vector(self, lay: Layout) -> int:
        return lay.params.max_groups * lay.params.block

    def check_weights(self, p: ArrayParams, W: Any) -> tuple[int, int, int]:
        if not isinstance(W, KofNMatrix):
            raise ArgumentTypeError(f"arch {self.arch!r} needs W as {self.weight_format} (got {type(W).__name__})")
        for name in ("k", "n", "block"):
            if getattr(W, name) != getattr(p, name):
                raise DPPError(f"W has {name}={getattr(W, name)} but the build has {name}={getattr(p, name)}")
        return W.rows, W.cols, W.weight_bits

    def pack(self, lay: Layout, W: KofNMatrix, x: np.ndarray, regs: dict[str, int], mems: dict[str, Any]) -> None:
        p = lay.params
        regs["steps"] = W.groups
        words = lay.pack_kofn_words(W.values, W.indices)  # (rows, groups): PE p holds rows p, p+pes, ...
        for pe in range(p.pes):
            mems[f"weights{pe}"] = words[pe :: p.pes]
        xp = np.pad(x, ((0, 0), (0, W.padded_cols - W.cols))).reshape(x.shape[0], W.groups, p.n, p.block)
        self.store_activations(lay, lay.pack_act_words(xp.transpose(0, 1, 3, 2)), mems)  # (batch, groups, block)

    def stored_weights(self, W: KofNMatrix) -> tuple[np.ndarray, np.ndarray]:
        values = W.values.reshape(W.rows, -1)
        return np.repeat(np.arange(W.rows), values.shape[1]), values.ravel()

    def counts(
        self, d: Mapping[str, Any], batch: Any, rows: Any, cols: Any, layer: LayerStats | None
    ) -> tuple[Any, Any, Any, Any, Any]:
        groups = ceil_div(cols, d["n"] * d["block"])
        words = batch * rows * groups
        steps = batch * ceil_div(rows, d["pes"]) * groups * d["block"]
        return steps, words * (d["k"] * d["block"]), words * d["value_bits"], words * d["index_bits"], steps

    def prune(self, w: np.ndarray, k: int, n: int, block: int, weight_bits: int) -> KofNMatrix:
        return KofNMatrix.prune_magnitude(w, k, n, block=block, weight_bits=weight_bits)

    def network_matrix(self, layer: Any) -> tuple[ArrayArch, Any]:
        if isinstance(layer.weights, KofNMatrix):
            return self, layer.weights
        return DENSE.network_matrix(layer)  # a layer stored dense runs on the dense array


class Dense(ArrayArch):
    """``dense_array``: k consecutive dense weights times the k broadcast activations (:mod:`rtl.lockstep`)."""

    label = arch = "dense"
    top_name = "dense_array"
    drain_cycles = 5  #: as kofn
    #: steps = ceil(cols / k); tail_lanes = real columns in the last chunk
    registers = ("batch", "tiles", "last_pes", "steps", "tail_lanes", "multiplier", "shift", "relu")
    sparse = False
    trained_method = "dense"
    weight_format = "a dense integer array"
    weight_words_order = (
        "word t*chunks + c: local row t (row t*pes + pe), chunk c; lane j holds column c*k + j "
        "(0 past cols); chunks = the steps register"
    )
    act_words_order = "word b*chunks + c: slot j holds column c*k + j of vector b (0 past cols)"

    def component(self) -> type[wiring.Component]:
        from rtl.lockstep import LockstepArray

        return LockstepArray

    def weight_words(self, lay: Layout) -> int:
        return lay.params.max_tiles * lay.max_chunks

    def max_steps(self, lay: Layout) -> int:
        return lay.max_chunks

    def act_lanes(self, p: ArrayParams) -> int:
        return p.k

    def act_words_per_vector(self, lay: Layout) -> int:
        return lay.max_chunks

    def check_weights(self, p: ArrayParams, W: Any) -> tuple[int, int, int]:
        if isinstance(W, (KofNMatrix, CSRMatrix)):
            raise ArgumentTypeError(f"arch {self.arch!r} needs W as {self.weight_format} (got {type(W).__name__})")
        arr = check_int_array("W", W, bits=p.weight_bits, ndim=2)
        return arr.shape[0], arr.shape[1], p.weight_bits

    def pack(self, lay: Layout, W: Any, x: np.ndarray, regs: dict[str, int], mems: dict[str, Any]) -> None:
        p = lay.params
        w = np.asarray(W, dtype=np.int64)
        rows, cols = w.shape
        chunks = math.ceil(cols / p.k)
        regs["steps"], regs["tail_lanes"] = chunks, cols - (chunks - 1) * p.k
        words = lay.pack_dense_words(np.pad(w, ((0, 0), (0, chunks * p.k - cols))).reshape(rows, chunks, p.k))
        for pe in range(p.pes):
            mems[f"weights{pe}"] = words[pe :: p.pes]  # (rows, chunks): PE p holds rows p, p+pes, ...
        xp = np.pad(x, ((0, 0), (0, chunks * p.k - cols))).reshape(x.shape[0], chunks, p.k)
        self.store_activations(lay, lay.pack_act_words(xp), mems)

    def stored_weights(self, W: Any) -> tuple[np.ndarray, np.ndarray]:
        w = np.asarray(W, dtype=np.int64)
        return np.repeat(np.arange(w.shape[0]), w.shape[1]), w.ravel()

    def counts(
        self, d: Mapping[str, Any], batch: Any, rows: Any, cols: Any, layer: LayerStats | None
    ) -> tuple[Any, Any, Any, Any, Any]:
        chunks = ceil_div(cols, d["k"])
        steps = batch * ceil_div(rows, d["pes"]) * chunks
        return steps, batch * rows * cols, batch * rows * chunks * d["value_bits"], 0 * batch, steps

    def prune(self, w: np.ndarray, k: int, n: int, block: int, weight_bits: int) -> np.ndarray:
        """k-of-n's matrix stored densely (zeros included): the same function as the kofn array's layer."""
        return KOFN.prune(w, k, n, block, weight_bits).to_dense()

    def storage_bits(self, W: Any, weight_bits: int) -> StorageBits:
        rows, cols = np.shape(W)
        return dense_storage_bits(rows, cols, weight_bits)

    def density(self, W: Any) -> float:
        return 1.0

    def from_dense(self, w: np.ndarray, weight_bits: int) -> np.ndarray:
        return w


class Csr(ArrayArch):
    """``csr_array``: k non-zeros (value + column) of a row per PE and cycle; PEs stream on their own, every lane
    reads its own activation replica (no conflicts): the strong unstructured baseline (:mod:`rtl.csr`)."""

    label = arch = "csr"
    top_name = "csr_array"
    drain_cycles = 6  #: as kofn, plus the activation read after the column read
    registers = ("batch", "tiles", "last_pes", "cols", "multiplier", "shift", "relu")  #: cols = activation base
    pe_memories = ("weights", "biases", "rowptr")
    takes_max_nnz = True
    trained_method = "unstructured"
    model_needs = "row_nnz"
    weight_format = "a CSRMatrix"
    index_field = "column"
    index_meaning = "column of the lane's entry"
    weight_words_order = (
        "the PE's rows (local row j = row j*pes + pe) back to back from word 0, each row's "
        "entries k per word in order, ceil(nnz_r / k) words (none for an empty row); the "
        "rowptr memory marks where each row ends"
    )
    act_words_order = "word a = b*cols + c: activation c of vector b (one per word)"
    act_storage = "one replica per lane (pes*k memories); the load port writes every replica at once"

    def component(self) -> type[wiring.Component]:
        from rtl.csr import CsrArray

        return CsrArray

    def weight_words(self, lay: Layout) -> int:
        p = lay.params
        return math.ceil(p.max_nnz / p.k) + p.max_tiles

    def index_field_bits(self, lay: Layout) -> int:
        return lay.col_bits

    def act_lanes(self, p: ArrayParams) -> int:
        return 1

    def act_words_per_vector(self, lay: Layout) -> int:
        return lay.params.max_cols

    def act_memory_paths(self, p: ArrayParams) -> dict[str, str]:
        """A replica per lane: ``acts<pe>_<lane>`` at ``pe<pe>.acts<lane>``."""
        return {f"acts{pe}_{lane}": f"pe{pe}.acts{lane}" for pe in range(p.pes) for lane in range(p.k)}

    def check_weights(self, p: ArrayParams, W: Any) -> tuple[int, int, int]:
        if not isinstance(W, CSRMatrix):
            raise ArgumentTypeError(f"arch {self.arch!r} needs W as {self.weight_format} (got {type(W).__name__})")
        return W.rows, W.cols, W.weight_bits

    def pack(self, lay: Layout, W: CSRMatrix, x: np.ndarray, regs: dict[str, int], mems: dict[str, Any]) -> np.ndarray:
        p = lay.params
        lengths = W.row_lengths()
        for pe in range(p.pes):
            vals: list[np.ndarray] = []
            cols: list[np.ndarray] = []
            ends: list[int] = []
            tails: list[int] = []
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
                raise DPPError(
                    f"PE {pe} needs {total} CSR words but the build holds {lay.weight_depth} "
                    f"(raise max_nnz above {p.max_nnz})"
                )
            v = np.concatenate(vals) if vals else np.zeros((0, p.k), np.int64)
            c = np.concatenate(cols) if cols else np.zeros((0, p.k), np.int64)
            mems[f"weights{pe}"] = lay.pack_csr_words(v, c)
            mems[f"rowptr{pe}"] = lay.pack_rowptr(np.array(ends, np.int64), np.array(tails, np.int64))
        self.store_activations(lay, lay.pack_act_words(x.reshape(-1, 1)), mems)  # address a = b*cols + c
        return lengths

    def stored_weights(self, W: CSRMatrix) -> tuple[np.ndarray, np.ndarray]:
        return np.repeat(np.arange(W.rows), W.row_lengths()), np.asarray(W.values, dtype=np.int64)

    def store_activations(self, lay: Layout, words: np.ndarray, mems: dict[str, Any]) -> None:
        """The same words into every lane's replica (the load port broadcasts them)."""
        for name in self.act_memory_paths(lay.params):
            mems[name] = words

    def activation_words(self, lay: Layout, memories: Mapping[str, list[int]]) -> list[int]:
        return memories["acts0_0"]

    def counts(
        self, d: Mapping[str, Any], batch: Any, rows: Any, cols: Any, layer: LayerStats | None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """Every PE streams ``max(1, ceil(nnz_r / k))`` items per row on its own; the busiest one sets the
        steps; one activation read per MAC."""
        span, words, nnz = self._stats(layer).row_stats()
        macs = batch * nnz
        return (
            batch * span,
            macs,
            batch * words * d["value_bits"],
            batch * (words * d["index_bits"] + rows * d["rowptr_bits"]),
            macs,
        )

    def _stats(self, layer: LayerStats | None) -> LayerStats:
        if layer is None:
            raise ValueError(f"the {self.label} counter model needs the layer's statistics (got None)")
        return layer

    def prune(self, w: np.ndarray, k: int, n: int, block: int, weight_bits: int) -> CSRMatrix:
        """Unstructured global magnitude pruning to density ``k / n`` (its own mask, the same density)."""
        return CSRMatrix.prune_magnitude(w, k / n, weight_bits=weight_bits)

    def row_lengths(self, W: CSRMatrix) -> np.ndarray:
        return W.row_lengths()

    def from_dense(self, w: np.ndarray, weight_bits: int) -> CSRMatrix:
        return CSRMatrix.from_dense(w, weight_bits=weight_bits)


class BankedCsr(Csr):
    """The CSR array with k-of-n's memory: ONE activation memory in ``act_banks`` banks, all PEs in lock-step,
    bank conflicts stall the array (:mod:`rtl.csr_banked`). Everything else as :class:`Csr`."""

    label = "csr_banked"
    banked = True
    #: 1 cycle issuing slot 0, then 6 after the last grant (bank read, products, accumulate, result, 2
    #: requantise stages with the write); ``cycles = sum over slots of the slot's cycles + drain_cycles``
    drain_cycles = 7
    model_needs = "columns"
    act_storage = (
        "one memory in act_banks banks: address a lives in bank a % act_banks at word a // act_banks; "
        "the load port writes it there once"
    )

    def component(self) -> type[wiring.Component]:
        from rtl.csr_banked import BankedCsrArray

        return BankedCsrArray

    def act_memory_paths(self, p: ArrayParams) -> dict[str, str]:
        """The banks of :class:`rtl.csr_banked.ActivationBanks` (submodule ``acts``): ``act_bank<b>``."""
        return {f"act_bank{bank}": f"acts.bank{bank}" for bank in range(p.act_banks)}

    def store_activations(self, lay: Layout, words: np.ndarray, mems: dict[str, Any]) -> None:
        """Address ``a`` into bank ``a % B`` at word ``a // B`` (:meth:`rtl.layout.Layout.act_bank`)."""
        banks = lay.act_bank(np.arange(words.size))
        for bank, name in enumerate(self.act_memory_paths(lay.params)):
            mems[name] = words[banks == bank]

    def activation_words(self, lay: Layout, memories: Mapping[str, list[int]]) -> list[int]:
        banks = [memories[name] for name in self.act_memory_paths(lay.params)]
        return [banks[lay.act_bank(a)][lay.act_bank_word(a)] for a in range(sum(map(len, banks)))]

    def counts(
        self, d: Mapping[str, Any], batch: Any, rows: Any, cols: Any, layer: LayerStats | None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """As :class:`Csr`, but the steps are the slots' cycles (bank conflicts) and the activation reads the
        bank reads (merged requests read once)."""
        _, macs, weight, index, _ = super().counts(d, batch, rows, cols, layer)
        cycles, reads = self._stats(layer).bank_slots()
        return cycles, macs, weight, index, reads


KOFN, DENSE, CSR, CSR_BANKED = Kofn(), Dense(), Csr(), BankedCsr()
#: Every array, the design under study first; tables, compare runs and benchmarks follow this order.
ARRAYS: tuple[ArrayArch, ...] = (KOFN, DENSE, CSR, CSR_BANKED)
#: The ``ArrayParams.arch`` values (a banked variant shares its array's arch).
ARCHS: tuple[str, ...] = tuple(dict.fromkeys(a.arch for a in ARRAYS))
LABELS: tuple[str, ...] = tuple(a.label for a in ARRAYS)
_BY_KEY = {(a.arch, a.banked): a for a in ARRAYS}
_BY_LABEL = {a.label: a for a in ARRAYS}
if len(_BY_KEY) != len(ARRAYS) or len(_BY_LABEL) != len(ARRAYS) or any((a, False) not in _BY_KEY for a in ARCHS):
    raise RuntimeError(
        f"rtl.archs.ARRAYS needs one entry per (arch, banked) and per label, and an unbanked entry "
        f"for every arch (got {[(a.label, a.arch, a.banked) for a in ARRAYS]})"
    )


def arch_choices() -> str:
    """``"kofn, dense or csr"``: the arches, for help texts."""
    return ", ".join(ARCHS[:-1]) + (" or " if len(ARCHS) > 1 else "") + ARCHS[-1]


def check_arch(arch: Any) -> str:
    """``arch`` if it names an array, else one clear error."""
    if arch not in ARCHS:
        raise DPPError(f"arch must be one of {', '.join(ARCHS)} (got arch={arch!r})")
    return arch


def has_banked(arch: str) -> bool:
    """True if ``arch`` has a banked-activation variant (``act_banks > 0`` applies to it)."""
    return (arch, True) in _BY_KEY


def banks_for(arch: str, act_banks: int) -> int:
    """The ``act_banks`` an ``arch`` build takes from a design-wide setting: the setting where it has a banked
    variant, 0 elsewhere (the banks describe one array's activation memory)."""
    return act_banks if has_banked(arch) else 0


def arch_named(arch: str, act_banks: int = 0) -> ArrayArch:
    """The entry of ``arch`` built with ``act_banks`` (its banked variant when ``act_banks > 0``)."""
    check_arch(arch)
    entry = _BY_KEY.get((arch, act_banks > 0))
    if entry is None:
        raise DPPError(
            f"act_banks applies to {' or '.join(f'arch={a.arch!r}' for a in ARRAYS if a.banked)} only "
            f"(got act_banks={act_banks} for arch={arch!r}, expected 0)"
        )
    return entry


def arch_of(params: ArrayParams) -> ArrayArch:
    """The entry of a build (``params.arch``, ``params.act_banks > 0``)."""
    return _BY_KEY[params.arch, params.act_banks > 0]


def arch_labelled(label: str) -> ArrayArch:
    """The entry whose :attr:`ArrayArch.label` is ``label``."""
    if label not in _BY_LABEL:
        raise DPPError(f"array must be one of {', '.join(LABELS)} (got {label!r})")
    return _BY_LABEL[label]


def arch_names(component: type) -> str:
    """``"arch 'kofn' or 'dense'"``: the arches ``component`` builds (for a component's own refusal)."""
    names = [
        repr(a.arch) + ("" if not has_banked(a.arch) else " with act_banks > 0" if a.banked else " with act_banks = 0")
        for a in ARRAYS
        if a.component() is component
    ]
    return f"arch {' or '.join(names)}"


def check_component(who: str, component: type, params: ArrayParams, verb: str = "builds") -> None:
    """Refuse, in one ValueError, a build whose registry entry has another component than ``component``."""
    if arch_of(params).component() is not component:
        banks = f", act_banks={params.act_banks}" if params.act_banks else ""
        raise ValueError(f"{who} {verb} {arch_names(component)} (got arch={params.arch!r}{banks})")
