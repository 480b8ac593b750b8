"""QuantizeConfig.recipe: a searched int8 recipe carried by the quantize pass (#16), and how a
search's summary hands its int8 finalists to edgefit optimize."""

from __future__ import annotations

import onnx
import pytest
import toy_onnx
from onnx import numpy_helper

from edgefit.errors import EdgefitError
from edgefit.passes import PassContext, QuantizeConfig, Recipe, apply_pass, config_from_dict
from edgefit.passes._recipe import Workspace, calibration_order, ort_defaults
from edgefit.passes._recipe_choice import int8_finalists

QOPERATOR = Recipe(activations="S8", quant_format="QOperator", calibration="entropy", samples=8)


def test_without_a_recipe_the_config_is_what_it_was():
    """No recipe, no new key: plan hashes and cached candidates of earlier runs stay valid."""
    data = QuantizeConfig(precision="int8", calibration="percentile").to_dict()
    assert list(data) == [
        "type", "precision", "calibration", "per_channel", "keep_float", "keep_float_top",
        "op_types", "version",
    ]  # fmt: skip
    assert config_from_dict(data) == QuantizeConfig(precision="int8", calibration="percentile")


def test_a_recipe_decides_and_round_trips():
    cfg = QuantizeConfig(calibration="percentile", keep_float_top=2, recipe=QOPERATOR.to_dict())
    assert cfg.recipe == QOPERATOR and cfg == QuantizeConfig(recipe=QOPERATOR)
    assert (cfg.calibration, cfg.per_channel, cfg.keep_float_top) == ("entropy", True, 0)
    assert config_from_dict(cfg.to_dict()) == cfg
    assert cfg.to_dict()["recipe"]["quant_format"] == "QOperator"


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"precision": "fp16"}, "precision"),
        ({"keep_float": ("fc1",)}, "keep_float"),
        ({"recipe": {"precision": "fp16"}}, "recipe"),
        ({"recipe": {"quant_format": "QDQ", "bogus": 1}}, "bogus"),
        ({"recipe": "int8"}, "recipe"),
    ],
)
def test_a_bad_recipe_is_one_clear_error(kwargs, field):
    kwargs = {"recipe": QOPERATOR, **kwargs}
    with pytest.raises(EdgefitError, match=field):
        QuantizeConfig(**kwargs)


@pytest.mark.slow  # quant_pre_process and two calibrations per case
@pytest.mark.parametrize("recipe", [QOPERATOR, Recipe(keep_float=("fc2",), samples=6)])
def test_the_pass_builds_the_model_the_search_built(tmp_path, recipe):
    """The quantize pass with a recipe writes the same model as the search's workspace: the same
    preparation, the same calibration feeds in the same seeded order, the same quantizer call."""
    model = toy_onnx.mlp()
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    feeds = toy_onnx.feeds(model, n=12)
    ws = Workspace(path, calibration_order(feeds, 3), lambda p: 0.0, tmp_path / "ws")
    searched = onnx.load(str(ws.build(recipe)))
    ctx = PassContext(work_dir=tmp_path / "pass", calibration=feeds, seed=3)
    result = apply_pass(str(path), QuantizeConfig(recipe=recipe), ctx)
    built = onnx.load(str(result.model))
    assert [n.op_type for n in built.graph.node] == [n.op_type for n in searched.graph.node]
    mine = {i.name: numpy_helper.to_array(i) for i in built.graph.initializer}
    theirs = {i.name: numpy_helper.to_array(i) for i in searched.graph.initializer}
    assert mine.keys() == theirs.keys()
    assert all((mine[k] == theirs[k]).all() for k in mine)  # same scales, zero points, weights
    assert result.metadata["recipe"] == f"searched recipe: {recipe.label()}"
    assert result.metadata["nodes_kept_float"] == list(recipe.keep_float)


def _row(recipe: Recipe, us: float, eligible: bool = True, defaults: bool = False) -> dict:
    return {"config": recipe.to_dict(), "median_s": us * 1e-6, "eligible": eligible,
            "defaults": defaults}  # fmt: skip


def test_int8_finalists_put_the_choice_first_and_keep_the_defaults_in():
    a, b, c = (Recipe(samples=n) for n in (16, 32, 48))
    d = ort_defaults(64)
    summary = {
        "int8_recipe": b.to_dict(),
        "final": [
            _row(a, 10),
            _row(b, 11),
            _row(c, 12),
            _row(d, 30, defaults=True),
            _row(Recipe(samples=8), 5, eligible=False),  # fastest, but below the accuracy floor
            _row(Recipe(precision="fp32"), 50),
        ],
    }
    assert int8_finalists(summary, 1) == [b.to_dict()]
    assert int8_finalists(summary, 2) == [b.to_dict(), d.to_dict()]
    assert int8_finalists(summary, 3) == [b.to_dict(), a.to_dict(), d.to_dict()]
    assert int8_finalists(summary, 9) == [x.to_dict() for x in (b, a, c, d)]
    assert int8_finalists({**summary, "int8_recipe": None}, 3) == []
