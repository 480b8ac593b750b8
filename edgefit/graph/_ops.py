"""Cost rules per ONNX op type: kind, MACs and elementwise ops from shapes and attributes.

A rule gets the node and a :class:`ShapeInfo` view of the graph and returns ``(kind, macs, ops)``.
Ops without a rule are counted as memory-bound ``unknown`` layers with a warning — never a crash.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Protocol

import onnx


class ShapeInfo(Protocol):
    def shape(self, name: str) -> tuple[int, ...] | None: ...


Rule = Callable[[onnx.NodeProto, ShapeInfo], tuple[str, int, int]]
RULES: dict[str, Rule] = {}


def rule(*op_types: str):
    def register(fn: Rule) -> Rule:
        for op in op_types:
            RULES[op] = fn
        return fn

    return register


def attr(node: onnx.NodeProto, name: str, default=None):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def numel(shape: tuple[int, ...] | None) -> int:
    return math.prod(shape) if shape else 0


def _out(node: onnx.NodeProto, g: ShapeInfo) -> tuple[int, ...] | None:
    return g.shape(node.output[0]) if node.output else None


@rule("Conv", "QLinearConv", "ConvInteger")
def _conv(node, g):
    # QLinearConv: x, x_scale, x_zp, w, ...; Conv/ConvInteger: x, w, ...
    w_name = node.input[3] if node.op_type == "QLinearConv" else node.input[1]
    w, out = g.shape(w_name), _out(node, g)
    if not w or not out:
        return "conv", 0, 0
    group = int(attr(node, "group", 1))
    cin_per_group, kernel = w[1], math.prod(w[2:])
    macs = numel(out) * cin_per_group * kernel
    depthwise = group > 1 and cin_per_group == 1
    return ("depthwise_conv" if depthwise else "conv"), macs, 2 * macs


@rule("ConvTranspose")
def _conv_transpose(node, g):
    x, w = g.shape(node.input[0]), g.shape(node.input[1])
    if not x or not w:
        return "conv_transpose", 0, 0
    # every input element scatters into (C_out / group) × kernel outputs; W is (C_in, C_out/group,
    # k...)
    macs = numel(x) * w[1] * math.prod(w[2:])
    return "conv_transpose", macs, 2 * macs


@rule("Gemm", "QGemm")
def _gemm(node, g):
    a, b = (
        g.shape(node.input[0]),
        g.shape(node.input[1] if node.op_type == "Gemm" else node.input[3]),
    )
    if not a or not b:
        return "gemm", 0, 0
    m, k = (a[1], a[0]) if attr(node, "transA", 0) else (a[0], a[1])
    n = b[0] if attr(node, "transB", 0) else b[1]
    return "gemm", m * n * k, 2 * m * n * k


@rule("MatMul", "MatMulInteger", "QLinearMatMul", "MatMulNBits", "FusedMatMul")
def _matmul(node, g):
    if node.op_type == "QLinearMatMul":
        a, b = g.shape(node.input[0]), g.shape(node.input[3])
    else:
        a, b = g.shape(node.input[0]), g.shape(node.input[1])
    out = _out(node, g)
    if node.op_type == "MatMulNBits":  # B is packed; K and N are attributes
        k, n = int(attr(node, "K", 0)), int(attr(node, "N", 0))
        macs = numel(a) // max(1, a[-1]) * n * k if a else 0
        return "matmul", macs, 2 * macs
    if not a or not out:
        return "matmul", 0, 0
    k = a[-1]
    macs = numel(out) * k
    return ("gemm" if len(a) <= 2 and b is not None and len(b) <= 2 else "matmul"), macs, 2 * macs


@rule("Einsum")
def _einsum(node, g):
    eq = str(attr(node, "equation", b"")).replace(" ", "")
    eq = eq[2:-1] if eq.startswith("b'") else eq
    lhs = eq.split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for term, name in zip(lhs, node.input):
        shape = g.shape(name)
        if shape and "." not in term and len(term) == len(shape):
            sizes.update(zip(term, shape))
    if not sizes:
        return "matmul", 0, 0
    macs = math.prod(sizes.values())
    return "matmul", macs, 2 * macs


def _rnn(gates: int):
    def cost(node, g):
        x, w, r = g.shape(node.input[0]), g.shape(node.input[1]), g.shape(node.input[2])
        if not x or not w or not r:
            return "rnn", 0, 0
        layout = int(attr(node, "layout", 0))
        seq, batch = (x[1], x[0]) if layout else (x[0], x[1])
        directions, input_size, hidden = w[0], w[2], r[2]
        macs = directions * seq * batch * gates * hidden * (input_size + hidden)
        return "rnn", macs, 2 * macs + directions * seq * batch * hidden * gates * 4

    return cost


RULES["LSTM"] = _rnn(4)
RULES["GRU"] = _rnn(3)
RULES["RNN"] = _rnn(1)


@rule("MaxPool", "AveragePool", "LpPool")
def _pool(node, g):
    k = math.prod(attr(node, "kernel_shape", [1]))
    return "pool", 0, numel(_out(node, g)) * k


@rule("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(node, g):
    return "pool", 0, numel(g.shape(node.input[0]))


def _per_elem(kind: str, ops_per_elem: float, source: str = "out"):
    def cost(node, g):
        shape = _out(node, g) if source == "out" else g.shape(node.input[0])
        return kind, 0, int(numel(shape) * ops_per_elem)

    return cost


for _op in ("BatchNormalization",):
    RULES[_op] = _per_elem("norm", 2)
for _op in (
    "LayerNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "RMSNormalization",
    "SkipLayerNormalization",
    "SimplifiedLayerNormalization",
    "LpNormalization",
):
    RULES[_op] = _per_elem("norm", 8, "in")
for _op in (
    "Relu",
    "LeakyRelu",
    "PRelu",
    "Clip",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "Gelu",
    "FastGelu",
    "Mish",
    "Erf",
    "Exp",
    "Log",
    "Sqrt",
    "Reciprocal",
    "Abs",
    "Neg",
    "Sin",
    "Cos",
    "Celu",
    "ThresholdedRelu",
    "QuickGelu",
    "BiasGelu",
):
    RULES[_op] = _per_elem(
        "activation", 1 if _op in ("Relu", "Clip", "Abs", "Neg", "LeakyRelu") else 4
    )
for _op in (
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Pow",
    "Max",
    "Min",
    "Sum",
    "Mean",
    "Where",
    "Equal",
    "Greater",
    "Less",
    "GreaterOrEqual",
    "LessOrEqual",
    "And",
    "Or",
    "Not",
    "Xor",
    "Mod",
    "BitShift",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "IsNaN",
    "IsInf",
    "QLinearAdd",
    "QLinearMul",
    "BiasAdd",
    "Dropout",
    "QLinearLeakyRelu",
    "QLinearSigmoid",
):
    RULES[_op] = _per_elem("elementwise", 1)
for _op in ("Softmax", "LogSoftmax", "Hardmax"):
    RULES[_op] = _per_elem("softmax", 5)
for _op in (
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceSumSquare",
    "ArgMax",
    "ArgMin",
    "CumSum",
    "TopK",
):
    RULES[_op] = _per_elem("reduce", 1, "in")
for _op in ("Resize", "Upsample", "GridSample", "DepthToSpace", "SpaceToDepth"):
    RULES[_op] = _per_elem("resize", 4 if _op in ("Resize", "Upsample", "GridSample") else 0)
for _op in (
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Transpose",
    "Concat",
    "Split",
    "Slice",
    "Gather",
    "GatherElements",
    "GatherND",
    "Shape",
    "Size",
    "Expand",
    "Tile",
    "Pad",
    "Identity",
    "Cast",
    "CastLike",
    "Constant",
    "ConstantOfShape",
    "Range",
    "NonZero",
    "ScatterND",
    "ScatterElements",
    "OneHot",
    "Trilu",
    "EyeLike",
    "Compress",
    "ReverseSequence",
    "SplitToSequence",
    "Col2Im",
):
    RULES[_op] = _per_elem("shape", 0)
for _op in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
    RULES[_op] = _per_elem("quant", 2)
