"""The example registry: ``@register_example`` on tiny entry points, timm style.

An entry point takes the validated :class:`Knobs` (and ``pretrained``) and returns a
``torch.nn.Module``. torch is a lazy proxy here (:func:`edgefit._lazy.lazy_import`), so ``import
edgefit.examples`` stays light; torch loads when a model is built.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from edgefit._checks import is_int as _is_int
from edgefit._checks import is_number as _is_number
from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import torch
else:
    torch = lazy_import("torch")

KNOBS_VERSION = 1
ACTIVATIONS: tuple[str, ...] = ("relu", "relu6", "hardswish", "silu", "gelu")
WIDTH_RANGE = (0.25, 1.0)
DEPTH_RANGE = (0.0, 1.0)  # open at 0: at least one repeated block per stage is always kept

Track = Literal["vision", "orin", "glasses", "hearable", "h100", "general"]


def _knob_error(
    knob: str, value: object, allowed: str, example: str | None = None
) -> EdgefitError:
    owner = f" for example '{example}'" if example else ""
    return EdgefitError(
        f"{knob}={value!r} is not allowed{owner}", where=f"--{knob}", fix=f"use {allowed}"
    )


@dataclass(frozen=True)
class Knobs:
    """The architecture swaps an optimizer searches, validated on creation.

    ``width`` multiplies every channel count (rounded to a multiple of 8), ``depth`` is the
    fraction of each stage's repeated blocks kept (at least one per stage), ``resolution`` is the
    input's spatial size (time length for audio, sequence length for text) and ``activation``
    replaces every activation.

    >>> Knobs(resolution=32).to_dict()
    {'resolution': 32, 'width': 1.0, 'depth': 1.0, 'activation': 'relu', 'version': 1}
    >>> Knobs.from_dict(Knobs(resolution=32, width=0.5).to_dict()).width
    0.5
    """

    resolution: int
    width: float = 1.0
    depth: float = 1.0
    activation: str = "relu"
    version: int = KNOBS_VERSION

    def __post_init__(self) -> None:
        lo, hi = WIDTH_RANGE
        if not (_is_number(self.width) and lo <= self.width <= hi):
            raise _knob_error("width", self.width, f"a channel multiplier in [{lo}, {hi}]")
        if not (_is_number(self.depth) and 0.0 < self.depth <= 1.0):
            raise _knob_error(
                "depth", self.depth, "a fraction in (0, 1] of the repeated blocks kept per stage"
            )
        if not (_is_int(self.resolution) and self.resolution > 0):
            raise _knob_error("resolution", self.resolution, "a positive integer input size")
        if self.activation not in ACTIVATIONS:
            raise _knob_error("activation", self.activation, f"one of {', '.join(ACTIVATIONS)}")
        if self.version != KNOBS_VERSION:
            raise EdgefitError(
                f"knobs version {self.version} is not supported", fix=f"use {KNOBS_VERSION}"
            )
        # plain Python types: width 1 and 1.0 (or numpy scalars from a grid) are the same knobs and
        # hash alike
        for name, kind in (("width", float), ("depth", float), ("resolution", int)):
            object.__setattr__(self, name, kind(getattr(self, name)))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Knobs:
        unknown = set(data) - {"width", "depth", "resolution", "activation", "version"}
        if unknown:
            raise EdgefitError(
                f"unknown knob(s) {sorted(unknown)}",
                fix="use width, depth, resolution, activation",
            )
        return cls(**data)


Factory = Callable[[Knobs, bool], "torch.nn.Module"]


@dataclass(frozen=True)
class ExampleSpec:
    """A built-in example model: what it is, its input, and the knobs it supports.

    >>> spec = get_example("resnet18")
    >>> spec.input_shape, spec.trained
    ((1, 3, 224, 224), False)
    >>> spec.shape_for(resolution=160)
    (1, 3, 160, 160)
    """

    name: str
    description: str
    track: Track
    input_shape: tuple[int, ...]
    trained: bool
    num_classes: int | None
    defaults: Knobs
    resolution_range: tuple[int, int]
    resolution_axes: tuple[int, ...]
    input_dtype: Literal["float32", "int64"] = "float32"
    input_high: int | None = None  # exclusive upper bound of integer (token id) inputs
    factory: Factory = field(default=None, repr=False, compare=False)  # type: ignore[assignment]

    @property
    def knobs(self) -> tuple[str, ...]:
        return ("width", "depth", "resolution", "activation")

    def knob_space(self) -> dict[str, tuple]:
        """What an optimizer may search: ranges as ``(lo, hi)``, choices as a tuple of names.

        >>> get_example("digits-cnn").knob_space()["resolution"]
        (8, 128)
        """
        return {
            "width": WIDTH_RANGE,
            "depth": DEPTH_RANGE,
            "resolution": self.resolution_range,
            "activation": ACTIVATIONS,
        }

    def resolve_knobs(
        self,
        width: float | None = None,
        depth: float | None = None,
        resolution: int | None = None,
        activation: str | None = None,
    ) -> Knobs:
        """The defaults with the given knobs replaced, validated (raises :class:`EdgefitError`)."""
        given = {
            "width": width,
            "depth": depth,
            "resolution": resolution,
            "activation": activation,
        }
        try:
            changes: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
            knobs = replace(self.defaults, **changes)
        except EdgefitError as exc:
            raise EdgefitError(
                f"{exc.what} for example '{self.name}'", where=exc.where, fix=exc.fix
            ) from None
        lo, hi = self.resolution_range
        if not lo <= knobs.resolution <= hi:
            raise _knob_error(
                "resolution", knobs.resolution, f"an integer in [{lo}, {hi}]", self.name
            )
        return knobs

    def shape_for(self, resolution: int | None = None, batch: int = 1) -> tuple[int, ...]:
        """The input shape at ``resolution`` (default: the example's) and ``batch``."""
        res = self.resolve_knobs(resolution=resolution).resolution
        shape = [batch, *self.input_shape[1:]]
        for axis in self.resolution_axes:
            shape[axis] = res
        return tuple(shape)

    def build(
        self,
        width: float | None = None,
        depth: float | None = None,
        resolution: int | None = None,
        activation: str | None = None,
        *,
        pretrained: bool = True,
        seed: int = 0,
    ) -> torch.nn.Module:
        """Build the model in eval mode.

        Architecture-only examples are randomly initialized from ``seed`` (the same seed gives the
        same weights). A trained example returns its trained weights for the default knobs when
        ``pretrained`` (training on first use, then cached); other knobs give an untrained net of
        that shape, for the optimizer to fine-tune.

        >>> model = get_example("ds-cnn-kws").build(width=0.5)
        >>> model(get_example("ds-cnn-kws").example_input()).shape
        torch.Size([1, 12])
        """
        knobs = self.resolve_knobs(width, depth, resolution, activation)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = self.factory(knobs, pretrained)
        return model.eval()

    def example_input(
        self, batch: int = 1, resolution: int | None = None, seed: int = 0
    ) -> torch.Tensor:
        """A seeded random input of the example's shape and dtype (token ids for text examples).

        >>> get_example("tiny-transformer").example_input().shape
        torch.Size([1, 128])
        """
        shape = self.shape_for(resolution, batch)
        gen = torch.Generator().manual_seed(seed)
        if self.input_dtype == "int64":
            return torch.randint(0, self.input_high or 2, shape, generator=gen, dtype=torch.int64)
        return torch.randn(shape, generator=gen)


_REGISTRY: dict[str, ExampleSpec] = {}


def register_example(
    *,
    description: str,
    track: Track,
    input_shape: tuple[int, ...],
    num_classes: int | None,
    resolution_range: tuple[int, int],
    resolution_axes: tuple[int, ...],
    activation: str = "relu",
    trained: bool = False,
    input_dtype: Literal["float32", "int64"] = "float32",
    input_high: int | None = None,
    name: str | None = None,
) -> Callable[[Factory], Factory]:
    """Register an entry point ``fn(knobs, pretrained) -> nn.Module``; its name is the function's,
    with ``_`` spelled ``-`` (``ds_cnn_kws`` → ``ds-cnn-kws``).

    >>> @register_example(description="a doc example", track="general", input_shape=(1, 4),
    ...                   num_classes=2, resolution_range=(1, 8), resolution_axes=(1,),
    ...                   name="doc-linear")
    ... def doc_linear(knobs, pretrained):
    ...     import torch
    ...     return torch.nn.Linear(knobs.resolution, 2)
    >>> get_example("doc-linear").build(resolution=8).in_features
    8
    >>> _ = _REGISTRY.pop("doc-linear")
    """

    def wrap(fn: Factory) -> Factory:
        key = name or fn.__name__.replace("_", "-")
        if key in _REGISTRY:
            raise ValueError(f"example '{key}' is registered twice")
        defaults = Knobs(resolution=input_shape[resolution_axes[0]], activation=activation)
        _REGISTRY[key] = ExampleSpec(
            key, description, track, tuple(input_shape), trained, num_classes, defaults,
            resolution_range, resolution_axes, input_dtype, input_high, fn,
        )  # fmt: skip
        return fn

    return wrap


def list_examples(pattern: str = "*") -> list[ExampleSpec]:
    """Every registered example whose name matches the shell-style ``pattern``, sorted by name.

    >>> [s.name for s in list_examples("*cnn*")]
    ['digits-cnn', 'ds-cnn-kws']
    """
    return [_REGISTRY[n] for n in sorted(_REGISTRY) if fnmatch.fnmatch(n, pattern)]


def get_example(name: str) -> ExampleSpec:
    """The example called ``name``.

    >>> get_example("mobilenetv2").track
    'glasses'
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    raise EdgefitError(
        f"unknown example '{name}'",
        where="--example",
        fix=f"use one of {', '.join(sorted(_REGISTRY))}",
    )
