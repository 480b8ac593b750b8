"""The record of one candidate: what was built, how accurate it is, how fast (measured or
estimated), whether it fits the envelope, and what a change to it costs in iteration time.

Every number says where it came from: a latency's ``source`` is ``measured`` (with the runtime,
threads and run count) or ``estimated`` (with the estimate's source and error bar); an accuracy's
``source`` names the runtime that produced the outputs; a check's ``source`` is ``measured``,
``counted``, ``calibrated`` or ``datasheet``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from edgefit.records._base import Count, Key, NonNegative, Record

EstimateSource = Literal["calibrated", "datasheet"]
PASS_FIELDS = ("swap", "prune", "recover", "quantize", "torchao")
ChangeKind = Literal["weights", "quantization", "pruning", "architecture", "runtime"]


class ChoiceRecord(Record):
    """A candidate's place in the search space (``edgefit.search.Choice`` as JSON)."""

    width: float
    depth: float
    resolution: int | None
    activation: str | None
    prune: str
    prune_amount: Annotated[float, Field(ge=0, le=1)]
    precision: str
    calibration: str | None = None
    keep_float: Count | None = None


class Screen(Record):
    """The estimate a choice was screened with, before it was built."""

    latency_s: NonNegative
    energy_j: NonNegative
    feasible: bool | None = None
    reasons: list[str] | None = None
    source: EstimateSource
    error: NonNegative


class Check(Record):
    """One envelope constraint held against a value: latency, memory, power or energy."""

    constraint: str
    unit: Literal["s", "B", "W", "J"]
    limit: float
    value: float
    fits: bool
    source: str = Field(description="measured, counted, calibrated or datasheet")
    percentile: float | None = Field(
        default=None,
        description="a latency constraint's percentile (absent in older files: read from the "
        "constraint's label)",
    )

    def latency_percentile(self) -> float | None:
        """The percentile of a latency check, None for any other; older files say it only in
        the label, as ``latency (p99, ...)``, and a latency check without one is p99."""
        if self.unit != "s" or not self.constraint.startswith("latency"):
            return None
        if self.percentile is not None:
            return self.percentile
        if "(p" in self.constraint:
            return float(self.constraint.split("(p")[1].split(" ")[0].rstrip(",)"))
        return 99.0


class Estimate(Record):
    """The estimator's figures for the built model (energy is always estimated)."""

    latency_s: NonNegative
    energy_j: NonNegative
    average_power_w: NonNegative
    power_at_rate_w: float | None = None
    weight_bytes: NonNegative
    peak_activation_bytes: NonNegative
    weight_level: str | None = None
    activation_level: str | None = None
    source: EstimateSource
    source_detail: str | None = None
    error: NonNegative = Field(description="relative error bar (+/- fraction)")
    checks: list[Check] | None = None
    note: str | None = None


class Accuracy(Record):
    """The candidate's accuracy on the evaluation data, and how it was scored."""

    kind: str
    value: float
    n: int | None = None
    sqnr_db: float | None = None
    label: str
    data: str | None = None
    source: str


class Iteration(Record):
    """What one more iteration of this change costs in the target's certification loop."""

    change_kinds: list[ChangeKind]
    certification: bool | None = None
    days: NonNegative
    usd: NonNegative
    deadline_days: float | None = None
    iterations_by_deadline: Count
    usd_by_deadline: float | None = None
    accuracy_now: float | None = None
    accuracy_at_deadline: float
    assumptions: dict[str, str] | None = None


class Artifact(Record):
    """The file a candidate is deployed as, and the runtime that runs it."""

    path: str
    format: str
    runtime: str
    options: dict[str, Any] | None = None


class FinalLatency(Record):
    """The final re-measurement before the pick: interleaved rounds with the other leaders and
    the baseline (older files lack it)."""

    method: Literal["interleaved"]
    median_s: NonNegative = Field(description="median of the round medians")
    round_medians_s: Annotated[list[NonNegative], Field(min_length=1)]
    rounds: Annotated[int, Field(ge=1)] | None = None
    spread: NonNegative = Field(description="(slowest - fastest round median) / median")
    p99_s: float | None = None
    runs: Count | None = None
    threads: int | None = None


class MeasuredLatency(Record):
    """A latency timed on a runtime (a child process, on this machine or a device node)."""

    source: Literal["measured"]
    runtime: str
    threads: int | None = None
    p50_s: NonNegative
    p90_s: NonNegative
    p99_s: NonNegative
    mean_s: NonNegative | None = None
    jitter_s: float | None = Field(description="p99 - p50 of the measured runs")
    n_runs: Annotated[int, Field(ge=1)]
    peak_rss_bytes: int | None = None
    cpu_wait_fraction: float | None = None
    host: str | None = None
    final: FinalLatency | None = None


class EstimatedLatency(Record):
    """A latency from the estimator, where nothing here can run the target's runtime."""

    source: Literal["estimated"]
    estimate_source: EstimateSource
    error: NonNegative
    p50_s: NonNegative
    p90_s: NonNegative
    p99_s: NonNegative
    mean_s: NonNegative | None = None
    final: FinalLatency | None = None

    @classmethod
    def of(cls, estimate: Estimate) -> EstimatedLatency:
        """The latency block of a candidate that is not measured: the estimate, with its source
        and error bar."""
        s = estimate.latency_s
        return cls(
            source="estimated",
            estimate_source=estimate.source,
            error=estimate.error,
            p50_s=s,
            p90_s=s,
            p99_s=s,
            mean_s=s,
        )


Latency = Annotated[MeasuredLatency | EstimatedLatency, Field(discriminator="source")]


class DoneCandidate(Record):
    """A candidate that was built, scored and timed (or estimated)."""

    choice: ChoiceRecord
    label: str
    key: Key
    status: Literal["done"]
    plan: dict[str, Any] | None = None
    change_kinds: list[str]
    onnx: str = Field(description="path of the materialized model, as written by the run")
    artifact: Artifact | None = None
    accuracy: Accuracy
    estimate: Estimate
    iteration: Iteration
    materialize: dict[str, Any] | None = None
    latency: Latency
    checks: list[Check]
    fits: bool
    seconds: NonNegative | None = None
    screen: Screen | None = None
    reused: bool | None = None

    @property
    def path(self) -> str:
        """The file that is deployed and timed: the artifact (a torchao winner's .pt2), else the
        ONNX model."""
        return self.artifact.path if self.artifact is not None else self.onnx

    @property
    def runtime(self) -> str:
        """The runtime that runs :attr:`path`."""
        return self.artifact.runtime if self.artifact is not None else "onnxruntime"

    @property
    def passes(self) -> int:
        """How many passes built the candidate (swap, prune, recover, quantize, torchao)."""
        plan = self.plan or {}
        return sum(plan.get(f) is not None for f in PASS_FIELDS)

    def with_final(self, final: FinalLatency) -> DoneCandidate:
        """This candidate with its final interleaved re-measurement in its latency block."""
        return self.model_copy(
            update={"latency": self.latency.model_copy(update={"final": final})}
        )


class FailedCandidate(Record):
    """A candidate that could not be built, scored or measured: kept, with why."""

    choice: ChoiceRecord
    label: str
    key: Key
    status: Literal["failed"]
    stage: str | None = None
    error: str
    screen: Screen | None = None
    reused: bool | None = None


CandidateRecord = Annotated[DoneCandidate | FailedCandidate, Field(discriminator="status")]


class RejectedEstimate(Record):
    latency_s: float
    energy_j: float
    source: EstimateSource
    error: float


class Rejected(Record):
    """A choice the screen rejected: its estimate could not fit the envelope."""

    label: str
    choice: ChoiceRecord
    status: Literal["rejected at estimate"]
    reasons: Annotated[list[str], Field(min_length=1)]
    estimate: RejectedEstimate


_CANDIDATE: TypeAdapter[DoneCandidate | FailedCandidate] = TypeAdapter(CandidateRecord)


def candidate_record(d: Any) -> DoneCandidate | FailedCandidate:
    """A results.json ``candidates`` entry as its typed record, by its ``status``."""
    return _CANDIDATE.validate_python(d)
