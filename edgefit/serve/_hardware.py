"""What the serving planner reads from a target profile, and the assumptions it adds, each with
provenance.

Figures come from the target YAML (``targets/*.yaml``) and, where one exists, the calibration
profile (``profiles/<target>/<runtime>.yaml``, as ``edgefit estimate`` uses it). What a target file
does not describe — runtime memory overhead, the fraction of HBM bandwidth decode kernels reach,
kernels per layer, the GPU interconnect — is an :class:`Assumptions` field with a stated default
and its reason; every field can be overridden.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:  # numpy, pydantic (targets) and onnx (estimate) load only when a plan needs them
    import numpy as np
    import threadpoolctl

    from edgefit import estimate
    from edgefit.estimate import _fingerprint
else:
    np, threadpoolctl = lazy_import("numpy", "threadpoolctl")
    estimate, _fingerprint = lazy_import("edgefit.estimate", "edgefit.estimate._fingerprint")

ASSUMPTIONS_VERSION = 1

REASONS = {
    "overhead_fraction": "memory held back per device for the runtime: its context and workspaces "
    "(a CUDA "
    "context with cuBLAS/NCCL workspaces is ~1 GB), activations and allocator "
    "fragmentation; 5% is 4 GB of an 80 GB H100 (vLLM's default gpu_memory_utilization=0.9 "
    "holds back 10%)",
    "bandwidth_efficiency": "decode kernels stream weights at a fraction of datasheet bandwidth; "
    "0.8 assumed "
    "(Azure measured 7.35 TB/s = 92% of HBM bandwidth on GB200, techcommunity.microsoft.com "
    "ND GB200 v6 post; no H100 figure sourced); 1.0 when a calibration profile supplies "
    "measured bandwidth",
    "launches_per_layer": "kernels per transformer block in a decode step (norm, QKV, attention, "
    "O, norm, "
    "gate/up, activation, down) without fusion or CUDA graphs",
    "interconnect_bytes_per_s": "NVLink 4: 900 GB/s per GPU in both directions "
    "(hardware-numbers.md §1), so "
    "450 GB/s each way for a ring all-reduce",
    "allreduce_latency_s": "a small-message NCCL all-reduce over NVLink costs about 10 us "
    "(assumed; not sourced)",
    "activation_bytes": "activations and all-reduce payloads in 16-bit",
}


@dataclass(frozen=True)
class Assumptions:
    """The planner's stated assumptions; ``None`` means "from the target or its calibration
    profile".

    >>> Assumptions(overhead_fraction=0.1).overhead_fraction
    0.1
    """

    version: int = ASSUMPTIONS_VERSION
    overhead_fraction: float = 0.05
    overhead_bytes: float | None = None  # overrides overhead_fraction when given
    bandwidth_efficiency: float | None = None  # None: 1.0 with a calibration profile, else 0.8
    compute_efficiency: float | None = (
        None  # None: the profile's gemm fit, else the target unit's efficiency
    )
    launch_overhead_s: float | None = (
        None  # None: the profile's gemm overhead, else the target's layer_overhead_s
    )
    launches_per_layer: int = 8
    interconnect_bytes_per_s: float = 450e9
    allreduce_latency_s: float = 10e-6
    activation_bytes: float = 2.0

    def __post_init__(self) -> None:
        checks = {
            "overhead_fraction": (0, 0.9),
            "bandwidth_efficiency": (0.01, 1.0),
            "compute_efficiency": (0.01, 1.5),
            "launch_overhead_s": (0, 1.0),
            "launches_per_layer": (0, 1000),
            "interconnect_bytes_per_s": (1e6, 1e14),
            "allreduce_latency_s": (0, 1.0),
            "activation_bytes": (0.5, 8),
            "overhead_bytes": (0, 1e15),
        }
        for name, (lo, hi) in checks.items():
            value = getattr(self, name)
            if value is None:
                continue
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not lo <= value <= hi
            ):
                raise EdgefitError(
                    f"assumption {name} must be a number in [{lo:g}, {hi:g}], got {value!r}",
                    where=name,
                    fix="give a value in range",
                )
        if self.version != ASSUMPTIONS_VERSION:
            raise EdgefitError(
                f"assumptions version {self.version} is not {ASSUMPTIONS_VERSION}",
                where="version",
                fix="regenerate the assumptions",
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Assumptions:
        """Round-trip of :meth:`to_dict`; unknown keys are an error.

        >>> Assumptions.from_dict(Assumptions().to_dict()) == Assumptions()
        True
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise EdgefitError(
                f"unknown assumptions {unknown}", where="assumptions", fix=f"use {sorted(known)}"
            )
        return cls(**data)


@dataclass(frozen=True)
class Figure:
    """A number the planner uses and where it came from."""

    value: float
    provenance: str


@dataclass(frozen=True)
class Hardware:
    """One device of a target as the planner sees it (per GPU when several run tensor-parallel)."""

    target_id: str
    kind: str
    memory_level: str
    memory_budget: Figure  # bytes usable for weights + KV + overhead
    overhead: Figure  # bytes held back for the runtime
    stream_level: str
    bandwidth: Figure  # bytes/s, datasheet or calibrated, before bandwidth_efficiency
    bandwidth_efficiency: Figure
    peak_ops: dict[str, Figure]  # ops/s per compute dtype, before compute_efficiency
    compute_efficiency: dict[str, Figure]  # per compute dtype
    launch_overhead: Figure  # seconds per kernel launch
    pj_per_op: dict[str, float]
    pj_per_byte: float
    static_power_w: Figure
    power_limit_w: float | None
    calibrated: str | None  # the calibration profile used, if any

    def achievable_bandwidth(self) -> float:
        return self.bandwidth.value * self.bandwidth_efficiency.value

    def achievable_ops(self, dtype: str) -> float:
        return self.peak_ops[dtype].value * self.compute_efficiency[dtype].value

    def energy_pj_per_op(self, dtype: str) -> float:
        return self.pj_per_op.get(dtype, max(self.pj_per_op.values()))


def _levels(target, weight_bytes: float):
    holders = [m for m in target.memory_levels if "weights" in m.holds]
    if not holders:
        raise EdgefitError(
            f"target '{target.id}' has no memory level that holds weights",
            where="--target",
            fix="use a target whose memory_levels list 'weights' under holds",
        )
    capacity = max(holders, key=lambda m: m.capacity_bytes.value)
    fitting = [m for m in holders if m.capacity_bytes.value >= weight_bytes] or [capacity]
    stream = max(fitting, key=lambda m: m.bandwidth_bytes_per_s.value)
    return capacity, stream


def best_units(target) -> dict:
    """dtype → the compute unit with the highest peak for it (the planner runs each dtype
    there)."""
    out: dict = {}
    for unit in target.compute_units:
        for dtype, peak in unit.peak_ops_per_s.items():
            if dtype not in out or peak.value > out[dtype].peak_ops_per_s[dtype].value:
                out[dtype] = unit
    return out


def _compute_efficiency(assumptions: Assumptions, profile, unit, dtype: str) -> Figure:
    fit = profile.fit("gemm", dtype) if profile else None
    if assumptions.compute_efficiency is not None:
        return Figure(assumptions.compute_efficiency, "assumption (given)")
    if fit:
        return Figure(fit.efficiency, f"calibrated: gemm/{dtype} efficiency from {profile.path}")
    return Figure(
        unit.efficiency.value, f"target {unit.name} efficiency, {unit.efficiency.provenance}"
    )


_PROBE_BYTES = 256 << 20


def _other_machine(profile) -> bool:
    """Whether a host-cpu profile of the first format is not known to describe this machine (its
    CPU name, design and cores)."""
    if profile is None or not profile.environment.get("cpu"):
        return True
    return bool(_fingerprint.environment_mismatches(profile.environment))


def _read_bandwidth_here(
    step_bytes: float, row_lengths: dict[int, int] | None = None
) -> tuple[float, str]:
    """Bytes/s one thread streams from DRAM here, read the way a decode step reads weights:
    float32 matrix-vector products over at least ``_PROBE_BYTES`` in all (the step's own size up to
    1 GiB, so a VM whose reported L3 is large cannot hold it), one matrix per row length of the
    model's weights (``row_lengths``: length → weights, its share of the bytes; default rows of
    4096), one thread, timed in thread CPU time like the decode measurement (a preempted run is not
    counted as slow memory). Best of 7 per matrix. Returns the bandwidth and how it was read.

    The products run through torch when it is installed, the library the decode runs through: on
    an AMD EPYC (Zen 5) torch's matrix-vector product streams 24 GB/s where NumPy's reaches 35 GB/s
    (2026-12-07), and the decode follows torch's figure; NumPy is the fallback. Row length matters
    as much there: 16.5 GB/s over rows of 768, 22 GB/s over rows of 3072."""
    nbytes = int(min(max(step_bytes, _PROBE_BYTES), 1 << 30))
    shares = row_lengths or {4096: 1}
    total_weights = sum(shares.values())
    spent, read, library = 0.0, 0, "NumPy"
    for cols, weights in sorted(shares.items()):
        rows = max(1, int(nbytes * weights / total_weights) // (4 * cols))
        matrix = np.ones((rows, cols), np.float32)
        vector = np.ones(cols, np.float32)
        with _one_thread_product(matrix, vector) as (product, used):
            library = used
            product()  # pages touched, BLAS warmed
            best = float("inf")
            for _ in range(7):
                start = time.thread_time()
                product()
                best = min(best, time.thread_time() - start)
        spent, read = spent + best, read + matrix.nbytes
        del matrix
    how = (
        f"one-thread float32 {library} matrix-vector products over {nbytes >> 20} MiB, rows of "
        f"{'/'.join(str(n) for n in sorted(shares))} as the model's weights"
    )
    return read / spent, how


@contextmanager
def _one_thread_product(matrix, vector) -> Iterator[tuple[Callable[[], object], str]]:
    """``matrix @ vector`` on one thread, through torch when it is installed (its thread count
    restored after), else NumPy's BLAS; yields the product and the library's name."""
    with threadpoolctl.threadpool_limits(1):
        try:
            import torch
        except ImportError:  # the planner runs without torch
            yield (lambda: matrix @ vector), "NumPy"
            return
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        weights, x = torch.from_numpy(matrix), torch.from_numpy(vector)
        try:
            yield (lambda: torch.mv(weights, x)), "torch"
        finally:
            torch.set_num_threads(before)


def build_hardware(
    target,
    assumptions: Assumptions,
    *,
    step_bytes: float,
    runtime: str | None = None,
    use_calibration: bool = True,
    row_lengths: dict[int, int] | None = None,
) -> Hardware:
    """Resolve ``target`` (+ its calibration profile) and ``assumptions`` into :class:`Hardware`.

    ``step_bytes`` (the bytes one decode step reads) picks the memory level weights stream from:
    the fastest level that holds weights and is large enough, else the largest one.
    ``use_calibration=False`` ignores the calibration profile (datasheet figures and stated
    assumptions only).
    """
    profile = estimate.find_profile(target, runtime) if use_calibration else None
    capacity, stream = _levels(target, step_bytes)
    envelope = target.envelope.memory_bytes.get(capacity.name)
    budget_src = envelope or capacity.capacity_bytes
    budget = Figure(
        budget_src.value,
        f"{capacity.name} {'envelope' if envelope else 'capacity'}, {budget_src.provenance}",
    )
    if assumptions.overhead_bytes is not None:
        overhead = Figure(assumptions.overhead_bytes, "assumption (given): runtime overhead")
    else:
        overhead = Figure(
            budget.value * assumptions.overhead_fraction,
            f"assumption: {assumptions.overhead_fraction:.0%} of the budget; "
            + REASONS["overhead_fraction"],
        )
    bw_src = stream.bandwidth_bytes_per_s
    measured = profile.level_bandwidth.get(stream.name) if profile else None
    here, how = (
        _read_bandwidth_here(step_bytes, row_lengths)
        if use_calibration and target.probe and _other_machine(profile)
        else (None, "")
    )
    if here:
        # the profile was measured on another CPU: its bandwidth says nothing about this one
        bandwidth = Figure(
            here,
            f"measured here: {how} "
            f"(the calibration profile {profile.path if profile else ''} is another machine's)",
        )
    elif measured:
        bandwidth = Figure(
            measured,
            f"calibrated: measured {stream.name} bandwidth ({profile.path if profile else ''})",
        )
    elif profile:
        bandwidth = Figure(
            bw_src.value * profile.memory_bandwidth_scale,
            f"calibrated: {stream.name} datasheet x measured scale "
            f"{profile.memory_bandwidth_scale:.3g}"
            f" ({profile.path}); {bw_src.provenance}",
        )
    else:
        bandwidth = Figure(bw_src.value, f"datasheet: {bw_src.provenance}")
    if assumptions.bandwidth_efficiency is not None:
        bw_eff = Figure(assumptions.bandwidth_efficiency, "assumption (given)")
    else:
        # a raw read measured here is a peak, like a datasheet figure: decode kernels reach a
        # fraction of it
        bw_eff = Figure(
            1.0 if (profile and not here) else 0.8,
            "assumption: " + REASONS["bandwidth_efficiency"],
        )
    mode = target.power_mode(None)
    units = best_units(target)
    peaks = {
        d: Figure(
            target.peak_ops(u, d),
            f"datasheet: {u.name} {d} peak, {u.peak_ops_per_s[d].provenance}",
        )
        for d, u in units.items()
    }
    c_eff = {d: _compute_efficiency(assumptions, profile, u, d) for d, u in units.items()}
    unit = max(target.compute_units, key=lambda u: max(p.value for p in u.peak_ops_per_s.values()))
    fit = profile.fit("gemm", "fp32") if profile else None
    if assumptions.launch_overhead_s is not None:
        launch = Figure(assumptions.launch_overhead_s, "assumption (given)")
    elif fit:
        launch = Figure(
            max(fit.overhead_s, unit.layer_overhead_s.value),
            f"the larger of the calibrated gemm overhead ({profile.path if profile else ''}) and "
            "the target's "
            f"layer_overhead_s ({unit.layer_overhead_s.provenance})",
        )
    else:
        launch = Figure(
            unit.layer_overhead_s.value,
            f"target layer_overhead_s, {unit.layer_overhead_s.provenance}",
        )
    static = mode.static_power_w if mode and mode.static_power_w else target.energy.static_power_w
    return Hardware(
        target_id=target.id,
        kind=target.kind,
        memory_level=capacity.name,
        memory_budget=budget,
        overhead=overhead,
        stream_level=stream.name,
        bandwidth=bandwidth,
        bandwidth_efficiency=bw_eff,
        peak_ops=peaks,
        compute_efficiency=c_eff,
        launch_overhead=launch,
        pj_per_op={d: v.value for d, v in target.energy.pj_per_op.items()},
        pj_per_byte=stream.energy_pj_per_byte.value,
        static_power_w=Figure(static.value, static.provenance),
        power_limit_w=mode.power_w.value if mode else None,
        calibrated=profile.path if profile else None,
    )
