"""The int8 recipe search (edgefit.passes._recipe_search) on tiny ONNX models.

Latency comes from a scripted timer (no timed unit tests): the decisions under test are what the
search does with measured latencies and measured accuracy, which the real quantizer produces.
"""

from __future__ import annotations

import onnx
import pytest
import toy_onnx

from edgefit.calibrate._measure import Interleaved
from edgefit.errors import EdgefitError
from edgefit.passes._recipe import Recipe, ort_defaults
from edgefit.passes._recipe_search import FINAL_ROUNDS, MAX_ROUNDS, search_recipe
from edgefit.passes._sensitivity import fidelity_fn


def scripted(latency_us):
    """A timer that reports ``latency_us(recipe)`` for every round, and records what it timed."""
    calls = []

    def timer(items, rounds):
        calls.append(([r for _, r in items], rounds))
        for path, _ in items:
            assert path.is_file()  # built before the timing starts
        return [
            Interleaved(latency_us(r) * 1e-6, (latency_us(r) * 1e-6,) * rounds, runs=rounds)
            for _, r in items
        ]

    timer.calls = calls
    return timer


def int8_fast(r: Recipe) -> float:
    """fp32 100 µs, fp16 150 µs, int8 40 µs plus 5 µs per node kept float."""
    return {"fp32": 100.0, "fp16": 150.0}.get(r.precision, 40.0 + 5 * len(r.keep_float))


@pytest.fixture
def outlier_mlp(tmp_path):
    """An MLP whose fc1 int8 weights crush its real weights (see toy_onnx.mlp), and a fidelity
    score (-NMSE against fp32 on fixed inputs)."""
    model = toy_onnx.mlp(outlier_layer=1)
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    feeds = toy_onnx.feeds(model, n=24)
    return path, feeds, fidelity_fn(path, feeds[:8], threads=1)


@pytest.mark.slow  # the first search in a process pays onnxruntime's import and first calibration
def test_sensitive_node_is_kept_float_and_accuracy_improves(outlier_mlp, tmp_path):
    path, feeds, score = outlier_mlp
    choice = search_recipe(path, feeds, score, max_drop=1e-3, timer=scripted(int8_fast))
    assert choice.sensitivity[0][0] == "fc1"  # measured: fc1 alone loses the most
    assert choice.recipe.precision == "int8" and choice.recipe.keep_float == ("fc1",)
    tried = choice.tried
    all_int8 = [t for t in tried if t.recipe.precision == "int8" and not t.recipe.keep_float]
    assert choice.accuracy > max(t.accuracy for t in all_int8)
    assert not any(t.eligible for t in all_int8)  # int8 everywhere misses the floor
    assert choice.accuracy >= choice.fp32_accuracy - 1e-3


def test_a_node_whose_int8_times_slower_stays_float(tmp_path):
    """Per-node latency: keeping fc2 (the least sensitive node) float times 20 µs faster, keeping
    any other node float costs 5 µs; the search keeps fc2, and only fc2, float."""
    model = toy_onnx.mlp()
    path = tmp_path / "mlp.onnx"
    onnx.save(model, path)
    feeds = toy_onnx.feeds(model, n=16)
    score = fidelity_fn(path, feeds[:4], threads=1)

    def us(r: Recipe) -> float:
        return int8_fast(r) - (20.0 if "fc2" in r.keep_float else 0.0)

    choice = search_recipe(path, feeds, score, max_drop=0.05, timer=scripted(us))
    assert choice.sensitivity[-1][0] == "fc2"  # not what sensitivity alone would keep float
    assert choice.recipe.keep_float == ("fc2",)
    kept = [t for t in choice.tried if t.kept and t.recipe.keep_float == ("fc2",)]
    assert kept[0].stage == "node-time"


def test_fp16_is_dropped_when_it_times_slower(outlier_mlp):
    path, feeds, score = outlier_mlp
    choice = search_recipe(path, feeds, score, max_drop=1e-3, timer=scripted(int8_fast))
    fp16 = [t for t in choice.tried if t.recipe.precision == "fp16"]
    assert fp16 and all(not t.kept for t in fp16)
    assert "does not time faster" in fp16[-1].note
    assert all(t.recipe.precision != "fp16" for t in choice.tried if t.stage == "final")


def test_fp16_is_chosen_when_it_times_fastest(outlier_mlp):
    path, feeds, score = outlier_mlp
    fast_half = scripted(lambda r: 10.0 if r.precision == "fp16" else int8_fast(r))
    choice = search_recipe(path, feeds, score, max_drop=1e-3, timer=fast_half)
    assert choice.recipe.precision == "fp16"


def test_nothing_below_the_floor_is_picked(outlier_mlp):
    """With no accuracy to give up, every int8 recipe is ineligible and fp32 stays."""
    path, feeds, score = outlier_mlp
    choice = search_recipe(path, feeds, score, max_drop=0.0, timer=scripted(int8_fast))
    assert choice.recipe.precision in ("fp32", "fp16")
    assert choice.accuracy >= choice.fp32_accuracy


def test_the_choice_is_reproducible_with_a_seed(outlier_mlp):
    path, feeds, score = outlier_mlp
    runs = [
        search_recipe(path, feeds, score, max_drop=1e-3, seed=7, timer=scripted(int8_fast))
        for _ in range(2)
    ]
    assert runs[0].recipe == runs[1].recipe
    assert [t.to_dict() for t in runs[0].tried] == [t.to_dict() for t in runs[1].tried]


def test_a_latency_win_beyond_the_noise_moves_the_search(tmp_path):
    """QOperator timed 30% faster than QDQ is taken; 2% faster (within the noise) is not."""
    model = toy_onnx.convnet(channels=8, size=8)
    path = tmp_path / "conv.onnx"
    onnx.save(model, path)
    feeds = toy_onnx.feeds(model, n=16)
    score = fidelity_fn(path, feeds[:4], threads=1)

    def latency(gain):
        def us(r: Recipe) -> float:
            if r.precision != "int8":
                return 100.0
            return 40.0 * (gain if r.quant_format == "QOperator" else 1.0) + 5 * len(r.keep_float)

        return us

    fast = search_recipe(path, feeds, score, max_drop=0.05, timer=scripted(latency(0.7)))
    level = search_recipe(path, feeds, score, max_drop=0.05, timer=scripted(latency(0.98)))
    assert fast.recipe.quant_format == "QOperator"
    assert level.recipe == ort_defaults(len(feeds))  # a tie goes to the smaller change


def test_the_final_times_leaders_fp32_and_defaults_interleaved(outlier_mlp):
    path, feeds, score = outlier_mlp
    timer = scripted(int8_fast)
    choice = search_recipe(path, feeds, score, max_drop=1e-3, timer=timer, threads=2)
    timed, rounds = timer.calls[-1]
    assert rounds >= FINAL_ROUNDS
    assert Recipe(precision="fp32", threads=2) in timed
    assert ort_defaults(len(feeds), threads=2) in timed
    assert choice.recipe in timed and choice.recipe.threads == 2
    assert len(choice.latency.round_medians_s) >= FINAL_ROUNDS
    assert "median of round medians" in choice.protocol


def test_a_gap_the_final_rounds_disagree_on_gets_more_rounds(outlier_mlp):
    """int8 at 60 µs in 3 of 5 final rounds and 120 µs in 2 against fp32's 100: the median says
    faster, the rounds disagree; re-timed with more rounds (here consistently 60 µs), int8 wins
    where a verdict on 5 rounds would have tied and kept fp32."""
    path, feeds, score = outlier_mlp

    def timer(items, rounds):
        out = []
        for _, r in items:
            if r.precision == "fp32":
                series = [100.0] * rounds
            elif rounds == FINAL_ROUNDS:
                series = [60.0, 60.0, 60.0, 120.0, 120.0]
            else:
                series = [60.0] * rounds
            series = [us * 1e-6 for us in series]
            out.append(Interleaved(sorted(series)[len(series) // 2], tuple(series), runs=rounds))
        return out

    choice = search_recipe(path, feeds, score, max_drop=1.0, timer=timer)
    assert any(t.stage == "final+" for t in choice.tried)
    assert choice.recipe.precision == "int8"
    assert len(choice.latency.round_medians_s) == MAX_ROUNDS


def test_several_thread_counts_are_a_choice(outlier_mlp):
    path, feeds, score = outlier_mlp
    one_faster = scripted(lambda r: int8_fast(r) * (1.0 if r.threads == 1 else 1.5))
    choice = search_recipe(path, feeds, score, max_drop=1e-3, timer=one_faster, threads=(2, 1))
    assert choice.recipe.threads == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [("activations", "U4"), ("samples", 0), ("opt_level", "max"), ("threads", True)],
)
def test_bad_recipe_fields_are_one_clear_error(field, value):
    with pytest.raises(EdgefitError, match=f"Recipe.{field}"):
        Recipe(**{field: value})


def test_recipe_normalizes_and_round_trips():
    assert Recipe(precision="fp32", calibration="entropy") == Recipe(precision="fp32")
    with pytest.raises(EdgefitError, match="QDQ"):
        Recipe(quant_format="QOperator", keep_float=("fc1",))
    r = Recipe(keep_float=("b", "a"), calibration="percentile", samples=16)
    assert r.keep_float == ("a", "b")
    assert Recipe.from_dict(r.to_dict()) == r
    with pytest.raises(EdgefitError, match="bogus"):
        Recipe.from_dict({**r.to_dict(), "bogus": 1})


@pytest.mark.slow
def test_real_timer_records_rounds_and_spread(outlier_mlp):
    """The host timer end to end: the pick and its references carry ≥ 5 round medians each."""
    path, feeds, score = outlier_mlp
    choice = search_recipe(path, feeds, score, max_drop=1e-3)
    assert choice.defaults_latency is not None
    for timing in (choice.latency, choice.fp32_latency, choice.defaults_latency):
        assert len(timing.round_medians_s) >= FINAL_ROUNDS and timing.spread >= 0
    assert choice.accuracy >= choice.fp32_accuracy - 1e-3
    assert "final" in choice.table()
