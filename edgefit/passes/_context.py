"""What passes read besides the model and their config: the user's data, where to write, how to
run.

A config is the *recipe* (searchable, hashable); the context is the *situation* (data, folders,
threads). Keeping them apart lets one config apply to many models and keeps configs plain data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit._resources import user_cache_dir
from edgefit.errors import EdgefitError
from edgefit.runtimes._inputs import onnx_input_specs, random_inputs

if TYPE_CHECKING:
    import numpy as np
    import torch
else:
    np, torch = lazy_import("numpy", "torch")

Arrays = tuple["np.ndarray", "np.ndarray"]  # (inputs x, integer labels y)


@dataclass(frozen=True, eq=False)
class PassContext:
    """The situation passes run in. Every field is optional; a pass that needs a missing one says
    so.

    * ``work_dir``: where ONNX files are written (default ``user_cache_dir()/passes``).
    * ``calibration``: int8 calibration inputs, either a list of ``{input name: array}`` feeds or
      one array of samples along axis 0 (fed in chunks of the model's batch size). Without it, the
      first ``calibration_samples`` training inputs; random inputs only when there is no data at
      all (flagged in the metadata).
    * ``train`` / ``val``: ``(x, y)`` numpy arrays for recovery fine-tuning (``val`` defaults to
      ``train``).
    * ``eval_fn``: ``fn(onnx_path) -> score`` (higher is better) for mixed-precision sensitivity;
      the default is output fidelity against the fp32 model on the calibration inputs.
    * ``factory``: how to build the model for an architecture swap: an example name
      (``"digits-cnn"``) or ``"module:function"``.
    * ``input_shape`` / ``input_dtype``: the model's input, for ONNX export and channel pruning.
    * ``teacher``: the original model, for knowledge distillation during recovery.
    * ``seed``, ``threads`` (torch and onnxruntime), ``progress`` (bars on stderr), ``preprocess``
      (onnxruntime's ``quant_pre_process`` before quantizing).

    >>> PassContext(input_shape=(1, 1, 32, 32)).threads
    2
    """

    work_dir: Path | None = None
    calibration: Sequence[Mapping[str, np.ndarray]] | np.ndarray | None = None
    calibration_samples: int = 16
    train: Arrays | None = None
    val: Arrays | None = None
    eval_fn: Callable[[Path], float] | None = None
    factory: str | None = None
    input_shape: tuple[int, ...] | None = None
    input_dtype: str = "float32"
    teacher: torch.nn.Module | None = None
    seed: int = 0
    threads: int = 2
    progress: bool = False
    preprocess: bool = True

    def __post_init__(self) -> None:
        if self.calibration_samples < 1:
            raise EdgefitError(
                f"calibration_samples={self.calibration_samples}",
                where="PassContext",
                fix="use at least 1",
            )
        if self.input_shape is not None:
            object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        if self.work_dir is not None:
            object.__setattr__(self, "work_dir", Path(self.work_dir))

    def out_dir(self) -> Path:
        folder = self.work_dir or user_cache_dir() / "passes"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def calibration_feeds(self, model) -> tuple[list[dict[str, Any]], str]:
        """Calibration feeds for ONNX ``model`` and where they came from (said in every quantized
        model's metadata: a model calibrated on noise must never pass for one calibrated on
        data)."""
        specs = onnx_input_specs(model)
        if (
            self.calibration is not None
            and len(self.calibration)
            and isinstance(self.calibration[0], Mapping)
        ):
            return [
                dict(feed) for feed in self.calibration
            ], f"given calibration feeds ({len(self.calibration)})"
        data, source = self.calibration, "given calibration array"
        if data is None and self.train is not None:
            data, source = (
                self.train[0][: self.calibration_samples],
                "training inputs (first samples)",
            )
        if data is None:
            feeds = [random_inputs(specs, seed=100 + i) for i in range(self.calibration_samples)]
            return feeds, f"random normal inputs ({len(feeds)}, seeds 100…): no data given"
        if len(specs) != 1:
            raise EdgefitError(
                f"the model has {len(specs)} inputs; an array feeds only one",
                where="PassContext.calibration",
                fix="give a list of {input name: array} feeds",
            )
        ((name, (shape, dtype)),) = specs.items()
        data = np.asarray(data).astype(dtype, copy=False)
        if data.ndim != len(shape):
            raise EdgefitError(
                f"calibration data has rank {data.ndim}, the model input '{name}' has "
                f"{len(shape)}",
                where="PassContext.calibration",
                fix="give samples stacked along axis 0",
            )
        batch = shape[0]  # the exported batch size (usually 1): samples are fed in chunks of it
        feeds = [{name: data[i : i + batch]} for i in range(0, len(data) - batch + 1, batch)]
        return feeds, f"{source} ({len(feeds)} samples)"

    def fingerprint(self) -> str:
        """A hash of everything here that changes a pass's output (data, seed, shapes, factory),
        for caching; callables count by name only."""
        h = hashlib.sha256()
        for value in (
            self.factory,
            self.input_shape,
            self.input_dtype,
            self.seed,
            self.calibration_samples,
            self.preprocess,
            getattr(self.eval_fn, "__qualname__", None),
        ):
            h.update(repr(value).encode() + b"\0")
        cal = self.calibration
        if cal is not None and len(cal) and isinstance(cal[0], Mapping):
            arrays: list[Any] = [v for feed in cal for _, v in sorted(feed.items())]
        else:
            arrays = [cal]
        for pair in (self.train, self.val):
            arrays += list(pair) if pair is not None else [None]
        for arr in arrays:
            h.update(
                b"none"
                if arr is None
                else np.ascontiguousarray(arr).tobytes() + repr(np.shape(arr)).encode()
            )
        if self.teacher is not None:
            h.update(module_fingerprint(self.teacher).encode())
        return h.hexdigest()


def module_fingerprint(module: torch.nn.Module) -> str:
    """sha256 of a module's class, structure and every tensor of its state dict (a teacher here,
    a base model in :meth:`PassPlan.content_hash`)."""
    h = hashlib.sha256(
        f"{type(module).__module__}.{type(module).__qualname__}\0{module!r}".encode()
    )
    for name, tensor in module.state_dict().items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"\0{name}:{t.dtype}:{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # raw bytes: bf16 and bool too
    return h.hexdigest()
