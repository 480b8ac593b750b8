"""Time the corpus on this machine: every kernel of each network in-network (onnxruntime's
profiler), and the whole network without the profiler, at each thread count, with the guards that
keep a disturbed machine's timings out (see :func:`collect`). :mod:`edgefit.calibrate._learn`
fits the kernel costs on what this measures; the timings are stored beside the profile
(:func:`runs_to_dict`), so a refit never needs the machine again."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefit.calibrate._measure import SENTINEL_SLOWDOWN, SLOW_MODE_RATIO, Sentinel, interleaved
from edgefit.estimate._learned import precision_class
from edgefit.estimate._lower_ort import Lowered, lower, lowered_from_dict, lowered_to_dict
from edgefit.runtimes import _measure as _runtime_measure

Progress = Callable[[str, int, int], None]


@dataclass
class ModelRun:
    """One network in one recipe at one thread count: its lowered kernels (with times) and its
    whole-model latency measured without the profiler."""

    name: str
    family: str
    recipe: str
    threads: int
    lowered: Lowered
    measured_s: float
    spread: float = 0.0
    # the CPU-wait fraction of its whole-run rounds, after retries; None where not recorded (off
    # Linux, or stored before it was). The profiled kernel runs are too short to tell: at 2
    # threads, a few ms of them showed up to 90% "wait" with nothing else running — the worker
    # thread's wake-up on the other CPU counts as waiting; the sentinel brackets them instead
    cpu_wait: float | None = None
    # how much slower than its quiet time the sentinel ran around the kept (fastest) try; None
    # where not recorded
    slowdown: float | None = None

    @property
    def disturbed(self) -> bool:
        """Timed on a disturbed machine through every retry: another process held a CPU its
        threads waited for, or the sentinel ran slow."""
        return _waited(self) or (self.slowdown is not None and self.slowdown > SENTINEL_SLOWDOWN)

    @property
    def precision(self) -> str:
        return precision_class(self.lowered)


# a network timed while the sentinel ran over SENTINEL_SLOWDOWN slower than its quiet time is
# timed again, up to PASSES times in all, and the fastest try is kept (see
# calibrate._measure.Sentinel)
PASSES = 3
# the sentinel's quiet time: this quantile of its times over the pass (a slow stretch is the
# exception; if most of a pass was slow, little is flagged, and the record shows the slowdowns)
QUIET_QUANTILE = 0.1


def collect(
    items: list[tuple[str, str, str, Path]],
    threads_list: tuple[int, ...],
    *,
    runs: int = 30,
    progress: Progress | None = None,
) -> list[ModelRun]:
    """Lower and time each ``(name, family, recipe, onnx path)`` at each thread count; a network
    timed while the machine was disturbed (the sentinel slow, this process waiting for a CPU, or
    several threads over :data:`SLOW_MODE_RATIO` times its 1-thread time) is timed again after
    the pass, and its fastest try is kept."""
    out: list[ModelRun] = []
    total = len(items) * len(threads_list)
    step = 0
    one_thread: dict[int, float] = {}  # item → its whole-run time at 1 thread
    for threads in sorted(threads_list):
        sentinel = Sentinel(threads)
        kept: dict[int, tuple[ModelRun, float]] = {}  # item → its fastest try, sentinel s
        todo = list(range(len(items)))
        for attempt in range(PASSES):
            for k, i in enumerate(todo):
                name, family, recipe, path = items[i]
                if progress:
                    again = f" (again: {k + 1} of {len(todo)} disturbed)" if attempt else ""
                    progress(f"{name} {recipe} @{threads}t{again}", step, total)
                if not attempt:
                    step += 1
                timed = _measure_one(items[i], threads, runs, sentinel)
                if timed is not None and (
                    i not in kept or timed[0].measured_s < kept[i][0].measured_s
                ):
                    kept[i] = timed
            if not kept:
                break
            quiet = float(np.quantile([s for _, s in kept.values()], QUIET_QUANTILE))
            todo = [
                i
                for i, (run, s) in sorted(kept.items())
                if s > quiet * (1 + SENTINEL_SLOWDOWN)
                or _waited(run)
                or (threads > 1 and run.measured_s > SLOW_MODE_RATIO * one_thread.get(i, np.inf))
            ]
            if not todo:
                break
        if threads == 1:
            one_thread = {i: run.measured_s for i, (run, _) in kept.items()}
        out += [
            dataclasses.replace(run, slowdown=s / quiet - 1)
            for _, (run, s) in sorted(kept.items())
        ]
    return out


def _waited(run: ModelRun) -> bool:
    return run.cpu_wait is not None and run.cpu_wait > _runtime_measure.QUIET_CPU_WAIT


def _measure_one(
    item: tuple[str, str, str, Path], threads: int, runs: int, sentinel: Sentinel
) -> tuple[ModelRun, float] | None:
    """One network's kernels and whole run, between two sentinel timings: the run and the slower
    sentinel time (None: onnxruntime refused the network)."""
    name, family, recipe, path = item
    before = sentinel.time()
    try:
        low = lower(str(path), threads=threads, runs=runs, warmup=3)
    # onnxruntime refuses a rare random draw: skip it, do not stop  # noqa: BLE001
    except Exception:
        return None
    whole = interleaved(
        [str(path)], threads, rounds=3, round_s=0.05, max_rounds=5, quiet_only=True
    )[0]
    after = sentinel.time()
    run = ModelRun(
        name, family, recipe, threads, low, whole.median_s, whole.spread, whole.cpu_wait
    )
    return run, max(before, after)


def runs_to_dict(runs: list[ModelRun]) -> list[dict]:
    return [
        {
            "name": r.name,
            "family": r.family,
            "recipe": r.recipe,
            "threads": r.threads,
            "measured_s": r.measured_s,
            "spread": r.spread,
            "cpu_wait": r.cpu_wait,
            "slowdown": r.slowdown,
            "lowered": lowered_to_dict(r.lowered),
        }
        for r in runs
    ]


def runs_from_dict(rows: list[dict]) -> list[ModelRun]:
    return [
        ModelRun(
            str(d["name"]),
            str(d["family"]),
            str(d["recipe"]),
            int(d["threads"]),
            lowered_from_dict(d["lowered"]),
            float(d["measured_s"]),
            float(d.get("spread", 0.0)),
            None if d.get("cpu_wait") is None else float(d["cpu_wait"]),
            None if d.get("slowdown") is None else float(d["slowdown"]),
        )
        for d in rows
    ]
