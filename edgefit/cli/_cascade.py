"""`edgefit cascade`: plan a confidence-routed cascade of tiers (the library's
:func:`edgefit.cascade.cascade`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, cast

import typer
from rich.table import Table

from edgefit import _format as fmt
from edgefit._lazy import lazy_import
from edgefit._units import parse_duration, parse_energy, parse_fraction
from edgefit.cli._common import JsonOpt, console, emit, err_console
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    from edgefit import cascade as cascade_pkg
    from edgefit.cascade import _config, _example, _tiers
    from edgefit.cascade._types import OutputKind
else:  # the cascade brings numpy: loaded when the command runs, not for --help
    cascade_pkg, _config, _example, _tiers = lazy_import(
        "edgefit.cascade",
        "edgefit.cascade._config",
        "edgefit.cascade._example",
        "edgefit.cascade._tiers",
    )


def _objective(
    latency: str | None,
    cloud_share: str | None,
    energy: str | None,
    usd: float | None,
    floor: str | None,
):
    budgets = dict(
        latency_budget_s=None
        if latency is None
        else parse_duration(latency, where="--latency-budget", hi_s=_tiers.MAX_LATENCY_S),
        cloud_share_budget=None
        if cloud_share is None
        else parse_fraction(cloud_share, where="--cloud-share", what="cloud share"),
        energy_budget_j=None
        if energy is None
        else parse_energy(energy, where="--energy-budget", hi_j=_tiers.MAX_ENERGY_J),
        usd_per_1000_budget=usd,
    )
    if usd is not None and usd < 0:
        raise EdgefitError(
            f"cost budget {usd} is negative", where="--usd-per-1000", fix="e.g. 0.5"
        )
    if floor is not None:
        acc = parse_fraction(floor, where="--accuracy-floor", what="accuracy floor")
        return cascade_pkg.Objective("min-latency", accuracy_floor=acc, **budgets)
    if all(v is None for v in budgets.values()):
        raise EdgefitError(
            "no budget given: without one, the most accurate cascade sends everything to the last "
            "tier",
            where="edgefit cascade",
            fix="pass --latency-budget, --cloud-share, --energy-budget, --usd-per-1000 or "
            "--accuracy-floor",
        )
    return cascade_pkg.Objective("max-accuracy", **budgets)


def _output_kind(text: str | None) -> OutputKind | None:
    if text is None or text in ("logits", "probabilities"):
        return cast("OutputKind | None", text)
    raise EdgefitError(
        f"unknown output kind {text!r}", where="--outputs", fix="use logits or probabilities"
    )


def _splits(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(p) for p in text.split(","))
    except ValueError:
        raise EdgefitError(
            f"cannot read splits {text!r}",
            where="--splits",
            fix="three fractions: calibrate,select,report, e.g. 0.4,0.3,0.3",
        ) from None


def cascade(
    tier: Annotated[
        list[str] | None,
        typer.Option(
            "--tier",
            help="A tier, in routing order: MODEL.onnx@TARGET, RESULTS.json@TARGET (an optimize "
            "run's winner) or "
            "cloud:latency=800ms,usd=0.0004[,p99=1.2s][,model=M.onnx|,accuracy=0.99][,energy=2mJ].",
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data", help="Labelled data (.npz with x and y) none of the tiers trained on."
        ),
    ] = None,
    example: Annotated[
        str | None,
        typer.Option(
            "--example",
            "-e",
            help="A built-in cascade example: digits (two CNN tiers on the device, a CNN in the "
            "cloud).",
        ),
    ] = None,
    example_target: Annotated[
        str,
        typer.Option(
            "--example-target", help="With --example: the target of its on-device tiers."
        ),
    ] = "glasses",
    latency_budget: Annotated[
        str | None,
        typer.Option(
            "--latency-budget", help="Expected latency per request at most this (e.g. 100ms)."
        ),
    ] = None,
    cloud_share: Annotated[
        str | None,
        typer.Option(
            "--cloud-share", help="At most this share of requests reaches a cloud tier (e.g. 10%)."
        ),
    ] = None,
    energy_budget: Annotated[
        str | None,
        typer.Option(
            "--energy-budget", help="Expected device energy per request at most this (e.g. 5mJ)."
        ),
    ] = None,
    usd_per_1000: Annotated[
        float | None,
        typer.Option(
            "--usd-per-1000", help="Expected cost per 1,000 requests at most this many USD."
        ),
    ] = None,
    accuracy_floor: Annotated[
        str | None,
        typer.Option(
            "--accuracy-floor",
            help="Minimize expected latency at this accuracy or above (e.g. 0.98) instead of "
            "maximizing accuracy.",
        ),
    ] = None,
    splits: Annotated[
        str,
        typer.Option(
            "--splits",
            help="Fractions of the data to calibrate on, select thresholds on, and report on.",
        ),
    ] = "0.4,0.3,0.3",
    seed: Annotated[
        int,
        typer.Option(
            "--seed", help="Seed of the stratified split and the cross-validation folds."
        ),
    ] = 0,
    outputs: Annotated[
        str | None,
        typer.Option(
            "--outputs",
            help="What the models output: logits or probabilities (default: detected).",
        ),
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="Intra-op threads for tiers measured here (host-cpu).")
    ] = 1,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Folder for the calibrated models, config, report and model cards."
        ),
    ] = Path("edgefit-cascade"),
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the cascade config's JSON Schema and exit.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Plan a cascade of tiers: calibrate each, pick thresholds under a budget, write outputs.

    The outputs are a config, a report and a model card per tier.

    Exit codes: 0 planned; 2 bad input (one line says what, where, and how to fix it); 3 no
    threshold choice meets the budget (the line says how close the best comes).
    """
    if schema:
        emit(_config.config_schema(), True, lambda: None)
        return
    if outputs not in (None, "logits", "probabilities"):
        raise EdgefitError(
            f"unknown output kind '{outputs}'",
            where="--outputs",
            fix="use logits or probabilities",
        )
    if threads < 1:
        raise EdgefitError(
            f"threads must be at least 1, got {threads}", where="--threads", fix="pass --threads 1"
        )
    split = _splits(splits)
    if example is not None:
        if tier or data:
            raise EdgefitError(
                "--example brings its own tiers and data",
                where="--example",
                fix="drop --tier/--data, or drop --example",
            )
        if not as_json:
            err_console.print(
                f"building the '{example}' example (trains its models once, then cached) …"
            )
        ex = _example.build_example(example, example_target)
        tiers, data_in = list(ex.tiers), ex.data
        given = (latency_budget, cloud_share, energy_budget, usd_per_1000, accuracy_floor)
        objective = (
            ex.objective
            if all(v is None for v in given)
            else _objective(
                latency_budget, cloud_share, energy_budget, usd_per_1000, accuracy_floor
            )
        )
    else:
        if not tier or data is None:
            raise EdgefitError(
                "give the tiers and labelled data",
                where="edgefit cascade",
                fix="pass --tier … (twice or more) and --data eval.npz, or --example digits",
            )
        tiers, data_in = tier, data
        objective = _objective(
            latency_budget, cloud_share, energy_budget, usd_per_1000, accuracy_floor
        )
    command = "edgefit " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    status = None if as_json else err_console.status("planning the cascade …")
    if status:
        status.start()
    try:
        result = cascade_pkg.cascade(
            tiers,
            data_in,
            objective,
            splits=split,
            seed=seed,
            output_kind=_output_kind(outputs),
            threads=threads,
            out_dir=out,
            command=command,
            progress=(lambda msg: status.update(msg + " …")) if status else None,
        )
    finally:
        if status:
            status.stop()
    files = {"folder": str(out)}
    emit({**result.to_dict(), "files": files}, as_json, lambda: _render(result, out))


def _latency(q) -> str:
    bar = f" ±{q.interval:.0%}" if q.interval else ""
    kind = (
        "measured"
        if q.source.startswith("measured")
        else ("stated" if q.source.startswith("stated") else "est.")
    )
    return f"{fmt.seconds(q.value)}{bar} ({kind})"


def _render(result, out: Path) -> None:
    table = Table(
        title=f"cascade on {result.data_source} — report split ({result.reported.samples} "
        "samples, "
        f"thresholds chosen on {result.chosen.samples} others)"
    )
    for col in (
        "tier",
        "target",
        "threshold",
        "answers",
        "accuracy there",
        "alone",
        "latency p50",
        "ECE before → after",
    ):
        table.add_column(col, overflow="fold")
    for k, t in enumerate(result.tiers):
        acc = result.reported.tier_accuracy[k]
        cal = t.calibration
        table.add_row(
            t.spec.name,
            t.spec.target,
            "—" if t.threshold is None else f"{min(t.threshold, 1):.3f}",
            f"{result.reported.shares[k]:.1%}",
            "—" if acc is None else f"{acc:.2%}",
            f"{t.accuracy_alone:.2%}",
            _latency(t.cost.latency_p50),
            "stated accuracy"
            if cal is None
            else f"{cal.ece_before:.3f} → {cal.ece_after:.3f} ({cal.calibrator.method})",
        )
    console.print(table)
    rows = Table(title="cascade vs each tier alone (report split)")
    for col in (
        "",
        "accuracy",
        "expected latency",
        "p99 latency (bound)",
        "cloud share",
        "USD / 1,000",
    ):
        rows.add_column(col)
    for name, p in [
        ("cascade", result.reported),
        *((f"{t.spec.name} alone", a) for t, a in zip(result.tiers, result.alone)),
    ]:
        rows.add_row(
            name,
            f"{p.accuracy:.2%}",
            fmt.seconds(p.expected_latency_s),
            fmt.seconds(p.p99_latency_s),
            f"{p.cloud_share:.1%}",
            f"${p.usd_per_1000:.4g}",
        )
    console.print(rows)
    console.print(
        f"objective: {_config.objective_words(result.objective)}; on the select split the chosen "
        "thresholds scored "
        f"{result.chosen.accuracy:.2%} at {fmt.seconds(result.chosen.expected_latency_s)} expected"
    )
    console.print(
        f"wrote {out}/ (cascade-config.json, cascade.html, cascade.md, model-cards/, models/)"
    )
