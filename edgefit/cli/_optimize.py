"""`edgefit optimize [MODEL] --target T`: search quantization, pruning and architecture swaps under
the target's envelope; write results.json, report.md and the chosen model.

Exit codes: 0 a candidate was chosen; 2 bad input; 3 nothing met the accuracy floor and the
envelope (results.json still written, the best candidate named); 130 interrupted before any
candidate finished.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import edgefit
from edgefit import _format as fmt
from edgefit.calibrate._report import parse_duration
from edgefit.cli._common import (
    ExampleOpt,
    ExecutorOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    QuietOpt,
    RayAddressOpt,
    console,
    emit,
    err_console,
)
from edgefit.errors import EdgefitError
from edgefit.iteration import parse_deadline
from edgefit.records import DoneCandidate
from edgefit.search import OptimizeConfig
from edgefit.search._config import ThreadsWarning, parse_threads, threads_note
from edgefit.search._outcome import OptimizeResult, ThreadsResult


def _drop(text: str, *, allow_db: bool = False) -> tuple[float, bool]:
    raw = text.strip()
    try:
        value = float(raw.rstrip("%")) / (100 if raw.endswith("%") else 1)
    except ValueError:
        value = -1.0
    if not (0 <= value < 1 or (allow_db and value >= 0 and not raw.endswith("%"))):
        raise EdgefitError(
            f"cannot use max drop '{text}'",
            where="--max-drop",
            fix="give an absolute drop like 0.01, or a relative one like 1%",
        )
    return value, raw.endswith("%")


def optimize(
    model: ModelArg = None,
    example: ExampleOpt = None,
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target id, alias or YAML path.")
    ] = "host-cpu",
    factory: Annotated[
        str | None,
        typer.Option(
            "--factory",
            help="module:function building the model from knobs (width, depth, resolution, "
            "activation).",
        ),
    ] = None,
    input_shape: InputShapeOpt = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="Evaluation .npz (x, optional y labels).")
    ] = None,
    train_data: Annotated[
        Path | None,
        typer.Option("--train-data", help="Training .npz (x, y) for recovery fine-tuning."),
    ] = None,
    metric: Annotated[
        str,
        typer.Option(
            "--metric",
            help="auto (top-1 with labels, else top-1 agreement), top1, agreement, or sqnr (dB vs "
            "the original; for non-classifiers).",
        ),
    ] = "auto",
    max_drop: Annotated[
        str,
        typer.Option(
            "--max-drop",
            help="Accuracy drop allowed: 0.01 (absolute) or 1% (relative); in dB for --metric "
            "sqnr.",
        ),
    ] = "0.01",
    select: Annotated[
        str,
        typer.Option(
            "--select", help="latency (fastest within the floor), accuracy, or deadline."
        ),
    ] = "latency",
    budget: Annotated[
        str | None,
        typer.Option("--budget", help="Stop starting candidates after this long: 10m, 600s."),
    ] = None,
    trials: Annotated[
        int | None, typer.Option("--trials", help="Materialize at most this many candidates.")
    ] = None,
    power_mode: Annotated[
        str | None, typer.Option("--power-mode", help="A power mode of the target.")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output folder (default edgefit-out/<target>)."),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option("--storage", help="optuna storage URL (default SQLite in --out)."),
    ] = None,
    threads: Annotated[
        str | None,
        typer.Option(
            "--threads",
            help="Deployment threads, measured and optimized for: 2, or a list 1,2 (one run per "
            "count, each in OUT/threads-N, summary in OUT/threads.json). Default: the target's "
            "deployment_threads, else 1.",
            show_default=False,
        ),
    ] = None,
    deadline: Annotated[
        str, typer.Option("--deadline", help="Deadline for the iteration tax: 26w, 6mo, 180d.")
    ] = "26w",
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    ray_retries: Annotated[
        int,
        typer.Option(
            "--ray-retries",
            min=0,
            help="With --executor ray: run a task again this many times when its worker or node "
            "is lost.",
        ),
    ] = 2,
    export: Annotated[
        bool,
        typer.Option(
            "--export/--no-export",
            help="Convert the winner to the target's native formats (OUT/export/); "
            "--no-export writes model.onnx only.",
        ),
    ] = True,
    record: Annotated[
        bool,
        typer.Option(
            help="host-cpu: keep the final pick's timings, each model profiled once more "
            "after them, for `edgefit calibrate --refit` (<cache>/measured/).",
        ),
    ] = True,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Find the variant of a model that fits a target's envelope with the least accuracy lost.

    With no MODEL, runs on the built-in digits classifier (trained on real data)."""
    drop, relative = _drop(max_drop, allow_db=metric == "sqnr")
    config = OptimizeConfig(
        target=target,
        out_dir=out,
        power_mode=power_mode,
        budget_s=parse_duration(budget, where="--budget") if budget else None,
        trials=trials,
        max_drop=drop,
        relative_drop=relative,
        select=select,
        storage=storage,
        thread_list=parse_threads(threads) if threads is not None else (),
        metric=metric,
        deadline_days=parse_deadline(deadline),
        executor=executor,
        ray_address=ray_address,
        ray_retries=ray_retries,
        export=export,
        record=record,
    )
    if sum(x is not None for x in (model, example, factory)) > 1:
        raise EdgefitError(
            "give one of MODEL, --example or --factory", where="MODEL", fix="drop the others"
        )
    bar = None if (quiet or as_json) else _Bar()
    try:
        with warnings.catch_warnings():  # a thread-count warning: one line now, before the work
            warnings.simplefilter("always", ThreadsWarning)
            warnings.showwarning = _warning_lines(warnings.showwarning)
            result = edgefit.optimize(
                model if model is not None else factory or example,
                data=data,
                train_data=train_data,
                input_shape=input_shape,
                config=config,
                progress=bar,
            )
    finally:
        if bar:
            bar.close()
    if isinstance(result, ThreadsResult):
        _finish_threads(result, as_json)
        return
    files = dict(result.files)
    emit({**result.to_dict(), "files": files}, as_json, lambda: _render_result(result))
    if not result.ok:
        best = result.best_found
        err_console.print(
            f"edgefit: no candidate qualified: {result.selection.reason}; best found: "
            f"{best.label if best else 'none'} (see {files['results']})"
        )
        raise typer.Exit(result.exit_code)


def _warning_lines(previous: Callable[..., None]) -> Callable[..., None]:
    """``warnings.showwarning`` that prints a ThreadsWarning as the CLI's one ``warning:`` line
    and hands any other warning to ``previous``."""

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, ThreadsWarning):
            err_console.print(f"warning: {message}", soft_wrap=True, markup=False)
        else:
            previous(message, category, filename, lineno, file, line)

    return show


def _finish_threads(result: ThreadsResult, as_json: bool) -> None:
    """Print a several-thread-count run (the summary, or its JSON) and exit with its code."""
    summary = {**result.to_dict(), "files": dict(result.files)}
    emit(summary, as_json, lambda: _render_threads(result))
    if not result.ok:
        why = "interrupted" if result.interrupted else "no candidate qualified at some counts"
        err_console.print(f"edgefit: {why} (see {result.files['threads']})")
        raise typer.Exit(result.exit_code)


def _render_threads(result: ThreadsResult) -> None:
    table = Table(title=f"{result.target_id}: the pick per deployment thread count")
    for col in ("threads", "chosen", "p50", "accuracy", "folder"):
        table.add_column(col, overflow="fold")
    for n, r in result.runs.items():
        c = r.chosen
        if c is None:
            table.add_row(str(n), f"[red]none qualified[/]: {r.selection.reason[:60]}", "", "", "")
            continue
        final = f", final {fmt.seconds(c.final_median_s)}" if c.final_median_s else ""
        table.add_row(
            str(n),
            c.label,
            f"{fmt.seconds(c.p50_s)} ({c.latency_source}{final})" if c.p50_s else "",
            f"{c.accuracy:.4f} (baseline {r.baseline_accuracy:.4f})" if c.accuracy else "",
            f"threads-{n}/",
        )
    for n in result.not_started:
        table.add_row(str(n), "[yellow]not finished[/]", "", "", f"threads-{n}/")
    console.print(table)
    console.print(threads_note(result.threads, result.threads_from, result.target_id))
    for note in result.notes:
        console.print(f"[dim]{note}[/]")
    console.print(
        f"wrote {result.files['threads']}; each count's run (results.json, model, reports) in "
        "its threads-N folder"
    )


class _Bar:
    """The search's progress on stderr; :func:`edgefit.optimize` closes it when the search ends,
    before the leaders are re-measured (its refresh thread would share the CPU with the timing)."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self.task = self.progress.add_task("screening", total=1)
        self.progress.start()
        self.running = True

    def __call__(self, label: str, i: int, n: int) -> None:
        if not self.running:  # the next thread count's search (--threads 1,2)
            self.progress.start()
            self.running = True
        self.progress.update(self.task, description=label[:50], completed=i, total=max(n, 1))

    def close(self) -> None:
        if self.running:
            self.progress.stop()
            self.running = False


def _short_latency(c: DoneCandidate) -> str:
    lat = c.latency
    if lat.source == "measured":
        return f"{fmt.seconds(lat.p50_s)} p50 (measured)"
    return f"{fmt.seconds(lat.p50_s)} ±{lat.error:.0%} (est., {lat.estimate_source})"


def _render_result(result: OptimizeResult) -> None:
    """The candidates table, the pick against the baseline and what was written, read from
    results.json's typed record."""
    res, files = result.record, dict(result.files)
    done = {c.key: c for c in res.candidates if isinstance(c, DoneCandidate)}
    label = {c.key: c.label for c in res.candidates}
    counts = res.counts
    table = Table(
        title=f"{res.model.name} on {res.target.id}: candidates "
        f"({counts.materialized} materialized, {counts.reused} reused, "
        f"{counts.screened} screened by estimate)"
    )
    for col in (
        "candidate",
        "accuracy",
        "latency",
        "energy (est.)",
        "fits",
        "frontier",
        "iteration",
    ):
        table.add_column(col, overflow="fold")
    sel = res.selection
    for c in sorted(
        res.candidates, key=lambda c: c.latency.p50_s if isinstance(c, DoneCandidate) else 1e9
    ):
        if not isinstance(c, DoneCandidate):
            table.add_row(c.label, f"[red]failed[/]: {c.error[:60]}", "", "", "", "", "")
            continue
        mark = "★" if c.key in res.frontier else ""
        if c.key == sel.winner:
            mark += " chosen"
        table.add_row(
            c.label,
            f"{c.accuracy.value:.4f}",
            _short_latency(c),
            fmt.joules(c.estimate.energy_j),
            "yes" if c.fits else "[red]no[/]",
            mark,
            f"{c.iteration.days:g} d, ${c.iteration.usd:,.0f}",
        )
    console.print(table)
    first = next(iter(done.values()), None)
    console.print(f"accuracy: {first.accuracy.label if first else ''} — {res.data.evaluation}")
    if sel.winner:
        w = done[sel.winner]
        base = done.get(res.baseline.key)
        final = w.latency.final is not None and base is not None and base.latency.final is not None

        def field(c: DoneCandidate) -> float:
            if final and c.latency.final is not None:
                return c.latency.final.median_s
            return c.latency.p50_s

        speed = field(base) / field(w) if base else float("nan")
        how = "final interleaved re-measurement" if final else w.latency.source
        console.print(
            f"[bold]chosen[/]: {w.label} — {w.accuracy.value:.4f} vs baseline "
            f"{res.baseline.accuracy:.4f} (floor {sel.accuracy_floor:.4f}), {speed:.2f}× faster "
            f"than the baseline ({how})"
        )
        for tie in sel.protocol.ties if sel.protocol else ():
            console.print(
                f"[dim]tie: {label[tie.key]} within {tie.difference:.1%} of "
                f"{label[tie.with_]} (noise {tie.noise:.1%}): the smaller change was chosen[/]"
            )
    for e in res.exports or ():  # free-form: one dict per export, as the exporter wrote it
        if e["status"] != "written":
            console.print(f"[dim]{e['runtime']} format not written: {e['reason']}[/]")
    cfg = res.config
    if cfg.threads is not None:
        console.print(threads_note(cfg.threads, cfg.threads_from or "user", res.target.id))
    for note in res.notes:
        console.print(f"[dim]{note}[/]")
    console.print("wrote " + ", ".join(files.values()))
