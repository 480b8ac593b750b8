"""report.md: the same content as report.html for a pull request, with tables where the HTML has
plots."""

from __future__ import annotations

from collections.abc import Sequence

from edgefit import _format as fmt
from edgefit.report._candidates import candidate_rows
from edgefit.report._checklist import verdict
from edgefit.report._content import Report

MARK = {"pass": "✅ pass", "fail": "❌ fail", "unknown": "⚠️ unknown"}


def cell(text: object) -> str:
    """Text safe inside a Markdown table cell (pipes escaped, one line)."""
    return (
        str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")
    )


def table(head: list[str], rows: Sequence[Sequence[object]]) -> list[str]:
    out = ["| " + " | ".join(cell(h) for h in head) + " |", "|" + " --- |" * len(head)]
    return out + ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]


def _frontier(rep: Report) -> list[str]:
    res = rep.res
    rows = []
    for r in candidate_rows(res, rep.points):
        if r.error is not None:
            rows.append([r.label, f"failed: {r.error[:100]}", "", "", "", "", ""])
            continue
        tags = [
            t
            for t, on in (
                ("★ frontier", r.frontier),
                ("chosen", r.chosen),
                ("baseline", r.baseline),
            )
            if on
        ]
        rows.append(
            [
                r.label,
                r.accuracy,
                f"{r.latency} ({r.latency_source})",
                r.energy + (" ★" if r.energy_frontier else ""),
                "yes" if r.fits else "no",
                ", ".join(tags),
                r.iteration,
            ]
        )
    out = table(
        [
            "candidate",
            "accuracy",
            "latency p50",
            "energy (estimated)",
            "fits",
            "frontier",
            "iteration",
        ],
        rows,
    )
    out += [
        "",
        f"★ in the latency column: Pareto frontier on ({rep.accuracy_label} ↑, p50 latency ↓); "
        f"★ after an energy: frontier on energy. Accuracy floor {rep.floor:.4f}"
        + (f"; {rep.budget_label}." if rep.budget_label else "."),
    ]
    rej = res.rejected_at_estimate
    if rej:
        out += ["", f"{len(rej)} choices were rejected at estimate time, e.g.:"]
        out += [f"- {r.label}: {'; '.join(r.reasons)}" for r in rej[:5]]
    return out


def _layers(rep: Report) -> list[str]:
    lay = rep.layers
    if lay is None:
        return [f"Not available: {rep.layers_note}."]
    ks = list(lay.kernels) + ([lay.other] if lay.other else [])
    rows = [
        [
            k.name,
            k.kclass,
            k.dtype,
            fmt.seconds(k.latency_s),
            f"{k.latency_s / lay.latency_s:.0%}",
            fmt.joules(k.energy_j),
            k.bound,
        ]
        for k in ks
    ]
    return [
        f"{lay.candidate}: {fmt.seconds(lay.latency_s)} and {fmt.joules(lay.energy_j)} per "
        "inference, estimated "
        f"({lay.source_detail}).",
        "",
    ] + table(
        ["kernel", "class", "dtype", "latency (est.)", "share", "energy (est.)", "bound"], rows
    )


def _envelope(rep: Report) -> list[str]:
    if not rep.envelope:
        return ["No chosen model: no envelope verdict."]
    rows = []
    for e in rep.envelope:
        limit, winner, baseline = e.shown()
        word = "unknown" if e.fits is None else "fits" if e.fits else "**exceeds**"
        rows.append([e.constraint, limit, winner, word, baseline, e.source])
    return table(
        ["constraint", "limit", rep.chosen_heading, "verdict", "baseline", "source"], rows
    )


def _iteration(rep: Report) -> list[str]:
    plan = rep.iteration
    if plan is None:
        return [f"Not available: {rep.iteration_note}."]
    cyc, acc, goal = plan["cycle"], plan["accuracy"], plan["goal"]
    need = "never" if goal["iterations_needed"] is None else str(goal["iterations_needed"])
    out = [
        f"One iteration of the chosen change ({', '.join(plan['change_kinds'])}) takes "
        f"**{cyc['days']:g} days** and "
        f"**${cyc['usd']:,.0f}**; bottleneck: {cyc['bottleneck']['stage']} "
        f"({cyc['bottleneck']['share']:.0%}). "
        f"{plan['iterations']['by_deadline']} iterations fit by the deadline "
        f"({plan['deadline']['text']}); "
        f"projected accuracy there {acc['at_deadline']:.4f}; {need} iterations to reach "
        f"{goal['goal']:g}.",
        "",
        "Waterfall:",
        "",
    ]
    out += table(
        ["stage", "days", "counted", "from day", "share", "source"],
        [
            [
                r["stage"],
                f"{r['days']:g}",
                f"{r['counted_days']:g}",
                f"{r['start_day']:g}",
                f"{r['share']:.0%}",
                r["provenance"],
            ]
            for r in cyc["waterfall"]
        ],
    )
    out += ["", f"Accuracy projection ({acc['formula']}):", ""]
    out += table(
        ["months", "iterations", "this model", "heavier model (assumed)"],
        [
            [
                f"{r['months']:.1f}" + (" (deadline)" if r["deadline"] else ""),
                r["iterations"],
                f"{r['accuracy']:.4f}",
                f"{r['heavy_accuracy']:.4f}",
            ]
            for r in acc["projection"]
        ],
    )
    if plan.get("assumptions"):
        out += ["", "Assumptions:"] + [f"- {k}: {v}" for k, v in plan["assumptions"].items()]
    return out


def render_md(rep: Report) -> str:
    """The whole report.md for ``rep`` (see :func:`~edgefit.report.build_report`)."""
    res = rep.res
    ready = verdict(rep.checklist)
    lines = [
        f"# {rep.title}",
        "",
        f"**{rep.headline}**",
        "",
        f"Production-ready: **{ready}** (see the checklist). Accuracy: "
        f"{res.data.evaluation}. "
        f"Selection: {res.selection.rule}.",
        "",
        "## Summary: chosen vs baseline",
        "",
    ]
    lines += (
        table(
            ["metric", "baseline", rep.chosen_heading, "change", "source"],
            [list(r) for r in rep.summary],
        )
        if rep.summary
        else ["No candidate finished."]
    )
    for line in rep.protocol:  # the final re-measurement and the tie rule, one paragraph each
        lines += ["", line]
    sections = [
        ("Pareto frontier", _frontier(rep)),
        ("Per-layer latency and energy of the chosen model (estimated)", _layers(rep)),
        (f"Envelope on {res.target.id}", _envelope(rep)),
        ("Iteration tax", _iteration(rep)),
        (
            "Reproducibility record",
            table(["field", "value", "source"], [list(r) for r in rep.repro]),
        ),
        (
            "Production-ready checklist",
            [f"Verdict: **{ready}**", ""]
            + table(
                ["check", "status", "evidence"],
                [[i.name, MARK[i.status], i.evidence] for i in rep.checklist],
            ),
        ),
    ]
    for title, body in sections:
        lines += ["", f"## {title}", ""] + body
    lines += ["", "## Notes", ""] + [f"- {n}" for n in rep.notes]
    lines += [
        "",
        f"_edgefit {res.edgefit_version}, run finished {res.created}; schema {res.schema_}._",
    ]
    return "\n".join(lines) + "\n"
