"""MLPerf Tiny reference architectures (Banbury et al., "MLPerf Tiny Benchmark", NeurIPS 2021):
MobileNetV1-0.25 visual wake words, ResNet-8 CIFAR-10 image classification, FC autoencoder anomaly
detection. Architecture only (random weights)."""

from __future__ import annotations

import torch
from torch import nn

from edgefit.examples._layers import ConvBNAct, activation, init_weights, kept, make_divisible

# MobileNetV1 (Howard et al. 2017): (output channels at width 1.0, stride) of the 13 separable
# blocks
_MBV1 = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


class MobileNetV1(nn.Module):
    """MobileNetV1 at width ``0.25 × width`` (MLPerf Tiny VWW: 96×96 RGB, person / no person).

    >>> m = MobileNetV1()
    >>> m(torch.zeros(1, 3, 96, 96)).shape
    torch.Size([1, 2])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", num_classes: int = 2
    ) -> None:
        super().__init__()
        alpha = 0.25 * width
        c_in = make_divisible(32 * alpha)
        layers: list[nn.Module] = [ConvBNAct(3, c_in, 3, 2, act=act)]
        repeated = [i for i, (c, s) in enumerate(_MBV1) if c == 512 and s == 1]
        keep = set(repeated[: kept(len(repeated), depth)])
        for i, (c, s) in enumerate(_MBV1):
            if i in repeated and i not in keep:
                continue
            c_out = make_divisible(c * alpha)
            layers += [
                ConvBNAct(c_in, c_in, 3, s, groups=c_in, act=act),
                ConvBNAct(c_in, c_out, 1, act=act),
            ]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


class _ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: str) -> None:
        super().__init__()
        self.body = nn.Sequential(
            ConvBNAct(c_in, c_out, 3, stride, act=act), ConvBNAct(c_out, c_out, 3, act=None)
        )
        self.short: nn.Module = (
            nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)
        )
        self.act = activation(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.body(x) + self.short(x))


class ResNet8(nn.Module):
    """MLPerf Tiny image classification ResNet-8: a 16-channel stem and three residual stages (16,
    32, 64 channels), CIFAR-10 32×32.

    >>> ResNet8()(torch.zeros(1, 3, 32, 32)).shape
    torch.Size([1, 10])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", num_classes: int = 10
    ) -> None:
        super().__init__()
        chans = [make_divisible(c * width) for c in (16, 32, 64)]
        self.stem = ConvBNAct(3, chans[0], 3, act=act)
        stages, c_in = [], chans[0]
        for i, c in enumerate(chans[: kept(3, depth)]):  # depth drops whole stages from the end
            stages.append(_ResBlock(c_in, c, 1 if i == 0 else 2, act))
            c_in = c
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.pool(self.stages(self.stem(x))), 1))


class FCAutoencoder(nn.Module):
    """MLPerf Tiny anomaly detection autoencoder (ToyADMOS): 640 log-mel features (5 frames × 128)
    → 4 × Dense(128) → Dense(8) → 4 × Dense(128) → 640, each hidden layer with BatchNorm and ReLU.

    >>> FCAutoencoder().eval()(torch.zeros(1, 640)).shape  # eval: BatchNorm on a batch of one
    torch.Size([1, 640])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", features: int = 640
    ) -> None:
        super().__init__()
        hidden, n = make_divisible(128 * width), kept(4, depth)

        def dense(c_in: int, c_out: int) -> list[nn.Module]:
            return [nn.Linear(c_in, c_out), nn.BatchNorm1d(c_out), activation(act)]

        layers: list[nn.Module] = dense(features, hidden)
        for _ in range(n - 1):
            layers += dense(hidden, hidden)
        layers += dense(hidden, 8) + dense(8, hidden)
        for _ in range(n - 1):
            layers += dense(hidden, hidden)
        layers.append(nn.Linear(hidden, features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
