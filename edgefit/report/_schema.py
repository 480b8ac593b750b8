"""The versioned JSON Schema of results.json, shipped inside the package, and loading a results
file.

Other pipelines validate results without importing edgefit: ``edgefit report schema >
results.schema.json``. Full validation uses the ``jsonschema`` package when it is installed (the
``dev`` extra); without it, loading still checks the schema id and the top-level fields, so a
report never renders from a file it cannot read.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any

from edgefit.errors import EdgefitError

RESULTS_SCHEMA_ID = "edgefit-results/1"
SCHEMA_FILE = "results.schema.json"


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return files("edgefit.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")


def results_schema() -> dict:
    """The JSON Schema (draft 2020-12) of results.json.

    >>> results_schema()["properties"]["schema"]["const"]
    'edgefit-results/1'
    """
    return json.loads(_schema_text())


def _path(parts) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts) or "(top level)"


def schema_errors(res: Any, *, limit: int = 10) -> list[str]:
    """Where ``res`` breaks the schema, one line each (empty: valid). Uses ``jsonschema`` when
    installed."""
    schema = results_schema()
    try:
        import jsonschema
    except ImportError:
        if not isinstance(res, dict):
            return ["(top level): not a JSON object"]
        missing = [k for k in schema["required"] if k not in res]
        return [f"(top level): missing field '{k}'" for k in missing][:limit]
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(res), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{_path(e.absolute_path)}: {e.message[:200]}" for e in errors[:limit]]


def load_results(path: str | os.PathLike[str]) -> dict:
    """Read a results.json and check it against the schema; an unreadable file is an
    :class:`EdgefitError`.

    >>> res = load_results("edgefit-out/host-cpu/results.json")   # doctest: +SKIP
    """
    path = Path(path)
    if not path.is_file():
        raise EdgefitError(
            f"results file not found: {path}",
            where="RESULTS",
            fix="pass the results.json an `edgefit optimize` run wrote",
        )
    try:
        res = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EdgefitError(
            f"{path} is not JSON ({exc})", where="RESULTS", fix="pass a results.json"
        ) from exc
    found = res.get("schema") if isinstance(res, dict) else None
    if found != RESULTS_SCHEMA_ID:
        raise EdgefitError(
            f"{path} has schema {found!r}, this edgefit reads {RESULTS_SCHEMA_ID!r}",
            where="RESULTS",
            fix="re-run `edgefit optimize`, or use the edgefit version that wrote it",
        )
    errors = schema_errors(res, limit=3)
    if errors:
        raise EdgefitError(
            f"{path} does not match the results schema: {'; '.join(errors)}",
            where="RESULTS",
            fix="`edgefit report schema` prints the schema it must follow",
        )
    return res
