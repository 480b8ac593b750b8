"""Features of one lowered kernel, for the learned cost model (:mod:`edgefit.estimate._learned`).

A kernel is described by what decides its time on a CPU: its math (MACs, reduction length, rows),
its traffic (activation, output and weight bytes), its shape class (kernel area, stride, groups,
depthwise), its element types (fp32 / u8 / s8 activations, s8 weights, per-channel scales) and the
thread count. The regressor predicts the log-ratio of the measured time to a *reference* time — a
crude roofline at fixed nominal rates — so that a kernel larger than any it was trained on still
scales with its work instead of saturating at the largest training value (trees cannot
extrapolate).
"""

from __future__ import annotations

import math

import numpy as np

from edgefit.estimate._lower_ort import LoweredNode

# Nominal rates of the reference time: not a claim about any machine, only the scale the learned
# log-ratio is measured against.
REF_OPS_PER_S = 2e10
REF_BYTES_PER_S = 2e10
REF_FLOOR_S = 1e-6

_BYTES = {
    "fp32": 4,
    "fp16": 2,
    "fp64": 8,
    "u8": 1,
    "s8": 1,
    "s32": 4,
    "s64": 8,
    "bool": 1,
    "s16": 2,
    "u16": 2,
}
_DTYPE_CODE = {"fp32": 0.0, "u8": 1.0, "s8": 2.0, "fp16": 3.0, "s32": 4.0, "s64": 5.0}

_CONV = {"Conv", "FusedConv", "QLinearConv", "ConvInteger", "NhwcFusedConv"}
_GEMM = {
    "Gemm",
    "MatMul",
    "FusedGemm",
    "FusedMatMul",
    "QGemm",
    "MatMulInteger",
    "QLinearMatMul",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "MatMulNBits",
}
_POOL = {
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "LpPool",
}
_QUANT = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"}
_NORM = {
    "LayerNormalization",
    "SkipLayerNormalization",
    "SimplifiedLayerNormalization",
    "BatchNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "Softmax",
    "QLinearSoftmax",
    "LogSoftmax",
}
_MOVE = {
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "QLinearConcat",
    "Split",
    "Slice",
    "Gather",
    "ReorderInput",
    "ReorderOutput",
    "Identity",
    "Expand",
    "Pad",
    "Tile",
    "Resize",
    "Upsample",
    "Shape",
    "Cast",
    "DepthToSpace",
    "SpaceToDepth",
}
_RNN = {"GRU", "LSTM", "RNN"}
CATEGORIES = ("conv", "gemm", "pool", "quant", "norm", "move", "rnn", "eltwise", "convT")
# A stable number per op so one model over all kernels can tell them apart (append only: the
# position is stored in profiles; unknown ops get -1 and lean on the other features).
OP_CODES = (
    "Conv",
    "FusedConv",
    "QLinearConv",
    "ConvInteger",
    "ConvTranspose",
    "Gemm",
    "FusedGemm",
    "MatMul",
    "FusedMatMul",
    "QGemm",
    "QLinearMatMul",
    "MatMulInteger",
    "MatMulIntegerToFloat",
    "DynamicQuantizeMatMul",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "QLinearAveragePool",
    "QLinearGlobalAveragePool",
    "QuantizeLinear",
    "DequantizeLinear",
    "DynamicQuantizeLinear",
    "LayerNormalization",
    "SkipLayerNormalization",
    "BatchNormalization",
    "Softmax",
    "QLinearSoftmax",
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Concat",
    "QLinearConcat",
    "Split",
    "Slice",
    "Gather",
    "ReorderInput",
    "ReorderOutput",
    "Resize",
    "Pad",
    "GRU",
    "LSTM",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "Relu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Erf",
    "Gelu",
    "BiasGelu",
    "FastGelu",
    "Tanh",
    "QLinearAdd",
    "QLinearMul",
    "QLinearSigmoid",
    "QLinearLeakyRelu",
    "ReduceMean",
    "Sqrt",
    "Pow",
    "Where",
    "Expand",
    "Cast",
    "QuickGelu",
    "Attention",
    "MultiHeadAttention",
    "Identity",
    "Max",
    "Min",
    "Neg",
    "Exp",
    "Tile",
    "Shape",
    "ConstantOfShape",
)
_OP_CODE = {op: float(i) for i, op in enumerate(OP_CODES)}

FEATURES = (
    "log_macs",
    "log_in_bytes",
    "log_out_bytes",
    "log_w_bytes",
    "log_out_elems",
    "kernel_area",
    "stride",
    "depthwise",
    "log_groups",
    "log_cin",
    "log_cout",
    "log_spatial",
    "log_reduction",
    "log_rows",
    "per_channel",
    "act_type",
    "w_type",
    "threads",
    "category",
    "nchwc",
    "n_inputs",
    "op_code",
    "log_ref",
)


def category(node: LoweredNode) -> str:
    op = node.op
    if op == "ConvTranspose":
        return "convT"
    if op in _CONV:
        return "conv"
    if op in _GEMM:
        return "gemm"
    if op in _POOL:
        return "pool"
    if op in _QUANT:
        return "quant"
    if op in _NORM:
        return "norm"
    if op in _MOVE:
        return "move"
    if op in _RNN:
        return "rnn"
    return "eltwise"


def op_key(node: LoweredNode) -> str:
    """The kernel's identity for the per-op models: op, layout domain and element types."""
    act = node.in_types[0] if node.in_types else "?"
    key = node.op + ("@nchwc" if node.domain == "com.microsoft.nchwc" else "")
    if node.op in ("QLinearConv", "QGemm", "QLinearMatMul", "MatMulInteger", "ConvInteger"):
        w_index = {"QLinearConv": 3, "QGemm": 3, "QLinearMatMul": 3}.get(node.op, 1)
        w = node.in_types[w_index] if w_index < len(node.in_types) else "?"
        return f"{key}/{act}{w}"
    return f"{key}/{act}"


def _prod(shape) -> float:
    return float(math.prod(shape)) if shape else 0.0


def _weight_index(node: LoweredNode) -> int | None:
    if node.op in ("QLinearConv", "QGemm", "QLinearMatMul"):
        return 3
    if node.op in _CONV or node.op in ("MatMulInteger", "ConvTranspose"):
        return 1
    if node.op in _GEMM:
        return 1 if 1 in node.weights else None
    if node.op in _RNN:
        return 1  # W, the input weights (dirs, gates × hidden, input); R, the recurrence, is 2
    return None


def _work(node: LoweredNode) -> dict[str, float]:
    """MACs and shape facts of ``node`` from its runtime shapes."""
    out = node.out_shapes[0] if node.out_shapes else ()
    out_elems = _prod(out)
    facts = {
        "macs": 0.0,
        "area": 0.0,
        "stride": 1.0,
        "groups": 1.0,
        "cin": 0.0,
        "cout": 0.0,
        "spatial": _prod(out[2:]) if len(out) > 2 else (out[-1] if out else 0.0),
        "rows": 0.0,
        "k": 0.0,
    }
    cat = category(node)
    wi = _weight_index(node)
    w = node.shape(wi) if wi is not None else ()
    x = node.shape(0)
    if cat in ("conv", "convT") and len(w) >= 3:
        groups = float(node.attrs.get("group", 1) or 1)
        k = _prod(w[2:])
        facts.update(
            area=k,
            groups=groups,
            cout=float(w[0]) if cat == "conv" else float(w[1] * groups),
            cin=float(x[1])
            if len(x) > 1 and node.domain != "com.microsoft.nchwc"
            else float(w[1] * groups),
            stride=float(max(node.attrs.get("strides", [1]) or [1])),
        )
        if (
            node.op == "QLinearConv"
            and len(x) == 4
            and len(out) == 4
            and node.attrs.get("channels_last")
        ):
            facts["spatial"] = out[1] * out[2]
        if cat == "conv":
            facts["macs"] = out_elems * _prod(w[1:])
        else:
            facts["macs"] = _prod(x) * w[1] * k
        facts["k"] = facts["macs"] / out_elems if out_elems else 0.0
    elif cat == "gemm" and x:
        kdim = (
            float(x[-1]) if not node.attrs.get("transA") else float(x[-2] if len(x) > 1 else x[-1])
        )
        facts.update(
            macs=out_elems * kdim,
            k=kdim,
            rows=_prod(x[:-1]),
            cout=float(out[-1]) if out else 0.0,
            cin=kdim,
        )
    elif cat == "rnn" and len(x) == 3:
        wr = node.shape(2)
        hidden = float(wr[-1]) if wr else 0.0
        gates_h = float(w[1]) if len(w) > 1 else 0.0
        dirs = float(w[0]) if w else 1.0
        facts.update(
            macs=x[0] * x[1] * dirs * gates_h * (x[2] + hidden),
            rows=float(x[0]),
            cin=float(x[2]),
            cout=hidden,
            k=x[2] + hidden,
        )
    elif cat == "pool" and x:
        kernel = node.attrs.get("kernel_shape") or list(x[2:])
        facts.update(
            area=_prod(kernel),
            stride=float(max(node.attrs.get("strides", [1]) or [1])),
            cin=float(x[1]) if len(x) > 1 else 0.0,
        )
    return facts


def _bytes(node: LoweredNode) -> tuple[float, float, float]:
    wi = _weight_index(node)
    in_b = w_b = 0.0
    for i, (_shape, t) in enumerate(zip(node.in_shapes, node.in_types)):
        size = _prod(node.shape(i)) * _BYTES.get(t, 4)
        if i == wi or i in node.weights:
            w_b += size
        else:
            in_b += size
    out_b = sum(_prod(s) * _BYTES.get(t, 4) for s, t in zip(node.out_shapes, node.out_types))
    return in_b, out_b, w_b


def _recurrent_bytes(node: LoweredNode) -> float:
    """The weight traffic a recurrent kernel adds over one read of its weights: each of its
    sequence steps is a matrix-vector product over the recurrence weights (input 2), read again
    from cache every step (onnxruntime projects the inputs for all steps in one GEMM first)."""
    if category(node) != "rnn" or len(node.shape(0)) != 3:
        return 0.0
    r = node.shape(2)
    r_type = node.in_types[2] if len(node.in_types) > 2 else "fp32"
    return max(float(node.shape(0)[0]) - 1.0, 0.0) * _prod(r) * _BYTES.get(r_type, 4)


def reference_time(macs: float, moved_bytes: float) -> float:
    return macs / REF_OPS_PER_S + moved_bytes / REF_BYTES_PER_S + REF_FLOOR_S


def node_features(node: LoweredNode, threads: int) -> tuple[np.ndarray, float]:
    """(feature vector in :data:`FEATURES` order, reference time in seconds)."""
    f = _work(node)
    in_b, out_b, w_b = _bytes(node)
    ref = reference_time(f["macs"], in_b + out_b + w_b + _recurrent_bytes(node))
    wi = _weight_index(node)
    w_type = node.in_types[wi] if wi is not None and wi < len(node.in_types) else "fp32"
    per_channel = 0.0
    if node.op in ("QLinearConv", "QGemm", "QLinearMatMul") and len(node.in_shapes) > 4:
        per_channel = float(_prod(node.shape(4)) > 1)
    elif node.op in ("QuantizeLinear", "DequantizeLinear") and len(node.in_shapes) > 1:
        per_channel = float(_prod(node.shape(1)) > 1)
    out_elems = _prod(node.out_shapes[0]) if node.out_shapes else 0.0
    lg = math.log1p
    vec = np.array(
        [
            lg(f["macs"]),
            lg(in_b),
            lg(out_b),
            lg(w_b),
            lg(out_elems),
            f["area"],
            f["stride"],
            float(f["groups"] > 1 and f["groups"] >= f["cin"] > 0),
            lg(f["groups"]),
            lg(f["cin"]),
            lg(f["cout"]),
            lg(f["spatial"]),
            lg(f["k"]),
            lg(f["rows"]),
            per_channel,
            _DTYPE_CODE.get(node.in_types[0] if node.in_types else "fp32", 6.0),
            _DTYPE_CODE.get(w_type, 6.0),
            float(threads),
            float(CATEGORIES.index(category(node))),
            float(node.domain == "com.microsoft.nchwc"),
            float(len(node.in_shapes)),
            _OP_CODE.get(node.op, -1.0),
            math.log(ref),
        ]
    )
    return vec, ref
