"""Validation before counting: what edgefit's own passes and onnxruntime write still loads, a DAG out of
order is sorted, external data is read only from the model's folder, the caller's proto is untouched.

The hostile cases (cycles, lying initializers, absurd dims …) live in tests/fuzz/onnx_corpus.py.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.errors import EdgefitError
from edgefit.graph import load_graph
from edgefit.graph._validate import MAX_ELEMENTS, check_tensor, tensor_nbytes


def _vi(name, shape, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, shape)


def _mlp() -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
             for n, s in (("w0", (32, 16)), ("b0", (32,)), ("w1", (8, 32)), ("b1", (8,)))]
    nodes = [helper.make_node("Gemm", ["x", "w0", "b0"], ["g0"], name="fc0", transB=1),
             helper.make_node("Relu", ["g0"], ["h0"], name="relu0"),
             helper.make_node("Gemm", ["h0", "w1", "b1"], ["y"], name="fc1", transB=1)]
    graph = helper.make_graph(nodes, "mlp", [_vi("x", [1, 16])], [_vi("y", [1, 8])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


MLP_MACS = 16 * 32 + 32 * 8


@pytest.mark.parametrize("precision", ["int8", "int8-dynamic", "int4-weight", "fp16"])
def test_models_the_quantize_pass_writes_still_load(precision, tmp_path):
    from edgefit.passes import PassContext, QuantizeConfig, apply_pass

    src = tmp_path / "mlp.onnx"
    onnx.save(_mlp(), src)
    out = apply_pass(src, QuantizeConfig(precision=precision), PassContext(work_dir=tmp_path / "work"))
    g = load_graph(out.model)
    assert g.macs > 0 and g.params > 0
    if precision in ("int8", "int8-dynamic", "fp16"):  # int4's MatMulNBits has no ONNX shape inference
        assert g.macs == MLP_MACS


def test_onnxruntime_optimized_model_with_com_microsoft_ops_loads(tmp_path):
    import onnxruntime as ort

    src, opt = tmp_path / "mlp.onnx", tmp_path / "opt.onnx"
    onnx.save(_mlp(), src)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    so.optimized_model_filepath = str(opt)
    ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
    assert any(n.domain == "com.microsoft" for n in onnx.load(opt).graph.node)
    g = load_graph(opt)
    assert len(g.layers) >= 2


def test_nodes_out_of_order_are_sorted_with_a_warning_and_counted_the_same():
    model = _mlp()
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend([nodes[2], nodes[0], nodes[1]])
    g = load_graph(model)
    assert g.macs == MLP_MACS and [layer.name for layer in g.layers] == ["fc0", "relu0", "fc1"]
    assert any("not in topological order" in w for w in g.warnings)
    assert [n.name for n in model.graph.node] == ["fc1", "fc0", "relu0"]  # the caller's proto is untouched


def test_a_newer_ir_version_is_read_as_the_known_one_without_touching_the_callers_proto():
    model = _mlp()
    model.ir_version = 99
    g = load_graph(model)
    assert g.macs == MLP_MACS and any("IR version 99" in w for w in g.warnings)
    assert model.ir_version == 99


def _save_external(model: onnx.ModelProto, folder, location="weights.bin"):
    folder.mkdir(exist_ok=True)
    onnx.save_model(model, folder / "model.onnx", save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=0)
    return folder / "model.onnx"


def test_external_data_beside_the_model_is_read_and_counted(tmp_path):
    path = _save_external(_mlp(), tmp_path / "m")
    g = load_graph(path)
    assert g.macs == MLP_MACS and g.params == 32 * 16 + 32 + 8 * 32 + 8
    assert all(t.data_location == TensorProto.DEFAULT for t in g.model.graph.initializer)


def test_an_in_memory_model_that_still_points_at_external_data_is_refused(tmp_path):
    path = _save_external(_mlp(), tmp_path / "m")
    light = onnx.load(str(path), load_external_data=False)
    with pytest.raises(EdgefitError, match="external file.*pass the .onnx file's path"):
        load_graph(light)


def test_an_external_data_file_shared_by_offsets_must_fit_each_tensor(tmp_path):
    path = _save_external(_mlp(), tmp_path / "m")
    data = (tmp_path / "m" / "weights.bin").read_bytes()
    (tmp_path / "m" / "weights.bin").write_bytes(data[:-4])  # the last tensor loses one value
    with pytest.raises(EdgefitError, match="initializer 'b1'.*needs 32 bytes"):
        load_graph(path)


def test_negative_input_dims_mean_dynamic_as_exporters_have_used_them():
    model = _mlp()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    g = load_graph(model)
    assert g.inputs["x"] == (1, 16) and any("assumed to be 1" in n for n in g.notes)


@pytest.mark.parametrize("dtype, dims, nbytes", [
    (TensorProto.FLOAT, [3, 4], 48), (TensorProto.INT4, [3], 2), (TensorProto.UINT4, [4], 2),
    (TensorProto.BOOL, [5], 5), (TensorProto.STRING, [2], None), (TensorProto.FLOAT, [], 4),
])
def test_tensor_nbytes_packs_sub_byte_types(dtype, dims, nbytes):
    assert tensor_nbytes(_tensor(dtype, dims)) == nbytes


def _tensor(dtype, dims):
    t = TensorProto(data_type=dtype)
    t.dims.extend(dims)
    return t


def test_packed_int4_data_in_int32_data_is_sized_by_pairs():
    t = helper.make_tensor("q", TensorProto.INT4, [5], [1, -2, 3, 4, 5])
    check_tensor(t, "q", "")  # 5 int4 values pack into 3 int32 fields
    del t.int32_data[2:]
    with pytest.raises(EdgefitError, match="holds 2 values in int32_data"):
        check_tensor(t, "q", "")


def test_the_element_limit_refuses_one_past_it_and_accepts_it():
    at = _tensor(TensorProto.FLOAT, [MAX_ELEMENTS])
    at.data_location = TensorProto.EXTERNAL  # sized against its file elsewhere; dims alone are checked
    check_tensor(at, "t", "")
    del at.dims[:]
    at.dims.extend([MAX_ELEMENTS + 1])
    with pytest.raises(EdgefitError, match="over 2\\^40 elements"):
        check_tensor(at, "t", "")


@pytest.mark.parametrize("weights_as_inputs", [False, True])  # True: the IR 3 style, initializers listed as inputs
def test_large_weights_are_left_out_of_inference_but_counted_and_kept(weights_as_inputs):
    w = numpy_helper.from_array(np.ones((256, 64), np.float32), "w")  # 64 KiB: past the inference cut-off
    shape = numpy_helper.from_array(np.array([1, 8, 8], np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Reshape", ["h", "shape"], ["y"], name="reshape")]
    inputs = [_vi("x", [1, 256])] + ([_vi("w", [256, 64])] if weights_as_inputs else [])
    graph = helper.make_graph(nodes, "g", inputs, [_vi("y", None)], [w, shape])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 3 if weights_as_inputs else 8
    g = load_graph(model)
    assert g.macs == 256 * 64 and g.params == 256 * 64
    assert g.outputs == {"y": (1, 8, 8)}  # the small shape constant still drove inference
    assert [i.name for i in g.model.graph.input] == [i.name for i in inputs]
    assert {i.name for i in g.model.graph.initializer} == {"w", "shape"} and g.model.ir_version == model.ir_version
