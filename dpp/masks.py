"""Pure k-of-n mask sampling from logits: Gumbel top-k forward, successive-softmax straight-through backward.

Logits have shape ``(..., n)``: one categorical distribution per group of n candidates. Following the paper's
public code (Deep Probabilistic Subsampling, Huijben et al. 2020, as used by DPP, arXiv 2105.12686):

* forward: hard, exact k-hot mask = top-k of ``logits + c * g`` with Gumbel noise ``g = -log(-log U)``
  (:mod:`dpp.noise`: counter-based, a function of one 64-bit seed drawn from the generator per call and of the
  logit's flat index, so the fused kernel of :mod:`dpp.fused_mask` draws the very same noise);
* backward: the k successive softmaxes without replacement, draw i being
  ``softmax((logits + c*g + PAD * hard_before_i) / T)`` (earlier hard draws excluded, same noise reused),
  summed over the k draws; straight-through: the forward value is ``hard`` exactly, the gradient is the
  soft sum's (``hard + soft - soft.detach()``, computed as one autograd function).

Positions whose logit is :data:`PAD_LOGIT` are padding (a last, partial group): they are picked only when a
group has fewer than k real positions, which is the padding rule of :class:`dpp.kofn.KofNMatrix`.
"""

from __future__ import annotations

import math
from typing import cast

import torch
from torch.autograd.function import once_differentiable

from dpp.checks import check_k_n
from dpp.errors import ArgumentTypeError, DPPError
from dpp.fused_mask import gumbel_noise as _fast_gumbel
from dpp.noise import draw_seed, gumbel_noise_reference

PAD_LOGIT = -1.0e4  #: logit of a padded (non-existent) position; finite so softmaxes never give NaN
_EXCLUDE = -1.0e9  #: added to a position already drawn, removing it from the later softmaxes


def _check(logits: torch.Tensor, k: int) -> int:
    if not isinstance(logits, torch.Tensor) or logits.ndim < 1:
        raise ArgumentTypeError(f"logits must be a torch tensor of shape (..., n) (got {type(logits).__name__})")
    k, _ = check_k_n(k, logits.shape[-1])
    return k


def topk_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Deterministic exact k-hot mask (float 0/1, same shape as ``logits``): the k largest logits per group.

    Ties go to the lowest position (stable), so evaluation and export are reproducible.
    """
    k = _check(logits, k)
    order = torch.sort(logits.detach(), dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(logits).scatter_(-1, order, 1.0)


def gumbel_noise(
    shape: torch.Size | tuple[int, ...],
    generator: torch.Generator | None,
    dtype: torch.dtype = torch.float32,
    *,
    reference: bool = False,
) -> torch.Tensor:
    """Standard Gumbel samples ``-log(-log U)`` of ``shape`` (row-major element i is :mod:`dpp.noise` element i)
    from one seed drawn from ``generator``; U lies strictly inside (0, 1), so the noise is finite (a real slot
    always beats a pad). Computed in float32 (by the C kernel when available, else in torch; ``reference``:
    always torch; the same bits either way), then cast to ``dtype``.
    """
    numel = math.prod(shape)
    seed = draw_seed(generator)
    noise = gumbel_noise_reference(seed, numel) if reference else _fast_gumbel(seed, numel)
    return noise.reshape(shape).to(dtype)


def _hard_topk_axis0(perturbed: torch.Tensor, k: int) -> list[torch.Tensor]:
    """The k successive argmax picks along axis 0 as boolean one-hots (exact: ties resolved by argmax)."""
    work = perturbed.detach()
    picks = []
    for i in range(k):
        pick = work == work.amax(dim=0, keepdim=True)  # fast on CPU; ties are checked below
        picks.append(pick)
        if i < k - 1:
            work = work.masked_fill(pick, float("-inf"))
    counts = picks[0].sum(dim=0) if k == 1 else torch.stack(picks).sum(dim=(0, 1))
    if bool((counts != k).any()):  # a tie: redo exactly with argmax
        work = perturbed.detach().clone()
        picks = []
        for _ in range(k):
            idx = torch.argmax(work, dim=0, keepdim=True)
            picks.append(torch.zeros_like(work, dtype=torch.bool).scatter_(0, idx, True))
            work.scatter_(0, idx, float("-inf"))
    return picks


def relaxed_topk(perturbed: torch.Tensor, k: int, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hard, soft)`` for candidates along **axis 0** (shape ``(n, groups)``, the fast layout on CPU).

    ``hard``: k-hot top-k of ``perturbed``. ``soft``: the sum of k successive tempered softmaxes, draw i
    excluding the i hard draws before it (the DPS relaxation).
    """
    if not temperature > 0:
        raise DPPError(f"temperature must be > 0 (got {temperature})")
    picks = _hard_topk_axis0(perturbed, k)
    scaled = perturbed / temperature
    soft = torch.softmax(scaled, dim=0)
    excluded = picks[0]
    for i in range(1, k):
        soft = soft + torch.softmax(scaled.masked_fill(excluded, _EXCLUDE), dim=0)
        excluded = excluded | picks[i]
    return excluded.to(perturbed.dtype), soft


def _perturbed_axis0(logits: torch.Tensor, noise_scale: float, generator: torch.Generator | None) -> torch.Tensor:
    """``logits + c * g`` with the n candidates on axis 0, shape ``(n, groups)``, contiguous, no autograd.

    The same noise and the same float operations as the reference's ``flat + c * noise``, so a generator state
    gives bit-identical samples to the reference path.
    """
    n = logits.shape[-1]
    flat = logits.detach().reshape(-1, n).t()
    if noise_scale == 0:
        return flat.contiguous()
    noise = gumbel_noise(logits.shape, generator, logits.dtype).to(logits.device).reshape(-1, n).t()
    work = torch.mul(noise, noise_scale, out=torch.empty(flat.shape, dtype=logits.dtype, device=logits.device))
    return work.add_(flat)  # c * g + l == l + c * g exactly


def _hard_picks(
    perturbed: torch.Tensor, k: int, hard: torch.Tensor
) -> tuple[list[torch.Tensor], list[torch.Tensor] | None]:
    """Write the exact k-hot top-k along axis 0 of ``perturbed`` into ``hard`` (float 0/1, same shape); return the
    value of each draw's pick (shape ``(1, groups)``) and, only when ties forced the argmax path, the boolean set
    excluded before each later draw (``None``: excluded before draw i is ``perturbed > maxes[i]``).
    """
    groups = perturbed.shape[1]
    maxes = [perturbed.amax(dim=0, keepdim=True)]
    work = perturbed
    for _ in range(1, k):
        work = work.masked_fill(work >= maxes[-1], float("-inf"))
        maxes.append(work.amax(dim=0, keepdim=True))
    # every group has >= k values >= its last max, so a total of exactly groups*k means no ties: exact top-k
    hard_t = torch.ge(perturbed, maxes[-1], out=torch.empty_like(perturbed))  # contiguous, then one transpose:
    exact = torch.float32 if hard_t.numel() < 2**24 else torch.float64  # a 0/1 sum, exact (count_nonzero is slow)
    if int(hard_t.sum(dtype=exact)) == groups * k:  # faster on CPU than writing through ``hard`` directly
        hard.copy_(hard_t)
        return maxes, None
    picks = _hard_topk_axis0(perturbed, k)  # a tie: redo exactly with argmax
    maxes = [perturbed.masked_fill(~p, float("-inf")).amax(dim=0, keepdim=True) for p in picks]
    excluded, seen = [], picks[0]
    for p in picks[1:]:
        excluded.append(seen)
        seen = seen | p
    hard.copy_(seen)
    return maxes, excluded


class _GumbelTopK(torch.autograd.Function):
    """Forward: the exact k-hot Gumbel top-k mask, without building a graph. Backward: the gradient of the sum
    of k successive tempered softmaxes (the DPS relaxation), computed analytically: for draw i with
    probabilities s_i over the candidates not yet drawn, ``s_i * (g - <s_i, g>) / T``, summed over the draws.
    Equal to autograd through :func:`relaxed_topk` with ``hard + soft - soft.detach()`` (tested).
    """

    @staticmethod
    def forward(
        ctx,
        logits: torch.Tensor,
        k: int,
        temperature: float,
        noise_scale: float,  # type: ignore[override]
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        perturbed = _perturbed_axis0(logits, noise_scale, generator)
        hard = torch.empty(logits.shape, dtype=logits.dtype, device=logits.device)  # the logits' layout
        maxes, excluded = _hard_picks(perturbed, k, hard.view(-1, logits.shape[-1]).t())
        ctx.save_for_backward(perturbed, *maxes)
        ctx.excluded, ctx.temperature, ctx.shape = excluded, temperature, logits.shape
        return hard

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        perturbed, *maxes = ctx.saved_tensors
        n = perturbed.shape[0]
        g = grad.reshape(-1, n).t()
        inv_t = perturbed.new_tensor(1.0 / ctx.temperature)
        total = None
        for i, m in enumerate(maxes):
            e = torch.addcmul(m * -inv_t, perturbed, inv_t).exp_()  # softmax numerators of draw i
            if i > 0:
                e.masked_fill_(perturbed > m if ctx.excluded is None else ctx.excluded[i - 1], 0.0)
            z = e.sum(dim=0, keepdim=True)
            eg = e * g
            dot = eg.sum(dim=0, keepdim=True).div_(z)  # <s_i, g>
            r = z.mul_(ctx.temperature).reciprocal_()
            part = eg.mul_(r).addcmul_(e, dot.mul_(r), value=-1.0)  # s_i * (g - <s_i, g>) / T
            total = part if total is None else total.add_(part)
        # back to the logits' layout in one transposing copy (faster on CPU than strided writes above)
        out = torch.empty(ctx.shape, dtype=perturbed.dtype, device=perturbed.device)
        out.view(-1, n).copy_(cast(torch.Tensor, total).t())  # set: maxes holds k >= 1 draws
        return out, None, None, None, None


def gumbel_topk_mask(
    logits: torch.Tensor,
    k: int,
    temperature: float,
    *,
    noise_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Hard exact k-hot mask in the forward pass, relaxed k-of-n gradient in the backward pass.

    ``noise_scale`` is the factor c on the Gumbel noise (c = 0 gives the top-k of the logits with a gradient).
    Computed with the n candidates on axis 0, where CPU reductions are an order of magnitude faster; the
    backward is the relaxation's gradient in closed form (:class:`_GumbelTopK`), the same as autograd through
    :func:`gumbel_topk_mask_reference` (same draws for the same generator state).
    """
    k = _check(logits, k)
    if noise_scale < 0:
        raise DPPError(f"noise_scale must be >= 0 (got {noise_scale})")
    if not temperature > 0:
        raise DPPError(f"temperature must be > 0 (got {temperature})")
    return _GumbelTopK.apply(logits, k, float(temperature), float(noise_scale), generator)


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard mask, exactly. Backward: the gradient goes to the soft relaxation."""

    @staticmethod
    def forward(ctx, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, grad


def gumbel_topk_mask_reference(
    logits: torch.Tensor,
    k: int,
    temperature: float,
    *,
    noise_scale: float = 1.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The straightforward version of :func:`gumbel_topk_mask` (noise tensor, :func:`relaxed_topk`, autograd):
    the same draws and mask, slower; kept as the definition the fast path is tested against.
    """
    k = _check(logits, k)
    if noise_scale < 0:
        raise DPPError(f"noise_scale must be >= 0 (got {noise_scale})")
    n = logits.shape[-1]
    flat = logits.reshape(-1, n).t()
    if noise_scale > 0:
        with torch.no_grad():
            noise = gumbel_noise(logits.shape, generator, logits.dtype, reference=True).to(logits.device)
            noise = noise.reshape(-1, n).t()
        flat = flat + noise_scale * noise
    hard, soft = relaxed_topk(flat.contiguous(), k, temperature)
    return _StraightThrough.apply(hard, soft).t().reshape(logits.shape)


class _GroupEntropy(torch.autograd.Function):
    """Entropy per group, candidates on axis 0 (``logits`` as ``(..., n)``): ``H = log Z - <e, x - m> / Z``; the
    gradient ``-s * (log s + H)`` in closed form, skipped (exactly zero) when the incoming gradient is all zero
    (regulariser weight 0).
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        n = logits.shape[-1]
        flat = logits.reshape(-1, n).t()
        shifted = torch.empty(flat.shape, dtype=flat.dtype, device=flat.device)  # contiguous: the fast layout
        torch.sub(flat, flat.amax(dim=0, keepdim=True), out=shifted)
        e = shifted.exp()
        z = e.sum(dim=0)
        log_z = z.log()
        h = log_z - (e * shifted).sum(dim=0).div_(z)
        ctx.save_for_backward(shifted, e, z, log_z, h)
        ctx.shape = logits.shape
        return h.reshape(logits.shape[:-1])

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        if not bool(grad.any()):
            return None
        shifted, e, z, log_z, h = ctx.saved_tensors
        out = torch.empty(ctx.shape, dtype=shifted.dtype, device=shifted.device)
        scale = grad.reshape(-1).div(z).neg_()  # -grad / Z per group
        q = torch.sub(shifted, log_z - h).mul_(e)  # e * (log s + H)
        torch.mul(q, scale, out=out.view(-1, ctx.shape[-1]).t())
        return out


def group_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of ``softmax(logits)`` per group, shape ``logits.shape[:-1]``: the paper's regulariser."""
    return _GroupEntropy.apply(logits)


def group_entropy_reference(logits: torch.Tensor) -> torch.Tensor:
    """The autograd version of :func:`group_entropy` (tested equal)."""
    flat = logits.reshape(-1, logits.shape[-1]).t()
    logp = torch.log_softmax(flat, dim=0)
    return -(logp.exp() * logp).sum(dim=0).reshape(logits.shape[:-1])
