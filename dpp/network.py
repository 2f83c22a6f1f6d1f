"""``IntNetwork``: a whole quantised classifier in integers, a graph of :mod:`dpp.reference` ops.

Every matmul runs :func:`dpp.reference.linear_int` (convolutions by im2col, one matrix per group), so the
hardware can replace any layer bit for bit; the other nodes (pooling, residual add, concatenation, clamps,
reshapes) are the integer ops of :mod:`dpp.reference`, run on the host.

On disk (``save(dir)`` / ``IntNetwork.load(dir)``): ``dir/network.json`` (schema ``dpp.network``,
``schema_version`` 2) holds ``input_shape``, ``input_scale``, ``act_bits``, ``nodes``, ``output``, ``layers``
and ``meta``. ``nodes`` lists the graph in execution order, each ``{"name", "op", "inputs", ...}``; ``inputs``
name earlier nodes or ``"input"`` (the quantised image); ``output`` names the node whose value is the logits.
Ops and their keys (the integer semantics are :mod:`dpp.reference`'s):

* ``matmul``: ``layers`` (indices into ``layers``: one for a linear or plain conv layer, one per group for a
  grouped / depthwise conv; every layer belongs to exactly one node, in order);
* ``maxpool``: ``kernel``, ``stride``, ``padding``; ``avgpool``: the same plus ``multiplier``, ``shift``,
  ``out_bits``; ``global_avgpool``: ``keepdim``, ``multiplier``, ``shift``, ``out_bits``;
* ``add`` (two inputs): ``multipliers`` (two), ``shift``, ``relu``, ``out_bits``; ``concat`` (along channels):
  ``multipliers``, ``shifts`` (one per input), ``out_bits``; ``clamp``: ``lo``, ``hi`` (integers);
* ``reshape``: ``shape`` (per image, ``-1`` allowed; PyTorch's row-major order, like ``nn.Flatten``).

``kernel`` / ``stride`` / ``padding`` are an int or an ``[h, w]`` pair. Each matmul layer's entry in ``layers``
has its kind (``linear`` / ``conv2d``), format, bias (int list), ``multiplier``, ``shift`` (per-layer
scalars), ``relu``, ``out_bits``, ``act_bits``, ``weight_bits``, ``granularity``, ``block``, ``k``, ``n`` and
the conv geometry of its group (``in_channels``, ``out_channels``, ``kh``, ``kw``, ``stride``, ``padding``).
Its weights are the pair ``dir/layer<i>.npz/.json``: a :class:`~dpp.kofn.KofNMatrix` when the layer is k-of-n
along its reduction dimension (``format: "kofn"``, weight or kernel granularity), else a dense signed integer
matrix ``weights`` of shape ``(rows, cols)`` (``format: "dense"``, schema ``dpp.dense_int``: dense and
unstructured baselines, filter granularity, layers left unpruned).

Version-1 files (a chain of ``ops``: ``matmul`` with ``layer``, ``maxpool`` with ``kernel`` = stride,
``flatten``) still load: they become the equivalent chain of nodes. Convolutions are lowered by im2col: the
matrix is ``weight.reshape(out, C*kh*kw)`` of the group (PyTorch's channel-major order, so a kernel-granularity
slot is ``block = kh*kw`` consecutive columns) and the input matrix has one row per (image, output y, output
x), in that order. Activations are NCHW (or ``(batch, features)``) int64 arrays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dpp.checks import check_int, check_int_array
from dpp.errors import DPPError, FormatError
from dpp.kofn import KofNMatrix
from dpp.reference import (
    add_int,
    avgpool_int,
    clamp_int,
    concat_int,
    conv_group_inputs,
    conv_merge_groups,
    global_avgpool_int,
    im2col,  # noqa: F401  (re-exported: its home was this module)
    linear_int,
    maxpool_int,
    pair,
)
from dpp.serialize import atomic_write_text, load_arrays, read_manifest, require_keys, save_arrays

NETWORK_SCHEMA = "dpp.network"
DENSE_SCHEMA = "dpp.dense_int"
SCHEMA_VERSION = 2  #: network.json; version 1 (a chain of ops) still loads
READABLE_VERSIONS = (1, 2)
DENSE_SCHEMA_VERSION = 1  #: the dense weight files did not change
LAYER_KINDS = ("linear", "conv2d")
OP_KINDS = ("matmul", "maxpool", "flatten")  #: the ops of a version-1 chain
INPUT = "input"
NODE_KEYS = {  #: each node op and the keys it needs besides name, op and inputs
    "matmul": ("layers",),
    "maxpool": ("kernel", "stride", "padding"),
    "avgpool": ("kernel", "stride", "padding", "multiplier", "shift", "out_bits"),
    "global_avgpool": ("keepdim", "multiplier", "shift", "out_bits"),
    "add": ("multipliers", "shift", "relu", "out_bits"),
    "concat": ("multipliers", "shifts", "out_bits"),
    "clamp": ("lo", "hi"),
    "reshape": ("shape",),
}
NODE_OPS = tuple(NODE_KEYS)


@dataclass
class IntLayer:
    """One matmul layer: weights (KofNMatrix or dense int matrix), bias and requantisation."""

    kind: str
    weights: KofNMatrix | np.ndarray
    bias: np.ndarray
    multiplier: int
    shift: int
    relu: bool
    out_bits: int
    act_bits: int = 8
    weight_bits: int = 8
    granularity: str | None = None
    geometry: dict[str, Any] = field(default_factory=dict)  #: conv group: in/out_channels, kh, kw, stride, padding

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise DPPError(f"layer kind must be one of {LAYER_KINDS} (got {self.kind!r})")
        if not isinstance(self.weights, KofNMatrix):
            self.weights = check_int_array("weights", self.weights, bits=self.weight_bits, ndim=2)
        rows = self.rows
        self.bias = check_int_array("bias", self.bias, ndim=1)
        if self.bias.shape != (rows,):
            raise DPPError(f"bias must have shape ({rows},) (got {self.bias.shape})")
        if self.kind == "conv2d":
            require_keys(self.geometry, ["in_channels", "out_channels", "kh", "kw", "stride", "padding"], "conv2d")
            g = self.geometry
            if g["out_channels"] != rows or g["in_channels"] * g["kh"] * g["kw"] != self.cols:
                raise DPPError(f"conv geometry {g} does not match the {rows}x{self.cols} weight matrix")
            pair("stride", g["stride"], lo=1)
            pair("padding", g["padding"])

    @property
    def format(self) -> str:
        return "kofn" if isinstance(self.weights, KofNMatrix) else "dense"

    @property
    def rows(self) -> int:
        return self.weights.rows if isinstance(self.weights, KofNMatrix) else self.weights.shape[0]

    @property
    def cols(self) -> int:
        return self.weights.cols if isinstance(self.weights, KofNMatrix) else self.weights.shape[1]

    def dense_weights(self) -> np.ndarray:
        """The int64 ``(rows, cols)`` weight matrix, whatever the format."""
        return self.weights.to_dense() if isinstance(self.weights, KofNMatrix) else self.weights

    def matmul(self, x: np.ndarray) -> np.ndarray:
        """:func:`linear_int` on an input matrix (im2col rows for a conv)."""
        return linear_int(
            x, self.weights, self.bias, self.multiplier, self.shift, self.out_bits, self.relu, act_bits=self.act_bits
        )


@dataclass
class LayerIO:
    """What the hardware needs to run one layer and compare bit for bit: ``y == linear_int(x, W, ...)``."""

    x: np.ndarray  #: input matrix (im2col rows for conv), int64 (rows_in, cols)
    W: KofNMatrix | np.ndarray
    bias: np.ndarray
    multiplier: int
    shift: int
    relu: bool
    out_bits: int
    act_bits: int
    y: np.ndarray  #: the layer's output matrix (before pooling), int64 (rows_in, out)


MatmulHook = Callable[[int, IntLayer, np.ndarray], np.ndarray]


@dataclass
class Execution:
    """One run of the network: its output, each matmul node's stage output, and each layer's input/output."""

    output: np.ndarray  #: the value of the output node (the logits)
    stages: list[np.ndarray]  #: per matmul node: its output, after the max-pools that alone follow it
    io: list[LayerIO]  #: per layer (per group of a grouped conv), in layer order; empty unless asked for


def nodes_from_ops(ops: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """A version-1 chain of ``ops`` as version-2 ``(nodes, output)``: node i is named ``<op><i>``."""
    nodes: list[dict[str, Any]] = []
    prev = INPUT
    for i, op in enumerate(ops):
        kind = op.get("op") if isinstance(op, dict) else None
        name = f"{kind}{i}"
        if kind == "matmul":
            nodes.append(dict(name=name, op="matmul", inputs=[prev], layers=[op.get("layer")]))
        elif kind == "maxpool":
            nodes.append(
                dict(
                    name=name, op="maxpool", inputs=[prev], kernel=op.get("kernel"), stride=op.get("kernel"), padding=0
                )
            )
        elif kind == "flatten":
            nodes.append(dict(name=name, op="reshape", inputs=[prev], shape=[-1]))
        else:
            raise DPPError(f"op must be one of {OP_KINDS} (got {op!r})")
        prev = name
    if not nodes:
        raise DPPError("a network needs at least one op")
    return nodes, prev


def _check_node(node: Any, known: set[str], layers: list[IntLayer]) -> dict[str, Any]:
    """One node's structure (op, keys, inputs, layers); its values are checked when it runs."""
    if not isinstance(node, dict) or not isinstance(node.get("name"), str) or not node["name"]:
        raise DPPError(f"a node must be an object with a non-empty string name (got {node!r})")
    name = node["name"]
    if name == INPUT or name in known:
        raise DPPError(f"node name {name!r} is {'reserved' if name == INPUT else 'used twice'}")
    op = node.get("op")
    if op not in NODE_KEYS:
        raise DPPError(f"node {name!r}: op must be one of {NODE_OPS} (got {op!r})")
    missing = [k for k in ("inputs",) + NODE_KEYS[op] if k not in node]
    if missing:
        raise DPPError(f"node {name!r} ({op}) lacks key {missing[0]!r}")
    inputs = node["inputs"]
    want = 2 if op == "add" else None if op == "concat" else 1
    if not isinstance(inputs, list) or not inputs or (want is not None and len(inputs) != want):
        raise DPPError(f"node {name!r} ({op}) needs {want or 'one or more'} input(s) (got {inputs!r})")
    for i in inputs:
        if i != INPUT and i not in known:
            raise DPPError(f"node {name!r}: input {i!r} is not the network input or an earlier node")
    if op == "matmul":
        idx = node["layers"]
        if not isinstance(idx, list) or not idx or not all(isinstance(i, int) and 0 <= i < len(layers) for i in idx):
            raise DPPError(f"node {name!r}: layers must list layer indices in [0, {len(layers)}) (got {idx!r})")
        group = [layers[i] for i in idx]
        if len({lay.kind for lay in group}) != 1 or (group[0].kind == "linear" and len(group) != 1):
            raise DPPError(
                f"node {name!r}: a grouped matmul needs conv2d layers only (got {[lay.kind for lay in group]})"
            )
        geo = [{k: v for k, v in lay.geometry.items() if k != "out_channels"} for lay in group]
        if any(g != geo[0] for g in geo):
            raise DPPError(f"node {name!r}: the groups of a conv must share their geometry (got {geo})")
    return dict(node)


class IntNetwork:
    """An integer classifier: a graph of ``nodes`` over matmul ``layers``; see the module docstring.

    ``ops`` (a version-1 chain) or ``nodes`` (+ ``output``, default the last node) define the graph.
    """

    def __init__(
        self,
        layers: list[IntLayer],
        ops: list[dict[str, Any]] | None = None,
        *,
        nodes: list[dict[str, Any]] | None = None,
        output: str | None = None,
        input_shape: tuple[int, ...],
        input_scale: float,
        act_bits: int = 8,
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.layers = list(layers)
        if (ops is None) == (nodes is None):
            raise DPPError("give either ops (a version-1 chain) or nodes (a graph)")
        if ops is not None:
            nodes, output = nodes_from_ops(list(ops))
        assert nodes is not None
        if not isinstance(nodes, list) or not nodes:
            raise DPPError("nodes must be a non-empty list")
        known: set[str] = set()
        self.nodes: list[dict[str, Any]] = []
        for node in nodes:
            self.nodes.append(_check_node(node, known, self.layers))
            known.add(node["name"])
        self.output = self.nodes[-1]["name"] if output is None else output
        if self.output not in known:
            raise DPPError(f"output must name a node (got {self.output!r})")
        used = [i for node in self.nodes if node["op"] == "matmul" for i in node["layers"]]
        if used != list(range(len(self.layers))):
            raise DPPError(f"matmul nodes must use layers 0..{len(self.layers) - 1} in order, each once (got {used})")
        self.input_shape = tuple(int(v) for v in input_shape)
        self.input_scale = float(input_scale)
        self.act_bits = check_int("act_bits", act_bits, lo=2, hi=16)
        self.meta = dict(meta or {})
        self.execute(np.zeros((1,) + self.input_shape, dtype=np.int64))  # every shape and value checked once

    # ----------------------------------------------------------------------------------------- running
    def quantize_input(self, images: Any) -> np.ndarray:
        """Float images (values in [0, 1]) → signed act_bits ints: ``floor(x / input_scale + 1/2)``, clipped."""
        x = np.asarray(images, dtype=np.float64)
        if x.ndim == 0 or x.size % int(np.prod(self.input_shape)):
            raise DPPError(f"images must hold whole images of shape {self.input_shape} (got shape {x.shape})")
        x = x.reshape((-1,) + self.input_shape)
        lo, hi = -(1 << (self.act_bits - 1)), (1 << (self.act_bits - 1)) - 1
        return np.clip(np.floor(x / self.input_scale + 0.5), lo, hi).astype(np.int64)

    def _matmul(
        self, node: dict[str, Any], x: np.ndarray, hook: MatmulHook | None, ios: list[LayerIO] | None
    ) -> np.ndarray:
        idx = node["layers"]
        first = self.layers[idx[0]]

        def run(i: int, cols: np.ndarray) -> np.ndarray:
            layer = self.layers[i]
            y = hook(i, layer, cols) if hook else layer.matmul(cols)
            if ios is not None:
                ios.append(self._io(layer, cols, y))
            return y

        if first.kind == "linear":
            if x.ndim != 2 or x.shape[1] != first.cols:
                raise DPPError(f"expected a (batch, {first.cols}) input (got shape {x.shape})")
            return run(idx[0], x)
        g = first.geometry
        if x.ndim != 4 or x.shape[1] != g["in_channels"] * len(idx):
            raise DPPError(f"expected NCHW input with {g['in_channels'] * len(idx)} channels (got shape {x.shape})")
        mats, oh, ow = conv_group_inputs(x, (g["kh"], g["kw"]), g["stride"], g["padding"], len(idx))
        return conv_merge_groups([run(i, m) for i, m in zip(idx, mats, strict=True)], x.shape[0], oh, ow)

    def _node(
        self, node: dict[str, Any], ins: list[np.ndarray], hook: MatmulHook | None, ios: list[LayerIO] | None
    ) -> np.ndarray:
        op, a, x = node["op"], self.act_bits, ins[0]
        if op == "matmul":
            return self._matmul(node, x, hook, ios)
        if op == "maxpool":
            return maxpool_int(x, node["kernel"], node["stride"], node["padding"], act_bits=a)
        if op == "avgpool":
            return avgpool_int(
                x,
                node["kernel"],
                node["stride"],
                node["padding"],
                node["multiplier"],
                node["shift"],
                node["out_bits"],
                act_bits=a,
            )
        if op == "global_avgpool":
            return global_avgpool_int(
                x, node["multiplier"], node["shift"], node["out_bits"], keepdim=bool(node["keepdim"]), act_bits=a
            )
        if op == "add":
            return add_int(
                x, ins[1], node["multipliers"], node["shift"], node["out_bits"], bool(node["relu"]), act_bits=a
            )
        if op == "concat":
            return concat_int(ins, node["multipliers"], node["shifts"], node["out_bits"], act_bits=a)
        if op == "clamp":
            return clamp_int(x, node["lo"], node["hi"])
        shape = node["shape"]
        if not isinstance(shape, list) or not all(isinstance(v, int) for v in shape):
            raise DPPError(f"shape must be a list of ints (got {shape!r})")
        return x.reshape((x.shape[0], *shape))

    def execute(
        self,
        x_int: Any,
        matmul: MatmulHook | None = None,
        *,
        keep_io: bool = False,
        on_node: Callable[[dict[str, Any], np.ndarray], None] | None = None,
    ) -> Execution:
        """Run the graph on quantised images; ``matmul(index, layer, x_matrix) -> y_matrix`` replaces each layer.

        The hook sees every layer (each group of a grouped conv separately) with its input matrix (im2col rows
        for a conv); everything else runs in the integer reference here. ``on_node(node, value)`` sees each
        node's output as it is computed.
        """
        x = check_int_array("x_int", x_int, bits=self.act_bits)
        if x.shape[1:] != self.input_shape:
            raise DPPError(f"x_int must have shape (batch, {', '.join(map(str, self.input_shape))}) (got {x.shape})")
        last_use = {INPUT: -1}
        for i, node in enumerate(self.nodes):
            for name in node["inputs"]:
                last_use[name] = i
        last_use[self.output] = len(self.nodes)
        users = {n["name"]: [m for m in self.nodes if n["name"] in m["inputs"]] for n in self.nodes}
        values: dict[str, np.ndarray] = {INPUT: x}
        stage_of: dict[str, int] = {}  # node name → the stage it extends
        stages: list[np.ndarray] = []
        ios: list[LayerIO] | None = [] if keep_io else None
        for i, node in enumerate(self.nodes):
            try:
                y = self._node(node, [values[name] for name in node["inputs"]], matmul, ios)
            except DPPError as exc:
                raise type(exc)(f"node {node['name']!r} ({node['op']}): {exc}") from None
            values[node["name"]] = y
            if on_node is not None:
                on_node(node, y)
            src = node["inputs"][0]
            if node["op"] == "matmul":
                stage_of[node["name"]] = len(stages)
                stages.append(y)
            elif node["op"] == "maxpool" and src in stage_of and len(users[src]) == 1 and src != self.output:
                stage_of[node["name"]] = stage_of[src]
                stages[stage_of[src]] = y
            for name in node["inputs"]:
                if last_use.get(name) == i:
                    values.pop(name, None)
        return Execution(values[self.output], stages, ios or [])

    @staticmethod
    def _io(layer: IntLayer, x: np.ndarray, y: np.ndarray) -> LayerIO:
        return LayerIO(
            np.ascontiguousarray(x),
            layer.weights,
            layer.bias,
            layer.multiplier,
            layer.shift,
            layer.relu,
            layer.out_bits,
            layer.act_bits,
            y,
        )

    def forward(self, x_int: Any) -> np.ndarray:
        """The output node's integers (the logits) for quantised images."""
        return self.execute(x_int).output

    def run(self, x_int: Any) -> list[np.ndarray]:
        """Per matmul node, its int output (NCHW for conv, after any max-pool that alone follows it)."""
        return self.execute(x_int).stages

    def predict(self, x_int: Any) -> np.ndarray:
        """Class of each image: argmax of the output's integers (first maximum on ties)."""
        out = self.forward(x_int)
        return np.argmax(out.reshape(out.shape[0], -1), axis=1)

    def run_with(self, x_int: Any, matmul: MatmulHook) -> tuple[list[np.ndarray], list[LayerIO]]:
        """Run the network with every matmul done by ``matmul(index, layer, x_matrix) -> y_matrix``.

        The hardware flow passes a hook that runs each layer in RTL, so the whole network is chained through
        the simulated hardware (the other ops stay exact integer ops here). Returns the per-node stage
        outputs (as :meth:`run`) and each layer's input/output matrices (as :meth:`layer_io`); use
        :meth:`execute` for the network's output when it is not the last matmul's.
        """
        ex = self.execute(x_int, matmul, keep_io=True)
        return ex.stages, ex.io

    def layer_io(self, x_int: Any) -> list[LayerIO]:
        """For each layer, its input matrix (im2col form), weights, requantisation and output matrix."""
        return self.execute(x_int, keep_io=True).io

    # ----------------------------------------------------------------------------------------- files
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``network.json`` (schema version 2) and one weight pair per layer atomically; returns its path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        entries = []
        for i, layer in enumerate(self.layers):
            stem = f"layer{i}"
            if isinstance(layer.weights, KofNMatrix):
                layer.weights.save(d / stem)
            else:
                save_arrays(
                    d / stem,
                    {"weights": layer.weights},
                    dict(
                        schema=DENSE_SCHEMA,
                        schema_version=DENSE_SCHEMA_VERSION,
                        rows=layer.rows,
                        cols=layer.cols,
                        weight_bits=layer.weight_bits,
                    ),
                )
            w = layer.weights
            entries.append(
                dict(
                    kind=layer.kind,
                    file=stem,
                    format=layer.format,
                    bias=[int(b) for b in layer.bias],
                    multiplier=int(layer.multiplier),
                    shift=int(layer.shift),
                    relu=bool(layer.relu),
                    out_bits=int(layer.out_bits),
                    act_bits=int(layer.act_bits),
                    weight_bits=int(layer.weight_bits),
                    granularity=layer.granularity,
                    rows=layer.rows,
                    cols=layer.cols,
                    k=w.k if isinstance(w, KofNMatrix) else None,
                    n=w.n if isinstance(w, KofNMatrix) else None,
                    block=w.block if isinstance(w, KofNMatrix) else None,
                    **layer.geometry,
                )
            )
        manifest = dict(
            schema=NETWORK_SCHEMA,
            schema_version=SCHEMA_VERSION,
            input_shape=list(self.input_shape),
            input_scale=self.input_scale,
            act_bits=self.act_bits,
            nodes=_jsonable(self.nodes),
            output=self.output,
            layers=entries,
            meta=self.meta,
        )
        path = d / "network.json"
        atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> IntNetwork:
        """Read a network written by :meth:`save` (schema version 2, or 1), re-validating every matrix and node."""
        d = Path(directory)
        path = d / "network.json"
        man = read_manifest(path, schema=NETWORK_SCHEMA, schema_version=_schema_version(path))
        version = man["schema_version"]
        require_keys(
            man,
            ["input_shape", "input_scale", "act_bits", "layers"] + (["ops"] if version == 1 else ["nodes", "output"]),
            str(path),
        )
        layers = []
        for i, e in enumerate(man["layers"]):
            require_keys(
                e,
                [
                    "kind",
                    "file",
                    "format",
                    "bias",
                    "multiplier",
                    "shift",
                    "relu",
                    "out_bits",
                    "act_bits",
                    "weight_bits",
                ],
                f"{path} layer {i}",
            )
            if e["format"] == "kofn":
                w: KofNMatrix | np.ndarray = KofNMatrix.load(d / e["file"])
            elif e["format"] == "dense":
                arrays, _ = load_arrays(d / e["file"], schema=DENSE_SCHEMA, schema_version=DENSE_SCHEMA_VERSION)
                require_keys(arrays, ["weights"], str(d / e["file"]))
                w = arrays["weights"]
            else:
                raise FormatError(f"{path} layer {i}: format must be 'kofn' or 'dense' (got {e['format']!r})")
            geometry = {
                key: e[key] for key in ("in_channels", "out_channels", "kh", "kw", "stride", "padding") if key in e
            }
            try:
                layers.append(
                    IntLayer(
                        e["kind"],
                        w,
                        np.asarray(e["bias"], dtype=np.int64),
                        e["multiplier"],
                        e["shift"],
                        e["relu"],
                        e["out_bits"],
                        e["act_bits"],
                        e["weight_bits"],
                        e.get("granularity"),
                        geometry,
                    )
                )
            except (TypeError, ValueError) as exc:
                raise FormatError(f"{path} layer {i}: {exc}") from None
        graph = dict(ops=man["ops"]) if version == 1 else dict(nodes=man["nodes"], output=man["output"])
        try:
            return cls(
                layers,
                **graph,
                input_shape=tuple(man["input_shape"]),
                input_scale=man["input_scale"],
                act_bits=man["act_bits"],
                meta=man.get("meta"),
            )
        except (TypeError, ValueError) as exc:
            raise FormatError(f"{path}: {exc}") from None


def _jsonable(value: Any) -> Any:
    """Tuples as lists and numpy integers as ints, so a node round-trips through JSON unchanged."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.integer):
        return int(value)
    return value


def _schema_version(path: Path) -> int:
    """The version to read ``path`` as: its own when readable, else :data:`SCHEMA_VERSION` (refused there)."""
    try:
        manifest = json.loads(path.read_text("utf-8"))
        schema, found = manifest.get("schema"), manifest.get("schema_version")
    except (OSError, ValueError, AttributeError):
        return SCHEMA_VERSION  # read_manifest reports the missing file or bad JSON
    if found in READABLE_VERSIONS or schema != NETWORK_SCHEMA:
        return found if found in READABLE_VERSIONS else SCHEMA_VERSION
    raise FormatError(f"{path}: schema_version must be 1 or 2 (got {found!r})")
