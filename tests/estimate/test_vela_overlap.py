"""The Ethos-U55 kernel time has Vela's pass structure: the max of the NPU's busy time (compute and
its fixed per-operator cost), the SRAM traffic and the flash traffic, with a staged weight copy
started under the kernel before. Other targets keep ``max(compute, memory) + overhead``."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import Estimator, Plan
from edgefit.estimate._arena import weight_buffers
from edgefit.estimate._reference import _overlapped
from edgefit.graph import Layer, load_graph
from edgefit.targets import load_target

FLASH_BPS = 5.0e8  # targets/ethos-u55.yaml: Vela's 8 B/cycle x 0.125 x 500 MHz


def _convs(specs: list[tuple[int, int, int]], cin: int = 16, hw: int = 32) -> onnx.ModelProto:
    """3×3 convolutions ``(cout, stride, relu)`` in a chain, seeded weights."""
    rng = np.random.default_rng(0)
    nodes, inits, prev, c, size = [], [], "x", cin, hw
    for i, (cout, stride, relu) in enumerate(specs):
        w = (rng.standard_normal((cout, c, 3, 3)) * 0.1).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(cout, np.float32), f"b{i}")]
        nodes.append(helper.make_node("Conv", [prev, f"w{i}", f"b{i}"], [f"c{i}"], pads=[1, 1, 1, 1],
                                      strides=[stride, stride]))
        prev, c, size = f"c{i}", cout, (size - 1) // stride + 1
        if relu:
            nodes.append(helper.make_node("Relu", [prev], [f"r{i}"]))
            prev = f"r{i}"
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [1, c, size, size])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _u55(model) -> Estimator:
    return Estimator(load_graph(model), load_target("ethos-u55"), runtime="vela", profile=None)


def test_a_weight_bound_kernel_costs_its_flash_time_alone():
    """A strided 3×3 convolution with nothing before it streams its weights while it runs: its time is
    the flash transfer, not flash + SRAM + the per-operator cost (Vela: Op Cycles = OffFlash AC)."""
    est = _u55(_convs([(64, 8, 1)]))
    (kernel,) = est.estimate(Plan(dtype="int8")).kernels
    flash_s = est.table.w_elems[0] / FLASH_BPS
    assert kernel.latency_s == pytest.approx(flash_s, rel=1e-9)


def test_a_staged_copy_hides_under_the_kernel_before():
    """The same convolution after a long 3×3 convolution on the full map: Vela copies its weights into
    SRAM while the previous kernel computes, so it costs only what its copy does not hide."""
    alone = _u55(_convs([(64, 8, 1)])).estimate(Plan(dtype="int8")).kernels[0].latency_s
    est = _u55(_convs([(16, 1, 1), (64, 8, 1)]))
    assert est.table.prefetch is not None and est.table.prefetch[1] == 1.0
    kernels = est.estimate(Plan(dtype="int8")).kernels
    assert kernels[1].latency_s < 0.5 * alone
    assert kernels[0].latency_s > est.table.w_elems[1] / FLASH_BPS  # long enough to hide the copy


def test_two_ports_overlap_and_one_port_adds():
    """Reference semantics: flash and SRAM traffic in parallel, a prefetched copy less the busy time of
    the kernel before (the kernel before's full time when it is not an overlapping one)."""
    busy = np.array([[10.0, 2.0, 3.0]])
    t_w = np.array([[0.0, 8.0, 8.0]])
    t_a = np.array([[1.0, 1.0, 1.0]])
    prefetch = np.array([0.0, 1.0, 0.0])
    overlap = np.array([[True, True, True]])
    cpu = np.array([[99.0, 99.0, 99.0]])
    two_ports = _overlapped(cpu, busy, t_w, t_a, np.zeros((1, 3), bool), overlap, prefetch)
    np.testing.assert_allclose(two_ports, [[10.0, 2.0, 8.0]])
    one_port = _overlapped(cpu, busy, t_w, t_a, np.ones((1, 3), bool), overlap, prefetch)
    np.testing.assert_allclose(one_port, [[10.0, 2.0, 9.0]])
    after_cpu = _overlapped(np.array([[1.0, 0.0, 0.0]]), busy, t_w, t_a, np.zeros((1, 3), bool),
                            np.array([[False, True, True]]), prefetch)
    np.testing.assert_allclose(after_cpu, [[1.0, 7.0, 8.0]])


@pytest.mark.parametrize("target", ["host-cpu", "glasses-npu", "gap9", "jetson-agx-orin-64gb", "h100"])
@pytest.mark.parametrize("runtime", [None, "tflm"])
def test_other_targets_keep_the_sum_structure(target, runtime):
    """Vela's pass structure is the Ethos-U's: another target's NPU or CPU never takes it, even under
    the integer lowering."""
    est = Estimator(load_graph(_convs([(16, 1, 1), (64, 8, 1)])), load_target(target), runtime=runtime, profile=None)
    assert est.hw.overlap is not None and not est.hw.overlap.any()


def test_the_cortex_m_beside_the_npu_keeps_the_sum_structure():
    est = _u55(_convs([(16, 1, 1)]))
    npu, cpu = est.hw.unit_of[0].index("npu"), est.hw.unit_of[0].index("cpu")
    assert est.hw.overlap[0, npu] and not est.hw.overlap[0, cpu]


def _kernel(op_cycles: float, flash: float, name: str) -> dict:
    """A 3×3 convolution kernel dict whose padded work is ``op_cycles`` NPU cycles."""
    layer = Layer(0, name, "Conv", "conv", "fp32", 1, 2, 1000, 1000, 0, 0, (1, 16, 4, 4), ("x",), ("y",),
                  {"kernel_shape": [3, 3]})
    ops = 2.0 * 128 * op_cycles
    return {"anchor": layer, "ops": ops, "npu_ops": ops, "flash_bytes": flash}


def test_nothing_hides_under_a_kernel_that_reads_flash_itself():
    """Vela 5.2 leaves the weights of a kernel after a direct-read one in flash (MobileNetV1's 1×1 after a
    weight-bound 1×1, SqueezeNet's squeeze after its expand 3×3): the flash port is busy."""
    short, bound, small = _kernel(500, 100, "a"), _kernel(3_000, 9_000, "b"), _kernel(500, 2_000, "c")
    plan = weight_buffers([short, bound, small])
    assert plan[0] == (50.0, 50.0)  # computes longer than its copy: double-buffered
    assert plan[1] == (0.0, 0.0)  # weight-bound: read from flash while it runs
    assert plan[2] == (0.0, 0.0)  # its 2000-cycle copy would fit under 3000 cycles, but the port is busy
    assert weight_buffers([short, _kernel(3_000, 100, "b"), small])[2] == (2_000, 0.0)  # prefetched
