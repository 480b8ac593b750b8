"""The reproducibility record: software versions, CPU and command line of a run, and the table a
report shows of it.

``environment_record()`` is what a run should store in results.json (``environment``); a report of
an older results.json that lacks it fills the gaps from the machine that renders, and says so
(:func:`repro_rows`).
"""

from __future__ import annotations

import os
import platform
import sys

# What decides the numbers: the tool, the exporter, the runtime that measured, the estimator's
# kernels.
PACKAGES = ("edgefit", "torch", "onnx", "onnxruntime", "numpy", "numba", "optuna")


def package_versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    """Installed versions from package metadata (nothing is imported; None when not installed).

    >>> package_versions(("numpy",))["numpy"] is not None
    True
    """
    from importlib.metadata import PackageNotFoundError, version

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
        from edgefit.targets._host import probe_host

        host = probe_host()
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
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


def _run_rows(res: dict) -> list[tuple[str, str, str]]:
    cfg, env = res["config"], res["environment"]
    return [
        ("edgefit", res["edgefit_version"], "results.json"),
        ("run finished", res["created"], "results.json"),
        ("command line", res.get("command") or "(Python API)", "results.json"),
        ("seed", str(cfg.get("seed")), "results.json"),
        (
            "settings",
            f"select {cfg.get('select')}, max drop {cfg.get('max_drop')}"
            f"{' (relative)' if cfg.get('relative_drop') else ''}, trials {cfg.get('trials')}, "
            f"budget {cfg.get('budget_s')} s, threads {cfg.get('threads')}, "
            f"deadline {cfg.get('deadline_days')} days",
            "results.json",
        ),
        (
            "target",
            f"{res['target']['id']}"
            + (
                f", power mode {res['target']['power_mode']}"
                if res["target"].get("power_mode")
                else ""
            ),
            "results.json",
        ),
        (
            "model",
            f"{res['model']['name']} ({res['model']['kind']}), input "
            f"{res['model']['input_shape']}",
            "results.json",
        ),
        ("evaluation data", res["data"]["evaluation"], "results.json"),
        (
            "python / OS",
            f"Python {env['python']} on {env['platform']} ({env['machine']})",
            "results.json",
        ),
    ]


def repro_rows(res: dict, win: dict | None) -> list[tuple[str, str, str]]:
    """(field, value, source) rows of the report's reproducibility record: the run's settings from
    results.json, the CPU and versions (from the renderer when results.json predates the record),
    the chosen model's file and hash."""
    env = res["environment"]
    rows = _run_rows(res)
    here = None if "versions" in env and "cpu" in env else environment_record()
    src = (
        "results.json"
        if here is None
        else "the machine rendering this report (results.json predates the record)"
    )
    rec = env if here is None else here
    rows.append(
        (
            "CPU",
            f"{rec.get('cpu')} ({rec.get('cpu_count')} CPUs usable"
            + (f"; {' '.join(rec['isa'])}" if rec.get("isa") else "")
            + ")",
            src,
        )
    )
    versions = ", ".join(f"{k} {v or 'not installed'}" for k, v in rec.get("versions", {}).items())
    rows.append(("versions", versions, src))
    if win is not None:
        mat = win.get("materialize") or {}
        digest = str(mat.get("content_hash", "?"))[:16]
        rows.append(
            ("chosen model", f"{win['onnx']} (plan + base model hash {digest}…)", "results.json")
        )
    return rows
