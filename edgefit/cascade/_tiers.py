"""Tiers: read what the user gave, run each model on the data, and find what one request costs at
it.

A tier is ``MODEL@TARGET`` (an .onnx file, or the results.json of an `edgefit optimize` run whose
winner becomes the tier) or a cloud endpoint ``cloud:latency=800ms,usd=0.0004`` with either
``model=FILE`` (its accuracy is measured on the data) or ``accuracy=0.99`` (stated, used as is).

Latency comes from where it can be trusted most: tiers on ``host-cpu`` are measured here,
interleaved (ABAB rounds, median of round medians, p99 of all runs); tiers on any other target are
estimated with edgefit's estimator, with its error bar and source (p99 = the top of the error bar:
the estimator has no tail model); cloud latency and cost are what the user stated.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session
from edgefit._units import parse_duration, parse_energy, parse_fraction
from edgefit.cascade._types import Quantity, TierCost, TierSpec
from edgefit.errors import EdgefitError
from edgefit.evaluate import run_outputs

if TYPE_CHECKING:  # onnx (graph, estimate) and pydantic (targets) load when a tier is loaded
    from edgefit import estimate, targets
    from edgefit import graph as graphs
    from edgefit.calibrate import _measure
    from edgefit.report import _schema
else:
    estimate, graphs, targets = lazy_import("edgefit.estimate", "edgefit.graph", "edgefit.targets")
    _measure = lazy_import("edgefit.calibrate._measure")
    _schema = lazy_import("edgefit.report._schema")  # the report package: only for results.json

MEASURED_HERE = "host-cpu"
MAX_LATENCY_S = 3600.0  # a request's latency above an hour is a unit slip, not a tier
MAX_ENERGY_J = 1e6
_CLOUD_KEYS = ("latency", "p99", "usd", "model", "accuracy", "energy")


def _number(text: str, where: str, *, lo: float, hi: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise EdgefitError(
            f"cannot read {what} {text!r}", where=where, fix=f"give a number in [{lo:g}, {hi:g}]"
        )
    return value


def parse_tier(text: str, index: int, *, where: str = "--tier") -> TierSpec:
    """One ``--tier`` value as a :class:`TierSpec` (see the module docstring for the two forms)."""
    where = f"{where} {text!r}"
    if text.startswith("cloud:") or text == "cloud":
        fields: dict[str, str] = {}
        for part in filter(None, text[6:].split(",")):
            key, sep, value = part.partition("=")
            if not sep or key.strip() not in _CLOUD_KEYS:
                raise EdgefitError(
                    f"unknown cloud field {part!r}",
                    where=where,
                    fix=f"use key=value pairs among {', '.join(_CLOUD_KEYS)}",
                )
            fields[key.strip()] = value.strip()
        if "latency" not in fields:
            raise EdgefitError(
                "a cloud tier needs its latency", where=where, fix="add latency=800ms"
            )
        if "model" not in fields and "accuracy" not in fields:
            raise EdgefitError(
                "a cloud tier needs a model to measure or a stated accuracy",
                where=where,
                fix="add model=FILE.onnx or accuracy=0.99",
            )
        latency = parse_duration(
            fields["latency"], where=where, what="latency", hi_s=MAX_LATENCY_S
        )
        return TierSpec(
            name="cloud",
            model=fields.get("model"),
            target="cloud",
            latency_s=latency,
            usd_per_request=_number(fields.get("usd", "0"), where, lo=0, hi=1e3, what="cost"),
            accuracy=(
                None
                if "accuracy" not in fields
                else parse_fraction(fields["accuracy"], where=where, what="accuracy")
            ),
            energy_j=(
                parse_energy(fields["energy"], where=where, hi_j=MAX_ENERGY_J)
                if "energy" in fields
                else None
            ),
            p99_s=(
                parse_duration(fields["p99"], where=where, what="p99", hi_s=MAX_LATENCY_S)
                if "p99" in fields
                else None
            ),
        )
    model, sep, target = text.rpartition("@")
    if not sep or not model or not target:
        raise EdgefitError(
            "a tier is MODEL@TARGET or cloud:latency=…",
            where=where,
            fix="e.g. --tier tier1.onnx@glasses or --tier "
            "cloud:latency=800ms,usd=0.0004,accuracy=0.99",
        )
    if model.endswith(".json"):
        return _from_results(Path(model), target, index, where)
    return TierSpec(name=f"tier{index + 1}", model=model, target=target)


def _from_results(path: Path, target: str, index: int, where: str) -> TierSpec:
    """The winner of an `edgefit optimize` run as a tier (its target must be the one named)."""
    results = _schema.load_results(path)
    winner = results.get("selection", {}).get("winner")
    if not winner:
        raise EdgefitError(
            f"{path} has no winner (the run chose nothing)",
            where=where,
            fix="pick a run that chose a candidate, or pass its model file",
        )
    cand = next((c for c in results.get("candidates", []) if c.get("key") == winner), None)
    onnx = cand and cand.get("onnx")
    if not onnx:
        raise EdgefitError(
            f"{path}: the winner {winner} records no ONNX file",
            where=where,
            fix="pass the exported model file instead",
        )
    model = Path(onnx) if Path(onnx).is_absolute() else path.parent / onnx
    ran_on = results.get("target", {}).get("id")
    if ran_on != target:
        raise EdgefitError(
            f"{path} was optimized for {ran_on}, not {target}",
            where=where,
            fix=f"write {path}@{ran_on}",
        )
    return TierSpec(name=f"tier{index + 1}", model=str(model), target=target, results=str(path))


def name_tiers(specs: list[TierSpec]) -> list[TierSpec]:
    """Unique names: cloud tiers after the first become cloud2, cloud3 …; the last tier must be
    last."""
    seen: dict[str, int] = {}
    out = []
    for spec in specs:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        out.append(
            spec if seen[spec.name] == 1 else replace(spec, name=f"{spec.name}{seen[spec.name]}")
        )
    return out


@dataclass
class LoadedTier:
    """A tier's model, ready to run: its ONNX session, per-sample input and output shapes."""

    spec: TierSpec
    session: Any | None
    input_shape: tuple[int, ...]
    input_dtype: str
    output_shape: tuple[int, ...]
    graph: Any | None


def load_tier(spec: TierSpec, where: str) -> LoadedTier:
    """Validate and load a tier's model (edgefit's ONNX checks first: a broken file is one clear
    line)."""
    if spec.model is None:
        return LoadedTier(spec, None, (), "float32", (), None)
    if not Path(spec.model).is_file():
        raise EdgefitError(
            f"model file not found: {spec.model}", where=where, fix="check the path"
        )
    graph = graphs.load_graph(spec.model)
    ((in_name, in_shape),) = list(graph.inputs.items())[:1] or [(None, ())]
    out_shape = next(iter(graph.outputs.values()), ())
    if len(out_shape) != 2:
        raise EdgefitError(
            f"{spec.model}: the first output has shape {out_shape}; a cascade tier must output "
            f"(batch, classes) scores",
            where=where,
            fix="export the classifier's logits or probabilities",
        )
    dtype = graph.tensors.get(in_name, ((), "float32"))[1] if in_name else "float32"
    session = ort_session(spec.model, threads=None)
    return LoadedTier(spec, session, tuple(in_shape[1:]), dtype, tuple(out_shape[1:]), graph)


def check_compatible(tiers: list[LoadedTier]) -> None:
    """Every model tier must take the same input and answer over the same label space."""
    models = [t for t in tiers if t.session is not None]
    first = models[0]
    for t in models[1:]:
        if t.output_shape != first.output_shape:
            raise EdgefitError(
                f"{t.spec.name} ({t.spec.model}) scores {t.output_shape[0]} classes but "
                f"{first.spec.name} scores {first.output_shape[0]}",
                where="--tier",
                fix="every tier must answer over the same label space",
            )
        if t.input_shape != first.input_shape:
            raise EdgefitError(
                f"{t.spec.name} ({t.spec.model}) takes inputs of shape {t.input_shape} but "
                f"{first.spec.name} takes {first.input_shape}",
                where="--tier",
                fix="every tier must take the same input (resize inside the model)",
            )


def tier_outputs(tier: LoadedTier, x: np.ndarray) -> np.ndarray:
    want = np.int64 if tier.input_dtype == "int64" else np.float32
    return np.asarray(run_outputs(tier.session, x.astype(want, copy=False)), dtype=np.float64)


def _estimated(tier: LoadedTier, threads: int) -> tuple[float, float, str, float]:
    """(latency s, ± fraction, source, energy J) from edgefit's estimator for the tier's target."""
    target = targets.load_target(tier.spec.target)
    est = estimate.Estimator(tier.graph, target, threads=threads).estimate()
    return (
        est.latency_s,
        est.error,
        f"estimated for {tier.spec.target}: {est.source_detail}",
        est.energy_j,
    )


def tier_costs(tiers: list[LoadedTier], *, threads: int = 1, progress=None) -> list[TierCost]:
    """What one request costs at each tier (see the module docstring for where each figure comes
    from)."""
    here = [
        i for i, t in enumerate(tiers) if t.spec.target == MEASURED_HERE and t.session is not None
    ]
    timings = {}
    if here:
        if progress:
            progress(f"measuring {len(here)} host-cpu tier(s) here, interleaved @{threads}t")
        timed = _measure.interleaved([tiers[i].spec.model for i in here], threads)
        timings = dict(zip(here, timed))
    costs = []
    for i, tier in enumerate(tiers):
        spec = tier.spec
        usd = Quantity(
            spec.usd_per_request,
            "USD/request",
            "stated" if spec.is_cloud else "on-device (no charge)",
        )
        if spec.is_cloud:
            assert spec.latency_s is not None  # parse_tier refuses a cloud tier without one
            p99 = spec.p99_s if spec.p99_s is not None else spec.latency_s
            costs.append(
                TierCost(
                    Quantity(spec.latency_s, "s", "stated"),
                    Quantity(
                        p99,
                        "s",
                        "stated" if spec.p99_s is not None else "stated (p50; no p99 given)",
                    ),
                    None if spec.energy_j is None else Quantity(spec.energy_j, "J", "stated"),
                    usd,
                )
            )
            continue
        energy_s, error, source, energy = _estimated(tier, threads)
        energy_q = Quantity(energy, "J", source, error)
        if i in timings:
            t = timings[i]
            where = (
                f"measured here: onnxruntime CPU @{threads}t, {len(t.round_medians_s)} "
                "interleaved rounds, "
                f"spread {t.spread:.0%}"
            )
            costs.append(
                TierCost(
                    Quantity(t.median_s, "s", where),
                    Quantity(t.p99_s, "s", where + f", {t.runs} runs"),
                    energy_q,
                    usd,
                )
            )
        else:
            costs.append(
                TierCost(
                    Quantity(energy_s, "s", source, error),
                    Quantity(
                        energy_s * (1 + error), "s", source + " (p99: top of the error bar)", error
                    ),
                    energy_q,
                    usd,
                )
            )
    return costs
