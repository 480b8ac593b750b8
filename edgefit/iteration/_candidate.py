"""What the optimizer asks per candidate: its iteration cost and its accuracy at the deadline.

``edgefit optimize`` writes :func:`candidate_iteration` into each candidate of ``results.json``;
``--select deadline`` picks with :func:`select_by_deadline` instead of by day-1 accuracy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.iteration._inputs import DEFAULTS, IterationPlan
from edgefit.iteration._model import Loop
from edgefit.iteration._projection import Curve, iterations_fit

if TYPE_CHECKING:
    from edgefit import targets
else:
    targets = lazy_import("edgefit.targets")  # pydantic: loaded only to read a target by name


def as_loop(target: Any) -> Loop:
    """A :class:`Loop` from a Loop, a :class:`~edgefit.targets.Target`, or a target id, alias or
    path."""
    if isinstance(target, Loop):
        return target
    if isinstance(target, str):
        target = targets.load_target(target)
    return Loop.from_target(target)


def candidate_iteration(
    target: Any,
    change_kinds: Iterable[str],
    accuracy_now: float,
    *,
    deadline_days: float = DEFAULTS["deadline_days"][0],
    accuracy_ceiling: float | None = None,
    gain_per_iteration: float | None = None,
) -> dict:
    """Days and dollars of one iteration of a candidate made by ``change_kinds``, the iterations
    that fit by the deadline and the accuracy projected there (defaults for the ceiling and R are
    stated assumptions, listed under ``assumptions``).

    >>> c = candidate_iteration("orin", ["quantization"], 0.90)
    >>> c["days"], c["usd"], c["iterations_by_deadline"], round(c["accuracy_at_deadline"], 4)
    (38.0, 40000.0, 4, 0.9561)
    """
    loop = as_loop(target)
    plan = IterationPlan(
        deadline_days=deadline_days,
        change_kinds=tuple(change_kinds),
        accuracy_now=accuracy_now,
        accuracy_ceiling=accuracy_ceiling,
        gain_per_iteration=gain_per_iteration,
        heavy_gain=0.0,
    )
    kinds = plan.change_kinds
    days, usd = loop.cycle_days(kinds), loop.usd_per_iteration(kinds)
    curve = Curve(
        plan.value("accuracy_now"),
        plan.value("accuracy_ceiling"),
        plan.value("gain_per_iteration"),
    )
    fit = iterations_fit(plan.value("deadline_days"), days)
    return {
        "change_kinds": list(kinds),
        "certification": loop.certifies(kinds),
        "days": days,
        "usd": usd,
        "deadline_days": plan.value("deadline_days"),
        "iterations_by_deadline": fit,
        "usd_by_deadline": usd * fit,
        "accuracy_now": curve.a0,
        "accuracy_at_deadline": curve.at(fit),
        "assumptions": {
            n: plan.provenance(n)
            for n in ("accuracy_ceiling", "gain_per_iteration")
            if n in plan.assumed()
        },
    }


def _field(candidate: Mapping[str, Any], key: str) -> float:
    if key in candidate:
        return float(candidate[key])
    nested = candidate.get("iteration")
    if isinstance(nested, Mapping) and key in nested:
        return float(nested[key])
    raise EdgefitError(
        f"a candidate lacks {key!r}",
        where="select_by_deadline",
        fix="add candidate_iteration(...) to each candidate (top level or under 'iteration')",
    )


def select_by_deadline(candidates: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The candidate with the highest projected accuracy at the deadline.

    Each candidate carries :func:`candidate_iteration`'s fields at top level or under
    ``"iteration"``. Ties (to 1e-9) go to the shorter iteration, then the cheaper one, then the
    higher accuracy now.

    >>> fast = {"name": "int8", "accuracy_at_deadline": 0.95, "days": 24, "usd": 0,
    ...         "accuracy_now": 0.90}
    >>> slow = {"name": "fp16", "accuracy_at_deadline": 0.94, "days": 38, "usd": 4e4,
    ...         "accuracy_now": 0.93}
    >>> select_by_deadline([slow, fast])["name"]
    'int8'
    """
    if not candidates:
        raise EdgefitError(
            "no candidates to select from", where="select_by_deadline", fix="pass at least one"
        )

    def rank(c: Mapping[str, Any]) -> tuple[float, float, float, float]:
        return (
            round(_field(c, "accuracy_at_deadline"), 9),
            -_field(c, "days"),
            -_field(c, "usd"),
            _field(c, "accuracy_now"),
        )

    return max(candidates, key=rank)
