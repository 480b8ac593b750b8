"""torch.nn.Module → ONNX, quietly and reproducibly."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings

from edgefit.errors import EdgefitError, require

OPSET = 18  # read by onnxruntime ≥ 1.16, LiteRT converters and TensorRT 10


def export_torch(module, input_shape: tuple[int, ...], *, opset: int = OPSET):
    """Export ``module`` (eval mode) for one input of ``input_shape``; returns an ``onnx.ModelProto``.

    Uses the supported ``torch.export``-based exporter; falls back to the TorchScript exporter for
    modules that ``torch.export`` cannot trace.
    """
    torch = require("torch", extra="dev", purpose="exporting a torch model")
    module = module.eval()
    x = torch.zeros(input_shape) if not _wants_int(module) else torch.zeros(input_shape, dtype=torch.long)
    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    logging.getLogger("torch._export").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(module, (x,), dynamo=True, verbose=False, opset_version=opset,
                                        external_data=False, optimize=True)
            model = program.model_proto
        except Exception as first:  # torch.export cannot trace everything (data-dependent control flow)
            buf = io.BytesIO()
            try:
                torch.onnx.export(module, (x,), buf, dynamo=False, opset_version=opset,
                                  input_names=["input"], output_names=["output"])
            except Exception:
                raise EdgefitError(f"torch.onnx.export failed: {str(first).splitlines()[0][:200]}",
                                   where="MODEL", fix="make the module exportable with torch.export") from None
            import onnx

            model = onnx.load_from_string(buf.getvalue())
    from edgefit.graph._load import MAX_IR_VERSION

    model.ir_version = min(model.ir_version, MAX_IR_VERSION)
    return model


def _wants_int(module) -> bool:
    return bool(getattr(module, "input_is_token_ids", False))
