"""The three generated arrays under Verilator: bit-exact against ``linear_int``, counters equal to the model.

One build per configuration; all of its layers (named edge cases + seeded random layers) run in ONE simulator
process, since the layer shape and requantisation are run-time registers. Builds are cached in
``~/.cache/dpp-sim`` (or ``$DPP_SIM_CACHE``), keyed by the parameters and the RTL sources.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from dpp.errors import SimulationError
from rtl.params import ArrayParams
from sim.run import build_array, simulate_layer, simulate_layers
from tests.sim.gen import edge_layers, random_layer

COMMON = dict(weight_bits=8, act_bits=8, out_bits=8, max_rows=20, max_cols=40, max_batch=3)
#: name -> (build parameters, random layers per CI run). Random layers in all: 260 (>= 200 required) on the
#: three arrays, plus 55 on the banked-activation CSR (act_banks > 0: bank conflicts, merged reads, stalls).
CONFIGS = {
    "kofn_k2_n4": (ArrayParams(arch="kofn", k=2, n=4, pes=3, **COMMON), 70),
    "kofn_k1_n8_block2": (ArrayParams(arch="kofn", k=1, n=8, pes=2, block=2, **COMMON), 30),
    "kofn_k3_n4_narrow": (
        ArrayParams(
            arch="kofn", k=3, n=4, pes=4, weight_bits=4, act_bits=6, out_bits=12, max_rows=17, max_cols=30, max_batch=2
        ),
        30,
    ),
    # n = k + 1: the canonical n of the baselines (sim.workloads.array_params), so `dpp sim --compare` reuses them
    "dense_k2": (ArrayParams(arch="dense", k=2, n=3, pes=3, **COMMON), 65),
    "csr_k2": (ArrayParams(arch="csr", k=2, n=3, pes=3, **COMMON), 65),
    # `dpp sim --compare --act-banks 4` and `bench-sim arch --act-banks 4` on the CLI layer reuse this build
    "csr_k2_banks4": (ArrayParams(arch="csr", k=2, n=3, pes=3, act_banks=4, **COMMON), 30),
    "csr_k3_banks8_narrow": (
        ArrayParams(
            arch="csr",
            k=3,
            n=4,
            pes=2,
            act_banks=8,
            weight_bits=4,
            act_bits=6,
            out_bits=12,
            max_rows=17,
            max_cols=30,
            max_batch=2,
        ),
        15,
    ),
    "csr_k1_banks1": (ArrayParams(arch="csr", k=1, n=2, pes=4, act_banks=1, **COMMON), 10),  # every read conflicts
}


@pytest.fixture(scope="module")
def designs() -> dict:
    return {}


def _design(designs: dict, name: str):
    if name not in designs:
        designs[name] = build_array(CONFIGS[name][0])
    return designs[name]


@pytest.mark.parametrize("name", list(CONFIGS))
def test_edge_cases_and_random_layers(name: str, designs: dict) -> None:
    params, n_random = CONFIGS[name]
    rng = np.random.default_rng(sum(map(ord, name)))
    edges = edge_layers(params, rng)
    labels = list(edges) + [f"random layer {i}" for i in range(n_random)]
    layers = list(edges.values()) + [random_layer(params, rng) for _ in range(n_random)]
    results = simulate_layers(params, layers, design=_design(designs, name))
    assert len(results) == len(layers)
    for label, res in zip(labels, results):
        res.check(f"{name}, {label}")  # bit-exact outputs, counters == sim.model.predict_counters
        np.testing.assert_array_equal(res.outputs, res.expected)
        assert res.counters == res.model_counters, label
        # the cycles counter equals the latency the harness sees from start to done (start is registered)
        assert res.run_cycles == res.counters["cycles"] + 1, label
    by_label = dict(zip(labels, results))
    top = (1 << (params.out_bits - 1)) - 1
    assert (by_label["max_positive_acc_saturates"].outputs == top).all()
    assert (by_label["max_negative_acc_saturates"].outputs == -top - 1).all()
    assert (by_label["negative_acc_relu"].outputs == 0).all()


def test_mismatch_names_row_batch_expected_and_got(designs: dict) -> None:
    params = CONFIGS["dense_k2"][0]
    layer = random_layer(params, np.random.default_rng(5))
    res = simulate_layer(
        params,
        layer.W,
        layer.x,
        layer.bias,
        layer.multiplier,
        layer.shift,
        layer.relu,
        design=_design(designs, "dense_k2"),
    )
    assert res.bit_exact and res.counters_match
    b, r = res.outputs.shape[0] - 1, res.outputs.shape[1] - 1
    res.expected = res.expected.copy()
    res.expected[b, r] += 1
    assert not res.bit_exact
    want = f"row {r}, batch index {b}: expected {res.expected[b, r]}, got {res.outputs[b, r]} (1 of"
    with pytest.raises(SimulationError, match="layer: output mismatch at " + re.escape(want)):
        res.check()


def test_cycle_limit_from_model_bounds_the_run(designs: dict) -> None:
    params = CONFIGS["kofn_k2_n4"][0]
    layer = random_layer(params, np.random.default_rng(6))
    with pytest.raises(SimulationError, match=r"timed out: job 0 did not raise done within 3 cycles"):
        simulate_layers(params, [layer], design=_design(designs, "kofn_k2_n4"), max_cycles=3)


@pytest.mark.slow
@pytest.mark.parametrize("arch,banks", [("kofn", 0), ("dense", 0), ("csr", 0), ("csr", 32)])
def test_larger_layer(arch: str, banks: int) -> None:
    from sim.workloads import layer_for, realistic_weights

    params = ArrayParams(
        arch=arch,
        k=2,
        n=8,
        pes=8,
        weight_bits=8,
        act_bits=8,
        out_bits=8,
        max_rows=128,
        max_cols=256,
        max_batch=4,
        act_banks=banks,
    )
    rng = np.random.default_rng(7)
    layer = layer_for(params, realistic_weights(rng, 128, 256, 8), rng, 4)
    res = simulate_layers(params, [layer])[0]
    res.check(f"{arch} 128x256 batch 4")
    assert res.run_cycles == res.counters["cycles"] + 1
