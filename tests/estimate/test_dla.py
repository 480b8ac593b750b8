"""#17: which layers Orin's DLA runs and what falls back to the GPU, per TensorRT's DLA rules; the
Orin estimate carries it and says its power is the module's, not the wall's."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.graph import load_graph
from edgefit.targets import load_target


def _graph(nodes, inits, shape=(1, 16, 14, 14), out="y"):
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    return load_graph(model)


def _w(name, shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


@pytest.fixture(scope="module")
def mixed():
    """conv 3x3 → HardSwish → conv 1x1 stride 16 → concat(channels) → global average over 14x14 …"""
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["c0"], name="conv3x3", pads=[1, 1, 1, 1]),
        helper.make_node("HardSwish", ["c0"], ["h0"], name="hswish"),
        helper.make_node("Relu", ["h0"], ["r0"], name="relu"),
        helper.make_node("Concat", ["r0", "x"], ["cat"], name="concat", axis=1),
        helper.make_node("GlobalAveragePool", ["cat"], ["gap"], name="gap14"),
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv_s16", strides=[16, 16]),
        helper.make_node("MaxPool", ["c1"], ["mp"], name="maxpool2", kernel_shape=[1, 1]),
        helper.make_node("Flatten", ["gap"], ["flat"], name="flatten"),
        helper.make_node("MatMul", ["flat", "wfc"], ["fc"], name="fc"),
        helper.make_node("Transpose", ["fc"], ["fcT"], name="tr", perm=[1, 0]),
        helper.make_node("MatMul", ["fc", "fcT"], ["y"], name="act_matmul"),
    ]
    inits = [_w("w0", (16, 16, 3, 3)), _w("w1", (8, 16, 1, 1)), _w("wfc", (32, 10))]
    return _graph(nodes, inits)


def test_each_layer_is_placed_by_the_rule_that_applies(mixed):
    from edgefit.estimate._dla import dla_placement

    where = {p.layer: (p.unit, p.reason) for p in dla_placement(mixed, "int8")}
    assert where["conv3x3"][0] == "dla" and where["relu"][0] == "dla"
    assert where["hswish"] == ("gpu fallback", "HardSwish is not a DLA activation (ReLU, Sigmoid, "
                                               "TanH, Clip, LeakyReLU only)")
    assert where["concat"][0] == "dla"
    assert where["gap14"] == ("gpu fallback", "pooling window 14x14 exceeds the DLA's [1, 8]")
    assert where["conv_s16"] == ("gpu fallback", "stride 16 exceeds the DLA's [1, 8]")
    assert where["maxpool2"][0] == "dla" and where["flatten"][0] == "view"
    assert where["fc"][0] == "dla"
    assert where["act_matmul"] == ("gpu fallback", "MatMul between two activations is not a DLA layer")
    assert where["tr"] == ("gpu fallback", "Transpose is not among the DLA layers edgefit checks")


def test_fp32_never_runs_on_the_dla(mixed):
    from edgefit.estimate._dla import dla_placement, summary

    placed = dla_placement(mixed, "fp32")
    assert {p.unit for p in placed} == {"gpu fallback"}
    assert "FP16 and INT8 only" in placed[0].reason
    s = summary(dla_placement(mixed, "fp16"))
    assert s["dla"] + s["gpu_fallback"] == s["layers"] and s["gpu_fallback"] == 5
    assert "dla-layer-restrictions" in s["rules"]


def test_the_orin_estimate_marks_each_layer_and_says_module_power(mixed):
    from edgefit.estimate import Estimator, Plan

    est = Estimator(mixed, load_target("orin")).estimate(Plan(dtype="int8"))
    assert est.dla is not None and est.dla["gpu_fallback"] == 5
    assert {p["layer"] for p in est.dla["placements"]} == {layer.name for layer in mixed.layers}
    assert "module" in est.power_scope and "not wall power" in est.power_scope
    assert Estimator(mixed, load_target("h100")).estimate(Plan(dtype="int8")).dla is None


@pytest.mark.slow  # builds the example through the CLI (torch import)
def test_estimate_prints_the_dla_placement_and_the_power_scope(run_cli):
    code, out, err = run_cli("estimate", "--example", "ds-cnn-kws", "-t", "orin", "--dtype", "int8")
    flat = " ".join(out.split())
    assert code == 0 and "layers on the DLA" in flat and "not wall power" in flat
    assert "gpu fallback ×1: pooling window 25x5 exceeds the DLA's [1, 8]" in flat
