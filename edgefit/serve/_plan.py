"""The serving plan: every (weights, KV) configuration, what fits, how fast, and the best one.

>>> from edgefit.serve import ServeRequest, plan_serving
>>> p = plan_serving(ServeRequest("llama-3-70b", "h100", context=8192, slo_tpot_s=0.05))
>>> [r.verdict for r in p.rows if r.weights == "fp16"][0], p.best.weights
('does not fit', 'int4')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit._view import view
from edgefit.errors import EdgefitError
from edgefit.iteration import DEFAULTS, apply_overrides, egress_summary, iterations_fit, loop_for
from edgefit.iteration._sections import Egress
from edgefit.serve._arch import Architecture, load_architecture
from edgefit.serve._dtypes import KV_BYTES, supported_weights
from edgefit.serve._hardware import REASONS, Hardware, best_units
from edgefit.serve._model import ServeModel, Step
from edgefit.serve._request import ServeRequest

if TYPE_CHECKING:  # pydantic loads only when a plan reads its target
    from edgefit import targets
else:
    targets = lazy_import("edgefit.targets")

SCHEMA = "edgefit.serve-plan/1"
DEFAULT_CONTEXT = 8192
CHANGE_KINDS = ("weights", "quantization")  # a retrain, then re-quantize for serving


_gb, _ms = fmt.nbytes, fmt.seconds


@dataclass(frozen=True)
class Row:
    """One configuration: memory, the batch that meets the objective, its speed and energy."""

    weights: str
    kv: str
    gpus: int
    compute_dtype: str
    weight_bytes_per_device: float
    kv_bytes_per_token: float  # per device
    kv_budget_bytes: float  # per device; negative when the weights do not fit
    kv_bytes_per_sequence: float  # per device, at the plan's context
    max_batch: int
    batch: int  # the best batch meeting the objectives; 0 when none
    verdict: str  # "fits" | "misses objective" | "does not fit"
    reason: str | None
    batch1: Step  # decode at batch 1, at the plan's context
    at_batch: Step | None  # decode at ``batch``
    prefill: Step  # the TTFT
    curve: tuple[tuple[int, float, float, bool], ...]  # (batch, TPOT s, tokens/s, meets objective)

    @property
    def fits(self) -> bool:
        return self.verdict == "fits"

    @property
    def tokens_per_s(self) -> float:
        return self.batch / self.at_batch.time_s if self.at_batch and self.batch else 0.0

    @property
    def energy_per_token_j(self) -> float | None:
        return self.at_batch.energy_j / self.batch if self.at_batch and self.batch else None

    def to_dict(self) -> dict:
        return {
            "weights": self.weights,
            "kv": self.kv,
            "gpus": self.gpus,
            "compute_dtype": self.compute_dtype,
            "verdict": self.verdict,
            "reason": self.reason,
            "weight_bytes_per_gpu": self.weight_bytes_per_device,
            "kv_bytes_per_token_per_gpu": self.kv_bytes_per_token,
            "kv_budget_bytes_per_gpu": self.kv_budget_bytes,
            "kv_bytes_per_sequence_per_gpu": self.kv_bytes_per_sequence,
            "max_batch": self.max_batch,
            "batch": self.batch,
            "tokens_per_s": self.tokens_per_s,
            "tpot_s": self.at_batch.time_s if self.at_batch else None,
            "ttft_s": self.prefill.time_s,
            "energy_per_token_j": self.energy_per_token_j,
            "batch1": {
                **self.batch1.to_dict(),
                "tokens_per_s": 1 / self.batch1.time_s,
                "floor_tokens_per_s": 1 / self.batch1.floor_s,
                # speed of light (bytes at datasheet bandwidth) over the planned step time
                "bandwidth_fraction": self.batch1.floor_s / self.batch1.time_s,
            },
            "at_batch": self.at_batch.to_dict() if self.at_batch else None,
            "prefill": self.prefill.to_dict(),
            "curve": [
                {"batch": b, "tpot_s": t, "tokens_per_s": r, "meets_objective": ok}
                for b, t, r, ok in self.curve
            ],
        }


@dataclass(frozen=True)
class ServeTax:
    """The iteration tax beside a serving plan (:func:`iteration_tax`'s dict as a record): the
    egress of retraining on the served data, over the iterations that fit the default
    deadline."""

    change_kinds: tuple[str, ...]
    cycle_days: float
    deadline_days: float
    deadline_provenance: str
    iterations_by_deadline: int
    certification_usd_per_iteration: float
    certification: str
    egress: Egress | None


@dataclass(frozen=True)
class ServePlan:
    """Every configuration of one request, the best one and the iteration tax."""

    request: ServeRequest
    arch: Architecture
    target_id: str
    target_name: str
    context: int
    prompt_tokens: int
    slo_tpot_s: float
    slo_tpot_provenance: str
    hardware: Hardware
    rows: tuple[Row, ...]
    iteration: dict

    @property
    def best(self) -> Row | None:
        """The fitting configuration with the most tokens/s (ties: less energy per token)."""
        fitting = [r for r in self.rows if r.fits]
        return (
            max(fitting, key=lambda r: (r.tokens_per_s, -(r.energy_per_token_j or 0)))
            if fitting
            else None
        )

    @property
    def tax(self) -> ServeTax:
        """``iteration`` as its typed record."""
        return view(ServeTax, self.iteration)

    @property
    def assumptions(self) -> dict[str, str]:
        """Each figure the plan assumed and where it came from (``to_dict()["assumptions"]``)."""
        return _assumptions(self)

    def row(self, weights: str, kv: str) -> Row:
        for r in self.rows:
            if (r.weights, r.kv) == (weights, kv):
                return r
        raise KeyError((weights, kv))

    def to_dict(self) -> dict:
        hw, best = self.hardware, self.best
        return {
            "schema": SCHEMA,
            "source": "datasheet estimate" if not hw.calibrated else "calibrated estimate",
            "model": self.arch.summary(),
            "target": {"id": self.target_id, "name": self.target_name},
            "gpus": self.request.gpus,
            "context": self.context,
            "prompt_tokens": self.prompt_tokens,
            "objective": {
                "tpot_s": self.slo_tpot_s,
                "tpot_provenance": self.slo_tpot_provenance,
                "ttft_s": self.request.slo_ttft_s,
            },
            "hardware": _hardware_dict(hw),
            "rows": [r.to_dict() for r in self.rows],
            "best": None
            if best is None
            else {
                "weights": best.weights,
                "kv": best.kv,
                "batch": best.batch,
                "tokens_per_s": best.tokens_per_s,
                "tpot_s": best.at_batch.time_s if best.at_batch else None,
            },
            "iteration": self.iteration,
            "request": self.request.to_dict(),
            "assumptions": self.assumptions,
        }


def _hardware_dict(hw: Hardware) -> dict:
    def fig(f):
        return {"value": f.value, "provenance": f.provenance}

    return {
        "memory_level": hw.memory_level,
        "memory_budget_bytes": fig(hw.memory_budget),
        "overhead_bytes": fig(hw.overhead),
        "stream_level": hw.stream_level,
        "bandwidth_bytes_per_s": fig(hw.bandwidth),
        "bandwidth_efficiency": fig(hw.bandwidth_efficiency),
        "peak_ops_per_s": {d: fig(f) for d, f in hw.peak_ops.items()},
        "compute_efficiency": {d: fig(f) for d, f in hw.compute_efficiency.items()},
        "launch_overhead_s": fig(hw.launch_overhead),
        "static_power_w": fig(hw.static_power_w),
        "calibration_profile": hw.calibrated,
    }


def _efficiencies(hw: Hardware) -> str:
    values = {round(f.value, 3) for f in hw.compute_efficiency.values()}
    first = next(iter(hw.compute_efficiency.values()))
    shown = (
        f"{first.value:.3g} for every dtype"
        if len(values) == 1
        else "; ".join(f"{d} {f.value:.3g}" for d, f in hw.compute_efficiency.items())
    )
    return f"{shown}: {first.provenance}"


def _assumptions(plan: ServePlan) -> dict[str, str]:
    a, hw = plan.request.assumptions, plan.hardware
    out = {
        "overhead": f"{_gb(hw.overhead.value)} per device: {hw.overhead.provenance}",
        "bandwidth_efficiency": f"{hw.bandwidth_efficiency.value:g}: "
        f"{hw.bandwidth_efficiency.provenance}",
        "compute_efficiency": _efficiencies(hw),
        "launches": f"{a.launches_per_layer} per layer x {hw.launch_overhead.value * 1e6:.3g} us: "
        + REASONS["launches_per_layer"]
        + f"; {hw.launch_overhead.provenance}",
        "context": f"TPOT at the last token of a {plan.context}-token sequence (all KV read); "
        "TTFT is the prefill "
        f"of a {plan.prompt_tokens}-token prompt at batch 1 with no queueing",
        "throughput": "decode-only steady state: tokens/s = batch / TPOT (prefill interleaving "
        "not modelled)",
        "weights": "matrices, LM head and embedding in the weight dtype; norms and biases at 16 "
        "bits; int4 has an "
        "fp16 scale per 128 weights, int8 one per output channel",
    }
    if plan.request.gpus > 1:
        out["tensor_parallel"] = (
            f"{plan.request.gpus} GPUs: weights and KV heads split, 2 ring all-reduces per layer "
            "at "
            f"{a.interconnect_bytes_per_s / 1e9:g} GB/s + {a.allreduce_latency_s * 1e6:g} us "
            "each; "
            f"{REASONS['interconnect_bytes_per_s']}; {REASONS['allreduce_latency_s']}"
        )
    return out


def default_dtypes(target) -> tuple[list[str], list[str]]:
    """Weight and KV dtypes swept when none are given: those the target runs; fp32 only where
    16-bit runs no faster (a CPU), bf16 left out (it stores and runs as fp16 does)."""
    units = best_units(target)
    peaks = {d: u.peak_ops_per_s[d].value for d, u in units.items()}
    slow16 = peaks.get("fp16", 0.0) <= peaks.get("fp32", 0.0)
    order = (["fp32"] if slow16 else []) + ["fp16", "fp8", "int8", "int4"]
    weights = [d for d in order if d in supported_weights(set(units))]
    kv = [
        d
        for d in (["fp32"] if slow16 else []) + ["fp16", "fp8"]
        if d in target.dtypes and d in KV_BYTES
    ]
    return weights, kv or [d for d in ("int8", "fp32") if d in target.dtypes][:1]


def _curve(
    model: ServeModel, context: int, slo: float
) -> tuple[tuple[int, float, float, bool], ...]:
    top = model.max_batch(context)
    batches = sorted(
        {b for b in (2**i for i in range(20)) if b <= top} | ({top} if top else set())
    )
    out = []
    for b in batches:
        t = model.decode(b, context).time_s
        out.append((b, t, b / t, t <= slo))
    return tuple(out)


def _row(model: ServeModel, context: int, prompt: int, slo: float, slo_ttft: float | None) -> Row:
    budget, overhead = model.hw.memory_budget.value, model.hw.overhead.value
    per_seq = context * model.kv_bytes_per_token
    batch1, prefill = model.decode(1, context), model.prefill(prompt)
    unit = "per GPU " if model.gpus > 1 else ""
    verdict, reason, batch = "fits", None, 0
    if model.kv_budget <= 0:
        verdict = "does not fit"
        reason = (
            f"weights {_gb(model.weight_bytes_per_device)} {unit}+ {_gb(overhead)} overhead > "
            f"{_gb(budget)} {model.hw.memory_level}"
        )
    elif model.max_batch(context) == 0:
        verdict = "does not fit"
        reason = (
            f"one {context}-token sequence needs {_gb(per_seq)} of KV, {_gb(model.kv_budget)} left"
        )
    elif batch1.time_s > slo:
        verdict, reason = (
            "misses objective",
            f"TPOT at batch 1 is {_ms(batch1.time_s)} > {_ms(slo)}",
        )
    elif slo_ttft is not None and prefill.time_s > slo_ttft:
        verdict, reason = "misses objective", f"TTFT {_ms(prefill.time_s)} > {_ms(slo_ttft)}"
    else:
        batch = model.best_batch(context, slo)
    return Row(
        model.weights,
        model.kv,
        model.gpus,
        model.compute_dtype,
        model.weight_bytes_per_device,
        model.kv_bytes_per_token,
        model.kv_budget,
        per_seq,
        model.max_batch(context),
        batch,
        verdict,
        reason,
        batch1,
        model.decode(batch, context) if batch else None,
        prefill,
        _curve(model, context, slo),
    )


def iteration_tax(
    target, dataset_pb: float | None = None, usd_per_pb: float | None = None
) -> dict:
    """Data egress dollars per retraining iteration (dataset PB × $/PB) through the iteration
    model.

    >>> iteration_tax("h100")["egress"]["usd_per_iteration"]
    90000.0
    """

    loop = loop_for(target)
    if dataset_pb is not None:
        loop = apply_overrides(loop, {"data_egress.dataset_pb": dataset_pb}, "--dataset-pb")
    if usd_per_pb is not None:
        loop = apply_overrides(loop, {"data_egress.usd_per_pb": usd_per_pb}, "--usd-per-pb")
    days = loop.cycle_days(CHANGE_KINDS)
    deadline = DEFAULTS["deadline_days"][0]
    fit = iterations_fit(deadline, days)
    return {
        "change_kinds": list(CHANGE_KINDS),
        "cycle_days": days,
        "deadline_days": deadline,
        "deadline_provenance": DEFAULTS["deadline_days"][1],
        "iterations_by_deadline": fit,
        "certification_usd_per_iteration": loop.usd_per_iteration(CHANGE_KINDS),
        "certification": loop.certification.name,
        "egress": egress_summary(loop, fit),
    }


def _context(request: ServeRequest, arch: Architecture) -> tuple[int, int]:
    context = request.context or min(DEFAULT_CONTEXT, arch.max_positions)
    if context > arch.max_positions:
        raise EdgefitError(
            f"context {context} exceeds {arch.name}'s {arch.max_positions} max positions",
            where="--context",
            fix=f"give at most {arch.max_positions}",
        )
    prompt = request.prompt_tokens or max(1, context // 2)
    if prompt > context:
        raise EdgefitError(
            f"prompt {prompt} is longer than the context {context}",
            where="--prompt",
            fix=f"give at most {context}",
        )
    return context, prompt


def plan_serving(request: ServeRequest) -> ServePlan:
    """Plan ``request``: every (weights, KV) configuration on ``request.gpus`` devices of the
    target."""
    arch = load_architecture(request.model)
    target = targets.load_target(request.target)
    context, prompt = _context(request, arch)
    if request.slo_tpot_s is not None:
        slo, slo_src = request.slo_tpot_s, "given (--slo-tpot)"
    else:
        budget = target.envelope.latency_budget_s
        slo, slo_src = budget.value, f"target envelope latency budget, {budget.provenance}"
    weights, kv = default_dtypes(target)
    models = [
        ServeModel(arch, target, w, k, request.gpus, request.assumptions, request.runtime)
        for w in (request.weights or weights)
        for k in (request.kv or kv)
    ]
    rows = tuple(_row(m, context, prompt, slo, request.slo_ttft_s) for m in models)
    return ServePlan(
        request,
        arch,
        target.id,
        target.name,
        context,
        prompt,
        slo,
        slo_src,
        models[0].hw,
        rows,
        iteration_tax(target, request.dataset_pb, request.usd_per_pb),
    )
