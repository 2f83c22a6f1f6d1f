"""``dpp pack``: random layer → magnitude k-of-n → save → reload → check against the reference model."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dpp.pack import run_pack
from dpp.paths import check_out_dir


def pack(
    rows: int = typer.Option(..., "--rows", help="Output rows of the layer."),
    cols: int = typer.Option(..., "--cols", help="Input columns (the reduction dimension)."),
    k: int = typer.Option(..., "--k", help="Kept slots per group (1 <= k < n)."),
    n: int = typer.Option(..., "--n", help="Slots per group (2..64, the hardware arrays' limit; n*block <= cols)."),
    block: int = typer.Option(1, "--block", help="Columns per slot: 1 = weight, kh*kw = kernel granularity."),
    weight_bits: int = typer.Option(8, "--weight-bits", help="Signed bits per weight (2..16)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random weights and inputs."),
    out: Path = typer.Option(..., "--out", help="Folder for kofn.npz + kofn.json."),
) -> None:
    """Pack a random layer as k-of-n, save, reload, and check it against the integer reference model."""
    out = check_out_dir(out)
    res = run_pack(rows, cols, k, n, block, weight_bits, seed, out)
    console = Console()
    kofn = res.kofn
    table = Table(title=f"{rows}x{cols} layer, k={k} of n={n}, block={block}, {weight_bits}-bit weights")
    for col in ("format", "density", "kept weights", "total bits", "bits / kept weight", "bound bits / kept"):
        table.add_column(col, justify="right" if col != "format" else "left")
    for name, sb in res.storage.items():
        density = {"k-of-n": kofn.density, "csr": res.csr.density, "dense": 1.0}[name]
        bound = f"{sb.bound_bits_per_kept_weight:.3f}" if name == "k-of-n" else "-"
        table.add_row(
            name, f"{density:.4f}", str(sb.kept_weights), str(sb.total_bits), f"{sb.bits_per_kept_weight:.3f}", bound
        )
    console.print(table)
    console.print(f"saved {res.manifest}")
    verdict = "[green]identical[/green]" if res.outputs_agree else "[red]MISMATCH[/red]"
    console.print(f"reference model on k-of-n, CSR and dense forms after reload: {verdict}")
    if not res.outputs_agree:
        raise typer.Exit(1)
