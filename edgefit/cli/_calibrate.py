"""`edgefit calibrate` and `edgefit fidelity`: fit a profile on this machine; check it on a model zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefit import _format as fmt
from edgefit.calibrate import calibrate as run
from edgefit.calibrate._report import check_fidelity, parse_duration
from edgefit.cli._common import ExecutorOpt, JsonOpt, QuietOpt, RayAddressOpt, console, emit, err_console
from edgefit.distributed import require_ray
from edgefit.distributed._remote import calibrate_on_device
from edgefit.errors import EdgefitError
from edgefit.estimate import find_profile, load_profile
from edgefit.estimate._profile import profile_path
from edgefit.targets import load_target

TargetOpt = Annotated[str, typer.Option("--target", "-t", help="Target to calibrate (measured here).")]
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", help="Runtime to measure with.")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", help="Intra-op threads (default: all usable cores).")]


def _progress(quiet: bool):
    if quiet:
        return None, None
    bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TimeElapsedColumn(), console=err_console, transient=True)
    task = bar.add_task("measuring", total=1)

    def update(label: str, i: int, n: int) -> None:
        bar.update(task, description=label[:48], completed=i, total=n)

    return bar, update


def calibrate(target: TargetOpt = "host-cpu", runtime: RuntimeOpt = "onnxruntime",
              budget: Annotated[str, typer.Option("--budget", help="Time for the kernel sweep: 300s, 5m, 1h.")] = "5m",
              threads: ThreadsOpt = None,
              out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Profile path (default: profiles/<target>/<runtime>.yaml).")] = None,
              fidelity: Annotated[bool, typer.Option("--fidelity/--no-fidelity", help="Then check it on the model zoo.")] = True,
              executor: ExecutorOpt = "local", ray_address: RayAddressOpt = None,
              quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Measure the kernel catalog on a runtime here (or on the target's Ray farm node), fit efficiencies,
    write the profile (and check fidelity)."""
    seconds = parse_duration(budget, where="--budget")
    if executor == "ray":
        _calibrate_on_ray(target, runtime, seconds, threads, out, fidelity, ray_address, quiet or as_json, as_json)
        return
    if executor != "local":
        raise EdgefitError(f"unknown executor '{executor}'", where="--executor", fix="use local or ray")
    bar, update = _progress(quiet or as_json)
    if bar:
        bar.start()
    try:
        profile = run(target, runtime, budget_s=seconds, threads=threads, out=out, progress=update)
        summary = check_fidelity(profile, update) if fidelity else None
    finally:
        if bar:
            bar.stop()
    payload = {"profile": profile.path, "residual": profile.residual, "fidelity": summary,
               "environment": profile.environment}

    def render() -> None:
        r = profile.residual
        console.print(f"wrote {profile.path}: {r['kernels_measured']} kernels measured on {runtime} "
                      f"{profile.environment.get('runtime_version')} ({profile.environment.get('threads')} threads); "
                      f"fit median |error| {r['median_abs_error']:.1%}, {r['within_20pct']:.0%} within ±20%")
        if summary:
            _render_summary(summary)

    emit(payload, as_json, render)


def _calibrate_on_ray(target: str, runtime: str, seconds: float, threads, out, fidelity: bool, address,
                      quiet: bool, as_json: bool) -> None:
    require_ray()
    t = load_target(target)
    path = Path(out) if out else profile_path(t.id, runtime)
    if not quiet:
        err_console.print(f"calibrating on the Ray node that serves device:{t.id} ({seconds:.0f} s of kernels) …")
    result = calibrate_on_device(t, runtime, budget_s=seconds, threads=threads, out=path, fidelity=fidelity,
                                 address=address)
    profile, summary = result["profile"], result["summary"]
    payload = {"profile": str(path), "residual": profile.residual, "fidelity": summary,
               "environment": profile.environment, "measured_on": result["host"], "files": result["files"]}

    def render() -> None:
        r = profile.residual
        console.print(f"wrote {path}: {r['kernels_measured']} kernels measured on {runtime} on node {result['host']} "
                      f"(Ray); fit median |error| {r['median_abs_error']:.1%}, {r['within_20pct']:.0%} within ±20%")
        if summary:
            _render_summary(summary)

    emit(payload, as_json, render)


def _render_summary(summary: dict) -> None:
    table = Table(title="fidelity: estimated (calibrated profile) vs measured latency")
    for col in ("model", "dtype", "MACs", "measured", "estimated", "error"):
        table.add_column(col, justify="left" if col in ("model", "dtype") else "right")
    for r in summary.get("rows", []):
        table.add_row(r["model"], r["dtype"], fmt.count(r["macs"]), fmt.seconds(r["measured_s"]),
                      fmt.seconds(r["estimated_s"]), f"{r['error']:+.0%}")
    console.print(table)
    console.print(f"median |error| {summary['median_abs_error']:.1%} · within ±10%: {summary['within_10pct']:.0%} · "
                  f"within ±20%: {summary['within_20pct']:.0%} · Kendall τ {summary['kendall_tau']:.2f} "
                  f"({summary['measurements']} measurements, {summary['models']} models)")


def fidelity(target: TargetOpt = "host-cpu", runtime: RuntimeOpt = "onnxruntime",
             profile: Annotated[Optional[Path], typer.Option("--profile", help="Profile to check (default: the shipped one).")] = None,
             quiet: QuietOpt = False, as_json: JsonOpt = False) -> None:
    """Estimate vs measured latency over the model zoo; stores the figures next to the profile."""
    prof = load_profile(profile) if profile else find_profile(load_target(target), runtime)
    if prof is None:
        raise EdgefitError(f"no calibration profile for {target} on {runtime}", where="--target",
                           fix=f"run `edgefit calibrate --target {target} --runtime {runtime}`")
    bar, update = _progress(quiet or as_json)
    if bar:
        bar.start()
    try:
        summary = check_fidelity(prof, update)
    finally:
        if bar:
            bar.stop()
    emit(summary, as_json, lambda: _render_summary(summary))
