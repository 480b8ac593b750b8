"""Small graphs and a synthetic target with round numbers, so tests can compute estimates by hand."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from edgefit.graph import load_graph


def S(value, reason="test figure"):
    return {"value": value, "estimated": True, "reason": reason}


def toy_target(**over) -> dict:
    """1 TOP/s fp32, 4 TOP/s int8, efficiency 0.5, 1 µs overhead; 1 MB SRAM @ 100 GB/s, DRAM @ 10 GB/s."""
    doc = {
        "id": "toy", "name": "Toy", "kind": "edge_soc",
        "compute_units": [{
            "name": "npu", "kind": "npu",
            "peak_ops_per_s": {"fp32": S(1e12), "int8": S(4e12)},
            "efficiency": S(0.5), "layer_overhead_s": S(1e-6),
        }],
        "memory_levels": [
            {"name": "sram", "kind": "sram", "capacity_bytes": S(1e6), "bandwidth_bytes_per_s": S(1e11),
             "energy_pj_per_byte": S(1.0), "holds": ["weights", "activations"]},
            {"name": "dram", "kind": "dram", "capacity_bytes": S(1e9), "bandwidth_bytes_per_s": S(1e10),
             "energy_pj_per_byte": S(100.0), "holds": ["weights", "activations"]},
        ],
        "energy": {"pj_per_op": {"fp32": S(1.0), "int8": S(0.25)}, "static_power_w": S(0.1)},
        "dtypes": ["fp32", "int8"],
        "envelope": {"latency_budget_s": S(0.001), "energy_per_inference_j": S(1e-3)},
        "certification": {"name": "none", "days_per_change": S(0), "cost_usd_per_change": S(0), "triggers": []},
        "lifecycle_days": {s: S(1) for s in ("data_prep", "labeling", "training", "eval", "deploy", "monitoring")},
    }
    doc.update(over)
    return doc


def conv_chain(n_layers: int = 3, channels: int = 16, size: int = 16, depthwise_every: int = 0):
    """x → [Conv(+Relu)] × n: a plain chain with known MACs."""
    nodes, inits = [], []
    prev = "x"
    for i in range(n_layers):
        dw = depthwise_every and i % depthwise_every == depthwise_every - 1
        w = np.ones((channels, 1 if dw else channels, 3, 3), np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}", pads=[1, 1, 1, 1],
                                      group=channels if dw else 1))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        prev = f"r{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, size, size])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return load_graph(model)
