"""Dynamic Probabilistic Pruning (exact k-of-n sparsity) and its hardware co-design.

The format (:mod:`dpp.kofn`) and the integer reference model (:mod:`dpp.reference`) are the contract every
other part meets. Training helpers (which import torch) are loaded lazily on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"
