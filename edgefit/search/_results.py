"""results.json for a run: every candidate and where each number came from (reports:
edgefit.report)."""

from __future__ import annotations

import datetime as _dt
import sys
from pathlib import Path

from edgefit._io import copy_atomic, to_json, write_atomic
from edgefit._version import __version__
from edgefit.records import (
    RESULTS_SCHEMA_ID,
    Baseline,
    ChoiceRecord,
    Counts,
    DataSource,
    DoneCandidate,
    FailedCandidate,
    ModelSource,
    Rejected,
    RejectedEstimate,
    Results,
    RunConfig,
    SelectionRecord,
    TargetRef,
)
from edgefit.report import environment_record, write_reports
from edgefit.search._outcome import Selection
from edgefit.search._select import Pick, Protocol, frontier

RESULTS_SCHEMA = RESULTS_SCHEMA_ID


def results_record(
    run,
    pick: Pick,
    base_key: str,
    base_accuracy: float,
    protocol: Protocol | None = None,
    *,
    threads_from: str | None = None,
    exports: list[dict] | None = None,
) -> Results:
    """The whole results.json of ``run`` as its typed record; ``protocol`` (the final
    re-measurement, when there was one) goes under ``selection.protocol`` with the ties the pick
    found and the rule it applied. ``threads_from`` (who chose the thread count) and ``exports``
    (the winner in the target's formats) are recorded when given."""
    cands = list(run.candidates.values())
    rejected = [
        Rejected(
            label=s.choice.label,
            choice=ChoiceRecord.model_validate(s.choice.to_dict()),
            status="rejected at estimate",
            reasons=list(s.reasons),
            estimate=RejectedEstimate(
                latency_s=s.estimate.latency_s,
                energy_j=s.estimate.energy_j,
                source=s.estimate.source,
                error=s.estimate.error,
            ),
        )
        for s in run.screened
        if not s.feasible
    ]
    cfg = run.config
    selection = SelectionRecord.model_validate(Selection.of(cfg.select, pick, protocol).to_dict())
    config = RunConfig.model_validate(
        dict(
            max_drop=cfg.max_drop,
            relative_drop=cfg.relative_drop,
            select=cfg.select,
            budget_s=cfg.budget_s,
            trials=cfg.trials,
            seed=cfg.seed,
            threads=cfg.threads,
            recover_epochs=cfg.recover_epochs,
            deadline_days=cfg.deadline_days,
            executor=cfg.executor,
            ray_address=cfg.ray_address,
            metric=cfg.metric,
            **({"threads_from": threads_from} if threads_from is not None else {}),
        )
    )
    # the int8 recipe search (an ONNX file on a measured target), without its every-try log,
    # which the candidates' materialize blocks and OUT/recipe/recipe.json keep
    recipe_search = getattr(run, "recipe_search", None)
    optional: dict = {}
    if recipe_search:
        optional["recipe_search"] = {k: v for k, v in recipe_search.items() if k != "tried"}
    if exports is not None:
        optional["exports"] = exports
    return Results.model_validate(
        {
            "schema": RESULTS_SCHEMA_ID,
            "edgefit_version": __version__,
            "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": " ".join(["edgefit", *sys.argv[1:]])
            if sys.argv and sys.argv[0].endswith("edgefit")
            else None,
            "environment": environment_record(),
            "target": TargetRef(id=cfg.target, power_mode=cfg.power_mode),
            "model": ModelSource(
                kind=run.base.kind, name=run.base.name, input_shape=list(run.base.input_shape)
            ),
            "data": DataSource(
                evaluation=run.base.eval_source,
                labels=run.base.eval_y is not None,
                training="given" if run.base.train is not None else None,
            ),
            "config": config,
            "baseline": Baseline(key=base_key, accuracy=base_accuracy),
            "selection": selection,
            "frontier": [c.key for c in frontier(cands)],
            "counts": Counts(
                screened=len(run.screened),
                could_fit=sum(s.feasible for s in run.screened),
                materialized=len(cands),
                reused=run.reused,
                failed=sum(isinstance(c, FailedCandidate) for c in cands),
                not_started=run.not_started,
            ),
            "interrupted": run.interrupted,
            "notes": list(run.notes),
            "candidates": cands,
            "rejected_at_estimate": rejected,
            **optional,
        }
    )


def results_dict(
    run, pick: Pick, base_key: str, base_accuracy: float, protocol: Protocol | None = None
) -> dict:
    """results.json's content for ``run`` (:func:`results_record`, serialized)."""
    return results_record(run, pick, base_key, base_accuracy, protocol).to_dict()


def write_outputs(out_dir: Path, record: Results) -> dict[str, str]:
    """The chosen model (model.onnx), report.md, report.html and results.json; each written
    atomically.

    results.json comes last, so it never names a model or report not yet written. A run killed
    before then leaves the previous run's files (or none) beside the new ones, never a half-written
    file.
    """

    files = {"results": str(out_dir / "results.json")}  # written last, listed first
    chosen = next(
        (
            c
            for c in record.candidates
            if isinstance(c, DoneCandidate) and c.key == record.selection.winner
        ),
        None,
    )
    if chosen is not None:
        files["model"] = str(copy_atomic(chosen.onnx, out_dir / "model.onnx"))
        if chosen.runtime == "torch":  # a torchao winner: the quantized program, beside its ONNX
            files["model_torch"] = str(copy_atomic(chosen.path, out_dir / "model.pt2"))
    # after model.onnx exists: per-layer bars and parity use it
    reports = write_reports(out_dir, record)
    write_atomic(out_dir / "results.json", to_json(record.to_dict()) + "\n")
    files.update(report=reports["md"], html=reports["html"])
    return files
