"""The MatMulNBits pass: ONNX in, ONNX out — block-wise 4- or 8-bit MatMul weights that
onnxruntime multiplies in int8 (``MatMulNBits`` with ``accuracy_level=4``).

The quantize pass's ``int4-weight`` keeps float compute (each 4-bit block is expanded back to
float before the multiply); here the activations are also quantized, per block at run time, so the
multiply runs on the CPU's int8 dot-product path (AVX-512 VNNI, AVX-VNNI, Arm dot product). It
needs no calibration data: weights are rounded to the nearest level (onnxruntime's
``DefaultWeightOnlyQuantConfig``), and only MatMul and Gemm with a constant 2-D weight change.

This module is the whole pass: its config, its handler, and the precision it adds to the search
(``int4-weight-int8-compute``, wherever the target computes in int8 and Gemm/MatMul layers carry
the MACs). Importing :mod:`edgefit.passes` registers it.

>>> NBitsConfig().to_dict()
{'type': 'NBitsConfig', 'bits': 4, 'block_size': 32, 'symmetric': True, 'accuracy_level': 4, \
'version': 1}
>>> NBitsConfig.search_space(["fp32", "int8"])
{'bits': (4, 8), 'block_size': (32, 128)}
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.passes import _onnx
from edgefit.passes._base import (
    PassConfig,
    PassNotApplicable,
    PassResult,
    config_error,
    register_pass,
)
from edgefit.passes._context import PassContext
from edgefit.passes._precision import Precision, register_precision
from edgefit.runtimes._onnx_rewrite import gemm_to_matmul
from edgefit.runtimes._ort_convert import save

if TYPE_CHECKING:
    import onnx
    import onnxruntime.quantization.matmul_nbits_quantizer as ort_nbits
else:
    onnx, ort_nbits = lazy_import("onnx", "onnxruntime.quantization.matmul_nbits_quantizer")

BITS = (4, 8)
BLOCK_SIZES = (16, 32, 64, 128, 256)
ACCURACY_LEVELS = (0, 1, 2, 3, 4)  # the compute type: 0 unset, 1 fp32, 2 fp16, 3 bf16, 4 int8


@dataclass(frozen=True)
class NBitsConfig(PassConfig):
    """How to quantize MatMul weights into ``MatMulNBits``: ``bits`` per weight, one scale (and,
    unless ``symmetric``, one zero point) per ``block_size`` weights along K, and the compute type
    ``accuracy_level`` (4: int8, the point of this pass; 0–3 keep float compute).

    >>> NBitsConfig(bits=3)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    edgefit.errors.EdgefitError: NBitsConfig.bits: bits=3 is not allowed (fix: use 4 or 8)
    """

    bits: int = 4
    block_size: int = 32
    symmetric: bool = True
    accuracy_level: int = 4
    version: int = 1

    def __post_init__(self) -> None:
        name = type(self).__name__
        self._check_version()
        if self.bits not in BITS:
            raise config_error(name, "bits", self.bits, "4 or 8")
        if self.block_size not in BLOCK_SIZES:
            raise config_error(
                name, "block_size", self.block_size, f"one of {', '.join(map(str, BLOCK_SIZES))}"
            )
        if not isinstance(self.symmetric, bool):
            raise config_error(name, "symmetric", self.symmetric, "True or False")
        if self.accuracy_level not in ACCURACY_LEVELS:
            raise config_error(name, "accuracy_level", self.accuracy_level, "an integer 0-4")

    @classmethod
    def search_space(
        cls, target_dtypes: Iterable[str] = (), knob_space: Mapping[str, Any] | None = None
    ) -> dict[str, tuple]:
        """Bits and block size, where the target computes in int8 (no dtypes given: any)."""
        dtypes = {d.lower() for d in target_dtypes}
        if dtypes and "int8" not in dtypes:
            return {}
        return {"bits": BITS, "block_size": (32, 128)}


@register_pass(NBitsConfig, name="matmul-nbits", consumes="onnx", change_kind="quantization")
def quantize_nbits(model: Any, config: NBitsConfig, context: PassContext) -> PassResult:
    """``model`` (ONNX path or proto) with every MatMul/Gemm whose weight is a constant 2-D tensor
    replaced by ``MatMulNBits``; written under ``context.out_dir()``, returned as its path."""
    proto = _onnx.load(model)
    stem = Path(model).stem if isinstance(model, (str, Path)) else (proto.graph.name or "model")
    tag = f"w{config.bits}b{config.block_size}a{config.accuracy_level}"
    digest = hashlib.sha256(proto.SerializeToString()).hexdigest()[:10]  # one file per input
    out = context.out_dir() / f"{stem}.nbits-{tag}-{digest}.onnx"
    with tempfile.TemporaryDirectory(prefix="edgefit-nbits-") as tmp:
        source, note = _onnx.prepare(proto, Path(tmp), context.preprocess)
        prepared = onnx.load(str(source))
        rewritten = gemm_to_matmul(prepared)  # MatMulNBits replaces MatMul only
        algo = ort_nbits.DefaultWeightOnlyQuantConfig(
            block_size=config.block_size,
            is_symmetric=config.symmetric,
            accuracy_level=config.accuracy_level,
            bits=config.bits,
        )
        quantizer = ort_nbits.MatMulNBitsQuantizer(prepared, algo_config=algo)
        quantizer.process()
        quantized = quantizer.model.model
    count = sum(n.op_type == "MatMulNBits" for n in quantized.graph.node)
    where = f"NBitsConfig(bits={config.bits})"
    if not count:
        raise PassNotApplicable(
            "MatMulNBits found no MatMul/Gemm with a constant 2-D weight",
            where=where,
            fix="use QuantizeConfig(precision='int8')",
        )
    save(quantized, out)
    compute = "int8" if config.accuracy_level == 4 else "float"
    meta: dict[str, Any] = {
        "pass": "matmul-nbits",
        "precision": f"int{config.bits}-weight-{compute}-compute",
        "recipe": f"onnxruntime MatMulNBitsQuantizer (DefaultWeightOnlyQuantConfig): {config.bits}"
        f"-bit {'symmetric' if config.symmetric else 'asymmetric'}, block {config.block_size}, "
        f"accuracy_level {config.accuracy_level} ({compute} compute), {count} MatMulNBits"
        + (f" ({rewritten} Gemm rewritten as MatMul + Add first)" if rewritten else ""),
        "calibration": "none (weight-only rounding; activations quantized per block at run time)",
        "preprocess": "quant_pre_process" if context.preprocess and note is None else "skipped",
    }
    if note:
        meta["note"] = note
    return PassResult(out, meta, "quantization")


register_precision(
    Precision(
        "int4-weight-int8-compute",
        estimate_dtype="int4",
        risk=0.5,
        applies=lambda t: t.matmul and "int8" in t.target_dtypes,
        build=lambda calibration, keep_float: NBitsConfig(),
        slot="quantize",
    )
)
