"""The model being optimized and its data: a built-in example, a ``module:function`` factory, or an
ONNX file; evaluation data (labels → accuracy, none → fidelity), training data (for recovery) and
calibration inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError
from edgefit.evaluate import check_data, load_npz
from edgefit.examples import get_example, load_digits_splits
from edgefit.graph import load_graph, parse_input_shape
from edgefit.graph._examples import example_graph
from edgefit.graph._torch import export_torch
from edgefit.passes._swap import resolve_factory

if TYPE_CHECKING:
    import torch
    import torch.nn.functional as F
else:  # only a swapped resolution needs torch (to resample the inputs)
    torch, F = lazy_import("torch", "torch.nn.functional")


@dataclass
class Base:
    kind: str  # "example" | "factory" | "onnx"
    name: str  # example name, "module:function", or the ONNX path
    input_shape: tuple[int, ...]
    input_dtype: str
    eval_x: np.ndarray
    eval_y: np.ndarray | None
    eval_source: str
    train: tuple[np.ndarray, np.ndarray] | None
    val: tuple[np.ndarray, np.ndarray] | None
    num_outputs: int | None
    knob_space: dict | None = None
    base_activation: str | None = None
    onnx_path: Path | None = None

    @property
    def materialize_base(self) -> Any:
        return self.onnx_path if self.kind == "onnx" else self.name

    def shape_for(self, resolution: int | None) -> tuple[int, ...]:
        """The model's input shape at ``resolution`` (the base's own when None)."""
        if resolution is None:
            return self.input_shape
        if self.kind == "example":
            return get_example(self.name).shape_for(resolution)
        spatial = 2 if len(self.input_shape) == 4 else 1
        return self.input_shape[:-spatial] + (resolution,) * spatial

    @property
    def calibration(self) -> np.ndarray:
        """Calibration samples for int8: training inputs when there are any, else evaluation
        inputs."""
        source = self.train[0] if self.train is not None else self.eval_x
        return source[:64]

    def graph_variant(self, depth: float, resolution: int | None, activation: str | None):
        """The graph of the base architecture at these knobs (weights irrelevant to the
        estimator)."""

        if self.kind == "onnx":
            return load_graph(self.onnx_path)
        knobs = {"depth": depth, "resolution": resolution, "activation": activation}
        knobs = {k: v for k, v in knobs.items() if v is not None}
        if self.kind == "example":
            return example_graph(self.name, **knobs)

        module = resolve_factory(self.name)(width=1.0, **knobs)
        shape = self.input_shape if resolution is None else self.input_shape[:-1] + (resolution,)
        return load_graph(
            export_torch(module, shape, input_dtype=self.input_dtype), source=self.name
        )


def resize_inputs(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Resample float inputs to a swapped resolution (bilinear for images, linear for 1-D
    signals)."""
    if tuple(x.shape[1:]) == tuple(shape[1:]) or not np.issubdtype(x.dtype, np.floating):
        return x
    mode = "bilinear" if x.ndim == 4 else "linear"
    t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    size = tuple(shape[2:])
    return F.interpolate(t, size=size, mode=mode, align_corners=False).numpy()


def _npz_pair(path: Path | None, where: str):
    if path is None:
        return None

    data = load_npz(path, where=where)
    if data.y is None:
        raise EdgefitError(
            f"{path} has inputs but no labels", where=where, fix="save y (integer labels) beside x"
        )
    return data.x, data.y


def resolve_base(
    model: Path | None,
    example: str | None,
    factory: str | None,
    input_shape: str | None,
    data: Path | None,
    train_data: Path | None,
) -> Base:
    """Work out what is being optimized and with which data (one clear error for each mismatch)."""
    if sum(x is not None for x in (model, example, factory)) > 1:
        raise EdgefitError(
            "give one of MODEL, --example or --factory", where="MODEL", fix="drop the others"
        )
    if model is None and factory is None:
        example = example or "digits-cnn"
    train = _npz_pair(train_data, "--train-data")
    if example is not None:
        spec = get_example(example)
        shape, dtype = spec.input_shape, spec.input_dtype
        base = Base(
            "example",
            example,
            shape,
            dtype,
            np.empty(0),
            None,
            "",
            train,
            None,
            spec.num_classes,
            knob_space=spec.knob_space(),
            base_activation=spec.defaults.activation,
        )
        if example == "digits-cnn" and data is None:
            splits = load_digits_splits()
            base.train = train or splits["train"]
            base.val = splits["val"]
            base.eval_x, base.eval_y = splits["test"]
            base.eval_source = "UCI digits, held-out test split (360 samples, never trained on)"
    elif factory is not None:
        if input_shape is None:
            raise EdgefitError(
                "a factory model needs its input shape",
                where="--input-shape",
                fix="pass --input-shape 1x3x224x224",
            )
        parsed = parse_input_shape(input_shape)
        if not isinstance(parsed, tuple):
            raise EdgefitError(
                "give one plain shape for a factory model",
                where="--input-shape",
                fix="e.g. 1x3x224x224",
            )
        shape = parsed
        base = Base("factory", factory, shape, "float32", np.empty(0), None, "", train, None, None)
    else:
        graph = load_graph(model, input_shape)
        ((name, shape),) = list(graph.inputs.items())[:1] or [("", ())]
        dtype = graph.tensors.get(name, ((), "fp32"))[1]
        out_shape = next(iter(graph.outputs.values()), ())
        base = Base(
            "onnx",
            str(model),
            tuple(shape),
            "int64" if dtype == "int64" else "float32",
            np.empty(0),
            None,
            "",
            train,
            None,
            int(np.prod(out_shape[1:])) if len(out_shape) > 1 else None,
            onnx_path=Path(str(model)),
        )
    if data is not None:
        checked = check_data(load_npz(data), base.input_shape, base.input_dtype, base.num_outputs)
        base.eval_x, base.eval_y, base.eval_source = checked.x, checked.y, checked.source
    if base.eval_x.size == 0:  # no data: fidelity on seeded random inputs, and said so
        rng = np.random.default_rng(0)
        shape = (64,) + tuple(base.input_shape[1:])
        base.eval_x = (
            rng.integers(0, 100, size=shape)
            if base.input_dtype == "int64"
            else rng.standard_normal(shape).astype(np.float32)
        )
        base.eval_source = (
            "64 seeded random inputs (no --data given: fidelity to the original, not accuracy)"
        )
    return base
