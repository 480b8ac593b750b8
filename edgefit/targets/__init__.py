"""Hardware target profiles: load, list, validate, export.

>>> from edgefit.targets import load_target
>>> orin = load_target("orin")
>>> orin.envelope.latency_budget_s.value
0.01
"""

from edgefit.targets._load import (
    list_targets,
    load_target,
    load_target_file,
    target_from_dict,
    targets_dir,
)
from edgefit.targets._model import (
    CHANGE_KINDS,
    DTYPES,
    LIFECYCLE_STAGES,
    Certification,
    ComputeUnit,
    Envelope,
    MemoryLevel,
    PowerMode,
    Sourced,
    Target,
    target_json_schema,
)

__all__ = [
    "CHANGE_KINDS",
    "DTYPES",
    "LIFECYCLE_STAGES",
    "Certification",
    "ComputeUnit",
    "Envelope",
    "MemoryLevel",
    "PowerMode",
    "Sourced",
    "Target",
    "list_targets",
    "load_target",
    "load_target_file",
    "target_from_dict",
    "target_json_schema",
    "targets_dir",
]
