"""Build a :class:`Graph` from a shape-inferred ONNX model."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import onnx

from edgefit.graph._layer import COMPUTE_KINDS, Layer
from edgefit.graph._liveness import Lifetime, lifetimes, peak_memory
from edgefit.graph._ops import RULES, attr

# ONNX element type → (edgefit's dtype name, bytes per element; fractional for sub-byte types)
_ELEM: dict[int, tuple[str, float]] = {
    onnx.TensorProto.FLOAT: ("fp32", 4),
    onnx.TensorProto.FLOAT16: ("fp16", 2),
    onnx.TensorProto.BFLOAT16: ("bf16", 2),
    onnx.TensorProto.DOUBLE: ("fp64", 8),
    onnx.TensorProto.INT8: ("int8", 1),
    onnx.TensorProto.UINT8: ("int8", 1),
    onnx.TensorProto.INT16: ("int16", 2),
    onnx.TensorProto.UINT16: ("int16", 2),
    onnx.TensorProto.INT32: ("int32", 4),
    onnx.TensorProto.INT64: ("int64", 8),
    onnx.TensorProto.BOOL: ("bool", 1),
    onnx.TensorProto.INT4: ("int4", 0.5),
    onnx.TensorProto.UINT4: ("int4", 0.5),
    onnx.TensorProto.FLOAT8E4M3FN: ("fp8", 1),
    onnx.TensorProto.FLOAT8E5M2: ("fp8", 1),
}
_QUANT_OPS = {
    "QLinearConv",
    "QLinearMatMul",
    "ConvInteger",
    "MatMulInteger",
    "QGemm",
    "QLinearAdd",
    "QLinearMul",
    "QLinearLeakyRelu",
    "QLinearSigmoid",
}
# inputs that are quantization parameters or running statistics: bytes, but not parameters
_NOT_PARAMS = {
    "QuantizeLinear": {1, 2},
    "DequantizeLinear": {1, 2},
    "BatchNormalization": {3, 4},
    "QLinearConv": {1, 2, 4, 5, 6, 7},
    "QLinearMatMul": {1, 2, 4, 5, 6, 7},
    "MatMulNBits": {2, 3},
    "ConvInteger": {2, 3},
    "MatMulInteger": {2, 3},
}


@dataclass
class Graph:
    """An ONNX model plus its per-layer cost table and activation liveness.

    >>> from edgefit.graph import load_graph
    >>> g = load_graph("model.onnx", input_shape="1x3x224x224")  # doctest: +SKIP
    >>> g.macs, g.params, g.peak_activation_bytes                  # doctest: +SKIP
    """

    model: onnx.ModelProto
    layers: list[Layer]
    inputs: dict[str, tuple[int, ...]]
    outputs: dict[str, tuple[int, ...]]
    lifetimes: list[Lifetime]
    peak_activation_bytes: int
    peak_at: int
    source: str = ""
    tensors: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict, repr=False)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(layer.macs for layer in self.layers)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def weight_bytes(self) -> int:
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def compute_dtype(self) -> str:
        """The dtype most MACs run in ("int8" for a quantized model)."""
        by: dict[str, int] = {}
        for layer in self.layers:
            by[layer.dtype] = by.get(layer.dtype, 0) + layer.macs
        return max(by, key=lambda dtype: by[dtype]) if by else "fp32"

    def summary(self) -> dict:
        return {
            "source": self.source,
            "inputs": {k: list(v) for k, v in self.inputs.items()},
            "outputs": {k: list(v) for k, v in self.outputs.items()},
            "layers": len(self.layers),
            "macs": self.macs,
            "params": self.params,
            "weight_bytes": self.weight_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "peak_at_layer": self.layers[self.peak_at].name if self.layers else None,
            "compute_dtype": self.compute_dtype,
        }

    def to_dict(self) -> dict:
        return {
            **self.summary(),
            "warnings": self.warnings,
            "notes": self.notes,
            "layer_table": [layer.to_dict() for layer in self.layers],
        }


class _Shapes:
    def __init__(self, model: onnx.ModelProto) -> None:
        g = model.graph
        self.types: dict[str, tuple[tuple[int, ...] | None, int]] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            t = vi.type.tensor_type
            if not vi.type.HasField("tensor_type"):
                continue
            dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim)
            shape = dims if t.HasField("shape") and all(d >= 0 for d in dims) else None
            self.types[vi.name] = (shape, t.elem_type)
        self.initializers = {init.name: init for init in g.initializer}
        for name, init in self.initializers.items():
            self.types[name] = (tuple(init.dims), init.data_type)
        for node in g.node:
            if node.op_type == "Constant" and node.output:
                value = attr(node, "value")
                if isinstance(value, onnx.TensorProto):
                    self.types[node.output[0]] = (tuple(value.dims), value.data_type)

    def shape(self, name: str) -> tuple[int, ...] | None:
        return self.types.get(name, (None, 0))[0]

    def elem(self, name: str) -> tuple[str, float]:
        return _ELEM.get(self.types.get(name, (None, 0))[1], ("unknown", 4))

    def nbytes(self, name: str) -> int | None:
        shape = self.shape(name)
        if shape is None:
            return None
        return math.ceil(math.prod(shape) * self.elem(name)[1])


def build_graph(
    model: onnx.ModelProto, *, source: str = "", notes: list[str] | None = None
) -> Graph:
    """Cost table and liveness for a model whose shapes are already inferred."""
    g = model.graph
    info = _Shapes(model)
    warnings: list[str] = []
    const = set(info.initializers)
    produced_by: dict[str, onnx.NodeProto] = {}
    for node in g.node:
        for out in node.output:
            produced_by[out] = node
        if node.op_type in {"Constant", "ConstantOfShape"} or (
            node.input and all(i in const or not i for i in node.input)
        ):
            const.update(node.output)

    def weight_source(name: str) -> str:
        """Follow DequantizeLinear/Cast/Reshape/Transpose chains on constants back to the stored
        tensor."""
        seen = 0
        while name in produced_by and name not in info.initializers and seen < 8:
            node = produced_by[name]
            if node.op_type not in {
                "DequantizeLinear",
                "Cast",
                "Reshape",
                "Transpose",
                "Identity",
                "Unsqueeze",
            }:
                break
            name, seen = node.input[0], seen + 1
        return name

    counted: set[str] = set()
    layers: list[Layer] = []
    seq: list[tuple[list[str], list[str]]] = []
    for node in g.node:
        if node.output and all(o in const for o in node.output):
            # constant folding: runtimes precompute these, weights are charged to their consumer
            continue
        kind, macs, ops = _cost(node, info, warnings)
        params = weight_bytes = 0
        weight_dtypes: list[str] = []
        for pos, name in enumerate(node.input):
            if not name or name not in const:
                continue
            stored = weight_source(name)
            if stored in counted or kind == "shape":
                continue
            counted.add(stored)
            weight_bytes += info.nbytes(stored) or 0
            n = math.prod(info.shape(stored) or ())
            elem = info.elem(stored)[0]
            is_weight = elem not in ("int64", "bool") and (
                elem != "int32" or kind in COMPUTE_KINDS
            )
            if (
                is_weight
                and pos not in _NOT_PARAMS.get(node.op_type, set())
                and (n > 1 or kind in COMPUTE_KINDS)
            ):
                params += n
                weight_dtypes.append(elem)
        act_in = [i for i in node.input if i and i not in const]
        in_bytes = sum(info.nbytes(i) or 0 for i in act_in)
        out_bytes = sum(info.nbytes(o) or 0 for o in node.output if o)
        dtype = _layer_dtype(node, kind, act_in, info, produced_by, weight_dtypes)
        layers.append(
            Layer(
                index=len(layers),
                name=node.name or f"{node.op_type}_{len(layers)}",
                op=node.op_type,
                kind=kind,
                dtype=dtype,
                macs=int(macs),
                ops=int(ops),
                params=int(params),
                weight_bytes=int(weight_bytes),
                input_bytes=int(in_bytes),
                output_bytes=int(out_bytes),
                output_shape=tuple(info.shape(node.output[0]) or ()) if node.output else (),
                inputs=tuple(act_in),
                outputs=tuple(o for o in node.output if o),
                attrs={
                    "weight_dtype": weight_dtypes[0] if weight_dtypes else None,
                    "group": attr(node, "group", 1),
                    "kernel_shape": _kernel_shape(node, info),
                    "strides": list(attr(node, "strides", []) or []),
                    # a dilated convolution's taps spread (Vela expands a dilation above 2)
                    "dilations": list(attr(node, "dilations", []) or []),
                },
            )
        )
        seq.append((list(act_in), [o for o in node.output if o]))
    graph_inputs = [i.name for i in g.input if i.name not in info.initializers]
    graph_outputs = [o.name for o in g.output]
    sizes = {
        name: b
        for name in {n for pair in seq for side in pair for n in side} | set(graph_inputs)
        if (b := info.nbytes(name)) is not None
    }
    lives = lifetimes(seq, graph_inputs, graph_outputs, sizes)
    peak, at = peak_memory(lives, len(seq))
    return Graph(
        model=model,
        layers=layers,
        inputs={n: info.shape(n) or () for n in graph_inputs},
        outputs={n: info.shape(n) or () for n in graph_outputs},
        lifetimes=lives,
        peak_activation_bytes=peak,
        peak_at=at,
        source=source,
        # every sized tensor has a shape (nbytes is None exactly when the shape is)
        tensors={
            n: (shape, info.elem(n)[0]) for n in sizes if (shape := info.shape(n)) is not None
        },
        warnings=warnings,
        notes=list(notes or []),
    )


def _kernel_shape(node: onnx.NodeProto, info: _Shapes) -> list[int]:
    """The attribute, or (it is optional in ONNX) the spatial dims of a convolution's weight."""
    shape = attr(node, "kernel_shape", None)
    if shape:
        return list(shape)
    if node.op_type in ("Conv", "ConvTranspose", "ConvInteger") and len(node.input) > 1:
        w = info.shape(node.input[1])
        return list(w[2:]) if w else []
    if node.op_type == "QLinearConv" and len(node.input) > 3:
        w = info.shape(node.input[3])
        return list(w[2:]) if w else []
    return []


def _cost(node: onnx.NodeProto, info: _Shapes, warnings: list[str]) -> tuple[str, int, int]:
    fn = RULES.get(node.op_type)
    if fn is None:
        out = info.nbytes(node.output[0]) if node.output else 0
        warnings.append(
            f"op '{node.op_type}' (node '{node.name}') has no cost rule; counted as memory-bound"
        )
        return "unknown", 0, (out or 0) // 4
    try:
        return fn(node, info)
    except Exception as exc:  # a malformed node must not stop the whole table
        warnings.append(
            f"could not cost node '{node.name}' ({node.op_type}): {exc}; counted as memory-bound"
        )
        return "unknown", 0, 0


def _layer_dtype(node, kind, act_in, info, produced_by, weight_dtypes) -> str:
    if node.op_type in _QUANT_OPS:
        return "int8"
    if kind in COMPUTE_KINDS:
        quant_act = any(
            i in produced_by and produced_by[i].op_type == "DequantizeLinear" for i in act_in
        )
        if quant_act and weight_dtypes and weight_dtypes[0] in ("int8", "int4"):
            return "int8"
    for name in list(node.output) + act_in:
        dtype = info.elem(name)[0]
        if dtype in ("fp32", "fp16", "bf16", "fp64", "int8", "fp8"):
            return dtype
    return "fp32"
