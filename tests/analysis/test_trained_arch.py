"""k-of-n vs dense vs CSR on a pair of (hand-built) networks: each design runs its own network's weights."""

from __future__ import annotations

import numpy as np
import pytest

from analysis.trained_arch import compare_trained
from dpp.kofn import KofNMatrix
from dpp.network import IntLayer, IntNetwork
from rtl.layout import DRAIN_CYCLES


def _net(weights: list, relu_last: bool = False) -> IntNetwork:
    layers = [
        IntLayer(
            "linear",
            w,
            np.zeros(w.rows if isinstance(w, KofNMatrix) else w.shape[0], dtype=np.int64),
            multiplier=1,
            shift=8,
            relu=i < len(weights) - 1 or relu_last,
            out_bits=8,
            weight_bits=4,
        )
        for i, w in enumerate(weights)
    ]
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


def test_banked_csr_pays_for_bank_conflicts() -> None:
    rng = np.random.default_rng(4)
    a, b, _ = _pair(rng)
    x = rng.integers(0, 100, size=(2, 40))
    plain = compare_trained(a, b, x, pes=4)
    one, many = (compare_trained(a, b, x, pes=4, act_banks=banks) for banks in (1, 64))
    for p, r1, r64 in zip(plain, one, many):
        assert r1["csr_cycles"] == p["csr_cycles"] and "csr_banked_cycles" not in p
        # lock-step slots cost at least one cycle each: never faster than the replicated CSR (+1 drain cycle)
        assert r1["csr_banked_cycles"] >= r64["csr_banked_cycles"] >= p["csr_cycles"] + 1
        assert r1["csr_banked_over_kofn"] == pytest.approx(r1["csr_banked_cycles"] / r1["kofn_cycles"])
    assert one[-1]["csr_banked_cycles"] > many[-1]["csr_banked_cycles"]  # one bank serialises every slot


def test_cli_prints_and_writes_the_table(tmp_path) -> None:
    import json
    import subprocess
    import sys

    rng = np.random.default_rng(6)
    dense = [rng.integers(-7, 8, size=(12, 64)), rng.integers(-7, 8, size=(10, 12))]
    kofn = _net([KofNMatrix.prune_magnitude(w, 1, 4, weight_bits=4) for w in dense])
    unstructured = _net([np.where(rng.random(w.shape) < 0.25, w, 0) for w in dense])
    for net, name in ((kofn, "k"), (unstructured, "u")):
        net.meta["model"] = "digits"
        net.save(tmp_path / name)
    out = tmp_path / "res" / "t.json"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.cli",
            "bench-sim",
            "trained",
            "--kofn-net",
            "k",
            "--csr-net",
            "u",
            "--pes",
            "4",
            "--images",
            "3",
            "--act-banks",
            "2x",
            "--json",
            "res/t.json",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )  # as a user: relative paths
    assert res.returncode == 0, res.stdout + res.stderr
    rows = json.loads(out.read_text())
    assert [r["layer"] for r in rows] == [0, 1, "total"] and rows[0]["batch"] == 3
    assert rows[0]["csr_banked_cycles"] >= rows[0]["csr_cycles"] + 1
    assert rows[-1]["kofn_cycles"] == rows[0]["kofn_cycles"] + rows[1]["kofn_cycles"]


def test_cli_missing_network_is_one_line_error(tmp_path) -> None:
    import subprocess
    import sys

    out = tmp_path / "t.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "analysis.cli",
            "bench-sim",
            "trained",
            "--kofn-net",
            str(tmp_path / "no"),
            "--csr-net",
            str(tmp_path / "no"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == f"error: manifest {tmp_path / 'no' / 'network.json'} not found"
    assert not out.exists()
