"""Fidelity: estimate vs measured latency over a zoo of whole models, fp32 and int8.

The zoo is the built-in example architectures at several widths and input sizes. Each model is
measured with the calibration's onnxruntime settings and estimated with the profile; the report
gives median |error|, the share within ±10% and ±20%, and Kendall's τ between estimated and
measured rankings — the figures that say whether the estimator can be trusted to *rank* candidates.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import
from edgefit.calibrate._calibrate import _int8
from edgefit.calibrate._measure import time_model
from edgefit.estimate import Estimator
from edgefit.graph import load_graph
from edgefit.graph._examples import example_onnx_path

if TYPE_CHECKING:
    import onnx
else:  # the zoo models are read when a fidelity run starts
    onnx = lazy_import("onnx")

# (example, knobs, input shape or None for the example's default)
ZOO: tuple[tuple[str, dict, tuple[int, ...] | None], ...] = (
    ("digits-cnn", {}, None),
    ("digits-cnn", {"width": 0.5}, None),
    ("resnet18", {}, (1, 3, 224, 224)),
    ("resnet18", {"width": 0.5, "resolution": 128}, (1, 3, 128, 128)),
    ("mobilenetv2", {}, (1, 3, 224, 224)),
    ("mobilenetv2", {"width": 0.5, "resolution": 160}, (1, 3, 160, 160)),
    ("ds-cnn-kws", {}, None),
    ("tiny-transformer", {}, None),
    ("tiny-transformer", {"width": 0.5, "resolution": 64}, None),
    ("speech-enhance", {}, None),
    ("mobilenetv1-vww", {}, None),
    ("mobilenetv1-vww", {"width": 0.5, "resolution": 64}, None),
    ("resnet8-cifar", {}, None),
    ("fc-autoencoder", {}, None),
)


@dataclass(frozen=True)
class FidelityRow:
    model: str
    dtype: str
    macs: float
    measured_s: float
    estimated_s: float

    @property
    def error(self) -> float:
        return self.estimated_s / self.measured_s - 1


def kendall_tau(a, b) -> float:
    """Kendall's τ-a between two sequences (no SciPy needed)."""
    a, b = np.asarray(a), np.asarray(b)
    n = len(a)
    if n < 2:
        return float("nan")
    s = np.sign(a[:, None] - a[None, :]) * np.sign(b[:, None] - b[None, :])
    return float(s[np.triu_indices(n, 1)].sum() / (n * (n - 1) / 2))


def summarize(rows: list[FidelityRow]) -> dict:
    err = np.abs([r.error for r in rows])
    return {
        "models": len({r.model for r in rows}),
        "measurements": len(rows),
        "median_abs_error": float(np.median(err)),
        "p90_abs_error": float(np.percentile(err, 90)),
        "within_10pct": float((err <= 0.10).mean()),
        "within_20pct": float((err <= 0.20).mean()),
        "kendall_tau": kendall_tau([r.estimated_s for r in rows], [r.measured_s for r in rows]),
    }


def _label(name: str, knobs: dict) -> str:
    return name + "".join(f" {k}={v}" for k, v in knobs.items())


def measure_zoo(
    target,
    profile,
    *,
    threads: int,
    zoo=ZOO,
    progress: Callable[[str, int, int], None] | None = None,
    dtypes=("fp32", "int8"),
) -> list[FidelityRow]:
    """Measure and estimate every zoo model in every dtype."""
    rows: list[FidelityRow] = []
    with tempfile.TemporaryDirectory(prefix="edgefit-fidelity-") as tmp:
        for i, (name, knobs, shape) in enumerate(zoo):
            label = _label(name, knobs)
            if progress:
                progress(label, i, len(zoo))
            fp32 = onnx.load(str(example_onnx_path(name, input_shape=shape, **knobs)))
            for dtype in dtypes:
                model = fp32 if dtype == "fp32" else _int8(fp32, Path(tmp))
                measured = time_model(model, threads, min_runs=30, budget_s=1.0).p50
                graph = load_graph(model, source=label)
                est = Estimator(graph, target, profile=profile).estimate()
                rows.append(FidelityRow(label, dtype, float(graph.macs), measured, est.latency_s))
    return rows


def rows_to_dicts(rows: list[FidelityRow]) -> list[dict]:
    return [{**asdict(r), "error": r.error} for r in rows]
