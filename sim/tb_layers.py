"""The cocotb test run inside the simulator: play every job of a manifest through the harness.

Per job it moves ``job_<i>.hex`` to ``prog.hex``, sets the harness registers, toggles ``tb_go`` and awaits
``tb_done``: no Python runs per clock cycle. It then reads the counters and moves ``out.hex`` aside. Each job's
wall and CPU time (of the simulator process: what the simulation costs, whatever else the machine runs) are
taken for the whole job and for its compute phase (``tb_running``).
The results go to ``results.json`` (written to a temporary file, then renamed). A timeout ends the run: the
design may be wedged, and the caller reports it.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import cocotb
from cocotb.triggers import FallingEdge, RisingEdge

from sim.wrapper import OUT_FILE, PROG_FILE

MANIFEST_ENV = "DPP_SIM_MANIFEST"


def _u(handle) -> int:  # noqa: ANN001 - a cocotb handle
    return int(handle.value)


@cocotb.test()
async def run_jobs(dut) -> None:  # noqa: ANN001 - cocotb passes the top handle
    """Run all jobs of the manifest named by ``$DPP_SIM_MANIFEST``."""
    manifest_path = Path(os.environ[MANIFEST_ENV])
    manifest = json.loads(manifest_path.read_text())
    work = manifest_path.parent
    results = []
    go = 0
    for i, job in enumerate(manifest["jobs"]):
        os.replace(work / job["prog"], work / PROG_FILE)
        out = work / OUT_FILE
        if out.exists():
            out.unlink()
        dut.tb_prog_len.value = job["prog_len"]
        dut.tb_out_len.value = job["out_len"]
        dut.tb_max_cycles.value = job["max_cycles"]
        go ^= 1
        t0, cpu0 = time.perf_counter(), time.process_time()
        clock0 = _u(dut.tb_clock_count)
        dut.tb_go.value = go
        await RisingEdge(dut.tb_running)
        t1, cpu1, clock1 = time.perf_counter(), time.process_time(), _u(dut.tb_clock_count)
        await FallingEdge(dut.tb_running)
        t2, cpu2, clock2 = time.perf_counter(), time.process_time(), _u(dut.tb_clock_count)
        await RisingEdge(dut.tb_done)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        res: dict[str, Any] = {
            "run_wall_seconds": t2 - t1,
            "run_cpu_seconds": cpu2 - cpu1,
            "cpu_seconds": cpu,
            "run_sim_cycles": clock2 - clock1,
            "timeout": bool(_u(dut.tb_timeout)),
            "run_cycles": _u(dut.tb_run_cycles),
            "sim_cycles": _u(dut.tb_clock_count) - clock0,
            "wall_seconds": wall,
            "counters": {name: _u(getattr(dut, name)) for name in manifest["counters"]},
            "out": None,
        }
        if not res["timeout"] and job["out_len"]:
            res["out"] = f"out_{i}.hex"
            os.replace(out, work / res["out"])
        results.append(res)
        if res["timeout"]:
            break
    tmp = work / "results.json.tmp"
    tmp.write_text(json.dumps({"results": results}))
    os.replace(tmp, work / "results.json")
