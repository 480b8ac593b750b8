"""Pass configs and the pass registry, torchao style: a frozen config type → the handler that
applies it.

A pass is one config class (data only: frozen, validated on creation, versioned, round-trips
through a plain dict) plus one handler registered for that class with :func:`register_pass`. The
config class also declares which of its fields a search may vary and over which choices
(``search_space``, Olive style): the search engine only asks, it never knows a pass's internals.

Only registered config types load back from a dict (:func:`config_from_dict`): a dict cannot name
an arbitrary class.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar, cast

from edgefit._checks import is_int, is_number  # noqa: F401 (re-exported for the pass modules)
from edgefit.errors import EdgefitError
from edgefit.passes._context import PassContext

Consumes = Literal["torch", "onnx"]
Choices = tuple  # the values a search may pick for one field, in a stable order


class PassNotApplicable(EdgefitError):
    """The pass cannot apply to this model (int4 weight-only on a model with no MatMul/Gemm, an
    activation swap on a model with no activation modules). A search skips the candidate; it is not
    a bug in the model or the config."""


def config_error(cls_name: str, name: str, value: object, allowed: str) -> EdgefitError:
    """The error every config raises for a bad field: it names the config, the field and the
    fix."""
    return EdgefitError(
        f"{name}={value!r} is not allowed", where=f"{cls_name}.{name}", fix=f"use {allowed}"
    )


@dataclass(frozen=True)
class PassConfig:
    """Base of every pass config. Subclasses are frozen dataclasses whose last field is
    ``version: int = VERSION``; ``__post_init__`` validates every field with :func:`config_error`.

    >>> from edgefit.passes import PruneConfig, config_from_dict
    >>> PruneConfig(method="2:4").to_dict()
    {'type': 'PruneConfig', 'method': '2:4', 'amount': 0.5, 'round_to': 1, 'version': 1}
    >>> config_from_dict(PruneConfig(method="2:4").to_dict()) == PruneConfig(method="2:4")
    True
    """

    VERSION: ClassVar[int] = 1

    def _check_version(self) -> None:
        if getattr(self, "version", None) != self.VERSION:
            raise config_error(
                type(self).__name__,
                "version",
                getattr(self, "version", None),
                f"{self.VERSION} (this edgefit reads version {self.VERSION} only)",
            )

    def _set(self, name: str, value: Any) -> None:
        """Normalize a field inside ``__post_init__`` (lists → tuples, 1 → 1.0) so equal configs
        hash alike."""
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data: ``type`` (the allow-listed class name), the fields,
        ``version``."""
        data = asdict(self)
        return {
            "type": type(self).__name__,
            **{k: list(v) if isinstance(v, tuple) else v for k, v in data.items()},
        }

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, Choices]:
        """Field → the choices a search may try, for a target supporting ``target_dtypes`` and a
        model whose architecture knobs span ``knob_space`` (an example's
        :meth:`ExampleSpec.knob_space`). Fields not listed are not searched. Every combination
        builds a valid config."""
        return {}


Handler = Callable[[Any, PassConfig, "PassContext"], "PassResult"]
C = TypeVar("C", bound=PassConfig)
HandlerOf = Callable[[Any, C, "PassContext"], "PassResult"]  # a handler of one config type


@dataclass(frozen=True)
class PassResult:
    """What a handler returns: the new model (a torch module, or the path of an ONNX file), what
    was done (``metadata``, JSON-ready) and the change kind it makes (``None`` when the model is
    unchanged)."""

    model: Any
    metadata: dict[str, Any]
    change_kind: str | None


@dataclass(frozen=True)
class PassSpec:
    """One registry entry: the pass's name, config type, handler, what it consumes and the change
    kind (:data:`edgefit.iteration.CHANGE_KINDS`) it makes."""

    name: str
    config_type: type[PassConfig]
    handler: Handler = field(repr=False)
    consumes: Consumes
    change_kind: str


_PASSES: dict[type[PassConfig], PassSpec] = {}
_ALLOWED: dict[str, type[PassConfig]] = {}  # the types config_from_dict may build, by class name


def register_pass(
    config_type: type[C], *, name: str, consumes: Consumes, change_kind: str
) -> Callable[[HandlerOf[C]], HandlerOf[C]]:
    """Register ``handler(model, config, context) -> PassResult`` for ``config_type`` (and
    allow-list it). The handler takes its own config type; the registry calls it only with one."""

    def wrap(handler: HandlerOf[C]) -> HandlerOf[C]:
        if config_type in _PASSES or name in {s.name for s in _PASSES.values()}:
            raise ValueError(f"pass '{name}' ({config_type.__name__}) is registered twice")
        dispatched = cast(Handler, handler)  # apply_pass looks it up by the config's own type
        _PASSES[config_type] = PassSpec(name, config_type, dispatched, consumes, change_kind)
        _ALLOWED[config_type.__name__] = config_type
        return handler

    return wrap


def list_passes() -> list[PassSpec]:
    """Every registered pass, in registration order: the built-in ones first (swap, prune,
    recover, quantize, torchao), then any other module of :mod:`edgefit.passes`.

    >>> [p.name for p in list_passes()][:5]
    ['swap', 'prune', 'recover', 'quantize', 'torchao']
    """
    return list(_PASSES.values())


def get_pass(key: str | type[PassConfig] | PassConfig) -> PassSpec:
    """The registry entry for a pass name, a config type or a config instance."""
    kind = type(key) if isinstance(key, PassConfig) else key
    for spec in _PASSES.values():
        if kind is spec.config_type or kind == spec.name:
            return spec
    names = ", ".join(s.name for s in _PASSES.values())
    raise EdgefitError(
        f"no pass is registered for {getattr(kind, '__name__', kind)!r}", fix=f"use one of {names}"
    )


def apply_pass(model: Any, config: PassConfig, context: PassContext | None = None) -> PassResult:
    """Apply the pass registered for ``type(config)`` to ``model`` (a torch module, or an ONNX
    model or path, as the pass consumes).

    >>> import torch
    >>> from edgefit.passes import PruneConfig, apply_pass
    >>> out = apply_pass(torch.nn.Linear(8, 4), PruneConfig(method="2:4"))
    >>> int((out.model.weight == 0).sum()), out.change_kind
    (16, 'pruning')
    """
    return get_pass(config).handler(model, config, context or PassContext())


def config_from_dict(data: Mapping[str, Any]) -> PassConfig:
    """Rebuild a config from :meth:`PassConfig.to_dict` output. Only registered config types load;
    unknown fields and versions are errors, not silently dropped."""
    if not isinstance(data, Mapping) or "type" not in data:
        raise EdgefitError(
            "a pass config must be a mapping with a 'type' key",
            where="config",
            fix="write it with config.to_dict()",
        )
    kind = data["type"]
    if kind not in _ALLOWED:
        raise EdgefitError(
            f"config type {kind!r} is not allow-listed",
            where="config.type",
            fix=f"use one of {', '.join(sorted(_ALLOWED))}",
        )
    cls = _ALLOWED[kind]
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - {"type"})
    if unknown:
        raise EdgefitError(
            f"unknown field(s) {unknown} for {kind}", where="config", fix=f"use {sorted(known)}"
        )
    return cls(**{k: v for k, v in data.items() if k != "type"})
