"""Bad input as a user meets it: each command run in a subprocess, from a folder that is not the repository,
with relative paths. Every refusal is one line on stderr naming the bad value, exit status 2, before any long
work, and nothing half-written is left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.user_cli import assert_one_line, dpp


@pytest.fixture()
def user(tmp_path: Path) -> Path:
    """A user's working folder with a file named like an output folder."""
    (tmp_path / "afile").write_text("not a folder\n")
    return tmp_path


OUT_IS_A_FILE = [
    ["pack", "--rows", "4", "--cols", "8", "--k", "1", "--n", "4", "--out", "afile"],
    ["rtl", "--arch", "kofn", "--k", "1", "--n", "4", "--pes", "2", "--out", "afile"],
    ["train", "--model", "digits", "--epochs", "1", "--out", "afile"],
    ["report", ".", "--out", "afile"],
    ["flow", "--quick", "--model", "digits", "--out", "afile"],
    ["compare", "--model", "digits", "--out", "afile"],
]


@pytest.mark.parametrize("args", OUT_IS_A_FILE, ids=lambda a: a[0])
def test_out_naming_a_file_is_one_line(user: Path, args: list[str]) -> None:
    proc = dpp(user, *args)
    assert_one_line(proc, f"--out {user / 'afile'} is a file, expected a folder")
    assert (user / "afile").read_text() == "not a folder\n"


@pytest.mark.parametrize(
    "args",
    [
        ["pack", "--rows", "4", "--cols", "8", "--k", "1", "--n", "4", "--out", "/proc/dpp-out"],
        ["train", "--model", "digits", "--epochs", "1", "--out", "/proc/dpp-run"],
        ["sim", "--k", "1", "--n", "4", "--rows", "4", "--cols", "8", "--json", "/proc/dpp.json"],
    ],
    ids=lambda a: a[0],
)
def test_unwritable_out_is_refused_before_the_work(user: Path, args: list[str]) -> None:
    proc = dpp(user, *args)
    assert_one_line(proc, "cannot write in /proc")
    assert "saved" not in proc.stdout and "bit-exact" not in proc.stdout  # refused before any work


def test_sim_json_under_a_file_is_refused_before_building(user: Path) -> None:
    proc = dpp(user, "sim", "--k", "1", "--n", "4", "--rows", "4", "--cols", "8", "--json", "afile/r.json")
    assert_one_line(proc, f"--json {user / 'afile' / 'r.json'}: {user / 'afile'} is a file, expected a folder")
    assert "building" not in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["pack", "--rows", "4", "--cols", "16", "--k", "1", "--n", "4096", "--out", "p"], "n must be <= 64"),
        (
            ["pack", "--rows", "4", "--cols", "16", "--k", "1", "--n", "32", "--out", "p"],
            "a group of n*block = 32 columns is wider than the layer (cols=16)",
        ),
        (
            ["sim", "--arch", "csr", "--block", "9", "--k", "1", "--n", "4", "--rows", "4", "--cols", "8"],
            "block applies to the kofn array only",
        ),
        (
            ["sim", "--k", "1", "--n", "4", "--rows", "4", "--cols", "80", "--max-cols", "64"],
            "cols=80 does not fit the build: max_cols=64",
        ),
        (
            ["sim", "--arch", "csr", "--k", "1", "--n", "4", "--rows", "4", "--cols", "8", "--act-banks", "3"],
            "power of two",
        ),
        (["train", "--method", "dense", "--k", "9", "--n", "4", "--out", "p"], "k must be < n (got k=9, n=4)"),
        (["train", "--n", "128", "--out", "p"], "n must be <= 64 (got n=128)"),
        (["train", "--model", "digits", "--threads", "0", "--out", "p"], "--threads must be >= 1"),
        (["flow", "--quick", "--model", "digits", "--threads", "0", "--out", "p"], "--threads must be >= 1"),
        (["export", "nothing", "--out", "p"], "nothing does not exist"),
        (
            ["rtl", "--arch", "kofn", "--k", "1", "--n", "4", "--pes", "2", "--act-banks", "2y", "--out", "p"],
            "act_banks must be 0, a power of two or a multiple of the lanes",
        ),
        # dpp compare builds every run's configuration before the data loads and the first run trains
        (["compare", "--model", "resnet9", "--out", "p"], "model must be one of"),
        (["compare", "--model", "digits", "--methods", "dpp,foo", "--out", "p"], "(got 'foo')"),
        (["compare", "--model", "digits", "--seeds", "", "--out", "p"], "--seeds needs at least one seed"),
        (
            ["compare", "--model", "digits", "--methods", "magnitude_qat", "--dpp-bits", "", "--out", "p"],
            "magnitude_qat exists only with quantised weights",
        ),
    ],
    ids=lambda a: a[0] if isinstance(a, list) else "",
)
def test_nonsense_is_refused_and_nothing_is_written(user: Path, args: list[str], needle: str) -> None:
    proc = dpp(user, *args)
    assert_one_line(proc, needle)
    assert not (user / "p").exists()


def test_help_states_the_hardware_limit(user: Path) -> None:
    for cmd in ("train", "pack", "rtl", "sim"):
        out = dpp(user, cmd, "--help").stdout
        assert "64" in out, cmd


def test_training_into_a_finished_run_needs_force(user: Path) -> None:
    run = user / "run"
    run.mkdir()
    (run / "result.json").write_text('{"kept": true}\n')
    proc = dpp(user, "train", "--model", "digits", "--epochs", "1", "--out", "run")
    assert_one_line(proc, "already holds result.json: pass --force")
    assert (run / "result.json").read_text() == '{"kept": true}\n'


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A user folder holding ``run/``: the digits model trained for one epoch, with a relative --out."""
    user = tmp_path_factory.mktemp("trained")
    proc = dpp(
        user, "train", "--model", "digits", "--epochs", "1", "--k", "1", "--n", "4", "--bits", "4", "--out", "run"
    )
    assert proc.returncode == 0, proc.stderr
    return user


def test_writing_commands_with_relative_paths(trained: Path) -> None:
    """train (fixture) -> export -> pack -> rtl -> sweep -> report, each with relative paths from a user folder."""
    user = trained
    for args in (
        ["export", "run", "--out", "out/net"],
        ["pack", "--rows", "8", "--cols", "16", "--k", "1", "--n", "4", "--out", "out/pack"],
        ["rtl", "--arch", "kofn", "--k", "1", "--n", "4", "--pes", "2", "--no-lint", "--out", "out/rtl"],
        ["sweep", sweep_file(user), "--out", "out/sweep", "--serial", "--no-progress"],
        ["report", "out/sweep", "--out", "out/report"],
    ):
        proc = dpp(user, *args)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    out = user / "out"
    assert json.loads((out / "net" / "agreement.json").read_text())["agreement"] >= 0.99
    assert (out / "pack" / "kofn.json").is_file() and (out / "rtl" / "kofn_array.v").is_file()
    assert (out / "sweep" / "sweep.csv").is_file() and (out / "report" / "report.html").is_file()


def test_truncated_checkpoint_is_one_line(trained: Path, user: Path) -> None:
    run = user / "run"
    shutil.copytree(trained / "run", run)
    data = (run / "checkpoint.pt").read_bytes()
    (run / "checkpoint.pt").write_bytes(data[: len(data) // 2])
    proc = dpp(user, "export", "run", "--out", "net")
    assert_one_line(proc, f"{run / 'checkpoint.pt'} is not a readable checkpoint")
    assert not (user / "net").exists()


SWEEP = """name: {name}
seed: 0
batch: 2
grid: {{arch: [kofn, dense], k: [1], n: [{n}], pes: [2], weight_bits: [{wb}]}}
layers:
  - {{name: fc1, rows: 8, cols: 16}}
hardware: {{max_rows: {max_rows}}}
rtl_sample: 0
"""


def sweep_file(folder: Path, name: str = "s", n: int = 4, wb: int = 8, max_rows: int = 0) -> str:
    (folder / f"{name}.yaml").write_text(SWEEP.format(name=name, n=n, wb=wb, max_rows=max_rows))
    return f"{name}.yaml"


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(n=4096), "sweep layer 'fc1' (arch=kofn, k=1, n=4096"),
        (dict(wb=17), "weight_bits must be <= 16 (got weight_bits=17)"),
        (
            dict(max_rows=4),
            "sweep layer 'fc1' (arch=kofn, k=1, n=4, block=1, pes=2, weight_bits=8, act_bits=8, "
            "out_bits=8): rows=8 does not fit hardware.max_rows=4",
        ),
    ],
    ids=["n", "weight_bits", "max_rows"],
)
def test_sweep_grid_is_checked_point_by_point_before_evaluation(user: Path, kwargs: dict, needle: str) -> None:
    proc = dpp(user, "sweep", sweep_file(user, **kwargs), "--out", "sw", "--serial", "--no-progress")
    assert_one_line(proc, needle)
    assert not (user / "sw").exists()


def test_sweep_scheduler_unreachable_is_one_line(user: Path) -> None:
    proc = dpp(user, "sweep", sweep_file(user), "--out", "sw", "--scheduler", "tcp://127.0.0.1:9", timeout=60)
    assert_one_line(proc, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_sweep_corrupt_point_is_named_moved_aside_and_recomputed(user: Path) -> None:
    cfg = sweep_file(user)
    assert dpp(user, "sweep", cfg, "--out", "sw", "--serial", "--no-progress").returncode == 0
    points = sorted((user / "sw" / "points").glob("*.json"))
    good = points[0].read_text()
    points[0].write_text(good[: len(good) // 2])
    proc = dpp(user, "sweep", cfg, "--out", "sw", "--serial", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert f"sweep point {points[0]} is corrupt" in proc.stderr
    assert "(1 computed now, 1 reused" in proc.stdout.replace("\n", " ")
    timeless = [{k: v for k, v in json.loads(t).items() if k != "eval_seconds"} for t in (points[0].read_text(), good)]
    assert timeless[0] == timeless[1]
    assert points[0].with_name(points[0].name + ".corrupt").is_file()


def test_sweep_refuses_another_sweeps_folder_without_force(user: Path) -> None:
    assert dpp(user, "sweep", sweep_file(user), "--out", "sw", "--serial", "--no-progress").returncode == 0
    table = (user / "sw" / "sweep.csv").read_text()
    other = sweep_file(user, name="other")
    proc = dpp(user, "sweep", other, "--out", "sw", "--serial", "--no-progress")
    assert_one_line(proc, "holds another sweep (sweep_config.json, name 's')")
    assert (user / "sw" / "sweep.csv").read_text() == table
    assert dpp(user, "sweep", other, "--out", "sw", "--serial", "--no-progress", "--force").returncode == 0


def test_flow_into_a_sweeps_folder_is_refused_before_training(user: Path) -> None:
    assert dpp(user, "sweep", sweep_file(user), "--out", "sw", "--serial", "--no-progress").returncode == 0
    proc = dpp(user, "flow", "--quick", "--model", "digits", "--out", "sw")
    assert_one_line(proc, "holds the table of sweep 's' (sweep_config.json)")
    assert not (user / "sw" / "runs").exists()
