"""Target (+ power mode, + calibration profile) → the flat arrays the estimator kernels read."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefit.errors import EdgefitError
from edgefit.estimate._lower_integer import INTEGER_TARGET_KINDS
from edgefit.estimate._plan import N_DTYPES, PLAN_DTYPES
from edgefit.estimate._profile import Profile
from edgefit.estimate._table import KERNEL_CLASSES, KernelTable

# the classes the calibration's multi-kernel "chain" models consist of, so the only ones whose
# in-network extra overhead they measure
CONV_CLASSES = frozenset({"conv", "conv1x1", "dwconv", "conv1d"})
W_BYTES = np.array([4.0, 2.0, 2.0, 1.0, 0.5, 1.0])  # bytes per weight element per plan dtype
_FLOAT_FALLBACK = {
    "int4": ("fp16", "fp32"),
    "fp8": ("fp8", "fp16", "int8"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp16": ("fp16",),
    "fp32": ("fp32",),
    "int8": ("int8",),
}
_ENERGY_FALLBACK = {
    "int4": ("int4", "int8"),
    "fp8": ("fp8", "int8", "fp16"),
    "bf16": ("bf16", "fp16", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "fp32": ("fp32",),
    "int8": ("int8", "int16", "fp16"),
}


@dataclass
class HwArrays:
    peak: (
        np.ndarray
    )  # K × D: achievable ops/s (peak × efficiency); 0 where no unit runs that dtype
    overhead: np.ndarray  # K × D: seconds per kernel launch
    e_op: np.ndarray  # K × D: pJ per op
    sparse_speedup: np.ndarray  # K × D: compute speed-up of 2:4 weights (1 where unsupported)
    wbytes: np.ndarray  # D
    abytes: np.ndarray  # D: activation bytes per element
    cap: np.ndarray  # M, fastest level first
    bw: np.ndarray  # M
    ebyte: np.ndarray  # M: pJ per byte
    holds_w: np.ndarray  # M bool
    holds_a: np.ndarray  # M bool
    static_w: float
    level_names: list[str]
    unit_of: list[list[str | None]]  # K × D: compute unit name used
    supported: np.ndarray  # D bool: some unit runs this dtype
    calibrated: np.ndarray  # K × D bool: efficiency from a calibration profile
    notes: list[str] = field(default_factory=list)
    # K × D bool: the kernel runs on an Ethos-U NPU whose compute, SRAM port and weight DMA overlap
    # (Vela's pass time: max of NPU, SRAM and flash cycles, a staged weight copy started under the
    # kernel before); only under the integer lowering's weight staging (KernelTable.prefetch)
    overlap: np.ndarray | None = None
    prefetch: np.ndarray | None = None  # K: 1 where the weights are staged (KernelTable.prefetch)


def _unit_for(target, dtype: str, preferred: str | None):
    units = (
        sorted(target.compute_units, key=lambda u: u.name != preferred)
        if preferred
        else target.compute_units
    )
    for compute_dtype in _FLOAT_FALLBACK.get(dtype, (dtype,)):
        for unit in units:
            if compute_dtype in unit.peak_ops_per_s:
                return unit, compute_dtype
    return None, None


def _energy_per_op(target, dtype: str) -> float:
    for d in _ENERGY_FALLBACK.get(dtype, (dtype,)):
        if d in target.energy.pj_per_op:
            return target.energy.pj_per_op[d].value
    return max(v.value for v in target.energy.pj_per_op.values())


def resolve_power_mode(target, name: str | None):
    """The target's power mode ``name`` (default mode when None); one clear error when unknown."""
    try:
        return target.power_mode(name)
    except KeyError:
        names = ", ".join(m.name for m in target.power_modes) or "none"
        raise EdgefitError(
            f"target '{target.id}' has no power mode '{name}'",
            where="--power-mode",
            fix=f"use one of: {names}",
        ) from None


def build_hw(
    target,
    table: KernelTable,
    *,
    power_mode: str | None = None,
    profile: Profile | None = None,
    unit: str | None = None,
) -> HwArrays:
    """Arrays for ``target`` in ``power_mode`` over ``table``'s kernels; ``profile`` supplies
    efficiencies."""
    mode = resolve_power_mode(target, power_mode)
    k = len(table)
    peak = np.zeros((k, N_DTYPES))
    overhead = np.zeros((k, N_DTYPES))
    e_op = np.zeros((k, N_DTYPES))
    sparse = np.ones((k, N_DTYPES))
    calibrated = np.zeros((k, N_DTYPES), bool)
    overlap = np.zeros((k, N_DTYPES), bool)
    # Vela's pass structure is the Ethos-U's (kind mcu_npu); another NPU keeps the CPU-like sum
    staged = table.prefetch is not None and target.kind in INTEGER_TARGET_KINDS
    unit_of: list[list[str | None]] = [[None] * N_DTYPES for _ in range(k)]
    supported = np.zeros(N_DTYPES, bool)
    for d, dtype in enumerate(PLAN_DTYPES):
        u, compute_dtype = _unit_for(target, dtype, unit)
        if u is None:
            continue
        supported[d] = True
        raw = target.peak_ops(u, compute_dtype, mode.name if mode else None)
        e = _energy_per_op(target, dtype)
        sp = u.sparsity_2to4_speedup.value if u.sparsity_2to4_speedup else 1.0
        for i in range(k):
            kclass = KERNEL_CLASSES[table.kclass[i]]
            fit = (
                profile.fit(kclass, compute_dtype)
                if profile and (not profile.units or u.name in profile.units)
                else None
            )
            eff = fit.efficiency_at(table.reduction[i]) if fit else u.efficiency.value
            # an NPU computes its padded work (block rounding), a CPU beside it the plain ops
            work = table.npu_work[i] if table.npu_work is not None and u.kind == "npu" else 1.0
            peak[i, d] = raw * eff / work
            extra = (
                profile.extra_overhead_s.get(compute_dtype, 0.0)
                if fit and profile and kclass in CONV_CLASSES
                else 0.0
            )
            # the in-network correction may be negative (cache-hot neighbours); overhead stays ≥ 0
            if fit:
                overhead[i, d] = max(0.0, fit.overhead_s + extra)
            elif profile and u.name in profile.unit_overhead_s:
                overhead[i, d] = profile.unit_overhead_s[u.name]
            else:
                overhead[i, d] = u.layer_overhead_s.value
            calibrated[i, d] = fit is not None
            e_op[i, d] = e
            sparse[i, d] = sp if table.has_weights[i] else 1.0
            unit_of[i][d] = u.name
            overlap[i, d] = staged and u.kind == "npu"
    levels = sorted(target.memory_levels, key=lambda m: -m.bandwidth_bytes_per_s.value)
    bw_scale = profile.memory_bandwidth_scale if profile else 1.0
    float_act = 2.0 if supported[PLAN_DTYPES.index("fp16")] and not supported[0] else 4.0
    static = (
        mode.static_power_w.value
        if mode and mode.static_power_w
        else target.energy.static_power_w.value
    )
    return HwArrays(
        peak=peak,
        overhead=overhead,
        e_op=e_op,
        sparse_speedup=sparse,
        wbytes=W_BYTES.copy(),
        abytes=np.array([4.0, 2.0, 2.0, 1.0, float_act, 1.0]),
        cap=np.array([m.capacity_bytes.value for m in levels]),
        bw=np.array(
            [
                (profile.level_bandwidth.get(m.name) if profile else None)
                or m.bandwidth_bytes_per_s.value * bw_scale
                for m in levels
            ]
        ),
        ebyte=np.array([m.energy_pj_per_byte.value for m in levels]),
        holds_w=np.array(["weights" in m.holds for m in levels]),
        holds_a=np.array(["activations" in m.holds for m in levels]),
        static_w=float(static),
        level_names=[m.name for m in levels],
        unit_of=unit_of,
        supported=supported,
        calibrated=calibrated,
        overlap=overlap,
        prefetch=table.prefetch if table.prefetch is not None else np.zeros(k),
    )
