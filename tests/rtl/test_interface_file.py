"""interface.json and <top>.h (rtl.interface): they describe the generated Verilog and the packers exactly."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dpp.kofn import CSRMatrix, KofNMatrix
from rtl.interface import INTERFACE_FILE, INTERFACE_SCHEMA, c_header, interface_json, interface_of
from rtl.layout import REGISTER_NAMES, Layout, addr_bits
from rtl.params import ArrayParams
from rtl.program import program_layer
from rtl.verilog import generate_verilog, verilog_source
from sim.wrapper import parse_ports

SMALL = dict(weight_bits=4, act_bits=6, out_bits=8, max_batch=3)
CONFIGS = [
    ArrayParams(arch="kofn", k=2, n=5, block=2, pes=3, max_rows=10, max_cols=23, **SMALL),
    ArrayParams(arch="kofn", k=1, n=4, pes=4, max_rows=4, max_cols=16, **SMALL),  # bias memory: 1 word used
    ArrayParams(arch="dense", k=3, n=4, pes=1, max_rows=5, max_cols=11, **SMALL),  # one PE: pe_bits 0
    ArrayParams(arch="csr", k=2, n=3, pes=2, max_rows=7, max_cols=9, max_nnz=20, **SMALL),  # weight depth 10+4
    ArrayParams(arch="csr", k=2, n=3, pes=2, max_rows=8, max_cols=9, max_nnz=24, **SMALL),  # weight depth 16
    ArrayParams(arch="csr", k=2, n=3, pes=3, max_rows=7, max_cols=9, act_banks=4, **SMALL),
]
IDS = ["kofn-block2", "kofn-1tile", "dense-1pe", "csr", "csr-depth16", "csr-banked"]


def _field_value(word: int, field: dict, **index: int) -> int:
    """Decode one field of a memory word using interface.json only (``base + sum(index * stride)``)."""
    lsb = field["base"] + sum(index[d] * field["stride"][d] for d in field["dims"])
    raw = (word >> lsb) & ((1 << field["bits"]) - 1)
    return raw - (1 << field["bits"]) if field["signed"] and raw >> (field["bits"] - 1) else raw


@pytest.mark.parametrize("params", CONFIGS, ids=IDS)
def test_ports_equal_the_generated_verilog(params: ArrayParams) -> None:
    ports = parse_ports(verilog_source(params), params.top_name)
    described = interface_of(params)["ports"]
    assert sorted((p["name"], p["direction"] + "put", p["width"]) for p in described) == sorted(
        (p.name, p.direction, p.width) for p in ports.values()
    )
    assert {p["name"] for p in described if p["signed"]} == {"out_data"}
    assert all(p["meaning"] for p in described)
    assert "error" in ports and ports["error"].direction == "output"


@pytest.mark.parametrize("params", CONFIGS, ids=IDS)
def test_registers_memories_and_widths_follow_the_layout(params: ArrayParams) -> None:
    lay, iface = Layout(params), interface_of(params)
    assert iface["schema"] == INTERFACE_SCHEMA == 1 and iface["top"] == params.top_name
    assert iface["params"] == params.to_dict() and iface["array"] == params.array_arch.label
    regs = iface["registers"]
    assert [r["name"] for r in regs] == list(REGISTER_NAMES) and [r["number"] for r in regs] == list(range(9))
    for r in regs:
        assert r["used"] == (r["name"] in lay.registers)
        if r["used"]:
            assert (r["min"], r["max"], r["bits"]) == (*lay.register_range(r["name"]), lay.register_bits(r["name"]))
            assert r["max"] < 1 << r["bits"]
    mems = iface["memories"]
    assert set(mems) == {"weights", "biases", "activations"} | ({"rowptr"} if params.arch == "csr" else set())
    for name in set(mems) - {"activations"}:
        depth = lay.pe_memory_depth(name)
        assert mems[name]["depth"] == depth and mems[name]["word_addr_bits"] == addr_bits(depth)
        assert mems[name]["load_addr"] == {
            "word_lsb": 0,
            "word_bits": addr_bits(depth),
            "pe_lsb": addr_bits(depth),
            "pe_bits": lay.pe_bits,
        }
        for pe in range(params.pes):  # the address the program writes = the interface's rule
            assert lay.per_pe_address(pe, 1, depth) == (pe << mems[name]["load_addr"]["pe_lsb"]) | 1
    assert mems["weights"]["word_bits"] == lay.weight_word_bits and mems["biases"]["word_bits"] == params.acc_bits
    assert mems["activations"]["word_bits"] == lay.act_word_bits
    assert iface["output"]["addr_bits"] == lay.out_addr_bits == iface["output"]["word_bits"] + lay.pe_bits
    assert iface["output"]["pe_bits"] == (params.pes - 1).bit_length()
    assert iface["run"]["drain_cycles"] == {"kofn": 5, "dense": 5, "csr": 6, "csr_banked": 7}[iface["array"]]
    assert (iface["accumulator"]["bias_min"], iface["accumulator"]["bias_max"]) == params.bias_range
    assert iface["counters"]["params"]["col_bits"] == lay.col_bits and iface["counters"]["params"][
        "ptr_bits"
    ] == params_ptr_bits(lay)
    assert iface["load"]["allowed_while_busy"] is False and iface["reset"]["polarity"] == "active_high"


def params_ptr_bits(lay: Layout) -> int:
    """The row-pointer word_end width: ``bit_length(weight depth)`` (5 bits for depth 16)."""
    return lay.weight_depth.bit_length()


def test_edge_widths_of_the_issue() -> None:
    """addr_bits of a 1-word memory is 1; pe_bits is 0 with one PE; word_end of a 16-deep weight memory is 5 bits."""
    one_tile = interface_of(CONFIGS[1])
    assert one_tile["memories"]["biases"]["depth"] == 2 and one_tile["memories"]["biases"]["word_addr_bits"] == 1
    assert one_tile["memories"]["weights"]["depth"] == 4 and one_tile["memories"]["weights"]["load_addr"]["pe_lsb"] == 2
    assert interface_of(CONFIGS[2])["widths"]["pe_bits"] == 0
    depth16 = interface_of(CONFIGS[4])
    assert depth16["memories"]["weights"]["depth"] == 16
    assert [f["bits"] for f in depth16["memories"]["rowptr"]["fields"]] == [5, 2]


def _layer(params: ArrayParams, rng: np.random.Generator):
    rows, cols = params.max_rows, params.max_cols - 1
    w = rng.integers(-8, 8, size=(rows, cols))
    if params.arch == "kofn":
        return KofNMatrix.prune_magnitude(w, params.k, params.n, block=params.block, weight_bits=4)
    if params.arch == "csr":
        return CSRMatrix.from_dense(w, rng.random(w.shape) < 0.6, 4)
    return w


@pytest.mark.parametrize("params", CONFIGS, ids=IDS)
def test_word_fields_decode_the_packed_memories(params: ArrayParams) -> None:
    """Decoding every memory image of a program with the interface's fields alone gives back the layer."""
    rng = np.random.default_rng(5)
    W = _layer(params, rng)
    x = rng.integers(-32, 32, size=(2, params.max_cols - 1))
    rows = params.max_rows
    bias = rng.integers(-300, 300, size=rows)
    prog = program_layer(params, W, x, bias, 99, 7, False)
    mems = interface_of(params)["memories"]
    [value] = [f for f in mems["weights"]["fields"] if f["name"] == "value"]
    [bias_field] = mems["biases"]["fields"]
    for pe in range(params.pes):
        got = [_field_value(word, bias_field) for word in prog.memories[f"biases{pe}"]]
        assert got == bias[pe :: params.pes].tolist()
    if params.arch == "kofn":
        [slot] = [f for f in mems["weights"]["fields"] if f["name"] == "slot"]
        word = prog.memories["weights1"][1]  # PE 1, local row 0, group 1
        assert [
            [_field_value(word, value, lane=j, element=e) for e in range(params.block)] for j in range(params.k)
        ] == W.values[1, 1].tolist()
        assert [_field_value(word, slot, lane=j) for j in range(params.k)] == W.indices[1, 1].tolist()
    elif params.arch == "dense":
        words = prog.memories["weights0"]
        chunks = -(-W.shape[1] // params.k)
        assert [_field_value(words[chunks + 1], value, lane=j, element=0) for j in range(params.k)] == W[
            1, params.k : 2 * params.k
        ].tolist()
    else:
        [column] = [f for f in mems["weights"]["fields"] if f["name"] == "column"]
        end, tail = mems["rowptr"]["fields"]
        for pe in range(params.pes):
            words, ptrs = prog.memories[f"weights{pe}"], prog.memories[f"rowptr{pe}"]
            start = 0
            for j, r in enumerate(range(pe, rows, params.pes)):
                stop, t = _field_value(ptrs[j], end), _field_value(ptrs[j], tail)
                entries = [
                    (_field_value(w, value, lane=i, element=0), _field_value(w, column, lane=i))
                    for w in words[start:stop]
                    for i in range(params.k)
                ]
                entries = entries[: len(entries) - params.k + t] if stop > start else []
                lo, hi = W.row_ptr[r], W.row_ptr[r + 1]
                assert entries == list(zip(W.values[lo:hi].tolist(), W.col_indices[lo:hi].tolist()))
                start = stop


def test_c_header_defines_every_number_once(tmp_path: Path) -> None:
    params = CONFIGS[5]
    iface = interface_of(params)
    text = c_header(iface)
    defs = dict(re.findall(r"^#define (DPP_\w+) (.+)$", text, re.M))
    assert defs["DPP_INTERFACE_SCHEMA"] == "1" and defs["DPP_TOP_NAME"] == '"csr_array"'
    assert defs["DPP_ARRAY"] == '"csr_banked"' and defs["DPP_ARRAY_CSR_BANKED"] == "1"
    assert defs["DPP_DRAIN_CYCLES"] == "7" and defs["DPP_OUT_READ_LATENCY"] == "1"
    assert defs["DPP_REG_COLS"] == "5" and defs["DPP_REG_COLS_MAX"] == str(params.max_cols)
    assert defs["DPP_REG_STEPS_USED"] == "0" and "DPP_REG_STEPS_MAX" not in defs
    assert defs["DPP_ROWPTR_TAIL_BASE"] == str(iface["memories"]["rowptr"]["fields"][1]["base"])
    assert defs["DPP_ACTIVATIONS_BANKS"] == "4"
    lo, hi = params.bias_range
    assert (defs["DPP_BIAS_MIN"], defs["DPP_BIAS_MAX"]) == (f"({lo})", str(hi))
    assert len(re.findall(r"^#define DPP_\w+ ", text, re.M)) == len(set(re.findall(r"^#define (DPP_\w+) ", text, re.M)))
    compiler = shutil.which("cc") or shutil.which("gcc") or shutil.which("c++")
    if compiler:  # valid C: a program using the macros compiles
        (tmp_path / "a.h").write_text(text)
        (tmp_path / "a.c").write_text(
            '#include "a.h"\nint main(void) { return (int)(DPP_OUT_ADDR(1, 2, 3) + '
            "DPP_PE_ADDR(1, 2, DPP_WEIGHTS_WORD_ADDR_BITS) + DPP_BIAS_MIN) & 0; }\n"
        )
        proc = subprocess.run(
            [compiler, "-fsyntax-only", "-Wall", "-Werror", str(tmp_path / "a.c")], capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stderr


def test_c_header_refuses_a_name_defined_twice_differently() -> None:
    iface = interface_of(CONFIGS[0])
    iface["widths"]["acc_bits"] = iface["params"]["acc_bits"] + 1
    with pytest.raises(ValueError, match=r"c_header: DPP_ACC_BITS defined twice"):
        c_header(iface)


def test_generate_verilog_writes_the_interface_files(tmp_path: Path) -> None:
    params = CONFIGS[3]
    path = generate_verilog(params, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["csr_array.h", "csr_array.v", INTERFACE_FILE, "params.json"]
    iface = json.loads((tmp_path / INTERFACE_FILE).read_text())
    assert iface == json.loads(interface_json(interface_of(params)))
    assert (tmp_path / "csr_array.h").read_text() == c_header(iface)
    head = path.read_text().split("\nmodule ", 1)[0]
    for mem, spec in iface["memories"].items():
        assert (
            f"memory {mem} (load_sel {spec['load_sel']}): depth = {spec['depth']}, "
            f"word_bits = {spec['word_bits']}" in head
        )
    assert f"load_addr_bits = {iface['widths']['load_addr_bits']}" in head
    assert "drain cycles = 6, out_data read latency = 1" in head
    assert "2 last_pes [1, 2], 5 cols [1, 9]" in head
    lo, hi = params.bias_range
    assert f"legal bias {lo} .. {hi} (any signed {params.bias_bits}-bit bias)" in head
