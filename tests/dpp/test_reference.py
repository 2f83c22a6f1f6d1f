"""The integer reference model: three formats agree, hand-worked rounding/ReLU/saturation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dpp.kofn import CSRMatrix, KofNMatrix
from dpp.reference import MAX_MULTIPLIER, accumulator_bits, linear_int, requantize


@st.composite
def layers(draw):
    n = draw(st.integers(2, 16))
    k = draw(st.integers(1, n - 1))
    block = draw(st.sampled_from([1, 2, 4, 9]))
    rows = draw(st.integers(1, 9))
    cols = draw(st.integers(1, 2 * n * block + 3))
    wb = draw(st.integers(2, 16))
    ab = draw(st.integers(2, 16))
    batch = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    w = rng.integers(-(1 << (wb - 1)), 1 << (wb - 1), size=(rows, cols))
    x = rng.integers(-(1 << (ab - 1)), 1 << (ab - 1), size=(batch, cols))
    bias = rng.integers(-(1 << 20), 1 << 20, size=rows)
    mult = draw(st.integers(1, MAX_MULTIPLIER))
    shift = draw(st.integers(1, 40))
    out_bits = draw(st.integers(2, 32))
    relu = draw(st.booleans())
    return w, x, bias, k, n, block, wb, ab, mult, shift, out_bits, relu


@settings(max_examples=200, deadline=None)
@given(layers())
def test_kofn_csr_dense_agree_exactly(layer) -> None:
    w, x, bias, k, n, block, wb, ab, mult, shift, out_bits, relu = layer
    m = KofNMatrix.prune_magnitude(w, k, n, block=block, weight_bits=wb)
    dense = m.to_dense()
    csr = CSRMatrix.from_dense(dense, m.mask(), weight_bits=wb)
    args = (bias, mult, shift, out_bits, relu)
    ys = [linear_int(x, W, *args, act_bits=ab) for W in (m, csr, dense)]
    assert ys[0].shape == (x.shape[0], w.shape[0])
    assert np.array_equal(ys[0], ys[1]) and np.array_equal(ys[0], ys[2])
    # and they equal an independent Python-integer evaluation of the contract
    acc = [[sum(int(a) * int(b) for a, b in zip(row, xv)) + int(bb) for row, bb in zip(dense, bias)] for xv in x]
    lo, hi = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    want = [
        [min(hi, max(lo, max(0, v) if relu else v)) for v in [(a * mult + (1 << (shift - 1))) >> shift for a in r]]
        for r in acc
    ]
    assert ys[0].tolist() == want


def test_hand_worked_rounding_relu_saturation() -> None:
    # W picks single inputs so acc is easy to read: acc = x + bias
    W = np.eye(6, dtype=int)
    bias = np.zeros(6, dtype=int)
    x = np.array([[5, 6, -5, -6, 7, -7]])
    # multiplier 1, shift 2: y = (acc + 2) >> 2 = round-half-up(acc / 4)
    y = linear_int(x, W, bias, 1, 2, 8, False)
    # 5/4=1.25->1, 6/4=1.5->2 (half up), -5/4=-1.25->-1, -6/4=-1.5->-1 (half up, towards +inf), 7/4->2, -7/4->-2
    assert y.tolist() == [[1, 2, -1, -1, 2, -2]]
    assert linear_int(x, W, bias, 1, 2, 8, True).tolist() == [[1, 2, 0, 0, 2, 0]]
    # saturation to 4 bits [-8, 7] with negative accumulators
    x2 = np.array([[100, -100, 29, -30, -33, 30]])
    y2 = linear_int(x2, W, bias, 1, 2, 4, False)
    # 25->7 (sat), -25->-8 (sat), 29/4=7.25->7, -30/4=-7.5->-7, -33/4=-8.25->-8, 30/4=7.5->8->7 (sat)
    assert y2.tolist() == [[7, -8, 7, -7, -8, 7]]
    assert linear_int(x2, W, bias, 1, 2, 4, True).tolist() == [[7, 0, 7, 0, 0, 7]]


def test_bias_multiplier_and_single_vector() -> None:
    W = np.array([[2, -3], [1, 1]])
    x = np.array([4, 5])  # acc = [8-15-1, 9+100] = [-8, 109]
    y = linear_int(x, W, np.array([-1, 100]), 3, 1, 16, False)
    # (-8*3 + 1) >> 1 = -23 >> 1 = -12 ; (109*3 + 1) >> 1 = 164
    assert y.tolist() == [-12, 164]
    per_row = linear_int(x, W, np.array([-1, 100]), np.array([3, 1]), np.array([1, 3]), 16, False)
    assert per_row.tolist() == [-12, (109 + 4) >> 3]


def test_requantize_uses_exact_integers_when_int64_would_overflow() -> None:
    acc = np.array([(1 << 50) + 3, -(1 << 50) - 3])
    y = requantize(acc, MAX_MULTIPLIER, 48, 32, False)
    want = [((int(a) * MAX_MULTIPLIER) + (1 << 47)) >> 48 for a in acc]
    assert y.tolist() == want


def test_accumulator_bits_never_overflows() -> None:
    assert accumulator_bits(8, 8, 1) == 17
    assert accumulator_bits(8, 4, 128) == 8 + 4 + 7 + 1
    assert accumulator_bits(8, 4, 100, bias_bits=32) == 33
    for ab, wb, fan in [(2, 2, 1), (8, 8, 784), (4, 3, 5), (16, 16, 1000)]:
        bits = accumulator_bits(ab, wb, fan)
        worst = fan * (1 << (ab - 1)) * (1 << (wb - 1))  # all products (-max)*(-max)
        bias_max = (1 << (bits - 2)) - 1  # a bias of the default width
        assert worst + bias_max <= (1 << (bits - 1)) - 1
        most_negative = -fan * (1 << (ab - 1)) * ((1 << (wb - 1)) - 1) - (1 << (bits - 2))
        assert most_negative >= -(1 << (bits - 1))


@pytest.mark.parametrize(
    "kwargs, exc, msg",
    [
        (dict(shift=0), ValueError, r"shift must be >= 1 \(got shift=0\)"),
        (dict(multiplier=0), ValueError, r"multiplier must be >= 1"),
        (dict(multiplier=1 << 15), ValueError, r"multiplier must be <= 32767"),
        (dict(out_bits=1), ValueError, r"out_bits must be >= 2"),
        (dict(x=np.array([[128, 0]])), ValueError, r"x value 128 at \(0, 0\) is outside signed 8-bit"),
        (dict(x=np.array([[1, 2, 3]])), ValueError, r"x must have shape \(batch, 2\)"),
        (dict(x=np.array([[0.5, 1]])), TypeError, "x must be an integer array"),
        (dict(bias=np.array([1, 2, 3])), ValueError, r"bias must have shape \(2,\)"),
        (dict(multiplier=np.array([1, 0])), ValueError, r"multiplier\[1\] must be in \[1, 32767\]"),
    ],
)
def test_bad_input_raises(kwargs, exc, msg) -> None:
    args = dict(
        x=np.array([[1, 2]]),
        W=np.eye(2, dtype=int),
        bias=np.zeros(2, dtype=int),
        multiplier=1,
        shift=1,
        out_bits=8,
        relu=False,
    )
    args.update(kwargs)
    with pytest.raises(exc, match=msg):
        linear_int(**args)
