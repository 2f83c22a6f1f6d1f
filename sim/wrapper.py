"""The Verilog test harness around an array: clock, reset, program replay, output dump, cycle limit.

Python stays out of the per-cycle loop. For each layer, the cocotb test writes ``prog.hex`` (one
``{load_sel, load_addr, load_data}`` word per line), sets ``tb_prog_len`` / ``tb_out_len`` / ``tb_max_cycles``
and toggles ``tb_go``. The harness then, on its own clock:

1. reads ``prog.hex`` with ``$readmemh`` and holds ``rst`` for 2 cycles (every layer starts from reset);
2. replays the program through the load port, one word per cycle;
3. pulses ``start`` and waits for ``done``, or for ``tb_max_cycles`` cycles (then sets ``tb_timeout``);
4. reads output addresses ``0 .. tb_out_len-1`` through ``out_addr``/``out_data`` (``out_latency`` cycles
   from address to data) into ``outs`` and writes them with ``$writememh`` to ``out.hex``;
5. raises ``tb_done``. ``tb_run_cycles`` holds the cycles from ``start`` to ``done`` as seen from outside;
   ``tb_clock_count`` counts every clock cycle since time 0 and ``tb_running`` is high from ``start`` to
   ``done`` (for simulation-speed measurements of the compute phase alone).

Ports of the array are found by :func:`parse_ports` in the generated Verilog, so any design with the contract's
port names (``load_en, load_sel, load_addr, load_data, start, busy, done, out_addr, out_data`` and counters)
can be wrapped. A status output (:data:`STATUS_OUTPUTS`: the arrays' ``error``, high after a start refused for a
register out of range) is no counter: it drives the public wire ``tb_<name>``.

The clock: under Verilator ``clk`` is an input of the harness, toggled every 5 ns by the simulator's main
(:data:`HARNESS_MAIN`, built in place of cocotb's): a Verilog ``always #5`` is a coroutine that Verilator resumes
through its delay queue on every edge, which took about 30 % of the CPU time per simulated cycle of a 512x512
k-of-n layer (``sim/README.md``). Other simulators (Icarus) get the ``always #5`` clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dpp.errors import SimulationError

TB_TOP = "dpp_tb"
PROG_FILE = "prog.hex"
OUT_FILE = "out.hex"
REQUIRED_INPUTS = ("clk", "rst", "load_en", "load_sel", "load_addr", "load_data", "start", "out_addr")
REQUIRED_OUTPUTS = ("busy", "done", "out_data")
#: Status outputs that are not counters (``error``: a start refused for a register out of range); the harness
#: wires each present one to a public ``tb_<name>``
STATUS_OUTPUTS = ("error",)
WRAPPER_VERSION = 5  #: bump when the harness text changes (part of the build cache key)
#: the Verilator main of the harness (cocotb's event loop, the clock driven from C++); see the module docstring
HARNESS_MAIN = Path(__file__).with_name("harness_main.cpp")


@dataclass(frozen=True)
class Port:
    """One port of the wrapped module: direction (``input``/``output``) and width in bits."""

    name: str
    direction: str
    width: int


_PORT_RE = re.compile(
    r"^\s*(input|output)\s+(?:wire\s+|reg\s+)?(?:signed\s+)?(?:\[(\d+):(\d+)\]\s*)?([A-Za-z_]\w*)\s*;", re.M
)


def parse_ports(verilog: str, top: str) -> dict[str, Port]:
    """Ports of module ``top`` in ``verilog`` (Amaranth's output style: one declaration per line)."""
    start = re.search(rf"^\s*module\s+{re.escape(top)}\s*\(", verilog, re.M)
    if start is None:
        raise SimulationError(f"module {top!r} not found in the generated Verilog")
    end = verilog.find("endmodule", start.end())
    body = verilog[start.end() : end if end >= 0 else len(verilog)]
    ports: dict[str, Port] = {}
    for m in _PORT_RE.finditer(body):
        direction, hi, lo, name = m.groups()
        width = abs(int(hi) - int(lo)) + 1 if hi is not None else 1
        ports[name] = Port(name, direction, width)
    missing = [p for p in REQUIRED_INPUTS if ports.get(p, Port(p, "", 0)).direction != "input"]
    missing += [p for p in REQUIRED_OUTPUTS if ports.get(p, Port(p, "", 0)).direction != "output"]
    if missing:
        raise SimulationError(f"module {top!r} lacks required port(s) {', '.join(missing)}")
    return ports


def prog_word_width(ports: dict[str, Port]) -> int:
    """Bits of one program word ``{load_sel, load_addr, load_data}``."""
    return ports["load_sel"].width + ports["load_addr"].width + ports["load_data"].width


def counter_names(ports: dict[str, Port]) -> list[str]:
    """Outputs other than the handshake, output data and status: the counters, in port order."""
    return [
        p.name for p in ports.values() if p.direction == "output" and p.name not in REQUIRED_OUTPUTS + STATUS_OUTPUTS
    ]


def _decl(width: int) -> str:
    return f"[{width - 1}:0] " if width > 1 else ""


def wrapper_verilog(
    top: str, ports: dict[str, Port], prog_depth: int, out_depth: int, out_latency: int, clock_input: bool = False
) -> str:
    """Verilog text of the harness module :data:`TB_TOP` around ``top``; see the module docstring.

    ``clock_input``: ``clk`` is an input port driven by the simulator's main (:data:`HARNESS_MAIN`, Verilator);
    otherwise the harness makes it with ``always #5``.
    """
    if prog_depth < 1 or out_depth < 1:
        raise SimulationError(f"harness depths must be >= 1 (got prog_depth={prog_depth}, out_depth={out_depth})")
    if out_latency < 0:
        raise SimulationError(f"out_latency must be >= 0 (got {out_latency})")
    sw, aw, dw = (ports[p].width for p in ("load_sel", "load_addr", "load_data"))
    pw = sw + aw + dw
    ow = ports["out_data"].width
    oaw = ports["out_addr"].width
    counters = counter_names(ports)
    pub = "/*verilator public_flat_rw*/"
    lines = [
        f"// Test harness generated by sim/wrapper.py (version {WRAPPER_VERSION}) around {top}.",
        *(
            [f"module {TB_TOP}(input clk);"]
            if clock_input
            else [f"module {TB_TOP};", "  reg clk = 1'b0;", "  always #5 clk = ~clk;"]
        ),
        "  reg rst = 1'b1;",
        f"  reg [31:0] tb_prog_len {pub} = 0;",
        f"  reg [31:0] tb_out_len {pub} = 0;",
        f"  reg [63:0] tb_max_cycles {pub} = 0;",
        f"  reg tb_go {pub} = 1'b0;",
        f"  reg tb_done {pub} = 1'b0;",
        f"  reg tb_timeout {pub} = 1'b0;",
        f"  reg [63:0] tb_run_cycles {pub} = 0;",
        f"  reg [63:0] tb_clock_count {pub} = 0;",
        "  reg tb_go_seen = 1'b0;",
        f"  reg [{pw - 1}:0] prog [0:{prog_depth - 1}];",
        f"  reg [{ow - 1}:0] outs [0:{out_depth - 1}];",
        "  reg [2:0] state = 3'd0;",
        f"  wire tb_running {pub} = state == 3'd4;",
        "  reg [31:0] pc = 0;",
        "  reg [31:0] ra = 0;",
        f"  reg [{pw - 1}:0] word = 0;",
        "  reg load_en = 1'b0;",
        "  reg start = 1'b0;",
        f"  reg {_decl(oaw)}out_addr = 0;",
        f"  wire {_decl(sw)}load_sel = word[{pw - 1}:{aw + dw}];",
        f"  wire {_decl(aw)}load_addr = word[{aw + dw - 1}:{dw}];",
        f"  wire {_decl(dw)}load_data = word[{dw - 1}:0];",
        "  wire busy, done;",
        f"  wire {_decl(ow)}out_data;",
    ]
    lines += [f"  wire {_decl(ports[c].width)}{c} {pub};" for c in counters]
    conns = [
        "clk",
        "rst",
        "load_en",
        "load_sel",
        "load_addr",
        "load_data",
        "start",
        "busy",
        "done",
        "out_addr",
        "out_data",
        *counters,
    ]
    other_inputs = [p.name for p in ports.values() if p.direction == "input" and p.name not in REQUIRED_INPUTS]
    status = [p.name for p in ports.values() if p.direction == "output" and p.name in STATUS_OUTPUTS]
    lines += [f"  wire {_decl(ports[s].width)}tb_{s} {pub};" for s in status]
    lines.append(
        f"  {top} dut ("
        + ", ".join(f".{c}({c})" for c in conns)
        + "".join(f", .{c}(1'b0)" for c in other_inputs)
        + "".join(f", .{s}(tb_{s})" for s in status)
        + ");"
    )
    lat = out_latency
    lines += [
        "  // states: 0 idle, 1 reset, 2 load, 3 start, 4 run, 5 read outputs, 6 finish",
        "  always @(posedge clk) begin",
        "    tb_clock_count <= tb_clock_count + 1;",
        "    start <= 1'b0;",
        "    case (state)",
        "      3'd0: if (tb_go != tb_go_seen) begin",
        "        tb_go_seen <= tb_go; tb_done <= 1'b0; tb_timeout <= 1'b0; tb_run_cycles <= 0;",
        f'        $readmemh("{PROG_FILE}", prog, 0, tb_prog_len == 0 ? 0 : tb_prog_len - 1);',
        "        rst <= 1'b1; pc <= 0; state <= 3'd1;",
        "      end",
        "      3'd1: begin pc <= pc + 1; if (pc == 1) begin rst <= 1'b0; pc <= 0; state <= 3'd2; end end",
        "      3'd2: if (pc < tb_prog_len) begin word <= prog[pc]; load_en <= 1'b1; pc <= pc + 1; end",
        "            else begin load_en <= 1'b0; state <= 3'd3; end",
        "      3'd3: begin start <= 1'b1; state <= 3'd4; end",
        "      3'd4: if (done && !start) state <= 3'd5;",
        "            else if (tb_run_cycles >= tb_max_cycles) begin tb_timeout <= 1'b1; state <= 3'd6; end",
        "            else tb_run_cycles <= tb_run_cycles + 1;",
        "      3'd5: begin",
        "        ra <= ra + 1;",
        f"        out_addr <= ra[{oaw - 1}:0];",
        f"        if (ra >= {lat + 1} && ra - {lat + 1} < tb_out_len) outs[ra - {lat + 1}] <= out_data;",
        f"        if (ra == tb_out_len + {lat}) begin ra <= 0; state <= 3'd6; end",
        "      end",
        "      3'd6: begin",
        f'        if (!tb_timeout && tb_out_len != 0) $writememh("{OUT_FILE}", outs, 0, tb_out_len - 1);',
        "        tb_done <= 1'b1; state <= 3'd0;",
        "      end",
        "      default: state <= 3'd0;",
        "    endcase",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)
