"""One random layer through the simulated arrays, checked bit for bit and counter for counter (``dpp sim``).

The layer is random with realistic per-row weight scales (:mod:`sim.workloads`), pruned to k-of-n for the kofn
array; with ``compare`` the dense array (same k-of-n matrix, stored densely) and the CSR array (unstructured
magnitude pruning at the same density) run with the same ``pes * k`` multipliers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dpp.checks import check_int
from dpp.errors import DPPError, SimulationError
from rtl.archs import ARCHS, ARRAYS, CSR_BANKED, arch_named, check_arch, has_banked

JSON_KEYS = (
    "bit_exact",
    "cycles",
    "model_cycles",
    "mac_ops",
    "weight_bits_read",
    "index_bits_read",
    "act_bits_read",
    "out_bits_written",
)
TRAFFIC = ("weight_bits_read", "index_bits_read", "act_bits_read", "out_bits_written")


def _summary(params: Any, res: Any) -> dict[str, Any]:
    c = res.counters
    util = c["mac_ops"] / (c["cycles"] * params.multipliers) if c.get("cycles") else 0.0
    return {
        "bit_exact": res.bit_exact,
        "cycles": c["cycles"],
        "model_cycles": res.model_counters["cycles"],
        "mac_ops": c["mac_ops"],
        **{k: c[k] for k in TRAFFIC},
        "lane_idle_cycles": c["lane_idle_cycles"],
        "counters_match_model": res.counters_match,
        "mac_utilisation": util,
        "counters": dict(c),
        "model_counters": dict(res.model_counters),
    }


BANKED = CSR_BANKED.label  #: label of the equal-memory (banked-activation) CSR array in tables and JSON


def _runs(arch: str, act_banks: int, compare: bool) -> list[tuple[str, str, int]]:
    """``(label, arch, act_banks)`` of every array to run (registry order, a banked variant only with
    ``act_banks``), the one asked for first."""
    check_arch(arch)
    if act_banks and not has_banked(arch) and not compare:
        banked = [a.arch for a in ARRAYS if a.banked]
        raise DPPError(
            f"act_banks applies to the {'/'.join(a.upper() for a in banked)} array: use "
            f"{' or '.join(f'--arch {a}' for a in banked)}, or --compare to run the banked "
            f"{'/'.join(a.upper() for a in banked)} next to {arch} (got act_banks={act_banks} for "
            f"arch={arch!r})"
        )
    main = arch_named(arch, act_banks if has_banked(arch) else 0)
    arrays = [main] + ([a for a in ARRAYS if a is not main and (act_banks or not a.banked)] if compare else [])
    return [(a.label, a.arch, act_banks if a.banked else 0) for a in arrays]


def _sizes(
    rows: int, cols: int, batch: int, max_rows: int | None, max_cols: int | None, max_batch: int | None
) -> tuple[int, int, int]:
    """The build's memory sizes: the layer's own unless given; a layer larger than the build is refused."""
    sizes = []
    for name, value, cap in (("rows", rows, max_rows), ("cols", cols, max_cols), ("batch", batch, max_batch)):
        value = check_int(name, value, lo=1)
        if cap is None:
            sizes.append(value)
            continue
        cap = check_int(f"max_{name}", cap, lo=1)
        if value > cap:
            raise DPPError(f"{name}={value} does not fit the build: max_{name}={cap} (expected {name} <= max_{name})")
        sizes.append(cap)
    return sizes[0], sizes[1], sizes[2]


def run_sim(
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
    seed: int = 0,
    relu: bool = True,
    waves: bool = False,
    compare: bool = False,
    simulator: str = "verilator",
    workdir: Path | None = None,
    act_banks: int = 0,
    max_rows: int | None = None,
    max_cols: int | None = None,
    max_batch: int | None = None,
) -> dict[str, Any]:
    """Do the work of ``dpp sim``; return the JSON-ready result (raises SimulationError on any failure).

    ``max_rows`` / ``max_cols`` / ``max_batch`` size the build's memories (default: this layer), so one cached
    build serves every layer up to that size; only the layer's registers change between runs.
    """
    from rtl.params import ArrayParams
    from sim.run import simulate_layers
    from sim.workloads import array_params, layer_for, realistic_weights

    size_rows, size_cols, size_batch = _sizes(rows, cols, batch, max_rows, max_cols, max_batch)
    if block != 1 and arch in ARCHS and not arch_named(arch).takes_block:
        takes = " or ".join(dict.fromkeys(a.arch for a in ARRAYS if a.takes_block))
        raise DPPError(
            f"block applies to the {takes} array only; {arch} processes single columns "
            f"(got block={block} for arch={arch!r}, expected 1)"
        )
    runs = _runs(arch, check_int("act_banks", act_banks, lo=0), compare)
    bits = dict(block=block, weight_bits=weight_bits, act_bits=act_bits, out_bits=out_bits)
    # every build first: a bad parameter fails before any simulation
    builds = [
        ArrayParams(
            arch=a,
            k=k,
            n=n,
            pes=pes,
            max_rows=size_rows,
            max_cols=size_cols,
            max_batch=size_batch,
            act_banks=banks,
            **{**bits, "block": block if arch_named(a).takes_block else 1},
        )
        if i == 0
        else array_params(a, k, n, pes, size_rows, size_cols, size_batch, act_banks=banks, **bits)
        for i, (_, a, banks) in enumerate(runs)
    ]  # baselines: same multipliers, canonical n
    w = realistic_weights(np.random.default_rng(seed), rows, cols, weight_bits)
    out: dict[str, Any] = {}
    for i, ((label, _a, _), params) in enumerate(zip(runs, builds)):
        layer = layer_for(params, w, np.random.default_rng(seed + 1), batch, n=n, block=block, relu=relu)
        res = simulate_layers(
            params, [layer], simulator=simulator, waves=waves and i == 0, workdir=workdir if i == 0 else None
        )[0]
        bad = res.first_mismatch()
        if bad:
            raise SimulationError(f"{label} array output mismatch at {bad}")
        out[label] = {**_summary(params, res), "params": params.to_dict()}
    main = runs[0][0]
    result = {
        **{key: out[main][key] for key in JSON_KEYS},
        **out[main],
        "arch": arch,
        "label": main,
        "act_banks": runs[0][2],
        "layer": {"rows": rows, "cols": cols, "batch": batch, "seed": seed, "density": k / n},
    }
    if compare:
        result["compare"] = {label: out[label] for label, _, _ in runs[1:]}
        result["cycle_ratio"] = {label: out[main]["cycles"] / out[label]["cycles"] for label, _, _ in runs[1:]}
    return result
