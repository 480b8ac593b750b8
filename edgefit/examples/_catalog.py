"""The registered examples: one tiny entry point each. Family modules (which import torch) are
lazy proxies (:func:`edgefit._lazy.lazy_import`): they load only when a model is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import
from edgefit.examples._registry import Knobs, get_example, register_example

if TYPE_CHECKING:
    from torch import nn

    from edgefit.examples import _audio, _digits, _text, _tiny, _vision
else:
    _audio, _digits, _text = lazy_import(
        "edgefit.examples._audio", "edgefit.examples._digits", "edgefit.examples._text"
    )
    _tiny, _vision = lazy_import("edgefit.examples._tiny", "edgefit.examples._vision")


@register_example(
    description="VGG-style dense 3x3 CNN trained on the shipped UCI digits set (8x8 upsampled to "
    "32x32); "
    "~38 M MACs; the built-in trained example (weights for the default knobs)",
    track="vision",
    input_shape=(1, 1, 32, 32),
    num_classes=10,
    resolution_range=(8, 128),
    resolution_axes=(2, 3),
    trained=True,
)
def digits_cnn(knobs: Knobs, pretrained: bool) -> nn.Module:
    # only the default architecture has trained weights; other knobs give a net to fine-tune
    return _digits.build_digits_cnn(
        knobs, pretrained and knobs == get_example("digits-cnn").defaults
    )


@register_example(
    description="ResNet-18 (torchvision layout), ImageNet 224x224, 11.7 M params, 1.8 GMACs; "
    "architecture only",
    track="orin",
    input_shape=(1, 3, 224, 224),
    num_classes=1000,
    resolution_range=(32, 1024),
    resolution_axes=(2, 3),
)
def resnet18(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _vision.ResNet18(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="MobileNetV2 1.0 (torchvision layout), ImageNet 224x224, 3.5 M params, 0.3 GMACs, "
    "depthwise-heavy; architecture only",
    track="glasses",
    input_shape=(1, 3, 224, 224),
    num_classes=1000,
    resolution_range=(32, 1024),
    resolution_axes=(2, 3),
    activation="relu6",
)
def mobilenetv2(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _vision.MobileNetV2(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="DS-CNN-S keyword spotter (Hello Edge / MLPerf Tiny KWS): 49x10 MFCC in, 12 "
    "classes, "
    "~2.7 M MACs; architecture only",
    track="hearable",
    input_shape=(1, 1, 49, 10),
    num_classes=12,
    resolution_range=(10, 1000),
    resolution_axes=(2,),
)
def ds_cnn_kws(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _audio.DSCNN(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="causal TCN speech-enhancement mask estimator on 257-bin STFT frames (16 kHz, 10 "
    "ms hop); "
    "input is one streaming frame, ~0.6 M MACs per frame; architecture only",
    track="hearable",
    input_shape=(1, 257, 1),
    num_classes=None,
    resolution_range=(1, 1000),
    resolution_axes=(2,),
)
def speech_enhance(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _audio.SpeechEnhanceTCN(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="4-layer pre-norm transformer encoder (d_model 256, 4 heads, seq 128, vocab "
    "4096), "
    "4-class text classifier with explicit MatMul/Softmax/LayerNorm; architecture only",
    track="general",
    input_shape=(1, 128),
    num_classes=4,
    resolution_range=(8, 1024),
    resolution_axes=(1,),
    activation="gelu",
    input_dtype="int64",
    input_high=4096,
)
def tiny_transformer(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _text.TinyTransformer(
        knobs.width, knobs.depth, knobs.activation, seq_len=knobs.resolution
    )


@register_example(
    description="MLPerf Tiny visual wake words: MobileNetV1 x0.25 on 96x96 RGB, person / no "
    "person, "
    "~7.5 M MACs, depthwise-heavy; architecture only",
    track="hearable",
    input_shape=(1, 3, 96, 96),
    num_classes=2,
    resolution_range=(32, 224),
    resolution_axes=(2, 3),
)
def mobilenetv1_vww(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _tiny.MobileNetV1(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="MLPerf Tiny image classification: ResNet-8 on CIFAR-10 32x32, ~12.5 M MACs; "
    "architecture only",
    track="vision",
    input_shape=(1, 3, 32, 32),
    num_classes=10,
    resolution_range=(16, 128),
    resolution_axes=(2, 3),
)
def resnet8_cifar(knobs: Knobs, pretrained: bool) -> nn.Module:
    return _tiny.ResNet8(knobs.width, knobs.depth, knobs.activation)


@register_example(
    description="MLPerf Tiny anomaly detection: fully connected autoencoder on 640 log-mel "
    "features "
    "(ToyADMOS), ~0.26 M MACs; architecture only",
    track="hearable",
    input_shape=(1, 640),
    num_classes=None,
    resolution_range=(128, 2560),
    resolution_axes=(1,),
)
def fc_autoencoder(knobs: Knobs, pretrained: bool) -> nn.Module:
    # resolution = input features (frames × 128 mel bins; 640 = the reference's 5 frames)
    return _tiny.FCAutoencoder(
        knobs.width, knobs.depth, knobs.activation, features=knobs.resolution
    )
