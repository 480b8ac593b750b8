"""The calibrated confidence: the numpy reference against hand-worked values, and the folded ONNX graph
and the sidecar against the reference on random outputs."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.cascade._fold import calibrator_confidence
from edgefit.cascade._types import Calibrator
from edgefit.errors import EdgefitError


def test_reference_by_hand():
    # softmax([2, 0] / 2) = e / (e + 1)
    t = Calibrator("temperature", "logits", temperature=2.0)
    assert calibrator_confidence([[2.0, 0.0]], t)[0] == pytest.approx(np.e / (np.e + 1))
    # probabilities: softmax(log p / 2) = sqrt(p) normalized; p = (0.2, 0.8) -> 2 / 3
    tp = Calibrator("temperature", "probabilities", temperature=2.0)
    assert calibrator_confidence([[0.2, 0.8]], tp)[0] == pytest.approx(2 / 3)
    iso = Calibrator("isotonic", "probabilities", knots_x=(0.5, 0.9), knots_y=(0.4, 1.0))
    got = calibrator_confidence([[0.2, 0.8], [0.45, 0.55], [0.01, 0.99], [0.6, 0.4]], iso)
    np.testing.assert_allclose(got, [0.85, 0.475, 1.0, 0.55])
    # huge logits: max-subtraction keeps it finite
    assert calibrator_confidence([[1000.0, 0.0]], Calibrator("none", "logits"))[0] == 1.0


@pytest.mark.parametrize("bad", [
    Calibrator("temperature", "logits", temperature=0.0),
    Calibrator("temperature", "logits", temperature=float("nan")),
    Calibrator("isotonic", "logits"),
    Calibrator("isotonic", "logits", knots_x=(0.5, 0.5), knots_y=(0.1, 0.2)),
    Calibrator("isotonic", "logits", knots_x=(0.5,), knots_y=(0.1, 0.2)),
    Calibrator("platt", "logits"),  # type: ignore[arg-type]
])
def test_reference_refuses_bad_calibrators(bad):
    with pytest.raises(EdgefitError, match="calibrator"):
        calibrator_confidence([[1.0, 0.0]], bad)


def test_reference_refuses_wrong_rank():
    with pytest.raises(EdgefitError, match=r"shape \(3,\)"):
        calibrator_confidence([1.0, 2.0, 3.0], Calibrator("none", "logits"))
