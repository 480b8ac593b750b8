"""Confidence calibration per tier: temperature scaling or isotonic regression, chosen by held-out
ECE.

A cascade routes on confidence, so a tier whose 0.9 means "right 70% of the time" sends the wrong
requests onward. Two standard fixes, both fitted on the calibration split only:

- **temperature scaling** (Guo et al. 2017): one scalar T, fitted by minimizing the negative
  log-likelihood of softmax(logits / T); keeps the ranking of confidences, calibrates all classes;
- **isotonic regression** (Zadrozny & Elkan 2002): a monotone map from the raw top-1 probability to
  the observed accuracy; more flexible, needs more data, calibrates only the confidence routing
  reads.

Which one a tier gets is decided by cross-validation *inside* the calibration split (each method
fitted on four folds, its expected calibration error measured on the fifth, pooled); the report
split, where ECE before and after is printed, is never seen by fitting or choosing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import
from edgefit.cascade._fold import calibrator_confidence
from edgefit.cascade._types import CalibrationReport, Calibrator, OutputKind, ReliabilityBin
from edgefit.errors import EdgefitError

if TYPE_CHECKING:  # scipy and scikit-learn load when a calibrator is fitted
    from scipy import optimize as scipy_optimize
    from sklearn import isotonic as sk_isotonic
else:
    scipy_optimize, sk_isotonic = lazy_import("scipy.optimize", "sklearn.isotonic")

ECE_BINS = 15  # equal-width confidence bins, the usual choice since Guo et al.
RELIABILITY_BINS = 10  # coarser bins for the diagram: fewer, fuller bars on small splits
MIN_CALIBRATION = (
    50  # samples: below this, isotonic regression (and a 5-fold choice) has nothing to stand on
)
MIN_EACH = 5  # right and wrong answers each, for isotonic regression to be a candidate
FOLDS = 5


def detect_output_kind(outputs: np.ndarray) -> tuple[OutputKind, str]:
    """Probabilities when every row is non-negative and sums to 1 (±1e-3), logits otherwise."""
    rows = outputs.sum(axis=1)
    if np.all(outputs >= 0) and np.all(outputs <= 1) and np.allclose(rows, 1.0, atol=1e-3):
        return "probabilities", "detected: every row is non-negative and sums to 1"
    return "logits", "detected: rows do not sum to 1 (read as logits, softmax applied)"


def log_probs(outputs: np.ndarray, kind: OutputKind) -> np.ndarray:
    """Log-softmax of logits, or the log of given probabilities (floored at 1e-12), in float64."""
    z = outputs.astype(np.float64)
    if kind == "probabilities":
        return np.log(np.clip(z, 1e-12, 1.0))
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: Σ_bins (n_b / n) · |accuracy_b − mean confidence_b| over
    equal-width bins of the top-1 confidence.

    >>> round(ece(np.array([0.9, 0.9, 0.6, 0.6]), np.array([1, 1, 1, 0])), 3)
    0.1
    """
    return float(
        sum(
            b.count * abs(b.accuracy - b.mean_confidence)
            for b in reliability(confidence, correct, bins)
        )
        / max(len(confidence), 1)
    )


def reliability(
    confidence: np.ndarray, correct: np.ndarray, bins: int = RELIABILITY_BINS
) -> tuple[ReliabilityBin, ...]:
    """The non-empty bins of a reliability diagram (confidence 1.0 falls in the last bin)."""
    idx = np.minimum((np.asarray(confidence) * bins).astype(int), bins - 1)
    out = []
    for b in range(bins):
        mask = idx == b
        if mask.any():
            out.append(
                ReliabilityBin(
                    b / bins,
                    (b + 1) / bins,
                    int(mask.sum()),
                    float(confidence[mask].mean()),
                    float(np.asarray(correct, float)[mask].mean()),
                )
            )
    return tuple(out)


def fit_temperature(logp: np.ndarray, labels: np.ndarray) -> float:
    """The T in [0.05, 20] minimizing the NLL of softmax(logp / T) (bounded scalar search on log
    T)."""
    rows = np.arange(len(labels))

    def nll(log_t: float) -> float:
        z = logp / np.exp(log_t)
        z = z - z.max(axis=1, keepdims=True)
        return float(-(z[rows, labels] - np.log(np.exp(z).sum(axis=1))).mean())

    return float(
        np.exp(
            scipy_optimize.minimize_scalar(
                nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded", options={"xatol": 1e-4}
            ).x
        )
    )


def fit_isotonic(
    raw_confidence: np.ndarray, correct: np.ndarray
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Knots of the monotone map raw top-1 probability → accuracy (scikit-learn, clipped to [0,
    1])."""
    iso = sk_isotonic.IsotonicRegression(
        y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True
    )
    iso.fit(raw_confidence, correct.astype(float))
    return tuple(map(float, iso.X_thresholds_)), tuple(map(float, iso.y_thresholds_))


def fit(method: str, outputs: np.ndarray, labels: np.ndarray, kind: OutputKind) -> Calibrator:
    """Fit one method on (outputs, labels)."""
    if method == "temperature":
        return Calibrator(
            "temperature", kind, temperature=fit_temperature(log_probs(outputs, kind), labels)
        )
    if method == "isotonic":
        raw = confidence(outputs, Calibrator("none", kind))
        x, y = fit_isotonic(raw, outputs.argmax(axis=1) == labels)
        return Calibrator("isotonic", kind, knots_x=x, knots_y=y)
    return Calibrator("none", kind)


def confidence(outputs: np.ndarray, calibrator: Calibrator) -> np.ndarray:
    """Calibrated top-1 confidence per row (the one numpy reference, shared with the folded graph's
    test)."""
    return calibrator_confidence(outputs, calibrator)


def _folds(labels: np.ndarray, seed: int) -> np.ndarray:
    """A fold id per sample, stratified by label so every fold sees every class."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(labels), int)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        fold[idx] = np.arange(len(idx)) % FOLDS
    return fold


def cv_ece(
    method: str, outputs: np.ndarray, labels: np.ndarray, kind: OutputKind, seed: int
) -> float:
    """ECE of ``method`` from 5-fold cross-validation on the calibration split (pooled
    out-of-fold)."""
    fold = _folds(labels, seed)
    conf = np.empty(len(labels))
    for f in range(FOLDS):
        test = fold == f
        cal = fit(method, outputs[~test], labels[~test], kind)
        conf[test] = confidence(outputs[test], cal)
    return ece(conf, outputs.argmax(axis=1) == labels)


def calibrate_tier(
    cal_outputs: np.ndarray,
    cal_labels: np.ndarray,
    report_outputs: np.ndarray,
    report_labels: np.ndarray,
    *,
    output_kind: OutputKind | None = None,
    seed: int = 0,
    where: str = "--tier",
) -> CalibrationReport:
    """Choose, fit and report one tier's calibrator (see the module docstring)."""
    n = len(cal_labels)
    if n < MIN_CALIBRATION:
        raise EdgefitError(
            f"the calibration split has {n} samples; isotonic regression and the 5-fold choice of "
            f"a calibrator need at least {MIN_CALIBRATION}",
            where=where,
            fix="pass more labelled data, or a larger --splits calibration fraction",
        )
    if output_kind is None:
        kind, kind_source = detect_output_kind(cal_outputs)
    else:
        kind, kind_source = output_kind, "stated by --outputs"
    right = int((cal_outputs.argmax(axis=1) == cal_labels).sum())
    methods = ["none", "temperature"]
    if min(right, n - right) >= MIN_EACH:
        methods.append(
            "isotonic"
        )  # with fewer than 5 wrong (or right) answers it can only learn a step
    scores = {m: cv_ece(m, cal_outputs, cal_labels, kind, seed) for m in methods}
    best = min((m for m in methods if m != "none"), key=lambda m: scores[m])
    calibrator = fit(best, cal_outputs, cal_labels, kind)
    correct = report_outputs.argmax(axis=1) == report_labels
    raw = confidence(report_outputs, Calibrator("none", kind))
    after = confidence(report_outputs, calibrator)
    return CalibrationReport(
        calibrator,
        n,
        scores,
        ece(raw, correct),
        ece(after, correct),
        ECE_BINS,
        reliability(raw, correct),
        reliability(after, correct),
        kind_source,
    )
