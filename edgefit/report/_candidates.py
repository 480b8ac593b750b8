"""The candidates of a run as data: each one's accuracy and latency in words, its point on the
frontier plots and its row of the candidates table.

report.html and report.md show the same candidates table; :func:`candidate_rows` builds its rows
once and each renderer only formats them (escaping, marks, how much of an error it shows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefit import _format as fmt

if TYPE_CHECKING:
    from edgefit.records import DoneCandidate, FailedCandidate, Results


@dataclass(frozen=True)
class Point:
    """One finished candidate on the frontier plots."""

    key: str
    label: str
    accuracy: float
    latency_s: float
    latency_source: str
    energy_j: float
    fits: bool
    frontier: bool
    energy_frontier: bool
    winner: bool
    baseline: bool


@dataclass(frozen=True)
class CandidateRow:
    """One row of the candidates table, its cells as plain text (a renderer escapes them).

    ``error`` is None for a finished candidate; a failed one has only ``label`` and ``error``
    (whole: each renderer shows as much of it as fits its table).
    """

    label: str
    error: str | None = None
    accuracy: str = ""
    latency: str = ""  # the p50, with its unit
    latency_source: str = ""
    energy: str = ""  # estimated, with its unit
    energy_frontier: bool = False
    fits: bool = False
    frontier: bool = False  # on the accuracy-latency frontier
    chosen: bool = False
    baseline: bool = False
    iteration: str = ""  # days and dollars of one iteration


def accuracy_text(c: DoneCandidate) -> str:
    acc = c.accuracy
    return f"{acc.value:.2f} dB" if acc.kind == "sqnr" else f"{acc.value:.4f}"


def latency_source(c: DoneCandidate) -> str:
    lat = c.latency
    if lat.source == "measured":
        threads = lat.threads
        return f"measured, {lat.runtime}" + (
            f", {threads} thread{'s' * (threads != 1)}" if threads else ""
        )
    return f"estimated, {lat.estimate_source}, ±{lat.error:.0%}"


def estimate_notes(done: list[DoneCandidate]) -> list[str]:
    """Where each estimated latency came from, once per distinct source: a candidate calibrated on
    published measurements is ranked on a different footing from a datasheet one, and the report
    says which candidates stand on which (with the points by name)."""
    groups: dict[str, list[str]] = {}
    for c in done:
        detail = c.estimate.source_detail
        if c.latency.source == "estimated" and detail:
            groups.setdefault(detail, []).append(c.label)
    notes = []
    for detail, labels in groups.items():
        shown = ", ".join(labels[:4]) + (f" and {len(labels) - 4} more" if len(labels) > 4 else "")
        notes.append(f"estimated latency of {shown}: {detail}")
    return notes


def _pareto(done: list[DoneCandidate], x: Callable[[DoneCandidate], float]) -> set[str]:
    pool = [c for c in done if c.fits] or done
    out = set()
    for c in pool:
        a, t = c.accuracy.value, x(c)
        beaten = any(
            o.accuracy.value >= a and x(o) <= t and (o.accuracy.value > a or x(o) < t)
            for o in pool
        )
        if not beaten:
            out.add(c.key)
    return out


def frontier_points(res: Results, done: list[DoneCandidate]) -> list[Point]:
    """Every finished candidate as a plot point, marked on the latency frontier (as the run chose
    it) and on the energy frontier (computed here: the run does not rank by energy)."""
    energy_front = _pareto(done, lambda c: c.estimate.energy_j)
    return [
        Point(
            c.key,
            c.label,
            c.accuracy.value,
            c.latency.p50_s,
            c.latency.source,
            c.estimate.energy_j,
            c.fits,
            c.key in res.frontier,
            c.key in energy_front,
            c.key == res.selection.winner,
            c.key == res.baseline.key,
        )
        for c in done
    ]


def _p50(c: DoneCandidate | FailedCandidate) -> float:
    return c.latency.p50_s if c.status == "done" else math.inf


def candidate_rows(res: Results, points: list[Point]) -> list[CandidateRow]:
    """The candidates table, fastest p50 first (failed candidates last): the rows both report.html
    and report.md show. ``points`` (:func:`frontier_points`) say which are on the energy
    frontier."""
    rows = []
    for c in sorted(res.candidates, key=_p50):
        if c.status != "done":
            rows.append(CandidateRow(c.label, error=c.error))
            continue
        rows.append(
            CandidateRow(
                c.label,
                accuracy=accuracy_text(c),
                latency=fmt.seconds(c.latency.p50_s),
                latency_source=latency_source(c),
                energy=fmt.joules(c.estimate.energy_j),
                energy_frontier=next((p.energy_frontier for p in points if p.key == c.key), False),
                fits=c.fits,
                frontier=c.key in res.frontier,
                chosen=c.key == res.selection.winner,
                baseline=c.key == res.baseline.key,
                iteration=f"{c.iteration.days:g} d, ${c.iteration.usd:,.0f}",
            )
        )
    return rows
