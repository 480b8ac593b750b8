"""The Ethos-U55's padded work (the MAC array's block rounding) is paid by the NPU only: a Cortex-M beside it
computes the plain ops of the same integer-lowered kernels (a 1-channel stem convolution costs the NPU about 8x its
MACs, the CPU 1x)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import Estimator, PlanBatch
from edgefit.estimate._plan import DTYPE_CODE
from edgefit.graph import load_graph
from edgefit.targets import load_target


def stem(tmp_path):
    """One 3×3 convolution from 1 channel to 8 over 32×32: the Ethos-U's worst case for its 32-deep input blocks."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.3, (8, 1, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "stem",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 32, 32])], [w])
    path = tmp_path / "stem.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return load_graph(path)


def compute_s(est: Estimator) -> float:
    batch = PlanBatch.empty(1, len(est.table))
    batch.dtype[0] = DTYPE_CODE["int8"]
    return float(est.components(batch)["compute_s"].sum())


def test_only_the_npu_pays_the_padded_work(tmp_path):
    graph, u55 = stem(tmp_path), load_target("u55")
    npu = Estimator(graph, u55, unit="npu", profile=None)
    cpu = Estimator(graph, u55, unit="cpu", profile=None)
    assert npu.table.npu_work is not None and npu.table.npu_work.max() > 4  # the stem: ~8x
    unit = {u.name: u for u in u55.compute_units}
    plain = {name: float(npu.table.ops.sum()) / (u.peak_ops_per_s["int8"].value * u.efficiency.value)
             for name, u in unit.items()}
    assert compute_s(cpu) == np.float64(plain["cpu"])  # the Cortex-M computes the plain ops
    assert compute_s(npu) > 4 * plain["npu"]  # the NPU its padded work
