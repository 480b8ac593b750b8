"""Fit the Ethos-U55 profile to Vela's kernel times: each measured kernel's roofline parts at
100% efficiency (every kernel int8, under the integer lowering) against Vela's inference time, then
efficiency, fall-off and overhead per kernel class.

The fit uses the estimator's structure for an NPU kernel (:mod:`edgefit.estimate._kernels`), which
is Vela's own: a pass takes ``max(NPU cycles, SRAM cycles, flash cycles)``
(``npu_performance.update_summary_cycles``), the NPU cycles holding the fixed per-operator costs,
and a staged weight copy starts under the kernel before. So a kernel is
``max(compute_1 / eff(r) + overhead, memory)`` with ``memory`` the larger of its flash and SRAM
times (:func:`fit_overlapped`), not ``max(compute, flash + SRAM) + overhead`` as on a CPU
(:func:`~edgefit.calibrate._fit.fit_class`).

Measuring the kernels (litert-torch int8 conversion, Vela) is :mod:`edgefit.calibrate._vela`; this
module only turns its measurements into a :class:`~edgefit.estimate.Profile` and scores it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefit.calibrate._fit import _EFF, _KHALF, _OVH, FLOOR_S, Sample, best_fit
from edgefit.estimate import KERNEL_CLASSES, Estimator, KernelFit, PlanBatch, Profile
from edgefit.estimate._plan import DTYPE_CODE
from edgefit.graph import load_graph

RUNTIME = "vela"
UNIT = "npu"  # what Vela calibrates: the Ethos-U NPU, not the Cortex-M CPU beside it
# classes whose kernel reads a depthwise 1×1 conv's output (litert-torch leaves a pool or add that
# reads the model input in float): Vela's cycles for that prefix are the sample's side cost
SLICE_DEPTH = 16  # output channels of Vela's first prebuffered weight slice (OFMSplitDepth)
PREFIXED = (
    "pool",
    "eltwise",
    "reduce",
    # the transpose back to NCL after a depthwise 1×1 Conv1d; the transpose in counts as prefix
    "datamove",
)


def int8_parts(model, target, profile: Profile):
    """Roofline parts of ``model`` (ONNX, fp32) with every kernel int8, and its estimator."""

    est = Estimator(load_graph(model), target, profile=profile)
    batch = PlanBatch.empty(1, len(est.table))
    batch.dtype[0] = DTYPE_CODE["int8"]
    return est.components(batch), est


def unit_profile(target_id: str, fits: dict | None = None) -> Profile:
    """Efficiency 1 and no overhead for int8 (the raw roofline), except the classes already
    fitted."""

    kernels = {(k, "int8"): KernelFit(1.0, 0.0) for k in KERNEL_CLASSES}
    kernels.update(fits or {})
    return Profile(target=target_id, runtime=RUNTIME, kernels=kernels, units=(UNIT,))


def _main(est, kclass: str) -> int:
    """The first kernel of class ``kclass`` after the prefix (an add comes before the ReLU the
    table keeps apart)."""

    start = 1 if kclass in PREFIXED else 0
    hits = [
        i for i in range(start, len(est.table)) if KERNEL_CLASSES[est.table.kclass[i]] == kclass
    ]
    return hits[0] if hits else int(np.argmax(est.table.ops))


def memory_s(est, parts, i: int, before_s: float) -> float:
    """Kernel ``i``'s memory time as the NPU pays it: flash and SRAM traffic in parallel (one port
    each), a staged weight copy less the ``before_s`` it hides under (the kernel before's busy
    time)."""
    t, hw = est.table, est.hw
    d = DTYPE_CODE["int8"]
    level_a = int(parts["level"][i])
    level_w = int(np.flatnonzero(hw.holds_w)[-1]) if hw.holds_w.any() else level_a
    weights = t.w_elems[i] * hw.wbytes[d] / hw.bw[level_w]
    if t.prefetch is not None:
        weights = max(0.0, weights - t.prefetch[i] * before_s)
    acts = (t.in_elems[i] + t.out_elems[i]) * hw.abytes[d] / hw.bw[level_a]
    return float(weights + acts if level_w == level_a else max(weights, acts))


@dataclass(frozen=True)
class VelaSample(Sample):
    """A :class:`Sample` plus ``lead``: seconds the NPU waits before computing (its first weight
    slice, :func:`first_slice_s`), part of its busy time, not of the memory traffic."""

    lead: float = 0.0


def first_slice_s(est, i: int) -> float:
    """The wait for a staged kernel's first weight slice when nothing runs before it to hide the
    copy under: Vela (``scheduler.propose_weight_buffering``, no slack) prebuffers the first
    :data:`SLICE_DEPTH` output channels and the NPU waits for them
    (``npu_performance.estimate_full_op_performance``: op cycles + first transfer). Only a
    calibration kernel pays it; in a network that is the stem, whose weights are a few hundred
    bytes."""
    t, hw = est.table, est.hw
    if t.prefetch is None or not t.prefetch[i]:
        return 0.0
    shape = est.graph.layers[t.layers[i][0]].output_shape
    cout = int(shape[1]) if len(shape) > 1 else 1
    level_w = int(np.flatnonzero(hw.holds_w)[-1])
    weights = t.w_elems[i] * hw.wbytes[DTYPE_CODE["int8"]] / hw.bw[level_w]
    return float(weights * min(1.0, SLICE_DEPTH / max(cout, 1)))


def samples(target, measured) -> list[VelaSample]:
    """One :class:`Sample` per measured kernel: its roofline parts at 100% (all int8) and Vela's
    time.

    ``measured`` is ``[(class, label, fp32 ONNX model, Vela seconds, prefix seconds), …]``; the
    side cost is the prefix, at Vela's own cycles for it (which a staged weight copy of the main
    kernel hides under, as in Vela).
    """
    out = []
    for kclass, label, model, seconds, prefix in measured:
        parts, est = int8_parts(model, target, unit_profile(target.id))
        main = _main(est, kclass)
        out.append(
            VelaSample(
                label,
                kclass,
                "int8",
                float(parts["compute_s"][main]),
                memory_s(est, parts, main, prefix if main > 0 else 0.0),
                float(est.table.reduction[main]),
                prefix,
                seconds,
                est.hw.level_names[int(parts["level"][main])],
                first_slice_s(est, main) if main == 0 else 0.0,
            )
        )
    return out


def fit_overlapped(group: list[VelaSample]) -> KernelFit:
    """Efficiency, fall-off and overhead of one class: the grid of
    :func:`~edgefit.calibrate._fit.fit_class` under the NPU's ``max(compute / eff(r) + overhead,
    memory)``, minimizing the mean absolute log error."""
    a = np.array([s.compute_1 for s in group])
    m = np.array([s.memory for s in group])
    lead = np.array([s.lead for s in group])
    r = np.array([s.reduction for s in group])
    y = np.maximum(np.array([s.measured - s.other for s in group]), FLOOR_S)
    denom = r[None, :] + _KHALF[:, None]
    falloff = np.divide(
        r[None, :], denom, out=np.ones_like(denom), where=(r[None, :] > 0) & (denom > 0)
    )
    busy = a / (_EFF[:, None, None] * falloff[None, :, :]) + lead  # E × H × n
    pred = np.maximum(busy[:, :, None, :] + _OVH[None, None, :, None], m)  # E × H × O × n
    return best_fit(pred, y)


def fit_vela_profile(target, measured) -> Profile:
    """Fit efficiency, fall-off and overhead per class to Vela's times (see :func:`samples`).

    Vela's time has no per-inference host overhead (``run_overhead_s`` 0) and the target's
    bandwidths are Vela's own (``memory_bandwidth_scale`` 1).
    """
    groups: dict[tuple[str, str], list[VelaSample]] = {}
    for sample in samples(target, measured):
        groups.setdefault((sample.kclass, sample.dtype), []).append(sample)
    return Profile(
        target=target.id,
        runtime=RUNTIME,
        kernels={key: fit_overlapped(group) for key, group in groups.items()},
        units=(UNIT,),
    )


def residual(target, profile: Profile, measured) -> dict:
    """Errors of the fitted profile on the measured kernels (main kernel + Vela's prefix time)."""
    err = []
    for kclass, _label, model, seconds, prefix in measured:
        parts, est = int8_parts(model, target, profile)
        main = _main(est, kclass)
        busy = float(parts["compute_s"][main] + parts["overhead_s"][main])
        busy += first_slice_s(est, main) if main == 0 else 0.0
        pred = max(busy, memory_s(est, parts, main, prefix if main > 0 else 0.0))
        err.append((pred + prefix) / seconds - 1)
    e = np.abs(np.array(err))
    return {
        "kernels_measured": len(err),
        "median_abs_error": float(np.median(e)),
        "p90_abs_error": float(np.percentile(e, 90)),
        "within_10pct": float((e <= 0.10).mean()),
        "within_20pct": float((e <= 0.20).mean()),
    }
