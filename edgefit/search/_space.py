"""The search space: what a candidate changes, and which changes a given base and target allow.

A :class:`Choice` is one point of the space — architecture knobs, pruning, quantization. It maps to
a :class:`~edgefit.passes.PassPlan` (to materialize it) and to an estimator
:class:`~edgefit.estimate.Plan` (to screen it without materializing it).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass, field

from edgefit.errors import EdgefitError
from edgefit.passes import Traits, applicable, get_precision

MATMUL_SHARE = (
    0.3  # Gemm/MatMul share of the MACs above which int8 matmul recipes are worth trying
)
PRUNE_METHODS = ("none", "channel", "unstructured", "2:4")


@dataclass(frozen=True)
class Choice:
    """One candidate. Defaults leave the model as it is."""

    width: float = 1.0
    depth: float = 1.0
    resolution: int | None = None  # None: the base model's
    activation: str | None = None  # None: the base model's
    prune: str = "none"
    prune_amount: float = 0.0
    precision: str = "fp32"
    calibration: str = "minmax"  # int8 static only
    keep_float: int = 0  # int8 static only: the k most sensitive layers stay float (measured)

    def __post_init__(self) -> None:
        get_precision(self.precision)  # a name no pass registered: one clear error
        if self.prune not in PRUNE_METHODS:
            raise EdgefitError(
                f"prune {self.prune!r}", where="Choice", fix=f"use one of {PRUNE_METHODS}"
            )

    @property
    def swaps(self) -> bool:
        return (
            self.width != 1.0
            or self.depth != 1.0
            or self.resolution is not None
            or self.activation is not None
        )

    @property
    def retrains(self) -> bool:
        """Weights change beyond quantization: the candidate must be fine-tuned (recovered)."""
        return self.swaps or self.prune != "none"

    @property
    def change_kinds(self) -> tuple[str, ...]:
        kinds = []
        if self.swaps:
            kinds.append("architecture")
        if self.prune != "none":
            kinds.append("pruning")
        if self.retrains:
            kinds.append("weights")
        if self.precision != "fp32":
            kinds.append("quantization")
        return tuple(kinds) or ("runtime",)

    @property
    def label(self) -> str:
        parts = []
        if self.width != 1.0:
            parts.append(f"width {self.width:g}")
        if self.depth != 1.0:
            parts.append(f"depth {self.depth:g}")
        if self.resolution is not None:
            parts.append(f"res {self.resolution}")
        if self.activation is not None:
            parts.append(self.activation)
        if self.prune != "none":
            parts.append(
                f"{self.prune} prune {self.prune_amount:g}"
                if self.prune != "2:4"
                else "2:4 sparse"
            )
        q = self.precision
        if get_precision(q).tuned:
            q += f" {self.calibration}" + (
                f" keep {self.keep_float} float" if self.keep_float else ""
            )
        parts.append(q)
        return " · ".join(parts)

    def risk(self) -> float:
        """A *prior* on accuracy cost, used only to order candidates before any is measured (never
        reported as accuracy): bigger changes are riskier."""
        precision = get_precision(self.precision)
        r = precision.risk
        if precision.tuned:
            r -= 0.05 * self.keep_float + (0.05 if self.calibration != "minmax" else 0.0)
        r += 2.0 * (1 - self.width) + 1.5 * (1 - self.depth) + (0.3 if self.activation else 0.0)
        r += {"none": 0.0, "channel": 2.0, "unstructured": 0.5, "2:4": 0.0}[
            self.prune
        ] * self.prune_amount
        r += 0.5 if self.prune == "2:4" else 0.0
        return r

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SpaceOptions:
    """What the base and the run allow. ``can_swap`` needs a factory (an example or --factory);
    ``can_retrain`` needs training data; ``sparsity`` needs a target with 2:4 support;
    ``has_matmul`` and ``torch_base`` (a torch model whose Gemm/MatMul layers carry a real share
    of the MACs, see :func:`torchao_base`) are what the precisions' passes ask about (weight-only
    and dynamic int8, torchao)."""

    can_swap: bool = False
    can_prune: bool = False
    can_retrain: bool = False
    base_resolution: int | None = None
    resolution_range: tuple[int, int] | None = None
    base_activation: str | None = None
    target_dtypes: tuple[str, ...] = ("fp32",)
    sparsity: bool = False
    has_matmul: bool = False
    torch_base: bool = False
    widths: tuple[float, ...] = (1.0, 0.75, 0.5)
    depths: tuple[float, ...] = (1.0, 0.5)
    channel_amounts: tuple[float, ...] = (0.25, 0.5)
    calibrations: tuple[str, ...] = ("minmax", "percentile")
    keep_float: tuple[int, ...] = (0, 2)
    notes: list[str] = field(default_factory=list, compare=False)


def _resolutions(opts: SpaceOptions) -> list[int | None]:
    out: list[int | None] = [None]
    if opts.base_resolution and opts.resolution_range:
        lo, hi = opts.resolution_range
        smaller = int(round(opts.base_resolution * 0.75 / 8) * 8) or opts.base_resolution
        if lo <= smaller < opts.base_resolution <= hi:
            out.append(smaller)
    return out


def _quantizations(opts: SpaceOptions) -> list[tuple[str, str, int]]:
    """The quantization axis of the space: ``(precision, calibration, keep_float)`` for every
    precision the passes declare for this target and base (:mod:`edgefit.passes._precision`), in
    their order, fp32 (unchanged) first. Tuned precisions (static int8) are tried with each of the
    run's calibration methods and kept-float counts."""
    traits = Traits(
        target_dtypes=frozenset(opts.target_dtypes),
        matmul=opts.has_matmul,
        torch_base=opts.torch_base,
    )
    out = []
    for precision in applicable(traits):
        if precision.tuned:
            out += [(precision.name, c, k) for c in opts.calibrations for k in opts.keep_float]
        else:
            out.append((precision.name, "minmax", 0))
    return out


def matmul_share(graph) -> float:
    """The fraction of a graph's MACs done in Gemm/MatMul layers (Linear layers and attention
    matmuls)."""
    return sum(la.macs for la in graph.layers if la.kind in ("gemm", "matmul")) / max(
        1, graph.macs
    )


def torchao_base(base) -> bool:
    """Whether the torchao precisions apply to ``base`` (a :class:`~edgefit.search.Base`): a torch
    model (a built-in example or a ``module:function`` factory, which torchao can quantize) whose
    graph does at least :data:`MATMUL_SHARE` of its MACs in Gemm/MatMul layers (torchao quantizes
    ``nn.Linear`` only). An ONNX file is never a torch base."""
    if base.kind not in ("example", "factory"):
        return False
    return matmul_share(base.graph_variant(1.0, None, None)) >= MATMUL_SHARE


def skipped_levers(opts: SpaceOptions) -> list[str]:
    """What :func:`build_space` leaves out for this base and why, in words a user can act on (#16:
    an ONNX-only model gets quantization only, and the output must say so, not silently search
    less).

    >>> skipped_levers(SpaceOptions())[0][:60]
    'not searched: architecture swaps (width, depth, input resolu'
    """
    out = []
    if not opts.can_swap and opts.can_prune and opts.can_retrain:
        out.append(
            "not searched: architecture swaps (width, depth, input resolution, activation) — they "
            "rebuild the model, which needs a built-in example (--example) or a --factory "
            "module:function; channel pruning of the ONNX graph (recovered on --train-data) and "
            "quantization were searched"
        )
    elif not opts.can_swap:
        out.append(
            "not searched: architecture swaps (width, depth, input resolution, activation) and "
            "channel pruning — they rebuild the model, which needs a built-in example (--example) "
            "or a --factory module:function (an ONNX file's channels are pruned only with "
            "--train-data to recover on, and only where a channel group can be cut); this run "
            "searched quantization of the model as given"
        )
    elif not opts.can_retrain:
        out.append(
            "not searched: architecture swaps and channel pruning — they need training data to "
            "recover "
            "accuracy (--train-data x/y .npz, or an example's own data)"
        )
    return out


def build_space(opts: SpaceOptions) -> list[Choice]:
    """Every choice the options allow. Swaps and pruning only where the model can be retrained."""
    swap = opts.can_swap and opts.can_retrain
    widths = opts.widths if swap else (1.0,)
    depths = opts.depths if swap else (1.0,)
    resolutions = _resolutions(opts) if swap else [None]
    activations: list[str | None] = [None]
    if swap and opts.base_activation in ("gelu", "silu", "hardswish"):
        activations.append("relu")
    prunes = [("none", 0.0)]
    if opts.can_prune and opts.can_retrain:
        prunes += [("channel", a) for a in opts.channel_amounts]
        if opts.sparsity and opts.can_swap:  # 2:4 masks a torch model's weights
            prunes.append(("2:4", 0.5))
    out = []
    for w, d, r, a, (p, amount), (q, cal, keep) in itertools.product(
        widths, depths, resolutions, activations, prunes, _quantizations(opts)
    ):
        if p == "channel" and w != 1.0:
            continue  # both shrink channels: keep the space small and the two levers distinct
        out.append(
            Choice(
                width=w,
                depth=d,
                resolution=r,
                activation=a,
                prune=p,
                prune_amount=amount,
                precision=q,
                calibration=cal,
                keep_float=keep,
            )
        )
    return out
