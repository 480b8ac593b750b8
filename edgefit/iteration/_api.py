"""`edgefit plan` as one library call: the iteration tax of a target (:func:`plan`, answered by an
:class:`IterationTax`).

:class:`~edgefit.iteration.IterationPlan` is the question (deadline, change kinds, accuracy
curve, levers); :class:`IterationTax` is the answer, the ``edgefit.plan/1`` document
:func:`~edgefit.iteration.build_plan` writes, with its headline figures as properties.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefit._view import view
from edgefit.iteration import _sections as sec
from edgefit.iteration._inputs import IterationPlan, parse_deadline, parse_what_if
from edgefit.iteration._overrides import parse_set
from edgefit.iteration._plan import build_plan, loop_for


@dataclass(frozen=True)
class IterationTax:
    """Every figure of one plan: the document `edgefit plan --json` prints (``report``, schema
    ``edgefit.plan/1``), read through :meth:`to_dict` (a copy: the result stays as built)."""

    report: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """The JSON `edgefit plan --json` prints."""
        return copy.deepcopy(dict(self.report))

    @property
    def target_id(self) -> str:
        return str(self.report["target"]["id"])

    @property
    def cycle_days(self) -> float:
        """Calendar days of one iteration of the asked change kinds."""
        return float(self.report["cycle"]["days"])

    @property
    def bottleneck(self) -> str:
        """The lifecycle stage that takes the largest share of the cycle."""
        return str(self.report["cycle"]["bottleneck"]["stage"])

    @property
    def iterations_by_deadline(self) -> int:
        return int(self.report["iterations"]["by_deadline"])

    @property
    def goal_fits(self) -> bool:
        """Whether the accuracy goal is reached by the deadline."""
        return bool(self.report["goal"]["fits"])

    # Each section of the document as its typed record (edgefit.iteration._sections), read on
    # each access from ``report``, which stays the one source of every figure.

    @property
    def target(self) -> sec.Target:
        return view(sec.Target, self.report["target"])

    @property
    def deadline(self) -> sec.Deadline:
        return view(sec.Deadline, self.report["deadline"])

    @property
    def change_kinds(self) -> tuple[str, ...]:
        return tuple(self.report["change_kinds"])

    @property
    def cycle(self) -> sec.Cycle:
        """One iteration: days, dollars, certification, waterfall and bottleneck."""
        return view(sec.Cycle, self.report["cycle"])

    @property
    def iterations(self) -> sec.Iterations:
        return view(sec.Iterations, self.report["iterations"])

    @property
    def what_if(self) -> tuple[sec.WhatIf, ...]:
        return tuple(view(sec.WhatIf, w) for w in self.report["what_if"])

    @property
    def by_change_kind(self) -> tuple[sec.KindCost, ...]:
        return tuple(view(sec.KindCost, c) for c in self.report["by_change_kind"])

    @property
    def accuracy(self) -> sec.Accuracy:
        return view(sec.Accuracy, self.report["accuracy"])

    @property
    def goal(self) -> sec.Goal:
        return view(sec.Goal, self.report["goal"])

    @property
    def heavy_vs_light(self) -> sec.HeavyVsLight:
        return view(sec.HeavyVsLight, self.report["heavy_vs_light"])

    @property
    def knee(self) -> sec.Knee:
        return view(sec.Knee, self.report["knee"])

    @property
    def defect_cost(self) -> sec.DefectCost:
        return view(sec.DefectCost, self.report["defect_cost"])

    @property
    def egress(self) -> sec.Egress | None:
        """The data egress priced per iteration; None when the target moves no dataset."""
        e = self.report["egress"]
        return None if e is None else view(sec.Egress, e)


def plan(
    target: str | Path,
    *,
    deadline: str | float | None = None,
    change: Iterable[str] = ("weights",),
    accuracy_now: float | None = None,
    accuracy_ceiling: float | None = None,
    gain_per_iteration: float | None = None,
    goal: float | None = None,
    what_if: Iterable[str | tuple[str, float]] = (),
    heavy_gain: float | None = None,
    heavy_slowdown: float | None = None,
    overrides: Mapping[str, Any] | Iterable[str] | None = None,
    overrides_file: str | Path | None = None,
    overlap_monitoring: bool = False,
    defect_unit_usd: float | None = None,
) -> IterationTax:
    """The iteration tax of changing a model on ``target``: the cycle and cost of one iteration,
    its bottleneck, what-if levers, the iterations and accuracy by the deadline, the goal.

    ``deadline``: ``"26w"``, ``"6mo"``, ``"180d"``, ``"1y"`` or days (default 26 weeks).
    ``change``: change kinds of one iteration (``weights``, ``quantization``, ``pruning``,
    ``architecture``, ``runtime``). ``what_if``: ``"STAGE=FACTOR"`` or ``(stage, factor)`` levers.
    ``overrides``: the loop's figures, ``{"training": 3}`` or ``["training=3"]`` as ``--set``
    takes them, applied after ``overrides_file`` (YAML, same keys). Inputs left None take the
    stated defaults (:data:`~edgefit.iteration.DEFAULTS`) and the plan labels them assumptions.
    Bad input raises :class:`~edgefit.errors.EdgefitError`.

    >>> import edgefit
    >>> tax = edgefit.plan("orin", goal=0.99)
    >>> tax.cycle_days, tax.bottleneck, tax.iterations_by_deadline, tax.goal_fits
    (38.0, 'certification', 4, False)
    """
    days, text = _deadline(deadline)
    inputs = IterationPlan(
        deadline_days=days,
        deadline_text=text,
        change_kinds=(change,) if isinstance(change, str) else tuple(change),
        accuracy_now=accuracy_now,
        accuracy_ceiling=accuracy_ceiling,
        gain_per_iteration=gain_per_iteration,
        goal=goal,
        heavy_gain=heavy_gain,
        heavy_slowdown=heavy_slowdown,
        what_if=tuple(w if isinstance(w, tuple) else parse_what_if(w) for w in what_if),
        defect_unit_usd=defect_unit_usd,
    )
    loop = loop_for(
        target,
        overrides_file=overrides_file,
        overrides=_overrides(overrides),
        monitoring_overlaps=overlap_monitoring,
    )
    return IterationTax(build_plan(loop, inputs))


def _overrides(overrides: Mapping[str, Any] | Iterable[str] | None) -> Mapping[str, Any]:
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        return overrides
    return parse_set([overrides] if isinstance(overrides, str) else overrides)


def _deadline(deadline: str | float | None) -> tuple[float | None, str | None]:
    """(days, the text as given) — a number is days."""
    if deadline is None:
        return None, None
    if isinstance(deadline, str):
        return parse_deadline(deadline), deadline
    return float(deadline), f"{float(deadline):g}d"
