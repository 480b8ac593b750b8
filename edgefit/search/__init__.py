"""The optimizer: screen every choice by estimate, materialize and measure the promising ones,
report the frontier and pick a winner.

>>> from edgefit.search import OptimizeConfig, optimize, resolve_base
>>> base = resolve_base(None, "digits-cnn", None, None, None, None)        # doctest: +SKIP
>>> run = optimize(OptimizeConfig(target="host-cpu", out_dir=Path("out")), base)   # doctest: +SKIP
>>> protocol = remeasure_leaders(run)   # the leaders, interleaved  # doctest: +SKIP
"""

from edgefit.search._base import Base, resolve_base
from edgefit.search._engine import OptimizeConfig, Run, choice_key, optimize
from edgefit.search._final import remeasure_leaders
from edgefit.search._results import RESULTS_SCHEMA, results_dict, write_outputs
from edgefit.search._select import FinalTiming, Pick, Protocol, frontier, pick
from edgefit.search._space import Choice, SpaceOptions, build_space

__all__ = [
    "RESULTS_SCHEMA",
    "Base",
    "Choice",
    "FinalTiming",
    "OptimizeConfig",
    "Pick",
    "Protocol",
    "Run",
    "SpaceOptions",
    "build_space",
    "choice_key",
    "frontier",
    "optimize",
    "pick",
    "remeasure_leaders",
    "resolve_base",
    "results_dict",
    "write_outputs",
]
