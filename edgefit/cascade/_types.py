"""The records a cascade run passes along: what the user asked for, what was measured, what was
chosen.

Everything here is a frozen dataclass with a ``to_dict()`` that is its JSON form (cascade.json, the
cascade config and the model cards are all written from these). numpy is never needed to read them.

A cascade routes each request through tiers in order: tier *k* answers when its calibrated
confidence is at least ``thresholds[k]``, else the request moves on; the last tier always answers.
A request that stops at tier *k* has paid the latency (and energy, and cost) of tiers 1..k.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

CASCADE_SCHEMA_ID = "edgefit-cascade/1"
CalibrationMethod = Literal["temperature", "isotonic", "none"]
OutputKind = Literal["logits", "probabilities"]


@dataclass(frozen=True)
class Quantity:
    """A number with its unit and where it came from. ``interval`` is ± a fraction of ``value`` (an
    estimate's error bar), None where the value is measured or stated."""

    value: float
    unit: str
    source: str
    interval: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TierSpec:
    """One tier as the user gave it: ``MODEL@TARGET`` or ``cloud:latency=800ms,usd=0.0004[,model=M]
    [,accuracy=0.99]``. ``model`` is None only for a cloud tier with a stated ``accuracy``."""

    name: str  # tier1, tier2, … or cloud
    model: str | None
    target: str  # a target name, or "cloud"
    latency_s: float | None = None  # stated (cloud tiers), the p50
    p99_s: float | None = None  # stated (cloud tiers); the p50 is used where none is given
    usd_per_request: float = 0.0
    accuracy: float | None = None  # stated (a cloud tier without a model)
    energy_j: float | None = None  # stated (cloud: the device's radio cost, if the user gives it)
    results: str | None = None  # the results.json this tier was taken from, if any

    @property
    def is_cloud(self) -> bool:
        return self.target == "cloud"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Calibrator:
    """Maps a model's outputs to a calibrated top-1 confidence.

    - ``temperature``: confidence = max softmax(logits / T); the probabilities are calibrated too.
    - ``isotonic``: confidence = piecewise-linear interpolation of the raw top-1 softmax
      probability through ``(knots_x, knots_y)`` (clipped at both ends), as scikit-learn's
      IsotonicRegression predicts; the class probabilities are not changed, only the confidence
      routing reads.
    - ``none``: the raw top-1 softmax probability.

    ``output_kind`` says how the model's outputs are read: logits (softmax applied) or
    probabilities (used as they are; ``log`` taken for temperature scaling).
    """

    method: CalibrationMethod
    output_kind: OutputKind
    temperature: float = 1.0
    knots_x: tuple[float, ...] = ()
    knots_y: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(
            d["method"],
            d["output_kind"],
            float(d.get("temperature", 1.0)),
            tuple(map(float, d.get("knots_x", ()))),
            tuple(map(float, d.get("knots_y", ()))),
        )


@dataclass(frozen=True)
class ReliabilityBin:
    """One bin of a reliability diagram: confidences in [lo, hi), how many, their mean, the
    accuracy."""

    lo: float
    hi: float
    count: int
    mean_confidence: float
    accuracy: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CalibrationReport:
    """How one tier was calibrated. ``cv_ece`` is each method's expected calibration error by
    cross-validation on the calibration split (how the method was chosen); ``ece_before`` and
    ``ece_after`` are measured on the report split, which neither fitting nor choosing saw."""

    calibrator: Calibrator
    calibration_samples: int
    cv_ece: dict[str, float]
    ece_before: float
    ece_after: float
    bins: int
    reliability_before: tuple[ReliabilityBin, ...]
    reliability_after: tuple[ReliabilityBin, ...]
    output_kind_source: str  # "detected: …" or "stated by --outputs"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "calibrator": self.calibrator.to_dict()}


@dataclass(frozen=True)
class TierCost:
    """What one request costs at this tier. ``latency_p50``/``latency_p99`` in seconds, ``energy``
    in joules per inference (None where nothing gives it), ``usd`` per request."""

    latency_p50: Quantity
    latency_p99: Quantity
    energy: Quantity | None
    usd: Quantity

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if v is None else v.to_dict())
            for k, v in (
                ("latency_p50", self.latency_p50),
                ("latency_p99", self.latency_p99),
                ("energy", self.energy),
                ("usd", self.usd),
            )
        }


@dataclass(frozen=True)
class OperatingPoint:
    """A cascade at one set of thresholds, evaluated on one split. ``shares[k]`` is the fraction of
    requests answered by tier k, ``tier_accuracy[k]`` the accuracy on those (None when none)."""

    thresholds: tuple[float, ...]  # one per tier but the last
    split: str  # "select" or "report"
    samples: int
    accuracy: float
    expected_latency_s: float
    p99_latency_s: float
    cloud_share: float
    usd_per_1000: float
    expected_energy_j: float | None
    shares: tuple[float, ...]
    tier_accuracy: tuple[float | None, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Objective:
    """What the threshold search optimizes: ``maximize accuracy`` under budgets (any of latency,
    cloud share, energy, cost), or ``minimize latency`` under ``accuracy_floor``.

    A few hundred select-split requests leave the shares uncertain: a choice that spends a 100 ms
    budget exactly on the select split overspends it on the next split about half the time. So a
    budget counts as met when its upper confidence bound is within it (the floor: its lower bound),
    at ``budget_confidence``."""

    kind: Literal["max-accuracy", "min-latency"]
    latency_budget_s: float | None = None
    cloud_share_budget: float | None = None
    energy_budget_j: float | None = None
    usd_per_1000_budget: float | None = None
    accuracy_floor: float | None = None
    # the budgets (and floor) must hold on new requests with this one-sided confidence, judged from
    # the select split's sampling error (normal approximation); None compares the select split's
    # figures as they are
    budget_confidence: float | None = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TierResult:
    """One tier after the run: its calibration (None for a stated-accuracy cloud tier), its
    accuracy alone on the report split, its cost, and its threshold in the chosen cascade (None:
    last tier)."""

    spec: TierSpec
    output_shape: tuple[int, ...]  # per-sample output shape (classes,)
    input_shape: tuple[int, ...]  # per-sample input shape
    accuracy_alone: float
    calibration: CalibrationReport | None
    cost: TierCost
    threshold: float | None
    calibrated_model: str | None = (
        None  # the ONNX file with the calibrator folded in, once written
    )
    calibrator_sidecar: str | None = None  # the JSON sidecar, where folding was not possible

    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "output_shape": list(self.output_shape),
            "input_shape": list(self.input_shape),
            "accuracy_alone": self.accuracy_alone,
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "cost": self.cost.to_dict(),
            "threshold": self.threshold,
            "calibrated_model": self.calibrated_model,
            "calibrator_sidecar": self.calibrator_sidecar,
        }


@dataclass(frozen=True)
class CascadeResult:
    """Everything a cascade run decided and measured. ``chosen`` was picked on the select split and
    ``reported`` is the same thresholds on the report split; ``pareto`` is the frontier of
    (expected latency, accuracy) over the searched thresholds on the select split, each point
    re-evaluated on the report split in ``pareto_report``; ``alone[k]`` is tier k answering
    everything (report split)."""

    tiers: tuple[TierResult, ...]
    objective: Objective
    chosen: OperatingPoint
    reported: OperatingPoint
    pareto: tuple[OperatingPoint, ...]
    pareto_report: tuple[OperatingPoint, ...]
    alone: tuple[OperatingPoint, ...]
    splits: dict[str, int]
    seed: int
    data_source: str
    provenance: dict[str, Any] = field(default_factory=dict)  # versions, seed, command, machine
    schema: str = CASCADE_SCHEMA_ID

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "tiers": [t.to_dict() for t in self.tiers],
            "objective": self.objective.to_dict(),
            "chosen": self.chosen.to_dict(),
            "reported": self.reported.to_dict(),
            "pareto": [p.to_dict() for p in self.pareto],
            "pareto_report": [p.to_dict() for p in self.pareto_report],
            "alone": [p.to_dict() for p in self.alone],
            "splits": dict(self.splits),
            "seed": self.seed,
            "data_source": self.data_source,
            "provenance": dict(self.provenance),
        }
