"""Calibration: measure the kernel catalog on a runtime, fit efficiencies, check fidelity on a zoo.

>>> from edgefit.calibrate import calibrate
>>> profile = calibrate("host-cpu", "onnxruntime", budget_s=300)   # doctest: +SKIP
"""

from edgefit.calibrate._calibrate import calibrate, fit_profile
from edgefit.calibrate._catalog import KernelSpec, build_kernel_model, load_catalog, sample_specs

__all__ = ["KernelSpec", "build_kernel_model", "calibrate", "fit_profile", "load_catalog", "sample_specs"]
