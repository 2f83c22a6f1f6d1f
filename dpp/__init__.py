"""Dynamic Probabilistic Pruning (exact k-of-n sparsity) and its hardware co-design.

The format (:mod:`dpp.kofn`) and the integer reference model (:mod:`dpp.reference`) are the contract every
other part meets. Training helpers (which import torch) are loaded lazily on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "sparsify": "dpp.parametrize",
    "make_permanent": "dpp.parametrize",
    "remove_masks": "dpp.parametrize",
    "QuantNet": "dpp.qnet",
    "IntNetwork": "dpp.network",
    "TrainConfig": "dpp.train",
}


def __getattr__(name: str):
    """Import the torch-based training API (``dpp.parametrize`` etc.) only when first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'dpp' has no attribute {name!r}")
