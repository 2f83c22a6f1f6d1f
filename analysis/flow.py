"""``dpp flow``: trained DPP network → integer export → Verilog → whole network simulated in RTL → report.

Steps (each with a progress bar):

1. **train** (or reuse ``RESULTS/runs/<run>/`` when its ``config.json`` equals the requested config) the DPP
   network and, for the CSR baseline, a network of the same model pruned unstructured at the same density k/n
   (``csr_net="unstructured"``, the default: CSR is the design for unstructured sparsity, so it runs a network
   trained for it, with that network's own row imbalance; ``csr_net="same"`` runs the DPP network on it);
2. **export** each integer network to ``RESULTS/nets/<run>/`` and measure its agreement with its torch model;
3. for each architecture (k-of-n, then the dense and CSR baselines, same ``pes * k`` multipliers), **generate
   and build** one array per distinct (block, out_bits) the network needs (layer shape and requantisation are
   run-time registers, so one build serves several layers); the CSR design gives each lane a private
   activation replica, or with ``act_banks = B`` k-of-n's single activation memory in B banks (:mod:`rtl.csr_banked`);
4. **simulate the whole network layer by layer in RTL** on real test images: each layer's input is the previous
   layer's RTL output (pooling / flatten are exact integer ops between layers); each layer's output is checked
   bit for bit against the integer reference model (on the reference chain) and its seven counters against the
   analytic model; the classes predicted from the RTL logits are compared with that network's torch model's;
5. price the counters with the energy model (and, unless ``--no-area``, synthesise each design with Yosys; with
   ``timing``, place and route each build on ECP5 (:mod:`analysis.timing`, the array without its performance
   counters) and time every layer at its own build's Fmax: time and energy per image, EDP);
6. write ``RESULTS/flow.json`` + ``RESULTS/flow_layers.csv`` and the report (``RESULTS/report/``).

Layers stored dense (a filter-granularity or unpruned classifier) run on the dense array in the k-of-n
design, which is recorded per layer (``array`` column).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.commands_log import record_command
from analysis.energy import layer_energy
from dpp.checks import check_int, check_k_n
from dpp.errors import DPPError, SimulationError
from dpp.kofn import CSRMatrix, KofNMatrix, dense_storage_bits
from dpp.serialize import atomic_write_text
from rtl.archs import ARCHS, arch_named, banks_for
from rtl.layout import COUNTERS

CSR_NETS = ("unstructured", "same")  #: what the CSR baseline runs: its own unstructured-trained net, or the DPP one
FLOW_FILE = "flow.json"
FLOW_SCHEMA = "dpp.flow"
ACT_BUDGET = 131072  #: activations one hardware run holds; larger batches (conv over many images) run in chunks


@dataclass
class FlowConfig:
    """What one flow run trains, builds and simulates."""

    model: str = "lenet300"
    method: str = "dpp"
    k: int = 1
    n: int = 8
    granularity: str = "weight"
    bits: int = 4
    epochs: int = 10
    seed: int = 0
    pes: int = 4
    images: int = 100
    archs: tuple[str, ...] = ARCHS
    area: bool = False
    simulator: str = "verilator"
    csr_net: str = "unstructured"  #: see :data:`CSR_NETS`
    act_banks: int = 0  #: CSR design: 0 = a private activation replica per lane; B = one memory in B banks
    timing: bool = False  #: place and route every build on ECP5: Fmax, time per image (see :func:`timing_of_designs`)
    data: str | None = None  #: ``--data SPEC`` the model trains and runs on; None: the model's own (DATASET_OF)
    normalize: str | None = None  #: ``--normalize MEAN,STD[;...]``; None: pixels scaled to [0, 1]

    def __post_init__(self) -> None:
        from rtl.params import check_act_banks  # the hardware packages are imported lazily, as in design_for

        check_k_n(self.k, self.n)
        check_int("pes", self.pes, lo=1, hi=64)
        check_int("images", self.images, lo=1)
        check_int("epochs", self.epochs, lo=1)
        self.archs = tuple(self.archs)
        bad = [a for a in self.archs if a not in ARCHS]
        if bad or not self.archs:
            raise DPPError(f"archs must be a non-empty subset of {ARCHS} (got {list(self.archs)})")
        check_act_banks(self.act_banks)
        if self.csr_net not in CSR_NETS:
            raise DPPError(f"csr_net must be one of {CSR_NETS} (got {self.csr_net!r})")
        if self.data is not None:
            from dpp.data import absolute_spec

            self.data = absolute_spec(self.data)
        if self.normalize is not None:
            from dpp.data import parse_normalize

            self.normalize = parse_normalize(self.normalize).text

    def network_config(self, arch: str) -> FlowConfig:
        """The config whose trained network ``arch`` runs: the CSR baseline runs a network pruned unstructured
        at the same density k/n (same model, bits, epochs, seed) unless ``csr_net="same"``; the others run
        this config's network."""
        from dataclasses import replace

        trained = arch_named(arch).trained_method
        if trained == "unstructured" and self.csr_net == "unstructured" and self.method != trained:
            return replace(self, method=trained, granularity="weight")
        return self

    @property
    def run_name(self) -> str:
        return (
            f"{self.model}_{self.method}_k{self.k}n{self.n}_{self.granularity}_b{self.bits}_e{self.epochs}_s{self.seed}"
        )


@dataclass
class LayerRecord:
    """One layer of the network run on one architecture's hardware."""

    arch: str
    array: str
    layer: int
    kind: str
    rows: int
    cols: int
    batch: int
    bit_exact: bool
    counters_match: bool
    cycles: int
    model_cycles: int
    mac_ops: int
    lane_idle_cycles: int
    weight_bits_read: int
    index_bits_read: int
    act_bits_read: int
    out_bits_written: int
    utilisation: float
    energy_pj: float
    storage_bits: int
    sim_seconds: float
    design: dict[str, Any] = field(default_factory=dict)


def _progress() -> Any:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )


# ------------------------------------------------------------------------------------------ train + export
def train_config(cfg: FlowConfig) -> Any:
    """The ``dpp.train.TrainConfig`` of the flow's run."""
    from dpp.train import TrainConfig

    return TrainConfig(
        model=cfg.model,
        method=cfg.method,
        k=cfg.k,
        n=cfg.n,
        granularity=cfg.granularity,
        bits=cfg.bits,
        epochs=cfg.epochs,
        seed=cfg.seed,
        data=cfg.data,
        normalize=cfg.normalize,
    )


def train_or_reuse(cfg: FlowConfig, results: Path, log: Callable[[str], None]) -> Path:
    """Train the flow's run into ``results/runs/<run>/`` unless an identical finished run is there."""
    from dpp.train import save_run, train

    tcfg = train_config(cfg)
    run_dir = results / "runs" / cfg.run_name
    cfg_file, result_file = run_dir / "config.json", run_dir / "result.json"
    if cfg_file.is_file() and result_file.is_file() and (run_dir / "checkpoint.pt").is_file():
        if json.loads(cfg_file.read_text("utf-8")) == json.loads(json.dumps(asdict(tcfg))):
            log(f"reusing trained run {run_dir}")
            return run_dir
    with _progress() as bar:
        task = bar.add_task(f"train {cfg.model} ({cfg.method} {cfg.k}/{cfg.n}, {cfg.bits}-bit)", total=cfg.epochs)
        result = train(
            tcfg,
            on_epoch=lambda rec: bar.update(task, advance=1, description=f"train: test acc {rec['test_accuracy']:.3f}"),
        )
    save_run(result, run_dir)
    log(f"trained {run_dir}: test accuracy {result.test_accuracy:.4f}, density {result.density:.4f}")
    return run_dir


# ------------------------------------------------------------------------------------------ hardware
def layer_matrix(arch: str, layer: Any) -> tuple[str, Any]:
    """The array a layer runs on in ``arch``'s design, and its weights in that array's format
    (:meth:`rtl.archs.ArrayArch.network_matrix`: a layer stored dense runs on the dense array in k-of-n's)."""
    array, matrix = arch_named(arch).network_matrix(layer)
    return array.arch, matrix


def design_for(array: str, cfg: FlowConfig, layer: Any, matrix: Any, sizes: dict[tuple, dict]) -> Any:
    """``ArrayParams`` of the build serving ``layer`` (sized to the largest layer sharing that build)."""
    from rtl.params import ArrayParams

    key = _build_key(array, matrix, layer)
    _, block, _ = key
    n = matrix.n if isinstance(matrix, KofNMatrix) else cfg.n
    dims = sizes[key]
    return ArrayParams(
        arch=array,
        k=cfg.k,
        n=n,
        pes=cfg.pes,
        weight_bits=layer.weight_bits,
        act_bits=layer.act_bits,
        out_bits=layer.out_bits,
        block=block,
        max_rows=dims["rows"],
        max_cols=dims["cols"],
        max_batch=dims["batch"],
        act_banks=banks_for(array, cfg.act_banks),
    )


def batch_chunk(cols: int) -> int:
    """Input vectors per hardware run of a layer with ``cols`` inputs: a power of two within ``ACT_BUDGET``."""
    fit = max(1, ACT_BUDGET // max(1, cols))
    return 1 << (fit.bit_length() - 1)


def _pow2(v: int) -> int:
    return 1 << max(0, int(v) - 1).bit_length()


def _build_key(array: str, matrix: Any, layer: Any) -> tuple:
    return (array, matrix.block if isinstance(matrix, KofNMatrix) else 1, layer.out_bits)


def storage_bits_of(matrix: Any, layer: Any) -> int:
    """Stored bits of a layer in its array's format (values, indices, pointers; dense: values only)."""
    if isinstance(matrix, (KofNMatrix, CSRMatrix)):
        return matrix.storage_bits().total_bits
    return dense_storage_bits(layer.rows, layer.cols, layer.weight_bits).total_bits


def _memory_bits(matrix: Any, layer: Any, batch: int) -> dict[str, int]:
    if isinstance(matrix, (KofNMatrix, CSRMatrix)):
        sb = matrix.storage_bits()
        weight, index = sb.value_bits, sb.index_bits + sb.pointer_bits
    else:
        weight, index = layer.rows * layer.cols * layer.weight_bits, 0
    return {
        "weight": weight,
        "index": index,
        "act": batch * layer.cols * layer.act_bits,
        "out": batch * layer.rows * layer.out_bits,
    }


def checked_layer_record(
    arch: str,
    index: int,
    layer: Any,
    mat: tuple[str, Any],
    params: Any,
    x: np.ndarray,
    runs: list[Any],
    ref: Any,
    *,
    chunk: int,
    sim_seconds: float,
    input_ok: bool = True,
    input_note: str = "the layer's input differs from the reference chain",
) -> tuple[LayerRecord, np.ndarray]:
    """The record and RTL output of layer ``index`` of ``arch``'s design, run as ``runs`` (chunks of ``x``) on
    ``mat`` = (array, weights in its format) of :func:`layer_matrix`.

    Raises :class:`SimulationError` unless the output equals the reference's (``ref.y``, on its input ``ref.x``
    = ``x``, and ``input_ok``; else ``input_note`` says why) and the summed counters equal the summed model's.
    ``chunk``: input vectors per hardware run (sizes the memories the energy counts); ``sim_seconds``: the
    time the runs took.
    """
    array, matrix = mat
    outputs = np.concatenate([r.outputs for r in runs])
    counters = {name: sum(int(r.counters[name]) for r in runs) for name in COUNTERS}
    model = {name: sum(int(r.model_counters[name]) for r in runs) for name in COUNTERS}
    exact = input_ok and all(r.bit_exact for r in runs) and np.array_equal(x, ref.x) and np.array_equal(outputs, ref.y)
    if not exact:
        where = next((r.first_mismatch() for r in runs if not r.bit_exact), None) or input_note
        raise SimulationError(f"{arch} design, layer {index}: RTL output is not bit-exact: {where}")
    if counters != model:
        bad = [f"{k}: model {model[k]}, RTL {counters[k]}" for k in COUNTERS if counters[k] != model[k]]
        raise SimulationError(
            f"{arch} design, layer {index}: counters differ from the analytic model: {'; '.join(bad)}"
        )
    lane_cycles = counters["mac_ops"] + counters["lane_idle_cycles"]
    energy = layer_energy(
        counters,
        weight_bits=layer.weight_bits,
        act_bits=layer.act_bits,
        acc_bits=int(params.acc_bits),
        memory_bits=_memory_bits(matrix, layer, min(len(x), chunk)),
        batch=x.shape[0],
    )
    record = LayerRecord(
        arch=arch,
        array=array,
        layer=index,
        kind=layer.kind,
        rows=layer.rows,
        cols=layer.cols,
        batch=int(x.shape[0]),
        bit_exact=True,
        counters_match=True,
        model_cycles=model["cycles"],
        utilisation=counters["mac_ops"] / lane_cycles if lane_cycles else 0.0,
        energy_pj=energy.total_pj,
        storage_bits=storage_bits_of(matrix, layer),
        sim_seconds=sim_seconds,
        design=params.to_dict(),
        **counters,
    )
    return record, outputs


def simulate_network(
    cfg: FlowConfig, network: Any, x_int: np.ndarray, arch: str, reference_io: list[Any], work: Path, bar: Any
) -> tuple[list[LayerRecord], np.ndarray, dict[str, Any]]:
    """Run every matmul of ``network`` in RTL on ``arch``'s design, chaining each layer's RTL output onward."""
    from sim.run import Layer, build_array, simulate_layers

    mats = [layer_matrix(arch, layer) for layer in network.layers]
    batches = [io.x.shape[0] for io in reference_io]
    sizes: dict[tuple, dict] = {}
    for (array, matrix), layer, b in zip(mats, network.layers, batches):
        d = sizes.setdefault(_build_key(array, matrix, layer), {"rows": 1, "cols": 1, "batch": 1})
        d["rows"], d["cols"], d["batch"] = max(d["rows"], layer.rows), max(d["cols"], layer.cols), max(d["batch"], b)
    for d in sizes.values():  # round up so flows of other image counts / similar nets reuse the cached builds
        d.update({key: _pow2(v) for key, v in d.items()})
        d["batch"] = min(d["batch"], batch_chunk(d["cols"]))  # memories hold at most ACT_BUDGET activations
    builds: dict[tuple, Any] = {}
    designs: dict[str, Any] = {}
    records: list[LayerRecord] = []

    def hook(index: int, layer: Any, x: np.ndarray) -> np.ndarray:
        array, matrix = mats[index]
        params = design_for(array, cfg, layer, matrix, sizes)
        key = _build_key(array, matrix, layer)
        if key not in builds:
            bar.update(task, description=f"{arch}: build {params.top_name} (out_bits={layer.out_bits})")
            builds[key] = build_array(params, simulator=cfg.simulator)
            designs["/".join(map(str, key))] = params.to_dict()
        bar.update(task, description=f"{arch}: layer {index} ({layer.rows}x{layer.cols}, batch {x.shape[0]})")
        t0 = time.perf_counter()
        step = sizes[key]["batch"]  # vectors per hardware run; a larger batch runs in chunks on the same build
        chunks = [
            Layer(matrix, x[i : i + step], layer.bias, layer.multiplier, layer.shift, layer.relu)
            for i in range(0, len(x), step)
        ]
        runs = simulate_layers(
            params, chunks, design=builds[key], simulator=cfg.simulator, workdir=work / f"{arch}_layer{index}"
        )
        seconds = time.perf_counter() - t0
        record, outputs = checked_layer_record(
            arch, index, layer, mats[index], params, x, runs, reference_io[index], chunk=step, sim_seconds=seconds
        )
        records.append(record)
        bar.advance(task)
        return outputs

    task = bar.add_task(f"{arch}: simulate", total=len(network.layers))
    outs, _ = network.run_with(x_int, hook)
    return records, np.argmax(outs[-1], axis=1), designs


def area_of_designs(designs: dict[str, dict[str, Any]], work: Path) -> dict[str, dict[str, Any]]:
    """ice40 synthesis (Yosys) of each distinct design, cached per design by :mod:`analysis.area`."""
    from analysis.area import area_of_params
    from rtl.params import ArrayParams

    out = {}
    for name, p in designs.items():
        folder = work / "area" / name.replace("/", "_").replace(":", "_")
        rep = area_of_params(ArrayParams.from_dict(p), folder, flows=["ice40"])
        out[name] = rep["ice40"].to_dict()
    return out


TIMING_FLOW = "ecp5"  #: the part each build's Fmax is measured on (analysis.timing.DEVICES)


def design_name(record: LayerRecord) -> str:
    """The ``designs`` key of the build a layer ran on (``<arch>:<array>/<block>/<out_bits>``)."""
    return f"{record.arch}:{record.array}/{record.design.get('block', 1)}/{record.design['out_bits']}"


def timing_of_designs(
    designs: dict[str, dict[str, Any]],
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, Any]]:
    """ECP5 place-and-route of each distinct build (:func:`analysis.timing.timing_of_params`, cached per design,
    the array as deployed: no performance counters): ``name -> TimingReport dict`` plus ``reason`` (empty, or
    why it has no Fmax: the one-line no-fit message, or the tool that failed or stopped)."""
    from analysis.timing import timing_or_reason
    from rtl.params import ArrayParams

    out = {}
    for name, p in designs.items():
        report, reason = timing_or_reason(ArrayParams.from_dict(p), TIMING_FLOW, counters=False)
        out[name] = {**(report.to_dict() if report is not None else {"fits": None, "fmax_mhz": None}), "reason": reason}
        cp = out[name].get("critical_path") or {}
        log(
            f"{name}: "
            + (
                f"Fmax {report.fmax_mhz} MHz on {report.part}, critical path through {' > '.join(cp.get('parts', []))}"
                if report is not None and report.fits
                else reason
            )
        )
    return out


def time_per_image(
    records: list[LayerRecord],
    timing: dict[str, dict[str, Any]],
    images: int,
) -> tuple[float, str]:
    """(seconds per image, reason) of one array: each layer's cycles at its own build's Fmax, summed; NaN and the
    builds' reasons when one of them has no Fmax."""
    total, reasons = 0.0, []
    for r in records:
        t = timing.get(design_name(r), {})
        fmax = t.get("fmax_mhz") if t.get("fits") else None
        if not fmax:
            reason = t.get("reason") or "not placed and routed"
            if f"{design_name(r)}: {reason}" not in reasons:
                reasons.append(f"{design_name(r)}: {reason}")
            continue
        total += r.cycles / (fmax * 1e6)
    return (float("nan"), "; ".join(reasons)) if reasons else (total / images, "")


def timing_summary(
    records: list[LayerRecord], timing: dict[str, dict[str, Any]], images: int, energy_per_image_pj: float
) -> dict[str, Any]:
    """An array's time per image, throughput, energy per image (J) and EDP at its builds' own Fmax, the Fmax and
    critical path of its main build (the one running the most cycles) and ``timing_message`` (why no time)."""
    from analysis.timing_metrics import per_inference_in

    time_s, reason = time_per_image(records, timing, images)
    cycles: dict[str, int] = {}
    for r in records:
        cycles[design_name(r)] = cycles.get(design_name(r), 0) + r.cycles
    main = timing.get(max(cycles, key=lambda name: cycles[name]), {}) if cycles else {}
    cp = main.get("critical_path") or {}
    per_image = {
        k.replace("inference", "image"): None if v != v else v  # NaN (no Fmax) is stored as null
        for k, v in per_inference_in(time_s, energy_per_image_pj).items()
    }
    return {
        "fmax_mhz": main.get("fmax_mhz") if main.get("fits") else None,
        "critical_path": " > ".join(cp.get("parts", [])),
        "timing_message": reason,
        **per_image,
    }


# ------------------------------------------------------------------------------------------ the flow
@dataclass
class PreparedNetwork:
    """One trained, exported network with everything the RTL runs are checked against."""

    method: str
    run_dir: Path
    net_dir: Path
    agreement: dict[str, Any]
    network: Any  #: dpp.network.IntNetwork
    x_int: np.ndarray  #: the quantised test images
    reference_io: list[Any]  #: each matmul layer's input and output on the integer reference chain
    torch_pred: np.ndarray
    ref_pred: np.ndarray


def prepare_network(
    cfg: FlowConfig, results: Path, data: Any, images: int, log: Callable[[str], None]
) -> PreparedNetwork:
    """Train (or reuse) ``cfg``'s run, export it, and run its torch model and integer reference on the images."""
    import torch

    from dpp.export import run_export
    from dpp.network import IntNetwork
    from dpp.train import load_run

    run_dir = train_or_reuse(cfg, results, log)
    net_dir = results / "nets" / cfg.run_name
    agreement = run_export(run_dir, net_dir)
    log(
        f"exported {net_dir}: integer vs torch predictions identical on {agreement['identical']}/"
        f"{agreement['images']} test images ({100 * agreement['agreement']:.2f} %)"
    )
    network = IntNetwork.load(net_dir)
    _, qnet = load_run(run_dir)
    x = data.x_test[:images]
    with torch.no_grad():
        torch_pred = qnet(x).argmax(dim=1).numpy()
    x_int = network.quantize_input(x.numpy())
    ref_outs, reference_io = network.run_with(x_int, lambda _i, layer, x: layer.matmul(x))
    return PreparedNetwork(
        cfg.method,
        run_dir,
        net_dir,
        agreement,
        network,
        x_int,
        reference_io,
        torch_pred,
        np.argmax(ref_outs[-1], axis=1),
    )  # as IntNetwork.predict, without a second pass


def run_flow(
    cfg: FlowConfig, results: str | Path, *, log: Callable[[str], None] = print, report: bool = True
) -> dict[str, Any]:
    """Run the whole flow into ``results``; returns (and writes) the ``flow.json`` summary."""
    from analysis.flow_model import check_flow_model_target
    from dpp.data import load_data
    from dpp.models import DATASET_OF
    from dpp.train import check_data_fits

    t_start = time.perf_counter()
    results = Path(results).resolve()
    check_flow_model_target(results)  # before any training: the flow's model table must not replace a sweep's
    data = load_data(cfg.data or DATASET_OF[cfg.model], normalize=cfg.normalize)  # a bad --data stops here
    check_data_fits(train_config(cfg), data)
    results.mkdir(parents=True, exist_ok=True)
    images = min(cfg.images, len(data.x_test))
    labels = data.y_test[:images].numpy()
    prepared: dict[str, PreparedNetwork] = {}  # by run name: the DPP net, and the CSR baseline's own

    def network_for(arch: str) -> PreparedNetwork:
        ncfg = cfg.network_config(arch)
        if ncfg.run_name not in prepared:
            prepared[ncfg.run_name] = prepare_network(ncfg, results, data, images, log)
        return prepared[ncfg.run_name]

    main = network_for("kofn")
    work = results / "flow_work"
    summary_arch: dict[str, Any] = {}
    records: list[LayerRecord] = []
    designs: dict[str, dict[str, Any]] = {}
    for arch in cfg.archs:
        network_for(arch)  # train and export before the progress bars start
    with _progress() as bar:
        for arch in cfg.archs:
            net = network_for(arch)
            recs, pred, des = simulate_network(cfg, net.network, net.x_int, arch, net.reference_io, work, bar)
            records += recs
            designs.update({f"{arch}:{k}": v for k, v in des.items()})
            summary_arch[arch] = dict(
                cycles=sum(r.cycles for r in recs),
                energy_pj=sum(r.energy_pj for r in recs),
                mac_ops=sum(r.mac_ops for r in recs),
                storage_bits=sum(r.storage_bits for r in recs),
                bit_exact=all(r.bit_exact for r in recs),
                counters_match=all(r.counters_match for r in recs),
                classes_equal_torch=int((pred == net.torch_pred).sum()),
                classes_equal_reference=int((pred == net.ref_pred).sum()),
                rtl_accuracy=float((pred == labels).mean()),
                trained_method=net.method,
                network=str(net.net_dir),
                torch_accuracy=float((net.torch_pred == labels).mean()),
            )
    for arch, s in summary_arch.items():
        s["cycles_per_image"] = s["cycles"] / images
        s["energy_per_image_pj"] = s["energy_pj"] / images
        if "kofn" in summary_arch and arch != "kofn":
            s["kofn_speedup"] = s["cycles"] / summary_arch["kofn"]["cycles"]
            s["kofn_energy_saving"] = s["energy_pj"] / summary_arch["kofn"]["energy_pj"]
    area = area_of_designs(designs, work) if cfg.area else {}
    timing = timing_of_designs(designs, log) if cfg.timing else {}
    for arch, s in summary_arch.items() if timing else ():
        s.update(timing_summary([r for r in records if r.arch == arch], timing, images, s["energy_per_image_pj"]))
    for arch, s in summary_arch.items() if timing and "kofn" in summary_arch else ():
        base, mine = summary_arch["kofn"]["time_per_image_s"], s["time_per_image_s"]
        if arch != "kofn":
            s["kofn_time_speedup"] = mine / base if mine is not None and base else None
    result = dict(
        schema=FLOW_SCHEMA,
        schema_version=1,
        config=asdict(cfg),
        run=str(main.run_dir),
        network=str(main.net_dir),
        images=images,
        export_agreement=main.agreement,
        torch_accuracy=float((main.torch_pred == labels).mean()),
        reference_accuracy=float((main.ref_pred == labels).mean()),
        archs=summary_arch,
        layers=[asdict(r) for r in records],
        designs=designs,
        area=area,
        timing=timing,
        seconds=round(time.perf_counter() - t_start, 1),
    )
    csr = network_for("csr") if "csr" in cfg.archs else main
    if csr is not main:
        result.update(csr_run=str(csr.run_dir), csr_network=str(csr.net_dir), csr_export_agreement=csr.agreement)
    atomic_write_text(results / FLOW_FILE, json.dumps(result, indent=2, default=_json_default) + "\n")
    _write_layers_csv(records, results / "flow_layers.csv")
    from analysis.flow_model import run_flow_model

    run_flow_model(result, results)  # the analytic model around this design: the report's design-space sections
    record_command(results, "flow", json.loads(json.dumps(asdict(cfg), default=_json_default)))
    if report:
        from analysis.report import build_report

        out = build_report(
            results, results / "report", report_command=f"dpp report {results} --out {results / 'report'}"
        )
        result["report"] = str(out.html)
    return result


def _json_default(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return list(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__}")


def _write_layers_csv(records: list[LayerRecord], path: Path) -> None:
    import pandas as pd

    rows = [{k: v for k, v in asdict(r).items() if k != "design"} for r in records]
    atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))


def flow_ok(result: dict[str, Any]) -> bool:
    """True when every layer of every design was bit-exact, counters matched and classes equal the reference."""
    return all(
        s["bit_exact"] and s["counters_match"] and s["classes_equal_reference"] == result["images"]
        for s in result["archs"].values()
    )
