"""`edgefit estimate MODEL --target T`: latency, energy, memory and power with an envelope
verdict."""

from __future__ import annotations

from collections.abc import Container
from typing import Annotated

import typer
from rich.table import Table

import edgefit
from edgefit import _format as fmt
from edgefit.cli._common import (
    ExampleOpt,
    InputShapeOpt,
    JsonOpt,
    ModelArg,
    console,
    emit,
    err_console,
)
from edgefit.errors import EdgefitError

_UNITS = {"s": fmt.seconds, "B": fmt.nbytes, "W": fmt.watts, "J": fmt.joules}


def estimate(
    model: ModelArg = None,
    example: ExampleOpt = None,
    input_shape: InputShapeOpt = None,
    target: Annotated[
        list[str],
        typer.Option("--target", "-t", help="Target id, alias, YAML path, or 'all'. Repeatable."),
    ] = ["host-cpu"],  # noqa: B006
    power_mode: Annotated[
        str | None, typer.Option("--power-mode", help="A power mode of the target (e.g. 15W).")
    ] = None,
    batch: Annotated[
        int,
        typer.Option(
            "--batch",
            help="Samples per call (times the model's own batch): latency is one call's, energy "
            "one sample's.",
        ),
    ] = 1,
    dtype: Annotated[
        str | None,
        typer.Option(
            "--dtype",
            help="Run every weight-bearing layer in this dtype: fp32, fp16, bf16, int8, int4, "
            "fp8.",
        ),
    ] = None,
    runtime: Annotated[
        str | None, typer.Option("--runtime", help="Use this runtime's calibration profile.")
    ] = None,
    top: Annotated[int, typer.Option(help="Bottleneck kernels to list.")] = 5,
    threads: Annotated[
        int, typer.Option("--threads", help="Intra-op threads the model will run with (host-cpu).")
    ] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Estimate a model on one or more targets (datasheet or calibrated, with error bars)."""
    if model is not None and example is not None:
        raise EdgefitError(
            "give either MODEL or --example, not both", where="MODEL", fix="drop one of them"
        )
    result = edgefit.estimate_model(
        model if model is not None else example,
        target,
        input_shape=input_shape,
        power_mode=power_mode,
        batch=batch,
        dtype=dtype,
        runtime=runtime,
        threads=threads,
    )

    def render() -> None:
        # what model intake noticed is every target's warning: said once, after the targets
        for r in result.estimates:
            _render(r, top, said_after=result.warnings)
        for w in result.warnings:
            err_console.print(f"warning: {w}")

    emit(result.to_dict(), as_json, render)


def _render_dla(dla: dict) -> None:
    """Which layers the DLA can run and which fall back to the GPU, with the rule's reason."""
    console.print(
        f"DLA (if built for it with GPU fallback): {dla['dla']} of {dla['layers']} layers on the "
        f"DLA, {dla['gpu_fallback']} fall back to the GPU [dim](rules: {dla['rules']})[/]"
    )
    for reason, count in sorted(dla["fallback_reasons"].items(), key=lambda kv: -kv[1])[:5]:
        names = [
            p["layer"]
            for p in dla["placements"]
            if p["unit"] == "gpu fallback" and p["reason"] == reason
        ]
        shown = ", ".join(names[:3]) + (f" … (+{len(names) - 3})" if len(names) > 3 else "")
        console.print(f"  gpu fallback ×{count}: {reason} [dim]({shown})[/]")


def _render(r, top: int, said_after: Container[str] = ()) -> None:
    mode = f", power mode {r.power_mode}" if r.power_mode else ""
    batch = f", batch {r.batch}" if r.batch > 1 else ""
    console.rule(f"[bold]{r.target}[/]{mode}{batch} — {r.plan.dtype}")
    err = f"±{r.error:.0%}"
    console.print(f"[dim]source: {r.source_detail}[/]")
    console.print(
        f"latency {fmt.seconds(r.latency_s)} {err} (estimated, {r.source}) · energy "
        f"{fmt.joules(r.energy_j)}/inference "
        f"{err} · average power {fmt.watts(r.average_power_w)} while running"
        + (
            f" · {fmt.watts(r.power_at_rate_w)} at {r.inference_rate_hz:g} inferences/s"
            if r.power_at_rate_w is not None
            else ""
        )
    )
    if r.power_scope:
        console.print(f"[dim]power and energy: {r.power_scope}[/]")
    if r.dla is not None:
        _render_dla(r.dla)
    if r.batch > 1:
        console.print(
            f"batch {r.batch}: latency is one call of {r.batch} samples · throughput "
            f"{r.throughput_per_s:,.1f} samples/s (estimated, {r.source})"
        )
    console.print(
        f"weights {fmt.nbytes(r.weight_bytes)} in {r.weight_level} · peak activations "
        f"{fmt.nbytes(r.peak_activation_bytes)} in {r.activation_level} (counted)"
    )
    table = Table(title="top bottleneck kernels (estimated)")
    for col in ("kernel", "class", "dtype", "unit", "latency", "share", "bound", "MACs"):
        table.add_column(col, justify="right" if col in ("latency", "share", "MACs") else "left")
    for k in r.bottlenecks(top):
        table.add_row(
            k.name,
            k.kclass,
            k.dtype,
            k.unit,
            fmt.seconds(k.latency_s),
            f"{k.latency_s / r.latency_s:.0%}",
            k.bound,
            fmt.count(k.macs),
        )
    console.print(table)
    verdict = Table(title="envelope verdict")
    for col in ("constraint", "limit", "estimate", "verdict"):
        verdict.add_column(col)
    for c in r.checks:
        show = _UNITS[c.unit]
        if c.fits:
            word = "[green]fits[/]" + ("" if c.certain else " (within the error bar)")
        else:
            word = f"[red]exceeds by {-c.margin:.0%}[/]" if c.limit else "[red]exceeds[/]"
        verdict.add_row(c.constraint, show(c.limit), show(c.value), word)
    console.print(verdict)
    for w in r.warnings:
        if w not in said_after:
            err_console.print(f"warning: {w}")
