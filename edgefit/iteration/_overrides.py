"""Override a target's loop from flags (``--set KEY=VALUE``) or a YAML file (``--overrides FILE``).

Keys mirror the target YAML, so a line that works in one works in the other::

    lifecycle_days.training: 3          # or the short form: training: 3
    certification.days_per_change: 7
    certification.cost_usd_per_change: 20000
    certification.triggers: [weights, architecture]   # --set
    certification.triggers=weights,architecture data_egress.usd_per_pb: 20000
    data_egress.dataset_pb: 2

A file may nest them as the target YAML does (``certification: {days_per_change: 7}``) and give a
value with its provenance (``training: {value: 3, source: "our cluster logs"}``); a bare number is
labelled ``override (<where it came from>)``. Flags are applied after the file, so they win.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.iteration._model import (
    LIFECYCLE,
    Egress,
    Loop,
    check_change_kinds,
    check_days,
    check_usd,
)

if TYPE_CHECKING:
    from edgefit import _yaml
else:
    _yaml = lazy_import("edgefit._yaml")  # PyYAML: loaded only to read an overrides file

_CERT = {"days_per_change", "cost_usd_per_change", "triggers", "name"}
_EGRESS = {"usd_per_pb", "dataset_pb"}
_KEYS = (
    ["lifecycle_days.<stage>", "<stage>"]
    + [f"certification.{k}" for k in sorted(_CERT)]
    + [f"data_egress.{k}" for k in sorted(_EGRESS)]
)


def parse_set(items: Iterable[str]) -> dict[str, str]:
    """``["training=3", "certification.days_per_change=7"]`` → a dict of dotted key → text.

    >>> parse_set(["training=3"])
    {'training': '3'}
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise EdgefitError(
                f"cannot read {item!r}", where="--set", fix="write KEY=VALUE, e.g. training=3"
            )
        out[key.strip()] = value.strip()
    return out


def load_overrides_file(path: str | Path) -> dict[str, Any]:
    """Read an overrides YAML file (safe loader) into flat dotted keys."""
    try:
        data, _ = _yaml.load_yaml(path)
    except EdgefitError as exc:
        raise EdgefitError(exc.what, where=exc.where or "--overrides", fix=exc.fix) from None
    if not isinstance(data, dict):
        raise EdgefitError(
            "an overrides file must be a YAML mapping",
            where=str(path),
            fix="see `edgefit plan --help`",
        )
    return _flatten(data)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, dict) and "value" not in value:
            out.update(_flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


def _number(raw: Any, where: str) -> tuple[float, str | None]:
    """A value and its provenance: a number, a numeric string, or ``{value, source | reason}``."""
    provenance = None
    if isinstance(raw, dict):
        unknown = set(raw) - {"value", "source", "estimated", "reason"}
        if unknown:
            raise EdgefitError(
                f"unknown fields {sorted(unknown)}", where=where, fix="use value, source or reason"
            )
        if raw.get("source"):
            provenance = f"source: {raw['source']}"
        elif raw.get("reason"):
            provenance = f"estimated: {raw['reason']}"
        raw = raw.get("value")
    try:
        if isinstance(raw, bool):
            raise ValueError
        return float(raw), provenance
    except (TypeError, ValueError):
        raise EdgefitError(
            f"{raw!r} is not a number", where=where, fix="give a number, e.g. 7"
        ) from None


def _triggers(raw: Any, where: str) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [k for k in raw.replace(" ", "").split(",") if k]
    if not isinstance(raw, list):
        raise EdgefitError(
            f"{raw!r} is not a list of change kinds", where=where, fix="write weights,architecture"
        )
    return check_change_kinds(raw, where)


def apply_overrides(loop: Loop, overrides: Mapping[str, Any], origin: str) -> Loop:
    """A copy of ``loop`` with ``overrides`` (dotted keys) applied; ``origin`` names where they
    came from.

    >>> from edgefit.targets import load_target
    >>> orin = Loop.from_target(load_target("orin"))
    >>> apply_overrides(orin, {"training": "3"}, "--set").stage("training").days
    3.0
    """
    for key, raw in overrides.items():
        where = f"{origin} {key}"
        section, _, field = key.rpartition(".")
        if section in ("", "lifecycle_days") and field in LIFECYCLE:
            days, prov = _number(raw, where)
            loop = loop.with_stage_days(
                field, check_days(days, where), prov or f"override ({origin})"
            )
        elif section == "certification" and field in _CERT:
            loop = replace(loop, certification=_certification(loop, field, raw, where, origin))
        elif section == "data_egress" and field in _EGRESS:
            loop = replace(loop, egress=_egress(loop, field, raw, where, origin))
        else:
            raise EdgefitError(
                f"unknown key {key!r}", where=origin, fix=f"use one of {', '.join(_KEYS)}"
            )
    return loop


def _certification(loop: Loop, field: str, raw: Any, where: str, origin: str):
    cert = loop.certification
    if field == "triggers":
        return replace(cert, triggers=_triggers(raw, where))
    if field == "name":
        return replace(cert, name=str(raw))
    value, prov = _number(raw, where)
    prov = prov or f"override ({origin})"
    if field == "days_per_change":
        return replace(cert, days=check_days(value, where), days_provenance=prov)
    return replace(cert, usd=check_usd(value, where), usd_provenance=prov)


def _egress(loop: Loop, field: str, raw: Any, where: str, origin: str) -> Egress:
    value, prov = _number(raw, where)
    check_usd(value, where)
    prov = prov or f"override ({origin})"
    egress = loop.egress or Egress(0.0, 0.0, "no egress in the target", "no egress in the target")
    if field == "usd_per_pb":
        return replace(egress, usd_per_pb=value, usd_per_pb_provenance=prov)
    return replace(egress, dataset_pb=value, dataset_pb_provenance=prov)
