"""The LiteRT backend: PyTorch → .tflite (fp32, int8) with litert-torch, timed on LiteRT's
``Interpreter``.

Conversion starts from PyTorch (see :mod:`~edgefit.runtimes._torch_source`: a ``TorchModel``, or an
ONNX model rebuilt in PyTorch). Timing uses ``ai_edge_litert.interpreter.Interpreter`` with
``num_threads`` threads (its default op resolver applies the XNNPACK delegate), in the measurement
child like every backend. A timed run is ``Interpreter.invoke()`` alone: writing the input tensor
and reading the output happen outside the clock, as on a device where the app owns the buffers.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.runtimes import _litert_convert as conv
from edgefit.runtimes._base import Artifact, Availability, Inputs, Runtime, Session
from edgefit.runtimes._quiet import captured_output
from edgefit.runtimes._torch_source import (
    as_torch_model,
    check_calibration,
    random_samples,
    source_parity,
)

if TYPE_CHECKING:
    import ai_edge_litert.interpreter as litert_interpreter
    import numpy as np
else:
    litert_interpreter, np = lazy_import("ai_edge_litert.interpreter", "numpy")

PIP_RUN = 'pip install "edgefit[litert]" -c constraints.txt'
PIP_CONVERT = 'pip install "edgefit[litert-convert]" -c constraints.txt'


@dataclass(frozen=True)
class LiteRTOptions:
    """Conversion options, frozen into the artifact (``metadata["options"]``).

    ``per_channel``: per-channel int8 weights (else per-tensor); ``calibration_samples``: random
    samples that calibrate int8 when no calibration data is given; ``parity_samples``: inputs the
    parity check compares; ``channel_last_io``: give the .tflite NHWC inputs/outputs where the
    source has 4-D NCHW ones (``litert_torch.to_channel_last_io``), as a TFLite-native deployment
    would, so the model starts and ends without layout transposes. The caller still passes and gets
    NCHW arrays; the session transposes outside the timed region.
    """

    per_channel: bool = True
    calibration_samples: int = 16
    parity_samples: int = 8
    channel_last_io: bool = False

    def __post_init__(self) -> None:
        if self.calibration_samples < 1 or self.parity_samples < 1:
            raise EdgefitError(
                "calibration_samples and parity_samples must be ≥ 1",
                where="options",
                fix="use a positive count",
            )


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


class LiteRTSession(Session):
    """One .tflite in a LiteRT ``Interpreter``; quantizes float inputs and dequantizes int8
    outputs."""

    def __init__(self, artifact: Artifact, threads: int | None) -> None:
        interp = require(
            "ai_edge_litert.interpreter", extra="litert", purpose="running a .tflite model"
        )
        io = artifact.metadata.get("io") or {}
        with captured_output():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
            self._it = interp.Interpreter(model_path=str(artifact.path), num_threads=threads)
            self._it.allocate_tensors()
            runner = self._it.get_signature_runner()
            ins, outs = runner.get_input_details(), runner.get_output_details()
            del runner  # it holds references into the interpreter's buffers
        names_in = dict(io.get("inputs") or [(k, k) for k in ins])
        names_out = dict(io.get("outputs") or [(k, k) for k in outs])
        self._inputs = {name: ins[sig] for name, sig in names_in.items()}
        self._outputs = {name: outs[sig] for name, sig in names_out.items()}
        layout = io.get("channel_last") or {}
        self._nhwc_in, self._nhwc_out = (
            set(layout.get("inputs", ())),
            set(layout.get("outputs", ())),
        )
        self.environment = {
            "runtime": "litert",
            "version": _version("ai-edge-litert") or "?",
            "interpreter": "ai_edge_litert.interpreter.Interpreter (default op resolver, XNNPACK)",
            "timed": "Interpreter.invoke() only (input/output copies outside the clock)",
        }

    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        specs = {}
        for name, d in self._inputs.items():
            dtype = np.dtype(d["dtype"]).name
            shape = tuple(int(v) for v in d["shape"])
            if name in self._nhwc_in:  # the caller's layout is NCHW
                shape = (shape[0], shape[3], shape[1], shape[2])
            # an int8 model still takes float data from the caller (quantized here)
            specs[name] = (shape, "float32" if _quantized(d) else dtype)
        return specs

    def _set(self, inputs: Inputs) -> None:
        for name, d in self._inputs.items():
            x = np.asarray(inputs[name])
            if name in self._nhwc_in:
                x = np.transpose(x, (0, 2, 3, 1))
            if _quantized(d):
                scale, zero = d["quantization"]
                info = np.iinfo(d["dtype"])
                x = np.clip(np.round(x / scale) + zero, info.min, info.max)
            self._it.set_tensor(
                d["index"], np.ascontiguousarray(x, dtype=d["dtype"]).reshape(d["shape"])
            )

    def _get(self) -> dict[str, Any]:
        out = {}
        for name, d in self._outputs.items():
            y = self._it.get_tensor(d["index"])
            if _quantized(d):
                scale, zero = d["quantization"]
                y = (y.astype(np.float32) - zero) * np.float32(scale)
            out[name] = np.array(np.transpose(y, (0, 3, 1, 2)) if name in self._nhwc_out else y)
        return out

    def run(self, inputs: Inputs) -> dict[str, Any]:
        self._set(inputs)
        self._it.invoke()
        return self._get()

    def timed_run(self, inputs: Inputs) -> float:
        self._set(inputs)
        start = time.perf_counter()
        self._it.invoke()
        return time.perf_counter() - start


def _quantized(detail: dict) -> bool:
    return np.dtype(detail["dtype"]).kind in "iu" and detail["quantization"][0] != 0.0


class LiteRT(Runtime):
    """LiteRT (TensorFlow Lite): converts PyTorch with litert-torch, times LiteRT's
    ``Interpreter``."""

    name: ClassVar[str] = "litert"
    description: ClassVar[str] = (
        "LiteRT / TensorFlow Lite (PyTorch → .tflite with litert-torch; fp32, int8)"
    )
    Options: ClassVar[type] = LiteRTOptions

    def available(self) -> Availability:
        if importlib.util.find_spec("ai_edge_litert") is None:
            return Availability(
                False, f"the Python package 'ai-edge-litert' is not installed ({PIP_RUN})"
            )
        if importlib.util.find_spec("litert_torch") is None:
            return Availability(
                False,
                "the Python package 'litert-torch' (PyTorch → .tflite) is not installed "
                f"({PIP_CONVERT})",
            )
        version = _version("ai-edge-litert")
        return Availability(
            True, f"ai-edge-litert {version}, litert-torch {_version('litert-torch')}", version
        )

    def precisions(self) -> dict[str, str | None]:
        return {
            "fp32": None,
            "int8": None,
            "fp16": "litert-torch 0.10 converts fp32 and PT2E int8 only; fp16 weights are not "
            "wired in edgefit",
            "int8-dynamic": "litert-torch's PT2E flow gives static int8; dynamic-range int8 is "
            "not wired in "
            "edgefit (use int8)",
        }

    def open(self, artifact: Artifact, *, threads: int | None = None) -> LiteRTSession:
        return LiteRTSession(artifact, threads)

    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact:
        """Write ``<name>.<precision>.tflite`` under ``out_dir``; ``metadata`` has the recipe and
        the parity.

        ``model`` is a :class:`~edgefit.runtimes.TorchModel`, a ``(module, example_input)`` tuple,
        or an ONNX model that edgefit can rebuild in PyTorch. ``calibration`` (input dicts)
        calibrates int8 and is what parity is checked on; without it both use random inputs, and
        the metadata says so.
        """

        self.require_available()
        self.check_precision(precision)
        opts: LiteRTOptions = self.options(**options)
        tm = as_torch_model(model)
        calibration = check_calibration(calibration, tm)
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{tm.name}.{precision}.tflite"
        artifact = convert_tflite(tm, precision, path, calibration, opts)
        artifact.metadata.update(
            source_parity(self, artifact, tm, calibration, opts.parity_samples)
        )
        return artifact


def convert_tflite(tm, precision: str, path: Path, calibration, opts: LiteRTOptions) -> Artifact:
    """The .tflite of ``tm`` at ``precision`` (no parity check): shared by the LiteRT and Vela
    backends."""
    tm = source = tm.with_output_names()
    tm, nhwc_in, nhwc_out = conv.channel_last(tm) if opts.channel_last_io else (tm, [], [])
    if precision == "fp32":
        meta = conv.to_fp32(tm, path)
    else:
        samples = calibration or random_samples(source, opts.calibration_samples, seed=100)
        where = "given calibration inputs" if calibration else "random normal inputs (seeds 100…)"
        samples = [
            {n: np.transpose(v, (0, 2, 3, 1)) if n in nhwc_in else v for n, v in s.items()}
            for s in samples
        ]
        meta = conv.to_int8(
            tm, path, samples, per_channel=opts.per_channel, calibration_source=where
        )
    meta["io"] = {**_io_names(tm, path), "channel_last": {"inputs": nhwc_in, "outputs": nhwc_out}}
    meta["options"] = asdict(opts)
    meta["source"] = (
        "ONNX model rebuilt in PyTorch (edgefit.runtimes._onnx_torch)"
        if tm.reference is not None
        else "PyTorch module"
    )
    return Artifact(path, "tflite", precision, "litert", meta)


def _io_names(tm, path: Path) -> dict[str, Any]:
    """Map the source's input/output names onto the .tflite signature (``args_0``…, ``output_0``…,
    in order)."""
    with captured_output():
        sig = litert_interpreter.Interpreter(model_path=str(path)).get_signature_list()
    (entry,) = sig.values()
    order = sorted(entry["inputs"], key=_index), sorted(entry["outputs"], key=_index)
    if len(order[0]) != len(tm.input_names) or len(order[1]) != len(tm.output_names):
        raise EdgefitError(
            f"the .tflite has {len(order[0])} inputs / {len(order[1])} outputs, the source "
            f"{len(tm.input_names)} / {len(tm.output_names)}",
            where="MODEL",
            fix="return a tensor or a tuple of tensors from forward()",
        )
    return {
        "inputs": [[n, s] for n, s in zip(tm.input_names, order[0])],
        "outputs": [[n, s] for n, s in zip(tm.output_names, order[1])],
    }


def _index(signature_name: str) -> int:
    digits = signature_name.rsplit("_", 1)[-1]
    return int(digits) if digits.isdigit() else 0
