"""ImageNet reference architectures, written here to match torchvision (which edgefit does not
need).

At width 1, depth 1 and 224×224 they reproduce torchvision's parameter counts exactly: ResNet-18
11,689,512 and MobileNetV2 3,504,872. The knobs shrink them the way the papers do: ``width`` scales
every channel count (multiples of 8), ``depth`` drops the repeated blocks of each stage — never the
first, which changes stride and channels — so every kept subset is a valid net.
"""

from __future__ import annotations

import torch
from torch import nn

from edgefit.examples._layers import ConvBNAct, activation, init_weights, kept, make_divisible


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN pairs with an identity (or 1×1 projection) shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: str) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.act1 = activation(act)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.act2 = activation(act)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.act2(out + self.downsample(x))


class ResNet18(nn.Module):
    """ResNet-18 (He et al. 2016), torchvision layout: stem, four stages of two BasicBlocks, GAP,
    FC.

    >>> m = ResNet18()
    >>> sum(p.numel() for p in m.parameters())
    11689512
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", num_classes: int = 1000
    ) -> None:
        super().__init__()
        chans = [make_divisible(c * width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(3, chans[0], 7, 2, 3, bias=False),
            nn.BatchNorm2d(chans[0]),
            activation(act),
            nn.MaxPool2d(3, 2, 1),
        )
        stages, c_in = [], chans[0]
        for i, c_out in enumerate(chans):
            blocks = []
            for b in range(kept(2, depth)):  # the first block of stages 2-4 halves the resolution
                blocks.append(BasicBlock(c_in, c_out, 2 if i and b == 0 else 1, act))
                c_in = c_out
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.stem(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1×1 expand → 3×3 depthwise → 1×1 linear projection, residual when shapes
    match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, act: str) -> None:
        super().__init__()
        hidden = c_in * expand
        layers: list[nn.Module] = [ConvBNAct(c_in, hidden, 1, act=act)] if expand != 1 else []
        layers += [
            ConvBNAct(hidden, hidden, 3, stride, groups=hidden, act=act),
            ConvBNAct(hidden, c_out, 1, act=None),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expansion t, channels c, repeats n, first stride s), Sandler et al. 2018, Table 2
_MBV2_SETTING = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018), torchvision layout; depthwise-heavy on purpose.

    >>> m = MobileNetV2()
    >>> sum(p.numel() for p in m.parameters())
    3504872
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu6", num_classes: int = 1000
    ) -> None:
        super().__init__()
        c_in = make_divisible(32 * width)
        last = make_divisible(1280 * max(1.0, width))
        layers: list[nn.Module] = [ConvBNAct(3, c_in, 3, 2, act=act)]
        for t, c, n, s in _MBV2_SETTING:
            c_out = make_divisible(c * width)
            for b in range(kept(n, depth)):
                layers.append(InvertedResidual(c_in, c_out, s if b == 0 else 1, t, act))
                c_in = c_out
        layers.append(ConvBNAct(c_in, last, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(last, num_classes))
        init_weights(self, linear_std=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))
