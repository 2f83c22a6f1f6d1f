"""The models of the experiments.

:data:`MODELS` are plain ``nn.Sequential`` chains that :class:`dpp.qnet.QuantNet` runs:

* ``lenet300``: LeNet-300-100 (784-300-100-10, ReLU), on MNIST-5k.
* ``lenet5``: LeNet-5-Caffe (conv 20@5x5, pool, conv 50@5x5, pool, fc 500, fc 10), on MNIST-5k.
* ``digits``: a tiny conv net for 8x8 digits (conv 16@3x3 pad 1, pool, fc 64, fc 10), for fast tests.

:data:`GRAPH_MODELS` are ordinary ``nn.Module`` s with BatchNorm, residual adds, depthwise convolutions and
global average pooling, run through the graph front end (:mod:`dpp.graph`, :class:`dpp.graph_quant.QuantGraph`):

* ``resnet8``: :class:`ResNet8`, a ResNet for 28x28 inputs: conv 16@3x3 + BN + ReLU, three basic blocks
  (16, 32 and 64 channels, the last two with stride 2 and a 1x1 conv + BN shortcut), global average pool,
  fc 10 (8 weight layers on the main path).
* ``mobilenet``: :class:`MobileNetTiny`, MobileNet-style: conv 16@3x3 + BN + ReLU6, three depthwise-separable
  blocks (depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6; 32, 64, 64 channels, strides 2, 2, 1),
  global average pool, dropout, fc 10.

Both work on any input of at least 4x4 pixels (8x8 digits in the fast tests) and train on MNIST-5k in
minutes on two cores.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dpp.errors import DPPError

MODELS = ("lenet300", "lenet5", "digits")
GRAPH_MODELS = ("resnet8", "mobilenet")
DATASET_OF = {
    "lenet300": "mnist5k",
    "lenet5": "mnist5k",
    "digits": "digits",
    "resnet8": "mnist5k",
    "mobilenet": "mnist5k",
}


class BasicBlock(nn.Module):
    """Two 3x3 conv + BN with a ReLU between, plus the input (or its 1x1 conv + BN when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet8(nn.Module):
    """ResNet-8 (see the module docstring); ``width`` channels in the first stage."""

    def __init__(self, in_channels: int = 1, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.layer1 = BasicBlock(width, width, 1)
        self.layer2 = BasicBlock(width, 2 * width, 2)
        self.layer3 = BasicBlock(2 * width, 4 * width, 2)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(4 * width, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    """A depthwise-separable block: depthwise 3x3 + BN + ReLU6, pointwise 1x1 + BN + ReLU6."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class MobileNetTiny(nn.Module):
    """MobileNet-style (see the module docstring); ``width`` channels after the first conv."""

    def __init__(self, in_channels: int = 1, classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU6(),
            separable(width, 2 * width, 2),
            separable(2 * width, 4 * width, 2),
            separable(4 * width, 4 * width, 1),
        )
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(0.1), nn.Linear(4 * width, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def build_model(name: str, seed: int) -> nn.Module:
    """A freshly initialised model, its weights drawn under ``torch.manual_seed(seed)`` (restored after).

    :data:`MODELS` give an ``nn.Sequential``; :data:`GRAPH_MODELS` a module for :mod:`dpp.graph`.
    """
    if name not in MODELS + GRAPH_MODELS:
        raise DPPError(f"model must be one of {MODELS + GRAPH_MODELS} (got {name!r})")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        if name == "resnet8":
            return ResNet8()
        if name == "mobilenet":
            return MobileNetTiny()
        if name == "lenet300":
            return nn.Sequential(
                nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10)
            )
        if name == "lenet5":
            return nn.Sequential(
                nn.Conv2d(1, 20, 5),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(20, 50, 5),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(800, 500),
                nn.ReLU(),
                nn.Linear(500, 10),
            )
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(256, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )
