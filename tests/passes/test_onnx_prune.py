"""Channel pruning and recovery of models that arrive as ONNX files (onnx-prune, onnx-recover)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefit.errors import EdgefitError
from edgefit.graph import load_graph
from edgefit.passes import PassContext, PassNotApplicable, RecoverConfig, apply_pass, get_pass
from edgefit.passes._onnx_prune import OnnxPruneConfig
from edgefit.passes._onnx_recover import prune_and_recover_onnx, recover_onnx
from toy_onnx import convnet, feeds, mlp


def run(model, feed_list):
    model = onnx.load(str(model)) if not isinstance(model, onnx.ModelProto) else model
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [sess.run(None, f)[0] for f in feed_list]


def build(nodes, inits, x_shape, y_shape):
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
                              [numpy_helper.from_array(np.asarray(a, np.float32 if np.asarray(a).dtype.kind == "f"
                                                                  else np.int64), n) for n, a in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def kitchen_sink(dead=(1, 3, 5, 7)):
    """Conv → BN → Clip → depthwise Conv → Mul/Add by per-channel constants → Relu → MaxPool →
    GlobalAveragePool → Reshape [1, 8] → Gemm, with the ``dead`` channels of the first Conv exactly
    zero all the way down: pruning them (the smallest weights) must not change the output at all,
    which holds only if every per-channel parameter is sliced with the same indices."""
    rng = np.random.default_rng(0)
    k, b = rng.normal(0, 0.5, (8, 3, 3, 3)), rng.normal(0, 0.1, 8)
    mean, beta = rng.normal(0, 0.1, 8), rng.normal(0, 0.1, 8)
    dw, dwb = rng.normal(0, 0.5, (8, 1, 3, 3)), rng.normal(0, 0.1, 8)
    mul, add = rng.uniform(0.5, 2, (1, 8, 1, 1)), rng.normal(0, 0.1, (8, 1, 1))
    for arr in (k, b, mean, beta, dwb, add):
        arr[list(dead)] = 0.0
    inits = {"k": k, "b": b, "scale": rng.uniform(0.5, 2, 8), "beta": beta, "mean": mean,
             "var": rng.uniform(0.5, 2, 8), "dw": dw, "dwb": dwb, "mul": mul, "add": add,
             "shape": np.array([1, 8]), "w": rng.normal(0, 0.5, (4, 8)), "wb": np.zeros(4)}
    nodes = [helper.make_node("Conv", ["x", "k", "b"], ["c"], name="conv", pads=[1] * 4),
             helper.make_node("BatchNormalization", ["c", "scale", "beta", "mean", "var"], ["n"], name="bn"),
             helper.make_node("Clip", ["n"], ["r"], name="clip"),
             helper.make_node("Conv", ["r", "dw", "dwb"], ["d"], name="dw", pads=[1] * 4, group=8),
             helper.make_node("Mul", ["d", "mul"], ["m"], name="mul"),
             helper.make_node("Add", ["m", "add"], ["a"], name="add"),
             helper.make_node("Relu", ["a"], ["ra"], name="relu"),
             helper.make_node("MaxPool", ["ra"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["p"], ["g"], name="gap"),
             helper.make_node("Reshape", ["g", "shape"], ["f"], name="reshape"),
             helper.make_node("Gemm", ["f", "w", "wb"], ["y"], name="fc", transB=1)]
    return build(nodes, inits, [1, 3, 8, 8], [1, 4])


def residual():
    """conv0 → Relu → conv1 → Relu (r1) → conv2 → Add(r1, ·) → Relu → GAP → Flatten → Gemm."""
    rng = np.random.default_rng(1)
    inits = {f"k{i}": rng.normal(0, 0.4, (8, 3 if i == 0 else 8, 3, 3)) for i in range(3)}
    inits |= {"w": rng.normal(0, 0.5, (4, 8)), "b": np.zeros(4)}
    nodes = [helper.make_node("Conv", ["x", "k0"], ["a0"], name="conv0", pads=[1] * 4),
             helper.make_node("Relu", ["a0"], ["r0"], name="relu0"),
             helper.make_node("Conv", ["r0", "k1"], ["a1"], name="conv1", pads=[1] * 4),
             helper.make_node("Relu", ["a1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "k2"], ["a2"], name="conv2", pads=[1] * 4),
             helper.make_node("Add", ["r1", "a2"], ["s"], name="residual"),
             helper.make_node("Relu", ["s"], ["rs"], name="relu2"),
             helper.make_node("GlobalAveragePool", ["rs"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="fc", transB=1)]
    return build(nodes, inits, [1, 3, 8, 8], [1, 4])


@pytest.fixture
def ctx(tmp_path):
    return PassContext(work_dir=tmp_path, threads=1)


def test_pass_is_registered_for_onnx_models():
    spec = get_pass("onnx-prune")
    assert spec.config_type is OnnxPruneConfig and spec.consumes == "onnx" and spec.change_kind == "pruning"
    assert OnnxPruneConfig.search_space() == {"amount": (0.25, 0.5)}
    for bad, where in (({"amount": 0.0}, "amount"), ({"amount": 1}, "amount"), ({"round_to": 0}, "round_to")):
        with pytest.raises(EdgefitError, match=f"OnnxPruneConfig.{where}"):
            OnnxPruneConfig(**bad)
    assert [OnnxPruneConfig(amount=0.5, round_to=8).kept(c) for c in (64, 12, 4)] == [32, 8, 4]


@pytest.mark.parametrize(("model", "widths"), [(mlp(), {"w0": (16, 16), "w1": (16, 16), "w2": (8, 16)}),
                                               (convnet(), {"k0": (4, 3), "k1": (4, 4), "w": (4, 4)})],
                         ids=["mlp", "convnet"])
def test_toy_models_shrink_run_and_keep_their_output_shape(model, widths, ctx):
    out = apply_pass(model, OnnxPruneConfig(amount=0.5), ctx)
    pruned = onnx.load(str(out.model))
    dims = {i.name: tuple(i.dims[:2]) for i in pruned.graph.initializer}
    assert {k: dims[k] for k in widths} == widths
    assert out.metadata["macs_after"] < out.metadata["macs_before"] and out.metadata["params_after"] < out.metadata[
        "params_before"]
    assert load_graph(pruned).macs == out.metadata["macs_after"]
    assert [s["reason"] for s in out.metadata["groups_skipped"]] == ["'y' is a graph output"]  # the classifier
    assert run(pruned, feeds(model, 2))[0].shape == run(model, feeds(model, 2))[0].shape
    assert len(out.metadata["groups_pruned"]) == 2 and out.change_kind == "pruning"


def test_every_per_channel_parameter_is_sliced_with_its_channels(ctx):
    model = kitchen_sink()
    out = apply_pass(model, OnnxPruneConfig(amount=0.5), ctx)
    assert out.metadata["groups_pruned"] == [{"producer": "conv", "channels": [8, 4]}]
    pruned = onnx.load(str(out.model))
    assert next(a.i for n in pruned.graph.node if n.name == "dw" for a in n.attribute if a.name == "group") == 4
    np.testing.assert_allclose(run(pruned, feeds(model)), run(model, feeds(model)), rtol=1e-5, atol=1e-6)
    live = apply_pass(kitchen_sink(dead=()), OnnxPruneConfig(amount=0.5), ctx).model  # a real cut changes it
    assert not np.allclose(run(live, feeds(model)), run(model, feeds(model)), atol=1e-3)


def test_residual_groups_are_skipped_and_say_why(ctx):
    out = apply_pass(residual(), OnnxPruneConfig(amount=0.5), ctx)
    assert [g["producer"] for g in out.metadata["groups_pruned"]] == ["conv0"]
    reasons = {s["producer"]: s["reason"] for s in out.metadata["groups_skipped"]}
    assert set(reasons) == {"conv1", "conv2", "fc"}
    assert "residual" in reasons["conv1"] and "residual" in reasons["conv2"]
    assert run(out.model, feeds(residual(), 1))[0].shape == (1, 4)


def test_search_helpers_map_a_plan_and_tell_what_is_prunable(ctx):
    from edgefit.passes import PruneConfig
    from edgefit.passes._onnx_prune import as_onnx_prune, prunable

    assert as_onnx_prune(PruneConfig(method="channel", amount=0.25, round_to=8)) == OnnxPruneConfig(0.25, 8)
    with pytest.raises(PassNotApplicable, match="channels only"):
        as_onnx_prune(PruneConfig(method="2:4"))
    assert prunable(convnet()) and prunable(residual()) and not prunable(mlp((16, 8)))
    (out,) = prune_and_recover_onnx(convnet(), PruneConfig(method="channel", amount=0.25), ctx)
    assert out.metadata["amount"] == 0.25 and out.metadata["groups_pruned"][0]["channels"] == [8, 6]


def test_a_model_with_nothing_to_prune_is_not_applicable(ctx):
    with pytest.raises(PassNotApplicable, match="no channel group"):
        apply_pass(mlp((16, 8)), OnnxPruneConfig(), ctx)
    with pytest.raises(PassNotApplicable, match="residual"):
        only_residual = residual()
        only_residual.graph.node[2].input[0] = "x"  # conv1 reads x: conv0 is dead, the rest residual
        only_residual.graph.node[2].input[1] = "k0"
        del only_residual.graph.node[:2]
        apply_pass(only_residual, OnnxPruneConfig(), ctx)


def test_trainable_rebuild_gives_every_initializer_back_by_name():
    from edgefit.runtimes._onnx_torch import onnx_to_torch

    model = mlp()
    matmul = helper.make_model(helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])], "mm", [helper.make_tensor_value_info("x", 1, [1, 4])],
        [helper.make_tensor_value_info("y", 1, [1, 3])], [numpy_helper.from_array(np.arange(12.0, dtype=np.float32)
                                                                                 .reshape(4, 3), "w")]))
    for proto in (model, matmul):
        inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        frozen, trained = onnx_to_torch(proto), onnx_to_torch(proto, trainable=True)
        assert not any(p.requires_grad for p in frozen.parameters())  # existing callers: unchanged
        assert all(p.requires_grad for p in trained.parameters())
        back = trained.float_initializers()
        assert set(back) == set(inits) and all(np.array_equal(back[k], v) for k, v in inits.items())
    some = onnx_to_torch(model, trainable=frozenset({"w0"}))
    assert sum(p.requires_grad for p in some.parameters()) == 1


@pytest.mark.slow
def test_recovery_writes_weights_back_deterministically(ctx):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((96, 16)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    data = PassContext(work_dir=ctx.work_dir, train=(x, y), threads=1)
    pruned, a = prune_and_recover_onnx(mlp(), OnnxPruneConfig(amount=0.5), data, RecoverConfig(epochs=2))
    b = recover_onnx(pruned.model, RecoverConfig(epochs=2), data, teacher=mlp())
    c = recover_onnx(pruned.model, RecoverConfig(epochs=2), PassContext(work_dir=ctx.work_dir, train=(x, y),
                                                                          threads=1, seed=1), teacher=mlp())
    inits = [{i.name: numpy_helper.to_array(i) for i in onnx.load(str(r.model)).graph.initializer}
             for r in (pruned, a, b, c)]
    assert all(np.array_equal(inits[1][k], inits[2][k]) for k in inits[1])  # same seed: same weights
    assert not all(np.array_equal(inits[1][k], inits[3][k]) for k in inits[1])  # another seed: others
    assert not np.array_equal(inits[0]["w1"], inits[1]["w1"]) and inits[0]["w1"].shape == inits[1]["w1"].shape
    assert [n.op_type for n in onnx.load(str(a.model)).graph.node] == [n.op_type for n in mlp().graph.node]
    assert a.change_kind == "weights" and a.metadata["trained_initializers"] == 6
    with pytest.raises(EdgefitError, match="PassContext.teacher"):
        recover_onnx(pruned.model, RecoverConfig(), data)
    with pytest.raises(EdgefitError, match="PassContext.train"):
        recover_onnx(pruned.model, RecoverConfig(distill=False), PassContext(work_dir=ctx.work_dir))
    with pytest.raises(EdgefitError, match="recovery training failed"):  # labels that fit no output
        bad = PassContext(work_dir=ctx.work_dir, train=(x, y + 8), threads=1)
        recover_onnx(pruned.model, RecoverConfig(distill=False), bad)


# --- a trained digits-cnn exported to ONNX ---------------------------------------------------------


@pytest.fixture(scope="module")
def digits_onnx(teacher, tmp_path_factory):
    from edgefit.graph._torch import export_torch

    path = tmp_path_factory.mktemp("digits") / "digits.onnx"
    onnx.save(export_torch(teacher, (1, 1, 16, 16)), str(path))
    return path


def accuracy(path, x, y) -> float:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return float(np.mean([int(sess.run(None, {sess.get_inputs()[0].name: x[i : i + 1]})[0].argmax()) == y[i]
                          for i in range(len(x))]))


def test_recalibration_matches_the_original_output_statistics(tmp_path):
    model = convnet(channels=16)
    x = np.random.default_rng(3).standard_normal((64, 3, 8, 8)).astype(np.float32)
    raw = apply_pass(model, OnnxPruneConfig(amount=0.5), PassContext(work_dir=tmp_path))
    fixed = apply_pass(model, OnnxPruneConfig(amount=0.5), PassContext(work_dir=tmp_path, train=(x, x[:, 0, 0, 0])))
    assert raw.metadata["recalibrated"] is None and "no data" in raw.metadata["recalibration"]
    assert fixed.metadata["recalibrated"] == ["conv0", "conv1", "fc"]  # every layer pruning sliced
    assert fixed.metadata["recalibration"].endswith("on training inputs (64 samples)")
    ref, before, after = (np.concatenate(run(m, [{"x": x[i : i + 1]} for i in range(64)]))
                          for m in (model, raw.model, fixed.model))
    np.testing.assert_allclose(after.mean(0), ref.mean(0), atol=1e-4)  # the last corrected layer: exact
    np.testing.assert_allclose(after.std(0), ref.std(0), rtol=1e-3)
    assert not np.allclose(before.std(0), ref.std(0), rtol=0.05)


@pytest.mark.slow
def test_pruned_digits_cnn_recovers_close_to_the_original(digits_onnx, digits, tmp_path):
    context = PassContext(work_dir=tmp_path, train=digits["train"], val=digits["val"], threads=1)
    pruned, recovered = prune_and_recover_onnx(digits_onnx, OnnxPruneConfig(amount=0.25), context,
                                               RecoverConfig(epochs=1))
    meta = pruned.metadata
    assert len(meta["groups_pruned"]) == 6 and [s["producer"] for s in meta["groups_skipped"]] == ["node_linear"]
    assert meta["macs_after"] < 0.6 * meta["macs_before"]  # 25 % fewer channels on both sides of a conv
    raw = apply_pass(digits_onnx, OnnxPruneConfig(amount=0.25), PassContext(work_dir=tmp_path)).model
    base, cut, fixed, back = (accuracy(p, *digits["test"])
                              for p in (digits_onnx, raw, pruned.model, recovered.model))
    assert base > 0.95 and cut < base - 0.3  # measured 0.98 → 0.30 pruned without data
    assert fixed > cut + 0.3  # measured 0.95 with the output statistics matched on training inputs
    assert back >= base - 0.03  # measured 0.97 after one epoch
    assert recovered.metadata["val_accuracy_after"] >= recovered.metadata["val_accuracy_before"]
