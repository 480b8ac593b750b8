"""Joining a Ray cluster, and what its nodes advertise.

edgefit never schedules work itself: Ray does. A machine that can measure for a target joins the
cluster with a custom resource named after the target (``device:orin``, ``device:host-cpu``; an id
or an alias of ``targets/``), and a measurement for that target asks Ray for one unit of it, so at
most one measurement runs per device at a time and only on a node that has the device.

``--ray-address`` is Ray's own: ``auto`` (a cluster started on this machine with ``ray start``),
``HOST:PORT``, or ``ray://HOST:10001``. Without it, edgefit starts a Ray instance on this machine
for the run and advertises this machine as ``device:host-cpu`` (it is one).
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._io import write_atomic
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require

if TYPE_CHECKING:
    import ray
else:
    ray = lazy_import("ray")  # an optional extra: loaded by the first Ray call, never at import

DEVICE_PREFIX = "device:"
LOCAL_DEVICE = "host-cpu"


def require_ray():
    """``import ray``, or the one-line error with the install command."""
    return require("ray", extra="ray", purpose="--executor ray")


def device_resource_names(target) -> list[str]:
    """The resource names a node may advertise for ``target``: its id first, then its aliases.

    >>> from types import SimpleNamespace as NS
    >>> device_resource_names(NS(id="jetson-agx-orin-64gb", aliases=["orin"]))
    ['device:jetson-agx-orin-64gb', 'device:orin']
    """
    return [DEVICE_PREFIX + name for name in [target.id, *getattr(target, "aliases", [])]]


@dataclass(frozen=True)
class Cluster:
    """A Ray connection: where, whether this run started it (and so shuts it down), and the
    nodes."""

    address: str
    started_here: bool

    def nodes(self) -> list[dict[str, Any]]:
        return [n for n in ray.nodes() if n.get("Alive")]

    def device_resource(self, target) -> str | None:
        """The resource name under which some live node serves ``target`` (None: no node does)."""
        have = ray.cluster_resources()
        return next(
            (name for name in device_resource_names(target) if have.get(name, 0) >= 1), None
        )

    def device_nodes(self, resource: str) -> list[str]:
        return [
            n.get("NodeManagerHostname") or n["NodeID"][:12]
            for n in self.nodes()
            if n.get("Resources", {}).get(resource, 0) >= 1
        ]

    def cpus(self) -> int:
        return max(1, int(ray.cluster_resources().get("CPU", 1)))

    def close(self) -> None:
        if self.started_here and ray.is_initialized():
            ray.shutdown()


def connect(address: str | None = None, *, num_cpus: int | None = None) -> Cluster:
    """Join the Ray cluster at ``address``, or start one on this machine (None or ``local``).

    A Ray already initialized in this process (a test, a notebook) is used as it is.
    """
    require_ray()  # the one-line install error when Ray is missing; then `ray` loads
    if ray.is_initialized():
        return Cluster(address=str(ray.get_runtime_context().gcs_address), started_here=False)
    quiet = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address in (None, "", "local"):
            os.environ.setdefault(
                "RAY_AUTH_MODE", "disabled"
            )  # a private instance of this run only
            ctx = ray.init(num_cpus=num_cpus, resources={DEVICE_PREFIX + LOCAL_DEVICE: 1}, **quiet)
            return Cluster(
                address=str(ctx.address_info.get("gcs_address", "local")), started_here=True
            )
        ray.init(address=address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise EdgefitError(
            f"cannot join the Ray cluster at '{address}': {str(exc).splitlines()[0][:200]}",
            where="--ray-address",
            fix="start one with `ray start --head` (then use auto), or give HOST:PORT of its head",
        ) from exc
    return Cluster(address=address or "auto", started_here=False)


@contextlib.contextmanager
def ray_session(address: str | None = None, *, num_cpus: int | None = None) -> Iterator[Cluster]:
    """:func:`connect` for the length of a ``with`` block, then shut down what it started.

    Ray's driver prints worker-death notices ("(raylet) A worker died …") on stdout; inside the
    block they go to stderr, so stdout keeps only edgefit's own output (``--json`` stays
    parseable).
    """
    cluster = connect(address, num_cpus=num_cpus)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield cluster
    finally:
        cluster.close()


# -- moving files between nodes -------------------------------------------------------------------
# A node writes in its own file system; what another node (or the driver) needs travels through
# Ray's object store as bytes. A directory bundle (.mlpackage) travels as a tar archive.


def pack(path: str | Path) -> dict[str, Any]:
    """A file or a directory as ``{"name", "kind", "data"}`` bytes for the object store."""
    path = Path(path)
    if path.is_dir():
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            tar.add(path, arcname=path.name)
        return {"name": path.name, "kind": "tar", "data": buf.getvalue()}
    return {"name": path.name, "kind": "file", "data": path.read_bytes()}


def unpack(packed: dict[str, Any], folder: str | Path) -> Path:
    """Write what :func:`pack` made into ``folder``; returns the file's (or directory's) path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    name = Path(packed["name"]).name  # never a path that climbs out of folder
    if packed["kind"] == "tar":
        with tarfile.open(fileobj=io.BytesIO(packed["data"]), mode="r") as tar:
            tar.extractall(folder, filter="data")
        return folder / name
    return write_atomic(folder / name, packed["data"])
