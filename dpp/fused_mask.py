"""The DPP training mask as one C call per pass: ``(W, logits) -> W * expand(mask)`` and its backward.

Why: on CPU the eager torch parametrisation makes dozens of passes over every logit (uniform draws,
transposes to the reduction layout, pads, repeat/expand, ``W * mask`` and its gradients); the kernel in
``dpp/kernels/kofn_mask.c`` does all of it in one sweep per pass (the noise made in registers, groups of n
slots side by side in SIMD lanes) and writes the masked weight straight into W's layout. Large layers are split
by rows over torch's intra-op thread count (same bits for any split). It computes exactly what
:class:`dpp.parametrize.KofNMask` computed:
the mask is the exact k-of-n top-k of ``padded logits + c * gumbel`` (ties to the lowest slot), the gradient
is the straight-through successive-softmax relaxation of :func:`dpp.masks.gumbel_topk_mask` (tested against
autograd through :func:`dpp.masks.gumbel_topk_mask_reference` for the same noise).

Noise is :mod:`dpp.noise` (a pure function of a 64-bit seed drawn from the mask's generator and of the
logit's flat index), so this path, the torch path and the reference draw identical samples. Float32 on CPU only;
``DPP_FUSED_MASK=0`` forces the torch path, and so does a missing compiler (one warning, see :mod:`dpp.kernels`).
"""

from __future__ import annotations

import ctypes
import functools
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch
from torch.autograd.function import once_differentiable

from dpp.errors import DPPError
from dpp.noise import NOISE_CONSTANTS, gumbel_noise_reference

ENV_SWITCH = "DPP_FUSED_MASK"  #: set to 0 to force the torch path

_I64, _F32, _U64, _PTR = ctypes.c_int64, ctypes.c_float, ctypes.c_uint64, ctypes.c_void_p
_CONSTANTS_PTR = NOISE_CONSTANTS.data_ptr()  # the module keeps the tensor alive
_FLOAT32 = torch.float32


KERNEL_ABI = 3  #: must match dpp_kernel_abi() in kofn_mask.c


def enabled() -> bool:
    """False when ``DPP_FUSED_MASK=0`` (read at each call, so tests and users can switch paths)."""
    value = os.environ.get(ENV_SWITCH)
    return value is None or value.strip() != "0"


def _library() -> ctypes.CDLL | None:
    """The default build (whether or not :func:`enabled`)."""
    return load_kernel()


@functools.cache
def load_kernel(extra_flags: tuple[str, ...] = ()) -> ctypes.CDLL | None:
    """The kernel library built with :data:`dpp.kernels.CFLAGS` plus ``extra_flags``, its functions typed."""
    from dpp.kernels import load

    lib = load("kofn_mask", extra_flags)
    if lib is None:
        return None
    lib.dpp_kernel_abi.restype = ctypes.c_int
    if lib.dpp_kernel_abi() != KERNEL_ABI:
        raise RuntimeError(f"kofn_mask kernel ABI {lib.dpp_kernel_abi()} != {KERNEL_ABI} (stale build cache?)")
    lib.dpp_splitmix_words.argtypes = [_U64, _I64, _I64, _PTR]
    lib.dpp_splitmix_words.restype = None
    lib.dpp_gumbel.argtypes = [_U64, _I64, _I64, _PTR, _PTR]
    lib.dpp_gumbel.restype = None
    lib.dpp_kofn_forward.argtypes = [_PTR] * 4 + [_I64] * 8 + [_F32, _U64, _PTR]
    lib.dpp_kofn_forward.restype = ctypes.c_int
    lib.dpp_kofn_backward.argtypes = [_PTR] * 5 + [_I64] * 8 + [_F32]
    lib.dpp_kofn_backward.restype = ctypes.c_int
    return lib


def kernel() -> ctypes.CDLL | None:
    """The loaded kernel library, or None when disabled or unavailable (then use the torch path)."""
    return _library() if enabled() else None


def gumbel_noise(seed: int, numel: int, start: int = 0) -> torch.Tensor:
    """The :mod:`dpp.noise` Gumbel noise of elements ``start .. start+numel-1`` (float32): C when available."""
    lib = kernel()
    if lib is None:
        return gumbel_noise_reference(seed, numel, start)
    out = torch.empty(numel, dtype=torch.float32)
    lib.dpp_gumbel(seed, start, numel, _CONSTANTS_PTR, out.data_ptr())
    return out


def noise_words_c(seed: int, numel: int, start: int = 0) -> torch.Tensor:
    """The C kernel's noise words of elements ``start .. start+numel-1`` (int64 tensor; for tests)."""
    lib = _library()
    if lib is None:
        raise RuntimeError("the C kernel is unavailable")
    out = torch.empty(numel, dtype=torch.int32)
    lib.dpp_splitmix_words(seed, start, numel, out.data_ptr())
    return out.to(torch.int64) & 0xFFFFFFFF


def supports(weight: torch.Tensor, logits: torch.Tensor) -> bool:
    """Whether the fused kernel can run on these tensors (float32, CPU) and is enabled and built."""
    return (
        weight.dtype is _FLOAT32
        and logits.dtype is _FLOAT32
        and weight.is_cpu
        and logits.is_cpu
        and kernel() is not None
    )


def kernel_dims(
    logit_shape: tuple[int, ...], weight_numel: int, k: int, real_slots: int, block: int
) -> tuple[int, int, int, int, int, int]:
    """``(rows, groups, n, k, real_slots, block)`` as the kernel takes them, checked once (a layer's layout is
    fixed). Logits have shape ``(rows, groups, n)`` or ``(groups, n)``; slots from ``real_slots`` on in a row
    are padding; each slot owns ``block`` consecutive weight elements."""
    n, groups = int(logit_shape[-1]), int(logit_shape[-2])
    rows = math.prod(logit_shape) // (groups * n)
    if weight_numel != rows * real_slots * block or not 1 <= real_slots <= groups * n or not 1 <= k < n:
        raise DPPError(
            f"weight of {weight_numel} elements does not fit logits {tuple(logit_shape)} with k={k}, "
            f"real_slots={real_slots}, block={block} (expected {rows * real_slots * block} elements)"
        )
    return rows, groups, n, int(k), int(real_slots), int(block)


PARALLEL_MIN_SLOTS = 1 << 17  #: layers with fewer logits run on one thread (a hand-off costs tens of us)
_pool: tuple[int, int, ThreadPoolExecutor] | None = None  #: (process id, workers, pool); a forked child makes its own


def _row_parts(rows: int, slots: int) -> list[tuple[int, int]]:
    """Row ranges to run in parallel, one per torch intra-op thread (just one for small layers or 1 thread)."""
    threads = min(torch.get_num_threads(), rows)
    if threads < 2 or rows * slots < PARALLEL_MIN_SLOTS:
        return [(0, rows)]
    cut = [rows * i // threads for i in range(threads + 1)]
    return list(zip(cut[:-1], cut[1:]))


def _run(fn: Callable[..., int], head: tuple, dims: tuple[int, ...], tail: tuple) -> int:
    """``fn(*head, rows, row0, row1, *dims[1:], *tail)`` over :func:`_row_parts`, the first part on this thread
    (ctypes releases the GIL). Each element's noise depends on its global index only, so any split gives the
    same bits."""
    global _pool
    rows, rest = dims[0], dims[1:]
    parts = _row_parts(rows, dims[1] * dims[2])
    if len(parts) == 1:
        return fn(*head, rows, 0, rows, *rest, *tail)
    if _pool is None or _pool[0] != os.getpid() or _pool[1] < len(parts) - 1:
        _pool = (os.getpid(), len(parts) - 1, ThreadPoolExecutor(len(parts) - 1, thread_name_prefix="dpp-kofn"))
    futures = [_pool[2].submit(fn, *head, rows, a, b, *rest, *tail) for a, b in parts[1:]]
    codes = [fn(*head, rows, *parts[0], *rest, *tail)] + [f.result() for f in futures]
    return next((c for c in codes if c), 0)


class _FusedKofNWeight(torch.autograd.Function):
    """Forward: ``W * mask`` in W's layout (the mask not materialised). Backward: ``grad * mask`` for W and the
    closed-form relaxation gradient for the logits (0 at padded slots), from the saved perturbed logits.
    Kept lean: this runs for every masked layer at every training step."""

    @staticmethod
    def forward(
        ctx,
        weight: torch.Tensor,
        logits: torch.Tensor,
        lib: ctypes.CDLL,
        dims: tuple[int, ...],
        temperature: float,
        noise_scale: float,
        seed: int,
    ) -> torch.Tensor:
        w = weight if weight.is_contiguous() else weight.contiguous()
        lg = logits if logits.is_contiguous() else logits.contiguous()
        out = torch.empty_like(w)
        perturbed = torch.empty_like(lg)
        rc = _run(
            lib.dpp_kofn_forward,
            (w.data_ptr(), lg.data_ptr(), out.data_ptr(), perturbed.data_ptr()),
            dims,
            (noise_scale, seed, _CONSTANTS_PTR),
        )
        if rc:
            raise RuntimeError(f"dpp_kofn_forward failed (code {rc}) for dims {dims}")
        ctx.save_for_backward(w, perturbed)
        ctx.lib, ctx.dims, ctx.temperature = lib, dims, temperature
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad: torch.Tensor):
        w, perturbed = ctx.saved_tensors
        g = grad if grad.is_contiguous() else grad.contiguous()
        grad_w = torch.empty_like(w)
        grad_logits = torch.empty_like(perturbed)
        rc = _run(
            ctx.lib.dpp_kofn_backward,
            (g.data_ptr(), w.data_ptr(), perturbed.data_ptr(), grad_w.data_ptr(), grad_logits.data_ptr()),
            ctx.dims,
            (ctx.temperature,),
        )
        if rc:
            raise RuntimeError(f"dpp_kofn_backward failed (code {rc}) for dims {ctx.dims}")
        return grad_w, grad_logits, None, None, None, None, None


def masked_weight(
    weight: torch.Tensor, logits: torch.Tensor, dims: tuple[int, ...], temperature: float, noise_scale: float, seed: int
) -> torch.Tensor:
    """The fused op for :func:`kernel_dims` ``dims`` (no further checks; :func:`supports` must hold)."""
    return _FusedKofNWeight.apply(weight, logits, _library(), dims, temperature, noise_scale, seed)


def fused_masked_weight(
    weight: torch.Tensor,
    logits: torch.Tensor,
    *,
    k: int,
    real_slots: int,
    block: int,
    temperature: float,
    noise_scale: float,
    seed: int,
) -> torch.Tensor:
    """``weight * expand(mask)`` with mask = exact k-of-n Gumbel top-k of ``logits + noise_scale * gumbel(seed)``
    (see :func:`kernel_dims` for the layout), gradients as in :func:`dpp.masks.gumbel_topk_mask`."""
    if not supports(weight, logits):
        raise RuntimeError("the fused kernel needs float32 CPU tensors and a built kernel (see dpp.kernels)")
    if not temperature > 0:
        raise DPPError(f"temperature must be > 0 (got {temperature})")
    if noise_scale < 0:
        raise DPPError(f"noise_scale must be >= 0 (got {noise_scale})")
    dims = kernel_dims(tuple(logits.shape), weight.numel(), k, real_slots, block)
    return masked_weight(weight, logits, dims, float(temperature), float(noise_scale), int(seed))
