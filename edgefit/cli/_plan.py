"""`edgefit plan --target T`: the iteration tax — cycle, bottleneck, levers, accuracy by the
deadline, goal."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

import edgefit
from edgefit.cli._common import JsonOpt, console, emit

if TYPE_CHECKING:
    from edgefit.iteration import IterationTax
    from edgefit.iteration._sections import Given

_KINDS = "weights, quantization, pruning, architecture, runtime"

_Num = float | None


def _d(days: float | None) -> str:
    if days is None:
        return "-"
    return f"{days:,.0f} d" if abs(days) >= 100 else f"{days:.3g} d"


def _pct(x: float) -> str:
    return f"{x:.2%}"


def _usd(x: float) -> str:
    return f"${x:,.0f}"


def _src(given: Given) -> str:
    return escape(given.provenance)


def _header(p: IterationTax) -> None:
    d, c = p.deadline, p.cycle
    console.print(
        f"[bold]Iteration tax on {escape(p.target.name)}[/] ({p.target.id}); change: "
        f"{', '.join(p.change_kinds)}; deadline {_d(d.days)} ({d.weeks:.3g} weeks, "
        f"{d.months:.3g} months; {escape(d.provenance)})"
    )
    cert = c.certification
    name = escape(cert.name)
    runs = f"triggers '{name}'" if cert.runs else f"does not trigger '{name}'"
    console.print(f"this change {runs} (triggered by: {', '.join(cert.triggers) or 'nothing'})")


def _waterfall(p: IterationTax) -> None:
    c = p.cycle
    table = Table(
        title=f"one iteration: {_d(c.days)} and {_usd(c.usd)} ({escape(c.usd_provenance)})"
    )
    for col in ("stage", "days", "share of cycle", "cycle days", "source / assumption"):
        table.add_column(
            col, justify="right" if col in ("days", "share of cycle") else "left", overflow="fold"
        )
    for r in c.waterfall:
        note = " (overlaps the next iteration)" if r.counted_days != r.days else ""
        table.add_row(
            r.stage,
            _d(r.days),
            f"{r.share:.1%}",
            f"{r.start_day:g}–{r.end_day:g}{note}",
            escape(r.provenance),
        )
    console.print(table)
    b, it = c.bottleneck, p.iterations
    console.print(
        f"bottleneck: {b.stage}, {_d(b.days)} = {b.share:.1%} of the cycle (a stage's share is "
        "the most any speed-up of it can cut: Amdahl)"
    )
    console.print(
        f"iterations by the deadline: {it.by_deadline} (floor of {_d(p.deadline.days)} / "
        f"{_d(c.days)}; {_d(it.days_used)} used), {_usd(it.usd_by_deadline)} in "
        "certification"
    )


def _what_if(p: IterationTax) -> None:
    rows = p.what_if
    defaults = rows and rows[0].default
    table = Table(
        title="what-if levers"
        + (" (defaults: automate training, halve the bottleneck)" if defaults else "")
    )
    for col in (
        "lever",
        "stage days",
        "cycle",
        "cycle cut",
        "iterations by deadline",
        "accuracy at deadline",
    ):
        table.add_column(col, justify="left" if col == "lever" else "right")
    for w in rows:
        lever = f"{w.stage} automated (∞×)" if w.automated else f"{w.stage} {w.factor:g}× faster"
        table.add_row(
            lever,
            f"{_d(w.stage_days)} → {_d(w.stage_days_after)}",
            f"{_d(w.cycle_days)} → {_d(w.cycle_days_after)}",
            f"{w.cut_share:.1%}",
            "unbounded" if w.iterations_by_deadline is None else str(w.iterations_by_deadline),
            "-" if w.accuracy_at_deadline is None else _pct(w.accuracy_at_deadline),
        )
    console.print(table)


def _by_kind(p: IterationTax) -> None:
    table = Table(
        title="cost per iteration by change kind (from the target's certification triggers)"
    )
    for col in (
        "change kind",
        "certification",
        "days / iteration",
        "$ / iteration",
        "iterations by deadline",
        "$ by deadline",
        "accuracy at deadline",
    ):
        table.add_column(
            col, justify="left" if col in ("change kind", "certification") else "right"
        )
    for c in p.by_change_kind:
        table.add_row(
            c.change_kinds[0],
            "yes" if c.certification else "no",
            _d(c.days),
            _usd(c.usd),
            str(c.iterations_by_deadline),
            _usd(c.usd_by_deadline),
            _pct(c.accuracy_at_deadline),
        )
    console.print(table)


def _accuracy(p: IterationTax) -> None:
    a = p.accuracy
    for given, label in (
        (a.accuracy_now, "A0"),
        (a.accuracy_ceiling, "AMAX"),
        (a.gain_per_iteration, "R"),
    ):
        console.print(f"{label} = {given.value:g} ({_src(given)})")
    table = Table(title=f"accuracy projection: {a.formula}")
    for col in (
        "month",
        "day",
        "light: iterations",
        "light: accuracy",
        "heavy: iterations",
        "heavy: accuracy",
    ):
        table.add_column(col, justify="right")
    for r in a.projection:
        month = f"{r.months:.2f} (deadline)" if r.deadline else f"{r.months:g}"
        table.add_row(
            month,
            f"{r.days:.0f}",
            str(r.iterations),
            _pct(r.accuracy),
            str(r.heavy_iterations),
            _pct(r.heavy_accuracy),
        )
    console.print(table)


def _goal(p: IterationTax) -> None:
    g = p.goal
    head = f"goal {_pct(g.goal)} ({escape(g.provenance)}): "
    if g.iterations_needed is None:
        console.print(
            head + "never reached: the curve approaches the ceiling AMAX without reaching it"
        )
    else:
        verdict = "fits" if g.fits else "does NOT fit"
        console.print(
            head + f"needs {g.iterations_needed} iterations = {_d(g.days_needed)} "
            f"({g.months_needed:.3g} months) against {g.iterations_fit} that fit by the "
            f"deadline: {verdict}"
        )
        if not g.fits:
            console.print(
                f"  to fit, one iteration would have to take ≤ {_d(g.cycle_days_needed)} "
                f"(now {_d(p.cycle.days)})"
            )
    console.print(
        f"reachable goal by the deadline: {g.reachable_goal:.1%} ({g.reachable_provenance})"
    )


def _heavy(p: IterationTax) -> None:
    h = p.heavy_vs_light
    light, heavy, x = h.light, h.heavy, h.crossing
    console.print(
        f"heavy vs light: heavy starts {h.heavy_gain.value * 100:.3g} accuracy points "
        f"higher ({_src(h.heavy_gain)}); "
        f"its iteration takes {h.heavy_slowdown.value:g}× the cycle = {_d(heavy.cycle_days)} "
        f"({_src(h.heavy_slowdown)})"
    )
    console.print(
        f"  at the deadline: light {_pct(light.accuracy_at_deadline)} "
        f"({light.iterations_by_deadline} "
        f"iterations) vs heavy {_pct(heavy.accuracy_at_deadline)} "
        f"({heavy.iterations_by_deadline} "
        f"iterations): {h.ahead_at_deadline} ahead"
    )
    if x.days is None:
        console.print(
            "  the light model never catches up (the heavy one iterates as fast or sits at the "
            "ceiling)"
        )
    else:
        step = (
            (
                "; counting completed iterations, light is ahead from its iteration "
                f"{x.light_iterations}, day "
                f"{x.step_days:.0f} ({x.step_months:.2f} months)"
            )
            if x.light_iterations is not None
            else ""
        )
        console.print(
            f"  the curves cross at day {x.days:.1f} ({x.months:.2f} months, continuous "
            f"curve){step}"
        )


def _knee(p: IterationTax) -> None:
    k = p.knee
    table = Table(
        title=f"knee: iteration {k.iteration} (its gain {k.gain_at_knee:.2%} ≤ "
        f"{k.fraction.value:g} × the first's {k.gain_first:.2%}) across model sizes"
    )
    for col in (
        "cycle ×",
        "start accuracy",
        "cycle",
        "knee at",
        "knee by deadline",
        "iterations by deadline",
        "accuracy at deadline",
    ):
        table.add_column(col, justify="right")
    for r in k.by_size:
        table.add_row(
            f"{r.cycle_multiplier:g}×",
            _pct(r.start_accuracy),
            _d(r.cycle_days),
            f"{_d(r.knee_days)} ({r.knee_months:.3g} months)",
            "yes" if r.knee_by_deadline else "no",
            str(r.iterations_by_deadline),
            _pct(r.accuracy_at_deadline),
        )
    console.print(table)
    console.print(f"  best by the deadline: {k.best_by_deadline:g}× ({k.sizes_provenance})")


def _defects(p: IterationTax) -> None:
    d = p.defect_cost
    table = Table(
        title=f"a defect caught late: {d.rule}, Cost(1) = {_usd(d.unit_usd.value)} "
        f"({_src(d.unit_usd)})"
    )
    for col in (
        "N",
        "caught at",
        "× Cost(1)",
        "cost",
        "saved by catching it at estimate",
        "cycle day",
    ):
        table.add_column(col, justify="left" if col == "caught at" else "right")
    for r in d.stages:
        table.add_row(
            str(r.n),
            r.stage,
            f"{r.multiplier:g}×",
            _usd(r.usd),
            _usd(r.saved_by_estimate_usd),
            "not run" if r.caught_on_day is None else f"{r.caught_on_day:g}",
        )
    console.print(table)


def _egress(p: IterationTax) -> None:
    e = p.egress
    if e is None:
        return
    console.print(
        f"data egress: {e.dataset_pb:g} PB ({escape(e.dataset_pb_provenance)}) × "
        f"{_usd(e.usd_per_pb)}/PB "
        f"({escape(e.usd_per_pb_provenance)}) = {_usd(e.usd_per_iteration)} per iteration, "
        f"{_usd(e.usd_by_deadline)} by the deadline; {e.note}"
    )


def plan(
    target: Annotated[str, typer.Option("--target", "-t", help="Target id, alias or YAML path.")],
    deadline: Annotated[
        str | None, typer.Option(help="Deadline: 180d, 26w, 6mo or 1y. (default: 26w)")
    ] = None,
    change: Annotated[
        list[str] | None,
        typer.Option(
            "--change",
            "-c",
            help=f"Change kind of an iteration (repeatable): {_KINDS}. (default: weights)",
        ),
    ] = None,
    accuracy_now: Annotated[
        _Num, typer.Option(help="A0: accuracy now, a fraction. (default: 0.90, assumed)")
    ] = None,
    accuracy_ceiling: Annotated[
        _Num, typer.Option(help="AMAX: the ceiling. (default: 0.995, assumed)")
    ] = None,
    gain_per_iteration: Annotated[
        _Num,
        typer.Option(
            help="R: share of the gap to AMAX closed per iteration, in (0, 1]. (default: 0.2, "
            "assumed)"
        ),
    ] = None,
    goal: Annotated[_Num, typer.Option(help="Accuracy goal. (default: 0.99, assumed)")] = None,
    what_if: Annotated[
        list[str] | None,
        typer.Option(
            "--what-if",
            help="STAGE=FACTOR: that stage FACTOR times faster (inf = automated); repeatable.",
        ),
    ] = None,
    heavy_gain: Annotated[
        _Num, typer.Option(help="Heavy model's head start. (default: 0.05, assumed)")
    ] = None,
    heavy_slowdown: Annotated[
        _Num, typer.Option(help="Heavy model's cycle multiplier. (default: 10, assumed)")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Override the loop: training=3, certification.days_per_change=7, ...; "
            "repeatable.",
        ),
    ] = None,
    overrides: Annotated[
        Path | None, typer.Option(help="YAML file of overrides (same keys as --set).")
    ] = None,
    overlap_monitoring: Annotated[
        bool,
        typer.Option(
            "--overlap-monitoring", help="Let the next iteration start while monitoring runs."
        ),
    ] = False,
    defect_unit_usd: Annotated[
        _Num,
        typer.Option(
            help="Cost(1) in $: fixing a violation at estimate time. (default: 1000, assumed)"
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    # the first line is `edgefit --help`'s listing, word for word (cli/_app.py): one line
    """The iteration tax: cycle and cost per iteration, bottleneck, what-ifs, accuracy by the deadline, goal."""  # noqa: E501
    result = edgefit.plan(
        target,
        deadline=deadline,
        change=change or ("weights",),
        accuracy_now=accuracy_now,
        accuracy_ceiling=accuracy_ceiling,
        gain_per_iteration=gain_per_iteration,
        goal=goal,
        what_if=what_if or (),
        heavy_gain=heavy_gain,
        heavy_slowdown=heavy_slowdown,
        overrides=set_ or (),
        overrides_file=overrides,
        overlap_monitoring=overlap_monitoring,
        defect_unit_usd=defect_unit_usd,
    )

    def render() -> None:
        for section in (
            _header,
            _waterfall,
            _what_if,
            _by_kind,
            _accuracy,
            _goal,
            _heavy,
            _knee,
            _defects,
            _egress,
        ):
            section(result)

    emit(result.to_dict(), as_json, render)
