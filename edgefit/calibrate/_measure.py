"""Time small ONNX models in-process with onnxruntime, with the session options `edgefit bench`
uses.

Calibration times hundreds of tiny kernels, so it keeps one process (a child per kernel would cost
more than the kernels); whole-model fidelity runs use the same settings. Like `edgefit bench`, it
defaults to one thread, and repeats a timing whose thread waited for a CPU held by another process
for more than 5% of the time (Linux schedstat), so a busy machine slows calibration rather than
skewing it.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import numpy as np

from edgefit._ort import ort_session
from edgefit.estimate._lower_ort import random_feeds
from edgefit.runtimes import Timing
from edgefit.runtimes._measure import least_disturbed, run_queue_wait_ns

MAX_ATTEMPTS = 8


def default_threads() -> int:
    """One thread, as `edgefit bench` measures by default (repeatable on small shared machines)."""
    return 1


def session(model, threads: int):
    """An onnxruntime CPU session: ``threads`` intra-op threads, sequential, all graph
    optimizations."""
    return ort_session(model, threads)


def feeds_for(sess, seed: int = 0) -> dict[str, np.ndarray]:
    return random_feeds(sess, seed)


def _timed(
    sess, feeds, min_runs: int, budget_s: float, *, collect: bool = True
) -> tuple[list[float], float | None]:
    samples: list[float] = []
    if collect:
        gc.collect()
    gc.disable()
    try:
        waited = run_queue_wait_ns()
        start = time.perf_counter()
        while len(samples) < min_runs or (
            time.perf_counter() - start < budget_s and len(samples) < 2000
        ):
            t0 = time.perf_counter()
            sess.run(None, feeds)
            samples.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - start
        after = run_queue_wait_ns()
    finally:
        gc.enable()
    wait = None if waited is None or after is None else (after - waited) / 1e9 / elapsed
    return samples, wait


def time_session(
    sess, feeds, *, min_runs: int = 20, budget_s: float = 0.25, warmup: int = 5
) -> Timing:
    """At least ``min_runs`` runs, more while inside ``budget_s``, repeated (up to
    :data:`MAX_ATTEMPTS` times) while another process kept this one waiting for a CPU
    (:func:`~edgefit.runtimes._measure.least_disturbed`); the timing's ``p50`` is what a kernel
    costs."""
    for _ in range(warmup):
        sess.run(None, feeds)
    samples, wait = least_disturbed(
        lambda: _timed(sess, feeds, min_runs, budget_s), lambda r: r[1], attempts=MAX_ATTEMPTS
    )
    return Timing.from_samples(samples, cpu_wait_fraction=wait)


def time_model(model, threads: int, **kw) -> Timing:
    sess = session(model, threads)
    return time_session(sess, feeds_for(sess), **kw)


@dataclass(frozen=True)
class Interleaved:
    """One model's latency from interleaved rounds: median of round medians, the rounds' spread,
    and the 99th percentile of every timed run (all rounds pooled; a tail, so it keeps the noisy
    rounds)."""

    median_s: float
    round_medians_s: tuple[float, ...]
    p99_s: float = float("nan")
    runs: int = 0

    @property
    def spread(self) -> float:
        """(slowest − fastest round median) ÷ median."""
        r = self.round_medians_s
        return (max(r) - min(r)) / self.median_s if r and self.median_s else 0.0


def interleaved(
    models: list,
    threads: int,
    *,
    rounds: int = 5,
    round_s: float = 0.08,
    min_runs: int = 5,
    max_spread: float = 0.10,
    max_rounds: int = 11,
) -> list[Interleaved]:
    """Time ``models`` in interleaved rounds (A B C … A B C …), so that a noisy stretch of the
    machine hits every model alike; a model whose round medians spread over ``max_spread`` gets
    more rounds (up to ``max_rounds``): noisy points are re-measured, not kept."""
    sessions = [session(m, threads) for m in models]
    feeds = [feeds_for(s) for s in sessions]
    for s, f in zip(sessions, feeds):
        for _ in range(3):
            s.run(None, f)
    medians: list[list[float]] = [[] for _ in models]
    pooled: list[list[float]] = [[] for _ in models]

    # once: a collection over a large caller's heap costs ~0.1 s, too much for every round
    gc.collect()

    def one_round(i: int) -> None:
        samples, _ = _timed(sessions[i], feeds[i], min_runs, round_s, collect=False)
        medians[i].append(float(np.median(samples)))
        pooled[i] += samples

    n = len(models)
    for r in range(rounds):
        # rotated (A B C, B C A, C A B …): every model takes every position alike; a serpentine
        # A B C C B A would run the middle model twice in a row, warm, every other round
        for k in range(n):
            one_round((r + k) % n)
    for i in range(len(models)):
        while len(medians[i]) < max_rounds and _spread(medians[i]) > max_spread:
            one_round(i)
    return [
        Interleaved(float(np.median(m)), tuple(m), float(np.percentile(p, 99)), len(p))
        for m, p in zip(medians, pooled)
    ]


def _spread(values: list[float]) -> float:
    med = float(np.median(values))
    return (max(values) - min(values)) / med if med else 0.0
