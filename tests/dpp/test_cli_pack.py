"""``dpp --version`` and ``dpp pack``, run as a user would (a subprocess of the installed entry point)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dpp import __version__
from dpp.kofn import KofNMatrix
from dpp.pack import run_pack


def _dpp(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("dpp") or str(Path(sys.executable).with_name("dpp"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=120)


def test_version() -> None:
    r = _dpp("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"dpp {__version__}"


def test_pack_writes_reloadable_matrix_and_agrees(tmp_path: Path) -> None:
    r = _dpp(
        "pack",
        "--rows",
        "16",
        "--cols",
        "50",
        "--k",
        "2",
        "--n",
        "8",
        "--block",
        "1",
        "--seed",
        "3",
        "--weight-bits",
        "4",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    assert "identical" in r.stdout and "k-of-n" in r.stdout and "csr" in r.stdout
    m = KofNMatrix.load(tmp_path / "kofn")
    assert (m.rows, m.cols, m.k, m.n, m.weight_bits) == (16, 50, 2, 8, 4)
    # bits per kept weight of k-of-n: 4 value bits + 3 index bits, as the table prints
    assert "7.000" in r.stdout


def test_run_pack_numbers(tmp_path: Path) -> None:
    res = run_pack(8, 32, 1, 4, 2, 8, 0, tmp_path)
    assert res.outputs_agree
    assert res.storage["k-of-n"].bits_per_kept_weight == 8 + 2 / 2  # 2 index bits shared by a 2-wide block
    assert res.storage["dense"].total_bits == 8 * 32 * 8


@pytest.mark.parametrize(
    "args, msg",
    [
        (["--k", "8", "--n", "8"], "k must be < n (got k=8, n=8)"),
        (["--k", "0", "--n", "8"], "k must be >= 1 (got k=0)"),
        (["--k", "1", "--n", "1"], "n must be >= 2 (got n=1)"),
        (["--k", "1", "--n", "4", "--cols", "0"], "cols must be >= 1 (got cols=0)"),
        (["--k", "1", "--n", "4", "--block", "0"], "block must be >= 1 (got block=0)"),
        (["--k", "1", "--n", "4", "--weight-bits", "20"], "weight_bits must be <= 16 (got weight_bits=20)"),
    ],
)
def test_pack_bad_arguments_one_clear_line(tmp_path: Path, args, msg) -> None:
    base = {"--rows": "4", "--cols": "16"}
    for i in range(0, len(args), 2):
        base[args[i]] = args[i + 1]
    flat = [t for kv in base.items() for t in kv]
    r = _dpp("pack", *flat, "--out", str(tmp_path / "o"))
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: {msg}"
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o").exists()
