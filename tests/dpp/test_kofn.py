"""The packed k-of-n format and the CSR baseline: round trips, invariants, storage, files, bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp.errors import FormatError
from dpp.kofn import CSRMatrix, KofNMatrix, dense_storage_bits


@st.composite
def kofn_cases(draw):
    n = draw(st.integers(2, 16))
    k = draw(st.integers(1, n - 1))
    block = draw(st.sampled_from([1, 1, 2, 3, 4, 9]))
    rows = draw(st.integers(1, 6))
    cols = draw(st.integers(1, 3 * n * block + 2))
    bits = draw(st.integers(2, 16))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1))
    w = rng.integers(lo, hi, size=(rows, cols))
    return w, k, n, block, bits


@settings(max_examples=150, deadline=None)
@given(kofn_cases())
def test_prune_then_round_trips(case) -> None:
    w, k, n, block, bits = case
    m = KofNMatrix.prune_magnitude(w, k, n, block=block, weight_bits=bits)
    # exact k per (row, group), strictly increasing indices in range
    assert m.indices.shape == (w.shape[0], m.groups, k)
    assert np.all(np.diff(m.indices, axis=2) > 0) and m.indices.min() >= 0 and m.indices.max() < n
    dense = m.to_dense()
    # the pruned matrix is w where kept, 0 elsewhere
    assert np.array_equal(dense, np.where(m.mask(), w, 0))
    # dense -> KofN -> dense with the same mask is the identity, on the kept positions
    again = KofNMatrix.from_dense(w, m.mask(), n, block=block, weight_bits=bits, k=k)
    assert again == m
    assert np.array_equal(again.to_dense(), dense)


@settings(max_examples=40, deadline=None)
@given(kofn_cases())
def test_save_load_round_trip(tmp_path_factory, case) -> None:
    w, k, n, block, bits = case
    m = KofNMatrix.prune_magnitude(w, k, n, block=block, weight_bits=bits)
    path = tmp_path_factory.mktemp("kofn") / "layer"
    m.save(path)
    assert KofNMatrix.load(path) == m
    assert KofNMatrix.load(str(path) + ".npz") == m


def test_magnitude_keeps_largest_per_group() -> None:
    w = np.array([[1, -7, 3, 0, 5, 5, -6, 2]])
    m = KofNMatrix.prune_magnitude(w, 2, 4)
    assert m.indices.tolist() == [[[1, 2], [0, 2]]]  # |-7|,|3| ; |5| ties |5| -> lower slot wins, then |-6|
    assert m.values[..., 0].tolist() == [[[-7, 3], [5, -6]]]
    assert m.to_dense().tolist() == [[0, -7, 3, 0, 5, 0, -6, 0]]


def test_kernel_block_selects_whole_kernels() -> None:
    # 2 input channels' kernels of 4 columns each per slot, n=2, keep 1: the larger L1 kernel wins
    w = np.array([[1, 1, 1, 1, -9, 0, 0, 0]])
    m = KofNMatrix.prune_magnitude(w, 1, 2, block=4)
    assert m.indices.tolist() == [[[1]]]
    assert m.values.tolist() == [[[[-9, 0, 0, 0]]]]
    with pytest.raises(ValueError, match="selects only part of block slot 0"):
        KofNMatrix.from_dense(w, np.array([[True, False, True, True] + [False] * 4]), 2, block=4)


def test_partial_group_padding_rule() -> None:
    # cols=5, n=4: group 1 has one real slot; with k=2 it must select it and a padded slot is filled in
    w = np.array([[1, 2, 3, 4, 5]])
    mask = np.array([[False, True, False, True, True]])
    m = KofNMatrix.from_dense(w, mask, 4)
    assert m.k == 2 and m.groups == 2
    assert m.indices.tolist() == [[[1, 3], [0, 1]]]
    assert m.values[..., 0].tolist() == [[[2, 4], [5, 0]]]
    assert m.to_dense().tolist() == [[0, 2, 0, 4, 5]]
    with pytest.raises(ValueError, match=r"exactly 1 of n=4 slots per group \(got 0 at row 0, group 1\)"):
        KofNMatrix.from_dense(w, np.array([[False, True, False, True, False]]), 4)


def test_from_dense_names_first_bad_row_and_group() -> None:
    w = np.zeros((3, 8), dtype=int)
    mask = np.zeros((3, 8), dtype=bool)
    mask[:, [0, 4]] = True
    mask[2, 5] = True  # row 2, group 1 selects 2
    with pytest.raises(ValueError, match=r"exactly 1 of n=4 slots per group \(got 2 at row 2, group 1\)"):
        KofNMatrix.from_dense(w, mask, 4)


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(k=4, n=4), ValueError, r"k must be < n \(got k=4, n=4\)"),
        (dict(k=0, n=4), ValueError, r"k must be >= 1"),
        (dict(k=1, n=1), ValueError, r"n must be >= 2"),
        (dict(k=1, n=4, block=0), ValueError, r"block must be >= 1"),
        (dict(k=1, n=4, weight_bits=1), ValueError, r"weight_bits must be >= 2"),
        (dict(k=1, n=4, weight_bits=17), ValueError, r"weight_bits must be <= 16"),
        (dict(k=1.0, n=4), TypeError, r"k must be an integer"),
    ],
)
def test_prune_rejects_bad_parameters(kwargs, exc, msg) -> None:
    with pytest.raises(exc, match=msg):
        KofNMatrix.prune_magnitude(np.zeros((2, 8), dtype=int), **kwargs)


def test_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match=r"weights value 8 at \(0, 1\) is outside signed 4-bit range \[-8, 7\]"):
        KofNMatrix.prune_magnitude(np.array([[0, 8]]), 1, 2, weight_bits=4)
    with pytest.raises(TypeError, match="weights must be an integer array"):
        KofNMatrix.prune_magnitude(np.array([[0.5, 1.0]]), 1, 2)
    with pytest.raises(ValueError, match="2 dimension"):
        KofNMatrix.prune_magnitude(np.array([1, 2]), 1, 2)
    with pytest.raises(TypeError, match="mask must be a boolean array"):
        KofNMatrix.from_dense(np.zeros((1, 2), dtype=int), np.ones((1, 2), dtype=int), 2)


def test_constructor_validates_packed_arrays() -> None:
    ok = dict(rows=1, cols=8, n=4)
    vals = np.zeros((1, 2, 2, 1), dtype=int)
    with pytest.raises(FormatError, match=r"index 4 at row 0, group 1 is out of range \[0, 4\)"):
        KofNMatrix(np.array([[[0, 1], [2, 4]]]), vals, **ok)
    with pytest.raises(FormatError, match="row 0, group 0 must be strictly increasing"):
        KofNMatrix(np.array([[[1, 1], [2, 3]]]), vals, **ok)
    with pytest.raises(FormatError, match=r"indices must have shape \(1, 2, 2\)"):
        KofNMatrix(np.array([[[0, 1]]]), vals, **ok)
    with pytest.raises(FormatError, match=r"outside signed 8-bit range"):
        KofNMatrix(np.array([[[0, 1], [2, 3]]]), vals + 200, **ok)
    with pytest.raises(FormatError, match="padded column 5 >= cols=5"):
        KofNMatrix(np.array([[[0, 1], [0, 1]]]), np.ones((1, 2, 2, 1), dtype=int), rows=1, cols=5, n=4)


def test_storage_bits_counts_values_indices_and_bound() -> None:
    m = KofNMatrix.prune_magnitude(np.ones((10, 64), dtype=int), 2, 8, weight_bits=4)
    sb = m.storage_bits()
    slots = 10 * 8 * 2
    assert sb.value_bits == slots * 4 and sb.index_bits == slots * 3 and sb.pointer_bits == 0
    assert sb.bits_per_kept_weight == 7.0
    assert math.isclose(sb.bound_index_bits, 10 * 8 * math.log2(28))
    assert sb.bound_bits_per_kept_weight < sb.bits_per_kept_weight
    assert m.density == 0.25
    d = dense_storage_bits(10, 64, 4)
    assert d.total_bits == 2560 and d.bits_per_kept_weight == 4.0


def test_csr_round_trip_and_storage(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    w = rng.integers(-8, 8, size=(7, 30))
    c = CSRMatrix.prune_magnitude(w, 0.25, weight_bits=4)
    assert c.nnz == round(0.25 * 210)
    kept_min = np.abs(c.values).min()
    assert np.all(np.abs(w[c.to_dense() == 0]) <= kept_min)
    assert np.array_equal(c.to_dense(), np.where(c.to_dense() != 0, w, 0))
    sb = c.storage_bits()
    assert sb.value_bits == c.nnz * 4 and sb.index_bits == c.nnz * 5
    assert sb.pointer_bits == 8 * math.ceil(math.log2(c.nnz + 1))
    c.save(tmp_path / "csr")
    back = CSRMatrix.load(tmp_path / "csr")
    assert np.array_equal(back.to_dense(), c.to_dense()) and np.array_equal(back.row_ptr, c.row_ptr)
    m = KofNMatrix.prune_magnitude(w, 1, 4, weight_bits=4)
    same = CSRMatrix.from_dense(m.to_dense(), m.mask(), weight_bits=4)
    assert np.array_equal(same.to_dense(), m.to_dense()) and same.nnz == m.mask().sum()


def test_load_refuses_version_corruption_and_bad_contents(tmp_path: Path) -> None:
    m = KofNMatrix.prune_magnitude(np.arange(16).reshape(2, 8) - 8, 1, 4)
    m.save(tmp_path / "a")
    man = json.loads((tmp_path / "a.json").read_text())
    man["schema_version"] = 99
    (tmp_path / "b.json").write_text(json.dumps(man))
    (tmp_path / "b.npz").write_bytes((tmp_path / "a.npz").read_bytes())
    with pytest.raises(FormatError, match="schema_version must be 1 \\(got 99\\)"):
        KofNMatrix.load(tmp_path / "b")
    data = bytearray((tmp_path / "a.npz").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "a.npz").write_bytes(bytes(data))
    with pytest.raises(FormatError, match="corrupt"):
        KofNMatrix.load(tmp_path / "a")
    with pytest.raises(FormatError, match="not found"):
        KofNMatrix.load(tmp_path / "missing")
    with pytest.raises(FormatError, match="schema must be 'dpp.csr'"):
        m.save(tmp_path / "c")
        CSRMatrix.load(tmp_path / "c")


def _save_raw(tmp_path: Path, indices, values, **man) -> Path:
    from dpp.serialize import save_arrays

    base = dict(schema="dpp.kofn", schema_version=1, rows=1, cols=8, k=2, n=4, block=1, weight_bits=4)
    base.update(man)
    save_arrays(tmp_path / "raw", {"indices": np.array(indices), "values": np.array(values)}, base)
    return tmp_path / "raw"


@pytest.mark.parametrize(
    "indices, values, man, msg",
    [
        ([[[0, 4], [0, 1]]], [[[[1], [1]], [[1], [1]]]], {}, "out of range"),
        ([[[2, 1], [0, 1]]], [[[[1], [1]], [[1], [1]]]], {}, "strictly increasing"),
        ([[[0, 1], [0, 1]]], [[[[9], [1]], [[1], [1]]]], {}, "outside signed 4-bit range"),
        ([[[0, 1], [0, 1]]], [[[[1], [1]], [[1], [1]]]], {"rows": 2}, "must have shape"),
        ([[[0, 1], [0, 1]]], [[[[1], [1]], [[1], [1]]]], {"k": 3}, "manifest says k=3"),
    ],
)
def test_load_refuses_invalid_contents(tmp_path: Path, indices, values, man, msg) -> None:
    path = _save_raw(tmp_path, indices, values, **man)
    with pytest.raises(FormatError, match=msg):
        KofNMatrix.load(path)


def test_save_is_atomic_no_temp_files_left(tmp_path: Path) -> None:
    m = KofNMatrix.prune_magnitude(np.ones((2, 8), dtype=int), 1, 4)
    m.save(tmp_path / "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.json", "x.npz"]
