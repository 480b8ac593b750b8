"""The recipe search's time cap (edgefit.passes._recipe_search_cap) on a tiny ONNX MLP.

Nothing real is timed: the search's clock is a scripted one that only the scripted timer (0.1 s
per model and round) and, where a test says so, the scoring move on; the accuracies are real.
"""

from __future__ import annotations

import onnx
import pytest
import toy_onnx

from edgefit.calibrate._measure import Interleaved
from edgefit.errors import EdgefitError
from edgefit.passes import _recipe_search_cap
from edgefit.passes._recipe import ort_defaults
from edgefit.passes._recipe_search import FINAL_ROUNDS, LEADERS, STAGES, search_recipe
from edgefit.passes._sensitivity import fidelity_fn

ROUND_S = 0.1  # scripted seconds per model and round


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock(monkeypatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(_recipe_search_cap, "_now", c)
    return c


@pytest.fixture
def mlp(tmp_path):
    model = toy_onnx.mlp()
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    feeds = toy_onnx.feeds(model, n=24)
    return path, feeds, fidelity_fn(path, feeds[:4], threads=1)


def timer_on(clock: Clock, series=None):
    """A scripted timer: int8 40 µs, fp32 100 µs, fp16 150 µs (or ``series(recipe, rounds)``);
    each timing moves the clock on by 0.1 s per model and round."""

    def us(r, rounds):
        flat = {"fp32": 100.0, "fp16": 150.0}.get(r.precision, 40.0)
        return [flat] * rounds if series is None else series(r, rounds)

    def timer(items, rounds):
        clock.t += ROUND_S * len(items) * rounds
        out = []
        for _, r in items:
            s = tuple(x * 1e-6 for x in us(r, rounds))
            out.append(Interleaved(sorted(s)[len(s) // 2], s, runs=rounds))
        return out

    return timer


def _stages_run(choice) -> list[str]:
    return list(dict.fromkeys(t.stage for t in choice.tried))


def test_without_a_cap_nothing_is_skipped(mlp, clock):
    path, feeds, score = mlp
    choice = search_recipe(path, feeds, score, max_drop=0.05, timer=timer_on(clock))
    assert choice.cap_s is None and not choice.capped and choice.stages_skipped == ()
    assert choice.seconds == pytest.approx(clock.t - 1000.0)  # every scripted timing counted
    d = choice.to_dict()
    assert (d["capped"], d["cap_s"], d["stages_skipped"]) == (False, None, [])
    assert d["seconds"] > 0


def test_a_cap_too_small_for_more_runs_the_first_stage_then_the_final(mlp, clock):
    """After the first stage (2 models × 3 rounds = 0.6 s) the final's reserve is 6 models × 5
    rounds × 0.1 s × 1.5 = 4.5 s: a 5 s cap leaves no room for another stage."""
    path, feeds, score = mlp
    choice = search_recipe(path, feeds, score, max_drop=0.05, timer=timer_on(clock), time_cap_s=5)
    assert _stages_run(choice) == ["start", "final"]
    assert choice.capped and choice.cap_s == 5.0
    walked = [s for s in STAGES if s not in ("start", "threads", "final")]
    assert list(choice.stages_skipped) == walked  # "final+" only when a gap is disputed
    final = [r for r, _, _ in choice.final]
    assert any(r.precision == "fp32" for r in final) and choice.defaults in final
    assert choice.defaults == ort_defaults(len(feeds))
    assert all(len(t.round_medians_s) == FINAL_ROUNDS for _, t, _ in choice.final)
    assert choice.seconds == pytest.approx(0.6 + ROUND_S * len(final) * FINAL_ROUNDS)
    assert any("time cap of 5.0 s" in n for n in choice.notes)


@pytest.mark.parametrize("cap", [6.0, 7.5, 9.0, 10.5])
def test_a_cap_skips_the_tail_of_the_stages_and_the_search_ends_under_it(mlp, clock, cap):
    path, feeds, score = mlp
    full = search_recipe(path, feeds, score, max_drop=0.05, timer=timer_on(clock))
    clock.t = 1000.0
    choice = search_recipe(
        path, feeds, score, max_drop=0.05, timer=timer_on(clock), time_cap_s=cap
    )
    assert full.seconds > cap and choice.capped  # each cap cuts this search short
    run, skipped = _stages_run(choice), list(choice.stages_skipped)
    assert "start" in run and run[-1] == "final" and not set(run) & set(skipped)
    order = list(STAGES) + ["final+"]
    assert skipped == sorted(skipped, key=order.index)
    assert max(order.index(s) for s in run if s != "final") < order.index(skipped[0])
    # the final's reserve (4.5 s here) covers its 0.5 s per model and one more stage
    assert choice.seconds <= cap
    assert len(choice.tried) < len(full.tried)


def test_a_larger_cap_searches_further(mlp, clock):
    path, feeds, score = mlp
    seen = []
    for cap in (6.0, 8.0, 10.5):
        clock.t = 1000.0
        c = search_recipe(path, feeds, score, max_drop=0.05, timer=timer_on(clock), time_cap_s=cap)
        seen.append(len(c.stages_skipped))
    assert seen[0] > seen[1] > seen[2]


def test_a_capped_final_settles_a_disputed_gap_as_a_tie(mlp, clock):
    """int8 at 60 µs in 3 of 5 final rounds and 120 µs in 2 against fp32's 100: uncapped, the
    final re-times with more rounds (see test_recipe); with no time left for them it stays a tie,
    which goes to the smaller change, fp32."""
    path, feeds, score = mlp

    def series(r, rounds):
        if r.precision == "fp32":
            return [100.0] * rounds
        if rounds == FINAL_ROUNDS:
            return [60.0, 60.0, 60.0, 120.0, 120.0]
        return [60.0] * rounds

    choice = search_recipe(
        path, feeds, score, max_drop=1.0, timer=timer_on(clock, series), time_cap_s=5
    )
    assert "final+" in choice.stages_skipped
    assert not any(t.stage == "final+" for t in choice.tried)
    assert choice.recipe.precision == "fp32"


def test_the_cap_can_stop_the_per_node_sensitivity(mlp, clock):
    """Scoring costs 1 s of the scripted clock and timing nothing: a cap that falls inside the
    per-node sensitivity (one evaluation per weight node) abandons it and keeps no node float."""
    path, feeds, score = mlp
    started: dict[str, float] = {}

    def scoring(p):
        clock.t += 1.0
        return score(p)

    def progress(label, done, total):
        started.setdefault(label.rsplit(": ", 1)[-1], clock.t)

    free = timer_on(Clock())  # moves its own clock, not the search's
    search_recipe(path, feeds, scoring, max_drop=0.05, timer=free, progress=progress)
    t_float = started["float"] - 1000.0
    clock.t = 1000.0
    choice = search_recipe(
        path, feeds, scoring, max_drop=0.05, timer=free, time_cap_s=t_float + 1.5
    )
    assert "float" in choice.stages_skipped and choice.sensitivity == ()
    assert any("per-node sensitivity stopped by the time cap" in n for n in choice.notes)
    assert all(not t.recipe.keep_float for t in choice.tried)


@pytest.mark.parametrize("cap", [0, -1.0, True, "30s", float("nan")])
def test_a_bad_cap_is_one_clear_error(mlp, cap):
    path, feeds, score = mlp
    with pytest.raises(EdgefitError, match="time_cap_s"):
        search_recipe(path, feeds, score, time_cap_s=cap)


def test_the_reserve_is_the_final_at_its_widest():
    cap = _recipe_search_cap.SearchCap(10.0)
    cap.timed(0.6, items=2, rounds=3)
    assert cap.reserve(LEADERS + 2, FINAL_ROUNDS) == pytest.approx(
        (LEADERS + 2) * FINAL_ROUNDS * 0.1 * _recipe_search_cap.FINAL_MARGIN
    )
