"""The isolation child: ``python -m edgefit.runtimes._child REQUEST.json`` (see ``_measure`` for
the protocol).

``"mode": "measure"`` (the default): it pins itself (when asked), opens the artifact with the named
runtime, times it and writes ``result.json``. ``"mode": "convert"``: it converts an ONNX file with
the named runtime and writes the artifact's record. A Python exception is written there too (as
``{"error": …}``); a crash writes nothing and the parent reads the exit status instead.

``EDGEFIT_TEST_CHILD_FAULT`` (tests only) makes the child fail on purpose once its runtime is
loaded (measure: after opening the model; convert: before converting): ``abort`` (SIGABRT),
``segv`` (SIGSEGV), ``exit`` (``os._exit(3)``), ``hang`` (sleeps forever), ``raise`` (a Python
exception). ``EDGEFIT_TEST_CHILD_FAULT_RUNTIME=NAME`` limits it to children of that runtime, and
``EDGEFIT_TEST_CHILD_FAULT_ONCE=PATH`` to the one child that creates PATH first (the others run
normally).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING

from edgefit._io import to_json
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.runtimes._base import Artifact
from edgefit.runtimes._inputs import check_inputs, random_inputs
from edgefit.runtimes._measure import MeasureSettings, load_calibration, timed_loop
from edgefit.runtimes._registry import get_runtime, load_runtime_class

if TYPE_CHECKING:
    import numpy as np
    import onnx
else:
    np, onnx = lazy_import("numpy", "onnx")

FAULT_ENV = "EDGEFIT_TEST_CHILD_FAULT"
FAULT_RUNTIME_ENV = "EDGEFIT_TEST_CHILD_FAULT_RUNTIME"
FAULT_ONCE_ENV = "EDGEFIT_TEST_CHILD_FAULT_ONCE"


def _fault(runtime: str) -> None:
    fault = os.environ.get(FAULT_ENV)
    if not fault or os.environ.get(FAULT_RUNTIME_ENV, runtime) != runtime:
        return
    once = os.environ.get(FAULT_ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # another child took the fault
    if fault == "abort":
        os.abort()
    elif fault == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif fault == "exit":
        os._exit(3)
    elif fault == "hang":
        while True:
            time.sleep(60)
    elif fault == "raise":
        raise RuntimeError("deliberate failure (EDGEFIT_TEST_CHILD_FAULT=raise)")


def _peak_rss_bytes() -> int | None:
    """This process's peak resident set size.

    On Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` survives ``exec``: a child of a 500 MB parent
    reports 500 MB. ``VmHWM`` in ``/proc/self/status`` belongs to the child's own address space, so
    it comes first.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB, macOS bytes


def measure(request: dict) -> dict:
    settings = MeasureSettings(**request["settings"])
    if settings.cpus:
        os.sched_setaffinity(0, settings.cpus)
    threads = settings.threads or (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    runtime = load_runtime_class(request["runtime"])()
    session = runtime.open(Artifact.from_dict(request["artifact"]), threads=threads)
    specs = session.input_specs()
    if request["inputs"]:
        with np.load(request["inputs"]) as data:
            inputs = check_inputs({k: data[k] for k in data.files}, specs)
    else:
        inputs = random_inputs(specs, seed=0)
    _fault(runtime.name)
    samples, wait_fraction = timed_loop(session, inputs, settings, threads)
    environment = {
        **session.environment,
        "threads": threads,
        "cpus": list(settings.cpus) if settings.cpus else None,
        "warmup": settings.warmup,
        "inputs": "given" if request["inputs"] else "random normal (seed 0)",
    }
    return {
        "samples": samples,
        "peak_rss_bytes": _peak_rss_bytes(),
        "cpu_wait_fraction": wait_fraction,
        "environment": environment,
    }


def convert(request: dict) -> dict:
    runtime = get_runtime(request["runtime"])
    model = onnx.load(request["model"])
    calibration = load_calibration(request["calibration"]) if request["calibration"] else None
    _fault(runtime.name)
    artifact = runtime.convert(
        model, request["precision"], request["out_dir"], calibration=calibration
    )
    return {"artifact": artifact.to_dict()}


def main(argv: list[str]) -> int:
    request = json.loads(open(argv[0]).read())
    try:
        result = convert(request) if request.get("mode") == "convert" else measure(request)
        code = 0
    except EdgefitError as exc:
        result = {"error": {"edgefit": True, "what": exc.what, "where": exc.where, "fix": exc.fix}}
        code = 2
    except Exception as exc:  # reported to the parent as a MeasurementError
        result = {
            "error": {
                "edgefit": False,
                "type": type(exc).__name__,
                "message": str(exc),
                "traceback": traceback.format_exc(),
            }
        }
        code = 1
    try:
        text = to_json(result, indent=None)
    except (
        TypeError,
        ValueError,
    ) as exc:  # an artifact's metadata that JSON cannot hold: say so, not crash
        text = to_json(
            {
                "error": {
                    "edgefit": False,
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                }
            },
            indent=None,
        )
        code = 1
    tmp = request["result"] + ".tmp"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.replace(tmp, request["result"])
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
