"""Information-theoretic mask metrics per layer: confidence and pruning diversity, both in [0, 1].

The DPP paper (Gonzalez-Carabarin et al., arXiv 2105.12686) proposes a mask *confidence* and a *pruning
diversity* per layer from information theory; its exact formulas are not in the public code, so these are ours:

**Confidence.** Each group's logits ``l`` (n of them) imply a distribution over its ``C(n, k)`` possible
k-subsets. We take the exponential-family one, ``P(S) = exp(sum_{i in S} l_i) / Z`` with
``Z = e_k(exp(l))`` (the k-th elementary symmetric polynomial) — for k = 1 this is exactly ``softmax(l)``,
the distribution the Gumbel trick samples. Its entropy is ``H = log Z - sum_i pi_i l_i`` with the inclusion
probabilities ``pi_i = d log Z / d l_i``. Confidence of a group ``= 1 - H / log C(n, k)``: 1 when one subset has
all the mass, 0 for uniform logits. A layer's confidence is the mean over its full groups (a last, partial
group is left out unless there is no other).

**Diversity.** From the deterministic masks (top-k of the logits, what is exported): for each group position g,
let ``f_i`` be the fraction of rows that keep slot i, so ``sum_i f_i = k``, and ``q = f / k``. Its entropy
``H(q)`` lies in ``[log k, log n]``: ``log k`` when every row keeps the same k slots, ``log n`` when the slots
are used evenly. Diversity ``= (H(q) - log k) / (log n - log k)``, averaged over group positions. Rows are
output neurons / filters (weight and kernel granularity); for filter granularity, where each layer has one
mask row per group of filters, the groups play the role of rows.
"""

from __future__ import annotations

import math

import torch

from dpp.checks import check_k_n
from dpp.errors import DPPError
from dpp.parametrize import KofNMask, MaskBase


def log_elementary_symmetric(logits: torch.Tensor, k: int) -> torch.Tensor:
    """``log e_k(exp(logits))`` per group (last axis), by the O(n k) recursion in log space."""
    shape = logits.shape[:-1]
    zero = -1e300 if logits.dtype == torch.float64 else -1e30  # log 0, finite so gradients stay finite
    neg = torch.full(shape + (k,), zero, dtype=logits.dtype)
    e = torch.cat([torch.zeros(shape + (1,), dtype=logits.dtype), neg], dim=-1)  # e_0 = 1, e_j = 0
    for i in range(logits.shape[-1]):
        li = logits[..., i : i + 1]
        shifted = torch.cat([torch.full(shape + (1,), zero, dtype=logits.dtype), e[..., :-1] + li], dim=-1)
        e = torch.logaddexp(e, shifted)
    return e[..., k]


def subset_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy (nats) of ``P(S) ∝ exp(sum_{i in S} l_i)`` over k-subsets, per group."""
    k, _ = check_k_n(k, logits.shape[-1])
    with torch.enable_grad():
        lg = logits.detach().double().requires_grad_(True)
        log_z = log_elementary_symmetric(lg, k)
        (pi,) = torch.autograd.grad(log_z.sum(), lg)
    return (log_z.detach() - (pi * lg.detach()).sum(dim=-1)).clamp_min(0.0)


def group_confidence(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Per-group confidence ``1 - H / log C(n, k)`` in [0, 1] (see the module docstring)."""
    n = logits.shape[-1]
    k, n = check_k_n(k, n)
    return (1.0 - subset_entropy(logits, k) / math.log(math.comb(n, k))).clamp(0.0, 1.0)


def layer_confidence(logits: torch.Tensor, k: int, full_groups: torch.Tensor | None = None) -> float:
    """Mean group confidence of one layer; ``full_groups`` (bool, logits.shape[:-1]) picks the groups to use."""
    conf = group_confidence(logits, k)
    if full_groups is not None and bool(full_groups.any()):
        conf = conf[full_groups]
    return float(conf.mean())


def mask_diversity(slot_mask: torch.Tensor, k: int, full_groups: torch.Tensor | None = None) -> float:
    """Diversity of k-hot masks of shape ``(rows, groups, n)`` across rows (see the module docstring)."""
    if slot_mask.ndim != 3:
        raise DPPError(f"slot_mask must have shape (rows, groups, n) (got {tuple(slot_mask.shape)})")
    n = slot_mask.shape[-1]
    k, n = check_k_n(k, n)
    q = slot_mask.double().mean(dim=0) / k  # (groups, n), sums to 1 per group
    h = -(q * torch.log(q.clamp_min(1e-300))).sum(dim=-1)
    div = ((h - math.log(k)) / (math.log(n) - math.log(k))).clamp(0.0, 1.0)
    if full_groups is not None and bool(full_groups.any()):
        div = div[full_groups]
    return float(div.mean())


def layer_metrics(mask: MaskBase) -> dict[str, float]:
    """``{"confidence", "diversity"}`` of a :class:`dpp.parametrize.KofNMask` (logits) or any k-of-n mask."""
    layout = mask.layout
    k = layout.k
    pad = layout.pad_positions()
    full = ~pad.any(dim=-1)
    slots = mask.slot_mask().detach()
    if layout.granularity == "filter":
        slots3, full3 = slots[:, None, :], torch.ones(1, dtype=torch.bool)
    else:
        slots3, full3 = slots, full[0]
    out = {"diversity": mask_diversity(slots3, k, full3)}
    if isinstance(mask, KofNMask):  # the one mask with logits
        out["confidence"] = layer_confidence(mask.padded_logits().detach(), k, full)
    else:  # a fixed mask has no distribution to measure
        out["confidence"] = float("nan")
    return out
