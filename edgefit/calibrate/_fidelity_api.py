"""`edgefit fidelity` as one library call: how far the estimate is from measured latency
(:func:`fidelity`, answered by a :class:`FidelityResult`).

What it is judged against depends on the target, and :attr:`FidelityResult.kind` says which:

* ``"host"`` — host-cpu with onnxruntime: the learned profile against the fidelity zoo measured
  here (the timings are written beside the profile);
* ``"zoo"`` — a catalog calibration profile against the model zoo measured on its runtime;
* ``"published"`` — a target measured only by others: its estimate against each published point,
  predicted leaving that point's run out (``update=True`` writes the fit the estimator reads);
* ``"check"`` — a target calibrated another way (Ethos-U55 on Vela): the published points check
  that estimate, scaled to each point's clock, and nothing is fitted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit.calibrate._api import calibration_method
from edgefit.calibrate._fidelity_records import FidelityRecord, record_of
from edgefit.calibrate._host_fidelity import host_fidelity
from edgefit.calibrate._learn import default_threads_list
from edgefit.calibrate._report import check_fidelity
from edgefit.errors import EdgefitError
from edgefit.estimate import find_profile, load_profile
from edgefit.estimate._learned import find_learned, load_learned

if TYPE_CHECKING:
    from edgefit import targets
    from edgefit.estimate import _published as pub
    from edgefit.estimate import _published_check as pub_check
    from edgefit.estimate import _published_fit as pub_fit
else:  # the target model and the published points need pydantic: loaded when a check runs
    targets, pub, pub_check, pub_fit = lazy_import(
        "edgefit.targets",
        "edgefit.estimate._published",
        "edgefit.estimate._published_check",
        "edgefit.estimate._published_fit",
    )

ProgressFn = Callable[[str, int, int], None]

SI_UNIT = {
    "latency_mean": "s",
    "latency_p90": "s",
    "latency_p99": "s",
    "throughput": "samples/s",
    "energy_per_inference": "J",
}


@dataclass(frozen=True)
class FidelityResult:
    """One fidelity check: its ``kind`` (see the module), the ``report`` `edgefit fidelity --json`
    prints, the file written (``written``: the host timings or the published fit, else None) and
    ``warnings`` (a learned profile calibrated on another machine)."""

    kind: str
    report: Mapping[str, Any]
    written: str | None = None
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON `edgefit fidelity --json` prints (a copy)."""
        return copy.deepcopy(dict(self.report))

    @property
    def record(self) -> FidelityRecord:
        """The report as its typed record, by ``kind`` (a :class:`HostFidelity`,
        :class:`ZooFidelity`, :class:`CheckFidelity` or :class:`PublishedFidelity`, from
        :mod:`edgefit.calibrate._fidelity_records`): rows and figures as attributes."""
        return record_of(self.kind, self.report)


def fidelity(
    target: str | Path = "host-cpu",
    runtime: str = "onnxruntime",
    *,
    profile: str | Path | None = None,
    subset: str | None = None,
    threads: str | Iterable[int] | None = None,
    update: bool = False,
    progress: ProgressFn | None = None,
) -> FidelityResult:
    """Estimate vs measured latency for ``target`` on ``runtime``: on a model zoo measured here,
    or against the target's published measurements (see the module for which, by target).

    ``profile``: the profile to check (default: the shipped or calibrated one). host-cpu only:
    ``subset`` is a zoo tag (``"ci"``, the small CI subset; default all) and ``threads`` the
    thread counts (``"1,2"`` or ``[1, 2]``; default 1 and all cores). ``update`` (published
    targets) writes the fit the estimator uses to ``profiles/<target>/published.fit.yaml``.
    Bad input raises :class:`~edgefit.errors.EdgefitError` before anything is measured or written.

    >>> import edgefit
    >>> result = edgefit.fidelity("orin")  # doctest: +SKIP
    >>> result.kind, result.report["loo_median_abs_error"]  # doctest: +SKIP
    """
    if calibration_method(target, runtime, "auto") == "learned":
        return _learned(profile, subset, _thread_counts(threads), progress)
    t = targets.load_target(target)
    found = _profile(t, runtime, profile)
    if found is None and profile is None:
        if pub.published_path(t.id).is_file():
            if find_profile(t) is not None:  # calibrated another way (Vela): the points check it
                return _check(t, update)
            return _published(t, update)
    if update:
        raise EdgefitError(
            f"--update writes the fit of published measurements; {t.id} has none",
            where="--update",
            fix="drop --update",
        )
    if found is None:
        raise EdgefitError(
            f"no calibration profile for {target} on {runtime}",
            where="--target",
            fix=f"run `edgefit calibrate --target {target} --runtime {runtime}`",
        )

    return FidelityResult("zoo", check_fidelity(found, progress))


def _profile(target: Any, runtime: str, path: str | Path | None) -> Any:
    return load_profile(path) if path else find_profile(target, runtime)


def _thread_counts(threads: str | Iterable[int] | None) -> tuple[int, ...] | None:
    """``"1,2"`` or ``[1, 2]`` → (1, 2); None → the default (read when the run starts)."""
    if threads is None or threads == "":
        return None
    try:
        counts = tuple(
            int(t) for t in (threads.split(",") if isinstance(threads, str) else threads)
        )
    except (TypeError, ValueError):
        raise EdgefitError(
            f"cannot read thread counts {threads!r}", where="--threads", fix="pass e.g. 1,2"
        ) from None
    if not counts or any(c < 1 for c in counts):
        raise EdgefitError("thread counts must be ≥ 1", where="--threads", fix="pass e.g. 1,2")
    return counts


def _learned(
    path: str | Path | None,
    subset: str | None,
    counts: tuple[int, ...] | None,
    progress: ProgressFn | None,
) -> FidelityResult:
    warnings: tuple[str, ...] = ()
    if path:
        prof = load_learned(path)
    else:
        match = find_learned("host-cpu", "onnxruntime")
        if match is None:
            raise EdgefitError(
                "no learned profile for host-cpu on onnxruntime",
                where="--target",
                fix="run `edgefit calibrate --target host-cpu --runtime onnxruntime`",
            )
        prof = match.profile
        if not match.matches:
            warnings = (
                f"the profile was calibrated on {prof.fingerprint.describe()}, not this machine "
                f"({'; '.join(match.mismatches)}): these figures are cross-machine ones",
            )
    summary, written = host_fidelity(prof, subset, counts or default_threads_list(None), progress)
    return FidelityResult("host", summary, written, warnings)


def _check(target: Any, update: bool) -> FidelityResult:
    if update:
        raise EdgefitError(
            f"{target.id}'s estimate is calibrated on its profile; its published points only "
            "check it",
            where="--update",
            fix="drop --update",
        )
    return FidelityResult("check", pub_check.check_payload(target))


def _published(target: Any, update: bool) -> FidelityResult:
    """Estimate vs each published point (leave-one-run-out), with its source and the fit's
    figures; ``update`` writes the fit the estimator reads."""
    fit = pub_fit.published_fit(target)
    report = fit.report()
    if update and report.proxy:
        raise EdgefitError(
            f"{target.id}'s published points come from a proxy device: they judge the estimate's "
            "shape and never calibrate the target",
            where="--update",
            fix="drop --update",
        )
    written = (
        _write_calibration(target, pub_fit.calibration_record(fit, report)) if update else None
    )
    params = report.params
    payload = {
        "target": report.target,
        "proxy": report.proxy,
        **report.summary(),
        "fit": None
        if params is None
        else {"k_e": params.k_e, "k_o": params.k_o, "power_w_at_1v": params.power_w_at_1v},
        "rows": [_row(r) for r in report.rows],
        "written": written,
    }
    return FidelityResult("published", payload, written)


def _row(r: Any) -> dict[str, Any]:
    return {
        "id": r.point.id,
        "model": r.point.model,
        "precision": r.point.precision,
        "scenario": r.point.scenario,
        "batch": r.point.batch,
        "setting": r.point.setting,
        "metric": r.point.metric,
        "unit": SI_UNIT[r.point.metric],
        "published": r.published,
        "loo_estimate": r.loo,
        "loo_error": r.loo_error,
        "fitted_estimate": r.fitted,
        "datasheet_estimate": r.datasheet,
        "confidence": r.point.confidence,
        "source": r.point.source,
    }


def _write_calibration(target: Any, record: dict) -> str:
    if not record:
        raise EdgefitError(
            f"no point of {target.id} could be predicted from the others: nothing to write",
            where="--update",
            fix="add published points (profiles/<target>/published.yaml)",
        )
    path: Path = pub.calibration_path(target.id)
    header = (
        f"# Written by `edgefit fidelity --target {target.id} --update` from published.yaml; do "
        "not edit.\n"
        "# The estimator uses these efficiencies and overheads in the power modes and batches "
        "under modes.\n"
    )
    write_atomic(path, header + yaml.safe_dump(record, sort_keys=False))
    return str(path)
