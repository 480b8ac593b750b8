"""Scale-out on Ray: distributed candidate evaluation and a device farm (``ray`` is an optional
extra).

>>> from edgefit.distributed import device_resource_names
"""

from edgefit.distributed._cluster import (
    DEVICE_PREFIX,
    LOCAL_DEVICE,
    Cluster,
    connect,
    device_resource_names,
    pack,
    ray_session,
    require_ray,
    unpack,
)
from edgefit.distributed._executor import MAX_RETRIES, RayExecutor, RayOptions, run_on_ray

__all__ = [
    "DEVICE_PREFIX",
    "LOCAL_DEVICE",
    "MAX_RETRIES",
    "Cluster",
    "RayExecutor",
    "RayOptions",
    "connect",
    "device_resource_names",
    "pack",
    "ray_session",
    "require_ray",
    "run_on_ray",
    "unpack",
]
