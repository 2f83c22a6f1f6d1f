"""``dpp rtl``: generate the Verilog of one array (kofn, dense or csr) plus params.json, interface.json and a C
header, and lint it."""

from __future__ import annotations

from pathlib import Path

import typer

from dpp.paths import check_out_dir
from rtl.params import ArrayParams
from rtl.verilog import run_rtl


def rtl(
    arch: str = typer.Option(..., "--arch", help="kofn (the design under study), dense or csr (baselines)."),
    k: int = typer.Option(..., "--k", help="Multipliers per PE (and kept slots per group for kofn)."),
    n: int = typer.Option(..., "--n", help="Slots per group (kofn, 2..64); any k < n for the baselines."),
    pes: int = typer.Option(..., "--pes", help="PEs (output rows in parallel)."),
    weight_bits: int = typer.Option(8, "--weight-bits", help="Signed bits per weight."),
    act_bits: int = typer.Option(8, "--act-bits", help="Signed bits per activation."),
    out_bits: int = typer.Option(8, "--out-bits", help="Signed bits per output."),
    block: int = typer.Option(1, "--block", help="Columns per slot (kofn only): 1, or kh*kw for kernels."),
    acc_bits: int = typer.Option(
        0, "--acc-bits", help="Accumulator bits; 0 = the reference model's safe width (for --bias-bits too)."
    ),
    bias_bits: int = typer.Option(
        0,
        "--bias-bits",
        help="Signed bits every bias may take without overflow; 0 = "
        "the widest the accumulator leaves room for (interface.json: bias_range).",
    ),
    max_rows: int = typer.Option(64, "--max-rows", help="Largest layer: output rows."),
    max_cols: int = typer.Option(64, "--max-cols", help="Largest layer: input columns."),
    max_batch: int = typer.Option(4, "--max-batch", help="Largest batch of input vectors per run."),
    max_nnz: int = typer.Option(0, "--max-nnz", help="csr: most non-zeros one PE stores (0 = full rows)."),
    act_banks: str = typer.Option(
        "0",
        "--act-banks",
        help="csr: 0 = a private activation replica per lane; "
        "B (power of two) or Nx (N times the pes*k lanes) = ONE activation memory in "
        "B banks, bank conflicts stall.",
    ),
    out: Path = typer.Option(..., "--out", help="Folder for <top>.v, params.json, interface.json and <top>.h."),
    lint: bool = typer.Option(True, "--lint/--no-lint", help="Run verilator --lint-only on the result."),
) -> None:
    """Generate the Verilog of one array from Amaranth (deterministic, parameters in its header)."""
    from sim.workloads import parse_act_banks

    out = check_out_dir(out)
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
        bias_bits=bias_bits,
        max_rows=max_rows,
        max_cols=max_cols,
        max_batch=max_batch,
        max_nnz=max_nnz,
        act_banks=parse_act_banks(act_banks, pes * k),
    )
    path, result = run_rtl(params, out, lint)
    written = ", ".join(str(path.with_name(f)) for f in ("params.json", "interface.json", f"{params.top_name}.h"))
    typer.echo(f"wrote {path}, {written} (top module {params.top_name}; biases in {list(params.bias_range)})")
    if result is not None:
        from rtl.verilog import LINT_WAIVERS

        typer.echo(f"verilator lint: clean (waived: {', '.join(LINT_WAIVERS)})")
