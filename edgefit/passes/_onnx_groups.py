"""Channel groups of an ONNX graph: which initializers must shrink together when a layer loses
output channels (for :mod:`edgefit.passes._onnx_prune`).

A group starts at a *producer* (a Conv with ``group == 1``, or a Gemm/MatMul with a constant
weight) and follows the producer's output through ops that treat channels independently
(activations, BatchNormalization, Add/Sub/Mul/Div with a per-channel or scalar constant, depthwise
Conv, pooling, a ReduceMean over spatial axes, Flatten/Reshape of a 1×1 map) until every path ends
in a *consumer* whose input channels can be sliced (Conv, Gemm, MatMul with a constant weight).
Anything else on the way — a residual Add/Mul/Concat of two activations, a graph output, an op not
listed, a shared initializer, an unknown shape — stops the group, with the reason: the caller
leaves it whole. Shapes come from onnx's shape inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    import onnx
else:
    onnx = lazy_import("onnx")

PER_CHANNEL = frozenset(
    {"Relu", "Clip", "Sigmoid", "HardSwish", "HardSigmoid", "LeakyRelu", "Tanh", "Identity"}
    | {"Dropout", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool"}
)
ARITHMETIC = frozenset({"Add", "Sub", "Mul", "Div"})


class _Stop(Exception):
    """A channel group cannot be pruned; the message says why."""


@dataclass
class Group:
    """One producer's output channels and everything that must shrink with them."""

    producer: str
    channels: int
    weight: tuple[str, int]  # the producer's weight and its output-channel axis (for ranking)
    slices: list[tuple[str, int]] = field(default_factory=list)  # (initializer, axis)
    depthwise: list[Any] = field(default_factory=list)  # Conv nodes whose 'group' follows
    reshapes: list[tuple[Any, int]] = field(default_factory=list)  # (node, entry naming C)


class _Graph:
    """Producer/consumer maps, initializers and inferred shapes of one model."""

    def __init__(self, model) -> None:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        self.inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        self.outputs = {o.name for o in model.graph.output}
        self.consumers: dict[str, list[tuple[Any, int]]] = {}
        self.uses: dict[str, int] = {}
        for node in model.graph.node:
            for k, name in enumerate(node.input):
                self.consumers.setdefault(name, []).append((node, k))
                self.uses[name] = self.uses.get(name, 0) + 1
        self.shapes: dict[str, list[int | None]] = {}
        g = inferred.graph
        for vi in (*g.input, *g.value_info, *g.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]

    def const(self, name: str) -> Any:
        """The initializer ``name``, used by one node only (slicing a shared one breaks the
        other user)."""
        if name not in self.inits:
            raise _Stop(f"'{name}' is computed, not a constant")
        if self.uses.get(name, 0) > 1:
            raise _Stop(f"initializer '{name}' is shared by several nodes")
        return self.inits[name]


def _attr(node, name: str, default: Any = None) -> Any:
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _producer(g: _Graph, node) -> Group | None:
    """The group a node starts, when it is a Conv/Gemm/MatMul with constant weights (its output
    channels on axis 0 of a Conv weight, on the output axis of a Gemm/MatMul weight)."""
    op, ins = node.op_type, list(node.input)
    if op not in ("Conv", "Gemm", "MatMul") or len(ins) < 2 or ins[1] not in g.inits:
        return None
    w, trans_b = g.inits[ins[1]], bool(_attr(node, "transB", 0))
    if op == "Conv" and _attr(node, "group", 1) == 1:
        axis = 0
    elif op == "Gemm" and not _attr(node, "transA", 0) and w.ndim == 2:
        axis = 0 if trans_b else 1
    elif op == "MatMul" and w.ndim == 2:
        axis = 1
    else:
        return None
    group = Group(node.name, int(w.shape[axis]), (ins[1], axis), [(ins[1], axis)])
    if len(ins) > 2 and ins[2]:
        bias = g.inits.get(ins[2])
        if bias is None:
            return None  # a computed bias: not a layer this pass knows
        if bias.size > 1:
            group.slices.append((ins[2], bias.ndim - 1))
    return group


def _arith(g: _Graph, group: Group, node, k: int, axis: int, rank: int) -> None:
    other = node.input[1 - k]
    if other not in g.inits:
        raise _Stop(f"{node.op_type} '{node.name}' joins two computed tensors (residual)")
    const = g.const(other)
    pos = axis - (rank - const.ndim)
    if pos >= 0 and const.shape[pos] == group.channels:
        group.slices.append((other, pos))
    elif pos >= 0 and const.shape[pos] != 1:
        raise _Stop(f"{node.op_type} '{node.name}' has a constant that mixes channels")


def _sink(g: _Graph, group: Group, node, axis: int, rank: int) -> bool:
    """Slice a consumer's input channels; ``False`` when ``node`` is a depthwise Conv (the group
    continues through it)."""
    op, ins = node.op_type, list(node.input)
    w = g.const(ins[1])
    if op == "Conv":
        if axis != 1:
            raise _Stop(f"Conv '{node.name}' reads channels on axis {axis}")
        groups = _attr(node, "group", 1)
        if groups == 1:
            group.slices.append((ins[1], 1))
            return True
        if groups == group.channels and w.shape[0] == group.channels and w.shape[1] == 1:
            group.slices.append((ins[1], 0))
            if len(ins) > 2 and ins[2]:
                group.slices.append((ins[2], 0))
                g.const(ins[2])
            group.depthwise.append(node)
            return False
        raise _Stop(f"grouped Conv '{node.name}' (group={groups})")
    if axis != rank - 1 or w.ndim != 2:
        raise _Stop(f"{op} '{node.name}' does not contract the channel axis")
    if op == "Gemm" and _attr(node, "transA", 0):
        raise _Stop(f"Gemm '{node.name}' has transA")
    group.slices.append((ins[1], 1 if op == "Gemm" and _attr(node, "transB", 0) else 0))
    return True


def _reduce_axes(g: _Graph, node, rank: int) -> list[int] | None:
    axes = _attr(node, "axes")
    if axes is None and len(node.input) > 1 and node.input[1]:
        axes = [int(v) for v in g.inits.get(node.input[1], [])] or None
    return None if axes is None else sorted(int(a) % rank for a in axes)


def _follow(g: _Graph, group: Group, node, k: int, axis: int) -> tuple[str, int] | None:
    """Where a group continues after ``node`` (its output and channel axis), ``None`` at a
    consumer that only reads the channels; raises :class:`_Stop` when the group must stay whole.
    """
    op, name, x = node.op_type, node.name, node.input[k]
    shape = g.shapes.get(x)
    if shape is None:
        raise _Stop(f"the shape of '{x}' is unknown")
    rank = len(shape)
    spatial_one = all(d == 1 for d in shape[axis + 1 :])
    if k != 0 and op not in ARITHMETIC:
        raise _Stop(f"'{x}' is a parameter input of {op} '{name}'")
    if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
        raise _Stop(f"MaxPool '{name}' returns indices")
    if op in PER_CHANNEL:
        return node.output[0], axis
    if op in ARITHMETIC:
        _arith(g, group, node, k, axis, rank)
        return node.output[0], axis
    if op == "BatchNormalization":
        for param in node.input[1:5]:
            g.const(param)
            group.slices.append((param, 0))
        return node.output[0], axis
    if op in ("Conv", "Gemm", "MatMul") and len(node.input) > 1 and node.input[1] in g.inits:
        return None if _sink(g, group, node, axis, rank) else (node.output[0], axis)
    if op in ("ReduceMean", "ReduceMax") and axis == 1:
        axes = _reduce_axes(g, node, rank)
        if axes is None or 0 in axes or axis in axes:
            raise _Stop(f"{op} '{name}' reduces over the channels")
        return node.output[0], axis
    if op == "Flatten" and axis == 1 and _attr(node, "axis", 1) == 1 and spatial_one:
        return node.output[0], 1
    if op == "Reshape" and axis == 1 and spatial_one and node.input[1] in g.inits:
        target = [int(v) for v in g.const(node.input[1])]
        if len(target) == 2 and target[1] in (group.channels, -1, 0):
            if target[1] == group.channels:
                group.reshapes.append((node, 1))
            return node.output[0], 1
    raise _Stop(f"its channels reach {op} '{name}'")


def trace(g: _Graph, group: Group, node) -> Group:
    """Follow the producer ``node``'s output to every consumer; fills the group's slices."""
    for name, _ in group.slices:
        g.const(name)  # the producer's own weight and bias must not be shared either
    start, conv = node.output[0], node.op_type == "Conv"
    shape = g.shapes.get(start)
    if shape is None and not conv:
        raise _Stop(f"the shape of '{start}' is unknown")
    todo, seen = [(start, 1 if conv else len(shape or ()) - 1)], set()
    while todo:
        tensor, axis = todo.pop()
        if tensor in seen:
            continue
        seen.add(tensor)
        if tensor in g.outputs:
            raise _Stop(f"'{tensor}' is a graph output")
        for consumer, k in g.consumers.get(tensor, []):
            nxt = _follow(g, group, consumer, k, axis)
            if nxt is not None:
                todo.append(nxt)
    return group


def find_groups(model) -> tuple[list[Group], list[dict[str, str]]]:
    """The prunable channel groups of ``model`` and the skipped ones, each with its reason."""
    g = _Graph(model)
    groups, skipped = [], []
    for node in model.graph.node:
        group = _producer(g, node)
        if group is None:
            continue
        try:
            if group.channels < 2:
                raise _Stop("it has one channel")
            groups.append(trace(g, group, node))
        except _Stop as why:
            skipped.append({"producer": node.name, "reason": str(why)})
    return groups, skipped
