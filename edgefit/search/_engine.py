"""`edgefit optimize`: screen every choice, then materialize and measure the promising ones under
an optuna study that lives in the output folder (rerunning the same command resumes it)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from edgefit._io import (
    ensure_dir,
    remove_stale_temps,
    to_json,
    write_atomic,
)
from edgefit._lazy import lazy_import
from edgefit.estimate import Estimator
from edgefit.graph import load_graph
from edgefit.passes import PassContext, PassPlan, materialize
from edgefit.passes._onnx_prune import prunable as onnx_prunable
from edgefit.records import DoneCandidate, FailedCandidate, candidate_record
from edgefit.runtimes import measuring_runtime
from edgefit.search._base import Base
from edgefit.search._candidate import RunSettings, recipe_of, reference_outputs, score_model
from edgefit.search._config import OptimizeConfig, run_folder, with_output
from edgefit.search._executor import get_executor
from edgefit.search._figures import finished_record
from edgefit.search._recipe_step import with_recipe, with_search
from edgefit.search._screen import prefilter, screen
from edgefit.search._space import Choice, SpaceOptions, build_space, skipped_levers, torchao_base
from edgefit.search._study import _study, _tell
from edgefit.targets import load_target

if TYPE_CHECKING:
    import optuna
else:  # the study's storage: loaded when a run starts, not by importing search
    optuna = lazy_import("optuna")

RESULT = "result.json"


@dataclass
class Run:
    """Everything the search produced; :func:`~edgefit.search.finish_run` picks from it and
    writes results.json (:func:`edgefit.optimize` does both)."""

    config: OptimizeConfig
    base: Base
    screened: list = field(default_factory=list)
    # key -> the candidate's record, as results.json holds it (edgefit.records)
    candidates: dict[str, DoneCandidate | FailedCandidate] = field(default_factory=dict)
    reused: int = 0
    base_accuracy: float = 0.0
    base_key: str = ""
    interrupted: bool = False
    not_started: int = 0  # survivors never started (budget or Ctrl-C)
    notes: list[str] = field(default_factory=list)
    # the int8 recipe search's record (ONNX file on a measured target; see _recipe_step)
    recipe_search: dict | None = None


@dataclass(frozen=True)
class Job:
    key: str
    screened: Any

    @property
    def choice(self) -> Choice:
        return self.screened.choice


@dataclass(frozen=True)
class CandidateContext:
    """What every candidate of a run needs besides its choice (shipped once to each Ray worker)."""

    base: Base
    settings: RunSettings
    work_dir: Path
    reference: Any  # the original's outputs where the metric compares against them, else None
    base_accuracy: float


def choice_key(choice: Choice, recipe: dict | None = None) -> str:
    """The candidate's key (its folder under candidates/); an int8 choice built with a searched
    recipe hashes the recipe too, so a record made with another recipe is never reused."""
    data: dict[str, Any] = choice.to_dict()
    if recipe is not None and choice.precision == "int8":
        data = {"choice": data, "recipe": recipe}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def space_options(base: Base, target) -> SpaceOptions:
    can_swap = base.kind in ("example", "factory")
    has_matmul = False
    if base.kind == "onnx":
        graph = load_graph(base.onnx_path)
        has_matmul = any(
            layer.kind in ("gemm", "matmul") and layer.macs > 0.3 * max(1, graph.macs)
            for layer in graph.layers
        )
    ks = base.knob_space or {}
    res = ks.get("resolution")
    return SpaceOptions(
        can_swap=can_swap,
        # an ONNX file's channels are pruned on its graph, recovered on --train-data
        can_prune=base.kind in ("example", "factory")
        or (base.kind == "onnx" and base.train is not None and onnx_prunable(base.onnx_path)),
        can_retrain=base.train is not None,
        base_resolution=base.input_shape[-1] if res else None,
        resolution_range=(min(res), max(res)) if res else None,
        base_activation=base.base_activation,
        target_dtypes=tuple(target.dtypes),
        has_matmul=has_matmul,
        sparsity=any(u.sparsity_2to4_speedup for u in target.compute_units),
        torch_base=torchao_base(base),
    )


def _reused(record: dict) -> DoneCandidate | FailedCandidate | None:
    """A record read back from a candidate's folder as its typed record, marked reused; None when
    it does not read (written by a broken or foreign tool): the candidate is built again."""
    try:
        return candidate_record({**record, "reused": True})
    except ValidationError:
        return None


def _finished(path: Path, key: str, threads: int | None = None) -> dict | None:
    """The record of candidate ``key`` a previous run finished, or None (never run, unreadable,
    or measured at another thread count than ``threads``: a key names the candidate, not how it
    was timed, so a ``--threads 2`` run in a folder of 1-thread results measures again)."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if (
        not isinstance(record, dict)
        or record.get("key") != key
        or record.get("status") not in ("done", "failed")
    ):
        return None
    latency = record.get("latency") or {}
    if threads is not None and latency.get("source") == "measured":
        if latency.get("threads") != threads:
            return None
    return record


def optimize(
    config: OptimizeConfig, base: Base, *, progress: Callable[[str, int, int], None] | None = None
) -> Run:
    """Screen, then materialize/measure the survivors until done, the budget, or Ctrl-C.

    The search alone (no pick, no files besides the per-candidate records and the study):
    :func:`edgefit.optimize` is the whole run. ``config.out_dir`` None is
    ``edgefit-out/<target id>``; ``run.config`` holds the folder used.
    """
    # the run's clock: --budget counts from here, the int8 recipe search included
    start = time.perf_counter()
    target = load_target(config.target)
    config = with_output(config, target.id)
    out_dir = run_folder(config)
    ensure_dir(out_dir)  # a read-only or full output folder: one line now, not after the work
    for folder in (out_dir, out_dir / "export", out_dir / "candidates"):
        remove_stale_temps(folder, recursive=folder.name == "candidates")  # left by a killed run
    run = Run(config, base)
    opts = space_options(base, target)
    choices = build_space(opts)
    estimators: dict[tuple, Estimator] = {}
    for c in choices:
        knobs = (c.depth, c.resolution, c.activation)
        if knobs not in estimators:
            if progress:
                progress(f"estimating variant {knobs}", 0, 1)
            estimators[knobs] = Estimator(
                base.graph_variant(*knobs),
                target,
                power_mode=config.power_mode,
                threads=config.threads,
            )
    run.screened = screen(choices, estimators)
    survivors = prefilter(run.screened, config.keep)
    if config.trials is not None:
        survivors = survivors[: max(1, config.trials)]
    settings = RunSettings(
        target=target,
        power_mode=config.power_mode,
        measure_runtime=measuring_runtime(target),  # the target's YAML, if it is this machine
        threads=config.threads,
        recover_epochs=config.recover_epochs,
        seed=config.seed,
        deadline_days=config.deadline_days,
        measure_timeout_s=config.measure_timeout_s,
        metric=config.metric,
    )
    cand_dir = out_dir / "candidates"
    base_path = _base_onnx(base, settings, cand_dir)
    reference = reference_outputs(base, base_path, config.threads)
    compare_to = _reference_for(base, reference, config.metric)
    base_acc = score_model(base, base_path, compare_to, config.threads, config.metric).value
    run.base_accuracy, run.base_key = base_acc, choice_key(Choice())
    left = None if config.budget_s is None else config.budget_s - (time.perf_counter() - start)
    settings, survivors = with_recipe(
        run, settings, survivors, compare_to, progress, budget_left_s=left
    )
    keys = [choice_key(s.choice, recipe_of(s.choice, settings)) for s in survivors]
    # every screened choice is a possible value: the study stays valid when --trials or --keep
    # change
    study, dist = _study(
        config, [choice_key(s.choice, recipe_of(s.choice, settings)) for s in run.screened]
    )
    told = {
        t.user_attrs.get("candidate", t.params.get("candidate"))
        for t in study.get_trials(
            deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
        )
    }
    ctx = CandidateContext(base, settings, cand_dir, compare_to, base_acc)
    pending: list[Job] = []
    reused_failed = 0
    for s, key in zip(survivors, keys):
        # the record, written atomically, is what counts
        found = _finished(cand_dir / key / RESULT, key, config.threads)
        record = None if found is None else _reused(with_search(found, run.recipe_search))
        if record is None:
            pending.append(Job(key, s))
            continue
        if key not in told:  # killed between writing the record and telling the study
            _tell(study, dist, key, record)
        run.candidates[key] = record
        run.reused += 1
        reused_failed += isinstance(record, FailedCandidate)
    if reused_failed:
        run.notes.append(
            f"{reused_failed} failed candidate(s) reused from an earlier run with their reason; "
            "delete candidates/<key>/result.json to try one again"
        )
    stopped: list[bool] = []
    asked: list[bool] = []

    def should_stop() -> bool:
        # the budget counts from the start of the run (baseline and recipe search included),
        # but a run with no candidate yet starts one even when setup spent it: a run that
        # builds nothing answers nothing
        first = not asked and not run.candidates
        asked.append(True)
        if first:
            return False
        if config.budget_s is not None and time.perf_counter() - start > config.budget_s:
            stopped.append(True)
            return True
        return False

    results = None
    try:
        results = get_executor(config.executor, config).run(
            [] if run.interrupted else pending,  # Ctrl-C in the recipe search: start nothing
            ctx,
            should_stop=should_stop,
            progress=progress,
            notes=run.notes,
        )
        for job, raw in results:
            # keyed, checked against the typed candidate record, then written
            done = finished_record(with_search(raw, run.recipe_search), job.key, job.screened)
            # the record first: a run killed before the study hears of it still reuses it (and
            # tells it then)
            write_atomic(cand_dir / job.key / RESULT, to_json(done.to_dict()) + "\n")
            run.candidates[job.key] = done.model_copy(update={"reused": False})
            _tell(study, dist, job.key, done)  # interrupted here: the next run tells it
    except KeyboardInterrupt:
        run.interrupted = True
        for (
            job
        ) in pending:  # a record on disk counts, even if Ctrl-C came before this run registered it
            found = _finished(cand_dir / job.key / RESULT, job.key, config.threads)
            if job.key not in run.candidates and found is not None:
                if (kept := _reused(found)) is not None:
                    run.candidates[job.key] = kept.model_copy(update={"reused": False})
        run.notes.append(
            "interrupted: results are the best so far; rerun the same command to resume"
        )
    finally:
        # an executor left suspended by Ctrl-C still holds its context (the Ray session, and stdout
        # sent to stderr while Ray runs): closing it now, not at interpreter exit, keeps --json
        # output on stdout
        close = getattr(results, "close", None)
        if close is not None:
            try:
                close()
            except (
                KeyboardInterrupt
            ):  # a second Ctrl-C while the session shuts down: results still count
                run.interrupted = True
    run.not_started = sum(job.key not in run.candidates for job in pending)
    if stopped:
        run.notes.append(
            f"budget of {config.budget_s:.0f} s reached: {run.not_started} candidate(s) not "
            "started"
        )
    if progress:
        progress("done", len(survivors), len(survivors))
    run.notes += skipped_levers(opts)
    run.notes.append(
        f"screened {len(choices)} choices by estimate; {sum(s.feasible for s in run.screened)} "
        "could fit; "
        f"{len(survivors)} chosen to materialize (Pareto prefilter on estimated latency and a "
        "change-size prior)"
    )
    return run


def _reference_for(base: Base, reference, metric: str):
    """The original's outputs when the metric compares against them (no labels, or sqnr)."""
    return reference if base.eval_y is None or metric == "sqnr" else None


def _base_onnx(base: Base, settings: RunSettings, cand_dir: Path) -> Path:
    """The unchanged model as ONNX (what every candidate is compared with)."""

    ctx = PassContext(
        work_dir=cand_dir,
        factory=None if base.kind == "onnx" else base.name,
        input_shape=base.input_shape,
        input_dtype=base.input_dtype,
        seed=settings.seed,
    )
    return materialize(base.materialize_base, PassPlan(), ctx).onnx_path
