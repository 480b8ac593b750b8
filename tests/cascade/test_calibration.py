"""Calibration per tier: the method is chosen by cross-validation inside the calibration split, and
ECE is reported on data neither fitting nor choosing saw."""

from __future__ import annotations

import numpy as np
import pytest

from edgefit.cascade._calibration import (
    MIN_CALIBRATION, calibrate_tier, detect_output_kind, ece, fit_temperature, log_probs, reliability,
)
from edgefit.errors import EdgefitError


def overconfident(n: int, scale: float, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from softmax(z) (so z is calibrated); the model outputs ``scale`` · z."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (n, classes))
    z[np.arange(n), rng.integers(0, classes, n)] += 2.5
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    labels = (p.cumsum(1) > rng.random((n, 1))).argmax(1)
    return scale * z, labels


def test_ece_by_hand_and_reliability_bins():
    conf = np.array([0.95, 0.95, 0.95, 0.95, 0.55, 0.55])
    correct = np.array([1, 1, 1, 0, 1, 0])
    # bin [0.9, 1.0): 4 samples, accuracy 0.75, confidence 0.95; bin [0.5, 0.6): 2, 0.5 vs 0.55
    assert ece(conf, correct, bins=10) == pytest.approx((4 * 0.2 + 2 * 0.05) / 6)
    bins = reliability(conf, correct, bins=10)
    assert [(b.lo, b.count, b.accuracy) for b in bins] == [(0.5, 2, 0.5), (0.9, 4, 0.75)]
    assert reliability(np.array([1.0]), np.array([1]), bins=10)[0].lo == 0.9  # 1.0 lands in the last bin


def test_temperature_recovers_the_overconfidence_factor():
    logits, labels = overconfident(2000, 3.0, seed=1)
    t = fit_temperature(log_probs(logits, "logits"), labels)
    assert 2.6 < t < 3.4


def test_calibration_lowers_held_out_ece_of_an_overconfident_model():
    cal, cal_y = overconfident(600, 3.0, seed=2)
    rep, rep_y = overconfident(600, 3.0, seed=3)
    report = calibrate_tier(cal, cal_y, rep, rep_y)
    assert report.calibrator.method in ("temperature", "isotonic")
    assert report.cv_ece[report.calibrator.method] <= min(v for k, v in report.cv_ece.items() if k != "none")
    # ECE on 600 samples is noisy even for a perfectly calibrated model: compare with the true one's
    truth = rep / 3.0
    p = np.exp(truth - truth.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    perfect = ece(p.max(1), p.argmax(1) == rep_y)
    assert report.ece_before > 0.2 and report.ece_after < perfect + 0.02
    assert report.calibration_samples == 600 and report.output_kind_source.startswith("detected: rows do not")


def test_isotonic_wins_where_no_temperature_fits():
    """A model whose confidence is unrelated to being right in a non-monotone-softmax way: confidences
    near 0.9 are right half the time, those near 0.6 nearly always. No single temperature fixes that
    (it keeps the ranking); isotonic regression flattens it."""
    rng = np.random.default_rng(4)

    def sample(n):
        hi = rng.random(n) < 0.5
        top = np.where(hi, 0.9, 0.6) + rng.normal(0, 0.01, n)
        probs = np.full((n, 4), 0.0)
        probs[:, 0] = top
        probs[:, 1:] = ((1 - top) / 3)[:, None]
        right = np.where(hi, rng.random(n) < 0.5, rng.random(n) < 0.97)
        labels = np.where(right, 0, 1 + rng.integers(0, 3, n))
        return probs, labels

    (cal, cal_y), (rep, rep_y) = sample(800), sample(800)
    report = calibrate_tier(cal, cal_y, rep, rep_y)
    assert report.calibrator.method == "isotonic" and report.calibrator.output_kind == "probabilities"
    assert report.ece_after < report.ece_before / 2


def test_output_kind_detection():
    assert detect_output_kind(np.array([[0.2, 0.8], [1.0, 0.0]]))[0] == "probabilities"
    assert detect_output_kind(np.array([[2.0, -1.0], [0.1, 0.3]]))[0] == "logits"
    assert detect_output_kind(np.array([[0.2, 0.3], [0.1, 0.3]]))[0] == "logits"  # in [0, 1] but not summing to 1


def test_a_too_small_calibration_split_is_one_line():
    logits, labels = overconfident(MIN_CALIBRATION - 1, 2.0, seed=5)
    with pytest.raises(EdgefitError) as err:
        calibrate_tier(logits, labels, logits, labels, where="--tier tier1")
    assert "--tier tier1" in str(err.value) and f"at least {MIN_CALIBRATION}" in str(err.value)


def test_a_tier_with_almost_no_mistakes_is_calibrated_by_temperature_only():
    logits, labels = overconfident(300, 1.0, seed=6)
    labels = logits.argmax(1).copy()
    labels[:3] = (labels[:3] + 1) % 10  # three mistakes: too few for isotonic regression
    report = calibrate_tier(logits, labels, logits, labels)
    assert "isotonic" not in report.cv_ece and report.calibrator.method == "temperature"
