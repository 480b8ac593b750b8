"""Load a model (ONNX file, ONNX proto, torch module or built-in example) into a :class:`Graph`."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from edgefit.errors import EdgefitError
from edgefit.graph._build import Graph, build_graph

# onnxruntime 1.31 reads IR ≤ 13 while onnx 1.23 writes 14 by default
MAX_IR_VERSION = 10

InputShape = str | tuple[int, ...] | list[int] | dict[str, tuple[int, ...]] | None


def parse_input_shape(spec: InputShape) -> dict[str, tuple[int, ...]] | tuple[int, ...] | None:
    """``"1x3x224x224"``, ``"1,3,224,224"``, ``"x:1x3x224x224;y:1x10"`` or a tuple/dict → shapes.

    >>> parse_input_shape("input:1x3x32x32")
    {'input': (1, 3, 32, 32)}
    >>> parse_input_shape("1,3,32,32")
    (1, 3, 32, 32)
    """
    if spec is None or isinstance(spec, dict):
        return spec
    if isinstance(spec, (tuple, list)):
        return tuple(int(d) for d in spec)
    named: dict[str, tuple[int, ...]] = {}
    plain: tuple[int, ...] | None = None
    for part in filter(None, (p.strip() for p in re.split(r"[;\s]+", str(spec)))):
        name, _, dims = part.rpartition(":")
        try:
            shape = tuple(int(d) for d in re.split(r"[x,×]", dims) if d)
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise EdgefitError(f"cannot read input shape '{part}'", where="--input-shape",
                               fix="write it like 1x3x224x224, or name:1x3x224x224 for several inputs")
        if name:
            named[name] = shape
        else:
            plain = shape
    return named or plain


def read_onnx(path: str | Path):
    """Read an ONNX file with one clear error for missing, empty, truncated or non-ONNX files."""
    import onnx

    path = Path(path)
    if not path.exists():
        raise EdgefitError(f"model file not found: {path}", where="MODEL", fix="check the path")
    if path.is_dir():
        raise EdgefitError(f"{path} is a directory, not a model file", where="MODEL", fix="pass an .onnx file")
    if path.stat().st_size == 0:
        raise EdgefitError(f"model file is empty: {path}", where="MODEL", fix="re-export the model")
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # protobuf raises DecodeError, or others on garbage
        raise EdgefitError(
            f"{path} is not a readable ONNX model ({type(exc).__name__}); the file is truncated or not ONNX",
            where="MODEL", fix="re-export it with torch.onnx.export or pass a valid .onnx file",
        ) from None
    if not model.graph.node:
        raise EdgefitError(f"{path} holds no graph nodes; it is not an ONNX model or is truncated",
                           where="MODEL", fix="re-export the model")
    return model


def _fix_input_shapes(model, input_shape, notes: list[str]):
    import onnx

    shapes = parse_input_shape(input_shape)
    initializers = {i.name for i in model.graph.initializer}
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    if isinstance(shapes, tuple):
        if len(real_inputs) != 1:
            names = ", ".join(i.name for i in real_inputs)
            raise EdgefitError(f"the model has {len(real_inputs)} inputs ({names}); a plain shape is ambiguous",
                               where="--input-shape", fix="name each input: name:1x3x224x224;other:1x10")
        shapes = {real_inputs[0].name: shapes}
    shapes = shapes or {}
    unknown = set(shapes) - {i.name for i in real_inputs}
    if unknown:
        raise EdgefitError(f"the model has no input named {sorted(unknown)}", where="--input-shape",
                           fix=f"inputs are: {', '.join(i.name for i in real_inputs)}")
    for vi in real_inputs:
        dims = vi.type.tensor_type.shape.dim
        if vi.name in shapes:
            wanted = shapes[vi.name]
            if len(wanted) != len(dims):
                raise EdgefitError(f"input '{vi.name}' has rank {len(dims)}, the shape given has {len(wanted)}",
                                   where="--input-shape", fix="give one size per dimension")
            for d, size in zip(dims, wanted):
                if d.HasField("dim_value") and d.dim_value > 0 and d.dim_value != size:
                    raise EdgefitError(f"input '{vi.name}' has fixed size {d.dim_value}, not {size}",
                                       where="--input-shape", fix="match the model's fixed dimensions")
                d.Clear()
                d.dim_value = size
            continue
        dynamic = [i for i, d in enumerate(dims) if not (d.HasField("dim_value") and d.dim_value > 0)]
        if dynamic == [0]:
            dims[0].Clear()
            dims[0].dim_value = 1
            notes.append(f"input '{vi.name}': dynamic batch dimension assumed to be 1")
        elif dynamic:
            shape = "x".join(str(d.dim_value) if d.HasField("dim_value") and d.dim_value > 0 else "?" for d in dims)
            raise EdgefitError(f"input '{vi.name}' has dynamic dimensions ({shape})", where="MODEL",
                               fix=f"pass --input-shape {vi.name}:{shape.replace('?', 'N')} with sizes")
    del model.graph.value_info[:]
    try:
        return onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:
        raise EdgefitError(f"ONNX shape inference failed: {str(exc).splitlines()[0]}", where="MODEL",
                           fix="check the model with onnx.checker, or fix the input shape") from None


def load_graph(model: Any, input_shape: InputShape = None, *, source: str | None = None) -> Graph:
    """Load ``model`` — a path to an .onnx file, an ``onnx.ModelProto`` or a ``torch.nn.Module`` — into a Graph.

    Torch modules are exported with ``torch.onnx.export`` and need ``input_shape``. Dynamic dimensions
    are fixed from ``input_shape``; a dynamic batch alone is assumed to be 1 (and noted).

    >>> g = load_graph("resnet18.onnx")  # doctest: +SKIP
    """
    import onnx

    notes: list[str] = []
    if isinstance(model, (str, Path)):
        source = source or str(model)
        proto = read_onnx(model)
    elif isinstance(model, onnx.ModelProto):
        source = source or (model.graph.name or "onnx model")
        proto = copy.deepcopy(model)
    elif _is_torch_module(model):
        from edgefit.graph._torch import export_torch

        shape = parse_input_shape(input_shape)
        if not isinstance(shape, tuple):
            raise EdgefitError("a torch module needs one input shape to export", where="--input-shape",
                               fix="pass --input-shape 1x3x224x224")
        source = source or f"torch:{type(model).__name__}"
        proto = export_torch(model, shape)
        input_shape = None
    else:
        raise EdgefitError(f"cannot load a model of type {type(model).__name__}", where="MODEL",
                           fix="pass an .onnx path, an onnx.ModelProto or a torch.nn.Module")
    inferred = _fix_input_shapes(proto, input_shape, notes)
    return build_graph(inferred, source=source, notes=notes)


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch") and c.__name__ == "Module" for c in type(obj).__mro__)
