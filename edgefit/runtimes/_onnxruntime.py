"""The onnxruntime backend: ONNX in, ONNX out (fp32, fp16, int8 QDQ, int8 dynamic), timed on the
best provider.

Providers are picked from ``onnxruntime.get_available_providers()`` in the order TensorRT → CUDA →
CPU (only those installed), unless ``providers=`` names them. On this project's CPU-only wheel that
is the CPU provider.
"""

from __future__ import annotations

import copy
import importlib.util
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

from edgefit._ort import ort_session
from edgefit.errors import EdgefitError, require
from edgefit.runtimes import _ort_convert as conv
from edgefit.runtimes._base import Artifact, Availability, Inputs, Runtime, Session
from edgefit.runtimes._inputs import (
    check_inputs,
    load_onnx,
    model_stem,
    onnx_input_specs,
    random_inputs,
)
from edgefit.runtimes._parity import artifact_parity

PREFERRED_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "CPUExecutionProvider",
)
OPT_LEVELS = ("disable", "basic", "extended", "all")
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(bool)": "bool",
}


@dataclass(frozen=True)
class OrtOptions:
    """Conversion and session options, frozen into the artifact (``metadata["options"]``).

    ``graph_optimization_level`` is one of disable/basic/extended/all; ``providers`` overrides the
    automatic choice; ``per_channel``/``reduce_range`` go to the quantizer; ``calibration_samples``
    is how many random samples calibrate int8 when no calibration data is given; ``parity_samples``
    how many inputs the parity check compares; ``preprocess`` runs ``quant_pre_process`` before
    int8.
    """

    graph_optimization_level: str = "all"
    providers: tuple[str, ...] | None = None
    per_channel: bool = True
    reduce_range: bool = False
    calibration_samples: int = 16
    parity_samples: int = 8
    preprocess: bool = True

    def __post_init__(self) -> None:
        if self.graph_optimization_level not in OPT_LEVELS:
            raise EdgefitError(
                f"graph_optimization_level={self.graph_optimization_level!r} is not allowed",
                where="options",
                fix=f"use one of {', '.join(OPT_LEVELS)}",
            )
        if self.providers is not None:
            object.__setattr__(self, "providers", tuple(self.providers))
        if self.calibration_samples < 1 or self.parity_samples < 1:
            raise EdgefitError(
                "calibration_samples and parity_samples must be ≥ 1",
                where="options",
                fix="use a positive count",
            )


def pick_providers(available: list[str], wanted: tuple[str, ...] | None = None) -> list[str]:
    """``wanted`` (all must be installed), else the installed ones of TensorRT → CUDA → CPU.

    >>> pick_providers(["AzureExecutionProvider", "CPUExecutionProvider"])
    ['CPUExecutionProvider']
    """
    if wanted:
        missing = [p for p in wanted if p not in available]
        if missing:
            raise EdgefitError(
                f"onnxruntime providers {missing} are not installed",
                where="providers",
                fix=f"use some of {', '.join(available)}",
            )
        return list(wanted)
    return [p for p in PREFERRED_PROVIDERS if p in available]


class OrtSession(Session):
    def __init__(self, artifact: Artifact, threads: int | None) -> None:
        ort = require("onnxruntime", extra="dev", purpose="running a model with onnxruntime")
        opts = OrtOptions(**artifact.metadata.get("options", {}))
        providers = pick_providers(ort.get_available_providers(), opts.providers)
        # threads None: onnxruntime's default (one per physical core)
        self._session = ort_session(
            artifact.path, threads, opt_level=opts.graph_optimization_level, providers=providers
        )
        self._outputs = [o.name for o in self._session.get_outputs()]
        self.environment = {
            "runtime": "onnxruntime",
            "version": ort.__version__,
            "providers": self._session.get_providers(),
            "intra_op_threads": threads,
            "graph_optimization_level": opts.graph_optimization_level,
        }

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        return {
            i.name: (
                tuple(d if isinstance(d, int) and d > 0 else 1 for d in i.shape),
                _ORT_TYPES.get(i.type, "float32"),
            )
            for i in self._session.get_inputs()
        }

    def run(self, inputs: Inputs) -> dict[str, Any]:
        return dict(zip(self._outputs, self._session.run(self._outputs, dict(inputs))))


class OnnxRuntime(Runtime):
    """onnxruntime: converts with onnxruntime's quantization tools and times an
    ``InferenceSession``."""

    name: ClassVar[str] = "onnxruntime"
    description: ClassVar[str] = "ONNX Runtime (CPU; CUDA/TensorRT providers when installed)"
    Options: ClassVar[type] = OrtOptions

    def available(self) -> Availability:
        if importlib.util.find_spec("onnxruntime") is None:
            return Availability(
                False,
                "the Python package 'onnxruntime' is not installed "
                '(pip install "edgefit[dev]" -c constraints.txt)',
            )
        try:
            import onnxruntime as ort
        except ImportError as exc:
            return Availability(False, f"onnxruntime does not import: {exc}")
        providers = pick_providers(ort.get_available_providers())
        return Availability(
            True,
            f"onnxruntime {ort.__version__}, providers {', '.join(providers)}",
            ort.__version__,
        )

    def precisions(self) -> dict[str, str | None]:
        return {"fp32": None, "fp16": None, "int8": None, "int8-dynamic": None}

    def open(self, artifact: Artifact, *, threads: int | None = None) -> OrtSession:
        return OrtSession(artifact, threads)

    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact:
        """Write ``<name>.<precision>.onnx`` under ``out_dir``; ``metadata`` has the recipe and the
        parity.

        ``calibration`` (a list of input dicts) calibrates int8 and is also what parity is checked
        on; without it both use random inputs, and the metadata says so.
        """

        self.require_available()
        self.check_precision(precision)
        opts: OrtOptions = self.options(**options)
        source = conv.clamp_ir(copy.deepcopy(load_onnx(model)))
        specs = onnx_input_specs(source)
        if calibration is not None:
            calibration = [check_inputs(sample, specs) for sample in calibration]
            if not calibration:
                raise EdgefitError(
                    "calibration is empty", where="calibration", fix="give at least one input dict"
                )
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{model_stem(source)}.{precision}.onnx"
        if precision == "fp32":
            conv.save(source, path)
            meta: dict[str, Any] = {"recipe": "the source model as is (IR version clamped)"}
        elif precision == "fp16":
            meta = conv.to_fp16(source, path)
        elif precision == "int8":
            samples = calibration or [
                random_inputs(specs, seed=100 + i) for i in range(opts.calibration_samples)
            ]
            where = (
                "given calibration inputs" if calibration else "random normal inputs (seeds 100…)"
            )
            meta = conv.quantize_int8_static(
                source,
                path,
                samples,
                per_channel=opts.per_channel,
                reduce_range=opts.reduce_range,
                calibration_source=where,
                preprocess=opts.preprocess,
            )
        else:
            meta = conv.quantize_int8_dynamic(
                source,
                path,
                per_channel=opts.per_channel,
                reduce_range=opts.reduce_range,
                preprocess=opts.preprocess,
            )
        meta["options"] = asdict(opts)
        artifact = Artifact(path, "onnx", precision, self.name, meta)
        meta.update(
            artifact_parity(self, artifact, source, specs, calibration, opts.parity_samples)
        )
        return artifact
