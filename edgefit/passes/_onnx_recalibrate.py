"""Per-channel statistics correction after channel pruning, for graphs with BatchNorm folded away.

A torch model that loses channels is recovered with its BatchNorm layers in training mode: they
re-normalize every layer's output on the first batches. An exported ONNX model usually has no
BatchNorm left (the exporter folds it into the Conv), so after pruning each layer's outputs drift
in mean and scale, and the drift compounds with depth: digits-cnn at half its channels drops to
chance even though most of its features survive. This step of the onnx-prune pass does what
BatchNorm would: on a few real inputs it matches the mean and standard deviation of every pruned
layer's output channels to those of the same channels in the original model, layer by layer in
graph order (each correction changes what the next layer sees), by scaling the layer's weights and
shifting its bias.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from onnx import numpy_helper
else:
    np, onnx, numpy_helper = lazy_import("numpy", "onnx", "onnx.numpy_helper")

LAYERS = ("Conv", "Gemm")  # a MatMul has no bias to shift: left as pruned
MIN_STD = 1e-6


def _attr(node, name: str, default: Any) -> Any:
    found = [onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name]
    return found[0] if found else default


def _out_axis(node) -> int:
    return 0 if node.op_type == "Conv" or _attr(node, "transB", 0) else 1


def _correctable(model, touched: set[str]) -> list[Any]:
    """The Conv/Gemm layers whose weights pruning sliced, with weight and bias used by them only
    and one bias value per output channel."""
    inits = {i.name: i for i in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    plain = {
        "Conv": lambda n: _attr(n, "group", 1) == 1,
        "Gemm": lambda n: not _attr(n, "transA", 0) and _attr(n, "alpha", 1.0) == 1.0,
    }
    return [
        n
        for n in model.graph.node
        if n.op_type in LAYERS
        and n.input[1] in touched
        and plain[n.op_type](n)
        and _attr(n, "beta", 1.0) == 1.0
        and all(uses.get(name, 0) == 1 for name in n.input[1:3] if name)
        and (len(n.input) < 3 or not n.input[2] or _bias_fits(n, inits))
    ]


def _bias_fits(node, inits) -> bool:
    bias, weight = inits.get(node.input[2]), inits[node.input[1]]
    return bias is not None and numpy_helper.to_array(bias).size == weight.dims[_out_axis(node)]


def session_of(model, threads: int = 1):
    """An onnxruntime CPU session of an in-memory proto, quiet, on ``threads`` threads."""
    return ort_session(model, threads)


def _values(
    model, names: Sequence[str], feeds: Sequence[Mapping[str, Any]], threads: int
) -> list[Any]:
    """The tensors ``names`` of ``model`` on every feed, concatenated along axis 0."""
    model = copy.deepcopy(model)
    known = {o.name for o in model.graph.output}
    for name in names:
        if name not in known:
            model.graph.output.append(
                onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None)
            )
    sess = session_of(model, threads)
    runs = [sess.run(list(names), dict(feed)) for feed in feeds]
    return [np.concatenate([run[i] for run in runs]) for i in range(len(names))]


def _stats(value: Any, axis: int) -> tuple[Any, Any]:
    flat = np.moveaxis(value.astype(np.float64), axis, 0).reshape(value.shape[axis], -1)
    return flat.mean(axis=1), flat.std(axis=1)


def _apply(model, node, scale: Any, shift: Any) -> None:
    """``y ← scale·y + shift`` per output channel, folded into the layer's weight and bias (a bias
    is added where the layer had none)."""
    inits = {i.name: i for i in model.graph.initializer}
    w = numpy_helper.to_array(inits[node.input[1]])
    shape = [1] * w.ndim
    shape[_out_axis(node)] = -1
    new_w = (w * scale.reshape(shape)).astype(w.dtype)
    inits[node.input[1]].CopyFrom(numpy_helper.from_array(new_w, node.input[1]))
    if len(node.input) > 2 and node.input[2]:
        b = numpy_helper.to_array(inits[node.input[2]])
        new_b = (b.reshape(-1) * scale + shift).reshape(b.shape).astype(b.dtype)
        inits[node.input[2]].CopyFrom(numpy_helper.from_array(new_b, node.input[2]))
        return
    name = f"{node.name}.onnx_prune.bias"
    model.graph.initializer.append(numpy_helper.from_array(shift.astype(w.dtype), name))
    while len(node.input) < 3:
        node.input.append("")
    node.input[2] = name


def recalibrate(
    base,
    pruned,
    keeps: Mapping[str, Any],
    touched: set[str],
    feeds: Sequence[Mapping[str, Any]],
    threads: int = 1,
) -> list[str]:
    """Correct ``pruned`` in place against ``base`` on ``feeds``; ``keeps`` maps a layer output
    to the original channels it kept (identity when absent). Returns the corrected layers."""
    layers = _correctable(pruned, touched)
    if not layers:
        return []
    outputs = [n.output[0] for n in layers]
    reference = dict(zip(outputs, _values(base, outputs, feeds, threads)))
    for node in layers:
        out = node.output[0]
        axis = 1 if node.op_type == "Conv" else reference[out].ndim - 1
        ref = reference[out]
        if out in keeps:
            ref = np.take(ref, keeps[out], axis=axis)
        t_mean, t_std = _stats(ref, axis)
        s_mean, s_std = _stats(_values(pruned, [out], feeds, threads)[0], axis)
        scale = np.where(s_std > MIN_STD, t_std / np.maximum(s_std, MIN_STD), 1.0)
        _apply(pruned, node, scale, t_mean - scale * s_mean)
    return [n.name for n in layers]
