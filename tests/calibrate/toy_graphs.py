"""A small conv net as an ONNX graph, for calibration tests."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgefit.graph import load_graph


def conv_net(channels: int = 32, size: int = 28):
    w1 = numpy_helper.from_array(np.ones((channels, 3, 3, 3), np.float32), "w1")
    w2 = numpy_helper.from_array(np.ones((channels, channels, 3, 3), np.float32), "w2")
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", pads=[1] * 4),
             helper.make_node("Relu", ["a"], ["b"], name="r1"),
             helper.make_node("Conv", ["b", "w2"], ["c"], name="c2", pads=[1] * 4),
             helper.make_node("Relu", ["c"], ["y"], name="r2")]
    graph = helper.make_graph(nodes, "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, size, size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return load_graph(model)
