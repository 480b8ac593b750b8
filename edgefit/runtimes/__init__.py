"""Real runtimes behind one interface: convert a model, measure it, check export parity.

>>> from edgefit.runtimes import get_runtime, list_runtimes
>>> [r.name for r in list_runtimes()]                                  # doctest: +SKIP
['coreml', 'litert', 'onnxruntime', 'tensorrt', 'vela']
>>> rt = get_runtime("onnxruntime")                                    # doctest: +SKIP
>>> art = rt.convert("resnet18.onnx", "int8", "out/")                   # doctest: +SKIP
>>> art.metadata["parity"]["top1_agreement"]                            # doctest: +SKIP
>>> t = rt.measure(art, threads=1, cpus=(1,))                           # doctest: +SKIP
>>> print(f"p50 {t.p50 * 1e3:.2f} ms, {t.provenance}")                  # doctest: +SKIP

Importing this package loads no runtime library; each backend imports its own when used.
"""

from edgefit.runtimes._base import (
    PRECISIONS,
    Artifact,
    Availability,
    MeasurementError,
    Runtime,
    RuntimeUnavailableError,
    Session,
    Timing,
    UnsupportedPrecisionError,
)
from edgefit.runtimes._measure import MeasureSettings
from edgefit.runtimes._parity import Parity, parity
from edgefit.runtimes._registry import (
    RuntimeInfo,
    get_runtime,
    list_runtimes,
    measuring_runtime,
    register_runtime,
    runtime_names,
)
from edgefit.runtimes._torch_source import TorchModel

__all__ = [
    "PRECISIONS",
    "Artifact",
    "Availability",
    "MeasureSettings",
    "MeasurementError",
    "Parity",
    "Runtime",
    "RuntimeInfo",
    "RuntimeUnavailableError",
    "Session",
    "Timing",
    "TorchModel",
    "UnsupportedPrecisionError",
    "get_runtime",
    "list_runtimes",
    "measuring_runtime",
    "parity",
    "register_runtime",
    "runtime_names",
]
