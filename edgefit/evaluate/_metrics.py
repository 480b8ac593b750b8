"""Accuracy on labelled data, or fidelity to the original model when there are no labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Score:
    """``value`` is what the search maximizes; ``kind`` says what it is (never mixed up in
    reports)."""

    kind: str  # "top1" (labels) or "agreement" (top-1 agreement with the original, no labels)
    value: float
    n: int
    sqnr_db: float | None = None  # output signal-to-quantization-noise vs the original, when known

    @property
    def label(self) -> str:
        return {
            "top1": "top-1 accuracy on labelled data",
            "agreement": "top-1 agreement with the original model (no labels: fidelity, not "
            "accuracy)",
            "sqnr": "output SQNR against the original model, dB (fidelity, not accuracy)",
        }[self.kind]


def run_outputs(session, x: np.ndarray) -> np.ndarray:
    """First output of an onnxruntime session for every sample (batched when the model allows
    it)."""
    inp = session.get_inputs()[0]
    batch = inp.shape[0]
    name = inp.name
    if not (isinstance(batch, int) and batch > 0):
        return session.run(None, {name: x})[0]
    outs = []
    for i in range(0, len(x), batch):
        chunk = x[i : i + batch]
        short = batch - len(chunk)
        if short:  # a fixed batch size: pad the last chunk, drop the padding's outputs
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], short, axis=0)])
        outs.append(session.run(None, {name: chunk})[0][: batch - short])
    return np.concatenate(outs)


def sqnr_db(reference: np.ndarray, other: np.ndarray) -> float:
    noise = float(np.mean((reference - other) ** 2))
    signal = float(np.mean(reference**2))
    return float("inf") if noise == 0 else 10 * np.log10(max(signal, 1e-30) / noise)


METRICS = ("auto", "top1", "agreement", "sqnr")


def score(
    outputs: np.ndarray,
    labels: np.ndarray | None,
    reference: np.ndarray | None,
    metric: str = "auto",
) -> Score:
    """``auto``: top-1 accuracy with labels, otherwise top-1 agreement with ``reference`` outputs.
    ``sqnr`` scores output fidelity in dB against ``reference`` (for regression, denoising and
    autoencoder outputs where top-1 means nothing); higher is better for every metric."""
    flat = outputs.reshape(len(outputs), -1)
    pred = flat.argmax(axis=1)
    s = None if reference is None else sqnr_db(reference.reshape(len(reference), -1), flat)
    if metric == "sqnr":
        if s is None:  # no reference outputs
            raise ValueError("the sqnr metric needs the original model's outputs")
        return Score("sqnr", min(s, 200.0), len(pred), s)
    if metric == "top1" and labels is None:
        raise ValueError("the top1 metric needs labels")
    if labels is not None and metric in ("auto", "top1"):
        return Score("top1", float((pred == labels).mean()), len(pred), s)
    if reference is None:
        raise ValueError("without labels, fidelity needs the original model's outputs")
    agree = float((pred == reference.reshape(len(reference), -1).argmax(axis=1)).mean())
    return Score("agreement", agree, len(pred), s)
