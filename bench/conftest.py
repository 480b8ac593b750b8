"""Shared fixtures for the benchmark suites (run by `make bench` and CI)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper


def conv_chain_model(n_layers: int, channels: int = 16, size: int = 8):
    nodes, inits, prev = [], [], "x"
    for i in range(n_layers):
        inits.append(numpy_helper.from_array(np.ones((channels, channels, 3, 3), np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1]))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return model


@pytest.fixture(scope="session")
def chain100():
    return conv_chain_model(100)
