"""The iteration tax against hand-computed cases.

Orin defaults, read from targets/jetson-agx-orin-64gb.yaml:
  lifecycle data_prep 5 + labeling 7 + training 2 + eval 2 + deploy 1 + monitoring 7 = 24 d,
  certification 14 d and $40,000 per change, triggered by all five change kinds
  → one iteration = 24 + 14 = 38 d; 26 weeks = 182 d → floor(182 / 38) = 4 iterations (152 d ≤ 182 < 190).
Accuracy defaults (assumptions): A0 0.90, AMAX 0.995, R 0.2.
"""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import pytest

from edgefit.errors import EdgefitError
from edgefit.iteration import (
    MONTH_DAYS,
    Certification,
    Curve,
    IterationPlan,
    Loop,
    Stage,
    apply_overrides,
    build_plan,
    candidate_iteration,
    crossing_days,
    crossing_iteration,
    defect_cost,
    iterations_fit,
    loop_for,
    parse_deadline,
    parse_set,
    parse_what_if,
    select_by_deadline,
)
from edgefit.targets import list_targets, load_target


@pytest.fixture(scope="module")
def orin_plan() -> dict:
    inputs = IterationPlan(deadline_days=parse_deadline("26w"), deadline_text="26w", goal=0.99)
    return build_plan(loop_for("orin"), inputs)


def _loop(training_days: float, cert_days: float = 0.0) -> Loop:
    """A loop whose whole cycle is the training stage (plus certification when given)."""
    stages = tuple(Stage(n, training_days if n == "training" else 0.0, "test") for n in
                   ("data_prep", "labeling", "training", "eval", "deploy", "monitoring"))
    cert = Certification("test loop", cert_days, 1000.0, ("weights",), "test", "test")
    return Loop("t", "test target", stages, cert)


# --- the cycle and iterations by the deadline -------------------------------------------------------
def test_orin_cycle_and_iterations_in_26_weeks(orin_plan):
    c = orin_plan["cycle"]
    assert c["days"] == 38.0 and c["usd"] == 40_000.0
    assert [r["stage"] for r in c["waterfall"]] == ["data_prep", "labeling", "training", "eval", "certification",
                                                   "deploy", "monitoring"]
    assert orin_plan["iterations"] == {"by_deadline": 4, "days_used": 152.0, "usd_by_deadline": 160_000.0}
    # bottleneck: certification, 14 / 38 = 36.8 %
    assert c["bottleneck"]["stage"] == "certification" and c["bottleneck"]["share"] == pytest.approx(14 / 38)


def test_monitoring_overlap_takes_it_off_the_cycle():
    loop = loop_for("orin", monitoring_overlaps=True)
    assert loop.cycle_days(["weights"]) == 31.0  # 38 - 7
    assert iterations_fit(182, 31) == 5  # 155 <= 182 < 186


def test_change_kind_decides_certification():
    h100 = loop_for("h100")  # triggers: weights, quantization, pruning, architecture (not runtime)
    assert h100.cycle_days(["weights"]) == 42.0  # 7 + 5 + 10 + 3 + 1 (egress loop) + 2 + 14
    assert h100.cycle_days(["runtime"]) == 41.0 and h100.usd_per_iteration(["runtime"]) == 0.0
    assert h100.usd_per_iteration(["runtime", "weights"]) == 90_000.0


def test_iterations_fit_guards_float_noise():
    assert iterations_fit(182, 26) == 7 and iterations_fit(0.3, 0.1) == 3


# --- what-if levers (Amdahl) ------------------------------------------------------------------------
def test_what_if_automating_training_cuts_orin_cycle_by_5_percent():
    plan = build_plan(loop_for("orin"), IterationPlan(what_if=(parse_what_if("training=inf"),
                                                                parse_what_if("certification=2"))))
    training, cert = plan["what_if"]
    # training 2 d → 0: 36 d, cut 2/38 = 5.26 %, Amdahl speed-up 1 / (1 - 2/38) = 38/36
    assert training["cycle_days_after"] == 36.0 and training["cut_share"] == pytest.approx(2 / 38)
    assert training["speedup"] == pytest.approx(38 / 36) and training["automated"] and training["factor"] is None
    # certification 14 d → 7: 31 d; Amdahl 1 / ((1 - p) + p/2) with p = 14/38 gives 38/31; 182/31 → 5 iterations
    p = 14 / 38
    assert cert["cycle_days_after"] == 31.0 and cert["speedup"] == pytest.approx(1 / ((1 - p) + p / 2))
    assert cert["iterations_by_deadline"] == 5 and cert["amdahl_limit_cycle_days"] == 24.0


def test_default_levers_are_training_and_the_bottleneck(orin_plan):
    assert [(w["stage"], w["default"]) for w in orin_plan["what_if"]] == [("training", True), ("certification", True)]


# --- Cost(N) = 2^(N-1) ------------------------------------------------------------------------------
def test_defect_cost_doubles_per_stage(orin_plan):
    assert defect_cost(4) == 8 * defect_cost(1)
    assert defect_cost(4, unit=1000) == 8000
    rows = {r["stage"]: r for r in orin_plan["defect_cost"]["stages"]}
    assert [r["n"] for r in rows.values()] == [1, 2, 3, 4, 5, 6]
    cert = rows["certification"]
    assert cert["n"] == 4 and cert["usd"] == 8 * rows["estimate"]["usd"] == 8000.0
    assert cert["saved_by_estimate_usd"] == 7000.0 and cert["caught_on_day"] == 30.0  # 5 + 7 + 2 + 2 + 14


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
def test_defect_cost_rejects_bad_stage_numbers(n):
    with pytest.raises(EdgefitError):
        defect_cost(n)


# --- accuracy projection, goal, crossing, knee ------------------------------------------------------
def test_compound_accuracy_hand_values():
    c = Curve(0.9, 1.0, 0.5)
    assert [c.at(k) for k in range(4)] == pytest.approx([0.9, 0.95, 0.975, 0.9875])


def test_goal_99_on_orin_defaults(orin_plan):
    g = orin_plan["goal"]
    # 0.995 - 0.095 * 0.8^k >= 0.99  ⇔  0.8^k <= 0.005/0.095 = 0.05263: 0.8^13 = 0.0550, 0.8^14 = 0.0440 → 14
    assert g["iterations_needed"] == 14 and g["days_needed"] == 14 * 38 == 532.0
    assert g["iterations_fit"] == 4 and g["fits"] is False
    assert g["cycle_days_needed"] == pytest.approx(182 / 14)  # 13 d
    # a(4) = 0.995 - 0.095 * 0.8^4 = 0.956088 → proposed goal 0.956
    assert g["accuracy_at_deadline"] == pytest.approx(0.956088) and g["reachable_goal"] == 0.956


def test_goal_hand_case_and_unreachable():
    c = Curve(0.9, 1.0, 0.5)
    assert c.iterations_for(0.99) == 4  # 0.1 * 0.5^k <= 0.01: 0.5^3 = 0.125, 0.5^4 = 0.0625
    assert c.iterations_for(0.9875) == 3 and c.iterations_for(0.85) == 0
    assert Curve(0.9, 0.99, 0.5).iterations_for(0.99) is None  # the ceiling is never reached
    assert Curve(0.9, 0.99, 1.0).iterations_for(0.99) == 1


def test_heavy_vs_light_crossing_hand_case():
    light, heavy = Curve(0.9, 1.0, 0.5), Curve(0.95, 1.0, 0.5)
    # gaps 0.1 * 0.5^(t/30) = 0.05 * 0.5^(t/60)  ⇔  0.5^(-t/60) = 2  ⇔  t = 60 d = 1.97 months
    t = crossing_days(light, heavy, 30, 60)
    assert t == pytest.approx(60.0) and t / MONTH_DAYS == pytest.approx(1.971, abs=1e-3)
    # step view: day 60 ties at 0.975; day 90 light has 3 (0.9875), heavy 1 (0.975)
    assert crossing_iteration(light, heavy, 30, 60) == 3
    assert crossing_days(light, heavy, 30, 30) is None and crossing_iteration(light, heavy, 30, 30) is None


def test_heavy_vs_light_through_the_plan():
    plan = build_plan(_loop(30.0), IterationPlan(deadline_days=parse_deadline("6mo"), accuracy_now=0.9,
                                                 accuracy_ceiling=1.0, gain_per_iteration=0.5, heavy_gain=0.05,
                                                 heavy_slowdown=2))
    h = plan["heavy_vs_light"]
    assert h["crossing"]["months"] == pytest.approx(60 / MONTH_DAYS)
    assert h["crossing"]["light_iterations"] == 3 and h["crossing"]["step_days"] == 90.0
    # month 6 = 182.6 d: light 6 iterations (1 - 0.1/64), heavy 3 (1 - 0.05/8)
    assert h["light"]["iterations_by_deadline"] == 6 and h["heavy"]["iterations_by_deadline"] == 3
    assert h["ahead_at_deadline"] == "light"
    automated = plan["what_if"][0]  # the default lever removes the only stage: no bound left
    assert automated["cycle_days_after"] == 0 and automated["iterations_by_deadline"] is None


def test_orin_default_heavy_vs_light(orin_plan):
    x = orin_plan["heavy_vs_light"]["crossing"]
    # t = 38 * ln(0.045/0.095) / (ln 0.8 * (1 - 1/10)) = 141.4 d = 4.65 months
    assert x["days"] == pytest.approx(38 * math.log(0.045 / 0.095) / (math.log(0.8) * 0.9))
    assert x["months"] == pytest.approx(4.645, abs=1e-3)
    # a(3) = 0.94636 < 0.95 < a(4) = 0.956088: light ahead from iteration 4, day 152
    assert x["light_iterations"] == 4 and x["step_days"] == 152.0
    assert orin_plan["heavy_vs_light"]["ahead_at_deadline"] == "light"


def test_knee():
    assert Curve(0.9, 1.0, 0.5).knee(0.1) == 5  # 0.5^3 = 0.125 > 0.1 >= 0.5^4
    assert Curve(0.9, 0.995, 0.2).knee(0.1) == 12  # 0.8^10 = 0.107 > 0.1 >= 0.8^11 = 0.086


def test_knee_across_model_sizes(orin_plan):
    k = orin_plan["knee"]
    assert k["iteration"] == 12 and [r["cycle_multiplier"] for r in k["by_size"]] == [1, 2, 5, 10]
    assert k["by_size"][0]["knee_days"] == 12 * 38 and k["by_size"][-1]["start_accuracy"] == pytest.approx(0.95)
    assert k["best_by_deadline"] == 1


def test_accuracy_projection_rows(orin_plan):
    rows = orin_plan["accuracy"]["projection"]
    assert [r["iterations"] for r in rows if not r["deadline"]] == [0, 1, 2, 3, 4, 4]  # months 1..6
    assert [r for r in rows if r["deadline"]][0]["days"] == 182.0


# --- egress ----------------------------------------------------------------------------------------
def test_h100_egress_per_iteration():
    plan = build_plan(loop_for("h100"), IterationPlan())
    e = plan["egress"]
    assert e["usd_per_iteration"] == 1.0 * 90_000  # 1 PB × $90k/PB
    assert e["usd_by_deadline"] == 4 * 90_000  # floor(182 / 42) = 4
    assert build_plan(loop_for("orin"), IterationPlan())["egress"] is None
    doubled = loop_for("h100", overrides={"data_egress.dataset_pb": "2"})
    assert doubled.egress.usd_per_iteration == 180_000 and doubled.egress.dataset_pb_provenance == "override (--set)"


# --- overrides --------------------------------------------------------------------------------------
def test_set_and_file_overrides(tmp_path):
    f = tmp_path / "ours.yaml"
    f.write_text("certification:\n  days_per_change: 7\nlifecycle_days:\n"
                 "  training: {value: 4, source: our cluster logs}\n")
    loop = loop_for("orin", overrides_file=f, overrides=parse_set(["training=3"]))
    assert loop.certification.days == 7.0 and loop.certification.days_provenance == f"override ({f})"
    assert loop.stage("training").days == 3.0  # the flag beats the file
    assert loop_for("orin", overrides_file=f).stage("training").provenance == "source: our cluster logs"
    assert loop.cycle_days(["weights"]) == 38 - 7 - 2 + 3
    triggers = apply_overrides(loop, {"certification.triggers": "architecture"}, "--set")
    assert triggers.cycle_days(["weights"]) == 24 - 2 + 3


# --- bad inputs: one EdgefitError each ---------------------------------------------------------------
@pytest.mark.parametrize("text", ["26x", "26", "-3w", "w", "0d", "", "6m", "6M"])
def test_bad_deadline(text):
    with pytest.raises(EdgefitError, match="--deadline"):
        parse_deadline(text)


def test_deadline_units():
    assert parse_deadline("26w") == 182 and parse_deadline("180d") == 180 and parse_deadline("1y") == 365.25
    assert parse_deadline("6mo") == pytest.approx(6 * 30.44, abs=0.02)


def test_deadline_m_is_ambiguous_not_months():
    # `m` is minutes for --budget; a deadline refuses it instead of silently reading months
    with pytest.raises(EdgefitError, match=r"--deadline: .*'m' means minutes.*6mo"):
        parse_deadline("6m")


@pytest.mark.parametrize("overrides, where", [
    ({"training": "-1"}, "training"),
    ({"certification.days_per_change": "-14"}, "days_per_change"),
    ({"certification.cost_usd_per_change": "-1"}, "cost_usd"),
    ({"nostage": "3"}, "unknown key"),
    ({"lifecycle_days.coffee": "1"}, "unknown key"),
    ({"certification.triggers": "weights,vibes"}, "vibes"),
    ({"training": "soon"}, "not a number"),
])
def test_bad_overrides(overrides, where):
    with pytest.raises(EdgefitError, match=where):
        apply_overrides(loop_for("orin"), overrides, "--set")


@pytest.mark.parametrize("fields, flag", [
    ({"gain_per_iteration": 0.0}, "--gain-per-iteration"),
    ({"gain_per_iteration": 1.5}, "--gain-per-iteration"),
    ({"accuracy_now": 0.99, "accuracy_ceiling": 0.95}, "--accuracy-now"),
    ({"accuracy_now": 90.0}, "--accuracy-now"),
    ({"goal": 1.2}, "--goal"),
    ({"heavy_gain": 0.2}, "--heavy-gain"),
    ({"heavy_slowdown": 0.5}, "--heavy-slowdown"),
    ({"change_kinds": ("bogus",)}, "--change"),
    ({"what_if": (("coffee", 2.0),)}, "--what-if"),
    ({"what_if": (("training", 0.0),)}, "--what-if"),
])
def test_bad_plan_inputs(fields, flag):
    with pytest.raises(EdgefitError) as exc:
        IterationPlan(**fields)
    assert exc.value.where == flag


def test_negative_stage_and_zero_cycle():
    with pytest.raises(EdgefitError):
        Stage("training", -1, "test")
    with pytest.raises(EdgefitError, match="0 days"):
        build_plan(_loop(0.0), IterationPlan())


def test_default_heavy_gain_is_capped_at_the_ceiling():
    plan = IterationPlan(accuracy_now=0.98, accuracy_ceiling=0.995)
    assert plan.value("heavy_gain") == pytest.approx(0.015) and "capped" in plan.provenance("heavy_gain")


def test_plan_inputs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        IterationPlan().goal = 0.5  # type: ignore[misc]


# --- the optimizer's hooks ---------------------------------------------------------------------------
def test_candidate_iteration_orin_and_h100():
    c = candidate_iteration("orin", ["quantization"], 0.90)
    assert (c["days"], c["usd"], c["iterations_by_deadline"]) == (38.0, 40_000.0, 4)
    assert c["accuracy_at_deadline"] == pytest.approx(0.956088) and "gain_per_iteration" in c["assumptions"]
    r = candidate_iteration(load_target("h100"), ["runtime"], 0.90, deadline_days=41 * 2,
                            accuracy_ceiling=1.0, gain_per_iteration=0.5)
    assert (r["certification"], r["usd"], r["iterations_by_deadline"]) == (False, 0.0, 2)
    assert r["accuracy_at_deadline"] == pytest.approx(0.975) and r["assumptions"] == {}


def test_select_by_deadline_prefers_projected_accuracy_over_day_one():
    # on H100 a runtime-only change skips the 1-day egress loop (41 d vs 42 d): both fit 4 in 168 d,
    # so the higher start wins
    deadline = 4 * 42.0
    heavy = {"name": "fp16", **candidate_iteration("h100", ["weights"], 0.92, deadline_days=deadline)}
    light = {"name": "int8", "iteration": candidate_iteration("h100", ["runtime"], 0.91, deadline_days=deadline)}
    assert select_by_deadline([heavy, light])["name"] == "fp16"  # same iterations (4), higher start
    slow = {"name": "slow", **candidate_iteration(_loop(60.0), ["weights"], 0.93, deadline_days=180)}
    fast = {"name": "fast", **candidate_iteration(_loop(20.0), ["weights"], 0.90, deadline_days=180)}
    assert slow["accuracy_now"] > fast["accuracy_now"]
    assert select_by_deadline([slow, fast])["name"] == "fast"  # 9 iterations beat a 3-point head start
    with pytest.raises(EdgefitError):
        select_by_deadline([])
    with pytest.raises(EdgefitError, match="accuracy_at_deadline"):
        select_by_deadline([{"name": "bare"}])


# --- every target ships its loop with a source or a stated assumption --------------------------------
@pytest.mark.parametrize("name", ["orin", "hearable", "glasses", "h100"])
def test_track_targets_load(name):
    assert loop_for(name).cycle_days(["weights"]) > 0


@pytest.mark.parametrize("target", list_targets(), ids=lambda t: t.id)
def test_every_target_loop_has_provenance(target):
    loop = Loop.from_target(target)
    provenances = [s.provenance for s in loop.stages] + [loop.certification.days_provenance,
                                                         loop.certification.usd_provenance]
    assert all(p.startswith(("source: ", "estimated: ")) and len(p) > 15 for p in provenances)
    build_plan(loop, IterationPlan())  # every target plans with the defaults


def test_import_is_light():
    code = ("import sys, edgefit.iteration; "
            "print(sorted(m for m in ('pydantic', 'yaml', 'numpy', 'torch', 'typer', 'rich') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
