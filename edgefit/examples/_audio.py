"""Hearable-class audio nets: a DS-CNN keyword spotter and a causal TCN speech-enhancement mask
estimator."""

from __future__ import annotations

import torch
from torch import nn

from edgefit.examples._layers import ConvBNAct, activation, init_weights, kept, make_divisible


def _ds_block(channels: int, act: str) -> nn.Sequential:
    """Depthwise 3×3 then pointwise 1×1, channels → channels, so any number of blocks chains."""
    depthwise = ConvBNAct(channels, channels, 3, groups=channels, act=act)
    return nn.Sequential(depthwise, ConvBNAct(channels, channels, 1, act=act))


class DSCNN(nn.Module):
    """DS-CNN-S keyword spotter (Zhang et al. 2017 "Hello Edge"; the MLPerf Tiny KWS reference).

    Input ``(N, 1, T, 10)``: T MFCC frames (49 for 1 s at a 20 ms hop) × 10 coefficients. A 10×4
    stride-2 conv, four depthwise-separable blocks of 64 channels, global average pool, 12 classes.
    The stem pads (5, 1) symmetrically where TensorFlow pads 'same' asymmetrically; the output
    (25×5 at T=49) and the MAC count are the same.

    >>> DSCNN()(torch.zeros(1, 1, 49, 10)).shape
    torch.Size([1, 12])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", num_classes: int = 12
    ) -> None:
        super().__init__()
        c = make_divisible(64 * width)
        self.stem = nn.Sequential(
            nn.Conv2d(1, c, (10, 4), (2, 2), (5, 1), bias=False),
            nn.BatchNorm2d(c),
            activation(act),
            nn.Dropout(0.2),
        )
        self.blocks = nn.Sequential(*(_ds_block(c, act) for _ in range(kept(4, depth))))
        self.head = nn.Sequential(
            nn.Dropout(0.4), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(c, num_classes)
        )
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))


class TCNBlock(nn.Module):
    """Causal residual block: 1×1 expand → dilated causal depthwise conv (k=3) → 1×1 project."""

    def __init__(self, channels: int, hidden: int, dilation: int, act: str) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv1d(channels, hidden, 1, bias=False),
            nn.BatchNorm1d(hidden),
            activation(act),
            nn.ConstantPad1d((2 * dilation, 0), 0.0),  # left pad only: no look-ahead
            nn.Conv1d(hidden, hidden, 3, dilation=dilation, groups=hidden, bias=False),
            nn.BatchNorm1d(hidden),
            activation(act),
            nn.Conv1d(hidden, channels, 1, bias=False),
            nn.BatchNorm1d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(x)


class SpeechEnhanceTCN(nn.Module):
    """Causal TCN mask estimator for single-channel speech enhancement (Conv-TasNet-style blocks).

    Input ``(N, 257, T)``: log-magnitude STFT frames (512-point FFT, 16 kHz, 10 ms hop); output: a
    ``(N, 257, T)`` mask in [0, 1] to multiply the noisy spectrum by. Eight blocks with dilations
    1, 2, 4, 8, 1, 2, 4, 8 see 61 past frames (610 ms). Every conv is causal, so the default T = 1
    is exactly one 10 ms streaming step (a deployed runtime keeps the 2·dilation past frames per
    block as state; here they are the zero padding). About 0.6 M MACs per frame at width 1.

    >>> SpeechEnhanceTCN()(torch.zeros(1, 257, 4)).shape
    torch.Size([1, 257, 4])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, act: str = "relu", bins: int = 257
    ) -> None:
        super().__init__()
        c, h = make_divisible(128 * width), make_divisible(256 * width)
        dilations = (1, 2, 4, 8) * 2
        # depth keeps a prefix of the dilation schedule: fewer blocks, shorter receptive field
        n = kept(len(dilations), depth)
        self.encode = nn.Sequential(
            nn.Conv1d(bins, c, 1, bias=False), nn.BatchNorm1d(c), activation(act)
        )
        self.blocks = nn.Sequential(*(TCNBlock(c, h, d, act) for d in dilations[:n]))
        self.decode = nn.Sequential(nn.Conv1d(c, bins, 1), nn.Sigmoid())
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.blocks(self.encode(x)))
