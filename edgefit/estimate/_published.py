"""Published measurements per target: ``profiles/<target-id>/published.yaml``, validated like a
target.

A point is one number someone measured and published (an MLPerf result log, a vendor's table) for a
reference model on the target: the model, precision, scenario or batch, the power mode or clocks,
the metric with its value and unit, where it was read, and how much to trust it (H/M/L). These are
what the estimator is held against (``edgefit fidelity --target orin``) and fitted on
(:mod:`edgefit.estimate._published_fit`); nothing here is invented or derived, except where a point
says so in its ``note``.

Bad input gets one line naming the file, the line and the field, like a bad target file.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edgefit._resources import data_dir
from edgefit._yaml import line_of, load_yaml
from edgefit.errors import EdgefitError
from edgefit.estimate._hw import _unit_for
from edgefit.estimate._profile import KernelFit, Profile
from edgefit.estimate._table import KERNEL_CLASSES
from edgefit.graph._reference import reference_names
from edgefit.targets._model import Sourced

PUBLISHED_VERSION: Final = 1
FILE_NAME = "published.yaml"
_FIX = (
    "see the fields documented in edgefit/estimate/_published.py (and a shipped "
    "profiles/*/published.yaml)"
)

Scenario = Literal["single-stream", "multi-stream", "offline", "server"]
Metric = Literal[
    "latency_mean", "latency_p90", "latency_p99", "throughput", "energy_per_inference"
]
# value × factor = SI (seconds, samples per second, joules)
UNITS: dict[str, tuple[str, float]] = {
    "s": ("time", 1.0),
    "ms": ("time", 1e-3),
    "us": ("time", 1e-6),
    "samples/s": ("rate", 1.0),
    "J": ("energy", 1.0),
    "mJ": ("energy", 1e-3),
    "uJ": ("energy", 1e-6),
}
METRIC_KIND = {
    "latency_mean": "time",
    "latency_p90": "time",
    "latency_p99": "time",
    "throughput": "rate",
    "energy_per_inference": "energy",
}


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Point(_Frozen):
    """One published measurement."""

    id: str = Field(..., pattern=r"^[a-z0-9][a-z0-9.-]*$", description="unique within the file")
    model: str = Field(..., description="a reference model (edgefit.graph._reference)")
    precision: Literal["fp32", "fp16", "int8"]
    weight_bits: int | None = Field(
        None, ge=1, le=16, description="when weights are narrower than precision"
    )
    scenario: Scenario
    batch: int | None = Field(
        None,
        ge=1,
        le=1_000_000,
        description="samples per query (multi-stream) or the submission's batch; "
        "offline/server without a batch are taken as fully batched",
    )
    setting: str = Field(
        ..., min_length=1, description="the power mode or clocks as published, in words"
    )
    power_mode: str | None = Field(None, description="the target's power mode this setting is")
    clocks_hz: dict[str, float] = Field(
        default_factory=dict,
        description="clock per compute unit name or 'memory', where not the reference clock",
    )
    voltage_v: float | None = Field(None, gt=0, le=5)
    units: list[str] = Field(
        default_factory=list,
        description="compute units that ran it (default: the "
        "target's first unit for the precision)",
    )
    metric: Metric
    value: float = Field(..., gt=0)
    unit: str
    source: str = Field(..., min_length=1, description="repository + path + commit, or URL")
    confidence: Literal["H", "M", "L"]
    note: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Point:
        if not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        if self.unit not in UNITS:
            raise ValueError(f"unknown unit {self.unit!r}: use one of {', '.join(UNITS)}")
        if UNITS[self.unit][0] != METRIC_KIND[self.metric]:
            wanted = [u for u, (kind, _) in UNITS.items() if kind == METRIC_KIND[self.metric]]
            raise ValueError(
                f"unit {self.unit!r} does not measure {self.metric}: use {', '.join(wanted)}"
            )
        if self.scenario == "multi-stream" and self.batch is None:
            raise ValueError("a multi-stream point needs 'batch' (samples per query)")
        if self.scenario == "single-stream" and self.batch not in (None, 1):
            raise ValueError("a single-stream point has batch 1")
        if any(not (math.isfinite(v) and v > 0) for v in self.clocks_hz.values()):
            raise ValueError("clocks_hz values must be positive numbers in Hz")
        return self

    @property
    def si_value(self) -> float:
        """The value in seconds, samples/s or joules."""
        return self.value * UNITS[self.unit][1]

    @property
    def group(self) -> tuple:
        """Points from the same run share a group (left out together when judging the fit)."""
        return (
            self.model,
            self.precision,
            self.scenario,
            self.batch,
            self.setting,
            tuple(self.units),
        )


class PublishedFile(_Frozen):
    """``profiles/<target-id>/published.yaml``."""

    schema_version: Literal[1] = PUBLISHED_VERSION
    target: str = Field(
        ..., description="the target id these points were measured on (or stand in for)"
    )
    proxy: str | None = Field(
        None, description="set when the points come from another device: which and why"
    )
    reference_clocks_hz: dict[str, Sourced] = Field(
        default_factory=dict,
        description="the clocks the target file's peaks are quoted at, per compute unit "
        "name or 'memory' (what a point's clocks_hz scale against)",
    )
    points: list[Point] = Field(..., min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> PublishedFile:
        seen: set[str] = set()
        for i, p in enumerate(self.points):
            if p.id in seen:
                raise ValueError(f"points.{i}: duplicate point id {p.id!r}")
            seen.add(p.id)
            for name in p.clocks_hz:
                if name not in self.reference_clocks_hz:
                    raise ValueError(
                        f"points.{i}: clocks_hz names {name!r}, which reference_clocks_hz lacks"
                    )
        return self

    def clock_scale(self, point: Point, name: str) -> float:
        """``point``'s clock for unit ``name`` (or 'memory') over the reference clock (1 where not
        stated)."""
        if name not in point.clocks_hz:
            return 1.0
        return point.clocks_hz[name] / self.reference_clocks_hz[name].value


class UnitFit(_Frozen):
    efficiency: float = Field(..., gt=0, le=1)
    layer_overhead_s: float = Field(..., ge=0, le=1, description="at the reference clock")


class ModeClocks(_Frozen):
    """A power mode the points back: its clocks over the reference ones, and the batches its points
    span (an estimate interpolates between measured batches, never extrapolates past them)."""

    compute_clock_scale: dict[str, float] = Field(default_factory=dict)
    memory_clock_scale: float = Field(1.0, gt=0, le=10)
    min_batch: int = Field(1, ge=1)
    max_batch: int | None = Field(1, ge=1, description="None: unbounded (offline, fully batched)")

    def covers(self, batch: int) -> bool:
        return self.min_batch <= batch and (self.max_batch is None or batch <= self.max_batch)

    def batches(self) -> str:
        """The backed batches in words: 'batch 1', 'batch 1-8', 'batch >= 256'."""
        if self.max_batch is None:
            return f"batch >= {self.min_batch}" if self.min_batch > 1 else "any batch"
        if self.max_batch == self.min_batch:
            return f"batch {self.min_batch}"
        return f"batch {self.min_batch}-{self.max_batch}"


class PublishedCalibration(_Frozen):
    """``profiles/<target-id>/published.fit.yaml``: the fit of the published points the estimator
    uses, written by ``edgefit fidelity --target T --update`` (a test checks it against a fresh
    fit)."""

    schema_version: Literal[1] = PUBLISHED_VERSION
    target: str
    points: int = Field(..., ge=1)
    predicted: int = Field(..., ge=0)
    parameters: int = Field(..., ge=1)
    loo_median_abs_error: float = Field(..., ge=0)
    loo_max_abs_error: float = Field(..., ge=0)
    precisions: list[str]
    modes: dict[str, ModeClocks] = Field(
        ..., description="power modes the points back, with the batches they span"
    )
    units: dict[str, UnitFit]
    active_power_w: dict[str, float] = Field(
        default_factory=dict, description="per power mode with an energy point"
    )
    point_ids: list[str] = Field(
        default_factory=list, description="the points fitted (ids in published.yaml)"
    )

    def backs(self, power_mode: str | None, batch: int = 1) -> bool:
        """Whether an estimate in ``power_mode`` at ``batch`` rests on published points."""
        mode = self.modes.get(power_mode or "")
        return mode is not None and mode.covers(batch)

    def as_profile(self, target, unit: str | None, path: str, power_mode: str | None):
        """A calibration profile holding the fitted efficiency and overhead (at ``power_mode``'s
        clock) of the unit the estimator runs each of the points' precisions on, and the mode's
        memory clock (other precisions stay datasheet)."""

        kernels = {}
        unit_overhead = {}
        clocks = self.modes[power_mode or ""]
        for dtype in self.precisions:
            u, compute_dtype = _unit_for(target, dtype, unit)
            fit = self.units.get(u.name) if u is not None else None
            if u is not None and fit is not None:
                overhead = fit.layer_overhead_s / clocks.compute_clock_scale.get(u.name, 1.0)
                unit_overhead[u.name] = overhead
                kernels.update(
                    {
                        (k, compute_dtype): KernelFit(fit.efficiency, overhead, self.points)
                        for k in KERNEL_CLASSES
                    }
                )
        return Profile(
            target=self.target,
            runtime="published",
            kernels=kernels,
            fidelity={"p90_abs_error": self.loo_max_abs_error},
            memory_bandwidth_scale=clocks.memory_clock_scale,
            path=path,
            unit_overhead_s=unit_overhead,
        )

    def label(self, power_mode: str | None, path: str, batch: int = 1) -> str:
        mode = self.modes[power_mode or ""]
        return (
            f"calibrated on {self.points} published measurements (LOO median "
            f"{self.loo_median_abs_error:.0%}; ±{self.loo_max_abs_error:.0%} = the largest "
            f"leave-one-run-out error) at batch {batch} in {power_mode} (points span "
            f"{mode.batches()}), {path}"
            + (f"; points: {', '.join(self.point_ids)}" if self.point_ids else "")
        )


def calibration_path(target_id: str, root: Path | None = None) -> Path:
    return (root or data_dir("profiles")) / target_id / "published.fit.yaml"


def find_calibration(target) -> tuple[PublishedCalibration, str] | None:
    """The stored fit of ``target``'s published points and its path (None when there is none)."""
    path = calibration_path(target.id)
    if not path.is_file():
        return None
    return _load_calibration(str(path), path.stat().st_mtime, target.id)


@functools.lru_cache(maxsize=16)
def _load_calibration(path: str, mtime: float, target_id: str) -> tuple[PublishedCalibration, str]:
    """Parsed once per file version: every Estimator a search builds asks for it."""
    data, lines = load_yaml(path)
    try:
        cal = PublishedCalibration.model_validate(data)
    except ValidationError as exc:
        err = _pydantic_error(exc, lines, str(path))
        raise EdgefitError(
            err.what,
            where=err.where,
            fix=f"re-run `edgefit fidelity --target {target_id} --update`",
        ) from None
    if cal.target != target_id:
        raise EdgefitError(
            f"fit is for '{cal.target}', not '{target_id}'",
            where=str(path),
            fix=f"re-run `edgefit fidelity --target {target_id} --update`",
        )
    return cal, str(path)


def published_path(target_id: str, root: Path | None = None) -> Path:
    return (root or data_dir("profiles")) / target_id / FILE_NAME


def _error(what: str, where: str) -> EdgefitError:
    return EdgefitError(what, where=where, fix=_FIX)


def _pydantic_error(exc: ValidationError, lines: dict, source: str) -> EdgefitError:
    err = exc.errors()[0]
    loc = tuple(err["loc"])
    msg = " ".join(str(err["msg"]).removeprefix("Value error, ").split())[:240]
    if msg.startswith("points."):  # a file-level check that names its point: point at that line
        head = msg.split(":", 1)[0].split(".")
        loc = ("points", int(head[1])) if len(head) == 2 and head[1].isdigit() else loc
    line = line_of(lines, loc)
    field = ".".join(str(p) for p in loc) or "(top level)"
    if err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return _error(f"field '{field[:80]}': {msg}", f"{source}:{line}" if line else source)


def published_from_dict(
    data: Any, *, target=None, lines: dict | None = None, source: str = "<dict>"
) -> PublishedFile:
    """Validate a parsed published.yaml; with ``target``, also that its names exist there."""
    if not isinstance(data, dict):
        raise _error("a published-measurements file must be a YAML mapping", source)
    lines = lines or {}
    try:
        pub = PublishedFile.model_validate(data)
    except ValidationError as exc:
        raise _pydantic_error(exc, lines, source) from None

    def where(*loc: Any) -> str:
        line = line_of(lines, loc)
        return f"{source}:{line}" if line else source

    for i, p in enumerate(pub.points):
        if p.model not in reference_names():
            raise _error(
                f"field 'points.{i}.model': unknown reference model {p.model!r} (known: "
                f"{', '.join(reference_names())})",
                where("points", i, "model"),
            )
    if target is None:
        return pub
    if pub.target != target.id:
        raise _error(
            f"field 'target': {pub.target!r} but the file sits under {target.id!r}",
            where("target"),
        )
    units = {u.name for u in target.compute_units}
    modes = {m.name for m in target.power_modes}
    for name in pub.reference_clocks_hz:
        if name != "memory" and name not in units:
            raise _error(
                f"field 'reference_clocks_hz.{name}': {target.id} has no compute unit {name!r} "
                f"(units: {', '.join(sorted(units))}, or 'memory')",
                where("reference_clocks_hz", name),
            )
    for i, p in enumerate(pub.points):
        for u in p.units:
            if u not in units:
                raise _error(
                    f"field 'points.{i}.units': {target.id} has no compute unit {u!r} "
                    f"(units: {', '.join(sorted(units))})",
                    where("points", i, "units"),
                )
        if p.power_mode is not None and p.power_mode not in modes:
            raise _error(
                f"field 'points.{i}.power_mode': {target.id} has no power mode {p.power_mode!r} "
                f"(modes: {', '.join(sorted(modes)) or 'none'})",
                where("points", i, "power_mode"),
            )
        if p.precision not in target.dtypes:
            raise _error(
                f"field 'points.{i}.precision': {target.id} does not run {p.precision}",
                where("points", i, "precision"),
            )
    return pub


def load_published(path: str | Path, target=None) -> PublishedFile:
    """Load and validate one published.yaml (against ``target`` when given)."""
    data, lines = load_yaml(path)
    if data is None:
        raise _error("published-measurements file is empty", str(path))
    return published_from_dict(data, target=target, lines=lines, source=str(path))


def find_published(target) -> PublishedFile | None:
    """The shipped published points for ``target`` (None when it has none)."""
    path = published_path(target.id)
    return load_published(path, target) if path.is_file() else None
