"""The runtime extension point: :class:`Runtime`, and the values it hands back.

A backend (onnxruntime, TensorRT, …) is one subclass of :class:`Runtime` in its own private module,
registered by name in :mod:`edgefit.runtimes._registry`. The subclass implements four things —
:meth:`~Runtime.available`, :meth:`~Runtime.convert`, :meth:`~Runtime.open` and
:attr:`~Runtime.precisions` — and inherits :meth:`~Runtime.measure` (timed in a child process) and
:meth:`~Runtime.infer`.
"""

from __future__ import annotations

import abc
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import numpy as np

    from edgefit.runtimes import _measure
else:
    # _measure imports this module's Artifact and Timing: Runtime.measure reaches it lazily
    np, _measure = lazy_import("numpy", "edgefit.runtimes._measure")

Precision = Literal["fp32", "fp16", "int8", "int8-dynamic"]
PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "int8", "int8-dynamic")
Inputs = Mapping[str, "np.ndarray"]


class RuntimeUnavailableError(EdgefitError):
    """The runtime cannot run on this machine (missing package, no GPU, wrong OS); ``what`` says
    why."""


class UnsupportedPrecisionError(EdgefitError):
    """The runtime cannot produce this precision here; ``what`` says why."""


class MeasurementError(EdgefitError):
    """The measurement child crashed, was killed or timed out; edgefit itself keeps running.

    ``returncode`` is the child's exit status (negative: killed by that signal; None: timed out)
    and ``stderr_tail`` the end of what it wrote to stderr, so a caller can record the failure and
    go on.
    """

    exit_code = 1  # not a usage error: the input was fine, the runtime failed

    def __init__(
        self,
        what: str,
        *,
        returncode: int | None = None,
        stderr_tail: str = "",
        where: str | None = None,
        fix: str | None = None,
    ) -> None:
        super().__init__(what, where=where, fix=fix)
        self.returncode = returncode
        self.stderr_tail = stderr_tail


@dataclass(frozen=True)
class Availability:
    """Whether a runtime can run here. ``reason`` is never empty: why not, or what was found.

    >>> Availability(False, "the Python package 'tensorrt' is not installed").ok
    False
    """

    ok: bool
    reason: str
    version: str | None = None

    def __post_init__(self) -> None:
        if not self.reason:
            raise ValueError("Availability.reason must say why (or what was found)")

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Artifact:
    """A model converted for one runtime at one precision: a file plus what is known about it.

    ``metadata`` holds, among others, ``parity`` (see :class:`~edgefit.runtimes.Parity`), the
    frozen conversion ``options``, and how calibration and parity inputs were made. Treat it as
    read-only.
    """

    path: Path
    format: str
    precision: str
    runtime: str
    metadata: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "precision": self.precision,
            "runtime": self.runtime,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Artifact:
        return cls(
            Path(data["path"]),
            data["format"],
            data["precision"],
            data["runtime"],
            dict(data["metadata"]),
        )


@dataclass(frozen=True)
class Timing:
    """Latency of one artifact measured on one runtime, in **seconds**.

    Percentiles are numpy's linear-interpolation percentiles over ``n_runs`` timed runs (after the
    warm-up runs, which are discarded). ``jitter`` is defined as ``p99 - p50``: how much later than
    usual a slow run finishes, the figure a real-time budget cares about. ``peak_rss_bytes`` is the
    measurement child's peak resident set size (``VmHWM`` on Linux, ``getrusage`` elsewhere), so it
    includes the Python interpreter, numpy and the runtime library, not only the model.
    ``cpu_wait_fraction`` is the share of the measuring threads' time spent runnable but waiting
    for a CPU that another process held (Linux scheduler statistics; None elsewhere): above a few
    percent, the wall-clock figures include foreign load and will not repeat on a quiet machine.
    ``environment`` says where the numbers came from: runtime, version, threads, providers, pinned
    CPUs.
    """

    mean: float
    p50: float
    p90: float
    p99: float
    max: float
    std: float
    jitter: float
    n_runs: int
    peak_rss_bytes: int | None
    cpu_wait_fraction: float | None = None
    environment: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @classmethod
    def from_samples(
        cls,
        samples_s,
        *,
        peak_rss_bytes: int | None = None,
        cpu_wait_fraction: float | None = None,
        environment: Mapping[str, Any] | None = None,
    ) -> Timing:
        """Summarize per-run latencies (seconds).

        >>> t = Timing.from_samples([0.001] * 99 + [0.002])
        >>> round(t.p50, 6), round(t.max, 6), t.n_runs
        (0.001, 0.002, 100)
        """
        s = np.asarray(samples_s, dtype=np.float64)
        if s.ndim != 1 or s.size == 0 or not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ValueError(
                "timing samples must be a non-empty list of finite, non-negative seconds"
            )
        p50, p90, p99 = (float(v) for v in np.percentile(s, [50, 90, 99]))
        return cls(
            mean=float(s.mean()),
            p50=p50,
            p90=p90,
            p99=p99,
            max=float(s.max()),
            std=float(s.std()),
            jitter=p99 - p50,
            n_runs=int(s.size),
            peak_rss_bytes=peak_rss_bytes,
            cpu_wait_fraction=cpu_wait_fraction,
            environment=dict(environment or {}),
        )

    @property
    def provenance(self) -> str:
        """``"measured on onnxruntime 1.31.1, 2 threads"``: where every number of this Timing came
        from.

        A runtime whose "timing" is a compiler's estimate (``Runtime.timing_kind == "estimated"``,
        e.g. Arm Vela's cycle count) puts its own label in ``environment["estimate"]``; that is
        used.
        """
        env = self.environment
        if env.get("estimate"):
            return str(env["estimate"])
        threads = env.get("threads")
        where = f"measured on {env.get('runtime', '?')} {env.get('version', '?')}"
        return (
            f"{where}, {threads} thread{'s' if threads != 1 else ''}"
            if threads is not None
            else where
        )

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "unit": "s", "provenance": self.provenance}


class Session(abc.ABC):
    """A loaded artifact, ready to run. Created by :meth:`Runtime.open`.

    Contract: ``run`` takes every model input by name and returns every output by name as numpy
    arrays; it may be called many times and must not keep state between calls. ``timed_run``
    returns the latency of one run in seconds; the default brackets ``run`` with
    ``time.perf_counter``, and a GPU backend overrides it to time with device events after
    synchronizing. ``environment`` describes where it runs (runtime, version, threads, providers …)
    and is copied into :class:`Timing`. A session lives in one process; it is not shared between
    threads.
    """

    environment: dict[str, Any]

    @abc.abstractmethod
    def run(self, inputs: Inputs) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def input_specs(self) -> dict[str, tuple[tuple[int, ...], str]]:
        """Each input's (shape, numpy dtype name); dynamic dimensions are given as 1."""

    def timed_run(self, inputs: Inputs) -> float:
        start = time.perf_counter()
        self.run(inputs)
        return time.perf_counter() - start


class Runtime(abc.ABC):
    """A way to run a model: a converter plus an inference engine (onnxruntime, TensorRT, …).

    Contract for implementers:

    * ``name`` is the registry name; ``description`` one line for ``edgefit runtimes list``.
    * :meth:`available` never raises and never imports more than it must; when ``ok`` is False,
      ``reason`` says why in words a user can act on (missing package with its pip line, no GPU,
      OS).
    * :meth:`convert` writes one artifact file under ``out_dir`` and returns an :class:`Artifact`
      whose ``metadata["parity"]`` compares it with the fp32 source model (see
      :func:`~edgefit.runtimes.parity`). Keyword options are validated into the backend's frozen
      ``Options`` dataclass at once; an unknown option or precision is an
      :class:`~edgefit.errors.EdgefitError`, never a silent default.
    * :meth:`open` loads an artifact into a :class:`Session`. It runs inside the measurement child
      process, where a crash cannot take edgefit down.
    * Instances hold no mutable state, so one instance may be used from several threads.
    * :meth:`runnable` says whether artifacts can also be *run* here; it is :meth:`available`
      unless the runtime converts on any OS but runs on one (Core ML: conversion on Linux,
      prediction on macOS).
    * ``timing_kind`` is ``"measured"`` (timed runs) or ``"estimated"`` (a vendor compiler's
      estimate, e.g. Arm Vela for an Ethos-U NPU that is not attached here; ``Timing.provenance``
      then says so).
    * An artifact is one file, or one bundle directory where the format is a directory
      (``.mlpackage``).

    :meth:`measure` (inherited) times a session in a child process; :meth:`infer` runs it
    in-process.

    >>> from edgefit.runtimes import get_runtime
    >>> rt = get_runtime("onnxruntime")                                # doctest: +SKIP
    >>> art = rt.convert("model.onnx", "int8", "out/")                  # doctest: +SKIP
    >>> rt.measure(art, threads=1).p50                                  # doctest: +SKIP
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type] = type(None)  # the backend's frozen options dataclass
    timing_kind: ClassVar[str] = (
        "measured"  # or "estimated": measure() reports a compiler's estimate
    )
    default_precision: ClassVar[str] = (
        "fp32"  # what a caller that names no precision should ask for
    )

    @abc.abstractmethod
    def available(self) -> Availability: ...

    @abc.abstractmethod
    def precisions(self) -> dict[str, str | None]:
        """Each of :data:`PRECISIONS` → None when supported here, or the reason it is not."""

    @abc.abstractmethod
    def convert(
        self,
        model: Any,
        precision: str,
        out_dir: str | Path,
        *,
        calibration: Sequence[Inputs] | None = None,
        **options: Any,
    ) -> Artifact: ...

    @abc.abstractmethod
    def open(self, artifact: Artifact, *, threads: int | None = None) -> Session: ...

    # -- inherited behaviour ----------------------------------------------------------------------

    def require_available(self) -> Availability:
        """Return :meth:`available`, or raise :class:`RuntimeUnavailableError` (exit 2) with its
        reason."""
        status = self.available()
        if not status.ok:
            raise RuntimeUnavailableError(
                f"runtime '{self.name}' is not available: {status.reason}",
                where="--runtime",
                fix="run `edgefit runtimes list` for the others",
            )
        return status

    def runnable(self) -> Availability:
        """Whether artifacts can be run (``infer``, ``measure``) here; :meth:`available` by
        default."""
        return self.available()

    def require_runnable(self) -> Availability:
        """Return :meth:`runnable`, or raise :class:`RuntimeUnavailableError` (exit 2) with its
        reason."""
        status = self.runnable()
        if not status.ok:
            raise RuntimeUnavailableError(
                f"runtime '{self.name}' cannot run models here: {status.reason}",
                where="--runtime",
                fix="run `edgefit runtimes list` for the others",
            )
        return status

    def check_precision(self, precision: str) -> None:
        if precision not in PRECISIONS:
            raise EdgefitError(
                f"unknown precision '{precision}'",
                where="--precision",
                fix=f"use one of {', '.join(PRECISIONS)}",
            )
        reason = self.precisions().get(precision, "not implemented by this runtime")
        if reason:
            raise UnsupportedPrecisionError(
                f"{self.name} cannot produce {precision} here: {reason}",
                where="--precision",
                fix="pick another precision or runtime",
            )

    def options(self, **options: Any):
        """Validate keyword options into this backend's frozen ``Options`` (unknown keys are an
        error)."""
        known = (
            {f.name for f in dataclasses.fields(self.Options)}
            if dataclasses.is_dataclass(self.Options)
            else set()
        )
        unknown = sorted(set(options) - known)
        if unknown:
            raise EdgefitError(
                f"unknown {self.name} option(s) {unknown}",
                where="options",
                fix=f"use {', '.join(sorted(known)) or 'no options'}",
            )
        return self.Options(**options) if known else None

    def check_artifact(self, artifact: Artifact) -> None:
        """An artifact made by this runtime whose file still exists, or an
        :class:`EdgefitError`."""
        if artifact.runtime != self.name:
            raise EdgefitError(
                f"{artifact.path} was made for {artifact.runtime}, not {self.name}",
                where="artifact",
                fix=f"use get_runtime('{artifact.runtime}'), or convert for {self.name}",
            )
        if not Path(artifact.path).exists():  # a file, or a bundle directory (.mlpackage)
            raise EdgefitError(
                f"artifact file not found: {artifact.path}", where="artifact", fix="convert again"
            )

    def infer(
        self, artifact: Artifact, inputs: Inputs, *, threads: int | None = None
    ) -> dict[str, np.ndarray]:
        """Run ``artifact`` once on ``inputs`` in this process (for parity checks, not timing)."""
        self.check_artifact(artifact)
        self.require_runnable()
        return self.open(artifact, threads=threads).run(inputs)

    def measure(
        self,
        artifact: Artifact,
        inputs: Inputs | None = None,
        *,
        warmup: int = 10,
        runs: int = 100,
        threads: int | None = 1,
        cpus: tuple[int, ...] | None = None,
        min_runs: int = 200,
        budget_s: float = 10.0,
        timeout_s: float = 600.0,
    ) -> Timing:
        """Time ``artifact`` in a child process (crash- and timeout-isolated).

        ``warmup`` runs are discarded; then at least ``runs`` timed runs, extended to ``min_runs``
        so that p99 rests on real samples unless ``budget_s`` seconds of timed runs pass first (the
        rule is documented on :class:`~edgefit.runtimes.MeasureSettings`). ``threads`` is 1 unless
        given (None: every CPU the child may use); ``cpus`` pins the child to those CPUs.
        ``inputs`` default to random data of the model's input shapes (seed 0). A crash, kill or
        timeout of the child raises
        :class:`MeasurementError`; this process is unaffected.
        """
        self.check_artifact(artifact)
        self.require_runnable()
        settings = _measure.MeasureSettings(
            warmup=warmup,
            runs=runs,
            threads=threads,
            cpus=cpus,
            min_runs=min_runs,
            budget_s=budget_s,
            timeout_s=timeout_s,
        )
        # the child imports the class itself, so backends registered at run time are measured too
        return _measure.measure_in_child(
            f"{type(self).__module__}:{type(self).__qualname__}", artifact, inputs, settings
        )
