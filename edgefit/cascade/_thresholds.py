"""Threshold search: which confidence each tier needs to answer, under a budget.

Every combination of candidate thresholds (one per tier but the last) is evaluated at once on the
select split: a request stops at the first tier whose calibrated confidence reaches its threshold,
and has then paid the latency, energy and cost of every tier it went through. From those
per-request outcomes come accuracy, expected latency, p99 latency, cloud share and cost per 1,000
requests for every combination; the objective picks one, and the (expected latency, accuracy)
frontier is the Pareto curve of threshold choices. The picked thresholds are then evaluated again
on the report split, which the search never saw — the figures a user should believe.

The p99 latency is the 99th percentile over requests of the sum of each visited tier's *p99*
latency: an upper bound (it assumes the slow runs coincide), stated as such in the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from edgefit.cascade._types import Objective, OperatingPoint
from edgefit.errors import EdgefitError

NEVER = 1.000001  # a threshold above every confidence: the tier passes every request on
MAX_COMBINATIONS_X_SAMPLES = 4e7  # keeps one search under ~1 s and a few hundred MB


class NoFeasibleCascade(EdgefitError):
    """No threshold choice meets the budget: exit code 3 (the input was valid; the ask cannot be
    met)."""

    exit_code = 3


@dataclass(frozen=True)
class TierOutcomes:
    """One tier on one split: calibrated ``confidence`` per sample (None for the last tier, which
    always answers), ``correct`` per sample (1/0, or a stated accuracy for every sample of a
    model-less cloud tier), the per-request costs, and ``expected`` per sample: the chance the tier
    is right by its own calibrated confidence (the stated accuracy for a model-less cloud;
    ``correct`` when not given)."""

    confidence: np.ndarray | None
    correct: np.ndarray
    latency_p50_s: float
    latency_p99_s: float
    energy_j: float | None
    usd: float
    is_cloud: bool
    expected: np.ndarray | None = None


def candidate_thresholds(confidence: np.ndarray, count: int) -> np.ndarray:
    """``count`` quantiles of the tier's confidences (so candidates sit where requests are), plus 0
    (answer everything) and :data:`NEVER`, unique and sorted."""
    q = np.quantile(confidence, np.linspace(0, 1, max(count - 2, 2)))
    return np.unique(np.concatenate([[0.0], q, [NEVER]]))


def threshold_grid(tiers: list[TierOutcomes], per_tier: int = 41) -> np.ndarray:
    """All combinations of candidate thresholds, (M, tiers − 1); fewer candidates per tier when the
    product with the sample count would exceed :data:`MAX_COMBINATIONS_X_SAMPLES`."""
    routed = [t for t in tiers[:-1]]
    if not routed:
        return np.zeros((1, 0))
    n = len(tiers[0].correct)
    cap = int((MAX_COMBINATIONS_X_SAMPLES / max(n, 1)) ** (1 / len(routed)))
    per_tier = max(3, min(per_tier, cap))
    axes = []
    for t in routed:
        assert t.confidence is not None  # every tier but the last routes on its confidence
        axes.append(candidate_thresholds(t.confidence, per_tier))
    mesh = np.meshgrid(*axes, indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def evaluate(grid: np.ndarray, tiers: list[TierOutcomes]) -> dict[str, np.ndarray]:
    """Per threshold combination (rows of ``grid``): shares per tier, accuracy per tier and
    overall, expected and p99 latency, cloud share, cost per 1,000 and expected energy (NaN when a
    visited tier has no energy figure)."""
    m, n_tiers = len(grid), len(tiers)
    n = len(tiers[0].correct)
    remaining = np.ones((m, n), bool)
    stop_masks = []
    for k, tier in enumerate(tiers):
        if k == n_tiers - 1:
            take = remaining
        else:
            assert tier.confidence is not None  # every tier but the last routes on it
            take = remaining & (tier.confidence[None, :] >= grid[:, k : k + 1])
            remaining = remaining & ~take
        stop_masks.append(take)
    shares = np.stack([s.mean(axis=1) for s in stop_masks], axis=1)  # (M, tiers)
    right = np.stack(
        [(s * t.correct[None, :]).mean(axis=1) for s, t in zip(stop_masks, tiers)], axis=1
    )
    expected = sum(
        (s * (t.correct if t.expected is None else t.expected)[None, :]).mean(axis=1)
        for s, t in zip(stop_masks, tiers)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        tier_acc = np.where(shares > 0, right / shares, np.nan)
    cum50 = np.cumsum([t.latency_p50_s for t in tiers])
    cum99 = np.cumsum([t.latency_p99_s for t in tiers])
    cum_usd = np.cumsum([t.usd for t in tiers])
    energies = [np.nan if t.energy_j is None else t.energy_j for t in tiers]
    cum_energy = np.cumsum(energies)
    cum_share = np.cumsum(shares, axis=1)
    accuracy = np.round(
        right.sum(axis=1), 12
    )  # a sum of per-tier means misses 1.0 when every answer is right

    def mean_and_se(per_stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean over requests of a per-request figure that is ``per_stop[k]`` for requests stopping
        at tier k, and the standard error of that mean over n requests."""
        mean = shares @ per_stop
        var = np.maximum(shares @ per_stop**2 - mean**2, 0.0)
        return mean, np.sqrt(var / n)

    latency, latency_se = mean_and_se(cum50)
    usd_mean, usd_se = mean_and_se(cum_usd)
    cloud = shares[:, [k for k, t in enumerate(tiers) if t.is_cloud]].sum(axis=1)
    p99_tier = np.argmax(cum_share >= 0.99 - 1e-12, axis=1)  # first tier by which 99% have stopped
    visited_unknown = np.isnan(cum_energy)[None, :] & (shares > 0)
    energy, energy_se = mean_and_se(np.nan_to_num(cum_energy))
    return {
        "shares": shares,
        "tier_accuracy": tier_acc,
        "accuracy": accuracy,
        "expected_accuracy": expected,
        "accuracy_se": np.sqrt(accuracy * (1 - accuracy) / n),
        "expected_latency_s": latency,
        "expected_latency_s_se": latency_se,
        "p99_latency_s": cum99[p99_tier],
        "cloud_share": cloud,
        "cloud_share_se": np.sqrt(cloud * (1 - cloud) / n),
        "usd_per_1000": 1000 * usd_mean,
        "usd_per_1000_se": 1000 * usd_se,
        "expected_energy_j": np.where(visited_unknown.any(axis=1), np.nan, energy),
        "expected_energy_j_se": energy_se,
    }


def operating_point(
    table: dict[str, np.ndarray], row: int, thresholds: np.ndarray, split: str, samples: int
) -> OperatingPoint:
    energy = float(table["expected_energy_j"][row])
    return OperatingPoint(
        tuple(float(t) for t in thresholds),
        split,
        samples,
        float(table["accuracy"][row]),
        float(table["expected_latency_s"][row]),
        float(table["p99_latency_s"][row]),
        float(table["cloud_share"][row]),
        float(table["usd_per_1000"][row]),
        None if np.isnan(energy) else energy,
        tuple(float(s) for s in table["shares"][row]),
        tuple(None if np.isnan(a) else float(a) for a in table["tier_accuracy"][row]),
    )


def feasible(table: dict[str, np.ndarray], objective: Objective) -> np.ndarray:
    """Rows whose budgets hold at the objective's confidence (see :class:`Objective`): the select
    split's figure plus z standard errors within each budget; the accuracy floor, minus z standard
    errors."""
    z = NormalDist().inv_cdf(objective.budget_confidence) if objective.budget_confidence else 0.0
    ok = np.ones(len(table["accuracy"]), bool)
    for key, budget in (
        ("expected_latency_s", objective.latency_budget_s),
        ("cloud_share", objective.cloud_share_budget),
        ("usd_per_1000", objective.usd_per_1000_budget),
        ("expected_energy_j", objective.energy_budget_j),
    ):
        if budget is not None:
            upper = np.nan_to_num(table[key] + z * table[key + "_se"], nan=np.inf)
            ok &= upper <= budget + 1e-12
    if objective.kind == "min-latency" and objective.accuracy_floor is not None:
        ok &= table["accuracy"] - z * table["accuracy_se"] >= objective.accuracy_floor - 1e-12
    return ok


def pick(table: dict[str, np.ndarray], objective: Objective) -> int:
    """The row the objective chooses.

    ``max-accuracy``: the highest accuracy on the select split; among equals (a few hundred samples
    leave many), the highest *expected* accuracy by the tiers' calibrated confidences — the budget
    is spent on sending doubtful requests onward, not saved — then lower latency and cloud share.
    ``min-latency``: the lowest expected latency meeting the floor; then lower cloud share, higher
    accuracy. The earlier row wins a full tie (deterministic)."""
    ok = feasible(table, objective)
    if not ok.any():
        raise NoFeasibleCascade(
            _nothing_meets(table, objective),
            where="cascade objective",
            fix="loosen the budget (the closest any threshold choice comes is stated above)",
        )
    rows = np.flatnonzero(ok)
    acc, lat, cloud = (
        table["accuracy"][rows],
        table["expected_latency_s"][rows],
        table["cloud_share"][rows],
    )
    if objective.kind == "max-accuracy":
        order = np.lexsort(
            (cloud, lat, -np.round(table["expected_accuracy"][rows], 9), -np.round(acc, 12))
        )
    else:
        order = np.lexsort((-acc, cloud, np.round(lat, 15)))
    return int(rows[order[0]])


def _nothing_meets(table: dict[str, np.ndarray], objective: Objective) -> str:
    parts = []
    if objective.latency_budget_s is not None:
        parts.append(
            f"expected latency ≤ {objective.latency_budget_s * 1e3:.4g} ms "
            f"(lowest possible {table['expected_latency_s'].min() * 1e3:.4g} ms)"
        )
    if objective.cloud_share_budget is not None:
        parts.append(
            f"cloud share ≤ {objective.cloud_share_budget:.1%} (lowest "
            f"{table['cloud_share'].min():.1%})"
        )
    if objective.usd_per_1000_budget is not None:
        parts.append(
            f"cost ≤ ${objective.usd_per_1000_budget:.4g} per 1,000 (lowest "
            f"${table['usd_per_1000'].min():.4g})"
        )
    if objective.energy_budget_j is not None:
        low = (
            np.nanmin(table["expected_energy_j"])
            if np.isfinite(table["expected_energy_j"]).any()
            else float("nan")
        )
        parts.append(
            f"energy ≤ {objective.energy_budget_j * 1e3:.4g} mJ (lowest {low * 1e3:.4g} mJ)"
        )
    if objective.kind == "min-latency" and objective.accuracy_floor is not None:
        parts.append(
            f"accuracy ≥ {objective.accuracy_floor:.2%} (highest {table['accuracy'].max():.2%})"
        )
    sure = (
        f" with {objective.budget_confidence:.0%} confidence on new requests (select split ± its "
        "sampling error)"
        if objective.budget_confidence
        else ""
    )
    return "no threshold choice meets " + " and ".join(parts or ["the objective"]) + sure


def pareto_rows(table: dict[str, np.ndarray]) -> list[int]:
    """Rows on the (expected latency ↓, accuracy ↑) frontier, by increasing latency."""
    order = np.lexsort((-table["accuracy"], table["expected_latency_s"]))
    rows, best = [], -np.inf
    for r in order:
        if table["accuracy"][r] > best + 1e-12:
            rows.append(int(r))
            best = table["accuracy"][r]
    return rows


def search(
    select: list[TierOutcomes], report: list[TierOutcomes], objective: Objective
) -> tuple[OperatingPoint, OperatingPoint, tuple[OperatingPoint, ...], tuple[OperatingPoint, ...]]:
    """(chosen on select, the same on report, Pareto curve on select, the same points on
    report)."""
    grid = threshold_grid(select)
    on_select = evaluate(grid, select)
    row = pick(on_select, objective)
    front = pareto_rows(on_select)
    keep = sorted(set(front) | {row})
    on_report = evaluate(grid[keep], report)
    n_sel, n_rep = len(select[0].correct), len(report[0].correct)
    chosen = operating_point(on_select, row, grid[row], "select", n_sel)
    reported = operating_point(on_report, keep.index(row), grid[row], "report", n_rep)
    pareto = tuple(operating_point(on_select, r, grid[r], "select", n_sel) for r in front)
    pareto_report = tuple(
        operating_point(on_report, keep.index(r), grid[r], "report", n_rep) for r in front
    )
    return chosen, reported, pareto, pareto_report


def alone(tiers: list[TierOutcomes], split: str) -> tuple[OperatingPoint, ...]:
    """Each tier answering every request by itself (what a user would ship without a cascade)."""
    out = []
    for tier in tiers:
        single = [
            TierOutcomes(
                None,
                tier.correct,
                tier.latency_p50_s,
                tier.latency_p99_s,
                tier.energy_j,
                tier.usd,
                tier.is_cloud,
                tier.expected,
            )
        ]
        table = evaluate(np.zeros((1, 0)), single)
        out.append(operating_point(table, 0, np.zeros(0), split, len(tier.correct)))
    return tuple(out)
