"""What `edgefit optimize model.onnx --data eval.npz --target host-cpu --max-drop 0.01` picks,
against onnxruntime's quantize_static defaults and fp32 (#16 items 3 and 5).

Not part of CI's benchmark gate (``make bench-ci`` lists its suites): eight optimize runs take
about 4 minutes on 2 cores (20-45 s each, the recipe search included), and the ratios are the
README's evidence, not a regression check. Run it on a quiet machine:

    .venv/bin/python -m pytest bench/test_bench_vs_defaults.py -q -s
    --benchmark-json=.benchmarks/vs.json

For each trained task (bench/_tasks.py: a depthwise-heavy CNN, an MLP, a transformer encoder and
an audio-style 1-D convnet, all on the shipped digits data) and each thread count, the library call
``edgefit.optimize`` runs as a user would run the CLI: the ONNX file, the validation split as
``--data`` (its first 64 inputs calibrate, as optimize does), ``--threads``, ``--max-drop 0.01``.
Its pick (``model.onnx``, opened with the session options its record names), onnxruntime's
defaults (QDQ, S8S8, per-tensor, MinMax, calibrated on the same 64 inputs) and fp32 are then
re-timed here, in fresh sessions, in 9 interleaved rounds in rotating order (median of round
medians, and the median of the round-by-round ratios, which a noisy stretch hits on both sides
alike), and scored on the held-out test split. ``extra_info`` carries the ratios, spreads,
accuracies and the recipe optimize chose.
"""

from __future__ import annotations

import json
import os
import statistics
import time

import numpy as np
import onnx
import pytest
from _tasks import TASKS, accuracy_fn, export, splits

import edgefit
from edgefit.passes._recipe import Recipe, Workspace, ort_defaults
from edgefit.passes._recipe_timing import interleaved_timer, paired_ratios

ROUNDS = 9
MAX_DROP = 0.01
CALIBRATION = 64  # what optimize calibrates on (Base.calibration)


def _isa() -> list[str]:
    try:
        from edgefit.targets._host import probe_host

        return probe_host().isa
    except Exception:  # noqa: BLE001 - the record is informative only
        return []


def _range(ratios: list[float]) -> list[float]:
    return [min(ratios), max(ratios)]


def _pick(out) -> tuple[dict, str]:
    """The winner's record and the graph optimization level it is to run at."""
    res = json.loads((out / "results.json").read_text())
    key = res["selection"]["winner"]
    winner = next(c for c in res["candidates"] if c["key"] == key)
    options = (winner.get("artifact") or {}).get("options") or {}
    return winner, str(options.get("graph_optimization_level", "all"))


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("task_name", list(TASKS))
def test_pick_vs_defaults(benchmark, tmp_path, task_name, threads):
    task = TASKS[task_name]
    path = export(task, tmp_path)
    data = splits(task)
    val_x, val_y = data["val"]
    np.savez(tmp_path / "val.npz", x=val_x, y=val_y)
    config = edgefit.OptimizeConfig(out_dir=tmp_path / "out", threads=threads, max_drop=MAX_DROP)
    start = time.perf_counter()
    result = edgefit.optimize(str(path), "host-cpu", data=tmp_path / "val.npz", config=config)
    optimize_s = time.perf_counter() - start
    assert result.ok, result.selection.reason
    winner, level = _pick(tmp_path / "out")
    name = onnx.load(str(path)).graph.input[0].name
    feeds = [{name: val_x[i : i + 1]} for i in range(CALIBRATION)]
    ws = Workspace(path, feeds, lambda p: 0.0, tmp_path / "reference")
    named = {
        "pick": (tmp_path / "out" / "model.onnx", Recipe(precision="fp32", opt_level=level)),
        "defaults": (None, ort_defaults(len(feeds), threads)),
        "fp32": (None, Recipe(precision="fp32", threads=threads)),
    }
    items = [
        (p or ws.build(r), Recipe.from_dict({**r.to_dict(), "threads": threads}))
        for p, r in named.values()
    ]
    timer = interleaved_timer(feeds[0])
    load_before = os.getloadavg()[0]
    timings = benchmark.pedantic(timer, args=(items, ROUNDS), rounds=1, iterations=1)
    t = dict(zip(named, timings))
    load = [load_before, os.getloadavg()[0]]  # other processes on the machine, for the record
    test = accuracy_fn(*data["test"])
    acc = {k: test(p) for k, (p, _) in zip(named, items)}
    search = (winner.get("materialize") or {}).get("recipe_search") or {}
    row = {
        "task": task_name,
        "kind": task.kind,
        "threads": threads,
        "rounds": ROUNDS,
        "isa": _isa(),
        "pick": winner["label"],
        "pick_recipe": search.get("label"),
        "pick_opt_level": level,
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
        "optimize_s": optimize_s,
        "recipe_search_s": search.get("seconds"),
        "loadavg_1min": load,
    }
    benchmark.extra_info.update(row)
    print(f"\n{json.dumps(row)}")
