"""``dpp flow --net NET/``: any exported integer network, every matmul layer on each array in RTL, layer by layer.

The network is a folder written by ``dpp export`` (or :meth:`dpp.network.IntNetwork.save` after
:func:`dpp.export.export_model`): a graph of matmul nodes and host ops. For each array of ``archs``
(:data:`rtl.archs.ARCHS`) the whole network runs on ``images`` test images of ``--data``:

* every **matmul layer** runs on the array in RTL (:func:`sim.run.simulate_layers` on a build from
  :func:`sim.run.build_array`, sized to the largest layer sharing it; layer shape and requantisation are run-time
  registers). A convolution runs through im2col as the integer reference lowers it; a **grouped or depthwise
  convolution runs as one matmul per group** (group g's ``out/groups`` filters times the im2col of its
  ``in/groups`` channels: a depthwise 3x3 conv is ``channels`` matmuls of one row by 9 columns), each its own
  layer of the network (:mod:`dpp.network`); the groups of one conv share one simulator process (the first
  group on its chained input, the others on their reference inputs, each checked equal to its own chained input
  when the network reaches it, so every group still runs on exactly what the hardware chain feeds it). In the
  k-of-n design a layer stored k-of-n runs on the k-of-n array
  (built with that layer's k, n and block); a layer stored dense (left unpruned) runs on the dense array with the
  same ``pes * k`` multipliers; the dense and CSR designs run every layer in their own format.
* every **other op** (residual add, max / average / global pooling, concatenation, clamps, reshapes) runs on the
  **host** in the integer reference (:mod:`dpp.reference`), between the layers.

Each layer's input is the previous layers' hardware output after the host ops (:meth:`IntNetwork.execute` with a
hook that runs the RTL), its output must equal the integer reference bit for bit (on the reference chain), its
counters must equal :func:`sim.model.predict_counters`, and the classes the RTL logits give are compared with the
torch model's (rebuilt from the run recorded in the network's ``meta``, when there is one) and the reference's.

MACs (the ``mac_share``): a matmul layer counts ``rows * cols`` multiply-accumulates per input vector (its dense
work, whatever the array skips); on the host an average / global pooling counts its window's accumulations per
output, a residual add 2 per output (each input times its integer multiplier); max-pooling, clamps, reshapes and
concatenations count none (comparisons and moves; requantisation is not counted anywhere). ``mac_share`` = MACs
on the arrays / all MACs.

Writes ``DIR/flow_net.json`` (schema :data:`FLOW_NET_SCHEMA`), ``DIR/flow_net_layers.csv`` (one row per layer and
array, the columns of :class:`analysis.flow.LayerRecord`) and ``DIR/report.md`` (which op ran where, the MAC
share, and per array cycles, energy and agreement).
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from analysis.flow import (
    LayerRecord,
    _json_default,
    _pow2,
    _write_layers_csv,
    batch_chunk,
    checked_layer_record,
    layer_matrix,
)
from dpp.checks import check_int
from dpp.errors import DPPError
from dpp.kofn import KofNMatrix
from dpp.progress import step
from dpp.reference import pair
from dpp.serialize import atomic_write_text
from rtl.archs import ARCHS

FLOW_NET_FILE = "flow_net.json"
FLOW_NET_SCHEMA = "dpp.flow_net"
HOST_MACS_PER_OUTPUT = {"add": 2}  #: host ops with a fixed MAC count per output value (pooling: its window)


@dataclass
class NetFlowConfig:
    """What ``dpp flow --net`` runs: the network folder, the images and the arrays."""

    net: str
    data: str
    images: int = 100
    archs: tuple[str, ...] = ARCHS
    pes: int = 4
    k: int | None = None  #: multipliers per PE; default: the largest k of the network's k-of-n layers (else 1)
    normalize: str | None = None  #: must be the network's own (meta) if given
    simulator: str = "verilator"

    def __post_init__(self) -> None:
        check_int("images", self.images, lo=1)
        check_int("pes", self.pes, lo=1, hi=64)
        if self.k is not None:
            check_int("k", self.k, lo=1, hi=63)
        self.archs = tuple(self.archs)
        bad = [a for a in self.archs if a not in ARCHS]
        if bad or not self.archs:
            raise DPPError(f"--archs must be a non-empty subset of {','.join(ARCHS)} (got {','.join(self.archs)})")


def parse_archs(text: str) -> tuple[str, ...]:
    """``"kofn,dense"`` → ``("kofn", "dense")`` (checked by :class:`NetFlowConfig`)."""
    return tuple(a.strip() for a in text.split(",") if a.strip())


# ------------------------------------------------------------------------------------ the network and its data
def design_lanes(network: Any, k: int | None) -> tuple[int, int]:
    """``(k, n)`` of the dense and CSR designs (and the dense array of the k-of-n design): ``k`` if given, else
    the largest k of the network's k-of-n layers (1 without any), and their most common n (``k + 1`` without any);
    a k-of-n layer always runs on a k-of-n array built with its own k and n."""
    kofn = [layer.weights for layer in network.layers if isinstance(layer.weights, KofNMatrix)]
    if k is None:
        k = max((w.k for w in kofn), default=1)
    ns = Counter(w.n for w in kofn)
    n = ns.most_common(1)[0][0] if ns else k + 1
    return k, max(n, k + 1)


def network_data(cfg: NetFlowConfig, network: Any) -> Any:
    """The test images of ``cfg.data``, normalised as the network was trained (``meta["normalization"]``)."""
    from dpp.data import Normalization, load_data, parse_normalize

    recorded = network.meta.get("normalization")
    norm = Normalization.from_json(recorded) if isinstance(recorded, dict) and "mean" in recorded else None
    if cfg.normalize is not None:
        given = parse_normalize(cfg.normalize)
        if norm is not None and given != norm:
            raise DPPError(
                f"--normalize {cfg.normalize!r} differs from the network's own ({norm.text}); omit "
                "--normalize to use it"
            )
        norm = given
    data = load_data(cfg.data, normalize=norm)
    shape = tuple(int(v) for v in data.x_test.shape[1:])
    if shape != tuple(network.input_shape):
        raise DPPError(
            f"--data {cfg.data!r} has images of shape {list(shape)}, the network takes {list(network.input_shape)}"
        )
    return data


def torch_predictions(network: Any, x: Any) -> np.ndarray | None:
    """Classes of the torch model the network was exported from (its run in ``meta``), or None without one."""
    import torch

    from dpp.train import load_run

    run = network.meta.get("run")
    if not run or not (Path(run) / "config.json").is_file():
        return None
    _, model = load_run(run)
    if network.meta.get("weight_bits") is not None:
        model.bits = int(network.meta["weight_bits"])
    elif model.bits is None:
        model.bits = 8  # as dpp export quantises a full-precision run
    with torch.no_grad():
        return model(x).reshape(len(x), -1).argmax(dim=1).numpy()


def placement(network: Any, x_int: np.ndarray, archs: tuple[str, ...]) -> tuple[list[dict[str, Any]], float]:
    """Per node: its op, where it runs (``array`` / ``host``), which array runs each of its layers in each
    design, and its MACs per image (module docstring); plus the share of MACs on the arrays."""
    nodes: list[dict[str, Any]] = []

    def record(node: dict[str, Any], y: np.ndarray) -> None:
        op = node["op"]
        per_image = int(np.prod(y.shape[1:]))
        entry: dict[str, Any] = dict(
            name=node["name"],
            op=op,
            inputs=list(node["inputs"]),
            where="array" if op == "matmul" else "host",
            shape=list(y.shape[1:]),
        )
        if op == "matmul":
            layers = [network.layers[i] for i in node["layers"]]
            vectors = per_image // sum(layer.rows for layer in layers)  # output positions per image
            entry.update(
                layers=list(node["layers"]),
                groups=len(layers),
                macs=sum(layer.rows * layer.cols for layer in layers) * vectors,
                arrays={arch: sorted({layer_matrix(arch, layer)[0] for layer in layers}) for arch in archs},
            )
        elif op in ("avgpool", "global_avgpool"):
            window = math.prod(pair("kernel", node["kernel"])) if op == "avgpool" else _spatial(nodes, node, network)
            entry.update(macs=per_image * window)
        else:
            entry.update(macs=per_image * HOST_MACS_PER_OUTPUT.get(op, 0))
        nodes.append(entry)

    network.execute(x_int[:1], on_node=record)
    on_array = sum(n["macs"] for n in nodes if n["where"] == "array")
    total = sum(n["macs"] for n in nodes)
    return nodes, on_array / total if total else 1.0


def _spatial(done: list[dict[str, Any]], node: dict[str, Any], network: Any) -> int:
    """H * W of a global pooling's input (the node that feeds it, or the network input)."""
    src = node["inputs"][0]
    shape = next((n["shape"] for n in done if n["name"] == src), list(network.input_shape))
    return int(shape[-1] * shape[-2])


# ------------------------------------------------------------------------------------------ hardware
def _build_key(array: str, matrix: Any, layer: Any, k: int, n: int) -> tuple:
    if isinstance(matrix, KofNMatrix):
        return (array, matrix.k, matrix.n, matrix.block, layer.weight_bits, layer.out_bits)
    return (array, k, n, 1, layer.weight_bits, layer.out_bits)


def _params(key: tuple, cfg: NetFlowConfig, layer: Any, dims: dict[str, int]) -> Any:
    from rtl.params import ArrayParams

    array, k, n, block, weight_bits, out_bits = key
    return ArrayParams(
        arch=array,
        k=k,
        n=n,
        pes=cfg.pes,
        weight_bits=weight_bits,
        act_bits=layer.act_bits,
        out_bits=out_bits,
        block=block,
        max_rows=dims["rows"],
        max_cols=dims["cols"],
        max_batch=dims["batch"],
        bias_bits=dims["bias_bits"],
    )


def simulate_network(
    cfg: NetFlowConfig, network: Any, x_int: np.ndarray, arch: str, reference_io: list[Any], work: Path
) -> tuple[list[LayerRecord], np.ndarray, dict]:
    """Run every layer of ``network`` on ``arch``'s design in RTL, chaining the hardware outputs through the
    host ops; returns the layer records, the network's output (RTL logits) and the designs built."""
    from rtl.params import bias_bits_for
    from sim.run import Layer, build_array, simulate_layers

    k, n = design_lanes(network, cfg.k)
    mats = [layer_matrix(arch, layer) for layer in network.layers]
    keys = [_build_key(array, matrix, layer, k, n) for (array, matrix), layer in zip(mats, network.layers, strict=True)]
    sizes: dict[tuple, dict[str, int]] = {}
    for key, layer, io in zip(keys, network.layers, reference_io, strict=True):
        d = sizes.setdefault(key, {"rows": 1, "cols": 1, "batch": 1, "bias_bits": 1})
        d["rows"], d["cols"] = max(d["rows"], layer.rows), max(d["cols"], layer.cols)
        d["batch"] = max(d["batch"], io.x.shape[0])
        d["bias_bits"] = max(d["bias_bits"], bias_bits_for(layer.bias))
    for d in sizes.values():  # powers of two, as dpp flow, so similar networks reuse the cached builds
        d.update({name: _pow2(d[name]) for name in ("rows", "cols", "batch")})
        d["batch"] = min(d["batch"], batch_chunk(d["cols"]))
    builds: dict[tuple, Any] = {}
    designs: dict[str, Any] = {}
    records: list[LayerRecord] = []

    node_layers = {i: node["layers"] for node in network.nodes if node["op"] == "matmul" for i in node["layers"]}
    pending: dict[int, tuple[np.ndarray, list[Any], float]] = {}  #: layer -> (input it ran on, runs, seconds)

    def params_of(key: tuple, layer: Any) -> Any:
        params = _params(key, cfg, layer, sizes[key])
        if key not in builds:
            builds[key] = build_array(params, simulator=cfg.simulator)
            designs["/".join(map(str, key))] = params.to_dict()
        return params

    def run_groups(index: int, x: np.ndarray) -> None:
        """Simulate layer ``index`` on its chained input, and the later groups of its node (same build) on
        their reference inputs, in one simulator process; the hook checks each later group's chained input
        equals the one it ran on when the network reaches it."""
        key = keys[index]
        later = [i for i in node_layers[index] if i > index and keys[i] == key]
        todo = [(index, x)] + [(i, reference_io[i].x) for i in later]
        params, chunk = params_of(key, network.layers[index]), sizes[key]["batch"]
        jobs, owner = [], []
        for i, xi in todo:
            lay = network.layers[i]
            for s in range(0, len(xi), chunk):
                jobs.append(Layer(mats[i][1], xi[s : s + chunk], lay.bias, lay.multiplier, lay.shift, lay.relu))
                owner.append(i)
        what = f"layer {index + 1}" if not later else f"layers {index + 1}-{later[-1] + 1} (one per conv group)"
        layer = network.layers[index]
        t0 = time.perf_counter()
        with step(
            f"{arch} design: {what} of {len(network.layers)} on the {mats[index][0]} array "
            f"({layer.rows}x{layer.cols}, {x.shape[0]} input vectors)"
        ):
            runs = simulate_layers(
                params, jobs, design=builds[key], simulator=cfg.simulator, workdir=work / f"{arch}_layer{index}"
            )
        seconds = (time.perf_counter() - t0) / len(todo)
        for i, xi in todo:
            pending[i] = (xi, [r for r, o in zip(runs, owner, strict=True) if o == i], seconds)

    def hook(index: int, layer: Any, x: np.ndarray) -> np.ndarray:
        if index not in pending:
            run_groups(index, x)
        x_run, runs, seconds = pending.pop(index)
        key = keys[index]
        params, chunk = params_of(key, layer), sizes[key]["batch"]
        record, outputs = checked_layer_record(
            arch,
            index,
            layer,
            mats[index],
            params,
            x,
            runs,
            reference_io[index],
            chunk=chunk,
            sim_seconds=seconds,
            input_ok=np.array_equal(x, x_run),
            input_note="its input differs from the integer reference chain",
        )
        records.append(record)
        return outputs

    ex = network.execute(x_int, hook)
    return records, ex.output, designs


# ------------------------------------------------------------------------------------------ the flow
def run_flow_net(cfg: NetFlowConfig, out: str | Path) -> dict[str, Any]:
    """Run ``cfg``'s network on every array in RTL into ``out``; returns (and writes) ``flow_net.json``."""
    from dpp.network import IntNetwork

    t_start = time.perf_counter()
    out = Path(out).resolve()
    network = IntNetwork.load(cfg.net)
    data = network_data(cfg, network)
    images = min(cfg.images, len(data.x_test))
    x = data.x_test[:images]
    labels = data.y_test[:images].numpy()
    x_int = network.quantize_input(x.numpy())
    reference = network.execute(x_int, keep_io=True)
    ref_pred = _classes(reference.output)
    torch_pred = torch_predictions(network, x)
    nodes, share = placement(network, x_int, cfg.archs)
    out.mkdir(parents=True, exist_ok=True)
    work = out / "flow_work"
    summary: dict[str, Any] = {}
    records: list[LayerRecord] = []
    designs: dict[str, Any] = {}
    for arch in cfg.archs:
        recs, logits, des = simulate_network(cfg, network, x_int, arch, reference.io, work)
        pred = _classes(logits)
        records += recs
        designs.update({f"{arch}:{key}": v for key, v in des.items()})
        summary[arch] = dict(
            cycles=sum(r.cycles for r in recs),
            energy_pj=sum(r.energy_pj for r in recs),
            mac_ops=sum(r.mac_ops for r in recs),
            storage_bits=sum(r.storage_bits for r in recs),
            bit_exact=all(r.bit_exact for r in recs),
            counters_match=all(r.counters_match for r in recs),
            classes_equal_reference=int((pred == ref_pred).sum()),
            classes_equal_torch=None if torch_pred is None else int((pred == torch_pred).sum()),
            rtl_accuracy=float((pred == labels).mean()),
            layers=len(recs),
            arrays=dict(Counter(r.array for r in recs)),
        )
        summary[arch].update(
            cycles_per_image=summary[arch]["cycles"] / images, energy_per_image_pj=summary[arch]["energy_pj"] / images
        )
    if "kofn" in summary:
        for arch, s in summary.items():
            if arch != "kofn":
                s["kofn_speedup"] = s["cycles"] / summary["kofn"]["cycles"]
                s["kofn_energy_saving"] = s["energy_pj"] / summary["kofn"]["energy_pj"]
    k, n = design_lanes(network, cfg.k)
    result = dict(
        schema=FLOW_NET_SCHEMA,
        schema_version=1,
        config=asdict(cfg),
        network=str(Path(cfg.net).resolve()),
        meta=network.meta,
        images=images,
        k=k,
        n=n,
        pes=cfg.pes,
        reference_accuracy=float((ref_pred == labels).mean()),
        torch_accuracy=None if torch_pred is None else float((torch_pred == labels).mean()),
        torch_available=torch_pred is not None,
        mac_share=share,
        macs_per_image=sum(nd["macs"] for nd in nodes),
        nodes=nodes,
        archs=summary,
        layers=[{k2: v for k2, v in asdict(r).items() if k2 != "design"} for r in records],
        designs=designs,
        seconds=round(time.perf_counter() - t_start, 1),
    )
    atomic_write_text(out / FLOW_NET_FILE, json.dumps(result, indent=2, default=_json_default) + "\n")
    _write_layers_csv(records, out / "flow_net_layers.csv")
    atomic_write_text(out / "report.md", report_markdown(result))
    return result


def _classes(logits: np.ndarray) -> np.ndarray:
    return np.argmax(logits.reshape(logits.shape[0], -1), axis=1)


def flow_net_ok(result: dict[str, Any]) -> bool:
    """Every layer bit-exact, counters equal to the model, RTL classes equal to the reference (and to torch)."""
    return all(
        s["bit_exact"]
        and s["counters_match"]
        and s["classes_equal_reference"] == result["images"]
        and s["classes_equal_torch"] in (None, result["images"])
        for s in result["archs"].values()
    )


def report_markdown(result: dict[str, Any]) -> str:
    """``report.md``: which op ran where, the share of MACs on the arrays, and per array the headline numbers."""
    images = result["images"]
    lines = [
        f"# {Path(result['network']).name}: every matmul layer in RTL ({images} images)",
        "",
        f"Network {result['network']}; {result['pes']} PEs x k={result['k']} multipliers per array. "
        f"MACs on the arrays: **{100 * result['mac_share']:.2f} %** of "
        f"{result['macs_per_image']:,} per image; the rest ran on the host in the integer reference.",
        "",
        "| node | op | runs on | layers | MACs / image |",
        "|---|---|---|---|---|",
    ]
    for nd in result["nodes"]:
        where = (
            nd["where"]
            if nd["where"] == "host"
            else "array: " + "; ".join(f"{a} design: {'+'.join(arrs)}" for a, arrs in nd["arrays"].items())
        )
        layers = f"{nd['groups']} (one per group)" if nd.get("groups", 1) > 1 else str(len(nd.get("layers", [])))
        lines.append(f"| {nd['name']} | {nd['op']} | {where} | {layers} | {nd['macs']:,} |")
    lines += [
        "",
        "| design | bit-exact | counters = model | classes = reference | classes = torch | RTL accuracy "
        "| cycles / image | energy / image (nJ) | k-of-n speed-up |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arch, s in result["archs"].items():
        torch_eq = "-" if s["classes_equal_torch"] is None else f"{s['classes_equal_torch']}/{images}"
        speedup = f"{s['kofn_speedup']:.2f}x" if "kofn_speedup" in s else "-"
        lines.append(
            f"| {arch} | {'yes' if s['bit_exact'] else 'NO'} | {'yes' if s['counters_match'] else 'NO'} "
            f"| {s['classes_equal_reference']}/{images} | {torch_eq} | {s['rtl_accuracy']:.3f} "
            f"| {s['cycles_per_image']:,.0f} | {s['energy_per_image_pj'] / 1000:.2f} | {speedup} |"
        )
    return "\n".join(lines) + "\n"
