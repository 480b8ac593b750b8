"""The ONNX → PyTorch rebuild behind the LiteRT / Core ML / Vela backends: every op against onnxruntime."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.errors import EdgefitError
from edgefit.runtimes import TorchModel
from edgefit.runtimes._inputs import random_inputs
from edgefit.runtimes._parity import reference_outputs
from edgefit.runtimes.testing import tiny_model

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from edgefit.runtimes._onnx_torch import onnx_to_torch, unsupported_ops  # noqa: E402
from edgefit.runtimes._torch_source import as_torch_model  # noqa: E402


def _model(nodes, inputs, output, inits=(), opset=18):
    graph = helper.make_graph(nodes, "ops", [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                              [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)], list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 9
    return model


def _same_as_onnxruntime(model, atol=1e-5):
    module = onnx_to_torch(model)
    specs = {i.name: (tuple(d.dim_value for d in i.type.tensor_type.shape.dim), "float32") for i in model.graph.input
             if i.name not in {t.name for t in model.graph.initializer}}
    sample = random_inputs(specs, seed=3)
    (ref,) = reference_outputs(model, [sample])
    with torch.no_grad():
        out = module(*(torch.as_tensor(sample[n]) for n in module.input_names))
    (name,) = ref
    np.testing.assert_allclose(out.numpy(), ref[name], atol=atol, rtol=1e-4)


def _w(name, *shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32) * 0.3, name)


def _i64(name, values):
    return numpy_helper.from_array(np.array(values, np.int64), name)


def test_tiny_model_rebuild_matches_onnxruntime():
    _same_as_onnxruntime(tiny_model())


CASES = {
    "conv_asymmetric_pads_dilation_groups": ([
        helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 0, 2, 1], dilations=[2, 1], group=2, strides=[1, 2]),
        helper.make_node("Relu", ["c"], ["y"])], [("x", [1, 4, 9, 9])], [_w("w", 6, 2, 3, 3)]),
    "conv1d_causal": ([helper.make_node("Conv", ["x", "w", "b"], ["y"], pads=[4, 0], dilations=[2])],
                      [("x", [1, 3, 12])], [_w("w", 5, 3, 3), _w("b", 5)]),
    "pools_and_gap": ([helper.make_node("MaxPool", ["x"], ["m"], kernel_shape=[3, 3], strides=[2, 2], pads=[1] * 4),
                       helper.make_node("AveragePool", ["m"], ["a"], kernel_shape=[2, 2], strides=[1, 1]),
                       helper.make_node("GlobalAveragePool", ["a"], ["y"])], [("x", [1, 3, 11, 11])], []),
    "reduce_mean_reshape_gemm": ([
        helper.make_node("ReduceMean", ["x", "axes"], ["r"], keepdims=0),
        helper.make_node("Reshape", ["r", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "w", "b"], ["y"], transB=1, alpha=0.5, beta=2.0)],
        [("x", [1, 8, 5, 5])], [_i64("axes", [2, 3]), _i64("shape", [1, -1]), _w("w", 4, 8), _w("b", 4)]),
    "matmul_weight_add_const_clip": ([
        helper.make_node("MatMul", ["x", "w"], ["m"]), helper.make_node("Add", ["m", "b"], ["a"]),
        helper.make_node("Clip", ["a", "lo", "hi"], ["y"])],
        [("x", [2, 6])], [_w("w", 6, 3), _w("b", 3), numpy_helper.from_array(np.array(0, np.float32), "lo"),
                          numpy_helper.from_array(np.array(6, np.float32), "hi")]),
    "activations_concat_transpose": ([
        helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("HardSwish", ["x"], ["h"]),
        helper.make_node("LeakyRelu", ["x"], ["l"], alpha=0.1), helper.make_node("Tanh", ["x"], ["t"]),
        helper.make_node("HardSigmoid", ["x"], ["hs"]),
        helper.make_node("Concat", ["s", "h", "l", "t", "hs"], ["c"], axis=1),
        helper.make_node("Transpose", ["c"], ["tr"], perm=[0, 2, 1]),
        helper.make_node("Softmax", ["tr"], ["y"], axis=-1)],
        [("x", [1, 2, 7])], []),
    "batchnorm_mul_sub_div_flatten": ([
        helper.make_node("BatchNormalization", ["x", "g", "be", "mu", "var"], ["bn"]),
        helper.make_node("Mul", ["bn", "bn"], ["m"]), helper.make_node("Sub", ["m", "x"], ["s"]),
        helper.make_node("Div", ["s", "two"], ["d"]), helper.make_node("Flatten", ["d"], ["y"], axis=1)],
        [("x", [1, 3, 4, 4])], [_w("g", 3), _w("be", 3, seed=1), _w("mu", 3, seed=2),
                                numpy_helper.from_array(np.array([1.0, 2.0, 0.5], np.float32), "var"),
                                numpy_helper.from_array(np.array(2.0, np.float32), "two")]),
    "shape_arithmetic_unsqueeze_squeeze_pad": ([
        helper.make_node("Shape", ["x"], ["sh"]), helper.make_node("Gather", ["sh", "zero"], ["n"], axis=0),
        helper.make_node("Unsqueeze", ["n", "ax0"], ["n1"]),
        helper.make_node("Concat", ["n1", "minus1"], ["shape"], axis=0),
        helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Unsqueeze", ["r", "ax1"], ["u"]),
        helper.make_node("Squeeze", ["u", "ax1"], ["q"]), helper.make_node("Pad", ["q", "pads"], ["y"])],
        [("x", [2, 3, 4])], [_i64("zero", 0), _i64("ax0", [0]), _i64("minus1", [-1]), _i64("ax1", [1]),
                             _i64("pads", [0, 1, 0, 2])]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_matches_onnxruntime(case):
    nodes, inputs, inits = CASES[case]
    _same_as_onnxruntime(_model(nodes, inputs, "y", inits))


def test_unsupported_op_is_refused_with_the_fix():
    model = _model([helper.make_node("ArgMax", ["x"], ["y"], axis=1)], [("x", [1, 4])], "y")
    assert unsupported_ops(model) == ["ArgMax"]
    with pytest.raises(EdgefitError, match="ArgMax") as info:
        as_torch_model(model)
    assert "TorchModel(module, example_input)" in info.value.fix


def test_sources_become_a_torch_model_with_names():
    tm = as_torch_model(tiny_model())
    assert tm.input_names == ("x",) and tm.output_names == ("logits",) and tm.reference is not None
    assert tm.specs() == {"x": ((1, 3, 16, 16), "float32")} and tm.name == "tiny"
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 2))
    pair = as_torch_model((module, torch.zeros(1, 3, 4)))
    assert pair.output_names == ("y",) and pair.reference is None
    assert pair.outputs({"x": np.ones((1, 3, 4), np.float32)})["y"].shape == (1, 2)
    with pytest.raises(EdgefitError, match="no input shape"):
        as_torch_model(module)
    with pytest.raises(EdgefitError, match="one name per input"):
        TorchModel(module, (torch.zeros(1, 12),), input_names=("a", "b"))
