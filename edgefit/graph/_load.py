"""Load a model (ONNX file, ONNX proto, torch module or built-in example) into a :class:`Graph`.

The front door of the graph package: each kind of model becomes an ONNX proto here (a file read
safely by :mod:`._read`, a torch module exported by :mod:`._torch`), its input shapes are fixed
(:mod:`._shapes`), and :mod:`._infer` checks and counts it.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import onnx

from edgefit.errors import EdgefitError
from edgefit.graph import _validate as v
from edgefit.graph._build import Graph
from edgefit.graph._infer import validated_graph
from edgefit.graph._read import read_onnx
from edgefit.graph._shapes import InputShape, fix_input_shapes, parse_input_shape
from edgefit.graph._torch import export_torch


@v.one_line_errors
def load_graph(model: Any, input_shape: InputShape = None, *, source: str | None = None) -> Graph:
    """Load ``model`` — a path to an .onnx file, an ``onnx.ModelProto`` or a ``torch.nn.Module`` —
    into a Graph.

    Torch modules are exported with ``torch.onnx.export`` and need ``input_shape``. Dynamic
    dimensions are fixed from ``input_shape``; a dynamic batch alone is assumed to be 1 (and
    noted).

    Every model is validated before anything is counted (:mod:`edgefit.graph._validate`): a broken
    one (cycle, undefined input, a tensor whose data does not match its shape, unbroadcastable
    shapes, absurd dimensions) raises :class:`EdgefitError` naming the node or tensor; a valid but
    odd one (unknown dims, NaN weights, a newer opset, custom ops) loads, and ``Graph.warnings``
    say what was assumed.

    >>> g = load_graph("resnet18.onnx")  # doctest: +SKIP
    """
    notes: list[str] = []
    if isinstance(model, (str, Path)):
        source = source or str(model)
        proto = read_onnx(model)
    elif isinstance(model, onnx.ModelProto):
        source = source or (model.graph.name or "onnx model")
        proto = copy.deepcopy(model)
    elif _is_torch_module(model):
        shape = parse_input_shape(input_shape)
        if not isinstance(shape, tuple):
            raise EdgefitError(
                "a torch module needs one input shape to export",
                where="--input-shape",
                fix="pass --input-shape 1x3x224x224",
            )
        source = source or f"torch:{type(model).__name__}"
        proto = export_torch(model, shape)
        input_shape = None
    else:
        raise EdgefitError(
            f"cannot load a model of type {type(model).__name__}",
            where="MODEL",
            fix="pass an .onnx path, an onnx.ModelProto or a torch.nn.Module",
        )
    return validated_graph(proto, source, notes, lambda m: fix_input_shapes(m, input_shape, notes))


def _is_torch_module(obj: Any) -> bool:
    return any(
        c.__module__.startswith("torch") and c.__name__ == "Module" for c in type(obj).__mro__
    )
