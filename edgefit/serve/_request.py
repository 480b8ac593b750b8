"""What a serving plan is asked: model, target, context, latency objectives, dtypes, devices,
assumptions.

A :class:`ServeRequest` is a frozen, versioned dataclass validated on creation (names are checked
against the dtype tables; context and prompt against the model when the plan is built) and
round-trips through :meth:`ServeRequest.to_dict` / :meth:`ServeRequest.from_dict`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from edgefit import _units
from edgefit.errors import EdgefitError
from edgefit.serve._dtypes import KV_BYTES, WEIGHT_DTYPES
from edgefit.serve._hardware import Assumptions

REQUEST_VERSION = 1


def parse_duration(text: str | float, where: str = "--slo-tpot") -> float:
    """Seconds from ``50ms``, ``0.05s``, ``2 s`` or a bare number of seconds (at most an hour):
    edgefit's one duration reader (:mod:`edgefit._units`).

    >>> parse_duration("50ms"), parse_duration("0.2")
    (0.05, 0.2)
    """
    return _units.parse_duration(text, where=where, hi_s=3600)


def parse_overhead(text: str) -> tuple[float | None, float | None]:
    """``(bytes, None)`` from ``4GB``/``3.5GiB``, or ``(None, share)`` from ``5%`` (at most 90%).

    >>> parse_overhead("4GB"), parse_overhead("10%")
    ((4000000000.0, None), (None, 0.1))
    """
    if str(text).strip().endswith("%"):
        return None, _units.parse_fraction(text, where="--overhead", what="overhead", hi=0.9)
    return _units.parse_bytes(text, where="--overhead", what="overhead"), None


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
