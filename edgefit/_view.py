"""Read a JSON-ready document (the dicts `--json` prints) into frozen dataclasses, so code that
prints or checks a result reads attributes (``tax.cycle.bottleneck.share``) instead of nested
string keys, while the document stays the one source of every figure.

:func:`view` takes the fields a dataclass names and leaves the document's other keys alone; a
field with a default may be absent. Nested records, ``tuple[X, ...]``, ``dict[str, X]`` and
``X | None`` are read by the field's type hint; every other value is kept as the document holds
it (lists become tuples), so text printed from a view and from the document is the same.

>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class Point:
...     x: float
...     tags: tuple[str, ...] = ()
>>> view(Point, {"x": 1.5, "tags": ["a"], "ignored": 0})
Point(x=1.5, tags=('a',))
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

_R = TypeVar("_R", bound="DataclassInstance")


def view(cls: type[_R], data: Mapping[str, Any]) -> _R:
    """The record ``cls`` read from ``data`` (nested records too; see the module)."""
    hints = typing.get_type_hints(cls)
    return cls(
        **{
            f.name: _value(hints[f.name], data[f.name])
            for f in dataclasses.fields(cls)
            if f.name in data or not _has_default(f)
        }
    )


def _has_default(f: dataclasses.Field[Any]) -> bool:
    return f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING


def _value(hint: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):  # X | None: read as X
        (hint,) = [a for a in args if a is not type(None)]
        return _value(hint, raw)
    if origin is tuple:
        return tuple(_value(args[0], r) for r in raw)
    if origin in (dict, Mapping):
        return {k: _value(args[1], v) for k, v in raw.items()}
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return view(hint, raw)
    return raw
