"""The README's clock-frequency table: LeNet-300-100 on ECP5 at each design's own Fmax.

For k/n in :data:`TABLE_KN` and each array of :data:`TABLE_ARRAYS` (k-of-n, dense, CSR with an activation
replica per lane, CSR with one activation memory in 2x lanes banks), one build serves the network's three layers
(memories sized to the largest, 300 x 784, batch 1: one image at a time), 8 PEs x k multipliers, 4-bit weights,
8-bit activations and outputs. Place-and-route (:mod:`analysis.timing`) gives Fmax and the critical path; the
analytic model (``sim.model``, equal to the RTL counters) gives the cycles of each layer and the energy model
(:func:`analysis.sweep.model_columns`, as sweeps price them) the energy; time per image = cycles / Fmax.

Weights: the LeNet-300-100 layer shapes with realistic synthetic integer weights
(:func:`sim.workloads.realistic_weights`: rows differ in scale, as in a trained layer, so unstructured pruning
unbalances CSR rows), seeded, pruned by each array's own rule (:meth:`rtl.archs.ArrayArch.prune`). The CSR weight
memories are sized to the most non-zeros one PE stores (``max_nnz``); with full-row capacity no ECP5 holds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analysis.timing import (
    DEFAULT_ROUTER,
    DEFAULT_SEED,
    DEFAULT_TIMEOUT_S,
    ROUTERS,
    check_router,
    timing_or_reason,
)
from analysis.timing_metrics import per_inference
from dpp.errors import DPPError
from rtl.archs import arch_named

LENET300_LAYERS: tuple[tuple[str, int, int], ...] = (("fc1", 300, 784), ("fc2", 100, 300), ("fc3", 10, 100))
TABLE_KN: tuple[tuple[int, int], ...] = ((1, 8), (2, 8), (4, 8))
TABLE_ARRAYS = ("kofn", "dense", "csr", "csr_banked")
TABLE_PES = 8
WEIGHT_BITS, ACT_BITS, OUT_BITS = 4, 8, 8
WEIGHTS_SEED = 0
#: Designs that place but do not route on the part in hours, with what was measured (2026-12-03, this table's
#: seed and tools): the table reports them from this record instead of spending hours again, unless
#: ``retry_unrouted`` (``--retry-unrouted``) asks for another attempt.
TABLE_UNROUTED: Mapping[tuple[str, int, int], str] = {
    ("csr_banked", 4, 8): (
        "does not route on LFE5U-85F: 71 % of its LUTs, its 32-lane crossbar to 64 activation banks; nextpnr "
        "router1 still had 225k of 234k arcs queued after 40 min, router2 42,677 overused wires after 6 "
        "iterations (35 min); measured 2026-12-03, --retry-unrouted tries again"
    )
}


@dataclass(frozen=True)
class TableRow:
    """One design of the table: its build, where its clock is set, and the network per image at that clock.

    ``fmax_mhz`` (and the time columns) are NaN with ``message`` saying why when the design does not fit or a
    tool stopped (``time_vs_kofn``: this array's time per image / k-of-n's at the same k/n)."""

    array: str
    k: int
    n: int
    fits: bool
    message: str
    fmax_mhz: float
    critical_path: str
    path_start: str
    path_end: str
    luts: int
    dsp_blocks: int
    bram_blocks: int
    cycles_per_image: int
    time_per_image_s: float
    energy_per_image_j: float
    edp_js: float
    time_vs_kofn: float
    params: dict[str, Any]
    router: str = DEFAULT_ROUTER


def lenet300_weights(seed: int = WEIGHTS_SEED) -> list[np.ndarray]:
    """The three layers' integer weights (one generator, drawn in layer order)."""
    from sim.workloads import realistic_weights

    rng = np.random.default_rng(seed)
    return [realistic_weights(rng, rows, cols, WEIGHT_BITS) for _, rows, cols in LENET300_LAYERS]


def table_design(array: str, k: int, n: int, matrices: list[Any], pes: int = TABLE_PES) -> Any:
    """The ``ArrayParams`` of one table entry (``array`` in :data:`TABLE_ARRAYS`) serving every layer."""
    from rtl.params import ArrayParams
    from sim.workloads import parse_act_banks

    if array not in TABLE_ARRAYS:
        raise DPPError(f"array must be one of {', '.join(TABLE_ARRAYS)} (got {array!r})")
    arch = "csr" if array.startswith("csr") else array
    banks = parse_act_banks("2x", pes * k) if array == "csr_banked" else 0
    max_nnz = 0
    if arch == "csr":  # the most non-zeros one PE stores over the layers (PE p holds rows p, p + pes, ...)
        max_nnz = max(int(np.asarray(m.row_lengths())[p::pes].sum()) for m in matrices for p in range(pes))
    return ArrayParams(
        arch=arch,
        k=k,
        n=n,
        pes=pes,
        weight_bits=WEIGHT_BITS,
        act_bits=ACT_BITS,
        out_bits=OUT_BITS,
        max_rows=max(r for _, r, _ in LENET300_LAYERS),
        max_cols=max(c for _, _, c in LENET300_LAYERS),
        max_batch=1,
        act_banks=banks,
        max_nnz=max_nnz,
    )


def network_model(params: Any, matrices: list[Any]) -> tuple[int, float]:
    """(cycles, energy in pJ) of one image through the three layers on ``params`` (analytic model)."""
    from analysis.sweep import model_columns

    cycles, energy_pj = 0, 0.0
    array = arch_named(params.arch, params.act_banks)
    for (name, rows, cols), m in zip(LENET300_LAYERS, matrices):
        point = {
            "layer": name,
            "rows": rows,
            "cols": cols,
            "batch": 1,
            "vectors": 1,
            "weight_bits": WEIGHT_BITS,
            "act_bits": ACT_BITS,
            "out_bits": OUT_BITS,
            "max_rows": params.max_rows,
            "max_cols": params.max_cols,
            "max_batch": params.max_batch,
        }
        cols_ = model_columns(point, params, array.storage_bits(m, WEIGHT_BITS), array.row_lengths(m), m)
        cycles += int(cols_["cycles_per_inference"])
        energy_pj += float(cols_["energy_per_inference_pj"])
    return cycles, energy_pj


def lenet300_table(
    *,
    flow: str = "ecp5",
    seed: int = DEFAULT_SEED,
    counters: bool = False,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    arrays: tuple[str, ...] = TABLE_ARRAYS,
    kn: tuple[tuple[int, int], ...] = TABLE_KN,
    weights_seed: int = WEIGHTS_SEED,
    progress: Callable[[str], None] | None = None,
    router: str = DEFAULT_ROUTER,
    unrouted: Mapping[tuple[str, int, int], str] = TABLE_UNROUTED,
    retry_unrouted: bool = False,
) -> list[TableRow]:
    """Every (k/n, array) design of the table, place-and-routed (cached) and modelled; a design that does not fit
    or whose tools stop is a row with NaN Fmax and the reason. A design in ``unrouted`` is such a row with its
    recorded reason, without running the tools, unless ``retry_unrouted``. ``router``: nextpnr's router."""
    check_router(router, flow)
    say = progress or (lambda _m: None)
    weights = lenet300_weights(weights_seed)
    rows: list[TableRow] = []
    for k, n in kn:
        kofn_time = math.nan
        for array in arrays:
            entry = arch_named("csr", 1) if array == "csr_banked" else arch_named(array)
            matrices = [entry.prune(w, k, n, 1, WEIGHT_BITS) if entry.sparse else w for w in weights]
            params = table_design(array, k, n, matrices)
            cycles, energy_pj = network_model(params, matrices)
            recorded = unrouted.get((array, k, n)) if flow == "ecp5" and not retry_unrouted else None
            if recorded is not None:
                say(f"{array} {k}/{n}: {recorded}")
                rep, message = None, recorded
            else:
                say(f"{array} {k}/{n}: place-and-route ({flow}, {router})")
                rep, message = timing_or_reason(
                    params, flow, seed=seed, counters=counters, timeout_s=timeout_s, progress=progress, router=router
                )
            fmax = rep.fmax_mhz if rep is not None and rep.fits and rep.fmax_mhz else math.nan
            m = per_inference(cycles, energy_pj, fmax)
            if array == "kofn":
                kofn_time = m["time_per_inference_s"]
            cp = rep.critical_path if rep is not None else None
            rows.append(
                TableRow(
                    array=array,
                    k=k,
                    n=n,
                    fits=bool(rep is not None and rep.fits),
                    message=message,
                    fmax_mhz=fmax,
                    critical_path=" > ".join(cp.parts) if cp else "",
                    path_start=cp.start if cp else "",
                    path_end=cp.end if cp else "",
                    luts=rep.luts if rep else 0,
                    dsp_blocks=rep.dsp_blocks if rep else 0,
                    bram_blocks=rep.bram_blocks if rep else 0,
                    cycles_per_image=cycles,
                    time_per_image_s=m["time_per_inference_s"],
                    energy_per_image_j=m["energy_per_inference_j"],
                    edp_js=m["edp_js"],
                    time_vs_kofn=m["time_per_inference_s"] / kofn_time,
                    params=params.to_dict(),
                    router=router,
                )
            )
    return rows


ARRAY_LABELS = {"kofn": "k-of-n", "dense": "dense", "csr": "CSR, replicas", "csr_banked": "CSR, banked 2x"}


def _num(v: float, fmt: str) -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def table_markdown(rows: list[TableRow]) -> str:
    """The table as Markdown (one line per design; a design that does not fit says why in its last column)."""
    head = (
        "| k/n | array | Fmax (MHz) | cycles / image | time / image (µs) | energy / image (nJ) | time vs k-of-n | "
        "LUT4 / MULT18 / DP16KD | critical path through |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        where = r.critical_path if r.fits else r.message
        if r.router != DEFAULT_ROUTER:
            where += f" (nextpnr {r.router})"
        ratio = "–" if math.isnan(r.time_vs_kofn) else f"{r.time_vs_kofn:.2f}×"
        used = f"{r.luts} / {r.dsp_blocks} / {r.bram_blocks}" if r.fits else "–"
        lines.append(
            f"| {r.k}/{r.n} | {ARRAY_LABELS.get(r.array, r.array)} | {_num(r.fmax_mhz, '.1f')} | "
            f"{r.cycles_per_image} | {_num(r.time_per_image_s * 1e6, '.1f')} | "
            f"{_num(r.energy_per_image_j * 1e9, '.1f')} | {ratio} | {used} | {where} |"
        )
    return "\n".join(lines) + "\n"


def rows_json(rows: list[TableRow]) -> list[dict[str, Any]]:
    """The rows as JSON-able dicts (NaN as ``None``)."""
    return [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(r).items()} for r in rows]


def table_document(rows: list[TableRow], *, flow: str, seed: int, counters: bool) -> dict[str, Any]:
    """What ``--json`` writes: the rows, how they were measured, and the tool versions."""
    from analysis.timing import tool_versions

    return {
        "schema": "dpp.timing_table",
        "schema_version": 1,
        "flow": flow,
        "seed": seed,
        "counters": counters,
        "weights_seed": WEIGHTS_SEED,
        "layers": [list(x) for x in LENET300_LAYERS],
        "tool_versions": tool_versions(flow),
        "rows": rows_json(rows),
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m analysis.timing_table [--json PATH] [--counters] [--timeout S]`` (``scripts/timing_table.sh``):
    prints the Markdown table (place-and-route results are cached: a second run takes seconds)."""
    import argparse
    import json
    import sys

    from dpp.paths import check_out_file
    from dpp.serialize import atomic_write_text

    ap = argparse.ArgumentParser(prog="scripts/timing_table.sh", description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", help="also write the rows (and tool versions) as JSON here")
    ap.add_argument("--counters", action="store_true", help="keep the 48-bit performance counters (as simulated)")
    ap.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds each tool may run")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED, help="nextpnr placement seed")
    ap.add_argument("--router", default=DEFAULT_ROUTER, help=f"nextpnr router ({', '.join(ROUTERS)})")
    ap.add_argument(
        "--retry-unrouted",
        action="store_true",
        help="place-and-route the designs recorded as not routing (TABLE_UNROUTED; hours) instead of "
        "reporting the record",
    )
    args = ap.parse_args(argv)
    try:
        out = check_out_file(args.json, "--json") if args.json else None
        if not args.timeout > 0:
            raise DPPError(f"--timeout must be > 0 seconds (got {args.timeout})")
        rows = lenet300_table(
            seed=args.seed,
            counters=args.counters,
            timeout_s=args.timeout,
            router=args.router,
            retry_unrouted=args.retry_unrouted,
        )
    except DPPError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(table_markdown(rows))
    if out is not None:
        doc = table_document(rows, flow="ecp5", seed=args.seed, counters=args.counters)
        atomic_write_text(out, json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
