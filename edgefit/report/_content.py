"""What a report says, as data: built once from results.json, rendered as HTML (plots) or Markdown
(tables).

Every number keeps its unit and its source. Two sections need more than results.json: the per-layer
bars re-estimate the winner's ONNX file (when it is still on disk) and the iteration tax rebuilds
the target's plan (when the target still loads); each says why when it cannot.

Each section is built by its own module — :mod:`._summary` (chosen vs baseline),
:mod:`._candidates` (the frontier and the candidates table), :mod:`._layers`, :mod:`._target`
(envelope and iteration tax), :mod:`._repro`, :mod:`._checklist` — and :func:`build_report`
gathers them into one :class:`Report`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit import _format as fmt
from edgefit.report._candidates import Point, estimate_notes, frontier_points
from edgefit.report._checklist import Item, checklist
from edgefit.report._layers import Layers, layers_of
from edgefit.report._read import as_results
from edgefit.report._repro import repro_rows
from edgefit.report._summary import headline, protocol_lines, summary_rows
from edgefit.report._target import EnvelopeRow, envelope_rows, iteration_plan, target_of

if TYPE_CHECKING:
    from edgefit.records import DoneCandidate, Results

SHORT_ACCURACY = {
    "top1": "top-1 accuracy (measured)",
    "agreement": "top-1 agreement with the original (measured)",
    "sqnr": "output SQNR vs the original, dB (measured)",
}


@dataclass(frozen=True)
class Report:
    title: str
    headline: str
    res: Results  # results.json as its typed record
    summary: list[tuple[str, str, str, str, str]]  # metric, baseline, chosen, change, source
    chosen_heading: str  # "chosen", or "best found" when nothing qualified
    points: list[Point]
    accuracy_label: str
    floor: float
    budget_s: float | None
    budget_label: str
    layers: Layers | None
    layers_note: str
    envelope: list[EnvelopeRow]
    iteration: dict | None
    iteration_note: str
    repro: list[tuple[str, str, str]]
    checklist: list[Item]
    notes: list[str] = field(default_factory=list)
    protocol: list[str] = field(
        default_factory=list
    )  # the final re-measurement and the tie rule, in sentences


def build_report(
    res: Mapping[str, Any] | Results, *, results_dir: str | Path | None = None
) -> Report:
    """Everything a report shows, from a loaded results.json (see
    :func:`~edgefit.report.load_results`) or its :class:`~edgefit.records.Results` record; a
    dict the record cannot hold is an :class:`~edgefit.errors.EdgefitError`.

    ``results_dir`` is the folder results.json sits in: the exported model.onnx is looked up there.

    >>> rep = build_report(load_results("out/results.json"), results_dir="out")   # doctest: +SKIP
    >>> rep.headline                                                             # doctest: +SKIP
    """
    res = as_results(res)
    results_dir = Path(results_dir) if results_dir is not None else None
    cands = {c.key: c for c in res.candidates}
    done: list[DoneCandidate] = [c for c in res.candidates if c.status == "done"]
    by_key = {c.key: c for c in done}  # the pick, the baseline and the best found are finished
    sel = res.selection
    win = by_key.get(sel.winner or "")
    base = by_key.get(res.baseline.key)
    focus = win or by_key.get(sel.best_found or "")
    target, target_note = target_of(res)
    layers, layers_note = layers_of(res, focus, target, results_dir)
    iteration, iteration_note = iteration_plan(res, focus, target)
    env = getattr(target, "envelope", None)
    kind = done[0].accuracy.kind if done else ""
    acc_label = SHORT_ACCURACY.get(kind, f"{kind or 'accuracy'} (measured)")
    notes = list(res.notes) + ([target_note] if target_note else []) + estimate_notes(done)
    return Report(
        title=f"edgefit: {res.model.name} on {res.target.id}",
        headline=headline(res, cands, win, base),
        res=res,
        summary=summary_rows(base, focus),
        chosen_heading=f"chosen: {win.label}"
        if win
        else f"best found: {focus.label}"
        if focus
        else "none",
        points=frontier_points(res, done),
        accuracy_label=acc_label,
        floor=sel.accuracy_floor,
        budget_s=env.latency_budget_s.value if env is not None else None,
        budget_label=f"p{env.latency_percentile:g} budget "
        f"{fmt.seconds(env.latency_budget_s.value)}"
        if env
        else "",
        layers=layers,
        layers_note=layers_note,
        envelope=envelope_rows(win or focus, base, target),
        iteration=iteration,
        iteration_note=iteration_note,
        repro=repro_rows(res, win),
        checklist=checklist(res, win, base, target, results_dir),
        notes=notes,
        protocol=protocol_lines(res, cands),
    )
