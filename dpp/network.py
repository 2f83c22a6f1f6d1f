"""``IntNetwork``: a whole quantised classifier in integers, every matmul through :func:`dpp.reference.linear_int`.

On disk (``save(dir)`` / ``IntNetwork.load(dir)``): ``dir/network.json`` (schema ``dpp.network``,
``schema_version`` 1) lists the ops in order and, per matmul layer, its kind (``linear`` / ``conv2d``), format,
bias (int list), ``multiplier``, ``shift`` (per-layer scalars), ``relu``, ``out_bits``, ``act_bits``,
``weight_bits``, ``granularity``, ``block``, ``k``, ``n`` and the conv geometry. Its weights are the pair
``dir/layer<i>.npz/.json``: a :class:`~dpp.kofn.KofNMatrix` when the layer is k-of-n along its reduction
dimension (``format: "kofn"``, weight or kernel granularity), else a dense signed integer matrix
``weights`` of shape ``(rows, cols)`` (``format: "dense"``, schema ``dpp.dense_int``: dense and unstructured
baselines, filter granularity, layers left unpruned).

Convolutions are lowered by im2col: the matrix is ``weight.reshape(out, C*kh*kw)`` (PyTorch's channel-major
order, so a kernel-granularity slot is ``block = kh*kw`` consecutive columns) and the input matrix has one row
per (image, output y, output x), in that order. Activations are NCHW int64 arrays; ``flatten`` is the
row-major reshape of PyTorch's ``nn.Flatten``; ``maxpool`` takes the max of each ``kernel x kernel`` window.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dpp.checks import check_int, check_int_array
from dpp.errors import DPPError, FormatError
from dpp.kofn import KofNMatrix
from dpp.reference import linear_int
from dpp.serialize import atomic_write_text, load_arrays, read_manifest, require_keys, save_arrays

NETWORK_SCHEMA = "dpp.network"
DENSE_SCHEMA = "dpp.dense_int"
SCHEMA_VERSION = 1
LAYER_KINDS = ("linear", "conv2d")
OP_KINDS = ("matmul", "maxpool", "flatten")


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
    geometry: dict[str, Any] = field(default_factory=dict)  #: conv: in/out_channels, kh, kw, stride, padding

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
        return linear_int(x, self.weights, self.bias, self.multiplier, self.shift, self.out_bits, self.relu,
                          act_bits=self.act_bits)


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


def im2col(x: np.ndarray, kh: int, kw: int, stride: int, padding: int) -> tuple[np.ndarray, int, int]:
    """NCHW ints → ``(N*OH*OW, C*kh*kw)`` in PyTorch's weight column order, plus ``(OH, OW)``."""
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::stride, ::stride]
    n, c, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw), oh, ow


def maxpool_int(x: np.ndarray, kernel: int) -> np.ndarray:
    """Max over non-overlapping ``kernel x kernel`` windows of NCHW ints (floor mode, like nn.MaxPool2d)."""
    n, c, h, w = x.shape
    oh, ow = h // kernel, w // kernel
    return x[:, :, : oh * kernel, : ow * kernel].reshape(n, c, oh, kernel, ow, kernel).max(axis=(3, 5))


class IntNetwork:
    """An integer classifier: ``ops`` (matmul / maxpool / flatten) over ``layers``; see the module docstring."""

    def __init__(self, layers: list[IntLayer], ops: list[dict[str, Any]], *, input_shape: tuple[int, ...],
                 input_scale: float, act_bits: int = 8, meta: dict[str, Any] | None = None) -> None:
        self.layers = list(layers)
        self.ops = [dict(op) for op in ops]
        self.input_shape = tuple(int(v) for v in input_shape)
        self.input_scale = float(input_scale)
        self.act_bits = check_int("act_bits", act_bits, lo=2, hi=16)
        self.meta = dict(meta or {})
        used = []
        for op in self.ops:
            if op.get("op") not in OP_KINDS:
                raise DPPError(f"op must be one of {OP_KINDS} (got {op!r})")
            if op["op"] == "matmul":
                used.append(op["layer"])
        if used != list(range(len(self.layers))):
            raise DPPError(f"matmul ops must use layers 0..{len(self.layers) - 1} in order (got {used})")

    # ----------------------------------------------------------------------------------------- running
    def quantize_input(self, images: Any) -> np.ndarray:
        """Float images (values in [0, 1]) → signed act_bits ints: ``floor(x / input_scale + 1/2)``, clipped."""
        x = np.asarray(images, dtype=np.float64)
        if x.ndim == 0 or x.size % int(np.prod(self.input_shape)):
            raise DPPError(f"images must hold whole images of shape {self.input_shape} (got shape {x.shape})")
        x = x.reshape((-1,) + self.input_shape)
        lo, hi = -(1 << (self.act_bits - 1)), (1 << (self.act_bits - 1)) - 1
        return np.clip(np.floor(x / self.input_scale + 0.5), lo, hi).astype(np.int64)

    def _walk(self, x_int: Any, keep_io: bool, matmul: MatmulHook | None = None
              ) -> tuple[list[np.ndarray], list[LayerIO]]:
        x = check_int_array("x_int", x_int, bits=self.act_bits)
        if x.shape[1:] != self.input_shape:
            raise DPPError(f"x_int must have shape (batch, {', '.join(map(str, self.input_shape))}) "
                             f"(got {x.shape})")
        outs: list[np.ndarray] = []
        ios: list[LayerIO] = []
        for op in self.ops:
            if op["op"] == "flatten":
                x = x.reshape(x.shape[0], -1)
            elif op["op"] == "maxpool":
                x = maxpool_int(x, int(op["kernel"]))
                if outs:
                    outs[-1] = x
            else:
                layer = self.layers[op["layer"]]
                if layer.kind == "conv2d":
                    g = layer.geometry
                    if x.ndim != 4 or x.shape[1] != g["in_channels"]:
                        raise DPPError(f"layer {op['layer']}: expected NCHW input with {g['in_channels']} "
                                         f"channels (got shape {x.shape})")
                    cols, oh, ow = im2col(x, g["kh"], g["kw"], g["stride"], g["padding"])
                    y = matmul(op["layer"], layer, cols) if matmul else layer.matmul(cols)
                    if keep_io:
                        ios.append(self._io(layer, cols, y))
                    x = y.reshape(x.shape[0], oh, ow, layer.rows).transpose(0, 3, 1, 2)
                else:
                    y = matmul(op["layer"], layer, x) if matmul else layer.matmul(x)
                    if keep_io:
                        ios.append(self._io(layer, x, y))
                    x = y
                outs.append(x)
        return outs, ios

    @staticmethod
    def _io(layer: IntLayer, x: np.ndarray, y: np.ndarray) -> LayerIO:
        return LayerIO(np.ascontiguousarray(x), layer.weights, layer.bias, layer.multiplier, layer.shift,
                       layer.relu, layer.out_bits, layer.act_bits, y)

    def run(self, x_int: Any) -> list[np.ndarray]:
        """Per matmul layer, its int output (NCHW for conv, after any max-pool that directly follows it)."""
        return self._walk(x_int, keep_io=False)[0]

    def predict(self, x_int: Any) -> np.ndarray:
        """Class of each image: argmax of the last layer's integers (first maximum on ties)."""
        return np.argmax(self.run(x_int)[-1], axis=1)

    def run_with(self, x_int: Any, matmul: MatmulHook) -> tuple[list[np.ndarray], list[LayerIO]]:
        """Run the network with every matmul done by ``matmul(index, layer, x_matrix) -> y_matrix``.

        The hardware flow passes a hook that runs each layer in RTL, so the whole network is chained through
        the simulated hardware (pooling and flatten stay exact integer ops here). Returns the per-layer
        outputs (as :meth:`run`) and each layer's input/output matrices (as :meth:`layer_io`).
        """
        return self._walk(x_int, keep_io=True, matmul=matmul)

    def layer_io(self, x_int: Any) -> list[LayerIO]:
        """For each matmul layer, its input matrix (im2col form), weights, requantisation and output matrix."""
        return self._walk(x_int, keep_io=True)[1]

    # ----------------------------------------------------------------------------------------- files
    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``network.json`` and one weight pair per layer atomically; returns the manifest path."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        entries = []
        for i, layer in enumerate(self.layers):
            stem = f"layer{i}"
            if isinstance(layer.weights, KofNMatrix):
                layer.weights.save(d / stem)
            else:
                save_arrays(d / stem, {"weights": layer.weights},
                            dict(schema=DENSE_SCHEMA, schema_version=SCHEMA_VERSION, rows=layer.rows,
                                 cols=layer.cols, weight_bits=layer.weight_bits))
            w = layer.weights
            entries.append(dict(
                kind=layer.kind, file=stem, format=layer.format, bias=[int(b) for b in layer.bias],
                multiplier=int(layer.multiplier), shift=int(layer.shift), relu=bool(layer.relu),
                out_bits=int(layer.out_bits), act_bits=int(layer.act_bits), weight_bits=int(layer.weight_bits),
                granularity=layer.granularity, rows=layer.rows, cols=layer.cols,
                k=w.k if isinstance(w, KofNMatrix) else None, n=w.n if isinstance(w, KofNMatrix) else None,
                block=w.block if isinstance(w, KofNMatrix) else None, **layer.geometry))
        manifest = dict(schema=NETWORK_SCHEMA, schema_version=SCHEMA_VERSION, input_shape=list(self.input_shape),
                        input_scale=self.input_scale, act_bits=self.act_bits, ops=self.ops, layers=entries,
                        meta=self.meta)
        path = d / "network.json"
        atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "IntNetwork":
        """Read a network written by :meth:`save`, re-validating every matrix."""
        d = Path(directory)
        path = d / "network.json"
        man = read_manifest(path, schema=NETWORK_SCHEMA, schema_version=SCHEMA_VERSION)
        require_keys(man, ["input_shape", "input_scale", "act_bits", "ops", "layers"], str(path))
        layers = []
        for i, e in enumerate(man["layers"]):
            require_keys(e, ["kind", "file", "format", "bias", "multiplier", "shift", "relu", "out_bits",
                             "act_bits", "weight_bits"], f"{path} layer {i}")
            if e["format"] == "kofn":
                w: KofNMatrix | np.ndarray = KofNMatrix.load(d / e["file"])
            elif e["format"] == "dense":
                arrays, _ = load_arrays(d / e["file"], schema=DENSE_SCHEMA, schema_version=SCHEMA_VERSION)
                require_keys(arrays, ["weights"], str(d / e["file"]))
                w = arrays["weights"]
            else:
                raise FormatError(f"{path} layer {i}: format must be 'kofn' or 'dense' (got {e['format']!r})")
            geometry = {key: e[key] for key in ("in_channels", "out_channels", "kh", "kw", "stride", "padding")
                        if key in e}
            try:
                layers.append(IntLayer(e["kind"], w, np.asarray(e["bias"], dtype=np.int64), e["multiplier"],
                                       e["shift"], e["relu"], e["out_bits"], e["act_bits"], e["weight_bits"],
                                       e.get("granularity"), geometry))
            except (TypeError, ValueError) as exc:
                raise FormatError(f"{path} layer {i}: {exc}") from None
        return cls(layers, man["ops"], input_shape=tuple(man["input_shape"]), input_scale=man["input_scale"],
                   act_bits=man["act_bits"], meta=man.get("meta"))
