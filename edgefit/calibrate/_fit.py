"""Fit per-kernel-class efficiency and overhead to measured kernel times.

The estimator models one kernel as ``max(compute_1 / eff(r), memory / bw_scale) + overhead`` where
``compute_1`` is the compute time at 100% of peak and ``eff(r) = efficiency · r / (r + k_half)``
falls off for short reduction lengths ``r`` (input channels × kernel size: a 16-channel int8
convolution cannot fill VNNI lanes the way a 512-channel one does). For each (kernel class, dtype)
the fit picks (efficiency, k_half, overhead) minimizing the mean absolute log error over that
class's measurements (a grid search: robust to outliers, no local minima, fast at these sizes).
Memory bandwidth is fitted first, on the memory-bound elementwise kernels, and applied to every
level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefit.estimate._profile import KernelFit

_EFF = np.logspace(-3.3, 0.0, 100)
_OVH = np.concatenate([[0.0], np.logspace(-7.0, -3.3, 50)])
_KHALF = np.array([0.0, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024])
FLOOR_S = 2e-7  # measured kernel times below this (after subtracting the call overhead) are noise


@dataclass(frozen=True)
class Sample:
    """One measured kernel model: the main kernel's roofline parts and everything else
    predicted."""

    label: str
    kclass: str
    dtype: str
    compute_1: float  # seconds at 100% of peak
    memory: float  # seconds at datasheet bandwidth
    reduction: float  # reduction length r of the main kernel (0: none)
    other: float  # predicted seconds of the model's other kernels (e.g. an input quantize)
    measured: float  # seconds, run overhead already subtracted
    level: str = ""  # memory level of the main kernel's activation traffic


def fit_class(samples: list[Sample], *, bw_scale: float = 1.0) -> KernelFit:
    """Efficiency and overhead for one (class, dtype) from its samples."""
    a = np.array([s.compute_1 for s in samples])
    m = np.array([s.memory for s in samples]) / bw_scale
    r = np.array([s.reduction for s in samples])
    y = np.maximum(np.array([s.measured - s.other for s in samples]), FLOOR_S)
    # falloff[h, n] = r / (r + k_half): 1 where the kernel has no reduction
    denom = r[None, :] + _KHALF[:, None]
    falloff = np.divide(
        r[None, :], denom, out=np.ones_like(denom), where=(r[None, :] > 0) & (denom > 0)
    )
    eff = _EFF[:, None, None] * falloff[None, :, :]  # E × H × n
    roof = np.maximum(a / eff, m)  # E × H × n
    pred = roof[:, :, None, :] + _OVH[None, None, :, None]  # E × H × O × n
    return best_fit(pred, y)


def best_fit(pred: np.ndarray, y: np.ndarray) -> KernelFit:
    """The grid point (efficiency × k_half × overhead) whose predictions ``pred`` (E × H × O × n)
    are closest to the measured ``y`` in mean |log error|, as a profile's kernel fit."""
    loss = np.abs(np.log(pred) - np.log(y)).mean(axis=3)
    e, h, o = np.unravel_index(np.argmin(loss), loss.shape)
    rel = np.abs(pred[e, h, o] / y - 1)
    return KernelFit(
        efficiency=float(_EFF[e]),
        overhead_s=float(_OVH[o]),
        n=len(y),
        median_abs_error=float(np.median(rel)),
        k_half=float(_KHALF[h]),
    )


def fit_bandwidth(samples: list[Sample]) -> tuple[float, float]:
    """``(bw_scale, overhead)`` from memory-bound samples: time = memory / bw_scale + overhead."""
    m = np.array([s.memory for s in samples])
    y = np.maximum(np.array([s.measured - s.other for s in samples]), FLOOR_S)
    scales = np.logspace(-1.5, 1.5, 200)
    pred = m[None, None, :] / scales[:, None, None] + _OVH[None, :, None]
    loss = np.abs(np.log(pred) - np.log(y)[None, None, :]).mean(axis=2)
    s, o = np.unravel_index(np.argmin(loss), loss.shape)
    return float(scales[s]), float(_OVH[o])
