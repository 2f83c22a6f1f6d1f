"""Graph front end: any traceable ``nn.Module`` → a checked list of the ops the integer network runs.

:func:`trace_graph` traces a model with ``torch.fx`` (symbolic tracing; Linear, Conv2d, BatchNorm and the other
supported ``torch.nn`` modules, subclasses and masked/parametrised ones included, stay single ``call_module``
nodes), runs it once on an example batch to learn every tensor's shape, and translates the fx nodes into
:class:`GraphNode` s of the ops in :data:`NODE_OPS`:

* ``matmul``: ``nn.Conv2d`` (any stride and numeric, ``"valid"`` or odd-kernel ``"same"`` zero padding, any
  ``groups`` incl. depthwise, dilation 1) or ``nn.Linear`` on ``(batch, features)``; a ``BatchNorm2d`` /
  ``BatchNorm1d`` directly after it (and its only user) is folded into it (:attr:`GraphNode.bn`).
* ``clamp``: ``ReLU`` / ``ReLU6`` / ``Hardtanh`` modules, ``F.relu``, ``F.relu6``, ``F.hardtanh``,
  ``torch.relu``, ``torch.clamp`` / ``clip`` with constant bounds. A clamp whose input is a matmul or add used
  by nothing else is fused into it (:attr:`GraphNode.relu` when its lower bound is >= 0, and
  :attr:`GraphNode.act` for calibration); a plain ReLU then disappears, other bounds stay as a clamp node.
* ``maxpool`` (``MaxPool2d`` / ``F.max_pool2d``: overlap and padding allowed, dilation 1, floor mode),
  ``avgpool`` (``AvgPool2d`` / ``F.avg_pool2d``: floor mode, padded zeros counted or no padding, optional
  ``divisor_override``), ``global_avgpool`` (``AdaptiveAvgPool2d((1, 1))``, ``F.adaptive_avg_pool2d(x, 1)``,
  ``x.mean((2, 3))``).
* ``add`` (``+``, ``+=``, ``torch.add``, ``Tensor.add`` of two tensors of one shape), ``concat`` (``torch.cat``
  / ``concat`` along dim 1), ``reshape`` (``nn.Flatten``, ``flatten``, ``view``, ``reshape`` keeping the batch
  dimension; the per-sample shape comes from the example), ``dropout`` (``Dropout`` modules and
  ``F.dropout``: identity in evaluation). ``nn.Identity`` and ``contiguous()`` vanish; ``x.size(0)`` /
  ``x.shape`` arithmetic feeding a reshape is allowed.

Anything else is refused with one :class:`~dpp.errors.GraphError` line naming the node, its op and target, and
the module path; a model that cannot be traced is refused naming the module and the line that failed.
"""

from __future__ import annotations

import operator
import os
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from dpp.errors import GraphError
from dpp.network import INPUT  # the name of the network's input in node ``inputs``

NODE_OPS = ("matmul", "clamp", "maxpool", "avgpool", "global_avgpool", "add", "concat", "reshape", "dropout")
SUPPORTED = (
    "Conv2d, Linear, BatchNorm1d/2d after a Conv2d/Linear, ReLU, ReLU6, Hardtanh/clamp, MaxPool2d, "
    "AvgPool2d, AdaptiveAvgPool2d((1, 1)), flatten/view/reshape, add, cat along dim 1, Dropout"
)

_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
_LEAVES = (
    nn.Conv2d,
    nn.Linear,
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.ReLU,
    nn.ReLU6,
    nn.Hardtanh,
    nn.MaxPool2d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.Flatten,
    nn.Identity,
) + _DROPOUT
_ADD = {operator.add, operator.iadd, torch.add, "add", "add_", "__add__", "__iadd__"}
_RELU = {F.relu, torch.relu, torch.relu_, "relu", "relu_"}
_CLAMP = {torch.clamp, torch.clip, torch.clamp_, "clamp", "clip", "clamp_", "clip_"}
_FLATTEN = {torch.flatten, "flatten"}
_RESHAPE = {torch.reshape, "view", "reshape"}
_CAT = {torch.cat, torch.concat, torch.concatenate}
_MEAN = {torch.mean, "mean"}
_IDENTITY = {"contiguous"}
_SHAPE_FUNCS = {
    getattr,
    operator.getitem,
    operator.mul,
    operator.floordiv,
    operator.add,
    operator.sub,
    "size",
    "dim",
    "numel",
}


@dataclass
class GraphNode:
    """One op of the traced network; ``inputs`` name earlier nodes or :data:`INPUT`."""

    name: str
    op: str
    inputs: list[str]
    path: str  #: the module it comes from ("" = the model itself), for messages
    shape: tuple[int, ...]  #: per-sample output shape on the example
    module: nn.Module | None = None  #: matmul: the Conv2d / Linear
    bn: nn.Module | None = None  #: matmul: the BatchNorm folded into it
    relu: bool = False  #: matmul / add: a fused ReLU
    act: tuple[float | None, float | None] | None = None  #: fused activation bounds (what calibration sees)
    attrs: dict[str, Any] = field(default_factory=dict)  #: the op's parameters (kernel, stride, bounds, ...)


@dataclass
class GraphSpec:
    """A traced model as :class:`GraphNode` s in execution order, with its input shape and output node."""

    nodes: list[GraphNode]
    input_shape: tuple[int, ...]
    output: str

    def node(self, name: str) -> GraphNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise GraphError(f"no node named {name!r} (known: {[n.name for n in self.nodes]})")

    def users(self) -> dict[str, int]:
        """How many nodes (and the output) use each value."""
        count = {INPUT: 0, **{n.name: 0 for n in self.nodes}}
        for n in self.nodes:
            for i in n.inputs:
                count[i] += 1
        count[self.output] += 1
        return count

    def matmuls(self) -> list[GraphNode]:
        return [n for n in self.nodes if n.op == "matmul"]


class _Tracer(fx.Tracer):
    """Keeps every supported module (subclasses and parametrised ones too) as one ``call_module`` node."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, module_qualified_name)


# ------------------------------------------------------------------------------------------------ tracing
def _trace_failure(model: nn.Module, exc: Exception) -> GraphError:
    """One line naming the module and the source line where tracing failed."""
    torch_dir = os.path.dirname(torch.__file__)
    names = {id(m): name for name, m in model.named_modules()}
    where, owner = "", None
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        if not frame.f_code.co_filename.startswith(torch_dir) and frame.f_code.co_filename != __file__:
            summary = traceback.extract_tb(tb, limit=1)[0]
            where = f"{os.path.basename(summary.filename)}:{summary.lineno} `{(summary.line or '').strip()}`"
            self_obj = frame.f_locals.get("self")
            owner = self_obj if isinstance(self_obj, nn.Module) else owner
        tb = tb.tb_next
    module = type(model).__name__
    if owner is not None and id(owner) in names:
        path = names[id(owner)]
        module = f"{type(owner).__name__} {path!r}" if path else type(owner).__name__
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return GraphError(
        f"cannot trace {type(model).__name__}: module {module} at {where or 'an unknown line'}: "
        f"{first} (symbolic tracing cannot follow Python that depends on tensor values: "
        "if/while on them, "
        "len(), numpy conversions)"
    )


def _symbolic_trace(model: nn.Module) -> fx.GraphModule:
    try:
        graph = _Tracer().trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, NameError, ... from the user's forward
        raise _trace_failure(model, exc) from None
    return fx.GraphModule(model, graph)


class _Recorder(fx.Interpreter):
    """Runs the traced module once, keeping every node's value (shapes and non-tensor values)."""

    def __init__(self, gm: fx.GraphModule) -> None:
        super().__init__(gm)
        self.values: dict[str, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        out = super().run_node(n)
        self.values[n.name] = out
        return out


def _example_values(gm: fx.GraphModule, model: nn.Module, example: torch.Tensor) -> dict[str, Any]:
    if not isinstance(example, torch.Tensor) or example.dim() < 2:
        raise GraphError(
            f"the example input must be a batch tensor (batch, ...) (got "
            f"{getattr(example, 'shape', type(example).__name__)})"
        )
    batch = example[:2] if example.shape[0] >= 2 else example[:1].expand(2, *example.shape[1:])
    flags = {m: m.training for m in model.modules()}
    model.eval()
    try:
        rec = _Recorder(gm)
        with torch.no_grad():
            rec.run(batch)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise GraphError(
            f"{type(model).__name__} fails on an example batch of shape {tuple(batch.shape)}: {first}"
        ) from None
    finally:
        for m, was in flags.items():
            m.train(was)
    return rec.values


# --------------------------------------------------------------------------------------- node translation
def _path(node: fx.Node) -> str:
    if node.op == "call_module":
        return str(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    return str(list(stack)[-1]) if stack else ""


def _target_name(node: fx.Node) -> str:
    t = node.target
    return t if isinstance(t, str) else getattr(t, "__name__", repr(t))


def _arg(node: fx.Node, i: int, name: str, default: Any = None) -> Any:
    return node.args[i] if len(node.args) > i else node.kwargs.get(name, default)


def _pair(v: Any) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


class _Translator:
    """fx nodes → :class:`GraphNode` s (before BN folding and activation fusion)."""

    def __init__(self, gm: fx.GraphModule, values: dict[str, Any]) -> None:
        self.modules = dict(gm.named_modules())
        self.values = values
        self.alias: dict[str, str | None] = {}  #: fx node name → value name (None: a non-tensor value)
        self.nodes: list[GraphNode] = []
        self.output: str | None = None

    def fail(self, node: fx.Node, why: str) -> GraphError:
        target = _target_name(node)
        if node.op == "call_module" and target in self.modules:
            target = type(self.modules[target]).__name__
        return GraphError(f"unsupported node {node.name!r} ({node.op} {target}) in module {_path(node)!r}: {why}")

    def tensor_input(self, node: fx.Node, arg: Any) -> str:
        name = self.alias.get(arg.name) if isinstance(arg, fx.Node) else None
        if name is None:
            shown = repr(arg.name) if isinstance(arg, fx.Node) else repr(arg)
            raise self.fail(
                node,
                f"its input {shown} is not a tensor computed by the network "
                "(constants, parameters and shapes are not supported as op inputs)",
            )
        return name

    def shape_of(self, arg: Any) -> tuple[int, ...]:
        return tuple(self.values[arg.name].shape)

    def emit(self, node: fx.Node, op: str, inputs: list[str], **kw: Any) -> None:
        name = node.name if node.name != INPUT else f"{INPUT}_node"
        self.nodes.append(GraphNode(name, op, inputs, _path(node), tuple(self.values[node.name].shape[1:]), **kw))
        self.alias[node.name] = name

    def run(self, graph: fx.Graph) -> None:
        for node in graph.nodes:
            if node.op == "placeholder":
                self.alias[node.name] = INPUT
            elif node.op == "output":
                out = node.args[0]
                if not isinstance(out, fx.Node) or self.alias.get(out.name) is None:
                    raise self.fail(node, "the model must return one tensor")
                self.output = self.alias[out.name]
            elif not isinstance(self.values.get(node.name), torch.Tensor):
                self.shape_value(node)
            elif node.op == "call_module":
                self.call_module(node, self.modules[str(node.target)])
            elif node.op in ("call_function", "call_method"):
                self.call(node, node.target)
            else:
                raise self.fail(
                    node,
                    f"parameters and buffers used outside a supported module are not "
                    f"supported (supported: {SUPPORTED})",
                )

    def shape_value(self, node: fx.Node) -> None:
        """``x.size(0)``, ``x.shape[1] * 2``, ...: allowed, dropped (only reshapes may use them)."""
        if node.op not in ("call_function", "call_method") or node.target not in _SHAPE_FUNCS:
            raise self.fail(node, f"it does not compute a tensor (supported: {SUPPORTED})")
        for user in node.users:
            if user.op != "output" and user.target in _SHAPE_FUNCS | _RESHAPE | _FLATTEN:
                continue
            if user.op == "output":
                raise self.fail(user, "the model must return one tensor")
            raise self.fail(user, f"its input {node.name!r} is a shape, not a tensor")
        self.alias[node.name] = None

    # -------------------------------------------------------------------------------------- modules
    def call_module(self, node: fx.Node, mod: nn.Module) -> None:
        x = node.args[0] if node.args else None
        if len(node.args) != 1 or node.kwargs:
            raise self.fail(node, "a module called with more than one input")
        src = self.tensor_input(node, x)
        if isinstance(mod, nn.Conv2d):
            self.conv(node, mod, src)
        elif isinstance(mod, nn.Linear):
            if len(self.shape_of(x)) != 2:
                raise self.fail(node, f"Linear needs a (batch, features) input (got shape {self.shape_of(x)})")
            self.emit(node, "matmul", [src], module=mod)
        elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if len(self.shape_of(x)) != (2 if isinstance(mod, nn.BatchNorm1d) else 4):
                raise self.fail(node, f"{type(mod).__name__} on an input of shape {self.shape_of(x)}")
            if not mod.track_running_stats or mod.running_mean is None:
                raise self.fail(node, "BatchNorm without running statistics cannot be folded")
            self.emit(node, "bn", [src], module=mod)
        elif isinstance(mod, nn.ReLU6):
            self.emit(node, "clamp", [src], attrs=dict(lo=0.0, hi=6.0))
        elif isinstance(mod, nn.ReLU):
            self.emit(node, "clamp", [src], attrs=dict(lo=0.0, hi=None))
        elif isinstance(mod, nn.Hardtanh):
            self.emit(node, "clamp", [src], attrs=dict(lo=float(mod.min_val), hi=float(mod.max_val)))
        elif isinstance(mod, nn.MaxPool2d):
            self.maxpool(
                node, src, mod.kernel_size, mod.stride, mod.padding, mod.dilation, mod.ceil_mode, mod.return_indices
            )
        elif isinstance(mod, nn.AvgPool2d):
            self.avgpool(
                node,
                src,
                mod.kernel_size,
                mod.stride,
                mod.padding,
                mod.ceil_mode,
                mod.count_include_pad,
                mod.divisor_override,
            )
        elif isinstance(mod, nn.AdaptiveAvgPool2d):
            self.global_pool(node, src, mod.output_size, keepdim=True)
        elif isinstance(mod, nn.Flatten):
            self.reshape(node, src, x)
        elif isinstance(mod, _DROPOUT):
            self.emit(node, "dropout", [src], attrs=dict(p=float(mod.p)))
        elif isinstance(mod, nn.Identity):
            self.alias[node.name] = src
        else:
            raise self.fail(node, f"module {type(mod).__name__} is not supported (supported: {SUPPORTED})")

    def conv(self, node: fx.Node, mod: nn.Conv2d, src: str) -> None:
        if tuple(mod.dilation) != (1, 1):
            raise self.fail(node, f"Conv2d dilation must be 1 (got {tuple(mod.dilation)})")
        if mod.padding_mode != "zeros":
            raise self.fail(node, f"Conv2d padding_mode must be 'zeros' (got {mod.padding_mode!r})")
        padding = mod.padding
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            if any(k % 2 == 0 for k in mod.kernel_size):
                raise self.fail(
                    node,
                    f"padding='same' with the even kernel {tuple(mod.kernel_size)} pads unevenly; give numeric padding",
                )
            padding = tuple((k - 1) // 2 for k in mod.kernel_size)
        self.emit(
            node,
            "matmul",
            [src],
            module=mod,
            attrs=dict(
                kernel=_pair(mod.kernel_size), stride=_pair(mod.stride), padding=_pair(padding), groups=int(mod.groups)
            ),
        )

    # ------------------------------------------------------------------------------------ functions
    def call(self, node: fx.Node, target: Any) -> None:
        x = node.args[0] if node.args else None
        if target in _ADD:
            self.add(node)
        elif target in _RELU:
            self.emit(node, "clamp", [self.tensor_input(node, x)], attrs=dict(lo=0.0, hi=None))
        elif target is F.relu6:
            self.emit(node, "clamp", [self.tensor_input(node, x)], attrs=dict(lo=0.0, hi=6.0))
        elif target is F.hardtanh:
            self.emit(
                node,
                "clamp",
                [self.tensor_input(node, x)],
                attrs=dict(lo=float(_arg(node, 1, "min_val", -1.0)), hi=float(_arg(node, 2, "max_val", 1.0))),
            )
        elif target in _CLAMP:
            self.clamp(node, x)
        elif target in (F.max_pool2d, torch.max_pool2d):
            self.maxpool(
                node,
                self.tensor_input(node, x),
                _arg(node, 1, "kernel_size"),
                _arg(node, 2, "stride"),
                _arg(node, 3, "padding", 0),
                _arg(node, 4, "dilation", 1),
                _arg(node, 5, "ceil_mode", False),
                _arg(node, 6, "return_indices", False),
            )
        elif target is F.avg_pool2d:
            self.avgpool(
                node,
                self.tensor_input(node, x),
                _arg(node, 1, "kernel_size"),
                _arg(node, 2, "stride"),
                _arg(node, 3, "padding", 0),
                _arg(node, 4, "ceil_mode", False),
                _arg(node, 5, "count_include_pad", True),
                _arg(node, 6, "divisor_override"),
            )
        elif target is F.adaptive_avg_pool2d:
            self.global_pool(node, self.tensor_input(node, x), _arg(node, 1, "output_size"), keepdim=True)
        elif target in _MEAN:
            self.mean(node, x)
        elif target in _FLATTEN or target in _RESHAPE:
            self.reshape(node, self.tensor_input(node, x), x)
        elif target in _CAT:
            self.cat(node)
        elif target is F.dropout:
            self.emit(node, "dropout", [self.tensor_input(node, x)], attrs=dict(p=float(_arg(node, 1, "p", 0.5))))
        elif target in _IDENTITY:
            self.alias[node.name] = self.tensor_input(node, x)
        else:
            raise self.fail(node, f"this op is not supported (supported: {SUPPORTED})")

    def add(self, node: fx.Node) -> None:
        if len(node.args) != 2 or _arg(node, 2, "alpha", 1) != 1:
            raise self.fail(node, "add needs exactly two tensors (and alpha=1)")
        a, b = node.args
        ins = [self.tensor_input(node, a), self.tensor_input(node, b)]
        if self.shape_of(a) != self.shape_of(b):
            raise self.fail(
                node,
                f"add of two tensors of different shapes {self.shape_of(a)} and "
                f"{self.shape_of(b)} (broadcasting is not supported)",
            )
        self.emit(node, "add", ins)

    def clamp(self, node: fx.Node, x: Any) -> None:
        lo, hi = _arg(node, 1, "min"), _arg(node, 2, "max")
        if any(isinstance(v, fx.Node) or (v is not None and not isinstance(v, (int, float))) for v in (lo, hi)):
            raise self.fail(node, "clamp bounds must be constant numbers")
        self.emit(
            node,
            "clamp",
            [self.tensor_input(node, x)],
            attrs=dict(lo=None if lo is None else float(lo), hi=None if hi is None else float(hi)),
        )

    def maxpool(
        self,
        node: fx.Node,
        src: str,
        kernel: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        ceil_mode: bool,
        return_indices: bool,
    ) -> None:
        if _pair(dilation) != (1, 1) or ceil_mode or return_indices:
            raise self.fail(node, "max-pooling needs dilation 1, ceil_mode=False and return_indices=False")
        kernel = _pair(kernel)
        self.emit(
            node, "maxpool", [src], attrs=dict(kernel=kernel, stride=_pair(stride or kernel), padding=_pair(padding))
        )

    def avgpool(
        self,
        node: fx.Node,
        src: str,
        kernel: Any,
        stride: Any,
        padding: Any,
        ceil_mode: bool,
        count_include_pad: bool,
        divisor_override: Any,
    ) -> None:
        kernel, padding = _pair(kernel), _pair(padding)
        if ceil_mode:
            raise self.fail(node, "average pooling needs ceil_mode=False")
        if not count_include_pad and padding != (0, 0) and divisor_override is None:
            raise self.fail(node, "average pooling with padding must count the padded zeros (count_include_pad=True)")
        divisor = int(divisor_override) if divisor_override else kernel[0] * kernel[1]
        self.emit(
            node,
            "avgpool",
            [src],
            attrs=dict(kernel=kernel, stride=_pair(stride or kernel), padding=padding, divisor=divisor),
        )

    def global_pool(self, node: fx.Node, src: str, output_size: Any, *, keepdim: bool) -> None:
        if output_size not in (1, (1, 1), [1, 1]):
            raise self.fail(node, f"adaptive average pooling is supported to (1, 1) only (got {output_size!r})")
        self.emit(node, "global_avgpool", [src], attrs=dict(keepdim=keepdim))

    def mean(self, node: fx.Node, x: Any) -> None:
        dims = _arg(node, 1, "dim")
        keepdim = bool(_arg(node, 2, "keepdim", False))
        rank = len(self.shape_of(x)) if isinstance(x, fx.Node) and x.name in self.values else 0
        dims = sorted(d % rank for d in (dims if isinstance(dims, (list, tuple)) else [dims])) if rank else None
        if rank != 4 or dims != [2, 3]:
            raise self.fail(node, "mean is supported over the spatial dims (2, 3) of an NCHW tensor only")
        self.emit(node, "global_avgpool", [self.tensor_input(node, x)], attrs=dict(keepdim=keepdim))

    def reshape(self, node: fx.Node, src: str, x: Any) -> None:
        before, after = self.shape_of(x), tuple(self.values[node.name].shape)
        if after[:1] != before[:1]:
            raise self.fail(node, f"a reshape must keep the batch dimension (example {before} -> {after})")
        self.emit(node, "reshape", [src], attrs=dict(shape=after[1:]))

    def cat(self, node: fx.Node) -> None:
        xs = _arg(node, 0, "tensors")
        dim = _arg(node, 1, "dim", 0)
        if not isinstance(xs, (list, tuple)) or not xs:
            raise self.fail(node, "cat needs a list of tensors")
        ins = [self.tensor_input(node, x) for x in xs]
        rank = len(self.shape_of(xs[0]))
        if not isinstance(dim, int) or dim % rank != 1:
            raise self.fail(node, f"cat is supported along the channel dim 1 only (got dim={dim!r})")
        self.emit(node, "concat", ins)


# ------------------------------------------------------------------------------------------- fusions
def _rename(spec: GraphSpec, old: str, new: str) -> None:
    for n in spec.nodes:
        n.inputs = [new if i == old else i for i in n.inputs]
    if spec.output == old:
        spec.output = new


def _fold_batchnorms(spec: GraphSpec) -> None:
    for bn in [n for n in spec.nodes if n.op == "bn"]:
        src = bn.inputs[0]
        prod = next((n for n in spec.nodes if n.name == src), None)
        mod = bn.module
        ok = (
            prod is not None
            and prod.op == "matmul"
            and prod.bn is None
            and prod.act is None
            and spec.users()[src] == 1
            and prod.module is not None
            and isinstance(mod, nn.BatchNorm2d) == isinstance(prod.module, nn.Conv2d)
        )
        if prod is None or not ok:  # (ok implies prod is not None; said again for the type checker)
            raise GraphError(
                f"unsupported node {bn.name!r} (call_module {type(mod).__name__}) in module "
                f"{bn.path!r}: BatchNorm is folded into a directly preceding "
                f"{'Conv2d' if isinstance(mod, nn.BatchNorm2d) else 'Linear'} that feeds only it "
                f"(its input is {src!r})"
            )
        prod.bn = mod
        spec.nodes.remove(bn)
        _rename(spec, bn.name, prod.name)


def _fuse_activations(spec: GraphSpec) -> None:
    for clamp in [n for n in spec.nodes if n.op == "clamp"]:
        src = clamp.inputs[0]
        prod = next((n for n in spec.nodes if n.name == src), None)
        if prod is None or prod.op not in ("matmul", "add") or prod.act is not None or spec.users()[src] != 1:
            continue
        lo, hi = clamp.attrs["lo"], clamp.attrs["hi"]
        prod.act = (lo, hi)
        prod.relu = lo is not None and lo >= 0
        if lo == 0 and hi is None:
            spec.nodes.remove(clamp)
            _rename(spec, clamp.name, prod.name)


def trace_graph(model: nn.Module, example: torch.Tensor) -> GraphSpec:
    """Trace ``model`` and check every op; ``example``: an input batch (its values are not used beyond shapes).

    Raises :class:`~dpp.errors.GraphError` (one line) when tracing fails or a node is not supported.
    """
    if not isinstance(model, nn.Module):
        raise GraphError(f"expected an nn.Module (got {type(model).__name__})")
    gm = _symbolic_trace(model)
    placeholders = [n.target for n in gm.graph.nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise GraphError(f"{type(model).__name__}.forward must take exactly one input tensor (got {placeholders})")
    values = _example_values(gm, model, example)
    tr = _Translator(gm, values)
    tr.run(gm.graph)
    assert tr.output is not None
    spec = GraphSpec(tr.nodes, tuple(example.shape[1:]), tr.output)
    _fold_batchnorms(spec)
    _fuse_activations(spec)
    if spec.output == INPUT:
        raise GraphError(f"{type(model).__name__} returns its input unchanged")
    if not spec.matmuls():
        raise GraphError(f"{type(model).__name__} has no Conv2d or Linear layer")
    return spec


def describe(spec: GraphSpec) -> list[str]:
    """One line per node (for logs and reports): name, op, inputs and what was fused."""
    lines = []
    for n in spec.nodes:
        extra = [f"{k}={v}" for k, v in n.attrs.items()]
        if n.bn is not None:
            extra.append("bn folded")
        if n.relu:
            extra.append("relu")
        lines.append(f"{n.name}: {n.op}({', '.join(n.inputs)}) {' '.join(extra)}".rstrip())
    return lines
