"""Passes: turn a candidate plan into a real model (torchao-style configs, Olive-style search
spaces).

Each pass is a frozen, versioned config dataclass plus a handler registered for its type. The
config declares the fields a search may vary (``search_space``); :func:`apply_pass` finds the
handler; :func:`materialize` runs a whole :class:`PassPlan` in order swap → prune → recover →
export → quantize (or, for a torch model, swap → prune → recover → torchao, saved as a
``torch.export`` program). For a model that arrives as an ONNX file, :func:`search_recipe` chooses
its int8 recipe (types, format, calibration, nodes kept float, session options) by measurement.

>>> from edgefit.passes import QuantizeConfig, config_from_dict, list_passes
>>> [p.name for p in list_passes()][:5]
['swap', 'prune', 'recover', 'quantize', 'torchao']
>>> cfg = QuantizeConfig(precision="int8", calibration="entropy")
>>> config_from_dict(cfg.to_dict()) == cfg
True
>>> QuantizeConfig.search_space(["fp32", "int8"])["precision"]
('fp32', 'int8', 'int8-dynamic')

Every module of this package is imported with it, so a pass module registers its pass (and the
precisions it makes, :mod:`edgefit.passes._precision`) by being here: adding a pass is adding one
module and its test. Importing this package loads neither torch nor onnxruntime; running a pass
does.
"""

import pkgutil
from importlib import import_module

from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    PassSpec,
    apply_pass,
    config_from_dict,
    get_pass,
    list_passes,
    register_pass,
)
from edgefit.passes._context import PassContext
from edgefit.passes._materialize import Materialized, materialize
from edgefit.passes._plan import PassPlan, model_fingerprint
from edgefit.passes._precision import (
    Precision,
    Traits,
    applicable,
    get_precision,
    precisions,
    register_precision,
)
from edgefit.passes._prune import PruneConfig, sparsity, two_four_mask  # noqa: I001
from edgefit.passes._quantize import QuantizeConfig
from edgefit.passes._recipe import Recipe, ort_defaults
from edgefit.passes._recipe_search import RecipeChoice, Tried, search_recipe
from edgefit.passes._recover import RecoverConfig
from edgefit.passes._sensitivity import LayerSensitivity, layer_sensitivity, most_sensitive
from edgefit.passes._swap import (
    SwapConfig,
    resolve_factory,
    swap_activations,
)  # registration order = run order
from edgefit.passes._torchao import TorchaoConfig

for _module in pkgutil.iter_modules(__path__):  # after the built-in passes: they run in this order
    import_module(f"{__name__}.{_module.name}")

__all__ = [
    "LayerSensitivity",
    "Materialized",
    "PassConfig",
    "PassContext",
    "PassNotApplicable",
    "PassPlan",
    "PassResult",
    "PassSpec",
    "Precision",
    "PruneConfig",
    "QuantizeConfig",
    "Recipe",
    "RecipeChoice",
    "RecoverConfig",
    "SwapConfig",
    "Traits",
    "TorchaoConfig",
    "Tried",
    "applicable",
    "apply_pass",
    "config_from_dict",
    "get_pass",
    "get_precision",
    "layer_sensitivity",
    "list_passes",
    "materialize",
    "model_fingerprint",
    "precisions",
    "most_sensitive",
    "ort_defaults",
    "register_pass",
    "register_precision",
    "resolve_factory",
    "search_recipe",
    "sparsity",
    "swap_activations",
    "two_four_mask",
]
