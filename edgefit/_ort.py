"""The one onnxruntime session builder (#15 "one measurement path").

Every part of edgefit that runs an ONNX model in-process — measuring, scoring accuracy, lowering a
graph for the estimator, calibrating kernels, checking export parity, serving a cascade tier —
opens its session here, so that they all run the model the same way: sequential execution, one
inter-op thread, the requested intra-op threads (None: onnxruntime's default, one per physical
core), the requested graph optimization level, warnings off. What differs between callers
(profiling, saving the optimized graph, providers) is an argument, not a second builder.

onnxruntime is imported on the first call (through :func:`edgefit._lazy.lazy_import`), never when
this module loads.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    import onnxruntime as ort
else:
    ort = lazy_import("onnxruntime")

# edgefit's names for onnxruntime's GraphOptimizationLevel values
OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def session_options(
    threads: int | None = 1,
    *,
    opt_level: str = "all",
    profile_prefix: str | os.PathLike[str] | None = None,
    optimized_path: str | os.PathLike[str] | None = None,
) -> Any:
    """The ``onnxruntime.SessionOptions`` every edgefit session uses (see the module docstring)."""
    if opt_level not in OPT_LEVELS:
        raise ValueError(f"opt_level {opt_level!r}: use one of {', '.join(OPT_LEVELS)}")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or 0  # 0: onnxruntime's default
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPT_LEVELS[opt_level])
    so.log_severity_level = 3  # warnings such as "the optimized model is hardware specific"
    if profile_prefix is not None:
        so.enable_profiling = True
        so.profile_file_prefix = str(profile_prefix)
    if optimized_path is not None:
        so.optimized_model_filepath = str(optimized_path)
    return so


def ort_session(
    model: Any,
    threads: int | None = 1,
    *,
    opt_level: str = "all",
    providers: list[str] | None = None,
    profile_prefix: str | os.PathLike[str] | None = None,
    optimized_path: str | os.PathLike[str] | None = None,
) -> Any:
    """An ``onnxruntime.InferenceSession`` for ``model`` (a path, serialized bytes or an
    ``onnx.ModelProto``) on ``providers`` (default: the CPU provider).

    >>> from edgefit.runtimes.testing import tiny_model
    >>> ort_session(tiny_model(), threads=1).get_inputs()[0].name  # doctest: +SKIP
    'input'
    """
    if isinstance(model, (str, os.PathLike)):
        source: Any = str(Path(model))
    elif isinstance(model, bytes):
        source = model
    else:
        source = model.SerializeToString()
    so = session_options(
        threads, opt_level=opt_level, profile_prefix=profile_prefix, optimized_path=optimized_path
    )
    return ort.InferenceSession(source, so, providers=providers or ["CPUExecutionProvider"])
