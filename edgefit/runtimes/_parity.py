"""Export parity: how far a converted model's outputs are from the reference model's."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._ort import ort_session
from edgefit.errors import require
from edgefit.runtimes._inputs import random_inputs

if TYPE_CHECKING:
    import numpy as np
else:
    np = lazy_import("numpy")

Outputs = Mapping[str, Any]  # output name → array


@dataclass(frozen=True)
class Parity:
    """Converted vs reference outputs, over every output and every sample compared.

    * ``max_abs``: the largest absolute difference.
    * ``max_rel``: ``max_abs`` divided by the reference's largest magnitude (a scale-free figure
      that does not explode where a single reference value is near zero).
    * ``top1_agreement``: fraction of rows (all leading dimensions of the first output whose last
      dimension is > 1) where the arg-max agrees; None when no output looks like class scores.
    * ``sqnr_db``: signal-to-quantization-noise ratio, ``10·log10(Σref² / Σ(ref − conv)²)``;
      ``inf`` when identical (written as null in JSON). Rules of thumb: fp32 ≳ 100 dB, fp16 ≳ 60
      dB, int8 ≳ 20 dB.
    * ``n_samples``: how many input samples were compared.
    """

    max_abs: float
    max_rel: float
    top1_agreement: float | None
    sqnr_db: float
    n_samples: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parity(
    reference_outputs: Outputs | Sequence[Outputs], converted_outputs: Outputs | Sequence[Outputs]
) -> Parity:
    """Compare outputs (one dict per sample, or a list of them) name by name.

    >>> import numpy as np
    >>> p = parity({"y": np.array([[1.0, 2.0]])}, {"y": np.array([[1.0, 2.5]])})
    >>> p.max_abs, p.max_rel, p.top1_agreement
    (0.5, 0.25, 1.0)
    """
    refs = (
        [reference_outputs] if isinstance(reference_outputs, Mapping) else list(reference_outputs)
    )
    convs = (
        [converted_outputs] if isinstance(converted_outputs, Mapping) else list(converted_outputs)
    )
    if len(refs) != len(convs) or not refs:
        raise ValueError(
            f"parity needs as many converted samples as reference samples ({len(refs)} vs "
            f"{len(convs)})"
        )
    ref_flat, conv_flat, agree, rows = [], [], 0, 0
    for ref, conv in zip(refs, convs):
        if set(ref) != set(conv):
            raise ValueError(
                f"outputs differ: reference {sorted(ref)} vs converted {sorted(conv)}"
            )
        for name in ref:
            r = np.asarray(ref[name], dtype=np.float64)
            c = np.asarray(conv[name], dtype=np.float64)
            if r.shape != c.shape:
                raise ValueError(f"output '{name}' has shape {c.shape}, the reference {r.shape}")
            ref_flat.append(r.ravel())
            conv_flat.append(c.ravel())
        first = next((n for n in ref if np.ndim(ref[n]) >= 1 and np.shape(ref[n])[-1] > 1), None)
        if first is not None:
            r = np.asarray(ref[first]).reshape(-1, np.shape(ref[first])[-1])
            c = np.asarray(conv[first]).reshape(r.shape)
            agree += int((r.argmax(-1) == c.argmax(-1)).sum())
            rows += r.shape[0]
    r, c = np.concatenate(ref_flat), np.concatenate(conv_flat)
    diff = np.abs(r - c)
    max_abs = float(diff.max()) if diff.size else 0.0
    scale = float(np.abs(r).max()) if r.size else 0.0
    noise, signal = float((diff**2).sum()), float((r**2).sum())
    sqnr = (
        math.inf if noise == 0 else (10 * math.log10(signal / noise) if signal > 0 else -math.inf)
    )
    return Parity(
        max_abs=max_abs,
        max_rel=max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf),
        top1_agreement=agree / rows if rows else None,
        sqnr_db=sqnr,
        n_samples=len(refs),
    )


def reference_outputs(model, samples: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Outputs of the fp32 source ``model`` (an ``onnx.ModelProto``) on onnxruntime's CPU
    provider."""

    require("onnxruntime", extra="dev", purpose="computing reference outputs for export parity")
    session = ort_session(model, threads=None)
    names = [o.name for o in session.get_outputs()]
    return [dict(zip(names, session.run(None, dict(sample)))) for sample in samples]


def artifact_parity(runtime, artifact, source, specs, calibration, n: int) -> dict[str, Any]:
    """Parity of ``artifact`` (run in-process by ``runtime``) against the fp32 ``source``, for its
    metadata.

    Compared on the first ``n`` calibration inputs when given (in-sample, said so), else on ``n``
    random inputs with seeds 1…n (calibration uses seeds from 100, so they never overlap).
    """
    samples = (
        list(calibration[:n])
        if calibration
        else [random_inputs(specs, seed=1 + i) for i in range(n)]
    )
    session = runtime.open(artifact)
    converted = [session.run(sample) for sample in samples]
    return {
        "parity": parity(reference_outputs(source, samples), converted).to_dict(),
        "parity_inputs": f"{len(samples)} "
        + ("calibration inputs (in-sample)" if calibration else "random normal inputs (seeds 1…)"),
        "parity_reference": "the fp32 source model on onnxruntime's CPU provider",
    }
