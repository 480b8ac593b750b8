"""`edgefit check` as one library call: does a model fit a target's envelope, and did its latency
regress against an earlier run? (:func:`check`; the verdict is a
:class:`~edgefit.report.CheckOutcome`.)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.report._check import check_model, parse_fraction
from edgefit.report._findings import CheckOutcome
from edgefit.report._read import as_results
from edgefit.report._schema import load_results

if TYPE_CHECKING:
    from edgefit import graph as graphs
    from edgefit.graph import _examples, _read
    from edgefit.records import Results
else:  # the graph loader brings numpy and onnx: loaded when a check runs, not with edgefit.report
    graphs, _examples, _read = lazy_import(
        "edgefit.graph", "edgefit.graph._examples", "edgefit.graph._read"
    )


def check(
    model: str | os.PathLike[str] | None,
    target: str | os.PathLike[str] = "host-cpu",
    *,
    input_shape: str | None = None,
    power_mode: str | None = None,
    baseline: str | os.PathLike[str] | Mapping[str, Any] | Results | None = None,
    max_regression: float | str = 0.05,
    compare: str = "auto",
    latency_budget_s: float | None = None,
    measure: bool | None = None,
    threads: int = 1,
    record: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CheckOutcome:
    """Check ``model`` against ``target``'s envelope and, with ``baseline``, against the model an
    earlier run chose.

    ``model``: an ONNX file or a built-in example name. ``baseline``: the results.json of an
    earlier `edgefit optimize` run (a path, the loaded dict or its ``Results`` record); the check
    fails when latency grew by more than ``max_regression`` (a share: 0.05 or ``"5%"``).
    ``measure`` None measures on host-cpu only; other targets are estimated. ``record``: an
    onnxruntime measurement is kept for `edgefit calibrate --refit`. The outcome's
    ``exit_code`` is the CLI's: 0 pass, 1 a constraint exceeded or latency regressed. Bad input
    raises :class:`~edgefit.errors.EdgefitError`.

    >>> import edgefit
    >>> outcome = edgefit.check("ds-cnn-kws", "orin")  # doctest: +SKIP
    >>> outcome.exit_code, [f.annotation("plain") for f in outcome.findings]  # doctest: +SKIP
    """
    if threads < 1:
        raise EdgefitError("threads must be at least 1", where="--threads", fix="pass --threads 1")
    allowed = (
        parse_fraction(max_regression, where="--max-regression")
        if isinstance(max_regression, str)
        else _share(max_regression)
    )
    base = _baseline(baseline)
    path, example = _model(model)
    if path is not None:
        graph = graphs.load_graph(path, input_shape)
    else:
        graph = _examples.example_graph(example, input_shape=input_shape)
    onnx_path: Path | None = None
    if input_shape is None:  # a fixed shape is a re-export: measure the graph's own model
        if path is not None:
            onnx_path = path
        else:
            onnx_path = _examples.example_onnx_path(example)
    return check_model(
        graph,
        str(target),
        onnx_path=onnx_path,
        name=str(path) if path is not None else example,
        power_mode=power_mode,
        measure=measure,
        threads=threads,
        record=record,
        baseline=base,
        max_regression=allowed,
        compare=compare,
        latency_budget_s=latency_budget_s,
        file=str(path) if path is not None else None,
        progress=progress,
    )


def _model(model: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """(ONNX path, "") or (None, example name)."""
    return _read.path_or_example(model, "check", "an .onnx path or a built-in example name")


def _share(value: float) -> float:
    if not (isinstance(value, int | float) and value >= 0):
        raise EdgefitError(
            f"cannot use max regression {value!r}",
            where="--max-regression",
            fix="give a non-negative share like 0.05 or '5%'",
        )
    return float(value)


def _baseline(
    baseline: str | os.PathLike[str] | Mapping[str, Any] | Results | None,
) -> Results | None:
    """The baseline run as its typed record, read and checked before any model work."""
    if baseline is None:
        return None
    if isinstance(baseline, str | os.PathLike):
        baseline = load_results(baseline)
    return as_results(baseline, where="--baseline")
