"""torch.nn.Module → ONNX, quietly and reproducibly."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

import onnx

from edgefit.errors import EdgefitError, require

OPSET = 18  # read by onnxruntime ≥ 1.16, LiteRT converters and TensorRT 10
# onnxruntime 1.31 reads IR ≤ 13 while onnx 1.23 writes 14 by default
MAX_IR_VERSION = 10


def export_torch(
    module, input_shape: tuple[int, ...], *, opset: int = OPSET, input_dtype: str = "float32"
):
    """Export ``module`` (eval mode) for one input of ``input_shape``; returns an
    ``onnx.ModelProto``.

    Uses the supported ``torch.export``-based exporter; falls back to the TorchScript exporter for
    modules that ``torch.export`` cannot trace.
    """
    torch = require("torch", extra="dev", purpose="exporting a torch model")
    module = module.eval()
    x = torch.zeros(input_shape, dtype=torch.int64 if input_dtype == "int64" else torch.float32)
    quiet = [
        logging.getLogger(n)
        for n in ("torch", "torch.onnx", "torch._export", "torch.export", "torch._subclasses")
    ]
    levels = [q.level for q in quiet]
    for (
        q
    ) in quiet:  # failed export attempts log full tracebacks at ERROR; we report one line instead
        q.setLevel(logging.CRITICAL)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(
                module,
                (x,),
                dynamo=True,
                verbose=False,
                opset_version=opset,
                external_data=False,
                optimize=True,
            )
            model = program.model_proto
        except (
            Exception
        ) as first:  # torch.export cannot trace everything (data-dependent control flow)
            buf = io.BytesIO()
            try:
                torch.onnx.export(
                    module,
                    (x,),
                    buf,
                    dynamo=False,
                    opset_version=opset,
                    input_names=["input"],
                    output_names=["output"],
                )
            except Exception:
                raise EdgefitError(
                    f"torch.onnx.export failed: {str(first).splitlines()[0][:200]}",
                    where="MODEL",
                    fix="make the module exportable with torch.export",
                ) from None
            model = onnx.load_from_string(buf.getvalue())
        finally:
            for q, level in zip(quiet, levels):
                q.setLevel(level)
    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    return model
