"""k-of-n vs dense vs CSR on a pair of (hand-built) networks: each design runs its own network's weights."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.trained_arch import compare_trained
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from rtl.layout import DRAIN_CYCLES


def _net(weights: list, relu_last: bool = False) -> IntNetwork:
    layers = [IntLayer("linear", w, np.zeros(w.rows if isinstance(w, KofNMatrix) else w.shape[0], dtype=np.int64),
                       multiplier=1, shift=8, relu=i < len(weights) - 1 or relu_last, out_bits=8, weight_bits=4)
              for i, w in enumerate(weights)]
    ops = [{"op": "flatten"}] + [{"op": "matmul", "layer": i} for i in range(len(layers))]
    cols = layers[0].cols
    return IntNetwork(layers, ops, input_shape=(cols,), input_scale=1 / 127)


def _pair(rng: np.random.Generator) -> tuple[IntNetwork, IntNetwork, list[np.ndarray]]:
    dense = [rng.integers(-7, 8, size=(12, 40)), rng.integers(-7, 8, size=(5, 12))]
    kofn = [KofNMatrix.prune_magnitude(w, 2, 8, weight_bits=4) for w in dense]
    # the "unstructured" network: its own sparsity pattern, rows deliberately unbalanced
    unstructured = []
    for w in dense:
        keep = np.zeros(w.shape, dtype=bool)
        for r in range(w.shape[0]):
            keep[r, : 1 + (r * 3) % w.shape[1]] = True
        unstructured.append(np.where(keep, w, 0))
    return _net(kofn), _net(unstructured), unstructured


def test_cycles_follow_each_designs_own_weights() -> None:
    rng = np.random.default_rng(3)
    a, b, unstructured = _pair(rng)
    x = rng.integers(0, 100, size=(3, 40))
    pes = 4
    rows = compare_trained(a, b, x, pes=pes)
    assert [r["layer"] for r in rows] == [0, 1, "total"]
    for r, w in zip(rows, unstructured):
        tiles = -(-w.shape[0] // pes)
        groups = -(-w.shape[1] // 8)
        assert r["batch"] == 3
        assert r["kofn_cycles"] == 3 * tiles * groups + DRAIN_CYCLES["kofn"]
        assert r["dense_cycles"] == 3 * tiles * -(-w.shape[1] // 2) + DRAIN_CYCLES["dense"]
        nnz = (w != 0).sum(axis=1)
        per_pe = [sum(max(1, -(-int(nnz[i]) // 2)) for i in range(p, w.shape[0], pes)) for p in range(pes)]
        assert r["csr_cycles"] == 3 * max(per_pe) + DRAIN_CYCLES["csr"]
        assert r["csr_over_kofn"] == pytest.approx(r["csr_cycles"] / r["kofn_cycles"])
        assert r["csr_density"] == pytest.approx(nnz.sum() / w.size)
    total = rows[-1]
    assert total["kofn_cycles"] == rows[0]["kofn_cycles"] + rows[1]["kofn_cycles"]
    assert total["csr_over_kofn"] == pytest.approx(total["csr_cycles"] / total["kofn_cycles"])


def test_networks_of_different_models_are_refused() -> None:
    rng = np.random.default_rng(0)
    a, _, _ = _pair(rng)
    other = _net([rng.integers(-7, 8, size=(12, 40)), rng.integers(-7, 8, size=(6, 12))])
    x = rng.integers(0, 100, size=(1, 40))
    with pytest.raises(ValueError, match=r"layer 1: shapes differ, 5x12 \(k-of-n\) vs 6x12 \(CSR\)"):
        compare_trained(a, other, x, pes=4)
    with pytest.raises(ValueError, match="has no k-of-n layer"):
        compare_trained(other, other, x, pes=4)
    with pytest.raises(ValueError, match="pes"):
        compare_trained(a, a, x, pes=0)


@pytest.mark.slow
def test_every_layer_in_rtl_is_bit_exact() -> None:
    rng = np.random.default_rng(5)
    a, b, _ = _pair(rng)
    seen: list[str] = []
    rows = compare_trained(a, b, rng.integers(0, 100, size=(2, 40)), pes=4, simulate=True, on_layer=seen.append)
    assert len(seen) == 6 and rows[-1]["kofn_cycles"] > 0
