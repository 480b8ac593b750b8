"""torchao at the runtime level: what each config name means, which modules it quantizes, and the
one call that quantizes them.

The torch runtime makes its ``int8-dynamic`` artifacts with it and the torchao pass
(:class:`edgefit.passes.TorchaoConfig`) applies it to a search candidate, so the two agree on the
recipe while the runtimes never import the passes (passes sit on top of runtimes, see
``tests/packaging/test_layers.py``). Whether a config *applies* to a model is the caller's
question: the pass answers it with :class:`~edgefit.passes.PassNotApplicable`, the runtime with
its own error.
"""

from __future__ import annotations

import copy
import importlib.metadata
import importlib.util
import logging
import warnings
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.runtimes._quiet import captured_output

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch")

PIP_TORCHAO = 'pip install "edgefit[torchao]" -c constraints.txt'

# name → (torchao config class, the target dtype it needs)
CONFIGS: dict[str, tuple[str, str]] = {
    "int8-dynamic": ("Int8DynamicActivationInt8WeightConfig", "int8"),
    "int8-weight": ("Int8WeightOnlyConfig", "int8"),
    "int4-weight": ("Int4WeightOnlyConfig", "int4"),
    "float8-dynamic": ("Float8DynamicActivationFloat8WeightConfig", "fp8"),
}
MSLK_MIN = "1.0.0"


def import_torchao():
    """Import torchao with its import-time noise silenced (a failed CUDA/mxfp8 ``.so`` load, a
    ``register_constant`` deprecation warning); a missing torchao is a
    :class:`MissingDependencyError`."""
    require("torch", extra="dev", purpose="torchao quantization")
    if importlib.util.find_spec("torchao") is None:
        return require("torchao", extra="torchao", purpose="torchao quantization")
    pytree = logging.getLogger("torch.utils._pytree")
    level = pytree.level
    pytree.setLevel(logging.ERROR)
    try:
        with captured_output() as noise, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                import torchao
                import torchao.quantization  # noqa: F401
            except ImportError as exc:
                raise EdgefitError(
                    f"torchao does not import: {exc}",
                    where="torchao",
                    fix=f"reinstall it: {PIP_TORCHAO}",
                ) from exc
    finally:
        pytree.setLevel(level)
    del noise
    return torchao


def unavailable_reason(name: str) -> str | None:
    """Why torchao config ``name`` cannot run on this machine (None: it can). Checks what torchao
    would assert, before it does."""
    if name == "int4-weight":
        if importlib.util.find_spec("mslk") is None:
            return (
                f"torchao Int4WeightOnlyConfig needs the mslk kernels (>= {MSLK_MIN}), which "
                "are not installed here"
            )
        try:
            found = importlib.metadata.version("mslk")
        except importlib.metadata.PackageNotFoundError:
            found = "0"
        if tuple(int(p) for p in found.split(".")[:2] if p.isdigit()) < (1, 0):
            return f"torchao Int4WeightOnlyConfig needs mslk >= {MSLK_MIN}, found {found}"
    if name == "float8-dynamic":
        if not torch.cuda.is_available():
            return (
                "torchao float8 needs a CUDA GPU of compute capability 8.9 or newer; there is "
                "no CUDA GPU here"
            )
        capability = torch.cuda.get_device_capability()
        if capability < (8, 9):
            return (
                f"torchao float8 needs a CUDA GPU of compute capability 8.9 or newer; this one is "
                f"{capability[0]}.{capability[1]}"
            )
    return None


def is_linear(module: torch.nn.Module, fqn: str = "") -> bool:
    """An ``nn.Linear``, or a module flagged ``LINEAR_WEIGHT`` whose ``weight`` feeds ``F.linear``
    (the ONNX→torch rebuild's MatMul weights): what torchao quantizes."""
    return isinstance(module, torch.nn.Linear) or bool(
        getattr(type(module), "LINEAR_WEIGHT", False)
    )


def linear_names(model: torch.nn.Module) -> list[str]:
    """The modules of ``model`` that torchao would quantize (empty: nothing to do)."""
    return [name for name, m in model.named_modules() if is_linear(m)]


def quantize_linears(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A copy of ``model`` with every linear quantized by torchao config ``name``, and the recipe
    (config, call, torchao version, how many layers, calibration) for the artifact's metadata."""
    torchao = import_torchao()
    quantization = torchao.quantization
    cls = CONFIGS[name][0]
    linears = linear_names(model)
    quantized = copy.deepcopy(model).eval()
    quantization.quantize_(quantized, getattr(quantization, cls)(), filter_fn=is_linear)
    return quantized, {
        "config": name,
        "recipe": f"torchao.quantization.quantize_(module, {cls}()) on {len(linears)} nn.Linear",
        "torchao": torchao.__version__,
        "linear_layers": len(linears),
        "calibration": "none (dynamic activations)"
        if name.endswith("dynamic")
        else "none (weight-only)",
    }
