"""Fit the Ethos-U55 profile to Vela's kernel times: each measured kernel's roofline parts at
100% efficiency (every kernel int8, under the integer lowering) against Vela's inference time, then
efficiency, fall-off and overhead per kernel class (:func:`~edgefit.calibrate._fit.fit_class`).

Measuring the kernels (litert-torch int8 conversion, Vela) is :mod:`edgefit.calibrate._vela`; this
module only turns its measurements into a :class:`~edgefit.estimate.Profile` and scores it.
"""

from __future__ import annotations

import numpy as np

from edgefit.calibrate._fit import Sample, fit_class
from edgefit.estimate import Estimator, KernelFit, PlanBatch, Profile
from edgefit.estimate._plan import DTYPE_CODE

RUNTIME = "vela"
UNIT = "npu"  # what Vela calibrates: the Ethos-U NPU, not the Cortex-M CPU beside it
# classes whose kernel reads a depthwise 1×1 conv's output (litert-torch leaves a pool or add that
# reads the model input in float): Vela's cycles for that prefix are the sample's side cost
PREFIXED = (
    "pool",
    "eltwise",
    "reduce",
)


def int8_parts(model, target, profile: Profile):
    """Roofline parts of ``model`` (ONNX, fp32) with every kernel int8, and its estimator."""
    from edgefit.graph import load_graph

    est = Estimator(load_graph(model), target, profile=profile)
    batch = PlanBatch.empty(1, len(est.table))
    batch.dtype[0] = DTYPE_CODE["int8"]
    return est.components(batch), est


def unit_profile(target_id: str, fits: dict | None = None) -> Profile:
    """Efficiency 1 and no overhead for int8 (the raw roofline), except the classes already
    fitted."""
    from edgefit.estimate import KERNEL_CLASSES

    kernels = {(k, "int8"): KernelFit(1.0, 0.0) for k in KERNEL_CLASSES}
    kernels.update(fits or {})
    return Profile(target=target_id, runtime=RUNTIME, kernels=kernels, units=(UNIT,))


def _main(est, kclass: str) -> int:
    """The first kernel of class ``kclass`` after the prefix (an add comes before the ReLU the
    table keeps apart)."""
    from edgefit.estimate import KERNEL_CLASSES

    start = 1 if kclass in PREFIXED else 0
    hits = [
        i for i in range(start, len(est.table)) if KERNEL_CLASSES[est.table.kclass[i]] == kclass
    ]
    return hits[0] if hits else int(np.argmax(est.table.ops))


def samples(target, measured) -> list[Sample]:
    """One :class:`Sample` per measured kernel: its roofline parts at 100% (all int8) and Vela's
    time.

    ``measured`` is ``[(class, label, fp32 ONNX model, Vela seconds, prefix seconds), …]``; the
    side cost is the prefix, at Vela's own cycles for it.
    """
    out = []
    for kclass, label, model, seconds, prefix in measured:
        parts, est = int8_parts(model, target, unit_profile(target.id))
        main = _main(est, kclass)
        out.append(
            Sample(
                label,
                kclass,
                "int8",
                float(parts["compute_s"][main]),
                float(parts["memory_s"][main]),
                float(est.table.reduction[main]),
                prefix,
                seconds,
                est.hw.level_names[int(parts["level"][main])],
            )
        )
    return out


def fit_vela_profile(target, measured) -> Profile:
    """Fit efficiency, fall-off and overhead per class to Vela's times (see :func:`samples`).

    Vela's time has no per-inference host overhead (``run_overhead_s`` 0) and the target's
    bandwidths are Vela's own (``memory_bandwidth_scale`` 1).
    """
    groups: dict[tuple[str, str], list[Sample]] = {}
    for sample in samples(target, measured):
        groups.setdefault((sample.kclass, sample.dtype), []).append(sample)
    return Profile(
        target=target.id,
        runtime=RUNTIME,
        kernels={key: fit_class(group) for key, group in groups.items()},
        units=(UNIT,),
    )


def residual(target, profile: Profile, measured) -> dict:
    """Errors of the fitted profile on the measured kernels (main kernel + Vela's prefix time)."""
    err = []
    for kclass, _label, model, seconds, prefix in measured:
        parts, est = int8_parts(model, target, profile)
        main = _main(est, kclass)
        pred = float(
            np.maximum(parts["compute_s"][main], parts["memory_s"][main])
            + parts["overhead_s"][main]
        )
        err.append((pred + prefix) / seconds - 1)
    e = np.abs(np.array(err))
    return {
        "kernels_measured": len(err),
        "median_abs_error": float(np.median(e)),
        "p90_abs_error": float(np.percentile(e, 90)),
        "within_10pct": float((e <= 0.10).mean()),
        "within_20pct": float((e <= 0.20).mean()),
    }
