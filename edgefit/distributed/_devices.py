"""`edgefit devices`: the Ray cluster's nodes, the devices they serve and the runtimes that run on
them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.distributed._cluster import DEVICE_PREFIX, ray_session
from edgefit.distributed._tasks import edgefit_node_info
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import ray
    import ray.util.scheduling_strategies as ray_scheduling

    from edgefit import targets
else:  # ray is an optional extra, targets loads pydantic: both load when `edgefit devices` runs
    ray, ray_scheduling, targets = lazy_import(
        "ray", "ray.util.scheduling_strategies", "edgefit.targets"
    )

PROBE_TIMEOUT_S = 60.0


def _target_for(name: str) -> dict[str, Any]:
    """``device:orin`` → the target it names (id, kind, native runtimes), or why none."""
    try:
        t = targets.load_target(name)
    except EdgefitError as exc:
        return {"resource": DEVICE_PREFIX + name, "target": None, "problem": exc.what}
    return {
        "resource": DEVICE_PREFIX + name,
        "target": t.id,
        "kind": t.kind,
        "native_runtimes": list(t.runtimes),
    }


def list_devices(
    address: str | None = "auto", *, timeout_s: float = PROBE_TIMEOUT_S
) -> dict[str, Any]:
    """Every live node: its resources, the devices it advertises, and — asked of the node itself by
    a small Ray task pinned to it — the runtimes that run there. A node that does not answer within
    ``timeout_s`` is listed with ``probe: "no answer"``."""
    with ray_session(address) as cluster:
        nodes = cluster.nodes()
        probe = ray.remote(edgefit_node_info)
        refs = {
            n["NodeID"]: probe.options(
                num_cpus=0,
                max_retries=0,
                scheduling_strategy=ray_scheduling.NodeAffinitySchedulingStrategy(
                    node_id=n["NodeID"], soft=False
                ),
            ).remote()
            for n in nodes
        }
        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=timeout_s)
        out = []
        for n in nodes:
            res = n.get("Resources", {})
            ref = refs[n["NodeID"]]
            info: dict[str, Any] = {"probe": "no answer"}
            if ref in ready:
                try:
                    info = {"probe": "ok", **ray.get(ref)}
                except Exception as exc:  # noqa: BLE001 - the node answered with an error: show it
                    info = {"probe": f"failed: {type(exc).__name__}"}
            devices = [
                _target_for(k[len(DEVICE_PREFIX) :])
                for k in sorted(res)
                if k.startswith(DEVICE_PREFIX)
            ]
            runnable = {r["name"] for r in info.get("runtimes", []) if r["available"]}
            for d in devices:
                d["runs_here"] = [r for r in d.get("native_runtimes", []) if r in runnable]
            out.append(
                {
                    "node_id": n["NodeID"],
                    "address": n.get("NodeManagerAddress"),
                    "host": n.get("NodeManagerHostname"),
                    "cpus": res.get("CPU", 0),
                    "gpus": res.get("GPU", 0),
                    "memory_bytes": res.get("memory", 0),
                    "devices": devices,
                    **info,
                }
            )
        return {"address": cluster.address, "started_here": cluster.started_here, "nodes": out}
