"""Assemble the iteration plan of one target: one JSON-ready dict with every figure and its
provenance.

>>> from edgefit.iteration import IterationPlan, build_plan, loop_for
>>> p = build_plan(loop_for("orin"), IterationPlan())
>>> p["cycle"]["days"], p["goal"]["iterations_needed"], p["goal"]["iterations_fit"]
(38.0, 14, 4)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgefit._units import MONTH_DAYS
from edgefit.iteration._candidate import as_loop, candidate_iteration
from edgefit.iteration._cost import defect_table, egress_summary
from edgefit.iteration._inputs import IterationPlan
from edgefit.iteration._model import CHANGE_KINDS, Loop
from edgefit.iteration._overrides import apply_overrides, load_overrides_file
from edgefit.iteration._projection import Curve, crossing_days, crossing_iteration, iterations_fit

SCHEMA = "edgefit.plan/1"
_SIZES = (2.0, 5.0, 10.0, 20.0, 50.0, 100.0)


def loop_for(
    target: Any,
    *,
    overrides_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    monitoring_overlaps: bool = False,
) -> Loop:
    """The target's loop with a YAML overrides file, then flag overrides (``--set``), applied."""
    loop = replace(as_loop(target), monitoring_overlaps=monitoring_overlaps)
    if overrides_file is not None:
        loop = apply_overrides(loop, load_overrides_file(overrides_file), str(overrides_file))
    return apply_overrides(loop, overrides or {}, "--set")


def _given(plan: IterationPlan, name: str) -> dict:
    return {"value": plan.value(name), "provenance": plan.provenance(name)}


def _months(days: float | None) -> float | None:
    return None if days is None else days / MONTH_DAYS


def _cycle(loop: Loop, kinds: tuple[str, ...]) -> dict:
    total, day = loop.cycle_days(kinds), 0.0
    rows: list[dict[str, Any]] = []
    for s in loop.waterfall(kinds):
        counted = loop.counted_days(s)
        rows.append(
            {
                "stage": s.name,
                "days": s.days,
                "counted_days": counted,
                "share": counted / total if total else 0.0,
                "start_day": day,
                "end_day": day + s.days,
                "provenance": s.provenance,
            }
        )
        day += counted
    top = max(rows, key=lambda r: r["counted_days"])
    cert = loop.certification
    runs = loop.certifies(kinds)
    return {
        "days": total,
        "usd": loop.usd_per_iteration(kinds),
        "usd_provenance": cert.usd_provenance
        if runs
        else "no certification for these change kinds",
        "certification": {"name": cert.name, "runs": runs, "triggers": list(cert.triggers)},
        "monitoring_overlaps": loop.monitoring_overlaps,
        "waterfall": rows,
        "bottleneck": {"stage": top["stage"], "days": top["counted_days"], "share": top["share"]},
    }


def _what_if(
    loop: Loop, plan: IterationPlan, curve: Curve, stage: str, factor: float, default: bool
) -> dict:
    kinds, deadline = plan.change_kinds, plan.value("deadline_days")
    cycle = loop.cycle_days(kinds)
    before = sum(loop.counted_days(s) for s in loop.waterfall(kinds) if s.name == stage)
    days = loop.stage(stage).days
    faster = loop.with_stage_days(
        stage, 0.0 if math.isinf(factor) else days / factor, f"what-if: {factor:g}x faster"
    )
    after = faster.cycle_days(kinds)
    fit = (
        iterations_fit(deadline, after) if after > 0 else None
    )  # a 0-day cycle: no bound left to report
    return {
        "stage": stage,
        "factor": None if math.isinf(factor) else factor,
        "automated": math.isinf(factor),
        "default": default,
        "stage_days": before,
        "stage_days_after": before - (cycle - after),
        "cycle_days": cycle,
        "cycle_days_after": after,
        "cut_share": 1 - after / cycle,
        "speedup": cycle / after if after > 0 else None,
        "amdahl_limit_cycle_days": cycle - before,
        "iterations_by_deadline": fit,
        "accuracy_at_deadline": None if fit is None else curve.at(fit),
    }


def _what_ifs(loop: Loop, plan: IterationPlan, curve: Curve, bottleneck: str) -> list[dict]:
    levers, default = plan.what_if, not plan.what_if
    if default:  # automate training (the example) and halve the bottleneck
        levers = tuple(dict.fromkeys((("training", math.inf), (bottleneck, 2.0))))
    return [_what_if(loop, plan, curve, stage, factor, default) for stage, factor in levers]


def _accuracy(
    plan: IterationPlan, curve: Curve, heavy: Curve, cycle: float, heavy_cycle: float
) -> dict:
    deadline = plan.value("deadline_days")
    months = deadline / MONTH_DAYS
    step = 1 if months <= 12 else 3 if months <= 36 else 12
    marks = sorted(
        {*(m * MONTH_DAYS for m in range(step, math.ceil(months - 1e-9) + 1, step)), deadline}
    )
    rows = []
    for days in marks:
        k, kh = iterations_fit(days, cycle), iterations_fit(days, heavy_cycle)
        rows.append(
            {
                "months": days / MONTH_DAYS,
                "days": days,
                "deadline": days == deadline,
                "iterations": k,
                "accuracy": curve.at(k),
                "heavy_iterations": kh,
                "heavy_accuracy": heavy.at(kh),
            }
        )
    fit = iterations_fit(deadline, cycle)
    return {
        "accuracy_now": _given(plan, "accuracy_now"),
        "accuracy_ceiling": _given(plan, "accuracy_ceiling"),
        "gain_per_iteration": _given(plan, "gain_per_iteration"),
        "formula": "a(k) = AMAX - (AMAX - A0) * (1 - R)^k, k = completed iterations = floor(days "
        "/ cycle days)",
        "iterations_by_deadline": fit,
        "days_used": fit * cycle,
        "at_deadline": curve.at(fit),
        "projection": rows,
    }


def _goal(plan: IterationPlan, curve: Curve, cycle: float) -> dict:
    deadline, goal = plan.value("deadline_days"), plan.value("goal")
    fit, need = iterations_fit(deadline, cycle), curve.iterations_for(goal)
    reachable = curve.at(fit)
    return {
        "goal": goal,
        "provenance": plan.provenance("goal"),
        "iterations_needed": need,
        "days_needed": None if need is None else need * cycle,
        "months_needed": None if need is None else _months(need * cycle),
        "iterations_fit": fit,
        "fits": need is not None and need <= fit,
        "cycle_days_needed": deadline / need if need else None,
        "reachable_goal": math.floor(reachable * 1000 + 1e-9) / 1000,
        "accuracy_at_deadline": reachable,
        "reachable_provenance": "a(k) at the iterations that fit by the deadline, rounded down to "
        "0.1 point",
    }


def _heavy_vs_light(
    plan: IterationPlan, curve: Curve, heavy: Curve, cycle: float, heavy_cycle: float
) -> dict:
    deadline = plan.value("deadline_days")
    sides = {}
    for name, c, days in (("light", curve, cycle), ("heavy", heavy, heavy_cycle)):
        k = iterations_fit(deadline, days)
        sides[name] = {
            "start": c.a0,
            "cycle_days": days,
            "iterations_by_deadline": k,
            "accuracy_at_deadline": c.at(k),
        }
    diff = sides["light"]["accuracy_at_deadline"] - sides["heavy"]["accuracy_at_deadline"]
    t = crossing_days(curve, heavy, cycle, heavy_cycle)
    crossing = crossing_iteration(curve, heavy, cycle, heavy_cycle)
    return {
        "heavy_gain": _given(plan, "heavy_gain"),
        "heavy_slowdown": _given(plan, "heavy_slowdown"),
        **sides,
        "ahead_at_deadline": "tie" if abs(diff) < 1e-12 else "light" if diff > 0 else "heavy",
        "crossing": {
            "days": t,
            "months": _months(t),
            "light_iterations": crossing,
            "step_days": None if crossing is None else crossing * cycle,
            "step_months": None if crossing is None else _months(crossing * cycle),
        },
    }


def _knee(plan: IterationPlan, curve: Curve, cycle: float) -> dict:
    deadline, gain, slowdown = (
        plan.value("deadline_days"),
        plan.value("heavy_gain"),
        plan.value("heavy_slowdown"),
    )
    knee = curve.knee(plan.value("knee_fraction"))
    rows: list[dict[str, Any]] = []
    for m in sorted({1.0, slowdown, *(s for s in _SIZES if s < slowdown)}):
        c = curve.shifted(gain * math.log(m) / math.log(slowdown) if slowdown > 1 else 0.0)
        k, knee_days = iterations_fit(deadline, cycle * m), knee * cycle * m
        rows.append(
            {
                "cycle_multiplier": m,
                "start_accuracy": c.a0,
                "cycle_days": cycle * m,
                "knee_days": knee_days,
                "knee_months": _months(knee_days),
                "knee_by_deadline": knee_days <= deadline,
                "iterations_by_deadline": k,
                "accuracy_at_deadline": c.at(k),
            }
        )
    best = max(rows, key=lambda r: (round(r["accuracy_at_deadline"], 12), -r["cycle_multiplier"]))
    return {
        "fraction": _given(plan, "knee_fraction"),
        "iteration": knee,
        "gain_at_knee": curve.at(knee) - curve.at(knee - 1),
        "gain_first": curve.at(1) - curve.a0,
        "sizes_provenance": "assumption: a model whose iteration takes m times the cycle starts "
        "heavy_gain * ln(m) / ln(heavy_slowdown) higher",
        "by_size": rows,
        "best_by_deadline": best["cycle_multiplier"],
    }


def build_plan(loop: Loop, plan: IterationPlan) -> dict:
    """Every figure of the iteration tax for ``loop`` under ``plan``, JSON-ready (see module
    example)."""
    kinds, deadline = plan.change_kinds, plan.value("deadline_days")
    cycle = loop.cycle_days(kinds)
    curve = Curve(
        plan.value("accuracy_now"),
        plan.value("accuracy_ceiling"),
        plan.value("gain_per_iteration"),
    )
    heavy, heavy_cycle = (
        curve.shifted(plan.value("heavy_gain")),
        cycle * plan.value("heavy_slowdown"),
    )
    fit = iterations_fit(deadline, cycle)
    cyc = _cycle(loop, kinds)
    by_kind = [
        candidate_iteration(
            loop,
            [k],
            curve.a0,
            deadline_days=deadline,
            accuracy_ceiling=curve.amax,
            gain_per_iteration=curve.r,
        )
        for k in CHANGE_KINDS
    ]
    return {
        "schema": SCHEMA,
        "target": {"id": loop.target_id, "name": loop.target_name},
        "deadline": {
            "text": plan.deadline_text or "26w",
            "days": deadline,
            "weeks": deadline / 7,
            "months": _months(deadline),
            "provenance": plan.provenance("deadline_days"),
        },
        "change_kinds": list(kinds),
        "cycle": cyc,
        "iterations": {
            "by_deadline": fit,
            "days_used": fit * cycle,
            "usd_by_deadline": fit * cyc["usd"],
        },
        "what_if": _what_ifs(loop, plan, curve, cyc["bottleneck"]["stage"]),
        "by_change_kind": [{k: v for k, v in c.items() if k != "assumptions"} for c in by_kind],
        "accuracy": _accuracy(plan, curve, heavy, cycle, heavy_cycle),
        "goal": _goal(plan, curve, cycle),
        "heavy_vs_light": _heavy_vs_light(plan, curve, heavy, cycle, heavy_cycle),
        "knee": _knee(plan, curve, cycle),
        "defect_cost": {
            "unit_usd": _given(plan, "defect_unit_usd"),
            "rule": "Cost(N) = 2^(N-1) * Cost(1)",
            "stages": defect_table(loop, kinds, plan.value("defect_unit_usd")),
        },
        "egress": egress_summary(loop, fit),
        "assumptions": {name: plan.provenance(name) for name in plan.assumed()},
    }
