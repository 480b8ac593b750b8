"""Where a run's candidates are built, scored and measured: an :class:`Executor`, found by name.

search owns the interface and the local implementation; other packages implement it and are named
in :data:`EXECUTORS` as ``"module:Class"``, imported on first use (as ``runtimes/_registry.py``
finds backends), so search never imports them: the Ray executor lives in
:mod:`edgefit.distributed`, a layer above search (``tests/packaging/test_layers.py``).

>>> get_executor("local").name
'local'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from importlib import import_module
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, runtime_checkable

from edgefit._io import WriteError, write_error
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import MeasurementError
from edgefit.search._candidate import run_candidate

if TYPE_CHECKING:
    from edgefit.search._config import OptimizeConfig

# name → "module:Class"; a name here is a valid --executor
EXECUTORS: dict[str, str] = {
    "local": "edgefit.search._executor:LocalExecutor",
    "ray": "edgefit.distributed._executor:RayExecutor",
}

Progress = Callable[[str, int, int], None]


@runtime_checkable
class Executor(Protocol):
    """Runs a run's jobs and yields ``(job, record)`` as each finishes, in any order.

    The contract every executor keeps (the search relies on it for resume and Ctrl-C):

    * every job it starts is yielded exactly once; a candidate that fails is yielded as
      :func:`failed_record` with the reason, so one candidate never ends the run. Only a
      :class:`~edgefit._io.WriteError` (a full disk fails every candidate after it) and
      ``KeyboardInterrupt`` propagate;
    * it asks ``should_stop()`` before starting each job and starts nothing once it is true; jobs
      never started are not yielded (the caller counts them);
    * it reports ``progress(label, done, total)`` when given one, and appends lines for the run's
      notes to ``notes`` (where it ran, what it could not do);
    * the iterator's ``close()`` releases what it holds at once (the caller closes it on Ctrl-C);
    * it writes no record and never talks to the study: the caller does both, in one process.

    ``job`` has ``.key`` and ``.choice``; ``ctx`` is the run's ``CandidateContext`` (base,
    settings, work folder, reference outputs, base accuracy), picklable for remote workers.
    """

    name: ClassVar[str]

    def require(self) -> None:
        """Fail now with the one line that fixes it (an install command) if this executor cannot
        run here; called before any work."""
        ...

    def run(
        self,
        jobs: Iterable[Any],
        ctx: Any,
        *,
        should_stop: Callable[[], bool],
        progress: Progress | None,
        notes: list[str],
    ) -> Iterator[tuple[Any, dict]]: ...


def failed_record(job: Any, error: str, *, stage: str = "materialize") -> dict:
    """The record of a candidate that could not be built, scored or measured: kept, with why."""
    return {
        "choice": job.choice.to_dict(),
        "label": job.choice.label,
        "status": "failed",
        "stage": stage,
        "error": error,
    }


class LocalExecutor:
    """One candidate after another in this process (the default)."""

    name: ClassVar[str] = "local"

    @classmethod
    def from_config(cls, config: OptimizeConfig | None = None) -> LocalExecutor:
        return cls()

    def require(self) -> None:
        return None

    def run(
        self,
        jobs: Iterable[Any],
        ctx: Any,
        *,
        should_stop: Callable[[], bool],
        progress: Progress | None,
        notes: list[str],
    ) -> Iterator[tuple[Any, dict]]:
        jobs = list(jobs)
        for i, job in enumerate(jobs):
            if should_stop():
                return
            if progress:
                progress(job.choice.label, i, len(jobs))
            try:
                record = run_candidate(
                    ctx.base,
                    job.choice,
                    ctx.settings,
                    ctx.work_dir,
                    ctx.reference,
                    ctx.base_accuracy,
                )
            except WriteError:  # a full disk or a read-only folder fails every later candidate
                raise
            except MeasurementError as exc:  # the measuring child crashed, hung or was killed
                record = failed_record(job, _why(exc), stage="measure")
            except OSError as exc:
                if (err := write_error(exc, exc.filename or ctx.work_dir)) is not None:
                    raise err from exc
                record = failed_record(job, _why(exc))
            except (EdgefitError, RuntimeError, ValueError) as exc:  # one candidate failing
                record = failed_record(job, _why(exc))
            yield job, record


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def executor_names() -> list[str]:
    return list(EXECUTORS)


def get_executor(name: str, config: OptimizeConfig | None = None) -> Executor:
    """The executor called ``name``, built from the run's config (``--ray-address`` …)."""
    if name not in EXECUTORS:
        raise EdgefitError(
            f"unknown executor '{name}'",
            where="--executor",
            fix=f"use one of {', '.join(EXECUTORS)}",
        )
    module, _, cls = EXECUTORS[name].partition(":")
    executor = getattr(import_module(module), cls).from_config(config)
    assert isinstance(executor, Executor), f"{EXECUTORS[name]} does not implement Executor"
    return executor
