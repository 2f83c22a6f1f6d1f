"""A cached simulator build whose run path points into a removed virtual environment is rebuilt, not handed out
to fail with "cannot open shared object file" (sim.elf_runpath, sim.build.cached_build)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sim.build import cached_build
from sim.elf_runpath import missing_runpath_dirs, runpath_dirs

needs_cc = pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")


def compile_with_runpath(out: Path, *dirs: Path) -> Path:
    src = out.parent / "main.c"
    src.write_text("int main(void) { return 0; }\n")
    flags = [f"-Wl,-rpath,{d}" for d in dirs]
    subprocess.run(["cc", str(src), "-o", str(out), "-Wl,--enable-new-dtags", *flags], check=True)
    return out


@needs_cc
def test_runpath_dirs_read_from_the_elf(tmp_path) -> None:
    a, b = tmp_path / "libs a", tmp_path / "b"
    a.mkdir()
    exe = compile_with_runpath(tmp_path / "tb", a, b)
    assert runpath_dirs(exe) == [str(a), str(b)]
    assert missing_runpath_dirs(tmp_path) == [str(b)]
    assert runpath_dirs(tmp_path / "main.c") == []  # not an ELF file
    assert runpath_dirs(tmp_path / "nothing") == []


@needs_cc
def test_entry_linking_a_removed_environment_is_rebuilt(tmp_path, capsys) -> None:
    root, venv = tmp_path / "cache", tmp_path / "venv" / "libs"
    venv.mkdir(parents=True)
    builds: list[Path] = []

    def build(stage: Path) -> dict:
        builds.append(stage)
        compile_with_runpath(stage / "dpp_tb", venv)
        return {"n": len(builds)}

    first, cached = cached_build(root, "k", "stamp.json", build)
    assert not cached and len(builds) == 1
    assert cached_build(root, "k", "stamp.json", build) == (first, True) and len(builds) == 1

    shutil.rmtree(tmp_path / "venv")  # the environment the binary was built from is gone
    again, cached = cached_build(root, "k", "stamp.json", build)
    assert again == first and not cached and len(builds) == 2
    assert "no longer exists" in capsys.readouterr().err
    assert json.loads((again / "stamp.json").read_text())["n"] == 2
