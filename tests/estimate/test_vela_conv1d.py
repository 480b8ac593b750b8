"""1-D convolutions under the integer lowering, as litert-torch + Vela 5.2 deploy them: a Conv1d is a
height-1 CONV_2D between layout transposes, and a dilation above 2 is Vela's expanded kernel."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import KERNEL_CLASSES, build_kernel_table
from edgefit.estimate._layout import RESHAPE_COPY, TRANSPOSE_IN, TRANSPOSE_IN_RANK4, TRANSPOSE_OUT
from edgefit.estimate._lower_integer import vela_taps
from edgefit.estimate._vela_weights import quantize_per_channel, weight_stream_bytes
from edgefit.graph import load_graph


def _net(convs: list[tuple[str, int, int, int]], residual: bool = False, c: int = 16, length: int = 50):
    """``x (1, 8, length)`` → a Conv1d per ``(name, cout, k, dilation)`` each with a ReLU; with
    ``residual`` the first conv's output is also added to the last one's (a TCN block)."""
    rng = np.random.default_rng(0)
    nodes, inits, cin, prev = [], [], 8, "x"
    for name, cout, k, d in convs:
        inits += [numpy_helper.from_array(rng.standard_normal((cout, cin, k)).astype(np.float32), name + "_w"),
                  numpy_helper.from_array(np.zeros(cout, np.float32), name + "_b")]
        pad = d * (k - 1) // 2
        nodes += [helper.make_node("Conv", [prev, name + "_w", name + "_b"], [name], name, kernel_shape=[k],
                                   dilations=[d], pads=[pad, pad]),
                  helper.make_node("Relu", [name], [name + "_r"])]
        cin, prev = cout, name + "_r"
    if residual:
        nodes += [helper.make_node("Add", [convs[0][0] + "_r", prev], ["sum"], "sum"), helper.make_node("Relu", ["sum"], ["y"])]
    else:
        nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(nodes, "conv1d", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, length])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cin, length])], inits)
    return load_graph(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _kernels(table) -> list[tuple[str, str]]:
    return [(name.rsplit("/", 1)[-1], KERNEL_CLASSES[k]) for name, k in zip(table.names, table.kclass)]


@pytest.mark.parametrize(
    "k, dilation, taps, hw",
    [(3, 1, 3, 1), (3, 2, 3, 2), (3, 3, 7, 1), (3, 4, 5, 2), (3, 5, 11, 1), (3, 8, 9, 2), (5, 6, 13, 2)],
)
def test_vela_expands_a_dilation_above_two(k, dilation, taps, hw):
    # Vela's fixup_dilation_gt2; its per-layer MACs on Conv1d k=3 read 7, 5, 11 and 9 taps at d=3, 4, 5, 8
    assert vela_taps(k, dilation) == (taps, hw)


def test_a_conv1d_is_a_height_1_conv_between_layout_transposes():
    g = _net([("a", 16, 1, 1), ("b", 16, 3, 1)])
    t = build_kernel_table(g, lowering="integer")
    # conv → ReLU → conv keeps NLC: one transpose in at the start, one out at the end
    assert _kernels(t) == [("transpose", "datamove"), ("a", "conv1x1"), ("b", "conv"), ("transpose", "datamove")]
    np.testing.assert_allclose(t.npu_work[[0, 3]], [TRANSPOSE_IN, TRANSPOSE_OUT])
    np.testing.assert_allclose(t.ops[[0, 3]], [8 * 50, 16 * 50])  # elements moved: the input's, the output's
    # a 1-high map 50 wide (no padding in 2-wide, 8-deep micro-blocks): the 3 taps over 16 channels run
    # part-kernel-first, taps padded to four (ops also count the bias and the ReLU, hence rel=1%)
    assert t.npu_work[2] == pytest.approx(4 / 3, rel=0.01)
    assert not t.has_weights[[0, 3]].any()


def test_the_onnx_lowering_keeps_conv1d_and_adds_no_transposes():
    t = build_kernel_table(_net([("a", 16, 1, 1), ("b", 16, 3, 1)]), lowering="onnx")
    assert [KERNEL_CLASSES[k] for k in t.kclass] == ["conv1d", "conv1d"]


def test_a_dilated_conv1d_computes_and_stores_the_expanded_kernel():
    plain = build_kernel_table(_net([("a", 16, 3, 1)]), lowering="integer")
    dilated = build_kernel_table(_net([("a", 16, 3, 8)]), lowering="integer")
    # 9 taps instead of 3: three times the MACs per output on the NPU, the CPU's ops unchanged
    assert dilated.ops[1] == plain.ops[1]
    assert (plain.reduction[1], dilated.reduction[1]) == (8 * 3, 8 * 9)
    assert dilated.npu_work[1] > plain.npu_work[1] / 2  # 3x the taps, out of the output stage's bound
    # the flash stream is the expanded kernel's: OHWI (16, 1, 9, 8), the taps 4 apart, zeros between
    g = _net([("a", 16, 3, 8)])
    q = quantize_per_channel(numpy_helper.to_array(next(i for i in g.model.graph.initializer if i.name == "a_w")))
    ohwi = np.zeros((16, 1, 9, 8), np.int16)
    ohwi[:, 0, ::4, :] = q.transpose(0, 2, 1)
    expected = 160 + weight_stream_bytes(ohwi, depthwise=False)  # + 10-byte bias records, 16-aligned
    assert dilated.w_elems[1] == expected > plain.w_elems[1]


def test_a_residual_block_transposes_back_copies_the_reshape_and_transposes_in_twice():
    # conv a feeds both conv b and the add: litert-torch transposes a's output back to NCL; Vela copies
    # the Reshape the add reads and transposes in for b in two passes (a TCN's first block)
    t = build_kernel_table(_net([("a", 16, 1, 1), ("b", 16, 3, 2)], residual=True), lowering="integer")
    assert _kernels(t) == [
        ("transpose", "datamove"), ("a", "conv1x1"), ("transpose", "datamove"), ("reshape", "datamove"),
        ("transpose", "datamove"), ("b", "conv"), ("transpose", "datamove"), ("sum", "eltwise"),
    ]
    np.testing.assert_allclose(t.npu_work[[2, 3, 4, 6]], [TRANSPOSE_OUT, RESHAPE_COPY, TRANSPOSE_IN_RANK4, TRANSPOSE_OUT])
    # the add reads the copy and b's transposed-back output, each 16 × 50
    assert t.in_elems[7] == 2 * 16 * 50


def test_the_moves_run_on_the_npu_in_int8_and_their_tensors_are_in_the_arena():
    from edgefit.estimate import Estimator, Plan
    from edgefit.targets import load_target

    est = Estimator(_net([("a", 16, 1, 1), ("b", 16, 3, 1)]), load_target("ethos-u55"), runtime="vela", profile=None)
    kernels = est.estimate(Plan(dtype="int8")).kernels
    # the model input's transpose is int8 like the Conv1d reading it (Vela runs it on the NPU), not the
    # fp32 a weightless kernel on a float graph input would keep
    assert [(k.kclass, k.dtype, k.unit) for k in kernels[::3]] == [("datamove", "int8", "npu")] * 2
    t = est.table
    # x (400 int8 at the input), x in NLC, a's output, b's output in NLC (16-channel bricks), y (NCL, graph output)
    maps = [(int(b), int(d), float(e)) for b, d, e in zip(t.t_born[:5], t.t_dies[:5], t.t_elems[:5])]
    assert maps == [(-1, 0, 400.0), (0, 1, 800.0), (1, 2, 800.0), (2, 3, 800.0), (3, 4, 800.0)]
