"""`edgefit fidelity`: estimate vs measured latency on a model zoo, or vs a target's published
measurements; and the fidelity tables `edgefit calibrate` prints after it calibrates.

The work is :func:`edgefit.fidelity`; this module parses the options, shows progress and renders
the result by its kind (``host``, ``zoo``, ``published``, ``check``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import edgefit
from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit._view import view
from edgefit.cli._common import JsonOpt, QuietOpt, console, emit, err_console

if TYPE_CHECKING:
    from edgefit.calibrate import _fidelity_records, _measure
    from edgefit.calibrate._fidelity_records import (
        CheckFidelity,
        Figures,
        HostFidelity,
        PublishedFidelity,
        ZooFidelity,
    )
else:  # calibrate's package brings numpy and onnx: loaded when a fidelity table is printed
    _fidelity_records, _measure = lazy_import(
        "edgefit.calibrate._fidelity_records", "edgefit.calibrate._measure"
    )

TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Target to calibrate (measured here).")
]
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", help="Runtime to measure with.")]


def progress_bar(quiet: bool) -> tuple[Progress | None, Callable[[str, int, int], None] | None]:
    """A transient progress bar on stderr and its ``update(label, done, total)``; (None, None)
    when quiet. The bar shows from the first update, so a run that measures nothing (a published
    fit) prints none; stop it with ``bar.stop()`` once it started."""
    if quiet:
        return None, None
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    task = bar.add_task("measuring", total=1)

    def update(label: str, i: int, n: int) -> None:
        if not bar.live.is_started:
            bar.start()
        bar.update(task, description=label[:48], completed=i, total=n)

    return bar, update


def fidelity(
    target: TargetOpt = "host-cpu",
    runtime: RuntimeOpt = "onnxruntime",
    profile: Annotated[
        Path | None,
        typer.Option("--profile", help="Profile to check (default: the shipped one)."),
    ] = None,
    subset: Annotated[
        str | None,
        typer.Option(
            "--subset", help="host-cpu: zoo tag to run (ci: the small CI subset); default all."
        ),
    ] = None,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads", help="host-cpu: thread counts, e.g. 1,2 (default: 1 and all cores)."
        ),
    ] = None,
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Published targets: write the fit the estimator uses to "
            "profiles/<target>/published.fit.yaml.",
        ),
    ] = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Estimate vs measured latency on a model zoo, or vs a target's published measurements.

    Published points are predicted leave-one-run-out.
    """
    # (the docstring is the listed help in edgefit/cli/_app.py, kept equal by
    # tests/cli/test_lazy.py.)
    bar, progress = progress_bar(quiet or as_json)
    try:
        result = edgefit.fidelity(
            target,
            runtime,
            profile=profile,
            subset=subset,
            threads=threads,
            update=update,
            progress=progress,
        )
    finally:
        if bar is not None and bar.live.is_started:
            bar.stop()
    for w in result.warnings:
        err_console.print(f"warning: {w}")
    emit(result.to_dict(), as_json, lambda: RENDERERS[result.kind](result.record))


def _host(summary: Mapping[str, Any] | HostFidelity) -> HostFidelity:
    host = _fidelity_records.HostFidelity
    return summary if isinstance(summary, host) else view(host, summary)


def _zoo(summary: Mapping[str, Any] | ZooFidelity) -> ZooFidelity:
    zoo = _fidelity_records.ZooFidelity
    return summary if isinstance(summary, zoo) else view(zoo, summary)


def render_host_summary(summary: Mapping[str, Any] | HostFidelity) -> None:
    """The host fidelity table and its figures per thread count (``summary``: the record, or
    the report dict `edgefit calibrate` holds)."""
    s = _host(summary)
    table = Table(
        title="fidelity: learned estimate vs onnxruntime measured here (zoo never trained on)"
    )
    for col in (
        "model",
        "family",
        "recipe",
        "threads",
        "measured",
        "estimated",
        "error",
        "in ±bar",
    ):
        table.add_column(col, justify="left" if col in ("model", "family", "recipe") else "right")
    for r in s.rows:
        table.add_row(
            r.model,
            r.family,
            r.recipe,
            str(r.threads),
            fmt.seconds(r.measured_s),
            fmt.seconds(r.estimated_s),
            f"{r.error:+.0%}",
            "yes" if r.covered else "no",
        )
    console.print(table)
    for threads, t in s.per_threads.items():
        console.print(
            f"{threads} thread(s): median |error| {t.median_abs_error:.1%} · within ±10% "
            f"{t.within_10pct:.0%} · within ±25% {t.within_25pct:.0%} · Kendall τ "
            f"{t.kendall_tau:.2f} · 80% bar covered {t.interval_coverage:.0%} · int8 slower "
            "caught "
            f"{t.int8_slower_caught}/{t.int8_slower}, faster {t.int8_faster_caught}/"
            f"{t.int8_faster} ({t.points} points, median round spread "
            f"{t.median_spread:.1%}"
            + (f", rounds left out as disturbed: {t.rounds_left_out}" if t.rounds_left_out else "")
            + (f", {t.retimed} timed again for the slow mode" if t.retimed else "")
            + ")"
        )
        if t.slower_than_1_thread:
            err_console.print(
                f"warning: at {threads} threads {t.slower_than_1_thread} of {t.points} models "
                f"measured over {_measure.SLOW_MODE_RATIO:g}× their 1-thread time even when "
                "timed again: this machine was in a slow mode for multi-thread runs, and those "
                "figures are the slow mode's"
            )


def render_summary(summary: Mapping[str, Any] | ZooFidelity) -> None:
    """The zoo fidelity table and its figures (``summary``: the record, or the report dict
    `edgefit calibrate` holds)."""
    s = _zoo(summary)
    table = Table(title="fidelity: estimated (calibrated profile) vs measured latency")
    for col in ("model", "dtype", "MACs", "measured", "estimated", "error"):
        table.add_column(col, justify="left" if col in ("model", "dtype") else "right")
    for r in s.rows:
        table.add_row(
            r.model,
            r.dtype,
            fmt.count(r.macs),
            fmt.seconds(r.measured_s),
            fmt.seconds(r.estimated_s),
            f"{r.error:+.0%}",
        )
    console.print(table)
    console.print(
        f"median |error| {s.median_abs_error:.1%} · within ±10%: {s.within_10pct:.0%} · "
        f"within ±20%: {s.within_20pct:.0%} · Kendall τ {s.kendall_tau:.2f} "
        f"({s.measurements} measurements, {s.models} models)"
    )


def _render_check(c: CheckFidelity) -> None:
    table = Table(title=f"{c.target}: estimate vs published points (a check; nothing fitted)")
    for col in ("point", "unit", "published", "estimate at its clock", "error", "conf."):
        table.add_column(col, justify="left" if col in ("point", "unit") else "right")

    def value(metric: str, v: float) -> str:
        if metric == "throughput":
            return f"{v:,.4g}/s"
        return fmt.joules(v) if metric.startswith("energy") else fmt.seconds(v)

    for r in c.rows:
        table.add_row(
            r.id,
            r.unit,
            value(r.metric, r.published),
            value(r.metric, r.clock_scaled_estimate),
            f"{r.error:+.0%}",
            r.confidence,
        )
    console.print(table)
    console.print(c.method)

    def line(name: str, f: CheckFidelity | Figures) -> str:
        return (
            f"{name}: {f.points} points, median |error| {f.median_abs_error:.0%}, "
            f"max {f.max_abs_error:.0%}"
        )

    console.print(line("all", c))
    for conf, f in c.by_confidence.items():
        console.print(line(f"confidence {conf}", f))


def _si(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "throughput":
        return f"{value:,.1f}/s"
    return fmt.joules(value) if metric == "energy_per_inference" else fmt.seconds(value)


def _render_published(p: PublishedFidelity) -> None:
    table = Table(
        title=f"fidelity: {p.target} estimate vs published measurements "
        "(each predicted from a fit on the other runs)"
    )
    for col in (
        "#",
        "point",
        "scenario",
        "metric",
        "published",
        "estimate",
        "error",
        "datasheet",
        "conf",
    ):
        table.add_column(
            col,
            justify="left" if col in ("point", "scenario", "metric", "conf") else "right",
            overflow="fold",
        )
    for i, r in enumerate(p.rows, 1):
        scenario = r.scenario + (
            f" ×{r.batch}" if r.batch and r.scenario == "multi-stream" else ""
        )
        table.add_row(
            str(i),
            r.id,
            scenario,
            r.metric,
            _si(r.published, r.metric),
            _si(r.loo_estimate, r.metric),
            "-" if r.loo_error is None else f"{r.loo_error:+.0%}",
            _si(r.datasheet_estimate, r.metric),
            r.confidence,
        )
    console.print(table)
    for i, r in enumerate(p.rows, 1):
        console.print(
            f"  [{i}] {r.id}: {r.setting}; {r.model} {r.precision} · {r.source}",
            highlight=False,
        )
    if p.proxy:
        console.print(f"proxy: {p.proxy}")
    fit = p.fit
    median, worst = p.loo_median_abs_error, p.loo_max_abs_error
    figures = (
        "no point could be predicted from the others"
        if median is None
        else f"leave-one-run-out median |error| {median:.1%}, max {worst:.1%}"
    )
    console.print(
        f"{p.points} published points, {p.predicted} predicted from the others: "
        f"{figures}; {p.parameters} fitted parameters"
        + (
            ""
            if fit is None
            else f" (on all points: efficiency ×{fit.k_e:.2f}, kernel overhead "
            f"×{fit.k_o:.2f} of the target file's"
            + (
                f", active power {fit.power_w_at_1v:.3g} W × V² × clock / reference clock"
                if fit.power_w_at_1v
                else ""
            )
            + ")"
        )
    )
    if p.datasheet_median_abs_error is not None:
        console.print(
            "the target file alone (datasheet peaks × assumed efficiency, no fit) on the same "
            "latency "
            f"and throughput points: median |error| {p.datasheet_median_abs_error:.1%}, "
            "max "
            f"{p.datasheet_max_abs_error:.1%}"
        )
    missing = [r.id for r in p.rows if r.loo_estimate is None]
    if missing:
        console.print(
            f"not predicted (no other point of that metric to fit on): {', '.join(missing)}"
        )
    if p.written:
        console.print(f"wrote {p.written}")


RENDERERS: dict[str, Callable[[Any], None]] = {
    "host": render_host_summary,
    "zoo": render_summary,
    "published": _render_published,
    "check": _render_check,
}
