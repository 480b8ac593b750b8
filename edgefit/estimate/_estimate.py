"""The estimator front end: one model on one target, many plans at once, with an envelope
verdict."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.estimate._dla import dla_placement
from edgefit.estimate._dla import summary as dla_summary
from edgefit.estimate._fingerprint import environment_mismatches
from edgefit.estimate._hw import build_hw, resolve_power_mode
from edgefit.estimate._learned import (
    COVERAGE,
    INTERVAL_QUANTILE,
    ProfileMatch,
    find_learned,
    precision_class,
    slow_mode_note,
)
from edgefit.estimate._lower_integer import lowering_for
from edgefit.estimate._lower_ort import lower
from edgefit.estimate._plan import DTYPE_CODE, PLAN_DTYPES, Plan, PlanBatch
from edgefit.estimate._profile import Profile, find_profile
from edgefit.estimate._reference import SPARSE_WEIGHT_FACTOR, _first_fit, estimate_reference
from edgefit.estimate._result import Estimate, KernelEstimate
from edgefit.estimate._table import KERNEL_CLASSES, batched_table, build_kernel_table
from edgefit.estimate._verdict import envelope_checks

if TYPE_CHECKING:
    from edgefit.estimate import _kernels as numba_kernels
    from edgefit.estimate import _published
    from edgefit.estimate._published import PublishedCalibration
else:  # numba compiles; published fits need pydantic: loaded when used
    numba_kernels, _published = lazy_import(
        "edgefit.estimate._kernels", "edgefit.estimate._published"
    )

# Without a calibration profile the estimate rests on datasheet peaks × an assumed efficiency: we
# state a wide error bar rather than none (calibrated targets typically land within ±20%).
DATASHEET_ERROR = 0.5
DEFAULT_THREADS = (
    1  # what `edgefit bench` measures by default (repeatable on small shared machines)
)
CALIBRATE_HERE = "edgefit calibrate --target host-cpu --runtime onnxruntime"


def _use_numba() -> bool:
    return os.environ.get("EDGEFIT_ESTIMATOR", "numba") != "numpy"


class Estimator:
    """Estimate latency, energy, memory and power of ``graph`` on ``target`` for many plans at
    once.

    >>> est = Estimator(graph, load_target("orin"), power_mode="15W")   # doctest: +SKIP
    >>> est.estimate(Plan(dtype="int8")).latency_s                      # doctest: +SKIP
    """

    def __init__(
        self,
        graph,
        target,
        *,
        power_mode: str | None = None,
        runtime: str | None = None,
        profile: Profile | None | str = "auto",
        unit: str | None = None,
        threads: int | None = None,
        learned: ProfileMatch | None | str = "auto",
        batch: int = 1,
    ) -> None:
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise EdgefitError(
                f"batch must be a positive whole number, got {batch!r}",
                where="--batch",
                fix="pass --batch 1 (or the samples per call)",
            )
        self.graph, self.target, self.batch_size = graph, target, batch
        self.threads = threads or DEFAULT_THREADS
        self.table = batched_table(
            build_kernel_table(graph, lowering=lowering_for(target, runtime, profile)), batch
        )
        self.profile: Profile | None = (
            find_profile(target, runtime) if isinstance(profile, str) else profile
        )
        mode = resolve_power_mode(target, power_mode)
        self.power_mode = mode.name if mode else None
        # (fit of published measurements, its path) backing this mode at this batch
        self.published: tuple[PublishedCalibration, str] | None = None
        self.unbacked = ""  # why a target with published points is datasheet here
        if profile == "auto" and self.profile is None and not target.probe:
            found = _published.find_calibration(target)
            if found is not None and found[0].backs(self.power_mode, batch):
                self.published = (found[0], f"profiles/{target.id}/published.fit.yaml")
                self.profile = found[0].as_profile(target, unit, found[1], self.power_mode)
            elif found is not None:
                backed = "; ".join(
                    f"{name} at {m.batches()}" for name, m in found[0].modes.items()
                )
                self.unbacked = (
                    f"; published points back {backed or 'no power mode'}, not {self.power_mode} "
                    f"at batch {batch}"
                )
        self.hw = build_hw(
            target, self.table, power_mode=self.power_mode, profile=self.profile, unit=unit
        )
        self.warnings = list(graph.warnings)
        # learned kernel costs over onnxruntime's lowered graph: host-cpu with onnxruntime only
        uses_ort = runtime in (None, "onnxruntime") and "onnxruntime" in target.runtimes
        self.learned: ProfileMatch | None = (
            find_learned(target.id, "onnxruntime")
            if learned == "auto" and profile == "auto" and target.probe and uses_ort
            else (None if isinstance(learned, str) else learned)
        )
        if self.learned is not None and batch > 1:  # learned on batch-1 onnxruntime runs
            self.learned = None
            self.warnings.append(
                f"the learned kernel costs were measured at batch 1; batch {batch} is estimated "
                "with the per-class profile"
            )
        if self.learned is not None and not self.learned.matches:
            fp = self.learned.profile.fingerprint
            self.warnings.append(
                f"learned profile calibrated on {fp.describe()}, not this machine "
                f"({'; '.join(self.learned.mismatches)}): run `{CALIBRATE_HERE}` here"
            )

    def _legacy_profile_warning(self) -> str | None:
        """The first profile format knows its CPU by name, design and cores: say when that is
        another machine (or a profile too old to say which design it was measured on)."""
        if self.profile is None or not self.target.probe:
            return None
        miss = environment_mismatches(self.profile.environment)
        if not miss:
            return None
        there = self.profile.environment
        return (
            f"calibration profile measured on {there.get('cpu')} ({there.get('cores')} cores), "
            f"not this machine ({'; '.join(miss)}): run `{CALIBRATE_HERE}` here"
        )

    # -- many plans -------------------------------------------------------------------------------
    def batch(self, plans: list[Plan]) -> PlanBatch:
        return PlanBatch.from_plans([self.supported_plan(p) for p in plans], self.table)

    def evaluate(self, plans: PlanBatch | list[Plan], record: int = 0) -> dict[str, np.ndarray]:
        """Totals for every plan (arrays of length N); per-kernel times for the first ``record``
        plans."""
        batch = plans if isinstance(plans, PlanBatch) else self.batch(plans)
        if _use_numba():
            return numba_kernels.estimate_numba(batch, self.table, self.hw, record)
        return estimate_reference(batch, self.table, self.hw, record)

    def supported_plan(self, plan: Plan) -> Plan:
        """``plan`` with dtypes the target lacks replaced by the closest one it has (and a
        warning)."""
        if plan.dtype in self.target.dtypes or (
            plan.dtype == "int4"
            and "int8" in self.target.dtypes
            and self.hw.supported[DTYPE_CODE["int4"]]
        ):
            return plan
        floats = [d for d in ("fp16", "bf16", "fp32") if d in self.target.dtypes]
        ints = [d for d in ("int8", "int16") if d in self.target.dtypes and d in DTYPE_CODE]
        want_int = plan.dtype in ("int8", "int4", "fp8")
        choice = (ints or floats) if want_int else (floats or ints)
        fallback = next(
            (d for d in choice if d in DTYPE_CODE and self.hw.supported[DTYPE_CODE[d]]), "fp32"
        )
        self.warnings.append(
            f"target '{self.target.id}' does not support {plan.dtype} "
            f"(it has {', '.join(self.target.dtypes)}); estimated as {fallback}"
        )
        return Plan(
            dtype=fallback,
            keep_float=plan.keep_float,
            sparse_2to4=plan.sparse_2to4,
            channel_scale=plan.channel_scale,
        )

    def screen(self, plans: list[Plan]) -> list[Estimate]:
        """Totals and envelope verdicts for many plans from one batched evaluation (no per-kernel
        detail): what the search's first stage needs."""
        plans = [self.supported_plan(p) for p in plans]
        r = self.evaluate(PlanBatch.from_plans(plans, self.table))
        rate = self.target.envelope.inference_rate_hz
        out = []
        for n, plan in enumerate(plans):
            prof = self.profile if self._calibrated(plan) else None
            calibrated = prof is not None
            error = prof.error if prof else DATASHEET_ERROR
            run_overhead = prof.run_overhead_s if prof else 0.0
            latency = float(r["latency_s"][n]) + run_overhead
            energy = (
                self._published_energy(
                    latency, float(r["energy_j"][n]) + self.hw.static_w * run_overhead, calibrated
                )
                / self.batch_size
            )
            per_sample = latency / self.batch_size
            est = Estimate(
                target=self.target.id,
                power_mode=self.power_mode,
                plan=plan,
                latency_s=latency,
                energy_j=energy,
                weight_bytes=float(r["weight_bytes"][n]),
                peak_activation_bytes=float(r["peak_act_bytes"][n]),
                weight_level=self.hw.level_names[int(r["level_w"][n])],
                activation_level=self.hw.level_names[int(r["level_a"][n])],
                source="calibrated" if calibrated else "datasheet",
                source_detail="",
                error=error,
                kernels=[],
                checks=[],
                average_power_w=energy / per_sample if latency else 0.0,
                power_at_rate_w=(
                    energy * rate.value if rate and per_sample * rate.value <= 1 else None
                ),
                inference_rate_hz=rate.value if rate else None,
                batch=self.batch_size,
            )
            est.checks = envelope_checks(est, self.target)
            out.append(est)
        return out

    # -- one plan, in detail ----------------------------------------------------------------------
    def estimate(self, plan: Plan | None = None) -> Estimate:
        native = (
            plan is None
        )  # the model as it is: what the learned profile estimates from its lowering
        if plan is None:  # the model as it is: every kernel in the graph's own dtype
            plan = Plan(
                dtype=self.graph.compute_dtype
                if self.graph.compute_dtype in PLAN_DTYPES
                else "fp32"
            )
            batch = PlanBatch.native(self.table)
        else:
            plan = self.supported_plan(plan)
            batch = PlanBatch.from_plans([plan], self.table)
        r = self.evaluate(batch, record=1)
        kernels = self._kernels(batch, r)
        prof = self.profile if self._calibrated(plan) else None
        calibrated = prof is not None
        error = prof.error if prof else DATASHEET_ERROR
        detail = (
            f"calibrated profile {prof.path} (±{error:.0%} p90 error)"
            if prof
            else f"datasheet peaks × assumed efficiency from targets/{self.target.id}.yaml "
            f"(uncalibrated; ±{error:.0%} assumed{self.unbacked})"
        )
        run_overhead = prof.run_overhead_s if prof else 0.0
        latency = float(r["latency_s"][0]) + run_overhead
        roofline_energy = float(r["energy_j"][0]) + self.hw.static_w * run_overhead
        energy = self._published_energy(latency, roofline_energy, calibrated)
        if self.published is not None:
            detail = self._published_detail(plan, calibrated)
            if roofline_energy > 0 and energy != roofline_energy:
                kernels = [
                    replace(k, energy_j=k.energy_j * energy / roofline_energy) for k in kernels
                ]
        rate = self.target.envelope.inference_rate_hz
        energy, per_sample = energy / self.batch_size, latency / self.batch_size
        est = Estimate(
            target=self.target.id,
            power_mode=self.power_mode,
            plan=plan,
            latency_s=latency,
            energy_j=energy,
            weight_bytes=float(r["weight_bytes"][0]),
            peak_activation_bytes=float(r["peak_act_bytes"][0]),
            weight_level=self.hw.level_names[int(r["level_w"][0])],
            activation_level=self.hw.level_names[int(r["level_a"][0])],
            source="calibrated" if calibrated else "datasheet",
            source_detail=detail,
            error=error,
            kernels=kernels,
            checks=[],
            average_power_w=energy / per_sample if latency else 0.0,
            power_at_rate_w=(
                energy * rate.value if rate and per_sample * rate.value <= 1 else None
            ),
            inference_rate_hz=rate.value if rate else None,
            warnings=list(dict.fromkeys(self.warnings)),
            batch=self.batch_size,
        )
        est.power_scope = self.target.power_scope
        est.dla = self._dla(plan)
        if self.learned is not None and native:
            est = self._learned_estimate(est)
        else:
            legacy = self._legacy_profile_warning()
            if legacy:
                est.warnings.append(legacy)
        est.checks = envelope_checks(est, self.target)
        return est

    def _dla(self, plan: Plan) -> dict | None:
        """Where each layer runs if built for the target's DLA (TensorRT's rules), if any."""
        if not any(u.kind == "dla" for u in self.target.compute_units):
            return None
        placements = dla_placement(self.graph, plan.dtype)
        return {**dla_summary(placements), "placements": [p.to_dict() for p in placements]}

    # -- published measurements -------------------------------------------------------------------
    def _calibrated(self, plan: Plan) -> bool:
        """Whether ``plan``'s estimate rests on a calibration: any profile fit for a calibrated
        target; for published points only the precisions they were measured in."""
        if not self.profile:
            return False
        if self.published is not None:
            return bool(self.hw.calibrated[:, DTYPE_CODE[plan.dtype]].any())
        return bool(self.hw.calibrated.any())

    def _published_energy(self, latency: float, energy: float, calibrated: bool) -> float:
        """Active power fitted on published energy in this mode × latency; else the roofline's
        energy."""
        if not calibrated or self.published is None:
            return energy
        power = self.published[0].active_power_w.get(self.power_mode or "")
        return power * latency if power else energy

    def _published_detail(self, plan: Plan, calibrated: bool) -> str:
        assert self.published is not None
        cal, path = self.published
        if not calibrated:
            return (
                f"datasheet peaks × assumed efficiency from targets/{self.target.id}.yaml "
                "(uncalibrated for "
                f"{plan.dtype}: the published points are {', '.join(cal.precisions)}; "
                f"±{DATASHEET_ERROR:.0%} assumed; the per-kernel launch overhead is the one "
                "fitted on those points, as launching costs the same in every precision)"
            )
        energy = (
            "energy from active power fitted on published energy"
            if cal.active_power_w.get(self.power_mode or "")
            else "energy: datasheet (no published energy in this mode)"
        )
        return f"{cal.label(self.power_mode, path, self.batch_size)}; {energy}"

    def _learned_estimate(self, est: Estimate) -> Estimate:
        """``est`` with latency, energy and error bar from the learned profile over the graph
        onnxruntime runs. Energy keeps the roofline's average power (no power was measured); the
        per-kernel rows keep the source graph's kernels (names a user knows), their roofline shares
        scaled to the learned total. A model onnxruntime cannot load keeps the roofline estimate,
        with a warning saying why."""
        match = self.learned
        assert match is not None
        learned = match.profile
        try:
            lowered = lower(self.graph.model, threads=self.threads, runs=1, warmup=1)
        # onnxruntime refuses a model edgefit can still count  # noqa: BLE001
        except Exception as exc:
            est.warnings.append(
                f"onnxruntime cannot run this model here ({str(exc).splitlines()[0][:160]}); "
                "estimated with the per-class profile instead of the learned kernel costs"
            )
            return est
        latency = learned.latency(lowered, self.threads)
        precision = precision_class(lowered)
        if match.matches:
            error = learned.interval(precision)
            detail = (
                "learned kernel costs calibrated on this machine "
                f"({learned.fingerprint.describe()}), "
                f"{learned.training.get('networks', '?')} corpus networks; {self.threads} "
                "thread(s); "
                f"±{error:.0%} covered {INTERVAL_QUANTILE:.0%} of held-out {precision} corpus "
                f"networks, aimed at {COVERAGE:.0%} of new architectures (`edgefit fidelity` "
                "measures it); "
                f"{learned.path}"
            )
            slow = slow_mode_note(learned, self.threads)
            if slow:
                est.warnings.append(slow)
        else:
            error = learned.mismatch_interval()
            detail = (
                f"learned kernel costs calibrated on {learned.fingerprint.describe()}, NOT this "
                "machine "
                f"({'; '.join(match.mismatches)}); ±{error:.0%} "
                + (
                    f"covered {INTERVAL_QUANTILE:.0%} of its estimates on another machine "
                    f"({learned.cross_machine_note})"
                    if learned.cross_machine_note
                    else "assumed across machines"
                )
                + f"; run `{CALIBRATE_HERE}` here"
            )
        ratio = latency / est.latency_s if est.latency_s > 0 else 0.0
        power = est.average_power_w
        est.latency_s, est.energy_j = latency, power * latency
        est.source, est.source_detail, est.error = "calibrated", detail, error
        est.kernels = [
            replace(k, latency_s=k.latency_s * ratio, energy_j=k.energy_j * ratio)
            for k in est.kernels
        ]
        rate = est.inference_rate_hz
        est.power_at_rate_w = est.energy_j * rate if rate and latency * rate <= 1 else None
        return est

    def components(self, batch: PlanBatch, row: int = 0) -> dict[str, np.ndarray]:
        """Per-kernel roofline parts of one plan: compute time, memory time, overhead (seconds)."""
        t, hw = self.table, self.hw
        d = batch.dtype[row].astype(np.int64)
        cols = np.arange(len(t))
        s_out = batch.scale[row, t.chan_src]
        s_in = np.where(t.in_src >= 0, batch.scale[row, np.maximum(t.in_src, 0)], 1.0)
        s_ops = np.where(t.depthwise, s_out, s_out * s_in)
        sp = batch.sparse[row].astype(bool)
        wb = t.w_elems * s_ops * hw.wbytes[d] * np.where(sp, SPARSE_WEIGHT_FACTOR, 1.0)
        ab = (t.in_elems * s_in + t.out_elems * s_out) * hw.abytes[d]
        r = self.evaluate(batch.take([row]))
        level_k = _first_fit(ab, hw.cap, hw.holds_a)
        return {
            "compute_s": t.ops
            * s_ops
            / (hw.peak[cols, d] * np.where(sp, hw.sparse_speedup[cols, d], 1.0)),
            "memory_s": wb / hw.bw[int(r["level_w"][0])] + ab / hw.bw[level_k],
            "overhead_s": hw.overhead[cols, d],
            "macs": t.macs * s_ops,
            "level": level_k,
        }

    def _kernels(self, batch: PlanBatch, r: dict) -> list[KernelEstimate]:
        t, hw = self.table, self.hw
        parts = self.components(batch)
        out = []
        for i in range(len(t)):
            d = int(batch.dtype[0, i])
            t_c, t_m, ovh = parts["compute_s"][i], parts["memory_s"][i], parts["overhead_s"][i]
            bound = "overhead" if ovh > max(t_c, t_m) else ("compute" if t_c >= t_m else "memory")
            out.append(
                KernelEstimate(
                    name=t.names[i],
                    kclass=KERNEL_CLASSES[t.kclass[i]],
                    dtype=PLAN_DTYPES[d],
                    unit=hw.unit_of[i][d] or "-",
                    latency_s=float(r["kernel_s"][0, i]),
                    energy_j=float(r["kernel_j"][0, i]),
                    bound=bound,
                    macs=float(parts["macs"][i]),
                    layers=tuple(self.graph.layers[j].name for j in t.layers[i]),
                )
            )
        return out
