"""ONNX plumbing shared by the quantize pass and the sensitivity measurement: preparing a graph
(named nodes, onnxruntime's pre-processing), Gemm → MatMul rewriting, static QDQ, running and
comparing.

onnx, onnxruntime and numpy load on first use, through :func:`edgefit._lazy.lazy_import`
(``import edgefit.passes`` stays light).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session
from edgefit.errors import EdgefitError
from edgefit.runtimes._ort_convert import _preprocess, _reader, save

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import onnxruntime.quantization as ort_quant

    from edgefit.estimate import _fingerprint
    from edgefit.targets import _host
else:  # the CPU probe brings pydantic, the int8-path table numpy and onnx
    np, onnx, ort_quant = lazy_import("numpy", "onnx", "onnxruntime.quantization")
    _fingerprint, _host = lazy_import("edgefit.estimate._fingerprint", "edgefit.targets._host")

WEIGHT_OPS = (
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
)  # ops whose 2nd input is a weight initializer
CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


def load(model: Any):
    """An ``onnx.ModelProto`` from a path or a proto (a copy: passes never modify their input)."""
    if isinstance(model, onnx.ModelProto):
        return copy.deepcopy(model)
    if isinstance(model, (str, Path)):
        return onnx.load(str(model))
    raise EdgefitError(
        f"the quantize pass takes an ONNX model, not {type(model).__name__}",
        where="MODEL",
        fix="export the torch module first (materialize() does) or pass an .onnx path",
    )


def name_nodes(model) -> Any:
    """Give every unnamed node a stable name (``<op>_<index>``) so ``keep_float`` can address
    it."""
    used = {n.name for n in model.graph.node if n.name}
    for i, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{i}"
            while name in used:
                name += "_"
            node.name = name
            used.add(name)
    return model


def prepare(model: Any, folder: Path, preprocess: bool) -> tuple[Path, str | None]:
    """Write ``model`` (nodes named; pre-processed when asked and possible) into ``folder``;
    returns the file and a note when pre-processing failed. Node names survive
    ``quant_pre_process``, so names measured on one prepared copy address the same nodes in
    another."""

    model = name_nodes(load(model))
    return _preprocess(model, folder) if preprocess else (save(model, folder / "raw.onnx"), None)


def weight_nodes(model, op_types: Sequence[str] = WEIGHT_OPS) -> list[tuple[str, str]]:
    """``(name, op_type)`` of the nodes of ``op_types`` whose weight (input 1) is an
    initializer."""
    inits = {i.name for i in model.graph.initializer}
    return [
        (n.name, n.op_type)
        for n in model.graph.node
        if n.op_type in op_types and len(n.input) > 1 and n.input[1] in inits
    ]


def reader(feeds: Sequence[dict]):
    return _reader(list(feeds))


class _AxisWarnings(logging.Filter):
    """onnxruntime logs "Axis 1 is out-of-range for weight …" on the root logger for every 1-D
    weight (a LayerNorm scale) under per-channel quantization; it then quantizes that weight per
    tensor, which is what it should do, so the line is noise on the user's terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "is out-of-range for weight" not in record.getMessage()


@contextlib.contextmanager
def _without_axis_warnings():
    root, quiet = logging.getLogger(), _AxisWarnings()
    root.addFilter(quiet)  # logging.warning() logs on the root logger itself
    try:
        yield
    finally:
        root.removeFilter(quiet)


# onnxruntime's quantization docs: on x86 without VNNI, U8S8 kernels add pairs of u8 x s8 products
# in 16-bit lanes (vpmaddubsw), which saturate when weights use the full 8-bit range; 7-bit weights
# (reduce_range) cannot
_SATURATING_INT8_PATHS = ("avx2", "avx512")


def host_int8_recipe() -> tuple[bool, str]:
    """``(reduce_range, why)`` for onnxruntime's int8 kernels on this CPU.

    The quantized model is scored (and, on host-cpu, run) here, so its weights must suit the
    kernels here: full 8-bit weights where the int8 path accumulates in 32 bits (VNNI, AMX, Arm dot
    products), 7-bit weights where it would saturate 16-bit sums (AVX2, AVX-512 without VNNI).
    """
    path = _fingerprint.int8_path(_host.probe_host().flags)
    if path in _SATURATING_INT8_PATHS:
        return True, (
            f"7-bit weights (reduce_range): this CPU's int8 path is {path}, without VNNI, where "
            "onnxruntime's U8S8 kernels sum u8 x s8 pairs in 16 bits and saturate with full-range "
            "weights"
        )
    return (
        False,
        f"full 8-bit weights: this CPU's int8 path is {path}, whose kernels accumulate in 32 bits",
    )


def static_qdq(
    source: Path,
    out: Path,
    feeds: Sequence[dict],
    *,
    calibration: str,
    per_channel: bool,
    exclude: Sequence[str] = (),
    include: Sequence[str] | None = None,
    op_types: Sequence[str] = (),
    cache: Path | None = None,
    reduce_range: bool | None = None,
) -> None:
    """onnxruntime static quantization in QDQ format: U8 activations, S8 weights, the given
    calibration method. ``cache`` (a JSON file) stores the calibrated ranges: a second call with
    the same file skips calibration, which makes measuring one node at a time affordable.
    ``reduce_range=None`` takes this CPU's choice (:func:`host_int8_recipe`)."""
    if reduce_range is None:
        reduce_range = host_int8_recipe()[0]

    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            _without_axis_warnings(),
        ):  # calibrators print progress
            ort_quant.quantize_static(
                str(source),
                str(out),
                reader(feeds),
                quant_format=ort_quant.QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=reduce_range,
                activation_type=ort_quant.QuantType.QUInt8,
                weight_type=ort_quant.QuantType.QInt8,
                calibrate_method=getattr(
                    ort_quant.CalibrationMethod, CALIBRATION_METHODS[calibration]
                ),
                nodes_to_exclude=list(exclude),
                nodes_to_quantize=None if include is None else list(include),
                op_types_to_quantize=list(op_types) or None,
                calibration_cache_path=str(cache) if cache else None,
                extra_options={"QDQKeepRemovableActivations": True},
            )
    except Exception as exc:
        raise EdgefitError(
            f"onnxruntime quantize_static failed: {type(exc).__name__}: {str(exc)[:300]}",
            where="QuantizeConfig(precision='int8')",
            fix="try calibration='minmax', precision='int8-dynamic', or fp32",
        ) from None
    model = onnx.load(str(out))
    protect_float_nodes(model)
    save(model, out)


def protect_float_nodes(model) -> list[str]:
    """Keep float Conv / ConvTranspose / Gemm nodes float at run time; returns their names.

    onnxruntime's ``WeightBiasQuantization`` graph transformer (run when a session loads the model)
    quantizes the float weight of any Conv / ConvTranspose / Gemm whose input comes from a
    DequantizeLinear, per tensor: a node ``nodes_to_exclude`` kept float would silently run in
    int8, with the coarsest weight scale there is. Feeding such a node the activation *before* its
    Quantize → Dequantize pair (in place) keeps it float. The quantizer must have kept removable
    activations (``QDQKeepRemovableActivations``), or the tensor before the pair would lack its
    Relu.
    """
    producers = {out: node for node in model.graph.node for out in node.output}
    inits = {i.name for i in model.graph.initializer}
    protected = []
    for node in model.graph.node:
        if node.op_type not in ("Conv", "ConvTranspose", "Gemm") or node.input[1] not in inits:
            continue  # quantized nodes read their weight from a DequantizeLinear
        dq = producers.get(node.input[0])
        q = (
            producers.get(dq.input[0])
            if dq is not None and dq.op_type == "DequantizeLinear"
            else None
        )
        if q is not None and q.op_type == "QuantizeLinear":
            node.input[0] = q.input[0]
            protected.append(node.name)
    _drop_dead(model)
    return protected


def _drop_dead(model) -> None:
    """Remove Quantize/Dequantize nodes whose outputs nothing reads any more (and their scales)."""
    freed: set[str] = set()
    while True:
        read = {i for n in model.graph.node for i in n.input} | {
            o.name for o in model.graph.output
        }
        dead = [
            n
            for n in model.graph.node
            if n.op_type in ("QuantizeLinear", "DequantizeLinear")
            and not any(o in read for o in n.output)
        ]
        if not dead:
            break
        for node in dead:
            freed.update(node.input)
            model.graph.node.remove(node)
    kept = [i for i in model.graph.initializer if i.name not in freed or i.name in read]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)


def session(path: Path, threads: int):
    return ort_session(path, threads)


def run(path: Path, feeds: Sequence[dict], threads: int) -> list[list[Any]]:
    """Every output for every feed."""
    sess = session(path, threads)
    return [sess.run(None, feed) for feed in feeds]


def nmse(reference: list[list[Any]], test: list[list[Any]]) -> float:
    """Normalized squared error ‖test − ref‖² / ‖ref‖² over all outputs of all feeds (0 =
    identical)."""
    num = sum(
        float(np.sum((np.asarray(t, np.float64) - np.asarray(r, np.float64)) ** 2))
        for rs, ts in zip(reference, test)
        for r, t in zip(rs, ts)
    )
    den = sum(float(np.sum(np.asarray(r, np.float64) ** 2)) for rs in reference for r in rs)
    return num / max(den, 1e-30)


def sqnr_db(reference: list[list[Any]], test: list[list[Any]]) -> float:
    """Signal-to-quantization-noise ratio in dB (higher is closer; ``inf`` when identical)."""
    err = nmse(reference, test)
    return math.inf if err == 0 else -10 * math.log10(err)
