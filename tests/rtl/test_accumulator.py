"""No silent overflow: acc_bits sized for the biases, the legal bias range exact, program_layer refusing the rest.

The edge runs in Amaranth's simulator: the largest (and smallest) legal bias of every row of a worst-case layer
is bit-exact against ``dpp.reference.linear_int``; one more is refused; and forcing that one more past the check
shows the hardware really wraps there (the bound is exact, not merely safe).
"""

from __future__ import annotations

import numpy as np
import pytest

import rtl.program
from dpp.kofn import CSRMatrix, KofNMatrix
from dpp.reference import accumulator_bits
from rtl.amaranth_sim import run_program
from rtl.params import ArrayParams, bias_bits_for
from rtl.program import AccumulatorOverflowError, check_layer_fits, program_layer, row_sum_bounds

EDGE = dict(k=2, n=4, pes=2, weight_bits=4, act_bits=4, out_bits=32, max_rows=3, max_cols=8, max_batch=1)
BUILDS = [
    ArrayParams(arch="kofn", **EDGE),
    ArrayParams(arch="dense", **EDGE),
    ArrayParams(arch="csr", **EDGE),
    ArrayParams(arch="csr", act_banks=2, **EDGE),
]
IDS = ["kofn", "dense", "csr", "csr_banked"]


def test_bias_bits_sizes_the_accumulator() -> None:
    base = dict(arch="kofn", k=2, n=8, pes=4, weight_bits=4, act_bits=8, out_bits=8)
    p = ArrayParams(**base)  # fan-in 16: product sum width 4 + 8 + 4 = 16
    assert (p.acc_bits, p.bias_bits) == (accumulator_bits(8, 4, 16), 16) == (17, 16)
    # largest product -128 * -8; smallest 127 * -8 (below -128 * 7)
    assert p.product_sum_range == (-16 * 127 * 8, 16 * 128 * 8) == (-16256, 16384)
    assert p.bias_range == (-(1 << 16) + 16256, (1 << 16) - 1 - 16384) == (-49280, 49151)
    wide = ArrayParams(**base, bias_bits=24)
    assert (wide.acc_bits, wide.bias_bits) == (25, 24)
    lo, hi = wide.bias_range
    assert lo <= -(1 << 23) and (1 << 23) - 1 <= hi and not (lo <= -(1 << 24) and (1 << 24) - 1 <= hi)
    assert ArrayParams.from_json(wide.to_json()) == wide
    assert ArrayParams(**base, acc_bits=30).bias_bits == 29  # a wider accumulator admits wider biases
    with pytest.raises(
        ValueError,
        match=r"acc_bits must be >= 25 for act_bits=8, weight_bits=4, fan-in 16, "
        r"bias_bits=24 \(got acc_bits=20\)",
    ):
        ArrayParams(**base, bias_bits=24, acc_bits=20)
    with pytest.raises(ValueError, match="bias_bits must be <= 63"):
        ArrayParams(**base, bias_bits=64)


def test_bias_bits_for() -> None:
    assert [bias_bits_for(v) for v in (0, -1, 1, 127, -128, 128, -129)] == [1, 1, 2, 8, 8, 9, 9]
    assert bias_bits_for(np.array([-5, 300])) == 10 and bias_bits_for(np.zeros(0, dtype=int)) == 1
    with pytest.raises(ValueError, match="bias must be integers"):
        bias_bits_for([0.5])


def _worst_layer(params: ArrayParams):
    """Row 0: every weight -8 (most negative); row 1: every other weight 0; row 2: every weight +7."""
    w = np.full((3, params.max_cols), -8)
    w[1, ::2] = 0
    w[2] = 7
    if params.arch == "kofn":
        return KofNMatrix.prune_magnitude(w, params.k, params.n, weight_bits=4)
    if params.arch == "csr":
        return CSRMatrix.from_dense(w, w != 0, 4)
    return w


def _legal(params: ArrayParams, W) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = row_sum_bounds(params, W)
    top = 1 << (params.acc_bits - 1)
    return -top - lo, top - 1 - hi


@pytest.mark.parametrize("params", BUILDS, ids=IDS)
def test_row_sum_bounds_and_the_build_range(params: ArrayParams) -> None:
    W = _worst_layer(params)
    kept = params.max_fan_in  # kofn keeps k of every n: 2 groups x 2 = 4 of the 8 columns; the others all 8
    assert kept == (4 if params.arch == "kofn" else 8)
    lo, hi = row_sum_bounds(params, W)
    assert hi.tolist() == [kept * 64, 4 * 64, kept * 7 * 7]  # row 1 keeps its four -8 (kofn: the larger slots)
    assert lo.tolist() == [kept * -8 * 7, 4 * -8 * 7, kept * 7 * -8]
    legal_lo, legal_hi = _legal(params, W)
    assert (legal_lo[0], legal_hi[0]) == params.bias_range  # full fan-in of -8: the build-wide range, exactly
    assert params.bias_range[0] >= legal_lo.max() and params.bias_range[1] <= legal_hi.min()


@pytest.mark.parametrize("params", BUILDS, ids=IDS)
def test_largest_legal_bias_is_bit_exact_and_one_more_is_refused(
    params: ArrayParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    W = _worst_layer(params)
    legal_lo, legal_hi = _legal(params, W)
    top = 1 << (params.acc_bits - 1)
    cases = [
        (np.full((1, params.max_cols), -8), legal_hi, top - 1),  # products at their largest, bias at its max
        (np.full((1, params.max_cols), 7), legal_lo, -top),
    ]  # row 0 / 1 products at their smallest
    for x, bias, acc0 in cases:
        prog = program_layer(params, W, x, bias, 1, 1, False)  # out = (acc + 1) >> 1
        run = run_program(prog)
        np.testing.assert_array_equal(run.outputs, prog.expected)
        assert run.outputs[0, 0] == (acc0 + 1) >> 1  # row 0's accumulator sits exactly at the edge
        beyond = bias + np.where(acc0 > 0, 1, -1) * (np.arange(3) == 0)
        with pytest.raises(
            AccumulatorOverflowError,
            match=rf"^fc1: bias {beyond[0]} of row 0 could overflow the "
            rf"{params.acc_bits}-bit accumulator",
        ):
            program_layer(params, W, x, beyond, 1, 1, False, name="fc1")
        monkeypatch.setattr(rtl.program, "check_layer_fits", lambda *args, **kwargs: None)
        forced = program_layer(params, W, x, beyond, 1, 1, False)
        wrapped = run_program(forced).outputs
        assert wrapped[0, 0] == (-acc0 - 1 + 1) >> 1 != forced.expected[0, 0]  # the hardware wraps right there
        monkeypatch.undo()


def test_check_layer_fits_names_the_layer_row_and_bound() -> None:
    params = BUILDS[1]
    W = _worst_layer(params)
    lo, hi = _legal(params, W)
    check_layer_fits(params, W, hi, "fc2")  # the edge itself fits
    bias = hi.copy()
    bias[2] += 1
    build_lo, build_hi = params.bias_range
    with pytest.raises(AccumulatorOverflowError) as err:
        check_layer_fits(params, W, bias, "fc2")
    sums = row_sum_bounds(params, W)
    assert str(err.value) == (
        f"fc2: bias {bias[2]} of row 2 could overflow the {params.acc_bits}-bit accumulator (the row's products sum "
        f"to {sums[0][2]} .. {sums[1][2]}): its bias must lie in [{lo[2]}, {hi[2]}]; biases in [{build_lo}, "
        f"{build_hi}] fit every layer of this build, wider ones need a build with a larger bias_bits"
    )
    with pytest.raises(ValueError, match=r"fc2: bias must have shape \(3,\)"):
        check_layer_fits(params, W, hi[:2], "fc2")
