"""A tier's calibrator, as the app will run it: folded into the ONNX graph, or a JSON sidecar beside it.

The cascade routes on *calibrated* confidence, so the number the app compares with a tier's threshold
must be the very number edgefit measured. :func:`calibrator_confidence` is the one reference
implementation (numpy, float64) that calibration, threshold search and the checks here all read;
:func:`fold_calibrator` writes a copy of the model whose extra output ``confidence`` computes the same
number inside the graph, so the app needs no code of its own. Where a graph cannot be folded (the first
output is not ``(N, classes)``, the weights live in external data, …) :func:`write_sidecar` writes the
calibrator as JSON and :func:`apply_sidecar` is the numpy an app author can check their port against.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from edgefit._io import to_json, write_atomic
from edgefit.cascade._types import Calibrator
from edgefit.errors import EdgefitError

SIDECAR_SCHEMA_ID = "edgefit-calibrator/1"
CONFIDENCE = "confidence"
CALIBRATED_PROBABILITIES = "calibrated_probabilities"
_MIN_OPSET = 7  # Less/Div with numpy broadcasting


class CannotFold(EdgefitError):
    """The calibrator cannot be folded into this graph; ``what`` says why. The caller writes a sidecar."""


def check_calibrator(calibrator: Calibrator) -> None:
    """Refuse a calibrator whose confidence would be undefined (a bad temperature, unusable knots), so
    the reference and the folded graph never disagree on garbage."""
    where = f"calibrator ({calibrator.method})"
    if calibrator.method not in ("temperature", "isotonic", "none"):
        raise EdgefitError(f"unknown calibration method {calibrator.method!r}", where=where,
                           fix="use temperature, isotonic or none")
    if calibrator.output_kind not in ("logits", "probabilities"):
        raise EdgefitError(f"unknown output kind {calibrator.output_kind!r}", where=where,
                           fix="use logits or probabilities")
    if calibrator.method == "temperature":
        t = calibrator.temperature
        if not (math.isfinite(t) and t > 0):
            raise EdgefitError(f"temperature {t} is not a positive finite number", where=where,
                               fix="refit the temperature")
    if calibrator.method == "isotonic":
        xs, ys = np.asarray(calibrator.knots_x, float), np.asarray(calibrator.knots_y, float)
        if xs.size == 0 or xs.size != ys.size:
            raise EdgefitError(f"isotonic calibrator has {xs.size} knots_x and {ys.size} knots_y",
                               where=where, fix="give one knots_y per knots_x, at least one")
        if not (np.all(np.isfinite(xs)) and np.all(np.isfinite(ys)) and np.all(np.diff(xs) > 0)):
            raise EdgefitError("isotonic knots must be finite with strictly increasing knots_x",
                               where=where, fix="refit (scikit-learn's X_thresholds_ / y_thresholds_)")


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)  # max-subtraction: no overflow for large logits
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _as_rows(outputs: Any) -> np.ndarray:
    x = np.asarray(outputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 1:
        raise EdgefitError(f"model outputs have shape {x.shape}, calibration reads (N, classes)",
                           where="outputs", fix="pass the first output of the model, one row per request")
    return x


def calibrated_probabilities(outputs: Any, calibrator: Calibrator) -> np.ndarray:
    """Class probabilities after calibration, shape (N, classes), float64. Temperature scaling changes
    them; isotonic and none leave the softmax (or the given probabilities) as they are."""
    check_calibrator(calibrator)
    x = _as_rows(outputs)
    if calibrator.method == "temperature":
        with np.errstate(divide="ignore"):  # log(0) = -inf is a zero probability, as in the graph
            z = x if calibrator.output_kind == "logits" else np.log(x)
        return _softmax(z / calibrator.temperature)
    return _softmax(x) if calibrator.output_kind == "logits" else x


def calibrator_confidence(outputs: Any, calibrator: Calibrator) -> np.ndarray:
    """The calibrated top-1 confidence of each row of ``outputs`` (N, classes): float64, shape (N,).

    This is the number a tier's threshold is compared with. Everything that needs it calls this one
    function; the folded graph and the sidecar are tested against it.

    >>> calibrator_confidence([[2.0, 0.0]], Calibrator("temperature", "logits", temperature=2.0))
    array([0.73105858])
    """
    top = calibrated_probabilities(outputs, calibrator).max(axis=1)
    if calibrator.method == "isotonic":
        return np.interp(top, calibrator.knots_x, calibrator.knots_y)
    return top
