"""ONNX → ONNX conversions with onnxruntime's own tools: fp16 cast, int8 static QDQ, int8 dynamic.

Each function writes ``out_path`` and returns metadata that says exactly what was done (calibration
data, pre-processing, anything skipped), because a quantized model is only as honest as its recipe.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import onnx
    import onnxruntime.quantization as ort_quant
    import onnxruntime.quantization.shape_inference as ort_shape_inference
    import onnxruntime.transformers.float16 as ort_float16
else:
    onnx, ort_quant, ort_shape_inference, ort_float16 = lazy_import(
        "onnx",
        "onnxruntime.quantization",
        "onnxruntime.quantization.shape_inference",
        "onnxruntime.transformers.float16",
    )

# onnxruntime 1.31 reads IR ≤ 13 while onnx 1.23 writes 14; edgefit writes 10 (opsets ≤ 21)
MAX_IR_VERSION = 10


def clamp_ir(model):
    """Lower the model's IR version to one every supported onnxruntime reads (in place; returns
    it)."""
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    return model


def save(model, path: Path) -> Path:
    return write_atomic(path, clamp_ir(model).SerializeToString())


def to_fp16(model, out_path: Path) -> dict[str, Any]:
    """All float tensors to float16, inputs and outputs kept float32 (with Cast nodes at the
    edges)."""
    save(ort_float16.convert_float_to_float16(model, keep_io_types=True), out_path)
    return {
        "recipe": "onnxruntime.transformers.float16.convert_float_to_float16(keep_io_types=True)",
        "note": "onnxruntime's CPU provider has few fp16 kernels (it inserts casts back to fp32); "
        "fp16 pays off on CUDA/TensorRT providers. Measure before choosing it on CPU.",
    }


def _reader(samples: Sequence[Mapping[str, Any]]):
    """A ``CalibrationDataReader`` over a list of input dicts (one pass, as MinMax needs)."""

    class Reader(ort_quant.CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(samples)

        def get_next(self):
            return next(self._it, None)

    return Reader()


def _preprocess(model, folder: Path) -> tuple[Path, str | None]:
    """``quant_pre_process`` (shape inference + graph optimization) when it works; the model as is
    otherwise."""
    raw, pre = folder / "raw.onnx", folder / "pre.onnx"
    save(model, raw)
    try:
        ort_shape_inference.quant_pre_process(str(raw), str(pre))
    except (
        Exception
    ) as exc:  # symbolic shape inference fails on some exotic graphs; quantizing still works
        return (
            raw,
            f"quant_pre_process failed ({type(exc).__name__}: {str(exc)[:200]}); quantized "
            "without it",
        )
    clamp_ir_file(pre)
    return pre, None


def clamp_ir_file(path: Path) -> None:
    model = onnx.load(str(path))
    if model.ir_version > MAX_IR_VERSION:
        save(model, path)


def quantize_int8_static(
    model,
    out_path: Path,
    samples: Sequence[Mapping[str, Any]],
    *,
    per_channel: bool,
    reduce_range: bool,
    calibration_source: str,
    preprocess: bool,
    symmetric: bool = False,
) -> dict[str, Any]:
    """Static int8 in QDQ format: U8 activations, S8 weights, MinMax calibration on ``samples``.

    ``symmetric=True`` makes activations S8 with zero point 0 as well, which is what TensorRT's
    explicit-quantization networks require.
    """
    with tempfile.TemporaryDirectory(prefix="edgefit-quant-") as tmp:
        folder = Path(tmp)
        source, note = (
            _preprocess(model, folder) if preprocess else (save(model, folder / "raw.onnx"), None)
        )
        try:
            ort_quant.quantize_static(
                str(source),
                str(folder / "q.onnx"),
                _reader(samples),
                quant_format=ort_quant.QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=(
                    ort_quant.QuantType.QInt8 if symmetric else ort_quant.QuantType.QUInt8
                ),
                weight_type=ort_quant.QuantType.QInt8,
                calibrate_method=ort_quant.CalibrationMethod.MinMax,
                extra_options={"ActivationSymmetric": True, "WeightSymmetric": True}
                if symmetric
                else None,
            )
        except Exception as exc:
            raise EdgefitError(
                f"onnxruntime quantize_static failed: {type(exc).__name__}: {str(exc)[:300]}",
                where="--precision int8",
                fix="try --precision int8-dynamic, or fp32",
            ) from None
        clamp_ir_file(folder / "q.onnx")
        write_atomic(out_path, (folder / "q.onnx").read_bytes())
    activations = "QInt8 symmetric" if symmetric else "QUInt8"
    meta = {
        "recipe": f"onnxruntime.quantization.quantize_static: QDQ, activations {activations}, "
        "weights QInt8, "
        f"{'per-channel' if per_channel else 'per-tensor'}, MinMax"
        + (", reduce_range" if reduce_range else ""),
        "calibration": f"{len(samples)} samples: {calibration_source}",
        "preprocess": "quant_pre_process" if preprocess and note is None else "skipped",
    }
    if calibration_source.startswith("random"):
        meta["warning"] = (
            "calibrated on random inputs: scales fit noise, not real data; accuracy is not "
            "representative"
        )
    if note:
        meta["note"] = note
    return meta


def quantize_int8_dynamic(
    model, out_path: Path, *, per_channel: bool, reduce_range: bool, preprocess: bool
) -> dict[str, Any]:
    """Dynamic int8: weights quantized offline (S8), activations quantized at run time per
    batch."""
    with tempfile.TemporaryDirectory(prefix="edgefit-quant-") as tmp:
        folder = Path(tmp)
        source, note = (
            _preprocess(model, folder) if preprocess else (save(model, folder / "raw.onnx"), None)
        )
        try:
            ort_quant.quantize_dynamic(
                str(source),
                str(folder / "q.onnx"),
                per_channel=per_channel,
                reduce_range=reduce_range,
                weight_type=ort_quant.QuantType.QInt8,
            )
        except Exception as exc:
            raise EdgefitError(
                f"onnxruntime quantize_dynamic failed: {type(exc).__name__}: {str(exc)[:300]}",
                where="--precision int8-dynamic",
                fix="try --precision int8, or fp32",
            ) from None
        clamp_ir_file(folder / "q.onnx")
        write_atomic(out_path, (folder / "q.onnx").read_bytes())
    return {
        "recipe": "onnxruntime.quantization.quantize_dynamic: weights QInt8"
        f"{', per-channel' if per_channel else ''}; activations quantized at run time",
        "calibration": "none (dynamic)",
        "preprocess": "quant_pre_process" if preprocess and note is None else "skipped",
        "note": note
        or "dynamic int8 suits MatMul/Gemm-heavy models; conv-heavy models often gain "
        "little or slow down on CPU",
    }
