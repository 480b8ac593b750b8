"""`edgefit optimize --executor ray`: candidates as Ray tasks, measurements on the device farm.

Each candidate is one task (materialize + accuracy, one CPU, any node); when a live node serves the
run's target (``device:<target>``), a second task measures it there and the record's latency
becomes that measurement. Without such a node the latency stays the estimate, labelled as one, and
the run's notes say why. The driver alone talks to the optuna storage and writes the records, as a
local run does.

Failures: a task whose worker or node dies is retried by Ray (``max_retries``); once the retries
are spent the candidate is recorded as failed with the reason, and a failed measurement leaves the
estimate in place with the error beside it. Every candidate that was started is in the results,
never lost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from edgefit._lazy import lazy_import
from edgefit.distributed._cluster import device_resource_names, ray_session, require_ray, unpack
from edgefit.distributed._tasks import edgefit_candidate, edgefit_measure

if TYPE_CHECKING:
    import ray
    import ray.exceptions as rex

    from edgefit.search import _executor as search_executor
    from edgefit.search import _figures
    from edgefit.search._config import OptimizeConfig
else:  # search and ray load when a run starts (see RayExecutor)
    ray, rex, search_executor, _figures = lazy_import(
        "ray", "ray.exceptions", "edgefit.search._executor", "edgefit.search._figures"
    )

MAX_RETRIES = 2
POLL_S = 5.0  # how often a quiet wait checks that the device node is still there


@dataclass(frozen=True)
class RayOptions:
    address: str | None = None  # None: start Ray on this machine for the run
    max_retries: int = MAX_RETRIES
    num_cpus: int | None = None  # CPUs of a Ray started here (None: all)


class RayExecutor:
    """search's ``Executor`` on Ray (see :class:`edgefit.search._executor.Executor` for the
    contract); ``edgefit.search`` finds it by name (``--executor ray``) and never imports this
    package. Importing it stays light: search and ray load when a run starts."""

    name: ClassVar[str] = "ray"

    def __init__(self, options: RayOptions | None = None) -> None:
        self.options = options or RayOptions()

    @classmethod
    def from_config(cls, config: OptimizeConfig | None = None) -> RayExecutor:
        if config is None:
            return cls()
        return cls(RayOptions(config.ray_address, config.ray_retries))

    def require(self) -> None:
        require_ray()

    def run(
        self,
        jobs: Iterable,
        ctx,
        *,
        should_stop: Callable[[], bool],
        progress: Callable[[str, int, int], None] | None,
        notes: list[str],
    ) -> Iterator[tuple[Any, dict]]:
        return run_on_ray(
            jobs,
            ctx,
            options=self.options,
            should_stop=should_stop,
            progress=progress,
            failed_record=search_executor.failed_record,
            notes=notes,
        )


def _lost(exc: BaseException) -> bool:
    """A failure of the machinery (worker, node, object) rather than of the candidate's own
    code."""
    kinds = tuple(
        getattr(rex, n)
        for n in (
            "WorkerCrashedError",
            "NodeDiedError",
            "ObjectLostError",
            "OwnerDiedError",
            "LocalRayletDiedError",
            "TaskUnschedulableError",
            "ActorDiedError",
        )
        if hasattr(rex, n)
    )
    return isinstance(exc, kinds)


def _reason(exc: BaseException, retries: int) -> str:
    if isinstance(
        exc, rex.RayTaskError
    ):  # the candidate's own code raised: its error, not Ray's wrapper
        cause = exc.cause if getattr(exc, "cause", None) is not None else exc
        return (
            f"{type(cause).__name__}: "
            f"{str(cause).strip().splitlines()[-1][:300] if str(cause).strip() else ''}"
        )
    if _lost(exc):
        return f"worker or node lost ({type(exc).__name__}) on every attempt ({retries + 1})"
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def run_on_ray(
    jobs: Iterable,
    ctx,
    *,
    options: RayOptions,
    should_stop: Callable[[], bool],
    progress: Callable[[str, int, int], None] | None,
    failed_record: Callable[..., dict],
    notes: list[str],
) -> Iterator[tuple[Any, dict]]:
    """Yield ``(job, record)`` as candidates finish on the cluster (not in submission order)."""
    with ray_session(options.address, num_cpus=options.num_cpus) as cluster:
        target = ctx.settings.target
        device = cluster.device_resource(target)
        notes.append(
            f"executor: Ray at {cluster.address}, {len(cluster.nodes())} node(s), "
            f"{cluster.cpus()} CPU(s)"
        )
        if device:
            notes.append(
                f"latencies measured on the device farm: {device} served by "
                f"{', '.join(cluster.device_nodes(device))}"
            )
        else:
            notes.append(
                f"no Ray node serves {' or '.join(device_resource_names(target))}: latencies are "
                "estimates "
                "(start one with ray start --address=… "
                f"--resources='{{\"device:{target.id}\": 1}}')"
            )
        candidate = ray.remote(edgefit_candidate).options(
            num_cpus=1, max_retries=options.max_retries, retry_exceptions=False
        )
        measure_task = ray.remote(edgefit_measure).options(
            num_cpus=1,
            resources={device: 1} if device else None,
            max_retries=options.max_retries,
            retry_exceptions=False,
        )
        ctx_ref = ray.put(
            ctx
        )  # the base, its data and the reference outputs go to the object store once
        calibration = ctx.base.calibration  # for a device node that converts to its own format
        queue = list(jobs)
        total = len(queue)
        window = max(1, cluster.cpus())
        building: dict[Any, Any] = {}  # ref → job
        measuring: dict[Any, tuple[Any, dict]] = {}  # ref → (job, record)
        done = 0
        try:
            while queue or building or measuring:
                while queue and len(building) < window and not should_stop():
                    job = queue.pop(0)
                    building[candidate.remote(ctx_ref, job.choice)] = job
                if not building and not measuring:
                    break  # stopped (budget): what never started is reported by the caller
                ready, _ = ray.wait(
                    list(building) + list(measuring), num_returns=1, timeout=POLL_S
                )
                if not ready:
                    if (
                        device and cluster.device_resource(target) is None
                    ):  # its node left: tasks would wait forever
                        why = f"no live node serves {device} any more (node lost)"
                        notes.append(f"{why}: the remaining latencies are estimates")
                        device = None
                        for ref, (job, record) in list(measuring.items()):
                            ray.cancel(ref, force=True)
                            del measuring[ref]
                            done += 1
                            yield job, _unmeasured(record, why)
                    continue
                ref = ready[0]
                if ref in building:
                    job = building.pop(ref)
                    try:
                        out = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001 - every failure becomes a failed record
                        done += 1
                        yield (
                            job,
                            failed_record(
                                job, _reason(exc, options.max_retries), stage="materialize"
                            ),
                        )
                        continue
                    record = out["record"]
                    _mirror(out["files"], record)
                    if device:
                        measuring[
                            measure_task.remote(out["files"], record, ctx.settings, calibration)
                        ] = (job, record)
                        continue
                    done += 1
                    yield job, record
                else:
                    job, record = measuring.pop(ref)
                    try:
                        record = _figures.with_latency(record, ray.get(ref))
                    except Exception as exc:  # noqa: BLE001 - the estimate stays, with why it is not measured
                        record = _unmeasured(record, _reason(exc, options.max_retries))
                    done += 1
                    yield job, record
                if progress:
                    progress(f"{done}/{total} candidates on Ray", done, total)
        finally:
            for ref in list(building) + list(measuring):  # interrupted: stop what is still running
                ray.cancel(ref, force=True)


def _unmeasured(record: dict, why: str) -> dict:
    """``record`` keeping its estimated latency, with why the device did not measure it."""
    return {**record, "latency": {**record["latency"], "measurement_error": why}}


def _mirror(files: dict[str, Any], record: dict) -> None:
    """Put the candidate's files where its record says, when it was built on another node's
    disk."""
    targets = {
        "onnx": Path(record["onnx"]),
        "fp32": Path(record["onnx"]).parent / "model.fp32.onnx",
        "artifact": Path(record["artifact"]["path"]),
    }
    for key, packed in files.items():
        path = targets[key]
        if not path.exists():
            unpack(packed, path.parent)
