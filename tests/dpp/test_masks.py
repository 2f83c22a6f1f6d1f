"""k-of-n masks: exactness at every granularity, gradients, determinism, clear errors, schedules."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from dpp.masks import (
    PAD_LOGIT,
    group_entropy,
    group_entropy_reference,
    gumbel_noise,
    gumbel_topk_mask,
    gumbel_topk_mask_reference,
    relaxed_topk,
    topk_mask,
)
from dpp.parametrize import KofNMask, layout_for, make_permanent, masked_layers, remove_masks, set_temperature, sparsify
from dpp.schedules import TemperatureSchedule

torch.set_num_threads(1)


def kept_per_group(module: nn.Module, mask: KofNMask) -> torch.Tensor:
    """Count kept slots per (row, group) from the *weight* (non-zero slots), not from the mask itself."""
    lay = mask.layout
    w = module.weight.detach().reshape(lay.rows, -1)
    if lay.granularity == "filter":
        return (w != 0).any(dim=1).reshape(lay.groups, lay.n).sum(dim=1)
    pad = lay.groups * lay.n * lay.block - lay.cols
    slots = torch.nn.functional.pad(w, (0, pad)).reshape(lay.rows, lay.groups, lay.n, lay.block)
    return (slots != 0).any(dim=3).sum(dim=2)


def expected_counts(mask: KofNMask) -> torch.Tensor:
    lay = mask.layout
    if lay.granularity == "filter":
        return torch.full((lay.groups,), lay.k)
    real = torch.tensor([min(lay.n, lay.real_slots - g * lay.n) for g in range(lay.groups)])
    return torch.minimum(real, torch.tensor(lay.k)).expand(lay.rows, lay.groups)


@settings(max_examples=30, deadline=None)
@given(
    k=st.integers(1, 5),
    extra=st.integers(1, 4),
    out=st.integers(1, 6),
    cin=st.integers(1, 7),
    ksz=st.integers(1, 3),
    conv=st.booleans(),
    gran=st.sampled_from(["weight", "kernel", "filter"]),
    seed=st.integers(0, 2**16),
    training=st.booleans(),
)
def test_exact_k_of_n_every_granularity(k, extra, out, cin, ksz, conv, gran, seed, training):
    n = k + extra
    if gran == "filter":
        out = n * out
    layer = nn.Conv2d(cin, out, ksz) if conv else nn.Linear(cin * ksz, out)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=torch.Generator().manual_seed(seed)).abs() + 0.1)
    model = nn.Sequential(layer)
    sparsify(model, k, n, gran, layers=["0"], seed=seed, noise_scale=1.0)
    model.train(training)
    ((_, mod, mask),) = masked_layers(model)
    mask.temperature = 0.7
    assert torch.equal(kept_per_group(mod, mask), expected_counts(mask))
    make_permanent(model)
    model.train(False)
    assert not masked_layers(model)  # the permanent weight must still be exactly k of n
    w = layer.weight.detach().reshape(layer.weight.shape[0], -1)
    lay = mask.layout
    if gran != "filter":
        slots = torch.nn.functional.pad(w, (0, lay.groups * n * lay.block - lay.cols)).reshape(
            lay.rows, lay.groups, n, lay.block
        )
        assert torch.equal((slots != 0).any(dim=3).sum(dim=2), expected_counts(mask))


@given(shape=st.tuples(st.integers(1, 4), st.integers(2, 9)), k=st.integers(1, 8), seed=st.integers(0, 999))
@settings(max_examples=40, deadline=None)
def test_sampled_mask_is_exactly_k_hot_and_zero_one(shape, k, seed):
    rows, n = shape
    k = min(k, n - 1)
    logits = torch.randn(rows, 3, n, generator=torch.Generator().manual_seed(seed))
    m = gumbel_topk_mask(logits, k, 0.5, generator=torch.Generator().manual_seed(seed))
    assert set(m.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(m.sum(-1), torch.full((rows, 3), float(k)))
    assert torch.equal(topk_mask(logits, k).sum(-1), torch.full((rows, 3), float(k)))


def test_deterministic_topk_keeps_the_largest_logits_ties_to_lowest():
    logits = torch.tensor([[0.1, 3.0, -1.0, 3.0, 2.0]])
    assert topk_mask(logits, 2).tolist() == [[0, 1, 0, 1, 0]]
    assert topk_mask(torch.zeros(1, 4), 1).tolist() == [[1, 0, 0, 0]]


def test_relaxation_without_noise_equals_successive_softmaxes():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0]])
    hard, soft = relaxed_topk(logits.t().contiguous(), 2, 1.0)
    p1 = torch.softmax(logits[0], 0)
    p2 = torch.softmax(torch.tensor([1.0, 0.0, -1.0, -1e9]), 0)  # position 3 (largest) drawn first
    assert hard.t().tolist() == [[1, 0, 0, 1]]
    assert torch.allclose(soft.t()[0], p1 + p2)


@pytest.mark.parametrize("k, noise_scale", [(1, 1.0), (1, 0.1), (1, 0.0), (2, 1.0), (3, 0.1), (3, 0.0)])
def test_fast_mask_equals_reference_mask_and_gradient(k, noise_scale):
    """The closed-form backward equals autograd through the successive softmaxes; the draws are the same."""
    for seed in range(3):
        logits = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(seed)) * 2
        logits[:, -1, 5:] = PAD_LOGIT  # a partial last group, as in KofNMask.padded_logits
        upstream = torch.randn(4, 5, 7, generator=torch.Generator().manual_seed(100 + seed))
        fast, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        m_fast = gumbel_topk_mask(fast, k, 0.7, noise_scale=noise_scale, generator=torch.Generator().manual_seed(seed))
        m_ref = gumbel_topk_mask_reference(
            ref, k, 0.7, noise_scale=noise_scale, generator=torch.Generator().manual_seed(seed)
        )
        assert torch.equal(m_fast, m_ref)
        assert torch.equal(m_fast.sum(-1), torch.full((4, 5), float(k)))
        (m_fast * upstream).sum().backward()
        (m_ref * upstream).sum().backward()
        assert torch.allclose(fast.grad, ref.grad, rtol=1e-4, atol=1e-6)


def test_fast_mask_gradient_with_ties_matches_reference():
    logits = torch.zeros(3, 2, 6)  # no noise: every candidate tied, the exact argmax path
    upstream = torch.randn(3, 2, 6, generator=torch.Generator().manual_seed(0))
    for k in (1, 2, 4):
        fast, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
        m_fast = gumbel_topk_mask(fast, k, 1.3, noise_scale=0.0)
        m_ref = gumbel_topk_mask_reference(ref, k, 1.3, noise_scale=0.0)
        assert torch.equal(m_fast, m_ref) and torch.equal(m_fast.sum(-1), torch.full((3, 2), float(k)))
        (m_fast * upstream).sum().backward()
        (m_ref * upstream).sum().backward()
        assert torch.allclose(fast.grad, ref.grad, rtol=1e-4, atol=1e-6)


def test_fast_mask_gradcheck_in_double():
    """gradcheck of the closed form against finite differences of the relaxation (fixed draws, double)."""
    logits = torch.randn(2, 3, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).requires_grad_()
    for k in (1, 2):

        def soft_fn(x, k=k):
            # straight-through: d(mask)/d(logits) is the relaxation's Jacobian, the same draws each call
            return gumbel_topk_mask(x, k, 0.9, noise_scale=0.5, generator=torch.Generator().manual_seed(7))

        def soft_ref(x, k=k):
            flat = x.reshape(-1, 5).t()
            noise = gumbel_noise(x.shape, torch.Generator().manual_seed(7), torch.float64).reshape(-1, 5).t()
            _, soft = relaxed_topk(flat + 0.5 * noise, k, 0.9)
            return soft.t().reshape(x.shape)

        upstream = torch.randn(2, 3, 5, dtype=torch.float64)
        jac_fast = torch.autograd.grad((soft_fn(logits) * upstream).sum(), logits)[0]
        jac_ref = torch.autograd.grad((soft_ref(logits) * upstream).sum(), logits)[0]
        assert torch.allclose(jac_fast, jac_ref, rtol=1e-9, atol=1e-12)


def test_fast_mask_same_generator_seed_same_draws():
    logits = torch.randn(6, 4, 8, generator=torch.Generator().manual_seed(2))
    a = [gumbel_topk_mask(logits, 2, 0.5, generator=g) for g in [torch.Generator().manual_seed(9)] for _ in range(3)]
    b = [gumbel_topk_mask(logits, 2, 0.5, generator=g) for g in [torch.Generator().manual_seed(9)] for _ in range(3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], a[1])


def test_group_entropy_equals_reference_value_and_gradient():
    logits = torch.randn(5, 3, 8, generator=torch.Generator().manual_seed(4)) * 3
    logits[:, -1, 6:] = PAD_LOGIT
    upstream = torch.randn(5, 3, generator=torch.Generator().manual_seed(5))
    fast, ref = logits.clone().requires_grad_(), logits.clone().requires_grad_()
    h_fast, h_ref = group_entropy(fast), group_entropy_reference(ref)
    assert torch.allclose(h_fast, h_ref, atol=1e-5)
    (h_fast * upstream).sum().backward()
    (h_ref * upstream).sum().backward()
    assert torch.allclose(fast.grad, ref.grad, rtol=1e-4, atol=1e-6)
    fast.grad = None
    (0.0 * group_entropy(fast).sum()).backward()  # weight 0: the gradient is exactly zero (skipped)
    assert fast.grad is None or not fast.grad.any()


def test_gradients_reach_weights_and_logits():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 4 * 4, 5))
    sparsify(model, 1, 4, "weight", seed=3)
    model.train()
    model(torch.randn(2, 3, 6, 6)).square().sum().backward()
    for _, mod, mask in masked_layers(model):
        assert mask.logits.grad is not None and mask.logits.grad.abs().sum() > 0
        assert mod.parametrizations.weight.original.grad.abs().sum() > 0


def test_same_seed_same_masks_different_seed_different():
    def masks(seed: int) -> list[torch.Tensor]:
        model = nn.Sequential(nn.Linear(64, 16))
        sparsify(model, 2, 8, seed=seed)
        model.train()
        return [model[0].weight.detach().clone() != 0 for _ in range(3)]

    a, b, c = masks(5), masks(5), masks(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    assert not torch.equal(a[0], a[1])  # a fresh draw each forward pass: the pruning is dynamic


def test_eval_mask_is_topk_of_logits_and_permanent_and_remove():
    model = nn.Sequential(nn.Linear(16, 4))
    dense = model[0].weight.detach().clone()
    sparsify(model, 1, 4, seed=0)
    ((_, _, mask),) = masked_layers(model)
    model.eval()
    expect = dense * mask.layout.expand(topk_mask(mask.logits.detach(), 1))
    assert torch.equal(model[0].weight, expect)
    remove_masks(model)
    assert torch.equal(model[0].weight, dense) and not masked_layers(model)
    sparsify(model, 1, 4, seed=0)
    make_permanent(model)
    assert torch.equal(model[0].weight.detach(), expect) and not masked_layers(model)


def test_kernel_granularity_keeps_whole_kernels():
    model = nn.Sequential(nn.Conv2d(8, 3, 3))
    sparsify(model, 1, 4, "kernel", seed=1)
    model.train()
    w = model[0].weight.detach()
    per_kernel = (w != 0).sum(dim=(2, 3))
    assert set(per_kernel.unique().tolist()) <= {0, 9}  # whole 3x3 kernels kept or pruned
    assert torch.equal((per_kernel > 0).reshape(3, 2, 4).sum(-1), torch.ones(3, 2, dtype=torch.long))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 4)), 4, 4), "k must be < n"),
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 4)), 0, 4), "k must be >= 1"),
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 6)), 1, 4, "filter", layers=["0"]), "n to divide the 6"),
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 4)), 1, 4, "channel"), "granularity must be one of"),
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 4)), 1, 4, layers=["fc9"]), "layer 'fc9' not found"),
        (lambda: sparsify(nn.Sequential(nn.Conv2d(4, 4, 3, groups=4)), 1, 16), "n=16 is larger than the fan-in"),
        (lambda: sparsify(nn.Sequential(nn.Linear(8, 4)), 1, 4, noise_scale=-1.0), "noise_scale must be >= 0"),
        (lambda: TemperatureSchedule("cosine"), "schedule kind must be one of"),
        (lambda: TemperatureSchedule("linear", 0.0, 1.0), "start must be a finite number > 0"),
    ],
)
def test_bad_arguments_raise_clear_value_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_unsupported_layer_is_a_type_error():
    with pytest.raises(TypeError, match="only nn.Linear and nn.Conv2d.*got ReLU"):
        sparsify(nn.Sequential(nn.ReLU()), 1, 4, layers=["0"])


def test_double_sparsify_refused():
    model = nn.Sequential(nn.Linear(8, 4))
    sparsify(model, 1, 4)
    with pytest.raises(ValueError, match="already has a mask"):
        sparsify(model, 1, 4)


def test_temperature_schedules():
    lin = TemperatureSchedule("linear", 5.0, 0.5)
    assert [round(lin(e, 10), 6) for e in (0, 9)] == [5.0, 0.5]
    assert lin(3, 10) == pytest.approx(5 * (1 - 0.9 * 3 / 9))  # the reference code's formula
    exp = TemperatureSchedule("exponential", 4.0, 1.0)
    assert exp(1, 3) == pytest.approx(2.0)
    assert TemperatureSchedule("constant", 2.0, 1.0)(4, 5) == 2.0
    model = nn.Sequential(nn.Linear(8, 4))
    sparsify(model, 1, 4)
    set_temperature(model, 1.25)
    assert masked_layers(model)[0][2].temperature == 1.25
    with pytest.raises(ValueError, match="epoch must be <= 4"):
        lin(5, 5)


def test_layout_counts_partial_groups():
    lay = layout_for(nn.Linear(300, 100), 1, 8, "weight")
    assert (lay.groups, lay.real_slots, lay.block) == (38, 300, 1)
    assert math.isclose(int(lay.pad_positions()[0].sum()), 4)


def test_top_level_api_is_lazy_and_callable():
    import subprocess
    import sys

    code = (
        "import sys, dpp; assert 'torch' not in sys.modules; "
        "from dpp import sparsify; import torch; m = sparsify(torch.nn.Sequential(torch.nn.Linear(8, 2)), 1, 4); "
        "assert dpp.sparsify is sparsify and dpp.make_permanent(m) is m"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
