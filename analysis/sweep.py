"""Design-space sweeps: grid points → per-point evaluation → resumable store → tidy table.

Per point (see :func:`evaluate_point`): a random integer layer (seeded, identical for every arch of a layer)
is packed in the point's format for its storage bits; the analytic model ``sim.model.predict_counters`` gives
the seven counters, from which utilisation and energy follow; a deterministic sample of points is also run
in RTL simulation (``sim.run.simulate_layer``) to re-check model = RTL; optionally Yosys gives the area of the
point's hardware, and place-and-route (:mod:`analysis.timing`) its Fmax and so the time per inference. The
array registry (:mod:`rtl.archs`) and the counter names are pure Python and imported directly; the model,
simulator and synthesis are imported lazily, and which of them was used is part of a point's key.

Store: ``OUT/points/<id>.json``, one file per finished point, written atomically; a restarted sweep skips
every point whose file exists. Execution: serial, a Dask ``LocalCluster`` (default) or an existing Dask
scheduler. Results: ``OUT/sweep.csv`` and ``OUT/sweep.parquet`` (one row per point), ``OUT/sweep_config.json``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from analysis.energy import layer_energy
from analysis.sweep_config import SweepConfig, expand_grid, load_config, parse_config, point_id
from dpp.errors import DPPError
from dpp.kofn import StorageBits
from dpp.serialize import atomic_write_text
from rtl.archs import ARRAYS, KOFN, arch_named
from rtl.layout import COUNTERS

__all__ = [
    "SweepConfig",
    "load_config",
    "parse_config",
    "expand_grid",
    "point_id",
    "evaluate_point",
    "ResultStore",
    "SweepOutcome",
    "run_sweep",
    "plan_jobs",
    "ALL_EVALUATIONS",
    "write_table",
    "accuracy_table",
    "join_accuracy",
    "read_run_result",
]

Evaluate = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
Job = tuple[str, dict[str, Any], dict[str, Any]]  #: ``(point id, point, options)``, as :func:`plan_jobs` lists them


#: Which evaluations a sweep runs (``caps`` of :func:`plan_jobs` / :func:`run_sweep`): the analytic model, the
#: RTL sample and the Verilog-based area. All by default; the flow's model-only sweep turns the last two off.
ALL_EVALUATIONS: dict[str, bool] = {"model": True, "rtl": True, "verilog": True}


class SweepError(DPPError):
    """Some sweep points failed (the finished ones are kept; rerun to retry the rest)."""


# ------------------------------------------------------------------------------------------- evaluation
def layer_weights(point: dict[str, Any]) -> np.ndarray:
    """The point's random signed integer weight matrix (same for every arch / k / n of a layer)."""
    key = f"{point['seed']}:{point['layer']}:{point['rows']}:{point['cols']}:{point['weight_bits']}"
    rng = np.random.default_rng(int.from_bytes(key.encode(), "little") % (1 << 63))
    lim = 1 << (point["weight_bits"] - 1)
    return rng.integers(-lim + 1, lim, size=(point["rows"], point["cols"]))


def pack_layer(point: dict[str, Any]) -> tuple[Any, StorageBits, float, np.ndarray | None]:
    """(matrix in the point's format, its storage bits, density, CSR row lengths or None).

    The point's array (:func:`point_array`) prunes the layer to density k/n in its format; an array that stores
    every weight (dense) stores the unpruned layer."""
    w = layer_weights(point)
    array, wb = point_array(point), point["weight_bits"]
    m = array.prune(w, point["k"], point["n"], point["block"], wb) if array.sparse else w
    return m, array.storage_bits(m, wb), array.density(m), array.row_lengths(m)


def point_array(point: dict[str, Any]) -> Any:
    """The registry entry (:mod:`rtl.archs`) of a point: its ``arch``, banked when it carries ``act_banks``."""
    return arch_named(point["arch"], point.get("act_banks", 0))


def make_params(point: dict[str, Any]) -> Any:
    """The point's ``rtl.params.ArrayParams`` (imported lazily)."""
    from rtl.params import ArrayParams

    return ArrayParams(
        arch=point["arch"],
        k=point["k"],
        n=point["n"],
        pes=point["pes"],
        weight_bits=point["weight_bits"],
        act_bits=point["act_bits"],
        out_bits=point["out_bits"],
        block=point["block"],
        max_rows=point["max_rows"],
        max_cols=point["max_cols"],
        max_batch=point["max_batch"],
        act_banks=point.get("act_banks", 0),
    )


def storage_columns(sb: StorageBits, rows: int, cols: int) -> dict[str, Any]:
    """Storage bits split by kind, per kept weight and per dense weight, with the information bound."""
    return {
        "storage_value_bits": sb.value_bits,
        "storage_index_bits": sb.index_bits,
        "storage_pointer_bits": sb.pointer_bits,
        "storage_total_bits": sb.total_bits,
        "kept_weights": sb.kept_weights,
        "bits_per_kept_weight": sb.bits_per_kept_weight,
        "bound_bits_per_kept_weight": sb.bound_bits_per_kept_weight
        if sb.index_bits or sb.pointer_bits
        else sb.bits_per_kept_weight,
        "bits_per_dense_weight": sb.total_bits / (rows * cols),
    }


def memory_sizes(point: dict[str, Any], sb: StorageBits) -> dict[str, int]:
    """Bits held by each memory of the point's hardware (prices the SRAM accesses).

    Activation / output memories: ``max_batch x max_cols x act_bits`` / ``max_batch x max_rows x out_bits``.
    Weight / index memories: this layer's storage in its format, scaled to the hardware's largest layer
    (``max_rows x max_cols``); exact when the hardware is sized to the layer (the default).
    """
    scale = (point["max_rows"] * point["max_cols"]) / (point["rows"] * point["cols"])
    return {
        "weight": math.ceil(sb.value_bits * scale),
        "index": math.ceil((sb.index_bits + sb.pointer_bits) * scale),
        "act": point["max_batch"] * point["max_cols"] * point["act_bits"],
        "out": point["max_batch"] * point["max_rows"] * point["out_bits"],
    }


def model_columns(
    point: dict[str, Any], params: Any, sb: StorageBits, row_nnz: np.ndarray | None, matrix: Any = None
) -> dict[str, Any]:
    """Analytic counters (``sim.model``), utilisation and energy (a banked CSR point needs its ``matrix``:
    its bank conflicts depend on the columns)."""
    from sim.model import predict_counters

    columns = matrix if params.array_arch.model_needs == "columns" else None
    c = predict_counters(params, point["rows"], point["cols"], point["batch"], row_nnz=row_nnz, csr=columns)
    counters = {name: int(c[name]) for name in COUNTERS}
    cols: dict[str, Any] = dict(counters)
    lane_cycles = cols["mac_ops"] + cols["lane_idle_cycles"]
    cols["utilisation"] = cols["mac_ops"] / lane_cycles if lane_cycles else 0.0
    cols["acc_bits"] = int(params.acc_bits)
    e = layer_energy(
        counters,
        weight_bits=point["weight_bits"],
        act_bits=point["act_bits"],
        acc_bits=int(params.acc_bits),
        memory_bits=memory_sizes(point, sb),
        batch=point["batch"],
    )
    cols.update(e.columns())
    # one inference feeds ``vectors`` input vectors through this layer (a conv layer: its output positions)
    cols["energy_per_inference_pj"] = e.per_inference_pj * point["vectors"]
    cols["cycles_per_inference"] = cols["cycles"] * point["vectors"] / point["batch"]
    return cols


def rtl_columns(point: dict[str, Any], params: Any, matrix: Any, model: dict[str, Any]) -> dict[str, Any]:
    """Run the layer in RTL simulation; record its counters, bit-exactness and agreement with the model."""
    from sim.run import simulate_layer

    rng = np.random.default_rng(point["seed"] + 1)
    lo = 1 << (point["act_bits"] - 1)
    x = rng.integers(-lo, lo, size=(point["batch"], point["cols"]))
    bias = rng.integers(-100, 101, size=point["rows"])
    # requantise by about the typical accumulator magnitude, so the outputs are not all saturated
    shift = max(
        1, point["act_bits"] + point["weight_bits"] - point["out_bits"] + math.ceil(math.log2(point["cols"])) // 2
    )
    res = simulate_layer(params, matrix, x, bias, 1, shift, False)
    counters = {name: int(res.counters[name]) for name in COUNTERS}
    cols: dict[str, Any] = {f"rtl_{k}": v for k, v in counters.items()}
    cols["rtl_bit_exact"] = bool(res.bit_exact)
    cols["rtl_matches_model"] = bool(res.counters_match) and all(
        counters[k] == model.get(k, counters[k]) for k in COUNTERS
    )
    return cols


def area_columns_for(params: Any, flows: Iterable[str]) -> dict[str, Any]:
    """Synthesise the point's hardware (cached per Verilog text) and flatten the reports."""
    from analysis.area import area_columns, area_of_params

    with tempfile.TemporaryDirectory(prefix="dpp-area-") as tmp:
        return area_columns(area_of_params(params, tmp, flows=tuple(flows)).values())


def timing_columns_for(params: Any, options: dict[str, Any], model: dict[str, Any]) -> dict[str, Any]:
    """Place-and-route the point's hardware with each of ``options["timing_flows"]`` (cached per Verilog text,
    so the layers of one build share it; the array as deployed, without its performance counters) and time one
    inference at the first flow's Fmax: ``fmax_mhz``, ``time_per_inference_s``, ``inferences_per_s``,
    ``energy_per_inference_j``, ``edp_js`` (NaN without the model's cycles) and ``timing_message``."""
    from analysis.timing import timing_point_columns

    return timing_point_columns(
        params,
        options["timing_flows"],
        model.get("cycles_per_inference", math.nan),
        model.get("energy_per_inference_pj", math.nan),
        counters=False,
        timeout_s=float(options["timing_timeout_s"]),
    )


def float_timing_columns(df: pd.DataFrame) -> pd.DataFrame:
    """The timing columns as floats: a point without an Fmax is stored as JSON ``null`` and reads back NaN."""
    from analysis.timing_metrics import PER_INFERENCE_COLUMNS

    for col in [
        c for c in df.columns if c in PER_INFERENCE_COLUMNS or (c.startswith("timing_") and c.endswith("_fmax_mhz"))
    ]:
        df[col] = pd.to_numeric(df[col], errors="coerce").astype(float)
    return df


def evaluate_point(point: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """All metrics of one point; ``options`` says which hardware packages to use (see :func:`plan_jobs`)."""
    t0 = time.perf_counter()
    matrix, sb, density, row_nnz = pack_layer(point)
    row: dict[str, Any] = {"density": density, **storage_columns(sb, point["rows"], point["cols"])}
    model: dict[str, Any] = {}
    if options.get("model") or options.get("rtl") or options.get("area_flows") or options.get("timing_flows"):
        params = make_params(point)
        if options.get("model"):
            model = model_columns(point, params, sb, row_nnz, matrix)
            row.update(model)
        if options.get("rtl"):
            row.update(rtl_columns(point, params, matrix, model))
        if options.get("area_flows"):
            row.update(area_columns_for(params, options["area_flows"]))
        if options.get("timing_flows"):
            row.update(timing_columns_for(params, options, model))
    row["eval_seconds"] = time.perf_counter() - t0
    return row


# ------------------------------------------------------------------------------------------- store
def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


class ResultStore:
    """One JSON file per finished point under ``root/points``; atomic, so a crash never leaves half a file."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.points_dir = self.root / "points"
        self._parsed: dict[str, dict[str, Any]] = {}  # rows done() already read, handed out once by load()

    def path(self, pid: str) -> Path:
        return self.points_dir / f"{pid}.json"

    def done(self) -> set[str]:
        """Ids of the finished points; a point file that does not parse is moved aside (and so recomputed)."""
        if not self.points_dir.is_dir():
            return set()
        ids = set()
        for f in self.points_dir.glob("*.json"):
            try:
                self._parsed[f.stem] = json.loads(f.read_text("utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                aside = f.with_name(f"{f.name}.corrupt")
                os.replace(f, aside)
                print(
                    f"warning: sweep point {f} is corrupt ({exc}); moved to {aside.name}, recomputing it",
                    file=sys.stderr,
                )
                continue
            ids.add(f.stem)
        return ids

    def save(self, pid: str, row: dict[str, Any]) -> None:
        atomic_write_text(self.path(pid), json.dumps({k: _jsonable(v) for k, v in row.items()}))

    def load(self, pid: str) -> dict[str, Any]:
        if pid in self._parsed:
            return self._parsed.pop(pid)
        return json.loads(self.path(pid).read_text("utf-8"))


# ------------------------------------------------------------------------------------------- planning
def plan_jobs(cfg: SweepConfig, caps: dict[str, bool] | None = None) -> tuple[list[Job], int]:
    """``[(id, point, options)]`` for every valid point, and the count of invalid combinations skipped.

    The RTL sample is the ``rtl_sample`` points with the smallest plain-point ids: deterministic and stable.
    """
    caps = ALL_EVALUATIONS if caps is None else caps
    points, invalid = expand_grid(cfg)
    sample = set(sorted(point_id(p) for p in points)[: cfg.rtl_sample])
    jobs = []
    for p in points:
        opts = {
            "model": bool(caps.get("model")),
            "rtl": bool(caps.get("rtl")) and point_id(p) in sample,
            "area_flows": list(cfg.area_flows) if cfg.area_enabled and caps.get("verilog") else [],
        }
        if cfg.timing_enabled and caps.get("verilog"):  # absent when off: the ids of other sweeps stay
            opts.update(timing_flows=list(cfg.timing_flows), timing_timeout_s=cfg.timing_timeout_s)
        jobs.append((point_id({**p, "options": opts}), p, opts))
    return jobs, invalid


def check_points(points: Iterable[dict[str, Any]]) -> None:
    """Refuse, before any evaluation, a point whose hardware cannot be built, naming its layer and the key.

    Every point becomes an ``ArrayParams`` (bit widths, n, PEs, ...) and its layer must fit the memories
    (``rows <= max_rows`` etc., set by ``hardware:`` in the config).
    """
    for p in points:
        where = (
            f"sweep layer {p['layer']!r} (arch={p['arch']}, k={p['k']}, n={p['n']}, block={p['block']}, "
            f"pes={p['pes']}, weight_bits={p['weight_bits']}, act_bits={p['act_bits']}, "
            f"out_bits={p['out_bits']})"
        )
        for dim, cap in (("rows", "max_rows"), ("cols", "max_cols"), ("batch", "max_batch")):
            if p[dim] > p[cap]:
                raise DPPError(
                    f"{where}: {dim}={p[dim]} does not fit hardware.{cap}={p[cap]} "
                    f"(expected {dim} <= {cap}, or 0 to size the memories to each layer)"
                )
        try:
            make_params(p)
        except DPPError as exc:
            raise DPPError(f"{where} cannot be built: {exc}") from None


def _evaluate_job(evaluate: Evaluate, point: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return {**point, **evaluate(point, options)}


@dataclass
class SweepOutcome:
    """What a sweep did: the table, how many points were computed now / found done, and the files."""

    table: pd.DataFrame
    computed: int
    reused: int
    invalid: int
    csv: Path
    parquet: Path


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[bold]sweep"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=False,
    )


def _run_serial(todo: list[Job], evaluate: Evaluate, store: ResultStore, progress: bool) -> None:
    with _progress(progress) as bar:
        task = bar.add_task("points", total=len(todo))
        for pid, point, opts in todo:
            store.save(pid, _evaluate_job(evaluate, point, opts))
            bar.advance(task)


SCHEDULER_TIMEOUT_S = 5


def _ignore_sigint() -> None:
    """Run on each local worker process: leave Ctrl-C to the driver, which shuts the cluster down.

    The workers also stay quiet about the tasks and heartbeats that the shutdown cuts off.
    """
    import logging
    import signal

    # task errors reach the driver through their futures; these loggers only report the shutdown itself
    logging.getLogger("distributed.worker.state_machine").setLevel(logging.ERROR)
    logging.getLogger("distributed.worker").setLevel(logging.CRITICAL)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread of that process: nothing to do
        pass


def _run_dask(
    todo: list[Job],
    evaluate: Evaluate,
    store: ResultStore,
    progress: bool,
    scheduler: str | None,
    n_workers: int | None,
    processes: bool,
) -> None:
    from dask.distributed import Client, LocalCluster, as_completed

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=SCHEDULER_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise DPPError(
                f"cannot reach the Dask scheduler at {scheduler} within {SCHEDULER_TIMEOUT_S} s "
                f"({type(exc).__name__}); is it running? (or run without --scheduler)"
            ) from None
    else:
        cluster = LocalCluster(
            n_workers=n_workers or min(4, os.cpu_count() or 1),
            threads_per_worker=1,
            processes=processes,
            dashboard_address=":0",
        )
        client = Client(cluster)
        if processes:  # Ctrl-C reaches this process alone: one line, not a traceback from every worker
            client.run(_ignore_sigint)
    errors: list[str] = []
    try:
        futures = {client.submit(_evaluate_job, evaluate, p, o, pure=False): pid for pid, p, o in todo}
        with _progress(progress) as bar:
            task = bar.add_task("points", total=len(todo))
            for fut in as_completed(futures):
                try:
                    store.save(futures[fut], fut.result())  # written by the driver: workers need no shared disk
                except Exception as exc:  # keep the finished points; report the failures at the end
                    errors.append(f"{futures[fut]}: {exc}")
                bar.advance(task)
    except KeyboardInterrupt:
        # Ctrl-C: the cluster is shut down below; a worker busy in a long call (Yosys, Verilator) is killed after
        # the nanny's grace period, as it should be: its warning about that is noise to the user
        import logging

        for name in ("distributed.nanny", "distributed.scheduler", "distributed.core", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    if errors:
        raise SweepError(f"{len(errors)} sweep point(s) failed (finished points are saved): {errors[0]}")


ACCURACY_KEYS = ("accuracy", "test_accuracy")


def method_arch(method: str) -> str:
    """The array that runs a training method's network (:attr:`rtl.archs.ArrayArch.trained_method`): dense →
    dense, unstructured → csr, else (every k-of-n method) kofn."""
    return next((a.arch for a in ARRAYS if a.trained_method == method), KOFN.arch)


def read_run_result(run: Path) -> dict[str, Any]:
    """``RUN/result.json`` of ``dpp train`` (schema ``dpp.run``) as one record with ``accuracy``."""
    f = Path(run) / "result.json"
    if not f.is_file():
        raise DPPError(f"run folder {run} has no result.json")
    d = json.loads(f.read_text("utf-8"))
    acc = next((d[k] for k in ACCURACY_KEYS if k in d), None)
    missing = [k for k in ("k", "n") if k not in d] + ([] if acc is not None else ["test_accuracy"])
    if missing or acc is None:  # (acc is None implies missing; said again for the type checker)
        raise DPPError(f"{f} lacks key(s) {missing}")
    method = str(d.get("method", Path(run).name))
    return {
        "run": str(run),
        "method": method,
        "model": d.get("model"),
        "k": int(d["k"]),
        "n": int(d["n"]),
        "granularity": d.get("granularity", "weight"),
        "accuracy": float(acc),
        "trained_density": d.get("density"),
        "arch": method_arch(method),
    }


def accuracy_table(runs: Iterable[Path]) -> pd.DataFrame:
    """One record per trained run (see :func:`read_run_result`)."""
    cols = ["run", "method", "model", "k", "n", "granularity", "accuracy", "trained_density", "arch"]
    return pd.DataFrame([read_run_result(Path(r)) for r in runs], columns=cols)


def join_accuracy(df: pd.DataFrame, acc: pd.DataFrame) -> pd.DataFrame:
    """Attach each run's accuracy to the sweep rows of its array: same arch and, unless dense, same k and n
    (and, for k-of-n, the same granularity: block 1 = weight, block > 1 = kernel). One row per (point, run)."""
    gran = np.where(df["block"] > 1, "kernel", "weight")
    matched, used = [], np.zeros(len(df), dtype=bool)
    for rec in acc.to_dict("records"):
        array = arch_named(rec["arch"])
        sel = np.array(df["arch"] == rec["arch"], dtype=bool)
        if array.sparse:  # the density k/n describes a sparse array's network
            sel &= (df["k"] == rec["k"]).to_numpy() & (df["n"] == rec["n"]).to_numpy()
        if array.takes_block:
            sel &= gran == rec["granularity"]
        used |= sel
        part = df[sel].copy()
        for key in ("method", "model", "accuracy", "trained_density", "run"):
            part[key] = rec[key]
        matched.append(part)
    return pd.concat([*matched, df[~used]], ignore_index=True)


def write_table(df: pd.DataFrame, out: Path) -> tuple[Path, Path]:
    """``out/sweep.csv`` and ``out/sweep.parquet``, each written to a temporary file and renamed."""
    out.mkdir(parents=True, exist_ok=True)
    csv, parquet = out / "sweep.csv", out / "sweep.parquet"
    atomic_write_text(csv, df.to_csv(index=False))
    tmp = out / f".sweep.parquet.{os.getpid()}.tmp"
    df.to_parquet(tmp, index=False)
    os.replace(tmp, parquet)
    return csv, parquet


def check_same_sweep(cfg: SweepConfig, out: Path, force: bool) -> None:
    """Refuse to write ``cfg``'s table into a folder that holds a different sweep's config (unless ``force``)."""
    f = out / "sweep_config.json"
    if force or not f.is_file():
        return
    try:
        old = json.loads(f.read_text("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return  # unreadable: it is replaced at the end of this sweep
    if old != json.loads(json.dumps(cfg.to_dict())):
        raise DPPError(
            f"{out} holds another sweep (sweep_config.json, name {old.get('name')!r}); its table would "
            f"be replaced: pass --force to do so, or choose another --out"
        )


def run_sweep(
    cfg: SweepConfig,
    out: str | os.PathLike,
    *,
    evaluate: Evaluate = evaluate_point,
    serial: bool = False,
    scheduler: str | None = None,
    n_workers: int | None = None,
    processes: bool = True,
    progress: bool = True,
    caps: dict[str, bool] | None = None,
    force: bool = False,
) -> SweepOutcome:
    """Evaluate every point not yet in ``out/points`` and write the table of all points of ``cfg``.

    Every point is checked buildable first; a folder holding another sweep's config is refused unless
    ``force`` (its finished points stay and are reused where they match).
    """
    out = Path(out).resolve()
    store = ResultStore(out)
    jobs, invalid = plan_jobs(cfg, caps)
    check_points(p for _, p, _ in jobs)
    check_same_sweep(cfg, out, force)
    done = store.done()
    todo = [j for j in jobs if j[0] not in done]
    atomic_write_text(out / "sweep_config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
    if todo:
        if serial:
            _run_serial(todo, evaluate, store, progress)
        else:
            _run_dask(todo, evaluate, store, progress, scheduler, n_workers, processes)
    rows = [{"point_id": pid, **store.load(pid)} for pid, _, _ in jobs]
    df = float_timing_columns(pd.DataFrame(rows))
    if cfg.runs:
        df = join_accuracy(df, accuracy_table(cfg.runs))
    csv, parquet = write_table(df, out)
    return SweepOutcome(df, len(todo), len(jobs) - len(todo), invalid, csv, parquet)
