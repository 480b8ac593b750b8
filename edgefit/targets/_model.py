"""The target profile: what a device *is* (compute, memory, energy, power) and what it must meet.

Every number is a :class:`Sourced` value: it carries a ``source`` (URL or paper) or ``estimated:
true`` with a one-line ``reason``. Field names carry units (``_s``, ``_bytes``, ``_w``, ``_j``,
``_hz``, ``_per_s``, ``pj_``); all units are SI except ``pj_*`` (picojoules), ``*_days`` and
``usd``.

The models are frozen pydantic models; :func:`target_json_schema` exports the JSON Schema that
other pipelines can validate profiles with, without importing edgefit.
"""

from __future__ import annotations

import math
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION: Final = 1

Dtype = Literal["fp64", "fp32", "tf32", "fp16", "bf16", "fp8", "int16", "int8", "int4"]
DTYPES: tuple[str, ...] = Dtype.__args__  # type: ignore[attr-defined]
ChangeKind = Literal["weights", "quantization", "pruning", "architecture", "runtime"]
CHANGE_KINDS: tuple[str, ...] = ChangeKind.__args__  # type: ignore[attr-defined]
LifecycleStage = Literal["data_prep", "labeling", "training", "eval", "deploy", "monitoring"]
LIFECYCLE_STAGES: tuple[str, ...] = LifecycleStage.__args__  # type: ignore[attr-defined]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Sourced(_Frozen):
    """A number with its provenance.

    >>> Sourced(value=3.35e12, source="NVIDIA H100 datasheet").value
    3350000000000.0
    """

    value: float
    source: str | None = Field(None, description="URL or paper the number comes from")
    estimated: bool = Field(
        False, description="true when the number is an estimate, not a published figure"
    )
    reason: str | None = Field(
        None, description="one line: why this estimate (required when estimated)"
    )

    @model_validator(mode="after")
    def _has_provenance(self) -> Sourced:
        if not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        if self.estimated:
            if not (self.reason and self.reason.strip()):
                raise ValueError("an estimated value needs a one-line 'reason'")
        elif not (self.source and self.source.strip()):
            raise ValueError(
                "every number needs a 'source' (URL or paper) or 'estimated: true' with a 'reason'"
            )
        return self

    @property
    def provenance(self) -> str:
        return f"estimated: {self.reason}" if self.estimated else f"source: {self.source}"


def _bounded(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False):
    def check(v: Sourced) -> Sourced:
        if lo is not None and (v.value < lo or (lo_open and v.value == lo)):
            raise ValueError(f"must be {'>' if lo_open else '>='} {lo:g}, got {v.value:g}")
        if hi is not None and v.value > hi:
            raise ValueError(f"must be <= {hi:g}, got {v.value:g} (is the unit right?)")
        return v

    return AfterValidator(check)


# Bounds catch unit slips (ms written as s, GB as bytes) as well as negative numbers.
Positive = Annotated[Sourced, _bounded(0, lo_open=True)]
NonNegative = Annotated[Sourced, _bounded(0)]
Fraction = Annotated[Sourced, _bounded(0, 1, lo_open=True)]
OpsPerS = Annotated[Sourced, _bounded(0, 1e18, lo_open=True)]
Bytes = Annotated[Sourced, _bounded(0, 1e15, lo_open=True)]
BytesPerS = Annotated[Sourced, _bounded(0, 1e14, lo_open=True)]
PicoJoules = Annotated[Sourced, _bounded(0, 1e6)]
Watts = Annotated[Sourced, _bounded(0, 1e5)]
Seconds = Annotated[Sourced, _bounded(0, 3600, lo_open=True)]
Days = Annotated[Sourced, _bounded(0, 3650)]
Usd = Annotated[Sourced, _bounded(0, 1e10)]


class ComputeUnit(_Frozen):
    name: str
    kind: Literal["cpu", "gpu", "npu", "dla", "dsp", "mcu"]
    peak_ops_per_s: dict[Dtype, OpsPerS] = Field(
        ..., description="dense peak operations per second per dtype (1 MAC = 2 ops)", min_length=1
    )
    sparsity_2to4_speedup: Annotated[Sourced, _bounded(1, 2)] | None = Field(
        None, description="speed-up of 2:4 semi-structured sparse weights; absent = not supported"
    )
    efficiency: Fraction = Field(
        ..., description="fraction of peak reached by typical kernels, before calibration"
    )
    layer_overhead_s: Annotated[Sourced, _bounded(0, 1)] = Field(
        ..., description="fixed cost per fused kernel"
    )
    clock_hz: Annotated[Sourced, _bounded(0, 1e11, lo_open=True)] | None = None


class MemoryLevel(_Frozen):
    name: str
    kind: Literal["cache", "sram", "tcm", "dram", "hbm", "flash", "mram"]
    capacity_bytes: Bytes
    bandwidth_bytes_per_s: BytesPerS
    energy_pj_per_byte: PicoJoules
    holds: list[Literal["weights", "activations"]] = Field(
        ..., description="what may be placed in this level", min_length=1
    )


class Energy(_Frozen):
    pj_per_op: dict[Dtype, PicoJoules] = Field(..., min_length=1)
    static_power_w: Watts


class PowerMode(_Frozen):
    name: str
    power_w: Watts = Field(..., description="the mode's power budget")
    compute_scale: dict[str, Annotated[Sourced, _bounded(0, 1, lo_open=True)]] = Field(
        default_factory=dict, description="peak-ops multiplier per compute unit name (1.0 = full)"
    )
    static_power_w: Watts | None = None


class Envelope(_Frozen):
    """What a deployment must meet. Users override it by flags or their own YAML."""

    latency_budget_s: Seconds
    latency_percentile: float = Field(99.0, gt=0, le=100)
    jitter_s: Annotated[Sourced, _bounded(0, 3600)] | None = None
    memory_bytes: dict[str, Bytes] = Field(
        default_factory=dict, description="budget per memory level name"
    )
    average_power_w: Watts | None = None
    energy_per_inference_j: Annotated[Sourced, _bounded(0, 1e4, lo_open=True)] | None = None
    inference_rate_hz: Annotated[Sourced, _bounded(0, 1e6, lo_open=True)] | None = Field(
        None,
        description="inferences per second for always-on targets (average power at this rate)",
    )


class Certification(_Frozen):
    name: str
    days_per_change: Days
    cost_usd_per_change: Usd
    triggers: list[ChangeKind] = Field(..., description="change kinds that trigger the loop")


class DataEgress(_Frozen):
    usd_per_pb: Usd
    dataset_pb: Annotated[Sourced, _bounded(0, 1e4)]


class Target(_Frozen):
    """A hardware target profile (one YAML file in ``targets/``)."""

    schema_version: Literal[1] = SCHEMA_VERSION
    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    aliases: list[str] = Field(default_factory=list)
    kind: Literal[
        "datacenter_gpu", "edge_soc", "mobile_npu", "mcu_npu", "hearable_mcu", "host_cpu"
    ]
    description: str = ""
    probe: bool = Field(
        False, description="host-cpu: replace compute and memory with the running machine's"
    )
    compute_units: list[ComputeUnit] = Field(..., min_length=1)
    memory_levels: list[MemoryLevel] = Field(..., min_length=1)
    energy: Energy
    power_modes: list[PowerMode] = Field(default_factory=list)
    default_power_mode: str | None = None
    dtypes: list[Dtype] = Field(..., min_length=1)
    runtimes: list[str] = Field(default_factory=list)
    envelope: Envelope
    certification: Certification
    lifecycle_days: dict[LifecycleStage, Days]
    data_egress: DataEgress | None = None
    notes: list[str] = Field(default_factory=list)
    power_scope: str | None = Field(
        None,
        description="what power_w, static power and energy cover (module, card, chip, wall): "
        "published watts are often measured elsewhere",
    )
    deployment_threads: Annotated[Sourced, _bounded(1, 4096)] | None = Field(
        None,
        description="CPU threads the deployed model runs with (onnxruntime intra-op threads): "
        "what `edgefit optimize` measures and optimizes for unless --threads is given; absent "
        "= the user's choice (--threads, default 1)",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Target:
        unit_names = {u.name for u in self.compute_units}
        level_names = {m.name for m in self.memory_levels}
        if len(unit_names) != len(self.compute_units):
            raise ValueError("compute unit names must be unique")
        if len(level_names) != len(self.memory_levels):
            raise ValueError("memory level names must be unique")
        for level in self.envelope.memory_bytes:
            if level not in level_names:
                raise ValueError(f"envelope.memory_bytes names unknown memory level {level!r}")
        modes = {m.name for m in self.power_modes}
        for mode in self.power_modes:
            for unit in mode.compute_scale:
                if unit not in unit_names:
                    raise ValueError(
                        f"power mode {mode.name!r} scales unknown compute unit {unit!r}"
                    )
        if self.default_power_mode is not None and self.default_power_mode not in modes:
            raise ValueError(
                f"default_power_mode {self.default_power_mode!r} is not one of {sorted(modes)}"
            )
        if self.power_modes and self.default_power_mode is None:
            raise ValueError("a target with power_modes needs default_power_mode")
        if self.deployment_threads is not None and not self.deployment_threads.value.is_integer():
            raise ValueError(
                f"deployment_threads must be a whole number, got {self.deployment_threads.value:g}"
            )
        missing = set(LIFECYCLE_STAGES) - set(self.lifecycle_days)
        if missing:
            raise ValueError(f"lifecycle_days lacks stages {sorted(missing)}")
        return self

    # --- convenience -----------------------------------------------------------------------------
    def power_mode(self, name: str | None = None) -> PowerMode | None:
        """The named power mode (case-insensitive), or the default one; None if the target has
        none."""
        if not self.power_modes:
            return None
        wanted = (name or self.default_power_mode or "").lower()
        for mode in self.power_modes:
            if mode.name.lower() == wanted:
                return mode
        raise KeyError(name)

    def peak_ops(
        self, unit: ComputeUnit, dtype: str, power_mode: str | None = None
    ) -> float | None:
        """Peak ops/s of ``unit`` for ``dtype`` in ``power_mode``; None if the unit lacks the
        dtype."""
        peak = unit.peak_ops_per_s.get(dtype)  # type: ignore[call-overload]
        if peak is None:
            return None
        mode = self.power_mode(power_mode)
        scale = mode.compute_scale.get(unit.name) if mode else None
        return peak.value * (scale.value if scale else 1.0)

    def level(self, name: str) -> MemoryLevel:
        for m in self.memory_levels:
            if m.name == name:
                return m
        raise KeyError(name)


def target_json_schema() -> dict:
    """The JSON Schema of a target YAML file (draft 2020-12)."""
    schema = Target.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://edgefit.dev/schemas/target-v{SCHEMA_VERSION}.json"
    return schema
