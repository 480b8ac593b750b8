"""Hold a target's *existing* estimate against its published points, fitting nothing.

:mod:`edgefit.estimate._published_fit` fits a target's datasheet roofline to its points. A target
that is already calibrated another way keeps that calibration, and its published points are a
check only: Ethos-U55's estimate is fitted to Arm Vela's cycle estimates, and the few hardware
measurements of an Ethos-U55 (profiles/ethos-u55/published.yaml) come from other configurations
(a 64-MAC array at 400 MHz, another runtime), so fitting to them would replace a known ground
truth with a proxy. Here each point is estimated the way ``edgefit estimate`` would, then scaled
by the one difference the schema states, the clock, and the error says how far off it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefit.errors import EdgefitError
from edgefit.estimate import Estimator, Plan
from edgefit.estimate._hw import _unit_for
from edgefit.estimate._published import Point, PublishedFile, find_published
from edgefit.graph import _reference as reference_models


@dataclass(frozen=True)
class CheckRow:
    """One point against the estimate (SI units: seconds or samples per second)."""

    point: Point
    unit: str  # the compute unit estimated
    published: float
    estimate: float  # at the target file's clocks
    clock_scaled: float  # at the point's clock (the estimate x reference clock / point clock)
    source: str  # where the estimate comes from: the calibration profile, or datasheet

    @property
    def error(self) -> float:
        """Clock-scaled estimate over published, minus 1 (-0.5: the estimate is half)."""
        return self.clock_scaled / self.published - 1


def check_points(target, published: PublishedFile, graphs: dict) -> list[CheckRow]:
    """Every latency or throughput point of ``published`` against ``target``'s estimate at batch 1
    (energy points are left out: there is no measured energy to check yet).

    The point's default unit is estimated with the target's calibration profile, if it has one; a
    point that names another unit (the CPU of an NPU target) gets the datasheet estimate, since a
    profile fitted on one unit says nothing about another.
    """

    rows = []
    for p in published.points:
        if p.metric == "energy_per_inference":
            continue
        default, _ = _unit_for(target, p.precision, None)
        unit = p.units[0] if p.units else default.name
        profile = "auto" if unit == default.name else None
        est = Estimator(graphs[p.model], target, unit=unit, profile=profile, learned=None)
        result = est.estimate(Plan(dtype=p.precision))
        latency = result.latency_s
        scaled = latency / published.clock_scale(p, unit)
        to_metric = (lambda s: 1.0 / s) if p.metric == "throughput" else (lambda s: s)
        rows.append(
            CheckRow(
                point=p,
                unit=unit,
                published=p.si_value,
                estimate=to_metric(latency),
                clock_scaled=to_metric(scaled),
                source=result.source_detail if profile else "datasheet (no profile for this unit)",
            )
        )
    return rows


def published_check(target, published: PublishedFile | None = None) -> list[CheckRow]:
    """Build the reference models (ONNX cached) and check ``target``'s published points."""
    published = published or find_published_or_raise(target)
    models = sorted({p.model for p in published.points})
    graphs = {name: reference_models.reference_graph(name) for name in models}
    return check_points(target, published, graphs)


def check_summary(rows: list[CheckRow]) -> dict:
    """Median and largest |error| over the rows, overall and per confidence."""

    def figures(subset: list[CheckRow]) -> dict:
        errs = np.abs([r.error for r in subset])
        return {
            "points": len(subset),
            "median_abs_error": float(np.median(errs)) if len(errs) else None,
            "max_abs_error": float(errs.max()) if len(errs) else None,
        }

    return {
        **figures(rows),
        "by_confidence": {
            c: figures([r for r in rows if r.point.confidence == c])
            for c in "HML"
            if any(r.point.confidence == c for r in rows)
        },
    }


def check_payload(target) -> dict:
    """What ``edgefit fidelity --target T`` prints for a target calibrated another way: each point
    against the estimate (no fit), with its source, confidence and why it is a proxy, and the
    figures (JSON-ready; SI units)."""
    published = find_published_or_raise(target)
    rows = published_check(target, published)
    return {
        "target": target.id,
        "proxy": published.proxy,
        "method": "check: the target's own estimate (its calibration profile where it has one), "
        "scaled to each point's clock; nothing is fitted to these points",
        **check_summary(rows),
        "rows": [
            {
                "id": r.point.id,
                "model": r.point.model,
                "precision": r.point.precision,
                "unit": r.unit,
                "setting": r.point.setting,
                "metric": r.point.metric,
                "published": r.published,
                "estimate": r.estimate,
                "clock_scaled_estimate": r.clock_scaled,
                "error": r.error,
                "estimate_source": r.source,
                "confidence": r.point.confidence,
                "source": r.point.source,
                "note": r.point.note,
            }
            for r in rows
        ],
    }


def find_published_or_raise(target) -> PublishedFile:
    published = find_published(target)
    if published is None:
        raise EdgefitError(
            f"target '{target.id}' has no published measurements",
            where="--target",
            fix="add profiles/<target-id>/published.yaml (see profiles/ethos-u55/)",
        )
    return published
