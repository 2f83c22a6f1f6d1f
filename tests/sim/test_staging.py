"""A build cache whose path holds a space: Verilator's make cannot build there, so the build is staged elsewhere."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from dpp.errors import SimulationError
from sim.build import _staging_dir, build_design
from sim.jobs import Job, run_jobs, to_signed
from tests.sim.toy_array import TOY_DEPTHS, toy_verilog


def test_no_space_builds_in_place(tmp_path: Path) -> None:
    tmp = tmp_path / "cache" / "tmp-x"
    assert _staging_dir(tmp_path / "cache", tmp) == tmp


def test_space_stages_in_a_temporary_folder(tmp_path: Path) -> None:
    root = tmp_path / "my cache"
    stage = _staging_dir(root, root / "tmp-x")
    try:
        assert stage.is_dir() and stage.is_absolute() and not any(c.isspace() for c in str(stage))
        assert stage.name.startswith("dpp-build-") and root not in stage.parents
    finally:
        stage.rmdir()


def test_space_everywhere_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spaced_tmp = tmp_path / "tmp dir"
    spaced_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spaced_tmp))
    with pytest.raises(SimulationError, match=r"both paths hold a space.*set DPP_SIM_CACHE or TMPDIR"):
        _staging_dir(tmp_path / "my cache", tmp_path / "my cache" / "tmp-x")
    assert list(spaced_tmp.iterdir()) == []  # the staging folder it made is removed again


def test_build_into_a_cache_with_a_space_runs_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "dpp sim cache"
    monkeypatch.setenv("DPP_SIM_CACHE", str(cache))
    design = build_design(toy_verilog, "toy_array", {"toy": toy_verilog(), "staging": 1}, **TOY_DEPTHS)
    assert not design.cached and cache in design.build_dir.parents
    assert [p.name for p in cache.iterdir() if ".tmp" in p.name] == []  # nothing half-built left
    values, scale = [3, -7, 12], 5
    writes = [(0, i, v) for i, v in enumerate(values)] + [(1, 0, len(values)), (1, 1, scale)]
    (result,), _ = run_jobs(design, [Job(writes, len(values), 1000)], workdir=tmp_path / "work dir")
    assert to_signed(result.out_words, 16).tolist() == [15, -35, 60]
