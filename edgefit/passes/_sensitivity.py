"""Mixed precision, measured: how much each weight-bearing node costs when it alone is quantized.

Method (chosen over "keep one node float, quantize the rest"): for every Conv / ConvTranspose /
Gemm / MatMul with a constant weight, quantize **only that node** (static QDQ, the same calibration
method and ranges as the full model) and score the result with ``eval_fn``; the node's *loss* is
the fp32 score minus that score. Why this way round:

* each node's own error is isolated: in "all but one" the full-model error dominates and the
  differences between nodes drown in it (and in interactions), especially on small nets;
* losses measured alone are close to additive while errors are small, so keeping the top-k float
  removes roughly the sum of their losses;
* calibration runs once (onnxruntime's calibration cache), then N cheap quantize-and-score runs.

The default score is output fidelity, ``-‖y_q − y‖² / ‖y‖²`` against the fp32 model on the
calibration feeds (0 is perfect; loss = normalized error). Pass ``eval_fn(onnx_path) -> float``
(higher is better, e.g. validation accuracy) to rank by the metric that matters.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.passes import _onnx
from edgefit.passes._context import PassContext

if TYPE_CHECKING:
    import onnx
else:
    onnx = lazy_import("onnx")


@dataclass(frozen=True)
class LayerSensitivity:
    """One node's measured sensitivity: ``score`` with only this node quantized, ``loss`` = fp32
    score minus ``score`` (larger is more sensitive)."""

    node: str
    op_type: str
    score: float
    loss: float

    def to_dict(self) -> dict[str, Any]:
        return {"node": self.node, "op_type": self.op_type, "score": self.score, "loss": self.loss}


def fidelity_fn(
    reference_model: Path, feeds: Sequence[dict], threads: int = 2
) -> Callable[[Path], float]:
    """``fn(onnx_path) -> -NMSE`` of its outputs against ``reference_model``'s on ``feeds`` (0 =
    identical)."""
    reference = _onnx.run(reference_model, feeds, threads)
    return lambda path: -_onnx.nmse(reference, _onnx.run(path, feeds, threads))


def measure_prepared(
    source: Path,
    feeds: Sequence[dict],
    eval_fn: Callable[[Path], float] | None,
    *,
    calibration: str,
    per_channel: bool,
    threads: int,
    folder: Path,
) -> list[LayerSensitivity]:
    """:func:`layer_sensitivity` on an already prepared model file (see :func:`_onnx.prepare`)."""
    nodes = _onnx.weight_nodes(onnx.load(str(source)))
    if not nodes:
        raise EdgefitError(
            "the model has no Conv/Gemm/MatMul node with a constant weight to measure",
            where="layer_sensitivity",
            fix="quantize it without mixed precision",
        )
    score = eval_fn or fidelity_fn(source, feeds, threads)
    baseline = score(source)
    cache = folder / "calibration.json"
    out: list[LayerSensitivity] = []
    for i, (name, op_type) in enumerate(nodes):
        path = folder / f"only-{i}.onnx"
        _onnx.static_qdq(
            source,
            path,
            feeds,
            calibration=calibration,
            per_channel=per_channel,
            include=[name],
            cache=cache,
        )
        value = float(score(path))
        out.append(LayerSensitivity(name, op_type, value, baseline - value))
        path.unlink()
    return sorted(out, key=lambda s: (-s.loss if math.isfinite(s.loss) else -math.inf, s.node))


def layer_sensitivity(
    fp32_model: Any,
    calib: Sequence[Mapping[str, Any]] | Any,
    eval_fn: Callable[[Path], float] | None = None,
    *,
    calibration: str = "minmax",
    per_channel: bool = True,
    threads: int = 2,
    preprocess: bool = True,
) -> list[LayerSensitivity]:
    """Measure every weight-bearing node's sensitivity to int8, most sensitive first.

    ``fp32_model`` is an ONNX path or proto; ``calib`` a list of input feeds or an array of samples
    (as :class:`PassContext` takes). The names are those of the pre-processed graph that the
    quantize pass also uses, so they go straight into ``QuantizeConfig(keep_float=...)``.

    >>> ranked = layer_sensitivity("model.onnx", feeds)                # doctest: +SKIP
    >>> QuantizeConfig(precision="int8", keep_float=(ranked[0].node,))  # doctest: +SKIP
    """
    if calibration not in _onnx.CALIBRATION_METHODS:
        raise EdgefitError(
            f"calibration={calibration!r}",
            where="layer_sensitivity",
            fix=f"use one of {', '.join(_onnx.CALIBRATION_METHODS)}",
        )
    model = _onnx.load(fp32_model)
    feeds, _ = PassContext(calibration=calib).calibration_feeds(model)
    with tempfile.TemporaryDirectory(prefix="edgefit-sensitivity-") as tmp:
        source, _ = _onnx.prepare(model, Path(tmp), preprocess)
        return measure_prepared(
            source,
            feeds,
            eval_fn,
            calibration=calibration,
            per_channel=per_channel,
            threads=threads,
            folder=Path(tmp),
        )


def most_sensitive(ranked: Sequence[LayerSensitivity], k: int) -> tuple[str, ...]:
    """The names of the ``k`` nodes with the largest measured loss (only nodes that lose
    anything)."""
    return tuple(s.node for s in ranked[:k] if s.loss > 0)
