"""PyTorch → .tflite with litert-torch (no TensorFlow): fp32, and int8 through PT2E.

int8 follows litert-torch's documented PT2E flow: ``torch.export`` → ``prepare_pt2e`` with
litert-torch's ``PT2EQuantizer`` (symmetric int8 weights, per-channel by default; int8 activations)
→ calibration passes → ``convert_pt2e(fold_quantize=False)`` → ``litert_torch.convert(…,
quant_config=QuantConfig( pt2e_quantizer=q))``. The result is fully int8, inputs and outputs
included, which is what an Ethos-U NPU (Vela) needs;
:class:`~edgefit.runtimes._litert.LiteRTSession` quantizes float inputs and dequantizes outputs for
the caller.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.runtimes._quiet import captured_output
from edgefit.runtimes._torch_source import TorchModel

if TYPE_CHECKING:
    import litert_torch.quantize.pt2e_quantizer as lt_pt2e
    import litert_torch.quantize.quant_config as lt_quant_config
    import torch
    import torchao.quantization.pt2e.quantize_pt2e as ao_pt2e
else:
    # first read after _litert_torch() has set litert-torch's environment and imported it quietly
    lt_pt2e, lt_quant_config, torch, ao_pt2e = lazy_import(
        "litert_torch.quantize.pt2e_quantizer",
        "litert_torch.quantize.quant_config",
        "torch",
        "torchao.quantization.pt2e.quantize_pt2e",
    )

PIP = 'pip install "edgefit[litert-convert]" -c constraints.txt'


def _litert_torch():
    os.environ.setdefault("TORCHAO_FORCE_SKIP_LOADING_SO_FILES", "1")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = (
        "n"  # its rich progress lines would garble --json output
    )
    try:
        with captured_output(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import litert_torch
    except ImportError as exc:
        raise EdgefitError(
            f"converting PyTorch to .tflite needs litert-torch, which does not import: {exc}",
            fix=PIP,
        ) from None
    return litert_torch


def _convert(what: str, call) -> Any:
    """Run a litert-torch call quietly; a failure becomes one EdgefitError with the converter's
    last words."""
    quiet = [
        logging.getLogger(n) for n in ("torch", "torch._export", "torch.export", "absl", "jax")
    ]
    levels = [q.level for q in quiet]
    for q in quiet:
        q.setLevel(logging.ERROR)
    try:
        with captured_output() as log, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                return call()
            except (
                Exception
            ) as exc:  # the converter raises anything from torch.export, MLIR or flatbuffers
                error = exc
        last = "; ".join(log.tail(600).strip().splitlines()[-3:])
        raise EdgefitError(
            f"litert-torch could not convert the model ({what}): {type(error).__name__}: "
            f"{str(error).splitlines()[0][:300] if str(error) else ''}"
            + (f" [converter output: {last}]" if last else ""),
            where="MODEL",
            fix="make the module exportable with torch.export, or try another runtime",
        ) from None
    finally:
        for q, level in zip(quiet, levels):
            q.setLevel(level)


def channel_last(tm: TorchModel) -> tuple[TorchModel, list[str], list[str]]:
    """``tm`` with its 4-D inputs and outputs NHWC (``litert_torch.to_channel_last_io``) and their
    names."""
    lt = _litert_torch()
    sample = {n: t.numpy() for n, t in zip(tm.input_names, tm.example_inputs)}
    out_rank = [v.ndim for v in tm.outputs(sample).values()]
    ins = [i for i, t in enumerate(tm.example_inputs) if t.ndim == 4]
    outs = [j for j, rank in enumerate(out_rank) if rank == 4]
    if not ins and not outs:
        return tm, [], []
    wrapped = lt.to_channel_last_io(tm.module, args=ins, outputs=outs).eval()
    example = tuple(
        t.permute(0, 2, 3, 1).contiguous() if i in ins else t
        for i, t in enumerate(tm.example_inputs)
    )
    return (
        TorchModel(wrapped, example, tm.input_names, tm.output_names, tm.name, tm.reference),
        [tm.input_names[i] for i in ins],
        [tm.output_names[j] for j in outs],
    )


def to_fp32(tm: TorchModel, path: Path) -> dict[str, Any]:
    lt = _litert_torch()
    edge = _convert("fp32", lambda: lt.convert(tm.module, tm.example_inputs))
    _convert("write", lambda: edge.export(str(path)))
    return {
        "recipe": f"litert_torch.convert (litert-torch {_version('litert-torch')}): fp32, "
        "inputs/outputs float32"
    }


def to_int8(
    tm: TorchModel,
    path: Path,
    samples: Sequence[dict],
    *,
    per_channel: bool,
    calibration_source: str,
) -> dict[str, Any]:
    lt = _litert_torch()
    quantizer = lt_pt2e.PT2EQuantizer().set_global(
        lt_pt2e.get_symmetric_quantization_config(is_per_channel=per_channel)
    )

    def quantize():
        graph = torch.export.export(tm.module, tm.example_inputs).module()
        prepared = ao_pt2e.prepare_pt2e(graph, quantizer)
        with torch.no_grad():
            for sample in samples:
                prepared(*(torch.as_tensor(sample[n]) for n in tm.input_names))
        return ao_pt2e.convert_pt2e(prepared, fold_quantize=False)

    quantized = _convert("int8 PT2E quantization", quantize)
    edge = _convert(
        "int8",
        lambda: lt.convert(
            quantized,
            tm.example_inputs,
            quant_config=lt_quant_config.QuantConfig(pt2e_quantizer=quantizer),
        ),
    )
    _convert("write", lambda: edge.export(str(path)))
    meta = {
        "recipe": f"litert-torch {_version('litert-torch')} PT2E: PT2EQuantizer(symmetric int8 "
        "weights, "
        f"{'per-channel' if per_channel else 'per-tensor'}; int8 activations) → convert_pt2e → "
        "litert_torch.convert(quant_config=QuantConfig(pt2e_quantizer=…)); int8 inputs and "
        "outputs "
        "(edgefit quantizes/dequantizes them for the caller)",
        "calibration": f"{len(samples)} samples: {calibration_source}",
    }
    if calibration_source.startswith("random"):
        meta["warning"] = (
            "calibrated on random inputs: scales fit noise, not real data; accuracy is not "
            "representative"
        )
    return meta


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"
