"""The one precision table: every precision a search may try, declared by the pass that makes it.

A precision is what a candidate's numbers are computed in — ``fp16``, static ``int8``, torchao's
``int8-dynamic`` on a torch module, 4-bit weights — and the pass module that implements it says,
next to its config class, everything the rest of edgefit needs to know about it:

* when it applies (:class:`Traits`: the target's dtypes, whether Gemm/MatMul carry the MACs,
  whether the base is a torch module);
* which :class:`~edgefit.passes.PassPlan` slot its config fills, and how to build that config;
* how the estimator screens it before it exists (the plan dtype) and a prior on its accuracy cost.

The search (:mod:`edgefit.search`) only asks this table; it names no precision itself. A new
quantization pass is a new module that calls :func:`register_precision` beside
:func:`~edgefit.passes.register_pass`, and nothing else changes (see CONTRIBUTING.md).

>>> [p.name for p in precisions()][:3]
['fp32', 'fp16', 'int8']
>>> get_precision("int8").estimate_dtype, get_precision("int8").tuned
('int8', True)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from edgefit.errors import EdgefitError
from edgefit.passes._base import PassConfig

Slot = Literal["quantize", "torchao"]  # the PassPlan field a precision's config fills


@dataclass(frozen=True)
class Traits:
    """What decides whether a precision applies: the target's compute dtypes, whether the base
    model does a real share of its MACs in Gemm/MatMul layers, and whether it is a torch module
    (a built-in example or a factory) rather than an ONNX file."""

    target_dtypes: frozenset[str] = frozenset({"fp32"})
    matmul: bool = False
    torch_base: bool = False


@dataclass(frozen=True)
class Precision:
    """One row of the precision table.

    ``build(calibration, keep_float)`` returns the pass config that makes this precision (None for
    fp32: no pass); ``tuned`` precisions are searched over the run's calibration methods and
    "k most sensitive layers kept float" counts, the others once. ``estimate_dtype`` is the
    estimator :class:`~edgefit.estimate.Plan` dtype a screen uses; ``estimate_note`` says how the
    estimate of a materialized candidate was made when the ONNX graph does not show the
    quantization (a torch-side pass). ``risk`` orders candidates before any is measured; it is
    never reported as accuracy."""

    name: str
    estimate_dtype: str
    risk: float
    applies: Callable[[Traits], bool] = field(repr=False)
    build: Callable[[str, int], PassConfig] | None = field(default=None, repr=False)
    slot: Slot | None = None
    tuned: bool = False
    estimate_note: str = ""

    def config(self, calibration: str = "minmax", keep_float: int = 0) -> PassConfig | None:
        """The pass config for this precision (None for fp32)."""
        return None if self.build is None else self.build(calibration, keep_float)


_PRECISIONS: dict[str, Precision] = {}


def register_precision(precision: Precision) -> Precision:
    """Add ``precision`` to the table (registration order is the order a search tries them)."""
    if precision.name in _PRECISIONS:
        raise ValueError(f"precision '{precision.name}' is registered twice")
    if (precision.build is None) != (precision.slot is None):
        raise ValueError(f"precision '{precision.name}': a build needs a slot, and a slot a build")
    _PRECISIONS[precision.name] = precision
    return precision


def precisions() -> list[Precision]:
    """Every registered precision, in registration order (fp32 first)."""
    return list(_PRECISIONS.values())


def precision_names() -> tuple[str, ...]:
    return tuple(_PRECISIONS)


def get_precision(name: str) -> Precision:
    """The table row for ``name``; one clear error for a name no pass registered."""
    try:
        return _PRECISIONS[name]
    except KeyError:
        raise EdgefitError(
            f"precision {name!r} is not known",
            where="precision",
            fix=f"use one of {', '.join(_PRECISIONS)}",
        ) from None


def applicable(traits: Traits) -> list[Precision]:
    """The precisions that apply to a base and target with these traits, fp32 first."""
    return [p for p in _PRECISIONS.values() if p.applies(traits)]


register_precision(Precision("fp32", estimate_dtype="fp32", risk=0.0, applies=lambda t: True))
