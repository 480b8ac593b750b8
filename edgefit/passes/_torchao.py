"""The torchao pass: torch module in, a torchao-quantized copy out
(``torchao.quantization.quantize_``).

torchao replaces the weight of every ``nn.Linear`` with a quantized tensor subclass; the module is
then saved as a ``torch.export`` program (see :func:`edgefit.passes.materialize`) and timed on the
``torch`` runtime under ``torch.compile``.

* ``int8-dynamic``: ``Int8DynamicActivationInt8WeightConfig`` — int8 weights, activations quantized
  per token at run time. Runs on CPU; worth it only compiled (eager it is several times slower).
* ``int8-weight``: ``Int8WeightOnlyConfig`` — int8 weights dequantized on the fly, float compute.
* ``int4-weight``: ``Int4WeightOnlyConfig`` — needs the ``mslk`` kernels (>= 1.0.0) and a CUDA GPU.
* ``float8-dynamic``: ``Float8DynamicActivationFloat8WeightConfig`` — needs a CUDA GPU of compute
  capability 8.9 or newer (Ada, Hopper).

What cannot run here is refused up front with :class:`PassNotApplicable` and the reason, never by a
crash inside torchao.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    config_error,
    register_pass,
)
from edgefit.passes._context import PassContext
from edgefit.passes._precision import Precision, register_precision
from edgefit.runtimes._torchao import (
    CONFIGS,
    linear_names,
    quantize_linears,
    unavailable_reason,
)

if TYPE_CHECKING:
    import torch
    from torch import nn
else:
    nn = lazy_import("torch.nn")


@dataclass(frozen=True)
class TorchaoConfig(PassConfig):
    """Which torchao config quantizes the module's ``nn.Linear`` layers (see the module docstring).

    >>> TorchaoConfig(config="int8-dynamic").to_dict()
    {'type': 'TorchaoConfig', 'config': 'int8-dynamic', 'version': 1}
    >>> TorchaoConfig(config="int2")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: TorchaoConfig.config: config='int2' is not allowed
    (fix: use one of int8-dynamic, int8-weight, int4-weight, float8-dynamic)
    """

    config: str = "int8-dynamic"
    version: int = 1

    def __post_init__(self) -> None:
        self._check_version()
        if self.config not in CONFIGS:
            raise config_error(
                type(self).__name__, "config", self.config, f"one of {', '.join(CONFIGS)}"
            )

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        """The configs whose dtype the target computes in (no dtypes given: every config).

        >>> TorchaoConfig.search_space(["fp32", "int8"])["config"]
        ('int8-dynamic', 'int8-weight')
        """
        dtypes = {d.lower() for d in target_dtypes} or {dtype for _, dtype in CONFIGS.values()}
        return {"config": tuple(name for name, (_, dtype) in CONFIGS.items() if dtype in dtypes)}

    @property
    def torchao_class(self) -> str:
        return CONFIGS[self.config][0]


@register_pass(TorchaoConfig, name="torchao", consumes="torch", change_kind="quantization")
def torchao_quantize(
    model: torch.nn.Module, config: TorchaoConfig, context: PassContext
) -> PassResult:
    """A copy of ``model`` with every ``nn.Linear`` quantized by ``config``'s torchao config."""
    where = f"TorchaoConfig(config='{config.config}')"
    if not isinstance(model, nn.Module):
        raise PassNotApplicable(
            f"torchao quantizes a torch module, not {type(model).__name__}",
            where=where,
            fix="give the torch model (a built-in example or --factory), or use QuantizeConfig",
        )
    reason = unavailable_reason(config.config)
    if reason:
        raise PassNotApplicable(
            reason, where=where, fix="use config='int8-dynamic' or 'int8-weight'"
        )
    if not linear_names(model):
        raise PassNotApplicable(
            "the model has no nn.Linear layer for torchao to quantize",
            where=where,
            fix="use QuantizeConfig (ONNX int8) for convolution-only models",
        )
    quantized, recipe = quantize_linears(model, config.config)
    return PassResult(quantized, {"pass": "torchao", **recipe}, "quantization")


_NOTE = (
    "estimated from the fp32 ONNX graph with every kernel at int8 (the .pt2 is torchao-quantized)"
)


# The precisions this pass makes (edgefit.passes._precision): int8 on the torch module, searched
# only for torch bases whose nn.Linear layers carry the MACs.
def _torchao(config: str) -> Callable[[str, int], TorchaoConfig]:
    def build(calibration: str, keep_float: int) -> TorchaoConfig:
        return TorchaoConfig(config=config)

    return build


for _config, _risk, _extra in (
    ("int8-dynamic", 0.25, ""),
    (
        "int8-weight",
        0.15,
        "; weight-only int8 computes in float, so int8 compute is optimistic: only weight "
        "bytes shrink",
    ),
):
    register_precision(
        Precision(
            f"torchao-{_config}",
            "int8",
            _risk,
            lambda t: t.torch_base and "int8" in t.target_dtypes,
            build=_torchao(_config),
            slot="torchao",
            estimate_note=_NOTE + _extra,
        )
    )
