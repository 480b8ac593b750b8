"""Every registered pass config: validation, dict round trip, allow-list, search space; the plan hash."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from edgefit.errors import EdgefitError
from edgefit.passes import (PassConfig, PassPlan, PruneConfig, QuantizeConfig, RecoverConfig, SwapConfig,
                            TorchaoConfig, config_from_dict, get_pass, list_passes)
from edgefit.passes._base import _ALLOWED

PASSES = list_passes()
IDS = [p.name for p in PASSES]
DTYPES = ("fp32", "fp16", "int8", "int4")
KNOBS = {"width": (0.25, 1.0), "depth": (0.0, 1.0), "resolution": (8, 128), "activation": ("relu", "hardswish")}


def test_registry_lists_the_built_in_passes_first_in_run_order():
    from edgefit.iteration._model import CHANGE_KINDS

    assert IDS[:5] == ["swap", "prune", "recover", "quantize", "torchao"]
    assert {p.change_kind for p in PASSES[:5]} == {"architecture", "pruning", "weights", "quantization"}
    assert {p.change_kind for p in PASSES} <= set(CHANGE_KINDS)  # what the iteration-cost model reads
    assert set(_ALLOWED) == {p.config_type.__name__ for p in PASSES}


@pytest.mark.parametrize("spec", PASSES, ids=IDS)
def test_default_config_round_trips_through_json(spec):
    config = spec.config_type()
    data = json.loads(json.dumps(config.to_dict()))
    assert data["type"] == spec.config_type.__name__ and data["version"] == config.VERSION
    assert config_from_dict(data) == config
    assert get_pass(config) is spec and get_pass(spec.name) is spec and get_pass(spec.config_type) is spec


@pytest.mark.parametrize("spec", PASSES, ids=IDS)
def test_every_search_space_combination_is_a_valid_config(spec):
    space = spec.config_type.search_space(DTYPES, KNOBS)
    assert space, f"{spec.name} declares nothing searchable"
    fields = set(spec.config_type.__dataclass_fields__)
    assert set(space) <= fields - {"version"}
    for values in itertools.product(*space.values()):
        config = spec.config_type(**dict(zip(space, values)))
        assert config_from_dict(config.to_dict()) == config


@pytest.mark.parametrize("spec", PASSES, ids=IDS)
def test_configs_are_frozen_and_reject_unknown_fields_and_versions(spec):
    config = spec.config_type()
    with pytest.raises(AttributeError):
        config.version = 2
    with pytest.raises(EdgefitError, match="unknown field"):
        config_from_dict({**config.to_dict(), "bogus": 1})
    with pytest.raises(EdgefitError, match=f"{spec.config_type.__name__}.version"):
        config_from_dict({**config.to_dict(), "version": 99})


def test_only_allow_listed_types_load_back():
    with pytest.raises(EdgefitError, match="not allow-listed"):
        config_from_dict({"type": "Popen", "args": ["rm", "-rf", "/"]})
    with pytest.raises(EdgefitError, match="'type' key"):
        config_from_dict({"precision": "int8"})


BAD = [
    (QuantizeConfig, {"precision": "int3"}, "QuantizeConfig.precision"),
    (QuantizeConfig, {"calibration": "kl"}, "QuantizeConfig.calibration"),
    (QuantizeConfig, {"per_channel": "yes"}, "QuantizeConfig.per_channel"),
    (QuantizeConfig, {"keep_float": "fc1"}, "QuantizeConfig.keep_float"),
    (QuantizeConfig, {"keep_float_top": -1}, "QuantizeConfig.keep_float_top"),
    (QuantizeConfig, {"precision": "int8-dynamic", "op_types": ("Conv",)}, "ConvInteger"),
    (QuantizeConfig, {"precision": "int4-weight", "op_types": ("Conv",)}, "QuantizeConfig.op_types"),
    (QuantizeConfig, {"precision": "fp16", "keep_float": ("a",)}, "QuantizeConfig.keep_float"),
    (PruneConfig, {"method": "random"}, "PruneConfig.method"),
    (PruneConfig, {"amount": 0.0}, "PruneConfig.amount"),
    (PruneConfig, {"amount": float("nan")}, "PruneConfig.amount"),
    (PruneConfig, {"method": "2:4", "amount": 0.3}, "PruneConfig.amount"),
    (PruneConfig, {"method": "channel", "round_to": 0}, "PruneConfig.round_to"),
    (SwapConfig, {"width": 0.0}, "SwapConfig.width"),
    (SwapConfig, {"depth": 1.5}, "SwapConfig.depth"),
    (SwapConfig, {"resolution": 0}, "SwapConfig.resolution"),
    (SwapConfig, {"activation": "tanh"}, "SwapConfig.activation"),
    (RecoverConfig, {"epochs": 0}, "RecoverConfig.epochs"),
    (RecoverConfig, {"lr": -1.0}, "RecoverConfig.lr"),
    (RecoverConfig, {"alpha": 2.0}, "RecoverConfig.alpha"),
    (RecoverConfig, {"temperature": 0}, "RecoverConfig.temperature"),
    (RecoverConfig, {"batch_size": True}, "RecoverConfig.batch_size"),
    (TorchaoConfig, {"config": "int2"}, "TorchaoConfig.config"),
]


@pytest.mark.parametrize(("cls", "kwargs", "where"), BAD, ids=[f"{c.__name__}-{list(k)[0]}" for c, k, _ in BAD])
def test_invalid_fields_are_named_in_the_error(cls, kwargs, where):
    with pytest.raises(EdgefitError, match=where.replace(".", r"\.")):
        cls(**kwargs)


def test_equal_recipes_normalize_to_equal_configs():
    assert QuantizeConfig(precision="fp16", calibration="entropy", keep_float_top=2) == QuantizeConfig(precision="fp16")
    assert QuantizeConfig(keep_float=["a", "b"]).keep_float == ("a", "b")
    assert PruneConfig(amount=1 / 2) == PruneConfig(amount=0.5) and SwapConfig(width=1) == SwapConfig()
    assert RecoverConfig(distill=False, alpha=0.9) == RecoverConfig(distill=False)


def test_search_space_follows_target_dtypes():
    assert QuantizeConfig.search_space(["int8", "fp32"])["precision"] == ("fp32", "int8", "int8-dynamic")
    assert QuantizeConfig.search_space(["FP32", "fp16"])["precision"] == ("fp32", "fp16")
    assert "int4-weight" in QuantizeConfig.search_space()["precision"]  # unknown target: everything
    assert SwapConfig.search_space(knob_space={"width": (0.5, 1.0)})["width"] == (0.5, 0.75, 1.0)


PLAN = PassPlan(swap=SwapConfig(width=0.5), prune=PruneConfig(method="channel", amount=0.25),
                recover=RecoverConfig(epochs=1), quantize=QuantizeConfig(calibration="entropy"))


def test_plan_round_trips_and_rejects_wrong_slots():
    assert PassPlan.from_dict(json.loads(json.dumps(PLAN.to_dict()))) == PLAN
    assert PassPlan.from_dict(PassPlan().to_dict()) == PassPlan()
    with pytest.raises(EdgefitError, match="PassPlan.swap"):
        PassPlan(swap=PruneConfig())
    with pytest.raises(EdgefitError, match="unknown plan key"):
        PassPlan.from_dict({**PLAN.to_dict(), "distill": None})
    assert [type(c) for c in PLAN.configs()] == [SwapConfig, PruneConfig, RecoverConfig, QuantizeConfig]


def test_content_hash_is_stable_and_sensitive():
    base = b"model bytes"
    h = PLAN.content_hash(base)
    assert h == PassPlan.from_dict(PLAN.to_dict()).content_hash(base) and len(h) == 64
    changed = [PassPlan(**{**PLAN.__dict__, "quantize": QuantizeConfig(calibration="minmax")}),
               PassPlan(**{**PLAN.__dict__, "swap": SwapConfig(width=0.75)}),
               PassPlan(**{**PLAN.__dict__, "recover": None})]
    assert len({h, *(p.content_hash(base) for p in changed), PLAN.content_hash(b"other bytes")}) == 5
    # stable across processes too (no dict-order or hash-seed dependence)
    code = ("from edgefit.passes import *; p = PassPlan(swap=SwapConfig(width=0.5), prune=PruneConfig("
            "method='channel', amount=0.25), recover=RecoverConfig(epochs=1), quantize=QuantizeConfig("
            "calibration='entropy')); print(p.content_hash(b'model bytes'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "123", "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == h


def test_module_fingerprint_tracks_weights():
    import torch

    from edgefit.passes import model_fingerprint

    a = torch.nn.Linear(4, 2)
    b = torch.nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.weight[0, 0] += 1e-6
    assert model_fingerprint(a) != model_fingerprint(b)
    assert PLAN.content_hash(a) != PLAN.content_hash(b)


def test_import_is_light():
    code = "import sys, edgefit.passes; print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'numpy', " \
           "'torch_pruning') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_pass_config_base_declares_nothing_searchable():
    assert PassConfig.search_space() == {}
