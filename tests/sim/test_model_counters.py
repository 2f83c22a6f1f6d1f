"""sim.model.predict_counters: documented closed forms, errors, speed, and the k/n design target.

Exact agreement with the RTL's counters on random configurations is asserted, config by config, in
tests/rtl/test_arrays.py (every Hypothesis example compares the Amaranth run with this model).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from rtl.layout import COUNTERS, DRAIN_CYCLES
from rtl.params import ArrayParams
from sim.model import predict_counters

COMMON = dict(k=2, n=8, pes=4, weight_bits=4, act_bits=8, out_bits=8, max_rows=512, max_cols=1024, max_batch=8)


def test_kofn_closed_form() -> None:
    p = ArrayParams(arch="kofn", block=2, **COMMON)
    c = predict_counters(p, rows=10, cols=50, batch=3)
    groups, tiles = 4, 3  # ceil(50 / 16), ceil(10 / 4)
    steps = 3 * tiles * groups * 2
    assert list(c) == list(COUNTERS)
    assert c["cycles"] == steps + DRAIN_CYCLES["kofn"]
    assert c["mac_ops"] == 3 * 10 * groups * 2 * 2
    assert c["lane_idle_cycles"] == 8 * c["cycles"] - c["mac_ops"]
    assert c["weight_bits_read"] == 3 * 10 * groups * 2 * 2 * 4
    assert c["index_bits_read"] == 3 * 10 * groups * 2 * 3
    assert c["act_bits_read"] == steps * 8 * 8
    assert c["out_bits_written"] == 3 * 10 * 8


def test_dense_closed_form() -> None:
    c = predict_counters(ArrayParams(arch="dense", **COMMON), rows=10, cols=51, batch=2)
    chunks, tiles = 26, 3
    assert c["cycles"] == 2 * tiles * chunks + DRAIN_CYCLES["dense"]
    assert c["mac_ops"] == 2 * 10 * 51
    assert c["weight_bits_read"] == 2 * 10 * chunks * 2 * 4 and c["index_bits_read"] == 0
    assert c["act_bits_read"] == 2 * tiles * chunks * 2 * 8


def test_csr_busiest_pe_sets_cycles() -> None:
    p = ArrayParams(arch="csr", **COMMON)
    nnz = np.array([7, 0, 1, 2, 8, 0])  # PE 0: rows 0, 4 -> 4 + 4 words; PE 1: rows 1, 5 -> 1 + 1 (empty)
    c = predict_counters(p, rows=6, cols=9, batch=2, row_nnz=nnz)
    assert c["cycles"] == 2 * 8 + DRAIN_CYCLES["csr"]
    assert c["mac_ops"] == 2 * 18 and c["act_bits_read"] == 2 * 18 * 8
    words = 4 + 0 + 1 + 1 + 4 + 0
    assert c["weight_bits_read"] == 2 * words * 2 * 4
    assert c["index_bits_read"] == 2 * (words * 2 * 10 + 6 * (17 + 2))  # col 10 bits; ptr 17 + tail 2


@pytest.mark.parametrize("k,n", [(1, 8), (2, 8), (4, 8), (2, 4)])
def test_kofn_over_dense_cycles_within_5_percent_of_k_over_n(k: int, n: int) -> None:
    """Design target: a 512x1024 layer, batch 8, same pes*k multipliers."""
    common = {**COMMON, "k": k, "n": n}
    kofn = predict_counters(ArrayParams(arch="kofn", **common), 512, 1024, 8)["cycles"]
    dense = predict_counters(ArrayParams(arch="dense", **common), 512, 1024, 8)["cycles"]
    assert abs(kofn / dense / (k / n) - 1) < 0.05


def test_bad_arguments_are_refused() -> None:
    p = ArrayParams(arch="csr", **COMMON)
    with pytest.raises(ValueError, match="arch 'csr' needs row_nnz"):
        predict_counters(p, 4, 8, 1)
    with pytest.raises(ValueError, match=r"row_nnz must have shape \(4,\)"):
        predict_counters(p, 4, 8, 1, row_nnz=[1, 2])
    with pytest.raises(ValueError, match=r"row_nnz must lie in \[0, 8\]"):
        predict_counters(p, 4, 8, 1, row_nnz=[1, 2, 9, 0])
    with pytest.raises(TypeError, match="row_nnz must be an integer array"):
        predict_counters(p, 2, 8, 1, row_nnz=[1.5, 2.0])
    with pytest.raises(ValueError, match="rows must be <= 512"):
        predict_counters(p, 513, 8, 1, row_nnz=np.ones(513, int))
    with pytest.raises(ValueError, match="batch must be >= 1"):
        predict_counters(ArrayParams(arch="kofn", **COMMON), 4, 8, 0)
    with pytest.raises(TypeError, match="params must be an ArrayParams"):
        predict_counters("kofn", 4, 8, 1)  # type: ignore[arg-type]


def test_at_least_10k_configs_per_second() -> None:
    params = [ArrayParams(arch=a, **COMMON) for a in ("kofn", "dense")]
    csr = ArrayParams(arch="csr", **COMMON)
    nnz = np.random.default_rng(0).integers(0, 256, size=512)
    count, start = 0, time.perf_counter()
    for i in range(6000):
        predict_counters(params[i % 2], 1 + i % 512, 1 + i % 1024, 1 + i % 8)
        count += 1
    for i in range(2000):
        predict_counters(csr, 512, 1024, 1 + i % 8, nnz)
        count += 1
    rate = count / (time.perf_counter() - start)
    assert rate >= 10_000, f"{rate:.0f} configs/s"


def _banked_reference(params: ArrayParams, W, batch: int) -> tuple[list[int], list[int]]:
    """Per slot (cycles, bank reads) of the banked CSR schedule, slot by slot in plain Python (independent of
    sim.model's vectorised version): lock-step streams, merged equal addresses, one address per bank per cycle."""
    k, pes, banks = params.k, params.pes, params.act_banks
    streams = []
    for p in range(pes):
        items = []
        for b in range(batch):
            for r in range(p, W.rows, pes):
                cols = [int(c) for c in W.col_indices[W.row_ptr[r] : W.row_ptr[r + 1]]]
                for w in range(max(1, -(-len(cols) // k))):
                    items.append([b * W.cols + c for c in cols[w * k : (w + 1) * k]])
        streams.append(items)
    cycles, reads = [], []
    for s in range(max(len(items) for items in streams)):
        addrs = {a for items in streams if s < len(items) for a in items[s]}
        per_bank = [0] * banks
        for a in addrs:
            per_bank[a % banks] += 1
        cycles.append(max(1, max(per_bank)))
        reads.append(len(addrs))
    return cycles, reads


def _random_banked_case(
    rng: np.random.Generator,
    *,
    pes_hi: int,
    banks_log_hi: int,
    rows_hi: int,
    cols_hi: int,
    density: float,
    empty: float,
) -> tuple[ArrayParams, Any, int]:
    """A random banked CSR build sized to a random layer, the layer's 4-bit weights and a batch: rows of random
    density (up to ``density``), a share ``empty`` of them empty (unbalanced rows, as after global pruning)."""
    from dpp.kofn import CSRMatrix

    k, pes, banks = int(rng.integers(1, 5)), int(rng.integers(1, pes_hi)), 1 << int(rng.integers(0, banks_log_hi))
    rows, cols, batch = int(rng.integers(1, rows_hi)), int(rng.integers(1, cols_hi)), int(rng.integers(1, 4))
    mask = rng.random((rows, cols)) < rng.random((rows, 1)) * density * (rng.random((rows, 1)) > empty)
    W = CSRMatrix.from_dense(rng.integers(-7, 8, size=(rows, cols)), mask, weight_bits=4)
    p = ArrayParams(
        arch="csr",
        k=k,
        n=k + 1,
        pes=pes,
        weight_bits=4,
        act_bits=8,
        out_bits=8,
        max_rows=rows,
        max_cols=cols,
        max_batch=batch,
        act_banks=banks,
    )
    return p, W, batch


def test_banked_model_equals_a_slot_by_slot_reference() -> None:
    from rtl.layout import DRAIN_CYCLES_BANKED

    rng = np.random.default_rng(3)
    for _ in range(150):
        p, W, batch = _random_banked_case(rng, pes_hi=6, banks_log_hi=6, rows_hi=20, cols_hi=30, density=1.0, empty=0.2)
        rows, cols, k, pes = W.rows, W.cols, p.k, p.pes
        cycles, reads = (sum(v) for v in _banked_reference(p, W, batch))
        c = predict_counters(p, rows, cols, batch, csr=W)
        assert c["cycles"] == cycles + DRAIN_CYCLES_BANKED and c["act_bits_read"] == reads * 8
        same = predict_counters(ArrayParams(**{**p.to_dict(), "act_banks": 0}), rows, cols, batch, W.row_lengths())
        for name in ("mac_ops", "weight_bits_read", "index_bits_read", "out_bits_written"):
            assert c[name] == same[name], name  # only cycles, idle lanes and activation reads change
        assert c["lane_idle_cycles"] == pes * k * c["cycles"] - c["mac_ops"]
        assert c["cycles"] - DRAIN_CYCLES_BANKED >= same["cycles"] - DRAIN_CYCLES["csr"]  # never faster


@pytest.mark.parametrize("seed", range(4))
def test_banked_slots_equal_the_reference_slot_by_slot(seed: int) -> None:
    """Wider layers and up to 1024 banks (few requests per slot, many banks), batch up to 3: every slot's
    cycles and reads, not only their sums."""
    from sim.model import banked_slots

    rng = np.random.default_rng(100 + seed)
    for _ in range(6):
        p, W, batch = _random_banked_case(
            rng, pes_hi=9, banks_log_hi=11, rows_hi=60, cols_hi=400, density=0.3, empty=0.1
        )
        rows, cols = W.rows, W.cols
        cycles, reads = banked_slots(p, W.row_ptr.astype(np.int64), W.col_indices.astype(np.int64), rows, cols, batch)
        want_cycles, want_reads = _banked_reference(p, W, batch)
        assert cycles.tolist() == want_cycles and reads.tolist() == want_reads


def test_banked_model_accepts_a_pair_and_refuses_missing_columns() -> None:
    from dpp.kofn import CSRMatrix

    p = ArrayParams(arch="csr", **{**COMMON, "act_banks": 16})
    W = CSRMatrix.prune_magnitude(np.random.default_rng(0).integers(-8, 8, size=(6, 9)), 0.4, weight_bits=4)
    c = predict_counters(p, 6, 9, 2, csr=W)
    assert predict_counters(p, 6, 9, 2, W.row_lengths(), csr=(W.row_ptr, W.col_indices)) == c
    with pytest.raises(ValueError, match=r"act_banks=16 needs csr= \(the CSRMatrix or \(row_ptr, col_indices\)\)"):
        predict_counters(p, 6, 9, 2, row_nnz=W.row_lengths())
    with pytest.raises(ValueError, match="row_nnz disagrees with the row lengths of csr"):
        predict_counters(p, 6, 9, 2, row_nnz=W.row_lengths() + 1, csr=W)
    with pytest.raises(ValueError, match=r"csr column indices must lie in \[0, 5\)"):
        predict_counters(p, 6, 5, 2, csr=W)
    with pytest.raises(TypeError, match="csr must be a CSRMatrix or \\(row_ptr, col_indices\\)"):
        predict_counters(p, 6, 9, 2, csr=5)
