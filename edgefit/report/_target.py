"""The target's side of a report: the envelope verdict (each constraint's limit against the chosen
model and the baseline) and the iteration tax of the chosen change.

Both need the target profile, loaded again where the report is rendered: a user's YAML may have
moved since the run, so a target that does not load leaves the sections out with the reason, and
the rest of the report stands.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit.iteration import IterationPlan, build_plan, loop_for

if TYPE_CHECKING:
    from edgefit import targets
    from edgefit.records import DoneCandidate, Results
else:  # the target model needs pydantic and YAML: loaded when a report is built, not on import
    targets = lazy_import("edgefit.targets")

UNIT_FMT: dict[str, Callable[[float], str]] = {
    "s": fmt.seconds,
    "B": fmt.nbytes,
    "W": fmt.watts,
    "J": fmt.joules,
}


@dataclass(frozen=True)
class EnvelopeRow:
    constraint: str
    unit: str
    limit: float
    winner: float | None
    fits: bool | None
    baseline: float | None
    source: str

    def shown(self) -> tuple[str, str, str]:
        """The limit, the chosen model's value and the baseline's, each with its unit ('–' where
        there is none): the cells both report.html and report.md show."""
        show = UNIT_FMT.get(self.unit, lambda v: f"{v:g}")
        winner = "–" if self.winner is None else show(self.winner)
        return show(self.limit), winner, "–" if self.baseline is None else show(self.baseline)


def target_of(res: Results) -> tuple[Any, str]:
    """The run's target loaded here, or None and why not."""
    try:
        return targets.load_target(res.target.id), ""
    except Exception as exc:  # noqa: BLE001 - a user YAML that moved: the report goes on without it
        return None, f"target '{res.target.id}' does not load here ({str(exc)[:120]})"


def envelope_rows(
    win: DoneCandidate | None, base: DoneCandidate | None, target: Any
) -> list[EnvelopeRow]:
    """The chosen model's constraint checks beside the baseline's, plus jitter when the target
    limits it (a limit results.json does not check)."""
    if win is None:
        return []
    base_checks = {c.constraint.split(" (")[0]: c for c in (base.checks if base else [])}
    rows = []
    for c in win.checks:
        b = base_checks.get(c.constraint.split(" (")[0])
        rows.append(
            EnvelopeRow(
                c.constraint,
                c.unit,
                c.limit,
                c.value,
                c.fits,
                b.value if b else None,
                c.source,
            )
        )
    env = getattr(target, "envelope", None)
    if env is not None and env.jitter_s is not None:
        jit = _jitter(win)
        rows.append(
            EnvelopeRow(
                "jitter (p99 − p50)",
                "s",
                env.jitter_s.value,
                jit,
                None if jit is None else jit <= env.jitter_s.value,
                _jitter(base),
                "measured" if jit is not None else "needs a measurement on the device",
            )
        )
    return rows


def _jitter(c: DoneCandidate | None) -> float | None:
    """A measured candidate's jitter (p99 - p50); None where there is none to show."""
    return c.latency.jitter_s if c is not None and c.latency.source == "measured" else None


def iteration_plan(
    res: Results, cand: DoneCandidate | None, target: Any
) -> tuple[dict | None, str]:
    """The iteration-tax plan of ``cand``'s change on the target, or None and why not."""
    if target is None:
        return None, "the target does not load here"
    acc = cand.accuracy if cand else None
    fraction = acc is not None and acc.kind != "sqnr" and 0 <= acc.value <= 1
    kinds = tuple(cand.change_kinds or ()) if cand else ()
    try:
        plan = IterationPlan(
            deadline_days=res.config.deadline_days,
            change_kinds=kinds or ("weights",),
            accuracy_now=min(acc.value, 0.9999) if fraction and acc else None,
            accuracy_ceiling=1.0 if fraction and acc and acc.value >= 0.99 else None,
        )
        return build_plan(loop_for(target), plan), ""
    except Exception as exc:  # noqa: BLE001 - the rest of the report stands without this section
        return None, f"the iteration plan could not be built ({str(exc)[:160]})"
