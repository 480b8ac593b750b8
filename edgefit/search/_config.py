"""What a run is asked to do: :class:`OptimizeConfig`, validated when it is made.

Kept apart from the engine so that a caller can build, compare and print a configuration without
loading the search (optuna, the estimator).
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.evaluate import METRICS

DEFAULT_TARGET = "host-cpu"
SELECTIONS = ("latency", "accuracy", "deadline")
EXECUTORS = ("local", "ray")
_THREADS_FIX = "give whole numbers of at least 1: --threads 1, or a list like --threads 1,2"


class _TargetThreads(int):
    """The default of :attr:`OptimizeConfig.threads`: the target's ``deployment_threads``, else 1.

    An int (reading as 1), so code that takes a config as it is (the engine, the final
    re-measurement) sees a whole count; :func:`edgefit.optimize` replaces it with the target's
    count. ``OptimizeConfig(threads=1)`` is the user's 1: it stays 1 on every target.
    """

    def __repr__(self) -> str:
        return "FROM_TARGET"

    __str__ = int.__repr__  # printed (f"{threads} thread(s)"), it is the 1 it stands for

    def __reduce__(self) -> tuple[Any, ...]:  # a copy sent to a Ray worker stays the default
        return (_TargetThreads, (1,))


FROM_TARGET = _TargetThreads(1)


class ThreadsWarning(UserWarning):
    """A thread count above the cores this machine gives edgefit: the run works, but what it
    measures at that count shares cores."""


@dataclass(frozen=True)
class OptimizeConfig:
    """The settings of one optimize run (the CLI's options, parsed).

    Every field has a default, so ``OptimizeConfig(trials=4)`` is a whole configuration.
    ``out_dir`` None means ``edgefit-out/<target id>``; a string is taken as a path. ``metric`` is
    how every candidate (and the baseline) is scored: ``max_drop`` is in dB for ``"sqnr"`` and a
    fraction of accuracy (``relative_drop``: of the baseline's) otherwise. ``threads`` is the
    deployment thread count measured and optimized for; left out (or None), the target's
    ``deployment_threads``, else 1. ``thread_list`` holds several counts instead (duplicates
    dropped): one whole run per count, each in ``out_dir/threads-N`` (``threads=(1, 2)`` or
    ``"1,2"`` is read as ``thread_list``; one count is ``threads``). Invalid values raise
    :class:`~edgefit.errors.EdgefitError` here, before any work.

    >>> OptimizeConfig(trials=4, max_drop=0.02).select
    'latency'
    >>> OptimizeConfig(threads="1,2,2").thread_list, OptimizeConfig(thread_list=[4]).threads
    ((1, 2), 4)
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
    threads: int = FROM_TARGET  # the one count a run measures at (the engine reads this)
    thread_list: tuple[int, ...] = ()  # several counts: one whole run each, in threads-N/
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
    # convert the winner to the target's native formats (OUT/export/); model.onnx is written
    # either way. False (--no-export) saves the conversions (several seconds each) in a loop that
    # needs only the pick
    export: bool = True
    # keep the final pick's interleaved timings, each model profiled once more after them, for
    # `edgefit calibrate --refit` (edgefit/calibrate/_observed.py); --no-record skips it
    record: bool = True

    def __post_init__(self) -> None:
        threads, listed = _one_or_list(self.threads, self.thread_list)
        object.__setattr__(self, "threads", threads)
        object.__setattr__(self, "thread_list", listed)
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

    @property
    def thread_counts(self) -> tuple[int, ...]:
        """Every thread count this run optimizes for, in the order given."""
        return self.thread_list or (self.threads,)

    @property
    def threads_given(self) -> bool:
        """Whether the caller chose the thread count(s), rather than leaving them to the
        target."""
        return bool(self.thread_list) or not isinstance(self.threads, _TargetThreads)


def parse_threads(text: str) -> tuple[int, ...]:
    """``--threads``' text: the counts of a comma list, duplicates dropped (one count is a
    list of one).

    >>> parse_threads("2"), parse_threads("1, 2,1")
    ((2,), (1, 2))
    >>> parse_threads("1,,2")
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: --threads: '1,,2' has an empty item (fix: give whole numbers ...
    """
    items = [item.strip() for item in str(text).split(",")]
    if not all(items):
        raise EdgefitError(f"'{text}' has an empty item", where="--threads", fix=_THREADS_FIX)
    counts = []
    for item in items:
        try:
            counts.append(int(item))
        except ValueError:
            raise EdgefitError(
                f"cannot read '{item}' as a thread count", where="--threads", fix=_THREADS_FIX
            ) from None
    return _checked(counts)


def _checked(items: list[Any]) -> tuple[int, ...]:
    """Whole counts of at least 1, in first-seen order, duplicates dropped."""
    if not items:
        raise EdgefitError("no thread count given", where="--threads", fix=_THREADS_FIX)
    counts: list[int] = []
    for n in items:
        try:
            if isinstance(n, bool):  # True is an int to Python, not a thread count to anyone
                raise TypeError
            counts.append(operator.index(n))  # int and numpy integers; not 2.5, not "2"
        except TypeError:
            raise EdgefitError(
                f"{n!r} is not a thread count", where="--threads", fix=_THREADS_FIX
            ) from None
        if counts[-1] < 1:
            raise EdgefitError(
                f"{n} threads cannot run a model", where="--threads", fix=_THREADS_FIX
            )
    return tuple(dict.fromkeys(counts))


def _thread_counts(value: object) -> int | tuple[int, ...]:
    """``value`` checked: the default as it is, one count as an int, several as a tuple."""
    if value is None or isinstance(value, _TargetThreads):
        return FROM_TARGET
    if isinstance(value, str):
        unique = parse_threads(value)
    else:
        unique = _checked(list(value) if isinstance(value, (tuple, list)) else [value])
    return unique[0] if len(unique) == 1 else unique


def _one_or_list(threads: object, listed: object) -> tuple[int, tuple[int, ...]]:
    """``(threads, thread_list)`` checked: one count goes to ``threads``, several to the list."""
    one = _thread_counts(threads)
    many = _thread_counts(listed) if listed not in ((), [], None) else ()
    if isinstance(one, tuple):  # threads=(1, 2): the list, said the short way
        one, many = (FROM_TARGET, one) if not many else (one, many)
    given = not isinstance(one, _TargetThreads)
    if isinstance(one, tuple) or (given and many and many != one):
        raise EdgefitError(
            "thread counts given twice (threads and thread_list)",
            where="--threads",
            fix="give one count as threads, or several as thread_list",
        )
    if isinstance(many, int):  # a list of one count is that count
        return many, ()
    return one, many


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def oversubscribed(counts: tuple[int, ...], cores: int) -> str | None:
    """The warning line for thread counts above this machine's ``cores`` (None when all fit):
    such a run still works, but its measured timings share cores and read slow.

    >>> oversubscribed((1, 2), 2) is None
    True
    >>> oversubscribed((1, 4), 2)
    '--threads 4 is more than the 2 cores this machine gives edgefit: ...'
    """
    over = [n for n in counts if n > cores]
    if not over:
        return None
    listed = ",".join(map(str, over))
    return (
        f"--threads {listed} is more than the {cores} cores this machine gives edgefit: its "
        f"threads share cores, so times measured here at {listed} threads read slower than on "
        "a machine that has the cores"
    )


def threads_from(config: OptimizeConfig, target: Any) -> tuple[OptimizeConfig, str]:
    """``config`` with its thread count(s) decided, and where they came from: ``"user"``
    (``--threads``, or host-cpu's default of 1) or ``"target"`` (its ``deployment_threads``).
    """
    declared = getattr(target, "deployment_threads", None)
    if config.thread_list:
        return config, "user"
    if config.threads_given or declared is None:
        return replace(config, threads=int(config.threads)), "user"
    return replace(config, threads=int(declared.value)), "target"


def threads_note(counts: tuple[int, ...] | int, source: str, target_id: str) -> str:
    """The line that says which thread count(s) a run measured and why.

    >>> threads_note((1, 2), "user", "host-cpu")
    'threads: 1, 2 (your choice; --threads)'
    >>> threads_note(4, "target", "jetson-agx-orin-64gb")
    'threads: 4 (from target jetson-agx-orin-64gb)'
    """
    listed = ", ".join(map(str, counts if isinstance(counts, tuple) else (counts,)))
    why = "your choice; --threads" if source == "user" else f"from target {target_id}"
    return f"threads: {listed} ({why})"


def with_output(config: OptimizeConfig, target_id: str) -> OptimizeConfig:
    """``config`` with its output folder decided: ``out_dir``, else ``edgefit-out/<target id>``."""
    if config.out_dir is not None:
        return config
    return replace(config, out_dir=Path("edgefit-out") / target_id)


def run_folder(config: OptimizeConfig) -> Path:
    """The run's output folder (decided by :func:`with_output` before the run starts)."""
    if config.out_dir is None:
        raise ValueError("the output folder is decided before the run starts (with_output)")
    return config.out_dir
