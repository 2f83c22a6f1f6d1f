"""Pure k-of-n mask sampling from logits: Gumbel top-k forward, successive-softmax straight-through backward.

Logits have shape ``(..., n)``: one categorical distribution per group of n candidates. Following the paper's
public code (Deep Probabilistic Subsampling, Huijben et al. 2020, as used by DPP, arXiv 2105.12686):

* forward: hard, exact k-hot mask = top-k of ``logits + c * g`` with Gumbel noise ``g = -log(-log U)``;
* backward: the k successive softmaxes without replacement, draw i being
  ``softmax((logits + c*g + PAD * hard_before_i) / T)`` (earlier hard draws excluded, same noise reused),
  summed over the k draws; straight-through: the forward value is ``hard`` exactly, the gradient is the
  soft sum's (``hard + soft - soft.detach()``, computed as one autograd function).

Positions whose logit is :data:`PAD_LOGIT` are padding (a last, partial group): they are picked only when a
group has fewer than k real positions, which is the padding rule of :class:`dpp.kofn.KofNMatrix`.
"""

from __future__ import annotations

import torch

from dpp.checks import check_k_n

PAD_LOGIT = -1.0e4  #: logit of a padded (non-existent) position; finite so softmaxes never give NaN
_EXCLUDE = -1.0e9  #: added to a position already drawn, removing it from the later softmaxes


def _check(logits: torch.Tensor, k: int) -> int:
    if not isinstance(logits, torch.Tensor) or logits.ndim < 1:
        raise TypeError(f"logits must be a torch tensor of shape (..., n) (got {type(logits).__name__})")
    k, _ = check_k_n(k, logits.shape[-1])
    return k


def topk_mask(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Deterministic exact k-hot mask (float 0/1, same shape as ``logits``): the k largest logits per group.

    Ties go to the lowest position (stable), so evaluation and export are reproducible.
    """
    k = _check(logits, k)
    order = torch.sort(logits.detach(), dim=-1, descending=True, stable=True).indices[..., :k]
    return torch.zeros_like(logits).scatter_(-1, order, 1.0)


def gumbel_noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None,
                 dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gumbel samples ``-log(-log U)``, ``U ~ Uniform[0, 1)`` drawn from ``generator``.

    U is clamped to the smallest positive float so the noise stays finite (a real slot must always beat a pad).
    """
    u = torch.rand(shape, generator=generator, dtype=dtype).clamp_min_(torch.finfo(dtype).tiny)
    return u.log_().neg_().log_().neg_()


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
        raise ValueError(f"temperature must be > 0 (got {temperature})")
    picks = _hard_topk_axis0(perturbed, k)
    scaled = perturbed / temperature
    soft = torch.softmax(scaled, dim=0)
    excluded = picks[0]
    for i in range(1, k):
        soft = soft + torch.softmax(scaled.masked_fill(excluded, _EXCLUDE), dim=0)
        excluded = excluded | picks[i]
    return excluded.to(perturbed.dtype), soft


class _StraightThrough(torch.autograd.Function):
    """Forward: the hard mask, exactly. Backward: the gradient goes to the soft relaxation.

    The same as ``hard + (soft - soft.detach())`` in two fewer passes over the logits.
    """

    @staticmethod
    def forward(ctx, hard: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return hard

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return None, grad


def gumbel_topk_mask(logits: torch.Tensor, k: int, temperature: float, *, noise_scale: float = 1.0,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Hard exact k-hot mask in the forward pass, relaxed k-of-n gradient in the backward pass.

    ``noise_scale`` is the factor c on the Gumbel noise (c = 0 gives the top-k of the logits with a gradient).
    Computed with the n candidates on axis 0, where CPU softmax and argmax are an order of magnitude faster.
    """
    k = _check(logits, k)
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0 (got {noise_scale})")
    n = logits.shape[-1]
    flat = logits.reshape(-1, n).t()
    if noise_scale > 0:
        with torch.no_grad():
            noise = gumbel_noise(flat.shape, generator, logits.dtype)
        flat = flat + noise_scale * noise
    hard, soft = relaxed_topk(flat.contiguous(), k, temperature)
    return _StraightThrough.apply(hard, soft).t().reshape(logits.shape)


def group_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of ``softmax(logits)`` per group, shape ``logits.shape[:-1]``: the paper's regulariser."""
    flat = logits.reshape(-1, logits.shape[-1]).t()  # candidates on axis 0: the fast layout on CPU
    logp = torch.log_softmax(flat, dim=0)
    return -(logp.exp() * logp).sum(dim=0).reshape(logits.shape[:-1])
