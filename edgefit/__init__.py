"""edgefit: fit a trained model to a device's latency, memory and power envelope.

The front door is a handful of functions, each what one command does::

    import edgefit

    result = edgefit.optimize("digits-cnn", "host-cpu", config=edgefit.OptimizeConfig(trials=4))
    result.chosen.label, result.files["model"]         # `edgefit optimize`
    edgefit.check("model.onnx", "host-cpu").exit_code   # `edgefit check`
    edgefit.estimate_model("ds-cnn-kws", "orin")        # `edgefit estimate`
    edgefit.plan("orin", goal=0.99)                     # `edgefit plan`
    edgefit.serve_plan("llama-3-8b", "h100")            # `edgefit serve-plan`
    edgefit.calibrate_target("host-cpu", quick=True)    # `edgefit calibrate`
    edgefit.fidelity("orin")                            # `edgefit fidelity`

Each returns a frozen result whose ``to_dict()`` is what the command prints with ``--json``.
``estimate_model`` and ``calibrate_target`` are not called ``estimate`` and ``calibrate`` because
those names are subpackages (``edgefit.estimate``, ``edgefit.calibrate``): importing one of their
modules rebinds the package attribute to the module, so a function of that name could not stay.

Beside them: ``load_target``/``list_targets``, ``load_graph``, ``get_example``/``list_examples``,
``Estimator``, ``get_runtime`` and ``load_results``; the subpackages (``edgefit.targets``,
``edgefit.search``, ``edgefit.report``, …) hold the rest of the API.

``import edgefit`` is deliberately light: each of these names loads its subpackage on first use,
and torch, numba, onnxruntime and optuna load only inside the code that needs them.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from edgefit._version import __version__

if TYPE_CHECKING:  # what the lazy names below resolve to, for type checkers and IDEs
    from edgefit.calibrate._api import CalibrationResult as CalibrationResult
    from edgefit.calibrate._api import calibrate_target as calibrate_target
    from edgefit.calibrate._fidelity_api import FidelityResult as FidelityResult
    from edgefit.calibrate._fidelity_api import fidelity as fidelity
    from edgefit.errors import EdgefitError as EdgefitError
    from edgefit.estimate import Estimator as Estimator
    from edgefit.estimate._api import EstimateResult as EstimateResult
    from edgefit.estimate._api import estimate_model as estimate_model
    from edgefit.examples import get_example as get_example
    from edgefit.examples import list_examples as list_examples
    from edgefit.graph import load_graph as load_graph
    from edgefit.iteration._api import IterationTax as IterationTax
    from edgefit.iteration._api import plan as plan
    from edgefit.report import CheckOutcome as CheckOutcome
    from edgefit.report import load_results as load_results
    from edgefit.report._gate import check as check
    from edgefit.runtimes import get_runtime as get_runtime
    from edgefit.search import OptimizeConfig as OptimizeConfig
    from edgefit.search import OptimizeResult as OptimizeResult
    from edgefit.search import ThreadsResult as ThreadsResult
    from edgefit.search._flow import optimize as optimize
    from edgefit.serve._api import serve_plan as serve_plan
    from edgefit.serve._plan import ServePlan as ServePlan
    from edgefit.targets import list_targets as list_targets
    from edgefit.targets import load_target as load_target

# public name → (module, attribute): imported on first access (PEP 562)
_LAZY = {
    "optimize": ("edgefit.search._flow", "optimize"),
    "OptimizeConfig": ("edgefit.search._config", "OptimizeConfig"),
    "OptimizeResult": ("edgefit.search._outcome", "OptimizeResult"),
    "ThreadsResult": ("edgefit.search._outcome", "ThreadsResult"),
    "check": ("edgefit.report._gate", "check"),
    "CheckOutcome": ("edgefit.report._findings", "CheckOutcome"),
    "load_results": ("edgefit.report._schema", "load_results"),
    "estimate_model": ("edgefit.estimate._api", "estimate_model"),
    "EstimateResult": ("edgefit.estimate._api", "EstimateResult"),
    "plan": ("edgefit.iteration._api", "plan"),
    "IterationTax": ("edgefit.iteration._api", "IterationTax"),
    "calibrate_target": ("edgefit.calibrate._api", "calibrate_target"),
    "CalibrationResult": ("edgefit.calibrate._api", "CalibrationResult"),
    "fidelity": ("edgefit.calibrate._fidelity_api", "fidelity"),
    "FidelityResult": ("edgefit.calibrate._fidelity_api", "FidelityResult"),
    "serve_plan": ("edgefit.serve._api", "serve_plan"),
    "ServePlan": ("edgefit.serve._plan", "ServePlan"),
    "EdgefitError": ("edgefit.errors", "EdgefitError"),
    "load_target": ("edgefit.targets", "load_target"),
    "list_targets": ("edgefit.targets", "list_targets"),
    "load_graph": ("edgefit.graph", "load_graph"),
    "Estimator": ("edgefit.estimate", "Estimator"),
    "get_runtime": ("edgefit.runtimes", "get_runtime"),
    "get_example": ("edgefit.examples", "get_example"),
    "list_examples": ("edgefit.examples", "list_examples"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'edgefit' has no attribute '{name}'")
    module, attr = _LAZY[name]
    value = getattr(import_module(module), attr)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
