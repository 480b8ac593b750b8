"""Safe YAML loading that remembers where every value came from.

PyYAML implements YAML 1.1, where ``4.0e12`` (no sign after the ``e``) is a *string*; hardware numbers
are written that way all the time, so this loader also resolves YAML 1.2 floats. It uses
``yaml.SafeLoader`` only: no Python objects are ever constructed from user files.

:func:`load_yaml` returns the data and a map from each value's path (a tuple of keys and list indices)
to its 1-based line, so validation errors can say ``targets/orin.yaml:42``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from edgefit.errors import EdgefitError

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.X,
)


class _Loader(yaml.SafeLoader):
    """SafeLoader plus YAML 1.2 floats (``1e9``, ``4.0e12``)."""


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))

Path_ = tuple[str | int, ...]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[path + (key,)] = key_node.start_mark.line + 1
            _walk(value_node, path + (key,), lines)
            lines[path + (key,)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), lines)


def load_yaml(path: str | Path) -> tuple[Any, dict[Path_, int]]:
    """Load ``path`` safely; return ``(data, line_of_path)``.

    Raises :class:`EdgefitError` naming the file and line for unreadable or malformed YAML.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgefitError(f"file not found: {path}", fix="check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgefitError(f"cannot read {path}: {exc}", fix="pass a readable UTF-8 YAML file") from None
    return parse_yaml(text, name=str(path))


def parse_yaml(text: str, *, name: str = "<string>") -> tuple[Any, dict[Path_, int]]:
    """Like :func:`load_yaml` but from a string; ``name`` is used in error messages."""
    try:
        node = yaml.compose(text, Loader=_Loader)
        data = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark is not None else name
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise EdgefitError(f"malformed YAML: {problem}", where=where, fix="fix the YAML syntax") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def line_of(lines: dict[Path_, int], loc: tuple[Any, ...]) -> int | None:
    """The line of the deepest known prefix of ``loc`` (pydantic error locations may go deeper)."""
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())
