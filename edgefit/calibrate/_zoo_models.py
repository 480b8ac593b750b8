"""The fidelity zoo's architectures, in plain ``torch.nn`` (no torchvision, no downloads).

Each class is a small, faithful sketch of a family the estimator must generalize to: the operators,
their arrangement and their shapes matter for latency; the weights (seeded, random) do not. Sizes
are parameters, so one class yields several members of different width, depth and input size.
This module imports torch at import time: load it only where the zoo is built.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(
    cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: type | None = nn.ReLU
):
    layers = [
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    return nn.Sequential(*layers, act()) if act else nn.Sequential(*layers)


class VGG(nn.Module):
    """Plain 3×3 conv stacks with max-pooling between stages, global average pool, one FC."""

    def __init__(
        self, cin: int, widths: tuple[int, ...], convs_per_stage: int, classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for w in widths:
            for _ in range(convs_per_stage):
                layers.append(conv_bn(cin, w))
                cin = w
            layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

    def forward(self, x):
        return self.head(self.features(x))


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, squeezed: int, act: type, gate: type) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce, self.expand = nn.Conv2d(c, squeezed, 1), nn.Conv2d(squeezed, c, 1)
        self.act, self.gate = act(), gate()

    def forward(self, x):
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand, k×k depthwise, squeeze-excite, 1×1 project, residual when
    shapes allow."""

    def __init__(
        self, cin: int, cout: int, expand: int, k: int, stride: int, act: type, gate: type
    ) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = conv_bn(cin, mid, 1, act=act) if expand != 1 else nn.Identity()
        self.dw = conv_bn(mid, mid, k, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid, max(8, cin // 4), act, gate)
        self.project = conv_bn(mid, cout, 1, act=None)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        y = self.project(self.se(self.dw(self.expand(x))))
        return x + y if self.residual else y


class MBNet(nn.Module):
    """EfficientNet-like (SiLU, sigmoid SE), MobileNetV3-like (Hardswish, hard-sigmoid SE) or
    MCU-style (ReLU, sigmoid SE: every op has an int8 TFLite kernel) MBConv network.

    Stages are ``(cout, expand, k, stride, repeats)``; stem conv /2, 1×1 head conv, global pool,
    FC.
    """

    def __init__(
        self,
        stem: int,
        stages: tuple[tuple[int, int, int, int, int], ...],
        head: int,
        style: str,
        classes: int = 10,
    ) -> None:
        super().__init__()
        act, gate = {
            "efficientnet": (nn.SiLU, nn.Sigmoid),
            "mobilenetv3": (nn.Hardswish, nn.Hardsigmoid),
            "relu": (nn.ReLU, nn.Sigmoid),
        }[style]
        blocks: list[nn.Module] = [conv_bn(3, stem, 3, 2, act=act)]
        cin = stem
        for cout, expand, k, stride, repeats in stages:
            for i in range(repeats):
                blocks.append(MBConv(cin, cout, expand, k, stride if i == 0 else 1, act, gate))
                cin = cout
        blocks.append(conv_bn(cin, head, 1, act=act))
        self.features = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(head, classes))

    def forward(self, x):
        return self.head(self.features(x))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), conv_bn(cout, cout, 3, act=None))
        self.short = (
            conv_bn(cin, cout, 1, stride, act=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class Bottleneck(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        mid = cout // 4
        self.body = nn.Sequential(
            conv_bn(cin, mid, 1), conv_bn(mid, mid, 3, stride), conv_bn(mid, cout, 1, act=None)
        )
        self.short = (
            conv_bn(cin, cout, 1, stride, act=None)
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


class ResNet(nn.Module):
    """ResNet with basic or bottleneck blocks; ``depths[i]`` blocks of width ``widths[i]``, stride
    2 between."""

    def __init__(
        self,
        block: str,
        stem: int,
        widths: tuple[int, ...],
        depths: tuple[int, ...],
        stem_pool: bool,
        classes: int = 10,
    ) -> None:
        super().__init__()
        block_type = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
        layers: list[nn.Module] = [conv_bn(3, stem, 3)] + ([nn.MaxPool2d(2)] if stem_pool else [])
        cin = stem
        for i, (w, d) in enumerate(zip(widths, depths)):
            for j in range(d):
                layers.append(block_type(cin, w, 2 if i > 0 and j == 0 else 1))
                cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, classes))

    def forward(self, x):
        return self.head(self.features(x))


class UNet(nn.Module):
    """Encoder (conv pairs + max-pool), decoder (ConvTranspose ×2 upsampling, Concat with the skip,
    conv pair)."""

    def __init__(self, cin: int, base: int, depth: int, classes: int = 2) -> None:
        super().__init__()
        widths = [base * 2**i for i in range(depth + 1)]
        self.down = nn.ModuleList()
        for w in widths:
            self.down.append(nn.Sequential(conv_bn(cin, w), conv_bn(w, w)))
            cin = w
        self.up = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, 2) for w in reversed(widths[:-1]))
        self.merge = nn.ModuleList(
            nn.Sequential(conv_bn(w * 2, w), conv_bn(w, w)) for w in reversed(widths[:-1])
        )
        self.pool, self.out = nn.MaxPool2d(2), nn.Conv2d(base, classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(self.pool(x) if i else x)
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = merge(torch.cat([up(x), skip], dim=1))
        return self.out(x)


class TCN(nn.Module):
    """Temporal conv net (Bai et al. 2018): residual blocks of two dilated Conv1d, ReLU after the
    residual add, dilation doubling per block, classifier on the last time step."""

    def __init__(
        self, cin: int, channels: int, dilations: tuple[int, ...], k: int = 3, classes: int = 10
    ) -> None:
        super().__init__()
        self.inp = nn.Conv1d(cin, channels, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(channels, channels, k, padding=d * (k - 1) // 2, dilation=d),
                nn.ReLU(),
                nn.Conv1d(channels, channels, k, padding=d * (k - 1) // 2, dilation=d),
                nn.ReLU(),
            )
            for d in dilations
        )
        self.relus = nn.ModuleList(nn.ReLU() for _ in dilations)
        self.head = nn.Linear(channels, classes)

    def forward(self, x):
        x = self.inp(x)
        for block, relu in zip(self.blocks, self.relus):
            # torch.add + nn.ReLU: the pattern litert-torch's int8 quantizer fuses (x + y,
            # torch.relu stay float)
            x = relu(torch.add(x, block(x)))
        return self.head(x[:, :, -1])


class Recurrent(nn.Module):
    """GRU or LSTM over ``(1, T, F)``, classifier on the last step (a sensor / audio sequence
    model)."""

    def __init__(
        self, cell: str, features: int, hidden: int, layers: int, classes: int = 10
    ) -> None:
        super().__init__()
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(
            features, hidden, layers, batch_first=True
        )
        self.head = nn.Linear(hidden, classes)

    def forward(self, x):
        return self.head(self.rnn(x)[0][:, -1])


def mlp(sizes: tuple[int, ...]) -> nn.Sequential:
    """Linear + ReLU stack (no activation after the last layer)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(sizes) - 2 else [])
    return nn.Sequential(*layers)


class MixerBlock(nn.Module):
    def __init__(
        self, tokens: int, dim: int, token_hidden: int, channel_hidden: int, mcu: bool
    ) -> None:
        super().__init__()
        norm, act = (nn.Identity, nn.ReLU) if mcu else (nn.LayerNorm, nn.GELU)
        self.norm1, self.norm2 = norm(dim), norm(dim)
        self.tokens = nn.Sequential(
            nn.Linear(tokens, token_hidden), act(), nn.Linear(token_hidden, tokens)
        )
        self.channels = nn.Sequential(
            nn.Linear(dim, channel_hidden), act(), nn.Linear(channel_hidden, dim)
        )

    def forward(self, x):  # x: (1, tokens, dim)
        x = x + self.tokens(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channels(self.norm2(x))


class Mixer(nn.Module):
    """MLP-Mixer: patch embedding (strided conv), token-mixing and channel-mixing MLPs, mean over
    tokens, FC.

    ``mcu=True`` drops LayerNorm and uses ReLU for GELU, as MCU deployments do: litert-torch's int8
    quantizer leaves LayerNorm and GELU in float, which Ethos-U runs on the CPU. (It still leaves
    the 3-D FullyConnected outputs and residual Adds in float: about 20% of the ops fall back.)
    """

    def __init__(
        self,
        image: int,
        patch: int,
        dim: int,
        depth: int,
        token_hidden: int,
        channel_hidden: int,
        mcu: bool = False,
        classes: int = 10,
    ) -> None:
        super().__init__()
        tokens = (image // patch) ** 2
        self.embed = nn.Conv2d(3, dim, patch, patch)
        self.blocks = nn.Sequential(
            *(MixerBlock(tokens, dim, token_hidden, channel_hidden, mcu) for _ in range(depth))
        )
        self.norm, self.head = (
            (nn.Identity() if mcu else nn.LayerNorm(dim)),
            nn.Linear(dim, classes),
        )

    def forward(self, x):
        x = self.embed(x).flatten(2).transpose(1, 2)
        return self.head(self.norm(self.blocks(x)).mean(dim=1))


class EncoderLayer(nn.Module):
    """BERT-like post-norm layer; attention written as explicit MatMul/Softmax (exports to plain
    ONNX ops)."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ffn = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):  # x: (1, seq, dim)
        b, s, d = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.scale, dim=-1)
        y = torch.matmul(attn, v).transpose(1, 2).reshape(b, s, d)
        x = self.norm1(x + self.out(y))
        return self.norm2(x + self.ffn(x))


class Encoder(nn.Module):
    """Transformer encoder over already-embedded tokens ``(1, seq, dim)`` (token lookup is not the
    cost)."""

    def __init__(self, dim: int, heads: int, layers: int, hidden: int, classes: int = 2) -> None:
        super().__init__()
        self.layers = nn.Sequential(*(EncoderLayer(dim, heads, hidden) for _ in range(layers)))
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        return self.head(self.layers(x)[:, 0])


class DSCNN(nn.Module):
    """Keyword spotting DS-CNN (Zhang et al. 2017) on a 49×10 MFCC map: conv 10×4/2,
    depthwise-separable blocks."""

    def __init__(self, width: int, blocks: int, classes: int = 12) -> None:
        super().__init__()
        layers = [
            nn.Conv2d(1, width, (10, 4), 2, (5, 1), bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
        ]
        for _ in range(blocks):
            layers += [conv_bn(width, width, 3, groups=width), conv_bn(width, width, 1)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, classes))

    def forward(self, x):
        return self.head(self.features(x))


class FCAutoencoder(nn.Module):
    """MLPerf Tiny anomaly-detection style: Linear+BN+ReLU down to a bottleneck and back."""

    def __init__(self, dim: int, hidden: int, bottleneck: int, depth: int) -> None:
        super().__init__()
        sizes = [dim] + [hidden] * depth + [bottleneck] + [hidden] * depth
        layers: list[nn.Module] = []
        for a, b in zip(sizes, sizes[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.body, self.out = nn.Sequential(*layers), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.out(self.body(x))


class ConvAutoencoder(nn.Module):
    """Strided conv encoder; decoder of ConvTranspose ×2 or of nearest ×2 resize + 3×3 conv
    ("resize-conv").

    The resize-conv decoder is the MCU form: litert-torch's int8 quantizer leaves a ConvTranspose
    followed by ReLU in float (Ethos-U would run it on the CPU), while resize + conv + ReLU is int8
    throughout.
    """

    def __init__(self, cin: int, widths: tuple[int, ...], decoder: str = "transpose") -> None:
        super().__init__()
        enc: list[nn.Module] = []
        dec: list[nn.Module] = []
        c = cin
        for w in widths:
            enc += [nn.Conv2d(c, w, 3, 2, 1), nn.ReLU()]
            c = w
        for i, w in enumerate(list(reversed(widths[:-1])) + [cin]):
            up = (
                [nn.ConvTranspose2d(c, w, 4, 2, 1)]
                if decoder == "transpose"
                else [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(c, w, 3, 1, 1)]
            )
            dec += up + [nn.ReLU() if i < len(widths) - 1 else nn.Sigmoid()]
            c = w
        self.enc, self.dec = nn.Sequential(*enc), nn.Sequential(*dec)

    def forward(self, x):
        return self.dec(self.enc(x))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU())
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU())
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, padding=1), nn.ReLU())

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], dim=1)


class SqueezeNet(nn.Module):
    """SqueezeNet 1.1-like: stem conv, Fire modules ``(squeeze, expand)`` with max-pools, conv
    classifier."""

    def __init__(
        self, stem: int, fires: tuple[tuple[int, int] | str, ...], classes: int = 10
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, stem, 3, 2), nn.ReLU(), nn.MaxPool2d(3, 2)]
        c = stem
        for f in fires:
            if isinstance(f, str):  # "pool"
                layers.append(nn.MaxPool2d(3, 2))
            else:
                layers.append(Fire(c, *f))
                c = 2 * f[1]
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv2d(c, classes, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten()
        )

    def forward(self, x):
        return self.head(self.features(x))
