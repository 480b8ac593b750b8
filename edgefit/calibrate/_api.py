"""`edgefit calibrate` as one library call: measure here (or on the target's Ray node), fit, write
the profile, check it (:func:`calibrate_target`, answered by a :class:`CalibrationResult`).

The function is ``calibrate_target``, not ``calibrate``, because ``edgefit.calibrate`` is this
subpackage: importing any of its modules sets the package attribute ``edgefit.calibrate`` to the
module, which would replace a lazily exported function of that name (and ``import
edgefit.calibrate as c`` would hand back the function). :func:`edgefit.calibrate.calibrate` stays
the catalog sweep alone.

The Ray path runs the sweep through :data:`REMOTE`, found by name: remote calibration lives in
``edgefit.distributed``, a layer above this one (tests/packaging/test_layers.py), as search finds
its Ray executor.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any

import edgefit.calibrate._calibrate as sweep
from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit._units import parse_duration
from edgefit.calibrate._host_fidelity import host_fidelity
from edgefit.calibrate._learn import QUICK, calibrate_learned, default_threads_list, refit_learned
from edgefit.calibrate._report import check_fidelity
from edgefit.errors import EdgefitError, require
from edgefit.estimate._fingerprint import this_machine
from edgefit.estimate._learned import learned_path
from edgefit.estimate._profile import profile_path

if TYPE_CHECKING:
    from edgefit import targets
else:  # the target model needs pydantic: loaded when a calibration starts
    targets = lazy_import("edgefit.targets")

ProgressFn = Callable[[str, int, int], None]

METHODS = ("auto", "learned", "catalog")
EXECUTORS = ("local", "ray")
# where a catalog sweep runs when it does not run here: "module:function" (see the module)
REMOTE = {"ray": "edgefit.distributed._remote:calibrate_on_device"}


@dataclass(frozen=True)
class CalibrationResult:
    """One calibration: the ``method`` that ran (``learned`` or ``catalog``), the profile written
    (``profile``, its ``path``), the zoo check (``fidelity``, None when skipped), the node it ran
    on (``measured_on``, None when here) and the ``report`` `edgefit calibrate --json` prints."""

    method: str
    path: str
    profile: Any
    fidelity: Mapping[str, Any] | None
    report: Mapping[str, Any]
    measured_on: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON `edgefit calibrate --json` prints (a copy)."""
        return copy.deepcopy(dict(self.report))


def calibration_method(target: str | Path, runtime: str, method: str) -> str:
    """``learned`` or ``catalog`` for ``method`` (``auto``: learned on host-cpu with onnxruntime,
    the catalog sweep everywhere else); an error when the pair cannot run ``method``."""
    if method not in METHODS:
        raise EdgefitError(
            f"unknown method '{method}'", where="--method", fix="use auto, learned or catalog"
        )
    probe = targets.load_target(target).probe
    learnable = bool(probe) and runtime == "onnxruntime"
    if method == "learned" and not learnable:
        raise EdgefitError(
            "learned calibration needs host-cpu and onnxruntime",
            where="--method",
            fix="use --method catalog for this target or runtime",
        )
    if method != "auto":
        return method
    return "learned" if learnable else "catalog"


def calibrate_target(
    target: str | Path = "host-cpu",
    runtime: str = "onnxruntime",
    *,
    budget: str | float = "5m",
    method: str = "auto",
    quick: bool = False,
    networks: int | None = None,
    adaptive_rounds: int = 1,
    refit: bool = False,
    threads: int | None = None,
    out: str | Path | None = None,
    fidelity: bool = True,
    executor: str = "local",
    ray_address: str | None = None,
    progress: ProgressFn | None = None,
) -> CalibrationResult:
    """Calibrate ``target`` on ``runtime``: measure, fit, write the profile (default
    ``profiles/<target>/<runtime>.yaml``, or ``out``), then check it on the model zoo unless
    ``fidelity`` is False.

    ``method``: ``learned`` (host-cpu with onnxruntime: random networks timed kernel by kernel;
    ``networks`` of them, 16 with ``quick``, then ``adaptive_rounds`` rounds of networks focused on
    the kernel ops the first fit predicts worst, none with ``quick``; ``refit`` fits again from
    the timings stored beside the profile and measures nothing), ``catalog`` (the per-class
    kernel sweep for ``budget``: seconds or ``"5m"``), or ``auto``. ``executor="ray"`` runs the
    sweep on the Ray node serving the target (``ray_address``) and writes the files here.
    ``threads``: intra-op threads (default all usable cores). ``progress(label, done, total)``
    is called as it measures. Bad input raises :class:`~edgefit.errors.EdgefitError` before
    anything is measured.

    >>> import edgefit
    >>> result = edgefit.calibrate_target("host-cpu", quick=True)  # doctest: +SKIP
    >>> result.method, result.path, result.fidelity["per_threads"]  # doctest: +SKIP
    """
    seconds = parse_duration(budget, where="--budget")
    if method == "auto" and executor == "ray":
        method = "catalog"  # the farm node runs the catalog sweep; learned calibration runs here
    if threads is not None and threads < 1:
        raise EdgefitError(
            f"threads must be at least 1, got {threads}", where="--threads", fix="pass --threads 1"
        )
    if calibration_method(target, runtime, method) == "learned":
        if executor != "local":
            raise EdgefitError(
                "learned calibration runs here only", where="--executor", fix="drop --executor ray"
            )
        return _learned(networks, quick, threads, out, fidelity, refit, progress, adaptive_rounds)
    if executor not in EXECUTORS:
        raise EdgefitError(
            f"unknown executor '{executor}'", where="--executor", fix="use local or ray"
        )
    if executor != "local":
        return _remote(
            executor, target, runtime, seconds, threads, out, fidelity, ray_address, progress
        )

    profile = sweep.calibrate(  # looked up at call time: a test stands in for minutes of timing
        str(target),
        runtime,
        budget_s=seconds,
        threads=threads,
        out=Path(out) if out is not None else None,
        progress=progress,
    )
    summary = check_fidelity(profile, progress) if fidelity else None
    report = {
        "profile": profile.path,
        "residual": profile.residual,
        "fidelity": summary,
        "environment": profile.environment,
    }
    return CalibrationResult("catalog", str(profile.path), profile, summary, report)


def _remote(
    executor: str,
    target: str | Path,
    runtime: str,
    seconds: float,
    threads: int | None,
    out: str | Path | None,
    fidelity: bool,
    address: str | None,
    progress: ProgressFn | None,
) -> CalibrationResult:
    """The catalog sweep on the node that serves ``target``; its files are written here."""
    require("ray", extra="ray", purpose="--executor ray")  # the install line before any work
    t = targets.load_target(target)
    path = Path(out) if out else profile_path(t.id, runtime)
    if progress is not None:
        progress(
            f"calibrating on the Ray node that serves device:{t.id} "
            f"({seconds:.0f} s of kernels) …",
            0,
            1,
        )
    module, _, name = REMOTE[executor].partition(":")
    result = getattr(import_module(module), name)(
        t, runtime, budget_s=seconds, threads=threads, out=path, fidelity=fidelity, address=address
    )
    profile, summary = result["profile"], result["summary"]
    report = {
        "profile": str(path),
        "residual": profile.residual,
        "fidelity": summary,
        "environment": profile.environment,
        "measured_on": result["host"],
        "files": result["files"],
    }
    return CalibrationResult("catalog", str(path), profile, summary, report, result["host"])


def _learned(
    networks: int | None,
    quick: bool,
    threads: int | None,
    out: str | Path | None,
    fidelity: bool,
    refit: bool,
    progress: ProgressFn | None,
    adaptive_rounds: int = 1,
) -> CalibrationResult:
    if adaptive_rounds < 0:
        raise EdgefitError(
            f"adaptive rounds must be 0 or more, got {adaptive_rounds}",
            where="--adaptive-rounds",
            fix="pass 0 (none) or more",
        )
    count = networks or (QUICK["networks"] if quick else 150)
    if count < 4:
        raise EdgefitError(
            f"--networks {count} is too few to cross-validate",
            where="--networks",
            fix="pass 4 or more",
        )
    threads_list = default_threads_list(threads)
    if refit:
        profile = refit_learned(
            Path(out) if out else learned_path("host-cpu", "onnxruntime", this_machine())
        )
    else:
        profile = calibrate_learned(
            networks=count,
            threads_list=threads_list,
            out=Path(out) if out is not None else None,
            quick=quick,
            adaptive_rounds=adaptive_rounds,
            cache=user_cache_dir() / "corpus",
            progress=progress,
        )
    summary = host_fidelity(profile, "ci", threads_list, progress)[0] if fidelity else None
    report = {
        "profile": profile.path,
        "fingerprint": profile.fingerprint.to_dict(),
        "training": profile.training,
        "intervals": {k: profile.interval(k) for k in profile.intervals},
        "fidelity": summary,
    }
    return CalibrationResult("learned", str(profile.path), profile, summary, report)
