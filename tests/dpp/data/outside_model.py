"""A classifier written outside this project, the way its author would: only torch, its own nn.Module with
nested nn.Sequentials, BatchNorm, an overlapping max-pool, dropout and ``x.view(x.size(0), -1)`` in forward.

``make_model(image_size)`` is the factory (``outside_model.py:make_model``); images are 1-channel squares.
"""

import torch
from torch import nn


class SmallNet(nn.Module):
    def __init__(self, image_size: int = 28, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Sequential(nn.Conv2d(1, 8, kernel_size=3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True)),
            nn.Sequential(
                nn.Conv2d(8, 16, kernel_size=3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True)
            ),
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
        )
        side = (image_size + 1) // 2
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.2),
            nn.Linear(16 * side * side, 32),
            nn.ReLU(inplace=True),
            nn.Linear(32, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = x.view(x.size(0), -1)
        return self.classifier(x)


def make_model(image_size: int = 28) -> nn.Module:
    return SmallNet(image_size)
