"""The frontier and the pick: Pareto set of (accuracy ↑, latency ↓) and the selection rule.

On a measured target the pick uses the final interleaved re-measurement of the leaders
(:func:`edgefit.search._final.remeasure_leaders`) when there is one: first measurements are taken
one candidate at a time while the machine's load drifts, so two candidates a few percent apart
there may be in either order. Final medians within each other's noise are a tie, and a tie goes to
the smaller change, which is cheaper to ship (fewer certification triggers, then fewer passes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from edgefit.iteration import select_by_deadline
from edgefit.records import (
    DoneCandidate,
    FailedCandidate,
    ProtocolRecord,
    Tie,
    TimingRecord,
    candidate_record,
)

TIE_MIN = 0.03  # medians closer than this (relative) are a tie even when both spreads are smaller
TRIM_FROM = 7  # a candidate with this many rounds or more is judged without its two extremes
TIE_RULE = (
    "final medians that differ by less than the larger of the two candidates' spreads (and at "
    f"least {TIE_MIN:.0%}) are a tie, a spread over {TRIM_FROM} or more rounds leaving out the "
    "slowest and the fastest round; a tie with the fastest goes to the smaller change: fewer "
    "certification triggers, then fewer passes, then the faster median"
)
Candidates = Iterable[DoneCandidate | FailedCandidate | Mapping[str, Any]]


def records(candidates: Candidates) -> list[DoneCandidate | FailedCandidate]:
    """``candidates`` as typed records (results.json ``candidates`` entries are read as such)."""
    return [
        c if isinstance(c, (DoneCandidate, FailedCandidate)) else candidate_record(c)
        for c in candidates
    ]


def finished(candidates: Candidates) -> list[DoneCandidate]:
    return [c for c in records(candidates) if isinstance(c, DoneCandidate)]


def latency_of(c: DoneCandidate) -> float:
    return c.latency.p50_s


def frontier(candidates: Candidates) -> list[DoneCandidate]:
    """Finished candidates that fit the envelope (all finished ones if none fits) and that no other
    such candidate beats on both accuracy and latency."""
    done = finished(candidates)
    done = [c for c in done if c.fits] or done
    out = []
    for c in done:
        a, t = c.accuracy.value, latency_of(c)
        if not any(
            o.accuracy.value >= a
            and latency_of(o) <= t
            and (o.accuracy.value > a or latency_of(o) < t)
            for o in done
        ):
            out.append(c)
    return sorted(out, key=latency_of)


def accuracy_floor(base_accuracy: float, *, max_drop: float, relative: bool) -> float:
    """The accuracy a candidate must keep.

    >>> absolute = accuracy_floor(0.99, max_drop=0.01, relative=False)
    >>> round(absolute, 4), accuracy_floor(1.0, max_drop=0.1, relative=True)
    (0.98, 0.9)
    """
    return base_accuracy * (1 - max_drop) if relative else base_accuracy - max_drop


def eligible(candidates: Candidates, floor: float) -> list[DoneCandidate]:
    """Finished candidates that fit the envelope and keep accuracy ≥ ``floor``."""
    return [c for c in finished(candidates) if c.fits and c.accuracy.value >= floor - 1e-12]


def passes(c: DoneCandidate) -> int:
    """How many passes built the candidate (swap, prune, recover, quantize, torchao)."""
    return c.passes


@dataclass(frozen=True)
class FinalTiming:
    """One candidate's final figures: interleaved rounds with the other leaders (see
    ``interleaved``)."""

    key: str
    median_s: float  # median of the round medians
    round_medians_s: tuple[float, ...]
    p99_s: float
    runs: int
    first_p50_s: float  # the candidate's first measurement, kept for comparison
    certification_triggers: tuple[
        str, ...
    ]  # its change kinds that trigger the target's certification loop
    passes: int
    baseline: bool = False
    # rounds left out as the machine's slow mode (over 20% slower than the candidate's fastest;
    # see calibrate._measure.interleaved's quiet_only); its figures are the quiet rounds'
    rounds_left_out: int = 0

    @property
    def spread(self) -> float:
        """(slowest − fastest round median) ÷ median."""
        r = self.round_medians_s
        return (max(r) - min(r)) / self.median_s if r and self.median_s else 0.0

    @property
    def noise(self) -> float:
        """The spread a tie is judged on: :attr:`spread`, less the slowest and the fastest round
        once there are :data:`TRIM_FROM` or more. A candidate gets extra rounds because its rounds
        spread, and one stalled round (a neighbour's burst: 170 µs among rounds of 101 µs) must
        not make a 40% gap a tie."""
        r = sorted(self.round_medians_s)
        if len(r) >= TRIM_FROM:
            r = r[1:-1]
        return (r[-1] - r[0]) / self.median_s if r and self.median_s else 0.0

    def to_dict(self) -> dict:
        return {
            "key": self.key,
            "median_s": self.median_s,
            "round_medians_s": list(self.round_medians_s),
            "rounds": len(self.round_medians_s),
            "spread": self.spread,
            "p99_s": self.p99_s,
            "runs": self.runs,
            "first_p50_s": self.first_p50_s,
            "certification_triggers": list(self.certification_triggers),
            "passes": self.passes,
            "baseline": self.baseline,
            "rounds_left_out": self.rounds_left_out,
        }

    @classmethod
    def of(cls, r: TimingRecord) -> FinalTiming:
        """The timing of a ``selection.protocol.candidates`` entry (derived fields ignored)."""
        return cls(
            key=r.key,
            median_s=r.median_s,
            round_medians_s=tuple(r.round_medians_s),
            p99_s=r.p99_s,
            runs=r.runs or 0,
            first_p50_s=r.median_s if r.first_p50_s is None else r.first_p50_s,
            certification_triggers=tuple(r.certification_triggers or ()),
            passes=r.passes or 0,
            baseline=bool(r.baseline),
            rounds_left_out=r.rounds_left_out or 0,
        )


@dataclass(frozen=True)
class Protocol:
    """How the leaders were re-measured at the end of a run, and their figures
    (``selection.protocol``)."""

    # at least this many rounds each; more for a candidate whose rounds spread over max_spread
    rounds: int
    max_rounds: int
    max_spread: float
    round_s: float
    threads: int
    settle_s: float
    timings: tuple[FinalTiming, ...]
    cpu_wait_fraction: float | None = (
        None  # share of the timing this process waited for a CPU (Linux)
    )
    method: str = "interleaved"

    def timing(self, key: str) -> FinalTiming | None:
        return next((t for t in self.timings if t.key == key), None)

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            "rounds": self.rounds,
            "max_rounds": self.max_rounds,
            "max_spread": self.max_spread,
            "round_s": self.round_s,
            "threads": self.threads,
            "settle_s": self.settle_s,
            "cpu_wait_fraction": self.cpu_wait_fraction,
            "candidates": [t.to_dict() for t in self.timings],
        }

    @classmethod
    def of(cls, r: ProtocolRecord) -> Protocol:
        """The protocol of a results.json ``selection.protocol`` block (its ties and rule are the
        selection's: :class:`~edgefit.search.Selection`)."""
        return cls(
            rounds=r.rounds,
            max_rounds=r.rounds if r.max_rounds is None else r.max_rounds,
            max_spread=r.max_spread or 0.0,
            round_s=r.round_s or 0.0,
            threads=r.threads,
            settle_s=r.settle_s or 0.0,
            timings=tuple(FinalTiming.of(t) for t in r.candidates),
            cpu_wait_fraction=r.cpu_wait_fraction,
            method=r.method,
        )


def within_noise(a: FinalTiming, b: FinalTiming) -> tuple[bool, float, float]:
    """Whether ``a`` and ``b`` tie, their relative difference (to the faster) and the noise it is
    held to.

    >>> f = lambda k, m: FinalTiming(k, m, (m * 0.98, m, m * 1.02), m, 10, m, (), 0)
    >>> within_noise(f("a", 1.0), f("b", 1.02))[0], within_noise(f("a", 1.0), f("b", 1.2))[0]
    (True, False)
    """
    fast = min(a.median_s, b.median_s)
    diff = abs(a.median_s - b.median_s) / fast if fast > 0 else float("inf")
    noise = max(a.noise, b.noise, TIE_MIN)
    return diff < noise, diff, noise


def change_size(t: FinalTiming) -> tuple[int, int, float]:
    """The order a tie is broken in: fewer certification triggers, then fewer passes, then
    faster."""
    return len(t.certification_triggers), t.passes, t.median_s


def _final_pick(
    pool: list[DoneCandidate], protocol: Protocol
) -> tuple[DoneCandidate, tuple[Tie, ...]] | None:
    timed = [(c, t) for c in pool if (t := protocol.timing(c.key)) is not None]
    if not timed:
        return None
    fastest = min(timed, key=lambda ct: ct[1].median_s)
    group, ties = [fastest], []
    for c, t in timed:
        if c is fastest[0]:
            continue
        tie, diff, noise = within_noise(t, fastest[1])
        if tie:
            group.append((c, t))
            ties.append((c.key, diff, noise))
    winner = min(group, key=lambda ct: change_size(ct[1]))[0]
    return winner, tuple(
        Tie.model_validate(
            {"key": k, "with": fastest[0].key, "difference": d, "noise": n, "winner": winner.key}
        )
        for k, d, n in ties
    )


@dataclass(frozen=True)
class Pick:
    winner: DoneCandidate | None
    floor: float  # the accuracy floor the winner had to meet
    eligible: int
    reason: str  # why nothing qualified, when nothing did
    best_found: DoneCandidate | None  # the closest candidate when nothing qualified
    # candidates found within the fastest one's noise (final pick)
    ties: tuple[Tie, ...] = field(default=())


def pick(
    candidates: Candidates,
    base_accuracy: float,
    *,
    max_drop: float,
    relative: bool,
    select: str,
    protocol: Protocol | None = None,
) -> Pick:
    """Among finished candidates that fit the envelope and keep accuracy ≥ the floor: the fastest
    (``latency``, default), the most accurate (``accuracy``), or the best projected at the deadline
    (``deadline``).

    With a ``protocol`` (the final re-measurement), ``latency`` picks among the re-measured
    candidates by their final medians, with ties (:data:`TIE_RULE`) going to the smaller change.
    """
    floor = accuracy_floor(base_accuracy, max_drop=max_drop, relative=relative)
    done = finished(candidates)
    pool = eligible(done, floor)
    if pool:
        ties: tuple[Tie, ...] = ()
        if select == "accuracy":
            winner = max(pool, key=lambda c: (c.accuracy.value, -latency_of(c)))
        elif select == "deadline":
            projections = [c.iteration.to_dict() for c in pool]
            top = select_by_deadline(projections)
            winner = next(c for c, p in zip(pool, projections) if p is top)
        elif protocol is not None and (final := _final_pick(pool, protocol)) is not None:
            winner, ties = final
        else:
            winner = min(pool, key=lambda c: (latency_of(c), -c.accuracy.value))
        return Pick(winner, floor, len(pool), "", None, ties)
    fitting = [c for c in done if c.fits]
    accurate = [c for c in done if c.accuracy.value >= floor - 1e-12]
    if not done:
        reason = "no candidate finished"
    elif not fitting:
        reason = "no candidate fits the envelope"
    elif not accurate:
        reason = f"no candidate keeps accuracy ≥ {floor:.4f}"
    else:
        reason = "no candidate both fits the envelope and keeps the accuracy floor"
    best = max(
        done,
        key=lambda c: (c.fits, c.accuracy.value >= floor, -latency_of(c)),
        default=None,
    )
    return Pick(None, floor, 0, reason, best)
