"""The fused C mask kernel: noise bit for bit equal to its numpy/torch definition, masks equal to the reference,
gradients equal to autograd through the reference, the switch and the compile-failure fallback."""

from __future__ import annotations

import platform
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dpp import fused_mask, kernels, noise
from dpp.masks import PAD_LOGIT, gumbel_topk_mask_reference
from dpp.parametrize import masked_layers, sparsify

torch.set_num_threads(1)

SPLITMIX_1234567 = [
    6457827717110365317,
    3203168211198807973,
    9817491932198370423,
    4593380528125082431,
    16408922859458223821,
]  # the published first outputs of SplitMix64 from state 1234567
seeds = st.integers(0, 2**64 - 1)


@pytest.fixture(scope="module", autouse=True)
def compiled_kernel():
    """These tests need the C kernel: a build failure here is a failure, not a skip."""
    if fused_mask._library() is None:
        pytest.fail("the kofn_mask C kernel did not build (see the warning above)")


def test_splitmix64_reference_outputs():
    assert noise.splitmix64(1234567, 5).tolist() == SPLITMIX_1234567
    words = noise.noise_words(1234567, 4).tolist()  # element 2j / 2j+1 = low / high half of output j
    assert words == [
        SPLITMIX_1234567[0] & 0xFFFFFFFF,
        SPLITMIX_1234567[0] >> 32,
        SPLITMIX_1234567[1] & 0xFFFFFFFF,
        SPLITMIX_1234567[1] >> 32,
    ]


@settings(max_examples=40, deadline=None)
@given(seed=seeds, start=st.integers(0, 2**40), count=st.integers(1, 300))
def test_c_words_and_gumbel_equal_the_reference_bit_for_bit(seed, start, count):
    assert torch.equal(fused_mask.noise_words_c(seed, count, start), noise.noise_words(seed, count, start))
    c = fused_mask.gumbel_noise(seed, count, start)
    ref = noise.gumbel_noise_reference(seed, count, start)
    assert torch.equal(c.view(torch.int32), ref.view(torch.int32))


def test_gumbel_noise_is_accurate_and_finite():
    """The table log on every one of the 2**23 uniforms, and the Gumbel values against double precision."""
    u = noise.uniform_from_words(torch.arange(0, 2**32, 2**9, dtype=torch.int64))
    assert bool(((u > 0) & (u < 1)).all()) and u.unique().numel() == 2**23
    log_u = noise.log_table(u).double()
    exact = torch.log(u.double())
    assert float(((log_u - exact).abs() / exact.abs()).max()) < 2e-6
    g = noise.gumbel_from_words(torch.arange(0, 2**32, 2**9, dtype=torch.int64)).double()
    assert float((g - (-torch.log(-exact))).abs().max()) < 2.5e-6
    assert -2.9 < float(g.min()) and float(g.max()) < 16.7
    sample = noise.gumbel_noise_reference(7, 200_000).double()
    assert abs(float(sample.mean()) - 0.5772) < 0.01 and abs(float(sample.std()) - 1.2825) < 0.01


def _case(rows: int, n: int, k: int, real: int, block: int, seed: int):
    groups = -(-real // n)
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(rows, groups, n, generator=gen) * 2
    weight = torch.randn(rows, real * block, generator=gen)
    upstream = torch.randn(rows, real * block, generator=gen)
    pad = (torch.arange(groups * n) >= real).reshape(groups, n).expand(rows, groups, n)
    return logits, weight, upstream, pad


def _reference(logits, weight, pad, k, real, block, temperature, noise_scale, seed, dtype):
    """W * expand(mask) through the torch reference path (autograd), the noise drawn from ``seed``'s generator."""
    lg = logits.to(dtype).requires_grad_()
    w = weight.to(dtype).requires_grad_()
    rows, groups, n = logits.shape
    m = gumbel_topk_mask_reference(
        lg.masked_fill(pad, PAD_LOGIT),
        k,
        temperature,
        noise_scale=noise_scale,
        generator=torch.Generator().manual_seed(seed),
    )
    slot_mask = m.reshape(rows, groups * n)
    return lg, w, w * slot_mask.repeat_interleave(block, dim=1)[:, : real * block], m


def _fused(logits, weight, k, real, block, temperature, noise_scale, seed):
    lg, w = logits.clone().requires_grad_(), weight.clone().requires_grad_()
    s = noise.draw_seed(torch.Generator().manual_seed(seed)) if noise_scale > 0 else 0
    out = fused_mask.fused_masked_weight(
        w, lg, k=k, real_slots=real, block=block, temperature=temperature, noise_scale=noise_scale, seed=s
    )
    return lg, w, out


shapes = dict(
    rows=st.integers(1, 5),
    n=st.sampled_from([2, 3, 4, 5, 7, 8, 16]),
    k=st.integers(1, 4),
    real=st.integers(1, 40),
    block=st.sampled_from([1, 1, 3, 9]),
    seed=st.integers(0, 10**6),
    noise_scale=st.sampled_from([0.0, 0.1, 1.0]),
    temperature=st.sampled_from([0.3, 1.0, 5.0]),
)


@settings(max_examples=60, deadline=None)
@given(**shapes)
def test_fused_forward_equals_the_reference_mask_exactly(rows, n, k, real, block, seed, noise_scale, temperature):
    k = min(k, n - 1)
    logits, weight, _, pad = _case(rows, n, k, real, block, seed)
    _, _, out = _fused(logits, weight, k, real, block, temperature, noise_scale, seed)
    _, _, ref, m = _reference(logits, weight, pad, k, real, block, temperature, noise_scale, seed, torch.float32)
    assert torch.equal(out, ref)
    groups = logits.shape[1]
    real_per_group = torch.tensor([min(n, real - g * n) for g in range(groups)])
    kept = (m * ~pad).sum(-1)  # real slots kept per group: exactly min(k, real slots)
    assert torch.equal(kept, torch.minimum(real_per_group, torch.tensor(k)).float().expand(rows, groups))


@settings(max_examples=60, deadline=None)
@given(**shapes)
def test_fused_gradients_equal_autograd_through_the_reference(rows, n, k, real, block, seed, noise_scale, temperature):
    """Against the reference in float64 (same draws): the fused float32 gradients agree to float32 rounding at
    the computation's scale, max |G| / T with G = upstream * weight summed per slot (the float32 reference is a
    few times less accurate; ``G_j - <s, G>`` cancels when one slot dominates, so relative error alone is no
    measure there)."""
    k = min(k, n - 1)
    logits, weight, upstream, pad = _case(rows, n, k, real, block, seed)
    lg, w, out = _fused(logits, weight, k, real, block, temperature, noise_scale, seed)
    lg64, w64, ref, _ = _reference(logits, weight, pad, k, real, block, temperature, noise_scale, seed, torch.float64)
    (out * upstream).sum().backward()
    (ref * upstream.double()).sum().backward()
    assert torch.equal(w.grad, w64.grad.float())  # grad_W = upstream * mask, exactly
    scale = float((upstream * weight).abs().max()) * block / temperature
    assert torch.allclose(lg.grad.double(), lg64.grad, rtol=1e-5, atol=2e-6 * scale)
    assert not bool(lg.grad[pad].any())  # padded slots get no gradient


def test_ties_go_to_the_lowest_slot_like_argmax():
    logits = torch.zeros(3, 4, 8)  # no noise: every slot tied
    weight = torch.ones(3, 32)
    for k in (1, 3, 7):
        _, _, out = _fused(logits, weight, k, 32, 1, 1.0, 0.0, 0)
        expect = (torch.arange(8) < k).float().repeat(4).expand(3, 32)
        assert torch.equal(out, expect)


def test_same_seed_same_sample_other_seed_other_sample():
    logits, weight, _, _ = _case(4, 8, 2, 40, 1, 3)
    a, b, c = (_fused(logits, weight, 2, 40, 1, 1.0, 1.0, s)[2] for s in (5, 5, 6))
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize(
    "granularity, conv", [("weight", False), ("weight", True), ("kernel", True), ("kernel", False), ("filter", True)]
)
def test_kofn_mask_fused_and_torch_paths_agree(monkeypatch, granularity, conv):
    """The same generator state gives the same masked weight on both paths, and close gradients."""

    def run(switch: str):
        monkeypatch.setenv(fused_mask.ENV_SWITCH, switch)
        torch.manual_seed(0)
        layer = nn.Conv2d(5, 8, 3) if conv else nn.Linear(21, 8)
        model = nn.Sequential(layer)
        sparsify(model, 2, 4, granularity, layers=["0"], seed=11, noise_scale=0.5)
        model.train()
        ((_, mod, mask),) = masked_layers(model)
        mask.temperature = 0.8
        ws = [mod.weight for _ in range(3)]  # three fresh draws
        sum((w * torch.linspace(-1, 1, w.numel()).reshape(w.shape)).sum() for w in ws).backward()
        return ws, mask.logits.grad, mod.parametrizations.weight.original.grad

    assert fused_mask.kernel() is not None
    fused = run("1")
    torch_path = run("0")
    assert fused_mask.kernel() is None
    assert all(torch.equal(a, b) for a, b in zip(fused[0], torch_path[0]))
    assert not torch.equal(fused[0][0], fused[0][1])  # a fresh draw per forward
    assert torch.allclose(fused[1], torch_path[1], rtol=1e-4, atol=1e-6)
    assert torch.equal(fused[2], torch_path[2])


def test_compile_failure_warns_once_and_falls_back_to_torch(monkeypatch, tmp_path):
    monkeypatch.setenv("CC", "no-such-cc-dpp")
    monkeypatch.setenv("DPP_KERNEL_CACHE", str(tmp_path))
    kernels.load.cache_clear()
    fused_mask.load_kernel.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="kofn_mask.*unavailable.*no C compiler found") as record:
            assert fused_mask.kernel() is None
            assert fused_mask.kernel() is None
        assert len(record) == 1
        model = nn.Sequential(nn.Linear(16, 4))
        sparsify(model, 1, 4, seed=0)
        model.train()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            model(torch.randn(2, 16)).sum().backward()  # the torch path, no further warning
        assert model[0].parametrizations.weight.original.grad is not None
        assert np.array_equal((model[0].weight != 0).sum(1).numpy(), [4, 4, 4, 4])
    finally:
        monkeypatch.undo()
        kernels.load.cache_clear()
        fused_mask.load_kernel.cache_clear()
    assert fused_mask.kernel() is not None


def test_kernel_build_is_cached_by_content(tmp_path, monkeypatch):
    monkeypatch.setenv("DPP_KERNEL_CACHE", str(tmp_path))
    first = kernels.build("kofn_mask")
    assert first.parent == tmp_path and first.is_file()
    assert kernels.build("kofn_mask") == first  # no recompilation
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"), reason="x86 instruction-set flags")
@pytest.mark.parametrize("flags", [("-mno-avx512f",), ("-mno-avx512f", "-mno-avx2", "-mno-fma")])
def test_portable_builds_give_the_same_noise_masks_and_gradients(flags):
    """The AVX2 and plain-SSE code paths (what a machine without AVX-512 compiles) against the native build."""
    lib, native = fused_mask.load_kernel(flags), fused_mask.load_kernel()
    assert lib is not None
    out = torch.empty(777)
    lib.dpp_gumbel(123, 5, 777, fused_mask._CONSTANTS_PTR, out.data_ptr())
    assert torch.equal(out.view(torch.int32), noise.gumbel_noise_reference(123, 777, 5).view(torch.int32))
    for n, k, real, block in ((8, 1, 37, 1), (4, 3, 9, 5), (5, 2, 23, 1), (16, 1, 50, 2)):
        logits, weight, upstream, _ = _case(3, n, k, real, block, n)
        dims = fused_mask.kernel_dims(tuple(logits.shape), weight.numel(), k, real, block)
        results = []
        for which in (lib, native):
            lg, w = logits.clone().requires_grad_(), weight.clone().requires_grad_()
            y = fused_mask._FusedKofNWeight.apply(w, lg, which, dims, 0.7, 0.5, 99)
            (y * upstream).sum().backward()
            results.append((y, w.grad, lg.grad))
        (y1, gw1, gl1), (y2, gw2, gl2) = results
        assert torch.equal(y1, y2) and torch.equal(gw1, gw2)
        assert torch.allclose(gl1, gl2, rtol=1e-5, atol=1e-6 * float(gl2.abs().max()))


def test_row_split_between_threads_gives_the_same_bits(monkeypatch):
    logits, weight, upstream, _ = _case(9, 8, 2, 45, 1, 4)
    results = []
    for threads in (1, 2):
        monkeypatch.setattr(fused_mask, "PARALLEL_MIN_SLOTS", 1)
        torch.set_num_threads(threads)
        try:
            assert len(fused_mask._row_parts(9, 48)) == threads
            lg, w, out = _fused(logits, weight, 2, 45, 1, 0.7, 1.0, 8)
            (out * upstream).sum().backward()
        finally:
            torch.set_num_threads(1)
        results.append((out, w.grad, lg.grad))
    assert all(torch.equal(a, b) for a, b in zip(*results))
