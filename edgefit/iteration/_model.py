"""The iteration loop of one target: lifecycle stages, the certification loop and data egress.

Decisions (they shape every figure ``edgefit plan`` prints):

* An *iteration* is one full improve-the-model loop. Every lifecycle stage runs once per iteration;
  the **change kind decides only whether the certification loop runs** (it runs when any of the
  iteration's change kinds is in the target's ``certification.triggers``).
* The stages run **in series**, in :data:`WATERFALL` order. Certification sits between eval and
  deploy: what is certified is what ships.
* **Monitoring does not overlap** by default: the target YAMLs describe it as "... before the next
  change", so it is on the critical path. ``monitoring_overlaps=True`` lets the next iteration
  start at deploy; monitoring is then listed with its days but adds 0 days to the cycle.
* Cycle days = sum of the counted stage days; money per iteration = the certification cost when it
  runs. Data egress is *reported beside* the certification cost and not added to it: a target whose
  loop is moving the data (the H100) already prices that egress as its certification cost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from edgefit.errors import EdgefitError

LIFECYCLE = ("data_prep", "labeling", "training", "eval", "deploy", "monitoring")
CHANGE_KINDS = ("weights", "quantization", "pruning", "architecture", "runtime")
WATERFALL = ("data_prep", "labeling", "training", "eval", "certification", "deploy", "monitoring")
MAX_DAYS = 3650.0  # ten years: anything longer is a unit slip


def check_days(days: float, where: str) -> float:
    """``days`` as a float in [0, 3650]; an :class:`EdgefitError` otherwise.

    >>> check_days(14, "certification.days_per_change")
    14.0
    """
    if not isinstance(days, (int, float)) or isinstance(days, bool) or not math.isfinite(days):
        raise EdgefitError(
            f"days must be a number, got {days!r}", where=where, fix="give days such as 14"
        )
    if not 0 <= days <= MAX_DAYS:
        raise EdgefitError(
            f"days must be between 0 and {MAX_DAYS:g}, got {days:g}",
            where=where,
            fix="give a non-negative number of days",
        )
    return float(days)


def check_usd(usd: float, where: str) -> float:
    """``usd`` as a non-negative finite float; an :class:`EdgefitError` otherwise."""
    if (
        not isinstance(usd, (int, float))
        or isinstance(usd, bool)
        or not math.isfinite(usd)
        or usd < 0
    ):
        raise EdgefitError(
            f"must be a non-negative number, got {usd!r}", where=where, fix="give a number >= 0"
        )
    return float(usd)


def check_change_kinds(kinds: Iterable[str], where: str = "--change") -> tuple[str, ...]:
    """Validate change kinds (order kept, duplicates dropped).

    >>> check_change_kinds(["weights", "runtime", "weights"])
    ('weights', 'runtime')
    """
    out: list[str] = []
    for kind in kinds:
        if kind not in CHANGE_KINDS:
            raise EdgefitError(
                f"unknown change kind {kind!r}",
                where=where,
                fix=f"use one of {', '.join(CHANGE_KINDS)}",
            )
        if kind not in out:
            out.append(kind)
    return tuple(out)


@dataclass(frozen=True)
class Stage:
    """One waterfall stage: its days per iteration and where that number comes from.

    >>> Stage("training", 2, "estimated: a CNN retrain").days
    2
    """

    name: str
    days: float
    provenance: str

    def __post_init__(self) -> None:
        if self.name not in WATERFALL:
            raise EdgefitError(
                f"unknown stage {self.name!r}",
                where="stage",
                fix=f"use one of {', '.join(WATERFALL)}",
            )
        check_days(self.days, f"lifecycle_days.{self.name}")


@dataclass(frozen=True)
class Certification:
    """The certification loop: days and dollars per change, and the change kinds that trigger
    it."""

    name: str
    days: float
    usd: float
    triggers: tuple[str, ...]
    days_provenance: str
    usd_provenance: str

    def __post_init__(self) -> None:
        check_days(self.days, "certification.days_per_change")
        check_usd(self.usd, "certification.cost_usd_per_change")
        check_change_kinds(self.triggers, "certification.triggers")


@dataclass(frozen=True)
class Egress:
    """Moving the training data between regions: dataset size × price per petabyte.

    >>> Egress(90_000, 1.0, "estimated", "estimated").usd_per_iteration
    90000.0
    """

    usd_per_pb: float
    dataset_pb: float
    usd_per_pb_provenance: str
    dataset_pb_provenance: str

    def __post_init__(self) -> None:
        check_usd(self.usd_per_pb, "data_egress.usd_per_pb")
        check_usd(self.dataset_pb, "data_egress.dataset_pb")

    @property
    def usd_per_iteration(self) -> float:
        return self.usd_per_pb * self.dataset_pb


@dataclass(frozen=True)
class Loop:
    """A target's iteration loop; validated on creation, never mutated (use
    :func:`dataclasses.replace`).

    >>> from edgefit.targets import load_target
    >>> Loop.from_target(load_target("orin")).cycle_days(["weights"])  # 5+7+2+2+14+1+7
    38.0
    """

    target_id: str
    target_name: str
    stages: tuple[Stage, ...]
    certification: Certification
    egress: Egress | None = None
    monitoring_overlaps: bool = False

    def __post_init__(self) -> None:
        names = tuple(s.name for s in self.stages)
        if names != LIFECYCLE:
            raise EdgefitError(
                f"lifecycle stages must be {', '.join(LIFECYCLE)} in order, got "
                f"{', '.join(names)}",
                where="lifecycle_days",
                fix="give days for each lifecycle stage",
            )

    @classmethod
    def from_target(cls, target: Any) -> Loop:
        """Read the loop from a validated :class:`edgefit.targets.Target`."""
        c = target.certification
        cert = Certification(
            c.name,
            c.days_per_change.value,
            c.cost_usd_per_change.value,
            tuple(c.triggers),
            c.days_per_change.provenance,
            c.cost_usd_per_change.provenance,
        )
        stages = tuple(
            Stage(n, target.lifecycle_days[n].value, target.lifecycle_days[n].provenance)
            for n in LIFECYCLE
        )
        e = target.data_egress
        egress = (
            Egress(
                e.usd_per_pb.value,
                e.dataset_pb.value,
                e.usd_per_pb.provenance,
                e.dataset_pb.provenance,
            )
            if e
            else None
        )
        return cls(target.id, target.name, stages, cert, egress)

    def certifies(self, change_kinds: Iterable[str]) -> bool:
        """True when any of ``change_kinds`` triggers the certification loop."""
        return any(k in self.certification.triggers for k in check_change_kinds(change_kinds))

    def waterfall(self, change_kinds: Iterable[str]) -> tuple[Stage, ...]:
        """The stages one iteration runs, in order (certification only when triggered)."""
        cert = Stage("certification", self.certification.days, self.certification.days_provenance)
        extra = (cert,) if self.certifies(change_kinds) else ()
        return self.stages[:4] + extra + self.stages[4:]

    def counted_days(self, stage: Stage) -> float:
        """Days ``stage`` adds to the cycle (0 for monitoring when it overlaps the next
        iteration)."""
        return (
            0.0 if stage.name == "monitoring" and self.monitoring_overlaps else float(stage.days)
        )

    def cycle_days(self, change_kinds: Iterable[str]) -> float:
        """Calendar days of one iteration: the counted days of its waterfall."""
        return sum(self.counted_days(s) for s in self.waterfall(change_kinds))

    def usd_per_iteration(self, change_kinds: Iterable[str]) -> float:
        """Dollars of one iteration: the certification cost when it runs."""
        return self.certification.usd if self.certifies(change_kinds) else 0.0

    def stage(self, name: str) -> Stage:
        """The named stage; ``certification`` included."""
        if name == "certification":
            return Stage(name, self.certification.days, self.certification.days_provenance)
        for s in self.stages:
            if s.name == name:
                return s
        raise EdgefitError(
            f"unknown stage {name!r}", where="stage", fix=f"use one of {', '.join(WATERFALL)}"
        )

    def with_stage_days(self, name: str, days: float, provenance: str) -> Loop:
        """A copy with one stage's days replaced (``certification`` included)."""
        self.stage(name)  # validates the name
        if name == "certification":
            return replace(
                self,
                certification=replace(self.certification, days=days, days_provenance=provenance),
            )
        stages = tuple(Stage(name, days, provenance) if s.name == name else s for s in self.stages)
        return replace(self, stages=stages)
