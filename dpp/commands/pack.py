"""``dpp pack``: random layer → magnitude k-of-n → save → reload → check against the reference model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from dpp.checks import check_int, check_k_n
from dpp.errors import DPPError
from dpp.limits import MAX_BLOCK, MAX_N, WEIGHT_BITS_RANGE
from dpp.paths import check_out_dir
from dpp.kofn import CSRMatrix, KofNMatrix, StorageBits, dense_storage_bits
from dpp.reference import linear_int


@dataclass
class PackResult:
    """What ``dpp pack`` measured: the packed matrix, its baselines' storage and the agreement check."""

    kofn: KofNMatrix
    csr: CSRMatrix
    storage: dict[str, StorageBits]
    outputs_agree: bool
    manifest: Path


def run_pack(rows: int, cols: int, k: int, n: int, block: int, weight_bits: int, seed: int, out: Path,
             batch: int = 4) -> PackResult:
    """Do the work of ``dpp pack`` and return the numbers (the command only prints them)."""
    rows = check_int("rows", rows, lo=1)
    cols = check_int("cols", cols, lo=1)
    k, n = check_k_n(k, n)
    check_int("n", n, hi=MAX_N)
    block = check_int("block", block, lo=1, hi=MAX_BLOCK)
    if n * block > cols:
        raise DPPError(f"a group of n*block = {n * block} columns is wider than the layer (cols={cols}): "
                       f"choose n*block <= cols")
    check_int("weight_bits", weight_bits, lo=WEIGHT_BITS_RANGE[0], hi=WEIGHT_BITS_RANGE[1])
    rng = np.random.default_rng(seed)
    lim = 1 << (weight_bits - 1)
    weights = rng.integers(-lim, lim, size=(rows, cols))
    kofn = KofNMatrix.prune_magnitude(weights, k, n, block=block, weight_bits=weight_bits)
    manifest = kofn.save(Path(out) / "kofn")
    reloaded = KofNMatrix.load(Path(out) / "kofn")
    pruned = reloaded.to_dense()
    csr = CSRMatrix.from_dense(pruned, reloaded.mask(), weight_bits)
    x = rng.integers(-128, 128, size=(batch, cols))
    bias = rng.integers(-1000, 1000, size=rows)
    args = dict(bias=bias, multiplier=181, shift=12, out_bits=8, relu=False)
    outs = [linear_int(x, W, **args) for W in (reloaded, csr, pruned)]
    agree = reloaded == kofn and all(np.array_equal(outs[0], o) for o in outs[1:])
    storage = {
        "k-of-n": reloaded.storage_bits(),
        "csr": csr.storage_bits(),
        "dense": dense_storage_bits(rows, cols, weight_bits),
    }
    return PackResult(reloaded, csr, storage, agree, manifest)


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
        table.add_row(name, f"{density:.4f}", str(sb.kept_weights), str(sb.total_bits),
                      f"{sb.bits_per_kept_weight:.3f}", bound)
    console.print(table)
    console.print(f"saved {res.manifest}")
    verdict = "[green]identical[/green]" if res.outputs_agree else "[red]MISMATCH[/red]"
    console.print(f"reference model on k-of-n, CSR and dense forms after reload: {verdict}")
    if not res.outputs_agree:
        raise typer.Exit(1)
