"""Run a list of jobs (load program, start, await done, dump outputs) in ONE simulator process.

A job is the list of load-port writes of one layer, the number of output words to read back and a cycle
limit. :func:`run_jobs` writes the program files and a manifest into a work folder, runs the cocotb test
:mod:`sim.tb_layers` there with ``cocotb_tools.runner``, and parses the results. Any failure (simulator
crash, test error, cycle limit hit) raises :class:`dpp.errors.SimulationError` with one clear line.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpp.errors import SimulationError
from dpp.progress import step
from sim.build import TIMESCALE, BuiltDesign, get_sim_runner, log_summary
from sim.tb_layers import MANIFEST_ENV


@dataclass(frozen=True)
class Job:
    """One layer run: load-port writes ``(sel, addr, data)``, output words to read, and a cycle limit."""

    writes: Sequence[tuple[int, int, int]]
    out_len: int
    max_cycles: int


@dataclass(frozen=True)
class JobResult:
    """What the harness saw: raw output words (unsigned; None = undefined X/Z), counters, cycles, clocks.

    ``sim_cycles`` / ``wall_seconds`` / ``cpu_seconds`` cover the whole job (load, run, read-back);
    ``run_sim_cycles`` / ``run_wall_seconds`` / ``run_cpu_seconds`` the compute phase alone (``start`` to
    ``done``). CPU seconds are those of the simulator process, independent of other work on the machine.
    """

    out_words: list[int | None]
    counters: dict[str, int]
    run_cycles: int
    sim_cycles: int
    wall_seconds: float
    run_sim_cycles: int
    run_wall_seconds: float
    run_cpu_seconds: float = float("nan")
    cpu_seconds: float = float("nan")


@dataclass(frozen=True)
class RunStats:
    """Wall time of the whole simulator process (start-up included) and of the cycles inside it; the
    compute phases' cycles and CPU time summed over its jobs."""

    process_seconds: float
    sim_wall_seconds: float
    sim_cycles: int
    run_sim_cycles: int = 0
    run_cpu_seconds: float = float("nan")
    cpu_seconds: float = float("nan")


def pack_words(design: BuiltDesign, writes: Sequence[tuple[int, int, int]]) -> list[int]:
    """``{load_sel, load_addr, load_data}`` words, each field checked against its port width."""
    sw, aw, dw = (design.ports[p].width for p in ("load_sel", "load_addr", "load_data"))
    words = []
    for i, (sel, addr, data) in enumerate(writes):
        sel, addr, data = int(sel), int(addr), int(data)
        if not (0 <= sel < (1 << sw) and 0 <= addr < (1 << aw) and -(1 << (dw - 1)) <= data < (1 << dw)):
            raise SimulationError(
                f"load write {i} (sel={sel}, addr={addr}, data={data}) does not fit the {sw}/{aw}/{dw}-bit load port"
            )
        words.append((sel << (aw + dw)) | (addr << dw) | (data & ((1 << dw) - 1)))
    return words


def _write_job(design: BuiltDesign, job: Job, path: Path) -> int:
    if len(job.writes) > design.prog_depth:
        raise SimulationError(f"job has {len(job.writes)} load writes; the harness holds {design.prog_depth}")
    if job.out_len > design.out_depth:
        raise SimulationError(f"job reads {job.out_len} output words; the harness holds {design.out_depth}")
    words = pack_words(design, job.writes)
    path.write_text("".join(f"{w:x}\n" for w in words))
    return len(words)


def run_jobs(
    design: BuiltDesign, jobs: Sequence[Job], *, workdir: Path | None = None, waves: bool = False
) -> tuple[list[JobResult], RunStats]:
    """Run ``jobs`` in order in one simulator process; return one :class:`JobResult` per job."""
    if waves and not design.waves:
        raise SimulationError("waves requested but the design was built without waves")
    own = workdir is None
    # absolute: the simulator runs inside this folder, so a relative path would name a folder inside itself
    work = Path(tempfile.mkdtemp(prefix="dpp-sim-")) if workdir is None else Path(workdir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        manifest: dict[str, Any] = {"counters": design.counters, "jobs": []}
        for i, job in enumerate(jobs):
            n = _write_job(design, job, work / f"job_{i}.hex")
            manifest["jobs"].append(
                {"prog": f"job_{i}.hex", "prog_len": n, "out_len": int(job.out_len), "max_cycles": int(job.max_cycles)}
            )
        (work / "manifest.json").write_text(json.dumps(manifest))
        t0 = time.perf_counter()
        with step(f"simulating {design.design_top} ({len(jobs)} job{'s' if len(jobs) != 1 else ''})"):
            raw = _run_simulator(design, work, waves)
        elapsed = time.perf_counter() - t0
        results = _parse(raw, jobs, work)
        stats = RunStats(
            elapsed,
            sum(r.wall_seconds for r in results),
            sum(r.sim_cycles for r in results),
            sum(r.run_sim_cycles for r in results),
            sum(r.run_cpu_seconds for r in results),
            sum(r.cpu_seconds for r in results),
        )
        return results, stats
    finally:
        if own and not waves:
            shutil.rmtree(work, ignore_errors=True)


def _run_simulator(design: BuiltDesign, work: Path, waves: bool) -> list[dict]:
    from rtl.toolchain import prepare_simulator

    prepare_simulator(design.simulator)
    log = work / "sim.log"
    results_path = work / "results.json"
    try:
        runner = get_sim_runner(design.simulator)
        runner.test(
            test_module="sim.tb_layers",
            hdl_toplevel=design.hdl_toplevel,
            hdl_toplevel_lang="verilog",
            build_dir=design.build_dir,
            test_dir=work,
            waves=waves,
            extra_env={MANIFEST_ENV: str(work / "manifest.json")},
            results_xml=str(work / "results.xml"),
            log_file=log,
            timescale=TIMESCALE,
        )
    except (RuntimeError, SystemExit, OSError) as exc:
        if not results_path.is_file():
            raise SimulationError(f"simulation of {design.design_top} failed ({exc}): {log_summary(log)}") from None
    if not results_path.is_file():
        raise SimulationError(f"simulation of {design.design_top} ended without results: {log_summary(log)}")
    return json.loads(results_path.read_text())["results"]


def _read_memh(path: Path) -> list[int | None]:
    """Values of a ``$writememh`` file; ``None`` for a word with X/Z bits (Icarus: unwritten memory words).

    Icarus also adds ``// 0x...`` address comments.
    """
    toks = [tok for line in path.read_text().splitlines() for tok in line.split("//")[0].split()]
    return [None if any(c in "xXzZ" for c in tok) else int(tok, 16) for tok in toks]


def _parse(raw: list[dict], jobs: Sequence[Job], work: Path) -> list[JobResult]:
    out = []
    for i, (res, job) in enumerate(zip(raw, jobs)):
        if res["timeout"]:
            raise SimulationError(f"simulation timed out: job {i} did not raise done within {job.max_cycles} cycles")
        words = []
        if res["out"]:
            words = _read_memh(work / res["out"])
            if len(words) != job.out_len:
                raise SimulationError(f"job {i}: read {len(words)} output words, expected {job.out_len}")
        out.append(
            JobResult(
                words,
                {k: int(v) for k, v in res["counters"].items()},
                int(res["run_cycles"]),
                int(res["sim_cycles"]),
                float(res["wall_seconds"]),
                int(res["run_sim_cycles"]),
                float(res["run_wall_seconds"]),
                float(res["run_cpu_seconds"]),
                float(res["cpu_seconds"]),
            )
        )
    if len(out) != len(jobs):
        raise SimulationError(f"simulation ran {len(out)} of {len(jobs)} jobs")
    return out


def to_signed(words: Sequence[int], bits: int) -> np.ndarray:
    """Unsigned ``bits``-bit words read back from the harness as signed int64."""
    a = np.asarray(words, dtype=object)
    half, full = 1 << (bits - 1), 1 << bits
    return np.array([w - full if w >= half else w for w in a], dtype=np.int64)


__all__ = ["Job", "JobResult", "RunStats", "run_jobs", "pack_words", "to_signed"]
