"""The quantize pass: ONNX in, ONNX out, with onnxruntime's own quantization tools.

* ``int8``: static QDQ (U8 activations, S8 weights), MinMax / Entropy / Percentile calibration on
  the user's data; ``keep_float`` nodes stay float, ``keep_float_top=k`` keeps the k *measured*
  most sensitive nodes float (:mod:`edgefit.passes._sensitivity`).
* ``int8-dynamic``: weights int8 offline, activations at run time, for MatMul / Gemm / LSTM /
  Attention only. Never Conv: onnxruntime's ConvInteger was 0.06–0.16× the fp32 speed on this
  project's CPU.
* ``int4-weight``: 4-bit block-wise (block 32, symmetric) MatMul / Gemm weights, ``MatMulNBits``.
* ``fp16``: every float tensor to fp16, I/O kept fp32. ``fp32``: a plain copy.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.passes import _onnx
from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    config_error,
    is_int,
    register_pass,
)
from edgefit.passes._context import PassContext
from edgefit.passes._precision import Precision, register_precision
from edgefit.passes._recipe import Recipe, calibration_order
from edgefit.passes._recipe import quantize as quantize_recipe
from edgefit.passes._sensitivity import measure_prepared, most_sensitive
from edgefit.runtimes._onnx_rewrite import gemm_to_matmul
from edgefit.runtimes._ort_convert import clamp_ir_file, save, to_fp16

if TYPE_CHECKING:
    import onnx
    import onnxruntime.quantization as ort_quant
    import onnxruntime.quantization.matmul_nbits_quantizer as ort_nbits
else:
    onnx, ort_quant, ort_nbits = lazy_import(
        "onnx", "onnxruntime.quantization", "onnxruntime.quantization.matmul_nbits_quantizer"
    )

PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic", "int4-weight")
CALIBRATIONS = tuple(_onnx.CALIBRATION_METHODS)
DYNAMIC_OPS = ("MatMul", "Gemm", "LSTM", "Attention")
INT4_OPS = ("MatMul", "Gemm")
INT4_BLOCK_SIZE = 32
SEARCH_KEEP_FLOAT_TOP = (0, 1, 2)


@dataclass(frozen=True)
class QuantizeConfig(PassConfig):
    """How to quantize an ONNX model.

    Fields a precision ignores are reset to their defaults (``calibration``, ``keep_float_top`` for
    anything but int8; ``per_channel`` for fp32/fp16/int4), so equal recipes compare and hash equal
    whatever a search drew for them. ``keep_float`` / ``op_types`` given with fp32 or fp16 are
    errors.

    ``recipe`` (int8 only; a :class:`~edgefit.passes.Recipe` or its dict): a whole recipe chosen
    by :func:`~edgefit.passes.search_recipe`, which then decides everything (types, format,
    per-channel, calibration, pre-processing, nodes kept float); ``calibration`` and
    ``per_channel`` mirror it and ``keep_float_top`` is reset. Left out of :meth:`to_dict` when
    None, so configs without one hash as before.

    >>> QuantizeConfig(recipe={"calibration": "entropy"}).calibration
    'entropy'
    >>> "recipe" in QuantizeConfig().to_dict()
    False

    >>> QuantizeConfig(precision="fp16", calibration="entropy") == QuantizeConfig(precision="fp16")
    True
    >>> QuantizeConfig(precision="int8-dynamic", op_types=("Conv",))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: QuantizeConfig.op_types: op_types=('Conv',) is not allowed ...
    """

    precision: str = "int8"
    calibration: str = "minmax"
    per_channel: bool = True
    keep_float: tuple[str, ...] = ()
    keep_float_top: int = 0
    op_types: tuple[str, ...] = ()
    recipe: Recipe | None = None
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        if self.precision not in PRECISIONS:
            raise config_error(
                name, "precision", self.precision, f"one of {', '.join(PRECISIONS)}"
            )
        if self.calibration not in CALIBRATIONS:
            raise config_error(
                name, "calibration", self.calibration, f"one of {', '.join(CALIBRATIONS)}"
            )
        if not isinstance(self.per_channel, bool):
            raise config_error(name, "per_channel", self.per_channel, "True or False")
        if not (is_int(self.keep_float_top) and self.keep_float_top >= 0):
            raise config_error(
                name, "keep_float_top", self.keep_float_top, "a non-negative integer"
            )
        for field in ("keep_float", "op_types"):
            value = getattr(self, field)
            if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
                raise config_error(name, field, value, "a tuple of non-empty names")
            self._set(field, tuple(value))
        self._check_for_precision(name)
        if self.recipe is not None:
            self._check_recipe(name)

    def _check_recipe(self, name: str) -> None:
        recipe: Any = self.recipe
        if isinstance(recipe, Mapping):
            recipe = Recipe.from_dict(dict(recipe))
        if not isinstance(recipe, Recipe) or recipe.precision != "int8":
            raise config_error(name, "recipe", self.recipe, "an int8 Recipe or its dict")
        if self.precision != "int8":
            raise config_error(name, "precision", self.precision, "'int8' with a recipe")
        for field in ("keep_float", "op_types"):
            if getattr(self, field):
                raise config_error(
                    name, field, getattr(self, field), "() with a recipe (the recipe decides)"
                )
        self._set("recipe", recipe)
        self._set("calibration", recipe.calibration)
        self._set("per_channel", recipe.per_channel)
        self._set("keep_float_top", 0)

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.recipe is None:
            data.pop("recipe")
        else:
            data["recipe"] = self.recipe.to_dict()
        return data

    def _check_for_precision(self, name: str) -> None:
        if self.precision in ("fp32", "fp16"):
            for field in ("keep_float", "op_types"):
                if getattr(self, field):
                    raise config_error(
                        name, field, getattr(self, field), f"() with precision='{self.precision}'"
                    )
        allowed = {"int8-dynamic": DYNAMIC_OPS, "int4-weight": INT4_OPS}.get(self.precision)
        if allowed and not set(self.op_types) <= set(allowed):
            why = (
                ": dynamic int8 Conv (ConvInteger) is very slow; use precision='int8'"
                if "Conv" in self.op_types and self.precision == "int8-dynamic"
                else ""
            )
            raise config_error(
                name, "op_types", self.op_types, f"a subset of {', '.join(allowed)}{why}"
            )
        if self.precision != "int8":
            self._set("calibration", "minmax")
            self._set("keep_float_top", 0)
        if self.precision in ("fp32", "fp16", "int4-weight"):
            self._set("per_channel", True)

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        """Precisions the target computes in (int4 weight-only only where the target lists
        ``int4``; no dtypes given means any), and the int8 recipe choices.

        >>> QuantizeConfig.search_space(["fp32", "fp16", "int8"])["precision"]
        ('fp32', 'fp16', 'int8', 'int8-dynamic')
        """
        dtypes = {d.lower() for d in target_dtypes} or {"fp32", "fp16", "int8", "int4"}
        precision = (
            ("fp32",)
            + (("fp16",) if "fp16" in dtypes else ())
            + (("int8", "int8-dynamic") if "int8" in dtypes else ())
            + (("int4-weight",) if "int4" in dtypes else ())
        )
        return {
            "precision": precision,
            "calibration": CALIBRATIONS,
            "per_channel": (True, False),
            "keep_float_top": SEARCH_KEEP_FLOAT_TOP,
        }

    def digest(self, model: Any = None, context: PassContext | None = None) -> str:
        """A short hash of this config (with ``model``'s bytes and the context's data when given),
        so that distinct outputs get distinct file names."""
        h = hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode())
        if model is not None:
            h.update(model.SerializeToString())
        if context is not None:
            h.update(context.fingerprint().encode())
        return h.hexdigest()[:12]


@register_pass(QuantizeConfig, name="quantize", consumes="onnx", change_kind="quantization")
def quantize_onnx(model: Any, config: QuantizeConfig, context: PassContext) -> PassResult:
    """Quantize ``model`` (ONNX path or proto) as ``config`` says; the result is written under
    ``context.out_dir()`` and returned as its path, with the recipe in the metadata."""

    proto = _onnx.load(model)
    stem = Path(model).stem if isinstance(model, (str, Path)) else (proto.graph.name or "model")
    out = context.out_dir() / f"{stem}.{config.precision}-{config.digest(proto, context)}.onnx"
    meta: dict[str, Any] = {"pass": "quantize", "precision": config.precision}
    if config.precision == "fp32":
        save(proto, out)
        return PassResult(out, {**meta, "recipe": "none: fp32 copy"}, None)
    if config.precision == "fp16":
        return PassResult(out, {**meta, **to_fp16(proto, out)}, "quantization")
    with tempfile.TemporaryDirectory(prefix="edgefit-quantize-") as tmp:
        folder = Path(tmp)
        if config.recipe is not None:
            meta.update(_with_recipe(proto, out, config.recipe, context, folder))
            return PassResult(out, meta, "quantization")
        source, note = _onnx.prepare(proto, folder, context.preprocess)
        meta["preprocess"] = (
            "quant_pre_process" if context.preprocess and note is None else "skipped"
        )
        if note:
            meta["note"] = note
        _check_names(source, config.keep_float)
        run = {"int8": _static, "int8-dynamic": _dynamic, "int4-weight": _int4}[config.precision]
        meta.update(run(source, out, config, context, folder))
    return PassResult(out, meta, "quantization")


def _check_names(source: Path, names: tuple[str, ...]) -> None:
    known = {n.name for n in onnx.load(str(source)).graph.node}
    missing = [n for n in names if n not in known]
    if missing:
        sample = ", ".join(sorted(known)[:6])
        raise config_error(
            "QuantizeConfig",
            "keep_float",
            missing,
            f"node names of the (pre-processed) graph, e.g. {sample}; layer_sensitivity() lists "
            "them",
        )


def _static(
    source: Path, out: Path, cfg: QuantizeConfig, ctx: PassContext, folder: Path
) -> dict[str, Any]:
    feeds, where = ctx.calibration_feeds(onnx.load(str(source)))
    keep = list(cfg.keep_float)
    meta: dict[str, Any] = {}
    cache = folder / "calibration.json"
    if cfg.keep_float_top:
        (folder / "sens").mkdir()
        ranked = measure_prepared(
            source,
            feeds,
            ctx.eval_fn,
            calibration=cfg.calibration,
            per_channel=cfg.per_channel,
            threads=ctx.threads,
            folder=folder / "sens",
        )
        keep += [n for n in most_sensitive(ranked, cfg.keep_float_top) if n not in keep]
        meta["sensitivity"] = [s.to_dict() for s in ranked]
        meta["sensitivity_metric"] = (
            "eval_fn (higher is better)"
            if ctx.eval_fn
            else "output fidelity: -NMSE vs fp32 on the calibration feeds"
        )
        cache = folder / "sens" / "calibration.json"
    reduce_range, why = _onnx.host_int8_recipe()
    _onnx.static_qdq(
        source,
        out,
        feeds,
        calibration=cfg.calibration,
        per_channel=cfg.per_channel,
        exclude=keep,
        op_types=cfg.op_types,
        cache=cache,
        reduce_range=reduce_range,
    )
    meta.update(
        {
            "recipe": "onnxruntime.quantization.quantize_static: QDQ, activations QUInt8, "
            "weights QInt8, "
            f"{'per-channel' if cfg.per_channel else 'per-tensor'}, "
            f"{_onnx.CALIBRATION_METHODS[cfg.calibration]} calibration"
            + (", reduce_range" if reduce_range else ""),
            "calibration": where,
            "nodes_kept_float": keep,
            "int8_weights": why,
        }
    )
    if where.startswith("random"):
        meta["warning"] = (
            "calibrated on random inputs: scales fit noise, not real data; accuracy is not "
            "representative"
        )
    return meta


def _with_recipe(
    proto: Any, out: Path, recipe: Recipe, ctx: PassContext, folder: Path
) -> dict[str, Any]:
    """Quantize with a searched recipe exactly as the search built it: the same preparation,
    the same calibration feeds in the same seeded order, the same quantizer call."""
    source, note = _onnx.prepare(proto, folder, recipe.preprocess)
    _check_names(source, recipe.keep_float)
    feeds, where = ctx.calibration_feeds(onnx.load(str(source)))
    samples = calibration_order(feeds, ctx.seed)[: recipe.samples]
    quantize_recipe(source, out, recipe, samples, folder / "calibration.json")
    meta: dict[str, Any] = {
        "recipe": f"searched recipe: {recipe.label()}",
        "recipe_config": recipe.to_dict(),
        "preprocess": "quant_pre_process" if recipe.preprocess and note is None else "skipped",
        "calibration": f"{where}; the first {len(samples)} in the search's seeded order",
        "nodes_kept_float": list(recipe.keep_float),
        "session_options": {
            "graph_optimization_level": recipe.opt_level,
            "intra_op_threads": recipe.threads,
        },
    }
    if note:
        meta["note"] = note
    if where.startswith("random"):
        meta["warning"] = (
            "calibrated on random inputs: scales fit noise, not real data; accuracy is not "
            "representative"
        )
    return meta


def _rewritten(source: Path, folder: Path, op_types: tuple[str, ...]) -> tuple[Path, int, list]:
    """The prepared model with Gemm rewritten to MatMul when Gemm is asked for; its matching
    nodes."""
    model = onnx.load(str(source))
    rewritten = gemm_to_matmul(model) if "Gemm" in op_types else 0
    ops = tuple({"Gemm": "MatMul"}.get(t, t) for t in op_types)
    found = [n for n in model.graph.node if n.op_type in ops]
    return save(model, folder / "matmul.onnx"), rewritten, found


def _dynamic(
    source: Path, out: Path, cfg: QuantizeConfig, ctx: PassContext, folder: Path
) -> dict[str, Any]:
    op_types = cfg.op_types or DYNAMIC_OPS
    src, rewritten, found = _rewritten(source, folder, op_types)
    if not found:
        raise PassNotApplicable(
            f"dynamic int8 found no {'/'.join(op_types)} node to quantize",
            where="QuantizeConfig(precision='int8-dynamic')",
            fix="use precision='int8'",
        )
    ops = sorted({{"Gemm": "MatMul"}.get(t, t) for t in op_types})
    reduce_range, why = _onnx.host_int8_recipe()
    ort_quant.quantize_dynamic(
        str(src),
        str(out),
        op_types_to_quantize=ops,
        per_channel=cfg.per_channel,
        reduce_range=reduce_range,
        weight_type=ort_quant.QuantType.QInt8,
        nodes_to_exclude=list(cfg.keep_float),
    )
    clamp_ir_file(out)
    return {
        "recipe": f"onnxruntime.quantization.quantize_dynamic: weights QInt8"
        f"{', per-channel' if cfg.per_channel else ''}{', reduce_range' if reduce_range else ''}, "
        f"activations at run time; ops {', '.join(ops)}"
        + (f" ({rewritten} Gemm rewritten as MatMul + Add first)" if rewritten else ""),
        "calibration": "none (dynamic)",
        "nodes_kept_float": list(cfg.keep_float),
        "int8_weights": why,
    }


def _int4(
    source: Path, out: Path, cfg: QuantizeConfig, ctx: PassContext, folder: Path
) -> dict[str, Any]:
    op_types = cfg.op_types or INT4_OPS
    src, rewritten, _ = _rewritten(source, folder, op_types)
    quantizer = ort_nbits.MatMulNBitsQuantizer(
        str(src),
        bits=4,
        block_size=INT4_BLOCK_SIZE,
        is_symmetric=True,
        nodes_to_exclude=list(cfg.keep_float),
        op_types_to_quantize=("MatMul",),
    )
    quantizer.process()
    model = quantizer.model.model
    count = sum(n.op_type == "MatMulNBits" for n in model.graph.node)
    if not count:
        raise PassNotApplicable(
            "int4 weight-only found no MatMul/Gemm with a constant 2-D weight",
            where="QuantizeConfig(precision='int4-weight')",
            fix="use precision='int8'",
        )
    save(model, out)
    rewrite = f" ({rewritten} Gemm rewritten as MatMul + Add first)" if rewritten else ""
    return {
        "recipe": f"onnxruntime MatMulNBitsQuantizer: 4-bit symmetric, block {INT4_BLOCK_SIZE}, "
        f"{count} MatMulNBits{rewrite}",
        "calibration": "none (weight-only)",
        "nodes_kept_float": list(cfg.keep_float),
    }


def _quantize(precision: str) -> Callable[[str, int], QuantizeConfig]:
    def build(calibration: str, keep_float: int) -> QuantizeConfig:
        return QuantizeConfig(
            precision=precision, calibration=calibration, keep_float_top=keep_float
        )

    return build


# The precisions this pass makes, in the order a search tries them (edgefit.passes._precision)
for _row in (
    Precision("fp16", "fp16", 0.05, lambda t: "fp16" in t.target_dtypes),
    Precision("int8", "int8", 0.3, lambda t: "int8" in t.target_dtypes, tuned=True),
    Precision("int8-dynamic", "int8", 0.25, lambda t: t.matmul and "int8" in t.target_dtypes),
    Precision(
        "int4-weight",
        "int4",
        0.6,
        lambda t: t.matmul and bool({"int4", "int8"} & t.target_dtypes),
    ),
):
    register_precision(replace(_row, build=_quantize(_row.name), slot="quantize"))
