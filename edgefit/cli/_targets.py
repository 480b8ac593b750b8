"""`edgefit targets …`: list, show, validate, schema, export."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
import yaml
from rich.table import Table

from edgefit import _format as fmt
from edgefit._io import to_json, write_atomic
from edgefit._resources import data_dir
from edgefit._yaml import load_yaml
from edgefit.cli._common import JsonOpt, console, emit
from edgefit.errors import EdgefitError
from edgefit.targets import list_targets, load_target, load_target_file, target_json_schema

app = typer.Typer(
    help="Hardware target profiles: list, inspect, validate, export.", no_args_is_help=True
)


def _best_peak(target) -> str:
    best = max(
        ((p.value, d) for u in target.compute_units for d, p in u.peak_ops_per_s.items()),
        default=None,
    )
    return f"{fmt.rate(best[0])} {best[1]}" if best else "-"


@app.command("list")
def list_(
    pattern: Annotated[str, typer.Argument(help="Shell-style pattern on id or alias.")] = "*",
    as_json: JsonOpt = False,
) -> None:
    """List the shipped targets."""
    targets = list_targets(pattern)
    rows = [
        {
            "id": t.id,
            "aliases": t.aliases,
            "kind": t.kind,
            "name": t.name,
            "latency_budget_s": t.envelope.latency_budget_s.value,
        }
        for t in targets
    ]

    def render() -> None:
        table = Table(
            title="edgefit targets (peaks and budgets from datasheets or stated estimates)"
        )
        for col in ("id", "aliases", "kind", "name", "peak (dense)", "latency budget"):
            table.add_column(col)
        for t in targets:
            table.add_row(
                t.id,
                ", ".join(t.aliases),
                t.kind,
                t.name,
                _best_peak(t),
                f"{fmt.seconds(t.envelope.latency_budget_s.value)} "
                f"p{t.envelope.latency_percentile:g}",
            )
        console.print(table)

    emit(rows, as_json, render)


def _document(target) -> dict:
    return target.model_dump(mode="json", exclude_none=True)


def _published_summary(target) -> dict:
    """What published measurements back ``target``'s estimates, read from
    profiles/<id>/published.yaml and the fit `edgefit fidelity --update` stores beside it (display
    only: `edgefit fidelity` validates them; the estimator module is not imported, so `targets
    show` stays fast)."""

    folder = data_dir("profiles") / target.id
    points = folder / "published.yaml"
    if not points.is_file():
        return {
            "points": 0,
            "backed": [],
            "summary": "no published measurements: estimates are datasheet-only "
            "(±50%) unless a calibration profile applies",
        }
    data, _ = load_yaml(points)
    n, proxy = len(data.get("points") or []), data.get("proxy")
    if proxy:
        profiles = [folder / f"{rt}.yaml" for rt in target.runtimes]
        own = next((p for p in profiles if p.is_file()), None)
        basis = (
            f"its estimate is calibrated by profiles/{target.id}/{own.name}"
            if own
            else "datasheet-only (±50%)"
        )
        return {
            "points": n,
            "proxy": proxy,
            "backed": [],
            "file": str(points),
            "summary": f"{n} proxy points from another device ({proxy}); they judge the estimate "
            f"(`edgefit fidelity --target {target.id}`) and never calibrate it: {basis}",
        }
    fit_path = folder / "published.fit.yaml"
    fit = load_yaml(fit_path)[0] if fit_path.is_file() else {}
    modes, precisions = fit.get("modes") or {}, list(fit.get("precisions") or [])
    backed = [f"{m} {p} {_batches(spec)}" for m, spec in sorted(modes.items()) for p in precisions]
    loo = (
        f"leave-one-run-out median {fit['loo_median_abs_error']:.0%}, max "
        f"{fit['loo_max_abs_error']:.0%}"
        if fit
        else "no stored fit"
    )
    summary = (
        f"{n} published points ({loo}); estimates calibrated on them: {', '.join(backed)}; every "
        "other "
        "mode, precision and batch: datasheet (±50%)"
        if backed
        else f"{n} published points ({loo}); none in a power mode, so every estimate stays "
        "datasheet (±50%)"
    )
    return {"points": n, "backed": backed, "file": str(points), "summary": summary}


def _batches(mode: dict) -> str:
    """The batches a stored fit's mode spans, as ModeClocks.batches() says them (no import)."""
    lo, hi = int(mode.get("min_batch", 1)), mode.get("max_batch", 1)
    if hi is None:
        return f"batch >= {lo}" if lo > 1 else "any batch"
    return f"batch {lo}" if int(hi) == lo else f"batch {lo}-{hi}"


@app.command()
def show(
    target: Annotated[str, typer.Argument(help="Target id, alias or YAML path.")],
    as_json: JsonOpt = False,
) -> None:
    """Show one target: compute, memory, energy, power modes, envelope, certification loop."""
    t = load_target(target)

    def render() -> None:
        console.print(
            f"[bold]{t.name}[/] ({t.id}; aliases: {', '.join(t.aliases) or '-'}) — {t.kind}"
        )
        if t.description:
            console.print(t.description)
        table = Table(title="compute units: dense peak")
        for col in ("unit", "dtype", "peak", "provenance"):
            table.add_column(col, overflow="fold")
        for u in t.compute_units:
            for dtype, peak in u.peak_ops_per_s.items():
                table.add_row(u.name, dtype, fmt.rate(peak.value), peak.provenance)
        console.print(table)
        mem = Table(title="memory levels")
        for col in ("level", "kind", "capacity", "bandwidth", "energy", "holds"):
            mem.add_column(col)
        for m in t.memory_levels:
            mem.add_row(
                m.name,
                m.kind,
                fmt.nbytes(m.capacity_bytes.value),
                fmt.rate(m.bandwidth_bytes_per_s.value, "B/s"),
                f"{m.energy_pj_per_byte.value:g} pJ/B",
                ", ".join(m.holds),
            )
        console.print(mem)
        if t.power_modes:
            console.print(
                "power modes: "
                + ", ".join(
                    f"{p.name} ({fmt.watts(p.power_w.value)})"
                    + (" \\[default]" if p.name == t.default_power_mode else "")
                    for p in t.power_modes
                )
            )
        e = t.envelope
        parts = [f"latency ≤ {fmt.seconds(e.latency_budget_s.value)} at p{e.latency_percentile:g}"]
        if e.jitter_s:
            parts.append(f"jitter ≤ {fmt.seconds(e.jitter_s.value)}")
        parts += [f"{k} ≤ {fmt.nbytes(v.value)}" for k, v in e.memory_bytes.items()]
        if e.average_power_w:
            parts.append(f"average power ≤ {fmt.watts(e.average_power_w.value)}")
        if e.energy_per_inference_j:
            parts.append(f"energy ≤ {fmt.joules(e.energy_per_inference_j.value)}/inference")
        if e.inference_rate_hz:
            parts.append(f"at {e.inference_rate_hz.value:g} inferences/s")
        console.print("envelope: " + "; ".join(parts))
        c = t.certification
        console.print(
            f"certification loop: {c.name}: {c.days_per_change.value:g} days and "
            f"${c.cost_usd_per_change.value:,.0f} per change ({c.days_per_change.provenance}); "
            f"triggered by {', '.join(c.triggers) or 'no change (no loop)'}"
        )
        console.print(f"published measurements: {published['summary']}")

    published = _published_summary(t)
    emit({**_document(t), "published_measurements": published}, as_json, render)


@app.command()
def validate(
    files: Annotated[list[Path], typer.Argument(help="Target YAML files.")],
    as_json: JsonOpt = False,
) -> None:
    """Validate target YAML files; the first problem is reported with file, line and field."""
    results = [{"file": str(f), "id": load_target_file(f).id, "valid": True} for f in files]

    def render() -> None:
        for r in results:
            console.print(f"{r['file']}: valid ({r['id']})")

    emit(results, as_json, render)


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """Print the JSON Schema of a target file (draft 2020-12)."""
    text = to_json(target_json_schema()) + "\n"
    if out:
        write_atomic(out, text)
        console.print(f"wrote {out}")
    else:
        typer.echo(text, nl=False)


@app.command()
def export(
    target: Annotated[str, typer.Argument(help="Target id, alias or YAML path.")],
    format: Annotated[str, typer.Option("--format", "-f", help="json or yaml")] = "yaml",
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file.")] = None,
) -> None:
    """Export a validated target (host-cpu with this machine's probed figures) as JSON or YAML."""
    doc = _document(load_target(target))
    if format not in ("json", "yaml"):
        raise EdgefitError(f"unknown format '{format}'", where="--format", fix="use json or yaml")
    text = (
        to_json(doc) + "\n"
        if format == "json"
        else yaml.safe_dump(doc, sort_keys=False, width=120)
    )
    if out:
        write_atomic(out, text)
        console.print(f"wrote {out}")
    else:
        typer.echo(text, nl=False)
