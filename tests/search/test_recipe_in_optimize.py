"""`edgefit optimize model.onnx --target host-cpu` quantizes its int8 candidates with the recipe
that edgefit.passes.search_recipe chose by measurement (#16), once per run, cached in the output
folder.

The recipe search's timer is scripted (no timed unit tests): the QOperator format "times"
fastest, so the search must choose a recipe that neither the space's own int8 recipe nor
onnxruntime's defaults (both QDQ) is, and the test can see in the candidate's graph that this
recipe, not another, was applied. The candidates themselves are measured for real.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgefit
from edgefit.calibrate._measure import Interleaved
from edgefit.passes._recipe import Recipe

# two optimize runs with a recipe search: ~30 s on 2 cores; one xdist worker runs them all, so
# the module's runs fixture is built once
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("recipe-in-optimize")]


def _us(r: Recipe) -> float:
    if r.precision != "int8":
        return {"fp32": 100.0, "fp16": 150.0}[r.precision]
    return (10.0 if r.quant_format == "QOperator" else 40.0) + 5 * len(r.keep_float)


def _scripted(feed):
    def timer(items, rounds):
        timer.calls += 1
        return [Interleaved(_us(r) * 1e-6, (_us(r) * 1e-6,) * rounds, runs=rounds) for _, r in items]

    timer.calls = 0
    return timer


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


@pytest.fixture(scope="module")
def runs(tiny_onnx, tmp_path_factory):
    """The same optimize run twice in one output folder (the second one resumes): each run's
    result, results.json and how often the recipe search's timer ran."""
    mp = pytest.MonkeyPatch()
    timers: list = []

    def make_timer(feed):
        timers.append(_scripted(feed))
        return timers[-1]

    mp.setattr("edgefit.passes._recipe_search.interleaved_timer", make_timer)
    out = tmp_path_factory.mktemp("out")
    config = edgefit.OptimizeConfig(out_dir=out, trials=4, max_drop=0.3)
    seen: list[list[str]] = []
    try:
        results = []
        for _ in range(2):
            labels: list[str] = []
            res = edgefit.optimize(
                str(tiny_onnx),
                "host-cpu",
                config=config,
                progress=lambda label, done, total: labels.append(label),
            )
            results.append((res, json.loads((out / "results.json").read_text())))
            seen.append(labels)
    finally:
        mp.undo()
    return out, results, timers, seen


def _int8(res: dict) -> list[dict]:
    return [
        c
        for c in res["candidates"]
        if c["status"] == "done" and c["choice"]["precision"] == "int8"
    ]


def test_int8_candidates_are_built_with_the_searched_recipe(runs):
    import onnx

    out, results, timers, seen = runs
    _, res = results[0]
    record = json.loads((out / "recipe" / "recipe.json").read_text())
    chosen = Recipe.from_dict(record["int8_recipe"])
    assert chosen.quant_format == "QOperator"
    assert timers[0].calls > 5  # screening stages and the final were timed by the search
    assert any("int8 recipe search" in label for label in seen[0])
    int8 = _int8(res)
    recipes = [c["plan"]["quantize"]["recipe"] for c in int8]
    finalists = [f["config"] for f in record["final"] if f["eligible"]]
    assert recipes[0] == chosen.to_dict() and all(r in finalists for r in recipes)
    assert len({json.dumps(r, sort_keys=True) for r in recipes}) == len(recipes)  # all distinct
    defaults = next(f["config"] for f in record["final"] if f["defaults"])
    assert len(int8) >= 2 and defaults in recipes  # the optimizer measures the defaults too
    graph = onnx.load(int8[0]["onnx"]).graph
    ops = {n.op_type for n in graph.node}
    assert "QLinearConv" in ops and "Conv" not in ops  # QOperator, not QDQ around a float Conv
    zero_points = {i.name: i.data_type for i in graph.initializer}
    kind = {"U8": onnx.TensorProto.UINT8, "S8": onnx.TensorProto.INT8}[chosen.activations]
    quantize = [n for n in graph.node if n.op_type == "QuantizeLinear"]
    assert quantize and all(zero_points[n.input[2]] == kind for n in quantize)


def test_results_record_the_recipe_search(runs):
    from edgefit.report import schema_errors

    _, results, _, _ = runs
    _, res = results[0]
    assert schema_errors(res) == []
    cand = _int8(res)[0]
    search = cand["materialize"]["recipe_search"]
    assert search["label"] and "interleaved" in search["protocol"]
    assert search["defaults"]["latency"]["median_s"] > 0  # onnxruntime's defaults, same protocol
    assert search["fp32"]["latency"]["median_s"] > 0
    final = search["final"]
    assert len(final) >= 3 and all(f["rounds"] >= 5 and f["spread"] >= 0 for f in final)
    assert any(n.startswith("int8 recipe searched by measurement") for n in res["notes"])
    quantize_step = cand["materialize"]["passes"][-1]
    assert quantize_step["recipe"] == f"searched recipe: {search['int8_label']}"
    assert cand["artifact"]["options"]["graph_optimization_level"] == "all"  # measured with it


def test_a_rerun_reuses_the_recipe_and_every_candidate(runs):
    out, results, timers, _ = runs
    (_, first), (_, second) = results
    assert len(timers) == 1  # the second run never searched: recipe/recipe.json was reused
    assert any("int8 recipe reused" in n for n in second["notes"])
    assert second["counts"]["reused"] == second["counts"]["materialized"] > 0
    assert {c["key"] for c in first["candidates"]} == {c["key"] for c in second["candidates"]}
    assert sorted(p.name for p in (out / "recipe").iterdir()) == ["recipe.json"]


def test_estimated_targets_keep_the_space_recipe(tiny_onnx, tmp_path, monkeypatch):
    def no_search(*args, **kwargs):
        raise AssertionError("the recipe search must not run for an estimated target")

    monkeypatch.setattr("edgefit.passes.search_recipe", no_search)
    config = edgefit.OptimizeConfig(out_dir=tmp_path, trials=3)
    edgefit.optimize(str(tiny_onnx), "orin", config=config)
    res = json.loads((tmp_path / "results.json").read_text())
    plans = [c["plan"].get("quantize") or {} for c in res["candidates"]]
    assert all("recipe" not in p for p in plans)
    assert not (tmp_path / "recipe").exists()


def test_ctrl_c_in_the_recipe_search_starts_no_candidate(tiny_onnx, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("edgefit.passes.search_recipe", interrupted)
    config = edgefit.OptimizeConfig(out_dir=tmp_path, trials=4)
    result = edgefit.optimize(str(tiny_onnx), "host-cpu", config=config)
    res = json.loads((tmp_path / "results.json").read_text())
    assert result.interrupted and res["interrupted"]
    assert res["candidates"] == [] and res["counts"]["not_started"] == 4
    assert any("interrupted during the int8 recipe search" in n for n in res["notes"])
    assert not (tmp_path / "recipe").exists()  # nothing half-written: the next run searches again


def test_the_final_times_a_candidate_at_its_recipes_optimization_level(tiny_onnx, monkeypatch):
    """The final re-measurement opens each leader as it is to run: a candidate whose searched
    recipe chose graph optimization level 'basic' is timed in a session at 'basic'."""
    from edgefit.passes import _recipe_timing
    from edgefit.search import _final

    opened: list[str] = []
    real = _recipe_timing.session

    def spy(path, recipe):
        opened.append(recipe.opt_level)
        return real(path, recipe)

    monkeypatch.setattr(_recipe_timing, "session", spy)
    from edgefit.records.testing import done_candidate

    onnx = {"path": str(tiny_onnx), "format": "onnx", "runtime": "onnxruntime"}
    chosen = [
        done_candidate("a" * 16, accuracy=1.0, p50_s=1e-4, artifact=onnx),
        done_candidate("b" * 16, accuracy=1.0, p50_s=1e-4,
                       artifact={**onnx, "options": {"graph_optimization_level": "basic"}}),
    ]
    results, _ = _final._timed(
        chosen, 1, rounds=5, round_s=0.01, max_spread=0.1, max_rounds=11, settle_s=0.0
    )
    assert opened == ["all", "basic"]
    assert len(results) == 2 and all(len(r.round_medians_s) >= 5 for r in results)


def test_a_failed_recipe_search_leaves_the_space_recipes(tiny_onnx, tmp_path, monkeypatch):
    from edgefit.errors import EdgefitError

    def failing(*args, **kwargs):
        raise EdgefitError("onnxruntime quantize_static failed for int8 U8S8", where="x", fix="y")

    monkeypatch.setattr("edgefit.passes.search_recipe", failing)
    config = edgefit.OptimizeConfig(out_dir=tmp_path, trials=4)
    edgefit.optimize(str(tiny_onnx), "host-cpu", config=config)
    res = json.loads((tmp_path / "results.json").read_text())
    failed = [n for n in res["notes"] if n.startswith("int8 recipe search failed")]
    assert len(failed) == 1 and "quantize_static failed" in failed[0]
    int8 = _int8(res)
    assert int8 and all("recipe" not in c["plan"]["quantize"] for c in int8)
    assert all(c["label"].startswith("int8 ") and "searched" not in c["label"] for c in int8)


def test_only_int8_choices_of_the_model_as_it_came_take_a_searched_recipe():
    """The recipe's float nodes are nodes of the graph it was searched on: a pruned or swapped
    int8 choice keeps the space's recipe."""
    from edgefit.search._recipe_step import _searched
    from edgefit.search._space import Choice

    assert _searched(Choice(precision="int8", calibration="percentile", keep_float=2))
    assert not _searched(Choice(precision="int8", prune="channel", prune_amount=0.3))
    assert not _searched(Choice(precision="int8", width=0.5))
    assert not _searched(Choice(precision="fp16"))


def test_results_carry_the_recipe_search_once_at_the_top(runs):
    _, results, _, _ = runs
    _, res = results[0]
    top = res["recipe_search"]
    assert top["label"] == _int8(res)[0]["materialize"]["recipe_search"]["label"]
    assert "tried" not in top and "interleaved" in top["protocol"]
