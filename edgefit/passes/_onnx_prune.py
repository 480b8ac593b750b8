"""The onnx-prune pass: structured channel pruning of a model that arrives as an ONNX file.

The torch prune pass needs an ``nn.Module``; a user who hands edgefit only ``model.onnx`` still
has Conv/Gemm layers whose output channels can go. This pass works on the graph itself: it finds
the channel groups (:mod:`edgefit.passes._onnx_groups`), ranks each group's channels by the L2
norm of the producing layer's weights, drops the weakest ``amount`` of them and slices every
initializer of the group (weights, biases, BatchNorm parameters, per-channel constants, the
consumers' input channels) with the same indices.

Groups that reach a residual Add/Concat/Mul of two activations, a graph output (the classifier) or
an unknown op are left whole, and the metadata says why: slicing one side of a residual add would
need its partner sliced alike, which this pass does not attempt. The pruned model is checked with
``onnx.checker`` and run once with onnxruntime; its outputs keep their shapes. Recovery
fine-tuning on the user's data is :mod:`edgefit.passes._onnx_recover`.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
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
from edgefit.passes._onnx import load, name_nodes
from edgefit.passes._onnx_groups import find_groups
from edgefit.passes._onnx_recalibrate import recalibrate, session_of
from edgefit.passes._prune import PruneConfig
from edgefit.runtimes._inputs import onnx_input_specs, random_inputs
from edgefit.runtimes._ort_convert import save

if TYPE_CHECKING:
    import numpy as np
    import onnx
    from onnx import numpy_helper

    from edgefit import graph
else:  # the graph loader (MAC counts) brings numpy and onnx
    np, onnx, numpy_helper, graph = lazy_import(
        "numpy", "onnx", "onnx.numpy_helper", "edgefit.graph"
    )

SEARCH_AMOUNTS = (0.25, 0.5)
RECALIBRATION_SAMPLES = 64  # real inputs the output statistics are matched on


@dataclass(frozen=True)
class OnnxPruneConfig(PassConfig):
    """Drop ``amount`` of the output channels of every prunable group of an ONNX model, keeping
    channel counts multiples of ``round_to`` (8 suits most accelerators' vector widths).

    >>> OnnxPruneConfig(amount=0.5).to_dict()
    {'type': 'OnnxPruneConfig', 'amount': 0.5, 'round_to': 1, 'version': 1}
    >>> OnnxPruneConfig(amount=1.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: OnnxPruneConfig.amount: amount=1.0 is not allowed (fix: ...)
    """

    amount: float = 0.5
    round_to: int = 1
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        if not (is_number(self.amount) and 0 < self.amount < 1):
            raise config_error(name, "amount", self.amount, "a fraction in (0, 1)")
        if not (is_int(self.round_to) and self.round_to >= 1):
            raise config_error(
                name, "round_to", self.round_to, "a positive integer (1: no rounding)"
            )
        self._set("amount", float(self.amount))
        self._set("round_to", int(self.round_to))

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        return {"amount": SEARCH_AMOUNTS}

    def kept(self, channels: int) -> int:
        """How many of ``channels`` a group keeps (at least ``round_to``, at most all).

        >>> OnnxPruneConfig(amount=0.25).kept(64), OnnxPruneConfig(amount=0.3, round_to=8).kept(64)
        (48, 48)
        """
        keep = channels - math.floor(channels * self.amount)
        if self.round_to > 1:
            keep = max(self.round_to, self.round_to * round(keep / self.round_to))
        return min(keep, channels)


def as_onnx_prune(config: PassConfig) -> OnnxPruneConfig:
    """The onnx-prune config for a search's prune choice on an ONNX-only base: a
    ``PruneConfig(method="channel")`` keeps its amount and rounding; other methods do not apply.

    >>> from edgefit.passes import PruneConfig
    >>> as_onnx_prune(PruneConfig(method="channel", amount=0.25))
    OnnxPruneConfig(amount=0.25, round_to=1, version=1)
    """
    if isinstance(config, OnnxPruneConfig):
        return config
    if isinstance(config, PruneConfig) and config.method == "channel":
        return OnnxPruneConfig(amount=config.amount, round_to=config.round_to)
    raise PassNotApplicable(
        f"{config!r} needs the torch module; an ONNX-only model is pruned by channels only",
        where="PassPlan.prune",
        fix="use PruneConfig(method='channel') or OnnxPruneConfig",
    )


def prunable(model: Any) -> bool:
    """Whether ``model`` (an ONNX path or proto) has a channel group onnx-prune can cut, found
    without pruning: what a search asks before it offers channel pruning of an ONNX-only base."""
    groups, _ = find_groups(name_nodes(load(model)))
    return bool(groups)


def _keep(weight: Any, axis: int, kept: int) -> Any:
    """Indices of the ``kept`` channels with the largest L2 weight norm, in channel order."""
    w = np.moveaxis(weight.astype(np.float64), axis, 0).reshape(weight.shape[axis], -1)
    norms = np.sqrt((w**2).sum(axis=1))
    return np.sort(np.argsort(-norms, kind="stable")[:kept])


@dataclass(frozen=True)
class Pruned:
    """A pruned model, what was done (JSON-ready) and, for the statistics correction, the
    original channels each pruned producer kept (by its output tensor) and the sliced
    initializers."""

    model: Any
    metadata: dict[str, Any]
    keeps: dict[str, Any]
    touched: frozenset[str]


def prune_model(model, config: OnnxPruneConfig) -> Pruned:
    """A pruned copy of ``model`` (a proto, its nodes named); :class:`PassNotApplicable` when no
    group can lose a channel."""
    model = name_nodes(load(model))
    outputs = {n.name: n.output[0] for n in model.graph.node}
    groups, skipped = find_groups(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    cuts: dict[str, list[tuple[int, Any]]] = {}
    pruned, keeps = [], {}
    for group in groups:
        kept = config.kept(group.channels)
        if kept == group.channels:
            skipped.append(
                {"producer": group.producer, "reason": f"{group.channels} channels: none to drop"}
            )
            continue
        keep = _keep(inits[group.weight[0]], group.weight[1], kept)
        keeps[outputs[group.producer]] = keep
        for name, axis in group.slices:
            cuts.setdefault(name, []).append((axis, keep))
        for node in group.depthwise:
            for a in node.attribute:
                if a.name == "group":
                    a.i = kept
        for node, entry in group.reshapes:
            shape = inits[node.input[1]].copy()
            shape[entry] = -1
            new = f"{node.input[1]}.onnx_prune.{node.name}"
            model.graph.initializer.append(numpy_helper.from_array(shape, new))
            old, node.input[1] = node.input[1], new
            if not any(old in n.input for n in model.graph.node):
                model.graph.initializer.remove(
                    next(i for i in model.graph.initializer if i.name == old)
                )
        pruned.append({"producer": group.producer, "channels": [group.channels, kept]})
    if not pruned:
        raise PassNotApplicable(
            "no channel group of this ONNX model can be pruned"
            + (f" ({skipped[0]['producer']}: {skipped[0]['reason']})" if skipped else ""),
            where="OnnxPruneConfig",
            fix="quantize it instead, or give the torch model to the prune pass",
        )
    for init in model.graph.initializer:
        if init.name in cuts:
            arr = inits[init.name]
            for axis, keep in cuts[init.name]:
                arr = np.take(arr, keep, axis=axis)
            init.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(arr), init.name))
    del model.graph.value_info[:]  # stale channel counts: re-inferred by whoever needs them
    meta = {"groups_pruned": pruned, "groups_skipped": skipped}
    return Pruned(model, meta, keeps, frozenset(cuts))


def _recalibrated(base, pruned: Pruned, context: PassContext) -> dict[str, Any]:
    """Correct the pruned layers' output statistics on real inputs, never on random ones: the
    training inputs when there are any (the statistics of held-out data stay unseen), else the
    calibration data."""
    ctx = replace(context, calibration_samples=RECALIBRATION_SAMPLES)
    if context.train is not None:
        ctx = replace(ctx, calibration=context.train[0][:RECALIBRATION_SAMPLES])
    feeds, source = ctx.calibration_feeds(base)
    if source.startswith("random"):
        return {"recalibrated": None, "recalibration": "skipped: no data (PassContext.train)"}
    if context.train is not None:
        source = f"training inputs ({len(feeds)} samples)"
    layers = recalibrate(
        base, pruned.model, pruned.keeps, set(pruned.touched), feeds, context.threads
    )
    return {"recalibrated": layers, "recalibration": f"output mean/std matched on {source}"}


def _counts(model) -> tuple[int, int]:
    loaded = graph.load_graph(model)
    return int(loaded.macs), int(loaded.params)


def validate(before, after, seed: int) -> list[list[int]]:
    """Check ``after`` with onnx's checker and run it once with onnxruntime on random inputs; its
    output shapes must equal ``before``'s. Returns the output shapes."""
    onnx.checker.check_model(after, full_check=True)
    feed = random_inputs(onnx_input_specs(before), seed=seed)
    shapes = []
    for model in (before, after):
        sess = session_of(model)
        shapes.append([list(out.shape) for out in sess.run(None, feed)])
    if shapes[0] != shapes[1]:
        raise EdgefitError(
            f"pruning changed the output shapes {shapes[0]} → {shapes[1]}",
            where="OnnxPruneConfig",
            fix="report this model: the pass must keep output shapes",
        )
    return shapes[1]


@register_pass(OnnxPruneConfig, name="onnx-prune", consumes="onnx", change_kind="pruning")
def prune_onnx(model: Any, config: OnnxPruneConfig, context: PassContext) -> PassResult:
    """Prune an ONNX model (path or proto); the result is the pruned file in
    ``context.out_dir()``."""

    base = name_nodes(load(model))
    result = prune_model(base, config)
    meta = {**result.metadata, **_recalibrated(base, result, context)}
    pruned = result.model
    shapes = validate(base, pruned, context.seed)
    (macs0, params0), (macs1, params1) = _counts(base), _counts(pruned)
    digest = hashlib.sha256(pruned.SerializeToString()).hexdigest()[:12]  # content-addressed
    path = save(pruned, context.out_dir() / f"model.onnx-prune-{digest}.onnx")
    return PassResult(
        path,
        {
            "pass": "onnx-prune",
            "amount": config.amount,
            "round_to": config.round_to,
            "recipe": "channel groups traced on the ONNX graph, ranked by the L2 norm of the "
            "producer's weights; residual, output and unknown consumers left whole",
            **meta,
            "macs_before": macs0,
            "macs_after": macs1,
            "params_before": params0,
            "params_after": params1,
            "macs_source": "edgefit.graph.load_graph (ONNX graph count)",
            "output_shapes": shapes,
        },
        "pruning",
    )
