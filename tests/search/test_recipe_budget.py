"""`edgefit optimize model.onnx --target host-cpu --budget ...` counts the int8 recipe search
against the budget, caps the search at a share of it, skips it when that share is too small, and
records the cap (#16).

Nothing real is timed: the run's clock (edgefit.search._engine.time) is a scripted one that only
the stand-in recipe search moves on, by the seconds a test says the search took. No candidate is
built either: a recording executor takes the jobs the run would start and what they would be
built with (whether candidates run within the budget is tests/search/test_optimize.py's).
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pytest

import edgefit
from edgefit.calibrate._measure import Interleaved
from edgefit.passes._recipe import Recipe, ort_defaults
from edgefit.passes._recipe_choice import RecipeChoice
from edgefit.passes._recipe_search_cap import MIN_CAP_S
from edgefit.search import _recipe_step
from edgefit.search._candidate import recipe_of
from edgefit.search._recipe_step import RECIPE_SHARE, _cached, recipe_cap


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    import onnx

    from edgefit.runtimes.testing import tiny_model

    path = tmp_path_factory.mktemp("model") / "tiny.onnx"
    onnx.save(tiny_model(), str(path))
    return path


class Clock:
    t = 0.0

    def __call__(self) -> float:
        return self.t


def _choice(cap_s: float | None, skipped: tuple[str, ...], seconds: float) -> RecipeChoice:
    """What a search returns: its int8 recipe, fp32 and the defaults in its final."""

    def t(us: float) -> Interleaved:
        return Interleaved(us * 1e-6, (us * 1e-6,) * 5, runs=5)

    int8, fp32, dflt = Recipe(), Recipe(precision="fp32"), ort_defaults(64)
    return RecipeChoice(
        recipe=int8,
        accuracy=1.0,
        latency=t(40),
        fp32_accuracy=1.0,
        fp32_latency=t(100),
        defaults_accuracy=1.0,
        defaults_latency=t(50),
        tried=(),
        final=((int8, t(40), 1.0), (fp32, t(100), 1.0), (dflt, t(50), 1.0)),
        max_drop=0.3,
        defaults=dflt,
        protocol="scripted: interleaved",
        cap_s=cap_s,
        stages_skipped=skipped,
        seconds=seconds,
    )


@pytest.fixture
def search(monkeypatch):
    """A stand-in for the measured search on a scripted run clock: ``search.took`` seconds pass
    while it runs; ``search.caps`` holds the time cap each call got."""
    clock = Clock()
    monkeypatch.setattr("edgefit.search._engine.time", types.SimpleNamespace(perf_counter=clock))

    def fake(model, feeds, eval_fn, *, time_cap_s=None, **kwargs):
        fake.caps.append(time_cap_s)
        clock.t += fake.took
        skipped = ("fp16", "session") if time_cap_s is not None else ()
        return _choice(time_cap_s, skipped, fake.took)

    fake.caps, fake.took = [], 0.0
    monkeypatch.setattr("edgefit.passes.search_recipe", fake)
    return fake


class Recording:
    """An executor that starts a job only while the run's ``should_stop()`` says go on, and builds
    nothing: ``started`` holds the jobs, ``settings`` what they would be built with."""

    def __init__(self) -> None:
        self.started: list = []
        self.settings = None

    def run(self, jobs, ctx, *, should_stop, progress=None, notes=None):
        self.settings = ctx.settings
        for job in jobs:
            if should_stop():
                break
            self.started.append(job)
        return []


@pytest.fixture
def executor(monkeypatch) -> Recording:
    rec = Recording()
    monkeypatch.setattr("edgefit.search._engine.get_executor", lambda name, config: rec)
    return rec


def _run(tiny_onnx, out: Path, **config) -> dict:
    # trials=3: the third survivor of the tiny model's space is an int8 choice (the search's
    # reason to run)
    cfg = edgefit.OptimizeConfig(out_dir=out, trials=3, **config)
    edgefit.optimize(str(tiny_onnx), "host-cpu", config=cfg)
    return json.loads((out / "results.json").read_text())


def _int8(jobs) -> list:
    return [j for j in jobs if j.choice.precision == "int8"]


def test_the_search_counts_against_the_budget_and_is_capped_at_half(
    tiny_onnx, tmp_path, search, executor
):
    """--budget 30s and a search that took 40 s: before #16 the budget started after the search
    and every candidate still ran; now the run is over budget when candidates start, and only
    the first one starts (a run always builds one, so it answers something)."""
    search.took = 40.0
    res = _run(tiny_onnx, tmp_path, budget_s=30.0)
    assert search.caps == [pytest.approx(30.0 * RECIPE_SHARE)]
    assert len(executor.started) == 1  # the first; the other two are never started
    assert any(n.startswith("budget of 30 s reached") for n in res["notes"])
    top = res["recipe_search"]
    assert top["capped"] is True and top["cap_s"] == pytest.approx(15.0)
    assert top["seconds"] == pytest.approx(40.0) and top["stages_skipped"] == ["fp16", "session"]
    stored = json.loads((tmp_path / "recipe" / "recipe.json").read_text())
    assert (stored["capped"], stored["cap_s"], stored["seconds"]) == (True, 15.0, 40.0)
    line = next(n for n in res["notes"] if n.startswith("int8 recipe searched by measurement"))
    assert "capped at 15.0 s of the --budget (took 40.0 s)" in line


def test_a_budget_too_small_for_the_search_skips_it(tiny_onnx, tmp_path, search, executor):
    budget = 2 * MIN_CAP_S - 2  # half of it is under the least cap a search starts with
    res = _run(tiny_onnx, tmp_path, budget_s=budget)
    assert search.caps == []  # never called
    skipped = [n for n in res["notes"] if n.startswith("int8 recipe search skipped")]
    assert len(skipped) == 1 and f"{budget / 2:.1f} s" in skipped[0]
    assert res.get("recipe_search") is None and not (tmp_path / "recipe").exists()
    # the int8 candidate starts, with the space's own recipe (no searched one)
    assert len(executor.started) == 3 and _int8(executor.started)
    assert not executor.settings.recipes


def test_a_search_within_the_budget_leaves_the_rest_to_the_candidates(
    tiny_onnx, tmp_path, search, executor
):
    search.took = 12.0
    res = _run(tiny_onnx, tmp_path, budget_s=30.0)
    assert search.caps == [pytest.approx(15.0)] and len(executor.started) == 3
    assert res["recipe_search"]["seconds"] == pytest.approx(12.0)
    int8 = _int8(executor.started)  # built with the searched recipe
    assert int8 and recipe_of(int8[0].choice, executor.settings) == Recipe().to_dict()


def test_without_a_budget_the_search_is_not_capped(tiny_onnx, tmp_path, search, executor):
    search.took = 25.0
    res = _run(tiny_onnx, tmp_path)
    assert search.caps == [None]
    top = res["recipe_search"]
    assert (top["capped"], top["cap_s"], top["stages_skipped"]) == (False, None, [])
    assert top["seconds"] == pytest.approx(25.0)


def test_the_cap_is_a_share_of_the_budget_never_past_what_is_left():
    assert recipe_cap(None, None) is None
    assert recipe_cap(100.0, 100.0) == pytest.approx(100.0 * RECIPE_SHARE)
    assert recipe_cap(100.0, 20.0) == pytest.approx(20.0)  # the baseline took 80 s of it
    assert recipe_cap(100.0, -3.0) == 0.0  # already over budget
    assert 0 < RECIPE_SHARE < 1


def test_a_capped_record_is_reused_only_by_a_run_capped_no_larger(tmp_path):
    path = tmp_path / "recipe.json"
    record = {"key": "k", "version": _recipe_step.STEP_VERSION, "recipe": {}}
    path.write_text(json.dumps({**record, "capped": True, "cap_s": 15.0}))
    assert _cached(path, "k", 15.0) is not None  # the same command resumed
    assert _cached(path, "k", 12.0) is not None
    assert _cached(path, "k", 30.0) is None  # a larger budget searches further
    assert _cached(path, "k", None) is None  # so does no budget
    path.write_text(json.dumps({**record, "capped": False, "cap_s": 15.0}))
    assert _cached(path, "k", None) is not None and _cached(path, "k", 30.0) is not None
    path.write_text(json.dumps(record))  # written before #16: never capped
    assert _cached(path, "k", 5.0) is not None
