"""Building blocks shared by the example families: knob arithmetic, activations, conv-BN-act."""

from __future__ import annotations

import math

from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "hardswish": nn.Hardswish,
    "silu": nn.SiLU,
    "gelu": nn.GELU,
}


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of ``divisor``, never more than 10 % below ``value``
    (torchvision's ``_make_divisible``, so width 1.0 reproduces the reference channel counts).

    >>> make_divisible(32 * 0.25), make_divisible(1280 * 1.0), make_divisible(20)
    (8, 1280, 24)
    """
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def kept(repeats: int, depth: float) -> int:
    """How many of a stage's ``repeats`` blocks a ``depth`` fraction keeps (at least one).

    >>> kept(2, 1.0), kept(2, 0.5), kept(4, 0.6), kept(3, 0.01)
    (2, 1, 3, 1)
    """
    return max(1, math.ceil(repeats * depth - 1e-9))


def activation(name: str) -> nn.Module:
    """A fresh activation module (one per use site, so hooks and quantizers see each one)."""
    return _ACTIVATIONS[name]()


class ConvBNAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → activation; ``act=None`` leaves the block linear."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: int = 3,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act is not None:
            layers.append(activation(act))
        super().__init__(*layers)


def init_weights(model: nn.Module, linear_std: float | None = None) -> nn.Module:
    """torchvision's initialization: Kaiming-normal (fan-out) convs, unit BatchNorm, and optionally
    N(0, ``linear_std``) linear layers (PyTorch's default linear init otherwise)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear) and linear_std is not None:
            nn.init.normal_(m.weight, 0, linear_std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return model
