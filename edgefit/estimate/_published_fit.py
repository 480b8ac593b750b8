"""Fit a target's estimate to its published points, and judge the fit leaving one run out at a
time.

The model is the estimator's own roofline, per kernel of the reference model on the unit that ran
it::

    time per sample = Σ_k max(ops_k / (peak · e · s_c),
                              (weight_bytes_k / b + act_bytes_k) / (bw · s_m))
                      + kernels · o / (b · s_c)

with the target file's datasheet peaks and bandwidths, ``b`` the batch (single-stream 1,
multi-stream its samples per query, offline and server fully batched: weights and launch costs
amortized), ``s_c`` and ``s_m`` the published compute and memory clocks over the reference ones,
and several units (Orin's GPU and DLAs in Offline) adding their throughputs. Energy per inference
is active power × time per sample, with power ∝ V² · f (dynamic CMOS power) from the point's
voltage and clock.

Fitted per target, whatever the number of points: ``k_e`` and ``k_o`` scale every unit's datasheet
efficiency ``e`` and per-kernel overhead ``o`` (a weak prior holds them at 1 where no point tells
them apart), and ``P`` the active power at 1 V and the reference clock. Judged by
leave-one-run-out: each run's points (a run's latency and energy are one measurement) are predicted
from a fit on the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefit.errors import EdgefitError
from edgefit.estimate._estimate import Estimator
from edgefit.estimate._hw import _unit_for
from edgefit.estimate._plan import DTYPE_CODE, Plan
from edgefit.estimate._published import Point, PublishedFile, find_published
from edgefit.estimate._reference import _first_fit
from edgefit.graph import _reference as reference_models

# An offline or server point without a stated batch was run fully batched (MLPerf datacenter
# submissions batch hundreds to thousands of samples: NVIDIA's H100 BERT Offline config, 1280). It
# backs estimates from this batch up: below it the launch and weight costs per sample, which such a
# point does not measure, stop being negligible.
OFFLINE_MIN_BATCH = 256
PRIOR_WEIGHT = 0.01  # on (log k)²: keeps a parameter no point informs at its datasheet value
_LOG_KO = np.linspace(np.log(1e-3), np.log(1e3), 121)


@dataclass(frozen=True)
class Terms:
    """Per-kernel roofline parts of one reference model on one compute unit, at reference
    clocks."""

    compute_s: np.ndarray  # ops at the unit's raw peak
    weight_s: np.ndarray  # weight bytes at the bandwidth of the level they live in
    act_s: np.ndarray  # activation bytes at the bandwidth of the level they fit
    efficiency: float  # the target file's (datasheet) efficiency of the unit
    overhead_s: float  # the target file's per-kernel overhead of the unit

    @property
    def kernels(self) -> int:
        return len(self.compute_s)


def roofline_terms(graph, target, unit: str, dtype: str, weight_bits: int | None = None) -> Terms:
    """Split ``graph``'s estimate on ``target``'s ``unit`` into compute, weight and activation
    time."""

    est = Estimator(graph, target, profile=None, learned=None, unit=unit)
    u, compute_dtype = _unit_for(target, dtype, unit)
    if u is None or u.name != unit:
        raise EdgefitError(
            f"compute unit '{unit}' of {target.id} does not run {dtype}",
            where=target.id,
            fix="name a unit that runs the point's precision in its 'units'",
        )
    t, hw = est.table, est.hw
    d = DTYPE_CODE[dtype]
    r = est.evaluate([Plan(dtype=dtype)])
    # weights narrower than the precision (w4a8; w8a16 runs 16-bit activations on 8-bit weights)
    wb = t.w_elems * (weight_bits / 8 if weight_bits else hw.wbytes[d])
    ab = (t.in_elems + t.out_elems) * hw.abytes[d]
    level_k = _first_fit(ab, hw.cap, hw.holds_a)
    return Terms(
        compute_s=t.ops / u.peak_ops_per_s[compute_dtype].value,
        weight_s=wb / hw.bw[int(r["level_w"][0])],
        act_s=ab / hw.bw[level_k],
        efficiency=u.efficiency.value,
        overhead_s=u.layer_overhead_s.value,
    )


@dataclass(frozen=True)
class FitParams:
    k_e: float
    k_o: float
    power_w_at_1v: (
        float | None
    )  # active power at 1 V and the reference clock; None without energy points


@dataclass
class PointResult:
    point: Point
    published: float  # SI
    loo: float | None  # predicted by the fit on the other runs (None: nothing left to fit it on)
    fitted: float | None  # by the fit on every point
    datasheet: float | None  # by the target file alone (k_e = k_o = 1; no energy model)

    @property
    def loo_error(self) -> float | None:
        return None if self.loo is None else self.loo / self.published - 1


@dataclass
class FitReport:
    target: str
    proxy: str | None
    params: FitParams | None
    parameters: int
    rows: list[PointResult] = field(default_factory=list)

    def summary(self) -> dict:
        errs = np.abs([r.loo_error for r in self.rows if r.loo_error is not None])
        sheet = np.abs(
            [r.datasheet / r.published - 1 for r in self.rows if r.datasheet is not None]
        )
        return {
            "points": len(self.rows),
            "predicted": int(len(errs)),
            "parameters": self.parameters,
            "loo_median_abs_error": float(np.median(errs)) if len(errs) else None,
            "loo_max_abs_error": float(errs.max()) if len(errs) else None,
            # the target file alone on the same points (no energy model): what the fit must beat
            "datasheet_median_abs_error": float(np.median(sheet)) if len(sheet) else None,
            "datasheet_max_abs_error": float(sheet.max()) if len(sheet) else None,
        }


class PublishedFit:
    """Predictions for a published file's points on ``target`` from the reference models' terms."""

    def __init__(self, published: PublishedFile, target, graphs: dict) -> None:
        self.published, self.target = published, target
        self.points = list(published.points)
        self._terms: dict[tuple, Terms] = {}
        for p in self.points:
            for unit in self.units_of(p):
                key = (p.model, p.precision, unit, p.weight_bits)
                if key not in self._terms:
                    self._terms[key] = roofline_terms(
                        graphs[p.model], target, unit, p.precision, p.weight_bits
                    )
        caps = [1.0 / t.efficiency for t in self._terms.values()]
        self._log_ke = np.linspace(np.log(0.02), np.log(min(caps)), 121)

    def units_of(self, p: Point) -> list[str]:
        if p.units:
            return list(p.units)

        return [_unit_for(self.target, p.precision, None)[0].name]

    # --- the model -------------------------------------------------------------------------------
    def _sample_time(self, p: Point, log_ke: np.ndarray, log_ko: np.ndarray) -> np.ndarray:
        """Time per sample over a grid of (k_e, k_o): shape (len(log_ke), len(log_ko))."""
        # offline and server runs without a stated batch are fully batched: weights and launches
        # amortized
        batch = 1 if p.scenario == "single-stream" else (p.batch or np.inf)
        s_m = self.published.clock_scale(p, "memory")
        rate = np.zeros((len(log_ke), len(log_ko)))
        for unit in self.units_of(p):
            t = self.terms(p, unit)
            s_c = self.published.clock_scale(p, unit)
            e = t.efficiency * np.exp(log_ke)[:, None]  # (E, 1)
            memory = (t.weight_s / batch + t.act_s) / s_m  # (K,)
            work = np.maximum(t.compute_s[None, :] / (e * s_c), memory[None, :]).sum(
                axis=1
            )  # (E,)
            launch = t.kernels * t.overhead_s * np.exp(log_ko) / (batch * s_c)  # (O,)
            rate += 1.0 / (work[:, None] + launch[None, :])
        return 1.0 / rate

    def _predict_time(self, p: Point, ke: float, ko: float) -> float:
        per_sample = float(
            self._sample_time(p, np.array([np.log(ke)]), np.array([np.log(ko)]))[0, 0]
        )
        if p.metric == "throughput":
            return 1.0 / per_sample
        return per_sample * (p.batch or 1) if p.scenario == "multi-stream" else per_sample

    def terms(self, p: Point, unit: str) -> Terms:
        """The roofline terms of ``p``'s reference model on ``unit``."""
        return self._terms[(p.model, p.precision, unit, p.weight_bits)]

    def power_scale(self, p: Point) -> float:
        """V² × clock / reference clock: active power of ``p``'s run over the fitted power."""
        unit = self.units_of(p)[0]
        return (p.voltage_v or 1.0) ** 2 * self.published.clock_scale(p, unit)

    def predict(self, p: Point, params: FitParams) -> float | None:
        """``p``'s metric in SI units under ``params`` (None: an energy point without a power
        fit)."""
        if p.metric == "energy_per_inference":
            if params.power_w_at_1v is None:
                return None
            per_sample = float(
                self._sample_time(
                    p, np.array([np.log(params.k_e)]), np.array([np.log(params.k_o)])
                )[0, 0]
            )
            return params.power_w_at_1v * self.power_scale(p) * per_sample
        return self._predict_time(p, params.k_e, params.k_o)

    # --- the fit ---------------------------------------------------------------------------------
    def fit(self, points: list[Point]) -> FitParams | None:
        """Least squares in log space over ``points``' times and rates, then the power from their
        energies."""
        timed = [p for p in points if p.metric != "energy_per_inference"]
        if not timed:
            return None
        ke, ko = self._grid_search(timed, self._log_ke, _LOG_KO)
        step_e, step_o = self._log_ke[1] - self._log_ke[0], _LOG_KO[1] - _LOG_KO[0]
        fine_e = np.clip(
            np.linspace(np.log(ke) - step_e, np.log(ke) + step_e, 41), None, self._log_ke[-1]
        )
        ke, ko = self._grid_search(
            timed, fine_e, np.linspace(np.log(ko) - step_o, np.log(ko) + step_o, 41)
        )
        energies = [p for p in points if p.metric == "energy_per_inference"]
        power = None
        if energies:
            logs = [
                np.log(
                    p.si_value
                    / (
                        self.power_scale(p)
                        * float(
                            self._sample_time(p, np.array([np.log(ke)]), np.array([np.log(ko)]))[
                                0, 0
                            ]
                        )
                    )
                )
                for p in energies
            ]
            power = float(np.exp(np.mean(logs)))
        return FitParams(k_e=ke, k_o=ko, power_w_at_1v=power)

    def _grid_search(
        self, points: list[Point], log_ke: np.ndarray, log_ko: np.ndarray
    ) -> tuple[float, float]:
        loss = PRIOR_WEIGHT * (log_ke[:, None] ** 2 + log_ko[None, :] ** 2)
        for p in points:
            per_sample = self._sample_time(p, log_ke, log_ko)
            if p.metric == "throughput":
                pred = 1.0 / per_sample
            else:
                pred = per_sample * ((p.batch or 1) if p.scenario == "multi-stream" else 1)
            loss = loss + np.log(pred / p.si_value) ** 2
        i, j = np.unravel_index(int(np.argmin(loss)), loss.shape)
        return float(np.exp(log_ke[i])), float(np.exp(log_ko[j]))

    def report(self) -> FitReport:
        """Every point: published, predicted leaving its run out, fitted on all, and
        datasheet-only."""
        full = self.fit(self.points)
        datasheet = FitParams(1.0, 1.0, None)
        rows = []
        for p in self.points:
            others = [q for q in self.points if q.group != p.group]
            loo_params = self.fit(others)
            rows.append(
                PointResult(
                    point=p,
                    published=p.si_value,
                    loo=self.predict(p, loo_params) if loo_params else None,
                    fitted=self.predict(p, full) if full else None,
                    datasheet=self.predict(p, datasheet),
                )
            )
        energy = any(p.metric == "energy_per_inference" for p in self.points)
        return FitReport(
            target=self.target.id,
            proxy=self.published.proxy,
            params=full,
            parameters=2 + int(energy),
            rows=rows,
        )


def calibration_record(fit: PublishedFit, report: FitReport) -> dict:
    """What the estimator needs from the fit, without torch: per unit that ran a point, the fitted
    efficiency and kernel overhead; the power modes a batch-1 point backs; active power per mode
    with an energy point; the leave-one-run-out figures (written to ``published.fit.yaml``)."""
    params, summary = report.params, report.summary()
    if params is None or summary["loo_max_abs_error"] is None:
        return {}
    units = {}
    for p in fit.points:
        for name in fit.units_of(p):
            t = fit.terms(p, name)
            units[name] = {
                "efficiency": round(min(1.0, t.efficiency * params.k_e), 4),
                "layer_overhead_s": float(f"{t.overhead_s * params.k_o:.4g}"),
            }
    power: dict[str, float] = {}
    for p in fit.points:
        if p.metric == "energy_per_inference" and p.power_mode and params.power_w_at_1v:
            power.setdefault(
                p.power_mode, float(f"{params.power_w_at_1v * fit.power_scale(p):.4g}")
            )
    return {
        "schema_version": 1,
        "target": fit.target.id,
        "points": summary["points"],
        "predicted": summary["predicted"],
        "parameters": summary["parameters"],
        "loo_median_abs_error": round(summary["loo_median_abs_error"], 4),
        "loo_max_abs_error": round(summary["loo_max_abs_error"], 4),
        "precisions": sorted({p.precision for p in fit.points}),
        "modes": _modes(fit),
        "units": units,
        "active_power_w": power,
        "point_ids": [p.id for p in fit.points],
    }


def _modes(fit: PublishedFit) -> dict:
    """Each power mode a point backs, with its clocks over the reference ones (the fitted kernel
    overhead is in reference-clock seconds; the mode's memory may run slower than the target
    file's) and the batches its points span: single-stream 1, multi-stream its samples per query,
    offline and server their stated batch or, unstated, from :data:`OFFLINE_MIN_BATCH` up."""
    modes: dict[str, dict] = {}
    for p in sorted(fit.points, key=lambda q: q.scenario != "single-stream"):
        if not p.power_mode:
            continue
        lo, hi = _batch_span(p)
        mode = modes.setdefault(
            p.power_mode,
            {
                "compute_clock_scale": {
                    u: round(fit.published.clock_scale(p, u), 4) for u in fit.units_of(p)
                },
                "memory_clock_scale": round(fit.published.clock_scale(p, "memory"), 4),
                "min_batch": lo,
                "max_batch": hi,
            },
        )
        mode["min_batch"] = min(mode["min_batch"], lo)
        if mode["max_batch"] is not None:
            mode["max_batch"] = None if hi is None else max(mode["max_batch"], hi)
    return modes


def _batch_span(p: Point) -> tuple[int, int | None]:
    if p.scenario == "single-stream":
        return 1, 1
    if p.batch is not None:
        return p.batch, p.batch
    return OFFLINE_MIN_BATCH, None


def published_fit(target, published: PublishedFile | None = None) -> PublishedFit:
    """Build the reference models (ONNX cached) and the fit over ``target``'s published points."""
    published = published or find_published(target)
    if published is None:
        raise EdgefitError(
            f"target '{target.id}' has no published measurements",
            where="--target",
            fix="add profiles/<target-id>/published.yaml (see profiles/jetson-agx-orin-64gb/)",
        )
    models = sorted({p.model for p in published.points})
    graphs = {name: reference_models.reference_graph(name) for name in models}
    return PublishedFit(published, target, graphs)


def published_report(target, published: PublishedFile | None = None) -> FitReport:
    """Fit and judge ``target``'s published points."""
    return published_fit(target, published).report()
