"""The swap pass: a different architecture of the same model family, built by the model's factory.

The factory (``PassContext.factory``) is a built-in example's name, whose ``build(**knobs)`` makes
the model, or ``"module:function"``, a user function that takes the knobs as keyword arguments
(``width``, ``depth``, and ``resolution`` / ``activation`` when set) and returns an ``nn.Module``.

Weights carry over from the input model whenever every tensor of the new model has the same name
and shape (a resolution swap of a fully convolutional net); otherwise the new model is freshly
initialized and the metadata says it needs recovery. An activation-only swap never rebuilds: it
replaces the activation modules of a copy in place (:func:`swap_activations`), which also works for
user models without a factory.
"""

from __future__ import annotations

import copy
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.examples import ACTIVATIONS, get_example
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
    from torch import nn
else:
    nn = lazy_import("torch.nn")

SEARCH_WIDTHS = (0.25, 0.5, 0.75, 1.0)
SEARCH_DEPTHS = (0.5, 1.0)


@dataclass(frozen=True)
class SwapConfig(PassConfig):
    """Architecture knobs; ``None`` (and 1.0 for width / depth) means "as the base model is".

    >>> SwapConfig(width=0.5).is_identity(), SwapConfig().is_identity()
    (False, True)
    """

    width: float = 1.0
    depth: float = 1.0
    resolution: int | None = None
    activation: str | None = None
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        for knob in ("width", "depth"):
            value = getattr(self, knob)
            if not (is_number(value) and 0 < value <= 1):
                raise config_error(name, knob, value, "a multiplier in (0, 1]")
            self._set(knob, float(value))
        if self.resolution is not None and not (is_int(self.resolution) and self.resolution > 0):
            raise config_error(
                name, "resolution", self.resolution, "a positive integer, or None to keep it"
            )
        if self.resolution is not None:
            self._set("resolution", int(self.resolution))
        if self.activation is not None and self.activation not in ACTIVATIONS:
            raise config_error(
                name, "activation", self.activation, f"one of {', '.join(ACTIVATIONS)}, or None"
            )

    def is_identity(self) -> bool:
        return (
            self.width == 1.0
            and self.depth == 1.0
            and self.resolution is None
            and self.activation is None
        )

    def knobs(self) -> dict[str, Any]:
        """The keyword arguments a factory gets: width and depth always, the others when set."""
        extra = {
            k: getattr(self, k)
            for k in ("resolution", "activation")
            if getattr(self, k) is not None
        }
        return {"width": self.width, "depth": self.depth, **extra}

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        """Width and depth (within ``knob_space``'s ranges when given) and the activations;
        resolution is left to the user (it changes what the model sees, not only what it costs).

        >>> SwapConfig.search_space(knob_space={"width": (0.5, 1.0), "depth": (0.0, 1.0)})["width"]
        (0.5, 0.75, 1.0)
        """
        space = dict(knob_space or {})
        lo_w, hi_w = space.get("width", (0.0, 1.0))
        lo_d, hi_d = space.get("depth", (0.0, 1.0))
        return {
            "width": tuple(w for w in SEARCH_WIDTHS if lo_w <= w <= hi_w),
            "depth": tuple(d for d in SEARCH_DEPTHS if lo_d < d <= hi_d),
            "activation": (None, *space.get("activation", ("relu", "hardswish"))),
        }


def activation_module(name: str) -> torch.nn.Module:
    return {
        "relu": nn.ReLU,
        "relu6": nn.ReLU6,
        "hardswish": nn.Hardswish,
        "silu": nn.SiLU,
        "gelu": nn.GELU,
    }[name]()


def swap_activations(
    model: torch.nn.Module,
    to: str = "relu",
    kinds: Iterable[str] = ("gelu", "silu", "relu", "relu6", "hardswish"),
) -> int:
    """Replace every activation *module* of ``kinds`` in ``model`` (in place) with a fresh ``to``
    module; returns how many were replaced. Activations called as functions in ``forward``
    (``F.gelu(x)``) are invisible here and stay.

    >>> import torch
    >>> net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.GELU(), torch.nn.Linear(4, 2),
    ...                           torch.nn.SiLU())
    >>> swap_activations(net, "hardswish"), net[1]
    (2, Hardswish())
    """
    if to not in ACTIVATIONS:
        raise config_error("swap_activations", "to", to, f"one of {', '.join(ACTIVATIONS)}")
    classes = tuple(type(activation_module(k)) for k in kinds if k != to)
    target, count = type(activation_module(to)), 0
    for parent in list(model.modules()):
        for child_name, child in parent.named_children():
            if isinstance(child, classes) and not isinstance(child, target):
                setattr(parent, child_name, activation_module(to))
                count += 1
    return count


def resolve_factory(factory: str) -> Any:
    """``fn(**knobs) -> nn.Module`` for an example name or a ``"module:function"`` string."""
    if ":" not in factory:
        spec = get_example(factory)
        return lambda **knobs: spec.build(**knobs, pretrained=True)
    module_name, _, attr = factory.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise EdgefitError(
            f"cannot import factory {factory!r}: {exc}",
            where="PassContext.factory",
            fix="give 'package.module:function' importable from sys.path",
        ) from None
    if not callable(fn):
        raise EdgefitError(
            f"factory {factory!r} is not callable",
            where="PassContext.factory",
            fix="point at a function taking width=, depth=, resolution=, activation=",
        )
    return fn


def build_base(name: str) -> torch.nn.Module:
    """The base model of an example name (its pretrained default) or of a ``"module:function"``
    factory called with no arguments (its defaults)."""
    return resolve_factory(name)() if ":" in name else resolve_factory(name)(width=1.0, depth=1.0)


def _carry_weights(new: torch.nn.Module, old: torch.nn.Module) -> bool:
    """Load ``old``'s weights into ``new`` when every tensor matches by name and shape."""
    a, b = new.state_dict(), old.state_dict()
    if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in a):
        return False
    new.load_state_dict(b)
    return True


@register_pass(SwapConfig, name="swap", consumes="torch", change_kind="architecture")
def swap_architecture(
    model: torch.nn.Module | None, config: SwapConfig, context: PassContext
) -> PassResult:
    """Build the swapped architecture (or swap activations in a copy of ``model``)."""
    meta: dict[str, Any] = {"pass": "swap", **config.knobs()}
    if config.is_identity():
        return PassResult(model, {**meta, "recipe": "none: the base architecture"}, None)
    only_activation = config.width == 1.0 and config.depth == 1.0 and config.resolution is None
    if only_activation and config.activation is not None and isinstance(model, nn.Module):
        new = copy.deepcopy(model)
        if not swap_activations(new, config.activation):
            raise PassNotApplicable(
                f"no activation module to turn into {config.activation}",
                where="SwapConfig.activation",
                fix="the model calls its activations as "
                "functions (or uses that one already); give a factory instead",
            )
        return PassResult(
            new.eval(),
            {
                **meta,
                "recipe": f"activation modules swapped in place to {config.activation}",
                "weights": "carried over from the base",
            },
            "architecture",
        )
    if context.factory is None:
        raise PassNotApplicable(
            "width / depth / resolution swaps rebuild the model and need its factory",
            where="PassContext.factory",
            fix="give an example name or 'module:function'",
        )
    new = resolve_factory(context.factory)(**config.knobs())
    if not isinstance(new, nn.Module):
        raise EdgefitError(
            f"factory {context.factory!r} returned {type(new).__name__}, not an nn.Module",
            where="PassContext.factory",
            fix="return the model from the factory",
        )
    carried = isinstance(model, nn.Module) and _carry_weights(new, model)
    meta.update(
        {
            "recipe": f"rebuilt by factory {context.factory!r}",
            "weights": "carried over from the base"
            if carried
            else "as the factory made them (fresh unless it loads trained ones): recover to train",
        }
    )
    return PassResult(new.eval(), meta, "architecture")
