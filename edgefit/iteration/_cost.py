"""What a late catch costs, Cost(N) = 2^(N−1) × Cost(1), and what data egress costs per iteration.

The checkpoints where a defect in the model's fit to the device (latency, memory, power envelope)
can surface are :data:`CHECKPOINTS`, in order: edgefit's estimate (stage 1, before any work), then
the lifecycle stages that look at the model. Data prep and labeling do not, so they are not
checkpoints. Cost(1) — fixing a violation found at estimate time — is a stated assumption (one
engineer-day).
"""

from __future__ import annotations

from edgefit.errors import EdgefitError
from edgefit.iteration._model import Loop

CHECKPOINTS = ("estimate", "training", "eval", "certification", "deploy", "monitoring")


def defect_cost(n: int, unit: float = 1.0) -> float:
    """Cost of a defect caught at checkpoint ``n`` (1-based), in units of Cost(1).

    >>> defect_cost(4) / defect_cost(1)  # caught at certification: 8x the estimate-time cost
    8.0
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise EdgefitError(
            f"the stage number must be an integer >= 1, got {n!r}",
            where="defect_cost",
            fix="stage 1 is estimate time",
        )
    return float(2 ** (n - 1)) * unit


def stage_end_days(loop: Loop, change_kinds: tuple[str, ...]) -> dict[str, float]:
    """Day of the cycle on which each waterfall stage ends (``estimate`` ends on day 0)."""
    ends, day = {"estimate": 0.0}, 0.0
    for stage in loop.waterfall(change_kinds):
        day += stage.days  # monitoring ends on this day even when the next iteration overlaps it
        ends[stage.name] = day
    return ends


def defect_table(loop: Loop, change_kinds: tuple[str, ...], unit_usd: float) -> list[dict]:
    """One row per checkpoint: multiplier, dollars, the cycle day it is caught on, and what an
    estimate-time catch saves. ``caught_on_day`` is None for certification when it does not run."""
    ends = stage_end_days(loop, change_kinds)
    rows = []
    for n, name in enumerate(CHECKPOINTS, start=1):
        usd = defect_cost(n, unit_usd)
        rows.append(
            {
                "n": n,
                "stage": name,
                "multiplier": defect_cost(n),
                "usd": usd,
                "saved_by_estimate_usd": usd - unit_usd,
                "caught_on_day": ends.get(name),
            }
        )
    return rows


def egress_summary(loop: Loop, iterations: int) -> dict | None:
    """Egress dollars per iteration (dataset PB × $/PB) and by the deadline; None without egress.

    Reported beside the certification cost, not added to it (see :mod:`edgefit.iteration._model`).
    """
    e = loop.egress
    if e is None:
        return None
    return {
        "usd_per_pb": e.usd_per_pb,
        "usd_per_pb_provenance": e.usd_per_pb_provenance,
        "dataset_pb": e.dataset_pb,
        "dataset_pb_provenance": e.dataset_pb_provenance,
        "usd_per_iteration": e.usd_per_iteration,
        "usd_by_deadline": e.usd_per_iteration * iterations,
        "note": "moving the dataset once per iteration; shown beside the certification cost, not "
        "added to it "
        "(a loop that is data movement already prices it there)",
    }
