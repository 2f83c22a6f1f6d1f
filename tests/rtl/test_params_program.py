"""ArrayParams validation and JSON, word layouts, and program_layer's checks and memory images."""

from __future__ import annotations

import numpy as np
import pytest

from dpp.kofn import CSRMatrix, KofNMatrix
from dpp.reference import accumulator_bits
from rtl.layout import REGISTER_NAMES, SEL_ACT, SEL_REG, SEL_WEIGHT, Layout, pack_fields
from rtl.params import ArrayParams
from rtl.program import memory_paths, program_layer, register_paths

BASE = dict(arch="kofn", k=2, n=8, pes=4, weight_bits=4, act_bits=8, out_bits=8)


@pytest.mark.parametrize(
    "change,message",
    [
        (dict(arch="systolic"), "arch must be one of kofn, dense, csr (got arch='systolic')"),
        (dict(k=8), "k must be < n (got k=8, n=8)"),
        (dict(k=0), "k must be >= 1"),
        (dict(pes=0), "pes must be >= 1"),
        (dict(weight_bits=1), "weight_bits must be >= 2"),
        (dict(act_bits=17), "act_bits must be <= 16"),
        (dict(out_bits=33), "out_bits must be <= 32"),
        (dict(arch="dense", block=9), "block applies to arch='kofn' only"),
        (dict(max_nnz=10), "max_nnz applies to arch='csr' only"),
        (dict(acc_bits=5), "acc_bits must be >= 17"),
        (dict(max_batch=0), "max_batch must be >= 1"),
    ],
)
def test_bad_params_are_refused(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ArrayParams(**{**BASE, **change})


def test_params_type_errors() -> None:
    with pytest.raises(TypeError, match="k must be an integer"):
        ArrayParams(**{**BASE, "k": 2.0})


def test_params_defaults_json_roundtrip() -> None:
    p = ArrayParams(**BASE)
    assert p.acc_bits == accumulator_bits(8, 4, p.max_fan_in) == 4 + 8 + 4 + 1
    assert ArrayParams.from_json(p.to_json()) == p
    csr = ArrayParams(**{**BASE, "arch": "csr"})
    assert csr.max_nnz == 16 * 64 and csr.top_name == "csr_array"
    with pytest.raises(ValueError, match=r"unknown ArrayParams field\(s\) \['lanes'\]"):
        ArrayParams.from_dict({**BASE, "lanes": 3})


def test_kofn_word_layout_fields() -> None:
    lay = Layout(ArrayParams(**{**BASE, "block": 2}))
    values = np.array([[[-8, 7], [1, -1]]])  # (1, k=2, block=2)
    word = int(lay.pack_kofn_words(values, np.array([[3, 6]]))[0])
    fields = [(word >> lay.value_offset(j, e)) & 0xF for j in range(2) for e in range(2)]
    assert fields == [8, 7, 1, 15]
    assert (word >> lay.index_offset(0)) & 7 == 3 and (word >> lay.index_offset(1)) & 7 == 6
    assert word >> lay.weight_word_bits == 0 and lay.weight_word_bits == 2 * 2 * 4 + 2 * 3


def test_pack_fields_refuses_overflow_and_handles_64_bits() -> None:
    with pytest.raises(ValueError, match="value 8 does not fit a 3-bit field"):
        pack_fields([(np.array([8]), 0, 3)])
    assert int(pack_fields([(np.array([-1]), 4, 64)])[0]) == ((1 << 64) - 1) << 4


def _kofn_layer(rows: int = 5, cols: int = 20):
    rng = np.random.default_rng(0)
    W = KofNMatrix.prune_magnitude(rng.integers(-8, 8, size=(rows, cols)), 2, 8, weight_bits=4)
    return W, rng.integers(-128, 128, size=(3, cols)), rng.integers(-99, 99, size=rows)


def test_program_registers_memories_and_writes() -> None:
    params = ArrayParams(**BASE)
    W, x, bias = _kofn_layer()
    prog = program_layer(params, W, x, bias, 181, 9, True)
    assert prog.registers == dict(batch=3, tiles=2, last_pes=1, steps=3, multiplier=181, shift=9, relu=1)
    assert set(prog.memories) <= set(memory_paths(params)) | {"acts"}
    assert len(prog.memories["weights0"]) == 2 * 3 and len(prog.memories["weights1"]) == 1 * 3
    assert len(prog.memories["acts"]) == 3 * 3
    regs = [(a, d) for s, a, d in prog.writes if s == SEL_REG]
    assert regs == [(REGISTER_NAMES.index(n), v) for n, v in prog.registers.items()]
    assert sum(s == SEL_WEIGHT for s, _, _ in prog.writes) == 5 * 3
    assert sum(s == SEL_ACT for s, _, _ in prog.writes) == 9
    assert prog.output_address(2, 4) == ((2 * 2 + 1) << 2) | 0
    assert prog.output_addresses()[2, 4] == prog.output_address(2, 4)
    assert register_paths(params)["batch"] == "regs.batch"
    assert memory_paths(params)["weights3"] == "pe3.weights"


@pytest.mark.parametrize(
    "args,exc,message",
    [
        (dict(W="dense"), TypeError, "arch 'kofn' needs W as a KofNMatrix"),
        (dict(x=np.zeros((5, 20), int)), ValueError, "batch must be <= 4"),
        (dict(x=np.zeros((1, 19), int)), ValueError, r"x must have shape \(batch, 20\)"),
        (dict(x=np.full((1, 20), 200)), ValueError, "outside signed 8-bit range"),
        (dict(bias=np.zeros(4, int)), ValueError, r"bias must have shape \(5,\)"),
        (
            dict(bias=np.full(5, 1 << 20)),
            ValueError,
            "layer: bias 1048576 of row 0 could overflow the 17-bit accumulator",
        ),
        (dict(multiplier=0), ValueError, "multiplier must be >= 1"),
        (dict(multiplier=1 << 15), ValueError, "multiplier must be <= 32767"),
        (dict(shift=49), ValueError, "shift must be <= 48"),
    ],
)
def test_program_refuses_bad_layers(args: dict, exc: type, message: str) -> None:
    params = ArrayParams(**BASE)
    W, x, bias = _kofn_layer()
    call = dict(W=W, x=x, bias=bias, multiplier=181, shift=9, relu=False)
    call.update(args)
    if isinstance(call["W"], str):
        call["W"] = W.to_dense()
    with pytest.raises(exc, match=message):
        program_layer(params, **call)


def test_program_refuses_format_mismatch_and_oversize() -> None:
    W, x, bias = _kofn_layer(rows=5, cols=20)
    with pytest.raises(ValueError, match="W has n=8 but the build has n=4"):
        program_layer(ArrayParams(**{**BASE, "n": 4}), W, x, bias, 1, 1, False)
    with pytest.raises(ValueError, match="cols must be <= 16"):
        program_layer(ArrayParams(**{**BASE, "max_cols": 16}), W, x, bias, 1, 1, False)
    csr = CSRMatrix.from_dense(W.to_dense(), weight_bits=4)
    with pytest.raises(ValueError, match=r"PE 0 needs \d+ CSR words but the build holds 3"):
        program_layer(ArrayParams(**{**BASE, "arch": "csr", "max_rows": 5, "max_nnz": 2}), csr, x, bias, 1, 1, False)
    with pytest.raises(TypeError, match="arch 'dense' needs W as a dense integer array"):
        program_layer(ArrayParams(**{**BASE, "arch": "dense"}), W, x, bias, 1, 1, False)


CSR = dict(arch="csr", k=2, n=3, pes=3, weight_bits=4, act_bits=8, out_bits=8, max_rows=7, max_cols=10, max_batch=2)


@pytest.mark.parametrize(
    "change,exc,message",
    [
        (dict(act_banks=3), ValueError, "act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=3)"),
        (
            dict(act_banks=12),
            ValueError,
            "act_banks must be 0 (per-lane replicas) or a power of two (got act_banks=12)",
        ),
        (dict(act_banks=-2), ValueError, "act_banks must be >= 0 (got act_banks=-2)"),
        (dict(act_banks=2048), ValueError, "act_banks must be <= 1024 (got act_banks=2048)"),
        (
            dict(act_banks=4, arch="kofn", n=8),
            ValueError,
            "act_banks applies to arch='csr' only (got act_banks=4 for arch='kofn', expected 0)",
        ),
        (
            dict(act_banks=4, arch="dense"),
            ValueError,
            "act_banks applies to arch='csr' only (got act_banks=4 for arch='dense', expected 0)",
        ),
        (dict(act_banks=2.0), TypeError, "act_banks must be an integer"),
    ],
)
def test_bad_act_banks_are_refused(change: dict, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message.replace("(", r"\(").replace(")", r"\)")):
        ArrayParams(**{**CSR, **change})


def test_banked_layout_memories_and_paths() -> None:
    """Address a = b*cols + c: bank a % B, word a // B; one image per bank, written once by the load port."""
    params = ArrayParams(**CSR, act_banks=4)
    lay = Layout(params)
    assert (lay.act_bank_bits, lay.act_bank_depth) == (2, 5)  # ceil(2*10 / 4)
    assert lay.act_addr_bits == 2 + 3 and lay.load_addr_bits >= lay.act_addr_bits
    assert lay.act_bank(np.array([0, 5, 7, 19])).tolist() == [0, 1, 3, 3]
    assert lay.act_bank_word(np.array([0, 5, 7, 19])).tolist() == [0, 1, 1, 4]
    rng = np.random.default_rng(1)
    W = CSRMatrix.prune_magnitude(rng.integers(-8, 8, size=(7, 9)), 0.5, 4)
    x = rng.integers(-128, 128, size=(2, 9))
    prog = program_layer(params, W, x, np.zeros(7, int), 100, 9, False)
    paths = memory_paths(params)
    assert set(prog.memories) <= set(paths)
    assert not any(key.startswith("acts") for key in paths) and paths["act_bank3"] == "acts.bank3"
    flat = [int(v) & 0xFF for v in x.ravel()]
    for bank in range(4):
        assert prog.memories[f"act_bank{bank}"] == flat[bank::4]
    acts = [(a, d) for s, a, d in prog.writes if s == SEL_ACT]
    assert acts == list(enumerate(flat))  # each activation written once, at its address
    replicated = ArrayParams(**CSR)
    assert memory_paths(replicated)["acts2_1"] == "pe2.acts1" and "act_bank0" not in memory_paths(replicated)


def test_memory_paths_name_memories_of_the_generated_verilog() -> None:
    """Every path of memory_paths is a memory declared in the module of its parent (back-door loading)."""
    import re

    from rtl.verilog import verilog_source

    for params in (ArrayParams(**CSR, act_banks=2), ArrayParams(**CSR), ArrayParams(**BASE)):
        text = verilog_source(params)
        for path in memory_paths(params).values():
            parent, _, mem = path.rpartition(".")
            module = params.top_name + (f".{parent}" if parent else "")
            body = re.search(rf"^module \\?{re.escape(module)} ?\(.*?^endmodule", text, re.S | re.M)
            assert body, module
            assert re.search(rf"^\s*reg (signed )?\[\d+:0\] {re.escape(mem)} \[\d+:0\];", body.group(0), re.M), path
