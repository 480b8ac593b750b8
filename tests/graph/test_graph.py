"""Graph intake: MAC/param rules per op, dtype detection, liveness, dynamic dims, bad files."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.errors import EdgefitError
from edgefit.graph import lifetimes, load_graph, parse_input_shape, peak_memory


def _model(nodes, inputs, outputs, inits=(), opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _w(name, *shape, dtype=np.float32):
    return numpy_helper.from_array(np.ones(shape, dtype=dtype), name)


def test_conv_grouped_depthwise_strided_dilated_macs():
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], name="conv", pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="dw", group=16, pads=[2, 2, 2, 2], dilations=[2, 2]),
        helper.make_node("Conv", ["c2", "w3"], ["c3"], name="grouped", group=4),
    ]
    m = _model(nodes, [_vi("x", [1, 3, 32, 32])], [_vi("c3", None)],
               [_w("w1", 16, 3, 3, 3), _w("b1", 16), _w("w2", 16, 1, 3, 3), _w("w3", 32, 4, 1, 1)])
    g = load_graph(m)
    conv, dw, grouped = g.layers
    assert conv.output_shape == (1, 16, 16, 16)
    assert conv.macs == 16 * 16 * 16 * 3 * 9 and conv.params == 16 * 27 + 16
    assert dw.kind == "depthwise_conv" and dw.macs == 16 * 16 * 16 * 9
    assert grouped.kind == "conv" and grouped.macs == 32 * 16 * 16 * 4
    assert g.params == 16 * 27 + 16 + 16 * 9 + 32 * 4
    assert conv.weight_bytes == (16 * 27 + 16) * 4
    # the attributes a runtime-faithful lowering reads (Vela expands a dilation above 2)
    assert dw.attrs["dilations"] == [2, 2] and dw.attrs["group"] == 16 and dw.attrs["kernel_shape"] == [3, 3]
    assert conv.attrs["dilations"] == [] and conv.attrs["strides"] == [2, 2]


def test_gemm_matmul_convtranspose_lstm_gru_macs():
    nodes = [
        helper.make_node("Gemm", ["x", "wg", "bg"], ["g1"], name="gemm", transB=1),
        helper.make_node("MatMul", ["q", "k"], ["att"], name="attn"),
        helper.make_node("ConvTranspose", ["img", "wt"], ["up"], name="deconv", strides=[2, 2]),
        helper.make_node("LSTM", ["seq", "wl", "rl"], ["ly"], name="lstm", hidden_size=32),
        helper.make_node("GRU", ["seq", "wr", "rr"], ["gy"], name="gru", hidden_size=16),
    ]
    m = _model(
        nodes,
        [_vi("x", [4, 64]), _vi("q", [2, 8, 10, 16]), _vi("k", [2, 8, 16, 12]), _vi("img", [1, 8, 5, 5]),
         _vi("seq", [7, 1, 24])],
        [_vi(n, None) for n in ("g1", "att", "up", "ly", "gy")],
        [_w("wg", 10, 64), _w("bg", 10), _w("wt", 8, 6, 2, 2), _w("wl", 1, 128, 24), _w("rl", 1, 128, 32),
         _w("wr", 1, 48, 24), _w("rr", 1, 48, 16)],
    )
    layers = {l.name: l for l in load_graph(m).layers}
    assert layers["gemm"].macs == 4 * 10 * 64 and layers["gemm"].params == 650
    assert layers["attn"].kind == "matmul" and layers["attn"].macs == 2 * 8 * 10 * 12 * 16
    assert layers["deconv"].output_shape == (1, 6, 10, 10) and layers["deconv"].macs == 8 * 25 * 6 * 4
    assert layers["lstm"].macs == 7 * 4 * 32 * (24 + 32)
    assert layers["gru"].macs == 7 * 3 * 16 * (24 + 16)


def test_qdq_model_counts_as_int8_with_int8_weight_bytes():
    w = numpy_helper.from_array(np.ones((8, 4, 3, 3), np.int8), "w_q")
    scale = numpy_helper.from_array(np.array(0.1, np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, np.int8), "zp")
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xdq"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "s", "zp"], ["w_dq"], name="dq_w"),
        helper.make_node("Conv", ["xdq", "w_dq"], ["y"], name="conv"),
    ]
    g = load_graph(_model(nodes, [_vi("x", [1, 4, 8, 8])], [_vi("y", None)], [w, scale, zp]))
    names = [l.name for l in g.layers]
    assert "dq_w" not in names  # weight dequantization is folded into the consumer
    conv = next(l for l in g.layers if l.name == "conv")
    assert conv.dtype == "int8" and conv.weight_bytes == 8 * 4 * 9 and conv.params == 8 * 4 * 9
    assert g.compute_dtype == "int8"


def test_unknown_op_is_memory_bound_with_warning_not_a_crash():
    nodes = [helper.make_node("Relu", ["x"], ["r"], name="relu"),
             helper.make_node("FancyOp", ["r"], ["y"], name="fancy", domain="custom.domain")]
    m = _model(nodes, [_vi("x", [1, 16])], [_vi("y", [1, 16])])
    m.opset_import.append(helper.make_opsetid("custom.domain", 1))
    g = load_graph(m)
    fancy = g.layers[-1]
    assert fancy.kind == "unknown" and fancy.macs == 0
    assert any("FancyOp" in w and "memory-bound" in w for w in g.warnings)


def test_peak_activation_memory_matches_hand_computation():
    # x(4000 B) -> a=MatMul(x,W1)(8000) -> b=Relu(a)(8000) -> c=MatMul(b,W2)(4000) -> y=Add(x,c)(4000)
    # live while each node runs: n0 {x,a}=12000, n1 {x,a,b}=20000, n2 {x,b,c}=16000, n3 {x,c,y}=12000
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["a"], name="n0"),
        helper.make_node("Relu", ["a"], ["b"], name="n1"),
        helper.make_node("MatMul", ["b", "w2"], ["c"], name="n2"),
        helper.make_node("Add", ["x", "c"], ["y"], name="n3"),
    ]
    g = load_graph(_model(nodes, [_vi("x", [1, 1000])], [_vi("y", None)], [_w("w1", 1000, 2000), _w("w2", 2000, 1000)]))
    assert g.peak_activation_bytes == 20000
    assert g.layers[g.peak_at].name == "n1"
    assert g.params == 4_000_000


def test_lifetimes_function_directly():
    lives = lifetimes([(["x"], ["a"]), (["a"], ["b"]), (["x", "b"], ["y"])], ["x"], ["y"],
                      {"x": 10, "a": 100, "b": 1, "y": 5})
    by = {l.tensor: (l.born, l.dies) for l in lives}
    assert by == {"x": (-1, 2), "a": (0, 1), "b": (1, 2), "y": (2, 3)}
    assert peak_memory(lives, 3) == (111, 1)


def test_dynamic_batch_is_assumed_one_and_noted():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    g = load_graph(_model(nodes, [_vi("x", ["N", 3, 4, 4])], [_vi("y", None)]))
    assert g.inputs["x"] == (1, 3, 4, 4)
    assert any("batch" in n and "assumed to be 1" in n for n in g.notes)


def test_other_dynamic_dims_need_input_shape():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="relu")]
    m = _model(nodes, [_vi("x", ["N", 3, "H", "W"])], [_vi("y", None)])
    with pytest.raises(EdgefitError, match="dynamic dimensions.*--input-shape"):
        load_graph(m)
    g = load_graph(m, input_shape="x:2x3x8x8")
    assert g.layers[0].output_shape == (2, 3, 8, 8)


def test_input_shape_parsing_and_errors():
    assert parse_input_shape("1x3x224x224") == (1, 3, 224, 224)
    assert parse_input_shape("a:1,2;b:3x4") == {"a": (1, 2), "b": (3, 4)}
    with pytest.raises(EdgefitError, match="--input-shape"):
        parse_input_shape("1xfoo")
    with pytest.raises(EdgefitError, match="--input-shape"):
        parse_input_shape("0x3")


@pytest.mark.parametrize("content, message", [
    (None, "not found"),
    (b"", "empty"),
    (b"this is not a protobuf at all \xff\xfe", "not a readable ONNX model|not an ONNX model"),
    ("truncated", "not a readable ONNX model|not an ONNX model|truncated"),
])
def test_bad_model_files_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "model.onnx"
    if content == "truncated":
        nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="gemm")]
        data = _model(nodes, [_vi("x", [1, 64])], [_vi("y", None)], [_w("w", 64, 64)]).SerializeToString()
        path.write_bytes(data[: len(data) // 2])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(EdgefitError, match=message) as info:
        load_graph(path)
    assert "\n" not in str(info.value) and "MODEL" in str(info.value)


@pytest.mark.slow
def test_torch_module_is_exported_and_counted():
    import torch

    m = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 4))
    g = load_graph(m, input_shape="1x3x16x16")
    assert g.macs == 8 * 16 * 16 * 27 + 8 * 4
    # BN folds into the conv bias: 8 × 27 weights + 8 bias + Linear 36
    assert g.params == 8 * 27 + 8 + 36
    with pytest.raises(EdgefitError, match="input shape"):
        load_graph(m)
