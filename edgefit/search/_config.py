"""What a run is asked to do: :class:`OptimizeConfig`, validated when it is made.

Kept apart from the engine so that a caller can build, compare and print a configuration without
loading the search (optuna, the estimator).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from edgefit.errors import EdgefitError
from edgefit.evaluate import METRICS

DEFAULT_TARGET = "host-cpu"
SELECTIONS = ("latency", "accuracy", "deadline")
EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class OptimizeConfig:
    """The settings of one optimize run (the CLI's options, parsed).

    Every field has a default, so ``OptimizeConfig(trials=4)`` is a whole configuration.
    ``out_dir`` None means ``edgefit-out/<target id>``; a string is taken as a path. ``metric`` is
    how every candidate (and the baseline) is scored: ``max_drop`` is in dB for ``"sqnr"`` and a
    fraction of accuracy (``relative_drop``: of the baseline's) otherwise. Invalid values raise
    :class:`~edgefit.errors.EdgefitError` here, before any work.

    >>> OptimizeConfig(trials=4, max_drop=0.02).select
    'latency'
    >>> OptimizeConfig(metric="f1")
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: --metric: unknown metric 'f1' (fix: use one of ...)
    """

    target: str = DEFAULT_TARGET
    out_dir: Path | None = None
    power_mode: str | None = None
    budget_s: float | None = None
    trials: int | None = None
    max_drop: float = 0.01
    relative_drop: bool = False
    select: str = "latency"  # latency | accuracy | deadline
    storage: str | None = None
    threads: int = 1
    recover_epochs: int = 3
    keep: int = 12
    seed: int = 0
    deadline_days: float = 182.0
    metric: str = "auto"  # sqnr drops are in dB; the others are fractions
    executor: str = "local"  # local | ray
    ray_address: str | None = None  # None: a Ray started on this machine for the run
    ray_retries: int = 2  # a task whose worker or node died is run again this many times
    # a measuring child that runs longer is killed: that candidate fails
    measure_timeout_s: float = 600.0

    def __post_init__(self) -> None:
        if self.out_dir is not None and not isinstance(self.out_dir, Path):
            object.__setattr__(self, "out_dir", Path(self.out_dir))
        if self.metric not in METRICS:
            raise EdgefitError(
                f"unknown metric '{self.metric}'",
                where="--metric",
                fix=f"use one of {', '.join(METRICS)}",
            )
        if not self.measure_timeout_s > 0:
            raise EdgefitError(
                f"measure timeout {self.measure_timeout_s!r} s is not allowed",
                where="measure_timeout_s",
                fix="give positive seconds",
            )
        if self.executor not in EXECUTORS:
            raise EdgefitError(
                f"unknown executor '{self.executor}'", where="--executor", fix="use local or ray"
            )
        if self.select not in SELECTIONS:
            raise EdgefitError(
                f"unknown selection '{self.select}'",
                where="--select",
                fix="use latency, accuracy or deadline",
            )
        if not (
            0 <= self.max_drop < 1
            or (self.metric == "sqnr" and 0 <= self.max_drop and not self.relative_drop)
        ):
            raise EdgefitError(
                f"max drop {self.max_drop:g} is impossible",
                where="--max-drop",
                fix="give an absolute drop like 0.01 or a relative one like 1%",
            )


def with_output(config: OptimizeConfig, target_id: str) -> OptimizeConfig:
    """``config`` with its output folder decided: ``out_dir``, else ``edgefit-out/<target id>``."""
    if config.out_dir is not None:
        return config
    return replace(config, out_dir=Path("edgefit-out") / target_id)
