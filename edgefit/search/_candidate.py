"""Stage 2 for one candidate: materialize, score accuracy, measure (or estimate), check the
envelope."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgefit._ort import ort_session
from edgefit.evaluate import run_outputs, score
from edgefit.iteration import candidate_iteration
from edgefit.passes import (
    PassContext,
    PassPlan,
    PruneConfig,
    QuantizeConfig,
    Recipe,
    RecoverConfig,
    SwapConfig,
    get_precision,
    materialize,
    ort_defaults,
)
from edgefit.records import (
    Accuracy,
    ChoiceRecord,
    EstimatedLatency,
    Iteration,
    MeasuredLatency,
)
from edgefit.records import Artifact as ArtifactRecord
from edgefit.runtimes import Artifact, get_runtime
from edgefit.runtimes._torch import eager
from edgefit.search._base import Base, resize_inputs
from edgefit.search._figures import (
    ARTIFACT_FORMATS,
    estimate_file,
    estimate_record,
    measure,
    with_latency,
)
from edgefit.search._space import Choice


@dataclass(frozen=True)
class RunSettings:
    target: Any
    power_mode: str | None
    measure_runtime: str | None  # "onnxruntime" on host-cpu; None: estimate only
    threads: int = 1
    recover_epochs: int = 3
    seed: int = 0
    deadline_days: float = 182.0
    measure_timeout_s: float = (
        600.0  # a measuring child past this is killed and the candidate fails
    )
    # how accuracy is scored (OptimizeConfig.metric; edgefit.evaluate.METRICS): the one place a
    # candidate's scoring reads it, so a Python caller's config is what counts
    metric: str = "auto"
    # int8 choice (json of Choice.to_dict()) -> the searched recipe (Recipe.to_dict()) it
    # quantizes with (edgefit.search._recipe_step); None: the space's own int8 recipes
    recipes: dict[str, dict] | None = None


def recipe_of(choice: Choice, settings: RunSettings | None) -> dict | None:
    """The searched int8 recipe ``choice`` is built with, or None (not int8, or no search)."""
    recipes = getattr(settings, "recipes", None)  # callers that plan without settings pass None
    if not recipes or choice.precision != "int8":
        return None
    return recipes.get(json.dumps(choice.to_dict(), sort_keys=True))


def pass_plan(choice: Choice, base: Base, settings: RunSettings):
    """The passes that make ``choice``: swap, prune and recover from its architecture and pruning
    fields; the quantizing pass (its slot and config) from the precision table
    (:mod:`edgefit.passes._precision`)."""

    swap = (
        SwapConfig(
            width=choice.width,
            depth=choice.depth,
            resolution=choice.resolution,
            activation=choice.activation,
        )
        if choice.swaps
        else None
    )
    prune = (
        PruneConfig(method=choice.prune, amount=choice.prune_amount)
        if choice.prune != "none"
        else None
    )
    recover = RecoverConfig(epochs=settings.recover_epochs) if choice.retrains else None
    precision = get_precision(choice.precision)
    config = precision.config(choice.calibration, choice.keep_float)
    recipe = recipe_of(choice, settings)
    if recipe is not None and getattr(config, "precision", None) == "int8":
        if isinstance(config, QuantizeConfig):
            config = replace(config, recipe=Recipe.from_dict(recipe))
    return PassPlan(
        swap=swap,
        prune=prune,
        recover=recover,
        quantize=config if precision.slot == "quantize" else None,
        torchao=config if precision.slot == "torchao" else None,
    )


def _session(path, threads: int):
    return ort_session(path, threads)


def reference_outputs(base: Base, onnx_path, threads: int) -> np.ndarray:
    return run_outputs(_session(onnx_path, threads), base.eval_x)


def score_model(
    base: Base, onnx_path, reference: np.ndarray | None, threads: int, metric: str = "auto"
):
    session = _session(onnx_path, threads)
    shape = tuple(d if isinstance(d, int) else 1 for d in session.get_inputs()[0].shape)
    outputs = run_outputs(session, resize_inputs(base.eval_x, shape))
    return score(outputs, base.eval_y, reference, metric)


def score_torch(
    base: Base, pt2_path, reference: np.ndarray | None, threads: int, metric: str = "auto"
):
    """Score a ``torch.export`` program (a torchao candidate) in this process on the torch runtime,
    eager: the exported program holds torchao's own int8 kernels, so these are the quantized
    model's outputs."""
    rt = get_runtime("torch")
    session = rt.open(
        eager(Artifact(Path(pt2_path), "torch-export", "as-built", rt.name)), threads=threads
    )
    ((name, (shape, _)),) = session.input_specs().items()
    x = resize_inputs(base.eval_x, shape)
    batch, outs = shape[0], []
    for i in range(
        0, len(x), batch
    ):  # a fixed batch size: pad the last chunk, drop the padding's outputs
        chunk = x[i : i + batch]
        short = batch - len(chunk)
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)]) if short else chunk
        outs.append(next(iter(session.run({name: padded}).values()))[: batch - short])
    return score(np.concatenate(outs), base.eval_y, reference, metric)


def _recipe_label(recipe) -> str:
    """An int8 candidate built with a searched recipe is named by it (the choice's calibration and
    keep-float fields do not apply), and onnxruntime's defaults by that name."""

    if recipe == ort_defaults(recipe.samples, recipe.threads):
        return f"int8 onnxruntime quantize_static defaults ({recipe.label()})"
    return f"int8 searched recipe ({recipe.label()})"


def _iteration(settings: RunSettings, kinds, accuracy: float) -> dict:
    # the default ceiling (0.995) sits below a near-perfect model; then the ceiling is 100%
    ceiling = 1.0 if accuracy >= 0.99 else None
    return candidate_iteration(
        settings.target,
        kinds,
        min(accuracy, 0.9999),
        accuracy_ceiling=ceiling,
        deadline_days=settings.deadline_days,
    )


def run_candidate(
    base: Base,
    choice: Choice,
    settings: RunSettings,
    work_dir,
    reference: np.ndarray | None,
    base_accuracy: float | None,
    *,
    measure_here: bool = True,
) -> dict:
    """Materialize ``choice`` and return its full record (see results.json).

    With ``measure_here=False`` the latency is the estimate and ``record["artifact"]`` names the
    file to measure; a caller that measures elsewhere (a device node) puts its figures in with
    :func:`with_latency`.
    """
    start = time.perf_counter()
    shape = base.shape_for(choice.resolution)

    def at_shape(pair):
        return None if pair is None else (resize_inputs(pair[0], shape), pair[1])

    ctx = PassContext(
        work_dir=work_dir,
        calibration=resize_inputs(base.calibration, shape),
        train=at_shape(base.train),
        val=at_shape(base.val),
        factory=None if base.kind == "onnx" else base.name,
        input_shape=shape,
        input_dtype=base.input_dtype,
        seed=settings.seed,
        threads=max(settings.threads, 1),
    )
    plan = pass_plan(choice, base, settings)
    mat = materialize(base.materialize_base, plan, ctx)
    torchao = mat.artifact_runtime == "torch"
    if torchao:
        accuracy = score_torch(
            base, mat.artifact_path, reference, settings.threads, settings.metric
        )
        source = f"measured (torch, torchao {plan.torchao.config}: the .pt2 run eager in-process)"
        where = dict(
            path=str(mat.artifact_path), format=ARTIFACT_FORMATS["torch"], runtime="torch"
        )
    else:
        accuracy = score_model(base, mat.onnx_path, reference, settings.threads, settings.metric)
        source = "measured (onnxruntime)"
        where = dict(path=str(mat.onnx_path), format="onnx", runtime="onnxruntime")
    recipe = getattr(plan.quantize, "recipe", None)
    # a searched recipe's session options: what it was searched and is measured with
    options = {"graph_optimization_level": recipe.opt_level} if recipe is not None else None
    artifact = ArtifactRecord.model_validate(
        {**where, **({"options": options} if options else {})}
    )
    precision = get_precision(choice.precision)
    # a torch-side pass leaves the exported ONNX graph in fp32: estimate it at the precision's
    # dtype
    est = estimate_file(mat.onnx_path, settings, precision.estimate_dtype if torchao else None)
    estimate = estimate_record(est, precision.estimate_note if torchao else None)
    kinds = tuple(mat.change_kinds) or choice.change_kinds
    record = {
        "choice": ChoiceRecord.model_validate(choice.to_dict()).to_dict(),
        "label": choice.label if recipe is None else _recipe_label(recipe),
        "plan": plan.to_dict(),
        "change_kinds": list(kinds),
        "status": "done",
        "onnx": str(mat.onnx_path),
        "artifact": artifact.to_dict(),
        "accuracy": Accuracy(
            kind=accuracy.kind,
            value=accuracy.value,
            n=accuracy.n,
            sqnr_db=accuracy.sqnr_db,
            label=accuracy.label,
            data=base.eval_source,
            source=source,
        ).to_dict(),
        "estimate": estimate.to_dict(),
        "iteration": Iteration.model_validate(
            _iteration(settings, kinds, accuracy.value)
        ).to_dict(),
        "materialize": mat.metadata,
    }
    latency: MeasuredLatency | EstimatedLatency
    if settings.measure_runtime and measure_here:
        latency = measure(
            artifact.path,
            settings,
            runtime=artifact.runtime if torchao else None,
            options=artifact.options,
        )
    else:
        latency = EstimatedLatency.of(estimate)
    record = with_latency(record, latency)
    return {**record, "seconds": time.perf_counter() - start}
