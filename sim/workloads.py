"""Layers to simulate: realistic integer weights, their k-of-n / dense / CSR forms, inputs and requantisation.

Weights imitate a trained layer quantised with one scale per layer: each row has its own spread (log-normal
row scales, ``row_spread`` = sigma of log scale), so some rows are much larger than others. That matters for
unstructured pruning: a global magnitude threshold keeps more weights in large rows, which unbalances CSR
rows, exactly as in trained networks. k-of-n keeps exactly k per group whatever the scales.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dpp.checks import signed_range
from dpp.errors import DPPError
from rtl.archs import arch_named
from rtl.params import ArrayParams
from sim.run import Layer


def array_params(
    arch: str,
    k: int,
    n: int,
    pes: int,
    rows: int,
    cols: int,
    batch: int,
    *,
    block: int = 1,
    weight_bits: int = 8,
    act_bits: int = 8,
    out_bits: int = 8,
    act_banks: int = 0,
) -> ArrayParams:
    """A build sized to one layer, at the same ``pes * k`` multipliers whatever the architecture.

    The arrays that do not depend on ``n`` (dense, CSR: density is a property of their weights;
    :attr:`rtl.archs.ArrayArch.takes_n`) get the canonical ``n = k + 1``: comparisons at 2/8 and 2/4 share one
    dense and one CSR build; ``block`` applies where the entry takes it. ``act_banks`` (csr only): 0 = per-lane
    activation replicas, B = one activation memory in B banks.
    """
    entry = arch_named(arch)  # its banked variant takes the same n and block
    return ArrayParams(
        arch=arch,
        k=k,
        n=n if entry.takes_n else k + 1,
        pes=pes,
        weight_bits=weight_bits,
        act_bits=act_bits,
        out_bits=out_bits,
        block=block if entry.takes_block else 1,
        max_rows=rows,
        max_cols=cols,
        max_batch=batch,
        act_banks=act_banks,
    )


def parse_act_banks(text: str, lanes: int) -> int:
    """``--act-banks``: ``"0"`` (per-lane replicas), a power of two ``"32"``, or ``"Nx"`` = the smallest power
    of two >= ``N * lanes`` (``lanes = pes * k``; exact for power-of-two lanes, e.g. 8 PEs)."""
    spec = str(text).strip().lower()
    try:
        if spec.endswith("x"):
            factor = float(spec[:-1])
            if not factor > 0:
                raise ValueError
            return 1 << max(0, math.ceil(math.log2(factor * lanes)))
        banks = int(spec)
    except ValueError:
        raise DPPError(
            f"act_banks must be 0, a power of two or a multiple of the lanes such as 2x (got act_banks={text!r})"
        ) from None
    if banks < 0 or banks & (banks - 1):
        raise DPPError(f"act_banks must be 0 (per-lane replicas) or a power of two (got act_banks={banks})")
    return banks


def realistic_weights(
    rng: np.random.Generator, rows: int, cols: int, weight_bits: int, row_spread: float = 0.5
) -> np.ndarray:
    """Integer weights ``round(N(0,1) * row_scale)`` clipped to signed ``weight_bits``; rows differ in scale."""
    lo, hi = signed_range(weight_bits)
    row_scale = np.exp(rng.normal(0.0, row_spread, size=(rows, 1)))
    w = rng.normal(0.0, 1.0, size=(rows, cols)) * row_scale * (hi / 4.0)
    return np.clip(np.rint(w), lo, hi).astype(np.int64)


def weights_for(arch: str, w: np.ndarray, k: int, n: int, block: int, weight_bits: int) -> Any:
    """The layer ``w`` as each array takes it, at the same density ``k/n`` (:meth:`rtl.archs.ArrayArch.prune`).

    kofn: magnitude k-of-n; dense: that k-of-n matrix stored densely (zeros included, same function);
    csr: unstructured global magnitude pruning of ``w`` to density ``k/n`` (its own mask, same density).
    """
    return arch_named(arch).prune(w, k, n, block, weight_bits)


def requant_for(fan_in: int, weight_bits: int, act_bits: int, out_bits: int) -> tuple[int, int]:
    """``(multiplier, shift)`` mapping a typical accumulator (about 2 sigma) onto the output range."""
    sigma = math.sqrt(max(1, fan_in)) * (1 << (weight_bits - 2)) * (1 << (act_bits - 2))
    ratio = (1 << (out_bits - 1)) / (2.0 * sigma)
    shift = min(48, max(1, 14 - math.floor(math.log2(ratio))))
    multiplier = int(min((1 << 15) - 1, max(1, round(ratio * (1 << shift)))))
    return multiplier, shift


def random_inputs(
    rng: np.random.Generator, rows: int, cols: int, batch: int, act_bits: int, acc_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """Activations uniform over signed ``act_bits`` and biases well inside the accumulator."""
    lo, hi = signed_range(act_bits)
    x = rng.integers(lo, hi + 1, size=(batch, cols))
    blim = 1 << min(acc_bits - 2, 20)
    bias = rng.integers(-blim, blim, size=rows)
    return x.astype(np.int64), bias.astype(np.int64)


def layer_for(
    params: ArrayParams,
    w: np.ndarray,
    rng: np.random.Generator,
    batch: int,
    *,
    n: int | None = None,
    block: int | None = None,
    relu: bool = True,
) -> Layer:
    """A complete layer for ``params``' array from dense weights ``w``, pruned to density ``k / n``.

    ``n`` and ``block`` default to the build's; the baselines pass the k-of-n layer's ``n`` and ``block``.
    """
    n = params.n if n is None else n
    block = params.block if block is None else block
    W = params.array_arch.prune(w, params.k, n, block, params.weight_bits)
    rows, cols = w.shape
    x, bias = random_inputs(rng, rows, cols, batch, params.act_bits, params.acc_bits)
    fan_in = math.ceil(cols * params.k / n)
    multiplier, shift = requant_for(fan_in, params.weight_bits, params.act_bits, params.out_bits)
    return Layer(W, x, bias, multiplier, shift, relu)
