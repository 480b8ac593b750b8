"""CLI start-up: how long `edgefit` takes to answer, as a ratio to `python -c pass` (issue #14, "fast start").

edgefit runs as a CI gate once per model and per pull request, so the time before a command does
anything counts. Goals on a 2-core machine: `edgefit --version`, `targets list` and `targets show orin`
≤ 0.5 s; `inspect` of a small model ≤ 1 s. A shared CI runner cannot promise absolute times, so CI
compares each command's time over the interpreter's own start (`python -c pass`, timed alongside) with
bench/baseline.json; the absolute medians and the children's CPU seconds are recorded as well.

Each command is a fresh process, as a user runs it. The commands run interleaved — every round runs
each of them ``REPEATS`` times in turn, the order rotating between rounds — so load from other processes
hits all of them alike. A command's time is the median of its round medians; its ratio is the median of
the per-round ratios (command / `python -c pass` in the same round).
"""

from __future__ import annotations

import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from onnx import TensorProto, helper, numpy_helper, save

ROUNDS = 7
REPEATS = 3  # runs of each command per round; the round's median is taken


def _edgefit() -> list[str]:
    """The installed `edgefit` script beside this interpreter (what users run), else `python -m edgefit.cli`."""
    script = Path(sys.executable).with_name("edgefit")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "edgefit.cli"]


def _tiny_onnx(path: Path) -> Path:
    """A two-node model (MatMul, Relu): `inspect` of it is all start-up, almost no counting."""
    import numpy as np

    weight = numpy_helper.from_array(np.ones((16, 8), np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"], name="fc"), helper.make_node("Relu", ["h"], ["y"], name="relu")],
        "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8])], initializer=[weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    save(model, str(path))
    return path


@pytest.fixture(scope="module")
def commands(tmp_path_factory) -> dict[str, list[str]]:
    model = _tiny_onnx(tmp_path_factory.mktemp("startup") / "tiny.onnx")
    edgefit = _edgefit()
    return {
        "python": [sys.executable, "-c", "pass"],
        "version": [*edgefit, "--version"],
        "targets_list": [*edgefit, "targets", "list"],
        "targets_show": [*edgefit, "targets", "show", "orin"],
        "inspect_tiny": [*edgefit, "inspect", str(model)],
    }


def _run(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child) for one run; a failing command fails the benchmark."""
    env = {**os.environ, "COLUMNS": "120"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}: {done.stderr.decode()[-500:]}"
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _rounds(commands: dict[str, list[str]]) -> list[dict[str, tuple[float, float]]]:
    """Per round, each command's median (wall, CPU) over ``REPEATS`` interleaved runs."""
    names = list(commands)
    out = []
    for r in range(ROUNDS):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate: nobody always runs first
        walls: dict[str, list[float]] = {n: [] for n in names}
        cpus: dict[str, list[float]] = {n: [] for n in names}
        for _ in range(REPEATS):
            for name in order:
                wall, cpu = _run(commands[name])
                walls[name].append(wall)
                cpus[name].append(cpu)
        out.append({n: (statistics.median(walls[n]), statistics.median(cpus[n])) for n in names})
    return out


def test_startup_interleaved(benchmark, commands):
    for argv in commands.values():  # warm-up: bytecode caches, the OS page cache, the example/target caches
        _run(argv)
    load_before = os.getloadavg()[0]
    rounds = benchmark.pedantic(_rounds, args=(commands,), rounds=1, iterations=1)
    info: dict[str, object] = {"rounds": ROUNDS, "repeats": REPEATS, "cpu_count": os.cpu_count(),
                               "machine": platform.machine(), "python": platform.python_version(),
                               "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}
    lines = []
    for name in commands:
        wall = statistics.median(r[name][0] for r in rounds)
        cpu = statistics.median(r[name][1] for r in rounds)
        info[f"{name}_s"], info[f"{name}_cpu_s"] = wall, cpu
        if name != "python":
            ratio = statistics.median(r[name][0] / r["python"][0] for r in rounds)
            info[f"{name}_over_python"] = ratio
            lines.append(f"{name:14} {wall:6.3f} s wall  {cpu:6.3f} s CPU  {ratio:5.1f}× python -c pass")
    benchmark.extra_info.update(info)
    print(f"\nstart-up, median of {ROUNDS} round medians ({REPEATS} runs each), load average "
          f"{info['load_average']}: python -c pass {info['python_s']:.3f} s wall\n" + "\n".join(lines))
