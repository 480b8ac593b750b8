"""What runs on a Ray worker. Plain functions: :mod:`edgefit.distributed._executor` wraps them with
``ray.remote`` (so importing this module needs no Ray), and they are tested without Ray too.

* :func:`edgefit_candidate` — materialize one candidate and score its accuracy (any CPU node).
* :func:`edgefit_measure` — time a candidate on the node that serves its target
  (``device:<target>``), with the first of the target's runtimes that runs there.
* :func:`edgefit_node_info` — what a node is and which runtimes run on it (``edgefit devices``).

The names are the process titles Ray gives a worker while it runs them
(``ray::edgefit_candidate``).
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._version import __version__
from edgefit.distributed._cluster import pack, unpack
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import ray

    from edgefit import runtimes
    from edgefit.search import _candidate, _export, _figures
else:  # loaded on the worker when a task runs: importing this module (the CLI does) stays light
    ray, runtimes, _candidate, _export, _figures = lazy_import(
        "ray",
        "edgefit.runtimes",
        "edgefit.search._candidate",
        "edgefit.search._export",
        "edgefit.search._figures",
    )


def edgefit_candidate(ctx, choice) -> dict[str, Any]:
    """Materialize ``choice`` on this node; its record (latency estimated until measured) and the
    files the driver and the measuring node need (candidate ONNX and its fp32 source)."""
    record = _candidate.run_candidate(
        ctx.base,
        choice,
        ctx.settings,
        ctx.work_dir,
        ctx.reference,
        ctx.base_accuracy,
        measure_here=False,
    )
    onnx = Path(record["onnx"])
    files = {"onnx": pack(onnx), "fp32": pack(onnx.parent / "model.fp32.onnx")}
    if record["artifact"]["path"] != record["onnx"]:
        files["artifact"] = pack(record["artifact"]["path"])
    record["worker"] = {"host": platform.node(), "pid": os.getpid(), "ray_node": _node_id()}
    return {"record": record, "files": files}


def edgefit_measure(
    files: dict[str, Any], record: dict[str, Any], settings, calibration=None
) -> dict[str, Any]:
    """Latency of one candidate, measured on this node (see :func:`measure_for_target`)."""
    with tempfile.TemporaryDirectory(prefix="edgefit-measure-") as tmp:
        paths = {k: unpack(v, Path(tmp) / k) for k, v in files.items()}
        latency = measure_for_target(paths, record, settings, calibration, Path(tmp) / "convert")
    return {**latency, "ray_node": _node_id()}


def _node_id() -> str | None:
    """The Ray node this runs on (None outside Ray)."""
    try:
        return ray.get_runtime_context().get_node_id()
    except Exception:  # noqa: BLE001 - not in a Ray worker
        return None


def measure_for_target(
    paths: dict[str, Path], record: dict[str, Any], settings, calibration, folder: Path
) -> dict[str, Any]:
    """Measure with the target's first runtime that runs here: the candidate's own artifact when
    this runtime reads it (ONNX on onnxruntime, a torch program on torch), else the fp32 ONNX
    converted at the candidate's precision (TensorRT, LiteRT …) with the run's calibration
    inputs."""
    target = settings.target
    own = record["artifact"]["runtime"]
    reasons = []
    # the target's own runtimes in its order (native first); a torch program is timed on torch
    # first
    names = (["torch"] if own == "torch" else []) + [
        n for n in target.runtimes if n != "torch" or own != "torch"
    ]
    for name in names:
        if name not in runtimes.runtime_names():
            reasons.append(f"{name}: no edgefit backend")
            continue
        rt = runtimes.get_runtime(name)
        status = rt.runnable()
        if not status.ok:
            reasons.append(f"{name}: {status.reason}")
            continue
        if name == own:  # with the session options the candidate was built for (a recipe's level)
            options = (record.get("artifact") or {}).get("options")
            return _figures.measure(
                paths.get("artifact", paths["onnx"]), settings, runtime=name, options=options
            ).to_dict()
        precision = _export._precision(record["choice"], name)
        feeds = (
            None
            if calibration is None
            else [{k: x[None]} for k, x in _export._named(paths["fp32"], calibration[:16])]
        )
        art = rt.convert(paths["fp32"], precision, folder / name, calibration=feeds)
        latency = _figures.measure(art.path, settings, runtime=name)
        return {
            **latency.to_dict(),
            "converted": {"runtime": name, "precision": precision, "format": art.format},
        }
    raise EdgefitError(
        f"node {platform.node()} serves {target.id} but none of its runtimes runs there: "
        + "; ".join(reasons),
        where="device farm",
        fix=f"install one of {', '.join(target.runtimes)} on that node",
    )


def edgefit_node_info() -> dict[str, Any]:
    """This node: host, Python, edgefit version, and each registered runtime's availability
    here."""
    return {
        "host": platform.node(),
        "python": platform.python_version(),
        "edgefit": __version__,
        "machine": platform.machine(),
        "os": platform.system(),
        "cpus": os.cpu_count(),
        "runtimes": [r.to_dict() for r in runtimes.list_runtimes()],
    }
