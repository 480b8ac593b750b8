"""The iteration tax: what each change costs in calendar and money on a target, and what wins by a
deadline.

Each target carries its certification loop and lifecycle stage days (``targets/*.yaml``). From
them: the cycle of one iteration and its bottleneck, what-if levers (Amdahl), the iterations that
fit by a deadline, the compound accuracy a(k) = AMAX − (AMAX − A0)(1 − R)^k, a heavy vs light
model, the knee, the accuracy a goal needs, Cost(N) = 2^(N−1) for late catches, and data egress.

>>> from edgefit.iteration import IterationPlan, build_plan, loop_for, parse_deadline
>>> wanted = IterationPlan(deadline_days=parse_deadline("26w"), goal=0.99)
>>> plan = build_plan(loop_for("orin"), wanted)
>>> plan["iterations"]["by_deadline"], plan["goal"]["iterations_needed"]
(4, 14)

:func:`plan` asks it all in one call (``edgefit.plan``, what `edgefit plan` runs).

Importing this package is light (the standard library only); targets load when a plan asks for one.
"""

from edgefit._units import MONTH_DAYS
from edgefit.iteration._api import IterationTax, plan
from edgefit.iteration._candidate import as_loop, candidate_iteration, select_by_deadline
from edgefit.iteration._cost import CHECKPOINTS, defect_cost, defect_table, egress_summary
from edgefit.iteration._inputs import (
    DEFAULTS,
    IterationPlan,
    parse_deadline,
    parse_what_if,
)
from edgefit.iteration._model import (
    CHANGE_KINDS,
    LIFECYCLE,
    WATERFALL,
    Certification,
    Egress,
    Loop,
    Stage,
)
from edgefit.iteration._overrides import apply_overrides, load_overrides_file, parse_set
from edgefit.iteration._plan import SCHEMA, build_plan, loop_for
from edgefit.iteration._projection import Curve, crossing_days, crossing_iteration, iterations_fit

__all__ = [
    "CHANGE_KINDS",
    "CHECKPOINTS",
    "DEFAULTS",
    "LIFECYCLE",
    "MONTH_DAYS",
    "SCHEMA",
    "WATERFALL",
    "Certification",
    "Curve",
    "Egress",
    "IterationPlan",
    "IterationTax",
    "Loop",
    "Stage",
    "apply_overrides",
    "as_loop",
    "build_plan",
    "candidate_iteration",
    "crossing_days",
    "crossing_iteration",
    "defect_cost",
    "defect_table",
    "egress_summary",
    "iterations_fit",
    "load_overrides_file",
    "loop_for",
    "parse_deadline",
    "parse_set",
    "parse_what_if",
    "plan",
    "select_by_deadline",
]
