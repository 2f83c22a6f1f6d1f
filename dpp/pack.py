"""Pack a random layer as k-of-n, save, reload and check it against the reference model (the work of ``dpp pack``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dpp.checks import check_int, check_k_n
from dpp.errors import DPPError
from dpp.kofn import CSRMatrix, KofNMatrix, StorageBits, dense_storage_bits
from dpp.limits import MAX_BLOCK, MAX_N, WEIGHT_BITS_RANGE
from dpp.reference import linear_int


@dataclass
class PackResult:
    """What ``dpp pack`` measured: the packed matrix, its baselines' storage and the agreement check."""

    kofn: KofNMatrix
    csr: CSRMatrix
    storage: dict[str, StorageBits]
    outputs_agree: bool
    manifest: Path


def run_pack(
    rows: int, cols: int, k: int, n: int, block: int, weight_bits: int, seed: int, out: Path, batch: int = 4
) -> PackResult:
    """Do the work of ``dpp pack`` and return the numbers (the command only prints them)."""
    rows = check_int("rows", rows, lo=1)
    cols = check_int("cols", cols, lo=1)
    k, n = check_k_n(k, n)
    check_int("n", n, hi=MAX_N)
    block = check_int("block", block, lo=1, hi=MAX_BLOCK)
    if n * block > cols:
        raise DPPError(
            f"a group of n*block = {n * block} columns is wider than the layer (cols={cols}): choose n*block <= cols"
        )
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
    args: dict[str, Any] = dict(bias=bias, multiplier=181, shift=12, out_bits=8, relu=False)
    outs = [linear_int(x, W, **args) for W in (reloaded, csr, pruned)]
    agree = reloaded == kofn and all(np.array_equal(outs[0], o) for o in outs[1:])
    storage = {
        "k-of-n": reloaded.storage_bits(),
        "csr": csr.storage_bits(),
        "dense": dense_storage_bits(rows, cols, weight_bits),
    }
    return PackResult(reloaded, csr, storage, agree, manifest)
