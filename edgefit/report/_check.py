"""`edgefit check`: the production checks as findings and an exit code for CI.

A model is estimated on the target (and, on ``host-cpu``, measured with onnxruntime on one thread);
every envelope constraint it exceeds is an error. With a baseline results.json its latency is
compared with the model that run *chose* (the one it exported as model.onnx, i.e. what was last
shipped; the best-found candidate when nothing qualified, else the unchanged baseline): more than
``max_regression`` slower is an error. Measured figures are compared when both sides were measured,
estimates otherwise (``compare="estimate"`` forces estimates, which do not move with machine load).

Each finding prints as one line that GitHub Actions turns into an annotation
(``::error title=…::message``); exit code 1 when any finding is an error, else 0.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit import _format as fmt
from edgefit import _units
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.report._findings import CheckOutcome, Finding
from edgefit.report._read import as_results
from edgefit.report._target import UNIT_FMT
from edgefit.runtimes import Artifact, get_runtime, measuring_runtime
from edgefit.runtimes._measure import measure_quietly

if TYPE_CHECKING:
    from edgefit import estimate, targets
    from edgefit.calibrate import _observed
    from edgefit.records import DoneCandidate, Results
else:  # the estimator and the target model bring numpy, onnx and pydantic: loaded on first use
    estimate, targets = lazy_import("edgefit.estimate", "edgefit.targets")
    _observed = lazy_import("edgefit.calibrate._observed")

COMPARES = ("auto", "measured", "estimate")


def parse_fraction(text: str, *, where: str) -> float:
    """``"5%"`` or ``"0.05"`` → 0.05 (a non-negative share), read by edgefit's one unit parser.

    >>> w = "--max-regression"
    >>> parse_fraction("5%", where=w), parse_fraction("0.1", where=w)
    (0.05, 0.1)
    """
    return _units.parse_fraction(text, where=where, hi=100.0)


def pick_baseline(res: Mapping[str, Any] | Results) -> tuple[DoneCandidate, str]:
    """The candidate of a results.json a new model is compared with, and its role (see module
    docstring)."""
    res = as_results(res, where="--baseline")
    cands = {c.key: c for c in res.candidates if c.status == "done"}
    sel = res.selection
    for key, role in (
        (sel.winner, "chosen"),
        (sel.best_found, "best found"),
        (res.baseline.key, "unchanged baseline"),
    ):
        if key is not None and key in cands:
            return cands[key], role
    raise EdgefitError(
        "the baseline results hold no finished candidate",
        where="--baseline",
        fix="pass the results.json of a run that finished at least one candidate",
    )


def _with_budget(target, budget_s: float | None):
    if budget_s is None:
        return target
    src = targets.Sourced(
        value=budget_s,
        source=None,
        estimated=True,
        reason="given on the command line (--latency-budget)",
    )
    return target.model_copy(
        update={"envelope": target.envelope.model_copy(update={"latency_budget_s": src})}
    )


def _measure(path: Path, threads: int, runtime: str) -> dict:
    rt = get_runtime(runtime)
    art = Artifact(path=Path(path), format="onnx", precision="as-built", runtime=rt.name)
    best = measure_quietly(rt, art, threads=threads, runs=100, min_runs=200, budget_s=4.0)
    return {
        "source": "measured",
        "runtime": rt.name,
        "threads": threads,
        "p50_s": best.p50,
        "p90_s": best.p90,
        "p99_s": best.p99,
        "mean_s": best.mean,
        "jitter_s": best.jitter,
        "n_runs": best.n_runs,
        "cpu_wait_fraction": best.cpu_wait_fraction,
        "provenance": best.provenance,
    }


def _checks(est, target, measured: dict | None) -> list[dict]:
    out = []
    for c in est.checks:
        d = {
            "constraint": c.constraint,
            "unit": c.unit,
            "limit": c.limit,
            "value": c.value,
            "fits": c.fits,
            "certain": c.certain,
            "source": _estimate_source(c.source, est.error),
        }
        if measured and c.unit == "s" and c.constraint.startswith("latency"):
            pct = target.envelope.latency_percentile
            name, value = (
                ("p99", measured["p99_s"])
                if pct >= 99
                else ("p90", measured["p90_s"])
                if pct >= 90
                else ("p50", measured["p50_s"])
            )
            d.update(
                constraint=f"latency (p{pct:g} budget, measured {name})",
                value=value,
                fits=value <= c.limit,
                certain=True,
                source=measured["provenance"],
            )
        out.append(d)
    jitter = target.envelope.jitter_s
    if jitter is not None and measured:
        out.append(
            {
                "constraint": "jitter (p99 − p50)",
                "unit": "s",
                "limit": jitter.value,
                "value": measured["jitter_s"],
                "fits": measured["jitter_s"] <= jitter.value,
                "certain": True,
                "source": measured["provenance"],
            }
        )
    return out


def _estimate_source(source: str, error: float) -> str:
    if source == "datasheet":
        return f"estimated from datasheet figures, ±{error:.0%}"
    if source == "calibrated":
        return f"estimated from a calibrated profile, ±{error:.0%}"
    return source


def _excess(value: float, limit: float) -> str:
    if not limit:
        return ""
    ratio = value / limit
    if ratio >= 100:
        return f", {ratio:,.0f}× the limit"
    return f", {ratio:.3g}× the limit" if ratio >= 2 else f", {ratio - 1:.0%} over"


def _check_findings(checks: list[dict], where: str, file: str | None) -> list[Finding]:
    out = []
    for c in checks:
        show = UNIT_FMT.get(c["unit"], lambda v: f"{v:g}")
        title = f"edgefit check ({c['constraint'].split(' (')[0]})"
        if not c["fits"]:
            out.append(
                Finding(
                    "error",
                    title,
                    f"{where}: {c['constraint']} {show(c['value'])} exceeds the limit "
                    f"{show(c['limit'])}{_excess(c['value'], c['limit'])} ({c['source']})",
                    file,
                )
            )
        elif not c.get("certain", True):
            out.append(
                Finding(
                    "warning",
                    title,
                    f"{where}: {c['constraint']} {show(c['value'])} fits the limit "
                    f"{show(c['limit'])} only within the error bar ({c['source']}); "
                    f"measure on the device to be sure",
                    file,
                )
            )
        else:
            out.append(
                Finding(
                    "ok",
                    c["constraint"],
                    f"{show(c['value'])} ≤ {show(c['limit'])} ({c['source']})",
                )
            )
    return out


def _compare(
    res: Results,
    target,
    est,
    measured: dict | None,
    max_regression: float,
    compare: str,
    where: str,
    file: str | None,
) -> tuple[dict, Finding]:
    try:
        base_target = targets.load_target(res.target.id).id
    except EdgefitError:
        base_target = res.target.id
    if base_target != target.id:
        raise EdgefitError(
            f"the baseline was run for target '{res.target.id}', not '{target.id}'",
            where="--baseline",
            fix="pass the results.json of a run on the same target",
        )
    cand, role = pick_baseline(res)
    both_measured = measured is not None and cand.latency.source == "measured"
    if compare == "measured" and not both_measured:
        raise EdgefitError(
            "--compare measured needs a measured latency on both sides",
            where="--compare",
            fix="use --compare estimate, or measure (host-cpu) against a measured baseline",
        )
    if measured is not None and (compare == "measured" or (compare == "auto" and both_measured)):
        new, old, what = measured["p50_s"], cand.latency.p50_s, "measured p50"
    else:
        new, old, what = (
            est.latency_s,
            cand.estimate.latency_s,
            f"estimated latency ({est.source})",
        )
    change = new / old - 1 if old else 0.0
    info = {
        "candidate": cand.label,
        "key": cand.key,
        "role": role,
        "compared": what,
        "latency_s": new,
        "baseline_latency_s": old,
        "change": change,
        "max_regression": max_regression,
        "regressed": change > max_regression,
        "results_created": res.created,
    }
    text = (
        f"{where}: {what} {fmt.seconds(new)} vs {fmt.seconds(old)} for the baseline's {role} "
        "candidate "
        f"'{cand.label}' ({change:+.1%}; allowed +{max_regression:.1%})"
    )
    if change > max_regression:
        return info, Finding("error", "edgefit check (latency regression)", text, file)
    return info, Finding("ok", "latency vs baseline", text.removeprefix(f"{where}: "))


def check_model(
    graph,
    target: Any,
    *,
    onnx_path: str | Path | None = None,
    name: str | None = None,
    power_mode: str | None = None,
    measure: bool | None = None,
    threads: int = 1,
    record: bool = True,
    baseline: Mapping[str, Any] | Results | None = None,
    max_regression: float = 0.05,
    compare: str = "auto",
    latency_budget_s: float | None = None,
    file: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> CheckOutcome:
    """Check ``graph`` (an edgefit Graph) against ``target``'s envelope and, optionally, a baseline
    run.

    ``measure`` None measures on ``host-cpu`` only (the machine this runs on); ``onnx_path`` is the
    file to measure (default: the graph's own model, written to a temporary file). ``record``: an
    onnxruntime measurement is kept, with the model's kernels profiled after it, for `edgefit
    calibrate --refit` (:mod:`edgefit.calibrate._observed`; ``measured["recorded"]`` says where,
    or why not). ``baseline`` is
    a loaded results.json (:func:`~edgefit.report.load_results`) or its
    :class:`~edgefit.records.Results` record. ``file`` names the model in annotations.
    """
    if compare not in COMPARES:
        raise EdgefitError(
            f"unknown comparison '{compare}'",
            where="--compare",
            fix=f"use one of {', '.join(COMPARES)}",
        )
    base = None if baseline is None else as_results(baseline, where="--baseline")
    t = _with_budget(targets.load_target(target), latency_budget_s)
    say = progress or (lambda _label: None)
    runtime = measuring_runtime(t)  # the target's YAML decides, when the target is this machine
    if measure and runtime is None:
        raise EdgefitError(
            f"cannot measure for '{t.id}' on this machine",
            where="--measure",
            fix="measure only with --target host-cpu; other targets are estimated",
        )
    say(f"estimating on {t.id}")
    est = estimate.Estimator(graph, t, power_mode=power_mode, threads=threads).estimate()
    measured = None
    if runtime is not None and measure is not False:
        say(f"measuring with {runtime} ({threads} thread{'s' if threads != 1 else ''})")
        with tempfile.TemporaryDirectory(prefix="edgefit-check-") as tmp:
            path = Path(onnx_path) if onnx_path is not None else Path(tmp) / "model.onnx"
            if onnx_path is None:
                path.write_bytes(graph.model.SerializeToString())
            measured = _measure(path, threads, runtime)
            if record and runtime == "onnxruntime":
                say("profiling it once more for `edgefit calibrate --refit`")
                measured["recorded"] = _observed.keep(
                    path, threads=threads, measured_s=measured["p50_s"], source="check"
                )
    name = name or graph.source or "model"
    where = f"{name} on {t.id}" + (f" ({est.power_mode})" if est.power_mode else "")
    checks = _checks(est, t, measured)
    findings = _check_findings(checks, where, file)
    info = None
    if base is not None:
        say("comparing with the baseline")
        info, finding = _compare(base, t, est, measured, max_regression, compare, where, file)
        findings.append(finding)
    findings += [
        Finding("notice", "edgefit check (note)", f"{where}: {w}", file)
        for w in dict.fromkeys(est.warnings)
    ]
    summary = {k: v for k, v in est.to_dict().items() if k not in ("kernels", "checks")}
    return CheckOutcome(
        model=name,
        target=t.id,
        power_mode=est.power_mode,
        estimate=summary,
        measured=measured,
        checks=checks,
        baseline=info,
        findings=findings,
    )
