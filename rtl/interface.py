"""The machine-readable interface of one build: ``interface.json`` and the C header ``<top>.h``.

Everything a driver needs to talk to a generated array, derived from :class:`rtl.params.ArrayParams`, the port
signature (:func:`rtl.control.array_members`) and :mod:`rtl.layout`, so it cannot drift from the hardware:
ports (width, direction, signedness), the load port and every memory behind it (load code, depth, word width,
the bit fields of a word, how the PE number and word index form ``load_addr``), the register map with each
register's legal range, the output addressing and read latency, drain cycles, reset and run behaviour, the
accumulator's legal bias range and the counter formulas' parameters. :func:`interface_of` builds the dict
(schema :data:`INTERFACE_SCHEMA`), :func:`c_header` the same constants as C ``#define`` s, and
:func:`verilog_header` the comment block on top of the Verilog. ``dpp rtl`` writes all three
(:func:`rtl.verilog.generate_verilog`); ``rtl/examples/`` drives a build from the header alone.

Field positions: a word field ``{"base", "bits", "dims", "stride"}`` of a memory word sits at bit
``base + sum(index[d] * stride[d] for d in dims)`` (``0 <= index[d] < dims[d]``), ``bits`` wide (LSB first).
"""

from __future__ import annotations

import json
from typing import Any

from amaranth.hdl import Shape

from dpp.reference import MAX_MULTIPLIER, MAX_SHIFT
from rtl.control import array_members
from rtl.layout import (
    COUNTER_BITS,
    COUNTERS,
    OUT_READ_LATENCY,
    REGISTER_NAMES,
    SEL_ACT,
    SEL_BIAS,
    SEL_BITS,
    SEL_REG,
    SEL_ROWPTR,
    SEL_WEIGHT,
    Layout,
    addr_bits,
    drain_cycles,
)
from rtl.params import ArrayParams

INTERFACE_SCHEMA = 1
INTERFACE_KIND = "dpp.rtl_interface"
INTERFACE_FILE = "interface.json"

#: What every width name used below means (also in ``rtl/README.md``, "Ports").
DEFINITIONS = {
    "addr_bits(depth)": "max(1, ceil(log2 depth)): the address bits of a memory of depth words (a 1- or 2-deep "
    "memory still takes 1 bit)",
    "count_bits(top)": "max(1, bit_length(top)): unsigned bits holding every value 0 .. top",
    "mem_depth(words)": "max(2, words): every memory has at least 2 words (no 0-bit address)",
    "pe_bits": "ceil(log2 pes) = bit_length(pes - 1): the PE field of per-PE load addresses and of out_addr "
    "(0 bits with one PE)",
    "word_addr_bits": "addr_bits(depth) of the memory being addressed: the low bits of a per-PE load_addr",
    "signed": "two's complement; every weight, activation, bias and output value is signed",
}

PORT_MEANINGS = {
    "clk": "clock; every register and memory write happens on its rising edge",
    "rst": "synchronous reset, active high (see reset)",
    "load_en": "write load_data at load_addr of the memory load_sel picks, this cycle (one word per cycle)",
    "load_sel": "which memory: the load codes (load.codes)",
    "load_addr": "register number, activation address or per-PE address (pe << word_addr_bits) | word",
    "load_data": "the word; a memory takes its low word_bits",
    "start": "pulse; ignored while busy; clears the counters; refused (done + error) if a register is out of range",
    "busy": "high from the cycle after an accepted start until the last output is written",
    "done": "rises when busy falls (or one cycle after a refused start), stays high until the next start",
    "error": "high after a refused start (a register out of its legal range) until the next start",
    "out_addr": "output memory read address ((b*tiles + r // pes) << pe_bits) | (r % pes)",
    "out_data": "the output word at out_addr, read_latency cycles later",
}
_COUNTER_MEANING = "performance counter, valid when done (rtl/README.md, 'Schedules and cycle/traffic formulas')"

#: The ``load_sel`` code of every memory (and of the register file).
LOAD_CODES = {
    "registers": SEL_REG,
    "weights": SEL_WEIGHT,
    "activations": SEL_ACT,
    "biases": SEL_BIAS,
    "rowptr": SEL_ROWPTR,
}

REGISTER_MEANINGS = {
    "batch": "vectors in the batch",
    "tiles": "row tiles, ceil(rows / pes)",
    "last_pes": "rows in the last tile, rows - (tiles - 1) * pes",
    "steps": "kofn: groups = ceil(cols / (n*block)); dense: chunks = ceil(cols / k)",
    "tail_lanes": "real columns in the last chunk, cols - (chunks - 1) * k (for mac_ops)",
    "cols": "columns: the activation base of vector b is b*cols",
    "multiplier": f"requantisation multiplier 1 .. {MAX_MULTIPLIER}",
    "shift": f"requantisation shift 1 .. {MAX_SHIFT}: out = ((acc*multiplier >> (shift-1)) + 1) >> 1",
    "relu": "1: negative results become 0 before saturation",
}


def interface_of(params: ArrayParams) -> dict[str, Any]:
    """The interface of the build ``params`` as a JSON-ready dict (schema :data:`INTERFACE_SCHEMA`)."""
    lay = Layout(params)
    entry = params.array_arch
    return {
        "schema": INTERFACE_SCHEMA,
        "kind": INTERFACE_KIND,
        "top": params.top_name,
        "array": entry.label,
        "params": params.to_dict(),
        "definitions": dict(DEFINITIONS),
        "widths": _widths(lay),
        "ports": _ports(lay),
        "clock": {"port": "clk", "edge": "rising"},
        "reset": {
            "port": "rst",
            "polarity": "active_high",
            "synchronous": True,
            "clears": [
                "every run-time register (to 0: out of range, so a start right after reset is refused "
                "with error instead of running)",
                "busy",
                "done",
                "error",
                "the counters",
                "the sequencers and pipelines",
            ],
            "keeps": ["the weight, activation, bias, row-pointer and output memories"],
        },
        "load": {
            "codes": dict(LOAD_CODES),
            "sel_bits": SEL_BITS,
            "addr_bits": lay.load_addr_bits,
            "data_bits": lay.load_data_bits,
            "per_pe_address": "(pe << word_addr_bits) | word, word_addr_bits = addr_bits(depth) of that "
            "memory (weights and biases/row pointers differ)",
            "allowed_while_busy": False,
            "while_busy": "not allowed: the hardware does not block it, and a register or memory written "
            "during a run changes that run; load only while busy is low",
        },
        "memories": _memories(lay),
        "registers": _registers(lay),
        "run": {
            "start": "a pulse while busy is low; ignored while busy",
            "drain_cycles": drain_cycles(params),
            "refused_start": "if any register the array reads lies outside [min, max] (registers), start "
            "launches nothing: done and error rise at the next rising edge, busy stays low, the "
            "counters are cleared to 0 and the memories are unchanged",
            "error": "high from a refused start until the next start",
            "cycles": "cycles counts busy cycles: steps issued + drain_cycles",
        },
        "output": {
            "addr_bits": lay.out_addr_bits,
            "pe_bits": lay.pe_bits,
            "word_bits": addr_bits(lay.out_depth),
            "depth_per_pe": lay.out_depth,
            "data_bits": params.out_bits,
            "signed": True,
            "read_latency": OUT_READ_LATENCY,
            "address": "((b*tiles + r // pes) << pe_bits) | (r % pes) for vector b, row r",
            "read_timing": "out_data shows the word at out_addr read_latency rising edges later",
            "beyond_last_pe": "a PE field >= pes reads the last PE's bank",
            "reads_while_busy": "allowed; a word holds this run's result once written (read after done)",
        },
        "accumulator": _accumulator(params),
        "padding": _padding(params),
        "counters": {
            "names": list(COUNTERS),
            "bits": COUNTER_BITS,
            "valid": "when done (cleared by start)",
            "formulas": "rtl/README.md, 'Schedules and cycle/traffic formulas' (sim.model.predict_counters)",
            "params": _counter_params(lay),
        },
    }


def _widths(lay: Layout) -> dict[str, int]:
    p = lay.params
    return {
        "pe_bits": lay.pe_bits,
        "load_sel_bits": SEL_BITS,
        "load_addr_bits": lay.load_addr_bits,
        "load_data_bits": lay.load_data_bits,
        "out_addr_bits": lay.out_addr_bits,
        "out_bits": p.out_bits,
        "acc_bits": p.acc_bits,
        "weight_bits": p.weight_bits,
        "act_bits": p.act_bits,
        "counter_bits": COUNTER_BITS,
    }


def _ports(lay: Layout) -> list[dict[str, Any]]:
    """``clk``, ``rst`` (added by Amaranth) and every member of :func:`rtl.control.array_members`."""
    ports = [
        {"name": "clk", "direction": "in", "width": 1, "signed": False, "meaning": PORT_MEANINGS["clk"]},
        {"name": "rst", "direction": "in", "width": 1, "signed": False, "meaning": PORT_MEANINGS["rst"]},
    ]
    for name, member in array_members(lay).items():
        shape = Shape.cast(member.shape)
        ports.append(
            {
                "name": name,
                "direction": member.flow.value.lower(),
                "width": shape.width,
                "signed": shape.signed,
                "meaning": PORT_MEANINGS.get(name, _COUNTER_MEANING),
            }
        )
    return ports


def _field(name: str, base: int, bits: int, signed: bool, meaning: str, **dims: tuple[int, int]) -> dict[str, Any]:
    """A word field; ``dims`` maps a dimension to ``(count, stride)``."""
    return {
        "name": name,
        "base": base,
        "bits": bits,
        "signed": signed,
        "dims": {d: c for d, (c, _) in dims.items()},
        "stride": {d: s for d, (_, s) in dims.items()},
        "meaning": meaning,
    }


def _per_pe(lay: Layout, name: str, word_bits: int, fields: list[dict[str, Any]], words: str) -> dict[str, Any]:
    depth = lay.pe_memory_depth(name)
    word = addr_bits(depth)
    return {
        "load_sel": LOAD_CODES[name],
        "per_pe": True,
        "depth": depth,
        "word_bits": word_bits,
        "word_addr_bits": word,
        "load_addr": {"word_lsb": 0, "word_bits": word, "pe_lsb": word, "pe_bits": lay.pe_bits},
        "fields": fields,
        "words": words,
    }


def _memories(lay: Layout) -> dict[str, Any]:
    p, entry = lay.params, lay.array_arch
    wb = p.weight_bits
    fields = [
        _field(
            "value",
            lay.value_offset(0),
            wb,
            True,
            "weight value of (lane, element)",
            lane=(p.k, lay.value_offset(1)),
            element=(p.block, wb),
        )
    ]
    if lay.weight_index_bits:
        index = entry.index_field_bits(lay)
        fields.append(
            _field(entry.index_field, lay.index_offset(0), index, False, entry.index_meaning, lane=(p.k, index))
        )
    mems = {"weights": _per_pe(lay, "weights", lay.weight_word_bits, fields, entry.weight_words_order)}
    mems["biases"] = _per_pe(
        lay,
        "biases",
        p.acc_bits,
        [
            _field(
                "bias", 0, p.acc_bits, True, "the row's bias: the accumulator's start value (accumulator.bias_min/max)"
            )
        ],
        "word t = local row t of the PE (row t*pes + pe)",
    )
    if "rowptr" in entry.pe_memories:
        mems["rowptr"] = _per_pe(
            lay,
            "rowptr",
            lay.rowptr_bits,
            [
                _field(
                    "word_end",
                    0,
                    lay.ptr_bits,
                    False,
                    "one past the row's last weight word, cumulative per PE "
                    "from 0 (the row starts at the previous entry's word_end, 0 for local row 0; an empty "
                    "row repeats the previous end); word_end <= weights depth",
                ),
                _field(
                    "tail",
                    lay.ptr_bits,
                    lay.lanes_bits,
                    False,
                    "entries in the row's last word, 1 .. k (0 for an empty row)",
                ),
            ],
            "entry j = local row j of the PE (row j*pes + pe), rows of every vector share them",
        )
    acts: dict[str, Any] = {
        "load_sel": SEL_ACT,
        "per_pe": False,
        "word_bits": lay.act_word_bits,
        "word_addr_bits": lay.act_addr_bits,
        "load_addr": {"word_lsb": 0, "word_bits": lay.act_addr_bits, "pe_lsb": 0, "pe_bits": 0},
        "fields": [_field("act", 0, p.act_bits, True, "activation of slot i", slot=(lay.act_lanes, p.act_bits))],
        "words": entry.act_words_order,
    }
    if lay.act_banks:
        acts.update(depth=lay.act_banks * lay.act_bank_depth, banks=lay.act_banks, bank_depth=lay.act_bank_depth)
    else:
        acts["depth"] = lay.act_depth
    acts["storage"] = entry.act_storage
    mems["activations"] = acts
    return mems


def _registers(lay: Layout) -> list[dict[str, Any]]:
    """Every register number (the ones this array does not read are ignored: ``used`` false)."""
    out = []
    for number, name in enumerate(REGISTER_NAMES):
        used = name in lay.registers
        reg: dict[str, Any] = {"name": name, "number": number, "used": used, "meaning": REGISTER_MEANINGS[name]}
        if used:
            lo, hi = lay.register_range(name)
            reg.update(bits=lay.register_bits(name), min=lo, max=hi)
        out.append(reg)
    return out


def _accumulator(params: ArrayParams) -> dict[str, Any]:
    lo, hi = params.bias_range
    sum_lo, sum_hi = params.product_sum_range
    return {
        "acc_bits": params.acc_bits,
        "bias_bits": params.bias_bits,
        "bias_min": lo,
        "bias_max": hi,
        "max_fan_in": params.max_fan_in,
        "product_sum_min": sum_lo,
        "product_sum_max": sum_hi,
        "rule": "acc = bias + sum of products wraps at acc_bits bits: every bias in [bias_min, bias_max] is safe "
        "for every layer this build runs (any signed bias_bits-bit bias is); a layer may also use row r's "
        "bias in [-2**(acc_bits-1) - lo_r, 2**(acc_bits-1) - 1 - hi_r] with (lo_r, hi_r) the extremes of "
        "its products' sum over signed act_bits inputs (rtl.program.check_layer_fits)",
    }


def _padding(params: ArrayParams) -> dict[str, str]:
    return {
        "kofn_partial_group": "a last, partial group (cols not a multiple of n*block): activation slots past "
        "cols hold 0; the group still keeps k slots, the ones past cols holding weight value "
        "0 (rtl.program takes the lowest padded slots); they are multiplied and counted "
        "in mac_ops like every kept slot",
        "dense_last_chunk": "columns past cols in the last chunk: weight 0 and activation 0; tail_lanes "
        "counts the real ones",
        "csr_last_word": "lanes past the row's tail in its last word hold (value 0, column 0) and are masked",
    }


def _counter_params(lay: Layout) -> dict[str, int]:
    p = lay.params
    return {
        "k": p.k,
        "n": p.n,
        "block": p.block,
        "pes": p.pes,
        "drain_cycles": drain_cycles(p),
        "weight_bits": p.weight_bits,
        "act_bits": p.act_bits,
        "out_bits": p.out_bits,
        "slot_index_bits": lay.index_bits,
        "col_bits": lay.col_bits,
        "ptr_bits": lay.ptr_bits,
        "tail_bits": lay.lanes_bits,
        "rowptr_bits": lay.rowptr_bits,
        "value_bits_per_word": lay.weight_value_bits,
        "index_bits_per_word": lay.weight_index_bits,
        "act_word_bits": lay.act_word_bits,
        "act_banks": lay.act_banks,
    }


def interface_json(interface: dict[str, Any]) -> str:
    """The text of ``interface.json`` for :func:`interface_of`'s dict (sorted keys, a final newline)."""
    return json.dumps(interface, indent=1, sort_keys=True) + "\n"


# ------------------------------------------------------------------ C header
def _c_name(*parts: str) -> str:
    return "DPP_" + "_".join(parts).upper()


def _c_int(value: int) -> str:
    if value >= 0:
        return f"{value}" if value < 1 << 31 else f"{value}ULL" if value >= 1 << 63 else f"{value}LL"
    if value == -(1 << 63):
        return "(-9223372036854775807LL - 1)"
    return f"({value})" if value >= -(1 << 31) else f"({value}LL)"


def c_header(interface: dict[str, Any]) -> str:
    """The C header ``<top>.h``: every number of ``interface`` as a ``DPP_*`` macro (plus address helpers and
    the counter X-macro), in an order independent of the dict's (the same text from :func:`interface_of` and
    from a read-back ``interface.json``); usable from C and C++. Raises if two entries would define one name
    differently."""
    defs: dict[str, str] = {}

    def define(name: str, value: Any) -> None:
        text = _c_int(int(value)) if not isinstance(value, str) else json.dumps(value)
        if defs.setdefault(name, text) != text:
            raise ValueError(f"c_header: {name} defined twice ({defs[name]} and {text})")

    define("DPP_INTERFACE_SCHEMA", interface["schema"])
    define("DPP_TOP_NAME", interface["top"])
    define("DPP_ARRAY", interface["array"])
    define(_c_name("array", interface["array"]), 1)
    for key, value in sorted(interface["params"].items()):
        define(_c_name(key), value)
    for key, value in sorted(interface["widths"].items()):
        define(_c_name(key), value)
    for key, value in sorted(interface["load"]["codes"].items(), key=lambda kv: kv[1]):
        define(_c_name("sel", key), value)
    define("DPP_LOAD_WHILE_BUSY", interface["load"]["allowed_while_busy"])
    for reg in interface["registers"]:
        define(_c_name("reg", reg["name"]), reg["number"])
        define(_c_name("reg", reg["name"], "used"), reg["used"])
        if reg["used"]:
            for key in ("bits", "min", "max"):
                define(_c_name("reg", reg["name"], key), reg[key])
    for mem, spec in sorted(interface["memories"].items()):
        for key in ("load_sel", "per_pe", "depth", "word_bits", "word_addr_bits", "banks", "bank_depth"):
            if key in spec:
                define(_c_name(mem, key), spec[key])
        for field in spec["fields"]:
            for key in ("base", "bits", "signed"):
                define(_c_name(mem, field["name"], key), field[key])
            for dim, count in sorted(field["dims"].items()):
                define(_c_name(mem, field["name"], "count", dim), count)
                define(_c_name(mem, field["name"], "stride", dim), field["stride"][dim])
    out = interface["output"]
    for key in ("addr_bits", "pe_bits", "word_bits", "depth_per_pe", "data_bits", "read_latency"):
        define(_c_name("out", key), out[key])
    define("DPP_DRAIN_CYCLES", interface["run"]["drain_cycles"])
    for key, value in sorted(interface["accumulator"].items()):
        if key != "rule":
            define(_c_name(key), value)
    for key, value in sorted(interface["counters"]["params"].items()):
        define(_c_name("cp", key), value)
    define("DPP_COUNTER_BITS", interface["counters"]["bits"])
    lines = [
        f"// {interface['top']}.h: written by dpp rtl (rtl/interface.py) from interface.json; do not edit.",
        f"// Every number of interface.json (schema {interface['schema']}) as a DPP_<section>_<key> macro.",
        f"#ifndef DPP_{interface['top'].upper()}_H",
        f"#define DPP_{interface['top'].upper()}_H",
        "",
    ]
    lines += [f"#define {name} {text}" for name, text in defs.items()]
    lines += [
        "",
        "// Load address of word `word` of PE `pe`'s memory whose word addresses take `word_addr_bits` bits.",
        "#define DPP_PE_ADDR(pe, word, word_addr_bits) \\",
        "    ((((unsigned long long)(pe)) << (word_addr_bits)) | (unsigned long long)(word))",
        "// out_addr of (vector b, row r) in a layer of `tiles` row tiles.",
        "#define DPP_OUT_ADDR(b, r, tiles) \\",
        "    (((((unsigned long long)(b)) * (tiles) + (r) / DPP_PES) << DPP_OUT_PE_BITS) | ((r) % DPP_PES))",
        "// The counters in port order: DPP_COUNTERS(X) expands to X(cycles) X(mac_ops) ...",
        "#define DPP_COUNTERS(X) " + " ".join(f"X({c})" for c in interface["counters"]["names"]),
        "",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def verilog_header(interface: dict[str, Any]) -> list[str]:
    """The comment lines on top of ``<top>.v``: every parameter, width and depth of ``interface``."""
    w, out, acc, mems = interface["widths"], interface["output"], interface["accumulator"], interface["memories"]
    lines = [f"// {interface['top']}: generated by dpp rtl (Amaranth); do not edit.", "// parameters:"]
    lines += [f"//   {key} = {value}" for key, value in sorted(interface["params"].items())]
    lines.append("//   derived: " + ", ".join(f"{key} = {value}" for key, value in sorted(w.items())))
    for name, spec in sorted(mems.items()):
        extra = f", banks = {spec['banks']} x {spec['bank_depth']} words" if "banks" in spec else ""
        pe = (
            f", load_addr = (pe << {spec['word_addr_bits']}) | word"
            if spec["per_pe"]
            else f", load_addr = word ({spec['word_addr_bits']} bits)"
        )
        lines.append(
            f"//   memory {name} (load_sel {spec['load_sel']}): depth = {spec['depth']}, "
            f"word_bits = {spec['word_bits']}{pe}{extra}"
        )
    lines += [
        f"//   output: out_addr = ((b*tiles + r//pes) << {out['pe_bits']}) | r%pes, word_bits = {out['word_bits']}, "
        f"depth per PE = {out['depth_per_pe']}",
        f"//   drain cycles = {interface['run']['drain_cycles']}, out_data read latency = {out['read_latency']}",
        f"//   accumulator: acc_bits = {acc['acc_bits']}, legal bias {acc['bias_min']} .. {acc['bias_max']} "
        f"(any signed {acc['bias_bits']}-bit bias)",
        "//   registers (number name [min, max]): "
        + ", ".join(f"{r['number']} {r['name']} [{r['min']}, {r['max']}]" for r in interface["registers"] if r["used"]),
        "//   a start with a register out of range finishes at once with done and error (no run)",
        f"//   full interface (ports, word fields, reset, timing): {INTERFACE_FILE} and {interface['top']}.h "
        "(rtl/interface.py)",
    ]
    return lines
