"""Stage 1: estimate every choice (batched Numba), drop what cannot fit, keep the promising few.

Depth, resolution and activation change the graph, so each such variant is exported once (weights
do not matter to the estimator); width and channel pruning are channel scales on that graph, 2:4
sparsity and dtypes are plan fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgefit.estimate import Estimate, Estimator, Plan
from edgefit.passes import get_precision
from edgefit.search._space import Choice


@dataclass
class Screened:
    choice: Choice
    estimate: Estimate
    feasible: bool  # could fit: every check passes at the optimistic end of the error bar
    reasons: tuple[str, ...]  # why not, when not


def estimator_plan(choice: Choice, kernel_names: list[str], weight_kernels: list[str]) -> Plan:
    # each precision's pass says how to screen it (e.g. torchao int8 as int8 compute)
    dtype = get_precision(choice.precision).estimate_dtype
    keep: tuple[str, ...] = ()
    if (
        choice.keep_float and weight_kernels
    ):  # sensitivity is measured later; first and last layers
        keep = tuple(dict.fromkeys(weight_kernels[:1] + weight_kernels[-1:]))[: choice.keep_float]
    scale = choice.width * (1 - choice.prune_amount if choice.prune == "channel" else 1.0)
    return Plan(
        dtype=dtype,
        keep_float=keep,
        sparse_2to4=choice.prune == "2:4",
        channel_scale=max(scale, 1e-3),
    )


def could_fit(est: Estimate) -> tuple[bool, tuple[str, ...]]:
    """Feasible unless a check fails even at the optimistic end of the estimate's error bar."""
    reasons = []
    for c in est.checks:
        if c.fits:
            continue
        optimistic = c.value * (1 - est.error) if c.unit in ("s", "J", "W") else c.value
        if optimistic > c.limit:
            reasons.append(
                f"{c.constraint}: estimated {c.value:.4g} {c.unit} > limit {c.limit:.4g} {c.unit}"
            )
    return not reasons, tuple(reasons)


def screen(choices: list[Choice], estimators: dict[tuple, Estimator]) -> list[Screened]:
    """Estimate every choice on the estimator of its graph variant ``(depth, resolution,
    activation)``."""
    groups: dict[tuple, list[Choice]] = {}
    for c in choices:
        groups.setdefault((c.depth, c.resolution, c.activation), []).append(c)
    out: list[Screened] = []
    for key, group in groups.items():
        est = estimators[key]
        weight_kernels = [n for n, w in zip(est.table.names, est.table.has_weights) if w]
        plans = [estimator_plan(c, est.table.names, weight_kernels) for c in group]
        for choice, e in zip(group, est.screen(plans)):
            ok, why = could_fit(e)
            out.append(Screened(choice, e, ok, why))
    return out


def pareto_fronts(points: list[tuple[float, float]]) -> list[int]:
    """Front rank (0 = non-dominated) of each point, both objectives minimized."""
    n = len(points)
    rank = [-1] * n
    remaining = set(range(n))
    level = 0
    while remaining:
        front = {
            i
            for i in remaining
            if not any(
                points[j][0] <= points[i][0]
                and points[j][1] <= points[i][1]
                and points[j] != points[i]
                for j in remaining
            )
        }
        for i in front:
            rank[i] = level
        remaining -= front
        level += 1
    return rank


def prefilter(screened: list[Screened], keep: int) -> list[Screened]:
    """The ``keep`` most promising feasible choices: by Pareto front of (estimated latency, risk
    prior), then lowest risk. The unchanged model always stays: it is
    the baseline every other candidate is compared with."""
    feasible = [s for s in screened if s.feasible]
    ranks = pareto_fronts([(s.estimate.latency_s, s.choice.risk()) for s in feasible])
    order = sorted(
        range(len(feasible)),
        key=lambda i: (ranks[i], feasible[i].choice.risk(), feasible[i].estimate.latency_s),
    )
    chosen = [feasible[i] for i in order[:keep]]
    base = next((s for s in screened if s.choice == Choice()), None)
    if base is not None:  # measured first, even when its estimate says it cannot fit
        chosen = [base] + [s for s in chosen if s is not base]
    return chosen
