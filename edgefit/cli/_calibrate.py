"""`edgefit calibrate`: fit a profile on this machine (or the target's Ray node), then check it on
the model zoo.

The work is :func:`edgefit.calibrate_target`; this module parses the options, shows progress and
prints the result (the fidelity tables are :mod:`edgefit.cli._fidelity`'s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

import edgefit
from edgefit.cli._common import (
    ExecutorOpt,
    JsonOpt,
    QuietOpt,
    RayAddressOpt,
    console,
    emit,
    err_console,
)
from edgefit.cli._fidelity import (
    RuntimeOpt,
    TargetOpt,
    progress_bar,
    render_host_summary,
    render_summary,
)

ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="Intra-op threads (default: all usable cores).")
]


MethodOpt = Annotated[
    str,
    typer.Option(
        "--method",
        help="learned: time every kernel of random networks in-network and learn their costs "
        "(host-cpu "
        "with onnxruntime); catalog: the per-class kernel sweep (every other target). auto picks.",
    ),
]


def calibrate(
    target: TargetOpt = "host-cpu",
    runtime: RuntimeOpt = "onnxruntime",
    budget: Annotated[
        str, typer.Option("--budget", help="Time for the kernel sweep: 300s, 5m (minutes), 1h.")
    ] = "5m",
    method: MethodOpt = "auto",
    quick: Annotated[
        bool,
        typer.Option("--quick", help="learned: a small corpus, a usable profile in about 90 s."),
    ] = False,
    networks: Annotated[
        int | None,
        typer.Option(
            "--networks",
            help="learned: corpus networks to profile (default 150; 16 with --quick).",
        ),
    ] = None,
    adaptive_rounds: Annotated[
        int,
        typer.Option(
            "--adaptive-rounds",
            min=0,
            help="learned: rounds of extra networks focused on the kernel ops the first fit "
            "predicts worst (default 1; none with --quick).",
        ),
    ] = 1,
    refit: Annotated[
        bool,
        typer.Option(
            "--refit",
            help="learned: fit again from the kernel timings stored beside the profile; measure "
            "nothing.",
        ),
    ] = False,
    threads: ThreadsOpt = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Profile path (default: profiles/<target>/<runtime>.yaml)."
        ),
    ] = None,
    fidelity: Annotated[
        bool, typer.Option("--fidelity/--no-fidelity", help="Then check it on the model zoo.")
    ] = True,
    executor: ExecutorOpt = "local",
    ray_address: RayAddressOpt = None,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Measure the kernel catalog on a runtime, fit efficiencies, write the profile.

    Here, or on the target's Ray farm node (--executor ray); fidelity is checked unless
    --no-fidelity.
    """
    quiet = quiet or as_json
    bar, progress = progress_bar(quiet)
    if executor == "ray":  # no bar: the sweep runs elsewhere; say where, once
        bar, progress = None, (None if quiet else _say_once())
    try:
        result = edgefit.calibrate_target(
            target,
            runtime,
            budget=budget,
            method=method,
            quick=quick,
            networks=networks,
            adaptive_rounds=adaptive_rounds,
            refit=refit,
            threads=threads,
            out=out,
            fidelity=fidelity,
            executor=executor,
            ray_address=ray_address,
            progress=progress,
        )
    finally:
        if bar is not None and bar.live.is_started:
            bar.stop()
    emit(result.to_dict(), as_json, lambda: _render(result, runtime))


def _say_once():
    """A progress callback that prints its first label to stderr and nothing after."""
    said: list[str] = []

    def say(label: str, done: int, total: int) -> None:
        if not said:
            said.append(label)
            err_console.print(label)

    return say


def _render(result, runtime: str) -> None:
    profile, summary = result.profile, result.fidelity
    if result.method == "learned":
        cv = profile.training["cv"]
        console.print(
            f"wrote {profile.path}: {profile.training['kernels']} kernels timed in "
            f"{profile.training['networks']} random networks on {profile.fingerprint.describe()} "
            f"at {', '.join(map(str, profile.threads))} thread(s); cross-validated by network: "
            f"median |error| {cv['median_abs_error']:.1%}, {cv['within_10pct']:.0%} within ±10%"
        )
        adaptive = profile.training.get("adaptive") or {}
        if adaptive:
            console.print(
                "adaptive sampling: "
                + ", ".join(f"{n} networks for {op}" for op, n in adaptive.items())
                + " (the kernel ops the first fit predicted worst)"
            )
        disturbed = profile.training.get("disturbed") or {}
        if disturbed.get("runs"):
            what = (
                "left out of the fit"
                if disturbed.get("excluded")
                else "kept: they are half or more, so the profile describes a busy machine"
            )
            err_console.print(
                f"warning: {disturbed['runs']} network timings were taken on a disturbed machine, "
                f"through every retry ({disturbed.get('rule', '')}; {what})"
            )
        if summary:
            render_host_summary(summary)
        return
    r = profile.residual
    where = (
        f"on node {result.measured_on} (Ray)"
        if result.measured_on is not None
        else f"{profile.environment.get('runtime_version')} "
        f"({profile.environment.get('threads')} threads)"
    )
    console.print(
        f"wrote {result.path}: {r['kernels_measured']} kernels measured on {runtime} {where}; "
        f"fit median |error| {r['median_abs_error']:.1%}, {r['within_20pct']:.0%} within ±20%"
    )
    if summary:
        render_summary(summary)
