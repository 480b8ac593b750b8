"""The reproducibility record: software versions, CPU and command line of a run, and the table a
report shows of it.

``environment_record()`` is what a run should store in results.json (``environment``); a report of
an older results.json that lacks it fills the gaps from the machine that renders, and says so
(:func:`repro_rows`).
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from edgefit._lazy import lazy_import

if TYPE_CHECKING:
    from edgefit import records
    from edgefit.records import DoneCandidate, Results
    from edgefit.targets import _host
else:  # pydantic records and the host probe's target model: loaded when a report is built
    records, _host = lazy_import("edgefit.records", "edgefit.targets._host")

# What decides the numbers: the tool, the exporter, the runtime that measured, the estimator's
# kernels.
PACKAGES = ("edgefit", "torch", "onnx", "onnxruntime", "numpy", "numba", "optuna")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions from package metadata (nothing is imported; None when not installed).

    >>> package_versions(("numpy",))["numpy"] is not None
    True
    """
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def cpu_description() -> tuple[str, int | None, list[str]]:
    """CPU model name, CPUs this process may use, and the SIMD extensions that change int8/fp32
    speed."""
    try:
        host = _host.probe_host()
        return host.model or platform.processor() or platform.machine(), host.cores, host.isa
    except Exception:  # noqa: BLE001 - a record with less detail beats no report
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return platform.processor() or platform.machine(), cpus, []


def environment_record() -> dict:
    """Where a run happened: Python, OS, CPU, and the versions of the packages behind its numbers.

    >>> sorted(environment_record())
    ['cpu', 'cpu_count', 'isa', 'machine', 'platform', 'python', 'versions']
    """
    cpu, count, isa = cpu_description()
    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpu_count": count,
        "isa": isa,
        "versions": package_versions(),
    }


def command_line() -> str:
    """This process's command line as the user would type it (``edgefit …`` for the console
    script)."""
    argv = list(sys.argv)
    if argv and os.path.basename(argv[0]) in ("edgefit", "__main__.py"):
        argv[0] = "edgefit"
    return " ".join(shlex.quote(a) for a in argv)


def _run_rows(res: Results) -> list[tuple[str, str, str]]:
    cfg, env, target, model = res.config, res.environment, res.target, res.model
    return [
        ("edgefit", res.edgefit_version, "results.json"),
        ("run finished", res.created, "results.json"),
        ("command line", res.command or "(Python API)", "results.json"),
        ("seed", str(cfg.seed), "results.json"),
        (
            "settings",
            f"select {cfg.select}, max drop {cfg.max_drop}"
            f"{' (relative)' if cfg.relative_drop else ''}, trials {cfg.trials}, "
            f"budget {cfg.budget_s} s, threads {cfg.threads}, "
            f"deadline {cfg.deadline_days} days",
            "results.json",
        ),
        (
            "target",
            f"{target.id}" + (f", power mode {target.power_mode}" if target.power_mode else ""),
            "results.json",
        ),
        (
            "model",
            f"{model.name} ({model.kind}), input {model.input_shape}",
            "results.json",
        ),
        ("evaluation data", res.data.evaluation, "results.json"),
        (
            "python / OS",
            f"Python {env.python} on {env.platform} ({env.machine})",
            "results.json",
        ),
    ]


def repro_rows(res: Results, win: DoneCandidate | None) -> list[tuple[str, str, str]]:
    """(field, value, source) rows of the report's reproducibility record: the run's settings from
    results.json, the CPU and versions (from the renderer when results.json predates the record),
    the chosen model's file and hash."""
    rows = _run_rows(res)
    recorded = {"versions", "cpu"} <= res.environment.model_fields_set
    src = (
        "results.json"
        if recorded
        else "the machine rendering this report (results.json predates the record)"
    )
    rec = res.environment if recorded else records.Environment.model_validate(environment_record())
    rows.append(
        (
            "CPU",
            f"{rec.cpu} ({rec.cpu_count} CPUs usable"
            + (f"; {' '.join(rec.isa)}" if rec.isa else "")
            + ")",
            src,
        )
    )
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in (rec.versions or {}).items())
    rows.append(("versions", versions, src))
    if win is not None:
        mat = win.materialize or {}  # free-form: how the candidate was built
        digest = str(mat.get("content_hash", "?"))[:16]
        rows.append(
            ("chosen model", f"{win.onnx} (plan + base model hash {digest}…)", "results.json")
        )
    return rows
