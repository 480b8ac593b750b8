"""The TensorRT backend: ONNX → serialized engine (fp32, fp16, int8), timed with CUDA events.

Everything that decides *what* to build — options → builder flags, the engine cache key — is plain
Python here and unit-tested without TensorRT. The code that talks to TensorRT and CUDA lives in
``_tensorrt_engine``, which imports ``tensorrt`` and ``torch`` only when :meth:`TensorRT.convert`
or :meth:`TensorRT.open` first uses them.

int8 has two modes. ``explicit`` (default; NVIDIA's recommended path since TensorRT 10) builds a
network that carries Q/DQ nodes: when the ONNX has none, edgefit inserts them with onnxruntime's
``quantize_static`` (symmetric S8 activations and weights, per-channel, MinMax). ``implicit`` lets
TensorRT calibrate (entropy calibrator, deprecated in TensorRT 10) and keeps a calibration cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import Artifact, Availability, Runtime, Session
from edgefit.runtimes._tensorrt_engine import TrtSession, build_engine

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch")

INSTALL_LINE = 'pip install --extra-index-url https://pypi.nvidia.com "edgefit[tensorrt]"'
CACHE_FORMAT = 1  # bump when the engine file layout or the key's recipe changes


@dataclass(frozen=True)
class TrtOptions:
    """Builder options, frozen into the artifact and into the engine cache key.

    ``workspace_bytes`` caps the builder's scratch memory (None: TensorRT's default, all of the
    GPU); ``optimization_level`` is ``builder_optimization_level`` 0–5 (3 is TensorRT's default);
    ``tf32`` allows TF32 for fp32 layers (TensorRT's default; False clears the flag);
    ``sparse_weights`` lets TensorRT use 2:4 structured-sparse kernels where weights allow;
    ``strongly_typed`` builds a strongly-typed network: no precision flags, the ONNX's own types
    rule (edgefit converts the model to fp16 or Q/DQ first); ``int8_mode`` is ``explicit`` (Q/DQ)
    or ``implicit`` (calibrator); ``fp16_fallback`` also allows fp16 for layers int8 does not
    cover.
    """

    workspace_bytes: int | None = None
    optimization_level: int = 3
    tf32: bool = True
    sparse_weights: bool = False
    strongly_typed: bool = False
    int8_mode: Literal["explicit", "implicit"] = "explicit"
    fp16_fallback: bool = True
    calibration_samples: int = 16
    parity_samples: int = 8

    def __post_init__(self) -> None:
        if self.int8_mode not in ("explicit", "implicit"):
            raise EdgefitError(
                f"int8_mode={self.int8_mode!r} is not allowed",
                where="options",
                fix="use explicit (Q/DQ) or implicit (calibrator)",
            )
        if not (isinstance(self.optimization_level, int) and 0 <= self.optimization_level <= 5):
            raise EdgefitError(
                f"optimization_level={self.optimization_level!r} is not allowed",
                where="options",
                fix="use an integer 0–5",
            )
        if self.workspace_bytes is not None and self.workspace_bytes <= 0:
            raise EdgefitError(
                "workspace_bytes must be positive", where="options", fix="use bytes, e.g. 1 << 30"
            )
        if self.strongly_typed and self.int8_mode == "implicit":
            raise EdgefitError(
                "a strongly typed network cannot use implicit int8 calibration",
                where="options",
                fix="use int8_mode='explicit'",
            )


@dataclass(frozen=True)
class BuildPlan:
    """What the builder is told: flag *names* (resolved on ``tensorrt.BuilderFlag`` at build
    time)."""

    set_flags: tuple[str, ...]
    clear_flags: tuple[str, ...]
    network_flags: tuple[str, ...]
    pre_convert: Literal["fp16", "qdq"] | None  # what edgefit does to the ONNX before parsing it
    calibrator: bool


def build_plan(precision: str, options: TrtOptions) -> BuildPlan:
    """Map a precision and options to TensorRT builder flags.

    >>> build_plan("int8", TrtOptions()).set_flags
    ('INT8', 'FP16')
    >>> build_plan("fp16", TrtOptions(strongly_typed=True))  # doctest: +NORMALIZE_WHITESPACE
    BuildPlan(set_flags=(), clear_flags=(), network_flags=('STRONGLY_TYPED',), pre_convert='fp16',
    calibrator=False)
    """
    if precision not in ("fp32", "fp16", "int8"):
        raise EdgefitError(
            f"TensorRT cannot build precision '{precision}'",
            where="--precision",
            fix="use fp32, fp16 or int8",
        )
    sets: list[str] = []
    clears: list[str] = [] if options.tf32 else ["TF32"]
    if options.sparse_weights:
        sets.append("SPARSE_WEIGHTS")
    if options.strongly_typed:  # types come from the model; precision flags are not allowed
        pre = {"fp16": "fp16", "int8": "qdq"}.get(precision)
        return BuildPlan(tuple(sets), tuple(clears), ("STRONGLY_TYPED",), pre, False)  # type: ignore[arg-type]
    if precision == "fp16":
        sets.insert(0, "FP16")
    elif precision == "int8":
        sets[:0] = ["INT8"] + (["FP16"] if options.fp16_fallback else [])
    explicit = precision == "int8" and options.int8_mode == "explicit"
    return BuildPlan(
        tuple(sets),
        tuple(clears),
        (),
        "qdq" if explicit else None,
        precision == "int8" and options.int8_mode == "implicit",
    )


def engine_cache_key(
    onnx_bytes: bytes, precision: str, trt_version: str, gpu_name: str, options: TrtOptions
) -> str:
    """sha256 over everything that changes the engine: the model, precision, TensorRT, GPU and
    options.

    Engines are not portable across TensorRT versions or GPU models, so both are part of the key.

    >>> k = engine_cache_key(b"m", "fp16", "10.9.0", "NVIDIA H100", TrtOptions())
    >>> k == engine_cache_key(b"m", "fp16", "10.9.0", "NVIDIA H100", TrtOptions()), len(k)
    (True, 64)
    """
    doc = {
        "format": CACHE_FORMAT,
        "onnx_sha256": hashlib.sha256(onnx_bytes).hexdigest(),
        "precision": precision,
        "tensorrt": trt_version,
        "gpu": gpu_name,
        "options": asdict(options),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _cuda_status() -> tuple[bool, str]:
    """(CUDA usable, GPU name or why not); torch provides device buffers and CUDA events."""
    if importlib.util.find_spec("torch") is None:
        return (
            False,
            "torch is not installed (the TensorRT backend uses torch.cuda for buffers and events)",
        )
    if not torch.cuda.is_available():
        build = (
            "a CPU-only torch build"
            if torch.version.cuda is None
            else f"torch built for CUDA {torch.version.cuda}"
        )
        return False, f"no CUDA device is visible (torch.cuda.is_available() is False; {build})"
    return True, torch.cuda.get_device_name(0)


def _does_not_import(exc: Exception) -> Availability:
    return Availability(False, f"tensorrt does not import: {type(exc).__name__}: {str(exc)[:200]}")


class TensorRT(Runtime):
    """NVIDIA TensorRT: builds a serialized engine from ONNX and times it with CUDA events."""

    name: ClassVar[str] = "tensorrt"
    description: ClassVar[str] = "NVIDIA TensorRT (needs the tensorrt package and a CUDA GPU)"
    Options: ClassVar[type] = TrtOptions

    def available(self) -> Availability:
        if importlib.util.find_spec("tensorrt") is None:
            return Availability(
                False, f"the Python package 'tensorrt' is not installed ({INSTALL_LINE})"
            )
        try:
            import tensorrt as trt
        except ImportError as exc:  # the PyPI stub, a missing libnv*.so
            return _does_not_import(exc)
        except Exception as exc:  # … or an OSError/RuntimeError from the same causes
            return _does_not_import(exc)
        ok, gpu = _cuda_status()
        version = getattr(trt, "__version__", "unknown")
        if not ok:
            return Availability(False, gpu, version)
        return Availability(True, f"TensorRT {version} on {gpu}", version)

    def precisions(self) -> dict[str, str | None]:
        return {
            "fp32": None,
            "fp16": None,
            "int8": None,
            "int8-dynamic": "TensorRT has no dynamic int8 quantization; use int8 (static, Q/DQ or "
            "calibrated)",
        }

    def convert(
        self, model: Any, precision: str, out_dir, *, calibration=None, **options: Any
    ) -> Artifact:
        """Build (or reuse from the engine cache) ``<name>.<precision>.<key>.engine`` under
        ``out_dir``."""
        self.require_available()
        self.check_precision(precision)
        opts: TrtOptions = self.options(**options)

        return build_engine(
            self, model, precision, out_dir, calibration, opts, build_plan(precision, opts)
        )

    def open(self, artifact: Artifact, *, threads: int | None = None) -> Session:
        return TrtSession(artifact, threads)
