"""results.json as the report reads it: the typed :class:`~edgefit.records.Results` record, made
once where a results dict enters the package (:func:`build_report`, :func:`write_reports`,
:func:`check`, :func:`pick_baseline`); everything below reads attributes, not string keys.

The records need pydantic, so they are imported here when a report is built, not when
``edgefit.report`` is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import pydantic

    from edgefit import records
    from edgefit.records import Results
else:  # the records are pydantic models: loaded when a report reads a run, not on import
    pydantic, records = lazy_import("pydantic", "edgefit.records")


def as_results(res: Mapping[str, Any] | Results, *, where: str = "results") -> Results:
    """``res`` as the typed record: a :class:`~edgefit.records.Results` passes through, a
    results.json dict is validated (any ``edgefit-results/1`` file, older ones too). A dict the
    record cannot hold is an :class:`EdgefitError` naming the first field that is wrong.

    >>> from edgefit.report import load_results
    >>> rec = as_results(load_results("out/results.json"))  # doctest: +SKIP
    >>> rec.selection.winner                                 # doctest: +SKIP
    """
    if isinstance(res, records.Results):
        return res
    try:
        return records.Results.model_validate(res)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise EdgefitError(
            f"not an {records.RESULTS_SCHEMA_ID} record: {field}: {first['msg']}",
            where=where,
            fix="`edgefit report schema` prints the schema a results.json follows",
        ) from None
