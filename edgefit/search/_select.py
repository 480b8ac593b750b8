"""The frontier and the pick: Pareto set of (accuracy ↑, latency ↓) and the selection rule."""

from __future__ import annotations

from dataclasses import dataclass


def latency_of(c: dict) -> float:
    return float(c["latency"]["p50_s"])


def frontier(candidates: list[dict]) -> list[dict]:
    """Finished candidates that fit the envelope (all finished ones if none fits) and that no other such
    candidate beats on both accuracy and latency."""
    done = [c for c in candidates if c.get("status") == "done"]
    done = [c for c in done if c.get("fits")] or done
    out = []
    for c in done:
        a, t = c["accuracy"]["value"], latency_of(c)
        if not any(o["accuracy"]["value"] >= a and latency_of(o) <= t and
                   (o["accuracy"]["value"] > a or latency_of(o) < t) for o in done):
            out.append(c)
    return sorted(out, key=latency_of)


@dataclass(frozen=True)
class Pick:
    winner: dict | None
    floor: float  # the accuracy floor the winner had to meet
    eligible: int
    reason: str  # why nothing qualified, when nothing did
    best_found: dict | None  # the closest candidate when nothing qualified


def pick(candidates: list[dict], base_accuracy: float, *, max_drop: float, relative: bool, select: str) -> Pick:
    """Among finished candidates that fit the envelope and keep accuracy ≥ the floor: the fastest
    (``latency``, default), the most accurate (``accuracy``), or the best projected at the deadline
    (``deadline``)."""
    floor = base_accuracy * (1 - max_drop) if relative else base_accuracy - max_drop
    done = [c for c in candidates if c.get("status") == "done"]
    eligible = [c for c in done if c["fits"] and c["accuracy"]["value"] >= floor - 1e-12]
    if eligible:
        if select == "accuracy":
            winner = max(eligible, key=lambda c: (c["accuracy"]["value"], -latency_of(c)))
        elif select == "deadline":
            from edgefit.iteration import select_by_deadline

            winner = dict(select_by_deadline(eligible))
        else:
            winner = min(eligible, key=lambda c: (latency_of(c), -c["accuracy"]["value"]))
        return Pick(winner, floor, len(eligible), "", None)
    fitting = [c for c in done if c["fits"]]
    accurate = [c for c in done if c["accuracy"]["value"] >= floor - 1e-12]
    if not done:
        reason = "no candidate finished"
    elif not fitting:
        reason = "no candidate fits the envelope"
    elif not accurate:
        reason = f"no candidate keeps accuracy ≥ {floor:.4f}"
    else:
        reason = "no candidate both fits the envelope and keeps the accuracy floor"
    best = max(done, key=lambda c: (c["fits"], c["accuracy"]["value"] >= floor, -latency_of(c)), default=None)
    return Pick(None, floor, 0, reason, best)
