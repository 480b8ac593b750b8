"""Whole candidate records for tests and for trying a selection rule by hand: every field
results.json requires, filled with plain values, and the figures a pick reads as arguments.

>>> c = done_candidate("a" * 16, accuracy=0.98, p50_s=1e-3)
>>> c.accuracy.value, c.latency.p50_s, c.fits
(0.98, 0.001, True)
"""

from __future__ import annotations

from typing import Any

from edgefit.records._candidate import DoneCandidate, FailedCandidate

_PASSES = ("swap", "prune", "recover", "quantize", "torchao")
# the search space's point for the model as it came (edgefit.search.Choice() as JSON)
_UNCHANGED: dict[str, Any] = {
    "width": 1.0,
    "depth": 1.0,
    "resolution": None,
    "activation": None,
    "prune": "none",
    "prune_amount": 0.0,
    "precision": "fp32",
    "calibration": "minmax",
    "keep_float": 0,
}


def done_candidate(
    key: str,
    *,
    accuracy: float,
    p50_s: float,
    fits: bool = True,
    label: str | None = None,
    precision: str = "fp32",
    change_kinds: tuple[str, ...] = ("runtime",),
    plan: dict[str, Any] | None = None,
    days: float = 10.0,
    usd: float = 0.0,
    certification: bool = False,
    **fields: Any,
) -> DoneCandidate:
    """A finished candidate measured at ``p50_s`` (p90 and p99 the same) with ``accuracy``;
    ``plan`` names the passes that built it (the rest None); ``fields`` override any other field
    of the record."""
    record: dict[str, Any] = {
        "key": key,
        "label": label or key,
        "status": "done",
        "choice": {**_UNCHANGED, "precision": precision},
        "plan": {f: None for f in _PASSES} | (plan or {}),
        "change_kinds": list(change_kinds),
        "onnx": f"candidates/{key}/model.onnx",
        "accuracy": {"kind": "top1", "value": accuracy, "label": "top-1", "source": "given"},
        "estimate": {
            "latency_s": p50_s,
            "energy_j": 0.0,
            "average_power_w": 0.0,
            "weight_bytes": 0.0,
            "peak_activation_bytes": 0.0,
            "source": "datasheet",
            "error": 0.5,
        },
        "iteration": {
            "change_kinds": [k for k in change_kinds if k != "runtime"] or ["runtime"],
            "certification": certification,
            "days": days,
            "usd": usd,
            "iterations_by_deadline": 18,
            "accuracy_now": accuracy,
            "accuracy_at_deadline": accuracy,
        },
        "latency": {
            "source": "measured",
            "runtime": "onnxruntime",
            "threads": 1,
            "p50_s": p50_s,
            "p90_s": p50_s,
            "p99_s": p50_s,
            "jitter_s": 0.0,
            "n_runs": 100,
        },
        "checks": [],
        "fits": fits,
    }
    return DoneCandidate.model_validate(record | fields)


def failed_candidate(key: str, error: str = "ValueError: bad shape") -> FailedCandidate:
    """A candidate that could not be built."""
    return FailedCandidate.model_validate(
        {
            "key": key,
            "label": key,
            "status": "failed",
            "stage": "materialize",
            "error": error,
            "choice": _UNCHANGED,
        }
    )
