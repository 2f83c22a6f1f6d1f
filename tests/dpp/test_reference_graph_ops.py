"""The integer ops of a network graph (dpp.reference): hand-worked examples, torch cross-checks, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dpp.kofn import KofNMatrix
from dpp.reference import (
    add_int,
    avgpool_int,
    clamp_int,
    concat_int,
    conv2d_int,
    global_avgpool_int,
    maxpool_int,
    requantize,
)

NINE = np.arange(1, 10).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_add_of_two_scales_rounds_half_up_and_saturates() -> None:
    a = np.array([[10, -3, -6, 100, -100]])
    b = np.array([[5, 7, 0, 100, -100]])
    # (3a + 5b + 2) >> 2: 55/4=13.75->14, 26/4=6.5->7, -18/4=-4.5->-4 (half up), 800/4=200->127, -800/4->-128
    assert add_int(a, b, (3, 5), 2, 8).tolist() == [[14, 7, -4, 127, -128]]
    assert add_int(a, b, (3, 5), 2, 8, relu=True).tolist() == [[14, 7, 0, 127, 0]]
    assert add_int(a, b, (3, 5), 2, 16).tolist() == [[14, 7, -4, 200, -200]]


def test_avgpool_is_an_exact_window_sum_then_requantised() -> None:
    # kernel 2, stride 1, zero padding 1 (padded zeros count): the 4x4 window sums of the padded 3x3
    sums = [[1, 3, 5, 3], [5, 12, 16, 9], [11, 24, 28, 15], [7, 15, 17, 9]]
    y = avgpool_int(NINE, 2, 1, 1, 1, 2, 8)  # / 4, half up
    assert y.tolist() == [[[[0, 1, 1, 1], [1, 3, 4, 2], [3, 6, 7, 4], [2, 4, 4, 2]]]]
    assert np.array_equal(y[0, 0], (np.array(sums) + 2) >> 2)
    # the same as torch's AvgPool2d(2, 1, 1) rounded half up
    ref = F.avg_pool2d(torch.from_numpy(NINE).double(), 2, 1, 1, count_include_pad=True)
    assert np.array_equal(y, torch.floor(ref + 0.5).numpy().astype(np.int64))
    # a 3x3 mean: the sum 45 times 7282 / 2**16 (~1/9) = 5.00003 -> 5; -6/4 = -1.5 -> -1 (half up)
    assert avgpool_int(NINE, 3, 3, 0, 7282, 16, 8).tolist() == [[[[5]]]]
    assert avgpool_int(
        -np.ones((1, 1, 2, 3), dtype=np.int64) * np.array([1, 2, 3]), (2, 2), 2, 0, 1, 2, 8
    ).tolist() == [[[[-1]]]]


def test_global_avgpool_sums_every_position() -> None:
    x = np.array([[[[1, 2], [3, 4]], [[-1, -2], [-3, -5]]]])  # sums 10 and -11
    assert global_avgpool_int(x, 1, 2, 8).tolist() == [[3, -3]]  # 2.5 -> 3, -2.75 -> -3
    assert global_avgpool_int(x, 1, 2, 8, keepdim=True).shape == (1, 2, 1, 1)
    assert global_avgpool_int(x, 3, 1, 4).tolist() == [[7, -8]]  # 15 -> 7 and -16.5 -> -16 -> -8 saturated


def test_maxpool_with_overlap_and_padding_never_picks_the_padding() -> None:
    x = -NINE
    y = maxpool_int(x, 2, 1, 1)  # every window overlaps; padding 1 on each side
    assert y.tolist() == [[[[-1, -1, -2, -3], [-1, -1, -2, -3], [-4, -4, -5, -6], [-7, -7, -8, -9]]]]
    z = maxpool_int(np.array([[[[1, -2, 3], [-4, 5, -6], [7, -8, -9]]]]), 3, 2, 1)
    assert z.tolist() == [[[[5, 5], [7, 5]]]]
    assert maxpool_int(NINE, 2).tolist() == [[[[5]]]]  # stride defaults to the kernel, floor mode
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(2, 3, 7, 6))
    ref = F.max_pool2d(torch.from_numpy(x).double(), (3, 2), (2, 1), (1, 1)).numpy().astype(np.int64)
    assert np.array_equal(maxpool_int(x, (3, 2), (2, 1), (1, 1)), ref)


def test_clamp_is_relu6_in_integers() -> None:
    # ReLU6 at scale 6/96: bounds 0 and 96
    assert clamp_int(np.array([-5, 0, 50, 96, 97, 127]), 0, 96).tolist() == [0, 0, 50, 96, 96, 96]
    assert clamp_int(np.array([[-20, -3, 3, 20]]), -10, 10).tolist() == [[-10, -3, 3, 10]]


def test_concat_requantises_each_input_to_the_common_scale() -> None:
    x1 = np.array([[[[3, -3]]]])  # scale 0.5
    x2 = np.array([[[[100, -7]], [[1, 0]]]])  # scale 1.0, the common scale
    y = concat_int([x1, x2], [1, 2], [1, 1], 8)
    # x1 * 0.5: 1.5 -> 2, -1.5 -> -1; x2 passes unchanged (multiplier 2 / 2**1)
    assert y.tolist() == [[[[2, -1]], [[100, -7]], [[1, 0]]]]
    flat = concat_int([np.array([[1, 2]]), np.array([[3]])], [16384, 16384], [14, 14], 8)
    assert flat.tolist() == [[1, 2, 3]]


def test_conv_with_stride_and_padding_by_hand() -> None:
    w = np.ones((1, 4), dtype=np.int64)  # a 2x2 box filter
    y = conv2d_int(NINE, w, np.zeros(1, dtype=np.int64), 1, 1, 8, False, kernel=2, stride=2, padding=1)
    # windows: 1 | 2+3 | 4+7 | 5+6+8+9 -> halves rounded up: 0.5->1, 2.5->3, 5.5->6, 14
    assert y.tolist() == [[[[1, 3], [6, 14]]]]


def test_depthwise_conv_runs_one_matmul_per_group_by_hand() -> None:
    x = np.concatenate([NINE, np.array([[[[1, 0, -1], [0, 1, 0], [-1, 0, 1]]]])], axis=1)
    weights = [np.array([[1, 0, 0, 1]]), np.array([[1, 1, 1, 1]])]  # group 0: diagonal, group 1: box
    y = conv2d_int(x, weights, np.array([0, 10]), 1, 1, 8, False, kernel=2, groups=2)
    # group 0: 1+5, 2+6, 4+8, 5+9 -> 3, 4, 6, 7; group 1: (2, 0, 0, 2) + 10 -> 6, 5, 5, 6
    assert y.tolist() == [[[[3, 4], [6, 7]], [[6, 5], [5, 6]]]]


@pytest.mark.parametrize("groups, stride, padding", [(1, 1, 0), (1, (2, 1), (1, 2)), (3, 2, 1), (6, 1, 1)])
def test_grouped_conv_equals_torch_then_requantize(groups, stride, padding) -> None:
    rng = np.random.default_rng(groups)
    x = rng.integers(-128, 128, size=(2, 6, 7, 5))
    w = rng.integers(-7, 8, size=(12, 6 // groups, 3, 2))
    bias = rng.integers(-300, 300, size=12)
    per = 12 // groups
    mats = [w[g * per : (g + 1) * per].reshape(per, -1) for g in range(groups)]
    if groups == 1:  # a k-of-n matrix runs the same as its dense form
        mats = [KofNMatrix.prune_magnitude(mats[0], 2, 4, block=6, weight_bits=4)]
        w = mats[0].to_dense().reshape(w.shape)
    y = conv2d_int(x, mats, bias, 300, 9, 8, True, kernel=(3, 2), stride=stride, padding=padding, groups=groups)
    acc = (
        F.conv2d(
            torch.from_numpy(x).double(),
            torch.from_numpy(w).double(),
            torch.from_numpy(bias).double(),
            stride,
            padding,
            groups=groups,
        )
        .numpy()
        .astype(np.int64)
    )
    assert np.array_equal(y, requantize(acc.transpose(0, 2, 3, 1), 300, 9, 8, True).transpose(0, 3, 1, 2))


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda: add_int(np.zeros((1, 2)), np.zeros((1, 2)), (1, 1), 1, 8), "a must be an integer array"),
        (lambda: add_int(np.zeros((1, 2), int), np.zeros((2, 1), int), (1, 1), 1, 8), r"one shape \(got \(1, 2\)"),
        (lambda: add_int(np.zeros((1, 2), int), np.zeros((1, 2), int), (0, 1), 1, 8), r"multipliers\[0\] must be >= 1"),
        (lambda: add_int(np.array([200]), np.array([1]), (1, 1), 1, 8), "a value 200 at"),
        (lambda: clamp_int(np.zeros(3, int), 5, 4), r"lo <= hi \(got lo=5, hi=4\)"),
        (lambda: maxpool_int(NINE, 2, 1, 2), r"padding \(2, 2\) must be at most half the 2x2 kernel"),
        (lambda: maxpool_int(NINE[0], 2), r"x must be an NCHW array \(got shape \(1, 3, 3\)\)"),
        (lambda: avgpool_int(NINE, 4, 1, 0, 1, 2, 8), "a 4x4 window does not fit the 3x3 input"),
        (
            lambda: conv2d_int(NINE, [np.ones((1, 4), int)] * 2, np.zeros(2, int), 1, 1, 8, False, kernel=2),
            r"one matrix per group \(1\) \(got 2\)",
        ),
        (
            lambda: conv2d_int(NINE, [np.ones((1, 4), int)] * 2, np.zeros(2, int), 1, 1, 8, False, kernel=2, groups=2),
            "channels divisible by groups=2",
        ),
        (
            lambda: concat_int([np.zeros((1, 2, 3), int), np.zeros((1, 2, 4), int)], [1, 1], [1, 1], 8),
            r"agree in every axis but 1 \(input 0 has shape \(1, 2, 3\), input 1 has \(1, 2, 4\)\)",
        ),
        (lambda: concat_int([np.zeros((1, 2), int)], [1, 1], [1], 8), "one multiplier and one shift per input"),
        (lambda: maxpool_int(NINE, (2, 2, 2)), r"kernel must be an int or a pair of ints"),
    ],
)
def test_bad_input_raises_one_clear_error(call, msg) -> None:
    with pytest.raises(ValueError, match=msg):
        call()
