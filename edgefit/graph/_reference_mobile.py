"""MobileNet-v3 (Large, Small) and EfficientNet-B0, the mobile-NPU reference architectures,
written out as torchvision lays them out (no torchvision needed, nothing downloaded).

A published point (Qualcomm AI Hub's ``mobilenet_v3_large`` …) measured one of these models; the
estimate is held against it on the model's exact layer shapes, so channel counts, kernel sizes,
squeeze-excitation widths and activations follow torchvision's ``mobilenetv3.py`` and
``efficientnet.py`` (parameter counts equal torchvision's: 5,483,032 / 2,542,856 / 5,288,548).
Torch loads only when a model is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    from torch import nn

    from edgefit.examples import _layers as ex_layers
else:
    nn, ex_layers = lazy_import("torch.nn", "edgefit.examples._layers")

# (kernel, expanded, out, squeeze-excite, activation, stride): Howard et al. 2019, Tables 1 and 2
_V3_LARGE = (
    (3, 16, 16, False, "relu", 1), (3, 64, 24, False, "relu", 2),
    (3, 72, 24, False, "relu", 1), (5, 72, 40, True, "relu", 2),
    (5, 120, 40, True, "relu", 1), (5, 120, 40, True, "relu", 1),
    (3, 240, 80, False, "hardswish", 2), (3, 200, 80, False, "hardswish", 1),
    (3, 184, 80, False, "hardswish", 1), (3, 184, 80, False, "hardswish", 1),
    (3, 480, 112, True, "hardswish", 1), (3, 672, 112, True, "hardswish", 1),
    (5, 672, 160, True, "hardswish", 2), (5, 960, 160, True, "hardswish", 1),
    (5, 960, 160, True, "hardswish", 1),
)  # fmt: skip
_V3_SMALL = (
    (3, 16, 16, True, "relu", 2), (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1), (5, 96, 40, True, "hardswish", 2),
    (5, 240, 40, True, "hardswish", 1), (5, 240, 40, True, "hardswish", 1),
    (5, 120, 48, True, "hardswish", 1), (5, 144, 48, True, "hardswish", 1),
    (5, 288, 96, True, "hardswish", 2), (5, 576, 96, True, "hardswish", 1),
    (5, 576, 96, True, "hardswish", 1),
)  # fmt: skip
# (expansion, kernel, stride, in, out, repeats): Tan & Le 2019, Table 1 (EfficientNet-B0)
_B0 = (
    (1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1),
)  # fmt: skip


def _blocks():
    """The block classes, defined on first use: importing this module does not load torch."""

    class SqueezeExcite(nn.Module):
        """Global pool, 1x1 reduce (bias), act, 1x1 expand (bias), gate, rescale the input."""

        def __init__(self, c: int, squeeze: int, act: str, gate: str) -> None:
            super().__init__()
            self.fc1, self.fc2 = nn.Conv2d(c, squeeze, 1), nn.Conv2d(squeeze, c, 1)
            self.act = ex_layers.activation(act)
            self.gate = nn.Hardsigmoid() if gate == "hardsigmoid" else nn.Sigmoid()

        def forward(self, x):
            s = nn.functional.adaptive_avg_pool2d(x, 1)
            return x * self.gate(self.fc2(self.act(self.fc1(s))))

    class MBConv(nn.Module):
        """Expand 1x1 (when the width changes), depthwise kxk, optional SE, project 1x1 (linear);
        residual when the shape is kept."""

        def __init__(
            self,
            c_in: int,
            hidden: int,
            c_out: int,
            kernel: int,
            stride: int,
            act: str,
            se: SqueezeExcite | None,
        ) -> None:
            super().__init__()
            layers: list[nn.Module] = []
            if hidden != c_in:
                layers.append(ex_layers.ConvBNAct(c_in, hidden, 1, act=act))
            layers.append(
                ex_layers.ConvBNAct(hidden, hidden, kernel, stride, groups=hidden, act=act)
            )
            if se is not None:
                layers.append(se)
            layers.append(ex_layers.ConvBNAct(hidden, c_out, 1, act=None))
            self.block = nn.Sequential(*layers)
            self.residual = stride == 1 and c_in == c_out

        def forward(self, x):
            return x + self.block(x) if self.residual else self.block(x)

    return SqueezeExcite, MBConv


def MobileNetV3(variant: str = "large", num_classes: int = 1000) -> nn.Module:  # noqa: N802
    """MobileNet-v3 Large or Small at width 1.0 (torchvision layout: SE squeeze = expanded / 4
    rounded to 8, hard-sigmoid gate; head 960 → 1280 (Large) or 576 → 1024 (Small)).

    >>> sum(p.numel() for p in MobileNetV3("large").parameters())
    5483032
    """
    se_cls, mbconv = _blocks()
    setting, head = (_V3_LARGE, 1280) if variant == "large" else (_V3_SMALL, 1024)
    layers: list[nn.Module] = [ex_layers.ConvBNAct(3, 16, 3, 2, act="hardswish")]
    c_in = 16
    for kernel, hidden, c_out, se, act, stride in setting:
        squeeze = (
            se_cls(hidden, ex_layers.make_divisible(hidden // 4), "relu", "hardsigmoid")
            if se
            else None
        )
        layers.append(mbconv(c_in, hidden, c_out, kernel, stride, act, squeeze))
        c_in = c_out
    last = 6 * c_in
    layers.append(ex_layers.ConvBNAct(c_in, last, 1, act="hardswish"))
    model = nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(last, head),
        nn.Hardswish(),
        nn.Dropout(0.2),
        nn.Linear(head, num_classes),
    )
    return ex_layers.init_weights(model, linear_std=0.01)


def EfficientNetB0(num_classes: int = 1000) -> nn.Module:  # noqa: N802 (a class-like factory)
    """EfficientNet-B0 (torchvision layout: SiLU, SE squeeze = block input / 4, sigmoid gate;
    stochastic depth is a training-time identity and left out).

    >>> sum(p.numel() for p in EfficientNetB0().parameters())
    5288548
    """
    se_cls, mbconv = _blocks()
    layers: list[nn.Module] = [ex_layers.ConvBNAct(3, 32, 3, 2, act="silu")]
    for expand, kernel, stride, c_in, c_out, repeats in _B0:
        for b in range(repeats):
            width = c_in if b == 0 else c_out
            squeeze = se_cls(width * expand, max(1, width // 4), "silu", "sigmoid")
            layers.append(
                mbconv(
                    width, width * expand, c_out, kernel, stride if b == 0 else 1, "silu", squeeze
                )
            )
    layers.append(ex_layers.ConvBNAct(320, 1280, 1, act="silu"))
    model = nn.Sequential(
        *layers,
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(1280, num_classes),
    )
    return ex_layers.init_weights(model)
