"""Runtime measurement repeatability: resnet18's p50 on onnxruntime, measured twice, within 5 %.

Acceptance (issue #4): "`edgefit bench --example resnet18 --runtime onnxruntime` p50 repeats within 5 %
between two runs". On a shared 2-core machine a wall-clock figure moves with whatever else runs, so
each measurement here is made as robust as the library allows, and the recipe is the one to use
for any figure that must repeat:

* one intra-op thread, pinned to one CPU (a thread pool whose threads are descheduled at random
  waits at every barrier; one pinned thread only loses its own time slices);
* every batch in a fresh child process, warm-up discarded, ``RUNS_PER_BATCH`` timed runs;
* only quiet batches count: the child reports the share of time its threads spent runnable but
  waiting for a CPU held by another process (``Timing.cpu_wait_fraction``, from the Linux scheduler);
  a batch above ``QUIET`` (5 %) measured the neighbours as much as the model and is repeated, up to
  ``MAX_BATCHES`` batches per measurement;
* a measurement's p50 is the median of ``BATCHES`` quiet batch p50s.

The policy selects on the scheduler's record of interference, never on the latency itself, so it
cannot favour fast batches. On this project's shared 2-core machine other jobs often hold both cores
for tens of seconds at a time (CPU wait 30 %+, p50 up by half); without the quiet-batch rule two runs
then differ by up to 50 %.

The figures (both p50s, their batch p50s, the fp32 and int8 p50s) land in pytest-benchmark's
``extra_info``, i.e. in ``.benchmarks/latest.json`` under ``make bench``.
"""

from __future__ import annotations

import os
import statistics

import pytest

from edgefit.runtimes import get_runtime

EXAMPLE = "resnet18"
BATCHES = 5
MAX_BATCHES = 60
QUIET = 0.05
RUNS_PER_BATCH = 40
WARMUP = 5
TOLERANCE = 0.05


def _cpu() -> tuple[int, ...] | None:
    if not hasattr(os, "sched_getaffinity"):
        return None
    return (sorted(os.sched_getaffinity(0))[-1],)  # the last CPU: the first one takes most interrupts


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    from edgefit.graph._examples import example_onnx_path

    rt = get_runtime("onnxruntime")
    model = example_onnx_path(EXAMPLE)
    out = tmp_path_factory.mktemp("artifacts")
    return {p: rt.convert(model, p, out) for p in ("fp32", "int8")}


def robust_p50(artifact) -> tuple[float, list[tuple[float, float | None]]]:
    """Median of ``BATCHES`` quiet batch p50s (s); also every batch's (p50, CPU-wait share)."""
    rt = get_runtime("onnxruntime")
    quiet: list[float] = []
    seen: list[tuple[float, float | None]] = []
    while len(quiet) < BATCHES and len(seen) < MAX_BATCHES:
        t = rt.measure(artifact, warmup=WARMUP, runs=RUNS_PER_BATCH, min_runs=RUNS_PER_BATCH, threads=1, cpus=_cpu())
        seen.append((t.p50, t.cpu_wait_fraction))
        if t.cpu_wait_fraction is None or t.cpu_wait_fraction <= QUIET:
            quiet.append(t.p50)
    if len(quiet) < BATCHES:
        pytest.fail(f"the machine never went quiet: {len(quiet)} of {len(seen)} batches had CPU wait ≤ {QUIET:.0%} "
                    f"({_waits(seen)}); other processes held the CPUs throughout")
    return statistics.median(quiet), seen


def _waits(batches) -> str:
    waits = [w for _, w in batches if w is not None]
    if not waits:
        return f"{len(batches)} batches, CPU wait unknown"
    quiet = sum(w <= QUIET for w in waits)
    return f"{quiet} quiet of {len(batches)} batches, CPU wait {min(waits):.0%}–{max(waits):.0%}"


def test_resnet18_p50_repeats_within_5_percent(benchmark, artifacts):
    def two_runs():
        return robust_p50(artifacts["fp32"]), robust_p50(artifacts["fp32"])

    (first, first_batches), (second, second_batches) = benchmark.pedantic(two_runs, rounds=1, iterations=1)
    spread = abs(first - second) / min(first, second)
    benchmark.extra_info.update({
        "example": EXAMPLE, "precision": "fp32", "threads": 1, "cpus": _cpu(), "unit": "s",
        "p50_first": first, "p50_second": second, "spread": spread,
        "batches_first": first_batches, "batches_second": second_batches, "quiet_threshold": QUIET,
    })
    print(f"\n{EXAMPLE} fp32 p50, measured on onnxruntime, 1 thread: {first * 1e3:.2f} ms "
          f"({_waits(first_batches)}) then {second * 1e3:.2f} ms ({_waits(second_batches)}): {spread:.1%} apart")
    assert spread <= TOLERANCE, f"p50 {first * 1e3:.2f} ms vs {second * 1e3:.2f} ms: {spread:.1%} apart"


def test_resnet18_fp32_vs_int8(benchmark, artifacts):
    """Records fp32 and int8 (static QDQ) p50 side by side; asserts parity, not a speed-up (measure, never assume)."""
    def both():
        return {p: robust_p50(a)[0] for p, a in artifacts.items()}

    p50 = benchmark.pedantic(both, rounds=1, iterations=1)
    parity = artifacts["int8"].metadata["parity"]
    benchmark.extra_info.update({"example": EXAMPLE, "threads": 1, "unit": "s", "p50_fp32": p50["fp32"],
                                 "p50_int8": p50["int8"], "speedup_int8": p50["fp32"] / p50["int8"],
                                 "int8_parity": parity})
    print(f"\n{EXAMPLE} p50, measured on onnxruntime, 1 thread: fp32 {p50['fp32'] * 1e3:.2f} ms, "
          f"int8 {p50['int8'] * 1e3:.2f} ms ({p50['fp32'] / p50['int8']:.2f}×); int8 parity {parity}")
    assert parity["sqnr_db"] > 15 and parity["top1_agreement"] >= 0.75
