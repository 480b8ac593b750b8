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
from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session
from edgefit.estimate._lower_ort import random_feeds
from edgefit.runtimes import Timing
from edgefit.runtimes._measure import least_disturbed, run_queue_wait_ns

if TYPE_CHECKING:
    import onnx
else:  # only the sentinel is built here
    onnx = lazy_import("onnx")

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


# a round of interleaved timing whose threads waited for a CPU held by another process is timed
# again, at most this many times: a round is a few hundredths of a second to redo
ROUND_ATTEMPTS = 4


def quiet_round(sess, feeds, min_runs: int, round_s: float) -> tuple[list[float], float | None]:
    """One interleaved round, timed again while another process kept this one's threads waiting
    for a CPU (:func:`~edgefit.runtimes._measure.least_disturbed`); the samples and the kept
    round's CPU-wait fraction. With a busy loop on the other core of the 2-core machine, a small
    network's 2-thread rounds waited 61% of their time: such a round says nothing about a quiet
    machine. (A slowdown this process cannot see is the :class:`Sentinel`'s to catch.)"""
    return least_disturbed(
        lambda: _timed(sess, feeds, min_runs, round_s, collect=False),
        lambda r: r[1],
        attempts=ROUND_ATTEMPTS,
    )


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
    # the largest CPU-wait fraction among the kept rounds (None off Linux): above
    # QUIET_CPU_WAIT, every retry of some round found the machine busy
    cpu_wait: float | None = None
    # rounds left out as disturbed (``quiet_only``: over SENTINEL_SLOWDOWN slower than the fastest)
    left_out: int = 0

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
    quiet_only: bool = False,
    min_quiet: int | None = None,
) -> list[Interleaved]:
    """Time ``models`` in interleaved rounds (A B C … A B C …), so that a noisy stretch of the
    machine hits every model alike; a model whose round medians spread over ``max_spread`` gets
    more rounds (up to ``max_rounds``): noisy points are re-measured, not kept.

    ``quiet_only``: a model's rounds over :data:`SENTINEL_SLOWDOWN` slower than its fastest are
    left out (and rounds added until ``min_quiet``, default :data:`MIN_QUIET_ROUNDS`, remain, up
    to ``max_rounds``); the
    median and spread are the remaining rounds'. At 2 threads on the 2-core KVM machine, rounds
    came in two modes, the slow one about 2x (27 µs rounds among 14 µs ones, a 66 µs round among
    27 µs ones), at times for most of a model's rounds, with nothing in this process, the guest's
    counters or a sentinel timed just before and after to show it; one zoo pass had a 50% median
    round spread. Calibration and fidelity both measure the quiet mode, the machine's own speed."""
    sessions = [session(m, threads) for m in models]
    feeds = [feeds_for(s) for s in sessions]
    for s, f in zip(sessions, feeds):
        for _ in range(3):
            s.run(None, f)
    medians: list[list[float]] = [[] for _ in models]
    pooled: list[list[float]] = [[] for _ in models]
    waits: list[list[float]] = [[] for _ in models]

    # once: a collection over a large caller's heap costs ~0.1 s, too much for every round
    gc.collect()

    def one_round(i: int) -> None:
        samples, wait = quiet_round(sessions[i], feeds[i], min_runs, round_s)
        medians[i].append(float(np.median(samples)))
        pooled[i] += samples
        if wait is not None:
            waits[i].append(wait)

    n = len(models)
    for r in range(rounds):
        # rotated (A B C, B C A, C A B …): every model takes every position alike; a serpentine
        # A B C C B A would run the middle model twice in a row, warm, every other round
        for k in range(n):
            one_round((r + k) % n)

    def kept(i: int) -> list[float]:
        return quiet_rounds(medians[i]) if quiet_only else medians[i]

    enough = MIN_QUIET_ROUNDS if min_quiet is None else min_quiet
    for i in range(len(models)):
        while len(medians[i]) < max_rounds and (
            _spread(kept(i)) > max_spread or (quiet_only and len(kept(i)) < enough)
        ):
            one_round(i)
    return [
        Interleaved(
            float(np.median(kept(i))),
            tuple(kept(i)),
            float(np.percentile(p, 99)),
            len(p),
            max(w, default=None),
            len(medians[i]) - len(kept(i)),
        )
        for i, (p, w) in enumerate(zip(pooled, waits))
    ]


# A network timed with several threads at over this times its own 1-thread time is timed again
# (calibration: after the pass, up to calibrate._collect.PASSES times; the fidelity zoo:
# calibrate._host_fidelity.SLOW_MODE_RETRIES times), and its fastest try kept — a disturbance
# only ever slows a run down. On the Zen 5 VM the host has a slow mode for multi-thread runs that
# nothing on the guest shows, the sentinel included (too small to wake the second thread): a
# whole calibration's 2-thread pass ran 1.46× the quiet timings at the median, and 40% of its
# networks took over 1.2× their 1-thread time, against 0.3% in a quiet pass (a second thread
# hardly ever makes onnxruntime slower there); a 2-thread zoo pass ran twice its quiet times.
SLOW_MODE_RATIO = 1.2

# at least this many quiet rounds make a ``quiet_only`` timing (while ``max_rounds`` allows)
MIN_QUIET_ROUNDS = 3


def quiet_rounds(medians: list[float]) -> list[float]:
    """The round medians within :data:`SENTINEL_SLOWDOWN` of the fastest, in order."""
    floor = min(medians)
    return [m for m in medians if m <= floor * (1 + SENTINEL_SLOWDOWN)]


def _spread(values: list[float]) -> float:
    med = float(np.median(values))
    return (max(values) - min(values)) / med if med else 0.0


# -- the sentinel: how fast the machine is right now ----------------------------------------------
# a timing taken while the sentinel ran this much over its quiet time is taken again (and a
# ``quiet_only`` round this much over the model's fastest is left out)
SENTINEL_SLOWDOWN = 0.2


def sentinel_model():
    """A small fixed network (six 3×3 convolutions over 16 channels of 16×16, seeded weights):
    ~15 µs a run here, mostly the per-operator hand-offs between onnxruntime's threads that a
    disturbed machine slows most."""
    helper, numpy_helper, TensorProto = onnx.helper, onnx.numpy_helper, onnx.TensorProto
    rng = np.random.default_rng(0)
    nodes, inits, x = [], [], "x"
    for i in range(6):
        w = (rng.standard_normal((16, 16, 3, 3)) * 0.1).astype(np.float32)
        inits.append(numpy_helper.from_array(w, f"w{i}"))
        nodes += [
            helper.make_node("Conv", [x, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
            helper.make_node("Relu", [f"c{i}"], [f"r{i}"]),
        ]
        x = f"r{i}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["y"]))
    graph = helper.make_graph(
        nodes,
        "sentinel",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 1, 1])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


class Sentinel:
    """Times :func:`sentinel_model` at ``threads``: before and after each measurement, so that the
    measurement can be judged afterwards against how fast the sentinel ran when the machine was
    quiet.

    On the 2-core KVM machine of session 11 (AMD EPYC Zen 5), 2-thread timings had slow stretches
    — from a tenth of a second to several seconds — in which small networks took 1.5-2x their
    time, with neither this process nor the guest's CPU counters showing another task (no
    run-queue wait, no steal): the host's doing. A calibration that fell into one kept random
    networks' 2-thread times at up to 2x, and its fit carried them into every 2-thread estimate.
    The run-queue guard cannot see such a stretch; a sentinel slow around a network catches the
    longer ones. It misses a round-by-round switch between the modes (it stayed fast around the
    slow rounds of one zoo pass): that is ``interleaved(quiet_only=True)``'s to leave out."""

    def __init__(self, threads: int, budget_s: float = 0.02) -> None:
        self.sess = session(sentinel_model(), threads)
        self.feeds = feeds_for(self.sess)
        self.budget_s = budget_s
        for _ in range(20):
            self.sess.run(None, self.feeds)

    def time(self) -> float:
        """Median seconds of the sentinel now (``budget_s`` of runs)."""
        samples, _ = _timed(self.sess, self.feeds, 5, self.budget_s, collect=False)
        return float(np.median(samples))
