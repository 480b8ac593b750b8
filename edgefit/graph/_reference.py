"""Reference architectures behind the published measurements (MLPerf Inference, MLPerf Tiny, AI
Hub).

A published point names the model it measured (``resnet50-v1.5``, ``ds-cnn-kws`` …); to hold the
estimator against it, edgefit needs that model's *shape*: its operators, their sizes and their
order. Weights do not matter for a latency estimate, so nothing is downloaded: each reference is
the architecture with seeded random weights. The MLPerf Tiny models and MobileNet-v2 are the
built-in examples (:mod:`edgefit.examples`); ResNet-50 v1.5 is written out here and MobileNet-v3
and EfficientNet-B0 in :mod:`edgefit.graph._reference_mobile`, as torchvision lays them out.

The registry (:data:`REFERENCES`) is plain data and importing this module stays light; torch loads
when a model is built.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit.errors import EdgefitError
from edgefit.examples import get_example
from edgefit.graph import _reference_mobile as mobile
from edgefit.graph import load_graph
from edgefit.graph._torch import export_torch

if TYPE_CHECKING:
    import torch
    from torch import nn

    from edgefit.examples import _layers as ex_layers
    from edgefit.examples import _tiny as ex_tiny
    from edgefit.examples import _vision as ex_vision
    from edgefit.graph import Graph
else:
    torch, nn = lazy_import("torch", "torch.nn")
    ex_layers, ex_tiny, ex_vision = lazy_import(
        "edgefit.examples._layers", "edgefit.examples._tiny", "edgefit.examples._vision"
    )


@dataclass(frozen=True)
class Reference:
    """One reference model: what it is, its batch-1 input, and how to build it."""

    name: str
    description: str
    input_shape: tuple[int, ...]
    build: Callable[[], nn.Module]


def _example(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        return get_example(name).build(pretrained=False, seed=0)

    return build


def _seeded(factory: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return factory().eval()


def _resnet50() -> nn.Module:
    return _seeded(ResNet50)


def _mobile(name: str) -> Callable[[], nn.Module]:
    def build() -> nn.Module:
        factory = {
            "large": lambda: mobile.MobileNetV3("large"),
            "small": lambda: mobile.MobileNetV3("small"),
            "b0": mobile.EfficientNetB0,
        }[name]
        return _seeded(factory)

    return build


def _mbv2_035(classes: int) -> Callable[[], nn.Module]:
    """MobileNet-v2 at width 0.35 (torchvision channel rounding, last conv kept at 1280) with a
    ``classes``-way head: the width variant the Himax WE2 model zoo names."""

    def build() -> nn.Module:
        return _seeded(lambda: ex_vision.MobileNetV2(0.35, num_classes=classes))

    return build


def _yamnet() -> nn.Module:
    """MobileNet-v1 at width 1.0 with a one-channel stem (the examples' MobileNetV1 tops out at
    0.25)."""
    conv_bn_act = ex_layers.ConvBNAct
    layers: list[nn.Module] = [conv_bn_act(1, 32, 3, 2)]
    c_in = 32
    for c_out, stride in ex_tiny._MBV1:
        layers += [conv_bn_act(c_in, c_in, 3, stride, groups=c_in), conv_bn_act(c_in, c_out, 1)]
        c_in = c_out
    return ex_layers.init_weights(
        nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, 521))
    )


REFERENCES: dict[str, Reference] = {
    r.name: r
    for r in (
        Reference(
            "resnet50-v1.5",
            "ResNet-50 v1.5 (MLPerf Inference image classification; stride on the 3x3 "
            "conv), ImageNet 224x224, 25.6 M params, 4.1 GMACs",
            (1, 3, 224, 224),
            _resnet50,
        ),
        Reference(
            "mobilenet-v2",
            "MobileNet-v2 1.0, ImageNet 224x224 (AI Hub mobilenet_v2); edgefit example "
            "'mobilenetv2'",
            (1, 3, 224, 224),
            _example("mobilenetv2"),
        ),
        Reference(
            "mobilenet-v3-large",
            "MobileNet-v3-Large 1.0, ImageNet 224x224 (AI Hub mobilenet_v3_large), torchvision "
            "layout, 5.5 M params, 219 M MACs",
            (1, 3, 224, 224),
            _mobile("large"),
        ),
        Reference(
            "mobilenet-v3-small",
            "MobileNet-v3-Small 1.0, ImageNet 224x224 (AI Hub mobilenet_v3_small), torchvision "
            "layout, 2.5 M params, 56 M MACs",
            (1, 3, 224, 224),
            _mobile("small"),
        ),
        Reference(
            "efficientnet-b0",
            "EfficientNet-B0, ImageNet 224x224, torchvision layout, 5.3 M params, 390 M MACs",
            (1, 3, 224, 224),
            _mobile("b0"),
        ),
        *(
            Reference(
                f"mobilenet-v2-0.35-{size}",
                f"MobileNet-v2 0.35 at {size}x{size}, {classes} classes (Seeed SSCMA model zoo "
                f"on Himax WE2: {what}); standard inverted residuals, not SSCMA's 'Rep' form",
                (1, 3, size, size),
                _mbv2_035(classes),
            )
            for size, classes, what in (
                (96, 2, "person"),
                (64, 2, "person"),
                (32, 10, "CIFAR-10"),
            )
        ),
        Reference(
            "ds-cnn-kws",
            "MLPerf Tiny keyword spotting DS-CNN, 49x10 MFCC; edgefit example 'ds-cnn-kws'",
            (1, 1, 49, 10),
            _example("ds-cnn-kws"),
        ),
        Reference(
            "mobilenet-v1-0.25-vww",
            "MLPerf Tiny visual wake words MobileNet-v1 0.25, 96x96; edgefit "
            "example 'mobilenetv1-vww'",
            (1, 3, 96, 96),
            _example("mobilenetv1-vww"),
        ),
        Reference(
            "resnet8-cifar",
            "MLPerf Tiny image classification ResNet-8, CIFAR-10 32x32; edgefit example "
            "'resnet8-cifar'",
            (1, 3, 32, 32),
            _example("resnet8-cifar"),
        ),
        Reference(
            "retinanet-resnext50-800",
            "MLPerf Inference RetinaNet: ResNeXt50-32x4d FPN (P3-P7, LastLevelP6P7), "
            "9 anchors, 264 OpenImages classes, 800x800; post-processing (box decoding, NMS) not "
            "included",
            (1, 3, 800, 800),
            lambda: _seeded(RetinaNet),
        ),
        Reference(
            "yamnet",
            "YAMNet audio event classifier: MobileNet-v1 1.0 on one 96x64 log-mel patch, 521 "
            "classes, ~69 M MACs (AI Hub yamnet)",
            (1, 1, 96, 64),
            lambda: _seeded(_yamnet),
        ),
        Reference(
            "fc-autoencoder",
            "MLPerf Tiny anomaly detection FC autoencoder, 640 features; edgefit example "
            "'fc-autoencoder'",
            (1, 640),
            _example("fc-autoencoder"),
        ),
    )
}


def reference_names() -> tuple[str, ...]:
    """Every reference model a published point may name.

    >>> "resnet50-v1.5" in reference_names()
    True
    """
    return tuple(REFERENCES)


def build_reference(name: str) -> nn.Module:
    """The reference model ``name`` in eval mode, with seeded random weights."""

    if name not in REFERENCES:
        raise EdgefitError(
            f"unknown reference model '{name}'", fix=f"use one of {', '.join(REFERENCES)}"
        )
    return REFERENCES[name].build().eval()


def reference_graph(name: str) -> Graph:
    """The Graph of reference model ``name`` at batch 1, its ONNX export cached in the user cache
    (ResNet-50 takes tens of seconds to export; a fidelity run should pay that once)."""
    if name not in REFERENCES:
        build_reference(name)  # raises the clear error
    ref = REFERENCES[name]
    key = json.dumps(
        {"reference": name, "shape": ref.input_shape, "torch": torch.__version__}, sort_keys=True
    )
    path = (
        user_cache_dir()
        / "onnx"
        / f"reference-{name}-{hashlib.sha256(key.encode()).hexdigest()[:16]}.onnx"
    )
    if not path.exists():
        write_atomic(
            path, export_torch(build_reference(name), ref.input_shape).SerializeToString()
        )
    return load_graph(onnx.load(str(path)), source=f"reference:{name}")


# --- ResNet-50 v1.5 and ResNeXt-50 (torchvision layout), written out so no torchvision is needed -
def _bottleneck_cls():
    class Bottleneck(nn.Module):
        """1x1 reduce, 3x3 (stride here: v1.5; grouped in ResNeXt), 1x1 expand to ``planes`` x4,
        residual; projection when shapes change."""

        def __init__(
            self, c_in: int, planes: int, stride: int, groups: int = 1, width: int | None = None
        ) -> None:
            super().__init__()
            c_out, width = planes * 4, width or planes
            self.body = nn.Sequential(
                nn.Conv2d(c_in, width, 1, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(inplace=True),
                nn.Conv2d(width, c_out, 1, bias=False),
                nn.BatchNorm2d(c_out),
            )
            self.short = (
                nn.Identity()
                if stride == 1 and c_in == c_out
                else nn.Sequential(
                    nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
                )
            )
            self.act = nn.ReLU(inplace=True)

        def forward(self, x):
            return self.act(self.body(x) + self.short(x))

    return Bottleneck


def ResNet50(num_classes: int = 1000) -> nn.Module:  # noqa: N802 (a class-like factory)
    """ResNet-50 v1.5: 7x7/2 stem, max-pool, stages of (3, 4, 6, 3) bottlenecks at widths 64-512.

    >>> import torch
    >>> ResNet50()(torch.zeros(1, 3, 64, 64)).shape
    torch.Size([1, 1000])
    """
    bottleneck = _bottleneck_cls()
    layers: list[nn.Module] = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    c_in = 64
    for i, (width, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        for b in range(blocks):
            layers.append(bottleneck(c_in, width, 2 if b == 0 and i > 0 else 1))
            c_in = width * 4
    model = nn.Sequential(
        *layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)
    )
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return model


def _resnext50_stages():
    """ResNeXt-50 32x4d's stem and four stages (groups 32, width 2x the ResNet-50 planes)."""
    bottleneck = _bottleneck_cls()
    stem = nn.Sequential(
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    )
    stages, c_in = [], 64
    for i, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3))):
        layers = []
        for b in range(blocks):
            layers.append(
                bottleneck(c_in, planes, 2 if b == 0 and i > 0 else 1, groups=32, width=planes * 2)
            )
            c_in = planes * 4
        stages.append(nn.Sequential(*layers))
    return stem, nn.ModuleList(stages)


def _retinanet_cls():
    def head(c_out: int) -> nn.Sequential:
        layers: list[nn.Module] = []
        for _ in range(4):
            layers += [nn.Conv2d(256, 256, 3, 1, 1), nn.ReLU(inplace=True)]
        return nn.Sequential(*layers, nn.Conv2d(256, c_out, 3, 1, 1))

    class _RetinaNet(nn.Module):
        """ResNeXt-50 32x4d + FPN on C3-C5 (lateral 1x1, top-down nearest upsampling, 3x3 outputs),
        P6 and P7 by stride-2 3x3 convs from P5, and the shared classification (A x K) and box (A x
        4) heads on P3-P7 (MLPerf Training's single_stage_detector model). Returns the raw head
           outputs."""

        def __init__(self, classes: int = 264, anchors: int = 9) -> None:
            super().__init__()
            self.stem, self.stages = _resnext50_stages()
            self.lateral = nn.ModuleList(nn.Conv2d(c, 256, 1) for c in (512, 1024, 2048))
            self.output = nn.ModuleList(nn.Conv2d(256, 256, 3, 1, 1) for _ in range(3))
            self.p6, self.p7 = nn.Conv2d(256, 256, 3, 2, 1), nn.Conv2d(256, 256, 3, 2, 1)
            self.cls, self.box = head(anchors * classes), head(anchors * 4)

        def forward(self, x):
            x = self.stem(x)
            feats = []
            for i, stage in enumerate(self.stages):
                x = stage(x)
                if i > 0:
                    feats.append(x)
            inner = self.lateral[2](feats[2])
            pyramid = [self.output[2](inner)]
            for level in (1, 0):
                inner = self.lateral[level](feats[level]) + nn.functional.interpolate(
                    inner, size=feats[level].shape[-2:], mode="nearest"
                )
                pyramid.insert(0, self.output[level](inner))
            p6 = self.p6(pyramid[-1])
            pyramid += [p6, self.p7(torch.relu(p6))]
            cls = torch.cat([self.cls(p).flatten(2) for p in pyramid], dim=2)
            box = torch.cat([self.box(p).flatten(2) for p in pyramid], dim=2)
            return cls, box

    return _RetinaNet


def RetinaNet(classes: int = 264) -> nn.Module:  # noqa: N802 (a class-like factory)
    """MLPerf Inference's RetinaNet (ResNeXt-50 32x4d FPN, 264 OpenImages classes).

    >>> import torch
    >>> [t.shape[1] for t in RetinaNet()(torch.zeros(1, 3, 128, 128))]
    [2376, 36]
    """
    return _retinanet_cls()(classes)
