"""Whole arrays in Amaranth's simulator: outputs equal dpp.reference.linear_int, counters equal sim.model."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpp.kofn import CSRMatrix, KofNMatrix
from rtl.amaranth_sim import run_program, run_programs
from rtl.params import ArrayParams
from rtl.program import program_layer
from sim.model import predict_counters


def _layer(
    arch: str,
    rng: np.random.Generator,
    rows: int,
    cols: int,
    k: int,
    n: int,
    block: int,
    weight_bits: int,
    density: float,
):
    """A random weight matrix in the format ``arch`` takes (csr with ``density < 0``: a random density per
    row, some rows empty)."""
    lim = 1 << (weight_bits - 1)
    w = rng.integers(-lim, lim, size=(rows, cols))
    if arch == "kofn":
        return KofNMatrix.prune_magnitude(w, k, n, block=block, weight_bits=weight_bits)
    if arch == "csr" and density < 0:
        keep = rng.random((rows, 1)) * (rng.random((rows, 1)) > 0.3)
        return CSRMatrix.from_dense(w, rng.random((rows, cols)) < keep, weight_bits)
    if arch == "csr":
        return CSRMatrix.prune_magnitude(w, density, weight_bits)
    return w


def run_and_check(
    params: ArrayParams,
    rows: int,
    cols: int,
    batch: int,
    seed: int,
    multiplier: int,
    shift: int,
    relu: bool,
    density: float = 0.5,
) -> dict[str, int]:
    """Run one random layer; assert bit-exact outputs and model-exact counters; return the counters."""
    rng = np.random.default_rng(seed)
    W = _layer(params.arch, rng, rows, cols, params.k, params.n, params.block, params.weight_bits, density)
    alim = 1 << (params.act_bits - 1)
    x = rng.integers(-alim, alim, size=(batch, cols))
    blim = min(1 << (params.acc_bits - 2), 1 << 20)
    bias = rng.integers(-blim, blim, size=rows)
    prog = program_layer(params, W, x, bias, multiplier, shift, relu)
    run = run_program(prog)
    np.testing.assert_array_equal(run.outputs, prog.expected)
    csr = W if params.arch == "csr" else None
    row_nnz = W.row_lengths() if params.arch == "csr" else None
    assert run.counters == predict_counters(params, rows, cols, batch, row_nnz, csr=csr)
    return run.counters


@st.composite
def configs(draw, arch: str, banked: bool = False):
    n = draw(st.integers(2, 8 if banked else 16))
    k = draw(st.integers(1, n - 1))
    block = draw(st.integers(1, 3)) if arch == "kofn" else 1
    pes = draw(st.integers(1, 4))
    rows = draw(st.integers(1, 9))
    cols = draw(st.integers(1, 3 * n * block))
    params = ArrayParams(
        arch=arch,
        k=k,
        n=n,
        block=block,
        pes=pes,
        weight_bits=draw(st.integers(2, 8)),
        act_bits=draw(st.integers(2, 8)),
        out_bits=draw(st.integers(2, 16)),
        max_rows=rows + draw(st.integers(0, 3)),
        max_cols=cols + draw(st.integers(0, 5)),
        max_batch=3,
        act_banks=draw(st.sampled_from([1, 2, 4, 8])) if banked else 0,
    )
    densities = [0.1, 0.3, 0.5, 0.9] + ([-1.0] if arch == "csr" else [])
    run = dict(
        rows=rows,
        cols=cols,
        batch=draw(st.integers(1, 3)),
        seed=draw(st.integers(0, 2**31)),
        multiplier=draw(st.integers(1, 2**15 - 1)),
        shift=draw(st.one_of(st.integers(1, 20), st.integers(21, 48))),
        relu=draw(st.booleans()),
        density=draw(st.sampled_from(densities)),
    )
    return params, run


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("arch", ["kofn", "dense", "csr"])
@SETTINGS
@given(data=st.data())
def test_random_layers_match_reference_and_model(arch: str, data) -> None:
    params, run = data.draw(configs(arch))
    run_and_check(params, **run)


@SETTINGS
@given(data=st.data())
def test_banked_csr_random_layers_match_reference_and_model(data) -> None:
    """One activation memory in 1..8 banks: bit-exact, and all 7 counters equal to the model's slot count."""
    params, run = data.draw(configs("csr", banked=True))
    run_and_check(params, **run)


def _banked_run(
    params: ArrayParams, rows_cols: list[list[int]], cols: int, batch: int = 1, x: np.ndarray | None = None
):
    """Run a layer whose row ``r`` keeps exactly the columns ``rows_cols[r]`` (activations ``x``, else random);
    assert bit-exact outputs and model-exact counters; return the counters."""
    rng = np.random.default_rng(len(rows_cols) * 100 + cols)
    mask = np.zeros((len(rows_cols), cols), dtype=bool)
    for r, kept in enumerate(rows_cols):
        mask[r, kept] = True
    W = CSRMatrix.from_dense(rng.integers(1, 8, size=mask.shape), mask, weight_bits=4)
    x = rng.integers(-8, 8, size=(batch, cols)) if x is None else x
    prog = program_layer(params, W, x, rng.integers(-40, 40, size=len(rows_cols)), 3000, 10, False)
    run = run_program(prog)
    np.testing.assert_array_equal(run.outputs, prog.expected)
    assert run.counters == predict_counters(params, W.rows, cols, batch, csr=W)
    return run.counters


BANKED = dict(arch="csr", n=4, weight_bits=4, act_bits=4, out_bits=8, max_rows=4, max_cols=8, max_batch=2)


def test_banked_same_bank_columns_take_one_cycle_each() -> None:
    """pes=1, k=2, B=2: columns {0, 2} share bank 0 (2 cycles), {0, 1} do not (1 cycle); +7 drain."""
    params = ArrayParams(k=2, pes=1, act_banks=2, **BANKED)
    same = _banked_run(params, [[0, 2]], 4)
    apart = _banked_run(params, [[0, 1]], 4)
    assert same["cycles"] == 2 + 7 and apart["cycles"] == 1 + 7
    assert same["act_bits_read"] == apart["act_bits_read"] == 2 * 4
    assert same["lane_idle_cycles"] == 2 * same["cycles"] - 2
    # two words of one row, all in bank 0, two vectors (vector 1 at address 8 + c, bank 0 again): 4 slots x 2
    assert _banked_run(params, [[0, 2, 4, 6]], 8, batch=2)["cycles"] == 4 * 2 + 7


def test_banked_merges_equal_addresses_of_different_pes() -> None:
    """pes=2, k=1, B=2: both PEs asking for column 3 merge into one read (1 cycle); columns 1 and 3 share
    bank 1 (2 cycles, 2 reads); columns 0 and 1 are in different banks (1 cycle, 2 reads)."""
    params = ArrayParams(k=1, pes=2, act_banks=2, **BANKED)
    merged = _banked_run(params, [[3], [3]], 4)
    assert merged["cycles"] == 1 + 7 and merged["act_bits_read"] == 1 * 4
    conflict = _banked_run(params, [[1], [3]], 4)
    assert conflict["cycles"] == 2 + 7 and conflict["act_bits_read"] == 2 * 4
    apart = _banked_run(params, [[0], [1]], 4)
    assert apart["cycles"] == 1 + 7 and apart["act_bits_read"] == 2 * 4
    # an empty row still takes one slot; PE 1's stream (rows 1, 3) ends after 2 slots, PE 0 needs 3
    assert _banked_run(params, [[0, 2], [5], [], [1]], 8)["cycles"] == (2 + 1) + 7


def test_banked_early_grants_keep_their_word_while_the_bank_is_reread() -> None:
    """pes=2, k=2, B=2, every address in bank 0. Slot: lane 0 asks for address 0, lane 1 for 2, lane 2 for 0,
    lane 3 for 4. Cycle 1 serves address 0 (lane 0 wins, lane 2 merges; lanes 1 and 3 lose and must not
    overwrite the bank's read address), cycle 2 address 2, cycle 3 address 4: 3 cycles, 3 reads, and the
    words of the lanes served first survive the bank's later reads. Vector 1 (addresses 8 + c) repeats it.
    Every activation differs, so a word from the wrong address changes the outputs."""
    params = ArrayParams(k=2, pes=2, act_banks=2, **BANKED)
    x = np.arange(16).reshape(2, 8) - 8
    one = _banked_run(params, [[0, 2], [0, 4]], 8, x=x[:1])
    assert one["cycles"] == 3 + 7 and one["act_bits_read"] == 3 * 4
    two = _banked_run(params, [[0, 2], [0, 4]], 8, batch=2, x=x)
    assert two["cycles"] == 2 * 3 + 7 and two["act_bits_read"] == 2 * 3 * 4


def test_replicated_csr_counts_every_lane_read() -> None:
    """act_banks=0 is unchanged: merged addresses still cost one replica read per lane."""
    params = ArrayParams(k=1, pes=2, **BANKED)
    c = _banked_run(params, [[3], [3]], 4)
    assert c["cycles"] == 1 + 6 and c["act_bits_read"] == 2 * 4


def test_kofn_cycles_are_k_over_n_of_dense() -> None:
    """Same multipliers: k-of-n needs cols/n steps per row tile where dense needs cols/k."""
    common = dict(k=2, n=8, pes=2, weight_bits=4, act_bits=8, out_bits=8, max_rows=8, max_cols=64, max_batch=2)
    kofn = run_and_check(ArrayParams(arch="kofn", **common), 8, 64, 2, 1, 181, 10, True)
    dense = run_and_check(ArrayParams(arch="dense", **common), 8, 64, 2, 1, 181, 10, True)
    assert kofn["cycles"] == 2 * 4 * 8 + 5 and dense["cycles"] == 2 * 4 * 32 + 5
    assert kofn["lane_idle_cycles"] == dense["lane_idle_cycles"] == 5 * 4


def test_csr_cycles_follow_the_busiest_pe() -> None:
    """Row 0 (PE 0) holds every non-zero: the run takes its ceil(nnz/k) cycles per vector, others idle."""
    params = ArrayParams(
        arch="csr", k=2, n=4, pes=2, weight_bits=4, act_bits=4, out_bits=8, max_rows=4, max_cols=8, max_batch=2
    )
    dense = np.zeros((4, 8), dtype=np.int64)
    dense[0] = np.arange(1, 9) % 7 - 3
    W = CSRMatrix.from_dense(dense, dense != 0, weight_bits=4)
    x = np.arange(16).reshape(2, 8) % 15 - 7
    prog = program_layer(params, W, x, np.arange(4) * 5 - 7, 3000, 9, False)
    run = run_program(prog)
    np.testing.assert_array_equal(run.outputs, prog.expected)
    nnz0 = int(W.row_lengths()[0])
    assert run.counters["cycles"] == 2 * (math.ceil(nnz0 / 2) + 1) + 6  # row 0 + row 2 (empty: 1 cycle)
    assert run.counters == predict_counters(params, 4, 8, 2, W.row_lengths())


def test_extreme_values_saturate_exactly() -> None:
    """Most negative weights x activations, largest multiplier and bias: the wide paths are exact."""
    params = ArrayParams(
        arch="kofn", k=3, n=4, pes=2, weight_bits=8, act_bits=8, out_bits=16, max_rows=3, max_cols=12, max_batch=1
    )
    w = np.full((3, 12), -128)
    W = KofNMatrix.prune_magnitude(w, 3, 4, weight_bits=8)
    x = np.full((1, 12), -128)
    lim = (1 << (params.acc_bits - 2)) - 1
    for bias, shift, relu in (([lim, -lim, 0], 1, False), ([lim, -lim, 7], 48, True), ([0, 1, -1], 20, False)):
        prog = program_layer(params, W, x, np.array(bias), 2**15 - 1, shift, relu)
        np.testing.assert_array_equal(run_program(prog).outputs, prog.expected)


@pytest.mark.parametrize("arch,banks", [("kofn", 0), ("dense", 0), ("csr", 0), ("csr", 4)])
def test_one_build_runs_many_layers_back_to_back(arch: str, banks: int) -> None:
    """Shape and requantisation are run-time registers: several layers, one build, one simulation."""
    block = 2 if arch == "kofn" else 1
    params = ArrayParams(
        arch=arch,
        k=1,
        n=4,
        block=block,
        pes=3,
        weight_bits=4,
        act_bits=4,
        out_bits=8,
        max_rows=7,
        max_cols=20,
        max_batch=2,
        act_banks=banks,
    )
    rng = np.random.default_rng(7)
    progs, mats = [], []
    for rows, cols, batch, relu in ((7, 20, 2, True), (1, 1, 1, False), (4, 9, 2, True), (7, 20, 1, False)):
        W = _layer(arch, rng, rows, cols, 1, 4, block, 4, 0.4)
        x = rng.integers(-8, 8, size=(batch, cols))
        progs.append(program_layer(params, W, x, rng.integers(-50, 50, size=rows), 9000, 12, relu))
        mats.append(W if arch == "csr" else None)
    for prog, run, W in zip(progs, run_programs(progs), mats):
        np.testing.assert_array_equal(run.outputs, prog.expected)
        assert run.counters == predict_counters(params, prog.rows, prog.cols, prog.batch, prog.row_nnz, csr=W)


def test_csr_all_rows_empty_gives_bias_only_outputs() -> None:
    params = ArrayParams(
        arch="csr", k=2, n=4, pes=2, weight_bits=4, act_bits=4, out_bits=8, max_rows=5, max_cols=6, max_batch=2
    )
    W = CSRMatrix.from_dense(np.zeros((5, 6), dtype=np.int64), weight_bits=4)
    prog = program_layer(params, W, np.ones((2, 6), dtype=np.int64), np.arange(5) * 40 - 90, 500, 6, False)
    run = run_program(prog)
    np.testing.assert_array_equal(run.outputs, prog.expected)
    assert run.counters == predict_counters(params, 5, 6, 2, np.zeros(5, dtype=np.int64))
    assert run.counters["cycles"] == 2 * 3 + 6 and run.counters["mac_ops"] == 0


def test_kofn_kernel_granularity_block_9() -> None:
    """A 3x3-kernel-granular layer (im2col columns = in_ch * 9), 2 of 4 kernels kept per group."""
    params = ArrayParams(
        arch="kofn",
        k=2,
        n=4,
        block=9,
        pes=2,
        weight_bits=6,
        act_bits=8,
        out_bits=10,
        max_rows=5,
        max_cols=5 * 9,
        max_batch=2,
    )
    run_and_check(params, rows=5, cols=5 * 9, batch=2, seed=3, multiplier=777, shift=11, relu=True)


@pytest.mark.slow
@pytest.mark.parametrize("arch,banked", [("kofn", False), ("dense", False), ("csr", False), ("csr", True)])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_many_random_layers_slow(arch: str, banked: bool, data) -> None:
    params, run = data.draw(configs(arch, banked))
    run_and_check(params, **run)
