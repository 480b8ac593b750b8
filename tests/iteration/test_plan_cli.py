"""`edgefit plan`: the JSON document, the human report and one-line errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from edgefit.cli import main
from edgefit.cli._app import app

runner = CliRunner()


def test_plan_orin_goal_json():
    result = runner.invoke(app, ["plan", "--target", "orin", "--goal", "0.99", "--json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    assert p["schema"] == "edgefit.plan/1" and p["target"]["id"] == "jetson-agx-orin-64gb"
    assert set(p) >= {"deadline", "cycle", "iterations", "what_if", "by_change_kind", "accuracy", "goal",
                      "heavy_vs_light", "knee", "defect_cost", "egress", "assumptions"}
    g = p["goal"]
    assert (g["goal"], g["iterations_needed"], g["iterations_fit"]) == (0.99, 14, 4)
    assert g["fits"] is False and g["reachable_goal"] == 0.956
    assert g["provenance"] == "given (--goal)"
    assert p["cycle"]["days"] == 38 and p["cycle"]["bottleneck"]["stage"] == "certification"
    assert "accuracy_now" in p["assumptions"] and "goal" not in p["assumptions"]
    assert all(r["provenance"] for r in p["cycle"]["waterfall"])


def test_plan_orin_goal_human_report():
    result = runner.invoke(app, ["plan", "--target", "orin", "--goal", "0.99"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())  # the words, whatever the console's width wrapped
    assert "needs 14 iterations = 532 d" in out and "against 4 that fit by the deadline: does NOT fit" in out
    assert "reachable goal by the deadline: 95.6%" in out
    assert "bottleneck: certification, 14 d = 36.8% of the cycle" in out
    assert "assumption: a first deployable model at 90%" in out


def test_plan_flags_reach_the_plan():
    result = runner.invoke(app, ["plan", "-t", "h100", "--deadline", "1y", "--change", "runtime", "--what-if",
                                 "training=2", "--set", "monitoring=0", "--accuracy-now", "0.8", "--json"])
    assert result.exit_code == 0, result.output
    p = json.loads(result.stdout)
    assert p["deadline"]["days"] == 365.25 and p["cycle"]["days"] == 7 + 5 + 10 + 3 + 2  # no egress loop, no monitoring
    assert p["cycle"]["certification"]["runs"] is False and p["egress"]["usd_per_iteration"] == 90_000
    assert len(p["what_if"]) == 1 and p["what_if"][0]["cycle_days_after"] == 27 - 10 + 5  # training 10 d → 5
    assert p["accuracy"]["accuracy_now"] == {"value": 0.8, "provenance": "given (--accuracy-now)"}


@pytest.mark.parametrize("args, where", [
    (["--deadline", "26x"], "--deadline"),
    (["--gain-per-iteration", "1.5"], "--gain-per-iteration"),
    (["--accuracy-now", "0.99", "--accuracy-ceiling", "0.95"], "--accuracy-now"),
    (["--set", "training=-1"], "--set training"),
    (["--set", "coffee=1"], "--set"),
    (["--what-if", "coffee=2"], "--what-if"),
    (["--change", "vibes"], "--change"),
])
def test_plan_bad_input_is_one_line_exit_2(args, where, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["plan", "--target", "orin", *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"edgefit: error: {where}")
