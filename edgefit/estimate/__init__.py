"""Latency, energy, memory and power estimates for many plans at once (Numba, with a NumPy
reference).

>>> from edgefit.estimate import Estimator, Plan
>>> est = Estimator(graph, load_target("hearable"))   # doctest: +SKIP
>>> est.estimate(Plan(dtype="int8")).energy_j          # doctest: +SKIP
"""

from edgefit.estimate._estimate import Estimator
from edgefit.estimate._plan import PLAN_DTYPES, Plan, PlanBatch
from edgefit.estimate._profile import KernelFit, Profile, find_profile, load_profile, profile_path
from edgefit.estimate._result import Check, Estimate, KernelEstimate
from edgefit.estimate._table import KERNEL_CLASSES, KernelTable, build_kernel_table

__all__ = [
    "Check",
    "Estimate",
    "Estimator",
    "KERNEL_CLASSES",
    "KernelEstimate",
    "KernelFit",
    "KernelTable",
    "PLAN_DTYPES",
    "Plan",
    "PlanBatch",
    "Profile",
    "build_kernel_table",
    "find_profile",
    "load_profile",
    "profile_path",
]
