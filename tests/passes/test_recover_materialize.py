"""Recovery fine-tuning with distillation, and materializing whole plans into ONNX files that run."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from edgefit.errors import EdgefitError
from edgefit.examples import evaluate_accuracy
from edgefit.passes import (PassContext, PassNotApplicable, PassPlan, PruneConfig, QuantizeConfig, RecoverConfig,
                            SwapConfig, apply_pass, materialize, sparsity)
from edgefit.passes._onnx import session

SHAPE = (1, 1, 16, 16)


def onnx_accuracy(path, x, y) -> float:
    sess = session(path, 2)
    name = sess.get_inputs()[0].name
    pred = [int(sess.run(None, {name: x[i : i + 1]})[0].argmax()) for i in range(len(x))]
    return float(np.mean(np.asarray(pred) == y))


@pytest.fixture
def context(digits, teacher, tmp_path):
    return PassContext(work_dir=tmp_path, train=digits["train"], val=digits["val"], teacher=teacher,
                       factory="digits-cnn", input_shape=SHAPE, threads=1)


def test_recover_restores_a_channel_pruned_digits_cnn(teacher, digits, context):
    pytest.importorskip("torch_pruning", reason="the 'prune' extra")
    pruned = apply_pass(teacher, PruneConfig(method="channel", amount=0.5), context).model
    before = evaluate_accuracy(pruned, *digits["test"])
    out = apply_pass(pruned, RecoverConfig(epochs=1), context)
    after = evaluate_accuracy(out.model, *digits["test"])
    assert before < 0.3 and after > before + 0.4  # measured 0.07 → 0.78 after one epoch
    assert out.change_kind == "weights" and out.metadata["val_accuracy_after"] > out.metadata["val_accuracy_before"]
    assert evaluate_accuracy(pruned, *digits["test"]) == before, "the input must not change"


def test_recover_is_deterministic_and_keeps_pruned_zeros(teacher, digits, context):
    sparse = apply_pass(teacher, PruneConfig(method="unstructured", amount=0.6), context).model
    a = apply_pass(sparse, RecoverConfig(epochs=1), context).model
    b = apply_pass(sparse, RecoverConfig(epochs=1), context).model
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    zeros = {k: v == 0 for k, v in sparse.state_dict().items() if k.endswith("weight") and v.dim() > 1}
    assert all(bool((a.state_dict()[k][z] == 0).all()) for k, z in zeros.items())
    assert sparsity(a) == pytest.approx(0.6, abs=0.01) and not any(n.endswith("_orig") for n, _ in a.named_parameters())


def test_recover_without_distillation_and_its_errors(teacher, digits, context):
    small = PassContext(train=(digits["train"][0][:128], digits["train"][1][:128]), threads=1)
    out = apply_pass(teacher, RecoverConfig(epochs=1, distill=False), small)
    assert "labels only" in out.metadata["recipe"] and out.metadata["val_source"].startswith("training data")
    with pytest.raises(EdgefitError, match="PassContext.teacher"):
        apply_pass(teacher, RecoverConfig(), small)
    with pytest.raises(EdgefitError, match="PassContext.train"):
        apply_pass(teacher, RecoverConfig(distill=False), PassContext())
    with pytest.raises(PassNotApplicable):
        apply_pass("model.onnx", RecoverConfig(distill=False), small)


def test_recover_shows_progress_only_when_asked(teacher, digits, capsys):
    data = (digits["train"][0][:64], digits["train"][1][:64])
    apply_pass(teacher, RecoverConfig(epochs=1, distill=False), PassContext(train=data, threads=1))
    assert capsys.readouterr().err == ""
    apply_pass(teacher, RecoverConfig(epochs=1, distill=False), PassContext(train=data, progress=True, threads=1))
    assert "training" in capsys.readouterr().err


# --- materialize ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_materialize_swap_recover_int8_end_to_end(teacher, digits, context):
    plan = PassPlan(swap=SwapConfig(width=0.25), recover=RecoverConfig(epochs=1), quantize=QuantizeConfig())
    m = materialize(teacher, plan, context)
    assert m.change_kinds == ("architecture", "weights", "quantization")
    assert [p["pass"] for p in m.metadata["passes"]] == ["swap", "recover", "export", "quantize"]
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(str(m.onnx_path)).graph.node}
    assert m.metadata["passes"][-1]["calibration"].startswith("training inputs")
    accuracy = onnx_accuracy(m.onnx_path, *digits["test"])
    assert accuracy > 0.25  # 10 classes; measured 0.47 after one epoch from scratch at width 0.25
    convs = [mod for mod in m.torch_module.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert convs[0].out_channels == 8  # width 0.25 of 32
    again = materialize(teacher, plan, context)
    assert again.metadata["cache"] == "hit" and again.onnx_path == m.onnx_path and again.torch_module is None
    assert again.change_kinds == m.change_kinds and again.metadata["content_hash"] == m.metadata["content_hash"]


@pytest.mark.slow
def test_materialize_prune_recover_int8_keeps_accuracy_close(teacher, digits, context):
    fp32 = onnx_accuracy(materialize(teacher, PassPlan(), context).onnx_path, *digits["test"])
    int8 = onnx_accuracy(materialize(teacher, PassPlan(quantize=QuantizeConfig()), context).onnx_path, *digits["test"])
    assert fp32 > 0.95 and abs(fp32 - int8) <= 0.02  # measured 0.989 and 0.989
    plan = PassPlan(prune=PruneConfig(method="2:4"), recover=RecoverConfig(epochs=1), quantize=QuantizeConfig())
    m = materialize(teacher, plan, context)
    assert m.change_kinds == ("pruning", "weights", "quantization")
    assert onnx_accuracy(m.onnx_path, *digits["test"]) > 0.9  # measured 0.97


@pytest.mark.slow
def test_materialize_an_onnx_base(teacher, context, tmp_path):
    base = materialize(teacher, PassPlan(), context).onnx_path
    m = materialize(base, PassPlan(quantize=QuantizeConfig(precision="int8-dynamic")), context)
    assert m.change_kinds == ("quantization",) and m.torch_module is None
    with pytest.raises(PassNotApplicable, match="torch module"):
        materialize(base, PassPlan(prune=PruneConfig()), context)


@pytest.mark.slow
def test_materialize_a_module_function_factory_base(tmp_path, monkeypatch, digits):
    (tmp_path / "tiny_factory_mod.py").write_text(
        "from torch import nn\n"
        "def build(width=1.0, depth=1.0, activation='gelu'):\n"
        "    c = int(32 * width)\n"
        "    act = {'gelu': nn.GELU, 'relu': nn.ReLU}[activation]\n"
        "    return nn.Sequential(nn.Conv2d(1, c, 3, padding=1), act(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),\n"
        "                         nn.Linear(c, 10))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    ctx = PassContext(work_dir=tmp_path / "work", input_shape=SHAPE, calibration=digits["val"][0][:8], threads=1)
    plan = PassPlan(swap=SwapConfig(width=0.5, activation="relu"), quantize=QuantizeConfig(precision="int8"))
    m = materialize("tiny_factory_mod:build", plan, ctx)
    assert m.metadata["factory"] == "tiny_factory_mod:build" and m.change_kinds == ("architecture", "quantization")
    assert m.torch_module[0].out_channels == 16 and isinstance(m.torch_module[1], torch.nn.ReLU)
    sess = session(m.onnx_path, 1)
    assert sess.run(None, {sess.get_inputs()[0].name: digits["val"][0][:1]})[0].shape == (1, 10)


def test_materialize_onnx_only_plan_is_fast(tmp_path):
    """An ONNX base and a quantize-only plan: no torch export; the cache key follows the plan."""
    import toy_onnx

    path = tmp_path / "mlp.onnx"
    onnx.save(toy_onnx.mlp(), path)
    ctx = PassContext(work_dir=tmp_path / "work", calibration_samples=4)
    a = materialize(path, PassPlan(quantize=QuantizeConfig()), ctx)
    b = materialize(path, PassPlan(quantize=QuantizeConfig(per_channel=False)), ctx)
    assert a.onnx_path.parent != b.onnx_path.parent and a.metadata["cache"] == b.metadata["cache"] == "miss"
    assert a.metadata["passes"][0]["warning"].startswith("calibrated on random inputs")
    assert materialize(path, PassPlan(quantize=QuantizeConfig()), ctx).metadata["cache"] == "hit"
    assert materialize(path, PassPlan(), ctx).change_kinds == ()
