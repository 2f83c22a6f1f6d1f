"""The simulation-speed ceiling: the array's own generated Verilog under a bare C++ Verilator main.

:func:`build_ceiling` takes the Verilog file inside a cocotb build (:class:`sim.build.BuiltDesign`: the very
text our harness simulates) and builds it with ``ceiling_main.cpp`` (no cocotb, no VPI, no Verilog harness;
the clock is a C++ loop) and the same Verilator flags (:data:`sim.build.VERILATOR_ARGS`, ``-O2``), cached
like :func:`sim.build.build_design`. :func:`run_ceiling` plays one program hex file (the harness's own
``prog.hex`` format) as often as needed to fill ``min_seconds`` of compute phases and returns the counters,
the output words and the cycles per second: the most Verilator can do on that design, to which our harness's
speed is compared (:func:`sim.bench.measure_ceiling`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpp.errors import SimulationError
from dpp.progress import step
from rtl.toolchain import prepare_simulator, verilator_root
from sim.build import MAKE_ARGS, TIMESCALE, VERILATOR_ARGS, BuiltDesign, cache_root, cached_build, hash_key, log_summary
from sim.wrapper import REQUIRED_INPUTS, Port, counter_names, parse_ports

CEILING_VERSION = 1  #: bump when the build command changes (part of the cache key, with the main and header texts)
MAIN_SOURCE = Path(__file__).with_name("ceiling_main.cpp")
PORTS_HEADER = "ceiling_ports.h"
EXECUTABLE = "ceiling"
STAMP = "ceiling_build.json"


@dataclass(frozen=True)
class CeilingBuild:
    """A built ceiling simulator: where it is and what it was built from."""

    build_dir: Path
    design_top: str
    verilog_sha256: str
    build_seconds: float
    cached: bool

    @property
    def executable(self) -> Path:
        return self.build_dir / EXECUTABLE


@dataclass(frozen=True)
class CeilingRun:
    """What the bare main saw: counters and output words of the first run, cycles and seconds over all runs.

    ``compute_*`` cover start..done of every run, ``job_*`` whole jobs (program file read, reset, load,
    compute, output read-back), like :class:`sim.jobs.JobResult`; ``*_seconds`` are wall time, ``*_cpu_seconds``
    CPU time of the simulator process (what the simulation costs, whatever else runs on the machine).
    """

    runs: int
    counters: dict[str, int]
    out_words: list[int]
    compute_cycles_per_run: int
    compute_cycles: int
    compute_seconds: float
    job_cycles: int
    job_seconds: float
    compute_cpu_seconds: float
    job_cpu_seconds: float
    best_compute_cycles_per_second: float

    @property
    def compute_cycles_per_second(self) -> float:
        return self.compute_cycles / self.compute_seconds

    @property
    def job_cycles_per_second(self) -> float:
        return self.job_cycles / self.job_seconds

    @property
    def compute_cycles_per_cpu_second(self) -> float:
        return self.compute_cycles / self.compute_cpu_seconds

    @property
    def job_cycles_per_cpu_second(self) -> float:
        return self.job_cycles / self.job_cpu_seconds


def ports_header(ports: dict[str, Port], out_latency: int) -> str:
    """``ceiling_ports.h``: load-word field widths, read latency, counters, the inputs to tie to 0 and, when the
    design has one, the ``cycles`` counter the main checks against an expected value."""
    if out_latency < 0:
        raise SimulationError(f"out_latency must be >= 0 (got {out_latency})")
    tied = [p.name for p in ports.values() if p.direction == "input" and p.name not in REQUIRED_INPUTS]
    lines = ["// Written by sim/ceiling.py for ceiling_main.cpp; do not edit.", "#pragma once"]
    lines += [f"#define DPP_{name.upper()}_BITS {ports[f'load_{name}'].width}" for name in ("sel", "addr", "data")]
    counters = counter_names(ports)
    lines += [
        f"#define DPP_OUT_LATENCY {out_latency}",
        "#define DPP_COUNTERS(X) " + " ".join(f"X({c})" for c in counters),
        "#define DPP_TIED_INPUTS(X) " + " ".join(f"X({c})" for c in tied),
    ]
    if "cycles" in counters and ports["cycles"].width <= 64:
        lines.append("#define DPP_CYCLES cycles")
    return "\n".join(lines) + "\n"


def ceiling_key(verilog: str, header: str) -> str:
    """Stable hash naming a ceiling build: the Verilog, the main, its header, the flags."""
    return hash_key(
        {
            "verilog": hashlib.sha256(verilog.encode()).hexdigest(),
            "main": MAIN_SOURCE.read_text(),
            "header": header,
            "version": CEILING_VERSION,
            "args": VERILATOR_ARGS,
            "make": MAKE_ARGS,
            "timescale": TIMESCALE,
        }
    )


def build_ceiling(design: BuiltDesign) -> CeilingBuild:
    """Build (or reuse) the bare-Verilator simulator of ``design``'s own Verilog file (Verilator only)."""
    if design.simulator != "verilator":
        raise SimulationError(f"the ceiling is a Verilator main; the design was built for {design.simulator!r}")
    source = design.build_dir / f"{design.design_top}.v"
    if not source.is_file():
        raise SimulationError(f"no generated Verilog {source} in the build of {design.design_top}")
    verilog = source.read_text()
    header = ports_header(parse_ports(verilog, design.design_top), design.out_latency)
    prepare_simulator("verilator")

    def build(stage: Path) -> dict[str, Any]:
        shutil.copy(source, stage / source.name)
        shutil.copy(MAIN_SOURCE, stage / MAIN_SOURCE.name)
        (stage / PORTS_HEADER).write_text(header)
        with step(f"building the bare-Verilator ceiling of {design.design_top} (cached for later runs)"):
            _compile(stage, design.design_top, source.name)
        return {"design_top": design.design_top, "verilog_sha256": hashlib.sha256(verilog.encode()).hexdigest()}

    final, cached = cached_build(cache_root(), f"ceiling-{ceiling_key(verilog, header)}", STAMP, build)
    return CeilingBuild(build_dir=final, cached=cached, **json.loads((final / STAMP).read_text()))


def _compile(build_dir: Path, top: str, verilog_name: str) -> None:
    """Verilate and compile in ``build_dir`` as cocotb's runner does, minus its VPI library and main."""
    verilate = [
        str(verilator_root() / "bin" / "verilator"),
        "--cc",
        "--exe",
        "-Mdir",
        ".",
        "--top-module",
        top,
        "--prefix",
        "Vtop",
        "-o",
        EXECUTABLE,
        *VERILATOR_ARGS,
        "--timescale",
        "/".join(TIMESCALE),
        MAIN_SOURCE.name,
        verilog_name,
    ]
    make = ["make", "-j", str(os.cpu_count() or 1), "-f", "Vtop.mk", *MAKE_ARGS]
    log = build_dir / "build.log"
    with open(log, "w") as out:
        for cmd in (verilate, make):
            out.write(" ".join(cmd) + "\n")
            out.flush()
            if subprocess.run(cmd, cwd=build_dir, stdout=out, stderr=subprocess.STDOUT, check=False).returncode:
                raise SimulationError(f"ceiling build of {top} failed at {cmd[0]}: {log_summary(log)}")
    if not (build_dir / EXECUTABLE).is_file():
        raise SimulationError(f"ceiling build of {top} made no {EXECUTABLE} executable: {log_summary(log)}")


def read_hex_words(path: Path) -> list[int]:
    """Words of a plain hex file, one per line (``$writememh`` of Verilator, or the ceiling's out file)."""
    words = []
    for i, line in enumerate(Path(path).read_text().split("\n")):
        if not line.strip():
            continue
        try:
            words.append(int(line, 16))
        except ValueError:
            raise SimulationError(f"{path} line {i + 1}: expected one hex word (got {line.strip()!r})") from None
    return words


def run_ceiling(
    build: CeilingBuild,
    prog_hex: Path,
    out_len: int,
    max_cycles: int,
    *,
    min_seconds: float = 1.0,
    min_runs: int = 1,
    workdir: Path,
    expect_cycles: int | None = None,
) -> CeilingRun:
    """Play ``prog_hex`` (one ``{load_sel, load_addr, load_data}`` word per line) at least ``min_runs`` times and
    until the compute phases took ``min_seconds``; the output words of the first run go to ``workdir``.

    ``expect_cycles``: the ``cycles`` counter every run must end with (our harness's, the model's); the main
    stops at the first run that differs and this raises :class:`SimulationError`.
    """
    if min_seconds < 0 or min_runs < 1:
        raise SimulationError(f"expected min_seconds >= 0 and min_runs >= 1 (got {min_seconds}, {min_runs})")
    out_hex = Path(workdir).resolve() / "ceiling_out.hex"
    cmd = [
        str(build.executable),
        str(Path(prog_hex).resolve()),
        str(int(out_len)),
        str(int(max_cycles)),
        repr(float(min_seconds)),
        str(int(min_runs)),
        str(out_hex),
    ]
    if expect_cycles is not None:
        cmd.append(str(int(expect_cycles)))
    with step(f"running the bare-Verilator ceiling of {build.design_top}"):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise SimulationError(
            f"ceiling run of {build.design_top} failed (exit {proc.returncode}): {proc.stderr.strip()[-300:]}"
        )
    raw = json.loads(proc.stdout)
    if raw["timeout"]:
        raise SimulationError(f"ceiling run of {build.design_top}: done not raised within {max_cycles} cycles")
    if not raw["runs_agree"]:
        raise SimulationError(
            f"ceiling run of {build.design_top}: repeated runs of one program gave different counters or outputs"
        )
    words = read_hex_words(out_hex) if out_len else []
    if len(words) != out_len:
        raise SimulationError(f"ceiling run of {build.design_top}: read {len(words)} output words, expected {out_len}")
    return CeilingRun(
        int(raw["runs"]),
        {k: int(v, 16) for k, v in raw["counters"].items()},
        words,
        int(raw["compute_cycles_per_run"]),
        int(raw["compute_cycles"]),
        float(raw["compute_seconds"]),
        int(raw["job_cycles"]),
        float(raw["job_seconds"]),
        float(raw["compute_cpu_seconds"]),
        float(raw["job_cpu_seconds"]),
        float(raw["best_compute_cycles_per_second"]),
    )


__all__ = [
    "CeilingBuild",
    "CeilingRun",
    "build_ceiling",
    "ceiling_key",
    "ports_header",
    "read_hex_words",
    "run_ceiling",
]
