"""Load, find and validate target profiles.

A target is named by its id (the file stem in ``targets/``), an alias declared in the file
(``orin``), or a path to the user's own YAML file; all three work anywhere a target is accepted.
"""

from __future__ import annotations

import fnmatch
import functools
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from edgefit._resources import data_dir
from edgefit._yaml import line_of, load_yaml
from edgefit.errors import EdgefitError
from edgefit.targets._host import apply_probe
from edgefit.targets._model import Target


def targets_dir() -> Path:
    return data_dir("targets")


def _shipped_files() -> list[Path]:
    return sorted(targets_dir().glob("*.yaml"))


@functools.lru_cache(maxsize=1)
def _alias_index() -> dict[str, Path]:
    """id and every alias → file; read cheaply from each file's top-level keys."""
    index: dict[str, Path] = {}
    for path in _shipped_files():
        index[path.stem] = path
        data, _ = load_yaml(path)
        for alias in (data or {}).get("aliases", []) if isinstance(data, dict) else []:
            index.setdefault(str(alias), path)
    return index


def validation_error(exc: ValidationError, lines: dict, source: str) -> EdgefitError:
    """Turn pydantic's first error into one line naming file, line and field."""
    err = exc.errors()[0]
    loc = tuple(
        p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-after"))
    )
    line = line_of(lines, loc)
    field = ".".join(str(p) for p in loc) or "(top level)"
    msg = _one_line(err["msg"].removeprefix("Value error, "))
    field = _one_line(field, 80)
    where = f"{source}:{line}" if line else source
    if err["type"] == "missing":
        msg = "required field is missing"
    elif err["type"] == "extra_forbidden":
        msg = "unknown field"
    return EdgefitError(
        f"field '{field}': {msg}",
        where=where,
        fix="see `edgefit targets schema` for the expected fields",
    )


def _one_line(text: str, limit: int = 240) -> str:
    """User text quoted in a message stays on one line and bounded (a key may be a megabyte
    long)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def target_from_dict(data: Any, *, lines: dict | None = None, source: str = "<dict>") -> Target:
    """Validate a parsed target document (probing the host when ``probe: true``).

    The document is validated as written first, so the probe only ever edits a well-formed one.
    """
    if not isinstance(data, dict):
        raise EdgefitError(
            f"a target file must be a YAML mapping, not a {_kind(data)}",
            where=source,
            fix="see `edgefit targets schema`",
        )
    try:
        target = Target.model_validate(data)
        if not target.probe:
            return target
        return Target.model_validate(apply_probe(data))
    except ValidationError as exc:
        raise validation_error(exc, lines or {}, source) from None


def _kind(data: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(data), "scalar"
    )


def load_target_file(path: str | Path) -> Target:
    """Load and validate one target YAML file."""
    path = Path(path)
    data, lines = load_yaml(path)
    if data is None:
        raise EdgefitError(
            "target file is empty", where=str(path), fix="see `edgefit targets schema`"
        )
    return target_from_dict(data, lines=lines, source=str(path))


def resolve_target_path(name: str | Path) -> Path:
    """id, alias or path → file path; raises a one-line error for unknown names."""
    text = str(name)
    index = _alias_index()
    if text in index:
        return index[text]
    path = Path(text)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        if path.is_dir():
            raise EdgefitError(
                f"{text} is a directory, not a target file",
                where="--target",
                fix="pass the YAML file itself",
            )
        if not path.exists():
            raise EdgefitError(
                f"target file not found: {text}", where="--target", fix="check the path"
            )
        return path
    close = [k for k in index if k.startswith(text[:3])] or sorted(index)
    raise EdgefitError(
        f"unknown target '{text}'",
        where="--target",
        fix=f"use one of {', '.join(sorted(set(close)))}, or a path to a target YAML file",
    )


@functools.lru_cache(maxsize=32)
def _load_cached(path: Path, mtime: float) -> Target:
    return load_target_file(path)


def load_target(name: str | Path | Target) -> Target:
    """Load a target by id, alias or path to a YAML file.

    >>> load_target("orin").id
    'jetson-agx-orin-64gb'
    """
    if isinstance(name, Target):
        return name
    path = resolve_target_path(name).resolve()
    return _load_cached(path, path.stat().st_mtime)


def list_targets(pattern: str = "*") -> list[Target]:
    """Every shipped target whose id or alias matches the shell-style ``pattern``.

    >>> [t.id for t in list_targets("jetson*")]
    ['jetson-agx-orin-64gb']
    """
    out = []
    for path in _shipped_files():
        target = load_target(path)
        names = [target.id, *target.aliases]
        if any(fnmatch.fnmatch(n, pattern) for n in names):
            out.append(target)
    return out
