"""cascade-config.json: what a mobile app reads to route requests through the tiers, and its JSON
Schema.

The app should not need edgefit, nor cascade.json's measurements, to route: it needs each tier's
model file, the output that holds the calibrated confidence (or the calibrator to apply itself),
the threshold and the order. The figures it may show or log (expected share, latency with its
source, cost) come along, each with its unit and split. The schema (draft 2020-12) ships beside
this module so other pipelines can validate without importing edgefit: ``edgefit cascade schema >
cascade-config.schema.json``.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from edgefit._version import __version__
from edgefit.cascade._fold import CONFIDENCE, describe
from edgefit.cascade._types import CascadeResult, Objective, TierResult
from edgefit.errors import EdgefitError

CONFIG_SCHEMA_ID = "edgefit-cascade-config/1"
SCHEMA_FILE = "cascade-config.schema.json"


@lru_cache(maxsize=1)
def _schema_text() -> str:
    # beside this module in the source tree and in the wheel (hatch ships every file under
    # edgefit/)
    return Path(__file__).with_name(SCHEMA_FILE).read_text(encoding="utf-8")


def config_schema() -> dict:
    """The JSON Schema (draft 2020-12) of cascade-config.json.

    >>> config_schema()["properties"]["schema"]["const"]
    'edgefit-cascade-config/1'
    """
    return json.loads(_schema_text())


def _pct(x: float) -> str:
    return f"{100 * x:.3g}%"


def objective_words(objective: Objective) -> str:
    """The threshold search's goal in one phrase, e.g. 'maximize accuracy with expected latency ≤
    120 ms'."""
    limits = []
    if objective.latency_budget_s is not None:
        limits.append(f"expected latency ≤ {objective.latency_budget_s * 1e3:.4g} ms")
    if objective.cloud_share_budget is not None:
        limits.append(f"cloud share ≤ {_pct(objective.cloud_share_budget)}")
    if objective.energy_budget_j is not None:
        limits.append(f"expected energy ≤ {objective.energy_budget_j * 1e3:.4g} mJ per request")
    if objective.usd_per_1000_budget is not None:
        limits.append(f"cost ≤ ${objective.usd_per_1000_budget:.4g} per 1,000 requests")
    if objective.accuracy_floor is not None:
        limits.append(f"accuracy ≥ {_pct(objective.accuracy_floor)}")
    goal = "maximize accuracy" if objective.kind == "max-accuracy" else "minimize expected latency"
    sure = (
        f" ({'each' if len(limits) > 1 else 'met'} with {objective.budget_confidence:.0%} "
        "confidence on new "
        "requests, allowing for the select split's sampling error)"
        if limits and objective.budget_confidence
        else ""
    )
    return f"{goal} with {', '.join(limits)}{sure}" if limits else goal


def routing_words(result: CascadeResult) -> str:
    """The routing rule in words, with the tiers' names and thresholds."""
    steps = [
        f"{t.spec.name} answers when its calibrated confidence ≥ {t.threshold:.4g}"
        for t in result.tiers[:-1]
        if t.threshold is not None
    ]
    last = result.tiers[-1].spec.name
    head = (
        "Run the tiers in order: " + ", else ".join(steps) + f", else {last} answers"
        if steps
        else f"{last} answers every request"
    )
    return (
        f"{head}; the last tier always answers. A request that stops at a tier has paid the "
        "latency, "
        "energy and cost of every tier before it. The calibrated confidence is the model's "
        f"'{CONFIDENCE}' output where the calibrator is folded in, else the calibrator applied to "
        "the "
        "model's first output (sidecar)."
    )


def _file(path: str | None, base: Path | None) -> str | None:
    """A file as the app finds it: relative to the config's folder where edgefit wrote it there
    (models/…), else its name (a model the user supplied, which the app bundles itself)."""
    if not path:
        return None
    p = Path(path)
    if base is not None:
        try:
            return p.resolve().relative_to(Path(base).resolve()).as_posix()
        except ValueError:
            pass
    return p.name


def _calibrator(tier: TierResult, base: Path | None) -> dict[str, Any] | None:
    if tier.calibration is None:
        return None
    cal = tier.calibration.calibrator
    applied = (
        "folded" if tier.calibrated_model else "sidecar" if tier.calibrator_sidecar else "app"
    )
    return {
        **cal.to_dict(),
        "knots_x": list(cal.knots_x),
        "knots_y": list(cal.knots_y),
        "applied": applied,
        "confidence_output": CONFIDENCE if applied == "folded" else None,
        "sidecar": _file(tier.calibrator_sidecar, base),
        "rule": describe(cal),
    }


def _tier(tier: TierResult, share: float, base: Path | None) -> dict[str, Any]:
    return {
        "name": tier.spec.name,
        "model": _file(tier.calibrated_model or tier.spec.model, base),
        "target": tier.spec.target,
        "input_shape": list(tier.input_shape),
        "output_shape": list(tier.output_shape),
        "threshold": tier.threshold,
        "calibrator": _calibrator(tier, base),
        "expected_share": share,
        "latency_p50": tier.cost.latency_p50.to_dict(),
        "usd_per_request": tier.cost.usd.value,
    }


def cascade_config(result: CascadeResult, *, base: str | Path | None = None) -> dict[str, Any]:
    """The config a mobile app reads (schema ``edgefit-cascade-config/1``), from a finished run.
    Shares and the expected figures are the report split's, which neither calibration nor the
    search saw. ``base`` is the folder the config is written to: files inside it are named relative
    to it.

    >>> cfg = cascade_config(result)  # doctest: +SKIP
    >>> [(t["name"], t["threshold"]) for t in cfg["tiers"]]  # doctest: +SKIP
    [('tier1', 0.75), ('tier2', 0.8), ('cloud', None)]
    """
    rep = result.reported
    return {
        "schema": CONFIG_SCHEMA_ID,
        "edgefit_version": __version__,
        "routing": routing_words(result),
        "objective": {
            **result.objective.to_dict(),
            "description": objective_words(result.objective),
        },
        "expected": {
            "split": rep.split,
            "samples": rep.samples,
            "accuracy": rep.accuracy,
            "expected_latency_s": rep.expected_latency_s,
            "p99_latency_s": rep.p99_latency_s,
            "cloud_share": rep.cloud_share,
            "usd_per_1000": rep.usd_per_1000,
            "expected_energy_j": rep.expected_energy_j,
        },
        "tiers": [
            _tier(t, share, None if base is None else Path(base))
            for t, share in zip(result.tiers, rep.shares)
        ],
    }


def _path(parts: Any) -> str:
    return (
        "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts).lstrip(".")
        or "(top level)"
    )


def _builtin_errors(d: Any) -> list[str]:
    """Without jsonschema: the schema id and every required field, top level and per tier."""
    schema = config_schema()
    if not isinstance(d, dict):
        return ["(top level): not a JSON object"]
    errors = [f"{k}: missing field" for k in schema["required"] if k not in d]
    if "schema" in d and d["schema"] != CONFIG_SCHEMA_ID:
        errors.append(f"schema: {d['schema']!r} is not {CONFIG_SCHEMA_ID!r}")
    tiers = d.get("tiers", [])
    if not isinstance(tiers, list) or not tiers:
        return errors + ["tiers: not a non-empty list"]
    for i, tier in enumerate(tiers):
        if not isinstance(tier, dict):
            errors.append(f"tiers[{i}]: not an object")
            continue
        errors += [
            f"tiers[{i}].{k}: missing field"
            for k in schema["$defs"]["tier"]["required"]
            if k not in tier
        ]
    return errors


def config_errors(d: Any, *, limit: int = 10) -> list[str]:
    """Where ``d`` breaks the config schema, one line each, JSON path first (empty: valid). Uses
    ``jsonschema`` when installed, else the built-in check of the schema id and required fields."""
    try:
        import jsonschema
    except ImportError:
        return _builtin_errors(d)[:limit]
    validator = jsonschema.Draft202012Validator(config_schema())
    lines = []
    for e in sorted(validator.iter_errors(d), key=lambda e: list(map(str, e.absolute_path))):
        best = (
            jsonschema.exceptions.best_match(e.context) if e.context else e
        )  # oneOf: the branch that came closest
        parts = list(best.absolute_path)
        if best.validator == "required":  # name the missing field in the path: tiers[1].threshold
            parts += [k for k in best.validator_value if repr(k) in best.message][:1]
        lines.append(f"{_path(parts)}: {best.message[:200]}")
    return lines[:limit]


def validate_config(d: Any) -> None:
    """Raise :class:`EdgefitError` (one line, naming the JSON path) unless ``d`` is a valid config.

    >>> validate_config({"schema": "edgefit-cascade-config/1"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: cascade config: edgefit_version: 'edgefit_version' is a ...
    """
    errors = config_errors(d, limit=3)
    if errors:
        raise EdgefitError(
            "; ".join(errors),
            where="cascade config",
            fix="`edgefit cascade schema` prints the schema it must follow",
        )
