"""A candidate's figures once it is built: its latency (measured in a child process, or the
estimate where nothing here runs the target), its estimate and the envelope checks held against
the measurement, and the check of the whole record against results.json's candidate record."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError

from edgefit.estimate import Estimator, Plan
from edgefit.graph import load_graph
from edgefit.records import (
    Check,
    DoneCandidate,
    Estimate,
    EstimatedLatency,
    FailedCandidate,
    Latency,
    MeasuredLatency,
    Screen,
    candidate_record,
)
from edgefit.runtimes import Artifact, get_runtime
from edgefit.runtimes._measure import measure_quietly

if TYPE_CHECKING:
    from edgefit.search._candidate import RunSettings

# the artifact format each measuring runtime reads
ARTIFACT_FORMATS = {"onnxruntime": "onnx", "torch": "torch-export"}


def measure(
    path, settings: RunSettings, runtime: str | None = None, options: dict | None = None
) -> MeasuredLatency:
    """Measure the artifact at ``path`` on ``runtime`` (default: the run's measuring runtime) in a
    child process; when another process held the CPU, measure again and keep the least disturbed
    timing. ``options``: the runtime's session options for this artifact (onnxruntime:
    :class:`~edgefit.runtimes.OrtOptions` fields, e.g. a searched recipe's
    ``graph_optimization_level``), which the child opens it with."""

    name = runtime or settings.measure_runtime
    if name is None:
        raise ValueError("measure() needs a runtime: this target is estimated, not measured")
    rt = get_runtime(name)
    art = Artifact(
        path=Path(path),
        format=ARTIFACT_FORMATS.get(rt.name, "onnx"),
        precision="as-built",
        runtime=rt.name,
        metadata={"options": dict(options)} if options else {},
    )
    best = measure_quietly(
        rt,
        art,
        threads=settings.threads,
        runs=50,
        min_runs=100,
        budget_s=4.0,
        timeout_s=settings.measure_timeout_s,
    )
    return MeasuredLatency(
        source="measured",
        runtime=rt.name,
        threads=settings.threads,
        p50_s=best.p50,
        p90_s=best.p90,
        p99_s=best.p99,
        mean_s=best.mean,
        jitter_s=best.jitter,
        n_runs=best.n_runs,
        peak_rss_bytes=best.peak_rss_bytes,
        cpu_wait_fraction=best.cpu_wait_fraction,
        host=platform.node(),
    )


def estimate_file(path, settings: RunSettings, dtype: str | None = None):
    """The estimate of the ONNX file at ``path``, in its own dtypes or every kernel at
    ``dtype``."""

    estimator = Estimator(
        load_graph(path), settings.target, power_mode=settings.power_mode, threads=settings.threads
    )
    return estimator.estimate(Plan(dtype=dtype) if dtype else None)


def estimate_record(est, note: str | None = None) -> Estimate:
    """The estimator's figures for a built model, with its envelope checks."""
    checks = [
        Check(
            constraint=c.constraint,
            unit=c.unit,
            limit=c.limit,
            value=c.value,
            fits=c.fits,
            source=c.source,
            **({"percentile": c.percentile} if c.percentile is not None else {}),
        )
        for c in est.checks
    ]
    return Estimate(
        latency_s=est.latency_s,
        energy_j=est.energy_j,
        average_power_w=est.average_power_w,
        power_at_rate_w=est.power_at_rate_w,
        weight_bytes=est.weight_bytes,
        peak_activation_bytes=est.peak_activation_bytes,
        weight_level=est.weight_level,
        activation_level=est.activation_level,
        source=est.source,
        source_detail=est.source_detail,
        error=est.error,
        checks=checks,
        **({"note": note} if note else {}),
    )


def checks_with(
    estimated: list[Check], latency: MeasuredLatency | EstimatedLatency
) -> list[Check]:
    """The estimate's envelope checks, with the latency check on the measurement where there is
    one (at the measured percentile nearest the budget's: p99, p90 or p50)."""
    out = []
    for c in estimated:
        pct = c.latency_percentile()
        if pct is not None and latency.source == "measured":
            at = 99 if pct >= 99 else 90 if pct >= 90 else 50
            value = {99: latency.p99_s, 90: latency.p90_s, 50: latency.p50_s}[at]
            c = c.model_copy(
                update={
                    "constraint": f"latency (p{pct:g}, measured p{at})",
                    "value": value,
                    "fits": value <= c.limit,
                    "source": "measured",
                    "percentile": pct,
                }
            )
        out.append(c)
    return out


_LATENCY: TypeAdapter[MeasuredLatency | EstimatedLatency] = TypeAdapter(Latency)


def with_latency(record: dict, latency: MeasuredLatency | EstimatedLatency | dict) -> dict:
    """``record`` with its latency replaced (a measurement made elsewhere, e.g. on a device node)
    and the envelope checks redone on it."""
    lat = _LATENCY.validate_python(latency) if isinstance(latency, dict) else latency
    estimate = Estimate.model_validate(record["estimate"])
    checks = checks_with(estimate.checks or [], lat)
    return {
        **record,
        "latency": lat.to_dict(),
        "checks": [c.to_dict() for c in checks],
        "fits": all(c.fits for c in checks),
    }


def finished_record(record: dict, key: str, screened: Any) -> DoneCandidate | FailedCandidate:
    """A job's record as results.json holds it: its key and screen estimate added, and checked
    against the typed candidate record (:func:`edgefit.records.candidate_record`) before it is
    written. A record that does not match is a bug, not the user's input: the candidate is kept
    as failed, saying which field, so the run goes on and a rerun tries it again."""
    est = screened.estimate
    screen = Screen(
        latency_s=est.latency_s,
        energy_j=est.energy_j,
        feasible=screened.feasible,
        reasons=list(screened.reasons),
        source=est.source,
        error=est.error,
    )
    full = {**record, "key": key, "screen": screen.to_dict()}
    try:
        return candidate_record(full)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return FailedCandidate.model_validate(
            {
                "choice": record.get("choice"),
                "label": record.get("label", ""),
                "status": "failed",
                "stage": "record",
                "error": f"the candidate's record does not match results.json: {where}: "
                f"{first['msg']} (an edgefit bug; please report it)",
                "key": key,
                "screen": screen,
            }
        )
