"""Calibration: measure what a runtime does here, fit a profile, check it on models it never saw.

Two methods: ``host-cpu`` with onnxruntime learns kernel costs from random networks timed kernel by
kernel in-network (:func:`calibrate_learned`); every other target and runtime fits per-class
efficiencies to the kernel catalog (:func:`calibrate`). The fidelity zoo (:func:`zoo_specs`) is
what both are judged on.

>>> from edgefit.calibrate import calibrate_learned
>>> profile = calibrate_learned(networks=150)                       # doctest: +SKIP
>>> profile.fingerprint.describe()                                  # doctest: +SKIP
"""

from edgefit.calibrate._calibrate import calibrate, fit_profile
from edgefit.calibrate._catalog import KernelSpec, build_kernel_model, load_catalog, sample_specs
from edgefit.calibrate._learn import calibrate_learned
from edgefit.calibrate._zoo import RECIPES, ZOO, ZooSpec, zoo_onnx, zoo_specs

__all__ = [
    "RECIPES",
    "ZOO",
    "KernelSpec",
    "ZooSpec",
    "build_kernel_model",
    "calibrate",
    "calibrate_learned",
    "fit_profile",
    "load_catalog",
    "sample_specs",
    "zoo_onnx",
    "zoo_specs",
]
