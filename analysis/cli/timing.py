"""``dpp timing``: Fmax, utilisation and critical path of one array from place-and-route (or OpenSTA)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from dpp.checks import check_int
from dpp.errors import DPPError
from dpp.paths import check_out_file
from dpp.serialize import atomic_write_text
from rtl.params import ArrayParams

TIMING_SCHEMA = "dpp.timing"
TIMING_SCHEMA_VERSION = 1


def format_report(r: Any) -> list[str]:
    """The lines ``dpp timing`` prints for a :class:`analysis.timing.TimingReport` that fits."""
    counters = "with" if r.counters else "without"
    lines = [
        f"{r.top} on {r.part} ({r.flow}, seed {r.seed}, target {r.target_mhz:g} MHz"
        f"{'' if r.flow == 'osu018' else ', ' + r.router}, {counters} the performance counters)"
    ]
    cp = r.critical_path
    delay = (
        f" (critical path {cp.delay_ns:.2f} ns: {cp.logic_ns:.2f} logic + {cp.routing_ns:.2f} routing)"
        if cp and r.flow != "osu018"
        else ""
    )
    lines.append(f"Fmax: {r.fmax_mhz:.2f} MHz{delay}")
    if r.flow == "osu018":
        lines.append(
            f"cells: {r.cell_area_um2 or 0:.0f} um^2 without the harness, {r.ffs} flip-flops "
            f"({r.harness_ffs} in the harness)"
        )
    else:
        lines.append(
            f"utilisation: {r.luts} LUT4, {r.ffs} FF ({r.harness_ffs} in the harness), "
            f"{r.dsp_blocks} DSP/MULT, {r.bram_blocks} BRAM"
        )
    if cp:
        lines += [f"critical path through: {' > '.join(cp.parts)}", f"  from {cp.start}", f"  to   {cp.end}"]
    lines.append("tools: " + ", ".join(f"{k} {v}" for k, v in r.tool_versions.items()))
    return lines


def timing(
    arch: str = typer.Option(..., "--arch", help="kofn (the design under study), dense or csr (baselines)."),
    k: int = typer.Option(..., "--k", help="Multipliers per PE (and kept slots per group for kofn)."),
    n: int = typer.Option(..., "--n", help="Slots per group (kofn); any k < n for the baselines."),
    pes: int = typer.Option(..., "--pes", help="PEs (output rows in parallel)."),
    weight_bits: int = typer.Option(8, "--weight-bits", help="Signed bits per weight."),
    act_bits: int = typer.Option(8, "--act-bits", help="Signed bits per activation."),
    out_bits: int = typer.Option(8, "--out-bits", help="Signed bits per output."),
    block: int = typer.Option(1, "--block", help="Columns per slot (kofn only)."),
    acc_bits: int = typer.Option(0, "--acc-bits", help="Accumulator bits; 0 = the reference model's safe width."),
    max_rows: int = typer.Option(64, "--max-rows", help="Largest layer: output rows."),
    max_cols: int = typer.Option(64, "--max-cols", help="Largest layer: input columns."),
    max_batch: int = typer.Option(4, "--max-batch", help="Largest batch of input vectors per run."),
    max_nnz: int = typer.Option(0, "--max-nnz", help="csr: most non-zeros one PE stores (0 = full rows)."),
    act_banks: str = typer.Option(
        "0",
        "--act-banks",
        help="csr: 0 = a private activation replica per lane; B "
        "(a power of two) or Nx (N times the pes*k lanes) = one memory in B banks.",
    ),
    flow: str = typer.Option(
        "ecp5",
        "--flow",
        help="ecp5 (LFE5U-85F), ice40 (iCE40HX8K) or osu018 (OSU 0.18 um "
        "cells + OpenSTA; needs apt-get install opensta qflow-tech-osu018).",
    ),
    seed: int = typer.Option(1, "--seed", help="nextpnr placement seed."),
    router: str = typer.Option(
        "router1",
        "--router",
        help="nextpnr router: router1 (its default) or router2 (negotiated congestion: finishes crowded designs, "
        "e.g. a banked CSR crossbar, that router1 does not).",
    ),
    target_mhz: float = typer.Option(
        0.0,
        "--target-mhz",
        help="Clock nextpnr aims at; 0 = the flow's default "
        "(ecp5 100, ice40 50, osu018 100). Fmax is reported either way.",
    ),
    counters: bool = typer.Option(
        False,
        "--counters/--no-counters",
        help="Keep the seven 48-bit performance "
        "counters (as simulated) or leave them out (default: the array as deployed).",
    ),
    json_path: Path | None = typer.Option(None, "--json", help="Also write the result as JSON here."),
    timeout: float = typer.Option(3600.0, "--timeout", help="Seconds each tool may run before it is stopped."),
    cache: bool = typer.Option(True, "--cache/--no-cache", help="Reuse a cached result for the same design."),
) -> None:
    """Place-and-route one array and print its Fmax, utilisation and critical path (slow: minutes).

    Every value is checked before any tool runs; each tool run shows its progress on stderr."""
    from analysis.timing import check_flow, check_router, timing_of_params
    from sim.workloads import parse_act_banks

    # every check before any tool runs: a bad value costs nothing
    check_flow(flow)
    check_int("--k", k, lo=1)
    check_int("--pes", pes, lo=1)
    check_int("--seed", seed, lo=0)
    check_router(router, flow, "--router")
    if not target_mhz >= 0:
        raise DPPError(f"--target-mhz must be >= 0 (got {target_mhz})")
    if not timeout > 0:
        raise DPPError(f"--timeout must be > 0 seconds (got {timeout})")
    params = ArrayParams(
        arch=arch,
        k=k,
        n=n,
        pes=pes,
        weight_bits=weight_bits,
        act_bits=act_bits,
        out_bits=out_bits,
        block=block,
        acc_bits=acc_bits,
        max_rows=max_rows,
        max_cols=max_cols,
        max_batch=max_batch,
        max_nnz=max_nnz,
        act_banks=parse_act_banks(act_banks, pes * k) if arch == "csr" else _no_banks(act_banks, arch),
    )
    out = check_out_file(json_path, "--json") if json_path is not None else None
    if flow == "osu018":
        from analysis.timing_asic import require_osu018

        require_osu018()

    report = timing_of_params(
        params,
        flow=flow,
        seed=seed,
        target_mhz=target_mhz or None,
        counters=counters,
        timeout_s=timeout,
        use_cache=cache,
        router=router,
    )
    if out is not None:
        doc = {
            "schema": TIMING_SCHEMA,
            "schema_version": TIMING_SCHEMA_VERSION,
            "params": params.to_dict(),
            **report.to_dict(),
        }
        atomic_write_text(out, json.dumps(doc, indent=1, sort_keys=True) + "\n")
    report.raise_if_unfit()
    for line in format_report(report):
        typer.echo(line)
    if out is not None:
        typer.echo(f"wrote {out}")


def _no_banks(text: str, arch: str) -> int:
    """``--act-banks`` for a non-CSR array: only 0 makes sense."""
    if str(text).strip() not in ("0", ""):
        raise DPPError(f"--act-banks applies to arch 'csr' only (got --act-banks {text} for arch={arch!r})")
    return 0
