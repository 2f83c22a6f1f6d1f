"""The graph front end (dpp.graph): what each supported op becomes, fusions, and one clear error otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dpp.errors import DPPError, GraphError
from dpp.graph import INPUT, describe, trace_graph
from dpp.graph_quant import QuantGraph
from dpp.models import build_model
from tests.load_file import load_module

torch.set_num_threads(1)
DATA = Path(__file__).parent / "data"


def outside_model(image_size: int = 8) -> nn.Module:
    return load_module(DATA / "outside_model.py").make_model(image_size)


class Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c)
        self.dw = nn.Conv2d(c, c, 3, padding="same", groups=c)
        self.r6 = nn.ReLU6()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn(self.conv(x)))
        out = self.r6(self.dw(out))
        out += x
        return torch.relu(out)


class Everything(nn.Module):
    """Every supported op at least once, written in several of the ways users write them."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, stride=(1, 1), padding=1), nn.ReLU(inplace=True))
        self.block = Block(4)
        self.pool = nn.AvgPool2d(2)
        self.fc1 = nn.Linear(8 * 4 * 4, 16)
        self.bn1 = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(0.3)
        self.fc2 = nn.Linear(16, 10)
        self.skip = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.skip(self.block(self.stem(x)))
        x = torch.cat([x, F.max_pool2d(x, 3, 1, 1)], dim=1)
        x = F.hardtanh(self.pool(x), -1.0, 1.5)
        x = x.view(x.size(0), -1).contiguous()
        x = self.drop(F.relu6(self.bn1(self.fc1(x))))
        return self.fc2(torch.clamp(x, min=0.0, max=4.0))


EVERYTHING = [
    "stem_0: matmul(input) kernel=(3, 3) stride=(1, 1) padding=(1, 1) groups=1 relu",
    "block_conv: matmul(stem_0) kernel=(3, 3) stride=(1, 1) padding=(1, 1) groups=1 bn folded relu",
    "block_dw: matmul(block_conv) kernel=(3, 3) stride=(1, 1) padding=(1, 1) groups=4 relu",
    "block_r6: clamp(block_dw) lo=0.0 hi=6.0",
    "add: add(block_r6, stem_0) relu",
    "max_pool2d: maxpool(add) kernel=(3, 3) stride=(1, 1) padding=(1, 1)",
    "cat: concat(add, max_pool2d)",
    "pool: avgpool(cat) kernel=(2, 2) stride=(2, 2) padding=(0, 0) divisor=4",
    "hardtanh: clamp(pool) lo=-1.0 hi=1.5",
    "view: reshape(hardtanh) shape=(128,)",
    "fc1: matmul(view) bn folded relu",
    "relu6: clamp(fc1) lo=0.0 hi=6.0",
    "drop: dropout(relu6) p=0.3",
    "clamp: clamp(drop) lo=0.0 hi=4.0",
    "fc2: matmul(clamp)",
]


def test_every_supported_op_becomes_its_node_with_bn_folded_and_relus_fused() -> None:
    spec = trace_graph(Everything(), torch.zeros(2, 1, 8, 8))
    assert describe(spec) == EVERYTHING
    assert spec.output == "fc2" and spec.input_shape == (1, 8, 8)
    assert spec.node("fc1").act == (0.0, 6.0) and spec.node("block_dw").act == (0.0, 6.0)
    assert spec.node("add").act == (0.0, None)
    two = {"stem_0", "add"}  # the residual's two uses, and the add feeding the max-pool and the concat
    assert spec.users() == {INPUT: 1, **{n.name: 2 if n.name in two else 1 for n in spec.nodes}}


@pytest.mark.parametrize(
    "make, shape",
    [
        (Everything, (1, 8, 8)),
        (lambda: build_model("resnet8", 0), (1, 8, 8)),
        (lambda: build_model("mobilenet", 0), (1, 12, 12)),
        (lambda: build_model("lenet5", 0), (1, 28, 28)),
        (outside_model, (1, 8, 8)),
    ],
)
def test_the_float_graph_computes_the_model_itself(make, shape) -> None:
    torch.manual_seed(0)
    model = make()
    x = torch.rand(5, *shape)
    model.train()
    model(torch.rand(16, *shape))  # non-trivial BatchNorm running statistics
    for bn in (m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)):
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.2, 0.2)
    qg = QuantGraph(model, x).eval()
    with torch.no_grad():
        assert torch.allclose(qg(x), model(x), atol=1e-5)


def test_batchnorm_folding_is_exact_in_float64() -> None:
    torch.manual_seed(1)
    conv, bn = nn.Conv2d(3, 5, 3, stride=2, padding=1), nn.BatchNorm2d(5)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    bn.weight.data.uniform_(0.5, 1.5)
    bn.bias.data.uniform_(-1, 1)
    model = nn.Sequential(conv, bn).double().eval()
    qg = QuantGraph(model, torch.zeros(2, 3, 6, 6, dtype=torch.float64)).eval()
    node = qg.spec.node("_0")
    assert node.bn is bn
    w, b = qg._folded(node, torch.zeros(1), torch.float64)
    x = torch.rand(4, 3, 6, 6, dtype=torch.float64)
    assert torch.allclose(F.conv2d(x, w, b, 2, 1), model(x), atol=1e-12, rtol=0)


class Gate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x
        return -x


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.gate = Gate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.fc(x))


def test_a_model_that_cannot_be_traced_names_the_module_and_the_line() -> None:
    with pytest.raises(GraphError) as err:
        trace_graph(Gated(), torch.zeros(2, 4))
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("cannot trace Gated: module Gate 'gate' at test_graph.py:")
    assert "`if x.sum() > 0:`" in msg and "cannot be used as inputs to control flow" in msg


class Wrap(nn.Module):
    """One op in a forward: ``op(self, x)``."""

    def __init__(self, op, **mods) -> None:
        super().__init__()
        self.op = op
        for k, v in mods.items():
            setattr(self, k, v)
        self.p = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self, x)


def conv(**kw) -> nn.Conv2d:
    return nn.Conv2d(2, 2, 3, **kw)


BAD = [
    (
        lambda s, x: s.c(torch.sigmoid(x)),
        dict(c=conv()),
        r"unsupported node 'sigmoid' \(call_function sigmoid\) in module '': this op is not supported "
        r"\(supported: Conv2d",
    ),
    (
        lambda s, x: s.act(s.c(x)),
        dict(c=conv(), act=nn.Sigmoid()),
        r"unsupported node 'act' \(call_module Sigmoid\) in module 'act': module Sigmoid is not supported",
    ),
    (lambda s, x: s.c(x).transpose(2, 3), dict(c=conv()), r"node 'transpose' \(call_method transpose\)"),
    (lambda s, x: s.c(x) * 2, dict(c=conv()), r"node 'mul' \(call_function mul\) in module ''"),
    (lambda s, x: s.c(x) + s.p, dict(c=conv()), r"node 'p' \(get_attr p\) in module '': parameters and buffers"),
    (lambda s, x: s.c(x), dict(c=conv(dilation=2)), r"node 'c' \(call_module Conv2d\) in module 'c': Conv2d dilation"),
    (lambda s, x: s.c(x), dict(c=conv(padding=1, padding_mode="reflect")), "padding_mode must be 'zeros'"),
    (lambda s, x: s.c(x), dict(c=nn.Conv2d(2, 2, 2, padding="same")), "padding='same' with the even kernel"),
    (lambda s, x: F.max_pool2d(s.c(x), 2, ceil_mode=True), dict(c=conv()), "ceil_mode=False"),
    (lambda s, x: s.a(s.c(x)), dict(c=conv(), a=nn.AdaptiveAvgPool2d((2, 2))), r"to \(1, 1\) only"),
    (lambda s, x: F.avg_pool2d(s.c(x), 3, 1, 1, count_include_pad=False), dict(c=conv()), "count_include_pad"),
    (lambda s, x: torch.cat([s.c(x), s.c(x)], 2), dict(c=conv()), "along the channel dim 1 only"),
    (lambda s, x: s.c(x) + F.adaptive_avg_pool2d(s.c(x), 1), dict(c=conv()), "broadcasting is not supported"),
    (
        lambda s, x: s.c(s.bn(x)),
        dict(c=conv(), bn=nn.BatchNorm2d(2)),
        r"node 'bn' \(call_module BatchNorm2d\) in module 'bn': BatchNorm is folded into a directly preceding Conv2d "
        r"that feeds only it \(its input is 'input'\)",
    ),
    (lambda s, x: s.c(x)[:, :1], dict(c=conv()), r"node 'getitem' \(call_function getitem\) in module ''"),
    (
        lambda s, x: s.c(x).view(-1),
        dict(c=conv()),
        r"must keep the batch dimension \(example \(2, 2, 6, 6\) -> \(144,\)\)",
    ),
    (lambda s, x: s.c(x).mean(1), dict(c=conv()), r"spatial dims \(2, 3\)"),
    (lambda s, x: s.f(s.c(x)), dict(c=conv(), f=nn.Flatten(0)), "must keep the batch dimension"),
    (lambda s, x: s.fc(s.c(x)), dict(c=conv(), fc=nn.Linear(6, 2)), r"Linear needs a \(batch, features\) input"),
    (lambda s, x: (s.c(x), x), dict(c=conv()), "the model must return one tensor"),
    (
        lambda s, x: s.c(x) + x.size(1),
        dict(c=conv()),
        r"node 'add' \(call_function add\) in module '': its input "
        r"'size' is not a tensor computed by the network",
    ),
    (
        lambda s, x: torch.cat([s.c(x)] * x.size(1), 1),
        dict(c=conv()),
        r"node 'cat' \(call_function cat\) in module '': its input 'mul' is a shape, not a tensor",
    ),
    (lambda s, x: x, dict(), "returns its input unchanged"),
    (lambda s, x: F.relu(x), dict(), "has no Conv2d or Linear layer"),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("op, mods, msg", BAD)
def test_every_unsupported_op_is_one_graph_error_naming_node_op_and_module(op, mods, msg) -> None:
    with pytest.raises(GraphError, match=msg) as err:
        trace_graph(Wrap(op, **mods), torch.zeros(2, 2, 8, 8))
    assert "\n" not in str(err.value) and isinstance(err.value, DPPError)


def test_a_nested_unsupported_op_names_its_module_path() -> None:
    class Inner(nn.Module):
        def forward(self, x):
            return torch.tanh(x)

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU(), Inner()))
    with pytest.raises(GraphError, match=r"node 'tanh' \(call_function tanh\) in module '1\.1'"):
        trace_graph(model, torch.zeros(2, 1, 8, 8))


def test_two_inputs_and_a_bad_example_are_refused() -> None:
    class Two(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x, y):
            return self.fc(x + y)

    with pytest.raises(GraphError, match=r"Two.forward must take exactly one input tensor \(got \['x', 'y'\]\)"):
        trace_graph(Two(), torch.zeros(2, 3))
    with pytest.raises(GraphError, match=r"fails on an example batch of shape \(2, 5\)"):
        trace_graph(nn.Linear(3, 2), torch.zeros(2, 5))
    with pytest.raises(GraphError, match="the example input must be a batch tensor"):
        trace_graph(nn.Linear(3, 2), torch.zeros(3))
    with pytest.raises(GraphError, match="expected an nn.Module"):
        trace_graph(lambda x: x, torch.zeros(2, 3))


def test_masked_and_subclassed_layers_stay_single_nodes() -> None:
    from dpp.parametrize import sparsify

    class MyConv(nn.Conv2d):
        pass

    model = nn.Sequential(MyConv(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))
    sparsify(model, 1, 4, "weight", layers=["3"])
    spec = trace_graph(model, torch.zeros(2, 1, 8, 8))
    assert [n.op for n in spec.nodes] == ["matmul", "reshape", "matmul"]
    assert spec.nodes[0].module is model[0] and spec.nodes[2].module is model[3]
