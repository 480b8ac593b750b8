"""Tiny ONNX models built with onnx.helper (no torch export: fast and exact)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def _model(nodes, inits, x_shape, y_shape, name):
    graph = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(a.astype(np.float32), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def mlp(sizes=(16, 32, 32, 8), seed=0, outlier_layer: int | None = None):
    """Gemm → Relu → … → Gemm with nodes ``fc0``, ``fc1`` …. With ``outlier_layer=i`` (≥ 1) every row
    of ``fc{i}``'s weight has one huge entry (input 0) while the layer before makes that input exactly
    zero: the function is unchanged, but any int8 weight scale of ``fc{i}`` (per tensor or per
    channel) now crushes its real weights, so ``fc{i}`` alone is by far the most sensitive node."""
    rng = np.random.default_rng(seed)
    nodes, inits, prev = [], {}, "x"
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        w, bias = rng.normal(0, 1 / np.sqrt(a), (b, a)), rng.normal(0, 0.1, b)
        if outlier_layer is not None and i == outlier_layer - 1:
            w[0, :], bias[0] = 0.0, 0.0  # input 0 of the next layer is exactly 0 (int8 keeps 0 exact)
        if outlier_layer is not None and i == outlier_layer:
            w[:, 0] = 100.0
        inits[f"w{i}"], inits[f"b{i}"] = w, bias
        out = "y" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out if out == "y" else f"g{i}"],
                                      name=f"fc{i}", transB=1))
        if out != "y":
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out], name=f"relu{i}"))
        prev = out
    return _model(nodes, inits, [1, sizes[0]], [1, sizes[-1]], "mlp")


def convnet(seed=0, channels=8, classes=4, size=8):
    """Conv → Relu → Conv → Relu → GlobalAveragePool → Flatten → Gemm (nodes conv0, conv1, fc)."""
    rng = np.random.default_rng(seed)
    inits = {"k0": rng.normal(0, 0.5, (channels, 3, 3, 3)), "c0": rng.normal(0, 0.1, channels),
             "k1": rng.normal(0, 0.3, (channels, channels, 3, 3)), "c1": rng.normal(0, 0.1, channels),
             "w": rng.normal(0, 0.5, (classes, channels)), "b": np.zeros(classes)}
    nodes = [helper.make_node("Conv", ["x", "k0", "c0"], ["a0"], name="conv0", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "k1", "c1"], ["a1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             helper.make_node("GlobalAveragePool", ["r1"], ["p"], name="gap"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    return _model(nodes, inits, [1, 3, size, size], [1, classes], "convnet")


def feeds(model, n=8, seed=1):
    """``n`` standard-normal feeds for the model's single input."""
    rng = np.random.default_rng(seed)
    shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    return [{"x": rng.standard_normal(shape).astype(np.float32)} for _ in range(n)]
