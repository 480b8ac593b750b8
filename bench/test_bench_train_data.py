"""With training data, what `edgefit optimize` picks (pruning or a swap, then int8) against
onnxruntime's quantize_static defaults on the unchanged model (#16 acceptance: <= 0.5x the
defaults' p50 at <= 1 point).

Not part of CI's benchmark gate: each run retrains candidates (2-4 minutes on 2 cores). Run it on a
quiet machine:

    .venv/bin/python -m pytest bench/test_bench_train_data.py -q -s

Two cases:
* ``digits-cnn``: the built-in example, trained on its own data (swaps and channel pruning with
  torch-pruning);
* ``digits-dscnn-onnx``: the depthwise CNN of bench/_tasks.py as an ONNX file with ``--train-data``
  (channel pruning on the ONNX graph, recovered by fine-tuning).

The pick (``model.onnx``), the defaults (QDQ, S8S8, per-tensor, MinMax on 64 validation inputs) and
fp32 are re-timed here in fresh sessions, 9 interleaved rounds in rotating order at 1 thread, and
scored on the held-out test split.
"""

from __future__ import annotations

import json
import os
import statistics

import numpy as np
import onnx
import pytest
from _tasks import TASKS, export, splits

import edgefit
from edgefit.passes._recipe import Recipe, Workspace, ort_defaults
from edgefit.passes._recipe_timing import interleaved_timer, paired_ratios
from edgefit.search._base import resize_inputs

ROUNDS = 9
THREADS = 1
CALIBRATION = 64


def _digits_cnn(folder):
    """The built-in example as it ships (pretrained on the digits), exported to ONNX, and its
    splits at the example's resolution."""
    from edgefit.examples import get_example, load_digits_splits
    from edgefit.graph._torch import export_torch

    spec = get_example("digits-cnn")
    path = folder / "digits-cnn.onnx"
    onnx.save(export_torch(spec.build(pretrained=True).eval(), spec.input_shape), str(path))
    return path, load_digits_splits(spec.input_shape[-1]), {"model": "digits-cnn"}


def _dscnn_onnx(folder):
    task = TASKS["digits-dscnn"]
    path = export(task, folder)
    data = splits(task)
    np.savez(folder / "train.npz", x=data["train"][0], y=data["train"][1])
    np.savez(folder / "val.npz", x=data["val"][0], y=data["val"][1])
    args = {"model": str(path), "data": folder / "val.npz", "train_data": folder / "train.npz"}
    return path, data, args


CASES = {"digits-cnn": _digits_cnn, "digits-dscnn-onnx": _dscnn_onnx}


def _accuracy(path, x, y) -> float:
    """Top-1 on ``(x, y)``, the inputs resized to the model's own resolution (a swap's pick)."""
    from edgefit._ort import ort_session

    sess = ort_session(path, 1)
    inp = sess.get_inputs()[0]
    shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
    xs = resize_inputs(x, (len(x), *shape[1:]))
    hits = sum(int(np.argmax(sess.run(None, {inp.name: xs[i : i + 1]})[0]) == y[i]) for i in range(len(x)))
    return hits / len(x)


@pytest.mark.parametrize("case", list(CASES))
def test_pick_with_training_data_vs_defaults(benchmark, tmp_path, case):
    fp32_path, data, args = CASES[case](tmp_path)
    config = edgefit.OptimizeConfig(out_dir=tmp_path / "out", threads=THREADS, max_drop=0.01)
    result = edgefit.optimize(args.pop("model"), "host-cpu", config=config, **args)
    assert result.ok, result.selection.reason
    res = json.loads((tmp_path / "out" / "results.json").read_text())
    winner = next(c for c in res["candidates"] if c["key"] == res["selection"]["winner"])
    level = ((winner.get("artifact") or {}).get("options") or {}).get(
        "graph_optimization_level", "all"
    )
    val_x = data["val"][0]
    name = onnx.load(str(fp32_path)).graph.input[0].name
    feeds = [{name: val_x[i : i + 1]} for i in range(CALIBRATION)]
    ws = Workspace(fp32_path, feeds, lambda p: 0.0, tmp_path / "reference")
    defaults = ort_defaults(len(feeds), THREADS)
    named = {
        "pick": (tmp_path / "out" / "model.onnx", Recipe(precision="fp32", opt_level=level)),
        "defaults": (ws.build(defaults), defaults),
        "fp32": (fp32_path, Recipe(precision="fp32")),
    }
    items = [
        (path, Recipe.from_dict({**recipe.to_dict(), "threads": THREADS}))
        for path, recipe in named.values()
    ]
    load_before = os.getloadavg()[0]
    def feed(session) -> dict:  # the pick may take another input resolution (a swap)
        inp = session.get_inputs()[0]
        shape = tuple(d if isinstance(d, int) else 1 for d in inp.shape)
        return {inp.name: resize_inputs(val_x[:1], shape)}

    timings = benchmark.pedantic(
        interleaved_timer(feed), args=(items, ROUNDS), rounds=1, iterations=1
    )
    t = dict(zip(named, timings))
    acc = {k: _accuracy(path, *data["test"]) for k, (path, _) in zip(named, items)}
    row = {
        "case": case,
        "threads": THREADS,
        "rounds": ROUNDS,
        "pick": winner["label"],
        "p50_us": {k: v.median_s * 1e6 for k, v in t.items()},
        "spread": {k: v.spread for k, v in t.items()},
        "pick_over_defaults": t["pick"].median_s / t["defaults"].median_s,
        "paired_pick_over_defaults": statistics.median(paired_ratios(t["pick"], t["defaults"])),
        "pick_over_fp32": t["pick"].median_s / t["fp32"].median_s,
        "test_accuracy": acc,
        "drop_points_vs_fp32": 100 * (acc["fp32"] - acc["pick"]),
        "drop_points_vs_defaults": 100 * (acc["defaults"] - acc["pick"]),
        "loadavg_1min": [load_before, os.getloadavg()[0]],
        "materialized": res["counts"]["materialized"],
    }
    benchmark.extra_info.update(row)
    print(f"\n{json.dumps(row)}")
