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
import importlib.util
from typing import TYPE_CHECKING, Any

from edgefit.runtimes._torch import import_torchao

if TYPE_CHECKING:
    import torch

# name → (torchao config class, the target dtype it needs)
CONFIGS: dict[str, tuple[str, str]] = {
    "int8-dynamic": ("Int8DynamicActivationInt8WeightConfig", "int8"),
    "int8-weight": ("Int8WeightOnlyConfig", "int8"),
    "int4-weight": ("Int4WeightOnlyConfig", "int4"),
    "float8-dynamic": ("Float8DynamicActivationFloat8WeightConfig", "fp8"),
}
MSLK_MIN = "1.0.0"


def unavailable_reason(name: str) -> str | None:
    """Why torchao config ``name`` cannot run on this machine (None: it can). Checks what torchao
    would assert, before it does."""
    if name == "int4-weight":
        if importlib.util.find_spec("mslk") is None:
            return (
                f"torchao Int4WeightOnlyConfig needs the mslk kernels (>= {MSLK_MIN}), which "
                "are not installed here"
            )
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("mslk")
        except PackageNotFoundError:
            found = "0"
        if tuple(int(p) for p in found.split(".")[:2] if p.isdigit()) < (1, 0):
            return f"torchao Int4WeightOnlyConfig needs mslk >= {MSLK_MIN}, found {found}"
    if name == "float8-dynamic":
        import torch

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
    from torch import nn

    return isinstance(module, nn.Linear) or bool(getattr(type(module), "LINEAR_WEIGHT", False))


def linear_names(model: torch.nn.Module) -> list[str]:
    """The modules of ``model`` that torchao would quantize (empty: nothing to do)."""
    return [name for name, m in model.named_modules() if is_linear(m)]


def quantize_linears(model: torch.nn.Module, name: str) -> tuple[torch.nn.Module, dict[str, Any]]:
    """A copy of ``model`` with every linear quantized by torchao config ``name``, and the recipe
    (config, call, torchao version, how many layers, calibration) for the artifact's metadata."""
    torchao = import_torchao()
    from torchao import quantization

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
