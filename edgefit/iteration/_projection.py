"""Compound accuracy over iterations: a(k) = AMAX − (AMAX − A0)(1 − R)^k.

``k`` is the number of *completed* iterations; by calendar time ``t`` with a cycle of ``C`` days,
k = floor(t / C) (the step view a user lives in). Crossings are also solved on the continuous curve
k = t / C, where they have a closed form.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefit.errors import EdgefitError

_EPS = 1e-9  # floor/ceil guard: 182 / 26 must give 7, not 6.999999


@dataclass(frozen=True)
class Curve:
    """The accuracy curve of one model: start ``a0``, ceiling ``amax``, gap closed per iteration
    ``r``.

    >>> Curve(0.9, 1.0, 0.5).at(2)  # 1 - 0.1 * 0.25
    0.975
    """

    a0: float
    amax: float
    r: float

    def __post_init__(self) -> None:
        if not (0 <= self.a0 <= self.amax <= 1 and 0 < self.r <= 1):
            raise EdgefitError(
                f"bad accuracy curve a0={self.a0:g}, amax={self.amax:g}, r={self.r:g}",
                where="accuracy",
                fix="need 0 <= A0 <= AMAX <= 1 and 0 < R <= 1",
            )

    @property
    def gap(self) -> float:
        return self.amax - self.a0

    def at(self, k: float) -> float:
        """Accuracy after ``k`` iterations (``k`` may be fractional on the continuous curve)."""
        return self.amax - self.gap * (1 - self.r) ** k

    def shifted(self, gain: float) -> Curve:
        """The same curve starting ``gain`` higher (a heavier model), never above the ceiling."""
        return Curve(min(self.a0 + gain, self.amax), self.amax, self.r)

    def iterations_for(self, goal: float) -> int | None:
        """The fewest iterations with a(k) >= ``goal``; None when the curve never gets there.

        >>> Curve(0.9, 1.0, 0.5).iterations_for(0.9875)  # gap 0.1 -> 0.0125 is 3 halvings
        3
        """
        if goal <= self.a0 + _EPS:
            return 0
        if goal > self.amax + _EPS or (goal >= self.amax - _EPS and self.r < 1):
            return None  # the ceiling is approached, never reached, unless R = 1
        if self.r == 1:
            return 1
        return math.ceil(math.log((self.amax - goal) / self.gap) / math.log(1 - self.r) - _EPS)

    def knee(self, fraction: float) -> int:
        """The first iteration whose gain is at most ``fraction`` of the first iteration's gain.

        The gain of iteration k is gap·R·(1−R)^(k−1), so the knee is k = 1 + ceil(ln f / ln(1−R)).
        It depends on R only: past it, each iteration buys less than ``fraction`` of what the first
        did.

        >>> Curve(0.9, 1.0, 0.5).knee(0.1)  # 0.5^4 = 0.0625 <= 0.1 < 0.5^3
        5
        """
        if self.r == 1:
            return 2
        return 1 + math.ceil(math.log(fraction) / math.log(1 - self.r) - _EPS)


def iterations_fit(days: float, cycle_days: float) -> int:
    """Whole iterations that complete within ``days``.

    >>> iterations_fit(182, 38)  # 4 x 38 = 152 <= 182 < 190
    4
    """
    if cycle_days <= 0:
        raise EdgefitError(
            "the cycle is 0 days long",
            where="lifecycle_days",
            fix="give at least one stage a positive number of days",
        )
    return math.floor(days / cycle_days + _EPS)


def crossing_days(
    light: Curve, heavy: Curve, light_cycle: float, heavy_cycle: float
) -> float | None:
    """Days after which the light model's continuous curve passes the heavy one's; None if never.

    Equal gaps: D_l·q^(t/C_l) = D_h·q^(t/C_h) with q = 1 − R gives
    t = ln(D_h / D_l) / (ln q · (1/C_l − 1/C_h)).

    >>> light, heavy = Curve(0.9, 1.0, 0.5), Curve(0.95, 1.0, 0.5)
    >>> round(crossing_days(light, heavy, 30, 60), 6)  # 1 / (1/30 - 1/60)
    60.0
    """
    if heavy.a0 <= light.a0:
        return 0.0
    if heavy_cycle <= light_cycle or heavy.gap == 0:
        return None  # the heavy model is as fast (or already at the ceiling): it stays ahead
    if light.r == 1:
        return 0.0  # the continuous curve reaches the ceiling at once
    rate = math.log(1 - light.r) * (1 / light_cycle - 1 / heavy_cycle)
    return math.log(heavy.gap / light.gap) / rate


def crossing_iteration(
    light: Curve, heavy: Curve, light_cycle: float, heavy_cycle: float, limit: int = 100_000
) -> int | None:
    """The first completed light iteration at which the light model is ahead of the heavy one (step
    view).

    At day k·C_l the light model has k iterations, the heavy one floor(k·C_l / C_h).

    >>> light, heavy = Curve(0.9, 1.0, 0.5), Curve(0.95, 1.0, 0.5)
    >>> crossing_iteration(light, heavy, 30, 60)  # day 90: 0.9875 > 0.975
    3
    """
    if heavy.a0 <= light.a0:
        return 0
    if crossing_days(light, heavy, light_cycle, heavy_cycle) is None:
        return None
    for k in range(1, limit + 1):
        if light.at(k) > heavy.at(iterations_fit(k * light_cycle, heavy_cycle)) + _EPS:
            return k
    return None
