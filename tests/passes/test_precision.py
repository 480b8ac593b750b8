"""The precision table (#15 item 3): the passes declare the precisions a search tries, and the search,
the screen and the pass plan only read it."""

from __future__ import annotations

import pytest

from edgefit.errors import EdgefitError
from edgefit.passes import (PassPlan, PruneConfig, QuantizeConfig, TorchaoConfig, Traits, applicable,
                            get_precision, precisions)
from edgefit.passes._precision import Precision, register_precision
from edgefit.search import Choice, SpaceOptions, build_space
from edgefit.search._screen import estimator_plan


def names(**traits) -> list[str]:
    return [p.name for p in applicable(Traits(**traits))]


def test_the_table_says_which_precisions_apply_to_a_target_and_base():
    assert names(target_dtypes=frozenset({"fp32"})) == ["fp32"]
    assert names(target_dtypes=frozenset({"fp32", "fp16", "int8"})) == ["fp32", "fp16", "int8"]
    # weight-only and dynamic int8 only where Gemm/MatMul carry the MACs; torchao only on a torch module
    matmul = names(target_dtypes=frozenset({"fp32", "int8"}), matmul=True)
    assert matmul[:4] == ["fp32", "int8", "int8-dynamic", "int4-weight"]
    assert not any(n.startswith("torchao-") for n in matmul)
    torch_base = names(target_dtypes=frozenset({"fp32", "int8"}), torch_base=True)
    assert {"torchao-int8-dynamic", "torchao-int8-weight"} <= set(torch_base)
    assert "int8-dynamic" not in torch_base and "int4-weight" not in torch_base


def test_the_search_space_is_the_tables_rows_crossed_with_the_runs_tuning():
    opts = SpaceOptions(target_dtypes=("fp32", "int8"), has_matmul=True, calibrations=("minmax", "entropy"),
                        keep_float=(0, 1, 2))
    space = build_space(opts)
    assert [c.precision for c in space].count("int8") == 6  # tuned: 2 calibrations x 3 kept-float counts
    rows = applicable(Traits(frozenset(opts.target_dtypes), matmul=True))
    assert [c.precision for c in space if c.precision != "int8"] == [p.name for p in rows if not p.tuned]
    assert all(c.calibration == "minmax" and c.keep_float == 0 for c in space if c.precision != "int8")


@pytest.mark.parametrize("row", precisions(), ids=lambda p: p.name)
def test_every_row_builds_a_plan_the_screen_and_the_plan_agree_on(row):
    from edgefit.search._candidate import RunSettings, pass_plan

    choice = Choice(precision=row.name)
    plan = pass_plan(choice, None, RunSettings(target=None, power_mode=None, measure_runtime=None))
    assert PassPlan.from_dict(plan.to_dict()) == plan
    filled = [slot for slot in ("quantize", "torchao") if getattr(plan, slot) is not None]
    assert filled == ([] if row.slot is None else [row.slot])
    assert estimator_plan(choice, [], []).dtype == row.estimate_dtype
    assert 0 <= choice.risk() < 1


def test_an_unknown_precision_is_one_line_naming_the_known_ones():
    with pytest.raises(EdgefitError, match="int8") as err:
        Choice(precision="int3")
    assert "precision 'int3' is not known" in str(err.value)
    with pytest.raises(EdgefitError, match="not known"):
        get_precision("bf8")


def test_rows_are_registered_once_and_a_slot_comes_with_a_build():
    with pytest.raises(ValueError, match="twice"):
        register_precision(Precision("int8", "int8", 0.3, lambda t: True))
    with pytest.raises(ValueError, match="build"):
        register_precision(Precision("nothing-new", "int8", 0.3, lambda t: True, slot="quantize"))
    assert "nothing-new" not in [p.name for p in precisions()]


def test_a_quantizing_slot_takes_any_quantization_pass_on_its_model_kind_and_nothing_else():
    assert PassPlan(quantize=QuantizeConfig()).quantize == QuantizeConfig()
    assert PassPlan(torchao=TorchaoConfig()).torchao == TorchaoConfig()
    with pytest.raises(EdgefitError, match="PassPlan.quantize"):
        PassPlan(quantize=TorchaoConfig())  # a torch-side pass cannot quantize the ONNX file
    with pytest.raises(EdgefitError, match="PassPlan.torchao"):
        PassPlan(torchao=QuantizeConfig())
    with pytest.raises(EdgefitError, match="PassPlan.quantize"):
        PassPlan(quantize=PruneConfig())  # not a quantization pass
    with pytest.raises(EdgefitError, match="PassPlan.quantize"):
        PassPlan(quantize="int8")
