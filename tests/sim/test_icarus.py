"""The same harness and checks on Icarus Verilog, when ``iverilog`` is installed (optional simulator)."""

from __future__ import annotations

import numpy as np
import pytest

from rtl.params import ArrayParams
from sim.run import simulate_layers
from sim.toolchain import simulator_available
from tests.sim.gen import edge_layers, random_layer

pytestmark = pytest.mark.skipif(not simulator_available("icarus"), reason="iverilog not installed")


@pytest.mark.parametrize("arch,n", [("kofn", 4), ("dense", 3), ("csr", 3)])
def test_arrays_on_icarus(arch: str, n: int) -> None:
    params = ArrayParams(
        arch=arch, k=2, n=n, pes=3, weight_bits=8, act_bits=8, out_bits=8, max_rows=20, max_cols=40, max_batch=3
    )
    rng = np.random.default_rng(11)
    layers = list(edge_layers(params, rng).values()) + [random_layer(params, rng) for _ in range(6)]
    results = simulate_layers(params, layers, simulator="icarus")
    assert len(results) == len(layers)
    for i, res in enumerate(results):
        res.check(f"{arch} on icarus, layer {i}")
        assert res.run_cycles == res.counters["cycles"] + 1
