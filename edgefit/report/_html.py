"""report.html from a :class:`Report`: the plots (frontier, per-kernel bars, iteration waterfall
and projection) and the tables, in the page frame of :mod:`._page` (one self-contained file).
"""

from __future__ import annotations

from edgefit import _format as fmt
from edgefit.report import _svg
from edgefit.report._candidates import candidate_rows
from edgefit.report._checklist import verdict
from edgefit.report._content import Report
from edgefit.report._page import html_table, page_head, sections_html
from edgefit.report._svg import BASELINE, FRONTIER, INK, OTHER, WINNER, Axis, Frame, esc


def _acc_axis(values, label: str) -> Axis:
    return Axis.fit([v for v in values if v is not None], label, floor=0.002)


def _frontier_plot(rep: Report, *, energy: bool) -> str:
    pts = rep.points
    if not pts:
        return '<p class="note">No candidate finished: nothing to plot.</p>'
    xs = [p.energy_j if energy else p.latency_s for p in pts]
    sources = {p.latency_source for p in pts}
    if energy:
        label = "energy per inference (estimated, log scale)"
    else:
        how = (
            "measured"
            if sources == {"measured"}
            else "estimated"
            if sources == {"estimated"}
            else "measured or estimated"
        )
        label = f"p50 latency ({how}, log scale)"
    budget = None if energy else rep.budget_s
    extra = [budget] if budget and max(xs) > 0 and budget / max(xs) <= 30 else []
    x = Axis.fit(xs + extra, label, log=True, fmt=fmt.joules if energy else fmt.seconds)
    y = _acc_axis([p.accuracy for p in pts] + [rep.floor], rep.accuracy_label)
    svg_id = "energy-plot" if energy else "frontier-plot"
    title = (
        "accuracy vs energy per inference" if energy else "accuracy vs latency: Pareto frontier"
    )
    f = Frame(svg_id, title, x, y)
    on_front = [p for p in pts if (p.energy_frontier if energy else p.frontier)]
    front = sorted(on_front, key=lambda p: p.energy_j if energy else p.latency_s)
    if len(front) > 1:
        f.polyline(
            [(p.energy_j if energy else p.latency_s, p.accuracy) for p in front],
            color=FRONTIER,
            cls="frontier-line",
            step=True,
        )
    f.rule(y=rep.floor, label=f"accuracy floor {rep.floor:.4f}", color="#52606d")
    if budget:
        f.rule(x=budget, label=rep.budget_label, color=FRONTIER)
    for p, xv in sorted(zip(pts, xs), key=lambda t: (t[0].winner, t[0].baseline)):
        on = p.energy_frontier if energy else p.frontier
        tags = [
            t
            for t, yes in (("on the frontier", on), ("chosen", p.winner), ("baseline", p.baseline))
            if yes
        ]
        tip = (
            f"{p.label}: {rep.accuracy_label} {p.accuracy:.4f}, p50 {fmt.seconds(p.latency_s)} "
            f"({p.latency_source}), {fmt.joules(p.energy_j)} (estimated); "
            f"{'fits' if p.fits else 'does not fit'} the envelope"
            + "".join(f"; {t}" for t in tags)
        )
        if p.winner:
            f.point(
                xv,
                p.accuracy,
                tip,
                shape="star",
                color=WINNER,
                size=11,
                cls="pt winner frontier" if on else "pt winner",
                edge=FRONTIER if on else None,
            )
        elif p.baseline:
            f.point(
                xv,
                p.accuracy,
                tip,
                shape="square",
                color=FRONTIER if on else BASELINE,
                size=5.5,
                hollow=not p.fits,
                cls="pt baseline" + (" frontier" if on else ""),
            )
        else:
            f.point(
                xv,
                p.accuracy,
                tip,
                color=FRONTIER if on else OTHER,
                hollow=not p.fits,
                cls="pt frontier" if on else "pt",
            )
    legend = [
        ("frontier", FRONTIER, "dot"),
        ("chosen", WINNER, "star"),
        ("baseline", BASELINE, "square"),
    ]
    if any(
        not (p.energy_frontier if energy else p.frontier) and not (p.winner or p.baseline)
        for p in pts
    ):
        legend.insert(1, ("other candidates", OTHER, "dot"))
    if any(not p.fits for p in pts):
        legend.append(("over the envelope", OTHER, "hollow"))
    f.legend(legend)
    caption = (
        "Each point is a materialized candidate; accuracy measured on the evaluation data. "
        + (
            "Energy is estimated for every candidate."
            if energy
            else f"Latency: {', '.join(sorted(sources))}. "
        )
        + (
            ""
            if energy or not rep.budget_s or extra
            else f" The latency budget ({rep.budget_label}) lies far right of every candidate."
        )
    )
    return f"<figure>{f.svg()}<figcaption>{esc(caption)}</figcaption></figure>"


def _candidates_table(rep: Report) -> str:
    res = rep.res
    rows = []
    for r in candidate_rows(res, rep.points):
        if r.error is not None:
            failed = f'<span class="fail">failed</span>: {esc(r.error[:120])}'
            rows.append([esc(r.label), failed, "", "", "", "", ""])
            continue
        mark = " ".join(
            t
            for t, yes in (("★", r.frontier), ("chosen", r.chosen), ("baseline", r.baseline))
            if yes
        )
        rows.append(
            [
                esc(r.label),
                r.accuracy,
                f"{esc(r.latency)} <span class=note>({esc(r.latency_source)})</span>",
                esc(r.energy),
                "yes" if r.fits else '<span class="fail">no</span>',
                esc(mark),
                esc(r.iteration),
            ]
        )
    table = html_table(
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
        num=(1, 3),
    )
    rej = res.rejected_at_estimate
    more = ""
    if rej:
        items = "".join(f"<li>{esc(r.label)}: {esc('; '.join(r.reasons))}</li>" for r in rej[:8])
        more = f"<p>{len(rej)} choices were rejected at estimate time, e.g.:</p><ul>{items}</ul>"
    return table + more


def _layers(rep: Report) -> str:
    lay = rep.layers
    if lay is None:
        return f'<p class="note">Not available: {esc(rep.layers_note)}.</p>'
    ks = list(lay.kernels) + ([lay.other] if lay.other else [])
    lat = _svg.hbars(
        "layer-latency-plot",
        "per-kernel latency (estimated)",
        [
            (
                k.name,
                k.latency_s,
                f"{k.name} ({k.kclass}, {k.dtype}, {k.bound}-bound): "
                f"{fmt.seconds(k.latency_s)}, {k.latency_s / lay.latency_s:.0%} of the total",
            )
            for k in ks
        ],
        fmt=fmt.seconds,
    )
    en = _svg.hbars(
        "layer-energy-plot",
        "per-kernel energy (estimated)",
        [(k.name, k.energy_j, f"{k.name}: {fmt.joules(k.energy_j)}") for k in ks],
        fmt=fmt.joules,
        color=OTHER,
    )
    note = (
        f"{lay.candidate}: {fmt.seconds(lay.latency_s)} and {fmt.joules(lay.energy_j)} per "
        "inference in total, "
        f"estimated ({lay.source_detail}); re-estimated from {lay.path}. The {len(lay.kernels)} "
        "slowest fused "
        "kernels are shown; the estimator's per-kernel split is not measured."
    )
    return (
        f'<div class="plots"><figure>{lat}<figcaption>latency per kernel '
        "(estimated)</figcaption></figure>"
        f"<figure>{en}<figcaption>energy per kernel (estimated)</figcaption></figure></div>"
        f'<p class="note">{esc(note)}</p>'
    )


def _envelope(rep: Report) -> str:
    if not rep.envelope:
        return '<p class="note">No chosen model: no envelope verdict.</p>'
    rows = []
    for e in rep.envelope:
        limit, winner, baseline = e.shown()
        word = (
            '<span class="unknown">unknown</span>'
            if e.fits is None
            else '<span class="pass">fits</span>'
            if e.fits
            else '<span class="fail">exceeds</span>'
        )
        rows.append(
            [esc(e.constraint), esc(limit), esc(winner), word, esc(baseline), esc(e.source)]
        )
    return html_table(
        ["constraint", "limit", rep.chosen_heading, "verdict", "baseline", "source"],
        rows,
        num=(1, 2, 4),
    )


def _projection_plot(plan: dict) -> str:
    acc = plan["accuracy"]
    hv = plan["heavy_vs_light"]
    light = [(0.0, acc["accuracy_now"]["value"])] + [
        (r["months"], r["accuracy"]) for r in acc["projection"]
    ]
    heavy = [(0.0, hv["heavy"]["start"])] + [
        (r["months"], r["heavy_accuracy"]) for r in acc["projection"]
    ]
    goal = plan["goal"]["goal"]
    ys = [a for _, a in light + heavy]
    x = Axis(0.0, max(m for m, _ in light) or 1.0, "months from now", fmt=lambda v: f"{v:g}")
    f = Frame(
        "projection-plot",
        "accuracy projection to the deadline",
        x,
        _acc_axis(ys, "projected accuracy"),
    )
    f.polyline(heavy, color=OTHER, dash="6 4", cls="heavy-line", step=True)
    f.polyline(light, color=FRONTIER, cls="projection-line", step=True)
    f.rule(y=goal, label=f"goal {goal:g}", color="#52606d")
    f.rule(
        x=plan["deadline"]["months"],
        label=f"deadline ({plan['deadline']['text']})",
        color=INK,
    )
    f.legend([("this model", FRONTIER, "line"), ("heavier model (assumed)", OTHER, "dash")])
    return f.svg()


def _iteration(rep: Report) -> str:
    plan = rep.iteration
    if plan is None:
        return f'<p class="note">Not available: {esc(rep.iteration_note)}.</p>'
    cyc, acc, goal = plan["cycle"], plan["accuracy"], plan["goal"]
    water = _svg.waterfall(
        "waterfall-plot",
        "iteration waterfall (days per stage)",
        cyc["waterfall"],
        bottleneck=cyc["bottleneck"]["stage"],
    )
    kpis = [
        ("one iteration", f"{cyc['days']:g} days, ${cyc['usd']:,.0f}"),
        ("bottleneck", f"{cyc['bottleneck']['stage']} ({cyc['bottleneck']['share']:.0%})"),
        (
            "iterations by the deadline",
            f"{plan['iterations']['by_deadline']} in {plan['deadline']['text']}",
        ),
        ("accuracy at the deadline", f"{acc['at_deadline']:.4f}"),
        (
            f"iterations to {goal['goal']:g}",
            "never" if goal["iterations_needed"] is None else str(goal["iterations_needed"]),
        ),
    ]
    kpi = "".join(f"<div>{esc(k)}<b>{esc(v)}</b></div>" for k, v in kpis)
    assumptions = "".join(
        f"<li>{esc(k)}: {esc(v)}</li>" for k, v in plan.get("assumptions", {}).items()
    )
    cert = cyc["certification"]
    return (
        f'<div class="kpi">{kpi}</div><div class="plots"><figure>{water}<figcaption>One iteration '
        "of the chosen "
        f"change ({esc(', '.join(plan['change_kinds']))}) on {esc(plan['target']['name'])}; "
        "certification "
        f'"{esc(cert["name"])}" {"runs" if cert["runs"] else "does not run"} for it. Red: the '
        "bottleneck."
        f"</figcaption></figure><figure>{_projection_plot(plan)}<figcaption>{esc(acc['formula'])}"
        '</figcaption></figure></div><p class="note">Stage days are the target profile\'s stated '
        "figures "
        f"(edgefit plan --target {esc(plan['target']['id'])} explains each). Assumptions:</p><ul "
        'class="note">'
        f"{assumptions}</ul>"
    )


def render_html(rep: Report) -> str:
    """The whole report.html for ``rep`` (see :func:`~edgefit.report.build_report`)."""
    res = rep.res
    ready = verdict(rep.checklist)
    summary = (
        html_table(
            ["metric", "baseline", rep.chosen_heading, "change", "source"],
            [[esc(c) for c in row] for row in rep.summary],
            num=(1, 2, 3),
        )
        if rep.summary
        else '<p class="note">No candidate finished.</p>'
    )
    summary += "".join(f'<p class="note protocol">{esc(line)}</p>' for line in rep.protocol)
    checks = html_table(
        ["check", "status", "evidence"],
        [
            [esc(i.name), f'<span class="{i.status}">{i.status}</span>', esc(i.evidence)]
            for i in rep.checklist
        ],
    )
    repro = html_table(
        ["field", "value", "source"], [[esc(a), esc(b), esc(c)] for a, b, c in rep.repro]
    )
    notes = "".join(f"<li>{esc(n)}</li>" for n in rep.notes)
    sections = [
        ("summary", "Summary: chosen vs baseline", summary),
        (
            "frontier",
            "Pareto frontier",
            f'<div class="plots">{_frontier_plot(rep, energy=False)}'
            f"{_frontier_plot(rep, energy=True)}</div>" + _candidates_table(rep),
        ),
        ("layers", "Per-layer latency and energy of the chosen model (estimated)", _layers(rep)),
        ("envelope", f"Envelope on {res.target.id}", _envelope(rep)),
        ("iteration", "Iteration tax", _iteration(rep)),
        ("reproducibility", "Reproducibility record", repro),
        (
            "checklist",
            "Production-ready checklist",
            f'<p>Verdict: <span class="verdict">{esc(ready)}</span></p>{checks}',
        ),
    ]
    nav = "".join(f'<a href="#{sid}">{esc(title.split(":")[0])}</a>' for sid, title, _ in sections)
    header = (
        f'<p class="headline">{esc(rep.headline)}</p><p>Production-ready: <a href="#checklist" '
        f'class="verdict">{esc(ready)}</a> · accuracy: {esc(res.data.evaluation)} · '
        f"selection: {esc(res.selection.rule)}</p><nav>{nav}</nav></header>"
    )
    footer = (
        f'<footer><h2>Notes</h2><ul class="note">{notes}</ul>'
        f'<p class="note">edgefit {esc(res.edgefit_version)}, run finished '
        f"{esc(res.created)}; "
        f"schema {esc(res.schema_)}.</p></footer></body></html>\n"
    )
    return page_head(rep.title) + header + sections_html(sections) + footer
