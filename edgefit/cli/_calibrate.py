"""`edgefit calibrate` and `edgefit fidelity`: fit a profile on this machine; check it on a model
zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgefit import _format as fmt
from edgefit._units import parse_duration
from edgefit.calibrate import calibrate as run
from edgefit.calibrate._report import check_fidelity
from edgefit.cli._common import (
    ExecutorOpt,
    JsonOpt,
    QuietOpt,
    RayAddressOpt,
    console,
    emit,
    err_console,
)
from edgefit.distributed import require_ray
from edgefit.distributed._remote import calibrate_on_device
from edgefit.errors import EdgefitError
from edgefit.estimate import find_profile, load_profile
from edgefit.estimate._profile import profile_path
from edgefit.targets import load_target

TargetOpt = Annotated[
    str, typer.Option("--target", "-t", help="Target to calibrate (measured here).")
]
RuntimeOpt = Annotated[str, typer.Option("--runtime", "-r", help="Runtime to measure with.")]
ThreadsOpt = Annotated[
    int | None, typer.Option("--threads", help="Intra-op threads (default: all usable cores).")
]


def _progress(quiet: bool):
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
        bar.update(task, description=label[:48], completed=i, total=n)

    return bar, update


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
    seconds = parse_duration(budget, where="--budget")
    if method == "auto" and executor == "ray":
        method = "catalog"  # the farm node runs the catalog sweep; learned calibration runs here
    if _method(target, runtime, method) == "learned":
        if executor != "local":
            raise EdgefitError(
                "learned calibration runs here only", where="--executor", fix="drop --executor ray"
            )
        _calibrate_learned(
            target, networks, quick, threads, out, fidelity, quiet or as_json, as_json, refit
        )
        return
    if executor == "ray":
        _calibrate_on_ray(
            target,
            runtime,
            seconds,
            threads,
            out,
            fidelity,
            ray_address,
            quiet or as_json,
            as_json,
        )
        return
    if executor != "local":
        raise EdgefitError(
            f"unknown executor '{executor}'", where="--executor", fix="use local or ray"
        )
    bar, update = _progress(quiet or as_json)
    if bar:
        bar.start()
    try:
        profile = run(target, runtime, budget_s=seconds, threads=threads, out=out, progress=update)
        summary = check_fidelity(profile, update) if fidelity else None
    finally:
        if bar:
            bar.stop()
    payload = {
        "profile": profile.path,
        "residual": profile.residual,
        "fidelity": summary,
        "environment": profile.environment,
    }

    def render() -> None:
        r = profile.residual
        console.print(
            f"wrote {profile.path}: {r['kernels_measured']} kernels measured on {runtime} "
            f"{profile.environment.get('runtime_version')} ({profile.environment.get('threads')} "
            "threads); "
            f"fit median |error| {r['median_abs_error']:.1%}, {r['within_20pct']:.0%} within ±20%"
        )
        if summary:
            _render_summary(summary)

    emit(payload, as_json, render)


def _calibrate_on_ray(
    target: str,
    runtime: str,
    seconds: float,
    threads,
    out,
    fidelity: bool,
    address,
    quiet: bool,
    as_json: bool,
) -> None:
    require_ray()
    t = load_target(target)
    path = Path(out) if out else profile_path(t.id, runtime)
    if not quiet:
        err_console.print(
            f"calibrating on the Ray node that serves device:{t.id} ({seconds:.0f} s of kernels) …"
        )
    result = calibrate_on_device(
        t, runtime, budget_s=seconds, threads=threads, out=path, fidelity=fidelity, address=address
    )
    profile, summary = result["profile"], result["summary"]
    payload = {
        "profile": str(path),
        "residual": profile.residual,
        "fidelity": summary,
        "environment": profile.environment,
        "measured_on": result["host"],
        "files": result["files"],
    }

    def render() -> None:
        r = profile.residual
        console.print(
            f"wrote {path}: {r['kernels_measured']} kernels measured on {runtime} on node "
            f"{result['host']} "
            f"(Ray); fit median |error| {r['median_abs_error']:.1%}, {r['within_20pct']:.0%} "
            "within ±20%"
        )
        if summary:
            _render_summary(summary)

    emit(payload, as_json, render)


def _method(target: str, runtime: str, method: str) -> str:
    if method not in ("auto", "learned", "catalog"):
        raise EdgefitError(
            f"unknown method '{method}'", where="--method", fix="use auto, learned or catalog"
        )
    probe = load_target(target).probe
    if method == "learned" and not (probe and runtime == "onnxruntime"):
        raise EdgefitError(
            "learned calibration needs host-cpu and onnxruntime",
            where="--method",
            fix="use --method catalog for this target or runtime",
        )
    return (
        method
        if method != "auto"
        else ("learned" if probe and runtime == "onnxruntime" else "catalog")
    )


def _calibrate_learned(
    target: str,
    networks,
    quick: bool,
    threads,
    out,
    fidelity: bool,
    quiet: bool,
    as_json: bool,
    refit: bool = False,
) -> None:
    from edgefit._resources import user_cache_dir
    from edgefit.calibrate._learn import (
        QUICK,
        calibrate_learned,
        default_threads_list,
        refit_learned,
    )
    from edgefit.estimate._fingerprint import this_machine
    from edgefit.estimate._learned import learned_path

    threads_list = default_threads_list(threads)
    count = networks or (QUICK["networks"] if quick else 150)
    if count < 4:
        raise EdgefitError(
            f"--networks {count} is too few to cross-validate",
            where="--networks",
            fix="pass 4 or more",
        )
    bar, update = _progress(quiet)
    if bar:
        bar.start()
    try:
        if refit:
            profile = refit_learned(
                Path(out) if out else learned_path("host-cpu", "onnxruntime", this_machine())
            )
        else:
            profile = calibrate_learned(
                networks=count,
                threads_list=threads_list,
                out=out,
                quick=quick,
                cache=user_cache_dir() / "corpus",
                progress=update,
            )
        summary = _host_fidelity(profile, "ci", threads_list, update) if fidelity else None
    finally:
        if bar:
            bar.stop()
    payload = {
        "profile": profile.path,
        "fingerprint": profile.fingerprint.to_dict(),
        "training": profile.training,
        "intervals": {k: profile.interval(k) for k in profile.intervals},
        "fidelity": summary,
    }

    def render() -> None:
        cv = profile.training["cv"]
        console.print(
            f"wrote {profile.path}: {profile.training['kernels']} kernels timed in "
            f"{profile.training['networks']} random networks on {profile.fingerprint.describe()} "
            "at "
            f"{', '.join(map(str, profile.threads))} thread(s); cross-validated by network: "
            "median |error| "
            f"{cv['median_abs_error']:.1%}, {cv['within_10pct']:.0%} within ±10%"
        )
        if summary:
            _render_host_summary(summary)

    emit(payload, as_json, render)


def _host_fidelity(profile, subset: str | None, threads_list: tuple[int, ...], update) -> dict:
    from edgefit._io import to_json, write_atomic
    from edgefit._resources import user_cache_dir
    from edgefit.calibrate._host_fidelity import rows_to_dicts, run_zoo, summarize_host
    from edgefit.calibrate._zoo import zoo_specs
    from edgefit.estimate._learned import fidelity_path

    rows = run_zoo(
        profile,
        user_cache_dir() / "zoo",
        specs=zoo_specs(subset),
        threads_list=threads_list,
        progress=update,
    )
    summary = {
        **summarize_host(rows),
        "subset": subset or "all",
        "profile": profile.path,
        "fingerprint": profile.fingerprint.to_dict(),
        "rows": rows_to_dicts(rows),
    }
    write_atomic(fidelity_path(profile), to_json(summary))
    return summary


def _render_host_summary(summary: dict) -> None:
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
    for r in summary["rows"]:
        table.add_row(
            r["model"],
            r["family"],
            r["recipe"],
            str(r["threads"]),
            fmt.seconds(r["measured_s"]),
            fmt.seconds(r["estimated_s"]),
            f"{r['error']:+.0%}",
            "yes" if r["covered"] else "no",
        )
    console.print(table)
    for threads, s in summary["per_threads"].items():
        console.print(
            f"{threads} thread(s): median |error| {s['median_abs_error']:.1%} · within ±10% "
            f"{s['within_10pct']:.0%} · within ±25% {s['within_25pct']:.0%} · Kendall τ "
            f"{s['kendall_tau']:.2f} · 80% bar covered {s['interval_coverage']:.0%} · int8 slower "
            "caught "
            f"{s['int8_slower_caught']}/{s['int8_slower']}, faster {s['int8_faster_caught']}/"
            f"{s['int8_faster']} ({s['points']} points, median round spread "
            f"{s['median_spread']:.1%})"
        )


def _render_summary(summary: dict) -> None:
    table = Table(title="fidelity: estimated (calibrated profile) vs measured latency")
    for col in ("model", "dtype", "MACs", "measured", "estimated", "error"):
        table.add_column(col, justify="left" if col in ("model", "dtype") else "right")
    for r in summary.get("rows", []):
        table.add_row(
            r["model"],
            r["dtype"],
            fmt.count(r["macs"]),
            fmt.seconds(r["measured_s"]),
            fmt.seconds(r["estimated_s"]),
            f"{r['error']:+.0%}",
        )
    console.print(table)
    console.print(
        f"median |error| {summary['median_abs_error']:.1%} · within ±10%: "
        f"{summary['within_10pct']:.0%} · "
        f"within ±20%: {summary['within_20pct']:.0%} · Kendall τ {summary['kendall_tau']:.2f} "
        f"({summary['measurements']} measurements, {summary['models']} models)"
    )


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
    # tests/cli/test_lazy.py.) A target with published measurements
    # (profiles/<target>/published.yaml) and no calibration profile gets estimate vs each published
    # point, predicted leaving its run out.
    if _method(target, runtime, "auto") == "learned":
        _fidelity_learned(profile, subset, threads, quiet or as_json, as_json)
        return
    t = load_target(target)
    prof = load_profile(profile) if profile else find_profile(t, runtime)
    if prof is None and profile is None:
        from edgefit.estimate._published import published_path

        if published_path(t.id).is_file():
            if find_profile(t) is not None:  # calibrated another way (Vela): the points check it
                _fidelity_check(t, as_json, update)
            else:
                _fidelity_published(t, as_json, update)
            return
    if update:
        raise EdgefitError(
            f"--update writes the fit of published measurements; {t.id} has none",
            where="--update",
            fix="drop --update",
        )
    if prof is None:
        raise EdgefitError(
            f"no calibration profile for {target} on {runtime}",
            where="--target",
            fix=f"run `edgefit calibrate --target {target} --runtime {runtime}`",
        )
    bar, update = _progress(quiet or as_json)
    if bar:
        bar.start()
    try:
        summary = check_fidelity(prof, update)
    finally:
        if bar:
            bar.stop()
    emit(summary, as_json, lambda: _render_summary(summary))


def _fidelity_learned(
    path: Path | None, subset: str | None, threads: str | None, quiet: bool, as_json: bool
) -> None:
    from edgefit.calibrate._learn import default_threads_list
    from edgefit.estimate._learned import find_learned, load_learned

    if path:
        prof = load_learned(path)
    else:
        match = find_learned("host-cpu", "onnxruntime")
        if match is None:
            raise EdgefitError(
                "no learned profile for host-cpu on onnxruntime",
                where="--target",
                fix="run `edgefit calibrate --target host-cpu --runtime onnxruntime`",
            )
        prof = match.profile
        if not match.matches:
            err_console.print(
                f"warning: the profile was calibrated on {prof.fingerprint.describe()}, not this "
                f"machine ({'; '.join(match.mismatches)}): these figures are cross-machine ones"
            )
    try:
        counts = (
            tuple(int(t) for t in threads.split(",")) if threads else default_threads_list(None)
        )
    except ValueError:
        raise EdgefitError(
            f"cannot read thread counts {threads!r}", where="--threads", fix="pass e.g. 1,2"
        ) from None
    if any(c < 1 for c in counts):
        raise EdgefitError("thread counts must be ≥ 1", where="--threads", fix="pass e.g. 1,2")
    bar, update = _progress(quiet)
    if bar:
        bar.start()
    try:
        summary = _host_fidelity(prof, subset, counts, update)
    finally:
        if bar:
            bar.stop()
    emit(summary, as_json, lambda: _render_host_summary(summary))


def _fidelity_check(target, as_json: bool, update: bool) -> None:
    """Estimate vs each published point for a target whose estimate is calibrated on its own
    profile (Ethos-U55 on Vela): the points check that estimate, scaled to each point's clock, and
    nothing is fitted to them."""
    from edgefit.estimate._published_check import check_payload

    if update:
        raise EdgefitError(
            f"{target.id}'s estimate is calibrated on its profile; its published points only "
            "check it",
            where="--update",
            fix="drop --update",
        )
    payload = check_payload(target)
    emit(payload, as_json, lambda: _render_check(payload))


def _render_check(payload: dict) -> None:
    table = Table(
        title=f"{payload['target']}: estimate vs published points (a check; nothing fitted)"
    )
    for col in ("point", "unit", "published", "estimate at its clock", "error", "conf."):
        table.add_column(col, justify="left" if col in ("point", "unit") else "right")

    def value(metric: str, v: float) -> str:
        if metric == "throughput":
            return f"{v:,.4g}/s"
        return fmt.joules(v) if metric.startswith("energy") else fmt.seconds(v)

    for r in payload["rows"]:
        table.add_row(
            r["id"],
            r["unit"],
            value(r["metric"], r["published"]),
            value(r["metric"], r["clock_scaled_estimate"]),
            f"{r['error']:+.0%}",
            r["confidence"],
        )
    console.print(table)
    console.print(payload["method"])

    def line(name: str, f: dict) -> str:
        return (
            f"{name}: {f['points']} points, median |error| {f['median_abs_error']:.0%}, "
            f"max {f['max_abs_error']:.0%}"
        )

    console.print(line("all", payload))
    for conf, f in payload["by_confidence"].items():
        console.print(line(f"confidence {conf}", f))


def _fidelity_published(target, as_json: bool, update: bool = False) -> None:
    """Estimate vs each published point (leave-one-run-out), with its source and the fit's figures;
    ``update`` writes the fit the estimator reads (profiles/<target>/published.fit.yaml)."""
    from edgefit.estimate._published_fit import calibration_record, published_fit

    fit = published_fit(target)
    report = fit.report()
    if update and report.proxy:
        raise EdgefitError(
            f"{target.id}'s published points come from a proxy device: they judge the estimate's "
            "shape and never calibrate the target",
            where="--update",
            fix="drop --update",
        )
    written = _write_calibration(target, calibration_record(fit, report)) if update else None
    summary = report.summary()
    params = report.params
    payload = {
        "target": report.target,
        "proxy": report.proxy,
        **summary,
        "fit": None
        if params is None
        else {"k_e": params.k_e, "k_o": params.k_o, "power_w_at_1v": params.power_w_at_1v},
        "rows": [
            {
                "id": r.point.id,
                "model": r.point.model,
                "precision": r.point.precision,
                "scenario": r.point.scenario,
                "batch": r.point.batch,
                "setting": r.point.setting,
                "metric": r.point.metric,
                "unit": _SI_UNIT[r.point.metric],
                "published": r.published,
                "loo_estimate": r.loo,
                "loo_error": r.loo_error,
                "fitted_estimate": r.fitted,
                "datasheet_estimate": r.datasheet,
                "confidence": r.point.confidence,
                "source": r.point.source,
            }
            for r in report.rows
        ],
        "written": written,
    }
    emit(payload, as_json, lambda: _render_published(payload))


def _write_calibration(target, record: dict) -> str:
    import yaml

    from edgefit._io import write_atomic
    from edgefit.estimate._published import calibration_path

    if not record:
        raise EdgefitError(
            f"no point of {target.id} could be predicted from the others: nothing to write",
            where="--update",
            fix="add published points (profiles/<target>/published.yaml)",
        )
    path = calibration_path(target.id)
    header = (
        f"# Written by `edgefit fidelity --target {target.id} --update` from published.yaml; do "
        "not edit.\n"
        "# The estimator uses these efficiencies and overheads in the power modes and batches "
        "under modes.\n"
    )
    write_atomic(path, header + yaml.safe_dump(record, sort_keys=False))
    return str(path)


_SI_UNIT = {
    "latency_mean": "s",
    "latency_p90": "s",
    "latency_p99": "s",
    "throughput": "samples/s",
    "energy_per_inference": "J",
}


def _si(value, metric: str) -> str:
    if value is None:
        return "-"
    if metric == "throughput":
        return f"{value:,.1f}/s"
    return fmt.joules(value) if metric == "energy_per_inference" else fmt.seconds(value)


def _render_published(payload: dict) -> None:
    table = Table(
        title=f"fidelity: {payload['target']} estimate vs published measurements "
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
    for i, r in enumerate(payload["rows"], 1):
        scenario = r["scenario"] + (
            f" ×{r['batch']}" if r["batch"] and r["scenario"] == "multi-stream" else ""
        )
        table.add_row(
            str(i),
            r["id"],
            scenario,
            r["metric"],
            _si(r["published"], r["metric"]),
            _si(r["loo_estimate"], r["metric"]),
            "-" if r["loo_error"] is None else f"{r['loo_error']:+.0%}",
            _si(r["datasheet_estimate"], r["metric"]),
            r["confidence"],
        )
    console.print(table)
    for i, r in enumerate(payload["rows"], 1):
        console.print(
            f"  [{i}] {r['id']}: {r['setting']}; {r['model']} {r['precision']} · {r['source']}",
            highlight=False,
        )
    if payload["proxy"]:
        console.print(f"proxy: {payload['proxy']}")
    fit = payload["fit"]
    median, worst = payload["loo_median_abs_error"], payload["loo_max_abs_error"]
    figures = (
        "no point could be predicted from the others"
        if median is None
        else f"leave-one-run-out median |error| {median:.1%}, max {worst:.1%}"
    )
    console.print(
        f"{payload['points']} published points, {payload['predicted']} predicted from the others: "
        f"{figures}; {payload['parameters']} fitted parameters"
        + (
            ""
            if fit is None
            else f" (on all points: efficiency ×{fit['k_e']:.2f}, kernel overhead "
            f"×{fit['k_o']:.2f} of the target file's"
            + (
                f", active power {fit['power_w_at_1v']:.3g} W × V² × clock / reference clock"
                if fit["power_w_at_1v"]
                else ""
            )
            + ")"
        )
    )
    if payload["datasheet_median_abs_error"] is not None:
        console.print(
            "the target file alone (datasheet peaks × assumed efficiency, no fit) on the same "
            "latency "
            f"and throughput points: median |error| {payload['datasheet_median_abs_error']:.1%}, "
            "max "
            f"{payload['datasheet_max_abs_error']:.1%}"
        )
    missing = [r["id"] for r in payload["rows"] if r["loo_estimate"] is None]
    if missing:
        console.print(
            f"not predicted (no other point of that metric to fit on): {', '.join(missing)}"
        )
    if payload["written"]:
        console.print(f"wrote {payload['written']}")
