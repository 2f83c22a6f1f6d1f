"""Simulation and analytic-model benchmarks, the measurements behind ``dpp bench-sim``.

Each ``measure_*`` returns the numbers and their ratios to the target; the command only prints them. Every
simulated layer is checked (bit-exact, counters equal to the model); a failure raises
:class:`dpp.errors.SimulationError`.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from dpp.checks import check_k_n
from dpp.errors import SimulationError
from rtl.archs import ARCHS, ARRAYS, arch_named

SPEED_TARGET = 1_000_000  #: simulated cycles per second
MODEL_TARGET = 10_000  #: model configurations per second, one predict_counters call each
MANY_TARGET = 1_000_000  #: predict_counters_many configurations per second (kofn, dense, csr)
BANKED_MANY_TARGET = 10_000  #: predict_counters_many banked-CSR configurations per second, 512x1024 layers
KOFN_DENSE_TOLERANCE = 0.05  #: k-of-n / dense cycles within 5 % of k/n
CSR_SLOWDOWN_TARGET = 1.3  #: CSR at least 1.3x the k-of-n cycles
#: default banks of the equal-memory CSR in ``arch``: twice the lanes (the smallest power of two >= 2*pes*k)
DEFAULT_ACT_BANKS = "2x"


def _params(arch: str, k: int, n: int, pes: int, rows: int, cols: int, batch: int, act_banks: int = 0) -> Any:
    from sim.workloads import array_params

    return array_params(arch, k, n, pes, rows, cols, batch, act_banks=act_banks)


def _banks(spec: str, pes: int, k: int) -> int:
    from sim.workloads import parse_act_banks

    return parse_act_banks(spec, pes * k)


def _run_checked(params: Any, layer: Any, what: str, repeat: int = 1) -> tuple[Any, list[Any]]:
    from sim.run import build_array, simulate_layers

    design = build_array(params)
    results = simulate_layers(params, [layer] * repeat, design=design)
    for res in results:
        res.check(what)
    return design, results


MIN_SECONDS = 1.0  #: wall seconds of compute one speed measurement fills by default, so start-up does not dominate
MAX_REPEAT = 2000  #: runs of one layer in one measurement at most (a tiny layer may then stay under min_seconds)
CEILING_RATIO_TARGET = 0.5  #: our harness's cycles/s over the bare-Verilator ceiling's, kofn and dense


def repeats_for(min_seconds: float, repeat: int, run_wall_seconds: float) -> int:
    """Runs of a layer whose ``repeat`` runs took ``run_wall_seconds`` of compute, so that they take at least
    ``min_seconds`` (10 % margin): ``repeat`` when already enough, else more, at most :data:`MAX_REPEAT`."""
    if run_wall_seconds >= min_seconds:
        return repeat
    if run_wall_seconds <= 0:
        return max(repeat, MAX_REPEAT)
    return max(repeat, min(MAX_REPEAT, math.ceil(1.1 * min_seconds * repeat / run_wall_seconds)))


def _speed_layer(
    arch: str, k: int, n: int, pes: int, rows: int, cols: int, batch: int, seed: int, act_banks: int
) -> tuple[Any, Any, str]:
    """(params, layer, description) of a speed measurement: one realistic layer sized to its build."""
    from sim.workloads import layer_for, realistic_weights

    params = _params(arch, k, n, pes, rows, cols, batch, act_banks)
    rng = np.random.default_rng(seed)
    layer = layer_for(params, realistic_weights(rng, rows, cols, params.weight_bits), rng, batch, n=n)
    return params, layer, f"{arch} {rows}x{cols} batch {batch}"


def _timed_runs(
    params: Any, design: Any, layer: Any, what: str, repeat: int, min_seconds: float, workdir: Path
) -> tuple[list[Any], dict[str, Any], Path]:
    """Run ``layer`` ``repeat`` times in one simulator process (checked); when their compute phases took less
    than ``min_seconds``, run it again :func:`repeats_for` times. Returns the results of the last process,
    what the first run measured, and the work folder of the last process (its programs and outputs)."""
    from sim.run import simulate_layers

    def run(times: int, folder: Path) -> list[Any]:
        results = simulate_layers(params, [layer] * times, design=design, workdir=folder)
        for res in results:
            res.check(what)
        return results

    results = run(repeat, workdir / "probe")
    probe_wall = sum(r.run_wall_seconds for r in results)
    probe = {"probe_repeat": repeat, "probe_run_wall_seconds": probe_wall}
    final = repeats_for(min_seconds, repeat, probe_wall)
    if final == repeat:
        return results, probe, workdir / "probe"
    return run(final, workdir / "final"), probe, workdir / "final"


def _speed_numbers(results: list[Any]) -> dict[str, Any]:
    """Cycles, wall and CPU seconds and cycles per second of one simulator process's runs of a layer."""
    res, stats = results[0], results[0].stats
    run_cyc, run_wall = sum(r.run_sim_cycles for r in results), sum(r.run_wall_seconds for r in results)
    job_cyc, job_wall = sum(r.sim_cycles for r in results), sum(r.wall_seconds for r in results)
    return {
        "repeat": len(results),
        "array_cycles": res.counters["cycles"],
        "bit_exact": all(r.bit_exact for r in results),
        "counters_match": all(r.counters_match for r in results),
        "run_sim_cycles": run_cyc,
        "run_wall_seconds": run_wall,
        "run_cycles_per_second": _per(run_cyc, run_wall),
        "best_run_cycles_per_second": max(_per(r.run_sim_cycles, r.run_wall_seconds) for r in results),
        "job_sim_cycles": job_cyc,
        "job_wall_seconds": job_wall,
        "job_cycles_per_second": _per(job_cyc, job_wall),
        "run_cpu_seconds": stats.run_cpu_seconds,
        "run_cycles_per_cpu_second": _per(run_cyc, stats.run_cpu_seconds),
        "job_cpu_seconds": stats.cpu_seconds,
        "job_cycles_per_cpu_second": _per(job_cyc, stats.cpu_seconds),
        "process_seconds": stats.process_seconds,
    }


def _per(cycles: int, seconds: float) -> float:
    """Cycles per second; NaN when no time was measured (a run shorter than the clock's resolution)."""
    return cycles / seconds if seconds > 0 else float("nan")


def measure_speed(
    arch: str,
    k: int,
    n: int,
    pes: int,
    rows: int,
    cols: int,
    batch: int,
    seed: int,
    repeat: int = 3,
    act_banks: int = 0,
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Any]:
    """Build (timed apart), run one layer ``repeat`` times in one process, and again as often as needed for
    ``min_seconds`` of compute (:func:`_timed_runs`); return cycles per second of the compute phase and of the
    whole jobs, per wall second and per CPU second of the simulator process."""
    from sim.run import build_array

    params, layer, what = _speed_layer(arch, k, n, pes, rows, cols, batch, seed, act_banks)
    t0 = time.perf_counter()
    design = build_array(params)
    with tempfile.TemporaryDirectory(prefix="dpp-speed-") as tmp:
        results, probe, _ = _timed_runs(params, design, layer, what, repeat, min_seconds, Path(tmp))
    return {
        "arch": arch,
        "act_banks": act_banks,
        "rows": rows,
        "cols": cols,
        "batch": batch,
        "k": k,
        "n": n,
        "pes": pes,
        "min_seconds": min_seconds,
        **probe,
        "build_seconds": design.build_seconds,
        "build_cached": design.cached,
        **_speed_numbers(results),
        "end_to_end_seconds": time.perf_counter() - t0,
        "load_average_1min": os.getloadavg()[0],
    }


def measure_ceiling(
    arch: str,
    k: int,
    n: int,
    pes: int,
    rows: int,
    cols: int,
    batch: int,
    seed: int,
    act_banks: int = 0,
    repeat: int = 3,
    min_seconds: float = MIN_SECONDS,
) -> dict[str, Any]:
    """Our harness's cycles per second as a ratio to the bare-Verilator ceiling (:mod:`sim.ceiling`) on the same
    layer, the same generated Verilog and the same Verilator flags, measured back to back after both builds.

    Our harness runs as in :func:`measure_speed`; the ceiling then plays the very ``prog.hex`` our harness
    loaded last, for ``min_seconds`` too, checking its ``cycles`` counter after every run. Its counters and output
    words must equal our harness's (which equal the model and the reference), else
    :class:`dpp.errors.SimulationError`: the two measure the same work.
    """
    from sim.ceiling import build_ceiling, read_hex_words, run_ceiling
    from sim.run import build_array
    from sim.wrapper import PROG_FILE

    params, layer, what = _speed_layer(arch, k, n, pes, rows, cols, batch, seed, act_banks)
    design = build_array(params)
    ceiling = build_ceiling(design)
    with tempfile.TemporaryDirectory(prefix="dpp-ceiling-") as tmp:
        results, probe, work = _timed_runs(params, design, layer, what, repeat, min_seconds, Path(tmp))
        job = json.loads((work / "manifest.json").read_text())["jobs"][-1]
        last = json.loads((work / "results.json").read_text())["results"][-1]
        ours_words = read_hex_words(work / last["out"])
        bare = run_ceiling(
            ceiling,
            work / PROG_FILE,
            job["out_len"],
            job["max_cycles"],
            min_seconds=min_seconds,
            workdir=Path(tmp),
            expect_cycles=results[-1].counters["cycles"],
        )
    if bare.counters != results[-1].counters:
        raise SimulationError(
            f"{what}: the ceiling's counters {bare.counters} differ from our harness's {results[-1].counters}"
        )
    if bare.out_words != ours_words:
        bad = next(i for i, (a, b) in enumerate(zip(bare.out_words, ours_words)) if a != b)
        raise SimulationError(
            f"{what}: the ceiling's output word {bad} is {bare.out_words[bad]:#x}, our harness's {ours_words[bad]:#x}"
        )
    ours = _speed_numbers(results)
    return {
        "arch": arch,
        "act_banks": act_banks,
        "rows": rows,
        "cols": cols,
        "batch": batch,
        "k": k,
        "n": n,
        "pes": pes,
        "min_seconds": min_seconds,
        **probe,
        "harness": ours,
        "ceiling": {
            "runs": bare.runs,
            "compute_cycles_per_run": bare.compute_cycles_per_run,
            "run_sim_cycles": bare.compute_cycles,
            "run_wall_seconds": bare.compute_seconds,
            "run_cycles_per_second": bare.compute_cycles_per_second,
            "run_cpu_seconds": bare.compute_cpu_seconds,
            "run_cycles_per_cpu_second": bare.compute_cycles_per_cpu_second,
            "job_sim_cycles": bare.job_cycles,
            "job_wall_seconds": bare.job_seconds,
            "job_cycles_per_second": bare.job_cycles_per_second,
            "job_cpu_seconds": bare.job_cpu_seconds,
            "job_cycles_per_cpu_second": bare.job_cycles_per_cpu_second,
            "best_run_cycles_per_second": bare.best_compute_cycles_per_second,
            "build_seconds": ceiling.build_seconds,
            "build_cached": ceiling.cached,
        },
        "array_cycles": bare.counters["cycles"],
        "ratio_run_wall": ours["run_cycles_per_second"] / bare.compute_cycles_per_second,
        "ratio_run_cpu": ours["run_cycles_per_cpu_second"] / bare.compute_cycles_per_cpu_second,
        "ratio_job_wall": ours["job_cycles_per_second"] / bare.job_cycles_per_second,
        "ratio_job_cpu": ours["job_cycles_per_cpu_second"] / bare.job_cycles_per_cpu_second,
        "load_average_1min": os.getloadavg()[0],
    }


def parse_ratios(text: str) -> list[tuple[int, int]]:
    """``"1/8,2/8"`` -> ``[(1, 8), (2, 8)]``, each checked as a valid k < n."""
    out = []
    for part in text.split(","):
        try:
            k, n = (int(v) for v in part.strip().split("/"))
        except ValueError:
            raise ValueError(f"ratios must look like 1/8,2/8 (got {part.strip()!r})") from None
        out.append(check_k_n(k, n))
    return out


def measure_arch(
    rows: int,
    cols: int,
    batch: int,
    pes: int,
    ratios: list[tuple[int, int]],
    seed: int,
    row_spread: float,
    act_banks: str = "0",
) -> list[dict[str, Any]]:
    """Cycles of the arrays on one realistic layer per k/n (same density, ``pes * k`` multipliers).

    ``act_banks`` (see :func:`sim.workloads.parse_act_banks`, resolved per k/n): not "0" adds the
    equal-memory CSR (``csr_banked``: one activation memory in that many banks) next to the replicated one.
    """
    from sim.workloads import layer_for, realistic_weights

    banks = {(k, n): _banks(act_banks, pes, k) for k, n in ratios}  # a bad spec fails before any run
    w = realistic_weights(np.random.default_rng(seed), rows, cols, 8, row_spread=row_spread)
    out = []
    for k, n in ratios:
        row: dict[str, Any] = {"k": k, "n": n, "density": k / n}
        if banks[k, n]:
            row["act_banks"] = banks[k, n]
        for array in ARRAYS:  # every array of the registry; the banked one when banks are asked for
            nb = banks[k, n] if array.banked else 0
            if array.banked and not nb:
                continue
            label = array.label
            params = _params(array.arch, k, n, pes, rows, cols, batch, nb)
            layer = layer_for(params, w, np.random.default_rng(seed + 1), batch, n=n)
            _, (res,) = _run_checked(params, layer, f"{label} at k/n={k}/{n}")
            row[label] = res.counters["cycles"]
            row[f"{label}_model"] = res.model_counters["cycles"]
            row[f"{label}_util"] = res.counters["mac_ops"] / (res.counters["cycles"] * params.multipliers)
            lengths = array.row_lengths(layer.W)
            if lengths is not None and not array.banked:  # its row imbalance (the banked variant: the same layer)
                row[f"{label}_row_nnz_max_over_mean"] = float(lengths.max() / lengths.mean())
        row["kofn_over_dense"] = row["kofn"] / row["dense"]
        row["kofn_dense_error"] = row["kofn_over_dense"] / (k / n) - 1.0
        row["csr_over_kofn"] = row["csr"] / row["kofn"]
        if banks[k, n]:
            row["csr_banked_over_kofn"] = row["csr_banked"] / row["kofn"]
        out.append(row)
    return out


def measure_banked_model(configs: int, seed: int) -> dict[str, Any]:
    """Time the banked-CSR model (needs the column indices) on realistic 512x1024 layers, 8 PEs."""
    from dpp.kofn import CSRMatrix
    from sim.model import predict_counters
    from sim.workloads import realistic_weights

    rng = np.random.default_rng(seed)
    w = realistic_weights(rng, 512, 1024, 8)
    layers = {kn: CSRMatrix.prune_magnitude(w, kn[0] / kn[1], weight_bits=8) for kn in ((1, 8), (2, 8), (4, 8))}
    cases = []
    for _ in range(configs):
        k, n = list(layers)[int(rng.integers(len(layers)))]
        banks = 8 * k << int(rng.integers(0, 3))  # 1x, 2x, 4x the lanes
        cases.append((_params("csr", k, n, 8, 512, 1024, 1, banks), layers[k, n]))
    t0 = time.perf_counter()
    for p, W in cases:
        predict_counters(p, 512, 1024, 1, csr=W)
    wall = time.perf_counter() - t0
    return {"configs": configs, "seconds": wall, "configs_per_second": configs / wall}


def measure_model(configs: int, seed: int) -> dict[str, Any]:
    """Time :func:`sim.model.predict_counters` over ``configs`` random (params, layer) configurations."""
    from sim.model import predict_counters

    rng = np.random.default_rng(seed)
    pool = [
        _params(a, k, n, pes, 512, 1024, 8)
        for a in ARCHS
        for k, n in ((1, 8), (2, 8), (4, 8), (2, 4))
        for pes in (4, 8, 16)
    ]
    cases = []
    for _ in range(configs):
        p = pool[int(rng.integers(len(pool)))]
        rows, cols, batch = int(rng.integers(1, 513)), int(rng.integers(1, 1025)), int(rng.integers(1, 9))
        nnz = rng.integers(0, cols + 1, size=rows) if p.array_arch.model_needs == "row_nnz" else None
        cases.append((p, rows, cols, batch, nnz))
    t0 = time.perf_counter()
    for p, rows, cols, batch, nnz in cases:
        predict_counters(p, rows, cols, batch, row_nnz=nnz)
    wall = time.perf_counter() - t0
    return {"configs": configs, "seconds": wall, "configs_per_second": configs / wall}


def _pool(arch: str) -> list[Any]:
    """The designs of the model benchmarks: 4 k/n x 3 PE counts, sized for 512x1024 layers, batch 8."""
    return [_params(arch, k, n, pes, 512, 1024, 8) for k, n in ((1, 8), (2, 8), (4, 8), (2, 4)) for pes in (4, 8, 16)]


def many_model_tables(arch: str, configs: int, seed: int, layers: int = 256) -> tuple[Any, Any, int]:
    """(design table, layer table, distinct layers) of ``configs`` random configurations of one array.

    kofn / dense: a design of :func:`_pool`, a random layer up to 512x1024 and a batch up to 8 per row. csr:
    the layer is one of ``layers`` random row-length vectors (rows up to 512, cols up to 1024), as a sweep
    evaluates many designs on few layers; each distinct (layer, k, pes) costs one pass over its rows.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    pool = pd.DataFrame([p.to_dict() for p in _pool(arch)])
    params = pool.iloc[rng.integers(len(pool), size=configs)].reset_index(drop=True)
    batch = rng.integers(1, 9, size=configs)
    if arch_named(arch).model_needs is None:
        return (
            params,
            pd.DataFrame(
                {
                    "rows": rng.integers(1, 513, size=configs),
                    "cols": rng.integers(1, 1025, size=configs),
                    "batch": batch,
                }
            ),
            configs,
        )
    shapes = [(int(rng.integers(1, 513)), int(rng.integers(1, 1025))) for _ in range(layers)]
    counts = [rng.integers(0, c + 1, size=r) for r, c in shapes]
    pick = rng.integers(layers, size=configs)
    row_nnz = np.empty(configs, dtype=object)
    row_nnz[:] = [counts[i] for i in pick]
    rows, cols = np.array(shapes, dtype=np.int64)[pick].T
    return params, pd.DataFrame({"rows": rows, "cols": cols, "batch": batch, "row_nnz": row_nnz}), layers


def banked_tables(configs: int, seed: int, shared: bool = True) -> tuple[Any, Any, list[Any]]:
    """(design table, layer table, designs) of banked-CSR configurations on realistic 512x1024 layers, 8 PEs,
    batch 1: k/n 1/8, 2/8, 4/8 (the layer pruned to k/n), banks 1x/2x/4x the lanes, weight/act bits 4 or 8,
    out bits 8 or 16. ``shared``: the configurations of one k share its layer object (3 layers: one request
    table each, one sort per bank count); otherwise every configuration holds its own copy."""
    import pandas as pd

    from dpp.kofn import CSRMatrix
    from sim.workloads import array_params, realistic_weights

    rng = np.random.default_rng(seed)
    w = realistic_weights(rng, 512, 1024, 8)
    layers = {k: CSRMatrix.prune_magnitude(w, k / 8, weight_bits=8) for k in (1, 2, 4)}
    designs, matrices = [], []
    for _ in range(configs):
        k = (1, 2, 4)[int(rng.integers(3))]
        bits = {
            name: int(rng.choice(choices))
            for name, choices in (("weight_bits", (4, 8)), ("act_bits", (4, 8)), ("out_bits", (8, 16)))
        }
        designs.append(array_params("csr", k, 8, 8, 512, 1024, 1, act_banks=8 * k << int(rng.integers(3)), **bits))
        W = layers[k]
        matrices.append(W if shared else (W.row_ptr.copy(), W.col_indices.copy()))
    ones = np.ones(configs, dtype=np.int64)
    return (
        pd.DataFrame([d.to_dict() for d in designs]),
        pd.DataFrame({"rows": 512 * ones, "cols": 1024 * ones, "batch": ones, "csr": matrices}),
        designs,
    )


def _check_sample(params: Any, layers: Any, got: Any, seed: int, sample: int = 200) -> int:
    """Compare ``sample`` random rows of a predict_counters_many result with predict_counters; raise on any
    difference (a bug, so a RuntimeError with its traceback). Returns the rows compared."""
    from rtl.layout import COUNTERS
    from rtl.params import ArrayParams
    from sim.model import predict_counters

    rng = np.random.default_rng(seed)
    rows = rng.choice(len(got), size=min(sample, len(got)), replace=False)
    for i in rows:
        p = ArrayParams.from_dict({k: (v.item() if hasattr(v, "item") else v) for k, v in params.iloc[i].items()})
        layer = layers.iloc[i]
        want = predict_counters(
            p, int(layer["rows"]), int(layer["cols"]), int(layer["batch"]), layer.get("row_nnz"), csr=layer.get("csr")
        )
        have = {c: int(got[c].iloc[i]) for c in COUNTERS}
        if have != want:
            raise RuntimeError(f"predict_counters_many row {i} = {have} but predict_counters gives {want}")
    return len(rows)


def _time_many(params: Any, layers: Any, repeat: int) -> tuple[list[float], Any]:
    from sim.model import predict_counters_many

    times, got = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        got = predict_counters_many(params, layers)
        times.append(time.perf_counter() - t0)
    return times, got


def measure_model_many(arch: str, configs: int, seed: int, repeat: int = 3) -> dict[str, Any]:
    """Configurations per second of :func:`sim.model.predict_counters_many` on one array (best of ``repeat``
    calls on the same tables, built beforehand), with a sample of rows checked against predict_counters."""
    params, layers, distinct = many_model_tables(arch, configs, seed)
    times, got = _time_many(params, layers, repeat)
    best = min(times)
    return {
        "arch": arch,
        "configs": configs,
        "distinct_designs": len(_pool(arch)),
        "distinct_layers": distinct,
        "seconds": best,
        "seconds_all": times,
        "configs_per_second": configs / best,
        "target": MANY_TARGET,
        "ratio_to_target": configs / best / MANY_TARGET,
        "checked_rows": _check_sample(params, layers, got, seed),
    }


def measure_banked_many(configs: int, seed: int, repeat: int = 3, unshared: int = 30) -> dict[str, Any]:
    """Configurations per second of predict_counters_many on banked CSR 512x1024 layers (see
    :func:`banked_tables`), and with ``unshared`` configurations that each hold their own layer copy."""
    params, layers, designs = banked_tables(configs, seed)
    times, got = _time_many(params, layers, repeat)
    best = min(times)
    out = {
        "configs": configs,
        "distinct_designs": len(set(designs)),
        "distinct_layers": 3,
        "distinct_layer_banks": len({(d.k, d.act_banks) for d in designs}),
        "seconds": best,
        "seconds_all": times,
        "configs_per_second": configs / best,
        "target": BANKED_MANY_TARGET,
        "ratio_to_target": configs / best / BANKED_MANY_TARGET,
        "checked_rows": _check_sample(params, layers, got, seed, sample=20),
    }
    if unshared:
        params, layers, _ = banked_tables(unshared, seed + 1, shared=False)
        times, got = _time_many(params, layers, 1)
        out.update(
            {
                "unshared_configs": unshared,
                "unshared_seconds": times[0],
                "unshared_configs_per_second": unshared / times[0],
                "unshared_checked_rows": _check_sample(params, layers, got, seed, sample=5),
            }
        )
    return out
