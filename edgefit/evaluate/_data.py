"""Evaluation data: an .npz of inputs (and optionally labels), checked against the model it is
for."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefit.errors import EdgefitError

_INPUT_KEYS = ("x", "inputs", "input", "data")
_LABEL_KEYS = ("y", "labels", "label", "targets")


@dataclass(frozen=True)
class EvalData:
    """Samples along axis 0 of ``x``; ``y`` holds integer class labels or is None (fidelity
    only)."""

    x: np.ndarray
    y: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def head(self, n: int) -> EvalData:
        return EvalData(self.x[:n], None if self.y is None else self.y[:n], f"{self.source}[:{n}]")


def load_npz(path: str | Path, *, where: str = "--data") -> EvalData:
    """Load ``inputs`` (key x/inputs/input/data) and optional ``labels`` (y/labels/label/targets).

    ``np.load(..., allow_pickle=False)``: an .npz with object arrays is refused, never unpickled.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgefitError(
            f"data file not found: {path}", where=where, fix="pass an .npz with x (and y) arrays"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise EdgefitError(
            f"cannot read {path} as .npz ({type(exc).__name__}: {str(exc)[:120]})",
            where=where,
            fix="save it with numpy.savez(path, x=inputs, y=labels)",
        ) from None
    x = next((arrays[k] for k in _INPUT_KEYS if k in arrays), None)
    if x is None:
        raise EdgefitError(
            f"{path} has no inputs array (keys: {', '.join(arrays) or 'none'})",
            where=where,
            fix=f"name the inputs one of {', '.join(_INPUT_KEYS)}",
        )
    y = next((arrays[k] for k in _LABEL_KEYS if k in arrays), None)
    if x.ndim < 1 or len(x) == 0:
        raise EdgefitError(
            f"{path}: the inputs array is empty", where=where, fix="save at least one sample"
        )
    if y is not None:
        if y.ndim != 1 or len(y) != len(x):
            raise EdgefitError(
                f"{path}: labels have shape {y.shape}, expected ({len(x)},) — one per input",
                where=where,
                fix="save one integer class label per sample",
            )
        if not np.issubdtype(y.dtype, np.integer):
            raise EdgefitError(
                f"{path}: labels are {y.dtype}, expected integer class ids",
                where=where,
                fix="save labels as integers (e.g. y.astype(np.int64))",
            )
    return EvalData(x, y, str(path))


def check_data(
    data: EvalData,
    input_shape: tuple[int, ...],
    input_dtype: str,
    num_outputs: int | None,
    *,
    where: str = "--data",
) -> EvalData:
    """Match the data to the model: per-sample shape, dtype, and label range; one clear line
    otherwise."""
    sample_shape = tuple(input_shape[1:])
    if tuple(data.x.shape[1:]) != sample_shape:
        raise EdgefitError(
            f"inputs have per-sample shape {tuple(data.x.shape[1:])}, the model takes "
            f"{sample_shape}",
            where=where,
            fix=f"reshape the inputs to (N, {', '.join(map(str, sample_shape))})",
        )
    want_int = input_dtype == "int64"
    if want_int != np.issubdtype(data.x.dtype, np.integer):
        raise EdgefitError(
            f"inputs are {data.x.dtype}, the model takes {input_dtype}",
            where=where,
            fix=f"convert with x.astype(np.{input_dtype})",
        )
    x = data.x.astype(np.int64 if want_int else np.float32, copy=False)
    if data.y is not None and num_outputs is not None:
        lo, hi = int(data.y.min()), int(data.y.max())
        if lo < 0 or hi >= num_outputs:
            raise EdgefitError(
                f"labels range over [{lo}, {hi}] but the model has {num_outputs} outputs",
                where=where,
                fix=f"labels must be class ids in [0, {num_outputs - 1}]",
            )
    return EvalData(x, data.y, data.source)
