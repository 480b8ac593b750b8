"""`edgefit check MODEL --target T [--baseline results.json] [--max-regression 5%]`: a CI gate.

Exit codes: 0 the model fits the envelope and did not regress; 1 a constraint is exceeded or the
latency regressed beyond --max-regression; 2 bad input (unknown target, missing file, bad option).
One line per finding on stdout, in GitHub Actions' annotation format (``::error title=…::message``)
or plain (``--format plain``); ``--json`` prints everything as one JSON object instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import edgefit
from edgefit._units import parse_duration
from edgefit.cli._common import (
    ExampleOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    QuietOpt,
    emit,
    err_console,
)
from edgefit.errors import EdgefitError

FORMATS = ("github", "plain")


def check(
    model: ModelArg = None,
    example: ExampleOpt = None,
    input_shape: InputShapeOpt = None,
    target: Annotated[
        str, typer.Option("--target", "-t", help="Target id, alias or YAML path.")
    ] = "host-cpu",
    power_mode: Annotated[
        str | None, typer.Option("--power-mode", help="A power mode of the target.")
    ] = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="results.json of an earlier run: fail when "
            "latency regressed against the model it chose.",
        ),
    ] = None,
    max_regression: Annotated[
        str,
        typer.Option(
            "--max-regression", help="Latency increase allowed vs --baseline: 5% or 0.05."
        ),
    ] = "5%",
    compare: Annotated[
        str,
        typer.Option(
            "--compare",
            help="auto (measured when both sides were measured, else "
            "estimated), measured, or estimate.",
        ),
    ] = "auto",
    latency_budget: Annotated[
        str | None,
        typer.Option(
            "--latency-budget",
            help="Override the target's latency budget: 10ms, 500us, 0.01 (seconds).",
        ),
    ] = None,
    measure: Annotated[
        bool | None,
        typer.Option(
            "--measure/--no-measure",
            help="Measure with onnxruntime (default: on host-cpu only).",
            show_default=False,
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="Intra-op threads for the measurement.")
    ] = 1,
    record: Annotated[
        bool,
        typer.Option(
            help="Keep the measurement, the model profiled once more after it, for `edgefit "
            "calibrate --refit` (<cache>/measured/).",
        ),
    ] = True,
    fmt: Annotated[
        str, typer.Option("--format", help="github (::error annotations) or plain.")
    ] = "github",
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    # the first line is `edgefit --help`'s listing, word for word (cli/_app.py): one line
    """Check a model against a target's envelope (and a baseline run) with CI exit codes: 0 pass, 1 fail, 2 usage."""  # noqa: E501
    if fmt not in FORMATS:
        raise EdgefitError(
            f"unknown format '{fmt}'", where="--format", fix=f"use one of {', '.join(FORMATS)}"
        )
    budget = _seconds(latency_budget) if latency_budget is not None else None
    if model is not None and example is not None:
        raise EdgefitError(
            "give either MODEL or --example, not both", where="MODEL", fix="drop one of them"
        )
    status = None if (quiet or as_json) else err_console.status("loading the model")
    if status:
        status.start()
    try:
        outcome = edgefit.check(
            model if model is not None else example,
            target,
            input_shape=input_shape,
            power_mode=power_mode,
            baseline=baseline,
            max_regression=max_regression,
            compare=compare,
            latency_budget_s=budget,
            measure=measure,
            threads=threads,
            record=record,
            progress=(lambda label: status.update(label)) if status else None,
        )
    finally:
        if status:
            status.stop()

    def render() -> None:
        for f in outcome.findings:
            typer.echo(f.annotation(fmt))
        typer.echo(outcome.summary())

    emit(outcome.to_dict(), as_json, render)
    if outcome.exit_code:
        raise typer.Exit(outcome.exit_code)


def _seconds(text: str) -> float:
    """``10ms`` → 0.01; also ``us``/``µs``, ``s``, ``min`` and plain seconds."""
    return parse_duration(text, where="--latency-budget", what="latency budget")
