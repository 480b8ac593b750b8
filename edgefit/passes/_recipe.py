"""An int8 recipe for an ONNX file, and the workspace that builds and scores recipes.

A :class:`Recipe` is every onnxruntime choice that changes what an int8 (or fp16) model computes or
how fast it runs on the CPU provider: activation / weight types, symmetric scales, per-channel
weights, ``reduce_range``, QDQ or QOperator format, calibration method and sample count,
``quant_pre_process``, the nodes kept float, and the session options (graph optimization level,
intra-op threads). :class:`Workspace` turns recipes into files (one calibration per method, sample
count and graph, reused through onnxruntime's calibration cache) and scores them; the search that
chooses among recipes is :mod:`edgefit.passes._recipe_search`.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session
from edgefit.errors import EdgefitError
from edgefit.passes import _onnx
from edgefit.runtimes._ort_convert import save, to_fp16

if TYPE_CHECKING:
    import numpy as np
    import onnx
    import onnxruntime.quantization as ort_quant
else:
    np, onnx, ort_quant = lazy_import("numpy", "onnx", "onnxruntime.quantization")

PRECISIONS = ("int8", "fp16", "fp32")
TYPES = ("U8", "S8")
FORMATS = ("QDQ", "QOperator")
OPT_LEVELS = ("all", "extended", "basic")
OP_SCOPES = ("all", "weights")  # every op onnxruntime can quantize, or only weight-bearing ops
RECIPE_VERSION = 1

EvalFn = Callable[[Path], float]  # a model file -> its score on the eval data (higher is better)


@dataclass(frozen=True)
class Recipe:
    """One way to run an ONNX model on onnxruntime's CPU provider; validated on creation.

    Fields that a precision ignores are reset (fp32/fp16 keep only ``opt_level`` and
    ``threads``), so equal recipes compare and hash equal. ``keep_float`` needs the QDQ format: in
    QOperator format a float Conv fed by a DequantizeLinear would be re-quantized per tensor when
    the session loads.

    >>> Recipe(precision="fp32", calibration="entropy") == Recipe(precision="fp32")
    True
    >>> Recipe.from_dict(Recipe(keep_float=("fc1",)).to_dict()).keep_float
    ('fc1',)
    """

    precision: str = "int8"
    activations: str = "U8"
    weights: str = "S8"
    symmetric_activations: bool = False
    symmetric_weights: bool = True
    per_channel: bool = True
    reduce_range: bool = False
    quant_format: str = "QDQ"
    op_scope: str = "all"
    calibration: str = "minmax"
    samples: int = 64
    preprocess: bool = True
    keep_float: tuple[str, ...] = ()
    opt_level: str = "all"
    threads: int = 1
    version: int = RECIPE_VERSION

    def __post_init__(self) -> None:
        choices = {
            "precision": PRECISIONS,
            "activations": TYPES,
            "weights": TYPES,
            "quant_format": FORMATS,
            "op_scope": OP_SCOPES,
            "calibration": tuple(_onnx.CALIBRATION_METHODS),
            "opt_level": OPT_LEVELS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise _error(name, getattr(self, name), f"one of {', '.join(allowed)}")
        for name in ("samples", "threads"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise _error(name, value, "a positive integer")
        if self.version != RECIPE_VERSION:
            raise _error("version", self.version, str(RECIPE_VERSION))
        keep = self.keep_float
        if isinstance(keep, str) or not all(isinstance(k, str) and k for k in keep):
            raise _error("keep_float", keep, "a tuple of node names")
        object.__setattr__(self, "keep_float", tuple(sorted(set(keep))))
        if self.keep_float and self.quant_format != "QDQ":
            raise _error("quant_format", self.quant_format, "'QDQ' when nodes are kept float")
        if self.precision != "int8":  # nothing but the session options applies
            plain = Recipe(opt_level=self.opt_level, threads=self.threads)
            for f in fields(self):
                if f.name not in ("precision", "keep_float", "opt_level", "threads"):
                    object.__setattr__(self, f.name, getattr(plain, f.name))
            object.__setattr__(self, "keep_float", ())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        return {**data, "keep_float": list(self.keep_float)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise _error(
                unknown[0], data[unknown[0]], f"only the fields {', '.join(sorted(known))}"
            )
        return cls(**{**data, "keep_float": tuple(data.get("keep_float", ()))})

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def label(self) -> str:
        """A short human-readable name, e.g. ``int8 U8S8 pc QDQ minmax×64 pre opt=all t1``."""
        tail = f"opt={self.opt_level} t{self.threads}"
        if self.precision != "int8":
            return f"{self.precision} {tail}"
        parts = [
            f"int8 {self.activations}{self.weights}",
            "pc" if self.per_channel else "pt",
            "symA" if self.symmetric_activations else "",
            "" if self.symmetric_weights else "asymW",
            "rr" if self.reduce_range else "",
            self.quant_format,
            "" if self.op_scope == "all" else "ops=weights",
            f"{self.calibration}×{self.samples}",
            "pre" if self.preprocess else "raw",
            f"float[{','.join(self.keep_float)}]" if self.keep_float else "",
            tail,
        ]
        return " ".join(p for p in parts if p)

    def changes(self) -> int:
        """How big a change from the model as it came this recipe is, to settle ties (smaller
        wins): 0 for fp32, 1 for fp16 or onnxruntime's default int8, plus one per choice that
        differs from those defaults and per node kept float (the session options count too)."""
        opt = int(self.opt_level != "all")
        if self.precision != "int8":
            return opt + int(self.precision == "fp16")
        base = ort_defaults(self.samples, self.threads)
        skip = ("samples", "threads", "keep_float", "opt_level", "version")
        differ = sum(getattr(self, f.name) != getattr(base, f.name) for f in fields(self))
        differ -= sum(getattr(self, name) != getattr(base, name) for name in skip)
        return 1 + opt + differ + len(self.keep_float)


def ort_defaults(samples: int, threads: int = 1) -> Recipe:
    """What ``onnxruntime.quantization.quantize_static(model, out, reader)`` does with nothing else
    given: QDQ, S8 activations and weights, per-tensor, MinMax, no pre-processing."""
    return Recipe(
        activations="S8",
        weights="S8",
        per_channel=False,
        reduce_range=False,
        calibration="minmax",
        samples=samples,
        preprocess=False,
        threads=threads,
    )


def _error(name: str, value: object, allowed: str) -> EdgefitError:
    return EdgefitError(
        f"{name}={value!r} is not allowed", where=f"Recipe.{name}", fix=f"use {allowed}"
    )


class Workspace:
    """Builds recipes of one model into ``folder`` and scores them; every file is built once.

    ``feeds`` are the calibration inputs (one dict per sample, batch as the model takes it), in the
    order the seed shuffled them: a recipe with ``samples=n`` calibrates on the first ``n``.
    """

    def __init__(self, model: Any, feeds: Sequence[dict], eval_fn: EvalFn, folder: Path) -> None:
        if not feeds:
            raise EdgefitError(
                "the recipe search got no calibration samples",
                where="search_recipe(feeds=...)",
                fix="pass at least one input feed from the training data",
            )
        self.folder, self.feeds, self.eval_fn = folder, list(feeds), eval_fn
        proto = _onnx.load(model)
        self.sources: dict[bool, Path] = {}
        self.notes: list[str] = []
        for pre in (False, True):
            sub = folder / ("pre" if pre else "raw")
            sub.mkdir(parents=True, exist_ok=True)
            self.sources[pre], note = _onnx.prepare(proto, sub, pre)
            if note:
                self.notes.append(note)
        self._built: dict[str, Path] = {}
        self._scores: dict[str, float] = {}

    def weight_nodes(self, preprocess: bool) -> list[tuple[str, str]]:
        return _onnx.weight_nodes(onnx.load(str(self.sources[preprocess])))

    def depthwise_nodes(self, preprocess: bool) -> list[str]:
        """Conv nodes with ``group > 1`` (depthwise and grouped): int8 kernels for them are often
        no faster than fp32 on the CPU provider, so the search tries keeping them float."""
        model = onnx.load(str(self.sources[preprocess]))

        def group(node) -> int:
            return next(
                (onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "group"),
                1,
            )

        return [n.name for n in model.graph.node if n.op_type == "Conv" and group(n) > 1]

    def build(self, recipe: Recipe, only: str | None = None) -> Path:
        """The model file for ``recipe`` (``only``: quantize that one node, nothing else)."""
        key = self._key(recipe, only)
        if key in self._built:
            return self._built[key]
        out = self.folder / f"{key}.onnx"
        if recipe.precision == "fp32":
            out.write_bytes(self.sources[False].read_bytes())
        elif recipe.precision == "fp16":
            to_fp16(onnx.load(str(self.sources[False])), out)
        else:
            self._quantize(recipe, out, only)
        self._built[key] = out
        return out

    def score(self, recipe: Recipe, only: str | None = None) -> float:
        key = self._key(recipe, only)
        if key not in self._scores:
            self._scores[key] = float(self.eval_fn(self.build(recipe, only)))
        return self._scores[key]

    @staticmethod
    def _key(recipe: Recipe, only: str | None) -> str:
        """The file stem: the recipe's digest (a node name, hashed: it may hold any character)."""
        if not only:
            return recipe.digest()
        return f"{recipe.digest()}-only-{hashlib.sha256(only.encode()).hexdigest()[:8]}"

    def _quantize(self, r: Recipe, out: Path, only: str | None) -> None:
        samples = self.feeds[: r.samples]
        cache = self.folder / f"calib-{r.calibration}-{len(samples)}-{int(r.preprocess)}.json"
        quantize(self.sources[r.preprocess], out, r, samples, cache, only=only)


def calibration_order(feeds: Sequence[dict], seed: int) -> list[dict]:
    """``feeds`` in the order the search draws them (seeded): a recipe with ``samples=n``
    calibrates on the first ``n``, in the search and wherever the recipe is applied later."""
    return [feeds[i] for i in np.random.default_rng(seed).permutation(len(feeds))]


def quantize(
    source: Path,
    out: Path,
    r: Recipe,
    feeds: Sequence[dict],
    cache: Path,
    *,
    only: str | None = None,
) -> None:
    """Write ``source`` (already prepared as ``r.preprocess`` says) quantized by int8 recipe
    ``r`` to ``out``, calibrated on ``feeds`` (``only``: quantize that one node, nothing else);
    the calibration ranges are cached in ``cache`` (reused by every recipe that shares it)."""
    kind = {"U8": ort_quant.QuantType.QUInt8, "S8": ort_quant.QuantType.QInt8}
    try:
        with (
            contextlib.redirect_stdout(io.StringIO()),
            _onnx._without_axis_warnings(),
            _quiet_preprocess_hint(),
        ):
            ort_quant.quantize_static(
                str(source),
                str(out),
                _onnx.reader(list(feeds)),
                quant_format=getattr(ort_quant.QuantFormat, r.quant_format),
                per_channel=r.per_channel,
                reduce_range=r.reduce_range,
                activation_type=kind[r.activations],
                weight_type=kind[r.weights],
                calibrate_method=getattr(
                    ort_quant.CalibrationMethod, _onnx.CALIBRATION_METHODS[r.calibration]
                ),
                nodes_to_exclude=list(r.keep_float),
                nodes_to_quantize=[only] if only else None,
                op_types_to_quantize=(list(_onnx.WEIGHT_OPS) if r.op_scope == "weights" else None),
                calibration_cache_path=str(cache),
                extra_options={
                    "ActivationSymmetric": r.symmetric_activations,
                    "WeightSymmetric": r.symmetric_weights,
                    # float nodes need the Relu before their Q/DQ pair (protect_float_nodes);
                    # otherwise onnxruntime folds removable activations (its default)
                    "QDQKeepRemovableActivations": bool(r.keep_float),
                },
            )
    except Exception as exc:
        raise EdgefitError(
            f"onnxruntime quantize_static failed for {r.label()}: "
            f"{type(exc).__name__}: {str(exc)[:300]}",
            where="search_recipe",
            fix="leave that choice out of the search (or report the model to onnxruntime)",
        ) from None
    if r.quant_format == "QDQ":
        model = onnx.load(str(out))
        _onnx.protect_float_nodes(model)
        save(model, out)


class _PreprocessHint(logging.Filter):
    """onnxruntime logs "Please consider pre-processing" for every raw graph it quantizes; the
    search tries raw graphs on purpose (``preprocess=False``), so the hint is noise here."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@contextlib.contextmanager
def _quiet_preprocess_hint() -> Iterator[None]:
    root, quiet = logging.getLogger(), _PreprocessHint()
    root.addFilter(quiet)
    try:
        yield
    finally:
        root.removeFilter(quiet)


def session(path: Path, recipe: Recipe):
    """An onnxruntime CPU session with the recipe's graph optimization level and intra-op threads
    (sequential execution; onnxruntime's defaults otherwise)."""
    return ort_session(path, recipe.threads, opt_level=recipe.opt_level)


def with_(recipe: Recipe, **changes: Any) -> Recipe:
    """``recipe`` with ``changes`` (a new, validated recipe)."""
    return replace(recipe, **changes)
