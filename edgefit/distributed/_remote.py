"""`edgefit bench` and `edgefit calibrate` with ``--executor ray``: the measuring part runs on the
node that serves the device (``device:<target>``), the rest here. Files travel through Ray's object
store."""

from __future__ import annotations

import json
import platform
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.distributed._cluster import Cluster, device_resource_names, pack, ray_session, unpack
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import ray

    from edgefit import calibrate, estimate, runtimes
    from edgefit.calibrate import _report as calibrate_report
else:  # ray is an optional extra; the rest load numpy, onnx or the runtimes when a task runs
    ray, calibrate, calibrate_report, estimate, runtimes = lazy_import(
        "ray",
        "edgefit.calibrate",
        "edgefit.calibrate._report",
        "edgefit.estimate",
        "edgefit.runtimes",
    )


def _device(cluster: Cluster, target) -> str:
    resource = cluster.device_resource(target)
    if resource is None:
        raise EdgefitError(
            f"no live Ray node serves {' or '.join(device_resource_names(target))}",
            where="--executor ray",
            fix=f"start one on the device: ray start --address=HEAD:6379 "
            f"--resources='{{\"device:{target.id}\": 1}}' (edgefit devices lists the farm)",
        )
    return resource


def _get(ref, what: str):
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EdgefitError):
            raise cause from None
        raise EdgefitError(
            f"{what} failed on the device node: {type(cause or exc).__name__}: "
            f"{str(cause or exc).strip().splitlines()[-1][:300]}",
            where="--executor ray",
        ) from None
    except Exception as exc:  # noqa: BLE001 - node or worker lost after Ray's retries
        raise EdgefitError(
            f"{what} did not finish: the device node or its worker was lost "
            f"({type(exc).__name__})",
            where="--executor ray",
            fix="check the node with `edgefit devices`, then run again",
        ) from None


def _bench_task(packed: dict[str, Any], artifact: dict[str, Any], settings: dict[str, Any]):
    with tempfile.TemporaryDirectory(prefix="edgefit-bench-") as tmp:
        path = unpack(packed, tmp)
        art = runtimes.Artifact.from_dict({**artifact, "path": str(path)})
        timing = runtimes.get_runtime(art.runtime).measure(art, **settings)
    timing.environment["host"] = platform.node()
    return timing


def measure_on_device(artifact, settings, target, address: str | None, *, retries: int = 2):
    """Time ``artifact`` (an :class:`~edgefit.runtimes.Artifact`) on the node serving ``target``;
    returns the :class:`~edgefit.runtimes.Timing`, whose environment names the host."""
    with ray_session(address) as cluster:
        resource = _device(cluster, target)
        task = ray.remote(_bench_task).options(
            num_cpus=1, resources={resource: 1}, max_retries=retries
        )
        return _get(
            task.remote(pack(artifact.path), artifact.to_dict(), asdict(settings)),
            "the measurement",
        )


def _calibrate_task(
    target_id: str, runtime: str, budget_s: float, threads: int | None, seed: int, fidelity: bool
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="edgefit-calibrate-") as tmp:
        out = Path(tmp) / f"{runtime}.yaml"
        profile = calibrate.calibrate(
            target_id, runtime, budget_s=budget_s, threads=threads, out=out, seed=seed
        )
        summary = None
        if fidelity:
            summary = calibrate_report.check_fidelity(profile)
        files = [
            pack(p)
            for p in sorted(Path(tmp).iterdir())
            if p.is_file() and not p.name.startswith(".")
        ]
    return {"files": files, "summary": summary, "host": platform.node()}


def calibrate_on_device(
    target,
    runtime: str,
    *,
    budget_s: float,
    threads: int | None,
    out: Path,
    seed: int = 0,
    fidelity: bool = True,
    address: str | None = None,
    retries: int = 1,
) -> dict[str, Any]:
    """Run the kernel sweep (and the fidelity check) on the node serving ``target``; write the
    profile and the files beside it here, at ``out``. Returns ``{"profile", "summary", "host",
    "files"}``."""
    with ray_session(address) as cluster:
        resource = _device(cluster, target)
        task = ray.remote(_calibrate_task).options(
            num_cpus=1, resources={resource: 1}, max_retries=retries
        )
        result = _get(
            task.remote(target.id, runtime, budget_s, threads, seed, fidelity), "calibration"
        )
    written = []
    for packed in result[
        "files"
    ]:  # <runtime>.yaml, .measurements.json, .fidelity.json → beside `out`
        name = packed["name"].replace(f"{runtime}.", f"{out.stem}.", 1)
        written.append(str(unpack({**packed, "name": name}, out.parent)))
    profile = estimate.load_profile(out)
    summary = result["summary"]
    if summary is not None and Path(out).with_name(out.stem + ".fidelity.json").is_file():
        stored = json.loads(Path(out).with_name(out.stem + ".fidelity.json").read_text())
        summary = {**summary, "rows": summary.get("rows") or stored.get("rows", [])}
    return {"profile": profile, "summary": summary, "host": result["host"], "files": written}
