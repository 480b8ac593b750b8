"""The torchao pass (real torchao on CPU), the plan's torchao slot, and materialize's .pt2 artifact."""

from __future__ import annotations

import importlib.util
import json

import pytest

from edgefit.errors import EdgefitError
from edgefit.passes import (PassContext, PassNotApplicable, PassPlan, QuantizeConfig, TorchaoConfig, apply_pass,
                            config_from_dict, materialize)

torch = pytest.importorskip("torch")
pytest.importorskip("torchao", reason="the torchao extra is not installed")


def mlp() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 256), torch.nn.ReLU(), torch.nn.Linear(256, 32)).eval()


def sqnr_db(ref: torch.Tensor, out: torch.Tensor) -> float:
    return float(10 * torch.log10((ref**2).sum() / ((ref - out) ** 2).sum()))


@pytest.mark.parametrize("config", ["int8-dynamic", "int8-weight"])
def test_int8_quantizes_every_linear_and_keeps_outputs_close(config):
    from torchao.utils import TorchAOBaseTensor

    model = mlp()
    x = torch.randn(16, 64)
    result = apply_pass(model, TorchaoConfig(config=config))
    assert result.change_kind == "quantization" and result.metadata["linear_layers"] == 2
    for layer in (result.model[0], result.model[2]):
        assert isinstance(layer.weight, TorchAOBaseTensor)
        assert layer.weight.qdata.dtype == torch.int8
    assert type(model[0].weight) is torch.nn.Parameter  # the input is never modified
    with torch.no_grad():
        assert sqnr_db(model(x), result.model(x)) > 25
    assert "quantize_" in result.metadata["recipe"] and result.metadata["torchao"]


def test_quantized_module_round_trips_through_torch_export(tmp_path):
    from edgefit.runtimes._torch import load_program, save_program

    q = apply_pass(mlp(), TorchaoConfig()).model
    x = torch.randn(1, 64)
    path = save_program(q, (x,), tmp_path / "m.pt2", input_names=["input"], output_names=["output"],
                        meta={"precision": "torchao-int8-dynamic"})
    program, info = load_program(path)
    with torch.no_grad():
        assert torch.equal(program.module()(x), q(x))
    assert info["inputs"] == ["input"] and info["precision"] == "torchao-int8-dynamic"


@pytest.mark.skipif(importlib.util.find_spec("mslk") is not None, reason="mslk is installed here")
def test_int4_is_refused_up_front_without_mslk():
    with pytest.raises(PassNotApplicable, match="mslk"):
        apply_pass(mlp(), TorchaoConfig(config="int4-weight"))


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 9),
                    reason="an sm89+ GPU is here")
def test_float8_is_refused_up_front_without_an_sm89_gpu():
    with pytest.raises(PassNotApplicable, match="compute capability 8.9"):
        apply_pass(mlp(), TorchaoConfig(config="float8-dynamic"))


def test_models_torchao_cannot_quantize_are_not_applicable():
    with pytest.raises(PassNotApplicable, match="no nn.Linear"):
        apply_pass(torch.nn.Conv2d(3, 8, 3), TorchaoConfig())
    with pytest.raises(PassNotApplicable, match="torch module"):
        apply_pass("model.onnx", TorchaoConfig())


def test_config_validation_and_search_space():
    with pytest.raises(EdgefitError, match=r"TorchaoConfig\.config"):
        TorchaoConfig(config="int2")
    assert TorchaoConfig.search_space(["fp32", "int8"])["config"] == ("int8-dynamic", "int8-weight")
    assert TorchaoConfig.search_space(["fp8", "int8"])["config"] == ("int8-dynamic", "int8-weight", "float8-dynamic")
    assert TorchaoConfig.search_space(["fp32"])["config"] == ()


def test_plan_slot_round_trips_and_old_plans_keep_their_dicts():
    plan = PassPlan(torchao=TorchaoConfig(config="int8-weight"))
    assert PassPlan.from_dict(json.loads(json.dumps(plan.to_dict()))) == plan
    old = PassPlan(quantize=QuantizeConfig()).to_dict()
    assert "torchao" not in old and PassPlan.from_dict(old).to_dict() == old  # same hash as before the slot
    assert config_from_dict(plan.torchao.to_dict()) == plan.torchao
    with pytest.raises(EdgefitError, match="quantize and torchao"):
        PassPlan(quantize=QuantizeConfig(), torchao=TorchaoConfig())
    with pytest.raises(EdgefitError, match=r"PassPlan\.torchao"):
        PassPlan(torchao=QuantizeConfig())


def test_materialize_saves_the_pt2_beside_the_fp32_onnx_and_caches_it(tmp_path):
    import onnx

    ctx = PassContext(work_dir=tmp_path, input_shape=(1, 64))
    plan = PassPlan(torchao=TorchaoConfig())
    built = materialize(mlp(), plan, ctx)
    assert built.artifact_runtime == "torch" and built.artifact_path.name == "model.pt2"
    assert built.artifact_path.parent == built.onnx_path.parent and built.onnx_path.name == "model.fp32.onnx"
    ops = {n.op_type for n in onnx.load(str(built.onnx_path)).graph.node}
    assert "Gemm" in ops or "MatMul" in ops  # the estimator's graph stays fp32
    assert built.change_kinds == ("quantization",)
    hit = materialize(mlp(), plan, ctx)
    assert hit.metadata["cache"] == "hit" and hit.artifact_path == built.artifact_path
    plain = materialize(mlp(), PassPlan(), ctx)
    assert plain.artifact_path is None and plain.artifact_runtime is None
