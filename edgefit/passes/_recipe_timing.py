"""How the recipe search times candidates, and when one counts as faster than another.

Timing runs in this process, between stages that build (nothing is built or scored while a timer
runs). Rounds are interleaved in rotating order; a comparison is paired, round by round, because
on a shared machine the noise comes in stretches that two models timed back to back share.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from edgefit._lazy import lazy_import
from edgefit.passes._recipe import Recipe, session

if TYPE_CHECKING:
    import numpy as np

    from edgefit.calibrate import _measure
    from edgefit.calibrate._measure import Interleaved
else:  # numpy and onnx load only when a search runs: edgefit.passes stays light
    np, _measure = lazy_import("numpy", "edgefit.calibrate._measure")

MAX_ROUNDS = 11
MAX_SPREAD = 0.10
MIN_NOISE = 0.05

# items to time (file, recipe), rounds -> one Interleaved per item, in order
Timer: TypeAlias = "Callable[[Sequence[tuple[Path, Recipe]], int], list[Interleaved]]"


def interleaved_timer(feed: dict | Callable[[Any], dict], *, round_runs: int = 40) -> Timer:
    """The host timer: each item's session (with its recipe's options) timed in interleaved rounds
    whose order rotates by one place each round and reverses every other round (with A B C C B A
    the middle item never followed itself, and two sessions of one file timed up to 1.09× apart),
    a round lasting about ``round_runs`` runs of the slowest item (20 ms to 0.3 s); an item whose
    round medians spread over 10% gets more rounds, up to 11 (noisy points are re-measured).
    ``feed`` is one input dict for every item, or ``feed(session) -> dict`` when the items take
    different inputs (a candidate at another input resolution)."""

    def time_items(items: Sequence[tuple[Path, Recipe]], rounds: int) -> list[Interleaved]:
        sessions = [session(path, recipe) for path, recipe in items]
        feeds = [feed(s) if callable(feed) else feed for s in sessions]
        slowest = 0.0
        for s, f in zip(sessions, feeds):
            for _ in range(3):
                s.run(None, f)
            t0 = time.perf_counter()
            s.run(None, f)
            slowest = max(slowest, time.perf_counter() - t0)
        round_s = min(0.3, max(0.02, round_runs * slowest))
        medians: list[list[float]] = [[] for _ in items]
        pooled: list[list[float]] = [[] for _ in items]
        waits: list[list[float]] = [[] for _ in items]
        gc.collect()

        def one(i: int) -> None:
            samples, wait = _measure.quiet_round(sessions[i], feeds[i], 5, round_s)
            medians[i].append(float(np.median(samples)))
            pooled[i] += samples
            if wait is not None:
                waits[i].append(wait)

        n = len(items)
        for r in range(rounds):  # each item takes each place in the order as often as the others
            order = [(r + k) % n for k in range(n)]
            for i in order if r % 2 == 0 else reversed(order):
                one(i)
        for i in range(len(items)):
            while len(medians[i]) < MAX_ROUNDS and _measure._spread(medians[i]) > MAX_SPREAD:
                one(i)
        return [
            _measure.Interleaved(
                float(np.median(m)),
                tuple(m),
                float(np.percentile(p, 99)),
                len(p),
                max(w, default=None),
            )
            for m, p, w in zip(medians, pooled, waits)
        ]

    return time_items


def paired_ratios(a: Interleaved, b: Interleaved) -> list[float]:
    """``a``'s round median over ``b``'s, round by round (the rounds both were timed in)."""
    return [x / y for x, y in zip(a.round_medians_s, b.round_medians_s) if y > 0]


def unsettled(a: Interleaved, b: Interleaved) -> bool:
    """The median of the paired ratios says ``a`` is faster by more than the bar, but too few
    rounds agree: a comparison worth re-timing with more rounds."""
    ratios = paired_ratios(a, b)
    return bool(ratios) and statistics.median(ratios) < 1 - MIN_NOISE and not faster(a, b)


def faster(a: Interleaved, b: Interleaved) -> bool:
    """``a`` is faster than ``b`` beyond the noise: the median of their paired round ratios is
    under 1 − 5%, and ``a`` was faster in at least 3 of every 4 rounds.

    Paired, because on a shared machine the noise comes in stretches (here: round medians of one
    model jumping between 9 and 11.5 µs): two models timed back to back share a stretch, so their
    ratio is steadier than either median. A round spread is not the noise bar: it only grows with
    more rounds, and above 30% it would declare every pair a tie.
    """
    ratios = paired_ratios(a, b)
    if not ratios:
        return False
    wins = sum(r < 1 for r in ratios)
    return statistics.median(ratios) < 1 - MIN_NOISE and wins >= 0.75 * len(ratios)
