"""Reading nextpnr's ``--report`` JSON: Fmax, utilisation, and the critical path with the part of the array
it runs through.

The path's cells carry the hierarchy of the generated Verilog: Yosys flattens the design keeping instance
paths (``pe3.mux1``, ``rq0``, ``counters``) and its ``autoname`` pass names each mapped cell after a net it
drives or reads, and nextpnr lists, for every routed net, the ``design.v`` lines it came from. A path step is
labelled from its name (which block, which register) and, for anonymous arithmetic, from the Verilog line it
came from (``a * b`` is the multiplier, ``prod0 + prod1`` the adder tree). The wrapper that registers the
array's ports (:mod:`analysis.timing`) lives outside the ``dut`` instance and is labelled ``harness``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

#: Labels a critical path is described with, in no particular order.
PARTS = (
    "index mux",
    "multiplier",
    "adder tree",
    "accumulator",
    "requantiser",
    "control",
    "arbiter",
    "counters",
    "weight memory",
    "activation memory",
    "output buffer",
    "harness",
)
DUT_PREFIX = "dut."
#: top-level names of the performance counters: the ports, the ``counts__<counter>`` wires of the counter bank's
#: outputs and the ``inc__<counter>`` increments summed over the PEs
_COUNTER_NAME = re.compile(
    r"(counts__|inc_|cycles|mac_ops|lane_idle_cycles|weight_bits_read|index_bits_read|"
    r"act_bits_read|out_bits_written|macs|words|ptrs)"
)
_DSP = re.compile(r"MULT18X18D|ALU54B|SB_MAC16|\$mul")
_COUNTER_TERMS = re.compile(
    r"\b(macs|words|ptrs|reads|inc_\w+|counts__\w+)\b|ptr_read|word_read|lanes_used|"
    r"write__\d+__en"
)
_SOURCE = re.compile(r"^design\.v:(\d+)\.")
_MEM_READER = re.compile(r"[\d.]+_DO[AB]?\d+_(LUT4|PFUMX|L6MUX21|CCU2C)")  # logic reading a block RAM output
_DSP_OPERAND = re.compile(r"\$\d+_MULT18X18D_\w*?_[AB]\d+_(LUT4|PFUMX|L6MUX21)")  # logic driving a multiplier input
_MODULE = re.compile(r"^\s*module\s+\\?([^\s(]+)")
_UTIL_LINE = re.compile(r"^Info:\s+([A-Za-z0-9_]+):\s+(\d+)/\s*(\d+)\s+\d+%", re.M)
_NO_BELS = re.compile(r"no BELs remaining to implement cell type '([^']+)'")


@dataclass(frozen=True)
class CriticalPath:
    """The worst register-to-register path: its first and last cell (``dut.`` stripped), total delay split
    into logic and routing, and the parts of the array it runs through, in path order."""

    start: str
    end: str
    delay_ns: float
    logic_ns: float
    routing_ns: float
    parts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["parts"] = list(self.parts)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticalPath:
        return cls(**{**d, "parts": tuple(d["parts"])})


def strip_dut(name: str) -> str:
    return name[len(DUT_PREFIX) :] if name.startswith(DUT_PREFIX) else name


@dataclass(frozen=True)
class SourceMap:
    """What the generated ``design.v`` says about a name: ``lines`` maps a line number to (instance scope, text),
    ``defs`` maps (scope, anonymous wire such as ``$11``) to the text of the ``assign`` that drives it, and
    ``top`` is the array's module (``kofn_array``). Scopes drop the top module's name (``kofn_array.pe0.mux0``
    -> ``pe0.mux0``) so they read like the flattened cell names."""

    lines: dict[int, tuple[str, str]]
    defs: dict[tuple[str, str], str]
    top: str


_ASSIGN = re.compile(r"^\s*assign\s+\\(\$\d+)\s*=")


def source_map(verilog_text: str) -> SourceMap:
    """Index ``design.v`` (see :class:`SourceMap`)."""
    lines: dict[int, tuple[str, str]] = {}
    defs: dict[tuple[str, str], str] = {}
    scope, tops = "", []
    for number, line in enumerate(verilog_text.splitlines(), start=1):
        m = _MODULE.match(line)
        if m:
            top, _, scope = m.group(1).partition(".")
            tops.append(top)
        lines[number] = (scope, line)
        a = _ASSIGN.match(line)
        if a:
            defs[(scope, a.group(1))] = line
    return SourceMap(lines, defs, max(set(tops), key=tops.count) if tops else "")


def source_lines(verilog_text: str) -> dict[int, tuple[str, str]]:
    """``line number -> (instance scope, line text)`` of ``design.v`` (:attr:`SourceMap.lines`)."""
    return source_map(verilog_text).lines


def _split(name: str) -> tuple[list[str], str]:
    """``pe5.weights.0.0_DOB3_LUT4_D`` -> (``["pe5", "weights"]``, ``"0.0_DOB3_LUT4_D"``)."""
    m = re.fullmatch(r"((?:[A-Za-z_][A-Za-z0-9_]*\.)*)(.*)", name, flags=re.S)
    assert m is not None  # both groups match the empty string
    scope = [s for s in m.group(1).split(".") if s]
    return scope, m.group(2)


def label_name(name: str, source: SourceMap | None = None) -> str:
    """The part a (flattened, ``dut.``-prefixed) cell or net name belongs to.

    With the ``source`` of the design, an anonymous PE wire (``pe2.$11``) is labelled by the Verilog that drives
    it, and in the k-of-n array the logic between the memories and a multiplier (cells Yosys names after the
    block-RAM output they read, ``acts.0.0_DOB5_LUT4...`` or ``pe4.weights.0.5_DOB2_LUT4...``, or after the
    multiplier input they drive, ``pe2.$11_MULT18X18D_P9_A9_LUT4...``) is the index mux: flattening leaves the
    mux no cells of its own name. (With ``block > 1`` the element select is counted in it too.)
    """
    if not name.startswith(DUT_PREFIX):
        return "harness"
    scope, base = _split(strip_dut(name))
    first = scope[0] if scope else ""
    rest = scope[1] if len(scope) > 1 else ""
    kofn = source is not None and source.top == "kofn_array"
    if any(re.fullmatch(r"mux\d+", s) for s in scope):
        return "index mux"
    if re.fullmatch(r"rq\d+", first):
        return "requantiser"
    if first == "counters" or (not first and _COUNTER_NAME.match(base)):
        return "counters"
    if first in ("ctrl", "seq", "regs"):
        return "control"
    if first == "outs":
        return "output buffer"
    if first == "acts":  # the lock-step activation memory, or the banked CSR's banks behind their arbiter
        if not rest and kofn and _MEM_READER.match(base):
            return "index mux"
        if re.fullmatch(r"bank\d+", rest) or (not rest and base[:1].isdigit()):
            return "activation memory"
        return "arbiter"
    anonymous = re.match(r"\$\d+", base)
    if not first and source is not None and anonymous:
        return label_source("", source.defs.get(("", anonymous.group(0)), "")) or "control"
    if re.fullmatch(r"pe\d+", first):
        if rest == "weights" and kofn and _MEM_READER.match(base):
            return "index mux"  # the slot indices in the weight word select the lane's activation
        if rest in ("weights", "rowptr"):
            return "weight memory"
        if re.fullmatch(r"acts\d+", rest):
            return "activation memory"
        if rest == "biases" or re.match(r"(acc|total|bias|res)(?![a-z])", base):
            return "accumulator"
        if kofn and _DSP_OPERAND.match(base):
            return "index mux"
        if _DSP.search(base) or re.match(r"(prod|value2_|valueb_)", base):
            return "multiplier"
        wire = re.match(r"\$\d+", base)
        if source is not None and wire and (first, wire.group(0)) in source.defs:
            return label_source(first, source.defs[(first, wire.group(0))]) or "control"
        return "control"
    return "control"


def label_source(scope: str, text: str) -> str | None:
    """The part a ``design.v`` line belongs to: its module decides (``rq0``: requantiser, ``pe0.mux1``: index
    mux), and inside a PE the line itself (``*``: multiplier, ``prod + prod``: adder tree, ``acc`` / ``bias``:
    accumulator), and in the top module the counter increments (``macs``, ``words``, ``ptr_read``, ``write_en``
    sums). ``None`` for other lines of the top module and of a PE: the names decide there."""
    if not scope:  # the top module: only the counter increments (sums of per-PE events) are told apart
        return "counters" if _COUNTER_TERMS.search(text) else None
    if not re.fullmatch(r"pe\d+", scope):
        return label_name(f"{DUT_PREFIX}{scope}.line")
    if re.search(r"\)\s*\*\s*\$signed", text):
        return "multiplier"
    if "+" in text and text.count("prod") >= 2:
        return "adder tree"
    if re.search(r"\b(acc|bias_r|bias3|total)\b", text):
        return "accumulator"
    return None


#: logic named after the flip-flop whose D input it drives (``outs.write__1__data_TRELLIS_FF_Q_7_DI_LUT4...``):
#: it computes that register's next value, often in another block (the requantiser feeding the output buffer)
_FEEDS_FF = re.compile(r"(_TRELLIS_FF_Q(_\d+)?_DI_|_SB_DFF\w*_Q(_\d+)?_D_)")


def _step_labels(step: dict[str, Any], source: SourceMap | None) -> list[str]:
    """A logic step is labelled by its cell's name, except logic named after the register it feeds, which only
    its nets' ``design.v`` lines label (given the source); a routing step only by the ``design.v`` lines its net
    came from (a net's own name is whichever neighbour Yosys' ``autoname`` picked, its driver is already counted).
    The path's end register is a ``setup`` step, labelled by its name."""
    if step.get("type") != "routing":
        cell = step["from"]["cell"]
        if source is not None and step.get("type") == "logic" and _FEEDS_FF.search(cell):
            return []
        return [label_name(cell, source)]
    labels = []
    for src in step.get("sources", []):
        m = _SOURCE.match(src)
        if source is not None and m and int(m.group(1)) in source.lines:
            label = label_source(*source.lines[int(m.group(1))])
            if label:
                labels.append(label)
    return labels


def ordered_parts(labels: Iterable[str]) -> tuple[str, ...]:
    """Distinct labels in first-seen order; ``harness`` dropped unless nothing else is left."""
    seen: list[str] = []
    for label in labels:
        if label not in seen:
            seen.append(label)
    inside = [p for p in seen if p != "harness"]
    return tuple(inside or seen)


def classify_path(steps: list[dict[str, Any]], source: SourceMap | None = None) -> tuple[str, ...]:
    """Ordered distinct parts a nextpnr path (its ``path`` list) runs through (see :func:`ordered_parts`)."""
    return ordered_parts(label for step in steps for label in _step_labels(step, source))


def _clock_path(report: dict[str, Any]) -> dict[str, Any] | None:
    """The register-to-register critical path (``posedge -> posedge``), not the ones to or from pins."""
    for cp in report.get("critical_paths", []):
        if cp.get("from", "").startswith("posedge") and cp.get("to", "").startswith("posedge"):
            return cp
    return None


def critical_path(report: dict[str, Any], verilog_text: str | None = None) -> CriticalPath | None:
    """The clock domain's critical path from a nextpnr report, classified (``None`` if it has none)."""
    cp = _clock_path(report)
    if cp is None or not cp.get("path"):
        return None
    steps = cp["path"]
    logic = sum(s["delay"] for s in steps if s["type"] != "routing")
    routing = sum(s["delay"] for s in steps if s["type"] == "routing")
    source = source_map(verilog_text) if verilog_text else None
    return CriticalPath(
        start=strip_dut(steps[0]["from"]["cell"]),
        end=strip_dut(steps[-1]["to"]["cell"]),
        delay_ns=round(logic + routing, 3),
        logic_ns=round(logic, 3),
        routing_ns=round(routing, 3),
        parts=classify_path(steps, source),
    )


def clock_path_steps(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The critical path's steps, trimmed to what classification reads (type, delay, cells, net, ``design.v``
    sources), so a cached result can be classified again when the rules improve."""
    cp = _clock_path(report)
    out = []
    for s in (cp or {}).get("path", []):
        step = {
            "type": s["type"],
            "delay": s["delay"],
            "from": {"cell": s["from"]["cell"]},
            "to": {"cell": s["to"]["cell"]},
        }
        if s.get("net"):
            step["net"] = s["net"]
            step["sources"] = [src for src in s.get("sources", []) if src.startswith("design.v:")]
        out.append(step)
    return out


def fmax_mhz(report: dict[str, Any]) -> float | None:
    """Achieved Fmax of the (single) clock in MHz, or ``None`` when the design has no clocked path."""
    values = [v["achieved"] for v in report.get("fmax", {}).values()]
    return round(min(values), 2) if values else None


def utilization(report: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """``cell type -> (used, available)`` for every type the design uses."""
    return {
        k: (int(v["used"]), int(v["available"])) for k, v in report.get("utilization", {}).items() if int(v["used"])
    }


def overfull(log: str) -> dict[str, tuple[int, int]]:
    """Cell types the design needs more of than the device has, from nextpnr's log: its utilisation table
    (``used/available``) and its placer's ``no BELs remaining`` error."""
    table = {name: (int(u), int(a)) for name, u, a in _UTIL_LINE.findall(log)}
    out = {name: ua for name, ua in table.items() if ua[0] > ua[1]}
    for name in _NO_BELS.findall(log):
        out.setdefault(name, table.get(name, (0, 0)))
    return out


def describe_overfull(part: str, over: dict[str, tuple[int, int]]) -> str:
    """One line: ``does not fit LFE5U-25F: DP16KD 80/56``."""
    items = ", ".join(f"{name} {u}/{a}" if a else f"{name} (none left)" for name, (u, a) in sorted(over.items()))
    return f"does not fit {part}: {items}"


def sum_used(util: dict[str, tuple[int, int]], names: Iterable[str]) -> int:
    return sum(util.get(n, (0, 0))[0] for n in names)
