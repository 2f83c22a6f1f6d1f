"""The models of the experiments, as plain ``nn.Sequential`` chains that :class:`dpp.qnet.QuantNet` runs.

* ``lenet300``: LeNet-300-100 (784-300-100-10, ReLU), on MNIST-5k.
* ``lenet5``: LeNet-5-Caffe (conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc 10), on MNIST-5k.
* ``digits``: a tiny conv net for 8x8 digits (conv 16@3x3 pad 1, pool, fc 64, fc 10), for fast tests.
"""

from __future__ import annotations

import torch
from torch import nn
from dpp.errors import DPPError

MODELS = ("lenet300", "lenet5", "digits")
DATASET_OF = {"lenet300": "mnist5k", "lenet5": "mnist5k", "digits": "digits"}


def build_model(name: str, seed: int) -> nn.Sequential:
    """A freshly initialised model, its weights drawn under ``torch.manual_seed(seed)`` (restored after)."""
    if name not in MODELS:
        raise DPPError(f"model must be one of {MODELS} (got {name!r})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if name == "lenet300":
            return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(),
                                 nn.Linear(100, 10))
        if name == "lenet5":
            return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(20, 50, 5), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
        return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(256, 64), nn.ReLU(), nn.Linear(64, 10))
