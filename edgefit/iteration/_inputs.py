"""What a plan is asked: deadline, change kinds, accuracy curve, goal, levers — with stated
defaults.

Every input the user leaves out takes a default from :data:`DEFAULTS`, and the plan labels it
``assumption: …``. The accuracy defaults are chosen so that the 99 % goal of DESIGN.md is reachable
in principle (the ceiling must sit above it) but not quickly:

* ``accuracy_now`` 0.90 — a first deployable model;
* ``accuracy_ceiling`` 0.995 — label noise leaves about 0.5 % irreducible error;
* ``gain_per_iteration`` 0.20 — each iteration closes a fifth of the gap to the ceiling
  (the gap halves about every 3 iterations);
* ``heavy_gain`` 0.05 and ``heavy_slowdown`` 10 — the issue's example: a heavy model starts
  5 accuracy points (absolute) higher but every iteration takes 10× the calendar time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from edgefit._units import parse_span_days
from edgefit.errors import EdgefitError
from edgefit.iteration._model import WATERFALL, check_change_kinds

DEFAULTS: dict[str, tuple[float, str]] = {
    "deadline_days": (182.0, "assumption: half a year, 26 weeks (pass --deadline)"),
    "accuracy_now": (0.90, "assumption: a first deployable model at 90% (pass --accuracy-now)"),
    "accuracy_ceiling": (
        0.995,
        "assumption: label noise leaves about 0.5% irreducible error; set above the 99% "
        "goal so that goal is reachable in principle (pass --accuracy-ceiling)",
    ),
    "gain_per_iteration": (
        0.20,
        "assumption: each iteration closes 20% of the gap to the ceiling, halving it "
        "about every 3 iterations (pass --gain-per-iteration)",
    ),
    "goal": (0.99, "assumption: the 99% target of the design (pass --goal)"),
    "heavy_gain": (
        0.05,
        "assumption: the issue's example, a heavy model 5 points ahead at the start "
        "(pass --heavy-gain)",
    ),
    "heavy_slowdown": (
        10.0,
        "assumption: the issue's example, each heavy-model iteration takes 10x the "
        "calendar time (pass --heavy-slowdown)",
    ),
    "knee_fraction": (
        0.10,
        "definition: the knee is the first iteration whose gain is at most 10% of the "
        "first iteration's gain",
    ),
    "defect_unit_usd": (
        1000.0,
        "assumption: one engineer-day (8 h at about $125/h fully loaded) fixes a "
        "violation caught at estimate time (pass --defect-unit-usd)",
    ),
}


def parse_deadline(text: str) -> float:
    """A deadline as days: ``26w``, ``6mo`` (1 month = 365.25/12 ≈ 30.44 days), ``180d``, ``1y``.

    A bare ``m`` is refused: it means minutes everywhere else in edgefit (``--budget 10m``), so
    ``6m`` is ambiguous here (see :mod:`edgefit._units`).

    >>> parse_deadline("26w"), parse_deadline("1y"), round(parse_deadline("6mo"), 2)
    (182.0, 365.25, 182.62)
    """
    return parse_span_days(text, where="--deadline", what="deadline")


def parse_what_if(text: str) -> tuple[str, float]:
    """``STAGE=FACTOR``: the stage gets FACTOR× faster; ``inf`` (or ``auto``) removes it.

    >>> parse_what_if("training=inf"), parse_what_if("certification=2x")
    (('training', inf), ('certification', 2.0))
    """
    stage, sep, raw = str(text).partition("=")
    stage, raw = stage.strip(), raw.strip().lower().removesuffix("x")
    if not sep or stage not in WATERFALL:
        raise EdgefitError(
            f"cannot read what-if {text!r}: unknown stage {stage!r}",
            where="--what-if",
            fix=f"write STAGE=FACTOR with STAGE one of {', '.join(WATERFALL)}",
        )
    try:
        factor = math.inf if raw in ("inf", "auto") else float(raw)
    except ValueError:
        factor = math.nan
    if not factor > 0:  # also catches nan
        raise EdgefitError(
            f"cannot read what-if {text!r}: the factor must be a number > 0 or inf",
            where="--what-if",
            fix="write e.g. training=10 (10x faster) or training=inf (automated)",
        )
    return stage, factor


def _fraction(name: str, value: float, *, lo_open: bool = False, flag: str) -> None:
    ok = math.isfinite(value) and (0 < value if lo_open else 0 <= value) and value <= 1
    if not ok:
        interval = "(0, 1]" if lo_open else "[0, 1]"
        raise EdgefitError(
            f"{name} must be in {interval}, got {value:g}",
            where=flag,
            fix="give a fraction such as 0.9 (not a percentage)",
        )


@dataclass(frozen=True)
class IterationPlan:
    """The questions one plan answers. ``None`` means "use the stated default" (see
    :data:`DEFAULTS`).

    >>> p = IterationPlan(deadline_days=parse_deadline("26w"), deadline_text="26w")
    >>> p.value("accuracy_now"), p.provenance("accuracy_now").startswith("assumption")
    (0.9, True)
    """

    deadline_days: float | None = None
    deadline_text: str | None = None
    change_kinds: tuple[str, ...] = ("weights",)
    accuracy_now: float | None = None
    accuracy_ceiling: float | None = None
    gain_per_iteration: float | None = None
    goal: float | None = None
    heavy_gain: float | None = None
    heavy_slowdown: float | None = None
    what_if: tuple[tuple[str, float], ...] = ()
    knee_fraction: float | None = None
    defect_unit_usd: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "change_kinds", check_change_kinds(self.change_kinds))
        if not self.change_kinds:
            raise EdgefitError(
                "no change kind given", where="--change", fix="pass e.g. --change weights"
            )
        for stage, factor in self.what_if:
            parse_what_if(f"{stage}={factor}")
        a0, amax = self.value("accuracy_now"), self.value("accuracy_ceiling")
        _fraction("the accuracy now", a0, flag="--accuracy-now")
        _fraction("the accuracy ceiling", amax, flag="--accuracy-ceiling")
        _fraction(
            "the gain per iteration",
            self.value("gain_per_iteration"),
            lo_open=True,
            flag="--gain-per-iteration",
        )
        _fraction("the goal", self.value("goal"), lo_open=True, flag="--goal")
        _fraction(
            "the knee fraction", self.value("knee_fraction"), lo_open=True, flag="knee_fraction"
        )
        if a0 > amax:
            raise EdgefitError(
                f"the accuracy now ({a0:g}) is above the ceiling ({amax:g})",
                where="--accuracy-now",
                fix="give --accuracy-now <= --accuracy-ceiling",
            )
        self._check_heavy(a0, amax)
        if not (math.isfinite(self.value("deadline_days")) and self.value("deadline_days") > 0):
            raise EdgefitError(
                "the deadline must be a positive number of days",
                where="--deadline",
                fix="give e.g. 26w",
            )
        if not (
            math.isfinite(self.value("defect_unit_usd")) and self.value("defect_unit_usd") >= 0
        ):
            raise EdgefitError(
                "the defect unit cost must be >= 0 dollars",
                where="--defect-unit-usd",
                fix="give e.g. 1000",
            )

    def _check_heavy(self, a0: float, amax: float) -> None:
        gain, slowdown = self.value("heavy_gain"), self.value("heavy_slowdown")
        if not (math.isfinite(gain) and 0 <= gain and a0 + gain <= amax):
            raise EdgefitError(
                f"the heavy model's start ({a0:g} + {gain:g}) must lie between the accuracy now "
                "and "
                f"the ceiling ({amax:g})",
                where="--heavy-gain",
                fix="give a smaller --heavy-gain",
            )
        if not (math.isfinite(slowdown) and slowdown >= 1):
            raise EdgefitError(
                f"the heavy model's slowdown must be >= 1, got {slowdown:g}",
                where="--heavy-slowdown",
                fix="give how many times longer a heavy-model iteration takes, e.g. 10",
            )

    def value(self, name: str) -> float:
        """The given value, else the default (the default heavy gain is capped at the gap to the
        ceiling)."""
        given = getattr(self, name)
        if given is not None:
            return float(given)
        if name == "heavy_gain":
            return min(
                DEFAULTS[name][0],
                max(0.0, self.value("accuracy_ceiling") - self.value("accuracy_now")),
            )
        return float(DEFAULTS[name][0])

    def provenance(self, name: str) -> str:
        """``given (--flag)`` or the default's ``assumption: …`` line."""
        if getattr(self, name) is None:
            capped = name == "heavy_gain" and self.value(name) < DEFAULTS[name][0]
            return DEFAULTS[name][1] + ("; capped at the gap to the ceiling" if capped else "")
        return f"given (--{name.removesuffix('_days').replace('_', '-')})"

    def assumed(self) -> list[str]:
        """The inputs left to their defaults."""
        return [name for name in DEFAULTS if getattr(self, name) is None]
