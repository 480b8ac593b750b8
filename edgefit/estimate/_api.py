"""`edgefit estimate` as one library call: a model's latency, energy, memory and power on one or
more targets, with the envelope verdict (:func:`estimate_model`, answered by an
:class:`EstimateResult`).

The function is ``estimate_model``, not ``estimate``, because ``edgefit.estimate`` is this
subpackage: importing any of its modules (``import edgefit.estimate._hw``, which half the library
does) makes the import system set the package attribute ``edgefit.estimate`` to the module, so a
lazily exported *function* of that name would be replaced by the module the first time anything
imported from here, and ``import edgefit.estimate as est`` would hand back the function instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.estimate._estimate import Estimator
from edgefit.estimate._hw import resolve_power_mode
from edgefit.estimate._plan import PLAN_DTYPES, Plan
from edgefit.estimate._result import Estimate
from edgefit.graph import Graph, load_graph
from edgefit.graph._examples import example_graph
from edgefit.graph._read import path_or_example

if TYPE_CHECKING:
    from edgefit import targets as target_files
else:
    target_files = lazy_import("edgefit.targets")  # pydantic: loaded when a target is read

ModelLike = Graph | str | Path
TargetLike = str | Path


@dataclass(frozen=True)
class EstimateResult:
    """One model estimated on one or more targets: what `edgefit estimate --json` prints.

    ``model`` is the graph's summary (name, inputs, MACs, parameters …), ``estimates`` one
    :class:`~edgefit.estimate.Estimate` per target in the order asked, ``warnings`` what model
    intake noticed (each once).
    """

    model: dict[str, Any]
    estimates: tuple[Estimate, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON `edgefit estimate --json` prints."""
        return {"model": dict(self.model), "estimates": [e.to_dict() for e in self.estimates]}


def estimate_model(
    model: ModelLike | None,
    target: TargetLike | Sequence[TargetLike] = "host-cpu",
    *,
    input_shape: str | None = None,
    power_mode: str | None = None,
    batch: int = 1,
    dtype: str | None = None,
    runtime: str | None = None,
    threads: int = 1,
) -> EstimateResult:
    """Estimate ``model`` on ``target`` (a target id, alias or YAML path; a list of them; or
    ``"all"``): latency, energy, memory and power from the datasheet or a calibration profile,
    with error bars and the envelope verdict.

    ``model``: an ONNX file, a built-in example name (``edgefit examples list``) or a loaded
    :class:`~edgefit.graph.Graph`. ``dtype`` runs every weight-bearing layer in that dtype (one of
    ``PLAN_DTYPES``; None: the model as it is); ``batch`` samples per call; ``power_mode`` applies
    to the targets that have power modes; ``runtime`` picks that runtime's calibration profile;
    ``threads`` are the intra-op threads the model will run with (host-cpu).

    Bad input (a bad option, an unknown target or power mode) raises
    :class:`~edgefit.errors.EdgefitError` before the model is read.

    >>> import edgefit
    >>> result = edgefit.estimate_model("ds-cnn-kws", "orin", dtype="int8")  # doctest: +SKIP
    >>> est = result.estimates[0]  # doctest: +SKIP
    >>> est.target, est.latency_s, [c.fits for c in est.checks]  # doctest: +SKIP
    """
    if threads < 1:
        raise EdgefitError(
            f"threads must be at least 1, got {threads}", where="--threads", fix="pass --threads 1"
        )
    if batch < 1:
        raise EdgefitError(
            f"batch must be at least 1, got {batch}", where="--batch", fix="pass --batch 1"
        )
    if dtype is not None and dtype not in PLAN_DTYPES:
        raise EdgefitError(
            f"unknown dtype '{dtype}'", where="--dtype", fix=f"use one of {', '.join(PLAN_DTYPES)}"
        )
    targets = _targets(target)
    modes = [_mode(t, power_mode, alone=len(targets) == 1) for t in targets]
    graph = _graph(model, input_shape)
    plan = Plan(dtype=dtype) if dtype else None
    estimates = tuple(
        Estimator(graph, t, power_mode=m, runtime=runtime, threads=threads, batch=batch).estimate(
            plan
        )
        for t, m in zip(targets, modes, strict=True)
    )
    return EstimateResult(graph.summary(), estimates, tuple(dict.fromkeys(graph.warnings)))


def _targets(target: TargetLike | Sequence[TargetLike]) -> list[Any]:
    names = [target] if isinstance(target, str | os.PathLike) else list(target)
    if not names:
        raise EdgefitError("no target given", where="--target", fix="pass --target host-cpu")
    if [str(n) for n in names] == ["all"]:
        return list(target_files.list_targets())
    return [target_files.load_target(n) for n in names]


def _mode(target: Any, power_mode: str | None, *, alone: bool) -> str | None:
    """The power mode to estimate ``target`` in: ``power_mode`` where the target has modes (an
    unknown one is an error now, not after the model loaded); asked of a single target without
    modes, an error."""
    if not power_mode:
        return None
    if not target.power_modes:
        if alone:
            raise EdgefitError(
                f"target '{target.id}' has no power modes",
                where="--power-mode",
                fix="drop --power-mode",
            )
        return None
    resolve_power_mode(target, power_mode)
    return power_mode


def _graph(model: ModelLike | None, input_shape: str | None) -> Graph:
    """The graph of an ONNX path, an example name or a graph in hand."""
    if isinstance(model, Graph):
        if input_shape is not None:
            raise EdgefitError(
                "input_shape applies to a model read from a file or an example, not a Graph",
                where="--input-shape",
                fix="load the graph with edgefit.load_graph(path, input_shape) instead",
            )
        return model
    path, example = path_or_example(
        model, "estimate", "an .onnx path, a built-in example name or an edgefit Graph"
    )
    if path is not None:
        return load_graph(path, input_shape)
    return example_graph(example, input_shape=input_shape)
