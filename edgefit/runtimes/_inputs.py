"""Model inputs for timing, calibration and parity: specs read from an ONNX model, random data from
specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefit._lazy import lazy_import
from edgefit.errors import EdgefitError

if TYPE_CHECKING:
    import numpy as np
    import onnx

    from edgefit import graph
else:
    np, onnx, graph = lazy_import("numpy", "onnx", "edgefit.graph")

Specs = dict[str, tuple[tuple[int, ...], str]]  # input name → (shape, numpy dtype name)


def load_onnx(model: Any):
    """An ``onnx.ModelProto`` from a path, a proto, or anything with a ``.model`` proto (an edgefit
    Graph)."""
    if isinstance(model, onnx.ModelProto):
        return model
    if isinstance(getattr(model, "model", None), onnx.ModelProto):
        return model.model
    if isinstance(model, (str, Path)):
        return graph.read_onnx(model)
    raise EdgefitError(
        f"cannot convert a model of type {type(model).__name__}",
        where="MODEL",
        fix="pass an .onnx path, an onnx.ModelProto or an edgefit Graph",
    )


def model_stem(model) -> str:
    """A file-name-safe stem from the ONNX graph's name (``model`` when it has none)."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", model.graph.name or "model").strip("._") or "model"
    return name[:60]


def onnx_input_specs(model) -> Specs:
    """Real (non-initializer) inputs of an ONNX model; dynamic dimensions are taken as 1."""
    initializers = {i.name for i in model.graph.initializer}
    specs: Specs = {}
    for vi in model.graph.input:
        if vi.name in initializers:
            continue
        tt = vi.type.tensor_type
        shape = tuple(
            d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1 for d in tt.shape.dim
        )
        specs[vi.name] = (shape, onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name)
    return specs


def random_inputs(specs: Specs, *, seed: int = 0) -> dict[str, Any]:
    """Standard-normal floats, small non-negative integers (token ids, indices), random booleans.

    >>> x = random_inputs({"x": ((1, 3), "float32")})["x"]
    >>> x.shape, x.dtype.name
    ((1, 3), 'float32')
    """
    rng = np.random.default_rng(seed)
    out = {}
    for name, (shape, dtype) in specs.items():
        dt = np.dtype(dtype)
        if dt.kind == "f":
            out[name] = rng.standard_normal(shape).astype(dt)
        elif dt.kind in "iu":
            out[name] = rng.integers(0, 10, size=shape).astype(dt)
        elif dt.kind == "b":
            out[name] = rng.integers(0, 2, size=shape).astype(bool)
        else:
            raise EdgefitError(
                f"cannot make random data for input '{name}' of dtype {dt}",
                where="inputs",
                fix="pass the inputs yourself",
            )
    return out


def check_inputs(inputs, specs: Specs) -> dict[str, Any]:
    """Validate user-given inputs against the model's specs (names, shapes, dtypes) with one clear
    error."""
    missing, unknown = sorted(set(specs) - set(inputs)), sorted(set(inputs) - set(specs))
    if missing or unknown:
        raise EdgefitError(
            f"inputs do not match the model: missing {missing}, unknown {unknown}",
            where="inputs",
            fix=f"give exactly: {', '.join(specs)}",
        )
    checked = {}
    for name, (shape, dtype) in specs.items():
        arr = np.asarray(inputs[name])
        if arr.ndim != len(shape):
            raise EdgefitError(
                f"input '{name}' has rank {arr.ndim}, the model expects {len(shape)}",
                where="inputs",
                fix=f"give shape {'x'.join(map(str, shape))}",
            )
        checked[name] = arr.astype(dtype, copy=False)
    return checked
