"""The optimizer: screen every choice by estimate, materialize and measure the promising ones,
report the frontier and pick a winner.

The whole flow is one call, :func:`edgefit.optimize` (here: ``edgefit.search._flow.optimize``)::

    >>> import edgefit
    >>> result = edgefit.optimize("digits-cnn", "host-cpu",
    ...                           config=edgefit.OptimizeConfig(trials=4))  # doctest: +SKIP
    >>> result.chosen.label, result.files["results"]  # doctest: +SKIP

Its stages stay public for callers that need one of them alone:

>>> from edgefit.search import OptimizeConfig, finish_run, optimize, resolve_base
>>> base = resolve_base(None, "digits-cnn", None, None, None, None)  # doctest: +SKIP
>>> run = optimize(OptimizeConfig(trials=4), base)  # the search alone  # doctest: +SKIP
>>> result = finish_run(run, load_target("host-cpu"))  # pick, export, write  # doctest: +SKIP
"""

from edgefit.search._base import Base, resolve_base
from edgefit.search._config import OptimizeConfig, ThreadsWarning
from edgefit.search._engine import Run, choice_key, optimize
from edgefit.search._final import remeasure_leaders
from edgefit.search._flow import finish_run
from edgefit.search._outcome import Candidate, OptimizeResult, Selection, ThreadsResult
from edgefit.search._results import RESULTS_SCHEMA, results_dict, results_record, write_outputs
from edgefit.search._select import FinalTiming, Pick, Protocol, frontier, pick
from edgefit.search._space import Choice, SpaceOptions, build_space

__all__ = [
    "Base",
    "Candidate",
    "Choice",
    "FinalTiming",
    "OptimizeConfig",
    "OptimizeResult",
    "Pick",
    "Protocol",
    "RESULTS_SCHEMA",
    "Run",
    "Selection",
    "SpaceOptions",
    "ThreadsResult",
    "ThreadsWarning",
    "build_space",
    "choice_key",
    "finish_run",
    "frontier",
    "optimize",
    "pick",
    "remeasure_leaders",
    "resolve_base",
    "results_dict",
    "results_record",
    "write_outputs",
]
