"""Ctrl-C during a sweep on a local Dask cluster: one line, exit 130, finished points kept, the rerun resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analysis.cli import INTERRUPTED

# Area points: each synthesises with Yosys for seconds, so the sweep is still running when the signal comes.
SWEEP = """name: interrupt
seed: 0
batch: 2
grid: {arch: [kofn, dense, csr], k: [1, 2], n: [4], pes: [2, 4]}
layers:
  - {name: fc1, rows: 8, cols: 16}
rtl_sample: 0
area: {enabled: true, flows: [ice40]}
"""


def _sweep(cwd: Path, **kw: object) -> subprocess.Popen:
    # a private area cache: with the user's (warm) one every point is ready at once and no signal ever lands
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
        "DPP_AREA_CACHE": str(cwd / "area-cache"),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "analysis.cli", "sweep", "s.yaml", "--out", "sw", "--workers", "2", "--no-progress"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )  # type: ignore[call-overload]


@pytest.mark.slow
def test_ctrl_c_on_a_dask_sweep_is_one_line_and_resumes(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(SWEEP)
    proc = _sweep(tmp_path, start_new_session=True)
    points = tmp_path / "sw" / "points"
    deadline = time.monotonic() + 600
    while not (points.is_dir() and any(points.glob("*.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no sweep point finished within 10 minutes"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group, workers too
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, (out, err)
    assert err.strip() == INTERRUPTED, err
    kept = sorted(p.name for p in points.glob("*.json"))
    assert 1 <= len(kept) < 12

    again = _sweep(tmp_path)
    out, err = again.communicate(timeout=1200)
    assert again.returncode == 0, err
    assert f"12 points ({12 - len(kept)} computed now, {len(kept)} reused" in " ".join(out.split()), out
