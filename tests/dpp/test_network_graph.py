"""IntNetwork as a graph (network.json schema version 2): running, hooks, files, version 1 still loading."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from dpp.errors import DPPError, FormatError
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from dpp.reference import (
    add_int,
    avgpool_int,
    clamp_int,
    concat_int,
    conv2d_int,
    global_avgpool_int,
    linear_int,
    maxpool_int,
)

V1 = Path(__file__).parent / "data" / "network_v1"


def test_a_version_1_file_written_by_the_old_code_loads_and_runs_the_same(tmp_path) -> None:
    net = IntNetwork.load(V1)
    assert [(n["name"], n["op"], n["inputs"]) for n in net.nodes] == [
        ("matmul0", "matmul", ["input"]),
        ("maxpool1", "maxpool", ["matmul0"]),
        ("flatten2", "reshape", ["maxpool1"]),
        ("matmul3", "matmul", ["flatten2"]),
        ("matmul4", "matmul", ["matmul3"]),
    ]
    assert net.output == "matmul4" and [layer.format for layer in net.layers] == ["kofn", "kofn", "dense"]
    with np.load(V1 / "expected.npz") as old:
        x = old["x_int"]
        outs = net.run(x)
        assert [o.shape for o in outs] == [(40, 16, 4, 4), (40, 64), (40, 10)]
        for i, o in enumerate(outs):
            assert np.array_equal(o, old[f"out{i}"])
        assert np.array_equal(net.predict(x), old["predict"])
    # saved again, it is a version-2 file that runs the same
    net.save(tmp_path / "v2")
    manifest = json.loads((tmp_path / "v2" / "network.json").read_text())
    assert manifest["schema_version"] == 2 and "ops" not in manifest and manifest["output"] == "matmul4"
    again = IntNetwork.load(tmp_path / "v2")
    assert again.nodes == json.loads(json.dumps(net.nodes)) and np.array_equal(again.forward(x), outs[-1])


def _layer(rng, kind, rows, cols, relu=True, out_bits=8, **geometry) -> IntLayer:
    w = rng.integers(-7, 8, size=(rows, cols))
    return IntLayer(
        kind, w, rng.integers(-50, 50, size=rows), 200, 10, relu, out_bits, weight_bits=4, geometry=geometry
    )


def small_graph(rng: np.random.Generator) -> IntNetwork:
    """conv -> depthwise (2 groups) -> add with the conv -> [maxpool, avgpool] concat -> clamp -> gap -> fc."""
    conv = dict(in_channels=1, out_channels=2, kh=3, kw=3, stride=1, padding=1)
    dw = dict(in_channels=1, out_channels=1, kh=3, kw=3, stride=1, padding=[1, 1])
    layers = [
        _layer(rng, "conv2d", 2, 9, **conv),
        _layer(rng, "conv2d", 1, 9, **dw),
        _layer(rng, "conv2d", 1, 9, **dw),
        _layer(rng, "linear", 3, 4, relu=False, out_bits=32),
    ]
    layers[0].weights = KofNMatrix.prune_magnitude(layers[0].weights, 1, 3, weight_bits=4)
    nodes = [
        dict(name="c", op="matmul", inputs=["input"], layers=[0]),
        dict(name="dw", op="matmul", inputs=["c"], layers=[1, 2]),
        dict(name="res", op="add", inputs=["dw", "c"], multipliers=[3, 5], shift=3, relu=True, out_bits=8),
        dict(name="mp", op="maxpool", inputs=["res"], kernel=3, stride=2, padding=1),
        dict(
            name="ap",
            op="avgpool",
            inputs=["res"],
            kernel=[2, 2],
            stride=2,
            padding=0,
            multiplier=1,
            shift=2,
            out_bits=8,
        ),
        dict(name="cat", op="concat", inputs=["mp", "ap"], multipliers=[2, 1], shifts=[1, 1], out_bits=8),
        dict(name="clip", op="clamp", inputs=["cat"], lo=0, hi=90),
        dict(name="gap", op="global_avgpool", inputs=["clip"], keepdim=True, multiplier=1, shift=4, out_bits=8),
        dict(name="flat", op="reshape", inputs=["gap"], shape=[-1]),
        dict(name="fc", op="matmul", inputs=["flat"], layers=[3]),
    ]
    return IntNetwork(layers, nodes=nodes, output="fc", input_shape=(1, 8, 8), input_scale=1 / 127)


def by_hand(net: IntNetwork, x: np.ndarray) -> np.ndarray:
    """The same graph composed from the reference ops directly."""
    L = net.layers
    c = conv2d_int(x, L[0].weights, L[0].bias, 200, 10, 8, True, kernel=3, padding=1)
    dw = conv2d_int(
        c,
        [L[1].weights, L[2].weights],
        np.concatenate([L[1].bias, L[2].bias]),
        200,
        10,
        8,
        True,
        kernel=3,
        padding=1,
        groups=2,
    )
    res = add_int(dw, c, [3, 5], 3, 8, True)
    cat = concat_int([maxpool_int(res, 3, 2, 1), avgpool_int(res, 2, 2, 0, 1, 2, 8)], [2, 1], [1, 1], 8)
    gap = global_avgpool_int(clamp_int(cat, 0, 90), 1, 4, 8, keepdim=True)
    return linear_int(gap.reshape(len(x), -1), L[3].weights, L[3].bias, 200, 10, 32, False)


def test_a_graph_runs_the_reference_ops_and_round_trips_through_files(tmp_path) -> None:
    rng = np.random.default_rng(3)
    net = small_graph(rng)
    x = rng.integers(-128, 128, size=(6, 1, 8, 8))
    want = by_hand(net, x)
    assert np.array_equal(net.forward(x), want) and np.array_equal(net.predict(x), np.argmax(want, axis=1))
    net.save(tmp_path)
    loaded = IntNetwork.load(tmp_path)
    assert loaded.nodes == json.loads(json.dumps(net.nodes)) and loaded.output == "fc"
    assert [layer.format for layer in loaded.layers] == ["kofn", "dense", "dense", "dense"]
    assert np.array_equal(loaded.forward(x), want)


def test_the_hook_sees_every_layer_and_each_group_separately() -> None:
    rng = np.random.default_rng(4)
    net = small_graph(rng)
    x = rng.integers(-128, 128, size=(3, 1, 8, 8))
    seen = []

    def hook(i, layer, m):
        seen.append((i, m.shape))
        return layer.matmul(m)

    stages, ios = net.run_with(x, hook)
    assert seen == [(0, (192, 9)), (1, (192, 9)), (2, (192, 9)), (3, (3, 4))]
    assert [io.x.shape for io in ios] == [s for _, s in seen]
    assert [s.shape for s in stages] == [(3, 2, 8, 8), (3, 2, 8, 8), (3, 3)]
    assert np.array_equal(stages[-1], net.forward(x))
    zeroed = net.execute(x, lambda i, layer, m: layer.matmul(m) * 0 if i == 3 else layer.matmul(m))
    assert not zeroed.output.any()  # the hook's result is what flows on


def test_stages_follow_a_max_pool_only_when_it_alone_uses_the_matmul() -> None:
    rng = np.random.default_rng(5)
    net = small_graph(rng)
    x = rng.integers(-128, 128, size=(2, 1, 8, 8))
    v1 = IntNetwork.load(V1)
    assert v1.run(np.zeros((1, 1, 8, 8), dtype=np.int64))[0].shape == (1, 16, 4, 4)  # conv, then its pool
    assert net.run(x)[1].shape == (2, 2, 8, 8)  # dw feeds the add only: no pool follows it


def _nodes(**change):
    nodes = [
        dict(name="a", op="reshape", inputs=["input"], shape=[-1]),
        dict(name="b", op="matmul", inputs=["a"], layers=[0]),
    ]
    for key, value in change.items():
        index, field = key.split("__")
        if value is None:
            del nodes[int(index)][field]
        else:
            nodes[int(index)][field] = value
    return nodes


@pytest.mark.parametrize(
    "change, msg",
    [
        (dict(b__op="softmax"), r"node 'b': op must be one of \('matmul', 'maxpool'"),
        (dict(b__layers=None), r"node 'b' \(matmul\) lacks key 'layers'"),
        (dict(b__inputs=["c"]), r"node 'b': input 'c' is not the network input or an earlier node"),
        (dict(a__inputs=["b"]), r"node 'a': input 'b' is not the network input or an earlier node"),
        (dict(b__name="a"), "node name 'a' is used twice"),
        (dict(a__name="input"), "node name 'input' is reserved"),
        (dict(b__layers=[1]), r"layers must list layer indices in \[0, 1\) \(got \[1\]\)"),
        (dict(b__inputs=["a", "a"]), r"node 'b' \(matmul\) needs 1 input\(s\)"),
        (dict(a__shape=[-1, 2]), r"node 'b' \(matmul\): expected a \(batch, 4\) input \(got shape \(1, 2, 2\)\)"),
        (dict(a__shape="flat"), r"node 'a' \(reshape\): shape must be a list of ints"),
    ],
)
def test_a_bad_graph_is_refused_with_one_line(change, msg) -> None:
    layer = IntLayer("linear", np.ones((2, 4), dtype=np.int64), np.zeros(2, dtype=np.int64), 1, 1, False, 8)
    with pytest.raises(DPPError, match=msg):
        IntNetwork(
            [layer],
            nodes=_nodes(**{k.replace("a__", "0__").replace("b__", "1__"): v for k, v in change.items()}),
            input_shape=(4,),
            input_scale=0.1,
        )


def test_other_graph_errors() -> None:
    lin = IntLayer("linear", np.ones((2, 4), dtype=np.int64), np.zeros(2, dtype=np.int64), 1, 1, False, 8)
    conv = IntLayer(
        "conv2d",
        np.ones((1, 9), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        1,
        1,
        False,
        8,
        geometry=dict(in_channels=1, out_channels=1, kh=3, kw=3, stride=1, padding=1),
    )
    conv2 = IntLayer(
        "conv2d",
        np.ones((1, 9), dtype=np.int64),
        np.zeros(1, dtype=np.int64),
        1,
        1,
        False,
        8,
        geometry=dict(in_channels=1, out_channels=1, kh=3, kw=3, stride=2, padding=1),
    )
    mm = lambda layers: [dict(name="m", op="matmul", inputs=["input"], layers=layers)]  # noqa: E731
    with pytest.raises(DPPError, match="give either ops"):
        IntNetwork([lin], input_shape=(4,), input_scale=0.1)
    with pytest.raises(DPPError, match=r"output must name a node \(got 'z'\)"):
        IntNetwork([lin], nodes=mm([0]), output="z", input_shape=(4,), input_scale=0.1)
    with pytest.raises(DPPError, match=r"a grouped matmul needs conv2d layers only"):
        IntNetwork([lin, lin], nodes=mm([0, 1]), input_shape=(4,), input_scale=0.1)
    with pytest.raises(DPPError, match="the groups of a conv must share their geometry"):
        IntNetwork([conv, conv2], nodes=mm([0, 1]), input_shape=(2, 5, 5), input_scale=0.1)
    with pytest.raises(DPPError, match=r"use layers 0\.\.1 in order, each once \(got \[1, 0\]\)"):
        IntNetwork([conv, conv], nodes=mm([1, 0]), input_shape=(2, 5, 5), input_scale=0.1)
    with pytest.raises(DPPError, match=r"node 'm' \(matmul\): expected NCHW input with 2 channels"):
        IntNetwork([conv, conv], nodes=mm([0, 1]), input_shape=(1, 5, 5), input_scale=0.1)
    with pytest.raises(DPPError, match=r"op must be one of \('matmul', 'maxpool', 'flatten'\)"):
        IntNetwork([lin], [{"op": "softmax"}], input_shape=(4,), input_scale=0.1)


def test_load_refuses_a_broken_graph_as_a_format_error(tmp_path) -> None:
    shutil.copytree(V1, tmp_path / "net")
    path = tmp_path / "net" / "network.json"
    man = json.loads(path.read_text())
    man["ops"][1]["kernel"] = 9
    path.write_text(json.dumps(man))
    with pytest.raises(FormatError, match=r"network.json: node 'maxpool1' \(maxpool\): a 9x9 window does not fit"):
        IntNetwork.load(tmp_path / "net")
    man.update(schema_version=2)
    path.write_text(json.dumps(man))
    with pytest.raises(FormatError, match="lacks key 'nodes'"):
        IntNetwork.load(tmp_path / "net")
    man.update(schema_version=3)
    path.write_text(json.dumps(man))
    with pytest.raises(FormatError, match=r"schema_version must be 1 or 2 \(got 3\)"):
        IntNetwork.load(tmp_path / "net")
