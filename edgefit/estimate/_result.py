"""What an estimate hands back: :class:`Estimate`, its per-kernel rows and its envelope checks.

Plain records, kept apart from the :class:`~edgefit.estimate.Estimator` that fills them so the
envelope verdict (:mod:`._verdict`) can build :class:`Check` rows without importing the estimator
back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from edgefit.estimate._plan import Plan


@dataclass(frozen=True)
class Check:
    """One envelope constraint: the limit, the estimate, and whether it fits."""

    constraint: str
    unit: str
    limit: float
    value: float
    fits: bool
    certain: bool  # still fits (or still fails) at the far end of the error bar
    source: str
    percentile: float | None = None  # a latency constraint's percentile (the envelope's)

    @property
    def margin(self) -> float:
        """Relative headroom (positive) or excess (negative) against the limit."""
        return (self.limit - self.value) / self.limit if self.limit else 0.0


@dataclass(frozen=True)
class KernelEstimate:
    name: str
    kclass: str
    dtype: str
    unit: str
    latency_s: float
    energy_j: float
    bound: str  # compute | memory | overhead
    macs: float
    layers: tuple[str, ...]


@dataclass
class Estimate:
    target: str
    power_mode: str | None
    plan: Plan
    latency_s: float
    energy_j: float
    weight_bytes: float
    peak_activation_bytes: float
    weight_level: str
    activation_level: str
    source: str  # "calibrated" or "datasheet"
    source_detail: str
    error: float  # relative error bar (± fraction)
    kernels: list[KernelEstimate]
    checks: list[Check]
    average_power_w: float  # while running back to back
    power_at_rate_w: float | None  # at the envelope's inference rate
    inference_rate_hz: float | None
    warnings: list[str] = field(default_factory=list)
    batch: int = 1  # samples per run: latency_s is one run's, energy_j one sample's
    # what the power and energy figures cover (module, card, chip …), from the target file
    power_scope: str | None = None
    # targets with a DLA: where each layer runs when built for it (edgefit.estimate._dla)
    dla: dict | None = None

    @property
    def throughput_per_s(self) -> float:
        """Samples per second running batches back to back."""
        return self.batch / self.latency_s if self.latency_s else 0.0

    @property
    def fits(self) -> bool:
        return all(c.fits for c in self.checks)

    def bottlenecks(self, n: int = 5) -> list[KernelEstimate]:
        return sorted(self.kernels, key=lambda k: -k.latency_s)[:n]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["plan"] = asdict(self.plan)
        d["fits"] = self.fits
        d["throughput_per_s"] = self.throughput_per_s
        for c, check in zip(d["checks"], self.checks):
            c["margin"] = check.margin
        return d
