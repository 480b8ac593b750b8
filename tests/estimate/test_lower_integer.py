"""The integer lowering (what an NPU compiler deploys) and Vela's arena model, on hand-made graphs."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.estimate import KERNEL_CLASSES, Estimator, Plan, build_kernel_table
from edgefit.estimate._lower_integer import lowering_for
from edgefit.graph import load_graph
from edgefit.targets import load_target


def _model(qdq: bool) -> onnx.ModelProto:
    """conv3x3+relu → maxpool → (conv1x1 ‖ conv3x3) → concat → reshape → gemm; with ``qdq`` every activation
    goes through QuantizeLinear/DequantizeLinear and every weight is int8 behind a DequantizeLinear."""
    rng = np.random.default_rng(0)
    weights = {"w1": (8, 3, 3, 3), "w2": (8, 8, 1, 1), "w3": (8, 8, 3, 3), "wf": (10, 1024)}
    inits, nodes = [], []
    for name, shape in weights.items():
        w = rng.standard_normal(shape).astype(np.float32)
        if qdq:
            inits += [numpy_helper.from_array(np.clip(w * 40, -127, 127).astype(np.int8), name + "_q"),
                      numpy_helper.from_array(np.array(0.025, np.float32), name + "_s")]
            nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s"], [name]))
        else:
            inits.append(numpy_helper.from_array(w, name))
        inits.append(numpy_helper.from_array(np.zeros(shape[0], np.float32), name + "_b"))
    inits += [numpy_helper.from_array(np.array(0.05, np.float32), "s"),
              numpy_helper.from_array(np.array(0, np.int8), "z"),
              numpy_helper.from_array(np.array([1, 1024], np.int64), "shape")]

    def act(op, ins, out, **kw):  # the op, then (QDQ graph) a Q/DQ pair its consumers read
        nodes.append(helper.make_node(op, ins, [out + "_f" if qdq else out], **kw))
        if qdq:
            nodes.append(helper.make_node("QuantizeLinear", [out + "_f", "s", "z"], [out + "_q"]))
            nodes.append(helper.make_node("DequantizeLinear", [out + "_q", "s", "z"], [out]))

    if qdq:  # the model input is quantized first, as onnxruntime's quantize_static does
        nodes.append(helper.make_node("QuantizeLinear", ["x", "s", "z"], ["x_q"]))
        nodes.append(helper.make_node("DequantizeLinear", ["x_q", "s", "z"], ["x_dq"]))
    act("Conv", ["x_dq" if qdq else "x", "w1", "w1_b"], "c1", pads=[1, 1, 1, 1])
    act("Relu", ["c1"], "r1")
    act("MaxPool", ["r1"], "p", kernel_shape=[2, 2], strides=[2, 2])
    act("Conv", ["p", "w2", "w2_b"], "a")
    act("Conv", ["p", "w3", "w3_b"], "b", pads=[1, 1, 1, 1])
    act("Concat", ["a", "b"], "cat", axis=1)
    act("Reshape", ["cat", "shape"], "flat")
    nodes.append(helper.make_node("Gemm", ["flat", "wf", "wf_b"], ["y"], transB=1))
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.fixture(scope="module")
def graphs():
    return load_graph(_model(qdq=False)), load_graph(_model(qdq=True))


def _classes(table) -> list[str]:
    return [KERNEL_CLASSES[c] for c in table.kclass]


def test_qdq_pool_concat_reshape_lower_to_int8_kernels_and_free_ops(graphs):
    _, qdq = graphs
    table = build_kernel_table(qdq, lowering="integer")
    # Q/DQ, Concat and Reshape are no kernels; ReLU is the conv's epilogue; MaxPool is an int8 pool
    assert _classes(table) == ["conv", "pool", "conv1x1", "conv", "gemm"]
    assert table.base_dtype == ["int8"] * 5
    assert table.in_elems[4] == 1024  # the gemm reads the whole concatenated buffer
    # the ONNX lowering of the same graph costs Q/DQ, the pool in fp32 and the concat as kernels of their own
    onnx_table = build_kernel_table(qdq)
    assert len(onnx_table) > len(table) and "datamove" in _classes(onnx_table)
    assert "fp32" in [d for d, c in zip(onnx_table.base_dtype, _classes(onnx_table)) if c == "pool"]


def test_a_qdq_graph_and_its_fp32_source_lower_alike(graphs, monkeypatch):
    """Same kernels, shapes and arena; the weight bytes too once Vela's encoder is off (with it, they follow
    the two graphs' different int8 weight values)."""
    monkeypatch.setattr("edgefit.estimate._vela_weights._codec", lambda: None)
    fp32, qdq = graphs
    a, b = build_kernel_table(fp32, lowering="integer"), build_kernel_table(qdq, lowering="integer")
    assert _classes(a) == _classes(b)
    for name in ("ops", "macs", "w_elems", "in_elems", "out_elems", "t_elems", "t_born", "t_dies", "chan_src"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def test_the_onnx_lowering_stays_the_default(graphs):
    fp32, _ = graphs
    a, b = build_kernel_table(fp32), build_kernel_table(fp32, lowering="onnx")
    assert a.names == b.names and np.array_equal(a.t_elems, b.t_elems)
    with pytest.raises(Exception, match="unknown lowering"):
        build_kernel_table(fp32, lowering="tflite")


def test_vela_arena_by_hand(graphs, monkeypatch):
    """Live feature maps (16-byte aligned, intermediate ones padded to 16 channels), one concat buffer, and
    the weight buffers Vela stages in SRAM: the first convolution's in two halves (nothing runs before it),
    the 1×1 convolution's prefetched under the max-pool (its 144 bytes stream in the pool's 512 cycles), none
    for the 3×3 convolution (656 bytes take longer than it and the kernel before it compute: read from flash)
    and none for the fully connected layer. Weights one byte each here (Vela's encoder switched off)."""
    monkeypatch.setattr("edgefit.estimate._vela_weights._codec", lambda: None)
    fp32, _ = graphs
    x, r1, p, cat, y = 3 * 16 * 16, 16 * 16 * 16, 16 * 8 * 8, 16 * 8 * 8, 16
    w1, w2, w3, wf = 224 + 80, 64 + 80, 576 + 80, 10240 + 112  # stream + bias records, each 16-aligned
    per_kernel = [x + r1 + 2 * 160, r1 + p + w2, p + cat + w2, p + cat, cat + y]
    est = Estimator(fp32, load_target("ethos-u55"), runtime="vela", profile=None).estimate(Plan(dtype="int8"))
    assert est.peak_activation_bytes == max(per_kernel) == 5264
    # flash: each kernel's weight stream and its 10-byte bias/scale record per output channel
    assert est.weight_bytes == w1 + w2 + w3 + wf


def test_estimating_a_qdq_graph_natively_costs_every_kernel_in_int8(graphs):
    _, qdq = graphs
    est = Estimator(qdq, load_target("ethos-u55"), profile=None).estimate()
    assert {k.dtype for k in est.kernels} == {"int8"} and len(est.kernels) == 5


def test_lowering_follows_the_runtime_and_the_target_kind():
    npu, cpu = load_target("ethos-u55"), load_target("host-cpu")
    assert lowering_for(npu, None) == "integer" and lowering_for(npu, "tflm") == "integer"
    assert lowering_for(cpu, None) == "onnx" and lowering_for(cpu, "onnxruntime") == "onnx"
    assert lowering_for(cpu, "vela") == "integer"


def _residual_add(c: int, tail: bool) -> onnx.ModelProto:
    """x → depthwise 1×1 → Add(x, ·) → ReLU (→ depthwise 1×1 when ``tail``), c channels on 16×16."""
    inits, nodes = [], []
    for name in ("pre", "tail"):
        inits += [numpy_helper.from_array(np.full((c, 1, 1, 1), 0.5, np.float32), f"{name}_w"),
                  numpy_helper.from_array(np.zeros(c, np.float32), f"{name}_b")]
    nodes += [helper.make_node("Conv", ["x", "pre_w", "pre_b"], ["p"], group=c),
              helper.make_node("Add", ["x", "p"], ["s"]), helper.make_node("Relu", ["s"], ["r"])]
    out = "r"
    if tail:
        nodes.append(helper.make_node("Conv", ["r", "tail_w", "tail_b"], ["y"], group=c))
        out = "y"
    used = inits if tail else inits[:2]
    graph = helper.make_graph(nodes, "add", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, 16, 16])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, c, 16, 16])], used)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@pytest.mark.parametrize(("c", "tail", "work"), [(8, True, 2.0), (24, True, 32 / 24), (16, True, 1.0),
                                                  (8, False, 1.0), (24, False, 1.0)])
def test_an_add_writing_an_intermediate_map_works_on_16_channel_bricks(c, tail, work):
    """Vela 5.2: such an Add + ReLU takes 1.5 cycles per element when it writes the model's NHWC output, and
    3.0 at 8 channels, 2.0 at 24 when a kernel reads its NHCWB16 output (the calibration kernels are the
    former, so only the latter pays the padding)."""
    table = build_kernel_table(load_graph(_residual_add(c, tail)), lowering="integer")
    (add,) = [i for i in range(len(table)) if KERNEL_CLASSES[table.kclass[i]] == "eltwise"]
    assert table.npu_work[add] == pytest.approx(work)
