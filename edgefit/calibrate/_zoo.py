"""The fidelity zoo: architectures the estimator was not fitted on, in fp32 and two int8 recipes.

An estimate is only worth what it predicts on models it has never seen. The zoo is ≥ 24 models from
≥ 10 families, each family with members of different width, depth and input size, so that a
leave-one-family-out check (fit without a family, predict it) means something. Every model is built
from code with seeded random weights (no downloads, no torchvision) and exported to ONNX with the
exporter edgefit uses for user models; the int8 variants are the two recipes users actually run.

>>> [s.name for s in zoo_specs("ci")][:2]  # doctest: +SKIP
['vgg-s', 'mbconv-mnv3-s']
>>> path = zoo_onnx(zoo_specs("ci")[0], "int8-default", Path("/tmp/zoo"))  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.graph._torch import export_torch
from edgefit.runtimes._ort_convert import clamp_ir, clamp_ir_file

if TYPE_CHECKING:
    import onnx
    import onnxruntime.quantization as ort_quant
    import torch

    from edgefit.calibrate import _zoo_models
else:  # torch builds the zoo (_zoo_models defines its torch modules), onnx and onnxruntime's
    # quantizer export it: all loaded when a zoo model is first built
    onnx, ort_quant, torch, _zoo_models = lazy_import(
        "onnx", "onnxruntime.quantization", "torch", "edgefit.calibrate._zoo_models"
    )

RECIPES = ("fp32", "int8-default", "int8-u8s8-pc")
ZOO_VERSION = 3  # part of every cached file name: bump it when a spec's architecture changes
CALIBRATION_SAMPLES = 8


@dataclass(frozen=True)
class ZooSpec:
    """One zoo model: ``build()`` returns it in eval mode with seeded weights, for one batch-1
    static input.

    Tags: "ci" (small and fast, the CI subset); "mcu" (≤ 1 MB int8 weights, small activations, and
    litert-torch PT2E int8 → Vela for Ethos-U55 runs every operator on the NPU, checked by hand);
    "mcu-partial" (fits and compiles, but some operators stay float and fall back to the CPU:
    Hardswish/hard-sigmoid, and the mixer's 3-D FullyConnected + residual Add).
    """

    name: str
    family: str
    input_shape: tuple[int, ...]
    build: Callable[[], Any]
    tags: frozenset[str] = frozenset()


def _build(ctor: str, args: tuple, kwargs: dict) -> Any:
    torch.manual_seed(0)
    return getattr(_zoo_models, ctor)(*args, **kwargs).eval()


def _spec(
    name: str,
    family: str,
    shape: tuple[int, ...],
    ctor: str,
    *args: Any,
    tags: str = "",
    **kwargs: Any,
):
    return ZooSpec(
        name, family, shape, functools.partial(_build, ctor, args, kwargs), frozenset(tags.split())
    )


_MNV3_S = ((16, 1, 3, 2, 1), (24, 4, 3, 2, 2), (40, 4, 5, 2, 2), (48, 4, 5, 1, 1))
_MNV3_M = (
    (16, 1, 3, 1, 1),
    (24, 4, 3, 2, 2),
    (40, 3, 5, 2, 3),
    (80, 6, 3, 2, 3),
    (112, 6, 3, 1, 2),
    (160, 6, 5, 2, 2),
)
_EFF_S = ((16, 1, 3, 1, 1), (24, 6, 3, 2, 2), (40, 6, 5, 2, 2), (80, 6, 3, 2, 2))
_EFF_M = (
    (16, 1, 3, 1, 1),
    (24, 6, 3, 2, 2),
    (40, 6, 5, 2, 2),
    (80, 6, 3, 2, 3),
    (112, 6, 5, 1, 3),
    (192, 6, 5, 2, 2),
)
_FIRES_S = ((8, 16), (8, 16), "pool", (16, 32), (16, 32), "pool", (24, 48))
_FIRES_M = (
    (16, 64),
    (16, 64),
    "pool",
    (32, 128),
    (32, 128),
    "pool",
    (48, 192),
    (48, 192),
    (64, 256),
    (64, 256),
)

ZOO: tuple[ZooSpec, ...] = (
    _spec("vgg-s", "vgg", (1, 3, 32, 32), "VGG", 3, (8, 16, 32), 1, tags="ci mcu"),
    _spec("vgg-m", "vgg", (1, 3, 64, 64), "VGG", 3, (16, 32, 64, 128), 2),
    _spec("vgg-l", "vgg", (1, 3, 64, 64), "VGG", 3, (24, 48, 96, 192), 2),
    _spec(
        "mbconv-mnv3-s",
        "mbconv",
        (1, 3, 64, 64),
        "MBNet",
        16,
        _MNV3_S,
        128,
        "mobilenetv3",
        tags="ci mcu-partial",
    ),
    _spec("mbconv-mnv3-m", "mbconv", (1, 3, 128, 128), "MBNet", 16, _MNV3_M, 480, "mobilenetv3"),
    _spec("mbconv-eff-s", "mbconv", (1, 3, 64, 64), "MBNet", 16, _EFF_S, 256, "efficientnet"),
    _spec("mbconv-relu-s", "mbconv", (1, 3, 64, 64), "MBNet", 16, _EFF_S, 192, "relu", tags="mcu"),
    _spec("mbconv-eff-m", "mbconv", (1, 3, 128, 128), "MBNet", 32, _EFF_M, 640, "efficientnet"),
    _spec(
        "resnet8-basic",
        "resnet",
        (1, 3, 32, 32),
        "ResNet",
        "basic",
        16,
        (16, 32, 64),
        (1, 1, 1),
        False,
        tags="mcu",
    ),
    _spec(
        "resnet18-basic-w32",
        "resnet",
        (1, 3, 64, 64),
        "ResNet",
        "basic",
        32,
        (32, 64, 128, 256),
        (2, 2, 2, 2),
        True,
    ),
    _spec(
        "resnet-bottleneck-w64",
        "resnet",
        (1, 3, 96, 96),
        "ResNet",
        "bottleneck",
        32,
        (64, 128, 256, 512),
        (2, 2, 3, 2),
        True,
    ),
    _spec("unet-s", "unet", (1, 1, 64, 64), "UNet", 1, 8, 2, tags="mcu"),
    _spec("unet-m", "unet", (1, 3, 96, 96), "UNet", 3, 8, 3),
    _spec("tcn-s", "tcn", (1, 16, 128), "TCN", 16, 32, (1, 2, 4, 8), tags="ci mcu"),
    _spec("tcn-m", "tcn", (1, 40, 512), "TCN", 40, 64, (1, 2, 4, 8, 16, 32)),
    _spec("gru-s", "rnn", (1, 50, 16), "Recurrent", "gru", 16, 32, 1, tags="ci"),
    _spec("gru-m", "rnn", (1, 100, 40), "Recurrent", "gru", 40, 96, 2),
    _spec("lstm-s", "rnn", (1, 50, 16), "Recurrent", "lstm", 16, 32, 1),
    _spec("lstm-m", "rnn", (1, 100, 40), "Recurrent", "lstm", 40, 128, 2),
    _spec("mlp-tiny", "mlp", (1, 128), "mlp", (128, 256, 256, 10), tags="ci mcu"),
    _spec("mlp-m", "mlp", (1, 784), "mlp", (784, 512, 256, 10), tags="mcu"),
    _spec("mlp-l", "mlp", (1, 1024), "mlp", (1024, 2048, 2048, 1000)),
    _spec("mixer-s", "mixer", (1, 3, 32, 32), "Mixer", 32, 4, 64, 2, 32, 128),
    _spec(
        "mixer-relu-s",
        "mixer",
        (1, 3, 32, 32),
        "Mixer",
        32,
        4,
        96,
        3,
        64,
        192,
        mcu=True,
        tags="mcu-partial",
    ),
    _spec("mixer-m", "mixer", (1, 3, 64, 64), "Mixer", 64, 8, 128, 4, 64, 512),
    _spec("bert-tiny", "transformer", (1, 32, 64), "Encoder", 64, 2, 2, 256, tags="ci"),
    _spec("bert-mini", "transformer", (1, 128, 128), "Encoder", 128, 4, 4, 512),
    _spec("bert-small", "transformer", (1, 128, 256), "Encoder", 256, 4, 2, 512),
    _spec("kws-dscnn-s", "kws", (1, 1, 49, 10), "DSCNN", 64, 4, tags="ci mcu"),
    _spec("kws-dscnn-m", "kws", (1, 1, 49, 10), "DSCNN", 172, 4, tags="mcu"),
    _spec("kws-dscnn-l", "kws", (1, 1, 49, 10), "DSCNN", 276, 5),
    _spec("ae-fc", "autoencoder", (1, 640), "FCAutoencoder", 640, 128, 8, 4, tags="ci mcu"),
    _spec(
        "ae-conv-s",
        "autoencoder",
        (1, 1, 64, 64),
        "ConvAutoencoder",
        1,
        (16, 32, 64),
        "resize",
        tags="mcu",
    ),
    _spec("ae-conv-m", "autoencoder", (1, 3, 128, 128), "ConvAutoencoder", 3, (24, 48, 96, 192)),
    _spec("squeezenet-s", "squeezenet", (1, 3, 64, 64), "SqueezeNet", 32, _FIRES_S, tags="mcu"),
    _spec("squeezenet-m", "squeezenet", (1, 3, 128, 128), "SqueezeNet", 64, _FIRES_M),
)


def zoo_specs(tag: str | None = None, families: set[str] | None = None) -> list[ZooSpec]:
    """The zoo, optionally only the specs with ``tag`` ("ci", "mcu") and of ``families``."""
    known_tags = set().union(*(s.tags for s in ZOO))
    if tag is not None and tag not in known_tags:
        raise EdgefitError(
            f"unknown zoo tag {tag!r}",
            where="zoo_specs(tag=...)",
            fix=f"use one of {', '.join(sorted(known_tags))}, or None for all",
        )
    unknown = set(families or ()) - {s.family for s in ZOO}
    if unknown:
        raise EdgefitError(
            f"unknown zoo families {sorted(unknown)}",
            where="zoo_specs(families=...)",
            fix=f"use some of {', '.join(sorted({s.family for s in ZOO}))}",
        )
    return [
        s
        for s in ZOO
        if (tag is None or tag in s.tags) and (families is None or s.family in families)
    ]


def zoo_onnx(spec: ZooSpec, recipe: str, folder: Path) -> Path:
    """The ONNX file of ``spec`` in ``recipe``, written to ``folder`` once and reused after (cached
    by name).

    "fp32" is the export; "int8-default" is ``quantize_static(fp32, out, reader)`` at onnxruntime's
    defaults (QDQ, activations and weights QInt8, per-tensor, MinMax), the one-liner a user writes;
    "int8-u8s8-pc" is QDQ with QUInt8 activations, QInt8 per-channel weights, no reduce_range.
    Neither runs ``quant_pre_process`` first: the default path a user takes does not.
    """
    if recipe not in RECIPES:
        raise EdgefitError(
            f"unknown zoo recipe {recipe!r}",
            where="zoo_onnx(recipe=...)",
            fix=f"use one of {', '.join(RECIPES)}",
        )
    folder = Path(folder)
    path = folder / f"{spec.name}.v{ZOO_VERSION}.{recipe}.onnx"
    if path.is_file():
        return path
    if recipe == "fp32":
        return write_atomic(
            path, clamp_ir(export_torch(spec.build(), spec.input_shape)).SerializeToString()
        )
    _quantize(zoo_onnx(spec, "fp32", folder), path, spec, recipe)
    return path


def calibration_reader(
    input_name: str, input_shape: tuple[int, ...], samples: int = CALIBRATION_SAMPLES
):
    """A ``CalibrationDataReader`` over ``samples`` seeded standard-normal inputs.

    These are for latency fidelity, not accuracy: the scales fit noise, so the int8 graph has the
    operators, shapes and dtypes a real calibration gives (which is what latency depends on), but
    its outputs are not meaningful.
    """

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = (
                np.random.default_rng(seed).standard_normal(input_shape).astype(np.float32)
                for seed in range(samples)
            )

        def get_next(self):
            x = next(self._it, None)
            return None if x is None else {input_name: x}

    return Reader()


def _quantize(fp32: Path, out: Path, spec: ZooSpec, recipe: str) -> None:
    model = onnx.load(str(fp32))
    inits = {i.name for i in model.graph.initializer}
    name = next(i.name for i in model.graph.input if i.name not in inits)
    reader = calibration_reader(name, spec.input_shape)
    options = (
        {}
        if recipe == "int8-default"
        else {
            "quant_format": ort_quant.QuantFormat.QDQ,
            "activation_type": ort_quant.QuantType.QUInt8,
            "weight_type": ort_quant.QuantType.QInt8,
            "per_channel": True,
            "reduce_range": False,
        }
    )
    root = logging.getLogger()
    level, root.level = (
        root.level,
        logging.ERROR,
    )  # onnxruntime.quantization warns on the root logger
    try:
        with tempfile.TemporaryDirectory(prefix="edgefit-zoo-") as tmp:
            q = Path(tmp) / "q.onnx"
            try:
                ort_quant.quantize_static(str(fp32), str(q), reader, **options)
            except Exception as exc:
                raise EdgefitError(
                    f"quantize_static failed on zoo model {spec.name} ({recipe}): "
                    f"{type(exc).__name__}: {str(exc)[:200]}",
                    where="zoo_onnx",
                    fix="change the spec's architecture so onnxruntime can quantize it",
                ) from None
            clamp_ir_file(q)
            write_atomic(out, q.read_bytes())
    finally:
        root.setLevel(level)
