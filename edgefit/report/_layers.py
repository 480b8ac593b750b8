"""The per-kernel breakdown of the chosen model, re-estimated from its ONNX file.

results.json keeps totals only; the bars come from running the estimator again on the model file,
the exported model.onnx beside results.json first. The breakdown is always an estimate (the
estimator's split of its own total), never measured, and the report says so. When no copy of the
file is on disk, or the target does not load here, the section says why instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    from edgefit import estimate, graph
    from edgefit.records import DoneCandidate, Results
else:  # the estimator and the graph loader bring numpy and onnx: loaded when a report needs them,
    # so `import edgefit.report` stays light
    estimate, graph = lazy_import("edgefit.estimate", "edgefit.graph")

TOP_KERNELS = 15


@dataclass(frozen=True)
class Kernel:
    name: str
    kclass: str
    dtype: str
    latency_s: float
    energy_j: float
    bound: str


@dataclass(frozen=True)
class Layers:
    """Per-kernel estimate of one candidate's ONNX file (estimated, never measured)."""

    candidate: str
    path: str
    source: str
    source_detail: str
    latency_s: float
    energy_j: float
    kernels: tuple[Kernel, ...]
    other: Kernel | None  # the kernels past the top ones, summed


def _model_files(res: Results, cand: DoneCandidate, results_dir: Path | None) -> list[Path]:
    """The copies of ``cand``'s model that are on disk, best first: the exported model.onnx (which
    travels with results.json), the path the run wrote, the same path under ``results_dir``."""
    paths = []
    if results_dir is not None and cand.key == res.selection.winner:
        paths.append(results_dir / "model.onnx")
    paths.append(Path(cand.onnx))
    if results_dir is not None:
        parts = Path(cand.onnx).parts
        if "candidates" in parts:
            paths.append(results_dir.joinpath(*parts[parts.index("candidates") :]))
    return [p for p in dict.fromkeys(paths) if p.is_file()]


def layers_of(
    res: Results, cand: DoneCandidate | None, target: Any, results_dir: Path | None
) -> tuple[Layers | None, str]:
    """The :data:`TOP_KERNELS` slowest kernels of ``cand``'s model (the rest summed), or None and
    the reason it cannot be shown."""
    if cand is None:
        return None, "no candidate finished, so there is no model to break down"
    if target is None:
        return None, "the target does not load here, so the model cannot be re-estimated"
    existing = _model_files(res, cand, results_dir)
    if not existing:
        return None, f"the model file of '{cand.label}' is no longer on disk ({cand.onnx})"
    problems = []
    for path in existing:
        try:
            est = estimate.Estimator(
                graph.load_graph(path), target, power_mode=res.target.power_mode
            ).estimate()
            break
        except EdgefitError as exc:  # a damaged file: try the next copy, then say why
            problems.append(exc.what)
    else:
        return (
            None,
            f"the model of '{cand.label}' could not be re-estimated: {'; '.join(problems)}",
        )
    ks = sorted(est.kernels, key=lambda k: -k.latency_s)
    top = tuple(
        Kernel(k.name, k.kclass, k.dtype, k.latency_s, k.energy_j, k.bound)
        for k in ks[:TOP_KERNELS]
    )
    rest = ks[TOP_KERNELS:]
    other = (
        Kernel(
            f"other ({len(rest)} kernels)",
            "-",
            "-",
            sum(k.latency_s for k in rest),
            sum(k.energy_j for k in rest),
            "-",
        )
        if rest
        else None
    )
    return Layers(
        cand.label,
        str(path),
        est.source,
        est.source_detail,
        est.latency_s,
        est.energy_j,
        top,
        other,
    ), ""
