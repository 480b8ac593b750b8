"""Tiered deployment: a confidence-calibrated cascade of models across devices.

Tier 1 (small, on the device) answers when its calibrated confidence reaches a threshold, else tier
2, …; the last tier (often the cloud) answers the rest. ``cascade`` calibrates every tier, searches
the thresholds under a budget, and reports accuracy, latency, cloud share and cost, against each
tier alone.

>>> from edgefit.cascade import Objective, cascade
>>> result = cascade(["small.onnx@glasses", "large.onnx@glasses",
...                   "cloud:latency=800ms,usd=0.0004,accuracy=0.99"], "eval.npz",
...                  Objective("max-accuracy", latency_budget_s=0.1))   # doctest: +SKIP
>>> result.reported.accuracy, result.reported.shares                     # doctest: +SKIP

Importing this package imports numpy only; onnxruntime, scikit-learn and scipy load when a run
needs them.
"""

from edgefit.cascade._example import Example, build_example
from edgefit.cascade._run import cascade, split_indices
from edgefit.cascade._thresholds import NoFeasibleCascade
from edgefit.cascade._types import (
    CASCADE_SCHEMA_ID,
    CalibrationReport,
    Calibrator,
    CascadeResult,
    Objective,
    OperatingPoint,
    Quantity,
    TierCost,
    TierResult,
    TierSpec,
)

__all__ = [
    "CASCADE_SCHEMA_ID",
    "CalibrationReport",
    "Calibrator",
    "CascadeResult",
    "Example",
    "NoFeasibleCascade",
    "Objective",
    "OperatingPoint",
    "Quantity",
    "TierCost",
    "TierResult",
    "TierSpec",
    "build_example",
    "cascade",
    "split_indices",
]
