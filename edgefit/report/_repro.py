"""The reproducibility record: software versions, CPU and command line of a run.

``environment_record()`` is what a run should store in results.json (``environment``); a report of
an older results.json that lacks it fills the gaps from the machine that renders, and says so.
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
