"""What a serving plan is asked: model, target, context, latency objectives, dtypes, devices,
assumptions.

A :class:`ServeRequest` is a frozen, versioned dataclass validated on creation (names are checked
against the dtype tables; context and prompt against the model when the plan is built) and
round-trips through :meth:`ServeRequest.to_dict` / :meth:`ServeRequest.from_dict`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.serve._dtypes import KV_BYTES, WEIGHT_DTYPES
from edgefit.serve._hardware import Assumptions

REQUEST_VERSION = 1
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_SIZE = {
    "b": 1.0,
    "kb": 1e3,
    "mb": 1e6,
    "gb": 1e9,
    "tb": 1e12,
    "kib": 2.0**10,
    "mib": 2.0**20,
    "gib": 2.0**30,
}


def parse_duration(text: str | float, where: str = "--slo-tpot") -> float:
    """Seconds from ``50ms``, ``0.05s``, ``2 s`` or a bare number of seconds.

    >>> parse_duration("50ms"), parse_duration("0.2")
    (0.05, 0.2)
    """
    match = re.fullmatch(
        r"\s*(\d+(?:\.\d*)?|\.\d+)(?:e([-+]?\d+))?\s*(s|ms|us|µs)?\s*", str(text).lower()
    )
    value = (
        float(match.group(1) + (f"e{match.group(2)}" if match.group(2) else "")) if match else 0.0
    )
    if not match or not 0 < value * _TIME[match.group(3) or "s"] <= 3600:
        raise EdgefitError(
            f"cannot read duration {text!r}",
            where=where,
            fix="give a positive time with a unit, e.g. 50ms or 0.2s",
        )
    return value * _TIME[match.group(3) or "s"]


def parse_overhead(text: str) -> tuple[float | None, float | None]:
    """``(bytes, None)`` from ``4GB``/``3.5GiB``, or ``(None, fraction)`` from ``5%``.

    >>> parse_overhead("4GB"), parse_overhead("10%")
    ((4000000000.0, None), (None, 0.1))
    """
    match = re.fullmatch(
        r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(%|b|kb|mb|gb|tb|kib|mib|gib)\s*", str(text).lower()
    )
    if not match:
        raise EdgefitError(
            f"cannot read overhead {text!r}",
            where="--overhead",
            fix="give bytes with a unit (4GB, 3.5GiB) or a share of memory (5%)",
        )
    value, unit = float(match.group(1)), match.group(2)
    if unit == "%":
        if not 0 <= value <= 90:
            raise EdgefitError(
                f"overhead {value:g}% is outside 0-90%", where="--overhead", fix="give e.g. 5%"
            )
        return None, value / 100
    return value * _SIZE[unit], None


def _dtypes(values: Any, table: dict, where: str) -> tuple[str, ...]:
    out: list[str] = []
    for v in [values] if isinstance(values, str) else list(values or ()):
        for name in str(v).replace(" ", "").split(","):
            if name and name not in table:
                raise EdgefitError(
                    f"unknown dtype '{name}'", where=where, fix=f"use one of {', '.join(table)}"
                )
            if name and name not in out:
                out.append(name)
    return tuple(out)


@dataclass(frozen=True)
class ServeRequest:
    """The question ``edgefit serve-plan`` answers; empty dtype tuples mean "every one the target
    runs".

    >>> r = ServeRequest("llama-3-70b", "h100", context=8192, slo_tpot_s=0.05, weights=("fp8",))
    >>> ServeRequest.from_dict(r.to_dict()) == r
    True
    """

    model: str
    target: str = "h100"
    context: int | None = (
        None  # tokens of KV per sequence; None: min(8192, the model's max positions)
    )
    prompt_tokens: int | None = None  # prefill length for the TTFT; None: half the context
    slo_tpot_s: float | None = None  # None: the target's envelope latency budget
    slo_ttft_s: float | None = None
    weights: tuple[str, ...] = ()
    kv: tuple[str, ...] = ()
    gpus: int = 1
    runtime: str | None = None  # calibration profile to use (default: the target's first with one)
    dataset_pb: float | None = None  # iteration tax overrides
    usd_per_pb: float | None = None
    assumptions: Assumptions = field(default_factory=Assumptions)
    version: int = REQUEST_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "weights", _dtypes(self.weights, WEIGHT_DTYPES, "--weights"))
        object.__setattr__(self, "kv", _dtypes(self.kv, KV_BYTES, "--kv"))
        for name in ("context", "prompt_tokens"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise EdgefitError(
                    f"{name} must be a positive integer, got {value!r}",
                    where="--context" if name == "context" else "--prompt",
                    fix="give e.g. 8192",
                )
        for name, where in (("slo_tpot_s", "--slo-tpot"), ("slo_ttft_s", "--slo-ttft")):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0
            ):
                raise EdgefitError(
                    f"{name} must be a positive number of seconds, got {value!r}",
                    where=where,
                    fix="give e.g. 50ms",
                )
        for name in ("dataset_pb", "usd_per_pb"):
            value = getattr(self, name)
            if value is not None and not (
                isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
            ):
                raise EdgefitError(
                    f"{name} must be a non-negative number, got {value!r}",
                    where=f"--{name.replace('_', '-')}",
                    fix="give e.g. 1.0",
                )
        if self.version != REQUEST_VERSION:
            raise EdgefitError(
                f"request version {self.version} is not {REQUEST_VERSION}",
                where="version",
                fix="regenerate the request",
            )

    def to_dict(self) -> dict:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["weights"], out["kv"] = list(self.weights), list(self.kv)
        out["assumptions"] = self.assumptions.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServeRequest:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EdgefitError(
                f"unknown request fields {unknown}", where="request", fix=f"use {sorted(known)}"
            )
        data = dict(data)
        data["weights"], data["kv"] = tuple(data.get("weights", ())), tuple(data.get("kv", ()))
        data["assumptions"] = Assumptions.from_dict(data.get("assumptions") or {})
        return cls(**data)
