"""edgefit's int8 recipe search against onnxruntime's quantize_static defaults and fp32 (#16 item
5).

Not part of CI's benchmark gate (``make bench-ci`` lists its suites): a full run takes minutes and
its ratios are the README's evidence, not a regression check. Run it on a quiet machine:

    .venv/bin/python -m pytest bench/test_bench_vs_defaults.py -q -s
    --benchmark-json=.benchmarks/vs.json

For each trained task (bench/_tasks.py: a depthwise-heavy CNN, an MLP, a transformer encoder and an
audio-style 1-D convnet, all on the shipped digits data) and each thread count, the search
(:func:`edgefit.passes._recipe_search.search_recipe`, calibrated on 256 training samples, scored on
the validation split, at most 1 point below fp32) picks a recipe for that thread count. Then the
pick, onnxruntime's defaults (QDQ, S8S8, per-tensor, MinMax, the same 256 samples) and fp32 are
re-timed here, in fresh sessions, in 9 interleaved rounds in rotating order (one place each round,
reversed every other round; median of round medians, and the median of the round-by-round ratios,
which a noisy stretch of the machine hits on both sides alike), and scored on the held-out test
split. When the pick is the defaults' own recipe, both are the same file and their ratio is the
measurement's noise floor (``pick_is_defaults``). ``extra_info`` carries the ratios, spreads and
accuracies.
"""

from __future__ import annotations

import json
import os
import statistics

import pytest
from _tasks import TASKS, accuracy_fn, calibration_feeds, export, splits

from edgefit.passes._recipe import Recipe, ort_defaults
from edgefit.passes._recipe_search import search_recipe
from edgefit.passes._recipe_timing import interleaved_timer, paired_ratios

ROUNDS = 9
MAX_DROP = 0.01


def _isa() -> list[str]:
    try:
        from edgefit.targets._host import probe_host

        return probe_host().isa
    except Exception:  # noqa: BLE001 - the record is informative only
        return []


def _range(ratios: list[float]) -> list[float]:
    return [min(ratios), max(ratios)]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("task_name", list(TASKS))
def test_pick_vs_defaults(benchmark, tmp_path, task_name, threads):
    task = TASKS[task_name]
    path = export(task, tmp_path)
    data = splits(task)
    feeds = calibration_feeds(task, path)
    folder = tmp_path / "recipes"
    choice = search_recipe(
        path, feeds, accuracy_fn(*data["val"]), threads=threads, max_drop=MAX_DROP, folder=folder
    )
    named = {
        "pick": choice.recipe,
        "defaults": ort_defaults(len(feeds), threads),
        "fp32": Recipe(precision="fp32", threads=threads),
    }
    items = [(folder / f"{r.digest()}.onnx", r) for r in named.values()]
    timer = interleaved_timer(feeds[0])
    load_before = os.getloadavg()[0]
    timings = benchmark.pedantic(timer, args=(items, ROUNDS), rounds=1, iterations=1)
    t = dict(zip(named, timings))
    load = [load_before, os.getloadavg()[0]]  # other processes on the machine, for the record
    test = accuracy_fn(*data["test"])
    acc = {k: test(p) for k, (p, _) in zip(named, items)}
    row = {
        "task": task_name,
        "kind": task.kind,
        "threads": threads,
        "rounds": ROUNDS,
        "isa": _isa(),
        "pick": choice.recipe.label(),
        "p50_us": {k: v.median_s * 1e6 for k, v in t.items()},
        "spread": {k: v.spread for k, v in t.items()},
        "pick_over_defaults": t["pick"].median_s / t["defaults"].median_s,
        "pick_over_fp32": t["pick"].median_s / t["fp32"].median_s,
        "paired_pick_over_defaults": statistics.median(paired_ratios(t["pick"], t["defaults"])),
        "paired_pick_over_fp32": statistics.median(paired_ratios(t["pick"], t["fp32"])),
        "paired_pick_over_fp32_range": _range(paired_ratios(t["pick"], t["fp32"])),
        "paired_pick_over_defaults_range": _range(paired_ratios(t["pick"], t["defaults"])),
        "test_accuracy": acc,
        "drop_points_vs_fp32": 100 * (acc["fp32"] - acc["pick"]),
        "search_final": {
            "pick_us": choice.latency.median_s * 1e6,
            "defaults_us": getattr(choice.defaults_latency, "median_s", float("nan")) * 1e6,
            "fp32_us": choice.fp32_latency.median_s * 1e6,
        },
        "tried": len(choice.tried),
        # the pick may be onnxruntime's defaults themselves: then the ratio is the noise floor
        "pick_is_defaults": choice.recipe == named["defaults"],
        "loadavg_1min": load,
    }
    benchmark.extra_info.update(row)
    print(f"\n{json.dumps(row)}\n{choice.table()}")
