"""The ``edgefit.plan/1`` document's sections as typed, frozen records, so a reader of an
:class:`~edgefit.iteration.IterationTax` (the CLI's printout, a notebook) reads
``tax.cycle.bottleneck.share`` rather than nested string keys.

The document itself (:func:`~edgefit.iteration.build_plan`) stays the one source of every figure
and what `edgefit plan --json` prints; each record is read from its section by
:func:`edgefit._view.view`, which takes the fields a record names and leaves the document's other
keys alone. Values are kept as the document holds them (lists become tuples), so a printout from
a record and one from the document are the same text.

>>> from edgefit.iteration import IterationPlan, build_plan, loop_for
>>> from edgefit._view import view
>>> from edgefit.iteration._sections import Cycle
>>> cycle = view(Cycle, build_plan(loop_for("orin"), IterationPlan())["cycle"])
>>> cycle.days, cycle.bottleneck.stage, cycle.waterfall[0].stage
(38.0, 'certification', 'data_prep')
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Given:
    """An input of the plan and where it came from (given, or the stated assumption)."""

    value: float
    provenance: str


@dataclass(frozen=True)
class Target:
    id: str
    name: str


@dataclass(frozen=True)
class Deadline:
    text: str
    days: float
    weeks: float
    months: float
    provenance: str


@dataclass(frozen=True)
class Certification:
    name: str
    runs: bool
    triggers: tuple[str, ...]


@dataclass(frozen=True)
class Stage:
    """One stage of the cycle's waterfall: its days, the days it holds the cycle
    (``counted_days``; less when it overlaps the next iteration) and its share of the cycle."""

    stage: str
    days: float
    counted_days: float
    share: float
    start_day: float
    end_day: float
    provenance: str


@dataclass(frozen=True)
class Bottleneck:
    stage: str
    days: float
    share: float


@dataclass(frozen=True)
class Cycle:
    """One iteration: its days, its dollars and the stages it runs."""

    days: float
    usd: float
    usd_provenance: str
    certification: Certification
    monitoring_overlaps: bool
    waterfall: tuple[Stage, ...]
    bottleneck: Bottleneck


@dataclass(frozen=True)
class Iterations:
    by_deadline: int
    days_used: float
    usd_by_deadline: float


@dataclass(frozen=True)
class WhatIf:
    """One lever: a stage ``factor`` times faster (``automated``: infinitely, factor None)."""

    stage: str
    factor: float | None
    automated: bool
    default: bool
    stage_days: float
    stage_days_after: float
    cycle_days: float
    cycle_days_after: float
    cut_share: float
    speedup: float | None
    amdahl_limit_cycle_days: float
    iterations_by_deadline: int | None
    accuracy_at_deadline: float | None


@dataclass(frozen=True)
class KindCost:
    """One change kind's iteration: whether it triggers certification, its days and dollars."""

    change_kinds: tuple[str, ...]
    certification: bool
    days: float
    usd: float
    iterations_by_deadline: int
    usd_by_deadline: float
    accuracy_at_deadline: float


@dataclass(frozen=True)
class ProjectionRow:
    months: float
    days: float
    deadline: bool
    iterations: int
    accuracy: float
    heavy_iterations: int
    heavy_accuracy: float


@dataclass(frozen=True)
class Accuracy:
    """The accuracy curve's inputs and its projection month by month."""

    accuracy_now: Given
    accuracy_ceiling: Given
    gain_per_iteration: Given
    formula: str
    iterations_by_deadline: int
    days_used: float
    at_deadline: float
    projection: tuple[ProjectionRow, ...]


@dataclass(frozen=True)
class Goal:
    """The accuracy goal: the iterations it needs (None: never reached) against those that fit."""

    goal: float
    provenance: str
    iterations_needed: int | None
    days_needed: float | None
    months_needed: float | None
    iterations_fit: int
    fits: bool
    cycle_days_needed: float | None
    reachable_goal: float
    accuracy_at_deadline: float
    reachable_provenance: str


@dataclass(frozen=True)
class Side:
    start: float
    cycle_days: float
    iterations_by_deadline: int
    accuracy_at_deadline: float


@dataclass(frozen=True)
class Crossing:
    """Where the light model catches the heavy one (``days`` None: never)."""

    days: float | None
    months: float | None
    light_iterations: int | None
    step_days: float | None
    step_months: float | None


@dataclass(frozen=True)
class HeavyVsLight:
    heavy_gain: Given
    heavy_slowdown: Given
    light: Side
    heavy: Side
    ahead_at_deadline: str
    crossing: Crossing


@dataclass(frozen=True)
class KneeRow:
    cycle_multiplier: float
    start_accuracy: float
    cycle_days: float
    knee_days: float
    knee_months: float
    knee_by_deadline: bool
    iterations_by_deadline: int
    accuracy_at_deadline: float


@dataclass(frozen=True)
class Knee:
    """The iteration whose gain falls to ``fraction`` of the first's, across model sizes."""

    fraction: Given
    iteration: int
    gain_at_knee: float
    gain_first: float
    sizes_provenance: str
    by_size: tuple[KneeRow, ...]
    best_by_deadline: float


@dataclass(frozen=True)
class DefectRow:
    n: int
    stage: str
    multiplier: float
    usd: float
    saved_by_estimate_usd: float
    caught_on_day: float | None


@dataclass(frozen=True)
class DefectCost:
    unit_usd: Given
    rule: str
    stages: tuple[DefectRow, ...]


@dataclass(frozen=True)
class Egress:
    """Moving the dataset once per iteration, priced beside the certification cost."""

    usd_per_pb: float
    usd_per_pb_provenance: str
    dataset_pb: float
    dataset_pb_provenance: str
    usd_per_iteration: float
    usd_by_deadline: float
    note: str
