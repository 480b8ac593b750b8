"""Validation of an ONNX model before anything is counted: a broken model is refused, an odd one
noted.

edgefit is a gate: a model that is broken must be an :class:`EdgefitError` naming the node or
tensor, never a count. These checks run in pure Python, in one linear pass each, *before* onnx's
C++ shape inference and checker see the model (so a cycle, a lying initializer or a 2^62 dimension
never reaches code that could loop, allocate or overflow), then the checker and strict inference
run, then :func:`check_costs` bounds what was counted.

Limits (each with its reason):

* ``MAX_ELEMENTS`` = 2^40 elements per tensor (4 TB of fp32): far beyond any model that runs on an
  edge device, and small enough that products of a few dims stay exact.
* ``MAX_COUNT`` = 2^53 MACs or ops per model: beyond it the counts are not exact in float64 (JSON,
  the estimator's arithmetic), and no real model is within orders of magnitude of it.
"""

from __future__ import annotations

import functools
import heapq
import math
from collections.abc import Iterator
from typing import overload

import numpy as np
import onnx
from onnx import numpy_helper

from edgefit.errors import EdgefitError

MAX_ELEMENTS = 2**40
MAX_COUNT = 2**53

_T = onnx.TensorProto
# bits per element of raw_data; STRING has no fixed size
_BITS: dict[int, int] = {
    _T.FLOAT: 32,
    _T.UINT8: 8,
    _T.INT8: 8,
    _T.UINT16: 16,
    _T.INT16: 16,
    _T.INT32: 32,
    _T.INT64: 64,
    _T.BOOL: 8,
    _T.FLOAT16: 16,
    _T.DOUBLE: 64,
    _T.UINT32: 32,
    _T.UINT64: 64,
    _T.COMPLEX64: 64,
    _T.COMPLEX128: 128,
    _T.BFLOAT16: 16,
    _T.FLOAT8E4M3FN: 8,
    _T.FLOAT8E4M3FNUZ: 8,
    _T.FLOAT8E5M2: 8,
    _T.FLOAT8E5M2FNUZ: 8,
    _T.UINT4: 4,
    _T.INT4: 4,
    _T.FLOAT4E2M1: 4,
}
for _name, _bits in (
    ("FLOAT8E8M0", 8),
    ("UINT2", 2),
    ("INT2", 2),
    ("FLOAT6E2M3", 6),
    ("FLOAT6E3M2", 6),
):
    if hasattr(_T, _name):  # newer onnx releases only
        _BITS[getattr(_T, _name)] = _bits
# typed repeated field → (data types stored there, values per element); sub-byte types pack into
# int32_data
_FIELDS: dict[str, dict[int, int]] = {
    "float_data": {_T.FLOAT: 1, _T.COMPLEX64: 2},
    "double_data": {_T.DOUBLE: 1, _T.COMPLEX128: 2},
    "int64_data": {_T.INT64: 1},
    "uint64_data": {_T.UINT32: 1, _T.UINT64: 1},
    "string_data": {_T.STRING: 1},
}


@overload
def one_line(text: str, limit: int = ...) -> str: ...
@overload
def one_line(text: None, limit: int = ...) -> None: ...
@overload
def one_line(text: str | None, limit: int = ...) -> str | None: ...
def one_line(text: str | None, limit: int = 2000) -> str | None:
    """``text`` with control characters escaped and its length capped: tensor names, node names and
    paths come from the model or the user, and an error or warning must stay one readable line."""
    if text is None:
        return None
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def one_line_errors(fn):
    """Decorate a loader so any :class:`EdgefitError` it raises is one line (see
    :func:`one_line`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgefitError as exc:
            exc.what, exc.where, exc.fix = (
                one_line(exc.what),
                one_line(exc.where, 500),
                one_line(exc.fix, 500),
            )
            exc.args = (exc.line(),)
            raise

    return wrapper


def _where(source: str) -> str:
    return f"MODEL {source}" if source else "MODEL"


def _refuse(
    what: str, source: str, fix: str = "re-export the model; it is malformed"
) -> EdgefitError:
    return EdgefitError(what, where=_where(source), fix=fix)


def tensor_nbytes(tensor: onnx.TensorProto) -> int | None:
    """Bytes ``tensor``'s raw data must hold for its declared dims and type (None for
    strings/unknown)."""
    bits = _BITS.get(tensor.data_type)
    return None if bits is None else math.ceil(math.prod(tensor.dims) * bits / 8)


def check_dims(dims: list[int] | tuple[int, ...], what: str, source: str) -> None:
    """Every dim non-negative and the element count within ``MAX_ELEMENTS``."""
    n = 1
    for d in dims:
        if d < 0:
            raise _refuse(f"{what} has a negative dimension ({d}) in shape {list(dims)}", source)
        n *= d
        if n > MAX_ELEMENTS:  # stop multiplying early: 2^62 × 2^62 must not even be formed
            raise _refuse(
                f"{what} has shape {list(dims)}: over 2^40 elements, more than any "
                f"model edgefit can count holds; the shape is wrong",
                source,
            )


def _expected_values(tensor: onnx.TensorProto, field: str) -> int | None:
    n = math.prod(tensor.dims)
    if field == "int32_data":
        bits = _BITS.get(tensor.data_type, 32)
        return (
            math.ceil(n * bits / 8) if bits < 8 else n
        )  # sub-byte types: one packed byte per int32
    per = _FIELDS[field].get(tensor.data_type)
    return None if per is None else n * per


def check_tensor(tensor: onnx.TensorProto, what: str, source: str) -> None:
    """Declared dims bounded; the stored data (raw_data, a typed field or an external file) matches
    them."""
    check_dims(list(tensor.dims), what, source)
    if tensor.data_location == _T.EXTERNAL:
        return  # sized against its file by the loader, which knows the model's folder
    if tensor.HasField("raw_data"):
        want = tensor_nbytes(tensor)
        if want is not None and len(tensor.raw_data) != want:
            raise _refuse(
                f"{what} declares shape {list(tensor.dims)} ({want} bytes) but holds "
                f"{len(tensor.raw_data)} bytes of data",
                source,
            )
        return
    n = math.prod(tensor.dims)
    for field in (
        "float_data",
        "int32_data",
        "int64_data",
        "double_data",
        "uint64_data",
        "string_data",
    ):
        have = len(getattr(tensor, field))
        if not have:
            continue
        want = _expected_values(tensor, field)
        if want is None:
            raise _refuse(
                f"{what} has data type {tensor.data_type}, which {field} cannot hold", source
            )
        if have != want:
            raise _refuse(
                f"{what} declares shape {list(tensor.dims)} ({want} values) but holds {have} "
                f"values in {field}",
                source,
            )
        return
    if n:
        raise _refuse(f"{what} declares shape {list(tensor.dims)} but holds no data", source)


def iter_tensors(
    graph: onnx.GraphProto, scope: str = ""
) -> Iterator[tuple[str, onnx.TensorProto]]:
    """Every stored tensor with a description: initializers and tensor attributes, subgraphs
    included."""
    for init in graph.initializer:
        yield f"{scope}initializer '{init.name}'", init
    for sparse in graph.sparse_initializer:
        yield f"{scope}sparse initializer '{sparse.values.name}' (values)", sparse.values
    for node in graph.node:
        label = f"{scope}node '{node.name or node.op_type}' ({node.op_type})"
        for a in node.attribute:
            if a.HasField("t"):
                yield f"{label} attribute '{a.name}'", a.t
            for t in a.tensors:
                yield f"{label} attribute '{a.name}'", t
            subgraphs = ([a.g] if a.HasField("g") else []) + list(a.graphs)
            for sub in subgraphs:
                yield from iter_tensors(sub, f"{label} subgraph '{a.name}': ")


def check_tensors(model: onnx.ModelProto, source: str) -> None:
    for what, tensor in iter_tensors(model.graph):
        check_tensor(tensor, what, source)


def check_value_dims(model: onnx.ModelProto, source: str, *, inputs: bool = True) -> None:
    """Declared or inferred shapes of outputs, intermediate tensors and (``inputs``) inputs are
    bounded.

    Declared inputs are checked only after the loader fixed them: a negative input dim has long
    meant "dynamic" to some exporters, and the loader treats it so.
    """
    g = model.graph
    for kind, infos in (
        ("input", g.input if inputs else []),
        ("output", g.output),
        ("tensor", g.value_info),
    ):
        for vi in infos:
            if not vi.type.HasField("tensor_type") or not vi.type.tensor_type.HasField("shape"):
                continue
            dims = [d.dim_value for d in vi.type.tensor_type.shape.dim if d.HasField("dim_value")]
            check_dims(dims, f"{kind} '{vi.name}'", source)


def check_structure(graph: onnx.GraphProto, source: str) -> list[int] | None:
    """Every node input defined, no tensor produced twice, no cycle — in linear time.

    Returns None when the nodes are in topological order (as ONNX requires), else a topological
    order of the node indices to re-sort by: some converters (float16 conversion among them) write
    a valid DAG out of order, which runtimes accept. A cycle is refused, naming a node on it.
    """
    defined = {i.name for i in graph.input} | {i.name for i in graph.initializer}
    defined |= {s.values.name for s in graph.sparse_initializer}
    producer: dict[str, int] = {}
    for idx, node in enumerate(graph.node):
        for out in node.output:
            if not out:
                continue
            if out in producer or out in defined:
                first = (
                    _node(graph.node[producer[out]])
                    if out in producer
                    else "a graph input or initializer"
                )
                raise _refuse(
                    f"tensor '{out}' is produced twice: by {first} and by {_node(node)}", source
                )
            producer[out] = idx
    sorted_ = True
    for idx, node in enumerate(graph.node):
        for name in node.input:
            if not name or name in defined:
                continue
            at = producer.get(name)
            if at is None:
                raise _refuse(
                    f"{_node(node)} reads '{name}', which no node, graph input or "
                    f"initializer defines",
                    source,
                )
            sorted_ = sorted_ and at < idx
    for out in graph.output:
        if out.name not in producer and out.name not in defined:
            raise _refuse(f"graph output '{out.name}' is produced by no node", source)
    return None if sorted_ else _sort(graph, producer, source)


def _node(node: onnx.NodeProto) -> str:
    return (
        f"node '{node.name}' ({node.op_type})" if node.name else f"an unnamed {node.op_type} node"
    )


def _outer_names(node: onnx.NodeProto) -> Iterator[str]:
    """Inputs a node reads explicitly, plus the outer-scope names its subgraphs (If, Loop, Scan)
    read."""
    yield from node.input
    for a in node.attribute:
        for sub in ([a.g] if a.HasField("g") else []) + list(a.graphs):
            for inner in sub.node:
                yield from _outer_names(inner)


def _sort(graph: onnx.GraphProto, producer: dict[str, int], source: str) -> list[int]:
    """A topological order keeping the file's order where it can (Kahn's algorithm, smallest index
    first)."""
    nodes = graph.node
    deps = [
        {producer[i] for i in _outer_names(node) if i in producer} - {idx}
        for idx, node in enumerate(nodes)
    ]
    consumers: dict[int, list[int]] = {}
    for idx, d in enumerate(deps):
        for dep in d:
            consumers.setdefault(dep, []).append(idx)
    waiting = [len(d) for d in deps]
    ready = [i for i, w in enumerate(waiting) if w == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        idx = heapq.heappop(ready)
        order.append(idx)
        for c in consumers.get(idx, ()):
            waiting[c] -= 1
            if not waiting[c]:
                heapq.heappush(ready, c)
    if len(order) == len(nodes):
        return order
    # walk back through still-waiting producers until a node repeats: that node lies on a cycle
    at, seen = next(i for i, w in enumerate(waiting) if w), set()
    while at not in seen:
        seen.add(at)
        at = next(d for d in deps[at] if waiting[d])
    via = next(i for i in nodes[at].input if i in producer and waiting[producer[i]])
    raise _refuse(
        f"the graph has a cycle: {_node(nodes[at])} reads '{via}', which depends on its own "
        f"output",
        source,
    )


def reorder(graph: onnx.GraphProto, order: list[int]) -> None:
    """Put ``graph``'s nodes in ``order`` (from :func:`check_structure`)."""
    nodes = [graph.node[i] for i in order]
    copies = [onnx.NodeProto() for _ in nodes]
    for c, n in zip(copies, nodes):
        c.CopyFrom(n)
    del graph.node[:]
    graph.node.extend(copies)


def check_conv_channels(model: onnx.ModelProto, source: str) -> None:
    """A Conv's weight must fit its input's channels: onnx's shape inference does not check it."""
    g = model.graph
    shapes = {
        vi.name: [
            d.dim_value if d.HasField("dim_value") else None for d in vi.type.tensor_type.shape.dim
        ]
        for vi in list(g.input) + list(g.value_info)
        if vi.type.tensor_type.HasField("shape")
    }
    shapes.update({t.name: list(t.dims) for t in g.initializer})
    for node in g.node:
        if node.op_type != "Conv" or len(node.input) < 2:
            continue
        x, w = shapes.get(node.input[0]), shapes.get(node.input[1])
        group = next((a.i for a in node.attribute if a.name == "group"), 1) or 1
        if not x or not w or len(x) < 2 or len(w) < 2:
            continue
        channels, per_group, outputs = x[1], w[1], w[0]
        if channels is None or per_group is None or outputs is None:
            continue
        if channels != per_group * group or outputs % group:
            raise _refuse(
                f"{_node(node)} has {channels} input channels but its weight {w} with "
                f"group={group} expects {per_group * group} (and output channels divisible by "
                "the group)",
                source,
            )


def check_costs(layers, source: str) -> None:
    """Counted MACs and ops stay below 2^53 per layer and in total."""
    total_macs = total_ops = 0
    for layer in layers:
        if layer.macs < 0 or layer.ops < 0:
            raise _refuse(
                f"layer '{layer.name}' ({layer.op}) counts negative work; its shapes are wrong",
                source,
            )
        total_macs += layer.macs
        total_ops += layer.ops
        if max(layer.macs, layer.ops, total_macs, total_ops) > MAX_COUNT:
            raise _refuse(
                f"layer '{layer.name}' ({layer.op}) brings the count past 2^53 MACs/ops "
                f"({max(total_macs, total_ops):.3g}), beyond any real model; its shapes or "
                f"attributes are wrong",
                source,
            )


def version_warnings(model: onnx.ModelProto) -> list[str]:
    """An opset or IR version newer than the installed onnx knows is checked against the newest it
    knows.

    Refusing would make edgefit useless the day a new opset ships; the op definitions rarely change
    between opsets, so the model is validated and counted with the newest ones, and the warning
    says so. The IR version is lowered in ``model`` (a copy the loader owns) so the checker accepts
    it.
    """
    warnings = []
    known = onnx.defs.onnx_opset_version()
    for op in model.opset_import:
        if op.domain in ("", "ai.onnx") and op.version > known:
            warnings.append(
                f"the model imports ONNX opset {op.version}, newer than the {known} the installed "
                f"onnx {onnx.__version__} knows; validated and counted with opset-{known} op "
                f"definitions (upgrade onnx if counts look wrong)"
            )
    if model.ir_version > onnx.IR_VERSION:
        warnings.append(
            f"the model has IR version {model.ir_version}, newer than the {onnx.IR_VERSION} the "
            f"installed onnx knows; read as IR version {onnx.IR_VERSION}"
        )
        model.ir_version = onnx.IR_VERSION
    return warnings


def few(names: list[str], limit: int = 3) -> str:
    """``'a', 'b', 'c' and 4 more``: names for a one-line message."""
    shown = ", ".join(f"'{n}'" for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def nonfinite_warnings(model: onnx.ModelProto, limit: int = 3) -> list[str]:
    """Initializers holding NaN or infinity: valid ONNX, counted as usual, but worth a warning."""
    bad = []
    for init in model.graph.initializer:
        if (
            init.data_type not in (_T.FLOAT, _T.FLOAT16, _T.DOUBLE, _T.BFLOAT16)
            or init.data_location == _T.EXTERNAL
        ):
            continue
        try:
            values = numpy_helper.to_array(init)
        except Exception:  # the checker reports unreadable tensors; this is only a warning pass
            continue
        if values.size and not np.isfinite(values.astype(np.float32, copy=False)).all():
            bad.append(init.name)
    if not bad:
        return []
    return [
        f"weights {few(bad, limit)} hold NaN or infinity; the model's outputs will too (counts "
        "are unaffected)"
    ]


def unknown_dim_tensors(model: onnx.ModelProto) -> tuple[list[str], list[str]]:
    """Node outputs whose inferred shape has unknown dims, and those inference gave no shape at
    all."""
    g = model.graph
    infos = {vi.name: vi for vi in list(g.value_info) + list(g.output)}
    partial, rankless = [], []
    for node in g.node:
        for out in node.output:
            vi = infos.get(out)
            if not out or (
                vi is not None and vi.type.WhichOneof("value") not in (None, "tensor_type")
            ):
                continue  # sequences, maps and optionals are not counted by shape
            t = vi.type.tensor_type if vi is not None else None
            if t is None or not t.HasField("shape"):
                rankless.append(out)
            elif any(not d.HasField("dim_value") for d in t.shape.dim):
                partial.append(out)
    return partial, rankless
