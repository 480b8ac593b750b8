"""The prune pass: torch module in, a pruned copy out (the input, often the distillation teacher,
is never modified).

* ``unstructured``: per layer, the ``amount`` smallest-|w| weights of every Conv/Linear set to zero
  (``torch.nn.utils.prune.l1_unstructured``, then ``prune.remove`` bakes the zeros in). Same
  shapes, same MACs on dense kernels: it pays off only on sparse kernels or after compression.
* ``2:4``: in every group of 4 consecutive input weights, the 2 smallest-|w| set to zero, the
  pattern sparse tensor cores run at 2× (NVIDIA Ampere and later). ``amount`` is 0.5 by definition.
* ``channel``: structured, dependency-aware channel pruning with torch-pruning (residual groups,
  BatchNorm and the layers that read a pruned channel shrink together); the final classifier keeps
  its outputs. The result really has fewer channels, parameters and MACs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError, require
from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    config_error,
    is_int,
    is_number,
    register_pass,
)
from edgefit.passes._context import PassContext

if TYPE_CHECKING:
    import torch
    import torch.nn.utils.prune as torch_prune
    from torch import nn

    Weighted = nn.Linear | nn.Conv1d | nn.Conv2d | nn.Conv3d
else:
    torch, nn, torch_prune = lazy_import("torch", "torch.nn", "torch.nn.utils.prune")

METHODS = ("unstructured", "2:4", "channel")
SEARCH_AMOUNTS = (0.25, 0.5, 0.75)


@dataclass(frozen=True)
class PruneConfig(PassConfig):
    """What to prune and how much: ``amount`` is the fraction of weights (unstructured), of
    channels per group (channel) or 0.5 (2:4). ``round_to`` keeps channel counts multiples of it
    (channel only; 8 suits most accelerators' vector widths).

    >>> PruneConfig(method="channel", amount=1.0)  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: PruneConfig.amount: amount=1.0 is not allowed
    (fix: use a fraction in (0, 1))
    """

    method: str = "unstructured"
    amount: float = 0.5
    round_to: int = 1
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        if self.method not in METHODS:
            raise config_error(name, "method", self.method, f"one of {', '.join(METHODS)}")
        if not (is_number(self.amount) and 0 < self.amount < 1):
            raise config_error(name, "amount", self.amount, "a fraction in (0, 1)")
        if self.method == "2:4" and self.amount != 0.5:
            raise config_error(
                name, "amount", self.amount, "0.5 with method='2:4' (2 of every 4 weights)"
            )
        if not (is_int(self.round_to) and self.round_to >= 1):
            raise config_error(
                name, "round_to", self.round_to, "a positive integer (1: no rounding)"
            )
        self._set("amount", float(self.amount))
        if self.method != "channel":
            self._set("round_to", 1)

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        """Structured channel pruning only: the one method that shrinks MACs on dense kernels.
        Unstructured and 2:4 stay available to ask for by hand (2:4 pays off on sparse tensor
        cores)."""
        return {"method": ("channel",), "amount": SEARCH_AMOUNTS}


def _weighted(model: torch.nn.Module) -> list[tuple[str, Weighted]]:
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d))
    ]


def sparsity(model: torch.nn.Module) -> float:
    """The fraction of exactly-zero weights over all Conv/Linear weights."""
    layers = _weighted(model)
    total = sum(m.weight.numel() for _, m in layers)
    return sum(int((m.weight == 0).sum()) for _, m in layers) / max(total, 1)


def unstructured(model: torch.nn.Module, amount: float) -> dict[str, Any]:
    for _, module in _weighted(model):
        torch_prune.l1_unstructured(module, "weight", amount=amount)
        torch_prune.remove(module, "weight")
    return {
        "recipe": f"torch.nn.utils.prune.l1_unstructured(amount={amount}) per Conv/Linear, then "
        "prune.remove"
    }


def two_four_mask(weight: torch.Tensor) -> torch.Tensor | None:
    """The 2:4 keep-mask of a Linear ``(out, in)`` or Conv ``(out, in, *k)`` weight: groups of 4
    consecutive input channels (at each kernel position), the 2 largest |w| kept. ``None`` when the
    input dimension is not a multiple of 4 (the layer is left dense)."""
    if weight.shape[1] % 4:
        return None
    w = weight.detach().movedim(1, -1)  # (out, *k, in): groups run along the input dimension
    groups = w.abs().reshape(-1, 4)
    keep = torch.zeros_like(groups, dtype=torch.bool)
    keep.scatter_(1, groups.topk(2, dim=1).indices, True)
    return keep.reshape(w.shape).movedim(-1, 1)


def semi_structured(model: torch.nn.Module) -> dict[str, Any]:
    skipped = []
    with torch.no_grad():
        for name, module in _weighted(model):
            mask = two_four_mask(module.weight)
            if mask is None:
                skipped.append(name)
            else:
                module.weight.mul_(mask)
    return {
        "recipe": "2:4 semi-structured: 2 smallest |w| of every 4 consecutive input weights "
        "zeroed",
        "dense_layers": skipped,
        "dense_reason": "input dimension not a multiple of 4" if skipped else None,
    }


def classifier_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The layer(s) torch-pruning must not shrink: the last Conv/Linear, whose outputs are the
    model's."""
    layers = _weighted(model)
    return [layers[-1][1]] if layers else []


def channel(
    model: torch.nn.Module,
    amount: float,
    round_to: int,
    input_shape: tuple[int, ...] | None,
    input_dtype: str = "float32",
) -> tuple[torch.nn.Module, dict[str, Any]]:
    tp = require("torch_pruning", extra="prune", purpose="structured channel pruning")
    if input_shape is None:
        raise EdgefitError(
            "channel pruning traces the model and needs its input shape",
            where="PassContext.input_shape",
            fix="pass PassContext(input_shape=(1, 3, 224, 224))",
        )
    example = torch.zeros(
        input_shape, dtype=torch.int64 if input_dtype == "int64" else torch.float32
    )
    model.eval()
    macs_before, params_before = tp.utils.count_ops_and_params(model, example)
    pruner = tp.pruner.MetaPruner(
        model,
        example,
        importance=tp.importance.GroupMagnitudeImportance(p=2),
        pruning_ratio=amount,
        ignored_layers=classifier_layers(model),
        round_to=round_to if round_to > 1 else None,
    )
    pruner.step()
    macs, params = tp.utils.count_ops_and_params(model, example)
    if params >= params_before:
        raise PassNotApplicable(
            "torch-pruning found no channel group it could prune",
            where="PruneConfig(method='channel')",
            fix="use method='unstructured'",
        )
    return model, {
        "recipe": f"torch_pruning.MetaPruner(GroupMagnitudeImportance(p=2), pruning_ratio={amount}"
        f"{f', round_to={round_to}' if round_to > 1 else ''}), last layer ignored",
        "macs_before": int(macs_before),
        "macs_after": int(macs),
        "params_before": int(params_before),
        "params_after": int(params),
        "macs_source": f"torch_pruning.utils.count_ops_and_params at input {list(input_shape)}",
    }


@register_pass(PruneConfig, name="prune", consumes="torch", change_kind="pruning")
def prune_module(model: torch.nn.Module, config: PruneConfig, context: PassContext) -> PassResult:
    """Prune a copy of ``model``; metadata says what was done and the weight sparsity reached."""
    if not isinstance(model, nn.Module):
        raise PassNotApplicable(
            f"pruning needs a torch module, not {type(model).__name__}",
            where="PruneConfig",
            fix="give the torch model (an ONNX-only base cannot be pruned here)",
        )
    model = copy.deepcopy(model)
    if config.method == "unstructured":
        meta = unstructured(model, config.amount)
    elif config.method == "2:4":
        meta = semi_structured(model)
    else:
        model, meta = channel(
            model, config.amount, config.round_to, context.input_shape, context.input_dtype
        )
    return PassResult(
        model.eval(),
        {
            "pass": "prune",
            "method": config.method,
            "amount": config.amount,
            **meta,
            "weight_sparsity": round(sparsity(model), 4),
        },
        "pruning",
    )
