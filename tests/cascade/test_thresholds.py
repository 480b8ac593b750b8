"""Threshold search against a cascade whose best thresholds are worked out by hand.

100 requests. Tier 1 (10 ms) is sure (0.9) and right on 60 easy ones, unsure (0.5) on 40 hard ones,
right on 20 of them. Tier 2 (40 ms) is sure (0.99) and right on the easy ones; on the hard ones sure
(0.95) and right on 30, unsure (0.6) on 10 with 2 right. The cloud (500 ms) is always right.

- tier 1 answering everything: accuracy 0.80 at 10 ms;
- tier 1 answers the easy ones, tier 2 the rest: 0.92 at 10 + 0.4·40 = 26 ms;
- … and tier 2 passes its 10 unsure ones to the cloud: 1.00 at 26 + 0.1·500 = 76 ms;
- tier 1 passing everything on costs 40 ms more for nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.cascade._thresholds import NEVER, NoFeasibleCascade, TierOutcomes, alone, evaluate, search, threshold_grid
from edgefit.cascade._types import Objective as _Objective


def Objective(*args, **kw):  # noqa: N802 - the hand-worked figures compare the select split's figures as they are
    return _Objective(*args, **{"budget_confidence": None, **kw})

EASY, HARD = np.arange(60), np.arange(60, 100)


def tiers() -> list[TierOutcomes]:
    c1 = np.r_[np.full(60, 0.9), np.full(40, 0.5)]
    r1 = np.r_[np.ones(60), np.ones(20), np.zeros(20)]
    c2 = np.r_[np.full(60, 0.99), np.full(30, 0.95), np.full(10, 0.6)]
    r2 = np.r_[np.ones(90), np.ones(2), np.zeros(8)]
    return [TierOutcomes(c1, r1, 0.010, 0.012, 1e-3, 0.0, False),
            TierOutcomes(c2, r2, 0.040, 0.050, 4e-3, 0.0, False),
            TierOutcomes(None, np.ones(100), 0.500, 0.900, None, 4e-4, True)]


def test_max_accuracy_under_a_60_ms_budget_stops_at_tier_2():
    chosen, reported, pareto, _ = search(tiers(), tiers(), Objective("max-accuracy", latency_budget_s=0.060))
    t1, t2 = chosen.thresholds
    assert 0.5 < t1 <= 0.9 and t2 <= 0.6
    assert chosen.accuracy == pytest.approx(0.92) and chosen.expected_latency_s == pytest.approx(0.026)
    assert chosen.shares == pytest.approx((0.6, 0.4, 0.0)) and chosen.cloud_share == 0
    assert chosen.tier_accuracy[0] == pytest.approx(1.0) and chosen.tier_accuracy[1] == pytest.approx(0.8)
    assert chosen.p99_latency_s == pytest.approx(0.012 + 0.050)  # 99% have stopped by tier 2: its p99 path
    assert reported.split == "report" and reported.thresholds == chosen.thresholds


def test_a_larger_budget_sends_tier_2s_unsure_requests_to_the_cloud():
    chosen, *_ = search(tiers(), tiers(), Objective("max-accuracy", latency_budget_s=0.080))
    t1, t2 = chosen.thresholds
    assert 0.5 < t1 <= 0.9 and 0.6 < t2 <= 0.95
    assert chosen.accuracy == pytest.approx(1.0) and chosen.expected_latency_s == pytest.approx(0.076)
    assert chosen.cloud_share == pytest.approx(0.1) and chosen.usd_per_1000 == pytest.approx(0.1 * 1000 * 4e-4)
    assert chosen.expected_energy_j is None  # the cloud path has no energy figure: not made up
    assert chosen.p99_latency_s == pytest.approx(0.012 + 0.050 + 0.900)


def test_min_latency_under_an_accuracy_floor():
    chosen, *_ = search(tiers(), tiers(), Objective("min-latency", accuracy_floor=0.9))
    assert chosen.accuracy == pytest.approx(0.92) and chosen.expected_latency_s == pytest.approx(0.026)
    chosen, *_ = search(tiers(), tiers(), Objective("min-latency", accuracy_floor=0.75))
    assert chosen.thresholds[0] <= 0.5 and chosen.expected_latency_s == pytest.approx(0.010)


def test_cloud_share_budget_and_energy():
    chosen, *_ = search(tiers(), tiers(), Objective("max-accuracy", cloud_share_budget=0.0))
    assert chosen.accuracy == pytest.approx(0.92) and chosen.cloud_share == 0
    assert chosen.expected_energy_j == pytest.approx(0.6 * 1e-3 + 0.4 * 5e-3)


def test_the_pareto_curve_holds_the_hand_worked_points():
    _, _, pareto, pareto_report = search(tiers(), tiers(), Objective("max-accuracy", latency_budget_s=1.0))
    points = [(round(p.expected_latency_s, 6), round(p.accuracy, 6)) for p in pareto]
    assert points == [(0.010, 0.80), (0.026, 0.92), (0.076, 1.0)]
    assert [p.split for p in pareto_report] == ["report"] * 3


def test_nothing_meets_a_budget_below_the_fastest_tier():
    with pytest.raises(NoFeasibleCascade) as err:
        search(tiers(), tiers(), Objective("max-accuracy", latency_budget_s=0.005))
    assert err.value.exit_code == 3 and "lowest possible 10 ms" in str(err.value)


def test_thresholds_chosen_on_one_split_are_reported_on_the_other():
    report = tiers()
    report[1] = TierOutcomes(report[1].confidence, np.r_[np.ones(60), np.zeros(40)], 0.040, 0.050, 4e-3, 0.0, False)
    chosen, reported, *_ = search(tiers(), report, Objective("max-accuracy", latency_budget_s=0.060))
    assert chosen.accuracy == pytest.approx(0.92) and reported.accuracy == pytest.approx(0.60)


def test_grid_includes_answer_all_and_never_and_alone_is_each_tier_by_itself():
    grid = threshold_grid(tiers())
    assert grid.shape[1] == 2 and 0.0 in grid[:, 0] and NEVER in grid[:, 0]
    singles = alone(tiers(), "report")
    assert [round(s.accuracy, 6) for s in singles] == [0.80, 0.92, 1.0]
    assert [s.expected_latency_s for s in singles] == [0.010, 0.040, 0.500]
    table = evaluate(np.array([[0.0, 0.0], [NEVER, NEVER]]), tiers())
    assert table["shares"][1] == pytest.approx([0, 0, 1])


def test_ties_in_observed_accuracy_spend_the_budget_on_doubtful_requests():
    """On the select split, tier 1's answers at confidence 0.7 happen to be all right, so answering them
    or passing them on scores the same. Their calibrated confidence says tier 1 is right 70% of the
    time there and tier 2 99%: with the budget to pay for it, they go to tier 2."""
    c1 = np.r_[np.full(50, 0.95), np.full(50, 0.7)]
    t1 = TierOutcomes(c1, np.ones(100), 0.010, 0.010, None, 0.0, False, expected=c1)
    t2 = TierOutcomes(None, np.ones(100), 0.040, 0.040, None, 0.0, False, expected=np.full(100, 0.99))
    chosen, *_ = search([t1, t2], [t1, t2], Objective("max-accuracy", latency_budget_s=0.035))
    assert 0.7 < chosen.thresholds[0] <= 0.95 and chosen.shares == pytest.approx((0.5, 0.5))
    cheap, *_ = search([t1, t2], [t1, t2], Objective("min-latency", accuracy_floor=0.99))
    assert cheap.thresholds[0] <= 0.7 and cheap.shares == pytest.approx((1.0, 0.0))


def test_a_budget_must_hold_with_confidence_not_just_on_the_select_split():
    """76 ms with 10% of requests at the 500 ms cloud is within an 80 ms budget on these 100 requests, but
    the cloud share's sampling error (±3 points) puts its 95% upper bound near 102 ms: not chosen."""
    sure, *_ = search(tiers(), tiers(), _Objective("max-accuracy", latency_budget_s=0.080))
    assert sure.accuracy == pytest.approx(0.92) and sure.cloud_share == 0
    loose, *_ = search(tiers(), tiers(), _Objective("max-accuracy", latency_budget_s=0.080, budget_confidence=None))
    assert loose.accuracy == pytest.approx(1.0)
    floor, *_ = search(tiers(), tiers(), _Objective("min-latency", accuracy_floor=0.9))
    assert floor.accuracy == pytest.approx(1.0)  # 0.92 - 1.645 * 0.027 < 0.9: the floor needs the cloud
    with pytest.raises(NoFeasibleCascade, match="95% confidence"):
        search(tiers(), tiers(), _Objective("max-accuracy", latency_budget_s=0.005))
